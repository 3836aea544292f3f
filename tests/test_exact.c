/*
 * Exact inference (BGV): a quantized CNN (integer Conv, square, integer Gemm, square, integer Gemm, output
 * scale) encrypted, evaluated and decrypted must equal the integer computation on every output of every
 * row, over one plaintext modulus and over several combined by the CRT; the files round-trip; bad input
 * (inputs out of range or fractional, non-integer weights, approximated activations, bounds beyond 2^62,
 * forged metadata) is refused with its reason.
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
#include <cmocka.h>
#include "veil/veil.h"
#include "ml/ml_plan.h"
#include "serial/serial_internal.h"

static unsigned next(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

/* After a deliberate edit of a stored set: a fresh integrity digest, so that the checks behind it see the
 * forgery (the digest detects accidents; a forger recomputes it). */
static void reseal(veil_buffer *b) { veil_object_reseal(b->data, b->len); }

/* Integers in [-r, r]. */
static void fill(double *v, size_t n, int r, unsigned *s)
{
    for (size_t i = 0; i < n; i++) v[i] = (double)((int)(next(s) % (unsigned)(2 * r + 1)) - r);
}

/*
 * x [1, 1, 8, 8] -> Conv 3 x 3 (3 channels) -> square (squares 2; 1: none; 0: Relu) -> Gemm 108 -> 8 -> square -> Gemm 8 -> 4 -> Mul by
 * `scale` -> ArgMax; weights integers of at most `wmax`, or with a fraction when `fractional`.
 */
static veil_model *quantized_cnn(unsigned seed, int wmax, int squares, double scale, int fractional, int integer,
                                 veil_status *status, veil_error *err)
{
    veil_graph g = {0};
    unsigned s = seed;
    double cw[27], cb[3], w1[8 * 108], b1[8], w2[4 * 8], b2[4];
    fill(cw, 27, wmax, &s);
    fill(cb, 3, 20, &s);
    fill(w1, 8 * 108, wmax, &s);
    fill(b1, 8, 1000, &s);
    fill(w2, 32, wmax, &s);
    fill(b2, 4, 1000, &s);
    if (fractional) w1[5] += 0.25;
    const double sc[1] = {scale};
    int64_t in_dims[4] = {-1, 1, 8, 8}, cwd[4] = {3, 1, 3, 3}, cbd[1] = {3}, w1d[2] = {8, 108}, b1d[1] = {8},
            w2d[2] = {4, 8}, b2d[1] = {4}, scd[1] = {1};
    const char *conv[3] = {"x", "cw", "cb"}, *sq1[2] = {"c", "c"}, *fl[1] = {"s1"}, *g1[3] = {"f", "w1", "b1"},
               *sq2[2] = {"h", "h"}, *g2[3] = {"s2", "w2", "b2"}, *mul[2] = {"y", "sc"}, *am[1] = {"logits"};
    assert_int_equal(veil_graph_add_input(&g, "x", in_dims, 4, err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "cw", cw, cwd, 4, err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "cb", cb, cbd, 1, err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w1", w1, w1d, 2, err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "b1", b1, b1d, 1, err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w2", w2, w2d, 2, err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "b2", b2, b2d, 1, err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "sc", sc, scd, 1, err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Conv", conv, 3, "c", "group", 1, err), VEIL_OK);
    if (squares == 2) assert_int_equal(veil_graph_add_node(&g, "Mul", sq1, 2, "s1", NULL, 0, err), VEIL_OK);
    else if (squares == 1) assert_int_equal(veil_graph_add_node(&g, "Identity", sq1, 1, "s1", NULL, 0, err), VEIL_OK);
    else assert_int_equal(veil_graph_add_node(&g, "Relu", sq1, 1, "s1", NULL, 0, err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Flatten", fl, 1, "f", "axis", 1, err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", g1, 3, "h", "transB", 1, err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Mul", sq2, 2, "s2", NULL, 0, err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", g2, 3, "y", "transB", 1, err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Mul", mul, 2, "logits", NULL, 0, err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "ArgMax", am, 1, "class", "axis", 1, err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, "class", err), VEIL_OK);
    veil_model_options opts = {.integer = integer, .have_range = 1, .range_lo = -4, .range_hi = 4};
    veil_model *m = NULL;
    char tag[32];
    snprintf(tag, sizeof tag, "qcnn-%u", seed);
    *status = veil_model_from_graph(&m, &g, (const uint8_t *)tag, strlen(tag), NULL, 0, &opts, err);
    return m;
}

/* The serialized form of a set, loaded back (keys and eval keys through their files too). */
static veil_ciphertexts *roundtrip(const veil_ciphertexts *c, const veil_keyset *keys, const veil_eval_keys *eval)
{
    veil_buffer b = {0};
    veil_error err = {0};
    veil_ciphertexts *back = NULL;
    assert_int_equal(veil_ciphertexts_save(&b, c, &err), VEIL_OK);
    if (veil_ciphertexts_load(&back, keys, eval, b.data, b.len, &err) != VEIL_OK) fail_msg("%s", err.detail);
    veil_buffer_free(&b);
    return back;
}

/* Encrypted, evaluated (by eval keys loaded from their file), decrypted: equal to the integer run. */
static void check_exact(veil_model *m, int64_t lo, int64_t hi, size_t rows, size_t expect_moduli)
{
    veil_error err = {0};
    veil_plan *plan = NULL;
    veil_plan_request req = {.scheme = VEIL_ML_BGV, .input_lo = lo, .input_hi = hi};
    if (veil_model_plan(&plan, m, &req, &err) != VEIL_OK) fail_msg("plan: %s", err.detail);
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    print_message("    N = %zu, %zu moduli (%.1f bits) for outputs up to 2^%.1f, %zu primes\n", info.n, info.crt_count,
                  info.modulus_bits, info.bound_bits, info.q_count);
    assert_int_equal(info.scheme, VEIL_ML_BGV);
    if (expect_moduli == 1) assert_int_equal(info.crt_count, 1);
    else assert_true(info.crt_count >= 2);
    assert_true(info.modulus_bits > info.bound_bits + 1); /* T > 2 B + 1 */
    veil_keyset *keys = NULL;
    veil_eval_keys *eval = NULL, *server = NULL;
    if (veil_keyset_generate(&keys, &eval, plan, NULL, NULL, NULL, &err) != VEIL_OK) fail_msg("keygen: %s", err.detail);
    const size_t input_bytes = veil_plan_input_bytes(plan, rows);
    veil_plan_free(plan);
    assert_int_equal(veil_keyset_scheme(keys), VEIL_ML_BGV);
    /* the server's keys come from the bundle's bytes, of the size the plan said */
    veil_buffer kb = {0};
    assert_int_equal(veil_eval_keys_save(&kb, eval, &err), VEIL_OK);
    assert_int_equal(kb.len, (size_t)info.eval_key_bytes);
    if (veil_eval_keys_load(&server, kb.data, kb.len, &err) != VEIL_OK) fail_msg("eval keys: %s", err.detail);
    veil_buffer_free(&kb);

    const size_t w = veil_model_input_width(m), ow = m->program.out_width;
    double *x = malloc(rows * w * sizeof *x);
    int64_t *xi = malloc(rows * w * sizeof *xi), *expect = malloc(rows * ow * sizeof *expect),
            *got = malloc(rows * ow * sizeof *got);
    unsigned s = 7;
    for (size_t i = 0; i < rows * w; i++) {
        xi[i] = lo + (int64_t)(next(&s) % (unsigned)(hi - lo + 1));
        if (i % 97 == 0) xi[i] = i % 2 ? hi : lo; /* the range's ends */
        x[i] = (double)xi[i];
    }
    assert_int_equal(veil_model_run_integer(m, expect, xi, rows, &err), VEIL_OK);
    veil_ciphertexts *in = NULL, *in_server = NULL, *out = NULL, *out_owner = NULL;
    if (veil_ciphertexts_encrypt(&in, keys, x, rows, NULL, &err) != VEIL_OK) fail_msg("encrypt: %s", err.detail);
    veil_buffer ib = {0};
    assert_int_equal(veil_ciphertexts_save(&ib, in, &err), VEIL_OK);
    assert_int_equal(ib.len, input_bytes);
    veil_buffer_free(&ib);
    in_server = roundtrip(in, NULL, server);
    if (veil_model_evaluate(&out, m, server, in_server, NULL, NULL, &err) != VEIL_OK) fail_msg("evaluate: %s", err.detail);
    out_owner = roundtrip(out, keys, NULL);
    if (veil_ciphertexts_decrypt_integers(got, keys, out_owner, &err) != VEIL_OK) fail_msg("decrypt: %s", err.detail);
    size_t wrong = 0;
    int64_t largest = 0;
    for (size_t i = 0; i < rows * ow; i++) {
        wrong += got[i] != expect[i];
        largest = llabs(expect[i]) > largest ? llabs(expect[i]) : largest;
    }
    print_message("    %zu rows x %zu outputs, largest |output| 2^%.1f: %zu differ\n", rows, ow, log2((double)largest),
                  wrong);
    assert_int_equal(wrong, 0);
    /* the data owner's view: the integers times the output scale, then the final ArgMax (as in plaintext) */
    double *classes = malloc(rows * sizeof *classes), *raw = malloc(rows * ow * sizeof *raw),
           *plain = malloc(rows * sizeof *plain);
    assert_int_equal(veil_ciphertexts_decrypt(classes, raw, keys, out_owner, &err), VEIL_OK);
    assert_int_equal(veil_model_run_plain(m, plain, x, rows, &err), VEIL_OK);
    for (size_t r = 0; r < rows; r++) {
        for (size_t i = 0; i < ow; i++)
            assert_true(raw[r * ow + i] == (double)expect[r * ow + i] * veil_model_output_scale(m));
        assert_true(classes[r] == plain[r]);
    }
    /* the secret key set through its file decrypts the same */
    veil_buffer sb = {0};
    veil_keyset *keys2 = NULL;
    veil_ciphertexts *out2 = NULL;
    assert_int_equal(veil_keyset_save(&sb, keys, &err), VEIL_OK);
    assert_int_equal(veil_keyset_load(&keys2, sb.data, sb.len, &err), VEIL_OK);
    out2 = roundtrip(out, keys2, NULL);
    int64_t *got2 = malloc(rows * ow * sizeof *got2);
    assert_int_equal(veil_ciphertexts_decrypt_integers(got2, keys2, out2, &err), VEIL_OK);
    assert_memory_equal(got2, expect, rows * ow * sizeof *got2);
    /* inputs outside the plan's range, or fractional, are refused before anything is encrypted */
    veil_ciphertexts *bad = NULL;
    x[3] = (double)hi + 1;
    assert_int_equal(veil_ciphertexts_encrypt(&bad, keys, x, rows, NULL, &err), VEIL_ERR_ARGUMENT);
    char where[64];
    snprintf(where, sizeof where, "row %zu, column %zu", 3 / w + 1, 3 % w + 1);
    assert_non_null(strstr(err.detail, where));
    x[3] = (double)lo + 0.5;
    assert_int_equal(veil_ciphertexts_encrypt(&bad, keys, x, rows, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_null(bad);
    /* CKKS-only calls refuse BGV sets */
    assert_int_equal(veil_ciphertexts_decrypt_integers(got2, keys2, in_server, &err), VEIL_ERR_MISMATCH);

    veil_buffer_free(&sb);
    free(got2);
    veil_ciphertexts_free(out2);
    veil_keyset_free(keys2);
    free(classes);
    free(raw);
    free(plain);
    free(x);
    free(xi);
    free(expect);
    free(got);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(in_server);
    veil_ciphertexts_free(out);
    veil_ciphertexts_free(out_owner);
    veil_eval_keys_free(server);
    veil_eval_keys_free(eval);
    veil_keyset_free(keys);
}

/* The lowering: the output scale taken out, the integer run equal to the interpreter's float run. */
static void test_lowering(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_status st;
    veil_model *m = quantized_cnn(3, 7, 2, 0.001, 0, 1, &st, &err);
    if (st != VEIL_OK) fail_msg("%s", err.detail);
    assert_true(veil_model_output_scale(m) == 0.001);
    assert_int_equal(m->program.n_stages, 5);
    unsigned s = 11;
    double x[64], f[4];
    int64_t xi[64], y[4];
    for (int i = 0; i < 64; i++) xi[i] = (int64_t)(next(&s) % 16), x[i] = (double)xi[i];
    assert_int_equal(veil_model_run_integer(m, y, xi, 1, &err), VEIL_OK);
    assert_int_equal(veil_program_run_plain(&m->program, x, f, &err), VEIL_OK);
    for (int i = 0; i < 4; i++) assert_true((double)y[i] == f[i]); /* below 2^53: float64 is exact too */
    veil_model_free(m);
}

/* Two squares: outputs near 2^45, beyond one plaintext modulus: two moduli, recomposed by the CRT. */
static void test_cnn_over_crt(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_status st;
    veil_model *m = quantized_cnn(5, 7, 2, 0.001, 0, 1, &st, &err);
    if (st != VEIL_OK) fail_msg("%s", err.detail);
    check_exact(m, 0, 15, 40, 2);
    veil_model_free(m);
}

/* One square: the bound fits one modulus. */
static void test_cnn_one_modulus(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_status st;
    veil_model *m = quantized_cnn(9, 3, 1, 0.5, 0, 1, &st, &err);
    if (st != VEIL_OK) fail_msg("%s", err.detail);
    check_exact(m, 0, 1, 30, 1);
    veil_model_free(m);
}

/* x [3] -> Gemm 3 -> 2 (w1) -> square -> Gemm 2 -> 1 [-> Sigmoid], loaded as given. */
static veil_model *tiny(const double *w1, int sigmoid, const veil_model_options *opts, veil_status *st, veil_error *err)
{
    veil_graph g = {0};
    const double w2[2] = {1, -1};
    int64_t in_dims[2] = {-1, 3}, w1d[2] = {2, 3}, w2d[2] = {1, 2};
    const char *g1[2] = {"x", "w1"}, *sq[2] = {"h", "h"}, *g2[2] = {"s", "w2"}, *sg[1] = {"y"};
    assert_int_equal(veil_graph_add_input(&g, "x", in_dims, 2, err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w1", w1, w1d, 2, err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w2", w2, w2d, 2, err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", g1, 2, "h", "transB", 1, err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Mul", sq, 2, "s", NULL, 0, err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", g2, 2, "y", "transB", 1, err), VEIL_OK);
    if (sigmoid) assert_int_equal(veil_graph_add_node(&g, "Sigmoid", sg, 1, "p", NULL, 0, err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, sigmoid ? "p" : "y", err), VEIL_OK);
    veil_model *m = NULL;
    *st = veil_model_from_graph(&m, &g, (const uint8_t *)"tiny", 4, NULL, 0, opts, err);
    return m;
}

/* Keys of a plan, and the bytes of the eval keys. */
static void keys_for(veil_model *m, const veil_plan_request *req, veil_keyset **ks, veil_eval_keys **ek,
                     veil_buffer *bundle)
{
    veil_error err = {0};
    veil_plan *plan = NULL;
    if (veil_model_plan(&plan, m, req, &err) != VEIL_OK) fail_msg("plan: %s", err.detail);
    assert_int_equal(veil_keyset_generate(ks, ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_eval_keys_save(bundle, *ek, &err), VEIL_OK);
    veil_plan_free(plan);
}

/* Files whose metadata lies about the ring, the scheme or the layout are refused; so are keys of the other
 * scheme than the model's, and a decryption beyond the plan's bound. */
static void test_forged_files(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_status st;
    const double w1[6] = {1, -2, 3, 0, 2, -1};
    veil_model_options exact = {.integer = 1};
    veil_model *mq = tiny(w1, 0, &exact, &st, &err), *mc = tiny(w1, 0, NULL, &st, &err);
    assert_non_null(mq);
    assert_non_null(mc);
    veil_keyset *ks = NULL, *ksl = NULL;
    veil_eval_keys *ek = NULL, *ekl = NULL, *x = NULL;
    veil_buffer b = {0}, bl = {0};
    veil_plan_request rq = {.scheme = VEIL_ML_BGV, .input_hi = 3}, rl = {.packing = VEIL_PACKING_LATENCY};
    keys_for(mq, &rq, &ks, &ek, &b);
    keys_for(mc, &rl, &ksl, &ekl, &bl);
    const size_t meta = VEIL_HEADER_BYTES + 8;
    /* slots beyond the ring (the evaluator would divide by zero lanes), in both schemes */
    uint8_t saved[8];
    memcpy(saved, b.data + meta + 96, 8);
    memset(b.data + meta + 96, 0, 8);
    b.data[meta + 96 + 3] = 1; /* 2^24 slots */
    reseal(&b);
    assert_int_equal(veil_eval_keys_load(&x, b.data, b.len, &err), VEIL_ERR_FORMAT);
    assert_null(strstr(err.detail, "corrupt"));
    memcpy(b.data + meta + 96, saved, 8);
    reseal(&b);
    memcpy(saved, bl.data + meta + 96, 8);
    memset(bl.data + meta + 96, 0, 8);
    bl.data[meta + 96 + 2] = 1; /* 65536 slots for N/2 = 4096 or 8192 */
    reseal(&bl);
    assert_int_equal(veil_eval_keys_load(&x, bl.data, bl.len, &err), VEIL_ERR_FORMAT);
    assert_non_null(strstr(err.detail, "slots"));
    memcpy(bl.data + meta + 96, saved, 8);
    reseal(&bl);
    /* a latency file of the earlier layout (no layout mark) */
    bl.data[meta + 16 + 2] = 0;
    reseal(&bl);
    assert_int_equal(veil_eval_keys_load(&x, bl.data, bl.len, &err), VEIL_ERR_FORMAT);
    assert_non_null(strstr(err.detail, "layout"));
    bl.data[meta + 16 + 2] = 1;
    reseal(&bl);
    assert_int_equal(veil_eval_keys_load(&x, bl.data, bl.len, &err), VEIL_OK);
    veil_eval_keys_free(x);
    /* a moduli count that only its low 32 bits make valid */
    b.data[meta + 128 + 4] = 1;
    reseal(&b);
    assert_int_equal(veil_eval_keys_load(&x, b.data, b.len, &err), VEIL_ERR_FORMAT);
    assert_null(strstr(err.detail, "corrupt"));
    b.data[meta + 128 + 4] = 0;
    reseal(&b);
    /* keys of the other scheme than the model's */
    veil_evaluator *ev = NULL;
    assert_int_equal(veil_evaluator_new(&ev, mc, ek, 1, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(veil_evaluator_new(&ev, mq, ekl, 1, &err), VEIL_ERR_MISMATCH);
    assert_null(ev);
    /* a decryption past the proved bound is refused (here the bound is lowered by hand) */
    const double x_in[3] = {3, 3, 3};
    veil_ciphertexts *in = NULL, *out = NULL;
    int64_t y = 0;
    assert_int_equal(veil_ciphertexts_encrypt(&in, ks, x_in, 1, NULL, &err), VEIL_OK);
    assert_int_equal(veil_model_evaluate(&out, mq, ek, in, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_decrypt_integers(&y, ks, out, &err), VEIL_OK);
    assert_true(y == 27); /* (3 (1 - 2 + 3))^2 - (3 (0 + 2 - 1))^2 = 36 - 9 */
    ks->meta.bound = fabs((double)y) - 1;
    assert_int_equal(veil_ciphertexts_decrypt_integers(&y, ks, out, &err), VEIL_ERR_NOISE);
    assert_non_null(strstr(err.detail, "bound"));
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(out);
    veil_buffer_free(&b);
    veil_buffer_free(&bl);
    veil_eval_keys_free(ek);
    veil_eval_keys_free(ekl);
    veil_keyset_free(ks);
    veil_keyset_free(ksl);
    veil_model_free(mq);
    veil_model_free(mc);
}

/* A tiny bound (2^7): the smallest plaintext modulus Veil takes (17 bits, t = 1 mod 2N) still holds it. */
static void test_tiny_bound(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_graph g = {0};
    double w1[6] = {1, -2, 3, 0, 2, -1}, w2[2] = {1, -1};
    int64_t in_dims[2] = {-1, 3}, w1d[2] = {2, 3}, w2d[2] = {1, 2};
    const char *g1[2] = {"x", "w1"}, *sq[2] = {"h", "h"}, *g2[2] = {"s", "w2"};
    assert_int_equal(veil_graph_add_input(&g, "x", in_dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w1", w1, w1d, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w2", w2, w2d, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", g1, 2, "h", "transB", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Mul", sq, 2, "s", NULL, 0, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_node(&g, "Gemm", g2, 2, "y", "transB", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, "y", &err), VEIL_OK);
    veil_model_options opts = {.integer = 1};
    veil_model *m = NULL;
    if (veil_model_from_graph(&m, &g, (const uint8_t *)"tiny", 4, NULL, 0, &opts, &err) != VEIL_OK)
        fail_msg("%s", err.detail);
    check_exact(m, 0, 3, 20, 1);
    veil_model_free(m);
}

static void test_bad_input(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_status st;
    veil_model *m = quantized_cnn(3, 7, 2, 0.001, 1, 1, &st, &err); /* a weight with a fraction */
    assert_int_equal(st, VEIL_ERR_UNSUPPORTED);
    assert_null(m);
    assert_non_null(strstr(err.detail, "row 1, column 6"));
    assert_non_null(strstr(err.detail, "Gemm"));
    m = quantized_cnn(3, 7, 0, 0.001, 0, 1, &st, &err); /* Relu needs an approximation */
    assert_int_equal(st, VEIL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.detail, "Relu"));
    /* a large weight with a fraction is no integer either; a Sigmoid on the server is a polynomial */
    const double big[6] = {600000.4, -2, 3, 0, 2, -1}, small[6] = {1, -2, 3, 0, 2, -1};
    veil_model_options exact = {.integer = 1}, sig = {.integer = 1, .server_sigmoid = 1};
    assert_null(tiny(big, 0, &exact, &st, &err));
    assert_int_equal(st, VEIL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.detail, "600000.4"));
    assert_null(tiny(small, 1, &sig, &st, &err));
    assert_int_equal(st, VEIL_ERR_UNSUPPORTED);
    veil_model *final_sigmoid = tiny(small, 1, &exact, &st, &err); /* left to the data owner: fine */
    assert_int_equal(st, VEIL_OK);
    veil_model_free(final_sigmoid);
    m = quantized_cnn(3, 7, 2, 0.001, 0, 1, &st, &err);
    assert_int_equal(st, VEIL_OK);
    veil_plan *plan = NULL;
    veil_plan_request req = {.scheme = VEIL_ML_BGV, .input_lo = 0, .input_hi = 1 << 20};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_UNSUPPORTED); /* values beyond 2^62 */
    assert_non_null(strstr(err.detail, "quantize"));
    req.input_hi = -1;
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_ARGUMENT);
    req = (veil_plan_request){.scheme = VEIL_ML_BGV, .packing = VEIL_PACKING_LATENCY, .input_hi = 15};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_UNSUPPORTED);
    req = (veil_plan_request){.input_hi = 15}; /* CKKS with a model loaded for BGV */
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_ARGUMENT);
    assert_null(plan);
    /* forged metadata: the moduli count out of range */
    req = (veil_plan_request){.scheme = VEIL_ML_BGV, .input_hi = 15};
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    assert_int_equal(veil_plan_save(&(veil_buffer){0}, plan, &err), VEIL_ERR_UNSUPPORTED);
    veil_keyset *keys = NULL;
    veil_eval_keys *eval = NULL;
    assert_int_equal(veil_keyset_generate(&keys, &eval, plan, NULL, NULL, NULL, &err), VEIL_OK);
    veil_buffer b = {0};
    assert_int_equal(veil_eval_keys_save(&b, eval, &err), VEIL_OK);
    const uint8_t *meta = b.data + VEIL_HEADER_BYTES + 8;
    size_t at = (size_t)(meta - b.data) + 128;
    const uint8_t moduli = b.data[at];
    assert_true(moduli >= 2);
    for (uint64_t forged = 0; forged <= 5; forged += 5) {
        b.data[at] = (uint8_t)forged;
        reseal(&b);
        veil_eval_keys *x = NULL;
        assert_int_equal(veil_eval_keys_load(&x, b.data, b.len, &err), VEIL_ERR_FORMAT);
        assert_null(x);
    }
    b.data[at] = (uint8_t)(moduli - 1); /* fewer moduli claimed than stored */
    reseal(&b);
    veil_eval_keys *x = NULL;
    assert_int_not_equal(veil_eval_keys_load(&x, b.data, b.len, &err), VEIL_OK);
    assert_null(strstr(err.detail, "corrupt"));
    veil_buffer_free(&b);
    veil_plan_free(plan);
    veil_keyset_free(keys);
    veil_eval_keys_free(eval);
    veil_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lowering),
        cmocka_unit_test(test_cnn_over_crt),
        cmocka_unit_test(test_cnn_one_modulus),
        cmocka_unit_test(test_tiny_bound),
        cmocka_unit_test(test_forged_files),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
