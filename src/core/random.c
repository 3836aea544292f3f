/*
 * Random streams: the OS CSPRNG (libsodium randombytes_buf seeding a fast-key-erasure ChaCha20 generator)
 * and the seeded ChaCha20 keystream
 * (libsodium crypto_stream_chacha20: 256-bit key = seed, 64-bit nonce = stream id, 64-bit block counter).
 * Bytes are served from a buffer; the seeded stream is exactly the keystream in order, whatever the sizes
 * of the individual requests. The buffer (which may hold bytes that become secrets) is wiped when the prng
 * is freed; requests larger than the buffer are written straight into the caller's memory.
 */
#include <string.h>
#include <sodium.h>
#include "core/core_internal.h"

#define PRNG_BUFFER 4096 /* a multiple of the 64-byte ChaCha20 block */

typedef enum { PRNG_OS, PRNG_SEEDED } prng_kind;

struct veil_prng {
    prng_kind kind;
    uint8_t key[crypto_stream_chacha20_KEYBYTES];
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
    uint64_t next_block; /* ChaCha20 block counter of the next refill */
    size_t pos;          /* bytes of buf already served */
    uint8_t buf[PRNG_BUFFER];
};

static veil_status ensure_sodium(veil_error *err)
{
    if (sodium_init() < 0) return veil_fail(err, VEIL_ERR_RANDOM, "libsodium failed to initialise");
    return VEIL_OK;
}

static veil_status prng_new(veil_prng **out, prng_kind kind, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    veil_status st = VEIL_OK;
    veil_prng *p = NULL;
    VEIL_CHECK(ensure_sodium(err));
    p = veil_alloc(1, sizeof *p);
    if (!p) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "out of memory for a prng");
    p->kind = kind;
    p->pos = PRNG_BUFFER; /* empty: the first request refills */
    *out = p;
done:
    return st;
}

veil_status veil_prng_new_os(veil_prng **out, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(prng_new(out, PRNG_OS, err));
    randombytes_buf((*out)->key, sizeof (*out)->key);
done:
    return st;
}

veil_status veil_prng_new_seeded(veil_prng **out, const uint8_t seed[VEIL_SEED_BYTES], uint64_t stream_id,
                                 veil_error *err)
{
    VEIL_REQUIRE(seed, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(prng_new(out, PRNG_SEEDED, err));
    veil_prng *p = *out;
    memcpy(p->key, seed, sizeof p->key);
    for (size_t i = 0; i < sizeof p->nonce; i++) p->nonce[i] = (uint8_t)(stream_id >> (8 * i));
done:
    return st;
}

void veil_prng_free(veil_prng *prng)
{
    veil_free_secret(prng, sizeof *prng);
}

/*
 * OS prng: a ChaCha20 generator keyed from the OS CSPRNG with fast key erasure (Bernstein, "Fast-key-erasure
 * random-number generators", 2017): every refill also produces the next key and overwrites the old one, so
 * the state never reveals bytes already served. This serves bulk randomness at ChaCha20 speed instead of
 * one system call per buffer.
 */
static void refill_os(veil_prng *p)
{
    uint8_t block[PRNG_BUFFER + crypto_stream_chacha20_KEYBYTES];
    crypto_stream_chacha20(block, sizeof block, p->nonce, p->key);
    memcpy(p->buf, block, PRNG_BUFFER);
    memcpy(p->key, block + PRNG_BUFFER, sizeof p->key);
    sodium_memzero(block, sizeof block);
}

static void refill(veil_prng *p)
{
    if (p->kind == PRNG_OS) {
        refill_os(p);
    } else {
        memset(p->buf, 0, sizeof p->buf);
        crypto_stream_chacha20_xor_ic(p->buf, p->buf, sizeof p->buf, p->nonce, p->next_block, p->key);
        p->next_block += sizeof p->buf / 64;
    }
    p->pos = 0;
}

/* Seeded streams: writes whole 64-byte blocks of the keystream straight to out; returns the bytes written. */
static size_t direct_blocks(veil_prng *p, uint8_t *out, size_t len)
{
    size_t bytes = len & ~(size_t)63;
    memset(out, 0, bytes);
    crypto_stream_chacha20_xor_ic(out, out, bytes, p->nonce, p->next_block, p->key);
    p->next_block += bytes / 64;
    return bytes;
}

/* Serves len bytes: the rest of the buffer, then whole refills (or, for a seeded stream whose buffer is
 * empty, whole keystream blocks written in place), so that the bytes never depend on how they are asked for. */
void veil_prng_bytes(veil_prng *prng, void *buf, size_t len)
{
    uint8_t *out = buf;
    if (prng->kind == PRNG_SEEDED && prng->pos == PRNG_BUFFER && len >= PRNG_BUFFER) {
        /* buffer empty: a bulk request of a seeded stream bypasses it */
        size_t done = direct_blocks(prng, out, len);
        out += done;
        len -= done;
    }
    while (len > 0) {
        if (prng->pos == PRNG_BUFFER) refill(prng);
        size_t take = PRNG_BUFFER - prng->pos;
        if (take > len) take = len;
        memcpy(out, prng->buf + prng->pos, take);
        prng->pos += take;
        out += take;
        len -= take;
    }
}

/* The next 8 bytes, little-endian, so that the value is the same on every machine. */
uint64_t veil_prng_u64(veil_prng *prng)
{
    uint8_t b[8];
    veil_prng_bytes(prng, b, sizeof b);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

/* Rejection sampling under the smallest all-ones mask covering bound - 1; bound <= 1 consumes nothing. */
uint64_t veil_prng_below(veil_prng *prng, uint64_t bound)
{
    if (bound <= 1) return 0;
    uint64_t mask = bound - 1;
    mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4;
    mask |= mask >> 8; mask |= mask >> 16; mask |= mask >> 32;
    for (;;) {
        uint64_t v = veil_prng_u64(prng) & mask;
        if (v < bound) return v;
    }
}

veil_status veil_seed_new(uint8_t seed[VEIL_SEED_BYTES], veil_error *err)
{
    VEIL_REQUIRE(seed, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(ensure_sodium(err));
    randombytes_buf(seed, VEIL_SEED_BYTES);
done:
    return st;
}
