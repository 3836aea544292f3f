/*
 * Negacyclic NTT, portable kernel, and the per-prime tables.
 *
 * Forward: Cooley-Tukey butterflies with the powers of psi in bit-reversed order (Longa-Naehrig 2016,
 * Alg. 1), natural order in, bit-reversed order out. Inverse: Gentleman-Sande (Alg. 2), then 1/n.
 * Both keep values lazily reduced as in Harvey 2014 (Alg. 4): forward in [0, 4q), inverse in [0, 2q),
 * with Shoup multiplications by the precomputed twiddles. Requires q < 2^62.
 */
#include <string.h>
#include "ring/ring_internal.h"

veil_status veil_ntt_tables_init(veil_ntt_tables *t, size_t n, uint64_t q, bool want_simd, bool want_ifma,
                                  veil_error *err);
void veil_ntt_tables_free(veil_ntt_tables *t);

veil_status veil_ntt_tables_init(veil_ntt_tables *t, size_t n, uint64_t q, bool want_simd, bool want_ifma,
                                  veil_error *err)
{
    veil_status st = VEIL_OK;
    memset(t, 0, sizeof *t);
    t->q = q;
    t->n = n;
    while (((size_t)1 << t->log_n) < n) t->log_n++;
    uint64_t psi_inv;
    VEIL_CHECK(veil_primitive_root(&t->psi, q, 2 * (uint64_t)n, err));
    VEIL_CHECK(veil_mod_inv(&psi_inv, t->psi, q, err));
    t->fwd = veil_alloc(n, sizeof(uint64_t));
    t->fwd_shoup = veil_alloc(n, sizeof(uint64_t));
    t->inv = veil_alloc(n, sizeof(uint64_t));
    t->inv_shoup = veil_alloc(n, sizeof(uint64_t));
    if (!t->fwd || !t->fwd_shoup || !t->inv || !t->inv_shoup)
        VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "NTT tables: out of memory for n = %zu", n);
    uint64_t pw = 1, pw_inv = 1;
    for (size_t i = 0; i < n; i++) {
        size_t r = veil_bitrev(i, t->log_n);
        t->fwd[r] = pw;
        t->inv[r] = pw_inv;
        pw = veil_mod_mul(pw, t->psi, q);
        pw_inv = veil_mod_mul(pw_inv, psi_inv, q);
    }
    for (size_t i = 0; i < n; i++) {
        t->fwd_shoup[i] = veil_shoup_precompute(t->fwd[i], q);
        t->inv_shoup[i] = veil_shoup_precompute(t->inv[i], q);
    }
    VEIL_CHECK(veil_mod_inv(&t->n_inv, (uint64_t)n % q, q, err));
    t->n_inv_shoup = veil_shoup_precompute(t->n_inv, q);
    if (want_simd && q < ((uint64_t)1 << VEIL_PRIME_SIMD_MAX_BITS)) {
        const veil_status simd = want_ifma ? veil_ntt_ifma_tables_init(t) : veil_ntt_simd_tables_init(t);
        if (simd != VEIL_OK) VEIL_FAIL(err, simd, "NTT tables: out of memory for the vector kernel's tables");
        t->use_simd = true;
        t->use_ifma = want_ifma;
        /* the vector kernels read only their own tables: drop the scalar ones */
        veil_free(t->fwd);
        veil_free(t->fwd_shoup);
        veil_free(t->inv);
        veil_free(t->inv_shoup);
        t->fwd = t->fwd_shoup = t->inv = t->inv_shoup = NULL;
    }
done:
    if (st != VEIL_OK) veil_ntt_tables_free(t);
    return st;
}

void veil_ntt_tables_free(veil_ntt_tables *t)
{
    veil_free(t->fwd);
    veil_free(t->fwd_shoup);
    veil_free(t->inv);
    veil_free(t->inv_shoup);
    veil_ntt_simd_tables_free(t);
    veil_ntt_ifma_tables_free(t);
    memset(t, 0, sizeof *t);
}

void veil_ntt_forward_scalar(const veil_ntt_tables *tab, uint64_t *a)
{
    const uint64_t q = tab->q, two_q = 2 * q;
    const size_t n = tab->n;
    for (size_t m = 1, t = n >> 1; m < n; m <<= 1, t >>= 1) {
        for (size_t i = 0; i < m; i++) {
            const uint64_t w = tab->fwd[m + i], ws = tab->fwd_shoup[m + i];
            uint64_t *x = a + 2 * i * t, *y = x + t;
            for (size_t j = 0; j < t; j++) {
                /* in: [0, 4q)  out: [0, 4q) */
                uint64_t u = x[j];
                u -= two_q & (0 - (uint64_t)(u >= two_q));
                uint64_t v = veil_mulmod_shoup_lazy(y[j], w, ws, q);
                x[j] = u + v;
                y[j] = u - v + two_q;
            }
        }
    }
    for (size_t j = 0; j < n; j++) {
        uint64_t u = a[j];
        u -= two_q & (0 - (uint64_t)(u >= two_q));
        u -= q & (0 - (uint64_t)(u >= q));
        a[j] = u;
    }
}

void veil_ntt_inverse_scalar(const veil_ntt_tables *tab, uint64_t *a)
{
    const uint64_t q = tab->q, two_q = 2 * q;
    const size_t n = tab->n;
    for (size_t m = n >> 1, t = 1; m > 1; m >>= 1, t <<= 1) {
        for (size_t i = 0; i < m; i++) {
            const uint64_t w = tab->inv[m + i], ws = tab->inv_shoup[m + i];
            uint64_t *x = a + 2 * i * t, *y = x + t;
            for (size_t j = 0; j < t; j++) {
                /* in: [0, 2q)  out: [0, 2q) */
                uint64_t u = x[j], v = y[j];
                uint64_t s = u + v;
                s -= two_q & (0 - (uint64_t)(s >= two_q));
                x[j] = s;
                y[j] = veil_mulmod_shoup_lazy(u - v + two_q, w, ws, q);
            }
        }
    }
    /* last stage with the 1/n factor folded in: x' = (u+v)/n, y' = (u-v) * w/n. in: [0, 2q) out: [0, q) */
    const uint64_t wn = veil_mulmod_shoup(tab->inv[1], tab->n_inv, tab->n_inv_shoup, q);
    const uint64_t wns = veil_shoup_precompute(wn, q);
    uint64_t *x = a, *y = a + n / 2;
    for (size_t j = 0; j < n / 2; j++) {
        uint64_t u = x[j], v = y[j];
        x[j] = veil_mulmod_shoup(u + v, tab->n_inv, tab->n_inv_shoup, q);
        y[j] = veil_mulmod_shoup(u - v + two_q, wn, wns, q);
    }
}

void veil_ntt_forward_limb(const veil_ntt_tables *t, uint64_t *a)
{
    if (t->use_ifma) veil_ntt_forward_ifma(t, a);
    else if (t->use_simd) veil_ntt_forward_avx2(t, a);
    else veil_ntt_forward_scalar(t, a);
}

void veil_ntt_inverse_limb(const veil_ntt_tables *t, uint64_t *a)
{
    if (t->use_ifma) veil_ntt_inverse_ifma(t, a);
    else if (t->use_simd) veil_ntt_inverse_avx2(t, a);
    else veil_ntt_inverse_scalar(t, a);
}
