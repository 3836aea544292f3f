/*
 * t-out-of-N for ML ciphertext sets (veil/ml.h, "t-out-of-N"): a party's threshold decryption or switching
 * shares of every ciphertext of a set, for one set of decrypting parties (veil/party.h, "t-out-of-N"), as a
 * share set of the layout src/ml/party.c reads (the tag "VEIL-PD1", the kind: 7 threshold decryption, 8
 * threshold key switching, the party, the ciphertext count, the ciphertext set's key id), so that
 * veil_ciphertexts_decrypt_joint and veil_ciphertexts_switch_joint combine them as they combine N-out-of-N
 * share sets (the threshold checks run per ciphertext, in veil_ckks_decrypt_joint and veil_ckks_switch_joint).
 */
#include <stdlib.h>
#include <string.h>
#include "ml/ml_plan.h"
#include "veil/serial.h"

#define SHARE_META_BYTES 64
static const uint8_t share_tag[8] = {'V', 'E', 'I', 'L', '-', 'P', 'D', '1'};

/* The group and the threshold key, loaded into the joint key set's context, and each other's. */
static veil_status load_threshold_party(veil_party_group **group, veil_party_threshold_key **key,
                                        const veil_keyset *joint, const uint8_t *group_bytes, size_t group_len,
                                        const uint8_t *key_bytes, size_t key_len, const char *op, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_REQUIRE(group_bytes, err);
    VEIL_REQUIRE(key_bytes, err);
    VEIL_CHECK(veil_party_group_load(group, joint->ctx, group_bytes, group_len, err));
    VEIL_CHECK(veil_party_threshold_key_load(key, joint->ctx, key_bytes, key_len, err));
    if (memcmp(veil_party_threshold_key_group(*key), veil_party_group_id(*group), VEIL_PARTY_ID_BYTES) != 0)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "%s: the threshold key belongs to another group", op);
done:
    return st;
}

/* One party's threshold shares of every ciphertext of cts (to NULL: decryption) for `set`, as a share set. */
static veil_status make_threshold_set(veil_buffer *out, const veil_keyset *joint, const veil_party_group *group,
                                      const veil_party_threshold_key *key, const size_t *set, size_t set_count,
                                      const veil_ciphertexts *cts, const veil_public_key *to,
                                      const veil_party_smudging *smudging, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_buffer *items = calloc(cts->count + 1, sizeof *items);
    veil_party_share *s = NULL;
    if (!items) return veil_fail(err, VEIL_ERR_NO_MEMORY, "threshold shares");
    VEIL_CHECK(veil_params_save(&items[0], joint->params, 0, err));
    for (size_t i = 0; i < cts->count; i++) {
        if (to)
            VEIL_CHECK(veil_ckks_threshold_switch_share(&s, group, key, set, set_count, cts->cts[i], to, smudging, NULL,
                                                        err));
        else
            VEIL_CHECK(veil_ckks_threshold_decrypt_share(&s, group, key, set, set_count, cts->cts[i], smudging, NULL,
                                                         err));
        VEIL_CHECK(veil_party_share_save(&items[i + 1], s, 0, err));
        veil_party_share_free(s);
        s = NULL;
    }
    uint8_t meta[SHARE_META_BYTES] = {0};
    memcpy(meta, share_tag, sizeof share_tag);
    veil_ml_put64(meta + 8, to ? VEIL_PARTY_THRESHOLD_SWITCH : VEIL_PARTY_THRESHOLD_DECRYPT);
    veil_ml_put64(meta + 16, veil_party_threshold_key_party(key));
    veil_ml_put64(meta + 24, cts->count);
    memcpy(meta + 32, cts->meta.key_id, VEIL_ID_BYTES);
    VEIL_CHECK(veil_set_save(out, joint->params, meta, sizeof meta, items, cts->count + 1, err));
done:
    veil_party_share_free(s);
    for (size_t i = 0; i <= cts->count; i++) veil_buffer_free(&items[i]);
    free(items);
    return st;
}

static veil_status check_inputs(const veil_keyset *joint, const veil_ciphertexts *cts, const char *op, veil_error *err)
{
    if (!joint) return veil_fail(err, VEIL_ERR_NULL, "%s: the joint key set is NULL", op);
    if (!veil_keyset_is_joint(joint))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: a key holder's key set, not a joint one (veil_keyset_joint)", op);
    if (!cts) return veil_fail(err, VEIL_ERR_NULL, "%s: the ciphertext set is NULL", op);
    if (cts->ctx != joint->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "%s: load the ciphertexts with the joint key set", op);
    return VEIL_OK;
}

veil_status veil_ciphertexts_threshold_decrypt_share(veil_buffer *out, const veil_keyset *joint, const uint8_t *group,
                                                     size_t group_len, const uint8_t *threshold_key, size_t key_len,
                                                     const size_t *set, size_t set_count, const veil_ciphertexts *cts,
                                                     const veil_party_smudging *smudging, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    const char *op = "threshold decryption share";
    veil_status st = check_inputs(joint, cts, op, err);
    if (st) return st;
    if ((st = veil_ml_party_check_decryptable(joint, cts, err))) return st;
    veil_party_group *g = NULL;
    veil_party_threshold_key *key = NULL;
    VEIL_CHECK(load_threshold_party(&g, &key, joint, group, group_len, threshold_key, key_len, op, err));
    VEIL_CHECK(make_threshold_set(out, joint, g, key, set, set_count, cts, NULL, smudging, err));
done:
    veil_party_threshold_key_free(key); /* wipes */
    veil_party_group_free(g);
    return st;
}

veil_status veil_ciphertexts_threshold_switch_share(veil_buffer *out, const veil_keyset *joint, const uint8_t *group,
                                                    size_t group_len, const uint8_t *threshold_key, size_t key_len,
                                                    const size_t *set, size_t set_count, const veil_ciphertexts *cts,
                                                    const veil_eval_keys *receiver,
                                                    const veil_party_smudging *smudging, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    const char *op = "threshold key-switching share";
    veil_status st = check_inputs(joint, cts, op, err);
    if (st) return st;
    veil_party_group *g = NULL;
    veil_party_threshold_key *key = NULL;
    veil_public_key *to = NULL;
    VEIL_CHECK(veil_ml_party_receiver_key(&to, joint, receiver, err));
    VEIL_CHECK(load_threshold_party(&g, &key, joint, group, group_len, threshold_key, key_len, op, err));
    VEIL_CHECK(make_threshold_set(out, joint, g, key, set, set_count, cts, to, smudging, err));
done:
    veil_public_key_free(to);
    veil_party_threshold_key_free(key); /* wipes */
    veil_party_group_free(g);
    return st;
}
