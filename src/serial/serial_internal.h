/* Internal to libveil (and its tests): the wire format's helpers that are not public API. */
#ifndef VEIL_SERIAL_INTERNAL_H
#define VEIL_SERIAL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "veil/params.h"

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
size_t veil_ckks_ciphertext_stored_bytes(const veil_params *params, size_t level, size_t size, bool seeded);
size_t veil_bgv_ciphertext_stored_bytes(const veil_params *params, size_t level, size_t size, bool seeded);
/* A set of `count` objects of items_bytes in all, with meta_len bytes of metadata. */
size_t veil_set_stored_bytes(size_t meta_len, size_t count, size_t items_bytes);

#endif /* VEIL_SERIAL_INTERNAL_H */
