/* Internal to libveil (and its tests): the wire format's helpers that are not public API. */
#ifndef VEIL_SERIAL_INTERNAL_H
#define VEIL_SERIAL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "veil/params.h"
#include "veil/serial.h"
#include "veil/ckks.h"
#include "veil/bgv.h"

/*
 * Rewrites the integrity digest of the version-2 object data[0..len) (its last VEIL_DIGEST_BYTES) to match
 * the bytes before it. The tests use it to hand a deliberately edited object to the checks behind the
 * digest, as a forger could: the digest detects accidents, it authenticates nothing.
 */
void veil_object_reseal(uint8_t *data, size_t len);

/*
 * The exact stored sizes (header, payload and digest: what the save functions write without compression)
 * of objects under a parameter set, from the parameters and the wire format alone: plans announce them, and
 * the streaming set writer frames a set from them before its objects exist. Compressed objects differ.
 */
size_t veil_params_stored_bytes(const veil_params *params);
size_t veil_public_key_stored_bytes(const veil_params *params);
size_t veil_switch_key_stored_bytes(const veil_params *params); /* relinearization and Galois keys alike */
size_t veil_ckks_encapsulation_key_stored_bytes(const veil_params *params); /* bootstrapping's (seeded) */
size_t veil_ckks_ciphertext_stored_bytes(const veil_params *params, size_t level, size_t size, bool seeded);
size_t veil_bgv_ciphertext_stored_bytes(const veil_params *params, size_t level, size_t size, bool seeded);
/* A set of `count` objects of items_bytes in all, with meta_len bytes of metadata. */
size_t veil_set_stored_bytes(size_t meta_len, size_t count, size_t items_bytes);
/*
 * veil_set_open, with the set's own digest checked (verify) or not: everything else (framing, every object's
 * header) is checked as veil_set_open does. verify unset only where the digest of the same bytes is checked
 * elsewhere before any result is released (veil_ciphertexts_load_batches).
 */
veil_status veil_set_open_ex(veil_set_contents *view, const uint8_t *data, size_t len, bool verify, veil_error *err);

/*
 * veil_object_peek, with the digest checked (verify) or not: unset where the caller checks it right after
 * (veil_set_open), so that a large object is not hashed twice.
 */
veil_status veil_object_peek_ex(veil_object_info *info, const uint8_t *data, size_t len, bool verify, veil_error *err);

/*
 * The loaders of the public objects, with their own digest checked (verify) or not: unset only for an object
 * of a set whose digest covered its bytes (veil_set_contents.verified). The set's writer checked each
 * object's digest before sealing it (veil_set_writer_add, veil_set_save), and the set's digest says the bytes
 * did not change since: hashing them again would only cost a second pass (148 MB of keys). Every other check
 * is made as by the loaders without _ex.
 */
veil_status veil_public_key_load_ex(veil_public_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                    bool verify, veil_error *err);
veil_status veil_switch_key_load_ex(veil_switch_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                    bool verify, veil_error *err);
veil_status veil_ckks_encapsulation_key_load_ex(veil_ckks_encapsulation_key **out, const veil_context *ctx,
                                                const uint8_t *data, size_t len, bool verify, veil_error *err);
veil_status veil_ckks_ciphertext_load_ex(veil_ckks_ciphertext **out, const veil_context *ctx, const uint8_t *data,
                                         size_t len, bool verify, veil_error *err);
veil_status veil_bgv_ciphertext_load_ex(veil_bgv_ciphertext **out, const veil_context *ctx, const uint8_t *data,
                                        size_t len, bool verify, veil_error *err);

/*
 * Sets written as their objects come, one at a time, so that a caller never holds all of them (evaluation
 * keys of gigabytes): the count and the total bytes of the objects are declared first (they frame the header),
 * then each object is added, and the digest is computed as the bytes pass. The bytes are those veil_set_save
 * writes for the same objects. With sink NULL, the set is built in one buffer of its exact size, given by
 * veil_set_writer_end; else every byte goes to sink(arg, ...) in order. A failed writer is released with
 * veil_set_writer_free (end releases it in every case).
 */
typedef veil_status (*veil_sink_fn)(void *arg, const uint8_t *data, size_t len, veil_error *err);
typedef struct veil_set_writer veil_set_writer;
veil_status veil_set_writer_begin(veil_set_writer **out, const veil_params *params, const uint8_t *meta, size_t meta_len,
                                  size_t count, size_t items_bytes, bool secret, veil_sink_fn sink, void *arg,
                                  veil_error *err);
/* Checks the object's framing and digest, and that it fits the declaration (a secret one needs a secret set). */
veil_status veil_set_writer_add(veil_set_writer *w, const uint8_t *obj, size_t len, veil_error *err);
/* Refuses a set short of its declared objects; out receives the buffer (sink NULL only). */
veil_status veil_set_writer_end(veil_set_writer *w, veil_buffer *out, veil_error *err);
void veil_set_writer_free(veil_set_writer *w);

/*
 * veil_file_write_atomic in steps: a temporary file beside path (0600 when secret, else 0666 less the
 * umask), written in pieces (veil_atomic_file_write is a veil_sink_fn), then fsync, rename and the folder's
 * fsync on commit; abort removes the temporary file. Both release f; path is untouched until the rename.
 */
typedef struct veil_atomic_file veil_atomic_file;
veil_status veil_atomic_file_open(veil_atomic_file **out, const char *path, bool secret, veil_error *err);
veil_status veil_atomic_file_write(void *file, const uint8_t *data, size_t len, veil_error *err);
veil_status veil_atomic_file_commit(veil_atomic_file *f, veil_error *err);
void veil_atomic_file_abort(veil_atomic_file *f);

#endif /* VEIL_SERIAL_INTERNAL_H */
