/*
 * Samplers. Those that produce secrets (ternary, fixed Hamming weight, centered binomial) are written
 * without branches or memory accesses that depend on the values they produce: rejection sampling only
 * looks at values it then discards, and everything else is arithmetic on masks.
 */
#include <math.h>
#include <string.h>
#include "ring/ring_internal.h"

/* The next `count` 8-byte little-endian words of the stream (the same words as veil_prng_u64 gives). */
static void read_words(uint64_t *words, size_t count, veil_prng *prng)
{
    uint8_t bytes[8 * 512];
    for (size_t done = 0; done < count;) {
        size_t take = count - done < 512 ? count - done : 512;
        veil_prng_bytes(prng, bytes, 8 * take);
        for (size_t k = 0; k < take; k++) {
            uint64_t v = 0;
            for (int b = 7; b >= 0; b--) v = (v << 8) | bytes[8 * k + (size_t)b];
            words[done + k] = v;
        }
        done += take;
    }
    veil_wipe(bytes, sizeof bytes);
}

veil_status veil_sample_uniform(veil_poly *out, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(prng, err);
    const size_t n = out->ring->n;
    enum { BLOCK = 512 };
    uint64_t words[BLOCK];
    size_t avail = 0, pos = 0;
    /* sequential over limbs, so a seeded prng gives the same polynomial for any thread count; the stream
     * is read as little-endian 64-bit words, masked to the prime's bit length, and kept when below q */
    for (size_t l = 0; l < out->count; l++) {
        const uint64_t q = out->ring->primes[out->base[l]];
        const uint64_t mask = ((uint64_t)1 << out->ring->mod[out->base[l]].bits) - 1;
        uint64_t *x = veil_poly_limb_ptr(out, l);
        for (size_t j = 0; j < n;) {
            if (pos == avail) {
                read_words(words, BLOCK, prng);
                avail = BLOCK;
                pos = 0;
            }
            uint64_t v = words[pos++] & mask;
            if (v < q) x[j++] = v;
        }
    }
    return VEIL_OK;
}

static veil_status check_small_args(const int8_t *out, size_t n, const veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(prng, err);
    if (n == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "sampler: zero coefficients requested");
    return VEIL_OK;
}

/* b mod 3 for b < 256 without division: floor(b * 171 / 512) = floor(b / 3) on that range. */
static inline int8_t byte_mod3(uint32_t b)
{
    uint32_t quot = (b * 171u) >> 9;
    return (int8_t)(b - 3u * quot);
}

veil_status veil_sample_ternary(int8_t *out, size_t n, veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_small_args(out, n, prng, err));
    uint8_t buf[256];
    size_t avail = 0, pos = 0;
    for (size_t j = 0; j < n;) {
        if (pos == avail) {
            veil_prng_bytes(prng, buf, sizeof buf);
            avail = sizeof buf;
            pos = 0;
        }
        uint32_t b = buf[pos++];
        if (b == 255) continue; /* 255 = 3 * 85: reject the one byte that would bias the result */
        out[j++] = (int8_t)(byte_mod3(b) - 1);
    }
    veil_wipe(buf, sizeof buf);
done:
    return st;
}

/* Number of set bits, branch-free (SWAR). */
static inline uint32_t popcount32(uint32_t x)
{
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0F0F0F0Fu;
    return (x * 0x01010101u) >> 24;
}

veil_status veil_sample_cbd(int8_t *out, size_t n, veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_small_args(out, n, prng, err));
    const uint64_t mask = ((uint64_t)1 << VEIL_CBD_ETA) - 1;
    uint64_t words[256];
    for (size_t j = 0; j < n; j += 256) {
        size_t take = n - j < 256 ? n - j : 256;
        read_words(words, take, prng);
        for (size_t k = 0; k < take; k++) {
            /* one word per value: popcount of its low 21 bits minus popcount of the next 21 */
            int32_t a = (int32_t)popcount32((uint32_t)(words[k] & mask));
            int32_t b = (int32_t)popcount32((uint32_t)((words[k] >> VEIL_CBD_ETA) & mask));
            out[j + k] = (int8_t)(a - b);
        }
    }
    veil_wipe(words, sizeof words);
done:
    return st;
}

/* Branch-free compare-exchange on (key, value) pairs: afterwards key[i] <= key[j]. */
static inline void cswap(uint64_t *key, int8_t *val, size_t i, size_t j)
{
    uint64_t a = key[i], b = key[j];
    uint64_t swap = 0 - (uint64_t)(a > b); /* all ones when the pair is out of order */
    uint64_t dk = (a ^ b) & swap;
    key[i] = a ^ dk;
    key[j] = b ^ dk;
    int8_t dv = (int8_t)((val[i] ^ val[j]) & (int8_t)swap);
    val[i] ^= dv;
    val[j] ^= dv;
}

/*
 * Batcher's odd-even merge sort for any n (Knuth, TAOCP vol. 3, 5.2.2, Algorithm M): the sequence of
 * compared positions depends only on n, never on the data.
 */
static void oblivious_sort(uint64_t *key, int8_t *val, size_t n)
{
    size_t t = 1;
    while (t < n) t <<= 1;
    for (size_t p = t >> 1; p > 0; p >>= 1) {
        size_t q = t >> 1, r = 0, d = p;
        for (;;) {
            for (size_t i = 0; i + d < n; i++)
                if ((i & p) == r) cswap(key, val, i, i + d);
            if (q == p) break;
            d = q - p;
            q >>= 1;
            r = p;
        }
    }
}

veil_status veil_sample_ternary_hw(int8_t *out, size_t n, size_t h, veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    uint64_t *key = NULL;
    VEIL_CHECK(check_small_args(out, n, prng, err));
    if (h == 0 || h > n) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "Hamming weight %zu is outside [1, %zu]", h, n);
    key = veil_alloc(n, sizeof *key);
    if (!key) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "out of memory for %zu sort keys", n);
    /* h values +-1 with random signs, then zeros; a random permutation by sorting on random keys (two
     * keys collide with probability below n^2 / 2^64, which only biases the permutation negligibly) */
    for (size_t j = 0; j < n; j++) {
        uint64_t r = veil_prng_u64(prng);
        int8_t sign = (int8_t)(1 - 2 * (int)(r & 1));
        int8_t nonzero = (int8_t)(j < h); /* depends on the public h only */
        out[j] = (int8_t)(sign * nonzero);
        key[j] = veil_prng_u64(prng);
    }
    oblivious_sort(key, out, n);
done:
    veil_free_secret(key, n * sizeof *key);
    return st;
}

/*
 * Wide rounded Gaussian for noise flooding: Box-Muller on pairs of 53-bit uniforms from the stream, each
 * value rounded to the nearest integer. Its timing may depend on the values (libm's log, sin and cos); it
 * is meant for flooding noise that hides a decryption's error, not for key material.
 */
veil_status veil_sample_gaussian_wide(int64_t *out, size_t n, double sigma, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(prng, err);
    if (!(sigma >= 1.0) || !(sigma < 1e17))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "gaussian sampler: sigma %g must lie in [1, 1e17]", sigma);
    const double two_pi = 6.283185307179586476925286766559;
    const double unit = 1.0 / 9007199254740992.0; /* 2^-53 */
    for (size_t i = 0; i < n; i += 2) {
        /* u1 in (0, 1], u2 in [0, 1) */
        const double u1 = (double)((veil_prng_u64(prng) >> 11) + 1) * unit;
        const double u2 = (double)(veil_prng_u64(prng) >> 11) * unit;
        const double r = sigma * sqrt(-2.0 * log(u1));
        out[i] = (int64_t)llround(r * cos(two_pi * u2));
        if (i + 1 < n) out[i + 1] = (int64_t)llround(r * sin(two_pi * u2));
    }
    return VEIL_OK;
}
