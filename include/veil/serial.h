/*
 * veil/serial.h - Veil's versioned wire format for parameters, keys, plaintexts and ciphertexts.
 *
 * Every object is a 64-byte header, its stored payload and (version 2) a 32-byte integrity digest, all
 * little-endian:
 *   0  "VEIL"                 4  format version (u16)    6  object type (u16)
 *   8  flags (u32: 1 zstd-compressed payload, 2 seeded form, 4 secret)
 *   12 security level of the parameter set (u32)         16 parameter-set hash (32 bytes, BLAKE2b-256)
 *   48 stored payload length (u64)                       56 payload length before compression (u64)
 * The digest is BLAKE2b-256 of the header and the stored payload: any accidental change (a flipped bit, a
 * truncated or padded file) is refused before anything else in the object is believed. It is not a
 * signature: anyone can recompute it (see SECURITY.md). Version 1 objects (no digest) are still read.
 * Seeded objects (public and key-switching keys, fresh secret-key ciphertexts) store a 32-byte seed instead
 * of their uniform half, which the loader regenerates: about half the size. The layout of each payload is
 * in docs/wire-format.md.
 *
 * Loading checks, in this order: magic and version, the integrity digest, the rest of the header, object
 * type, parameter hash against the context, declared sizes against limits derived from the parameters
 * (before anything is allocated), the data length, the compressed stream's own bounds, and every
 * coefficient against its prime. Any failure returns VEIL_ERR_FORMAT (or VEIL_ERR_MISMATCH for a hash or
 * type that belongs elsewhere) with a message saying which check failed; nothing is allocated for the
 * caller then.
 *
 * Where each save/load is declared: this header declares the save and load of every object of the layers
 * below ML (parameter sets, secret, public and switching keys, CKKS and BGV plaintexts and ciphertexts) and
 * of sets of objects; the ML objects' (plans, key sets, ciphertext sets with their metadata) are declared in
 * veil/ml.h. CKKS and BGV ciphertexts share one layout, that of the RLWE element they hold: level, size, the
 * scheme's metadata, then the polynomials.
 */
#ifndef VEIL_SERIAL_H
#define VEIL_SERIAL_H

#include <stddef.h>
#include <stdint.h>
#include "veil/core.h"
#include "veil/params.h"
#include "veil/rlwe.h"
#include "veil/party.h"
#include "veil/ckks.h"
#include "veil/bgv.h"
#include "veil/circuits.h"

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

#define VEIL_FORMAT_VERSION 2 /* the version written; versions 1 and 2 are read */
#define VEIL_HEADER_BYTES 64
#define VEIL_DIGEST_BYTES 32 /* the integrity digest that ends a version-2 object */

typedef enum veil_object_type {
    VEIL_OBJECT_PARAMS = 1,
    VEIL_OBJECT_SECRET_KEY = 2,
    VEIL_OBJECT_PUBLIC_KEY = 3,
    VEIL_OBJECT_SWITCH_KEY = 4,
    VEIL_OBJECT_CKKS_PLAINTEXT = 5,
    VEIL_OBJECT_CKKS_CIPHERTEXT = 6,
    VEIL_OBJECT_BGV_PLAINTEXT = 7,
    VEIL_OBJECT_BGV_CIPHERTEXT = 8,
    VEIL_OBJECT_SET = 9, /* several objects of one parameter set, with metadata (key bundles, batches) */
    VEIL_OBJECT_PARTY_GROUP = 10, /* a multi-party group (veil/party.h) */
    VEIL_OBJECT_PARTY_SHARE = 11, /* a party's share (or an aggregate) of a multi-party protocol */
    VEIL_OBJECT_PARTY_BOX_KEY = 12,      /* t-out-of-N: a party's public box key (deals are sealed to it) */
    VEIL_OBJECT_PARTY_DEAL = 13,         /* t-out-of-N: one party's sealed Shamir share for one other party */
    VEIL_OBJECT_PARTY_THRESHOLD_KEY = 14, /* t-out-of-N: a party's threshold share S_j (secret) */
    VEIL_OBJECT_ENCAPSULATION_KEY = 15    /* bootstrapping's sparse-secret encapsulation keys (veil/circuits.h) */
} veil_object_type;

#define VEIL_FLAG_ZSTD 1u
#define VEIL_FLAG_SEEDED 2u
#define VEIL_FLAG_SECRET 4u

/* A byte buffer owned by the caller once filled; veil_buffer_free wipes and releases it. */
typedef struct veil_buffer {
    uint8_t *data;
    size_t len;
} veil_buffer;
void veil_buffer_free(veil_buffer *buf);

/* Options of the save functions. */
#define VEIL_SAVE_COMPRESS 1u /* zstd-compress the payload (never a secret key: zstd keeps copies we cannot wipe) */

/*
 * What a header says, read without any context (for `veil info` and servers that route objects). Checks the
 * framing (magic, version, the stored length against the bytes present) and, for version 2, the integrity
 * digest over all of data: a damaged object fails here with VEIL_ERR_FORMAT.
 */
typedef struct veil_object_info {
    veil_object_type type;
    uint32_t flags;
    veil_security security;
    uint8_t params_hash[VEIL_PARAMS_HASH_BYTES];
    uint64_t stored_bytes, payload_bytes;
    unsigned version; /* 1 (no digest) or 2 (digest verified) */
} veil_object_info;
veil_status veil_object_peek(veil_object_info *info, const uint8_t *data, size_t len, veil_error *err);

veil_status veil_params_save(veil_buffer *out, const veil_params *params, unsigned options, veil_error *err);
veil_status veil_params_load(veil_params **out, const uint8_t *data, size_t len, veil_error *err);

veil_status veil_secret_key_save(veil_buffer *out, const veil_secret_key *sk, unsigned options, veil_error *err);
veil_status veil_secret_key_load(veil_secret_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 veil_error *err);
veil_status veil_public_key_save(veil_buffer *out, const veil_public_key *pk, unsigned options, veil_error *err);
veil_status veil_public_key_load(veil_public_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 veil_error *err);
veil_status veil_switch_key_save(veil_buffer *out, const veil_switch_key *key, unsigned options, veil_error *err);
veil_status veil_switch_key_load(veil_switch_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 veil_error *err);
/*
 * Bootstrapping's encapsulation keys (veil/circuits.h), always seeded. Payload: u64 weight, u64 digits, the
 * seed and b of the key to the sparse secret (limbs q_0 and p_0), then the seed and the digits' b of the key
 * back to the main secret (over Q P).
 */
veil_status veil_ckks_encapsulation_key_save(veil_buffer *out, const veil_ckks_encapsulation_key *key,
                                             unsigned options, veil_error *err);
veil_status veil_ckks_encapsulation_key_load(veil_ckks_encapsulation_key **out, const veil_context *ctx,
                                             const uint8_t *data, size_t len, veil_error *err);
veil_status veil_ckks_plaintext_save(veil_buffer *out, const veil_ckks_plaintext *pt, unsigned options,
                                     veil_error *err);
veil_status veil_ckks_plaintext_load(veil_ckks_plaintext **out, const veil_context *ctx, const uint8_t *data,
                                     size_t len, veil_error *err);
/* A fresh secret-key ciphertext is saved in seeded form (c1 as its seed). */
veil_status veil_ckks_ciphertext_save(veil_buffer *out, const veil_ckks_ciphertext *ct, unsigned options,
                                      veil_error *err);
veil_status veil_ckks_ciphertext_load(veil_ckks_ciphertext **out, const veil_context *ctx, const uint8_t *data,
                                      size_t len, veil_error *err);

/* BGV plaintexts (N residues mod t at t's bit width) and ciphertexts (level, size, factor, noise estimate,
 * the polynomials; seeded when fresh from the secret key). */
veil_status veil_bgv_plaintext_save(veil_buffer *out, const veil_bgv_plaintext *pt, unsigned options, veil_error *err);
veil_status veil_bgv_plaintext_load(veil_bgv_plaintext **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                    veil_error *err);
veil_status veil_bgv_ciphertext_save(veil_buffer *out, const veil_bgv_ciphertext *ct, unsigned options, veil_error *err);
veil_status veil_bgv_ciphertext_load(veil_bgv_ciphertext **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                     veil_error *err);

/*
 * Multi-party objects (veil/party.h, docs/multiparty.md). A group: its id, party count and threshold. A share:
 * group id, party (0: an aggregate), parties, kind, round, Galois element, level, the digest of the ciphertext
 * it is for, its smudging width, then its polynomials. Loading checks every field against the parameters
 * and the others (a round that is not its kind's, a party beyond the group, a Galois element on a share of
 * another kind, a key share below the top level): VEIL_ERR_FORMAT. A share is checked against a group only
 * when combined (veil_party_aggregate and the joint decryptions), which names what does not match.
 */
veil_status veil_party_group_save(veil_buffer *out, const veil_party_group *group, veil_error *err);
veil_status veil_party_group_load(veil_party_group **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                  veil_error *err);
veil_status veil_party_share_save(veil_buffer *out, const veil_party_share *share, unsigned options, veil_error *err);
veil_status veil_party_share_load(veil_party_share **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                  veil_error *err);

/*
 * t-out-of-N objects (veil/party.h, "t-out-of-N"; docs/multiparty.md). A box key: group id, party, the 32-byte
 * X25519 key (public). A deal: group id, dealer, recipient, parties, threshold, the 24-byte nonce, then the
 * crypto_box of its contents (exact length from the parameters); it is safe to publish (only the recipient opens
 * it) but is authenticated only when opened, by veil_party_threshold_key_new. A threshold key: group id, party,
 * parties, threshold, S_j over Q; a secret object (secret flag, never compressed, files 0600). A threshold
 * decryption or switching share is a party share whose header is followed by its set of parties (a 64-bit mask).
 * Loading checks every field against the parameters: VEIL_ERR_FORMAT.
 */
veil_status veil_party_box_key_save(veil_buffer *out, const veil_party_box_key *key, veil_error *err);
veil_status veil_party_box_key_load(veil_party_box_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                    veil_error *err);
veil_status veil_party_deal_save(veil_buffer *out, const veil_party_deal *deal, veil_error *err);
veil_status veil_party_deal_load(veil_party_deal **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 veil_error *err);
veil_status veil_party_threshold_key_save(veil_buffer *out, const veil_party_threshold_key *key, veil_error *err);
veil_status veil_party_threshold_key_load(veil_party_threshold_key **out, const veil_context *ctx, const uint8_t *data,
                                          size_t len, veil_error *err);

/*
 * Sets: up to 4 KiB of caller-defined metadata and a list of complete objects (each with its own header and
 * compression and, from version 2, its own digest) of one parameter set, as one object of type
 * VEIL_OBJECT_SET. Payload: u64 metadata length, the metadata, u64 count, then per object u64 length and its
 * bytes. The set's digest covers every byte of the set. The set carries the secret flag when any object in
 * it does (so that its file is created 0600), and is itself never compressed.
 */
veil_status veil_set_save(veil_buffer *out, const veil_params *params, const uint8_t *meta, size_t meta_len,
                          const veil_buffer *items, size_t count, veil_error *err);

typedef struct veil_set_item {
    const uint8_t *data; /* points into the set's bytes */
    size_t len;
    veil_object_type type;
} veil_set_item;

typedef struct veil_set_contents {
    const uint8_t *meta;
    size_t meta_len;
    veil_set_item *items;
    size_t count;
    int secret;
    uint8_t params_hash[VEIL_PARAMS_HASH_BYTES];
    int verified; /* the set's digest was checked (veil_set_open): it covers every object's bytes */
} veil_set_contents;

/*
 * A set may hold objects of several parameter sets (exact inference over CRT moduli): a parameter-set object
 * after the first starts a group, and the objects that follow carry its hash instead of the set's.
 *
 * Checks a set's framing (its digest, every object's header, its parameter hash equal to its group's, no
 * nested sets, no undeclared secret) and points into it; the objects themselves, their own digests
 * included, are validated by their loaders. Release
 * with veil_set_contents_clear; the view does not outlive data.
 */
veil_status veil_set_open(veil_set_contents *view, const uint8_t *data, size_t len, veil_error *err);
void veil_set_contents_clear(veil_set_contents *view);

/*
 * Writes a file atomically: a temporary file in the same folder, fsync, rename, fsync of the folder. A secret
 * key (or any bytes that are not a public Veil object) is created with mode 0600; public objects with 0666
 * less the umask. On failure, whatever was stored at path before is untouched.
 */
veil_status veil_file_write_atomic(const char *path, const uint8_t *data, size_t len, veil_error *err);
/* Reads a whole file of at most max_len bytes. */
veil_status veil_file_read(veil_buffer *out, const char *path, size_t max_len, veil_error *err);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_SERIAL_H */
