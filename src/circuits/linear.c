/*
 * Linear transforms of CKKS ciphertexts: a dense (or sparse) layer out = W in + b over many ciphertexts at
 * once, with the weights as integers round(w q_l), lazy reduction and one rescale.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ckks/ckks_internal.h"
#include "veil/circuits.h"

#define LINCOMB_CHUNK 32 /* products of 61-bit residues summed in 128 bits before one reduction */

/*
 * A whole dense layer: out[o] = sum_i weights[o][i] in[i] + bias[o] for every o, with one level. The same
 * integer weights round(w q_l) (products summed with lazy reduction, one rescale), but the coefficients are visited in blocks
 * of LAYER_BLOCK and, inside a block, every output is accumulated from the inputs' stretches while they are
 * in cache: the inputs are read from memory once per layer, not once per output. Zero weights cost nothing
 * (a convolution's matrix is mostly zeros). Inputs of size 3 (products not yet relinearized) give outputs
 * of size 3, relinearized here with relin_key: one relinearization per output instead of one per input.
 */
#define LAYER_BLOCK 128
#define LAYER_BLOCK_MAX 256 /* the input-major kernel's blocks: the per-block arrays below are sized for them */

typedef struct sparse_rows {
    size_t *start, *col; /* CSR: the nonzero weights of output o are start[o] .. start[o + 1] */
    double *w; /* integers round(w q_l), of any size (exact residues per prime) */
    size_t *cstart, *crow, *perm; /* CSC of the same: input i's entries cstart[i] .., CSR index perm[e] */
} sparse_rows;

static void sparse_free(sparse_rows *sr)
{
    free(sr->start);
    free(sr->col);
    free(sr->w);
    free(sr->cstart);
    free(sr->crow);
    free(sr->perm);
}

/* The column-major index of the nonzeros (for the input-major kernel). */
static veil_status sparse_columns(sparse_rows *sr, size_t out_count, size_t in_count, veil_error *err)
{
    veil_status st = VEIL_OK;
    size_t *fill = NULL;
    const size_t nnz = sr->start[out_count];
    sr->cstart = calloc(in_count + 2, sizeof *sr->cstart);
    sr->crow = calloc(nnz + 1, sizeof *sr->crow);
    sr->perm = calloc(nnz + 1, sizeof *sr->perm);
    if (!sr->cstart || !sr->crow || !sr->perm) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_layer");
    for (size_t k = 0; k < nnz; k++) sr->cstart[sr->col[k] + 1]++;
    for (size_t i = 0; i < in_count; i++) sr->cstart[i + 1] += sr->cstart[i];
    fill = calloc(in_count + 1, sizeof *fill);
    if (!fill) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_layer");
    for (size_t o = 0; o < out_count; o++)
        for (size_t k = sr->start[o]; k < sr->start[o + 1]; k++) {
            const size_t i = sr->col[k], e = sr->cstart[i] + fill[i]++;
            sr->crow[e] = o;
            sr->perm[e] = k;
        }
done:
    free(fill);
    return st;
}

static veil_status sparse_weights(sparse_rows *sr, const double *weights, size_t out_count, size_t in_count,
                                  double q_l, double level_bits, veil_error *err)
{
    veil_status st = VEIL_OK;
    size_t nnz = 0;
    for (size_t i = 0; i < out_count * in_count; i++) nnz += round(weights[i] * q_l) != 0;
    sr->start = calloc(out_count + 1, sizeof *sr->start);
    sr->col = calloc(nnz + 1, sizeof *sr->col);
    sr->w = calloc(nnz + 1, sizeof *sr->w);
    if (!sr->start || !sr->col || !sr->w) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_layer: %zu weights", nnz);
    size_t k = 0;
    for (size_t o = 0; o < out_count; o++) {
        sr->start[o] = k;
        for (size_t i = 0; i < in_count; i++) {
            const double v = round(weights[o * in_count + i] * q_l);
            /* beyond 2^62 (a scale near 2^60) the weight is carried by its residues, exactly */
            if (!isfinite(v) || !(fabs(v) < 0x1p62 || log2(fabs(v)) < level_bits - 1))
                VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "linear_layer: weight %g does not fit the modulus at this level",
                          weights[o * in_count + i]);
            if (v == 0) continue;
            sr->col[k] = i;
            sr->w[k++] = v;
        }
    }
    sr->start[out_count] = k;
done:
    return st;
}

/* The input-major kernel's working memory, one per thread, allocated once per layer. */
typedef struct layer_scratch {
    double *acc;
    uint32_t *counts;
    uint64_t **outs;
    const uint64_t **ins;
} layer_scratch;

static bool scratch_init(layer_scratch *ls, size_t out_count, size_t in_count, size_t block)
{
    ls->acc = veil_alloc_scratch(out_count * block, sizeof *ls->acc);
    ls->counts = malloc(out_count * sizeof *ls->counts);
    ls->outs = malloc(out_count * sizeof *ls->outs);
    ls->ins = malloc(in_count * sizeof *ls->ins);
    return ls->acc && ls->counts && ls->outs && ls->ins;
}

static void scratch_free(layer_scratch *ls)
{
    veil_free(ls->acc);
    free(ls->counts);
    free(ls->outs);
    free(ls->ins);
}

/* The layer's sums for limb j of polynomial c, coefficients [b0, b1), every output. */
static void layer_block(const veil_context *ctx, const sparse_rows *sr, const double *wd, const double *wq,
                        const uint64_t *wr, veil_poly *const *dst, const veil_ckks_ciphertext *const *in,
                        size_t in_count, size_t out_count, size_t c, size_t j, size_t b0, size_t b1, bool simd,
                        const double *cwd, const double *cwq, const layer_scratch *ls)
{
    const veil_modulus *mod = &ctx->ring->mod[j];
    const uint64_t *src[LINCOMB_CHUNK];
    if (simd && cwd && ls) { /* input-major: the accumulators of every output stay in cache */
        for (size_t o = 0; o < out_count; o++) ls->outs[o] = veil_poly_limb_ptr(dst[o], j) + b0;
        for (size_t i = 0; i < in_count; i++) ls->ins[i] = veil_poly_limb_ptr(in[i]->el.c[c], j) + b0;
        veil_layer_block_avx2(ls->acc, ls->counts, ls->outs, ls->ins, in_count, out_count, sr->cstart, sr->crow, cwd,
                              cwq, b1 - b0, mod->q);
        return;
    }
    for (size_t o = 0; o < out_count; o++) {
        uint64_t *d = veil_poly_limb_ptr(dst[o], j) + b0;
        const size_t s0 = sr->start[o], s1 = sr->start[o + 1];
        if (s0 == s1) {
            memset(d, 0, (b1 - b0) * sizeof *d);
            continue;
        }
        if (simd && ctx->ring->ifma) { /* exact sums of 52-bit products, one reduction per coefficient */
            uint64_t lo[LAYER_BLOCK_MAX], hi[LAYER_BLOCK_MAX];
            for (size_t k0 = s0; k0 < s1; k0 += LINCOMB_CHUNK) {
                const size_t k1 = k0 + LINCOMB_CHUNK < s1 ? k0 + LINCOMB_CHUNK : s1;
                for (size_t k = k0; k < k1; k++) src[k - k0] = veil_poly_limb_ptr(in[sr->col[k]]->el.c[c], j) + b0;
                veil_dot_ptrs_ifma(lo, hi, src, k1 - k0, wr + k0, b1 - b0);
                for (size_t t = 0; t < b1 - b0; t++) {
                    const uint64_t part = veil_reduce128(mod, ((veil_u128)hi[t] << 52) + lo[t]);
                    d[t] = k0 == s0 ? part : veil_addmod(d[t], part, mod->q);
                }
            }
            continue;
        }
        if (simd) {
            /* veil_dot_ptrs_avx2 takes any number of terms; the pointers in chunks */
            for (size_t k0 = s0; k0 < s1; k0 += LINCOMB_CHUNK) {
                const size_t k1 = k0 + LINCOMB_CHUNK < s1 ? k0 + LINCOMB_CHUNK : s1;
                for (size_t k = k0; k < k1; k++) src[k - k0] = veil_poly_limb_ptr(in[sr->col[k]]->el.c[c], j) + b0;
                if (k0 == s0) {
                    veil_dot_ptrs_avx2(d, src, k1 - k0, wd + k0, wq + k0, b1 - b0, mod->q);
                } else {
                    uint64_t part[LAYER_BLOCK_MAX];
                    veil_dot_ptrs_avx2(part, src, k1 - k0, wd + k0, wq + k0, b1 - b0, mod->q);
                    for (size_t t = 0; t < b1 - b0; t++) d[t] = veil_addmod(d[t], part[t], mod->q);
                }
            }
            continue;
        }
        for (size_t t = 0; t < b1 - b0; t++) {
            veil_u128 acc = 0;
            for (size_t k = s0; k < s1; k++) {
                acc += (veil_u128)wr[k] * veil_poly_limb_ptr(in[sr->col[k]]->el.c[c], j)[b0 + t];
                if ((k - s0) % LINCOMB_CHUNK == LINCOMB_CHUNK - 1) acc = veil_reduce128(mod, acc);
            }
            d[t] = veil_reduce128(mod, acc);
        }
    }
}

/* The weights of a layer at every prime of its level, in the forms the kernels take. */
typedef struct layer_weights {
    sparse_rows sr;
    size_t nnz, block;
    double *wd, *wq;   /* per prime j (nnz each): the centered residues of the weights, and those over q_j */
    uint64_t *wr;      /* per prime j: the residues */
    double *cwd, *cwq; /* wd and wq in column order (the input-major kernel), or NULL */
    /* the IFMA kernel's groups of outputs that read the same inputs (veil_layer_group_ifma), or n_groups 0:
     * group g's members are gmem[gstart[g] .. gstart[g + 1]), its inputs the columns of its first member, and its
     * weights at prime j gw[j * nnz + gwoff[g] ..], input-major (members adjacent) */
    size_t n_groups, *gstart, *gmem, *gwoff;
    uint64_t *gw;
} layer_weights;

static void layer_weights_free(layer_weights *lw)
{
    free(lw->gstart);
    free(lw->gmem);
    free(lw->gwoff);
    free(lw->gw);
    free(lw->cwd);
    free(lw->cwq);
    free(lw->wd);
    free(lw->wq);
    free(lw->wr);
    sparse_free(&lw->sr);
}

/* The weights in column order too, for the input-major kernel; blocks sized so its accumulators fit L2. */
static veil_status layer_columns(layer_weights *lw, size_t n, size_t out_count, size_t in_count, size_t level,
                                 veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t nnz = lw->nnz;
    VEIL_CHECK(sparse_columns(&lw->sr, out_count, in_count, err));
    lw->cwd = calloc((nnz + 1) * (level + 1), sizeof *lw->cwd);
    lw->cwq = calloc((nnz + 1) * (level + 1), sizeof *lw->cwq);
    if (!lw->cwd || !lw->cwq) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_layer");
    for (size_t j = 0; j <= level; j++)
        for (size_t e = 0; e < nnz; e++) {
            lw->cwd[j * nnz + e] = lw->wd[j * nnz + lw->sr.perm[e]];
            lw->cwq[j * nnz + e] = lw->wq[j * nnz + lw->sr.perm[e]];
        }
    size_t block = (size_t)1 << 15; /* 256 KiB of accumulators: 2^15 doubles over the outputs */
    block = (block / (out_count ? out_count : 1)) & ~(size_t)3;
    if (block > LAYER_BLOCK_MAX) block = LAYER_BLOCK_MAX;
    if (block < 16) block = 16;
    if (block > n) block = n;
    lw->block = block;
done:
    return st;
}

/* Whether outputs a and b read the same inputs (their nonzero weights in the same columns). */
static bool same_columns(const sparse_rows *sr, size_t a, size_t b)
{
    const size_t na = sr->start[a + 1] - sr->start[a];
    return na == sr->start[b + 1] - sr->start[b] && memcmp(sr->col + sr->start[a], sr->col + sr->start[b],
                                                           na * sizeof *sr->col) == 0;
}

/*
 * The IFMA kernel's groups: outputs with the same columns together (a dense layer is one group; a convolution's
 * channels at one position are one), their weights' residues laid out input-major.
 */
static veil_status layer_groups(layer_weights *lw, const veil_context *ctx, size_t out_count, size_t level,
                                veil_error *err)
{
    veil_status st = VEIL_OK;
    const sparse_rows *sr = &lw->sr;
    const size_t nnz = lw->nnz;
    size_t *group_of = malloc((out_count + 1) * sizeof *group_of), *first = malloc((out_count + 1) * sizeof *first);
    size_t *fill = NULL;
    lw->gstart = calloc(out_count + 2, sizeof *lw->gstart);
    lw->gmem = malloc((out_count + 1) * sizeof *lw->gmem);
    lw->gwoff = calloc(out_count + 1, sizeof *lw->gwoff);
    lw->gw = malloc((nnz + 1) * (level + 1) * sizeof *lw->gw);
    if (!group_of || !first || !lw->gstart || !lw->gmem || !lw->gwoff || !lw->gw)
        VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_layer");
    size_t groups = 0;
    for (size_t o = 0; o < out_count; o++) {
        size_t g = 0;
        while (g < groups && !same_columns(sr, first[g], o)) g++;
        if (g == groups) first[groups++] = o;
        group_of[o] = g;
        lw->gstart[g + 1]++;
    }
    for (size_t g = 0; g < groups; g++) {
        const size_t members = lw->gstart[g + 1], terms = sr->start[first[g] + 1] - sr->start[first[g]];
        lw->gstart[g + 1] += lw->gstart[g];
        if (g + 1 < groups) lw->gwoff[g + 1] = lw->gwoff[g] + members * terms;
    }
    fill = calloc(groups + 1, sizeof *fill);
    if (!fill) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_layer");
    for (size_t o = 0; o < out_count; o++) {
        const size_t g = group_of[o], t = fill[g]++, members = lw->gstart[g + 1] - lw->gstart[g];
        lw->gmem[lw->gstart[g] + t] = o;
        for (size_t j = 0; j <= level; j++)
            for (size_t k = sr->start[o]; k < sr->start[o + 1]; k++)
                lw->gw[j * nnz + lw->gwoff[g] + (k - sr->start[o]) * members + t] = lw->wr[j * nnz + k];
    }
    lw->n_groups = groups;
    (void)ctx;
done:
    free(group_of);
    free(first);
    free(fill);
    return st;
}

static veil_status layer_weights_init(layer_weights *lw, const veil_context *ctx, const double *weights,
                                      size_t out_count, size_t in_count, size_t level, double weight_scale,
                                      veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t n = ctx->ring->n;
    double level_bits = 0;
    for (size_t j = 0; j <= level; j++) level_bits += log2((double)ctx->ring->primes[j]);
    VEIL_CHECK(sparse_weights(&lw->sr, weights, out_count, in_count, weight_scale, level_bits, err));
    const sparse_rows *sr = &lw->sr;
    const size_t nnz = sr->start[out_count];
    lw->nnz = nnz;
    lw->wd = calloc((nnz + 1) * (level + 1), sizeof *lw->wd);
    lw->wq = calloc((nnz + 1) * (level + 1), sizeof *lw->wq);
    lw->wr = calloc((nnz + 1) * (level + 1), sizeof *lw->wr);
    if (!lw->wd || !lw->wq || !lw->wr) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_layer");
    double *wd = lw->wd, *wq = lw->wq;
    uint64_t *wr = lw->wr;
    for (size_t j = 0; j <= level; j++) {
        const uint64_t q = ctx->ring->primes[j];
        for (size_t k = 0; k < nnz; k++) {
            const uint64_t r = veil_reduce_integral(&ctx->ring->mod[j], sr->w[k]);
            wr[j * nnz + k] = r;
            wd[j * nnz + k] = r > q / 2 ? -(double)(q - r) : (double)r;
            wq[j * nnz + k] = wd[j * nnz + k] / (double)q;
        }
    }
    /* the input-major kernel for 8 outputs or more (fewer: their sums stay in registers, output-major) */
    lw->block = LAYER_BLOCK;
    if (ctx->ring->ifma) {
        /* IFMA: outputs grouped by their inputs, four at a time in registers; blocks of coefficients whose
         * stretches of a group's inputs stay in L2 (256 KiB) while its members are summed */
        VEIL_CHECK(layer_groups(lw, ctx, out_count, level, err));
        size_t widest = 1;
        for (size_t o = 0; o < out_count; o++)
            if (sr->start[o + 1] - sr->start[o] > widest) widest = sr->start[o + 1] - sr->start[o];
        size_t block = ((size_t)1 << 15) / widest;
        block = block < 16 ? 16 : block > LAYER_BLOCK_MAX ? LAYER_BLOCK_MAX : block & ~(size_t)15;
        lw->block = block > n ? n : block;
    } else if (ctx->ring->kernel == VEIL_KERNEL_AVX2 && out_count >= 8) {
        VEIL_CHECK(layer_columns(lw, n, out_count, in_count, level, err));
    }
done:
    return st;
}

/* The IFMA kernel's sums of limb j of polynomial c, coefficients [b0, b1), group by group. */
static void layer_block_groups(const veil_context *ctx, const layer_weights *lw, veil_poly *const *dst,
                               const veil_ckks_ciphertext *const *in, size_t c, size_t j, size_t b0, size_t b1,
                               const layer_scratch *ls)
{
    const sparse_rows *sr = &lw->sr;
    for (size_t g = 0; g < lw->n_groups; g++) {
        const size_t m0 = lw->gstart[g], members = lw->gstart[g + 1] - m0, lead = lw->gmem[m0];
        const size_t terms = sr->start[lead + 1] - sr->start[lead];
        for (size_t t = 0; t < members; t++) ls->outs[t] = veil_poly_limb_ptr(dst[lw->gmem[m0 + t]], j) + b0;
        for (size_t k = 0; k < terms; k++)
            ls->ins[k] = veil_poly_limb_ptr(in[sr->col[sr->start[lead] + k]]->el.c[c], j) + b0;
        veil_layer_group_ifma(ls->outs, members, ls->ins, terms, lw->gw + j * lw->nnz + lw->gwoff[g], b1 - b0,
                              ctx->ring->primes[j]);
    }
}

/* The layer's sums into polys[o * size + c] (polynomial c of output o), every limb, both kernels. */
static veil_status layer_sums(const veil_context *ctx, const layer_weights *lw, veil_poly *const *polys,
                              const veil_ckks_ciphertext *const *in, size_t in_count, size_t out_count, size_t size,
                              size_t level, veil_error *err)
{
    veil_status st = VEIL_OK;
    const sparse_rows *sr = &lw->sr;
    const double *wd = lw->wd, *wq = lw->wq, *cwd = lw->cwd, *cwq = lw->cwq;
    const uint64_t *wr = lw->wr;
    const size_t n = ctx->ring->n, nnz = lw->nnz, block = lw->block, blocks = (n + block - 1) / block;
    /* the AVX2 kernels take primes below 2^50; a larger one (a first prime grown for the outputs' bound)
     * has its limb summed by the scalar kernel, the other limbs keep the vector one */
    const bool simd = ctx->ring->kernel == VEIL_KERNEL_AVX2;
    veil_poly **dst = calloc(out_count, sizeof *dst);
    if (!dst) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_layer");
    for (size_t c = 0; c < size; c++) {
        for (size_t o = 0; o < out_count; o++) dst[o] = polys[o * size + c];
#pragma omp parallel num_threads(ctx->ring->threads)
        {
            /* per thread, once: without it (out of memory) the output-major path needs none */
            layer_scratch ls = {0};
            const bool have = (cwd || lw->n_groups) && scratch_init(&ls, out_count, in_count, block);
            for (size_t j = 0; j <= level; j++) {
                const bool narrow = ctx->ring->primes[j] < ((uint64_t)1 << VEIL_PRIME_SIMD_MAX_BITS);
#pragma omp for schedule(static)
                for (size_t b = 0; b < blocks; b++) {
                    const size_t b0 = b * block, b1 = (b + 1) * block < n ? (b + 1) * block : n;
                    if (have && lw->n_groups && narrow && (b1 - b0) % 8 == 0)
                        layer_block_groups(ctx, lw, dst, in, c, j, b0, b1, &ls);
                    else
                        layer_block(ctx, sr, wd + j * nnz, wq + j * nnz, wr + j * nnz, dst, in, in_count, out_count,
                                    c, j, b0, b1, simd && narrow, cwd ? cwd + j * nnz : NULL,
                                    cwq ? cwq + j * nnz : NULL, have && cwd ? &ls : NULL);
                }
            }
            scratch_free(&ls);
        }
    }
done:
    free(dst);
    return st;
}

/*
 * Each output adopts its polynomials (at scale * weight_scale: the weights carried weight_scale), is
 * relinearized when of size 3, rescaled to scale * weight_scale / q_l (`scale` when the weights carried q_l),
 * and gets its bias.
 */
static veil_status layer_outputs(const veil_context *ctx, veil_ckks_ciphertext *const *out, size_t out_count,
                                 veil_poly **polys, size_t size, size_t level, double scale, double weight_scale,
                                 const double *bias, const veil_switch_key *relin_key, veil_error *err)
{
    veil_status st = VEIL_OK;
    const double q_l = (double)ctx->ring->primes[level], out_scale = scale * (weight_scale / q_l);
    for (size_t o = 0; o < out_count; o++) {
        veil_ckks_ciphertext *y = out[o];
        for (size_t c = 0; c < 3; c++) {
            veil_poly_free(y->el.c[c]);
            y->el.c[c] = c < size ? polys[o * size + c] : NULL;
            if (c < size) polys[o * size + c] = NULL;
        }
        y->el.size = size;
        y->el.level = level;
        y->scale = scale * weight_scale;
        y->el.seeded = false;
        /* relinearized before the rescale, so that the key switch's noise is divided by q_l too */
        if (size == 3) VEIL_CHECK(veil_ckks_relinearize(ctx, y, y, relin_key, err));
        VEIL_CHECK(veil_ckks_rescale(ctx, y, y, err));
        y->scale = out_scale;
        if (bias && bias[o] != 0) VEIL_CHECK(veil_ckks_add_constant(ctx, y, y, bias[o], err));
    }
done:
    return st;
}

/* The checks of a layer's arguments: inputs alike, outputs distinct from them, a level and a key when needed. */
static veil_status check_layer(const veil_context *ctx, veil_ckks_ciphertext *const *out, size_t out_count,
                               const veil_ckks_ciphertext *const *in, size_t in_count,
                               const veil_switch_key *relin_key, veil_error *err)
{
    veil_status st = VEIL_OK;
    if (in_count == 0 || out_count == 0) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "linear_layer: no inputs or outputs");
    for (size_t i = 0; i < in_count; i++) {
        VEIL_CHECK(veil_rlwe_check_element(ctx, veil_ckks_element(in[i]), "linear_layer", err));
        if (in[i]->el.size != in[0]->el.size || in[i]->el.level != in[0]->el.level ||
            !veil_ckks_same_scale(in[i]->scale, in[0]->scale))
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "linear_layer: input %zu differs from the first in size, level or scale", i);
    }
    for (size_t o = 0; o < out_count; o++) {
        VEIL_CHECK(veil_rlwe_check_output(ctx, &out[o]->el, NULL, err));
        for (size_t i = 0; i < in_count; i++)
            if (out[o] == in[i]) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "linear_layer: an output is also an input");
    }
    if (in[0]->el.level == 0) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "linear_layer: the inputs are at level 0");
    if (in[0]->el.size == 3) VEIL_CHECK(veil_rlwe_check_switch_key(ctx, relin_key, 0, "linear_layer", err));
done:
    return st;
}

veil_status veil_ckks_linear_layer(const veil_context *ctx, veil_ckks_ciphertext *const *out, size_t out_count,
                                   const veil_ckks_ciphertext *const *in, size_t in_count, const double *weights,
                                   const double *bias, const veil_switch_key *relin_key, veil_error *err)
{
    return veil_ckks_linear_layer_shifted(ctx, out, out_count, in, in_count, weights, bias, 0, relin_key, err);
}

veil_status veil_ckks_linear_layer_shifted(const veil_context *ctx, veil_ckks_ciphertext *const *out,
                                           size_t out_count, const veil_ckks_ciphertext *const *in, size_t in_count,
                                           const double *weights, const double *bias, unsigned shift,
                                           const veil_switch_key *relin_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    VEIL_REQUIRE(weights, err);
    veil_status st = VEIL_OK;
    layer_weights lw = {0};
    veil_poly **polys = NULL;
    size_t size = 0;
    if (shift > 16) return veil_fail(err, VEIL_ERR_ARGUMENT, "linear_layer: a shift of %u bits (at most 16)", shift);
    VEIL_CHECK(check_layer(ctx, out, out_count, in, in_count, relin_key, err));
    size = in[0]->el.size;
    const size_t level = in[0]->el.level;
    const double weight_scale = ldexp((double)ctx->ring->primes[level], -(int)shift);
    VEIL_CHECK(layer_weights_init(&lw, ctx, weights, out_count, in_count, level, weight_scale, err));
    polys = calloc(out_count * size, sizeof *polys);
    if (!polys) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "linear_layer");
    for (size_t i = 0; i < out_count * size; i++)
        VEIL_CHECK(veil_context_poly_new(&polys[i], ctx, level, VEIL_FORM_EVAL, err));
    VEIL_CHECK(layer_sums(ctx, &lw, polys, in, in_count, out_count, size, level, err));
    VEIL_CHECK(layer_outputs(ctx, out, out_count, polys, size, level, in[0]->scale, weight_scale, bias, relin_key,
                             err));
done:
    for (size_t i = 0; polys && i < out_count * size; i++) veil_poly_free(polys[i]);
    free(polys);
    layer_weights_free(&lw);
    return st;
}
