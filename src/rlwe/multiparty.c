/*
 * Multi-party keys (veil/party.h): the N-out-of-N protocols of Mouchet, Troncoso-Pastoriza, Bossuat and
 * Hubaux, "Multiparty homomorphic encryption from ring-learning-with-errors", PETS 2021 (CKG, RKG,
 * rotation-key generation, CKS, PCKS; presented there for BFV, they act on the RLWE keys alone and serve CKKS
 * and BGV unchanged), over Veil's RNS keys with hybrid key switching. Every uniform polynomial the paper takes
 * from the common reference string is the expansion of a seed derived from the group's id, so that every
 * party computes the same ones and the joint public and Galois keys keep Veil's seeded form.
 */
#include <math.h>
#include <string.h>
#include <sodium.h>
#include "rlwe/rlwe_internal.h"

/* Labels of the common reference seeds. */
enum { CRS_PUBLIC_KEY = 1, CRS_RELIN = 2, CRS_GALOIS = 3 };

/* The seed of one key's common reference polynomials: BLAKE2b-256(domain, group id, label, value). */
static void crs_seed(uint8_t out[VEIL_SEED_BYTES], const uint8_t id[VEIL_PARTY_ID_BYTES], uint32_t label,
                     uint64_t value)
{
    static const char domain[] = "veil-party-crs-v1";
    uint8_t tail[12];
    for (int i = 0; i < 4; i++) tail[i] = (uint8_t)(label >> (8 * i));
    for (int i = 0; i < 8; i++) tail[4 + i] = (uint8_t)(value >> (8 * i));
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, VEIL_SEED_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof domain - 1);
    crypto_generichash_update(&st, id, VEIL_PARTY_ID_BYTES);
    crypto_generichash_update(&st, tail, sizeof tail);
    crypto_generichash_final(&st, out, VEIL_SEED_BYTES);
}

/* ---- the group ------------------------------------------------------------------------------------ */

static veil_status check_sizes(size_t parties, size_t threshold, veil_error *err)
{
    if (parties < 2 || parties > VEIL_PARTY_MAX)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "party group: %zu parties (2 to %d)", parties, VEIL_PARTY_MAX);
    if (threshold != 0 && (threshold < 2 || threshold > parties))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "party group: a threshold of %zu of %zu parties (2 to %zu; 0 for "
                         "N-out-of-N)", threshold, parties, parties);
    return VEIL_OK;
}

veil_status veil_party_group_from(veil_party_group **out, const veil_context *ctx,
                                  const uint8_t id[VEIL_PARTY_ID_BYTES], size_t parties, size_t threshold,
                                  veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(id, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_sizes(parties, threshold, err));
    veil_party_group *g = veil_alloc(1, sizeof *g);
    if (!g) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "party group: out of memory");
    g->ctx = ctx;
    memcpy(g->id, id, VEIL_PARTY_ID_BYTES);
    g->parties = parties;
    g->threshold = threshold ? threshold : parties; /* t-out-of-N: src/rlwe/threshold.c */
    *out = g;
done:
    return st;
}

veil_status veil_party_group_new(veil_party_group **out, const veil_context *ctx, size_t parties, size_t threshold,
                                 veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    veil_status st = VEIL_OK;
    veil_prng *use = NULL, *owned = NULL;
    uint8_t id[VEIL_PARTY_ID_BYTES];
    VEIL_CHECK(check_sizes(parties, threshold, err));
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    veil_prng_bytes(use, id, sizeof id);
    VEIL_CHECK(veil_party_group_from(out, ctx, id, parties, threshold, err));
done:
    veil_prng_free(owned);
    return st;
}

void veil_party_group_free(veil_party_group *group) { veil_free(group); }
const uint8_t *veil_party_group_id(const veil_party_group *group) { return group ? group->id : NULL; }
size_t veil_party_group_parties(const veil_party_group *group) { return group ? group->parties : 0; }
size_t veil_party_group_threshold(const veil_party_group *group) { return group ? group->threshold : 0; }
const veil_context *veil_party_group_context(const veil_party_group *group) { return group ? group->ctx : NULL; }

unsigned veil_party_group_smudging_bits(const veil_party_group *group)
{
    return group && group->smudging_bits ? group->smudging_bits : VEIL_PARTY_DEFAULT_SMUDGING_BITS;
}

veil_status veil_party_group_set_smudging_bits(veil_party_group *group, unsigned bits, veil_error *err)
{
    VEIL_REQUIRE(group, err);
    if (bits > 60) return veil_fail(err, VEIL_ERR_ARGUMENT, "party group: %u smudging bits (at most 60)", bits);
    group->smudging_bits = bits == VEIL_PARTY_DEFAULT_SMUDGING_BITS ? 0 : bits;
    return VEIL_OK;
}

veil_party_smudging veil_party_group_smudging(const veil_party_group *group, const veil_party_smudging *given)
{
    veil_party_smudging s = given ? *given : (veil_party_smudging){0};
    if (s.bits == 0 && group) s.bits = group->smudging_bits;
    return s;
}

/* ---- shares ------------------------------------------------------------------------------------------ */

const char *veil_party_kind_name(veil_party_kind kind)
{
    switch (kind) {
    case VEIL_PARTY_PUBLIC_KEY: return "public-key";
    case VEIL_PARTY_RELIN_1: return "relinearization round-1";
    case VEIL_PARTY_RELIN_2: return "relinearization round-2";
    case VEIL_PARTY_GALOIS: return "Galois-key";
    case VEIL_PARTY_DECRYPT: return "decryption";
    case VEIL_PARTY_SWITCH: return "key-switching";
    case VEIL_PARTY_THRESHOLD_DECRYPT: return "threshold decryption";
    case VEIL_PARTY_THRESHOLD_SWITCH: return "threshold key-switching";
    }
    return "unknown";
}

size_t veil_party_kind_polys(const veil_context *ctx, veil_party_kind kind, bool *with_p)
{
    *with_p = kind != VEIL_PARTY_DECRYPT && kind != VEIL_PARTY_SWITCH && !veil_party_kind_is_threshold(kind);
    switch (kind) {
    case VEIL_PARTY_PUBLIC_KEY: return 1;
    case VEIL_PARTY_RELIN_1:
    case VEIL_PARTY_RELIN_2: return 2 * ctx->dnum;
    case VEIL_PARTY_GALOIS: return ctx->dnum;
    case VEIL_PARTY_DECRYPT: return 1;
    case VEIL_PARTY_SWITCH: return 2;
    case VEIL_PARTY_THRESHOLD_DECRYPT: return 1;
    case VEIL_PARTY_THRESHOLD_SWITCH: return 2;
    }
    return 0;
}

void veil_party_share_free(veil_party_share *share)
{
    if (!share) return;
    if (share->p)
        for (size_t i = 0; i < share->count; i++) veil_poly_free(share->p[i]);
    veil_free(share->p);
    veil_free(share);
}

veil_status veil_party_share_alloc(veil_party_share **out, const veil_context *ctx, const uint8_t *group, size_t party,
                                   size_t parties, veil_party_kind kind, uint64_t galois, size_t level,
                                   veil_error *err)
{
    veil_status st = VEIL_OK;
    bool with_p = false;
    const size_t count = veil_party_kind_polys(ctx, kind, &with_p);
    if (count == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "party share: unknown kind %d", (int)kind);
    if (level >= ctx->q_count) return veil_fail(err, VEIL_ERR_ARGUMENT, "party share: no level %zu", level);
    veil_party_share *s = veil_alloc(1, sizeof *s);
    if (s) s->p = veil_alloc(count, sizeof *s->p);
    if (!s || !s->p) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "party share: out of memory");
    s->ctx = ctx;
    memcpy(s->group, group, VEIL_PARTY_ID_BYTES);
    s->party = party;
    s->parties = parties;
    s->kind = kind;
    s->galois = galois;
    s->level = level;
    s->count = count;
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t limbs = veil_context_qp_base(ctx, level, base);
    for (size_t i = 0; i < count; i++) {
        if (with_p) VEIL_CHECK(veil_poly_new(&s->p[i], ctx->ring, base, limbs, VEIL_FORM_EVAL, err));
        else VEIL_CHECK(veil_context_poly_new(&s->p[i], ctx, level, VEIL_FORM_EVAL, err));
    }
    *out = s;
    s = NULL;
done:
    veil_party_share_free(s);
    return st;
}

veil_party_kind veil_party_share_kind(const veil_party_share *share) { return share ? share->kind : 0; }
size_t veil_party_share_party(const veil_party_share *share) { return share ? share->party : 0; }
uint64_t veil_party_share_galois(const veil_party_share *share) { return share ? share->galois : 0; }
double veil_party_share_smudging_bits(const veil_party_share *share) { return share ? share->log2_sigma : 0; }
const uint8_t *veil_party_share_group(const veil_party_share *share) { return share ? share->group : NULL; }

unsigned veil_party_share_round(const veil_party_share *share)
{
    if (!share) return 0;
    switch (share->kind) {
    case VEIL_PARTY_PUBLIC_KEY:
    case VEIL_PARTY_RELIN_1: return 1;
    case VEIL_PARTY_RELIN_2:
    case VEIL_PARTY_GALOIS: return 2;
    default: return 3;
    }
}

/* ---- key generation ------------------------------------------------------------------------------------ */

static veil_status check_party(const veil_party_group *group, size_t party, const veil_secret_key *sk, const char *op,
                               veil_error *err)
{
    if (!group) return veil_fail(err, VEIL_ERR_NULL, "%s: the group is NULL", op);
    if (!sk) return veil_fail(err, VEIL_ERR_NULL, "%s: the secret share is NULL", op);
    if (sk->ctx != group->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the secret share belongs to another context than the group", op);
    if (party < 1 || party > group->parties)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: party %zu is not in this group of %zu (parties are 1..%zu)", op,
                         party, group->parties, group->parties);
    return VEIL_OK;
}

/* A fresh key error over Q and P in evaluation form (t e for BGV). */
static veil_status key_error(veil_poly **out, const veil_context *ctx, veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, ctx->q_count - 1, base);
    VEIL_CHECK(veil_poly_new(out, ctx->ring, base, count, VEIL_FORM_COEFF, err));
    VEIL_CHECK(veil_sample_key_error(*out, ctx, prng, err));
    VEIL_CHECK(veil_poly_to_eval(*out, err));
done:
    return st;
}

/* A new polynomial over Q and P (evaluation form). */
static veil_status qp_poly(veil_poly **out, const veil_context *ctx, veil_error *err)
{
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    const size_t count = veil_context_qp_base(ctx, ctx->q_count - 1, base);
    return veil_poly_new(out, ctx->ring, base, count, VEIL_FORM_EVAL, err);
}

/* b += P * x on the primes of digit j (the gadget vector of Veil's hybrid key switching; keys.c). */
static void add_gadget(const veil_context *ctx, veil_poly *b, size_t j, const veil_poly *x)
{
    const size_t n = ctx->params.n, start = j * ctx->alpha;
    const size_t end = start + ctx->alpha < ctx->q_count ? start + ctx->alpha : ctx->q_count;
    for (size_t i = start; i < end; i++) {
        const uint64_t q = ctx->ring->primes[i], w = ctx->p_mod_q[i], ws = veil_shoup_precompute(w, q);
        uint64_t *o = veil_poly_limb(b, i);
        const uint64_t *xs = veil_poly_limb_const(x, i);
        for (size_t t = 0; t < n; t++) o[t] = veil_addmod(o[t], veil_mulmod_shoup(xs[t], w, ws, q), q);
    }
}

/* out = e - a * s (+ P x on digit j when x is not NULL): the common form of public-key and Galois-key shares. */
static veil_status minus_as_plus_e(veil_poly *out, const veil_context *ctx, const veil_poly *a, const veil_poly *s,
                                   const veil_poly *x, size_t j, veil_prng *prng, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_poly *e = NULL;
    VEIL_CHECK(key_error(&e, ctx, prng, err));
    VEIL_CHECK(veil_poly_mul(out, a, s, err));
    VEIL_CHECK(veil_poly_sub(out, e, out, err));
    if (x) add_gadget(ctx, out, j, x);
done:
    veil_poly_free(e);
    return st;
}

veil_status veil_party_public_key_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                        const veil_secret_key *sk, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    veil_status st = check_party(group, party, sk, "public-key share", err);
    if (st) return st;
    const veil_context *ctx = group->ctx;
    veil_prng *use = NULL, *owned = NULL;
    veil_poly *a = NULL;
    veil_party_share *s = NULL;
    uint8_t seed[VEIL_SEED_BYTES];
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    VEIL_CHECK(veil_party_share_alloc(&s, ctx, group->id, party, group->parties, VEIL_PARTY_PUBLIC_KEY, 0,
                                      ctx->q_count - 1, err));
    /* CKG: p_i = -a s_i + e_i, a the common reference polynomial */
    crs_seed(seed, group->id, CRS_PUBLIC_KEY, 0);
    VEIL_CHECK(qp_poly(&a, ctx, err));
    VEIL_CHECK(veil_uniform_from_seed(a, seed, 0, err));
    VEIL_CHECK(minus_as_plus_e(s->p[0], ctx, a, sk->s, NULL, 0, use, err));
    *out = s;
    s = NULL;
done:
    veil_poly_free(a);
    veil_party_share_free(s);
    veil_prng_free(owned);
    return st;
}

veil_status veil_party_relin_share_1(veil_party_share **out, veil_secret_key **ephemeral,
                                     const veil_party_group *group, size_t party, const veil_secret_key *sk,
                                     veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ephemeral, err);
    *ephemeral = NULL;
    veil_status st = check_party(group, party, sk, "relinearization share (round 1)", err);
    if (st) return st;
    const veil_context *ctx = group->ctx;
    veil_prng *use = NULL, *owned = NULL;
    veil_poly *a = NULL, *e = NULL, *tmp = NULL;
    veil_party_share *s = NULL;
    veil_secret_key *u = NULL;
    uint8_t seed[VEIL_SEED_BYTES];
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    VEIL_CHECK(veil_secret_key_new(&u, ctx, use, err));
    VEIL_CHECK(veil_party_share_alloc(&s, ctx, group->id, party, group->parties, VEIL_PARTY_RELIN_1, 0,
                                      ctx->q_count - 1, err));
    VEIL_CHECK(qp_poly(&a, ctx, err));
    VEIL_CHECK(qp_poly(&tmp, ctx, err));
    crs_seed(seed, group->id, CRS_RELIN, 0);
    for (size_t j = 0; j < ctx->dnum; j++) {
        /* RKG round 1: h0_j = -u_i a_j + P w_j s_i + e0, h1_j = s_i a_j + e1 */
        VEIL_CHECK(veil_uniform_from_seed(a, seed, 1 + j, err));
        VEIL_CHECK(minus_as_plus_e(s->p[2 * j], ctx, a, u->s, sk->s, j, use, err));
        VEIL_CHECK(key_error(&e, ctx, use, err));
        VEIL_CHECK(veil_poly_mul(tmp, a, sk->s, err));
        VEIL_CHECK(veil_poly_add(s->p[2 * j + 1], tmp, e, err));
        veil_poly_free(e);
        e = NULL;
    }
    *out = s;
    *ephemeral = u;
    s = NULL;
    u = NULL;
done:
    veil_poly_free(a);
    veil_poly_free(e);
    veil_poly_free(tmp);
    veil_party_share_free(s);
    veil_secret_key_free(u);
    veil_prng_free(owned);
    return st;
}

/* An aggregate of the wanted kind of this group (what the key functions and round 2 read). */
static veil_status check_aggregate(const veil_party_group *group, const veil_party_share *agg, veil_party_kind kind,
                                   const char *op, veil_error *err)
{
    if (!agg) return veil_fail(err, VEIL_ERR_NULL, "%s: the aggregate is NULL", op);
    if (agg->ctx != group->ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the aggregate belongs to another context", op);
    if (memcmp(agg->group, group->id, VEIL_PARTY_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the aggregate belongs to another group", op);
    if (agg->kind != kind)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: expected the %s aggregate, got a %s one", op,
                         veil_party_kind_name(kind), veil_party_kind_name(agg->kind));
    if (agg->party != 0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: party %zu's own share, not the aggregate of all %zu parties", op,
                         agg->party, group->parties);
    return VEIL_OK;
}

veil_status veil_party_relin_share_2(veil_party_share **out, const veil_party_group *group, size_t party,
                                     const veil_secret_key *sk, const veil_secret_key *ephemeral,
                                     const veil_party_share *round1, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ephemeral, err);
    const char *op = "relinearization share (round 2)";
    veil_status st = check_party(group, party, sk, op, err);
    if (st) return st;
    if (ephemeral->ctx != group->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the ephemeral secret belongs to another context", op);
    st = check_aggregate(group, round1, VEIL_PARTY_RELIN_1, op, err);
    if (st) return st;
    const veil_context *ctx = group->ctx;
    veil_prng *use = NULL, *owned = NULL;
    veil_poly *e = NULL, *u_minus_s = NULL, *tmp = NULL;
    veil_party_share *s = NULL;
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    VEIL_CHECK(veil_party_share_alloc(&s, ctx, group->id, party, group->parties, VEIL_PARTY_RELIN_2, 0,
                                      ctx->q_count - 1, err));
    VEIL_CHECK(qp_poly(&u_minus_s, ctx, err));
    VEIL_CHECK(qp_poly(&tmp, ctx, err));
    VEIL_CHECK(veil_poly_sub(u_minus_s, ephemeral->s, sk->s, err));
    for (size_t j = 0; j < ctx->dnum; j++) {
        /* RKG round 2: h0'_j = s_i h0_j + e2, h1'_j = (u_i - s_i) h1_j + e3 */
        VEIL_CHECK(key_error(&e, ctx, use, err));
        VEIL_CHECK(veil_poly_mul(tmp, sk->s, round1->p[2 * j], err));
        VEIL_CHECK(veil_poly_add(s->p[2 * j], tmp, e, err));
        veil_poly_free(e);
        e = NULL;
        VEIL_CHECK(key_error(&e, ctx, use, err));
        VEIL_CHECK(veil_poly_mul(tmp, u_minus_s, round1->p[2 * j + 1], err));
        VEIL_CHECK(veil_poly_add(s->p[2 * j + 1], tmp, e, err));
        veil_poly_free(e);
        e = NULL;
    }
    *out = s;
    s = NULL;
done:
    veil_poly_free(e);
    veil_poly_free(u_minus_s); /* wipes */
    veil_poly_free(tmp);
    veil_party_share_free(s);
    veil_prng_free(owned);
    return st;
}

static veil_status check_galois(const veil_context *ctx, uint64_t g, const char *op, veil_error *err)
{
    if ((g & 1) == 0 || g >= 2 * (uint64_t)ctx->params.n || g == 1)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: Galois element %llu is not odd in [3, 2N)", op,
                         (unsigned long long)g);
    return VEIL_OK;
}

veil_status veil_party_galois_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                    const veil_secret_key *sk, uint64_t galois_element, veil_prng *prng,
                                    veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    veil_status st = check_party(group, party, sk, "Galois-key share", err);
    if (st) return st;
    const veil_context *ctx = group->ctx;
    st = check_galois(ctx, galois_element, "Galois-key share", err);
    if (st) return st;
    veil_prng *use = NULL, *owned = NULL;
    veil_poly *a = NULL, *rotated = NULL;
    veil_party_share *s = NULL;
    uint8_t seed[VEIL_SEED_BYTES];
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    VEIL_CHECK(veil_party_share_alloc(&s, ctx, group->id, party, group->parties, VEIL_PARTY_GALOIS, galois_element,
                                      ctx->q_count - 1, err));
    VEIL_CHECK(qp_poly(&a, ctx, err));
    VEIL_CHECK(qp_poly(&rotated, ctx, err));
    VEIL_CHECK(veil_poly_automorphism(rotated, sk->s, galois_element, err));
    crs_seed(seed, group->id, CRS_GALOIS, galois_element);
    /* Rotation-key generation: h_j = -a_j s_i + e + P w_j sigma(s_i); sigma is linear, so the sum switches
     * sigma(s) to s */
    for (size_t j = 0; j < ctx->dnum; j++) {
        VEIL_CHECK(veil_uniform_from_seed(a, seed, 1 + j, err));
        VEIL_CHECK(minus_as_plus_e(s->p[j], ctx, a, sk->s, rotated, j, use, err));
    }
    *out = s;
    s = NULL;
done:
    veil_poly_free(a);
    veil_poly_free(rotated); /* wipes */
    veil_party_share_free(s);
    veil_prng_free(owned);
    return st;
}

/* ---- combination --------------------------------------------------------------------------------------- */

/*
 * Every one of the N parties exactly once, each share like the first (or like `want`, when given: the
 * kind, level and subject a combination expects).
 */
static veil_status check_shares(const veil_party_group *group, const veil_party_share *const *shares, size_t count,
                                const veil_party_share *want, const char *op, veil_error *err)
{
    if (!group) return veil_fail(err, VEIL_ERR_NULL, "%s: the group is NULL", op);
    if (!shares && count) return veil_fail(err, VEIL_ERR_NULL, "%s: the share list is NULL", op);
    if (count == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: no shares (all %zu parties must contribute)", op,
                                     group->parties);
    bool seen[VEIL_PARTY_MAX + 1] = {false};
    const veil_party_share *ref = want ? want : shares[0];
    for (size_t k = 0; k < count; k++) {
        const veil_party_share *s = shares[k];
        if (!s) return veil_fail(err, VEIL_ERR_NULL, "%s: share %zu is NULL", op, k + 1);
        if (s->ctx != group->ctx)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: share %zu belongs to another context (parameter set)", op, k + 1);
        if (memcmp(s->group, group->id, VEIL_PARTY_ID_BYTES) != 0)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: share %zu (party %zu) belongs to another group", op, k + 1,
                             s->party);
        if (s->party == 0)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: share %zu is an aggregate, not a party's share", op, k + 1);
        if (s->party > group->parties || s->parties != group->parties)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: share %zu is from party %zu of %zu; the group has %zu parties",
                             op, k + 1, s->party, s->parties, group->parties);
        if (s->kind != ref->kind)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: party %zu's share is a %s share (round %u), expected a %s "
                             "share (round %u)", op, s->party, veil_party_kind_name(s->kind),
                             veil_party_share_round(s), veil_party_kind_name(ref->kind), veil_party_share_round(ref));
        if (s->galois != ref->galois)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: party %zu's share is for Galois element %llu, expected %llu",
                             op, s->party, (unsigned long long)s->galois, (unsigned long long)ref->galois);
        if (s->level != ref->level || memcmp(s->subject, ref->subject, sizeof s->subject) != 0)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: party %zu's share is for another ciphertext%s", op, s->party,
                             s->kind == VEIL_PARTY_SWITCH ? " or receiver key" : "");
        if (seen[s->party])
            return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: party %zu's share appears twice", op, s->party);
        seen[s->party] = true;
    }
    for (size_t p = 1; p <= group->parties; p++)
        if (!seen[p])
            return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: party %zu's share is missing (all %zu parties must "
                             "contribute)", op, p, group->parties);
    return VEIL_OK;
}

/* out->p[i] = sum of the shares' p[i], on the shares' limbs. */
static veil_status sum_shares(veil_party_share *out, const veil_party_share *const *shares, size_t count,
                              veil_error *err)
{
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < out->count; i++) {
        VEIL_CHECK(veil_poly_copy(out->p[i], shares[0]->p[i], err));
        for (size_t k = 1; k < count; k++) VEIL_CHECK(veil_poly_add(out->p[i], out->p[i], shares[k]->p[i], err));
    }
done:
    return st;
}

veil_status veil_party_aggregate(veil_party_share **out, const veil_party_group *group,
                                 const veil_party_share *const *shares, size_t count, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    veil_status st = check_shares(group, shares, count, NULL, "aggregate", err);
    if (st) return st;
    const veil_party_share *first = shares[0];
    if (veil_party_kind_is_threshold(first->kind)) /* t-out-of-N: combined by the joint decryption only */
        return veil_fail(err, VEIL_ERR_ARGUMENT, "aggregate: %s shares are combined by the joint decryption or "
                         "switching, not aggregated", veil_party_kind_name(first->kind));
    veil_party_share *agg = NULL;
    VEIL_CHECK(veil_party_share_alloc(&agg, group->ctx, group->id, 0, group->parties, first->kind, first->galois,
                                      first->level, err));
    memcpy(agg->subject, first->subject, sizeof agg->subject);
    VEIL_CHECK(sum_shares(agg, shares, count, err));
    *out = agg;
    agg = NULL;
done:
    veil_party_share_free(agg);
    return st;
}

veil_status veil_party_public_key(veil_public_key **out, const veil_party_group *group,
                                  const veil_party_share *aggregate, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(group, err);
    veil_status st = VEIL_OK;
    veil_public_key *pk = NULL;
    VEIL_CHECK(check_aggregate(group, aggregate, VEIL_PARTY_PUBLIC_KEY, "joint public key", err));
    const veil_context *ctx = group->ctx;
    pk = veil_alloc(1, sizeof *pk);
    if (!pk) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "joint public key: out of memory");
    pk->ctx = ctx;
    /* (sum_i p_i, a) = (-a s + sum_i e_i, a): an ordinary public key of s, seeded by the group's reference */
    crs_seed(pk->seed, group->id, CRS_PUBLIC_KEY, 0);
    VEIL_CHECK(qp_poly(&pk->a, ctx, err));
    VEIL_CHECK(qp_poly(&pk->b, ctx, err));
    VEIL_CHECK(veil_uniform_from_seed(pk->a, pk->seed, 0, err));
    VEIL_CHECK(veil_poly_copy(pk->b, aggregate->p[0], err));
    *out = pk;
    pk = NULL;
done:
    veil_public_key_free(pk);
    return st;
}

/* An empty switching key of ctx with its digit arrays. */
static veil_status switch_key_shell(veil_switch_key **out, const veil_context *ctx, uint64_t galois, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_switch_key *k = veil_alloc(1, sizeof *k);
    if (k) {
        k->ctx = ctx;
        k->galois = galois;
        k->digits = ctx->dnum;
        k->a = veil_alloc(k->digits, sizeof *k->a);
        k->b = veil_alloc(k->digits, sizeof *k->b);
    }
    if (!k || !k->a || !k->b) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "joint switching key: out of memory");
    for (size_t j = 0; j < k->digits; j++) {
        VEIL_CHECK(qp_poly(&k->a[j], ctx, err));
        VEIL_CHECK(qp_poly(&k->b[j], ctx, err));
    }
    *out = k;
    k = NULL;
done:
    veil_switch_key_free(k);
    return st;
}

veil_status veil_party_relin_key(veil_switch_key **out, const veil_party_group *group, const veil_party_share *round1,
                                 const veil_party_share *round2, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(group, err);
    veil_status st = VEIL_OK;
    veil_switch_key *k = NULL;
    VEIL_CHECK(check_aggregate(group, round1, VEIL_PARTY_RELIN_1, "joint relinearization key", err));
    VEIL_CHECK(check_aggregate(group, round2, VEIL_PARTY_RELIN_2, "joint relinearization key", err));
    VEIL_CHECK(switch_key_shell(&k, group->ctx, 0, err));
    /* (h0' + h1', h1): b_j + h1_j s = P w_j s^2 + s e0 + u e1 + e2 + e3, RKG */
    for (size_t j = 0; j < k->digits; j++) {
        VEIL_CHECK(veil_poly_add(k->b[j], round2->p[2 * j], round2->p[2 * j + 1], err));
        VEIL_CHECK(veil_poly_copy(k->a[j], round1->p[2 * j + 1], err));
    }
    k->full = true;
    *out = k;
    k = NULL;
done:
    veil_switch_key_free(k);
    return st;
}

veil_status veil_party_galois_key(veil_switch_key **out, const veil_party_group *group,
                                  const veil_party_share *aggregate, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(group, err);
    veil_status st = VEIL_OK;
    veil_switch_key *k = NULL;
    VEIL_CHECK(check_aggregate(group, aggregate, VEIL_PARTY_GALOIS, "joint Galois key", err));
    VEIL_CHECK(switch_key_shell(&k, group->ctx, aggregate->galois, err));
    crs_seed(k->seed, group->id, CRS_GALOIS, aggregate->galois);
    for (size_t j = 0; j < k->digits; j++) {
        VEIL_CHECK(veil_poly_copy(k->b[j], aggregate->p[j], err));
        VEIL_CHECK(veil_uniform_from_seed(k->a[j], k->seed, 1 + j, err));
    }
    *out = k;
    k = NULL;
done:
    veil_switch_key_free(k);
    return st;
}

/* ---- decryption and public-key switching ------------------------------------------------------------------ */

veil_status veil_party_smudging_sigma_bits(const veil_party_smudging *smudging, double *log2_sigma, veil_error *err)
{
    VEIL_REQUIRE(log2_sigma, err);
    const veil_party_smudging none = {0};
    const veil_party_smudging *s = smudging ? smudging : &none;
    const unsigned bits = s->bits ? s->bits : VEIL_PARTY_DEFAULT_SMUDGING_BITS;
    if (bits > 60) return veil_fail(err, VEIL_ERR_ARGUMENT, "smudging: %u bits (at most 60)", bits);
    if (!(s->error_bits >= 0) || !(s->error_bits <= 60))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "smudging: an error bound of 2^%g is not in [2^0, 2^60]", s->error_bits);
    *log2_sigma = bits + s->error_bits;
    if (*log2_sigma > 56)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "smudging: noise of 2^%.1f is beyond what Veil samples (2^56)",
                         *log2_sigma);
    return VEIL_OK;
}

/* Hashes the limbs 0..level of p (as stored: little-endian 64-bit words on the machines Veil builds for). */
static void hash_poly(crypto_generichash_state *st, const veil_poly *p, size_t limbs, size_t n)
{
    for (size_t l = 0; l < limbs; l++)
        crypto_generichash_update(st, (const uint8_t *)veil_poly_limb_const(p, l), n * sizeof(uint64_t));
}

/* The digest binding a share to its ciphertext (level, c_0, c_1) and, for switching, the receiver's key. */
static void share_subject(uint8_t out[32], const veil_context *ctx, const veil_rlwe_element *ct,
                          const veil_public_key *to)
{
    static const char domain[] = "veil-party-subject-v1";
    const size_t n = ctx->params.n;
    uint8_t head[16] = {0};
    for (int i = 0; i < 8; i++) head[i] = (uint8_t)((uint64_t)ct->level >> (8 * i));
    head[8] = to != NULL; /* a switching share's subject differs from a decryption share's */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof domain - 1);
    crypto_generichash_update(&st, head, sizeof head);
    hash_poly(&st, ct->c[0], ct->level + 1, n);
    hash_poly(&st, ct->c[1], ct->level + 1, n);
    if (to) {
        crypto_generichash_update(&st, to->seed, sizeof to->seed);
        hash_poly(&st, to->b, veil_poly_limb_count(to->b), n);
    }
    crypto_generichash_final(&st, out, 32);
}

void veil_party_share_subject(uint8_t out[32], const veil_context *ctx, const veil_rlwe_element *ct,
                              const veil_public_key *to)
{
    share_subject(out, ctx, ct, to); /* for t-out-of-N's combination (threshold.c) */
}

static veil_status check_element(const veil_context *ctx, const veil_rlwe_element *ct, const veil_public_key *to,
                                 const char *op, veil_error *err)
{
    veil_status st = veil_rlwe_check_element(ctx, ct, op, err);
    if (st) return st;
    if (ct->size != 2)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: the ciphertext has %zu polynomials: relinearize it first", op,
                         ct->size);
    if (to && to->ctx != ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the receiver's public key belongs to another context", op);
    return VEIL_OK;
}

/* p += smudging noise of standard deviation 2^log2_sigma (times t for BGV), over q_0..level. */
static veil_status add_smudging(const veil_context *ctx, veil_poly *p, size_t level, double log2_sigma, veil_prng *prng,
                                veil_error *err)
{
    veil_status st = VEIL_OK;
    const size_t n = ctx->params.n;
    veil_poly *e = NULL;
    int64_t *noise = veil_alloc(n, sizeof *noise);
    if (!noise) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "smudging: out of memory");
    VEIL_CHECK(veil_sample_gaussian_wide(noise, n, exp2(log2_sigma), prng, err));
    VEIL_CHECK(veil_context_poly_new(&e, ctx, level, VEIL_FORM_COEFF, err));
    VEIL_CHECK(veil_poly_set_i64(e, noise, err));
    if (ctx->params.t) VEIL_CHECK(veil_poly_mul_scalar(e, e, (int64_t)ctx->params.t, err));
    VEIL_CHECK(veil_poly_to_eval(e, err));
    veil_limbwise(ctx, p, p, e, level, VEIL_LIMB_ADD);
done:
    veil_poly_free(e);
    veil_free_secret(noise, n * sizeof *noise);
    return st;
}

veil_status veil_party_element_share(veil_party_share **out, const veil_party_group *group, size_t party,
                                     const veil_rlwe_element *ct, const veil_secret_key *sk, const veil_public_key *to,
                                     double log2_sigma, veil_prng *prng, veil_error *err)
{
    *out = NULL;
    const char *op = to ? "key-switching share" : "decryption share";
    veil_status st = check_party(group, party, sk, op, err);
    if (st) return st;
    const veil_context *ctx = group->ctx;
    st = check_element(ctx, ct, to, op, err);
    if (st) return st;
    const size_t level = ct->level;
    veil_prng *use = NULL, *owned = NULL;
    veil_poly *u = NULL, *e = NULL;
    veil_party_share *s = NULL;
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    VEIL_CHECK(veil_party_share_alloc(&s, ctx, group->id, party, group->parties,
                                      to ? VEIL_PARTY_SWITCH : VEIL_PARTY_DECRYPT, 0, level, err));
    share_subject(s->subject, ctx, ct, to);
    s->log2_sigma = log2_sigma;
    /* CKS to the zero key: h_i = s_i c_1 + e_smudge */
    veil_limb_products(ctx, s->p[0], ct->c[1], sk->s, level, false);
    VEIL_CHECK(add_smudging(ctx, s->p[0], level, log2_sigma, use, err));
    if (to) {
        /* PCKS: h0_i = s_i c_1 + u_i b' + e_smudge, h1_i = u_i a' + e1, over Q_l (the receiver's
         * key read on its Q limbs) */
        VEIL_CHECK(veil_small_poly(&u, ctx, level, true, use, err));
        veil_limb_products(ctx, s->p[0], u, to->b, level, true);
        VEIL_CHECK(veil_small_poly(&e, ctx, level, false, use, err));
        if (ctx->params.t) VEIL_CHECK(veil_poly_mul_scalar(e, e, (int64_t)ctx->params.t, err));
        veil_limb_products(ctx, s->p[1], u, to->a, level, false);
        veil_limbwise(ctx, s->p[1], s->p[1], e, level, VEIL_LIMB_ADD);
    }
    *out = s;
    s = NULL;
done:
    veil_poly_free(u); /* wipes */
    veil_poly_free(e);
    veil_party_share_free(s);
    veil_prng_free(owned);
    return st;
}

veil_status veil_party_element_combine(veil_poly **c0, veil_poly **c1, const veil_party_group *group,
                                       const veil_rlwe_element *ct, const veil_public_key *to,
                                       const veil_party_share *const *shares, size_t count, veil_error *err)
{
    *c0 = NULL;
    if (c1) *c1 = NULL;
    const char *op = to ? "joint key switching" : "joint decryption";
    if (!group) return veil_fail(err, VEIL_ERR_NULL, "%s: the group is NULL", op);
    veil_status st = check_element(group->ctx, ct, to, op, err);
    if (st) return st;
    const veil_context *ctx = group->ctx;
    veil_party_share want = {.kind = to ? VEIL_PARTY_SWITCH : VEIL_PARTY_DECRYPT, .level = ct->level};
    share_subject(want.subject, ctx, ct, to);
    veil_poly *r0 = NULL, *r1 = NULL;
    VEIL_CHECK(check_shares(group, shares, count, &want, op, err));
    /* c_0 + sum_i h_i: the phase (decryption), or with sum_i h1_i the ciphertext under the receiver's key */
    VEIL_CHECK(veil_context_poly_new(&r0, ctx, ct->level, VEIL_FORM_EVAL, err));
    veil_limbwise(ctx, r0, ct->c[0], NULL, ct->level, VEIL_LIMB_COPY);
    for (size_t k = 0; k < count; k++) veil_limbwise(ctx, r0, r0, shares[k]->p[0], ct->level, VEIL_LIMB_ADD);
    if (to) {
        VEIL_CHECK(veil_context_poly_new(&r1, ctx, ct->level, VEIL_FORM_EVAL, err));
        veil_limbwise(ctx, r1, shares[0]->p[1], NULL, ct->level, VEIL_LIMB_COPY);
        for (size_t k = 1; k < count; k++) veil_limbwise(ctx, r1, r1, shares[k]->p[1], ct->level, VEIL_LIMB_ADD);
        *c1 = r1;
        r1 = NULL;
    }
    *c0 = r0;
    r0 = NULL;
done:
    veil_poly_free(r0);
    veil_poly_free(r1);
    return st;
}
