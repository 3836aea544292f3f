/*
 * t-out-of-N threshold decryption (veil/party.h, "t-out-of-N"): Mouchet, Bertrand, Hubaux, "An Efficient
 * Threshold Access-Structure for RLWE-Based Multiparty Homomorphic Encryption", J. Cryptology 2023 (ePrint
 * 2022/780), section 5: after the N-out-of-N key generation (s = s_1 + ... + s_N), each party i Shamir-shares
 * its s_i over R_Q with a random polynomial f_i of degree t-1 (f_i(0) = s_i, the other coefficients uniform
 * in R_Q) and deals f_i(j) to party j, who keeps S_j = sum_i f_i(j) = F(j), F = sum_i f_i of degree t-1 with
 * F(0) = s. Any set T of at least t parties recovers s linearly, s = sum_{j in T} lambda_j S_j with the
 * Lagrange coefficients at 0, lambda_j = prod_{k in T, k != j} k / (k - j); each party of T uses
 * lambda_j S_j in place of s_i in the N-out-of-N decryption and switching shares (multiparty.c), so that
 * their sum is the N-out-of-N result. Evaluation points are the party numbers 1..N: R_Q is not a field, but
 * Lagrange interpolation works limb by limb when every point and every difference of points is invertible
 * modulo every prime of Q, which holds as every prime exceeds VEIL_PARTY_MAX (checked).
 *
 * Deals are secret: each is encrypted and authenticated with libsodium's crypto_box (X25519, XSalsa20-
 * Poly1305) from the dealer's box secret to the recipient's box key. A party's box key pair is derived from
 * its secret share (BLAKE2b of a domain, the group id, the party and the share's coefficients), so that a
 * party keeps no secret beyond its share and publishes only the public key.
 */
#include <string.h>
#include <sodium.h>
#include "rlwe/rlwe_internal.h"

uint64_t veil_party_share_set(const veil_party_share *share) { return share ? share->set : 0; }

static size_t popcount64(uint64_t x)
{
    size_t c = 0;
    for (; x; x &= x - 1) c++;
    return c;
}

static uint64_t party_bit(size_t party) { return (uint64_t)1 << (party - 1); }

/* ---- checks ----------------------------------------------------------------------------------------- */

static veil_status check_group(const veil_party_group *group, const char *op, veil_error *err)
{
    if (!group) return veil_fail(err, VEIL_ERR_NULL, "%s: the group is NULL", op);
    if (group->threshold >= group->parties)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: the group is N-out-of-N (threshold %zu of %zu): it needs no "
                         "threshold shares (make the group with a threshold below N)", op, group->threshold,
                         group->parties);
    /* Lagrange coefficients need every point 1..N and every difference invertible modulo each prime of Q */
    const veil_context *ctx = group->ctx;
    for (size_t i = 0; i < ctx->q_count; i++)
        if (ctx->ring->primes[i] <= VEIL_PARTY_MAX)
            return veil_fail(err, VEIL_ERR_UNSUPPORTED, "%s: prime %zu of Q is not above %d: the parties' evaluation "
                             "points would not be invertible", op, i, VEIL_PARTY_MAX);
    return VEIL_OK;
}

static veil_status check_member(const veil_party_group *group, size_t party, const veil_secret_key *sk, const char *op,
                                veil_error *err)
{
    veil_status st = check_group(group, op, err);
    if (st) return st;
    if (!sk) return veil_fail(err, VEIL_ERR_NULL, "%s: the secret share is NULL", op);
    if (sk->ctx != group->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the secret share belongs to another context than the group", op);
    if (!sk->coeffs) return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: the secret share has no coefficients", op);
    if (party < 1 || party > group->parties)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: party %zu is not in this group of %zu (parties are 1..%zu)", op,
                         party, group->parties, group->parties);
    return VEIL_OK;
}

/* The set of party numbers as a mask: each in 1..N once, `party` among them, at least t of them. */
static veil_status set_mask(uint64_t *mask, const veil_party_group *group, size_t party, const size_t *set,
                            size_t set_count, const char *op, veil_error *err)
{
    *mask = 0;
    if (!set && set_count) return veil_fail(err, VEIL_ERR_NULL, "%s: the set of parties is NULL", op);
    for (size_t k = 0; k < set_count; k++) {
        if (set[k] < 1 || set[k] > group->parties)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: party %zu of the set is not in this group of %zu", op, set[k],
                             group->parties);
        if (*mask & party_bit(set[k]))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: party %zu appears twice in the set", op, set[k]);
        *mask |= party_bit(set[k]);
    }
    if (set_count < group->threshold)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: a set of %zu parties, fewer than the group's threshold of %zu: "
                         "at least %zu of the %zu parties must decrypt together", op, set_count, group->threshold,
                         group->threshold, group->parties);
    if (!(*mask & party_bit(party)))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: party %zu is not in the set it decrypts with", op, party);
    return VEIL_OK;
}

/*
 * lambda_j = prod_{k in set, k != j} k / (k - j) modulo each prime of Q_level, into out[0..level]: the
 * Lagrange coefficient at 0 of point j for the set's points (Mouchet et al. 2023, section 5).
 */
static veil_status lagrange(uint64_t *out, const veil_context *ctx, uint64_t mask, size_t j, size_t level,
                            veil_error *err)
{
    for (size_t i = 0; i <= level; i++) {
        const uint64_t q = ctx->ring->primes[i];
        uint64_t num = 1, den = 1, inv = 0;
        for (size_t k = 1; k <= VEIL_PARTY_MAX; k++) {
            if (k == j || !(mask & party_bit(k))) continue;
            num = veil_mod_mul(num, (uint64_t)k, q);
            den = veil_mod_mul(den, k > j ? (uint64_t)(k - j) : q - (uint64_t)(j - k), q);
        }
        veil_status st = veil_mod_inv(&inv, den, q, err);
        if (st) return st;
        out[i] = veil_mod_mul(num, inv, q);
    }
    return VEIL_OK;
}

/* ---- box keys ------------------------------------------------------------------------------------------ */

/* Party `party`'s crypto_box key pair, derived from its secret share (the caller wipes bsk). */
static void box_keypair(uint8_t pk[crypto_box_PUBLICKEYBYTES], uint8_t bsk[crypto_box_SECRETKEYBYTES],
                        const veil_party_group *group, size_t party, const veil_secret_key *sk)
{
    static const char domain[] = "veil-party-box-v1";
    uint8_t seed[crypto_box_SEEDBYTES], tail[8];
    for (int i = 0; i < 8; i++) tail[i] = (uint8_t)((uint64_t)party >> (8 * i));
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof seed);
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof domain - 1);
    crypto_generichash_update(&st, group->id, VEIL_PARTY_ID_BYTES);
    crypto_generichash_update(&st, tail, sizeof tail);
    crypto_generichash_update(&st, (const uint8_t *)sk->coeffs, group->ctx->params.n);
    crypto_generichash_final(&st, seed, sizeof seed);
    crypto_box_seed_keypair(pk, bsk, seed);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(&st, sizeof st);
}

veil_status veil_party_box_key_new(veil_party_box_key **out, const veil_party_group *group, size_t party,
                                   const veil_secret_key *sk, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    veil_status st = check_member(group, party, sk, "box key", err);
    if (st) return st;
    veil_party_box_key *k = veil_alloc(1, sizeof *k);
    if (!k) return veil_fail(err, VEIL_ERR_NO_MEMORY, "box key: out of memory");
    uint8_t bsk[crypto_box_SECRETKEYBYTES];
    box_keypair(k->pk, bsk, group, party, sk);
    sodium_memzero(bsk, sizeof bsk);
    k->ctx = group->ctx;
    memcpy(k->group, group->id, VEIL_PARTY_ID_BYTES);
    k->party = party;
    *out = k;
    return VEIL_OK;
}

void veil_party_box_key_free(veil_party_box_key *key) { veil_free(key); }
size_t veil_party_box_key_party(const veil_party_box_key *key) { return key ? key->party : 0; }
const uint8_t *veil_party_box_key_group(const veil_party_box_key *key) { return key ? key->group : NULL; }
const uint8_t *veil_party_box_key_bytes(const veil_party_box_key *key) { return key ? key->pk : NULL; }

/*
 * The N box keys by party (by[p] for party p), each of this group, once; and party `self`'s own among them
 * must be the one its secret share gives (its key pair is returned, the caller wipes bsk).
 */
static veil_status index_box_keys(const veil_party_box_key *by[VEIL_PARTY_MAX + 1], uint8_t bsk[crypto_box_SECRETKEYBYTES],
                                  const veil_party_group *group, size_t self, const veil_secret_key *sk,
                                  const veil_party_box_key *const *keys, size_t count, const char *op, veil_error *err)
{
    memset(by, 0, (VEIL_PARTY_MAX + 1) * sizeof *by);
    if (!keys && count) return veil_fail(err, VEIL_ERR_NULL, "%s: the box key list is NULL", op);
    if (count != group->parties)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: %zu box keys; every one of the %zu parties' is needed", op, count,
                         group->parties);
    for (size_t k = 0; k < count; k++) {
        const veil_party_box_key *b = keys[k];
        if (!b) return veil_fail(err, VEIL_ERR_NULL, "%s: box key %zu is NULL", op, k + 1);
        if (b->ctx != group->ctx || memcmp(b->group, group->id, VEIL_PARTY_ID_BYTES) != 0)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the box key of party %zu belongs to another group", op,
                             b->party);
        if (b->party < 1 || b->party > group->parties)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: a box key of party %zu, not in this group of %zu", op,
                             b->party, group->parties);
        if (by[b->party]) return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: party %zu's box key appears twice", op, b->party);
        by[b->party] = b;
    }
    uint8_t pk[crypto_box_PUBLICKEYBYTES];
    box_keypair(pk, bsk, group, self, sk);
    if (sodium_memcmp(pk, by[self]->pk, sizeof pk) != 0) {
        sodium_memzero(bsk, crypto_box_SECRETKEYBYTES);
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: party %zu's box key in the list is not the one its secret share "
                         "gives (another secret share, or a substituted key)", op, self);
    }
    return VEIL_OK;
}

/* ---- deals ------------------------------------------------------------------------------------------------ */

size_t veil_party_deal_box_bytes(const veil_context *ctx)
{
    return VEIL_PARTY_DEAL_HEAD + ctx->q_count * ctx->params.n * sizeof(uint64_t) + VEIL_PARTY_DEAL_MAC;
}

void veil_party_deal_free(veil_party_deal *deal)
{
    if (!deal) return;
    veil_free(deal->box);
    veil_free(deal);
}

size_t veil_party_deal_from(const veil_party_deal *deal) { return deal ? deal->from : 0; }
size_t veil_party_deal_to(const veil_party_deal *deal) { return deal ? deal->to : 0; }
const uint8_t *veil_party_deal_group(const veil_party_deal *deal) { return deal ? deal->group : NULL; }

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The header a deal's box starts with (what binds its contents to its group, dealer, recipient and sizes). */
static void deal_head(uint8_t out[VEIL_PARTY_DEAL_HEAD], const uint8_t *group, size_t from, size_t to, size_t parties,
                      size_t threshold)
{
    memcpy(out, group, VEIL_PARTY_ID_BYTES);
    put_u64(out + VEIL_PARTY_ID_BYTES, from);
    put_u64(out + VEIL_PARTY_ID_BYTES + 8, to);
    put_u64(out + VEIL_PARTY_ID_BYTES + 16, parties);
    put_u64(out + VEIL_PARTY_ID_BYTES + 24, threshold);
}

/* out = f(x) = c[0] + c[1] x + ... + c[deg] x^deg (Horner), every polynomial over Q. */
static veil_status eval_at(veil_poly *out, veil_poly *const *c, size_t deg, uint64_t x, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_poly_copy(out, c[deg], err));
    for (size_t k = deg; k-- > 0;) {
        VEIL_CHECK(veil_poly_mul_scalar(out, out, (int64_t)x, err));
        VEIL_CHECK(veil_poly_add(out, out, c[k], err));
    }
done:
    return st;
}

/* One deal: f_i(to) in a crypto_box from the dealer's box secret to the recipient's box key. */
static veil_status seal_deal(veil_party_deal **out, const veil_party_group *group, size_t from, size_t to,
                             const veil_poly *value, const uint8_t *recipient_pk, const uint8_t *bsk, veil_prng *prng,
                             veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_context *ctx = group->ctx;
    const size_t n = ctx->params.n, plain_len = veil_party_deal_box_bytes(ctx) - VEIL_PARTY_DEAL_MAC;
    uint8_t *plain = veil_alloc(plain_len, 1);
    veil_party_deal *d = veil_alloc(1, sizeof *d);
    if (d) d->box = veil_alloc(plain_len + VEIL_PARTY_DEAL_MAC, 1);
    if (!plain || !d || !d->box) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "deal: out of memory");
    d->ctx = ctx;
    memcpy(d->group, group->id, VEIL_PARTY_ID_BYTES);
    d->from = from;
    d->to = to;
    d->parties = group->parties;
    d->threshold = group->threshold;
    d->box_len = plain_len + VEIL_PARTY_DEAL_MAC;
    deal_head(plain, group->id, from, to, group->parties, group->threshold);
    for (size_t i = 0; i < ctx->q_count; i++) {
        const uint64_t *limb = veil_poly_limb_const(value, i);
        uint8_t *o = plain + VEIL_PARTY_DEAL_HEAD + i * n * 8;
        for (size_t c = 0; c < n; c++) put_u64(o + 8 * c, limb[c]);
    }
    veil_prng_bytes(prng, d->nonce, sizeof d->nonce);
    if (crypto_box_easy(d->box, plain, plain_len, d->nonce, recipient_pk, bsk) != 0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "deal: party %zu's box key is not a usable X25519 key", to);
    *out = d;
    d = NULL;
done:
    veil_free_secret(plain, plain_len);
    veil_party_deal_free(d);
    return st;
}

veil_status veil_party_deal_make(veil_party_deal **deals, size_t count, const veil_party_group *group, size_t party,
                                 const veil_secret_key *sk, const veil_party_box_key *const *box_keys,
                                 size_t box_count, veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(deals, err);
    const char *op = "deal";
    veil_status st = check_member(group, party, sk, op, err);
    if (st) return st;
    if (count != group->parties)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: room for %zu deals; a party deals to all %zu parties", op, count,
                         group->parties);
    for (size_t j = 0; j < count; j++) deals[j] = NULL;
    const veil_context *ctx = group->ctx;
    const size_t t = group->threshold, top = ctx->q_count - 1;
    const veil_party_box_key *by[VEIL_PARTY_MAX + 1];
    uint8_t bsk[crypto_box_SECRETKEYBYTES];
    veil_prng *use = NULL, *owned = NULL;
    veil_poly *c[VEIL_PARTY_MAX] = {NULL}, *value = NULL;
    veil_party_deal *made[VEIL_PARTY_MAX] = {NULL};
    st = index_box_keys(by, bsk, group, party, sk, box_keys, box_count, op, err);
    if (st) return st;
    VEIL_CHECK(veil_prng_or_os(&use, &owned, prng, err));
    /* f_i = s_i + c_1 X + ... + c_{t-1} X^{t-1}, the c_k uniform over Q (paper section 5, Shamir over R_Q) */
    for (size_t k = 0; k < t; k++) VEIL_CHECK(veil_context_poly_new(&c[k], ctx, top, VEIL_FORM_EVAL, err));
    veil_limbwise(ctx, c[0], sk->s, NULL, top, VEIL_LIMB_COPY);
    for (size_t k = 1; k < t; k++) VEIL_CHECK(veil_sample_uniform(c[k], use, err));
    VEIL_CHECK(veil_context_poly_new(&value, ctx, top, VEIL_FORM_EVAL, err));
    for (size_t j = 1; j <= group->parties; j++) {
        VEIL_CHECK(eval_at(value, c, t - 1, j, err));
        VEIL_CHECK(seal_deal(&made[j - 1], group, party, j, value, by[j]->pk, bsk, use, err));
    }
    for (size_t j = 0; j < count; j++) {
        deals[j] = made[j];
        made[j] = NULL;
    }
done:
    sodium_memzero(bsk, sizeof bsk);
    for (size_t k = 0; k < t; k++) veil_poly_free(c[k]); /* wipes */
    veil_poly_free(value);
    for (size_t j = 0; j < group->parties; j++) veil_party_deal_free(made[j]);
    veil_prng_free(owned);
    return st;
}

/* ---- threshold keys -------------------------------------------------------------------------------------- */

void veil_party_threshold_key_free(veil_party_threshold_key *key)
{
    if (!key) return;
    veil_poly_free(key->s); /* wipes */
    veil_free_secret(key, sizeof *key);
}

size_t veil_party_threshold_key_party(const veil_party_threshold_key *key) { return key ? key->party : 0; }
size_t veil_party_threshold_key_threshold(const veil_party_threshold_key *key) { return key ? key->threshold : 0; }
const uint8_t *veil_party_threshold_key_group(const veil_party_threshold_key *key) { return key ? key->group : NULL; }

/* A deal's public fields against the group and the recipient. */
static veil_status check_deal(const veil_party_group *group, size_t party, const veil_party_deal *d, size_t k,
                              const char *op, veil_error *err)
{
    if (!d) return veil_fail(err, VEIL_ERR_NULL, "%s: deal %zu is NULL", op, k + 1);
    if (d->ctx != group->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: deal %zu belongs to another context (parameter set)", op, k + 1);
    if (memcmp(d->group, group->id, VEIL_PARTY_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the deal from party %zu belongs to another group", op, d->from);
    if (d->parties != group->parties || d->threshold != group->threshold)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the deal from party %zu is for %zu of %zu parties; the group has "
                         "a threshold of %zu of %zu", op, d->from, d->threshold, d->parties, group->threshold,
                         group->parties);
    if (d->from < 1 || d->from > group->parties)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: a deal from party %zu, not in this group of %zu", op, d->from,
                         group->parties);
    if (d->to != party)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the deal from party %zu is addressed to party %zu, not to party "
                         "%zu", op, d->from, d->to, party);
    if (d->box_len != veil_party_deal_box_bytes(group->ctx))
        return veil_fail(err, VEIL_ERR_FORMAT, "%s: the deal from party %zu holds %zu bytes, expected %zu", op, d->from,
                         d->box_len, veil_party_deal_box_bytes(group->ctx));
    return VEIL_OK;
}

/* Opens one deal and adds its f_i(j) into acc (over Q); every value checked below its prime. */
static veil_status open_deal(veil_poly *acc, veil_poly *tmp, const veil_party_group *group, const veil_party_deal *d,
                             const uint8_t *dealer_pk, const uint8_t *bsk, uint8_t *plain, const char *op,
                             veil_error *err)
{
    const veil_context *ctx = group->ctx;
    const size_t n = ctx->params.n;
    if (crypto_box_open_easy(plain, d->box, d->box_len, d->nonce, dealer_pk, bsk) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the deal from party %zu to party %zu does not open: its bytes "
                         "were changed, or it was sealed with other box keys than the group's", op, d->from, d->to);
    uint8_t head[VEIL_PARTY_DEAL_HEAD];
    deal_head(head, d->group, d->from, d->to, d->parties, d->threshold);
    if (sodium_memcmp(head, plain, sizeof head) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the deal from party %zu carries another group, dealer, recipient "
                         "or threshold inside its box than outside", op, d->from);
    for (size_t i = 0; i < ctx->q_count; i++) {
        const uint64_t q = ctx->ring->primes[i];
        const uint8_t *src = plain + VEIL_PARTY_DEAL_HEAD + i * n * 8;
        uint64_t *limb = veil_poly_limb(tmp, i);
        for (size_t c = 0; c < n; c++) {
            limb[c] = get_u64(src + 8 * c);
            if (limb[c] >= q)
                return veil_fail(err, VEIL_ERR_FORMAT, "%s: the deal from party %zu has a value beyond its prime", op,
                                 d->from);
        }
    }
    veil_limbwise(ctx, acc, acc, tmp, ctx->q_count - 1, VEIL_LIMB_ADD);
    return VEIL_OK;
}

veil_status veil_party_threshold_key_new(veil_party_threshold_key **out, const veil_party_group *group, size_t party,
                                         const veil_secret_key *sk, const veil_party_box_key *const *box_keys,
                                         size_t box_count, const veil_party_deal *const *deals, size_t count,
                                         veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    const char *op = "threshold key";
    veil_status st = check_member(group, party, sk, op, err);
    if (st) return st;
    if (!deals && count) return veil_fail(err, VEIL_ERR_NULL, "%s: the deal list is NULL", op);
    const veil_context *ctx = group->ctx;
    bool seen[VEIL_PARTY_MAX + 1] = {false};
    for (size_t k = 0; k < count; k++) {
        st = check_deal(group, party, deals[k], k, op, err);
        if (st) return st;
        if (seen[deals[k]->from])
            return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: two deals from party %zu", op, deals[k]->from);
        seen[deals[k]->from] = true;
    }
    for (size_t p = 1; p <= group->parties; p++)
        if (!seen[p])
            return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: the deal from party %zu is missing (every party deals to every "
                             "party)", op, p);
    const veil_party_box_key *by[VEIL_PARTY_MAX + 1];
    uint8_t bsk[crypto_box_SECRETKEYBYTES];
    st = index_box_keys(by, bsk, group, party, sk, box_keys, box_count, op, err);
    if (st) return st;
    const size_t plain_len = veil_party_deal_box_bytes(ctx) - VEIL_PARTY_DEAL_MAC;
    uint8_t *plain = veil_alloc(plain_len, 1);
    veil_poly *tmp = NULL;
    veil_party_threshold_key *key = veil_alloc(1, sizeof *key);
    if (!plain || !key) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "%s: out of memory", op);
    key->ctx = ctx;
    memcpy(key->group, group->id, VEIL_PARTY_ID_BYTES);
    key->party = party;
    key->parties = group->parties;
    key->threshold = group->threshold;
    VEIL_CHECK(veil_context_poly_new(&key->s, ctx, ctx->q_count - 1, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_context_poly_new(&tmp, ctx, ctx->q_count - 1, VEIL_FORM_EVAL, err));
    /* S_j = sum_i f_i(j) */
    for (size_t k = 0; k < count; k++)
        VEIL_CHECK(open_deal(key->s, tmp, group, deals[k], by[deals[k]->from]->pk, bsk, plain, op, err));
    *out = key;
    key = NULL;
done:
    sodium_memzero(bsk, sizeof bsk);
    veil_free_secret(plain, plain_len);
    veil_poly_free(tmp); /* wipes */
    veil_party_threshold_key_free(key);
    return st;
}

/* ---- threshold shares and their combination ------------------------------------------------------------- */

veil_status veil_party_threshold_element_share(veil_party_share **out, const veil_party_group *group,
                                               const veil_party_threshold_key *key, const size_t *set,
                                               size_t set_count, const veil_rlwe_element *ct,
                                               const veil_public_key *to, double log2_sigma, veil_prng *prng,
                                               veil_error *err)
{
    *out = NULL;
    const char *op = to ? "threshold key-switching share" : "threshold decryption share";
    veil_status st = check_group(group, op, err);
    if (st) return st;
    if (!key) return veil_fail(err, VEIL_ERR_NULL, "%s: the threshold key is NULL", op);
    if (!ct) return veil_fail(err, VEIL_ERR_NULL, "%s: the ciphertext is NULL", op);
    if (key->ctx != group->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the threshold key belongs to another context than the group", op);
    if (memcmp(key->group, group->id, VEIL_PARTY_ID_BYTES) != 0 || key->parties != group->parties ||
        key->threshold != group->threshold)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the threshold key belongs to another group", op);
    uint64_t mask = 0;
    st = set_mask(&mask, group, key->party, set, set_count, op, err);
    if (st) return st;
    st = veil_rlwe_check_element(group->ctx, ct, op, err);
    if (st) return st;
    const veil_context *ctx = group->ctx;
    const size_t level = ct->level;
    uint64_t lambda[VEIL_PARAMS_MAX_PRIMES];
    veil_secret_key scaled = {.ctx = ctx, .s = NULL, .coeffs = NULL};
    VEIL_CHECK(lagrange(lambda, ctx, mask, key->party, level, err));
    /* lambda_j S_j, limb by limb: the secret this party decrypts with for this set */
    VEIL_CHECK(veil_context_poly_new(&scaled.s, ctx, level, VEIL_FORM_EVAL, err));
    for (size_t i = 0; i <= level; i++) {
        const uint64_t q = ctx->ring->primes[i], w = lambda[i], ws = veil_shoup_precompute(w, q);
        const uint64_t *src = veil_poly_limb_const(key->s, i);
        uint64_t *dst = veil_poly_limb(scaled.s, i);
        for (size_t c = 0; c < ctx->params.n; c++) dst[c] = veil_mulmod_shoup(src[c], w, ws, q);
    }
    VEIL_CHECK(veil_party_element_share(out, group, key->party, ct, &scaled, to, log2_sigma, prng, err));
    (*out)->kind = to ? VEIL_PARTY_THRESHOLD_SWITCH : VEIL_PARTY_THRESHOLD_DECRYPT;
    (*out)->set = mask;
done:
    veil_poly_free(scaled.s); /* wipes */
    return st;
}

/* Every share a threshold share like `want`, all for one set of at least t parties, each of the set once. */
static veil_status check_threshold_shares(const veil_party_group *group, const veil_party_share *const *shares,
                                          size_t count, const veil_party_share *want, const char *op, veil_error *err)
{
    if (count < group->threshold)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: %zu threshold shares, fewer than the group's threshold of %zu: "
                         "at least %zu of the %zu parties must decrypt together", op, count, group->threshold,
                         group->threshold, group->parties);
    bool seen[VEIL_PARTY_MAX + 1] = {false};
    uint64_t set = 0;
    size_t set_of = 0;
    for (size_t k = 0; k < count; k++) {
        const veil_party_share *s = shares[k];
        if (!s) return veil_fail(err, VEIL_ERR_NULL, "%s: share %zu is NULL", op, k + 1);
        if (s->ctx != group->ctx)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: share %zu belongs to another context (parameter set)", op, k + 1);
        if (memcmp(s->group, group->id, VEIL_PARTY_ID_BYTES) != 0)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: share %zu (party %zu) belongs to another group", op, k + 1,
                             s->party);
        if (s->party < 1 || s->party > group->parties || s->parties != group->parties)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: share %zu is from party %zu of %zu; the group has %zu parties",
                             op, k + 1, s->party, s->parties, group->parties);
        if (s->kind != want->kind)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: party %zu's share is a %s share, expected a %s share", op,
                             s->party, veil_party_kind_name(s->kind), veil_party_kind_name(want->kind));
        if (s->level != want->level || memcmp(s->subject, want->subject, sizeof s->subject) != 0)
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: party %zu's share is for another ciphertext%s", op, s->party,
                             s->kind == VEIL_PARTY_THRESHOLD_SWITCH ? " or receiver key" : "");
        if (!(s->set & party_bit(s->party)))
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: party %zu's share was made for a set of parties without it", op,
                             s->party);
        if (k == 0) {
            set = s->set;
            set_of = s->party;
        } else if (s->set != set) {
            return veil_fail(err, VEIL_ERR_MISMATCH, "%s: party %zu's share was made for another set of parties than "
                             "party %zu's (every share must use the Lagrange coefficients of the same set)", op,
                             s->party, set_of);
        }
        if (seen[s->party]) return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: party %zu's share appears twice", op, s->party);
        seen[s->party] = true;
    }
    const uint64_t outside = group->parties < 64 ? set >> group->parties : 0;
    if (outside != 0 || popcount64(set) < group->threshold)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the shares were made for a set of %zu parties that is not one of "
                         "at least %zu of this group's %zu", op, popcount64(set), group->threshold, group->parties);
    for (size_t p = 1; p <= group->parties; p++)
        if ((set & party_bit(p)) && !seen[p])
            return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: party %zu's share is missing (the shares were made for a set of "
                             "%zu parties with it; every party of the set must contribute)", op, p, popcount64(set));
    return VEIL_OK;
}

/* The threshold combination: c_0 + sum_{j in T} h_j (and sum h1_j when switching), as the N-out-of-N one. */
static veil_status threshold_combine(veil_poly **c0, veil_poly **c1, const veil_party_group *group,
                                     const veil_rlwe_element *ct, const veil_public_key *to,
                                     const veil_party_share *const *shares, size_t count, veil_error *err)
{
    const char *op = to ? "joint key switching" : "joint decryption";
    const veil_context *ctx = group->ctx;
    veil_status st = veil_rlwe_check_element(ctx, ct, op, err);
    if (st) return st;
    if (ct->size != 2)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: the ciphertext has %zu polynomials: relinearize it first", op,
                         ct->size);
    if (to && to->ctx != ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the receiver's public key belongs to another context", op);
    veil_party_share want = {.kind = to ? VEIL_PARTY_THRESHOLD_SWITCH : VEIL_PARTY_THRESHOLD_DECRYPT,
                             .level = ct->level};
    veil_party_share_subject(want.subject, ctx, ct, to);
    st = check_threshold_shares(group, shares, count, &want, op, err);
    if (st) return st;
    veil_poly *r0 = NULL, *r1 = NULL;
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

veil_status veil_party_combine(veil_poly **c0, veil_poly **c1, const veil_party_group *group,
                               const veil_rlwe_element *ct, const veil_public_key *to,
                               const veil_party_share *const *shares, size_t count, veil_error *err)
{
    if (!group || !ct || !shares || count == 0 || !shares[0] || !veil_party_kind_is_threshold(shares[0]->kind))
        return veil_party_element_combine(c0, c1, group, ct, to, shares, count, err); /* N-out-of-N, and its checks */
    *c0 = NULL;
    if (c1) *c1 = NULL;
    return threshold_combine(c0, c1, group, ct, to, shares, count, err);
}
