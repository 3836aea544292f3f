/*
 * Random streams: the OS CSPRNG (libsodium randombytes_buf) and the seeded ChaCha20 keystream
 * (libsodium crypto_stream_chacha20: 256-bit key = seed, 64-bit nonce = stream id, 64-bit block counter).
 * Bytes are served from a buffer; the seeded stream is exactly the keystream in order, whatever the sizes
 * of the individual requests.
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
    VEIL_TRY(ensure_sodium(err));
    veil_prng *p = veil_alloc(1, sizeof *p);
    if (!p) return veil_fail(err, VEIL_ERR_NO_MEMORY, "out of memory for a prng");
    p->kind = kind;
    p->pos = PRNG_BUFFER; /* empty: the first request refills */
    *out = p;
    return VEIL_OK;
}

veil_status veil_prng_new_os(veil_prng **out, veil_error *err)
{
    return prng_new(out, PRNG_OS, err);
}

veil_status veil_prng_new_seeded(veil_prng **out, const uint8_t seed[VEIL_SEED_BYTES], uint64_t stream_id,
                                 veil_error *err)
{
    VEIL_REQUIRE(seed, err);
    VEIL_TRY(prng_new(out, PRNG_SEEDED, err));
    veil_prng *p = *out;
    memcpy(p->key, seed, sizeof p->key);
    for (size_t i = 0; i < sizeof p->nonce; i++) p->nonce[i] = (uint8_t)(stream_id >> (8 * i));
    return VEIL_OK;
}

void veil_prng_free(veil_prng *prng)
{
    veil_free_secret(prng, sizeof *prng);
}

static void refill(veil_prng *p)
{
    if (p->kind == PRNG_OS) {
        randombytes_buf(p->buf, sizeof p->buf);
    } else {
        memset(p->buf, 0, sizeof p->buf);
        crypto_stream_chacha20_xor_ic(p->buf, p->buf, sizeof p->buf, p->nonce, p->next_block, p->key);
        p->next_block += sizeof p->buf / 64;
    }
    p->pos = 0;
}

void veil_prng_bytes(veil_prng *prng, void *buf, size_t len)
{
    uint8_t *out = buf;
    while (len > 0) {
        if (prng->pos == PRNG_BUFFER) refill(prng);
        size_t take = PRNG_BUFFER - prng->pos;
        if (take > len) take = len;
        memcpy(out, prng->buf + prng->pos, take);
        sodium_memzero(prng->buf + prng->pos, take); /* served bytes never stay behind */
        prng->pos += take;
        out += take;
        len -= take;
    }
}

uint64_t veil_prng_u64(veil_prng *prng)
{
    uint8_t b[8];
    veil_prng_bytes(prng, b, sizeof b);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    sodium_memzero(b, sizeof b);
    return v;
}

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
    VEIL_TRY(ensure_sodium(err));
    randombytes_buf(seed, VEIL_SEED_BYTES);
    return VEIL_OK;
}
