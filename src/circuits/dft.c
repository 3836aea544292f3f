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

/* The plaintext's limbs (level + 1 of n) as a diagonal with runs of `run`; run 1: its slot values re, im. */
static veil_status compact_diagonal(veil_boot_diag **out, const veil_ckks_plaintext *pt, const double *re,
                                    const double *im, size_t level, size_t n, size_t run, veil_error *err)
{
    const veil_poly *m = pt->m;
    /* the runs are a property of the encoding's evaluation order: checked, a full diagonal otherwise */
    for (size_t j = 0; j <= level && run > 1; j++) {
        const uint64_t *l = veil_poly_limb_ptr(m, j);
        for (size_t i = 0; i < n && run > 1; i++)
            if (l[i] != l[i - i % run]) run = 1;
    }
    const size_t per = n / run;
    veil_boot_diag *d = calloc(1, sizeof *d);
    if (d && run > 1) d->v = veil_alloc_scratch((level + 1) * per, sizeof *d->v);
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
    for (size_t j = 0; run > 1 && j <= level; j++) {
        const uint64_t *l = veil_poly_limb_ptr(m, j);
        for (size_t i = 0; i < per; i++) d->v[j * per + i] = l[i * run];
    }
    *out = d;
    return VEIL_OK;
}

/*
 * Encodes diagonal k of a level (offset (k - shift) unit), pre-rotated by its giant step, at the level's prime;
 * with masks (NULL: none), into *out: out-mask at the output slot, in-mask at the slot the rotation reads.
 */
static veil_status encode_diagonal(const veil_ckks_encoder *enc, veil_boot_dft_level *lv, const diag_matrix *a,
                                   size_t k, const veil_boot_dft_mask *mask, const double complex *in_mask,
                                   veil_boot_diag **out, double *re, double *im, veil_error *err)
{
    const size_t n = enc->slots, ns = a->ns, m = a->m;
    const size_t idx = (size_t)(((long)k - lv->shift) % (long)m + (long)m) % m;
    if (!a->d[idx]) return VEIL_OK;
    veil_status st = VEIL_OK;
    veil_ckks_plaintext *pt = NULL;
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
    VEIL_CHECK(veil_ckks_plaintext_new(&pt, enc->ctx, err));
    VEIL_CHECK(veil_ckks_encode(enc, pt, re, im, n, scale, lv->level, err));
    lv->diag_scale = pt->scale;
    lv->encode_scale = scale;
    /* period p slots: runs of N / 2p = n / p evaluations; short runs are stored whole (the kernels' blocks) */
    const size_t run = n / value_period(re, im, n);
    VEIL_CHECK(compact_diagonal(out, pt, re, im, lv->level, 2 * n, run >= DIAG_MIN_RUN ? run : 1, err));
done:
    veil_ckks_plaintext_free(pt);
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
    double *re = malloc(enc->slots * sizeof *re), *im = malloc(enc->slots * sizeof *im);
    if (!re || !im) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory building the DFT");
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
        VEIL_CHECK(encode_diagonal(enc, lv, &a, k, mask, mask ? mask->in[0] : NULL, &lv->diags[k], re, im, err));
        if (lv->diags2)
            VEIL_CHECK(encode_diagonal(enc, lv, &a, k, mask, mask->in[1], &lv->diags2[k], re, im, err));
    }
    VEIL_CHECK(level_steps(lv, err));
done:
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
 * Limb j of polynomial c of sum_k diags[k] * xs[k] into d: the compact diagonals summed in 128 bits with one
 * reduction per coefficient (IFMA: exact 52-bit products, a weight per block of a run; otherwise a reduction
 * every 32 terms), the whole ones by the ring's product kernel, term by term.
 */
static void diag_limb(const veil_ring *r, uint64_t *d, const veil_ckks_ciphertext *const *xs,
                      const veil_boot_diag *const *dg, size_t count, size_t c, size_t j)
{
    const size_t n = r->n;
    const veil_modulus *mod = &r->mod[j];
    const bool ifma =
        r->kernel == VEIL_KERNEL_AVX2 && r->ifma && r->primes[j] < ((uint64_t)1 << VEIL_PRIME_SIMD_MAX_BITS);
    bool have = false;
    for (size_t k0 = 0; k0 < count; k0 += DIAG_MAX_TERMS) {
        const size_t k1 = k0 + DIAG_MAX_TERMS < count ? k0 + DIAG_MAX_TERMS : count;
        const uint64_t *src[DIAG_MAX_TERMS], *w[DIAG_MAX_TERMS];
        size_t run[DIAG_MAX_TERMS], m = 0, block = DIAG_BLOCK;
        for (size_t k = k0; k < k1; k++) {
            if (dg[k]->run == 1) continue;
            src[m] = veil_poly_limb_ptr(xs[k]->el.c[c], j);
            run[m] = dg[k]->run;
            w[m++] = dg[k]->v + j * (n / dg[k]->run);
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
                for (size_t t = 0; t < block; t++) {
                    veil_u128 acc = 0;
                    for (size_t k = 0; k < m; k++) {
                        acc += (veil_u128)wb[k] * at[k][t];
                        if (k % 32 == 31) acc = veil_reduce128(mod, acc);
                    }
                    lo[t] = (uint64_t)veil_reduce128(mod, acc);
                    hi[t] = 0;
                }
            }
            for (size_t t = 0; t < block; t++) {
                const uint64_t v = veil_reduce128(mod, ((veil_u128)hi[t] << 52) + lo[t]);
                d[b0 + t] = have ? veil_addmod(d[b0 + t], v, mod->q) : v;
            }
        }
        have = have || m > 0;
        for (size_t k = k0; k < k1; k++) {
            if (dg[k]->run != 1) continue;
            veil_limb_mul(r, j, d, veil_poly_limb_ptr(xs[k]->el.c[c], j), dg[k]->v + j * n, have);
            have = true;
        }
    }
}

/* out <- sum_k diags[k] * xs[k] (every xs[k] of size 2 at `level`), at scale xs' scale times diag_scale. */
static veil_status diag_sum(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *const *xs,
                            const veil_boot_diag *const *dg, size_t count, size_t level, double scale,
                            veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_poly *poly[2] = {NULL, NULL};
    for (size_t c = 0; c < 2; c++) {
        VEIL_CHECK(veil_context_poly_new(&poly[c], ctx, level, VEIL_FORM_EVAL, err));
        veil_poly *p = poly[c];
#pragma omp parallel for num_threads(ctx->ring->threads) schedule(static)
        for (size_t j = 0; j <= level; j++) diag_limb(ctx->ring, veil_poly_limb_ptr(p, j), xs, dg, count, c, j);
    }
    veil_rlwe_element_release(&out->el);
    out->el.c[0] = poly[0];
    out->el.c[1] = poly[1];
    poly[0] = poly[1] = NULL;
    out->el.size = 2;
    out->el.level = level;
    out->el.seeded = false;
    out->scale = scale;
done:
    veil_poly_free(poly[0]);
    veil_poly_free(poly[1]);
    return st;
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
 * out <- sum_k diags[k] * rot(x, (k - shift) unit) by baby-step giant-step (as veil_ckks_linear_transform,
 * over the compact diagonals), k = j baby + i: the baby rotations rot(x, (i - shift) unit) hoisted (one
 * ModUp), each giant step's diagonals summed in one pass, then rotated by j baby unit. x is size 2 at the
 * level's level.
 */
static veil_status dft_transform(const veil_ckks_encoder *enc, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *x,
                                 const veil_boot_dft_level *lv, veil_boot_diag *const *diags,
                                 const veil_switch_key *const *keys, size_t key_count, veil_error *err)
{
    const veil_context *ctx = enc->ctx;
    veil_status st = VEIL_OK;
    const size_t nd = lv->n_diags, b = lv->baby < nd ? lv->baby : nd, groups = (nd + b - 1) / b;
    veil_ckks_ciphertext **rotated = calloc(b, sizeof *rotated), **outs = calloc(b, sizeof *outs);
    const veil_ckks_ciphertext **xr = calloc(b, sizeof *xr), **terms = calloc(b, sizeof *terms);
    const veil_boot_diag **dg = calloc(b, sizeof *dg);
    veil_ckks_plaintext **encoded = calloc(b, sizeof *encoded); /* the whole diagonals of a giant step */
    veil_boot_diag *whole = calloc(b, sizeof *whole);
    const veil_switch_key **baby_keys = calloc(b, sizeof *baby_keys);
    long *steps = calloc(b, sizeof *steps);
    veil_ckks_ciphertext *inner = NULL, *acc = NULL;
    size_t nb = 0;
    if (!rotated || !outs || !xr || !terms || !dg || !baby_keys || !steps || !encoded || !whole)
        VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bootstrap: out of memory");
    for (size_t i = 0; i < b; i++) {
        bool used = false;
        for (size_t k = i; k < nd && !used; k += b) used = diags[k] != NULL;
        if (!used) continue;
        if ((long)i == lv->shift) {
            xr[i] = x;
            continue;
        }
        VEIL_CHECK(veil_ckks_ciphertext_new(&rotated[i], ctx, err));
        VEIL_CHECK(need_key(ctx, &baby_keys[nb], ((long)i - lv->shift) * lv->unit, keys, key_count, err));
        steps[nb] = ((long)i - lv->shift) * lv->unit;
        xr[i] = outs[nb++] = rotated[i];
    }
    if (nb) VEIL_CHECK(veil_ckks_rotate_hoisted(ctx, outs, x, steps, nb, baby_keys, err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&inner, ctx, err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&acc, ctx, err));
    bool have = false;
    for (size_t j = 0; j < groups; j++) {
        size_t count = 0;
        for (size_t i = 0; i < b && j * b + i < nd; i++) {
            const veil_boot_diag *d = diags[j * b + i];
            if (!d) continue;
            if (!d->v) { /* a whole diagonal: encoded now, at the level's scale */
                if (!encoded[i]) VEIL_CHECK(veil_ckks_plaintext_new(&encoded[i], ctx, err));
                VEIL_CHECK(veil_ckks_encode(enc, encoded[i], d->re, d->im, enc->slots, lv->encode_scale, lv->level,
                                            err));
                whole[i] = (veil_boot_diag){veil_poly_limb_ptr(encoded[i]->m, 0), 1, NULL, NULL};
                d = &whole[i];
            }
            terms[count] = xr[i];
            dg[count++] = d;
        }
        if (!count) continue;
        VEIL_CHECK(diag_sum(ctx, inner, terms, dg, count, x->el.level, x->scale * lv->diag_scale, err));
        if (j > 0) {
            const veil_switch_key *key = NULL;
            VEIL_CHECK(need_key(ctx, &key, (long)(j * b) * lv->unit, keys, key_count, err));
            VEIL_CHECK(veil_ckks_rotate(ctx, inner, inner, (long)(j * b) * lv->unit, key, err));
        }
        if (!have) {
            veil_ckks_ciphertext *t = acc;
            acc = inner;
            inner = t;
        } else {
            VEIL_CHECK(veil_ckks_add(ctx, acc, acc, inner, err));
        }
        have = true;
    }
    if (!have) VEIL_FAIL(err, VEIL_ERR_INTERNAL, "bootstrap: a DFT level without diagonals");
    /* the sum moves into out (x, should out be x, is no longer read) */
    const veil_ckks_ciphertext moved = *out;
    *out = *acc;
    *acc = moved;
done:
    for (size_t i = 0; rotated && i < b; i++) veil_ckks_ciphertext_free(rotated[i]);
    for (size_t i = 0; encoded && i < b; i++) veil_ckks_plaintext_free(encoded[i]);
    free(encoded);
    free(whole);
    veil_ckks_ciphertext_free(inner);
    veil_ckks_ciphertext_free(acc);
    free(rotated);
    free(outs);
    free(xr);
    free(terms);
    free(dg);
    free(baby_keys);
    free(steps);
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
        VEIL_CHECK(dft_transform(enc, x, x, lv, lv->diags, keys, key_count, err));
        if (lv->diags2) {
            VEIL_CHECK(dft_transform(enc, x2, x2, lv, lv->diags2, keys, key_count, err));
            VEIL_CHECK(veil_ckks_add(ctx, x, x, x2, err));
        }
        VEIL_CHECK(veil_ckks_rescale(ctx, x, x, err));
    }
done:
    return st;
}
