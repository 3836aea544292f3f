/*
 * BGV encoding. Batching (Smart-Vercauteren 2014; Gentry-Halevi-Smart 2012): for t prime, t = 1 mod 2N,
 * X^N + 1 splits modulo t into N linear factors X - zeta^e (zeta a primitive 2N-th root of unity mod t, e
 * odd), so a polynomial mod t is the vector of its values at those roots. Slot (row r, column i) holds the
 * value at zeta^(5^i) for r = 0 and zeta^(-5^i) for r = 1: X -> X^5 then rotates both rows by one column,
 * X -> X^(2N-1) swaps the rows.
 */
#include <string.h>
#include "bgv/bgv_internal.h"

static bool is_batching_modulus(uint64_t t, size_t n)
{
    return t > 2 && t % (2 * (uint64_t)n) == 1 && veil_is_prime(t);
}

/* The NTT modulo t and the position of every slot in its output. */
static veil_status batching_init(veil_bgv_encoder *e, veil_error *err)
{
    veil_status st = VEIL_OK;
    uint64_t t = e->t;
    VEIL_CHECK(veil_ring_new(&e->slots_ring, e->n, &t, 1, NULL, err));
    e->slot_pos = veil_alloc(e->n, sizeof *e->slot_pos);
    if (!e->slot_pos) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bgv encoder: out of memory");
    /* the forward NTT puts the value at zeta^(2 brv(j) + 1) at position j */
    const size_t n = e->n, half = n / 2, two_n = 2 * n;
    unsigned log_n = 0;
    while (((size_t)1 << log_n) < n) log_n++;
    uint64_t g = 1;
    for (size_t i = 0; i < half; i++) {
        const uint64_t exps[2] = {g, two_n - g};
        for (int r = 0; r < 2; r++) e->slot_pos[(size_t)r * half + i] = veil_bitrev((size_t)(exps[r] - 1) / 2, log_n);
        g = g * 5 % two_n;
    }
done:
    return st;
}

veil_status veil_bgv_encoder_new(veil_bgv_encoder **out, const veil_context *ctx, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    const uint64_t t = ctx->params.t;
    if (t == 0) return veil_fail(err, VEIL_ERR_MISMATCH, "bgv encoder: the parameter set has no plaintext modulus (a CKKS set)");
    veil_status st = VEIL_OK;
    veil_bgv_encoder *e = veil_alloc(1, sizeof *e);
    if (!e) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bgv encoder: out of memory");
    e->ctx = ctx;
    e->t = t;
    e->n = ctx->params.n;
    if (is_batching_modulus(t, e->n)) VEIL_CHECK(batching_init(e, err));
    *out = e;
    e = NULL;
done:
    veil_bgv_encoder_free(e);
    return st;
}

void veil_bgv_encoder_free(veil_bgv_encoder *enc)
{
    if (!enc) return;
    veil_ring_free(enc->slots_ring);
    veil_free(enc->slot_pos);
    veil_free(enc);
}

bool veil_bgv_encoder_batching(const veil_bgv_encoder *enc)
{
    return enc && enc->slots_ring;
}

veil_status veil_bgv_plaintext_new(veil_bgv_plaintext **out, const veil_context *ctx, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    if (ctx->params.t == 0) return veil_fail(err, VEIL_ERR_MISMATCH, "bgv plaintext: a CKKS parameter set");
    veil_status st = VEIL_OK;
    veil_bgv_plaintext *p = veil_alloc(1, sizeof *p);
    if (p) p->m = veil_alloc(ctx->params.n, sizeof *p->m);
    if (!p || !p->m) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bgv plaintext: out of memory");
    p->ctx = ctx;
    *out = p;
    p = NULL;
done:
    veil_bgv_plaintext_free(p);
    return st;
}

void veil_bgv_plaintext_free(veil_bgv_plaintext *pt)
{
    if (!pt) return;
    if (pt->m) veil_free_secret(pt->m, pt->ctx ? pt->ctx->params.n * sizeof *pt->m : 0);
    veil_free(pt);
}

static veil_status check_encode(const veil_bgv_encoder *enc, const veil_bgv_plaintext *pt, const void *values,
                                size_t count, bool slots, veil_error *err)
{
    VEIL_REQUIRE(enc, err);
    VEIL_REQUIRE(pt, err);
    if (count) VEIL_REQUIRE(values, err);
    if (pt->ctx != enc->ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "bgv encode: the plaintext belongs to another context");
    if (count > enc->n) return veil_fail(err, VEIL_ERR_ARGUMENT, "bgv encode: %zu values for %zu slots", count, enc->n);
    if (slots && !enc->slots_ring)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED,
                         "bgv encode: batching needs a prime t = 1 mod 2N (t = %llu, N = %zu); use the coefficient encoder",
                         (unsigned long long)enc->t, enc->n);
    return VEIL_OK;
}

/* m = the polynomial whose slot values are v (v overwritten). */
static veil_status slots_to_poly(const veil_bgv_encoder *enc, uint64_t *m, const uint64_t *v, veil_error *err)
{
    for (size_t i = 0; i < enc->n; i++) m[enc->slot_pos[i]] = v[i];
    return veil_ntt_inverse(enc->slots_ring, 0, m, err);
}

veil_status veil_bgv_encode(const veil_bgv_encoder *enc, veil_bgv_plaintext *out, const uint64_t *values, size_t count,
                            veil_error *err)
{
    veil_status st = VEIL_OK;
    uint64_t *v = NULL;
    VEIL_CHECK(check_encode(enc, out, values, count, true, err));
    v = veil_alloc(enc->n, sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bgv encode: out of memory");
    for (size_t i = 0; i < count; i++) {
        if (values[i] >= enc->t)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "bgv encode: value %zu (%llu) is not below t = %llu", i,
                      (unsigned long long)values[i], (unsigned long long)enc->t);
        v[i] = values[i];
    }
    VEIL_CHECK(slots_to_poly(enc, out->m, v, err));
done:
    if (v) veil_free_secret(v, enc->n * sizeof *v);
    return st;
}

/* v mod t for a signed v with |v| <= t/2 (checked by the caller). */
static uint64_t to_residue(int64_t v, uint64_t t)
{
    return v < 0 ? t - (uint64_t)(-(v + 1)) - 1 : (uint64_t)v;
}

static veil_status signed_in_range(const int64_t *values, size_t count, uint64_t t, const char *op, veil_error *err)
{
    const uint64_t half = t / 2;
    for (size_t i = 0; i < count; i++) {
        const uint64_t mag = values[i] < 0 ? (uint64_t)(-(values[i] + 1)) + 1 : (uint64_t)values[i];
        if (values[i] < 0 ? mag > (t - 1) / 2 : mag > half)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: value %zu (%lld) is outside [-%llu, %llu] for t = %llu", op, i,
                             (long long)values[i], (unsigned long long)((t - 1) / 2), (unsigned long long)half,
                             (unsigned long long)t);
    }
    return VEIL_OK;
}

veil_status veil_bgv_encode_signed(const veil_bgv_encoder *enc, veil_bgv_plaintext *out, const int64_t *values,
                                   size_t count, veil_error *err)
{
    veil_status st = VEIL_OK;
    uint64_t *v = NULL;
    VEIL_CHECK(check_encode(enc, out, values, count, true, err));
    VEIL_CHECK(signed_in_range(values, count, enc->t, "bgv encode", err));
    v = veil_alloc(enc->n, sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bgv encode: out of memory");
    for (size_t i = 0; i < count; i++) v[i] = to_residue(values[i], enc->t);
    VEIL_CHECK(slots_to_poly(enc, out->m, v, err));
done:
    if (v) veil_free_secret(v, enc->n * sizeof *v);
    return st;
}

static veil_status poly_to_slots(const veil_bgv_encoder *enc, uint64_t *v, const veil_bgv_plaintext *pt, veil_error *err)
{
    veil_status st = VEIL_OK;
    uint64_t *m = veil_alloc(enc->n, sizeof *m);
    if (!m) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bgv decode: out of memory");
    memcpy(m, pt->m, enc->n * sizeof *m);
    VEIL_CHECK(veil_ntt_forward(enc->slots_ring, 0, m, err));
    for (size_t i = 0; i < enc->n; i++) v[i] = m[enc->slot_pos[i]];
done:
    if (m) veil_free_secret(m, enc->n * sizeof *m);
    return st;
}

/* The plaintext's N slot values, in a secret buffer of enc->n values (free with veil_free_secret). */
static veil_status decoded_slots(uint64_t **out, const veil_bgv_encoder *enc, const veil_bgv_plaintext *pt,
                                 veil_error *err)
{
    veil_status st = VEIL_OK;
    uint64_t *v = veil_alloc(enc->n, sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "bgv decode: out of memory");
    VEIL_CHECK(poly_to_slots(enc, v, pt, err));
    *out = v;
    v = NULL;
done:
    if (v) veil_free_secret(v, enc->n * sizeof *v);
    return st;
}

veil_status veil_bgv_decode(const veil_bgv_encoder *enc, uint64_t *values, size_t count, const veil_bgv_plaintext *pt,
                            veil_error *err)
{
    veil_status st = VEIL_OK;
    uint64_t *v = NULL;
    VEIL_CHECK(check_encode(enc, pt, values, count, true, err));
    VEIL_CHECK(decoded_slots(&v, enc, pt, err));
    memcpy(values, v, count * sizeof *values);
done:
    if (v) veil_free_secret(v, enc->n * sizeof *v);
    return st;
}

static int64_t centered(uint64_t v, uint64_t t)
{
    return v > t / 2 ? -(int64_t)(t - v) : (int64_t)v;
}

veil_status veil_bgv_decode_signed(const veil_bgv_encoder *enc, int64_t *values, size_t count,
                                   const veil_bgv_plaintext *pt, veil_error *err)
{
    veil_status st = VEIL_OK;
    uint64_t *v = NULL;
    VEIL_CHECK(check_encode(enc, pt, values, count, true, err));
    VEIL_CHECK(decoded_slots(&v, enc, pt, err));
    for (size_t i = 0; i < count; i++) values[i] = centered(v[i], enc->t);
done:
    if (v) veil_free_secret(v, enc->n * sizeof *v);
    return st;
}

veil_status veil_bgv_encode_coeffs(const veil_bgv_encoder *enc, veil_bgv_plaintext *out, const int64_t *values,
                                   size_t count, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_encode(enc, out, values, count, false, err));
    VEIL_CHECK(signed_in_range(values, count, enc->t, "bgv encode_coeffs", err));
    memset(out->m, 0, enc->n * sizeof *out->m);
    for (size_t i = 0; i < count; i++) out->m[i] = to_residue(values[i], enc->t);
done:
    return st;
}

veil_status veil_bgv_decode_coeffs(const veil_bgv_encoder *enc, int64_t *values, size_t count,
                                   const veil_bgv_plaintext *pt, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_encode(enc, pt, values, count, false, err));
    for (size_t i = 0; i < count; i++) values[i] = centered(pt->m[i], enc->t);
done:
    return st;
}
