/* The RLWE context: the ring over Q and P, and the base conversions of hybrid key switching. */
#include <string.h>
#include "rlwe/rlwe_internal.h"

static void context_release(veil_context *c)
{
    if (!c) return;
    if (c->modup)
        for (size_t i = 0; i < c->q_count * c->dnum; i++) veil_base_conv_free(c->modup[i]);
    if (c->moddown)
        for (size_t l = 0; l < c->q_count; l++) veil_base_conv_free(c->moddown[l]);
    veil_free(c->modup);
    veil_free(c->moddown);
    veil_ring_free(c->ring);
    veil_free(c);
}

size_t veil_context_qp_base(const veil_context *ctx, size_t level, size_t *base)
{
    size_t k = 0;
    for (size_t i = 0; i <= level; i++) base[k++] = i;
    for (size_t i = 0; i < ctx->p_count; i++) base[k++] = ctx->q_count + i;
    return k;
}

/* For each level and digit: from the digit's primes at that level to the rest of Q_l and to P. */
static veil_status make_conversions(veil_context *c, veil_error *err)
{
    veil_status st = VEIL_OK;
    size_t from[VEIL_PARAMS_MAX_PRIMES], to[VEIL_PARAMS_MAX_PRIMES], p_base[VEIL_PARAMS_MAX_PRIMES];
    for (size_t k = 0; k < c->p_count; k++) p_base[k] = c->q_count + k;
    for (size_t level = 0; level < c->q_count; level++) {
        for (size_t j = 0; j < c->dnum; j++) {
            const size_t start = j * c->alpha;
            if (start > level) continue; /* this digit has no prime at this level */
            const size_t end = start + c->alpha - 1 < level ? start + c->alpha - 1 : level;
            size_t nf = 0, nt = 0;
            for (size_t i = start; i <= end; i++) from[nf++] = i;
            for (size_t i = 0; i <= level; i++)
                if (i < start || i > end) to[nt++] = i;
            for (size_t k = 0; k < c->p_count; k++) to[nt++] = p_base[k];
            VEIL_CHECK(veil_base_conv_new(&c->modup[level * c->dnum + j], c->ring, from, nf, to, nt, err));
        }
        for (size_t i = 0; i <= level; i++) to[i] = i;
        VEIL_CHECK(veil_base_conv_new(&c->moddown[level], c->ring, p_base, c->p_count, to, level + 1, err));
    }
done:
    return st;
}

veil_status veil_context_new(veil_context **out, const veil_params *params, const veil_ring_options *opts,
                             veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(params, err);
    veil_status st = VEIL_OK;
    veil_context *c = veil_alloc(1, sizeof *c);
    if (!c) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "context: out of memory");
    c->params = *params;
    c->q_count = params->q_count;
    c->p_count = params->p_count;
    c->dnum = params->dnum;
    c->alpha = (params->q_count + params->dnum - 1) / params->dnum;
    uint64_t primes[2 * VEIL_PARAMS_MAX_PRIMES];
    for (size_t i = 0; i < c->q_count; i++) primes[i] = params->q[i];
    for (size_t i = 0; i < c->p_count; i++) primes[c->q_count + i] = params->p[i];
    VEIL_CHECK(veil_ring_new(&c->ring, params->n, primes, c->q_count + c->p_count, opts, err));
    c->modup = veil_alloc(c->q_count * c->dnum, sizeof *c->modup);
    c->moddown = veil_alloc(c->q_count, sizeof *c->moddown);
    if (!c->modup || !c->moddown) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "context: out of memory");
    VEIL_CHECK(make_conversions(c, err));
    for (size_t i = 0; i < c->q_count; i++) {
        uint64_t pm = 1;
        for (size_t k = 0; k < c->p_count; k++) pm = veil_mod_mul(pm, params->p[k] % params->q[i], params->q[i]);
        c->p_mod_q[i] = pm;
    }
    *out = c;
    c = NULL;
done:
    context_release(c);
    return st;
}

void veil_context_free(veil_context *ctx)
{
    context_release(ctx);
}

const veil_params *veil_context_params(const veil_context *ctx) { return ctx ? &ctx->params : NULL; }
const veil_ring *veil_context_ring(const veil_context *ctx) { return ctx ? ctx->ring : NULL; }
size_t veil_context_max_level(const veil_context *ctx) { return ctx ? ctx->q_count - 1 : 0; }

veil_status veil_context_poly_new(veil_poly **out, const veil_context *ctx, size_t level, veil_form form,
                                  veil_error *err)
{
    if (level >= ctx->q_count)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "level %zu does not exist (the top level is %zu)", level,
                         ctx->q_count - 1);
    return veil_poly_new_range(out, ctx->ring, 0, level + 1, form, err);
}

uint64_t veil_galois_element_rotation(const veil_context *ctx, long steps)
{
    const uint64_t m = 2 * (uint64_t)ctx->params.n, slots = ctx->params.n / 2;
    /* 5 has order N/2 modulo 2N: reduce the step modulo the slot count */
    uint64_t e = (uint64_t)(((steps % (long)slots) + (long)slots) % (long)slots);
    return veil_mod_pow(5, e, m);
}

uint64_t veil_galois_element_conjugation(const veil_context *ctx)
{
    return 2 * (uint64_t)ctx->params.n - 1;
}

static int contains(const uint64_t *list, size_t count, uint64_t v)
{
    for (size_t i = 0; i < count; i++)
        if (list[i] == v) return 1;
    return 0;
}

veil_status veil_rotation_key_set(uint64_t *out, size_t *count, size_t max_out, const veil_context *ctx,
                                  const long *steps, size_t step_count, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(count, err);
    VEIL_REQUIRE(ctx, err);
    if (step_count) VEIL_REQUIRE(steps, err);
    const long slots = (long)(ctx->params.n / 2);
    /* candidate 1: the distinct steps themselves */
    uint64_t direct[2 * VEIL_PARAMS_MAX_PRIMES * 64];
    size_t nd = 0;
    int too_many = 0;
    /* candidate 2: signed powers of two composing every step (binary expansion of the shorter direction) */
    uint64_t powers[128];
    size_t np = 0;
    for (size_t i = 0; i < step_count; i++) {
        long s = ((steps[i] % slots) + slots) % slots;
        if (s == 0) continue;
        uint64_t g = veil_galois_element_rotation(ctx, s);
        if (!contains(direct, nd, g)) {
            if (nd < sizeof direct / sizeof direct[0]) direct[nd++] = g;
            else too_many = 1;
        }
        long left = s <= slots / 2 ? s : 0, right = s <= slots / 2 ? 0 : slots - s;
        for (long b = 1; b < slots; b <<= 1) {
            if (left & b) {
                uint64_t pg = veil_galois_element_rotation(ctx, b);
                if (!contains(powers, np, pg)) powers[np++] = pg;
            }
            if (right & b) {
                uint64_t pg = veil_galois_element_rotation(ctx, -b);
                if (!contains(powers, np, pg)) powers[np++] = pg;
            }
        }
    }
    const uint64_t *best = (!too_many && nd <= np) ? direct : powers;
    const size_t nbest = (!too_many && nd <= np) ? nd : np;
    if (nbest > max_out)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "rotation key set: %zu keys needed, room for %zu", nbest, max_out);
    memcpy(out, best, nbest * sizeof *out);
    *count = nbest;
    return VEIL_OK;
}

veil_status veil_context_mod_down(const veil_context *ctx, veil_poly *out, const veil_poly *in, size_t level,
                                  veil_error *err)
{
    if (ctx->params.t) return veil_poly_mod_down_t(out, in, ctx->moddown[level], ctx->params.t, err);
    return veil_poly_mod_down(out, in, ctx->moddown[level], err);
}
