/*
 * Multi-party keys for ML plans (veil/ml.h, "multi-party keys"): joint key sets (the plan's metadata and the
 * joint public key), their evaluation-key bundles, and the joint decryption and public-key switching of
 * ciphertext sets, with the protocol of veil/party.h underneath. CKKS plans: inference and training (the
 * records are encrypted with the joint public key; the trained weights are switched to one party's training keys).
 *
 * A share set (what a party sends for one ciphertext set) is a Veil set: the parameters, then one share per
 * ciphertext in the set's order, with 64 bytes of metadata: the tag "VEIL-PD1", the kind (u64: 5 decryption,
 * 6 key switching, as veil_party_kind), the party (u64), the ciphertext count (u64), and the key id of the
 * ciphertext set (32 bytes).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "ml/ml_plan.h"
#include "veil/serial.h"

#define SHARE_META_BYTES 64
static const uint8_t share_tag[8] = {'V', 'E', 'I', 'L', '-', 'P', 'D', '1'};

const veil_params *veil_plan_params(const veil_plan *plan) { return plan ? plan->params : NULL; }

int veil_keyset_is_joint(const veil_keyset *keys) { return keys && keys->pk && !keys->sk; }

veil_status veil_keyset_joint(veil_keyset **out, const veil_plan *plan, const uint8_t *public_key, size_t len,
                              veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(plan, err);
    VEIL_REQUIRE(public_key, err);
    if (plan->scheme != VEIL_ML_CKKS)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "joint key set: multi-party keys are made for CKKS plans "
                         "(inference or training), not exact BGV inference");
    veil_status st = VEIL_OK;
    veil_buffer canonical = {0};
    veil_keyset *ks = calloc(1, sizeof *ks);
    if (!ks) return veil_fail(err, VEIL_ERR_NO_MEMORY, "joint key set");
    VEIL_CHECK(veil_params_copy(&ks->params, plan->params, err));
    VEIL_CHECK(veil_ml_context_new(ks->params, &ks->ctx, &ks->refs, err));
    VEIL_CHECK(veil_public_key_load(&ks->pk, ks->ctx, public_key, len, err));
    VEIL_CHECK(veil_ml_keyset_meta(ks, plan, err));
    /* the key id: the hash of the key as a bundle stores it (uncompressed) */
    VEIL_CHECK(veil_public_key_save(&canonical, ks->pk, 0, err));
    crypto_generichash(ks->meta.key_id, VEIL_ID_BYTES, canonical.data, canonical.len, NULL, 0);
    *out = ks;
    ks = NULL;
done:
    veil_buffer_free(&canonical);
    veil_keyset_free(ks);
    return st;
}

static veil_status check_joint(const veil_keyset *joint, const char *op, veil_error *err)
{
    if (!joint) return veil_fail(err, VEIL_ERR_NULL, "%s: the joint key set is NULL", op);
    if (!veil_keyset_is_joint(joint))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: a key holder's key set, not a joint one (veil_keyset_joint)", op);
    return VEIL_OK;
}

veil_status veil_eval_keys_joint_save(veil_buffer *out, const veil_keyset *joint, const veil_buffer *switch_keys,
                                      size_t count, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(switch_keys, err);
    veil_status st = check_joint(joint, "joint evaluation keys", err);
    if (st) return st;
    if (count == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "joint evaluation keys: no relinearization key");
    veil_switch_key **keys = calloc(count, sizeof *keys);
    if (!keys) return veil_fail(err, VEIL_ERR_NO_MEMORY, "joint evaluation keys");
    for (size_t i = 0; i < count; i++) {
        VEIL_CHECK(veil_switch_key_load(&keys[i], joint->ctx, switch_keys[i].data, switch_keys[i].len, err));
        const bool relin = veil_switch_key_galois_element(keys[i]) == 0;
        if (relin != (i == 0))
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "joint evaluation keys: key %zu is %s; the relinearization key comes "
                      "first, the Galois keys after it", i + 1, relin ? "a relinearization key" : "a Galois key");
    }
    VEIL_CHECK(veil_ml_ckks_eval_keys_joint(out, joint, keys[0], keys + 1, count - 1, err));
done:
    for (size_t i = 0; i < count; i++) veil_switch_key_free(keys[i]);
    free(keys);
    return st;
}

/* ---- shares of ciphertext sets -------------------------------------------------------------------------- */

/* The group and the secret share, loaded into the joint key set's context. */
static veil_status load_party(veil_party_group **group, veil_secret_key **sk, const veil_keyset *joint,
                              const uint8_t *group_bytes, size_t group_len, const uint8_t *secret, size_t secret_len,
                              veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_REQUIRE(group_bytes, err);
    VEIL_CHECK(veil_party_group_load(group, joint->ctx, group_bytes, group_len, err));
    if (sk) {
        VEIL_REQUIRE(secret, err);
        VEIL_CHECK(veil_secret_key_load(sk, joint->ctx, secret, secret_len, err));
    }
done:
    return st;
}

/* The receiver's public key in the joint key set's context, once its keys are checked to be for the same plan. */
static veil_status receiver_key(veil_public_key **out, const veil_keyset *joint, const veil_eval_keys *receiver,
                                veil_error *err)
{
    VEIL_REQUIRE(receiver, err);
    const veil_ml_meta *a = &joint->meta, *b = &receiver->meta;
    if (b->scheme != VEIL_ML_CKKS || b->packing != a->packing || b->batch != a->batch || b->slots != a->slots ||
        sodium_memcmp(a->model_hash, b->model_hash, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "key switching: the receiver's keys are for another model, packing "
                         "or batch (make them for the group's plan)");
    veil_buffer kb = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_public_key_save(&kb, receiver->pk, 0, err));
    VEIL_CHECK(veil_public_key_load(out, joint->ctx, kb.data, kb.len, err)); /* refuses another parameter set */
done:
    veil_buffer_free(&kb);
    return st;
}

veil_status veil_ml_party_receiver_key(veil_public_key **out, const veil_keyset *joint, const veil_eval_keys *receiver,
                                       veil_error *err)
{
    return receiver_key(out, joint, receiver, err); /* for t-out-of-N (src/ml/threshold.c) */
}

/* One party's shares of every ciphertext of cts (to NULL: decryption), as a share set. */
static veil_status make_share_set(veil_buffer *out, const veil_keyset *joint, const veil_party_group *group,
                                  size_t party, const veil_secret_key *sk, const veil_ciphertexts *cts,
                                  const veil_public_key *to, const veil_party_smudging *smudging, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_buffer *items = calloc(cts->count + 1, sizeof *items);
    veil_party_share *s = NULL;
    if (!items) return veil_fail(err, VEIL_ERR_NO_MEMORY, "shares");
    VEIL_CHECK(veil_params_save(&items[0], joint->params, 0, err));
    for (size_t i = 0; i < cts->count; i++) {
        if (to) VEIL_CHECK(veil_ckks_switch_share(&s, group, party, cts->cts[i], sk, to, smudging, NULL, err));
        else VEIL_CHECK(veil_ckks_decrypt_share(&s, group, party, cts->cts[i], sk, smudging, NULL, err));
        VEIL_CHECK(veil_party_share_save(&items[i + 1], s, 0, err));
        veil_party_share_free(s);
        s = NULL;
    }
    uint8_t meta[SHARE_META_BYTES] = {0};
    memcpy(meta, share_tag, sizeof share_tag);
    veil_ml_put64(meta + 8, to ? VEIL_PARTY_SWITCH : VEIL_PARTY_DECRYPT);
    veil_ml_put64(meta + 16, party);
    veil_ml_put64(meta + 24, cts->count);
    memcpy(meta + 32, cts->meta.key_id, VEIL_ID_BYTES);
    VEIL_CHECK(veil_set_save(out, joint->params, meta, sizeof meta, items, cts->count + 1, err));
done:
    veil_party_share_free(s);
    for (size_t i = 0; i <= cts->count; i++) veil_buffer_free(&items[i]);
    free(items);
    return st;
}

/* The share sets' shares, loaded: table[i * count + k] is set k's share of ciphertext i. */
static veil_status load_share_sets(veil_party_share ***table, const veil_keyset *joint, const veil_ciphertexts *cts,
                                   const veil_buffer *sets, size_t count, veil_party_kind kind, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_set_contents c = {0};
    if (count == 0 || count > VEIL_PARTY_MAX)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "combine: %zu share sets (1 to %d)", count, VEIL_PARTY_MAX);
    veil_party_share **t = calloc(cts->count * count + 1, sizeof *t);
    if (!t) return veil_fail(err, VEIL_ERR_NO_MEMORY, "combine");
    for (size_t k = 0; k < count; k++) {
        VEIL_CHECK(veil_set_open(&c, sets[k].data, sets[k].len, err));
        if (c.meta_len != SHARE_META_BYTES || memcmp(c.meta, share_tag, sizeof share_tag) != 0)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "combine: share set %zu is not a set of party shares", k + 1);
        const uint64_t got_kind = veil_ml_get64(c.meta + 8), party = veil_ml_get64(c.meta + 16);
        /* t-out-of-N share sets (src/ml/threshold.c) combine here too: kinds 7 and 8 for 5 and 6 */
        const uint64_t threshold_kind = kind == VEIL_PARTY_DECRYPT ? VEIL_PARTY_THRESHOLD_DECRYPT
                                                                   : VEIL_PARTY_THRESHOLD_SWITCH;
        if (got_kind != (uint64_t)kind && got_kind != threshold_kind)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "combine: share set %zu (party %llu) holds %s shares, expected %s shares",
                      k + 1, (unsigned long long)party,
                      got_kind == VEIL_PARTY_SWITCH ? "key-switching" : got_kind == VEIL_PARTY_DECRYPT ? "decryption"
                                                                                                       : "unknown",
                      veil_party_kind_name(kind));
        if (veil_ml_get64(c.meta + 24) != cts->count || c.count != cts->count + 1 ||
            sodium_memcmp(c.meta + 32, cts->meta.key_id, VEIL_ID_BYTES) != 0)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "combine: share set %zu (party %llu) was made for another ciphertext set",
                      k + 1, (unsigned long long)party);
        for (size_t i = 0; i < cts->count; i++)
            VEIL_CHECK(veil_party_share_load(&t[i * count + k], joint->ctx, c.items[i + 1].data, c.items[i + 1].len,
                                             err));
        veil_set_contents_clear(&c);
    }
    *table = t;
    t = NULL;
done:
    veil_set_contents_clear(&c);
    if (t) {
        for (size_t i = 0; i < cts->count * count; i++) veil_party_share_free(t[i]);
        free(t);
    }
    return st;
}

static void free_table(veil_party_share **t, size_t n)
{
    if (!t) return;
    for (size_t i = 0; i < n; i++) veil_party_share_free(t[i]);
    free(t);
}

veil_status veil_ml_party_check_decryptable(const veil_keyset *joint, const veil_ciphertexts *cts, veil_error *err)
{
    if (cts->meta.kind == VEIL_SET_TRAIN_MODEL) return veil_ml_train_check_model(joint, cts, err);
    return veil_ml_ckks_check_outputs(joint, cts, err);
}

static veil_status check_set(const veil_keyset *joint, const veil_ciphertexts *cts, const char *op, veil_error *err)
{
    if (!cts) return veil_fail(err, VEIL_ERR_NULL, "%s: the ciphertext set is NULL", op);
    if (cts->ctx != joint->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: load the ciphertexts with the joint key set", op);
    return VEIL_OK;
}

veil_status veil_ciphertexts_decrypt_share(veil_buffer *out, const veil_keyset *joint, const uint8_t *group,
                                           size_t group_len, size_t party, const uint8_t *secret_share,
                                           size_t secret_len, const veil_ciphertexts *cts,
                                           const veil_party_smudging *smudging, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    veil_status st = check_joint(joint, "decryption share", err);
    if (st) return st;
    if ((st = check_set(joint, cts, "decryption share", err)) ||
        (st = veil_ml_party_check_decryptable(joint, cts, err)))
        return st;
    veil_party_group *g = NULL;
    veil_secret_key *sk = NULL;
    VEIL_CHECK(load_party(&g, &sk, joint, group, group_len, secret_share, secret_len, err));
    VEIL_CHECK(make_share_set(out, joint, g, party, sk, cts, NULL, smudging, err));
done:
    veil_secret_key_free(sk);
    veil_party_group_free(g);
    return st;
}

/*
 * The shares' smudging noise, as the largest error it may add to an output: the parties' Gaussians add up
 * (standard deviation sqrt(sum_k sigma_k^2) per coefficient), a slot's real part then has sigma sqrt(N/2),
 * divided by the ciphertext's scale, and 6 standard deviations bound it (flooded decryption's rule,
 * veil_ml_flood_size). Refused (VEIL_ERR_NOISE) beyond `tolerance` (0: VEIL_DECRYPT_DEFAULT_TOLERANCE): the
 * result could then differ from the plan's by more than the plan promises (docs/multiparty.md, "Smudging").
 */
static veil_status check_smudging(double *effect, const veil_keyset *joint, const veil_ckks_ciphertext *ct,
                                  veil_party_share *const *shares, size_t count, double tolerance, const char *op,
                                  veil_error *err)
{
    const double tol = tolerance ? tolerance : VEIL_DECRYPT_DEFAULT_TOLERANCE;
    const double half = (double)(veil_params_degree(joint->params) / 2);
    double var = 0, worst_bits = 0;
    size_t k_worst = 0;
    for (size_t k = 0; k < count; k++) {
        const double b = veil_party_share_smudging_bits(shares[k]);
        var += exp2(2 * b);
        if (b > worst_bits) k_worst = k;
        worst_bits = fmax(worst_bits, b);
    }
    const double worst_scale = veil_ckks_ciphertext_scale(ct), worst = 6.0 * sqrt(var) * sqrt(half) / worst_scale;
    *effect = fmax(*effect, worst);
    if (!(worst <= tol)) {
        /* the smudging bits that would fit (default error bound): each bit fewer halves the noise */
        const double fit = floor(worst_bits - log2(worst / tol));
        char fewer[64] = "no smudging fits";
        if (fit >= 1) snprintf(fewer, sizeof fewer, "shares with --smudging-bits %.0f fit (less hiding)", fit);
        /* the party whose share smudges the most is named (a server then drops that share: net/party_switch.c) */
        return veil_fail(err, VEIL_ERR_NOISE, "%s: %zu shares' smudging (2^%.1f) may move an output by %.2g at scale "
                         "2^%.0f, beyond the tolerance %g: %s, or accept it (--tolerance %.2g) (party %zu's share "
                         "smudges the most)", op, count, worst_bits, worst, log2(worst_scale), tol, fewer, worst * 1.05,
                         (size_t)veil_party_share_party(shares[k_worst]));
    }
    return VEIL_OK;
}

/* The joint plaintext of ciphertext i from the parties' shares. */
typedef struct joint_source {
    const veil_keyset *joint;
    const veil_party_group *group;
    const veil_ciphertexts *cts;
    veil_party_share **table;
    size_t count;
    double tolerance, effect; /* the smudging's: allowed, and the largest bound met */
} joint_source;

static veil_status combine_one(void *arg, veil_ckks_plaintext *pt, size_t i, veil_error *err)
{
    joint_source *src = arg;
    veil_status st = veil_ckks_decrypt_joint(pt, src->group, src->cts->cts[i],
                                             (const veil_party_share *const *)src->table + i * src->count, src->count,
                                             err);
    if (st) return st;
    return check_smudging(&src->effect, src->joint, src->cts->cts[i], src->table + i * src->count, src->count,
                          src->tolerance, "joint decryption", err);
}

static veil_status check_tolerance(double tolerance, const char *op, veil_error *err)
{
    if (!(tolerance >= 0) || !isfinite(tolerance))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: a tolerance of %g (0: the default, else above 0, finite)", op,
                         tolerance);
    return VEIL_OK;
}

veil_status veil_ciphertexts_decrypt_joint(double *out, double *raw_out, const veil_keyset *joint, const uint8_t *group,
                                           size_t group_len, const veil_ciphertexts *cts, const veil_buffer *shares,
                                           size_t count, veil_error *err)
{
    return veil_ciphertexts_decrypt_joint_ex(out, raw_out, joint, group, group_len, cts, shares, count, 0, NULL, err);
}

veil_status veil_ciphertexts_decrypt_joint_ex(double *out, double *raw_out, const veil_keyset *joint,
                                              const uint8_t *group, size_t group_len, const veil_ciphertexts *cts,
                                              const veil_buffer *shares, size_t count, double tolerance,
                                              double *smudging_error, veil_error *err)
{
    VEIL_REQUIRE(shares, err);
    if (!out && !raw_out) return veil_fail(err, VEIL_ERR_NULL, "joint decryption: no output buffer");
    veil_status st = check_joint(joint, "joint decryption", err);
    if (st) return st;
    if ((st = check_set(joint, cts, "joint decryption", err)) || (st = veil_ml_ckks_check_outputs(joint, cts, err)))
        return st;
    veil_party_group *g = NULL;
    joint_source src = {.joint = joint, .cts = cts, .count = count, .tolerance = tolerance};
    if ((st = check_tolerance(tolerance, "joint decryption", err))) return st;
    VEIL_CHECK(load_party(&g, NULL, joint, group, group_len, NULL, 0, err));
    src.group = g;
    VEIL_CHECK(load_share_sets(&src.table, joint, cts, shares, count, VEIL_PARTY_DECRYPT, err));
    VEIL_CHECK(veil_ml_ckks_decode(out, raw_out, joint, cts, combine_one, &src, err));
    if (smudging_error) *smudging_error = src.effect;
done:
    free_table(src.table, cts->count * count);
    veil_party_group_free(g);
    return st;
}

veil_status veil_train_decrypt_joint(double *weights, const veil_keyset *joint, const uint8_t *group,
                                     size_t group_len, const veil_ciphertexts *model, const veil_buffer *shares,
                                     size_t count, double tolerance, double *smudging_error, veil_error *err)
{
    VEIL_REQUIRE(weights, err);
    VEIL_REQUIRE(shares, err);
    veil_status st = check_joint(joint, "joint decryption of a trained model", err);
    if (st) return st;
    if ((st = check_set(joint, model, "joint decryption of a trained model", err)) ||
        (st = veil_ml_train_check_model(joint, model, err)) ||
        (st = check_tolerance(tolerance, "joint decryption of a trained model", err)))
        return st;
    veil_party_group *g = NULL;
    joint_source src = {.joint = joint, .cts = model, .count = count, .tolerance = tolerance};
    VEIL_CHECK(load_party(&g, NULL, joint, group, group_len, NULL, 0, err));
    src.group = g;
    VEIL_CHECK(load_share_sets(&src.table, joint, model, shares, count, VEIL_PARTY_DECRYPT, err));
    VEIL_CHECK(veil_ml_train_weights(weights, joint, model, combine_one, &src, err));
    if (smudging_error) *smudging_error = src.effect;
done:
    free_table(src.table, model->count * count);
    veil_party_group_free(g);
    return st;
}

veil_status veil_ciphertexts_switch_share(veil_buffer *out, const veil_keyset *joint, const uint8_t *group,
                                          size_t group_len, size_t party, const uint8_t *secret_share,
                                          size_t secret_len, const veil_ciphertexts *cts, const veil_eval_keys *receiver,
                                          const veil_party_smudging *smudging, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    veil_status st = check_joint(joint, "key-switching share", err);
    if (st) return st;
    if ((st = check_set(joint, cts, "key-switching share", err))) return st;
    veil_party_group *g = NULL;
    veil_secret_key *sk = NULL;
    veil_public_key *to = NULL;
    VEIL_CHECK(receiver_key(&to, joint, receiver, err));
    VEIL_CHECK(load_party(&g, &sk, joint, group, group_len, secret_share, secret_len, err));
    VEIL_CHECK(make_share_set(out, joint, g, party, sk, cts, to, smudging, err));
done:
    veil_public_key_free(to);
    veil_secret_key_free(sk);
    veil_party_group_free(g);
    return st;
}

veil_status veil_ciphertexts_switch_joint(veil_ciphertexts **out, const veil_keyset *joint, const uint8_t *group,
                                          size_t group_len, const veil_ciphertexts *cts, const veil_eval_keys *receiver,
                                          const veil_buffer *shares, size_t count, veil_error *err)
{
    return veil_ciphertexts_switch_joint_ex(out, joint, group, group_len, cts, receiver, shares, count, 0, NULL, err);
}

veil_status veil_ciphertexts_switch_joint_ex(veil_ciphertexts **out, const veil_keyset *joint, const uint8_t *group,
                                             size_t group_len, const veil_ciphertexts *cts,
                                             const veil_eval_keys *receiver, const veil_buffer *shares, size_t count,
                                             double tolerance, double *smudging_error, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(shares, err);
    veil_status st = check_joint(joint, "joint key switching", err);
    if (st) return st;
    if ((st = check_set(joint, cts, "joint key switching", err)) ||
        (st = check_tolerance(tolerance, "joint key switching", err)))
        return st;
    double effect = 0;
    veil_party_group *g = NULL;
    veil_public_key *to = NULL;
    veil_party_share **table = NULL;
    veil_ciphertexts *set = NULL;
    VEIL_CHECK(receiver_key(&to, joint, receiver, err));
    VEIL_CHECK(load_party(&g, NULL, joint, group, group_len, NULL, 0, err));
    VEIL_CHECK(load_share_sets(&table, joint, cts, shares, count, VEIL_PARTY_SWITCH, err));
    veil_ml_meta meta = cts->meta;
    memcpy(meta.key_id, receiver->meta.key_id, VEIL_ID_BYTES); /* the set now belongs to the receiver's keys */
    VEIL_CHECK(veil_ciphertexts_alloc(&set, joint->ctx, &meta, cts->count, err));
    for (size_t i = 0; i < cts->count; i++) {
        VEIL_CHECK(veil_ckks_switch_joint(set->cts[i], g, cts->cts[i], to,
                                          (const veil_party_share *const *)table + i * count, count, err));
        VEIL_CHECK(check_smudging(&effect, joint, cts->cts[i], table + i * count, count, tolerance,
                                  "joint key switching", err));
    }
    *out = set;
    set = NULL;
    if (smudging_error) *smudging_error = effect;
done:
    veil_ciphertexts_free(set);
    free_table(table, cts->count * count);
    veil_public_key_free(to);
    veil_party_group_free(g);
    return st;
}

/* ---- the combination of the key-generation rounds, for whoever combines (veil serve, docs/net.md) -------- */

/* Aggregates share j of every party (shares[k * per + j], stored) in ctx. */
static veil_status aggregate_stored(veil_party_share **out, const veil_context *ctx, const veil_party_group *group,
                                    const veil_buffer *shares, size_t n, size_t per, size_t j, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_party_share **list = calloc(n, sizeof *list);
    if (!list) return veil_fail(err, VEIL_ERR_NO_MEMORY, "aggregate");
    for (size_t k = 0; k < n; k++)
        VEIL_CHECK(veil_party_share_load(&list[k], ctx, shares[k * per + j].data, shares[k * per + j].len, err));
    VEIL_CHECK(veil_party_aggregate(out, group, (const veil_party_share *const *)list, n, err));
done:
    for (size_t k = 0; k < n; k++) veil_party_share_free(list[k]);
    free(list);
    return st;
}

veil_status veil_ml_party_combine_round1(veil_buffer *joint_keys, veil_buffer *aggregates, const veil_plan *plan,
                                         const uint8_t *group_id, size_t parties, size_t threshold,
                                         const veil_buffer *shares, veil_error *err)
{
    VEIL_REQUIRE(joint_keys, err);
    VEIL_REQUIRE(aggregates, err);
    VEIL_REQUIRE(plan, err);
    VEIL_REQUIRE(group_id, err);
    VEIL_REQUIRE(shares, err);
    veil_status st = VEIL_OK;
    veil_context *ctx = NULL;
    veil_party_group *group = NULL;
    veil_party_share *pk_agg = NULL, *r1_agg = NULL;
    veil_public_key *pk = NULL;
    veil_keyset *joint = NULL;
    veil_buffer pkb = {0}, out[3] = {{0}, {0}, {0}};
    VEIL_CHECK(veil_context_new(&ctx, plan->params, NULL, err));
    VEIL_CHECK(veil_party_group_from(&group, ctx, group_id, parties, threshold, err));
    VEIL_CHECK(aggregate_stored(&pk_agg, ctx, group, shares, parties, 2, 0, err));
    VEIL_CHECK(aggregate_stored(&r1_agg, ctx, group, shares, parties, 2, 1, err));
    if (veil_party_share_kind(pk_agg) != VEIL_PARTY_PUBLIC_KEY || veil_party_share_kind(r1_agg) != VEIL_PARTY_RELIN_1)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "round 1: the shares are not public-key and relinearization round-1 ones");
    VEIL_CHECK(veil_party_public_key(&pk, group, pk_agg, err));
    VEIL_CHECK(veil_public_key_save(&pkb, pk, 0, err));
    VEIL_CHECK(veil_keyset_joint(&joint, plan, pkb.data, pkb.len, err));
    VEIL_CHECK(veil_keyset_save(&out[0], joint, err));
    VEIL_CHECK(veil_party_share_save(&out[1], pk_agg, 0, err));
    VEIL_CHECK(veil_party_share_save(&out[2], r1_agg, 0, err));
    *joint_keys = out[0];
    aggregates[0] = out[1];
    aggregates[1] = out[2];
    out[0] = out[1] = out[2] = (veil_buffer){0};
done:
    for (int i = 0; i < 3; i++) veil_buffer_free(&out[i]);
    veil_buffer_free(&pkb);
    veil_keyset_free(joint);
    veil_public_key_free(pk);
    veil_party_share_free(pk_agg);
    veil_party_share_free(r1_agg);
    veil_party_group_free(group);
    veil_context_free(ctx);
    return st;
}

veil_status veil_ml_party_combine_round2(veil_buffer *eval_keys, const veil_plan *plan, const uint8_t *joint_keys,
                                         size_t joint_len, const uint8_t *group_id, size_t parties, size_t threshold,
                                         const veil_buffer *relin_round1, const veil_buffer *shares, size_t per,
                                         veil_error *err)
{
    VEIL_REQUIRE(eval_keys, err);
    VEIL_REQUIRE(plan, err);
    VEIL_REQUIRE(joint_keys, err);
    VEIL_REQUIRE(group_id, err);
    VEIL_REQUIRE(relin_round1, err);
    VEIL_REQUIRE(shares, err);
    veil_status st = VEIL_OK;
    long steps[512];
    const size_t n_rot = veil_plan_rotations(plan, steps, 512);
    veil_keyset *joint = NULL;
    veil_party_group *group = NULL;
    veil_party_share *r1 = NULL, *agg = NULL;
    veil_switch_key *key = NULL;
    veil_buffer *keys = calloc(per ? per : 1, sizeof *keys);
    if (!keys) return veil_fail(err, VEIL_ERR_NO_MEMORY, "round 2");
    if (plan->train.boot)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "round 2: a training plan with bootstrapping (joint keys have no "
                  "encapsulation key yet): ask for fewer iterations");
    if (n_rot > 512 || per != 1 + n_rot)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "round 2: %zu shares per party, the plan needs %zu (another plan's?)", per,
                  1 + n_rot);
    VEIL_CHECK(veil_keyset_load(&joint, joint_keys, joint_len, err));
    VEIL_CHECK(check_joint(joint, "round 2", err));
    VEIL_CHECK(veil_party_group_from(&group, joint->ctx, group_id, parties, threshold, err));
    VEIL_CHECK(veil_party_share_load(&r1, joint->ctx, relin_round1->data, relin_round1->len, err));
    for (size_t j = 0; j < per; j++) {
        VEIL_CHECK(aggregate_stored(&agg, joint->ctx, group, shares, parties, per, j, err));
        if (j == 0) {
            VEIL_CHECK(veil_party_relin_key(&key, group, r1, agg, err));
        } else {
            if (veil_party_share_galois(agg) != veil_galois_element_rotation(joint->ctx, steps[j - 1]))
                VEIL_FAIL(err, VEIL_ERR_MISMATCH, "round 2: the Galois shares are not those of the plan's rotations");
            VEIL_CHECK(veil_party_galois_key(&key, group, agg, err));
        }
        VEIL_CHECK(veil_switch_key_save(&keys[j], key, 0, err));
        veil_switch_key_free(key);
        key = NULL;
        veil_party_share_free(agg);
        agg = NULL;
    }
    VEIL_CHECK(veil_eval_keys_joint_save(eval_keys, joint, keys, per, err));
done:
    for (size_t j = 0; j < per; j++) veil_buffer_free(&keys[j]);
    free(keys);
    veil_switch_key_free(key);
    veil_party_share_free(agg);
    veil_party_share_free(r1);
    veil_party_group_free(group);
    veil_keyset_free(joint);
    return st;
}
