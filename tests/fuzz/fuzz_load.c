/*
 * libFuzzer target for every loader of the wire format, the ML layer's files and ONNX models. The first input byte picks the loader, the rest is
 * the object. Each loader must return an error or a valid object: never crash, hang, leak or read out of
 * bounds (built with -fsanitize=fuzzer,address,undefined by `make fuzz`). That build ignores integrity-digest
 * mismatches (VEIL_FUZZ_IGNORE_DIGEST) so that mutated objects reach the parsers.
 */
#include <stdint.h>
#include <stdlib.h>
#include "veil/veil.h"

static veil_context *ctx, *bgv;

static veil_context *make(uint64_t t)
{
    const unsigned qb[] = {45, 40}, pb[] = {50};
    veil_params_spec spec = {1024, 2, NULL, qb, 1, NULL, pb, 0, VEIL_SECRET_TERNARY, 0, VEIL_SECURITY_NONE, t};
    veil_params *params = NULL;
    veil_context *c = NULL;
    veil_ring_options opts = {VEIL_KERNEL_AUTO, 1};
    if (veil_params_new(&params, &spec, NULL) != VEIL_OK || veil_context_new(&c, params, &opts, NULL) != VEIL_OK)
        abort(); /* the fixed parameters above are valid: this cannot happen */
    veil_params_free(params);
    return c;
}

static void init(void)
{
    ctx = make(0);
    bgv = make(12289); /* the same shape as a BGV set, as make_corpus writes it */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx) init();
    if (size < 1) return 0;
    const uint8_t which = data[0] % 15;
    data++;
    size--;
    switch (which) {
    case 0: { veil_params *p = NULL; veil_params_load(&p, data, size, NULL); veil_params_free(p); break; }
    case 1: { veil_secret_key *k = NULL; veil_secret_key_load(&k, ctx, data, size, NULL); veil_secret_key_free(k); break; }
    case 2: { veil_public_key *k = NULL; veil_public_key_load(&k, ctx, data, size, NULL); veil_public_key_free(k); break; }
    case 3: { veil_switch_key *k = NULL; veil_switch_key_load(&k, ctx, data, size, NULL); veil_switch_key_free(k); break; }
    case 4: { veil_ckks_plaintext *p = NULL; veil_ckks_plaintext_load(&p, ctx, data, size, NULL); veil_ckks_plaintext_free(p); break; }
    case 6: { veil_bgv_plaintext *p = NULL; veil_bgv_plaintext_load(&p, bgv, data, size, NULL); veil_bgv_plaintext_free(p); break; }
    case 7: { veil_bgv_ciphertext *c = NULL; veil_bgv_ciphertext_load(&c, bgv, data, size, NULL); veil_bgv_ciphertext_free(c); break; }
    /* the ML layer's files and ONNX models */
    case 8: { veil_eval_keys *k = NULL; veil_eval_keys_load(&k, data, size, NULL); veil_eval_keys_free(k); break; }
    case 9: { veil_keyset *k = NULL; veil_keyset_load(&k, data, size, NULL); veil_keyset_free(k); break; }
    case 10: { veil_plan *p = NULL; veil_plan_load(&p, data, size, NULL); veil_plan_free(p); break; }
    case 11: { char text[1024]; veil_ml_file_describe(data, size, text, sizeof text, NULL); break; }
    case 12: { veil_model *m = NULL; veil_model_load_onnx(&m, data, size, NULL, NULL); veil_model_free(m); break; }
    case 13: { veil_party_group *g = NULL; veil_party_group_load(&g, ctx, data, size, NULL); veil_party_group_free(g); break; }
    case 14: { veil_party_share *s = NULL; veil_party_share_load(&s, ctx, data, size, NULL); veil_party_share_free(s); break; }
    default: { veil_ckks_ciphertext *c = NULL; veil_ckks_ciphertext_load(&c, ctx, data, size, NULL); veil_ckks_ciphertext_free(c); break; }
    }
    return 0;
}
