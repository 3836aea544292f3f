/*
 * The ML layer: random models through both packings against the plaintext interpreter, approximated
 * activations, the files of key sets and ciphertext sets, and bad input (models, CSV, foreign keys).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>
#include <cmocka.h>
#include "veil/veil.h"
#include "ml/ml_plan.h"

static double uniform(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (double)(*s >> 8) / (double)(1u << 24) * 2.0 - 1.0;
}

/* x [batch, n] -> Gemm(n -> h) -> Mul(x, x) -> Gemm(h -> m) [-> Softmax]: a CryptoNets-style MLP. */
static veil_model *random_mlp(unsigned seed, size_t n, size_t h, size_t m, int softmax, const char *act)
{
    veil_error err = {0};
    veil_graph g = {0};
    unsigned s = seed;
    double *w1 = calloc(h * n, sizeof *w1), *b1 = calloc(h, sizeof *b1), *w2 = calloc(m * h, sizeof *w2),
           *b2 = calloc(m, sizeof *b2);
    for (size_t i = 0; i < h * n; i++) w1[i] = uniform(&s) / sqrt((double)n);
    for (size_t i = 0; i < h; i++) b1[i] = 0.1 * uniform(&s);
    for (size_t i = 0; i < m * h; i++) w2[i] = uniform(&s) / sqrt((double)h);
    for (size_t i = 0; i < m; i++) b2[i] = 0.1 * uniform(&s);
    int64_t in_dims[2] = {-1, (int64_t)n}, w1d[2] = {(int64_t)h, (int64_t)n}, b1d[1] = {(int64_t)h},
            w2d[2] = {(int64_t)m, (int64_t)h}, b2d[1] = {(int64_t)m};
    const char *g1[3] = {"x", "w1", "b1"}, *sq[2] = {"h1", "h1"}, *a1[1] = {"h1"}, *g2[3] = {"a1", "w2", "b2"},
               *sm[1] = {"logits"};
    assert_int_equal(veil_graph_add_input(&g, "x", in_dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w1", w1, w1d, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "b1", b1, b1d, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w2", w2, w2d, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "b2", b2, b2d, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", g1, 3, "h1", "transB", 1, &err), VEIL_OK);
    if (act) assert_int_equal(veil_graph_add_node(&g, act, a1, 1, "a1", NULL, 0, &err), VEIL_OK);
    else assert_int_equal(veil_graph_add_node(&g, "Mul", sq, 2, "a1", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", g2, 3, "logits", "transB", 1, &err), VEIL_OK);
    if (softmax) assert_int_equal(veil_graph_add_node(&g, "Softmax", sm, 1, "probs", "axis", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, softmax ? "probs" : "logits", &err), VEIL_OK);
    veil_model_options opts = {.have_range = act != NULL, .range_lo = -4, .range_hi = 4};
    veil_model *model = NULL;
    char tag[32];
    snprintf(tag, sizeof tag, "mlp-%u", seed);
    veil_status st = veil_model_from_graph(&model, &g, (const uint8_t *)tag, strlen(tag), NULL, 0, &opts, &err);
    if (st != VEIL_OK) fail_msg("%s", err.detail);
    free(w1);
    free(b1);
    free(w2);
    free(b2);
    return model;
}

static size_t argmax(const double *v, size_t n)
{
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* The mission on a model: keygen, encrypt, (server: load, evaluate), decrypt; against the interpreter. */
static void check_encrypted(veil_model *m, veil_packing packing, size_t rows, unsigned seed, double tol_raw,
                            double tol_final)
{
    veil_error err = {0};
    const size_t n = veil_model_input_width(m), w = veil_model_output_width(m), raw_w = m->program.out_width;
    double *x = calloc(rows * n, sizeof *x), *plain = calloc(rows * w, sizeof *plain);
    double *y = calloc(rows * w, sizeof *y), *raw = calloc(rows * raw_w, sizeof *raw);
    unsigned s = seed;
    for (size_t i = 0; i < rows * n; i++) x[i] = 2 * uniform(&s);
    assert_int_equal(veil_model_run_plain(m, plain, x, rows, &err), VEIL_OK);

    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = packing, .batch = packing == VEIL_PACKING_THROUGHPUT ? 4 : 0};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL, *server_keys = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    veil_buffer kb = {0}, cb = {0};
    assert_int_equal(veil_eval_keys_save(&kb, ek, &err), VEIL_OK);
    assert_int_equal(veil_eval_keys_load(&server_keys, kb.data, kb.len, &err), VEIL_OK);
    /* the plan's sizes are exact: the bundle (saved again from its loaded form: the same bytes) and the inputs */
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    assert_int_equal((size_t)info.eval_key_bytes, kb.len);
    veil_buffer again = {0};
    assert_int_equal(veil_eval_keys_save(&again, server_keys, &err), VEIL_OK);
    assert_int_equal(again.len, kb.len);
    assert_memory_equal(again.data, kb.data, kb.len);
    veil_buffer_free(&again);

    veil_ciphertexts *in = NULL, *server_in = NULL, *out = NULL, *mine = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&in, ks, x, rows, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_save(&cb, in, &err), VEIL_OK);
    assert_int_equal(veil_plan_input_bytes(plan, rows), cb.len);
    assert_int_equal(veil_ciphertexts_load(&server_in, NULL, server_keys, cb.data, cb.len, &err), VEIL_OK);
    veil_buffer_free(&cb);
    veil_status st = veil_model_evaluate(&out, m, server_keys, server_in, NULL, NULL, &err);
    if (st != VEIL_OK) fail_msg("evaluate: %s", err.detail);
    assert_int_equal(veil_ciphertexts_save(&cb, out, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_load(&mine, ks, NULL, cb.data, cb.len, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_decrypt(y, raw, ks, mine, &err), VEIL_OK);

    double worst_raw = 0, worst = 0;
    for (size_t r = 0; r < rows; r++) {
        double ref[64];
        assert_int_equal(veil_program_run_plain(&m->program, x + r * n, ref, &err), VEIL_OK);
        for (size_t i = 0; i < raw_w; i++) worst_raw = fmax(worst_raw, fabs(raw[r * raw_w + i] - ref[i]));
        for (size_t i = 0; i < w; i++) worst = fmax(worst, fabs(y[r * w + i] - plain[r * w + i]));
        if (w > 1) assert_int_equal(argmax(y + r * w, w), argmax(plain + r * w, w));
    }
    printf("  %s, %zu rows: before the final operation %.3g, after %.3g\n",
           packing == VEIL_PACKING_LATENCY ? "latency" : "throughput", rows, worst_raw, worst);
    assert_true(worst_raw <= tol_raw);
    assert_true(worst <= tol_final);

    veil_buffer_free(&kb);
    veil_buffer_free(&cb);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(server_in);
    veil_ciphertexts_free(out);
    veil_ciphertexts_free(mine);
    veil_eval_keys_free(ek);
    veil_eval_keys_free(server_keys);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    free(x);
    free(plain);
    free(y);
    free(raw);
}

static void test_random_mlps(void **state)
{
    (void)state;
    const size_t shapes[3][3] = {{5, 8, 3}, {12, 16, 4}, {9, 6, 2}};
    for (unsigned seed = 1; seed <= 3; seed++) {
        const size_t *d = shapes[seed - 1];
        veil_model *m = random_mlp(seed, d[0], d[1], d[2], seed != 2, NULL);
        /* the lowering agrees with the interpreter exactly (before the final operation) */
        assert_int_equal(m->program.n_stages, 3);
        assert_int_equal(veil_program_depth(&m->program), 3);
        check_encrypted(m, VEIL_PACKING_THROUGHPUT, 11, seed, 1e-4, 1e-3); /* 11 rows: 3 batches of 4 */
        check_encrypted(m, VEIL_PACKING_LATENCY, 3, seed + 10, 1e-4, 1e-3);
        veil_model_free(m);
    }
}

/*
 * An encrypted model's file rebuilt with a valid digest but one field of its structure or one object changed:
 * word `word` of the metadata after the 128 bytes of ML metadata set to `value` (a negative word: the metadata
 * cut or lengthened by 8 bytes; word -3: the first weight replaced by the parameter set; -4: nothing changed).
 * Returns the status of loading it.
 */
static veil_status load_altered(const veil_eval_keys *k, const veil_buffer *mb, long word, uint64_t value)
{
    veil_error err = {0};
    veil_set_contents c;
    assert_int_equal(veil_set_open(&c, mb->data, mb->len, &err), VEIL_OK);
    veil_params *params = NULL;
    assert_int_equal(veil_params_load(&params, c.items[0].data, c.items[0].len, &err), VEIL_OK);
    uint8_t *meta = calloc(1, c.meta_len + 8);
    memcpy(meta, c.meta, c.meta_len);
    size_t meta_len = c.meta_len;
    if (word >= 0) veil_ml_put64(meta + VEIL_META_BYTES + 8 * (size_t)word, value);
    if (word == -1) meta_len -= 8;
    if (word == -2) meta_len += 8;
    veil_buffer *items = calloc(c.count, sizeof *items);
    for (size_t i = 0; i < c.count; i++) {
        items[i].data = (uint8_t *)c.items[i].data;
        items[i].len = c.items[i].len;
    }
    if (word == -3) items[1] = items[0];
    veil_buffer altered = {0};
    assert_int_equal(veil_set_save(&altered, params, meta, meta_len, items, c.count, &err), VEIL_OK);
    veil_model *m = NULL;
    const veil_status st = veil_model_load_encrypted(&m, k, altered.data, altered.len, &err);
    if (st == VEIL_OK) veil_model_free(m);
    else assert_null(m);
    veil_buffer_free(&altered);
    free(items);
    free(meta);
    veil_params_free(params);
    veil_set_contents_clear(&c);
    return st;
}

static void check_structure_refused(const veil_eval_keys *k, const veil_buffer *mb)
{
    /* words (the tag is 0): 1 stages, 2 in width, 3 out width, 4 final op; stage 0 from word 25: kind, widths */
    assert_int_equal(load_altered(k, mb, -4, 0), VEIL_OK); /* rebuilt unchanged: loads */
    assert_int_equal(load_altered(k, mb, 1, 0), VEIL_ERR_FORMAT);
    assert_int_equal(load_altered(k, mb, 1, 65), VEIL_ERR_FORMAT);
    assert_int_equal(load_altered(k, mb, 2, 6), VEIL_ERR_FORMAT);
    assert_int_equal(load_altered(k, mb, 4, 9), VEIL_ERR_FORMAT);
    assert_int_equal(load_altered(k, mb, 25, 9), VEIL_ERR_FORMAT);
    assert_int_equal(load_altered(k, mb, 26, 9), VEIL_ERR_FORMAT);
    assert_int_equal(load_altered(k, mb, 27, 0), VEIL_ERR_FORMAT);
    assert_int_equal(load_altered(k, mb, 28, 2), VEIL_ERR_FORMAT); /* an affine stage with a degree */
    assert_int_equal(load_altered(k, mb, 0, 0), VEIL_ERR_FORMAT); /* the tag */
    assert_int_equal(load_altered(k, mb, -1, 0), VEIL_ERR_FORMAT);
    assert_int_equal(load_altered(k, mb, -2, 0), VEIL_ERR_FORMAT);
    assert_int_equal(load_altered(k, mb, -3, 0), VEIL_ERR_FORMAT);
}

/*
 * Encrypted models (docs/marketplace.md): the weights encrypted under the data owner's public key, loaded by the
 * server with its copy of the eval keys, evaluated ciphertext by ciphertext; against the plaintext program and
 * the same model in the clear on the same ciphertexts. Refused: keys of another model, the model loaded with
 * other keys, calls that need the weights, damaged and truncated files.
 */
static void check_encrypted_weights(veil_model *m, veil_model *other, unsigned seed, veil_packing packing)
{
    veil_error err = {0};
    const int latency = packing == VEIL_PACKING_LATENCY;
    const size_t rows = latency ? 3 : 11, n = veil_model_input_width(m), raw_w = m->program.out_width;
    double *x = calloc(rows * n, sizeof *x), *raw = calloc(rows * raw_w, sizeof *raw);
    double *clear = calloc(rows * raw_w, sizeof *clear), *y = calloc(rows * raw_w, sizeof *y);
    unsigned s = seed;
    for (size_t i = 0; i < rows * n; i++) x[i] = 2 * uniform(&s);
    veil_plan *plan = NULL, *other_plan = NULL;
    veil_plan_request req = {.packing = packing, .batch = latency ? 0 : 4};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    assert_int_equal(veil_model_plan(&other_plan, other, &req, &err), VEIL_OK);
    veil_keyset *ks = NULL, *ks2 = NULL, *oks = NULL;
    veil_eval_keys *ek = NULL, *ek2 = NULL, *oek = NULL, *server_keys = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_keyset_generate(&ks2, &ek2, plan, NULL, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_keyset_generate(&oks, &oek, other_plan, NULL, NULL, NULL, &err), VEIL_OK);
    veil_buffer kb = {0}, mb = {0}, cb = {0};
    assert_int_equal(veil_eval_keys_save(&kb, ek, &err), VEIL_OK);
    assert_int_equal(veil_eval_keys_load(&server_keys, kb.data, kb.len, &err), VEIL_OK);
    /* the model owner: with the data owner's eval keys only */
    assert_int_equal(veil_model_encrypt(&mb, m, server_keys, NULL, &err), VEIL_OK);
    veil_buffer refused = {0};
    assert_int_equal(veil_model_encrypt(&refused, m, oek, NULL, &err), VEIL_ERR_MISMATCH);
    veil_model *em = NULL, *bad = NULL;
    assert_int_equal(veil_model_load_encrypted(&bad, ek2, mb.data, mb.len, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(veil_model_load_encrypted(&bad, oek, mb.data, mb.len, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(veil_model_load_encrypted(&bad, server_keys, mb.data, mb.len - 100, &err), VEIL_ERR_FORMAT);
    assert_int_equal(veil_model_load_encrypted(&bad, server_keys, kb.data, kb.len, &err), VEIL_ERR_FORMAT);
    assert_null(bad);
    assert_int_equal(veil_model_load_encrypted(&em, server_keys, mb.data, mb.len, &err), VEIL_OK);
    check_structure_refused(server_keys, &mb);
    if (latency) { /* the last word is the last layer's mask of diagonals: none present, or one more */
        veil_set_contents c;
        assert_int_equal(veil_set_open(&c, mb.data, mb.len, &err), VEIL_OK);
        const long last = (long)((c.meta_len - VEIL_META_BYTES) / 8) - 1;
        const uint64_t mask = veil_ml_get64(c.meta + c.meta_len - 8);
        veil_set_contents_clear(&c);
        assert_int_equal(load_altered(server_keys, &mb, last, 0), VEIL_ERR_FORMAT);
        assert_int_equal(load_altered(server_keys, &mb, last, mask ^ ((mask + 1) & ~mask)), VEIL_ERR_FORMAT);
        assert_int_equal(load_altered(server_keys, &mb, last - 1, 3), VEIL_ERR_FORMAT); /* the diagonals' count */
    }
    assert_true(veil_model_is_encrypted(em) && !veil_model_is_encrypted(m));
    veil_plan *no = NULL;
    assert_int_equal(veil_model_plan(&no, em, &req, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_model_run_program(em, y, x, 1, &err), VEIL_ERR_ARGUMENT);
    veil_evaluator *wrong = NULL;
    assert_int_equal(veil_evaluator_new(&wrong, em, ek2, 1, &err), VEIL_ERR_MISMATCH);

    veil_ciphertexts *in = NULL, *server_in = NULL, *out = NULL, *out_clear = NULL, *mine = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&in, ks, x, rows, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_save(&cb, in, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_load(&server_in, NULL, server_keys, cb.data, cb.len, &err), VEIL_OK);
    veil_buffer_free(&cb);
    veil_status st = veil_model_evaluate(&out, em, server_keys, server_in, NULL, NULL, &err);
    if (st != VEIL_OK) fail_msg("evaluate the encrypted model: %s", err.detail);
    assert_int_equal(veil_model_evaluate(&out_clear, m, server_keys, server_in, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_save(&cb, out, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_load(&mine, ks, NULL, cb.data, cb.len, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_decrypt(NULL, y, ks, mine, &err), VEIL_OK);
    veil_ciphertexts_free(mine);
    veil_buffer_free(&cb);
    assert_int_equal(veil_ciphertexts_save(&cb, out_clear, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_load(&mine, ks, NULL, cb.data, cb.len, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_decrypt(NULL, clear, ks, mine, &err), VEIL_OK);
    double worst = 0, worst_clear = 0;
    for (size_t r = 0; r < rows; r++) {
        double ref[64];
        assert_int_equal(veil_program_run_plain(&m->program, x + r * n, ref, &err), VEIL_OK);
        for (size_t i = 0; i < raw_w; i++) {
            worst = fmax(worst, fabs(y[r * raw_w + i] - ref[i]));
            worst_clear = fmax(worst_clear, fabs(y[r * raw_w + i] - clear[r * raw_w + i]));
        }
        if (raw_w > 1) assert_int_equal(argmax(y + r * raw_w, raw_w), argmax(ref, raw_w));
    }
    printf("  encrypted weights (%s), %zu stages, %zu rows: %.3g from the program, %.3g from the model in the "
           "clear; %zu bytes\n", latency ? "latency" : "throughput", m->program.n_stages, rows, worst, worst_clear,
           mb.len);
    assert_true(worst <= 1e-3);
    assert_true(worst_clear <= 1e-3);
    veil_buffer_free(&kb);
    veil_buffer_free(&mb);
    veil_buffer_free(&cb);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(server_in);
    veil_ciphertexts_free(out);
    veil_ciphertexts_free(out_clear);
    veil_ciphertexts_free(mine);
    veil_model_free(em); /* before or after the keys: the model holds their context */
    veil_eval_keys_free(ek);
    veil_eval_keys_free(ek2);
    veil_eval_keys_free(oek);
    veil_eval_keys_free(server_keys);
    veil_keyset_free(ks);
    veil_keyset_free(ks2);
    veil_keyset_free(oks);
    veil_plan_free(plan);
    veil_plan_free(other_plan);
    free(x);
    free(raw);
    free(clear);
    free(y);
}

/*
 * A CryptoNets-shaped network, small: a 10 x 10 image, Conv 3x3 with 3 channels (192 outputs), square, dense
 * 192 -> 4. In the latency packing (256 slots) the convolution spreads its 256 diagonals over 16 lanes (16 each,
 * baby step 4) and the dense layer uses the hybrid method: every path of the encrypted transform.
 */
static veil_model *random_cnn_of(unsigned seed, int64_t side, int64_t channels, int64_t classes)
{
    veil_error err = {0};
    veil_graph g = {0};
    unsigned s = seed;
    const int64_t flat = channels * (side - 2) * (side - 2);
    double *w1 = calloc((size_t)(9 * channels), sizeof *w1), *b1 = calloc((size_t)channels, sizeof *b1);
    double *w2 = calloc((size_t)(classes * flat), sizeof *w2), *b2 = calloc((size_t)classes, sizeof *b2);
    assert_true(w1 && b1 && w2 && b2);
    for (int64_t i = 0; i < 9 * channels; i++) w1[i] = uniform(&s) / 3;
    for (int64_t i = 0; i < channels; i++) b1[i] = 0.1 * uniform(&s);
    for (int64_t i = 0; i < classes * flat; i++) w2[i] = uniform(&s) / sqrt((double)flat);
    for (int64_t i = 0; i < classes; i++) b2[i] = 0.1 * uniform(&s);
    int64_t in_dims[4] = {-1, 1, side, side}, w1d[4] = {channels, 1, 3, 3}, b1d[1] = {channels};
    int64_t w2d[2] = {classes, flat}, b2d[1] = {classes};
    const char *conv[3] = {"x", "w1", "b1"}, *sq[2] = {"c", "c"}, *fl[1] = {"a"}, *gemm[3] = {"f", "w2", "b2"};
    assert_int_equal(veil_graph_add_input(&g, "x", in_dims, 4, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w1", w1, w1d, 4, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "b1", b1, b1d, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w2", w2, w2d, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "b2", b2, b2d, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Conv", conv, 3, "c", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Mul", sq, 2, "a", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Flatten", fl, 1, "f", "axis", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", gemm, 3, "logits", "transB", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, "logits", &err), VEIL_OK);
    veil_model *model = NULL;
    char tag[32];
    snprintf(tag, sizeof tag, "cnn-%u", seed);
    if (veil_model_from_graph(&model, &g, (const uint8_t *)tag, strlen(tag), NULL, 0, NULL, &err) != VEIL_OK)
        fail_msg("%s", err.detail);
    free(w1);
    free(b1);
    free(w2);
    free(b2);
    return model;
}

static veil_model *random_cnn(unsigned seed) { return random_cnn_of(seed, 10, 3, 4); }

/* A CNN whose convolution folded into a dense matrix would need a file beyond the limit in the throughput
 * packing (a 16 x 16 image, Conv 3x3 with 8 channels: 256 x 1,568 entries, one ciphertext each): refused with the
 * size named, before any encryption; the latency packing is the way. */
static void check_large_cnn_refused(void)
{
    veil_error err = {0};
    veil_model *big = random_cnn_of(26, 16, 8, 10);
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = VEIL_PACKING_THROUGHPUT, .batch = 4};
    assert_int_equal(veil_model_plan(&plan, big, &req, &err), VEIL_OK);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    veil_buffer mb = {0};
    assert_int_equal(veil_model_encrypt(&mb, big, ek, NULL, &err), VEIL_ERR_UNSUPPORTED);
    if (!strstr(err.detail, "GiB in memory in the throughput packing")) fail_msg("another refusal: %s", err.detail);
    assert_null(mb.data);
    printf("  refused: %s\n", err.detail);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    veil_model_free(big);
}

static void test_encrypted_weights(void **state)
{
    (void)state;
    veil_model *square = random_mlp(21, 5, 4, 3, 1, NULL), *tanh_mlp = random_mlp(22, 4, 3, 2, 0, "Tanh");
    check_encrypted_weights(square, tanh_mlp, 31, VEIL_PACKING_THROUGHPUT);
    check_encrypted_weights(tanh_mlp, square, 32, VEIL_PACKING_THROUGHPUT);
    check_encrypted_weights(square, tanh_mlp, 33, VEIL_PACKING_LATENCY);
    /* the latency packing's lanes (the first layer: 32 diagonals over 32 lanes) and giant steps (the second) */
    veil_model *wide = random_mlp(23, 20, 30, 4, 1, NULL);
    check_encrypted_weights(wide, square, 35, VEIL_PACKING_LATENCY);
    veil_model_free(wide);
    veil_model *cnn = random_cnn(24); /* a convolution: the CNN's first layer, lanes and giant steps */
    assert_int_equal(cnn->program.n_stages, 3);
    check_encrypted_weights(cnn, square, 36, VEIL_PACKING_LATENCY);
    veil_model_free(cnn);
    /* the throughput packing: a 4 x 4 image, Conv 3x3 with 2 channels (8 outputs), square, dense 8 -> 3; each
     * entry of the convolution's matrix (16 x 8, zeros included) and of the dense layer one ciphertext */
    veil_model *small_cnn = random_cnn_of(25, 4, 2, 3);
    assert_int_equal(small_cnn->program.n_stages, 3);
    check_encrypted_weights(small_cnn, square, 37, VEIL_PACKING_THROUGHPUT);
    veil_model_free(small_cnn);
    check_large_cnn_refused();
    veil_model_free(square);
    veil_model_free(tanh_mlp);
}

static void test_approximated_activation(void **state)
{
    (void)state;
    veil_model *m = random_mlp(7, 6, 8, 3, 0, "Tanh");
    assert_int_equal(m->program.stages[1].kind, VEIL_STAGE_CHEBYSHEV);
    printf("  tanh over [-4, 4], degree 15: approximation error %.3g\n", m->program.stages[1].approx_error);
    assert_true(m->program.stages[1].approx_error < 5e-3);
    assert_non_null(strstr(veil_model_report(m), "Tanh"));
    /* encrypted vs the polynomial program within 1e-4; vs tanh itself within the approximation error */
    check_encrypted(m, VEIL_PACKING_THROUGHPUT, 5, 3, 1e-4, 1e-4 + 2 * m->program.stages[1].approx_error);
    double x[6] = {9, 9, 9, 9, 9, 9}, excess = 0;
    veil_error err = {0};
    assert_int_equal(veil_model_range_excess(m, x, 1, &excess, &err), VEIL_OK);
    assert_true(excess > 0); /* inputs far outside [-4, 4] are reported */
    veil_model_free(m);
}

static void test_keys_and_sets_are_checked(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_model *m1 = random_mlp(1, 5, 8, 3, 1, NULL), *m2 = random_mlp(2, 5, 8, 3, 1, NULL);
    veil_plan *p1 = NULL, *p2 = NULL;
    veil_plan_request req = {.batch = 8};
    assert_int_equal(veil_model_plan(&p1, m1, &req, &err), VEIL_OK);
    assert_int_equal(veil_model_plan(&p2, m2, &req, &err), VEIL_OK);
    veil_keyset *k1 = NULL, *k2 = NULL;
    veil_eval_keys *e1 = NULL, *e2 = NULL;
    assert_int_equal(veil_keyset_generate(&k1, &e1, p1, NULL, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_keyset_generate(&k2, &e2, p2, NULL, NULL, NULL, &err), VEIL_OK);
    double x[10] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0};
    veil_ciphertexts *c1 = NULL, *loaded = NULL, *out = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&c1, k1, x, 2, NULL, &err), VEIL_OK);
    veil_buffer b = {0};
    assert_int_equal(veil_ciphertexts_save(&b, c1, &err), VEIL_OK);

    /* encrypted inputs are not outputs: decrypt_outputs refuses them (their width is not the model's output's) */
    double out_buf[16];
    assert_int_equal(veil_ciphertexts_decrypt(out_buf, NULL, k1, c1, &err), VEIL_ERR_ARGUMENT);
    /* ciphertexts from other keys: refused on loading */
    assert_int_equal(veil_ciphertexts_load(&loaded, NULL, e2, b.data, b.len, &err), VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "other keys"));
    /* keys made for another model */
    assert_int_equal(veil_model_evaluate(&out, m2, e1, c1, NULL, NULL, &err), VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "another model"));
    /* a key set (it holds the secret key) is never accepted as evaluation keys */
    veil_buffer kb = {0};
    assert_int_equal(veil_keyset_save(&kb, k1, &err), VEIL_OK);
    veil_eval_keys *bad = NULL;
    assert_int_equal(veil_eval_keys_load(&bad, kb.data, kb.len, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "secret key"));
    veil_object_info info;
    assert_int_equal(veil_object_peek(&info, kb.data, kb.len, &err), VEIL_OK);
    assert_true(info.flags & VEIL_FLAG_SECRET);
    veil_buffer_free(&kb);

    /* every single-byte corruption of a set (the first 1200 bytes, then anywhere) is refused by its integrity
     * digest: never a crash, never a set that decrypts to garbage */
    unsigned s = 99;
    for (int i = 0; i < 300; i++) {
        size_t pos = i < 200 ? (size_t)i * 7 % 1200 : (size_t)((uniform(&s) * 0.5 + 0.5) * (double)(b.len - 1));
        uint8_t keep = b.data[pos];
        b.data[pos] ^= (uint8_t)(1u << (i % 8));
        veil_ciphertexts *c = NULL;
        assert_int_equal(veil_ciphertexts_load(&c, k1, NULL, b.data, b.len, &err), VEIL_ERR_FORMAT);
        assert_null(c);
        b.data[pos] = keep;
    }
    /* truncations */
    for (size_t cut = 0; cut < b.len; cut += b.len / 37 + 1) {
        veil_ciphertexts *c = NULL;
        assert_int_not_equal(veil_ciphertexts_load(&c, k1, NULL, b.data, cut, &err), VEIL_OK);
    }
    veil_buffer_free(&b);
    veil_ciphertexts_free(c1);
    veil_keyset_free(k1);
    veil_keyset_free(k2);
    veil_eval_keys_free(e1);
    veil_eval_keys_free(e2);
    veil_plan_free(p1);
    veil_plan_free(p2);
    veil_model_free(m1);
    veil_model_free(m2);
}

/*
 * Sets split by batches and joined again (veil eval --mpi): the parts' outputs, joined in order, are the whole
 * set's output byte for byte, as are the outputs of evaluators of 2, 3 and 4 threads (batches side by side),
 * serialized outputs joined (veil_ciphertexts_join_serialized) and batches loaded in place
 * (veil_ciphertexts_load_batches; a damaged ciphertext refused by its digest, a damaged set digest by
 * veil_ciphertexts_check_serialized); batches taken twice, a join after a partial batch, out-of-range batches
 * and a latency-packed set are refused.
 */
static void test_sets_by_batches(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_model *m = random_mlp(3, 5, 8, 3, 1, NULL);
    veil_plan *plan = NULL, *lplan = NULL;
    veil_plan_request req = {.batch = 4}, lreq = {.packing = VEIL_PACKING_LATENCY};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    double x[50];
    unsigned s = 5;
    for (size_t i = 0; i < 50; i++) x[i] = uniform(&s);
    veil_ciphertexts *in = NULL, *whole = NULL, *a = NULL, *b = NULL, *c = NULL, *ya = NULL, *yb = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&in, ks, x, 10, NULL, &err), VEIL_OK); /* batches of 4, 4, 2 rows */
    assert_int_equal(veil_ciphertexts_batches_of(in), 3);
    assert_int_equal(veil_model_evaluate(&whole, m, ek, in, NULL, NULL, &err), VEIL_OK);
    veil_buffer want = {0}, got = {0};
    assert_int_equal(veil_ciphertexts_save(&want, whole, &err), VEIL_OK);

    /* several threads: with 2, two batches side by side (one thread each) and the third with both threads; with 3,
     * the three side by side; with 4, one after the other; every time the single thread's bytes */
    for (size_t threads = 2; threads <= 4; threads++) {
        veil_evaluator *ev = NULL;
        veil_ciphertexts *y = NULL;
        veil_buffer out = {0};
        assert_int_equal(veil_evaluator_new(&ev, m, ek, threads, &err), VEIL_OK);
        assert_int_equal(veil_evaluator_run(ev, &y, in, NULL, NULL, &err), VEIL_OK);
        assert_int_equal(veil_ciphertexts_save(&out, y, &err), VEIL_OK);
        assert_int_equal(out.len, want.len);
        assert_memory_equal(out.data, want.data, want.len);
        veil_buffer_free(&out);
        veil_ciphertexts_free(y);
        veil_evaluator_free(ev);
    }

    /* the serialized set cut without loading it (veil eval --mpi's rank 0): into 2 and into 4 parts (one empty),
     * each part loaded, evaluated, and the outputs joined in order: the whole set's bytes */
    veil_buffer bytes = {0}, parts[4];
    assert_int_equal(veil_ciphertexts_save(&bytes, in, &err), VEIL_OK);
    for (size_t n = 2; n <= 4; n += 2) {
        assert_int_equal(veil_ciphertexts_split_serialized(parts, n, ek, bytes.data, bytes.len, &err), VEIL_OK);
        veil_ciphertexts *joined = NULL;
        size_t empty = 0, rows = 0;
        for (size_t p = 0; p < n; p++) {
            veil_ciphertexts *part = NULL, *y = NULL;
            if (!parts[p].len) {
                empty++;
                continue;
            }
            assert_int_equal(veil_ciphertexts_load(&part, NULL, ek, parts[p].data, parts[p].len, &err), VEIL_OK);
            rows += veil_ciphertexts_rows(part);
            assert_int_equal(veil_model_evaluate(&y, m, ek, part, NULL, NULL, &err), VEIL_OK);
            veil_ciphertexts_free(part);
            if (!joined) joined = y;
            else assert_int_equal(veil_ciphertexts_append(joined, y, &err), VEIL_OK);
            veil_buffer_free(&parts[p]);
        }
        assert_int_equal(empty, n == 4 ? 1 : 0);
        assert_int_equal(rows, 10);
        veil_buffer out = {0};
        assert_int_equal(veil_ciphertexts_save(&out, joined, &err), VEIL_OK);
        assert_int_equal(out.len, want.len);
        assert_memory_equal(out.data, want.data, want.len);
        veil_buffer_free(&out);
        veil_ciphertexts_free(joined);
    }
    /* in place, by batches (3 of them: 4 + 4 + 2 rows): batches 0 and 1 .. 2 evaluate to the same bytes */
    size_t nb = 0;
    assert_int_equal(veil_ciphertexts_check_serialized(&nb, ek, bytes.data, bytes.len, 1, &err), VEIL_OK);
    assert_int_equal(nb, 3);
    {
        veil_ciphertexts *p0 = NULL, *p1 = NULL, *y0 = NULL, *y1 = NULL, *none = NULL;
        assert_int_equal(veil_ciphertexts_load_batches(&p0, ek, bytes.data, bytes.len, 0, 1, &err), VEIL_OK);
        assert_int_equal(veil_ciphertexts_load_batches(&p1, ek, bytes.data, bytes.len, 1, 2, &err), VEIL_OK);
        assert_int_equal(veil_ciphertexts_rows(p0), 4);
        assert_int_equal(veil_ciphertexts_rows(p1), 6);
        assert_int_equal(veil_ciphertexts_load_batches(&none, ek, bytes.data, bytes.len, 2, 2, &err), VEIL_ERR_ARGUMENT);
        assert_null(none);
        assert_int_equal(veil_model_evaluate(&y0, m, ek, p0, NULL, NULL, &err), VEIL_OK);
        assert_int_equal(veil_model_evaluate(&y1, m, ek, p1, NULL, NULL, &err), VEIL_OK);
        /* the serialized outputs joined without loading them: the same bytes; a partial batch first: refused */
        veil_buffer ys[2] = {{0}}, joined = {0};
        assert_int_equal(veil_ciphertexts_save(&ys[0], y0, &err), VEIL_OK);
        assert_int_equal(veil_ciphertexts_save(&ys[1], y1, &err), VEIL_OK);
        assert_int_equal(veil_ciphertexts_join_serialized(&joined, ek, ys, 2, &err), VEIL_OK);
        assert_int_equal(joined.len, want.len);
        assert_memory_equal(joined.data, want.data, want.len);
        veil_buffer_free(&joined);
        const veil_buffer swapped[2] = {ys[1], ys[0]};
        assert_int_equal(veil_ciphertexts_join_serialized(&joined, ek, swapped, 2, &err), VEIL_ERR_ARGUMENT);
        assert_non_null(strstr(err.detail, "partial"));
        assert_null(joined.data);
        const veil_buffer mixed[2] = {ys[0], bytes}; /* outputs, then inputs: another kind of set */
        assert_int_equal(veil_ciphertexts_join_serialized(&joined, ek, mixed, 2, &err), VEIL_ERR_MISMATCH);
        ys[1].data[ys[1].len / 2] ^= 1; /* a damaged part: its digest refuses it */
        assert_int_not_equal(veil_ciphertexts_join_serialized(&joined, ek, ys, 2, &err), VEIL_OK);
        assert_null(joined.data);
        veil_buffer_free(&ys[0]);
        veil_buffer_free(&ys[1]);
        assert_int_equal(veil_ciphertexts_append(y0, y1, &err), VEIL_OK);
        veil_buffer out = {0};
        assert_int_equal(veil_ciphertexts_save(&out, y0, &err), VEIL_OK);
        assert_int_equal(out.len, want.len);
        assert_memory_equal(out.data, want.data, want.len);
        veil_buffer_free(&out);
        veil_ciphertexts_free(y0);
        veil_ciphertexts_free(p0);
        veil_ciphertexts_free(p1);
        /* a ciphertext's byte flipped: its own digest refuses it when its batch is loaded */
        const size_t at = bytes.len - 100; /* inside the last ciphertext, before the set's digest */
        bytes.data[at] ^= 1;
        assert_int_not_equal(veil_ciphertexts_load_batches(&none, ek, bytes.data, bytes.len, 2, 1, &err), VEIL_OK);
        assert_null(none);
        assert_int_not_equal(veil_ciphertexts_check_serialized(&nb, ek, bytes.data, bytes.len, 1, &err), VEIL_OK);
        bytes.data[at] ^= 1;
        /* the set's digest alone damaged: check_serialized refuses it (load_batches leaves it to it) */
        bytes.data[bytes.len - 1] ^= 1;
        assert_int_not_equal(veil_ciphertexts_check_serialized(&nb, ek, bytes.data, bytes.len, 1, &err), VEIL_OK);
        assert_int_equal(veil_ciphertexts_check_serialized(&nb, ek, bytes.data, bytes.len, 0, &err), VEIL_OK);
        assert_int_equal(nb, 3);
        assert_int_equal(veil_ciphertexts_load_batches(&p0, ek, bytes.data, bytes.len, 0, 1, &err), VEIL_OK);
        veil_ciphertexts_free(p0);
        bytes.data[bytes.len - 1] ^= 1;
    }
    /* a flipped byte: the set's digest refuses it, and nothing is returned */
    bytes.data[bytes.len / 2] ^= 1;
    assert_int_not_equal(veil_ciphertexts_split_serialized(parts, 2, ek, bytes.data, bytes.len, &err), VEIL_OK);
    assert_int_equal(parts[0].len + parts[1].len, 0);
    veil_buffer_free(&bytes);

    assert_int_equal(veil_ciphertexts_take_batches(&a, in, 0, 1, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_take_batches(&b, in, 1, 2, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_rows(a), 4);
    assert_int_equal(veil_ciphertexts_rows(b), 6);
    assert_int_equal(veil_ciphertexts_take_batches(&c, in, 0, 1, &err), VEIL_ERR_ARGUMENT); /* taken already */
    assert_non_null(strstr(err.detail, "taken already"));
    assert_int_equal(veil_ciphertexts_take_batches(&c, in, 2, 2, &err), VEIL_ERR_ARGUMENT);
    assert_null(c);
    assert_int_equal(veil_model_evaluate(&ya, m, ek, a, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_model_evaluate(&yb, m, ek, b, NULL, NULL, &err), VEIL_OK);
    /* the partial batch first: refused (and the part freed) */
    veil_ciphertexts *tail = NULL;
    assert_int_equal(veil_ciphertexts_take_batches(&tail, b, 1, 1, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_rows(tail), 2);
    veil_ciphertexts *head = NULL;
    assert_int_equal(veil_ciphertexts_take_batches(&head, b, 0, 1, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_append(tail, head, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "partial"));
    /* inputs after outputs: another kind */
    assert_int_equal(veil_ciphertexts_append(ya, a, &err), VEIL_ERR_MISMATCH);
    a = NULL;
    assert_int_equal(veil_ciphertexts_append(ya, yb, &err), VEIL_OK);
    yb = NULL;
    assert_int_equal(veil_ciphertexts_save(&got, ya, &err), VEIL_OK);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);

    /* the latency packing is not split */
    veil_keyset *lks = NULL;
    veil_eval_keys *lek = NULL;
    veil_ciphertexts *lin = NULL;
    assert_int_equal(veil_model_plan(&lplan, m, &lreq, &err), VEIL_OK);
    assert_int_equal(veil_keyset_generate(&lks, &lek, lplan, NULL, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_encrypt(&lin, lks, x, 2, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_take_batches(&c, lin, 0, 1, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "throughput"));
    veil_buffer lbytes = {0}, lparts[2];
    assert_int_equal(veil_ciphertexts_save(&lbytes, lin, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_split_serialized(lparts, 2, lek, lbytes.data, lbytes.len, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "throughput"));
    size_t lnb = 0;
    assert_int_equal(veil_ciphertexts_check_serialized(&lnb, lek, lbytes.data, lbytes.len, 0, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_ciphertexts_load_batches(&c, lek, lbytes.data, lbytes.len, 0, 1, &err), VEIL_ERR_ARGUMENT);
    assert_null(c);
    /* the keys of another plan: refused as veil_ciphertexts_load refuses them */
    assert_int_equal(veil_ciphertexts_split_serialized(lparts, 2, ek, lbytes.data, lbytes.len, &err), VEIL_ERR_MISMATCH);
    veil_buffer_free(&lbytes);

    veil_buffer_free(&want);
    veil_buffer_free(&got);
    veil_ciphertexts_free(lin);
    veil_ciphertexts_free(tail);
    veil_ciphertexts_free(b);
    veil_ciphertexts_free(ya);
    veil_ciphertexts_free(whole);
    veil_ciphertexts_free(in);
    veil_eval_keys_free(lek);
    veil_keyset_free(lks);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(lplan);
    veil_plan_free(plan);
    veil_model_free(m);
}

/*
 * A crafted set whose count of ciphertexts wraps: 2^33 batches (rows = batch * 2^33, within the 2^40 allowed) of
 * 2^31 values each are 2^64 ciphertexts, 0 in size_t arithmetic, so that the set's parameters alone would pass for
 * them (and a split would index past its objects); eval keys of that width (altered in memory: the set must
 * match them). Refused as malformed by veil_ciphertexts_load and veil_ciphertexts_split_serialized.
 */
static void test_wrapping_counts_refused(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_model *m = random_mlp(3, 5, 8, 3, 1, NULL);
    veil_plan *plan = NULL;
    veil_plan_request req = {.batch = 4};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    double x[10] = {0};
    veil_ciphertexts *in = NULL, *loaded = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&in, ks, x, 2, NULL, &err), VEIL_OK);
    veil_buffer bytes = {0}, crafted = {0}, parts[2];
    assert_int_equal(veil_ciphertexts_save(&bytes, in, &err), VEIL_OK);
    veil_set_contents c;
    assert_int_equal(veil_set_open(&c, bytes.data, bytes.len, &err), VEIL_OK);
    veil_params *params = NULL;
    assert_int_equal(veil_params_load(&params, c.items[0].data, c.items[0].len, &err), VEIL_OK);
    uint8_t *meta = malloc(c.meta_len);
    memcpy(meta, c.meta, c.meta_len);
    const uint64_t batch = veil_ml_get64(meta + 88), width = (uint64_t)1 << 31;
    assert_true(batch <= 128);
    veil_ml_put64(meta + 104, batch << 33);               /* rows: 2^33 batches */
    veil_ml_put64(meta + 112, width | (uint64_t)3 << 32); /* the inputs' width, the outputs' */
    veil_ml_put64(meta + 120, (veil_ml_get64(meta + 120) & ~(uint64_t)0xffffffff) | width);
    const veil_buffer params_obj = {.data = (uint8_t *)c.items[0].data, .len = c.items[0].len};
    assert_int_equal(veil_set_save(&crafted, params, meta, c.meta_len, &params_obj, 1, &err), VEIL_OK);
    const uint32_t in_width = ek->meta.in_width;
    ek->meta.in_width = (uint32_t)width;
    assert_int_equal(veil_ciphertexts_load(&loaded, NULL, ek, crafted.data, crafted.len, &err), VEIL_ERR_FORMAT);
    printf("  %s\n", err.detail);
    assert_null(loaded);
    assert_int_equal(veil_ciphertexts_split_serialized(parts, 2, ek, crafted.data, crafted.len, &err),
                     VEIL_ERR_FORMAT);
    printf("  %s\n", err.detail);
    assert_int_equal(parts[0].len + parts[1].len, 0);
    ek->meta.in_width = in_width;
    veil_buffer_free(&crafted);
    veil_buffer_free(&bytes);
    free(meta);
    veil_params_free(params);
    veil_set_contents_clear(&c);
    veil_ciphertexts_free(in);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    veil_model_free(m);
}

/*
 * The latency packing's outputs beyond a 50-bit first prime's room: the plan takes a second prime at the bottom
 * (one more level, the outputs at level 1) instead of a first prime above 50 bits, every prime (special ones too)
 * below 2^50, the scale kept; the results within the tolerance, the argmax the plaintext's.
 */
static void test_latency_two_bottom_primes(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_model *m = random_mlp(5, 8, 16, 3, 0, NULL);
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = VEIL_PACKING_LATENCY, .have_range = 1, .range_lo = -64, .range_hi = 64};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    veil_plan_info in;
    veil_plan_get_info(plan, &in);
    const double bits_needed = log2(in.output_bound) + in.scale_bits + 3;
    assert_true(bits_needed > 50); /* more than a 50-bit first prime holds */
    assert_int_equal(in.scale_bits, 36);
    assert_int_equal(in.q_count, in.depth + 2);
    for (size_t i = 0; i < in.q_count; i++) assert_true(veil_params_q(plan->params, i) < ((uint64_t)1 << 50));
    for (size_t i = 0; i < in.p_count; i++) assert_true(veil_params_p(plan->params, i) < ((uint64_t)1 << 50));
    assert_true(log2((double)veil_params_q(plan->params, 0)) + log2((double)veil_params_q(plan->params, 1)) >=
                bits_needed);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    enum { ROWS = 3, N_IN = 8, N_OUT = 3 };
    double x[ROWS * N_IN], y[ROWS * N_OUT], ref[ROWS * N_OUT];
    unsigned s = 77;
    for (size_t i = 0; i < ROWS * N_IN; i++) x[i] = 64 * uniform(&s);
    assert_int_equal(veil_model_run_plain(m, ref, x, ROWS, &err), VEIL_OK);
    veil_ciphertexts *c = NULL, *out = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&c, ks, x, ROWS, NULL, &err), VEIL_OK);
    veil_status st = veil_model_evaluate(&out, m, ek, c, NULL, NULL, &err);
    if (st != VEIL_OK) fail_msg("evaluate: %s", err.detail);
    assert_int_equal(veil_ciphertexts_decrypt(y, NULL, ks, out, &err), VEIL_OK);
    double worst = 0, largest = 0;
    for (size_t r = 0; r < ROWS; r++) {
        assert_int_equal(argmax(y + r * N_OUT, N_OUT), argmax(ref + r * N_OUT, N_OUT));
        for (size_t k = 0; k < N_OUT; k++) {
            worst = fmax(worst, fabs(y[r * N_OUT + k] - ref[r * N_OUT + k]));
            largest = fmax(largest, fabs(ref[r * N_OUT + k]));
        }
    }
    printf("  two primes at the bottom: N = %zu, %zu + %zu primes, outputs up to %.4g (bound %.4g), error %.3g\n",
           in.n, in.q_count, in.p_count, largest, in.output_bound, worst);
    assert_true(largest > 10);
    assert_true(worst <= 1e-4 * largest);
    veil_ciphertexts_free(c);
    veil_ciphertexts_free(out);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    veil_model_free(m);
}

/* The inputs' range: enforced at encryption, carried by plan files, and the outputs' bound at decryption. */
static void test_bounds(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_model *m = random_mlp(3, 4, 6, 2, 0, NULL);
    veil_plan *plan = NULL, *loaded = NULL;
    veil_plan_request req = {.batch = 8, .have_range = 1, .range_lo = -1, .range_hi = 1};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    veil_plan_info in;
    veil_plan_get_info(plan, &in);
    assert_true(in.input_lo == -1 && in.input_hi == 1 && in.output_bound > 0);
    /* through a plan file (the server's, for clients without the model): the same range and bound */
    veil_buffer pb = {0};
    assert_int_equal(veil_plan_save(&pb, plan, &err), VEIL_OK);
    assert_int_equal(veil_plan_load(&loaded, pb.data, pb.len, &err), VEIL_OK);
    /* a throughput plan names no rotation: one more step (a hostile server's plan) is refused */
    veil_set_contents view;
    assert_int_equal(veil_set_open(&view, pb.data, pb.len, &err), VEIL_OK);
    uint8_t *meta = calloc(view.meta_len + 8, 1);
    memcpy(meta, view.meta, view.meta_len);
    meta[view.meta_len] = 1; /* step 1 */
    veil_buffer forged = {0}, params_obj = {.data = (uint8_t *)view.items[0].data, .len = view.items[0].len};
    assert_int_equal(veil_set_save(&forged, plan->params, meta, view.meta_len + 8, &params_obj, 1, &err), VEIL_OK);
    veil_plan *bad_plan = NULL;
    assert_int_equal(veil_plan_load(&bad_plan, forged.data, forged.len, &err), VEIL_ERR_FORMAT);
    assert_non_null(strstr(err.detail, "more than a throughput plan has"));
    veil_buffer_free(&forged);
    free(meta);
    veil_set_contents_clear(&view);
    veil_buffer_free(&pb);
    veil_plan_info li;
    veil_plan_get_info(loaded, &li); /* the sizes need no model */
    assert_true(li.eval_key_bytes == in.eval_key_bytes && li.ciphertext_bytes == in.ciphertext_bytes);
    assert_int_equal(veil_plan_input_bytes(loaded, 20), veil_plan_input_bytes(plan, 20));
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, loaded, NULL, NULL, NULL, &err), VEIL_OK);
    const double *lo = NULL, *hi = NULL;
    double bound = 0;
    assert_int_equal(veil_keyset_input_range(ks, &lo, &hi, &bound), 4);
    assert_true(lo[3] == -1 && hi[0] == 1 && bound == in.output_bound);
    /* an input outside the range is refused, naming it */
    double x[8] = {0.5, -0.5, 0.25, 1.0, 0.1, 1.5, 0.0, 0.0};
    veil_ciphertexts *c = NULL, *y = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&c, ks, x, 2, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "row 2, column 2 is 1.5"));
    assert_null(c);
    /* inside it, the result; and a result beyond the bound (forged here) is refused at decryption */
    x[5] = 0.75;
    assert_int_equal(veil_ciphertexts_encrypt(&c, ks, x, 2, NULL, &err), VEIL_OK);
    assert_int_equal(veil_model_evaluate(&y, m, ek, c, NULL, NULL, &err), VEIL_OK);
    double out[4], ref[4];
    assert_int_equal(veil_ciphertexts_decrypt(out, NULL, ks, y, &err), VEIL_OK);
    assert_int_equal(veil_model_run_program(m, ref, x, 2, &err), VEIL_OK);
    for (int i = 0; i < 4; i++) assert_true(fabs(out[i] - ref[i]) <= 1e-3 * (1 + fabs(ref[i])) && fabs(ref[i]) <= bound);
    /* decryption options: none or flood off is plain decryption; flooding is refused at a 2^36 scale by the
     * tolerance (the estimated bound); a tight bound given fits; noise past the modulus at level 0 is refused */
    double again[4];
    veil_decrypt_options dec = {0};
    assert_int_equal(veil_ciphertexts_decrypt_ex(again, NULL, ks, y, NULL, &err), VEIL_OK);
    assert_memory_equal(again, out, sizeof out);
    assert_int_equal(veil_ciphertexts_decrypt_ex(again, NULL, ks, y, &dec, &err), VEIL_OK);
    assert_memory_equal(again, out, sizeof out);
    dec.flood = 1;
    assert_int_equal(veil_ciphertexts_decrypt_ex(again, NULL, ks, y, &dec, &err), VEIL_ERR_NOISE);
    assert_non_null(strstr(err.detail, "leaves no room"));
    dec.error_bits = 1; /* a tight bound: its noise fits level 0, and moves the outputs within the tolerance */
    dec.tolerance = 1;
    assert_int_equal(veil_ciphertexts_decrypt_ex(again, NULL, ks, y, &dec, &err), VEIL_OK);
    for (int i = 0; i < 4; i++) assert_true(fabs(again[i] - out[i]) <= 1);
    dec.error_bits = 35; /* noise of 2^55.8: past the modulus at level 0 */
    dec.tolerance = 1e30;
    assert_int_equal(veil_ciphertexts_decrypt_ex(again, NULL, ks, y, &dec, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "does not fit"));
    ks->meta.bound = 1e-9;
    assert_int_equal(veil_ciphertexts_decrypt(out, NULL, ks, y, &err), VEIL_ERR_NOISE);
    assert_non_null(strstr(err.detail, "not the model's result"));
    veil_ciphertexts_free(c);
    veil_ciphertexts_free(y);
    veil_keyset_free(ks);
    veil_eval_keys_free(ek);
    veil_plan_free(loaded);
    /* a range no parameters hold: refused before any key, naming the layer */
    veil_plan *huge = NULL;
    req.range_lo = -1e12;
    req.range_hi = 1e12;
    assert_int_equal(veil_model_plan(&huge, m, &req, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "bits short"));
    assert_null(huge);
    veil_plan_free(plan);
    veil_model_free(m);
}

static void test_bad_models(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_model *m = NULL;
    const uint8_t junk[] = "this is not an onnx model at all";
    assert_int_equal(veil_model_load_onnx(&m, junk, sizeof junk, NULL, &err), VEIL_ERR_FORMAT);
    assert_non_null(strstr(err.detail, "not an ONNX model"));
    assert_int_equal(veil_model_load_onnx(&m, junk, 0, NULL, &err), VEIL_ERR_FORMAT);

    /* an unsupported operator: named with its node */
    veil_graph g = {0};
    int64_t dims[2] = {-1, 4};
    const char *in[1] = {"x"};
    assert_int_equal(veil_graph_add_input(&g, "x", dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Cos", in, 1, "cosine_node", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, "cosine_node", &err), VEIL_OK);
    assert_int_equal(veil_model_from_graph(&m, &g, junk, 4, NULL, 0, NULL, &err), VEIL_ERR_UNSUPPORTED);
    if (!strstr(err.detail, "node 'cosine_node' (Cos)")) fail_msg("%s", err.detail);

    /* a node without a name is named by its index in the graph: node #1 (Cos), read from an ONNX file */
    veil_graph u = {0};
    double wu[16] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
    int64_t wud[2] = {4, 4};
    const char *ug[2] = {"x", "w"}, *uc[1] = {"y"};
    assert_int_equal(veil_graph_add_input(&u, "x", dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&u, "w", wu, wud, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&u, "Gemm", ug, 2, "y", "transB", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&u, "Cos", uc, 1, "z", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&u, "z", &err), VEIL_OK);
    u.nodes[1].name[0] = 0;
    uint8_t *onnx = NULL;
    size_t onnx_len = 0;
    assert_int_equal(veil_graph_to_onnx(&u, &onnx, &onnx_len, &err), VEIL_OK);
    veil_graph_clear(&u);
    assert_int_equal(veil_model_load_onnx(&m, onnx, onnx_len, NULL, &err), VEIL_ERR_UNSUPPORTED);
    if (!strstr(err.detail, "node #1 (Cos)")) fail_msg("'%s' does not name the node by its index", err.detail);
    free(onnx);

    /* a shape mismatch: Gemm of a 4-feature input with a 3-column weight */
    veil_graph h = {0};
    double w[6] = {1, 2, 3, 4, 5, 6};
    int64_t wd[2] = {2, 3};
    const char *gi[2] = {"x", "w"};
    assert_int_equal(veil_graph_add_input(&h, "x", dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&h, "w", w, wd, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&h, "Gemm", gi, 2, "dense", "transB", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&h, "dense", &err), VEIL_OK);
    assert_int_not_equal(veil_model_from_graph(&m, &h, junk, 4, NULL, 0, NULL, &err), VEIL_OK);
    assert_non_null(strstr(err.detail, "dense"));

    /* an activation inside the network without a range */
    veil_graph k = {0};
    const char *t1[1] = {"x"}, *t2[2] = {"t", "w"};
    double w2[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t w2d[2] = {2, 4};
    assert_int_equal(veil_graph_add_input(&k, "x", dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&k, "w", w2, w2d, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&k, "Relu", t1, 1, "t", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&k, "Gemm", t2, 2, "y", "transB", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&k, "y", &err), VEIL_OK);
    assert_int_equal(veil_model_from_graph(&m, &k, junk, 4, NULL, 0, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "--calibrate"));

    /* calibration rows of the wrong width are refused, not read past */
    veil_graph k2 = {0};
    double calib[3] = {1, 2, 3};
    veil_model_options opts = {.calibration = calib, .calibration_rows = 1, .calibration_width = 3};
    assert_int_equal(veil_graph_add_input(&k2, "x", dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&k2, "w", w2, w2d, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&k2, "Relu", t1, 1, "t", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&k2, "Gemm", t2, 2, "y", "transB", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&k2, "y", &err), VEIL_OK);
    assert_int_equal(veil_model_from_graph(&m, &k2, junk, 4, NULL, 0, &opts, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "calibration rows have 3 values"));

    /* two final operations (Softmax then Sigmoid) would be silently merged: refused */
    veil_graph k3 = {0};
    const char *s1[1] = {"x"}, *s2[1] = {"p"};
    assert_int_equal(veil_graph_add_input(&k3, "x", dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&k3, "Softmax", s1, 1, "p", "axis", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&k3, "Sigmoid", s2, 1, "q", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&k3, "q", &err), VEIL_OK);
    assert_int_equal(veil_model_from_graph(&m, &k3, junk, 4, NULL, 0, NULL, &err), VEIL_ERR_UNSUPPORTED);
}

static char *write_temp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/veil-test-%d.csv", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void expect_csv_error(const char *text, size_t width, const char *needle)
{
    veil_error err = {0};
    double *v = NULL;
    size_t rows = 0, w = 0;
    char *path = write_temp(text);
    assert_int_equal(veil_csv_read(path, width, &v, &rows, &w, &err), VEIL_ERR_ARGUMENT);
    if (!strstr(err.detail, needle)) fail_msg("'%s' lacks '%s'", err.detail, needle);
    assert_null(v);
    unlink(path);
}

static void test_csv(void **state)
{
    (void)state;
    veil_error err = {0};
    double *v = NULL;
    size_t rows = 0, w = 0;
    char *path = write_temp("a,b,c\n1,2,3\n4.5,-6e-3, 7\n");
    assert_int_equal(veil_csv_read(path, 3, &v, &rows, &w, &err), VEIL_OK);
    assert_int_equal(rows, 2);
    assert_true(v[3] == 4.5 && v[4] == -6e-3 && v[5] == 7);
    free(v);
    path = write_temp("1,2\n3,4\n");
    assert_int_equal(veil_csv_read(path, 0, &v, &rows, &w, &err), VEIL_OK);
    assert_int_equal(w, 2);
    free(v);
    unlink(path);
    expect_csv_error("1,2,3\n4,5\n", 3, "row 2 (line 2) has 2 columns, expected 3");
    expect_csv_error("1,2,3\n4,x5,6\n", 3, "row 2, column 2");
    expect_csv_error("1,2,3\n4,nan,6\n", 3, "row 2, column 2: nan is not a finite number");
    expect_csv_error("1,inf,3\n", 3, "row 1, column 2");
    expect_csv_error("1,,3\n", 3, "row 1, column 2");
    expect_csv_error("a,b\n", 2, "no data rows");
}

/* A graph written as ONNX by veil_graph_to_onnx and read back lowers to the same program. */
static void test_onnx_roundtrip(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_graph g = {0};
    double w[6] = {0.5, -1, 2, 0.25, 3, -0.5}, b[2] = {0.1, -0.2};
    int64_t dims[2] = {-1, 3}, wd[2] = {2, 3}, bd[1] = {2};
    const char *gi[3] = {"x", "w", "b"}, *sq[2] = {"y", "y"};
    assert_int_equal(veil_graph_add_input(&g, "x", dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w", w, wd, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "b", b, bd, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", gi, 3, "y", "transB", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Mul", sq, 2, "z", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, "z", &err), VEIL_OK);
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_int_equal(veil_graph_to_onnx(&g, &bytes, &len, &err), VEIL_OK);
    veil_graph_clear(&g);
    veil_model *m = NULL;
    assert_int_equal(veil_model_load_onnx(&m, bytes, len, NULL, &err), VEIL_OK);
    assert_int_equal(veil_model_input_width(m), 3);
    assert_int_equal(veil_model_output_width(m), 2);
    double x[3] = {1, 2, 3}, y[2];
    assert_int_equal(veil_model_run_plain(m, y, x, 1, &err), VEIL_OK);
    const double y0 = 0.5 - 2 + 6 + 0.1, y1 = 0.25 + 6 - 1.5 - 0.2;
    assert_true(fabs(y[0] - y0 * y0) < 1e-5 && fabs(y[1] - y1 * y1) < 1e-5);
    /* every truncation of the file is refused, never a crash */
    for (size_t cut = 1; cut < len; cut += 7) {
        veil_model *t = NULL;
        if (veil_model_load_onnx(&t, bytes, cut, NULL, &err) == VEIL_OK) veil_model_free(t);
    }
    free(bytes);
    veil_model_free(m);
}

static size_t varint_len(size_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, size_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A model whose input type nests Sequence in TypeProto 100,000 deep: refused, not a stack overflow. */
static void test_deeply_nested_onnx(void **state)
{
    (void)state;
    enum { DEPTH = 100000 };
    size_t *len = calloc(2 * DEPTH + 1, sizeof *len); /* len[k]: the bytes of the k-th message from inside */
    for (size_t k = 1; k <= 2 * DEPTH; k++) len[k] = 1 + varint_len(len[k - 1]) + len[k - 1];
    const size_t type_len = len[2 * DEPTH], vi_len = 3 + 1 + varint_len(type_len) + type_len;
    const size_t graph_len = 1 + varint_len(vi_len) + vi_len, total = 1 + varint_len(graph_len) + graph_len;
    uint8_t *buf = malloc(total), *p = buf;
    p = put_varint(p, (7 << 3) | 2); /* ModelProto.graph */
    p = put_varint(p, graph_len);
    p = put_varint(p, (11 << 3) | 2); /* GraphProto.input */
    p = put_varint(p, vi_len);
    *p++ = (1 << 3) | 2; /* ValueInfoProto.name = "x" */
    *p++ = 1;
    *p++ = 'x';
    p = put_varint(p, (2 << 3) | 2); /* ValueInfoProto.type */
    p = put_varint(p, type_len);
    for (size_t k = 2 * DEPTH; k >= 1; k--) { /* TypeProto.sequence_type (4), Sequence.elem_type (1), ... */
        p = put_varint(p, ((k % 2 == 0 ? 4u : 1u) << 3) | 2);
        p = put_varint(p, len[k - 1]);
    }
    assert_int_equal((size_t)(p - buf), total);
    veil_error err = {0};
    veil_model *m = NULL;
    assert_int_equal(veil_model_load_onnx(&m, buf, total, NULL, &err), VEIL_ERR_FORMAT);
    assert_non_null(strstr(err.detail, "nested"));
    free(buf);
    free(len);
}

/* The CNN issue's bad input: unsupported pooling and convolution attributes are named; a network deeper
 * than any secure parameter set is refused by the plan, before any key exists. */
static void test_cnn_bad_input(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_model *m = NULL;
    const uint8_t tag[] = "cnn-bad";
    int64_t img[4] = {-1, 1, 4, 4}, wd[4] = {2, 1, 3, 3};
    double w[18];
    for (int i = 0; i < 18; i++) w[i] = 0.1 * (i % 5) - 0.2;
    const char *x1[1] = {"x"}, *cw[2] = {"x", "w"};

    veil_graph g = {0}; /* MaxPool: not an affine operation */
    assert_int_equal(veil_graph_add_input(&g, "x", img, 4, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "MaxPool", x1, 1, "pool_1", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, "pool_1", &err), VEIL_OK);
    assert_int_equal(veil_model_from_graph(&m, &g, tag, 7, NULL, 0, NULL, &err), VEIL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.detail, "MaxPool"));
    assert_non_null(strstr(err.detail, "pool_1"));

    veil_graph h = {0}; /* a Conv whose auto_pad Veil does not know */
    assert_int_equal(veil_graph_add_input(&h, "x", img, 4, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&h, "w", w, wd, 4, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&h, "Conv", cw, 2, "conv_1", "group", 1, &err), VEIL_OK);
    veil_node *conv = &h.nodes[h.n_nodes - 1];
    free(conv->attrs[0].name);
    conv->attrs[0].name = strdup("auto_pad");
    conv->attrs[0].kind = VEIL_ATTR_STRING;
    conv->attrs[0].s = strdup("SOMETIMES");
    assert_int_equal(veil_graph_add_output(&h, "conv_1", &err), VEIL_OK);
    assert_int_equal(veil_model_from_graph(&m, &h, tag, 7, NULL, 0, NULL, &err), VEIL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.detail, "conv_1"));
    assert_non_null(strstr(err.detail, "auto_pad"));

    veil_graph d = {0}; /* Conv, then 120 squares: no 128-bit parameter set holds that depth (even N = 2^17) */
    assert_int_equal(veil_graph_add_input(&d, "x", img, 4, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&d, "w", w, wd, 4, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&d, "Conv", cw, 2, "c0", NULL, 0, &err), VEIL_OK);
    char names[121][8];
    snprintf(names[0], sizeof names[0], "c0");
    for (int i = 1; i <= 120; i++) {
        snprintf(names[i], sizeof names[i], "s%d", i);
        const char *sq[2] = {names[i - 1], names[i - 1]};
        assert_int_equal(veil_graph_add_node(&d, "Mul", sq, 2, names[i], NULL, 0, &err), VEIL_OK);
    }
    assert_int_equal(veil_graph_add_output(&d, names[120], &err), VEIL_OK);
    if (veil_model_from_graph(&m, &d, tag, 7, NULL, 0, NULL, &err) != VEIL_OK) fail_msg("%s", err.detail);
    veil_plan *plan = NULL;
    veil_plan_request req = {0};
    assert_int_not_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    assert_null(plan);
    print_message("    121 levels: %s\n", err.detail);
    assert_non_null(strstr(err.detail, "depth"));
    veil_model_free(m);
}

/*
 * Bundles of an earlier Veil stored the public key compressed, and the key id is a hash of its stored bytes:
 * such keys, loaded and saved again, keep that form, so the bundle keeps its id and its bytes.
 */
static void test_compressed_bundle_kept(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_model *m = random_mlp(4, 3, 4, 2, 0, NULL);
    veil_plan *plan = NULL;
    veil_plan_request req = {.batch = 4, .have_range = 1, .range_lo = -1, .range_hi = 1};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL, *loaded = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    ek->pk_options = VEIL_SAVE_COMPRESS; /* as the earlier writer did */
    veil_buffer old = {0}, again = {0};
    assert_int_equal(veil_eval_keys_save(&old, ek, &err), VEIL_OK);
    assert_int_equal(veil_eval_keys_load(&loaded, old.data, old.len, &err), VEIL_OK);
    assert_int_equal(loaded->pk_options, VEIL_SAVE_COMPRESS);
    assert_int_equal(veil_eval_keys_save(&again, loaded, &err), VEIL_OK);
    assert_int_equal(again.len, old.len);
    assert_memory_equal(again.data, old.data, old.len);
    veil_buffer_free(&old);
    veil_buffer_free(&again);
    veil_eval_keys_free(loaded);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    veil_model_free(m);
}

/*
 * The last layer's lowered scale (veil_ckks_output_shift) with keys through the wire format: outputs up to 16,100
 * outgrow a 50-bit first prime at the 2^36 scale, and the plan lowers the outputs' scale by a few bits. The bundle
 * carries the outputs' bound, so keys loaded from it give the in-memory keys' shift, and the outputs (all beyond
 * q_0 / 2 at the full scale: without the shift they wrap and decrypt ~2^14 off) decrypt to the plaintext model's.
 * A bundle without the bound (as an earlier Veil wrote it) is refused, not evaluated at the full scale.
 */
static void test_output_shift_through_files(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_graph g = {0};
    const double w[8] = {4000, 4000, 4000, 4000, -3000, 2000, 1000, -500}, b[2] = {100, -50};
    int64_t in_dims[2] = {-1, 4}, wd[2] = {2, 4}, bd[1] = {2};
    const char *gemm[3] = {"x", "w", "b"};
    assert_int_equal(veil_graph_add_input(&g, "x", in_dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w", w, wd, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "b", b, bd, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", gemm, 3, "y", "transB", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, "y", &err), VEIL_OK);
    veil_model_options opts = {0};
    veil_model *m = NULL;
    assert_int_equal(veil_model_from_graph(&m, &g, (const uint8_t *)"big", 3, NULL, 0, &opts, &err), VEIL_OK);
    veil_plan *plan = NULL;
    veil_plan_request req = {.batch = 4, .have_range = 1, .range_lo = -1, .range_hi = 1};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL, *loaded = NULL, *old = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    unsigned in_memory = 0, from_file = 0;
    assert_int_equal(veil_ml_ckks_keys_output_shift(&in_memory, &m->program, ek, &err), VEIL_OK);
    assert_int_equal(in_memory, veil_ckks_output_shift(&m->program, plan->packing, plan->params, plan->scale_bits,
                                                       plan->bound));
    assert_true(in_memory > 0);
    veil_buffer kb = {0}, ob = {0}, cb = {0};
    assert_int_equal(veil_eval_keys_save(&kb, ek, &err), VEIL_OK);
    assert_int_equal(veil_eval_keys_load(&loaded, kb.data, kb.len, &err), VEIL_OK);
    assert_int_equal(veil_ml_ckks_keys_output_shift(&from_file, &m->program, loaded, &err), VEIL_OK);
    assert_int_equal(from_file, in_memory);
    assert_true(loaded->meta.bound == plan->bound);

    /* four samples near the top of the range: every first output beyond 13,000 */
    double x[16], y[8], plain[8];
    unsigned s = 3;
    for (size_t i = 0; i < 16; i++) x[i] = 0.9 + 0.1 * uniform(&s);
    assert_int_equal(veil_model_run_plain(m, plain, x, 4, &err), VEIL_OK);
    for (size_t r = 0; r < 4; r++) assert_true(plain[2 * r] > 13000);
    veil_ciphertexts *in = NULL, *server_in = NULL, *out = NULL, *mine = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&in, ks, x, 4, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_save(&cb, in, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_load(&server_in, NULL, loaded, cb.data, cb.len, &err), VEIL_OK);
    veil_buffer_free(&cb);
    veil_status st = veil_model_evaluate(&out, m, loaded, server_in, NULL, NULL, &err);
    if (st != VEIL_OK) fail_msg("evaluate: %s", err.detail);
    assert_int_equal(veil_ciphertexts_save(&cb, out, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_load(&mine, ks, NULL, cb.data, cb.len, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_decrypt(y, NULL, ks, mine, &err), VEIL_OK);
    double worst = 0;
    for (size_t i = 0; i < 8; i++) worst = fmax(worst, fabs(y[i] - plain[i]));
    printf("  output shift %u bits (memory and file), outputs up to %.0f, largest error %.2g\n", in_memory, plain[0],
           worst);
    assert_true(worst < 1e-2);

    /* the bundle without its range extension, as an earlier Veil wrote it: refused where a shift is possible */
    free(ek->boot_lo);
    free(ek->boot_hi);
    ek->boot_lo = ek->boot_hi = NULL;
    assert_int_equal(veil_eval_keys_save(&ob, ek, &err), VEIL_OK);
    assert_true(ob.len < kb.len);
    assert_int_equal(veil_eval_keys_load(&old, ob.data, ob.len, &err), VEIL_OK);
    veil_ciphertexts *refused = NULL;
    assert_int_equal(veil_model_evaluate(&refused, m, old, server_in, NULL, NULL, &err), VEIL_ERR_FORMAT);
    assert_non_null(strstr(err.detail, "no outputs' bound"));
    assert_null(refused);

    veil_ciphertexts_free(in);
    veil_ciphertexts_free(server_in);
    veil_ciphertexts_free(out);
    veil_ciphertexts_free(mine);
    veil_buffer_free(&kb);
    veil_buffer_free(&ob);
    veil_buffer_free(&cb);
    veil_eval_keys_free(old);
    veil_eval_keys_free(loaded);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    veil_model_free(m);
}

/*
 * Keys written as they are made (veil_keyset_generate_to_file) are those veil_keyset_generate makes and veil_eval_keys_save
 * writes, byte for byte, from the same randomness; a file that cannot be made leaves nothing.
 */
static void test_keygen_to_file(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_model *m = random_mlp(5, 6, 8, 3, 0, NULL);
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = VEIL_PACKING_LATENCY, .have_range = 1, .range_lo = -1, .range_hi = 1};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    assert_true(info.rotations > 0);
    const uint8_t seed[VEIL_SEED_BYTES] = {42};
    veil_prng *p1 = NULL, *p2 = NULL;
    assert_int_equal(veil_prng_new_seeded(&p1, seed, 0, &err), VEIL_OK);
    assert_int_equal(veil_prng_new_seeded(&p2, seed, 0, &err), VEIL_OK);
    veil_keyset *ks = NULL, *ks2 = NULL;
    veil_eval_keys *ek = NULL;
    veil_buffer a = {0}, b = {0}, sa = {0}, sb = {0};
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, p1, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_eval_keys_save(&a, ek, &err), VEIL_OK);
    char dir[] = "/tmp/veil-keygen-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/eval.keys", dir);
    assert_int_equal(veil_keyset_generate_to_file(&ks2, plan, path, p2, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_file_read(&b, path, (size_t)1 << 30, &err), VEIL_OK);
    assert_int_equal(b.len, (size_t)info.eval_key_bytes);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_int_equal(veil_keyset_save(&sa, ks, &err), VEIL_OK);
    assert_int_equal(veil_keyset_save(&sb, ks2, &err), VEIL_OK);
    assert_int_equal(sa.len, sb.len);
    assert_memory_equal(sa.data, sb.data, sa.len);
    veil_keyset_free(ks2);
    ks2 = NULL;
    char bad[300];
    snprintf(bad, sizeof bad, "%s/missing/eval.keys", dir);
    assert_int_equal(veil_keyset_generate_to_file(&ks2, plan, bad, NULL, NULL, NULL, &err), VEIL_ERR_IO);
    assert_null(ks2);
    unlink(path);
    assert_int_equal(rmdir(dir), 0); /* nothing else was left there */
    veil_buffer_free(&a);
    veil_buffer_free(&b);
    veil_buffer_free(&sa);
    veil_buffer_free(&sb);
    veil_prng_free(p1);
    veil_prng_free(p2);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    veil_model_free(m);
}

/* One node run by the interpreter on the values of env: output "y". */
static veil_status run_op(const char *op, const char *const *inputs, size_t n_in, veil_attr *attrs, size_t n_attrs,
                          int64_t opset, veil_env *env, veil_error *err)
{
    char *outs[1] = {"y"};
    veil_node n = {.op = (char *)op, .name = "t", .label = "'t'", .inputs = (char **)inputs, .n_inputs = n_in,
                   .outputs = outs, .n_outputs = 1, .attrs = attrs, .n_attrs = n_attrs};
    return veil_node_run(&n, opset, env, err);
}

static void put(veil_env *env, const char *name, veil_dtype dt, size_t rank, const int64_t *dims, const double *v)
{
    veil_error err = {0};
    veil_tensor t;
    assert_int_equal(veil_tensor_init(&t, dt, rank, dims, &err), VEIL_OK);
    for (size_t i = 0; i < t.size; i++) t.data[i] = v[i];
    assert_int_equal(veil_env_put(env, name, &t, &err), VEIL_OK);
    veil_tensor_clear(&t);
}

static void expect_values(const veil_env *env, size_t rank, const int64_t *dims, const double *want)
{
    const veil_tensor *y = veil_env_get(env, "y");
    assert_non_null(y);
    assert_int_equal(y->rank, rank);
    for (size_t i = 0; i < rank; i++) assert_int_equal(y->dims[i], dims[i]);
    for (size_t i = 0; i < y->size; i++) assert_true(y->data[i] == want[i]);
}

static void expect_refused(veil_status st, veil_status want, const veil_error *err, const char *needle)
{
    assert_int_equal(st, want);
    if (!strstr(err->detail, needle)) fail_msg("'%s' lacks '%s'", err->detail, needle);
}

/* Slice, Transpose, Cast and ConstantOfShape at their edges, and hostile parameters refused by name. */
static void test_shape_operators(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_env env = {0};
    const double x[6] = {0, 1, 2, 3, 4, 5};
    const int64_t d23[2] = {2, 3}, d1[1] = {1}, d2[1] = {2}, d6[1] = {6}, d0[2] = {0, 3};
    put(&env, "x", VEIL_DT_FLOAT, 2, d23, x);
    put(&env, "empty", VEIL_DT_FLOAT, 2, d0, x);
    const char *sl[5] = {"x", "s", "e", "a", "t"};

    /* x[:, ::-1] with INT64_MIN as the end, INT64_MAX as the start: clamped */
    put(&env, "s", VEIL_DT_INT64, 1, d1, (double[]){9223372036854775807.0});
    put(&env, "e", VEIL_DT_INT64, 1, d1, (double[]){-9223372036854775808.0});
    put(&env, "a", VEIL_DT_INT64, 1, d1, (double[]){-1});
    put(&env, "t", VEIL_DT_INT64, 1, d1, (double[]){-1});
    assert_int_equal(run_op("Slice", sl, 5, NULL, 0, 13, &env, &err), VEIL_OK);
    expect_values(&env, 2, d23, (double[]){2, 1, 0, 5, 4, 3});
    /* x[:, 2:0:-2]: from 2 down to 0, excluded */
    put(&env, "s", VEIL_DT_INT64, 1, d1, (double[]){2});
    put(&env, "e", VEIL_DT_INT64, 1, d1, (double[]){0});
    put(&env, "t", VEIL_DT_INT64, 1, d1, (double[]){-2});
    assert_int_equal(run_op("Slice", sl, 5, NULL, 0, 13, &env, &err), VEIL_OK);
    expect_values(&env, 2, (int64_t[]){2, 1}, (double[]){2, 5});
    /* a backward slice of an empty axis is empty, never a read */
    const char *sle[5] = {"empty", "s", "e", "z", "t"};
    put(&env, "z", VEIL_DT_INT64, 1, d1, (double[]){0});
    put(&env, "t", VEIL_DT_INT64, 1, d1, (double[]){-1});
    assert_int_equal(run_op("Slice", sle, 5, NULL, 0, 13, &env, &err), VEIL_OK);
    expect_values(&env, 2, d0, NULL);
    /* opset 1: attributes */
    veil_attr at[2] = {{.name = "starts", .kind = VEIL_ATTR_INTS, .ints = (int64_t[]){1, -2}, .count = 2},
                       {.name = "ends", .kind = VEIL_ATTR_INTS, .ints = (int64_t[]){5, 1000}, .count = 2}};
    assert_int_equal(run_op("Slice", sl, 1, at, 2, 1, &env, &err), VEIL_OK);
    expect_values(&env, 2, (int64_t[]){1, 2}, (double[]){4, 5});
    /* hostile parameters */
    put(&env, "t", VEIL_DT_INT64, 1, d1, (double[]){0});
    expect_refused(run_op("Slice", sl, 5, NULL, 0, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "step of 0");
    put(&env, "t", VEIL_DT_INT64, 1, d2, (double[]){1, 1});
    expect_refused(run_op("Slice", sl, 5, NULL, 0, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "differ in length");
    put(&env, "s", VEIL_DT_INT64, 1, d2, (double[]){0, 0});
    put(&env, "e", VEIL_DT_INT64, 1, d2, (double[]){1, 1});
    put(&env, "a", VEIL_DT_INT64, 1, d2, (double[]){1, -1});
    expect_refused(run_op("Slice", sl, 5, NULL, 0, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "repeated");
    put(&env, "a", VEIL_DT_INT64, 1, d2, (double[]){0, 2});
    expect_refused(run_op("Slice", sl, 5, NULL, 0, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "out of range");
    put(&env, "s", VEIL_DT_FLOAT, 1, d2, (double[]){0, 0});
    expect_refused(run_op("Slice", sl, 3, NULL, 0, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "int32 or int64");
    put(&env, "s", VEIL_DT_INT64, 1, d6, x);
    put(&env, "e", VEIL_DT_INT64, 1, d6, x);
    expect_refused(run_op("Slice", sl, 3, NULL, 0, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "rank 2");
    expect_refused(run_op("Slice", sl, 1, NULL, 0, 13, &env, &err), VEIL_ERR_FORMAT, &err, "lacks its starts");

    /* Transpose: the default reverses the axes; a perm that is no permutation is refused */
    const char *tx[1] = {"x"};
    assert_int_equal(run_op("Transpose", tx, 1, NULL, 0, 13, &env, &err), VEIL_OK);
    expect_values(&env, 2, (int64_t[]){3, 2}, (double[]){0, 3, 1, 4, 2, 5});
    veil_attr perm = {.name = "perm", .kind = VEIL_ATTR_INTS, .ints = (int64_t[]){1, 1}, .count = 2};
    expect_refused(run_op("Transpose", tx, 1, &perm, 1, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "permutation");
    perm.ints[0] = 2;
    expect_refused(run_op("Transpose", tx, 1, &perm, 1, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "permutation");
    perm.count = 1;
    expect_refused(run_op("Transpose", tx, 1, &perm, 1, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "list 2 axes");

    /* Cast: to int truncates toward zero; to float rounds (overflowing to infinity); NaN has no integer */
    const char *cx[1] = {"c"};
    put(&env, "c", VEIL_DT_DOUBLE, 1, d6, (double[]){2.7, -2.7, 0.1, 1e300, -1e300, 16777217});
    veil_attr to = {.name = "to", .kind = VEIL_ATTR_INT, .i = 1};
    assert_int_equal(run_op("Cast", cx, 1, &to, 1, 13, &env, &err), VEIL_OK);
    expect_values(&env, 1, d6, (double[]){(float)2.7, (float)-2.7, (float)0.1, INFINITY, -INFINITY, 16777216});
    assert_int_equal(veil_env_get(&env, "y")->dtype, VEIL_DT_FLOAT);
    to.i = 7;
    expect_refused(run_op("Cast", cx, 1, &to, 1, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "no value in int64");
    put(&env, "c", VEIL_DT_DOUBLE, 1, d2, (double[]){2.7, -2.7});
    assert_int_equal(run_op("Cast", cx, 1, &to, 1, 13, &env, &err), VEIL_OK);
    expect_values(&env, 1, d2, (double[]){2, -2});
    put(&env, "c", VEIL_DT_DOUBLE, 1, d2, (double[]){NAN, 3e9});
    to.i = 6;
    expect_refused(run_op("Cast", cx, 1, &to, 1, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "no value in int32");
    to.i = 9; /* bool */
    expect_refused(run_op("Cast", cx, 1, &to, 1, 13, &env, &err), VEIL_ERR_UNSUPPORTED, &err, "element type");
    expect_refused(run_op("Cast", cx, 1, NULL, 0, 13, &env, &err), VEIL_ERR_FORMAT, &err, "'to'");

    /* ConstantOfShape: the value's type and value; dimensions checked before anything is allocated */
    const char *cs[1] = {"shape"};
    veil_attr value = {.name = "value", .kind = VEIL_ATTR_TENSOR};
    assert_int_equal(veil_tensor_init(&value.t, VEIL_DT_INT32, 1, d1, &err), VEIL_OK);
    value.t.data[0] = 7;
    put(&env, "shape", VEIL_DT_INT64, 1, d2, (double[]){2, 1});
    assert_int_equal(run_op("ConstantOfShape", cs, 1, &value, 1, 13, &env, &err), VEIL_OK);
    expect_values(&env, 2, (int64_t[]){2, 1}, (double[]){7, 7});
    assert_int_equal(veil_env_get(&env, "y")->dtype, VEIL_DT_INT32);
    assert_int_equal(run_op("ConstantOfShape", cs, 1, NULL, 0, 13, &env, &err), VEIL_OK);
    expect_values(&env, 2, (int64_t[]){2, 1}, (double[]){0, 0});
    put(&env, "shape", VEIL_DT_INT64, 1, d2, (double[]){-1, 2});
    expect_refused(run_op("ConstantOfShape", cs, 1, NULL, 0, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "dimension -1");
    put(&env, "shape", VEIL_DT_INT64, 1, d1, (double[]){1e18});
    expect_refused(run_op("ConstantOfShape", cs, 1, NULL, 0, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "dimension");
    put(&env, "shape", VEIL_DT_INT64, 1, (int64_t[]){3}, (double[]){8192, 8192, 8192});
    expect_refused(run_op("ConstantOfShape", cs, 1, NULL, 0, 13, &env, &err), VEIL_ERR_UNSUPPORTED, &err, "elements");
    put(&env, "shape", VEIL_DT_FLOAT, 1, d1, (double[]){2});
    expect_refused(run_op("ConstantOfShape", cs, 1, NULL, 0, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "int64");
    veil_tensor_clear(&value.t);
    assert_int_equal(veil_tensor_init(&value.t, VEIL_DT_FLOAT, 1, d2, &err), VEIL_OK);
    put(&env, "shape", VEIL_DT_INT64, 1, d1, (double[]){2});
    expect_refused(run_op("ConstantOfShape", cs, 1, &value, 1, 13, &env, &err), VEIL_ERR_ARGUMENT, &err, "one element");
    veil_tensor_clear(&value.t);
    veil_env_clear(&env);
}

/* On the data path: Slice and Transpose fold into the affine stage; a Cast to int and ConstantOfShape are refused. */
static void test_shape_operators_lowered(void **state)
{
    (void)state;
    veil_error err = {0};
    const uint8_t tag[] = "shape-ops";
    int64_t dims[3] = {-1, 2, 3}, d1[1] = {1};
    double one[1] = {1}, minus[1] = {-1};
    const char *tx[1] = {"x"}, *sl[5] = {"xt", "s", "e", "a", "t"}, *fl[1] = {"sl"};

    veil_graph g = {0}; /* Transpose(0, 2, 1), Slice(axis 1, reversed), Flatten */
    assert_int_equal(veil_graph_add_input(&g, "x", dims, 3, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "s", minus, d1, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "e", (double[]){-1e19}, d1, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "a", one, d1, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "t", minus, d1, 1, &err), VEIL_OK);
    for (size_t i = 0; i < g.n_inits; i++) g.inits[i].dtype = VEIL_DT_INT64;
    assert_int_equal(veil_graph_add_node(&g, "Transpose", tx, 1, "xt", NULL, 0, &err), VEIL_OK);
    veil_node *t = &g.nodes[0]; /* its attribute list has room for one */
    t->attrs[0].name = strdup("perm");
    t->attrs[0].kind = VEIL_ATTR_INTS;
    t->attrs[0].ints = calloc(3, sizeof(int64_t));
    t->attrs[0].ints[1] = 2;
    t->attrs[0].ints[2] = 1;
    t->attrs[0].count = 3;
    t->n_attrs = 1;
    assert_int_equal(veil_graph_add_node(&g, "Slice", sl, 5, "sl", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Flatten", fl, 1, "y", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, "y", &err), VEIL_OK);
    g.opset = 13;
    veil_model *m = NULL;
    if (veil_model_from_graph(&m, &g, tag, 9, NULL, 0, NULL, &err) != VEIL_OK) fail_msg("%s", err.detail);
    assert_int_equal(m->program.n_stages, 1);
    double in[6] = {0, 1, 2, 3, 4, 5}, out[6], want[6] = {2, 5, 1, 4, 0, 3};
    assert_int_equal(veil_program_run_plain(&m->program, in, out, &err), VEIL_OK);
    for (int i = 0; i < 6; i++) assert_true(fabs(out[i] - want[i]) < 1e-12);
    veil_model_free(m);

    veil_graph c = {0}; /* Cast of the data to int64 */
    assert_int_equal(veil_graph_add_input(&c, "x", dims, 3, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&c, "Cast", tx, 1, "y", "to", 7, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&c, "y", &err), VEIL_OK);
    assert_int_equal(veil_model_from_graph(&m, &c, tag, 9, NULL, 0, NULL, &err), VEIL_ERR_UNSUPPORTED);
    if (!strstr(err.detail, "(Cast): a cast of the data to an integer type")) fail_msg("%s", err.detail);

    veil_graph k = {0}; /* ConstantOfShape of the data */
    assert_int_equal(veil_graph_add_input(&k, "x", (int64_t[]){2}, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&k, "ConstantOfShape", tx, 1, "y", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&k, "y", &err), VEIL_OK);
    assert_int_equal(veil_model_from_graph(&m, &k, tag, 9, NULL, 0, NULL, &err), VEIL_ERR_UNSUPPORTED);
    if (!strstr(err.detail, "(ConstantOfShape): a shape computed from the data")) fail_msg("%s", err.detail);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_mlps), cmocka_unit_test(test_encrypted_weights),
        cmocka_unit_test(test_approximated_activation),
        cmocka_unit_test(test_keys_and_sets_are_checked),
        cmocka_unit_test(test_sets_by_batches),
        cmocka_unit_test(test_wrapping_counts_refused),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_latency_two_bottom_primes),
        cmocka_unit_test(test_compressed_bundle_kept),
        cmocka_unit_test(test_output_shift_through_files),
        cmocka_unit_test(test_keygen_to_file),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_onnx_roundtrip),
        cmocka_unit_test(test_deeply_nested_onnx),
        cmocka_unit_test(test_cnn_bad_input),
        cmocka_unit_test(test_shape_operators),
        cmocka_unit_test(test_shape_operators_lowered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
