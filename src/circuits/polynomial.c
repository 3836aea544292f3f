/* Polynomial evaluation on CKKS ciphertexts: the Chebyshev basis, baby-step giant-step. */
#include <math.h>
#include <string.h>
#include "ckks/ckks_internal.h"
#include "veil/circuits.h"

#define CHEB_BLOCK 256       /* coefficients per call of the IFMA dot product (its outputs on the stack) */
#define CHEB_MAX_TERMS 64    /* terms of a leaf: the baby steps below g, g <= 64 for degree <= 1024 */

/*
 * Chebyshev evaluation by baby-step giant-step (Bossuat et al., Eurocrypt 2021, section 4; Han-Ki 2020):
 * baby steps T_1..T_g (g a power of two near sqrt(d)), giant steps T_g, T_2g, T_4g, ...; the polynomial is
 * divided by the largest giant step T_D not above its degree, p = q T_D + r (T_k = 2 T_D T_k-D - T_2D-k),
 * recursively, down to leaves of degree < g that are sums of constant multiples of baby steps.
 * Scales: every subtree is evaluated at a target scale chosen so that the product q * T_D lands exactly on
 * its parent's target (q at target * q_t / scale(T_D), q_t the prime that product's rescale drops), so
 * every sum adds operands of one scale. Levels are predicted before anything is computed.
 */
typedef struct cheb_state {
    const veil_context *ctx;
    const veil_switch_key *rk;
    veil_ckks_ciphertext **T; /* T[k] for k <= g and for the giant steps (k = g * 2^i) */
    long *level;              /* level of T[k] (also filled by the dry run) */
    size_t g, max_index;
    bool odd; /* an odd polynomial: only the odd baby steps and the powers of two are computed */
} cheb_state;

static size_t cheb_baby(size_t degree)
{
    size_t g = 2;
    while (g * g < degree + 1) g *= 2;
    return g;
}

static bool all_zero(const double *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c[i] != 0.0) return false;
    return true;
}

/* The largest giant step D = g * 2^i <= degree. */
static size_t cheb_giant(const cheb_state *cs, size_t degree)
{
    size_t d = cs->g;
    while (2 * d <= degree) d *= 2;
    return d;
}

/* q (degree deg - D) and r (degree < D) with p = q T_D + r. q and r have room for D entries. */
static void cheb_divide(double *q, double *r, const double *c, size_t deg, size_t D)
{
    memset(q, 0, D * sizeof *q);
    memcpy(r, c, D * sizeof *r);
    q[0] = c[D];
    for (size_t k = D + 1; k <= deg; k++) {
        q[k - D] += 2 * c[k];
        r[2 * D - k] -= c[k];
    }
}

/* The level at which cheb_eval leaves p (degree deg). Mirrors cheb_eval exactly. */
static long cheb_level(const cheb_state *cs, const double *c, size_t deg)
{
    if (deg < cs->g) {
        long lv = cs->level[1];
        for (size_t j = 1; j <= deg; j++)
            if (c[j] != 0.0 && cs->level[j] < lv) lv = cs->level[j];
        return lv - 1;
    }
    const size_t D = cheb_giant(cs, deg);
    double q[4096], r[4096];
    cheb_divide(q, r, c, deg, D);
    long lq = cheb_level(cs, q, deg - D), lp = (lq < cs->level[D] ? lq : cs->level[D]) - 1;
    if (all_zero(r, D)) return lp;
    long lr = cheb_level(cs, r, D - 1);
    return lp < lr ? lp : lr;
}

/*
 * One limb of sum_k w_k T_k: the residues of the integer weights at prime j, the terms' limbs summed in 128
 * bits with one reduction per coefficient (IFMA: exact 52-bit products; scalar: a reduction every 32 terms).
 */
static void combination_limb(const veil_context *ctx, uint64_t *d, veil_ckks_ciphertext *const *terms,
                             const uint64_t *wr, size_t count, size_t c, size_t j)
{
    const veil_ring *r = ctx->ring;
    const veil_modulus *mod = &r->mod[j];
    const size_t n = r->n;
    const uint64_t *src[CHEB_MAX_TERMS];
    if (r->kernel == VEIL_KERNEL_AVX2 && r->ifma && r->primes[j] < ((uint64_t)1 << VEIL_PRIME_SIMD_MAX_BITS)) {
        uint64_t lo[CHEB_BLOCK], hi[CHEB_BLOCK];
        for (size_t b0 = 0; b0 < n; b0 += CHEB_BLOCK) {
            const size_t len = n - b0 < CHEB_BLOCK ? n - b0 : CHEB_BLOCK;
            for (size_t k = 0; k < count; k++) src[k] = veil_poly_limb_ptr(terms[k]->el.c[c], j) + b0;
            veil_dot_ptrs_ifma(lo, hi, src, count, wr, len);
            for (size_t t = 0; t < len; t++) d[b0 + t] = veil_reduce128(mod, ((veil_u128)hi[t] << 52) + lo[t]);
        }
        return;
    }
    for (size_t k = 0; k < count; k++) src[k] = veil_poly_limb_ptr(terms[k]->el.c[c], j);
    for (size_t t = 0; t < n; t++) {
        veil_u128 acc = 0;
        for (size_t k = 0; k < count; k++) {
            acc += (veil_u128)wr[k] * src[k][t];
            if (k % 32 == 31) acc = veil_reduce128(mod, acc);
        }
        d[t] = veil_reduce128(mod, acc);
    }
}

/*
 * out <- sum_k w_k T_k at `level` (every term at that level or above, of size 2), w_k integers (|w_k| < 2^62):
 * one pass over the terms' limbs instead of a copy, a product and a sum per term. out's scale is the caller's.
 */
static veil_status cheb_combination(const veil_context *ctx, veil_ckks_ciphertext *out,
                                    veil_ckks_ciphertext *const *terms, const double *w, size_t count, size_t level,
                                    veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_poly *poly[2] = {NULL, NULL};
    uint64_t *wr = veil_alloc((level + 1) * count, sizeof *wr);
    if (!wr) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "eval_chebyshev: out of memory");
    for (size_t j = 0; j <= level; j++)
        for (size_t k = 0; k < count; k++) wr[j * count + k] = veil_reduce_integral(&ctx->ring->mod[j], w[k]);
    for (size_t c = 0; c < 2; c++) {
        VEIL_CHECK(veil_context_poly_new(&poly[c], ctx, level, VEIL_FORM_EVAL, err));
        veil_poly *p = poly[c];
#pragma omp parallel for num_threads(ctx->ring->threads) schedule(static)
        for (size_t j = 0; j <= level; j++)
            combination_limb(ctx, veil_poly_limb_ptr(p, j), terms, wr + j * count, count, c, j);
    }
    veil_ckks_adopt_pair(out, poly, level);
done:
    veil_poly_free(poly[0]);
    veil_poly_free(poly[1]);
    veil_free(wr);
    return st;
}

/*
 * A leaf: sum of c_j T_j (j < g) plus c_0 at the target scale, one level below the lowest T_j it reads (the
 * level cheb_level predicts). Each T_j, read at that level L, is multiplied by the integer
 * round(c_j target q_L / scale(T_j)), so that every product is at scale target q_L; their sum
 * (cheb_combination) takes one rescale instead of one per term. A constant that does not fit 62 bits falls
 * back to a rescale per term.
 */
static veil_status cheb_leaf(const cheb_state *cs, veil_ckks_ciphertext *out, const double *c, size_t deg,
                             double target, veil_error *err)
{
    const veil_context *ctx = cs->ctx;
    veil_status st = VEIL_OK;
    bool fits = true;
    veil_ckks_ciphertext *term = NULL, *terms[CHEB_MAX_TERMS];
    double w[CHEB_MAX_TERMS];
    size_t count = 0;
    long lv = cs->level[1];
    for (size_t j = 1; j <= deg; j++)
        if (c[j] != 0.0 && cs->level[j] < lv) lv = cs->level[j];
    const size_t level = (size_t)lv;
    const double q_l = (double)ctx->ring->primes[level];
    for (size_t j = 1; j <= deg; j++) {
        if (c[j] == 0.0) continue;
        w[count] = round(c[j] * target * q_l / cs->T[j]->scale);
        fits = fits && fabs(w[count]) < 0x1p62 && cs->T[j]->el.size == 2;
        terms[count++] = cs->T[j];
    }
    if (count == 0) {
        VEIL_CHECK(veil_ckks_mul_constant_at(ctx, out, cs->T[1], 0.0, target, err));
    } else if (fits) {
        VEIL_CHECK(cheb_combination(ctx, out, terms, w, count, level, err));
        out->scale = target * q_l; /* exact up to the rounding of the integers: a relative error below 2^-(k+1) */
        VEIL_CHECK(veil_ckks_rescale(ctx, out, out, err));
        out->scale = target;
    } else {
        VEIL_CHECK(veil_ckks_ciphertext_new(&term, ctx, err));
        for (size_t k = 0, j = 1; j <= deg; j++) {
            if (c[j] == 0.0) continue;
            VEIL_CHECK(veil_ckks_mul_constant_at(ctx, k ? term : out, cs->T[j], c[j], target, err));
            if (k++) VEIL_CHECK(veil_ckks_add(ctx, out, out, term, err));
        }
    }
    if (c[0] != 0.0) VEIL_CHECK(veil_ckks_add_constant(ctx, out, out, c[0], err));
done:
    veil_ckks_ciphertext_free(term);
    return st;
}

static veil_status cheb_eval(const cheb_state *cs, veil_ckks_ciphertext *out, const double *c, size_t deg, double target,
                             veil_error *err)
{
    if (deg < cs->g) return cheb_leaf(cs, out, c, deg, target, err);
    const veil_context *ctx = cs->ctx;
    veil_status st = VEIL_OK;
    veil_ckks_ciphertext *qe = NULL, *re = NULL;
    const size_t D = cheb_giant(cs, deg);
    double *q = veil_alloc(2 * D, sizeof *q), *r = q ? q + D : NULL;
    if (!q) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "eval_chebyshev: out of memory");
    cheb_divide(q, r, c, deg, D);
    const long lq = cheb_level(cs, q, deg - D), t = lq < cs->level[D] ? lq : cs->level[D];
    VEIL_CHECK(veil_ckks_ciphertext_new(&qe, ctx, err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&re, ctx, err));
    /* q at the scale that makes q * T_D land on target after the rescale drops prime t */
    VEIL_CHECK(cheb_eval(cs, qe, q, deg - D, target * (double)ctx->ring->primes[t] / cs->T[D]->scale, err));
    if ((long)qe->el.level != lq)
        VEIL_FAIL(err, VEIL_ERR_INTERNAL, "eval_chebyshev: predicted level %ld, got %zu", lq, qe->el.level);
    VEIL_CHECK(veil_ckks_mul_relin_rescale(ctx, out, qe, cs->T[D], cs->rk, err));
    out->scale = target; /* exact up to floating-point rounding of the product of scales */
    if (!all_zero(r, D)) {
        VEIL_CHECK(cheb_eval(cs, re, r, D - 1, target, err));
        VEIL_CHECK(veil_ckks_add(ctx, out, out, re, err));
    }
done:
    veil_ckks_ciphertext_free(qe);
    veil_ckks_ciphertext_free(re);
    veil_free(q);
    return st;
}

/* Levels of the powers for an input at `top`, without computing them (the dry run of the power steps). */
static void cheb_power_levels(long *level, size_t g, size_t max_index, long top)
{
    level[1] = top - 1; /* the linear map */
    for (size_t k = 2; k <= g; k++) {
        const size_t h = k / 2;
        level[k] = (k % 2 == 0 ? level[h] : (level[h] < level[h + 1] ? level[h] : level[h + 1])) - 1;
    }
    for (size_t d = 2 * g; d <= max_index; d *= 2) level[d] = level[d / 2] - 1;
}

size_t veil_ckks_chebyshev_depth(size_t degree)
{
    if (degree == 0) return 0;
    if (degree > 1024) return (size_t)-1;
    cheb_state cs = {0};
    long level[2049];
    double c[1025];
    cs.g = cheb_baby(degree);
    cs.max_index = cheb_giant(&cs, degree < cs.g ? cs.g : degree);
    cs.level = level;
    const long top = 100000;
    cheb_power_levels(level, cs.g, cs.max_index, top);
    for (size_t k = 0; k <= degree; k++) c[k] = 1.0; /* all terms present: the deepest case */
    return (size_t)(top - cheb_level(&cs, c, degree));
}

/* The checks of an evaluation's arguments: an interval, finite coefficients, the levels it needs. */
static veil_status check_chebyshev(const veil_context *ctx, const veil_ckks_ciphertext *a, const double *coeffs,
                                   size_t degree, double lo, double hi, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_rlwe_check_element(ctx, veil_ckks_element(a), "eval_chebyshev", err));
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi))
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "eval_chebyshev: [%g, %g] is not an interval", lo, hi);
    if (degree > 1024) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "eval_chebyshev: degree %zu above 1024", degree);
    for (size_t k = 0; k <= degree; k++)
        if (!isfinite(coeffs[k])) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "eval_chebyshev: coefficient %zu is not finite", k);
    const size_t depth = veil_ckks_chebyshev_depth(degree);
    if (depth > a->el.level)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "eval_chebyshev: degree %zu needs %zu levels, the ciphertext has %zu", degree,
                  depth, a->el.level);
done:
    return st;
}

/* A constant polynomial: 0 * a + c_0, at a's level less one. */
static veil_status cheb_constant(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                 double c0, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_ckks_ciphertext *z = NULL;
    VEIL_CHECK(veil_ckks_ciphertext_new(&z, ctx, err));
    VEIL_CHECK(veil_ckks_mul_integer(ctx, z, a, 0, err));
    VEIL_CHECK(veil_ckks_add_constant(ctx, out, z, c0, err));
done:
    veil_ckks_ciphertext_free(z);
    return st;
}

/*
 * out <- 2 a b - c with one rescale: the product relinearized at scale s_a s_b, doubled, and c (at the
 * product's level or above) multiplied by the integer round(s_a s_b / s_c) and subtracted before the rescale.
 * (Subtracting c after the rescale would align its scale with a constant product and a rescale of its own.)
 */
static veil_status cheb_product_minus(const cheb_state *cs, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                      const veil_ckks_ciphertext *b, const veil_ckks_ciphertext *c, veil_error *err)
{
    const veil_context *ctx = cs->ctx;
    veil_status st = VEIL_OK;
    veil_ckks_ciphertext *t = NULL;
    VEIL_CHECK(veil_ckks_mul(ctx, out, a, b, err));
    VEIL_CHECK(veil_ckks_relinearize(ctx, out, out, cs->rk, err));
    VEIL_CHECK(veil_ckks_mul_integer(ctx, out, out, 2, err));
    const double k = round(out->scale / c->scale);
    if (c->el.level < out->el.level || !(k >= 0x1p20 && k < 0x1p62)) { /* the general way */
        VEIL_CHECK(veil_ckks_rescale(ctx, out, out, err));
        VEIL_CHECK(veil_ckks_sub(ctx, out, out, c, err));
        goto done;
    }
    VEIL_CHECK(veil_ckks_ciphertext_new(&t, ctx, err));
    VEIL_CHECK(veil_ckks_mod_drop(ctx, t, c, out->el.level, err));
    VEIL_CHECK(veil_ckks_mul_integer(ctx, t, t, (int64_t)k, err));
    t->scale = out->scale; /* up to the rounding of k: a relative error below 2^-21 of c, 2^-41 at the presets */
    VEIL_CHECK(veil_ckks_sub(ctx, out, out, t, err));
    VEIL_CHECK(veil_ckks_rescale(ctx, out, out, err));
done:
    veil_ckks_ciphertext_free(t);
    return st;
}

/* Whether T_k is computed: every k <= g, or for an odd polynomial only the odd k and the powers of two. */
static bool cheb_needed(const cheb_state *cs, size_t k)
{
    return !cs->odd || k % 2 == 1 || (k & (k - 1)) == 0;
}

/*
 * The powers: T_1 = t = alpha x + beta at a's scale, the baby steps T_2..T_g by T_2h = 2 T_h^2 - 1 and
 * T_2h+1 = 2 T_h T_h+1 - T_1, the giant steps T_2g, T_4g, ... by doubling; then their levels. For an odd
 * polynomial (every even coefficient 0: the sine of bootstrapping) only the odd baby steps, each
 * T_m+j = 2 T_m T_j - T_m-j with m the power of two below it, and the powers of two: about g/2 + log2(g)
 * products instead of g - 1, in as many levels (T_m+j is one level below T_m, as T_2h+1 is below T_h+1).
 */
static veil_status cheb_powers(cheb_state *cs, const veil_ckks_ciphertext *a, double lo, double hi, veil_error *err)
{
    const veil_context *ctx = cs->ctx;
    const veil_switch_key *relin_key = cs->rk;
    veil_status st = VEIL_OK;
    const double alpha = 2.0 / (hi - lo), beta = -(hi + lo) / (hi - lo), scale = a->scale;
    for (size_t k = 1; k <= cs->max_index; k++)
        if ((k <= cs->g && cheb_needed(cs, k)) || (k % cs->g == 0 && ((k / cs->g) & (k / cs->g - 1)) == 0))
            VEIL_CHECK(veil_ckks_ciphertext_new(&cs->T[k], ctx, err));
    VEIL_CHECK(veil_ckks_mul_constant_at(ctx, cs->T[1], a, alpha, scale, err));
    VEIL_CHECK(veil_ckks_add_constant(ctx, cs->T[1], cs->T[1], beta, err));
    for (size_t k = 2; k <= cs->g; k++) {
        const size_t h = k / 2;
        if (!cheb_needed(cs, k)) continue;
        if (k % 2 == 0) { /* T_2h = 2 T_h^2 - 1 */
            VEIL_CHECK(veil_ckks_mul_relin_rescale(ctx, cs->T[k], cs->T[h], cs->T[h], relin_key, err));
            VEIL_CHECK(veil_ckks_mul_integer(ctx, cs->T[k], cs->T[k], 2, err));
            VEIL_CHECK(veil_ckks_add_constant(ctx, cs->T[k], cs->T[k], -1.0, err));
        } else if (!cs->odd) { /* T_2h+1 = 2 T_h T_h+1 - T_1 */
            VEIL_CHECK(cheb_product_minus(cs, cs->T[k], cs->T[h], cs->T[h + 1], cs->T[1], err));
        } else { /* T_m+j = 2 T_m T_j - T_m-j */
            size_t m = 1;
            while (2 * m < k) m *= 2;
            VEIL_CHECK(cheb_product_minus(cs, cs->T[k], cs->T[m], cs->T[k - m], cs->T[2 * m - k], err));
        }
    }
    for (size_t d = 2 * cs->g; d <= cs->max_index; d *= 2) {
        VEIL_CHECK(veil_ckks_mul_relin_rescale(ctx, cs->T[d], cs->T[d / 2], cs->T[d / 2], relin_key, err));
        VEIL_CHECK(veil_ckks_mul_integer(ctx, cs->T[d], cs->T[d], 2, err));
        VEIL_CHECK(veil_ckks_add_constant(ctx, cs->T[d], cs->T[d], -1.0, err));
    }
    for (size_t k = 1; k <= cs->max_index; k++)
        if (cs->T[k]) cs->level[k] = (long)cs->T[k]->el.level;
done:
    return st;
}

/* Every even coefficient (c_0 included) is 0. */
static bool cheb_is_odd(const double *c, size_t degree)
{
    for (size_t k = 0; k <= degree; k += 2)
        if (c[k] != 0.0) return false;
    return true;
}

veil_status veil_ckks_eval_chebyshev(const veil_context *ctx, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *a,
                                     const double *coeffs, size_t degree, double lo, double hi,
                                     const veil_switch_key *relin_key, veil_error *err)
{
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(coeffs, err);
    veil_status st = VEIL_OK;
    cheb_state cs = {ctx, relin_key, NULL, NULL, 0, 0, false};
    double *c = NULL;
    VEIL_CHECK(check_chebyshev(ctx, a, coeffs, degree, lo, hi, err));
    if (degree == 0) {
        VEIL_CHECK(cheb_constant(ctx, out, a, coeffs[0], err));
        goto done;
    }
    cs.g = cheb_baby(degree);
    cs.max_index = cheb_giant(&cs, degree < cs.g ? cs.g : degree);
    cs.odd = cheb_is_odd(coeffs, degree);
    cs.T = veil_alloc(cs.max_index + 1, sizeof *cs.T);
    cs.level = veil_alloc(cs.max_index + 1, sizeof *cs.level);
    if (!cs.T || !cs.level) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "eval_chebyshev: out of memory");
    VEIL_CHECK(cheb_powers(&cs, a, lo, hi, err));
    c = veil_alloc(degree + 1, sizeof *c);
    if (!c) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "eval_chebyshev: out of memory");
    memcpy(c, coeffs, (degree + 1) * sizeof *c);
    VEIL_CHECK(cheb_eval(&cs, out, c, degree, a->scale, err));
done:
    veil_free(c);
    for (size_t k = 1; cs.T && k <= cs.max_index; k++) veil_ckks_ciphertext_free(cs.T[k]);
    veil_free(cs.T);
    veil_free(cs.level);
    return st;
}
