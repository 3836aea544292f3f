/*
 * CKKS encoding: the canonical embedding restricted to the slots zeta^(5^k), zeta = exp(i pi / N), computed
 * with the "special" FFT of length N/2 (Cheon, Han, Kim, Kim, Song, SAC 2018, section 2; the HEAAN
 * library's formulation). Slot k of a polynomial m holds m(zeta^(5^k)) / scale, so X -> X^(5^r) rotates the
 * slots left by r and X -> X^(2N-1) conjugates them.
 */
#include <math.h>
#include <string.h>
#include "ckks/ckks_internal.h"

veil_status veil_ckks_encoder_new(veil_ckks_encoder **out, const veil_context *ctx, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    veil_status st = VEIL_OK;
    veil_ckks_encoder *e = veil_alloc(1, sizeof *e);
    const size_t n = ctx->params.n, m = 2 * n;
    if (e) {
        e->roots = veil_alloc(m + 1, sizeof *e->roots);
        e->rot_group = veil_alloc(n / 2, sizeof *e->rot_group);
    }
    if (!e || !e->roots || !e->rot_group) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encoder: out of memory");
    e->ctx = ctx;
    e->n = n;
    e->slots = n / 2;
    const double pi = 3.14159265358979323846264338327950288;
    for (size_t j = 0; j <= m; j++) {
        double angle = 2.0 * pi * (double)j / (double)m;
        e->roots[j] = cos(angle) + I * sin(angle);
    }
    uint64_t g = 1;
    for (size_t j = 0; j < n / 2; j++) {
        e->rot_group[j] = g;
        g = g * 5 % m;
    }
    *out = e;
    e = NULL;
done:
    veil_ckks_encoder_free(e);
    return st;
}

void veil_ckks_encoder_free(veil_ckks_encoder *enc)
{
    if (!enc) return;
    veil_free(enc->roots);
    veil_free(enc->rot_group);
    veil_free(enc);
}

static void bit_reverse(double complex *v, size_t len)
{
    for (size_t i = 1, j = 0; i < len; i++) {
        size_t bit = len >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double complex t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
    }
}

/* Slots -> the complex vector whose real and imaginary parts are the polynomial's two coefficient halves. */
static void special_fft_inverse(const veil_ckks_encoder *e, double complex *v, size_t len)
{
    const size_t m = 2 * e->n;
    for (size_t size = len; size >= 2; size >>= 1) {
        const size_t half = size / 2, quarter_root = 4 * size;
        for (size_t i = 0; i < len; i += size)
            for (size_t j = 0; j < half; j++) {
                size_t idx = (quarter_root - e->rot_group[j] % quarter_root) * (m / quarter_root);
                double complex u = v[i + j] + v[i + j + half];
                double complex w = (v[i + j] - v[i + j + half]) * e->roots[idx];
                v[i + j] = u;
                v[i + j + half] = w;
            }
    }
    bit_reverse(v, len);
    for (size_t i = 0; i < len; i++) v[i] /= (double)len;
}

static void special_fft(const veil_ckks_encoder *e, double complex *v, size_t len)
{
    const size_t m = 2 * e->n;
    bit_reverse(v, len);
    for (size_t size = 2; size <= len; size <<= 1) {
        const size_t half = size / 2, quarter_root = 4 * size;
        for (size_t i = 0; i < len; i += size)
            for (size_t j = 0; j < half; j++) {
                size_t idx = (e->rot_group[j] % quarter_root) * (m / quarter_root);
                double complex u = v[i + j], w = v[i + j + half] * e->roots[idx];
                v[i + j] = u + w;
                v[i + j + half] = u - w;
            }
    }
}

veil_status veil_ckks_poly_at(veil_poly **p, const veil_context *ctx, size_t level, veil_error *err)
{
    veil_status st = VEIL_OK;
    if (*p && veil_poly_limb_count(*p) == level + 1) goto done;
    veil_poly_free(*p);
    *p = NULL;
    VEIL_CHECK(veil_context_poly_new(p, ctx, level, VEIL_FORM_EVAL, err));
done:
    return st;
}

/*
 * The body of veil_ckks_encode and veil_ckks_encode_poly: into `fixed`, or when it is NULL into *slot (made a
 * polynomial over Q_level only once the values are checked, so that a refused encoding leaves it as it was).
 */
static veil_status encode_into(const veil_ckks_encoder *enc, veil_poly **slot, veil_poly *fixed, const double *re,
                               const double *im, size_t count, double scale, size_t level, veil_error *err)
{
    const veil_context *ctx = enc->ctx;
    if (count > enc->slots)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "encode: %zu values do not fit the %zu slots", count, enc->slots);
    if (!(scale >= 1.0) || !isfinite(scale))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "encode: scale %g must be a finite number >= 1", scale);
    if (level >= ctx->q_count)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "encode: level %zu does not exist (top level %zu)", level,
                         ctx->q_count - 1);
    veil_status st = VEIL_OK;
    const size_t n = enc->n, slots = enc->slots;
    double complex *v = veil_alloc(slots, sizeof *v);
    int64_t *coeffs = veil_alloc(n, sizeof *coeffs);
    double *wide = veil_alloc(n, sizeof *wide);
    if (!v || !coeffs || !wide) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encode: out of memory");
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(re[i]) || (im && !isfinite(im[i])))
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "encode: value %zu is not a finite number", i);
        v[i] = re[i] + I * (im ? im[i] : 0.0);
    }
    special_fft_inverse(enc, v, slots);
    /* coefficients beyond 2^62 (a 2^60 scale, values above 4) are set from their exact residues; the
     * plaintext must stay below half the level's modulus, or it would wrap */
    const double limit = 4611686018427387904.0; /* 2^62 */
    double largest = 0, log2_q = 0;
    for (size_t l = 0; l <= level; l++) log2_q += log2((double)ctx->ring->primes[l]);
    for (size_t i = 0; i < slots; i++) {
        wide[i] = round(creal(v[i]) * scale);
        wide[i + slots] = round(cimag(v[i]) * scale);
        largest = fmax(largest, fmax(fabs(wide[i]), fabs(wide[i + slots])));
    }
    if (!(largest < limit || log2(largest) < log2_q - 1))
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT,
                  "encode: a coefficient reaches 2^%.1f, beyond the %.1f-bit modulus at level %zu (values up to about "
                  "%g at scale %g): lower the scale", log2(largest), log2_q, level, largest / scale, scale);
    veil_poly *m = fixed;
    if (!m) {
        VEIL_CHECK(veil_ckks_poly_at(slot, ctx, level, err));
        m = *slot;
    }
    if (largest < limit) {
        for (size_t j = 0; j < n; j++) coeffs[j] = (int64_t)wide[j];
        VEIL_CHECK(veil_poly_set_i64(m, coeffs, err));
    } else {
        VEIL_CHECK(veil_poly_set_integral(m, wide, err));
    }
    VEIL_CHECK(veil_poly_to_eval(m, err));
done:
    veil_free_secret(v, slots * sizeof *v);
    veil_free_secret(coeffs, n * sizeof *coeffs);
    veil_free_secret(wide, n * sizeof *wide);
    return st;
}

veil_status veil_ckks_encode(const veil_ckks_encoder *enc, veil_ckks_plaintext *out, const double *re,
                             const double *im, size_t count, double scale, size_t level, veil_error *err)
{
    VEIL_REQUIRE(enc, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(re, err);
    if (out->ctx != enc->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "encode: the plaintext belongs to another context");
    const veil_status st = encode_into(enc, &out->m, NULL, re, im, count, scale, level, err);
    if (st != VEIL_OK) return st;
    veil_poly_free(out->mqp); /* no longer the same plaintext */
    out->mqp = NULL;
    out->level = level;
    out->scale = scale;
    return VEIL_OK;
}

veil_status veil_ckks_encode_poly(const veil_ckks_encoder *enc, veil_poly *m, const double *re, const double *im,
                                  size_t count, double scale, size_t level, veil_error *err)
{
    VEIL_REQUIRE(enc, err);
    VEIL_REQUIRE(m, err);
    VEIL_REQUIRE(re, err);
    return encode_into(enc, NULL, m, re, im, count, scale, level, err);
}

veil_status veil_ckks_decode(const veil_ckks_encoder *enc, double *re, double *im, size_t count,
                             const veil_ckks_plaintext *pt, veil_error *err)
{
    VEIL_REQUIRE(enc, err);
    VEIL_REQUIRE(re, err);
    VEIL_REQUIRE(pt, err);
    if (!pt->m) return veil_fail(err, VEIL_ERR_ARGUMENT, "decode: the plaintext is empty");
    if (pt->ctx != enc->ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "decode: the plaintext belongs to another context");
    if (count > enc->slots)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "decode: %zu values requested, %zu slots exist", count, enc->slots);
    veil_status st = VEIL_OK;
    const size_t n = enc->n, slots = enc->slots;
    veil_poly *c = NULL;
    double *coeffs = veil_alloc(n, sizeof *coeffs);
    double complex *v = veil_alloc(slots, sizeof *v);
    if (!coeffs || !v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "decode: out of memory");
    VEIL_CHECK(veil_context_poly_new(&c, enc->ctx, pt->level, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_poly_copy(c, pt->m, err));
    VEIL_CHECK(veil_poly_to_coeff(c, err));
    VEIL_CHECK(veil_poly_centered_doubles(coeffs, c, err));
    for (size_t i = 0; i < slots; i++) v[i] = (coeffs[i] + I * coeffs[i + slots]) / pt->scale;
    special_fft(enc, v, slots);
    for (size_t i = 0; i < count; i++) {
        re[i] = creal(v[i]);
        if (im) im[i] = cimag(v[i]);
    }
done:
    veil_poly_free(c);
    veil_free_secret(coeffs, n * sizeof *coeffs);
    veil_free_secret(v, slots * sizeof *v);
    return st;
}

veil_status veil_ckks_encode_sparse(const veil_ckks_encoder *enc, veil_ckks_plaintext *out, const double *re,
                                    const double *im, size_t slots, double scale, size_t level, veil_error *err)
{
    VEIL_REQUIRE(enc, err);
    VEIL_REQUIRE(re, err);
    if (slots == 0 || slots > enc->slots || (enc->slots % slots) != 0 || (slots & (slots - 1)) != 0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "encode_sparse: %zu slots is not a power of two dividing %zu", slots,
                         enc->slots);
    veil_status st = VEIL_OK;
    double *fr = veil_alloc(enc->slots, sizeof *fr), *fi = im ? veil_alloc(enc->slots, sizeof *fi) : NULL;
    if (!fr || (im && !fi)) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encode_sparse: out of memory");
    for (size_t i = 0; i < enc->slots; i++) {
        fr[i] = re[i % slots];
        if (fi) fi[i] = im[i % slots];
    }
    VEIL_CHECK(veil_ckks_encode(enc, out, fr, fi, enc->slots, scale, level, err));
done:
    if (fr) veil_free_secret(fr, enc->slots * sizeof *fr);
    if (fi) veil_free_secret(fi, enc->slots * sizeof *fi);
    return st;
}
