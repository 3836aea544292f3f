/* CRT composition of RNS residues into multiword integers, and the converse (tests, BGV/BFV decoding). */
#include <string.h>
#include "ring/ring_internal.h"

/* acc[0..len] += a[0..len) * w; acc has len+1 words. */
static void mw_addmul(uint64_t *acc, const uint64_t *a, size_t len, uint64_t w)
{
    uint64_t carry = 0;
    for (size_t i = 0; i < len; i++) {
        veil_u128 t = (veil_u128)a[i] * w + acc[i] + carry;
        acc[i] = (uint64_t)t;
        carry = (uint64_t)(t >> 64);
    }
    for (size_t i = len; carry && i <= len; i++) {
        veil_u128 t = (veil_u128)acc[i] + carry;
        acc[i] = (uint64_t)t;
        carry = (uint64_t)(t >> 64);
    }
}

/* a >= b over len words */
static int mw_geq(const uint64_t *a, const uint64_t *b, size_t len)
{
    for (size_t i = len; i-- > 0;)
        if (a[i] != b[i]) return a[i] > b[i];
    return 1;
}

static void mw_sub(uint64_t *a, const uint64_t *b, size_t len)
{
    uint64_t borrow = 0;
    for (size_t i = 0; i < len; i++) {
        uint64_t d = a[i] - b[i] - borrow;
        borrow = (a[i] < b[i]) || (a[i] - b[i] < borrow);
        a[i] = d;
    }
}

static size_t mw_bits(const uint64_t *a, size_t len)
{
    for (size_t i = len; i-- > 0;)
        if (a[i]) {
            size_t b = 64 * i;
            for (uint64_t v = a[i]; v; v >>= 1) b++;
            return b;
        }
    return 0;
}

/* prod = product of the primes of base except `skip` (skip >= count: all of them); len = count+1 words. */
static void mw_product(uint64_t *prod, const veil_poly *p, size_t skip, size_t len)
{
    memset(prod, 0, len * sizeof *prod);
    prod[0] = 1;
    uint64_t tmp[VEIL_RING_MAX_PRIMES + 1];
    for (size_t i = 0; i < p->count; i++) {
        if (i == skip) continue;
        memset(tmp, 0, len * sizeof *tmp);
        mw_addmul(tmp, prod, len - 1, p->ring->primes[p->base[i]]);
        memcpy(prod, tmp, len * sizeof *tmp);
    }
}

veil_status veil_poly_crt_compose(uint64_t *out, size_t words, const veil_poly *poly, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(poly, err);
    if (poly->form != VEIL_FORM_COEFF)
        return veil_fail(err, VEIL_ERR_MISMATCH, "veil_poly_crt_compose: the polynomial must be in coefficient form");
    const size_t k = poly->count, len = k + 1, n = poly->ring->n;
    uint64_t q_all[VEIL_RING_MAX_PRIMES + 1];
    mw_product(q_all, poly, k, len);
    const size_t need = (mw_bits(q_all, len) + 63) / 64;
    if (words < need)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_poly_crt_compose: %zu words cannot hold Q (%zu needed)", words,
                         need);
    veil_status st = VEIL_OK;
    uint64_t *hat = veil_alloc(k * len, sizeof(uint64_t)); /* Q / q_i */
    uint64_t inv_hat[VEIL_RING_MAX_PRIMES], inv_hat_shoup[VEIL_RING_MAX_PRIMES];
    if (!hat) return veil_fail(err, VEIL_ERR_NO_MEMORY, "veil_poly_crt_compose: out of memory");
    for (size_t i = 0; i < k; i++) {
        const uint64_t q = poly->ring->primes[poly->base[i]];
        mw_product(hat + i * len, poly, i, len);
        uint64_t r = 1;
        for (size_t j = 0; j < k; j++)
            if (j != i) r = veil_mod_mul(r, poly->ring->primes[poly->base[j]] % q, q);
        VEIL_CHECK(veil_mod_inv(&inv_hat[i], r, q, err));
        inv_hat_shoup[i] = veil_shoup_precompute(inv_hat[i], q);
    }
    uint64_t acc[VEIL_RING_MAX_PRIMES + 2];
    for (size_t j = 0; j < n; j++) {
        /* x = sum_i [x_i * (Q/q_i)^-1]_{q_i} * (Q/q_i), which is below k*Q: subtract Q until below Q */
        memset(acc, 0, sizeof acc);
        for (size_t i = 0; i < k; i++) {
            const uint64_t q = poly->ring->primes[poly->base[i]];
            uint64_t y = veil_mulmod_shoup(veil_poly_limb_ptr(poly, i)[j], inv_hat[i], inv_hat_shoup[i], q);
            mw_addmul(acc, hat + i * len, len, y);
        }
        while (mw_geq(acc, q_all, len)) mw_sub(acc, q_all, len);
        uint64_t *dst = out + j * words;
        memset(dst, 0, words * sizeof *dst);
        memcpy(dst, acc, (need < len ? need : len) * sizeof *dst);
    }
done:
    veil_free(hat);
    return st;
}

veil_status veil_poly_set_multiword(veil_poly *poly, const uint64_t *in, size_t words, veil_error *err)
{
    VEIL_REQUIRE(poly, err);
    VEIL_REQUIRE(in, err);
    if (words == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_poly_set_multiword: zero words per coefficient");
    const size_t n = poly->ring->n;
    for (size_t l = 0; l < poly->count; l++) {
        const veil_modulus *m = &poly->ring->mod[poly->base[l]];
        uint64_t *x = veil_poly_limb_ptr(poly, l);
        for (size_t j = 0; j < n; j++) {
            const uint64_t *w = in + j * words;
            uint64_t r = 0;
            for (size_t i = words; i-- > 0;) r = veil_reduce128(m, ((veil_u128)r << 64) | w[i]); /* Horner in 2^64 */
            x[j] = r;
        }
    }
    poly->form = VEIL_FORM_COEFF;
    return VEIL_OK;
}
