/*
 * The homomorphic DFTs of CKKS bootstrapping (Bossuat, Mouchet, Troncoso-Pastoriza, Hubaux, Eurocrypt 2021,
 * section 5; Chen, Chillotti, Song, Eurocrypt 2019). The encoder's decoding map is a special FFT of length
 * n = slots: a bit reversal followed by log2(n) butterfly stages. Stage s (butterflies of half h = 2^(s-1))
 * is a matrix with three nonzero diagonals, at offsets 0, +h and -h slots. CoeffToSlot applies the inverse
 * stages from the largest down, SlotToCoeff the stages from the smallest up; both leave the bit reversal
 * out (the coefficients sit in bit-reversed slots in between, where EvalMod acts slot by slot and does not
 * care). A few consecutive stages are multiplied into one matrix, one level each: r stages whose smallest
 * half is u have at most 2^(r+1) - 1 diagonals, at multiples of u, evaluated by baby-step giant-step.
 */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "circuits/circuits_internal.h"

#define DIAG_MIN_RUN 16   /* shorter runs of equal evaluations: the diagonal is stored whole */
#define DIAG_BLOCK 256    /* coefficients per call of the IFMA dot product */
#define DIAG_MAX_TERMS 64 /* diagonals summed per giant step: the baby step, at most 64 (n_diags <= 4096) */

/* A matrix over the slots' cyclic vector of length ns in diagonal form: d[k] is the diagonal at offset k u. */
typedef struct diag_matrix {
    size_t ns, unit, m; /* m = ns / unit offsets */
    double complex **d; /* m entries, NULL where zero, each ns values */
} diag_matrix;

static void matrix_free(diag_matrix *a)
{
    for (size_t k = 0; a->d && k < a->m; k++) free(a->d[k]);
    free(a->d);
    a->d = NULL;
}

static bool matrix_init(diag_matrix *a, size_t ns, size_t unit)
{
    a->ns = ns;
    a->unit = unit;
    a->m = ns / unit;
    a->d = calloc(a->m, sizeof *a->d);
    return a->d != NULL;
}

/*
 * The three diagonals of stage `half` (offsets 0, +half, -half): forward out[a] = x[a] + w_j x[b],
 * out[b] = x[a] - w_j x[b]; inverse out[a] = (x[a] + x[b]) / 2, out[b] = (x[a] - x[b]) conj(w_j) / 2, for the
 * butterfly pairs a = i + j, b = a + half, with w_j = exp(2 pi i 5^j / (8 half)) as in the encoder's special FFT.
 */
static veil_status stage_diagonals(double complex *d0, double complex *dp, double complex *dm, size_t ns, size_t half,
                                   bool inverse, veil_error *err)
{
    const double pi = 3.14159265358979323846264338327950288;
    const uint64_t order = 8 * (uint64_t)half;
    double complex *w = malloc(half * sizeof *w);
    if (!w) return veil_fail(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory building the DFT");
    for (size_t j = 0, g = 1; j < half; j++, g = g * 5 % order) w[j] = cexp(2.0 * pi * I * (double)g / (double)order);
    for (size_t t = 0; t < ns; t++) {
        const size_t j = t % (2 * half);
        const bool first = j < half;
        const double complex wj = w[first ? j : j - half];
        if (!inverse) {
            d0[t] = first ? 1.0 : -wj;
            dp[t] = first ? wj : 0.0;
            dm[t] = first ? 0.0 : 1.0;
        } else {
            d0[t] = first ? 0.5 : -conj(wj) / 2;
            dp[t] = first ? 0.5 : 0.0;
            dm[t] = first ? 0.0 : conj(wj) / 2;
        }
    }
    free(w);
    return VEIL_OK;
}

/*
 * a <- S a for the stage S of half `half`: (S A x)[t] = sum_o S_o[t] (A x)[t + o], so the diagonal of A at
 * offset d contributes S_o[t] A_d[t + o] to the diagonal at offset d + o.
 */
static veil_status compose_stage(diag_matrix *a, size_t half, bool inverse, veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t ns = a->ns, m = a->m;
    double complex *sd[3] = {NULL, NULL, NULL};
    diag_matrix r = {0};
    for (int i = 0; i < 3; i++) sd[i] = malloc(ns * sizeof *sd[i]);
    if (!sd[0] || !sd[1] || !sd[2] || !matrix_init(&r, ns, a->unit))
        VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory building the DFT");
    VEIL_CHECK(stage_diagonals(sd[0], sd[1], sd[2], ns, half, inverse, err));
    const size_t offs[3] = {0, half % ns, (ns - half) % ns};
    for (size_t d = 0; d < m; d++) {
        if (!a->d[d]) continue;
        for (int i = 0; i < 3; i++) {
            const size_t k = (d + offs[i] / a->unit) % m;
            if (!r.d[k] && !(r.d[k] = calloc(ns, sizeof *r.d[k])))
                VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory building the DFT");
            for (size_t t = 0; t < ns; t++) r.d[k][t] += sd[i][t] * a->d[d][(t + offs[i]) % ns];
        }
    }
    matrix_free(a);
    *a = r;
    r.d = NULL;
done:
    matrix_free(&r);
    for (int i = 0; i < 3; i++) free(sd[i]);
    return st;
}

/*
 * The stages of DFT level `index` of `count`, s = first + 1 .. first + len. SlotToCoeff's level i takes the
 * i-th run of stages from the smallest; CoeffToSlot's level i the same run as SlotToCoeff's level
 * count - 1 - i, inverted: the two transforms then use the same rotations, hence the same keys.
 */
static void level_stages(size_t *first, size_t *len, size_t stages, size_t count, size_t index)
{
    *first = index * stages / count;
    *len = (index + 1) * stages / count - *first;
}

/* The matrix of one DFT level: the product of its stages (in the order applied), times factor. */
static veil_status level_matrix(diag_matrix *a, size_t ns, size_t stages, size_t count, size_t index, bool inverse,
                                double complex factor, veil_error *err)
{
    veil_status st = VEIL_OK;
    size_t first, len;
    level_stages(&first, &len, stages, count, inverse ? count - 1 - index : index);
    /* the smallest butterflies of the run set the unit of its diagonals */
    const size_t unit = len ? (size_t)1 << first : 1;
    if (!matrix_init(a, ns, unit) || !(a->d[0] = malloc(ns * sizeof *a->d[0])))
        VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory building the DFT");
    for (size_t t = 0; t < ns; t++) a->d[0][t] = factor;
    /* inverse: the largest stage of the run first; forward: the smallest first */
    for (size_t k = 0; k < len; k++) {
        const size_t s = inverse ? first + len - k : first + 1 + k;
        VEIL_CHECK(compose_stage(a, (size_t)1 << (s - 1), inverse, err));
    }
done:
    return st;
}

/*
 * The window of offsets: the nonzero diagonals at signed offsets -shift .. hi (in units), stored from index
 * 0; when that window covers every offset, no shift (indices 0 .. m - 1).
 */
static void offset_window(const diag_matrix *a, long *shift, size_t *n_diags)
{
    long lo = 0, hi = 0;
    const long m = (long)a->m;
    for (long k = 0; k < m; k++) {
        if (!a->d[k]) continue;
        const long o = k <= m / 2 ? k : k - m;
        if (o < lo) lo = o;
        if (o > hi) hi = o;
    }
    if (hi - lo + 1 >= m) {
        *shift = 0;
        *n_diags = (size_t)m;
        /* the last nonzero index bounds the count */
        while (*n_diags > 1 && !a->d[*n_diags - 1]) (*n_diags)--;
        return;
    }
    *shift = -lo;
    *n_diags = (size_t)(hi - lo + 1);
}

/* The least period p (a power of two dividing n) of the values: v[t] = v[t mod p] for every t. */
static size_t value_period(const double *re, const double *im, size_t n)
{
    size_t p = 1;
    for (; p < n; p *= 2) {
        bool periodic = true;
        for (size_t t = p; t < n && periodic; t++) periodic = re[t] == re[t % p] && im[t] == im[t % p];
        if (periodic) break;
    }
    return p;
}

static void diag_free(veil_boot_diag *d)
{
    if (!d) return;
    veil_free(d->v);
    free(d->re);
    free(d->im);
    free(d);
}

/*
 * The limbs (`limbs` of n: those of Q_level then P) of the encoded diagonal m as a diagonal with runs of `run`;
 * run 1: its slot values re, im.
 */
static veil_status compact_diagonal(veil_boot_diag **out, const veil_poly *m, const double *re, const double *im,
                                    size_t limbs, size_t n, size_t run, veil_error *err)
{
    /* the runs are a property of the encoding's evaluation order: checked, a full diagonal otherwise */
    for (size_t j = 0; j < limbs && run > 1; j++) {
        const uint64_t *l = veil_poly_limb_ptr(m, j);
        for (size_t i = 0; i < n && run > 1; i++)
            if (l[i] != l[i - i % run]) run = 1;
    }
    const size_t per = n / run;
    veil_boot_diag *d = calloc(1, sizeof *d);
    if (d && run > 1) d->v = veil_alloc_scratch(limbs * per, sizeof *d->v);
    if (d && run == 1) {
        d->re = malloc(n / 2 * sizeof *d->re);
        d->im = malloc(n / 2 * sizeof *d->im);
    }
    if (!d || (run > 1 && !d->v) || (run == 1 && (!d->re || !d->im))) {
        diag_free(d);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory for the DFT's diagonals");
    }
    d->run = run;
    if (run == 1) { /* kept as slot values, encoded when used */
        memcpy(d->re, re, n / 2 * sizeof *re);
        memcpy(d->im, im, n / 2 * sizeof *im);
    }
    for (size_t j = 0; run > 1 && j < limbs; j++) {
        const uint64_t *l = veil_poly_limb_ptr(m, j);
        for (size_t i = 0; i < per; i++) d->v[j * per + i] = l[i * run];
    }
    *out = d;
    return VEIL_OK;
}

/*
 * Encodes diagonal k of a level (offset (k - shift) unit), pre-rotated by its giant step, at the level's prime,
 * over Q_level P (m: double hoisting sums the products over the extended basis); with masks (NULL: none), into
 * *out: out-mask at the output slot, in-mask at the slot the rotation reads.
 */
static veil_status encode_diagonal(const veil_ckks_encoder *enc, veil_boot_dft_level *lv, const diag_matrix *a,
                                   size_t k, const veil_boot_dft_mask *mask, const double complex *in_mask,
                                   veil_boot_diag **out, double *re, double *im, veil_poly *m, veil_error *err)
{
    const size_t n = enc->slots, ns = a->ns, mm = a->m;
    const size_t idx = (size_t)(((long)k - lv->shift) % (long)mm + (long)mm) % mm;
    if (!a->d[idx]) return VEIL_OK;
    veil_status st = VEIL_OK;
    const size_t shift = ((k - k % lv->baby) * a->unit) % n;
    const size_t period = mask ? mask->period : 1;
    const long offset = ((long)k - lv->shift) * (long)a->unit; /* the rotation this diagonal multiplies */
    const size_t in_shift = (size_t)(offset % (long)period + (long)period) % period;
    for (size_t t = 0; t < n; t++) {
        const size_t u = (t + n - shift) % n; /* the slot of the unrotated diagonal */
        double complex v = a->d[idx][u % ns];
        if (mask && mask->out) v *= mask->out[u % period];
        if (in_mask) v *= in_mask[(u + in_shift) % period];
        re[t] = creal(v);
        im[t] = cimag(v);
    }
    const double scale = (double)enc->ctx->ring->primes[lv->level] * lv->ratio;
    VEIL_CHECK(veil_ckks_encode_poly(enc, m, re, im, n, scale, lv->level, err));
    lv->diag_scale = scale;
    lv->encode_scale = scale;
    /* period p slots: runs of N / 2p = n / p evaluations; short runs are stored whole (the kernels' blocks) */
    const size_t run = n / value_period(re, im, n);
    VEIL_CHECK(compact_diagonal(out, m, re, im, veil_poly_limb_count(m), 2 * n, run >= DIAG_MIN_RUN ? run : 1, err));
done:
    return st;
}

/*
 * The rotations a level uses: the baby steps (i - shift) unit (the window's shift folded into them: rotating x
 * by -shift unit first would cost a key switching of its own) and the giant steps j baby unit.
 */
static veil_status level_steps(veil_boot_dft_level *lv, veil_error *err)
{
    const size_t b = lv->baby, groups = (lv->n_diags + b - 1) / b;
    lv->steps = calloc(b + groups + 1, sizeof *lv->steps);
    if (!lv->steps) return veil_fail(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
    size_t c = 0;
    for (size_t i = 0; i < b; i++) {
        bool used = false;
        for (size_t k = i; k < lv->n_diags && !used; k += b) used = lv->diags[k] != NULL;
        if (used && (long)i != lv->shift) lv->steps[c++] = ((long)i - lv->shift) * lv->unit;
    }
    for (size_t j = 1; j < groups; j++) {
        bool used = false;
        for (size_t i = 0; i < b && j * b + i < lv->n_diags && !used; i++) used = lv->diags[j * b + i] != NULL;
        if (used) lv->steps[c++] = (long)(j * b) * lv->unit;
    }
    lv->step_count = c;
    return VEIL_OK;
}

static veil_status build_level(veil_boot_dft_level *lv, const veil_ckks_encoder *enc, size_t ns, size_t stages,
                               size_t count, size_t index, bool inverse, double complex factor, size_t level,
                               const veil_boot_dft_mask *mask, veil_error *err)
{
    veil_status st = VEIL_OK;
    diag_matrix a = {0};
    veil_poly *m = NULL;
    size_t qp[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t qp_count = veil_context_qp_base(enc->ctx, level, qp);
    double *re = malloc(enc->slots * sizeof *re), *im = malloc(enc->slots * sizeof *im);
    if (!re || !im) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory building the DFT");
    VEIL_CHECK(veil_poly_new(&m, enc->ctx->ring, qp, qp_count, VEIL_FORM_EVAL, err));
    VEIL_CHECK(level_matrix(&a, ns, stages, count, index, inverse, factor, err));
    offset_window(&a, &lv->shift, &lv->n_diags);
    lv->unit = (long)a.unit;
    lv->level = level;
    lv->baby = veil_ckks_linear_transform_baby(lv->n_diags);
    lv->diags = calloc(lv->n_diags, sizeof *lv->diags);
    if (!lv->diags) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory building the DFT");
    if (mask && mask->in[1] && !(lv->diags2 = calloc(lv->n_diags, sizeof *lv->diags2)))
        VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory building the DFT");
    for (size_t k = 0; k < lv->n_diags; k++) {
        VEIL_CHECK(encode_diagonal(enc, lv, &a, k, mask, mask ? mask->in[0] : NULL, &lv->diags[k], re, im, m, err));
        if (lv->diags2)
            VEIL_CHECK(encode_diagonal(enc, lv, &a, k, mask, mask->in[1], &lv->diags2[k], re, im, m, err));
    }
    VEIL_CHECK(level_steps(lv, err));
done:
    veil_poly_free(m);
    matrix_free(&a);
    free(re);
    free(im);
    return st;
}

veil_status veil_boot_dft_build(veil_boot_dft_level *levels, size_t count, const veil_ckks_encoder *enc, size_t slots,
                                bool inverse, double complex factor, size_t top_level, double ratio,
                                size_t ratio_index, const veil_boot_dft_mask *mask, veil_error *err)
{
    VEIL_REQUIRE(levels, err);
    VEIL_REQUIRE(enc, err);
    if (count == 0 || count > VEIL_BOOT_MAX_DFT_LEVELS || count > top_level + 1)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "bootstrap: %zu DFT levels (1..%d, at most the levels there are)",
                         count, VEIL_BOOT_MAX_DFT_LEVELS);
    veil_status st = VEIL_OK;
    size_t stages = 0;
    while (((size_t)1 << stages) < slots) stages++;
    memset(levels, 0, count * sizeof *levels);
    for (size_t i = 0; i < count; i++) {
        levels[i].ratio = i == ratio_index ? ratio : 1.0;
        VEIL_CHECK(build_level(&levels[i], enc, slots, stages, count, i, inverse, i == 0 ? factor : 1.0,
                               top_level - i, mask && mask->level == i ? mask : NULL, err));
    }
done:
    if (st != VEIL_OK) veil_boot_dft_free(levels, count);
    return st;
}

void veil_boot_dft_free(veil_boot_dft_level *levels, size_t count)
{
    for (size_t i = 0; levels && i < count; i++) {
        for (size_t k = 0; levels[i].diags && k < levels[i].n_diags; k++) diag_free(levels[i].diags[k]);
        for (size_t k = 0; levels[i].diags2 && k < levels[i].n_diags; k++) diag_free(levels[i].diags2[k]);
        free(levels[i].diags);
        free(levels[i].diags2);
        free(levels[i].steps);
        memset(&levels[i], 0, sizeof levels[i]);
    }
}

static const veil_switch_key *key_for(const veil_context *ctx, long steps, const veil_switch_key *const *keys,
                                      size_t count)
{
    const uint64_t g = veil_galois_element_rotation(ctx, steps);
    for (size_t k = 0; k < count; k++)
        if (keys[k] && keys[k]->galois == g) return keys[k];
    return NULL;
}

/*
 * Limb t (prime `prime` of the ring) of sum_k diags[k] * xs[k] into d: the compact diagonals summed in 128 bits
 * with one reduction per coefficient (IFMA: exact 52-bit products, a weight per block of a run; otherwise a
 * reduction every 32 terms), the whole ones by the ring's product kernel, term by term.
 */
static void diag_limb(const veil_ring *r, uint64_t *d, const veil_poly *const *xs, const veil_boot_diag *const *dg,
                      size_t count, size_t t, size_t prime, bool accumulate)
{
    const size_t n = r->n;
    const veil_modulus *mod = &r->mod[prime];
    const bool ifma =
        r->kernel == VEIL_KERNEL_AVX2 && r->ifma && r->primes[prime] < ((uint64_t)1 << VEIL_PRIME_SIMD_MAX_BITS);
    bool have = accumulate;
    for (size_t k0 = 0; k0 < count; k0 += DIAG_MAX_TERMS) {
        const size_t k1 = k0 + DIAG_MAX_TERMS < count ? k0 + DIAG_MAX_TERMS : count;
        const uint64_t *src[DIAG_MAX_TERMS], *w[DIAG_MAX_TERMS];
        size_t run[DIAG_MAX_TERMS], m = 0, block = DIAG_BLOCK;
        for (size_t k = k0; k < k1; k++) {
            if (dg[k]->run == 1) continue;
            src[m] = veil_poly_limb_ptr(xs[k], t);
            run[m] = dg[k]->run;
            w[m++] = dg[k]->v + t * (n / dg[k]->run);
            if (dg[k]->run < block) block = dg[k]->run;
        }
        for (size_t b0 = 0; m && b0 < n; b0 += block) {
            uint64_t lo[DIAG_BLOCK], hi[DIAG_BLOCK], wb[DIAG_MAX_TERMS];
            const uint64_t *at[DIAG_MAX_TERMS];
            for (size_t k = 0; k < m; k++) {
                wb[k] = w[k][b0 / run[k]];
                at[k] = src[k] + b0;
            }
            if (ifma) {
                veil_dot_ptrs_ifma(lo, hi, at, m, wb, block);
            } else {
                for (size_t i = 0; i < block; i++) {
                    veil_u128 acc = 0;
                    for (size_t k = 0; k < m; k++) {
                        acc += (veil_u128)wb[k] * at[k][i];
                        if (k % 32 == 31) acc = veil_reduce128(mod, acc);
                    }
                    lo[i] = (uint64_t)veil_reduce128(mod, acc);
                    hi[i] = 0;
                }
            }
            for (size_t i = 0; i < block; i++) {
                const uint64_t v = veil_reduce128(mod, ((veil_u128)hi[i] << 52) + lo[i]);
                d[b0 + i] = have ? veil_addmod(d[b0 + i], v, mod->q) : v;
            }
        }
        have = have || m > 0;
        for (size_t k = k0; k < k1; k++) {
            if (dg[k]->run != 1) continue;
            veil_limb_mul(r, prime, d, veil_poly_limb_ptr(xs[k], t), dg[k]->v + t * n, have);
            have = true;
        }
    }
}

/*
 * out[c] <- (or += when accumulate) sum_k diags[k] * xs[c][k] for c = 0, 1, every polynomial over the primes
 * qp[0..qp_count).
 */
static void diag_sum(const veil_ring *r, veil_poly *const *out, const veil_poly *const *const *xs,
                     const veil_boot_diag *const *dg, size_t count, const size_t *qp, size_t qp_count, bool accumulate)
{
    for (size_t c = 0; c < 2; c++) {
        veil_poly *p = out[c];
#pragma omp parallel for num_threads(r->threads) schedule(static)
        for (size_t t = 0; t < qp_count; t++)
            diag_limb(r, veil_poly_limb_ptr(p, t), xs[c], dg, count, t, qp[t], accumulate);
    }
}

/* The key of a rotation by `steps`, or a failure naming it. */
static veil_status need_key(const veil_context *ctx, const veil_switch_key **key, long steps,
                            const veil_switch_key *const *keys, size_t key_count, veil_error *err)
{
    *key = key_for(ctx, steps, keys, key_count);
    if (*key) return VEIL_OK;
    return veil_fail(err, VEIL_ERR_MISMATCH, "bootstrap: no Galois key for a rotation by %ld slots (element %llu)",
                     steps, (unsigned long long)veil_galois_element_rotation(ctx, steps));
}

/*
 * A polynomial over base[0..count) (evaluation form, contents unspecified) on a block of the ring's pool that
 * is not wiped when given back: ciphertext and public-matrix data only (the results moved into a ciphertext
 * are ordinary polynomials). Freed with scratch_free.
 */
static veil_status scratch_new(veil_poly **out, const veil_ring *r, const size_t *base, size_t count, veil_error *err)
{
    const size_t bytes = veil_pool_block_bytes(count * r->n * sizeof(uint64_t));
    veil_poly *p = malloc(sizeof *p);
    uint64_t *data = p ? veil_pool_get(r->pool, bytes, false) : NULL;
    if (!data) {
        free(p);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
    }
    veil_poly_view(p, r, base, count, VEIL_FORM_EVAL, data);
    p->block_bytes = bytes;
    *out = p;
    return VEIL_OK;
}

static void scratch_free(veil_poly *p)
{
    if (!p) return;
    veil_pool_put(p->ring->pool, p->data, p->block_bytes, false);
    free(p);
}

/* The working polynomials of one double-hoisted transform (over Q_l P unless said). */
typedef struct dft_work {
    size_t b, qp_count;
    size_t qp[2 * VEIL_PARAMS_MAX_PRIMES];
    veil_poly **baby[2];                     /* the baby rotations' two polynomials, NULL where unused */
    veil_poly *inner[2], *acc[2], *rotated;  /* a giant step's sum, the running sum, sigma(inner[0]) */
    veil_poly *down, *res[2];                /* over Q_l: inner[1] divided by P; the result */
    veil_poly *encoded;                      /* a whole diagonal, encoded over Q_l P */
    const veil_poly **terms[2];
    const veil_boot_diag **dg;
    veil_keyswitch_raised rx;
} dft_work;

static void work_free(dft_work *w)
{
    for (size_t c = 0; c < 2; c++) {
        for (size_t i = 0; w->baby[c] && i < w->b; i++) scratch_free(w->baby[c][i]);
        free(w->baby[c]);
        scratch_free(w->inner[c]);
        scratch_free(w->acc[c]);
        veil_poly_free(w->res[c]);
        free(w->terms[c]);
    }
    scratch_free(w->encoded);
    free(w->dg);
    scratch_free(w->rotated);
    scratch_free(w->down);
    veil_keyswitch_raised_release(&w->rx);
}

static veil_status work_init(dft_work *w, const veil_context *ctx, size_t b, size_t level, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_ring *r = ctx->ring;
    memset(w, 0, sizeof *w);
    w->b = b;
    w->qp_count = veil_context_qp_base(ctx, level, w->qp);
    for (size_t c = 0; c < 2; c++) {
        w->baby[c] = calloc(b, sizeof *w->baby[c]);
        w->terms[c] = calloc(b, sizeof *w->terms[c]);
        if (!w->baby[c] || !w->terms[c]) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
        VEIL_CHECK(scratch_new(&w->inner[c], r, w->qp, w->qp_count, err));
        VEIL_CHECK(scratch_new(&w->acc[c], r, w->qp, w->qp_count, err));
        VEIL_CHECK(veil_context_poly_new(&w->res[c], ctx, level, VEIL_FORM_EVAL, err));
    }
    w->dg = calloc(b, sizeof *w->dg);
    if (!w->dg) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
    VEIL_CHECK(scratch_new(&w->rotated, r, w->qp, w->qp_count, err));
    VEIL_CHECK(scratch_new(&w->down, r, w->qp, level + 1, err));
done:
    return st;
}

/*
 * The baby rotations rot(x, (i - shift) unit) over Q_l P, before ModDown, from one ModUp of x's c_1:
 * (P sigma(c_0) + u_0, u_1) with u_0 + u_1 s ~= P sigma(c_1) sigma(s); the unrotated one (i = shift) is P x.
 */
static veil_status baby_steps(dft_work *w, const veil_context *ctx, const veil_ckks_ciphertext *x,
                              const veil_boot_dft_level *lv, veil_boot_diag *const *diags,
                              const veil_switch_key *const *keys, size_t key_count, veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t nd = lv->n_diags, b = w->b;
    bool raised = false;
    for (size_t i = 0; i < b; i++) {
        bool used = false;
        for (size_t k = i; k < nd && !used; k += b) used = diags[k] != NULL;
        if (!used) continue;
        for (size_t c = 0; c < 2; c++) /* a second input reuses the first's */
            if (!w->baby[c][i]) VEIL_CHECK(scratch_new(&w->baby[c][i], ctx->ring, w->qp, w->qp_count, err));
        if ((long)i == lv->shift) {
            VEIL_CHECK(veil_keyswitch_add_p_times(ctx, w->baby[0][i], x->el.c[0], 1, false, err));
            VEIL_CHECK(veil_keyswitch_add_p_times(ctx, w->baby[1][i], x->el.c[1], 1, false, err));
            continue;
        }
        const long steps = ((long)i - lv->shift) * lv->unit;
        const veil_switch_key *key = NULL;
        VEIL_CHECK(need_key(ctx, &key, steps, keys, key_count, err));
        if (!raised) VEIL_CHECK(veil_keyswitch_raise(ctx, &w->rx, x->el.c[1], err));
        raised = true;
        const uint64_t g = veil_galois_element_rotation(ctx, steps);
        VEIL_CHECK(veil_keyswitch_raised_product(&w->rx, g, key, w->baby[0][i], w->baby[1][i], false, err));
        VEIL_CHECK(veil_keyswitch_add_p_times(ctx, w->baby[0][i], x->el.c[0], g, true, err));
    }
done:
    veil_keyswitch_raised_release(&w->rx);
    return st;
}

/*
 * acc (+)= sum_k diags[k] * rot(x, (k - shift) unit) over Q_l P, before ModDown, by baby-step giant-step with
 * double hoisting (Bossuat, Troncoso-Pastoriza, Hubaux, Eurocrypt 2021, sections 4-5), k = j baby + i: the baby
 * rotations from one ModUp and kept over Q_l P (no ModDown each); each giant step's diagonals (encoded over
 * Q_l P) summed there in one pass, then rotated by j baby unit over Q_l P (one ModDown of its c_1, a ModUp and
 * the key's product). *have: whether w->acc holds a sum already. x is size 2 at the level's level.
 */
static veil_status dft_accumulate(const veil_ckks_encoder *enc, dft_work *w, bool *have, const veil_ckks_ciphertext *x,
                                  const veil_boot_dft_level *lv, veil_boot_diag *const *diags,
                                  const veil_switch_key *const *keys, size_t key_count, veil_error *err)
{
    const veil_context *ctx = enc->ctx;
    veil_status st = VEIL_OK;
    const size_t nd = lv->n_diags, b = w->b, groups = (nd + b - 1) / b, level = x->el.level;
    VEIL_CHECK(baby_steps(w, ctx, x, lv, diags, keys, key_count, err));
    for (size_t j = 0; j < groups; j++) {
        size_t count = 0;
        bool started = false;
        for (size_t i = 0; i < b && j * b + i < nd; i++) { /* the compact diagonals, in one pass */
            const veil_boot_diag *d = diags[j * b + i];
            if (!d || !d->v) continue;
            w->terms[0][count] = w->baby[0][i];
            w->terms[1][count] = w->baby[1][i];
            w->dg[count++] = d;
        }
        if (count) {
            diag_sum(ctx->ring, w->inner, (const veil_poly *const *const *)w->terms, w->dg, count, w->qp, w->qp_count,
                     false);
            started = true;
        }
        for (size_t i = 0; i < b && j * b + i < nd; i++) {
            /* a whole diagonal: encoded now, at the level's scale, over Q_l P, one at a time (one buffer) */
            const veil_boot_diag *d = diags[j * b + i];
            if (!d || d->v) continue;
            if (!w->encoded) VEIL_CHECK(scratch_new(&w->encoded, ctx->ring, w->qp, w->qp_count, err));
            VEIL_CHECK(veil_ckks_encode_poly(enc, w->encoded, d->re, d->im, enc->slots, lv->encode_scale, lv->level,
                                             err));
            const veil_boot_diag whole = {veil_poly_limb_ptr(w->encoded, 0), 1, NULL, NULL}, *one = &whole;
            const veil_poly *xs[2][1] = {{w->baby[0][i]}, {w->baby[1][i]}};
            const veil_poly *const *terms[2] = {xs[0], xs[1]};
            diag_sum(ctx->ring, w->inner, terms, &one, 1, w->qp, w->qp_count, started);
            started = true;
        }
        if (!started) continue;
        if (j > 0) {
            const veil_switch_key *key = NULL;
            const long steps = (long)(j * b) * lv->unit;
            VEIL_CHECK(need_key(ctx, &key, steps, keys, key_count, err));
            VEIL_CHECK(veil_bsgs_giant_extended(ctx, w->acc, (const veil_poly *const *)w->inner, w->down, w->rotated,
                                                veil_galois_element_rotation(ctx, steps), key, *have, level, err));
        } else if (!*have) {
            for (size_t c = 0; c < 2; c++) {
                veil_poly *t = w->acc[c];
                w->acc[c] = w->inner[c];
                w->inner[c] = t;
            }
        } else {
            for (size_t c = 0; c < 2; c++) VEIL_CHECK(veil_poly_add(w->acc[c], w->acc[c], w->inner[c], err));
        }
        *have = true;
    }
done:
    return st;
}

/*
 * x <- the level's transform of x, plus that of x2 with the second diagonals when the level has them: both
 * sums over Q_l P, divided by P once (one ModDown of the pair per level); not rescaled.
 */
static veil_status dft_level(const veil_ckks_encoder *enc, veil_ckks_ciphertext *x, const veil_ckks_ciphertext *x2,
                             const veil_boot_dft_level *lv, const veil_switch_key *const *keys, size_t key_count,
                             veil_error *err)
{
    const veil_context *ctx = enc->ctx;
    veil_status st = VEIL_OK;
    const size_t nd = lv->n_diags, b = lv->baby < nd ? lv->baby : nd, level = x->el.level;
    const double scale = x->scale * lv->diag_scale;
    bool have = false;
    dft_work w;
    VEIL_CHECK(work_init(&w, ctx, b, level, err));
    VEIL_CHECK(dft_accumulate(enc, &w, &have, x, lv, lv->diags, keys, key_count, err));
    if (lv->diags2) {
        if (fabs(x2->scale / x->scale - 1) > 1e-9)
            VEIL_FAIL(err, VEIL_ERR_INTERNAL, "bootstrap: a DFT level's two inputs at scales %g and %g", x->scale,
                      x2->scale);
        VEIL_CHECK(dft_accumulate(enc, &w, &have, x2, lv, lv->diags2, keys, key_count, err));
    }
    if (!have) VEIL_FAIL(err, VEIL_ERR_INTERNAL, "bootstrap: a DFT level without diagonals");
    /* the one ModDown of the level */
    for (size_t c = 0; c < 2; c++) VEIL_CHECK(veil_context_mod_down(ctx, w.res[c], w.acc[c], level, err));
    veil_ckks_adopt_pair(x, w.res, level);
    x->scale = scale;
done:
    work_free(&w);
    return st;
}

veil_status veil_boot_dft_apply(const veil_ckks_encoder *enc, veil_ckks_ciphertext *x, veil_ckks_ciphertext *x2,
                                const veil_boot_dft_level *levels, size_t level_count,
                                const veil_switch_key *const *keys, size_t key_count, veil_error *err)
{
    const veil_context *ctx = enc->ctx;
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < level_count; i++) {
        const veil_boot_dft_level *lv = &levels[i];
        if (x->el.level != lv->level || x->el.size != 2)
            VEIL_FAIL(err, VEIL_ERR_INTERNAL, "bootstrap: a DFT level expected level %zu, got %zu", lv->level,
                      x->el.level);
        if (lv->diags2 && (!x2 || x2->el.level != lv->level || x2->el.size != 2))
            VEIL_FAIL(err, VEIL_ERR_INTERNAL, "bootstrap: a DFT level without its second input");
        VEIL_CHECK(dft_level(enc, x, x2, lv, keys, key_count, err));
        VEIL_CHECK(veil_ckks_rescale(ctx, x, x, err));
    }
done:
    /* the blocks of the polynomials over Q P (at least the last level's size) serve nothing after the DFT: kept
     * in the pool's cache they would add to the next phase's memory (full slots: 0.5 GB) */
    if (level_count) {
        size_t qp[2 * VEIL_PARAMS_MAX_PRIMES];
        const size_t qp_count = veil_context_qp_base(ctx, levels[level_count - 1].level, qp);
        veil_pool_release(ctx->ring->pool, veil_pool_block_bytes(qp_count * ctx->ring->n * sizeof(uint64_t)));
    }
    return st;
}

/*
 * y (over Q_l P) <- y + rot(y, steps), y's c_1 divided by P for the rotation's key switching (one ModDown of
 * one polynomial), its c_0 permuted where it is. down: scratch over Q_l; rotated: scratch over Q_l P.
 */
static veil_status add_rotation_extended(const veil_context *ctx, veil_poly *const *y, veil_poly *down,
                                         veil_poly *rotated, long steps, const veil_switch_key *key, size_t level,
                                         veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_keyswitch_raised rx = {0};
    const uint64_t g = veil_galois_element_rotation(ctx, steps);
    VEIL_CHECK(veil_context_mod_down(ctx, down, y[1], level, err));
    VEIL_CHECK(veil_poly_automorphism(rotated, y[0], g, err));
    VEIL_CHECK(veil_keyswitch_raise(ctx, &rx, down, err));
    VEIL_CHECK(veil_keyswitch_raised_product(&rx, g, key, y[0], y[1], true, err));
    VEIL_CHECK(veil_poly_add(y[0], y[0], rotated, err));
done:
    veil_keyswitch_raised_release(&rx);
    return st;
}

veil_status veil_boot_sub_sum(const veil_context *ctx, veil_ckks_ciphertext *x, size_t slots,
                              const veil_switch_key *const *keys, size_t key_count, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(x, err);
    const size_t half = ctx->params.n / 2;
    if (slots >= half) return VEIL_OK;
    if (x->el.size != 2) return veil_fail(err, VEIL_ERR_INTERNAL, "bootstrap: SubSum on a ciphertext of size %zu",
                                          x->el.size);
    veil_status st = VEIL_OK;
    const size_t level = x->el.level;
    size_t qp[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t qp_count = veil_context_qp_base(ctx, level, qp);
    veil_poly *y[2] = {NULL, NULL}, *res[2] = {NULL, NULL}, *rotated = NULL, *down = NULL;
    veil_keyswitch_raised rx = {0};
    for (size_t c = 0; c < 2; c++) {
        VEIL_CHECK(scratch_new(&y[c], ctx->ring, qp, qp_count, err));
        VEIL_CHECK(veil_context_poly_new(&res[c], ctx, level, VEIL_FORM_EVAL, err));
    }
    VEIL_CHECK(scratch_new(&rotated, ctx->ring, qp, qp_count, err));
    VEIL_CHECK(scratch_new(&down, ctx->ring, qp, level + 1, err));
    for (size_t step = slots; step < half; step *= 2) {
        const veil_switch_key *key = NULL;
        VEIL_CHECK(need_key(ctx, &key, (long)step, keys, key_count, err));
        if (step > slots) {
            VEIL_CHECK(add_rotation_extended(ctx, y, down, rotated, (long)step, key, level, err));
            continue;
        }
        /* the first: y = P x + rot(x) over Q_l P, from x's own ModUp (x is over Q_l: no ModDown first) */
        const uint64_t g = veil_galois_element_rotation(ctx, (long)step);
        VEIL_CHECK(veil_keyswitch_raise(ctx, &rx, x->el.c[1], err));
        VEIL_CHECK(veil_keyswitch_raised_product(&rx, g, key, y[0], y[1], false, err));
        veil_keyswitch_raised_release(&rx);
        VEIL_CHECK(veil_keyswitch_add_p_times(ctx, y[0], x->el.c[0], g, true, err));
        VEIL_CHECK(veil_keyswitch_add_p_times(ctx, y[0], x->el.c[0], 1, true, err));
        VEIL_CHECK(veil_keyswitch_add_p_times(ctx, y[1], x->el.c[1], 1, true, err));
    }
    /* the one ModDown */
    for (size_t c = 0; c < 2; c++) VEIL_CHECK(veil_context_mod_down(ctx, res[c], y[c], level, err));
    veil_ckks_adopt_pair(x, res, level);
done:
    veil_keyswitch_raised_release(&rx);
    for (size_t c = 0; c < 2; c++) {
        scratch_free(y[c]);
        veil_poly_free(res[c]);
    }
    scratch_free(rotated);
    scratch_free(down);
    return st;
}
