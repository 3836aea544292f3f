/*
 * The key sets fuzz_cts loads ciphertext sets against, and make_cts_corpus encrypts its seeds under: made
 * from a fixed seed, so that both programs make the same keys (the same key ids) every run. The smallest
 * parameters: a small model (inference plans take a security level: N = 8192) and, for training, an insecure
 * ring of 1024 (VEIL_SECURITY_NONE); the loaders are the same at every size.
 *   CTS_THROUGHPUT, CTS_LATENCY  CKKS inference of a small model (Gemm, square, Gemm; 3 inputs)
 *   CTS_BGV                      exact inference of the same graph with integer weights (BGV)
 *   CTS_TRAINING                 logistic regression on 3 features, 1 iteration
 */
#ifndef VEIL_FUZZ_CTS_KEYS_H
#define VEIL_FUZZ_CTS_KEYS_H
#include <stdlib.h>
#include <string.h>
#include "veil/veil.h"
#include "ml/ml_internal.h" /* the graph builder, VEIL_CHECK */

enum { CTS_THROUGHPUT, CTS_LATENCY, CTS_BGV, CTS_TRAINING, CTS_KINDS };

typedef struct cts_keys {
    veil_model *model[CTS_KINDS]; /* NULL for training */
    veil_plan *plan[CTS_KINDS];
    veil_keyset *ks[CTS_KINDS];
    veil_eval_keys *ek[CTS_KINDS];
} cts_keys;

/* The small model of make_corpus.c: integer weights too, so that the BGV plan takes it. */
static veil_status cts_model(veil_model **out, int integer, veil_error *err)
{
    veil_graph g = {0};
    const double w1[6] = {1, -2, 3, 0, 2, -1}, w2[2] = {1, -1};
    const int64_t in_dims[2] = {-1, 3}, w1d[2] = {2, 3}, w2d[2] = {1, 2};
    const char *g1[2] = {"x", "w1"}, *sq[2] = {"h", "h"}, *g2[2] = {"s", "w2"};
    uint8_t *onnx = NULL;
    size_t len = 0;
    veil_model_options o = {.integer = integer};
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_graph_add_input(&g, "x", in_dims, 2, err));
    VEIL_CHECK(veil_graph_add_init(&g, "w1", w1, w1d, 2, err));
    VEIL_CHECK(veil_graph_add_init(&g, "w2", w2, w2d, 2, err));
    VEIL_CHECK(veil_graph_add_node(&g, "Gemm", g1, 2, "h", "transB", 1, err));
    VEIL_CHECK(veil_graph_add_node(&g, "Mul", sq, 2, "s", NULL, 0, err));
    VEIL_CHECK(veil_graph_add_node(&g, "Gemm", g2, 2, "y", "transB", 1, err));
    VEIL_CHECK(veil_graph_add_output(&g, "y", err));
    VEIL_CHECK(veil_graph_to_onnx(&g, &onnx, &len, err));
    VEIL_CHECK(veil_model_load_onnx(out, onnx, len, &o, err));
done:
    veil_graph_clear(&g);
    free(onnx);
    return st;
}

static veil_status cts_keys_make(cts_keys *k, veil_error *err)
{
    uint8_t seed[VEIL_SEED_BYTES];
    memset(seed, 0x5e, sizeof seed);
    memset(k, 0, sizeof *k);
    veil_prng *prng = NULL;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_prng_new_seeded(&prng, seed, 21, err));
    for (int i = 0; i < CTS_KINDS; i++) {
        if (i == CTS_TRAINING) {
            const veil_train_request tr = {.task = VEIL_TRAIN_LOGISTIC, .features = 3, .iterations = 1,
                                           .security = VEIL_SECURITY_NONE, .ring_degree = 1024};
            VEIL_CHECK(veil_train_plan(&k->plan[i], &tr, err));
        } else {
            veil_plan_request req = {.packing = i == CTS_LATENCY ? VEIL_PACKING_LATENCY : VEIL_PACKING_THROUGHPUT,
                                     .have_range = 1, .range_lo = 0, .range_hi = 3};
            if (i == CTS_BGV) {
                req.scheme = VEIL_ML_BGV;
                req.input_lo = 0;
                req.input_hi = 3;
            }
            VEIL_CHECK(cts_model(&k->model[i], i == CTS_BGV, err));
            VEIL_CHECK(veil_model_plan(&k->plan[i], k->model[i], &req, err));
        }
        VEIL_CHECK(veil_keyset_generate(&k->ks[i], &k->ek[i], k->plan[i], prng, NULL, NULL, err));
    }
done:
    veil_prng_free(prng);
    return st;
}

static void cts_keys_free(cts_keys *k)
{
    for (int i = 0; i < CTS_KINDS; i++) {
        veil_eval_keys_free(k->ek[i]);
        veil_keyset_free(k->ks[i]);
        veil_plan_free(k->plan[i]);
        veil_model_free(k->model[i]);
    }
}

#endif
