/* RNS polynomials: creation, forms and element-wise arithmetic, parallel across limbs. */
#include <math.h>
#include <string.h>
#include "ring/ring_internal.h"

/*
 * The limbs a polynomial of `count` limbs occupies: count rounded up to a quarter of its power of two
 * (5, 6, 7, 8, 10, 12, 14, 16, 20, 24, ...: at most 25% more), so that polynomials a few levels apart share
 * the pool's blocks (a bootstrap walks down 25 levels: with exact sizes, every level asked the system for
 * fresh pages, a page fault and a kernel zeroing each). Over the whole ring (keys): exact. The limbs past
 * count stay zero: only count are ever written.
 */
static size_t poly_block_limbs(const veil_ring *ring, size_t count)
{
    size_t step = 1;
    while ((step << 3) <= count) step <<= 1;
    const size_t limbs = (count + step - 1) / step * step;
    return limbs < ring->count ? limbs : count; /* over the whole ring (keys): exact, no memory wasted */
}

static veil_status poly_alloc(veil_poly **out, const veil_ring *ring, const size_t *base, size_t count,
                              veil_form form, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ring, err);
    if (count == 0 || count > ring->count)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "a polynomial needs 1 to %zu limbs, not %zu", ring->count, count);
    if (form != VEIL_FORM_COEFF && form != VEIL_FORM_EVAL)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "unknown polynomial form %d", (int)form);
    for (size_t i = 0; i < count; i++) {
        if (base[i] >= ring->count)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "prime index %zu out of range (ring has %zu primes)", base[i],
                             ring->count);
        for (size_t j = 0; j < i; j++)
            if (base[j] == base[i])
                return veil_fail(err, VEIL_ERR_ARGUMENT, "prime index %zu appears twice in the base", base[i]);
    }
    veil_status st = VEIL_OK;
    veil_poly *p = veil_alloc(1, sizeof *p);
    if (p) p->data = veil_pool_get_fit(ring->pool, poly_block_limbs(ring, count) * ring->n * sizeof(uint64_t), true,
                                       &p->block_bytes);
    if (!p || !p->data) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "out of memory for a polynomial of %zu limbs", count);
    p->ring = ring;
    p->count = count;
    p->form = form;
    memcpy(p->base, base, count * sizeof base[0]);
    *out = p;
    p = NULL;
done:
    veil_free(p);
    return st;
}

veil_status veil_poly_new(veil_poly **out, const veil_ring *ring, const size_t *base, size_t count,
                          veil_form form, veil_error *err)
{
    VEIL_REQUIRE(base, err);
    return poly_alloc(out, ring, base, count, form, err);
}

veil_status veil_poly_new_range(veil_poly **out, const veil_ring *ring, size_t first, size_t count,
                                veil_form form, veil_error *err)
{
    VEIL_REQUIRE(ring, err);
    if (count == 0 || first >= ring->count || count > ring->count - first)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "primes %zu..%zu are not all in the ring (it has %zu)", first,
                         first + count - 1, ring->count);
    size_t base[VEIL_RING_MAX_PRIMES];
    for (size_t i = 0; i < count; i++) base[i] = first + i;
    return poly_alloc(out, ring, base, count, form, err);
}

void veil_poly_free(veil_poly *poly)
{
    if (!poly) return;
    const size_t bytes = poly->block_bytes; /* the whole block: a part beyond the limbs may hold an earlier use's */
    veil_wipe(poly->data, bytes); /* a polynomial may hold a secret; wiped, the block is also zeroed for reuse */
    veil_pool_put(poly->ring->pool, poly->data, bytes, true);
    veil_free_secret(poly, sizeof *poly);
}

const veil_ring *veil_poly_ring(const veil_poly *poly) { return poly ? poly->ring : NULL; }
size_t veil_poly_limb_count(const veil_poly *poly) { return poly ? poly->count : 0; }
veil_form veil_poly_form(const veil_poly *poly) { return poly ? poly->form : VEIL_FORM_COEFF; }

size_t veil_poly_prime_index(const veil_poly *poly, size_t limb)
{
    return (poly && limb < poly->count) ? poly->base[limb] : (size_t)-1;
}

uint64_t *veil_poly_limb(veil_poly *poly, size_t limb)
{
    return (poly && limb < poly->count) ? veil_poly_limb_ptr(poly, limb) : NULL;
}

const uint64_t *veil_poly_limb_const(const veil_poly *poly, size_t limb)
{
    return (poly && limb < poly->count) ? veil_poly_limb_ptr(poly, limb) : NULL;
}

veil_status veil_poly_check_base(const veil_poly *a, const veil_poly *b, const char *op, veil_error *err)
{
    if (!a || !b) return veil_fail(err, VEIL_ERR_NULL, "%s: a polynomial argument is NULL", op);
    if (a->ring != b->ring) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: polynomials of different rings", op);
    if (a->count != b->count || memcmp(a->base, b->base, a->count * sizeof a->base[0]) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: polynomials over different RNS bases (%zu vs %zu limbs)", op,
                         a->count, b->count);
    return VEIL_OK;
}

veil_status veil_poly_check_same(const veil_poly *a, const veil_poly *b, const char *op, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_poly_check_base(a, b, op, err));
    if (a->form != b->form)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "%s: one polynomial is in coefficient form, the other in NTT form", op);
done:
    return st;
}

veil_status veil_poly_copy(veil_poly *dst, const veil_poly *src, veil_error *err)
{
    VEIL_REQUIRE(dst, err);
    VEIL_REQUIRE(src, err);
    if (dst->ring != src->ring || dst->count != src->count ||
        memcmp(dst->base, src->base, dst->count * sizeof dst->base[0]) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "veil_poly_copy: polynomials over different RNS bases");
    if (dst != src) memcpy(dst->data, src->data, src->count * src->ring->n * sizeof(uint64_t));
    dst->form = src->form;
    return VEIL_OK;
}

veil_status veil_poly_set_i64(veil_poly *poly, const int64_t *coeffs, veil_error *err)
{
    VEIL_REQUIRE(poly, err);
    VEIL_REQUIRE(coeffs, err);
    const size_t n = poly->ring->n;
    for (size_t l = 0; l < poly->count; l++) {
        const veil_modulus *m = &poly->ring->mod[poly->base[l]];
        uint64_t *x = veil_poly_limb_ptr(poly, l);
        for (size_t j = 0; j < n; j++) x[j] = veil_reduce_i64(m, coeffs[j]);
    }
    poly->form = VEIL_FORM_COEFF;
    return VEIL_OK;
}

veil_status veil_poly_set_integral(veil_poly *poly, const double *coeffs, veil_error *err)
{
    VEIL_REQUIRE(poly, err);
    VEIL_REQUIRE(coeffs, err);
    const size_t n = poly->ring->n;
    for (size_t j = 0; j < n; j++)
        if (!isfinite(coeffs[j]) || coeffs[j] != round(coeffs[j]))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "poly_set_integral: coefficient %zu is not an integer", j);
    for (size_t l = 0; l < poly->count; l++) {
        const veil_modulus *m = &poly->ring->mod[poly->base[l]];
        uint64_t *x = veil_poly_limb_ptr(poly, l);
        for (size_t j = 0; j < n; j++) x[j] = veil_reduce_integral(m, coeffs[j]);
    }
    poly->form = VEIL_FORM_COEFF;
    return VEIL_OK;
}

veil_status veil_poly_set_small(veil_poly *poly, const int8_t *coeffs, veil_error *err)
{
    VEIL_REQUIRE(poly, err);
    VEIL_REQUIRE(coeffs, err);
    const size_t n = poly->ring->n;
    for (size_t l = 0; l < poly->count; l++) {
        const uint64_t q = poly->ring->primes[poly->base[l]];
        uint64_t *x = veil_poly_limb_ptr(poly, l);
        for (size_t j = 0; j < n; j++) {
            /* branch-free: c + q when c < 0 */
            int64_t c = coeffs[j];
            uint64_t neg_mask = (uint64_t)(c >> 63);
            x[j] = (uint64_t)c + (q & neg_mask);
        }
    }
    poly->form = VEIL_FORM_COEFF;
    return VEIL_OK;
}

veil_status veil_poly_validate(const veil_poly *poly, veil_error *err)
{
    VEIL_REQUIRE(poly, err);
    const size_t n = poly->ring->n;
    for (size_t l = 0; l < poly->count; l++) {
        const uint64_t q = poly->ring->primes[poly->base[l]];
        const uint64_t *x = veil_poly_limb_ptr(poly, l);
        for (size_t j = 0; j < n; j++)
            if (x[j] >= q)
                return veil_fail(err, VEIL_ERR_ARGUMENT, "residue %zu of limb %zu is not below its prime %llu", j, l,
                                 (unsigned long long)q);
    }
    return VEIL_OK;
}

static int limb_threads(const veil_poly *p)
{
    return p->count > 1 ? p->ring->threads : 1;
}

veil_status veil_poly_to_eval(veil_poly *poly, veil_error *err)
{
    VEIL_REQUIRE(poly, err);
    if (poly->form == VEIL_FORM_EVAL) return VEIL_OK;
    const veil_ring *r = poly->ring;
#pragma omp parallel for num_threads(limb_threads(poly)) schedule(static)
    for (size_t l = 0; l < poly->count; l++) veil_ntt_forward_limb(&r->ntt[poly->base[l]], veil_poly_limb_ptr(poly, l));
    poly->form = VEIL_FORM_EVAL;
    return VEIL_OK;
}

veil_status veil_poly_to_coeff(veil_poly *poly, veil_error *err)
{
    VEIL_REQUIRE(poly, err);
    if (poly->form == VEIL_FORM_COEFF) return VEIL_OK;
    const veil_ring *r = poly->ring;
#pragma omp parallel for num_threads(limb_threads(poly)) schedule(static)
    for (size_t l = 0; l < poly->count; l++) veil_ntt_inverse_limb(&r->ntt[poly->base[l]], veil_poly_limb_ptr(poly, l));
    poly->form = VEIL_FORM_COEFF;
    return VEIL_OK;
}

typedef enum { OP_ADD, OP_SUB, OP_NEG, OP_MUL, OP_MUL_ACC } elementwise_op;

static void limb_op(elementwise_op op, const veil_ring *r, size_t prime, uint64_t *o, const uint64_t *a,
                    const uint64_t *b)
{
    const size_t n = r->n;
    const uint64_t q = r->primes[prime];
    const veil_modulus *m = &r->mod[prime];
    if (r->ifma && (op == OP_ADD || op == OP_SUB || op == OP_NEG)) { /* AVX-512: eight lanes */
        veil_add_sub_avx512(o, a, op == OP_NEG ? NULL : b, n, q, op == OP_ADD ? 1 : 0);
        return;
    }
    switch (op) {
    case OP_ADD:
        for (size_t j = 0; j < n; j++) o[j] = veil_addmod(a[j], b[j], q);
        break;
    case OP_SUB:
        for (size_t j = 0; j < n; j++) o[j] = veil_submod(a[j], b[j], q);
        break;
    case OP_NEG:
        for (size_t j = 0; j < n; j++) o[j] = veil_submod(0, a[j], q);
        break;
    case OP_MUL:
        if (r->ntt[prime].use_ifma) veil_mul_ifma(o, a, b, n, q);
        else if (r->ntt[prime].use_simd) veil_mul_avx2(o, a, b, n, q);
        else
            for (size_t j = 0; j < n; j++) o[j] = veil_mulmod(m, a[j], b[j]);
        break;
    case OP_MUL_ACC:
        if (r->ntt[prime].use_ifma) veil_mul_acc_ifma(o, a, b, n, q);
        else if (r->ntt[prime].use_simd) veil_mul_acc_avx2(o, a, b, n, q);
        else
            for (size_t j = 0; j < n; j++) o[j] = veil_reduce128(m, (veil_u128)a[j] * b[j] + o[j]);
        break;
    }
}

static veil_status elementwise(elementwise_op op, veil_poly *out, const veil_poly *a, const veil_poly *b,
                               const char *name, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(a, err);
    veil_status st = VEIL_OK;
    if (b) VEIL_CHECK(veil_poly_check_same(a, b, name, err));
    /* the output's previous form does not matter, except when it is accumulated into */
    if (op == OP_MUL_ACC) VEIL_CHECK(veil_poly_check_same(out, a, name, err));
    else VEIL_CHECK(veil_poly_check_base(out, a, name, err));
    if ((op == OP_MUL || op == OP_MUL_ACC) && a->form != VEIL_FORM_EVAL)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "%s: products need the evaluation (NTT) form", name);
    out->form = a->form;
    const veil_ring *r = a->ring;
#pragma omp parallel for num_threads(limb_threads(a)) schedule(static)
    for (size_t l = 0; l < a->count; l++)
        limb_op(op, r, a->base[l], veil_poly_limb_ptr(out, l), veil_poly_limb_ptr(a, l),
                b ? veil_poly_limb_ptr(b, l) : NULL);
done:
    return st;
}

veil_status veil_poly_add(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err)
{
    VEIL_REQUIRE(b, err);
    return elementwise(OP_ADD, out, a, b, "veil_poly_add", err);
}

veil_status veil_poly_sub(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err)
{
    VEIL_REQUIRE(b, err);
    return elementwise(OP_SUB, out, a, b, "veil_poly_sub", err);
}

veil_status veil_poly_neg(veil_poly *out, const veil_poly *a, veil_error *err)
{
    return elementwise(OP_NEG, out, a, NULL, "veil_poly_neg", err);
}

veil_status veil_poly_mul(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err)
{
    VEIL_REQUIRE(b, err);
    return elementwise(OP_MUL, out, a, b, "veil_poly_mul", err);
}

veil_status veil_poly_mul_acc(veil_poly *out, const veil_poly *a, const veil_poly *b, veil_error *err)
{
    VEIL_REQUIRE(b, err);
    return elementwise(OP_MUL_ACC, out, a, b, "veil_poly_mul_acc", err);
}

/* out = a times the integer s (big false) or wide (big true: an integer-valued double of any magnitude). */
static veil_status mul_scalar(veil_poly *out, const veil_poly *a, int64_t s, double wide, bool big, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(a, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_poly_check_base(out, a, "veil_poly_mul_scalar", err));
    out->form = a->form;
    const veil_ring *r = a->ring;
    const size_t n = r->n;
#pragma omp parallel for num_threads(limb_threads(a)) schedule(static)
    for (size_t l = 0; l < a->count; l++) {
        const size_t prime = a->base[l];
        const uint64_t q = r->primes[prime];
        const uint64_t w = big ? veil_reduce_integral(&r->mod[prime], wide) : veil_reduce_i64(&r->mod[prime], s);
        const uint64_t ws = veil_shoup_precompute(w, q);
        const uint64_t *x = veil_poly_limb_ptr(a, l);
        uint64_t *o = veil_poly_limb_ptr(out, l);
        if (r->ntt[prime].use_ifma) veil_mul_const_ifma(o, x, n, q, w);
        else if (r->ntt[prime].use_simd) veil_mul_const_avx2(o, x, n, q, w);
        else
            for (size_t j = 0; j < n; j++) o[j] = veil_mulmod_shoup(x[j], w, ws, q);
    }
done:
    return st;
}

veil_status veil_poly_mul_scalar(veil_poly *out, const veil_poly *a, int64_t s, veil_error *err)
{
    return mul_scalar(out, a, s, 0, false, err);
}

veil_status veil_poly_mul_integral(veil_poly *out, const veil_poly *a, double s, veil_error *err)
{
    if (!isfinite(s) || s != round(s))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "poly_mul_integral: %g is not an integer", s);
    return mul_scalar(out, a, 0, s, true, err);
}

void veil_limb_mul(const veil_ring *r, size_t prime, uint64_t *out, const uint64_t *a, const uint64_t *b, bool accumulate)
{
    limb_op(accumulate ? OP_MUL_ACC : OP_MUL, r, prime, out, a, b);
}

void veil_poly_view(veil_poly *view, const veil_ring *ring, const size_t *base, size_t count, veil_form form,
                    uint64_t *data)
{
    view->ring = ring;
    view->count = count;
    view->form = form;
    memcpy(view->base, base, count * sizeof *base);
    view->data = data;
    view->block_bytes = count * ring->n * sizeof(uint64_t); /* not the pool's: a view is never freed */
}
