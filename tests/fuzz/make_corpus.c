/* Writes one valid object of each kind (prefixed by its loader's selector byte) as the fuzzing seed corpus. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "veil/veil.h"
#include "ml/ml_internal.h"

static int put(const char *dir, const char *name, uint8_t which, const veil_buffer *b)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return 1;
    fputc(which, f);
    fwrite(b->data, 1, b->len, f);
    return fclose(f) != 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    const unsigned qb[] = {45, 40}, pb[] = {50};
    veil_params_spec spec = {1024, 2, NULL, qb, 1, NULL, pb, 0, VEIL_SECRET_TERNARY, 0, VEIL_SECURITY_NONE, 0};
    veil_params *params = NULL;
    veil_context *ctx = NULL;
    veil_secret_key *sk = NULL;
    veil_public_key *pk = NULL;
    veil_switch_key *rk = NULL;
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    veil_ckks_ciphertext *ct = NULL;
    double v[4] = {0.5, -0.25, 1, 0};
    veil_ring_options opts = {VEIL_KERNEL_AUTO, 1};
    if (veil_params_new(&params, &spec, NULL) || veil_context_new(&ctx, params, &opts, NULL) ||
        veil_secret_key_new(&sk, ctx, NULL, NULL) || veil_public_key_new(&pk, ctx, sk, NULL, NULL) ||
        veil_relin_key_new(&rk, ctx, sk, NULL, NULL) || veil_ckks_encoder_new(&enc, ctx, NULL) ||
        veil_ckks_plaintext_new(&pt, ctx, NULL) || veil_ckks_encode(enc, pt, v, NULL, 4, 1 << 30, 1, NULL) ||
        veil_ckks_ciphertext_new(&ct, ctx, NULL) || veil_ckks_encrypt_sk(ctx, ct, pt, sk, NULL, NULL))
        return 1;
    veil_params_spec bspec = spec;
    bspec.plain_modulus = 12289;
    veil_params *bparams = NULL;
    veil_context *bctx = NULL;
    veil_secret_key *bsk = NULL;
    veil_bgv_encoder *benc = NULL;
    veil_bgv_plaintext *bpt = NULL;
    veil_bgv_ciphertext *bct = NULL;
    const uint64_t bv[4] = {1, 2, 12288, 0};
    if (veil_params_new(&bparams, &bspec, NULL) || veil_context_new(&bctx, bparams, &opts, NULL) ||
        veil_secret_key_new(&bsk, bctx, NULL, NULL) || veil_bgv_encoder_new(&benc, bctx, NULL) ||
        veil_bgv_plaintext_new(&bpt, bctx, NULL) || veil_bgv_encode(benc, bpt, bv, 4, NULL) ||
        veil_bgv_ciphertext_new(&bct, bctx, NULL) || veil_bgv_encrypt_sk(bctx, bct, bpt, bsk, NULL, NULL))
        return 1;
    veil_buffer b[10] = {{0}};
    int bad = veil_params_save(&b[0], params, 0, NULL) | veil_secret_key_save(&b[1], sk, 0, NULL) |
              veil_public_key_save(&b[2], pk, 0, NULL) | veil_switch_key_save(&b[3], rk, VEIL_SAVE_COMPRESS, NULL) |
              veil_ckks_plaintext_save(&b[4], pt, 0, NULL) | veil_ckks_ciphertext_save(&b[5], ct, 0, NULL) |
              veil_ckks_ciphertext_save(&b[6], ct, VEIL_SAVE_COMPRESS, NULL) |
              veil_bgv_plaintext_save(&b[7], bpt, 0, NULL) | veil_bgv_ciphertext_save(&b[8], bct, 0, NULL) |
              veil_bgv_ciphertext_save(&b[9], bct, VEIL_SAVE_COMPRESS, NULL);
    const char *names[10] = {"params", "secret", "public", "relin", "plaintext", "ciphertext", "ciphertext-zstd",
                             "bgv-plaintext", "bgv-ciphertext", "bgv-ciphertext-zstd"};
    const uint8_t which[10] = {0, 1, 2, 3, 4, 5, 5, 6, 7, 7};
    for (int i = 0; i < 10 && !bad; i++) bad |= put(argv[1], names[i], which[i], &b[i]);
    for (int i = 0; i < 10; i++) veil_buffer_free(&b[i]);
    /* multi-party objects: a group, a public-key share and a relinearization round-1 share (several polynomials) */
    veil_party_group *group = NULL;
    veil_party_share *pks = NULL, *r1 = NULL;
    veil_secret_key *eph = NULL;
    veil_buffer pb_[3] = {{0}};
    bad |= veil_party_group_new(&group, ctx, 3, 0, NULL, NULL) ||
           veil_party_public_key_share(&pks, group, 1, sk, NULL, NULL) ||
           veil_party_relin_share_1(&r1, &eph, group, 2, sk, NULL, NULL) || veil_party_group_save(&pb_[0], group, NULL) ||
           veil_party_share_save(&pb_[1], pks, 0, NULL) || veil_party_share_save(&pb_[2], r1, 0, NULL);
    if (!bad) bad |= put(argv[1], "party-group", 13, &pb_[0]) | put(argv[1], "party-pk-share", 14, &pb_[1]) |
                     put(argv[1], "party-relin-share", 14, &pb_[2]);
    for (int i = 0; i < 3; i++) veil_buffer_free(&pb_[i]);
    veil_party_share_free(pks);
    veil_party_share_free(r1);
    veil_secret_key_free(eph);
    veil_party_group_free(group);
    /* an ONNX model (Gemm, square, Gemm), its plan, a key set and its eval keys (a small model: N = 8192) */
    veil_graph g = {0};
    double w1[6] = {0.5, -1, 2, 0.25, 3, -0.5}, w2[2] = {1, -1};
    int64_t in_dims[2] = {-1, 3}, w1d[2] = {2, 3}, w2d[2] = {1, 2};
    const char *g1[2] = {"x", "w1"}, *sq[2] = {"h", "h"}, *g2[2] = {"s", "w2"};
    uint8_t *onnx = NULL;
    size_t onnx_len = 0;
    veil_model *model = NULL;
    veil_plan *plan = NULL;
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    veil_plan_request req = {.packing = VEIL_PACKING_LATENCY};
    bad |= veil_graph_add_input(&g, "x", in_dims, 2, NULL) | veil_graph_add_init(&g, "w1", w1, w1d, 2, NULL) |
           veil_graph_add_init(&g, "w2", w2, w2d, 2, NULL) |
           veil_graph_add_node(&g, "Gemm", g1, 2, "h", "transB", 1, NULL) |
           veil_graph_add_node(&g, "Mul", sq, 2, "s", NULL, 0, NULL) |
           veil_graph_add_node(&g, "Gemm", g2, 2, "y", "transB", 1, NULL) | veil_graph_add_output(&g, "y", NULL) |
           veil_graph_to_onnx(&g, &onnx, &onnx_len, NULL);
    veil_graph_clear(&g);
    if (!bad) {
        veil_buffer ob = {onnx, onnx_len}, pb = {0}, kb = {0}, eb = {0};
        bad |= put(argv[1], "onnx", 12, &ob) | veil_model_load_onnx(&model, onnx, onnx_len, NULL, NULL) |
               veil_model_plan(&plan, model, &req, NULL) | veil_plan_save(&pb, plan, NULL) |
               veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, NULL) | veil_keyset_save(&kb, ks, NULL) |
               veil_eval_keys_save(&eb, ek, NULL);
        if (!bad) bad |= put(argv[1], "plan", 10, &pb) | put(argv[1], "keyset", 9, &kb) | put(argv[1], "evalkeys", 8, &eb);
        veil_buffer_free(&pb);
        veil_buffer_free(&kb);
        veil_buffer_free(&eb);
    }
    {
        /* exact inference: the same graph with integer weights, in BGV (a key set and eval keys of one modulus
         * group or more, with the longer metadata) */
        veil_graph q = {0};
        double qw1[6] = {1, -2, 3, 0, 2, -1}, qw2[2] = {1, -1};
        uint8_t *qonnx = NULL;
        size_t qlen = 0;
        veil_model *qm = NULL;
        veil_plan *qp = NULL;
        veil_keyset *qks = NULL;
        veil_eval_keys *qek = NULL;
        veil_model_options qo = {.integer = 1};
        veil_plan_request qr = {.scheme = VEIL_ML_BGV, .input_lo = 0, .input_hi = 3};
        veil_buffer kb = {0}, eb = {0};
        bad |= veil_graph_add_input(&q, "x", in_dims, 2, NULL) | veil_graph_add_init(&q, "w1", qw1, w1d, 2, NULL) |
               veil_graph_add_init(&q, "w2", qw2, w2d, 2, NULL) |
               veil_graph_add_node(&q, "Gemm", g1, 2, "h", "transB", 1, NULL) |
               veil_graph_add_node(&q, "Mul", sq, 2, "s", NULL, 0, NULL) |
               veil_graph_add_node(&q, "Gemm", g2, 2, "y", "transB", 1, NULL) | veil_graph_add_output(&q, "y", NULL) |
               veil_graph_to_onnx(&q, &qonnx, &qlen, NULL);
        veil_graph_clear(&q);
        veil_error qe = {VEIL_OK, ""};
        if (!bad)
            bad |= veil_model_load_onnx(&qm, qonnx, qlen, &qo, &qe) || veil_model_plan(&qp, qm, &qr, &qe) ||
                   veil_keyset_generate(&qks, &qek, qp, NULL, NULL, NULL, &qe) || veil_keyset_save(&kb, qks, &qe) ||
                   veil_eval_keys_save(&eb, qek, &qe);
        if (bad) fprintf(stderr, "make_corpus: exact inference: %s\n", qe.detail);
        if (!bad)
            bad |= put(argv[1], "exact-keyset", 9, &kb) | put(argv[1], "exact-evalkeys", 8, &eb) |
                   put(argv[1], "exact-evalkeys-describe", 11, &eb);
        veil_buffer_free(&kb);
        veil_buffer_free(&eb);
        veil_eval_keys_free(qek);
        veil_keyset_free(qks);
        veil_plan_free(qp);
        veil_model_free(qm);
        free(qonnx);
    }
    {
        /* a training plan (128-bit, 3 features, 1 iteration), also given to the describer */
        veil_train_request treq = {.task = VEIL_TRAIN_LOGISTIC, .features = 3, .iterations = 1};
        veil_plan *tplan = NULL;
        veil_buffer tb = {0};
        bad |= veil_train_plan(&tplan, &treq, NULL) | veil_plan_save(&tb, tplan, NULL);
        if (!bad) bad |= put(argv[1], "trainplan", 10, &tb) | put(argv[1], "trainplan-describe", 11, &tb);
        veil_buffer_free(&tb);
        veil_plan_free(tplan);
    }
    free(onnx);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    veil_model_free(model);
    veil_bgv_ciphertext_free(bct);
    veil_bgv_plaintext_free(bpt);
    veil_bgv_encoder_free(benc);
    veil_secret_key_free(bsk);
    veil_context_free(bctx);
    veil_params_free(bparams);
    veil_ckks_ciphertext_free(ct);
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    veil_switch_key_free(rk);
    veil_public_key_free(pk);
    veil_secret_key_free(sk);
    veil_context_free(ctx);
    veil_params_free(params);
    return bad ? 1 : 0;
}
