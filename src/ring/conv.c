/*
 * Fast base conversion (Bajard, Eynard, Hasan, Zucca, SAC 2016, section 2.2), exact rescaling by the last
 * prime, and ModUp / ModDown for hybrid key switching (Han, Ki, CT-RSA 2020, section 3).
 */
#include <string.h>
#include "ring/ring_internal.h"

struct veil_base_conv {
    const veil_ring *ring;
    size_t from_count, to_count;
    size_t from[VEIL_RING_MAX_PRIMES], to[VEIL_RING_MAX_PRIMES];
    uint64_t inv_hat[VEIL_RING_MAX_PRIMES];       /* [(B/b_i)^-1]_{b_i} */
    uint64_t inv_hat_shoup[VEIL_RING_MAX_PRIMES];
    uint64_t *hat_mod;                            /* [to_count][from_count + 1]: (B/b_i) mod c_j, then -B mod c_j */
    double *hat_simd, *hat_simd_q;                /* the same, balanced, as doubles, and divided by c_j */
    double inv_from[VEIL_RING_MAX_PRIMES];        /* 1 / b_i, for the exact (centered) conversion */
    bool simd;                                    /* every prime of both bases is below 2^50 and uses AVX2 */
    uint64_t prod_inv[VEIL_RING_MAX_PRIMES];      /* B^-1 mod c_j */
};

static veil_status check_indices(const veil_ring *ring, const size_t *idx, size_t count, const char *what,
                                 veil_error *err)
{
    if (count == 0 || count > ring->count)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "base conversion: the %s base has %zu primes", what, count);
    for (size_t i = 0; i < count; i++) {
        if (idx[i] >= ring->count)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "base conversion: prime index %zu out of range", idx[i]);
        for (size_t j = 0; j < i; j++)
            if (idx[j] == idx[i])
                return veil_fail(err, VEIL_ERR_ARGUMENT, "base conversion: prime index %zu repeated", idx[i]);
    }
    return VEIL_OK;
}

/* The product of the primes `idx` modulo q. */
static uint64_t product_mod(const veil_ring *ring, const size_t *idx, size_t count, uint64_t q)
{
    uint64_t p = 1;
    for (size_t i = 0; i < count; i++) p = veil_mod_mul(p, ring->primes[idx[i]] % q, q);
    return p;
}

veil_status veil_base_conv_new(veil_base_conv **out, const veil_ring *ring, const size_t *from, size_t from_count,
                               const size_t *to, size_t to_count, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ring, err);
    VEIL_REQUIRE(from, err);
    VEIL_REQUIRE(to, err);
    veil_status st = VEIL_OK;
    veil_base_conv *c = NULL;
    VEIL_CHECK(check_indices(ring, from, from_count, "source", err));
    VEIL_CHECK(check_indices(ring, to, to_count, "target", err));
    for (size_t i = 0; i < from_count; i++)
        for (size_t j = 0; j < to_count; j++)
            if (from[i] == to[j])
                VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "base conversion: prime index %zu is in both bases", from[i]);
    c = veil_alloc(1, sizeof *c);
    if (c) {
        c->hat_mod = veil_alloc((from_count + 1) * to_count, sizeof(uint64_t));
        c->hat_simd = veil_alloc((from_count + 1) * to_count, sizeof(double));
        c->hat_simd_q = veil_alloc((from_count + 1) * to_count, sizeof(double));
    }
    if (!c || !c->hat_mod || !c->hat_simd || !c->hat_simd_q)
        VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "base conversion: out of memory");
    c->ring = ring;
    c->from_count = from_count;
    c->to_count = to_count;
    memcpy(c->from, from, from_count * sizeof *from);
    memcpy(c->to, to, to_count * sizeof *to);
    for (size_t i = 0; i < from_count; i++) {
        const uint64_t b = ring->primes[from[i]];
        uint64_t hat = 1;
        for (size_t k = 0; k < from_count; k++)
            if (k != i) hat = veil_mod_mul(hat, ring->primes[from[k]] % b, b);
        veil_mod_inv(&c->inv_hat[i], hat, b, NULL); /* distinct primes: always invertible */
        c->inv_hat_shoup[i] = veil_shoup_precompute(c->inv_hat[i], b);
        c->inv_from[i] = 1.0 / (double)b;
    }
    const size_t cols = from_count + 1;
    for (size_t j = 0; j < to_count; j++) {
        const uint64_t q = ring->primes[to[j]];
        const uint64_t prod = product_mod(ring, from, from_count, q);
        for (size_t i = 0; i <= from_count; i++) {
            uint64_t hat = 1;
            if (i == from_count) hat = veil_submod(0, prod, q); /* -B: removes u*B in the exact conversion */
            else
                for (size_t k = 0; k < from_count; k++)
                    if (k != i) hat = veil_mod_mul(hat, ring->primes[from[k]] % q, q);
            c->hat_mod[j * cols + i] = hat;
            double balanced = hat > q / 2 ? -(double)(q - hat) : (double)hat;
            c->hat_simd[j * cols + i] = balanced;
            c->hat_simd_q[j * cols + i] = balanced / (double)q;
        }
        veil_mod_inv(&c->prod_inv[j], prod, q, NULL);
    }
    c->simd = true;
    for (size_t i = 0; i < from_count; i++) c->simd = c->simd && ring->ntt[from[i]].use_simd;
    for (size_t j = 0; j < to_count; j++) c->simd = c->simd && ring->ntt[to[j]].use_simd;
    *out = c;
    c = NULL;
done:
    veil_base_conv_free(c);
    return st;
}

void veil_base_conv_free(veil_base_conv *conv)
{
    if (!conv) return;
    veil_free(conv->hat_mod);
    veil_free(conv->hat_simd);
    veil_free(conv->hat_simd_q);
    veil_free(conv);
}

static int thread_count(const veil_ring *r, size_t limbs)
{
    return limbs > 1 ? r->threads : 1;
}

/*
 * The conversion itself. src[i] points at the n residues modulo from[i]; dst[j] receives the residues
 * modulo to[j]. y_i = x_i * (B/b_i)^-1 mod b_i, then out_j = sum_i y_i * (B/b_i) accumulated in 128 bits
 * without reduction (each product < 2^122, at most 64 terms) and reduced once (Barrett). The work runs on
 * blocks of CONV_BLOCK coefficients so that the y values of a block stay in L1 while every output limb
 * reads them; blocks are independent, so the result does not depend on the thread count.
 */
#define CONV_BLOCK 64

/*
 * centered: also computes u = round(sum_i y_i / b_i) in double precision and subtracts u*B, which gives
 * the centered representative of x modulo B, |x| <= B/2 (Halevi, Polyakov, Shoup, CT-RSA 2019,
 * section 2.2). Each term y_i * (1/b_i) is off by at most 3 * 2^-53 and below 1, the running sum (below
 * kf) adds at most (kf - 1) * kf * 2^-53 and the + 0.5 at most (kf + 1) * 2^-53: in all less than
 * (kf^2 + 4) * 2^-53, so only when x mod B lies within (kf^2 + 4) * 2^-53 * B of B/2 may the other
 * representative (x or x - B) come out. u is at most kf, so it joins the sum as one more small term.
 */
static void convert_block(const veil_base_conv *c, uint64_t *const *dst, const uint64_t *const *src, size_t start,
                          size_t len, bool centered)
{
    const veil_ring *r = c->ring;
    const size_t kf = c->from_count, cols = kf + 1, terms = centered ? kf + 1 : kf;
    if (kf == 1) { /* one source prime b (a key-switching digit of one prime): B/b = 1, y = x, u = [x > b/2] */
        const uint64_t b = r->primes[c->from[0]];
        const uint64_t *x = src[0] + start;
        for (size_t j = 0; j < c->to_count; j++) {
            const veil_modulus *m = &r->mod[c->to[j]];
            uint64_t *o = dst[j] + start;
            if (centered && c->simd) {
                if (r->ntt[c->to[j]].use_ifma) veil_center_reduce_ifma(o, x, len, b, m->q);
                else veil_center_reduce_avx2(o, x, len, b, m->q);
                continue;
            }
            const uint64_t b_mod = veil_reduce64(m, b);
            for (size_t t = 0; t < len; t++) {
                const uint64_t v = veil_reduce64(m, x[t]);
                o[t] = centered && x[t] > b / 2 ? veil_submod(v, b_mod, m->q) : v;
            }
        }
        return;
    }
    uint64_t y[(VEIL_RING_MAX_PRIMES + 1) * CONV_BLOCK];
    for (size_t i = 0; i < kf; i++) {
        const uint64_t b = r->primes[c->from[i]], w = c->inv_hat[i], ws = c->inv_hat_shoup[i];
        uint64_t *yi = y + i * CONV_BLOCK;
        if (r->ntt[c->from[i]].use_ifma) veil_mul_const_ifma(yi, src[i] + start, len, b, w);
        else if (r->ntt[c->from[i]].use_simd) veil_mul_const_avx2(yi, src[i] + start, len, b, w);
        else
            for (size_t t = 0; t < len; t++) yi[t] = veil_mulmod_shoup(src[i][start + t], w, ws, b);
    }
    if (centered) {
        uint64_t *u = y + kf * CONV_BLOCK;
        for (size_t t = 0; t < len; t++) {
            double sum = 0;
            for (size_t i = 0; i < kf; i++) sum += (double)y[i * CONV_BLOCK + t] * c->inv_from[i];
            u[t] = (uint64_t)(sum + 0.5); /* sum >= 0: round to nearest */
        }
    }
    for (size_t j = 0; j < c->to_count; j++) {
        if (c->simd && r->ntt[c->to[j]].use_ifma && terms <= VEIL_DOT_IFMA_MAX_TERMS) { /* exact 52-bit halves */
            veil_dot_const_ifma(dst[j] + start, y, CONV_BLOCK, terms, c->hat_mod + j * cols, len, r->primes[c->to[j]]);
            continue;
        }
        if (c->simd) { /* the same sum with exact double-precision products, reduced every 8 terms */
            veil_dot_const_avx2(dst[j] + start, y, CONV_BLOCK, terms, c->hat_simd + j * cols, c->hat_simd_q + j * cols,
                                len, r->primes[c->to[j]]);
            continue;
        }
        const veil_modulus *m = &r->mod[c->to[j]];
        const uint64_t *hat = c->hat_mod + j * cols;
        uint64_t *o = dst[j] + start;
        for (size_t t = 0; t < len; t++) {
            veil_u128 acc = 0;
            for (size_t i = 0; i < terms; i++) acc += (veil_u128)y[i * CONV_BLOCK + t] * hat[i];
            o[t] = veil_reduce128(m, acc);
        }
    }
}

static veil_status convert(const veil_base_conv *c, uint64_t *const *dst, const uint64_t *const *src, bool centered,
                           veil_error *err)
{
    (void)err;
    const veil_ring *r = c->ring;
    const size_t n = r->n;
#pragma omp parallel for num_threads(r->threads) schedule(static)
    for (size_t start = 0; start < n; start += CONV_BLOCK)
        convert_block(c, dst, src, start, n - start < CONV_BLOCK ? n - start : CONV_BLOCK, centered);
    return VEIL_OK;
}

static int same_indices(const size_t *a, const size_t *b, size_t count)
{
    return memcmp(a, b, count * sizeof *a) == 0;
}

static veil_status conv_apply(const veil_base_conv *conv, veil_poly *out, const veil_poly *in, bool centered,
                              veil_error *err);

veil_status veil_base_conv_apply(const veil_base_conv *conv, veil_poly *out, const veil_poly *in, veil_error *err)
{
    return conv_apply(conv, out, in, false, err);
}

veil_status veil_base_conv_apply_centered(const veil_base_conv *conv, veil_poly *out, const veil_poly *in,
                                          veil_error *err)
{
    return conv_apply(conv, out, in, true, err);
}

static veil_status conv_apply(const veil_base_conv *conv, veil_poly *out, const veil_poly *in, bool centered,
                              veil_error *err)
{
    VEIL_REQUIRE(conv, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    if (in->ring != conv->ring || out->ring != conv->ring)
        return veil_fail(err, VEIL_ERR_MISMATCH, "veil_base_conv_apply: polynomials of another ring");
    if (in->count != conv->from_count || !same_indices(in->base, conv->from, in->count))
        return veil_fail(err, VEIL_ERR_MISMATCH, "veil_base_conv_apply: the input is not over the source base");
    if (out->count != conv->to_count || !same_indices(out->base, conv->to, out->count))
        return veil_fail(err, VEIL_ERR_MISMATCH, "veil_base_conv_apply: the output is not over the target base");
    if (in->form != VEIL_FORM_COEFF)
        return veil_fail(err, VEIL_ERR_MISMATCH, "veil_base_conv_apply: the input must be in coefficient form");
    const uint64_t *src[VEIL_RING_MAX_PRIMES];
    uint64_t *dst[VEIL_RING_MAX_PRIMES];
    for (size_t i = 0; i < in->count; i++) src[i] = veil_poly_limb_ptr(in, i);
    for (size_t j = 0; j < out->count; j++) dst[j] = veil_poly_limb_ptr(out, j);
    out->form = VEIL_FORM_COEFF;
    return convert(conv, dst, src, centered, err);
}

/*
 * Shared by rescale and ModDown: for each target limb j, out_j = (x_j - d_j) * B^-1 mod c_j, where
 * d (given in coefficient form, one limb per target prime) is congruent to x modulo B. When x is in
 * evaluation form, d is transformed first. out may alias neither x nor d.
 */
static void divide_by_base(uint64_t *const *out, const uint64_t *const *x, uint64_t *const *d, const size_t *to,
                           const uint64_t *inv, size_t count, const veil_ring *r, veil_form form)
{
    const size_t n = r->n;
#pragma omp parallel for num_threads(thread_count(r, count)) schedule(static)
    for (size_t j = 0; j < count; j++) {
        const size_t p = to[j];
        const uint64_t q = r->primes[p], w = inv[j], ws = veil_shoup_precompute(w, q);
        if (form == VEIL_FORM_EVAL) veil_ntt_forward_limb(&r->ntt[p], d[j]);
        if (r->ntt[p].use_ifma) veil_sub_mul_const_ifma(out[j], x[j], d[j], n, q, w);
        else if (r->ntt[p].use_simd) veil_sub_mul_const_avx2(out[j], x[j], d[j], n, q, w);
        else
            for (size_t t = 0; t < n; t++) out[j][t] = veil_mulmod_shoup(veil_submod(x[j][t], d[j][t], q), w, ws, q);
    }
}

/* x[0..n) *= w mod q (a scalar product on one limb, either form). */
static void scale_limb(uint64_t *x, size_t n, uint64_t w, uint64_t q)
{
    const uint64_t ws = veil_shoup_precompute(w, q);
    for (size_t t = 0; t < n; t++) x[t] = veil_mulmod_shoup(x[t], w, ws, q);
}

static veil_status rescale(veil_poly *out, const veil_poly *in, uint64_t t, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    if (in->count < 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_poly_rescale: needs at least two limbs");
    const size_t keep = in->count - 1;
    if (out->ring != in->ring || out->count != keep || !same_indices(out->base, in->base, keep))
        return veil_fail(err, VEIL_ERR_MISMATCH, "veil_poly_rescale: the output must be over the input's first %zu limbs",
                         keep);
    if (out == in) return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_poly_rescale: out must not alias in");
    const veil_ring *r = in->ring;
    const size_t n = r->n, last = in->base[keep];
    const uint64_t ql = r->primes[last], half = ql / 2;
    const size_t scratch_bytes = veil_pool_block_bytes((keep + 1) * n * sizeof(uint64_t));
    uint64_t *scratch = veil_pool_get(r->pool, scratch_bytes, false);
    if (!scratch) return veil_fail(err, VEIL_ERR_NO_MEMORY, "veil_poly_rescale: out of memory");
    uint64_t *xl = scratch + keep * n;
    memcpy(xl, veil_poly_limb_ptr(in, keep), n * sizeof *xl);
    if (in->form == VEIL_FORM_EVAL) veil_ntt_inverse_limb(&r->ntt[last], xl);
    /* with a plaintext modulus t (BGV): d = t [x t^-1]_{q_l}, so that d = x mod q_l and d = 0 mod t */
    uint64_t t_inv = 0;
    if (t > 1) veil_mod_inv(&t_inv, t % ql, ql, NULL);
    if (t > 1) scale_limb(xl, n, t_inv, ql);
    /* d = the centered representative of x mod q_l, so that (x - d) / q_l = round(x / q_l) exactly */
    uint64_t *d[VEIL_RING_MAX_PRIMES], inv[VEIL_RING_MAX_PRIMES];
    const uint64_t *x[VEIL_RING_MAX_PRIMES];
    uint64_t *o[VEIL_RING_MAX_PRIMES];
    for (size_t j = 0; j < keep; j++) {
        const size_t p = in->base[j];
        const uint64_t q = r->primes[p], ql_mod = ql % q;
        d[j] = scratch + j * n;
        x[j] = veil_poly_limb_ptr(in, j);
        o[j] = veil_poly_limb_ptr(out, j);
        veil_mod_inv(&inv[j], ql_mod, q, NULL);
        if (r->ntt[p].use_ifma && r->ntt[last].use_simd) {
            veil_center_reduce_ifma(d[j], xl, n, ql, q);
        } else if (r->ntt[p].use_simd && r->ntt[last].use_simd) {
            veil_center_reduce_avx2(d[j], xl, n, ql, q);
        } else {
            const uint64_t one_shoup = veil_shoup_precompute(1, q); /* Shoup by 1: v mod q for any 64-bit v */
            for (size_t c = 0; c < n; c++) {
                uint64_t v = xl[c];
                /* d = v when v <= half, else v - q_l (negative): v mod q, minus q_l mod q when v > half */
                uint64_t pos = veil_mulmod_shoup(v, 1, one_shoup, q);
                uint64_t sub = ql_mod & (0 - (uint64_t)(v > half));
                d[j][c] = veil_submod(pos, sub, q);
            }
        }
        if (t > 1) scale_limb(d[j], n, t % q, q);
    }
    divide_by_base(o, x, d, in->base, inv, keep, r, in->form);
    out->form = in->form;
    veil_wipe(scratch, scratch_bytes); /* all of it: the block's tail may hold an earlier user's data */
    veil_pool_put(r->pool, scratch, scratch_bytes, true);
    return VEIL_OK;
}

veil_status veil_poly_rescale(veil_poly *out, const veil_poly *in, veil_error *err)
{
    return rescale(out, in, 0, err);
}

veil_status veil_poly_rescale_t(veil_poly *out, const veil_poly *in, uint64_t t, veil_error *err)
{
    if (t < 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_poly_rescale_t: plaintext modulus %llu < 2", (unsigned long long)t);
    return rescale(out, in, t, err);
}

veil_status veil_poly_mod_up(veil_poly *out, const veil_poly *in, const veil_base_conv *conv, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    VEIL_REQUIRE(conv, err);
    const size_t kd = conv->from_count, ke = conv->to_count;
    if (in->ring != conv->ring || out->ring != conv->ring || in->count != kd || !same_indices(in->base, conv->from, kd))
        return veil_fail(err, VEIL_ERR_MISMATCH, "veil_poly_mod_up: the input is not over the conversion's source base");
    if (out->count != kd + ke || !same_indices(out->base, conv->from, kd) || !same_indices(out->base + kd, conv->to, ke))
        return veil_fail(err, VEIL_ERR_MISMATCH,
                         "veil_poly_mod_up: the output must be over the source base followed by the target base");
    if (out == in) return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_poly_mod_up: out must not alias in");
    const veil_ring *r = in->ring;
    const size_t n = r->n;
    veil_status st = VEIL_OK;
    uint64_t *coeff = NULL;
    memcpy(out->data, in->data, kd * n * sizeof(uint64_t));
    const uint64_t *src[VEIL_RING_MAX_PRIMES];
    uint64_t *dst[VEIL_RING_MAX_PRIMES];
    for (size_t j = 0; j < ke; j++) dst[j] = veil_poly_limb_ptr(out, kd + j);
    if (in->form == VEIL_FORM_EVAL) {
        coeff = veil_pool_get(r->pool, veil_pool_block_bytes(kd * n * sizeof(uint64_t)), false);
        if (!coeff) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "veil_poly_mod_up: out of memory");
        memcpy(coeff, in->data, kd * n * sizeof(uint64_t));
#pragma omp parallel for num_threads(thread_count(r, kd)) schedule(static)
        for (size_t i = 0; i < kd; i++) veil_ntt_inverse_limb(&r->ntt[in->base[i]], coeff + i * n);
        for (size_t i = 0; i < kd; i++) src[i] = coeff + i * n;
    } else {
        for (size_t i = 0; i < kd; i++) src[i] = veil_poly_limb_ptr(in, i);
    }
    out->form = in->form;
    VEIL_CHECK(convert(conv, dst, src, true, err));
    if (in->form == VEIL_FORM_EVAL) {
#pragma omp parallel for num_threads(thread_count(r, ke)) schedule(static)
        for (size_t j = 0; j < ke; j++) veil_ntt_forward_limb(&r->ntt[conv->to[j]], dst[j]);
    }
done:
    if (coeff) {
        veil_wipe(coeff, veil_pool_block_bytes(kd * n * sizeof(uint64_t)));
        veil_pool_put(r->pool, coeff, veil_pool_block_bytes(kd * n * sizeof(uint64_t)), true);
    }
    return st;
}

static veil_status mod_down(veil_poly *out, const veil_poly *in, const veil_base_conv *conv, uint64_t t, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    VEIL_REQUIRE(conv, err);
    const size_t kp = conv->from_count, kq = conv->to_count;
    if (in->ring != conv->ring || out->ring != conv->ring || in->count != kq + kp ||
        !same_indices(in->base, conv->to, kq) || !same_indices(in->base + kq, conv->from, kp))
        return veil_fail(err, VEIL_ERR_MISMATCH,
                         "veil_poly_mod_down: the input must be over the target base Q followed by the source base P");
    if (out->count != kq || !same_indices(out->base, conv->to, kq))
        return veil_fail(err, VEIL_ERR_MISMATCH, "veil_poly_mod_down: the output must be over the base Q");
    if (out == in) return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_poly_mod_down: out must not alias in");
    const veil_ring *r = in->ring;
    const size_t n = r->n;
    veil_status st = VEIL_OK;
    const size_t scratch_bytes = veil_pool_block_bytes((kp + kq) * n * sizeof(uint64_t));
    uint64_t *scratch = veil_pool_get(r->pool, scratch_bytes, false);
    if (!scratch) return veil_fail(err, VEIL_ERR_NO_MEMORY, "veil_poly_mod_down: out of memory");
    /* x mod P limb by limb, in coefficient form */
    const uint64_t *src[VEIL_RING_MAX_PRIMES];
    uint64_t *d[VEIL_RING_MAX_PRIMES], *o[VEIL_RING_MAX_PRIMES];
    const uint64_t *x[VEIL_RING_MAX_PRIMES];
#pragma omp parallel for num_threads(thread_count(r, kp)) schedule(static)
    for (size_t i = 0; i < kp; i++) {
        uint64_t *v = scratch + i * n;
        memcpy(v, veil_poly_limb_ptr(in, kq + i), n * sizeof *v);
        if (in->form == VEIL_FORM_EVAL) veil_ntt_inverse_limb(&r->ntt[conv->from[i]], v);
        if (t > 1) { /* BGV: convert x t^-1 mod P, and multiply the result by t (see rescale) */
            const uint64_t p = r->primes[conv->from[i]];
            uint64_t t_inv = 0;
            veil_mod_inv(&t_inv, t % p, p, NULL);
            scale_limb(v, n, t_inv, p);
        }
    }
    for (size_t i = 0; i < kp; i++) src[i] = scratch + i * n;
    for (size_t j = 0; j < kq; j++) {
        d[j] = scratch + (kp + j) * n;
        x[j] = veil_poly_limb_ptr(in, j);
        o[j] = veil_poly_limb_ptr(out, j);
    }
    /* d = the centered representative of x mod P, so that out = (x - d) / P = round(x / P) */
    VEIL_CHECK(convert(conv, d, src, true, err));
    if (t > 1)
        for (size_t j = 0; j < kq; j++) scale_limb(d[j], n, t % r->primes[conv->to[j]], r->primes[conv->to[j]]);
    divide_by_base(o, x, d, conv->to, conv->prod_inv, kq, r, in->form);
    out->form = in->form;
done:
    veil_wipe(scratch, scratch_bytes); /* all of it: the block's tail may hold an earlier user's data */
    veil_pool_put(r->pool, scratch, scratch_bytes, true);
    return st;
}

veil_status veil_poly_mod_down(veil_poly *out, const veil_poly *in, const veil_base_conv *conv, veil_error *err)
{
    return mod_down(out, in, conv, 0, err);
}

veil_status veil_poly_mod_down_t(veil_poly *out, const veil_poly *in, const veil_base_conv *conv, uint64_t t,
                                 veil_error *err)
{
    if (t < 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_poly_mod_down_t: plaintext modulus %llu < 2", (unsigned long long)t);
    return mod_down(out, in, conv, t, err);
}
