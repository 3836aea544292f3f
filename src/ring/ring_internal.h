/* Internal definitions of the ring layer, shared with the layers above it (never installed). */
#ifndef VEIL_RING_INTERNAL_H
#define VEIL_RING_INTERNAL_H

#include <stdbool.h>
#include "veil/ring.h"
#include "core/core_internal.h"
#include "ring/modarith.h"

/* A thread-safe cache of large blocks (src/ring/pool.c). */
typedef struct veil_pool veil_pool;
veil_pool *veil_pool_new(void);
void veil_pool_free(veil_pool *pool);
/* A block of `bytes` (64-byte aligned; all zero when zeroed), from the cache when one fits. */
void *veil_pool_get(veil_pool *pool, size_t bytes, bool zeroed);
/* The same, or a cached block of up to 1.5 times `bytes` when none has the size (its first `bytes` zero when
 * zeroed); *got: the block's size, which veil_pool_put takes back. (A layer's outputs then reuse the larger
 * blocks the level before it freed, instead of fresh pages.) */
void *veil_pool_get_fit(veil_pool *pool, size_t bytes, bool zeroed, size_t *got);
/* Returns a block to the cache (or to the system when the cache is full). zeroed: it is all zero bytes;
 * otherwise it must hold nothing secret. */
void veil_pool_put(veil_pool *pool, void *ptr, size_t bytes, bool zeroed);
/* Gives the cached blocks of at least min_bytes back to the system (a phase done with sizes no later one asks
 * for: the bootstrapping DFTs' polynomials over Q P, before EvalMod). */
void veil_pool_release(veil_pool *pool, size_t min_bytes);
/*
 * bytes rounded up to a quarter of its power of two (at most 25% more): scratch whose size follows the
 * level asks for these sizes, so that the cache serves neighbouring levels instead of missing at each.
 */
size_t veil_pool_block_bytes(size_t bytes);

/* Precomputed tables of one prime's NTT. */
typedef struct veil_ntt_tables {
    uint64_t q;
    size_t n;
    unsigned log_n;
    uint64_t psi;           /* primitive 2n-th root of unity used by this table */
    /* Scalar (Harvey) tables: root powers in bit-reversed order with their Shoup quotients (NULL when the
     * prime uses the AVX2 kernel, which has tables of its own). */
    uint64_t *fwd, *fwd_shoup; /* fwd[i] = psi^brv(i), i in [0, n) */
    uint64_t *inv, *inv_shoup; /* inv[i] = psi^-(brv(i)), i in [0, n) */
    uint64_t n_inv, n_inv_shoup;
    /* AVX2 tables (NULL when this prime does not use the AVX2 kernel); layout private to ntt_avx2.c. */
    double *simd_fwd, *simd_inv;
    /* AVX-512 IFMA tables (NULL unless use_ifma); layout private to ntt_ifma.c. */
    uint64_t *ifma_fwd, *ifma_inv;
    bool use_simd; /* a prime below 2^50 in a ring with the vector kernels: AVX2, or IFMA when use_ifma */
    bool use_ifma; /* the NTT runs the AVX-512 IFMA kernel (use_simd is then true as well) */
} veil_ntt_tables;

struct veil_ring {
    size_t n;
    unsigned log_n;
    size_t count;
    int threads;
    veil_kernel kernel; /* what the NTT actually runs: SCALAR or AVX2 (AVX2 also when the IFMA kernels run) */
    bool ifma;          /* AVX2 and the CPU has AVX-512 IFMA (not disabled by VEIL_NO_AVX512=1): the IFMA kernels
                         * (the NTT and products of every prime below 2^50, and the dense layers' sums) */
    uint64_t primes[VEIL_RING_MAX_PRIMES];
    veil_modulus mod[VEIL_RING_MAX_PRIMES];
    veil_ntt_tables ntt[VEIL_RING_MAX_PRIMES];
    uint32_t *bitrev; /* bitrev[j] = brv(j) over log_n bits, j < n */
    veil_pool *pool;  /* memory of polynomials and scratch over this ring (mutable, thread-safe) */
};

struct veil_poly {
    const veil_ring *ring;
    size_t count;               /* number of limbs */
    veil_form form;
    size_t base[VEIL_RING_MAX_PRIMES]; /* ring index of each limb's prime */
    uint64_t *data;             /* count * n residues, limb after limb, 64-byte aligned */
    size_t block_bytes;         /* the size of data's block (at least count * n words; the pool's) */
};

static inline uint64_t *veil_poly_limb_ptr(const veil_poly *p, size_t limb)
{
    return p->data + limb * p->ring->n;
}

/* NTT kernels on one limb, no argument checks. in/out [0, q). */
void veil_ntt_forward_limb(const veil_ntt_tables *t, uint64_t *a);
void veil_ntt_inverse_limb(const veil_ntt_tables *t, uint64_t *a);
void veil_ntt_forward_scalar(const veil_ntt_tables *t, uint64_t *a);
void veil_ntt_inverse_scalar(const veil_ntt_tables *t, uint64_t *a);

/* AVX2 kernels (ntt_avx2.c, compiled with -mavx2 -mfma; only call when veil_cpu_has_avx2()). */
bool veil_cpu_has_avx2(void);
veil_status veil_ntt_simd_tables_init(veil_ntt_tables *t);
void veil_ntt_simd_tables_free(veil_ntt_tables *t);
void veil_ntt_forward_avx2(const veil_ntt_tables *t, uint64_t *a);
void veil_ntt_inverse_avx2(const veil_ntt_tables *t, uint64_t *a);
/* out[i] = a[i] * b[i] mod q for q < 2^50 (AVX2); in/out [0, q). */
void veil_mul_avx2(uint64_t *out, const uint64_t *a, const uint64_t *b, size_t n, uint64_t q);
/* out[i] = out[i] + a[i] * b[i] mod q for q < 2^50 (AVX2); in/out [0, q). */
void veil_mul_acc_avx2(uint64_t *out, const uint64_t *a, const uint64_t *b, size_t n, uint64_t q);
/* out[i] = a[i] * w mod q, and out[i] = (x[i] - d[i]) * w mod q, for q < 2^50, w < q (AVX2). */
void veil_mul_const_avx2(uint64_t *out, const uint64_t *a, size_t n, uint64_t q, uint64_t w);
void veil_sub_mul_const_avx2(uint64_t *out, const uint64_t *x, const uint64_t *d, size_t n, uint64_t q, uint64_t w);
/*
 * out[t] = sum_i y[i*stride + t] * w_i mod q for t < n, all moduli below 2^50 (AVX2): w_i given balanced
 * (|w_i| <= q/2, as doubles) with wq_i = w_i / q. y values must be below 2^50. Output in [0, q).
 */
void veil_dot_const_avx2(uint64_t *out, const uint64_t *y, size_t stride, size_t terms, const double *w,
                         const double *wq, size_t n, uint64_t q);
/* out[t] = sum_i y[i][t] * w_i mod q: as veil_dot_const_avx2 with the terms given by pointers. */
void veil_dot_ptrs_avx2(uint64_t *out, const uint64_t *const *y, size_t terms, const double *w, const double *wq,
                        size_t n, uint64_t q);
/*
 * AVX-512 IFMA kernels (dot_ifma.c, compiled with -mavx512f -mavx512ifma; only call when veil_cpu_has_ifma()).
 * veil_dot_ptrs_ifma: sum_i y[i][t] * w[i] = hi_out[t] * 2^52 + lo_out[t] exactly (reduce it afterwards), for
 * y[i][t] and w[i] below 2^52 and at most 4096 terms; any n.
 */
bool veil_cpu_has_ifma(void);
/* ntt_ifma.c (compiled with -mavx512f -mavx512ifma): the NTT and pointwise products for q < 2^50. The tables are
 * built from the scalar ones (before those are dropped). in/out [0, q). */
veil_status veil_ntt_ifma_tables_init(veil_ntt_tables *t);
void veil_ntt_ifma_tables_free(veil_ntt_tables *t);
void veil_ntt_forward_ifma(const veil_ntt_tables *t, uint64_t *a);
void veil_ntt_inverse_ifma(const veil_ntt_tables *t, uint64_t *a);
void veil_mul_ifma(uint64_t *out, const uint64_t *a, const uint64_t *b, size_t n, uint64_t q);
void veil_mul_acc_ifma(uint64_t *out, const uint64_t *a, const uint64_t *b, size_t n, uint64_t q);
/* As veil_mul_const_avx2, veil_sub_mul_const_avx2 and veil_center_reduce_avx2 (q, q_from < 2^50), with IFMA. */
void veil_mul_const_ifma(uint64_t *out, const uint64_t *a, size_t n, uint64_t q, uint64_t w);
void veil_sub_mul_const_ifma(uint64_t *out, const uint64_t *x, const uint64_t *d, size_t n, uint64_t q, uint64_t w);
void veil_center_reduce_ifma(uint64_t *out, const uint64_t *v, size_t n, uint64_t q_from, uint64_t q);
/* out[t] = sum_i y[i*stride + t] * w[i] mod q (base conversion), y and w below 2^50, terms <= 16. */
#define VEIL_DOT_IFMA_MAX_TERMS 16
void veil_dot_const_ifma(uint64_t *out, const uint64_t *y, size_t stride, size_t terms, const uint64_t *w, size_t n,
                         uint64_t q);
/* op > 0: out = a + b; op <= 0: out = a - b, or -a when b is NULL; mod q < 2^63, in/out [0, q). AVX-512F, called at
 * the IFMA level (ring->ifma). */
void veil_add_sub_avx512(uint64_t *out, const uint64_t *a, const uint64_t *b, size_t n, uint64_t q, int op);
void veil_dot_ptrs_ifma(uint64_t *lo_out, uint64_t *hi_out, const uint64_t *const *y, size_t terms,
                        const uint64_t *w, size_t n);
/*
 * A group of `members` outputs of a layer that read the same `terms` inputs (dot_ifma.c, IFMA level):
 * out[t][c] = sum_k in[k][c] * w[k * members + t] mod q for c < len (a multiple of 8), the inputs and weights
 * residues below q < 2^50; four outputs at a time, their sums over sixteen coefficients in registers, exact (the
 * 52-bit halves of the products summed, at most VEIL_LAYER_GROUP_MAX_TERMS at a time), one reduction per output
 * coefficient. Out [0, q): the same residues as every other kernel.
 */
#define VEIL_LAYER_GROUP_MAX_TERMS 1024
void veil_layer_group_ifma(uint64_t *const *out, size_t members, const uint64_t *const *in, size_t terms,
                           const uint64_t *w, size_t len, uint64_t q);
/* One coefficient block of a sparse layer, input-major (see ntt_avx2.c); len <= 256, a multiple of 4. */
void veil_layer_block_avx2(double *acc, uint32_t *counts, uint64_t *const *out, const uint64_t *const *in,
                           size_t in_count, size_t out_count, const size_t *col_start, const size_t *col_row,
                           const double *w, const double *wq, size_t len, uint64_t q);
/* out[i] = (the centered representative of v[i] modulo q_from) mod q, for q, q_from < 2^50 (AVX2). */
void veil_center_reduce_avx2(uint64_t *out, const uint64_t *v, size_t n, uint64_t q_from, uint64_t q);

/* Bit reversal of the low `bits` bits of x. */
static inline size_t veil_bitrev(size_t x, unsigned bits)
{
    size_t r = 0;
    for (unsigned i = 0; i < bits; i++) {
        r = (r << 1) | (x & 1);
        x >>= 1;
    }
    return r;
}

/*
 * Base conversion to the centered representative: out = x' with x' = x mod B and |x'| <= B/2 (the
 * approximate conversion's error u*B removed by computing u in double precision; only when x mod B lies
 * within (k^2 + 4) * 2^-53 * B of B/2, k = |B|, may x' be the other of x, x - B). Coefficient form.
 */
veil_status veil_base_conv_apply_centered(const veil_base_conv *conv, veil_poly *out, const veil_poly *in,
                                          veil_error *err);

/* One limb of a pointwise product modulo the ring's prime `prime`: out = a*b, or out += a*b. */
void veil_limb_mul(const veil_ring *r, size_t prime, uint64_t *out, const uint64_t *a, const uint64_t *b,
                   bool accumulate);

/*
 * A polynomial header over caller-owned memory (count * n residues), for scratch space inside one
 * operation: no allocation, nothing to free. The caller keeps data alive while the view is used.
 */
void veil_poly_view(veil_poly *view, const veil_ring *ring, const size_t *base, size_t count, veil_form form,
                    uint64_t *data);

/* The slot permutation of X -> X^k in evaluation form: sigma_k(a)[j] = a[perm[j]]. k odd, below 2n. */
void veil_automorphism_permutation(uint32_t *perm, const veil_ring *r, uint64_t k);
/* out[j] = in[perm[j]] for j < n, perm from veil_automorphism_permutation (each aligned block of eight outputs
 * reads one aligned block of eight inputs: one load and one lane permute per block at the IFMA level). */
void veil_permute_slots(const veil_ring *r, uint64_t *out, const uint64_t *in, const uint32_t *perm);
/* ntt_ifma.c (AVX-512F): veil_permute_slots' vector body, n a multiple of 8. */
void veil_permute_blocks_avx512(uint64_t *out, const uint64_t *in, const uint32_t *perm, size_t n);

/* Argument checks shared by the poly operations: same ring and base; and also the same form. */
veil_status veil_poly_check_base(const veil_poly *a, const veil_poly *b, const char *op, veil_error *err);
veil_status veil_poly_check_same(const veil_poly *a, const veil_poly *b, const char *op, veil_error *err);

#endif
