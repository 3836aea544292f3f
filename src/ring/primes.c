/* NTT-friendly primes: deterministic primality, prime chains and primitive roots of unity. */
#include "ring/ring_internal.h"

/* Miller-Rabin with the first 12 primes as bases is exact for n < 3.3 * 10^24 (Sorenson-Webster 2015). */
int veil_is_prime(uint64_t n)
{
    static const uint64_t bases[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
    if (n < 2) return 0;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        if (n == bases[i]) return 1;
        if (n % bases[i] == 0) return 0;
    }
    uint64_t d = n - 1;
    unsigned s = 0;
    while ((d & 1) == 0) { d >>= 1; s++; }
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        uint64_t x = veil_mod_pow(bases[i], d, n);
        if (x == 1 || x == n - 1) continue;
        unsigned r = 1;
        for (; r < s; r++) {
            x = veil_mod_mul(x, x, n);
            if (x == n - 1) break;
        }
        if (r == s) return 0;
    }
    return 1;
}

static int is_power_of_two(uint64_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

static int in_list(uint64_t v, const uint64_t *list, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (list[i] == v) return 1;
    return 0;
}

veil_status veil_prime_chain(uint64_t *out, const unsigned *bits, size_t count, size_t n,
                             const uint64_t *avoid, size_t avoid_count, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(bits, err);
    if (avoid_count > 0) VEIL_REQUIRE(avoid, err);
    if (!is_power_of_two(n) || n < ((size_t)1 << VEIL_RING_MIN_LOG_N) || n > ((size_t)1 << VEIL_RING_MAX_LOG_N))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_prime_chain: n = %zu is not a power of two in [2^%d, 2^%d]",
                         n, VEIL_RING_MIN_LOG_N, VEIL_RING_MAX_LOG_N);
    const uint64_t step = 2 * (uint64_t)n;
    for (size_t k = 0; k < count; k++) {
        unsigned b = bits[k];
        if (b < 20 || b > VEIL_PRIME_MAX_BITS)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_prime_chain: prime size %u bits is outside [20, %d]",
                             b, VEIL_PRIME_MAX_BITS);
        const uint64_t low = (uint64_t)1 << (b - 1);
        /* the largest candidate 1 (mod 2n) below 2^b */
        uint64_t cand = ((uint64_t)1 << b) - step + 1;
        int found = 0;
        for (; cand > low; cand -= step) {
            if (in_list(cand, out, k) || in_list(cand, avoid, avoid_count)) continue;
            if (veil_is_prime(cand)) { found = 1; break; }
        }
        if (!found)
            return veil_fail(err, VEIL_ERR_NOT_FOUND,
                             "veil_prime_chain: not enough %u-bit primes congruent to 1 mod %llu", b,
                             (unsigned long long)step);
        out[k] = cand;
    }
    return VEIL_OK;
}

veil_status veil_primitive_root(uint64_t *out, uint64_t q, uint64_t order, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    if (order < 2 || !is_power_of_two(order) || q < 3 || (q - 1) % order != 0 || !veil_is_prime(q))
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "veil_primitive_root: %llu is not a prime with a power-of-two order %llu dividing q-1",
                         (unsigned long long)q, (unsigned long long)order);
    /* x = g^((q-1)/order) has order exactly `order` iff x^(order/2) = -1 */
    uint64_t root = 0;
    for (uint64_t g = 2; g < q; g++) {
        uint64_t x = veil_mod_pow(g, (q - 1) / order, q);
        if (veil_mod_pow(x, order / 2, q) == q - 1) { root = x; break; }
    }
    if (root == 0) return veil_fail(err, VEIL_ERR_INTERNAL, "veil_primitive_root: no generator found");
    /* the primitive roots are root^e for odd e: take the smallest, a choice every machine agrees on */
    uint64_t best = root, sq = veil_mod_mul(root, root, q), cur = root;
    for (uint64_t e = 3; e < order; e += 2) {
        cur = veil_mod_mul(cur, sq, q);
        if (cur < best) best = cur;
    }
    *out = best;
    return VEIL_OK;
}
