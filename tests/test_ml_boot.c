/*
 * Bootstrapping in CKKS inference (src/ml/ckks_boot.c, docs/bootstrapping.md "In the ML layer"), on the small
 * insecure test set (N = 2^10, 4 levels after a bootstrap): where the plan places bootstraps (one, several,
 * after polynomial activations), the encrypted outputs against the plaintext program through the wire format,
 * and the refusals: missing bootstrapping keys, a ciphertext at an unusable level, values the plan cannot
 * bound, models it cannot place a bootstrap in.
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

static double uniform(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (double)(*s >> 8) / (double)(1u << 24) * 2.0 - 1.0;
}

/*
 * x [batch, n] -> Gemm(n -> h) -> act -> (Gemm(h -> h) -> act) x (hidden - 1) -> Gemm(h -> m): act is a square
 * (Mul(x, x)) when NULL, else the named activation (approximated over [-4, 4] with the given degree).
 * `squares` more squares follow the first Gemm directly when > 0 (a model without room for a bootstrap).
 */
static veil_model *deep_mlp(unsigned seed, size_t n, size_t h, size_t m, size_t hidden, const char *act,
                            size_t degree, double weight_scale)
{
    veil_error err = {0};
    veil_graph g = {0};
    unsigned s = seed;
    int64_t in_dims[2] = {-1, (int64_t)n};
    assert_int_equal(veil_graph_add_input(&g, "x", in_dims, 2, &err), VEIL_OK);
    char prev[32] = "x", name[32], wn[32], bn[32], an[32];
    for (size_t l = 0; l <= hidden; l++) {
        const size_t in = l == 0 ? n : h, out = l == hidden ? m : h;
        double *w = calloc(out * in, sizeof *w), *b = calloc(out, sizeof *b);
        for (size_t i = 0; i < out * in; i++) w[i] = weight_scale * uniform(&s) / sqrt((double)in);
        for (size_t i = 0; i < out; i++) b[i] = 0.1 * uniform(&s);
        int64_t wd[2] = {(int64_t)out, (int64_t)in}, bd[1] = {(int64_t)out};
        snprintf(wn, sizeof wn, "w%zu", l);
        snprintf(bn, sizeof bn, "b%zu", l);
        snprintf(name, sizeof name, "dense%zu", l);
        assert_int_equal(veil_graph_add_init(&g, wn, w, wd, 2, &err), VEIL_OK);
        assert_int_equal(veil_graph_add_init(&g, bn, b, bd, 1, &err), VEIL_OK);
        const char *gi[3] = {prev, wn, bn};
        assert_int_equal(veil_graph_add_node(&g, "Gemm", gi, 3, name, "transB", 1, &err), VEIL_OK);
        free(w);
        free(b);
        snprintf(prev, sizeof prev, "%s", name);
        if (l == hidden) break;
        snprintf(an, sizeof an, "act%zu", l);
        const char *sq[2] = {prev, prev}, *a1[1] = {prev};
        if (act) assert_int_equal(veil_graph_add_node(&g, act, a1, 1, an, NULL, 0, &err), VEIL_OK);
        else assert_int_equal(veil_graph_add_node(&g, "Mul", sq, 2, an, NULL, 0, &err), VEIL_OK);
        snprintf(prev, sizeof prev, "%s", an);
    }
    assert_int_equal(veil_graph_add_output(&g, prev, &err), VEIL_OK);
    veil_model_options opts = {.have_range = act != NULL, .range_lo = -4, .range_hi = 4, .degree = degree};
    veil_model *model = NULL;
    char tag[64];
    snprintf(tag, sizeof tag, "deep-%u-%zu-%s", seed, hidden, act ? act : "square");
    const veil_status st = veil_model_from_graph(&model, &g, (const uint8_t *)tag, strlen(tag), NULL, 0, &opts, &err);
    if (st != VEIL_OK) fail_msg("%s", err.detail);
    return model;
}

/* x [batch, n] -> Gemm(n -> n) -> `squares` squares in a row -> Gemm(n -> 1). */
static veil_model *square_chain(size_t n, size_t squares)
{
    veil_error err = {0};
    veil_graph g = {0};
    int64_t in_dims[2] = {-1, (int64_t)n}, wd[2] = {(int64_t)n, (int64_t)n}, bd[1] = {(int64_t)n},
            vd[2] = {1, (int64_t)n}, cd[1] = {1};
    double w[64] = {0}, b[8] = {0}, v[8], c[1] = {0};
    for (size_t i = 0; i < n; i++) {
        w[i * n + i] = 0.5;
        v[i] = 1;
    }
    assert_int_equal(veil_graph_add_input(&g, "x", in_dims, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "w", w, wd, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "b", b, bd, 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "v", v, vd, 2, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_init(&g, "c", c, cd, 1, &err), VEIL_OK);
    const char *gi[3] = {"x", "w", "b"};
    assert_int_equal(veil_graph_add_node(&g, "Gemm", gi, 3, "s0", "transB", 1, &err), VEIL_OK);
    char prev[16] = "s0", next[16];
    for (size_t k = 1; k <= squares; k++) {
        snprintf(next, sizeof next, "s%zu", k);
        const char *sq[2] = {prev, prev};
        assert_int_equal(veil_graph_add_node(&g, "Mul", sq, 2, next, NULL, 0, &err), VEIL_OK);
        snprintf(prev, sizeof prev, "%s", next);
    }
    const char *go[3] = {prev, "v", "c"};
    assert_int_equal(veil_graph_add_node(&g, "Gemm", go, 3, "y", "transB", 1, &err), VEIL_OK);
    assert_int_equal(veil_graph_add_output(&g, "y", &err), VEIL_OK);
    veil_model *model = NULL;
    assert_int_equal(veil_model_from_graph(&model, &g, (const uint8_t *)"chain", 5, NULL, 0, NULL, &err), VEIL_OK);
    return model;
}

static veil_plan_request boot_request(void)
{
    return (veil_plan_request){.packing = VEIL_PACKING_THROUGHPUT, .batch = 8, .security = VEIL_SECURITY_NONE,
                               .bootstrap = 1, .have_range = 1, .range_lo = -1, .range_hi = 1};
}

static void expect_points(const veil_plan *plan, size_t count, const size_t *stages)
{
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    assert_int_equal(info.bootstrap_points, count);
    assert_int_equal(info.bootstrap_levels, 4);
    assert_true(info.bootstrap_key_bytes > 0 && info.bootstrap_key_bytes < info.eval_key_bytes);
    assert_true(info.bootstrap_seconds > 0 && info.bootstrap_seconds < info.estimated_seconds);
    for (size_t k = 0; k < count; k++) {
        size_t stage = 99;
        int shift = -1;
        double bound = -1;
        const char *what = NULL;
        veil_error err = {0};
        assert_int_equal(veil_plan_bootstrap_point(plan, k, &stage, &what, &shift, &bound, &err), VEIL_OK);
        printf("  bootstrap %zu after stage %zu (%s): |v| <= %.3g, shift %d\n", k + 1, stage + 1, what, bound, shift);
        assert_int_equal(stage, stages[k]);
        assert_true(shift >= 0 && ldexp(1.0, -shift) * bound <= 1.0);
    }
    veil_error err = {0};
    assert_int_equal(veil_plan_bootstrap_point(plan, count, NULL, NULL, NULL, NULL, &err), VEIL_ERR_ARGUMENT);
}

/*
 * The four steps with the bundle and the sets through the wire format: the outputs against the plaintext
 * program (measured bound: tol), argmax agreement. Returns the worst error.
 */
static double check_encrypted(veil_model *m, const veil_plan *plan, size_t rows, unsigned seed, double tol)
{
    veil_error err = {0};
    const size_t n = veil_model_input_width(m), w = m->program.out_width;
    double *x = calloc(rows * n, sizeof *x), *y = calloc(rows * w, sizeof *y), *raw = calloc(rows * w, sizeof *raw);
    unsigned s = seed;
    for (size_t i = 0; i < rows * n; i++) x[i] = uniform(&s);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL, *server = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    veil_buffer kb = {0}, cb = {0}, again = {0};
    assert_int_equal(veil_eval_keys_save(&kb, ek, &err), VEIL_OK);
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    assert_int_equal((size_t)info.eval_key_bytes, kb.len); /* exact, the bootstrapping keys included */
    if (veil_eval_keys_load(&server, kb.data, kb.len, &err) != VEIL_OK) fail_msg("eval keys: %s", err.detail);
    assert_int_equal(server->boot.count, plan->boot.count);
    assert_non_null(server->encaps);
    assert_int_equal(veil_eval_keys_save(&again, server, &err), VEIL_OK);
    assert_int_equal(again.len, kb.len);
    assert_memory_equal(again.data, kb.data, kb.len);
    veil_ciphertexts *in = NULL, *server_in = NULL, *out = NULL, *mine = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&in, ks, x, rows, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_save(&cb, in, &err), VEIL_OK);
    assert_int_equal(veil_plan_input_bytes(plan, rows), cb.len);
    assert_int_equal(veil_ciphertexts_load(&server_in, NULL, server, cb.data, cb.len, &err), VEIL_OK);
    veil_buffer_free(&cb);
    const veil_status st = veil_model_evaluate(&out, m, server, server_in, NULL, NULL, &err);
    if (st != VEIL_OK) fail_msg("evaluate: %s", err.detail);
    assert_int_equal(veil_ciphertexts_save(&cb, out, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_load(&mine, ks, NULL, cb.data, cb.len, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_decrypt(y, raw, ks, mine, &err), VEIL_OK);
    double worst = 0, scale = 0;
    size_t agree = 0;
    for (size_t r = 0; r < rows; r++) {
        double ref[16];
        assert_int_equal(veil_program_run_plain(&m->program, x + r * n, ref, &err), VEIL_OK);
        size_t a = 0, b = 0;
        for (size_t i = 0; i < w; i++) {
            worst = fmax(worst, fabs(raw[r * w + i] - ref[i]));
            scale = fmax(scale, fabs(ref[i]));
            if (raw[r * w + i] > raw[r * w + a]) a = i;
            if (ref[i] > ref[b]) b = i;
        }
        agree += a == b;
    }
    printf("  %zu rows: worst error %.3g (outputs up to %.3g), argmax agrees on %zu\n", rows, worst, scale, agree);
    assert_true(worst <= tol);
    assert_int_equal(agree, rows);
    veil_buffer_free(&kb);
    veil_buffer_free(&cb);
    veil_buffer_free(&again);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(server_in);
    veil_ciphertexts_free(out);
    veil_ciphertexts_free(mine);
    veil_eval_keys_free(ek);
    veil_eval_keys_free(server);
    veil_keyset_free(ks);
    free(x);
    free(y);
    free(raw);
    return worst;
}

/* m's plan for req (the test fails with the error's text when it is refused). */
static veil_plan *planned(const veil_model *m, const veil_plan_request *req)
{
    veil_plan *plan = NULL;
    veil_error err = {0};
    if (veil_model_plan(&plan, m, req, &err) != VEIL_OK) fail_msg("%s", err.detail);
    return plan;
}

/* m planned for req with its bootstraps after the stages at[0 .. count), then run encrypted (check_encrypted). */
static void expect_boot_run(veil_model *m, const veil_plan_request *req, size_t count, const size_t *at, size_t rows,
                            unsigned seed)
{
    veil_plan *plan = planned(m, req);
    expect_points(plan, count, at);
    check_encrypted(m, plan, rows, seed, 1e-4);
    veil_plan_free(plan);
}

/* Two square layers: 5 levels, one bootstrap, after a Gemm (a square cannot be scaled for free). */
static void test_one_bootstrap(void **state)
{
    (void)state;
    veil_model *m = deep_mlp(11, 6, 4, 3, 2, NULL, 0, 1.0);
    const veil_plan_request req = boot_request();
    const size_t at[1] = {0}; /* after the first Gemm: the four stages after it fit the 4 levels (a tie with the
                                  second Gemm, both 4 ciphertexts and a shift of 1) */
    expect_boot_run(m, &req, 1, at, 8, 5);
    veil_model_free(m);
}

/* Four square layers: 9 levels, two bootstraps (after the second and the fourth Gemm). */
static void test_several_bootstraps(void **state)
{
    (void)state;
    veil_model *m = deep_mlp(12, 5, 4, 3, 4, NULL, 0, 1.0);
    const veil_plan_request req = boot_request();
    const size_t at[2] = {2, 6};
    expect_boot_run(m, &req, 2, at, 5, 6); /* a partial batch: the slots repeat its rows */
    veil_model_free(m);
}

/* Tanh approximated by Chebyshev polynomials: bootstraps after the polynomials too (their coefficients scaled). */
static void test_polynomial_activations(void **state)
{
    (void)state;
    veil_model *m = deep_mlp(13, 4, 4, 2, 2, "Tanh", 5, 1.0);
    veil_error err = {0};
    const veil_plan_request req = boot_request();
    veil_plan *plan = planned(m, &req);
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    int after_poly = 0;
    for (size_t k = 0; k < info.bootstrap_points; k++) {
        size_t stage;
        assert_int_equal(veil_plan_bootstrap_point(plan, k, &stage, NULL, NULL, NULL, &err), VEIL_OK);
        after_poly |= m->program.stages[stage].kind == VEIL_STAGE_CHEBYSHEV;
    }
    printf("  %zu bootstraps for depth %zu\n", info.bootstrap_points, info.depth);
    assert_true(after_poly);
    check_encrypted(m, plan, 8, 7, 1e-4);
    veil_plan_free(plan);
    veil_model_free(m);
}

/*
 * The latency packing: one sample per ciphertext in the periodic layout (its S values repeated over the slots), a
 * sparse bootstrap of S slots per point and sample; the points chosen by count (one bootstrap each, whatever
 * the width), the rotations' keys and the bootstrapping keys in one bundle.
 */
static void test_latency_bootstraps(void **state)
{
    (void)state;
    veil_model *m = deep_mlp(12, 5, 4, 3, 4, NULL, 0, 1.0);
    veil_plan_request req = boot_request();
    req.packing = VEIL_PACKING_LATENCY;
    req.batch = 0;
    veil_plan *plan = planned(m, &req);
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    assert_int_equal(info.packing, VEIL_PACKING_LATENCY);
    assert_int_equal(info.slots, 8); /* the widest layer (5), a power of two */
    assert_int_equal(info.bootstraps, info.bootstrap_points); /* one per point and sample */
    assert_true(info.rotations > plan->n_boot_galois); /* the diagonals' rotations too */
    const size_t at[2] = {2, 6};
    expect_points(plan, 2, at);
    check_encrypted(m, plan, 1, 8, 1e-4);
    veil_plan_free(plan);
    veil_model_free(m);
    /* Tanh approximations: bootstraps after the polynomials, whose padding slots' values (p(0)) are bounded too */
    m = deep_mlp(13, 4, 4, 2, 2, "Tanh", 5, 1.0);
    plan = planned(m, &req);
    veil_plan_get_info(plan, &info);
    printf("  latency, Tanh: %zu bootstraps for depth %zu\n", info.bootstrap_points, info.depth);
    assert_true(info.bootstrap_points >= 2);
    check_encrypted(m, plan, 1, 9, 1e-4);
    veil_plan_free(plan);
    veil_model_free(m);
}

/*
 * The bundle's schedule against the model (at evaluation): a shift too small for the values' bound, a point after
 * a square, a point that leaves a layer without levels, an inputs' range wider than the schedule was planned for:
 * refused before anything is computed, naming the point; through the wire format too (a schedule of an earlier
 * Veil, without the range, refused at load).
 */
static void test_schedule_mismatch_refused(void **state)
{
    (void)state;
    for (int latency = 0; latency <= 1; latency++) {
        veil_model *m = deep_mlp(12, 5, 4, 3, 4, NULL, 0, 1.0);
        veil_plan *plan = NULL;
        veil_error err = {0};
        veil_plan_request req = boot_request();
        if (latency) {
            req.packing = VEIL_PACKING_LATENCY;
            req.batch = 0;
        }
        assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
        veil_keyset *ks = NULL;
        veil_eval_keys *ek = NULL;
        veil_evaluator *ev = NULL;
        assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
        assert_int_equal(veil_evaluator_new(&ev, m, ek, 1, &err), VEIL_OK);
        veil_evaluator_free(ev);
        ev = NULL;
        const veil_ml_boot good = ek->boot;
        assert_true(good.shift[0] >= 1); /* values up to about 2 there */
        ek->boot.shift[0] = 0;
        assert_int_equal(veil_evaluator_new(&ev, m, ek, 1, &err), VEIL_ERR_MISMATCH);
        printf("  %s\n", err.detail);
        assert_non_null(strstr(err.detail, "outside [-1, 1]"));
        ek->boot = good;
        ek->boot.shift[0] = 10; /* within [-1, 1], but 2^10 times the error of the point's slots: past 2^-5 */
        assert_int_equal(veil_evaluator_new(&ev, m, ek, 1, &err), VEIL_ERR_MISMATCH);
        printf("  %s\n", err.detail);
        assert_non_null(strstr(err.detail, "past 2^-5"));
        ek->boot = good;
        ek->boot.after[0] = good.after[0] + 1; /* a square */
        assert_int_equal(veil_evaluator_new(&ev, m, ek, 1, &err), VEIL_ERR_MISMATCH);
        printf("  %s\n", err.detail);
        assert_non_null(strstr(err.detail, "does not fit"));
        ek->boot = good;
        ek->boot.count = 1; /* the second point dropped: the layers after the first run out of levels */
        assert_int_equal(veil_evaluator_new(&ev, m, ek, 1, &err), VEIL_ERR_MISMATCH);
        printf("  %s\n", err.detail);
        assert_non_null(strstr(err.detail, "levels"));
        ek->boot = good;
        const double lo0 = ek->boot_lo[0];
        ek->boot_lo[0] = -8; /* a wider range than planned: the first point's values outgrow its shift */
        assert_int_equal(veil_evaluator_new(&ev, m, ek, 1, &err), VEIL_ERR_MISMATCH);
        printf("  %s\n", err.detail);
        assert_non_null(strstr(err.detail, "outside [-1, 1]"));
        ek->boot_lo[0] = lo0;
        /* through the wire format: a bundle saved with the wrong shift loads (its bytes are well formed) and is
         * refused by the evaluator; a stored byte changed is refused at load */
        veil_buffer kb = {0};
        veil_eval_keys *server = NULL;
        ek->boot.shift[0] = 0;
        assert_int_equal(veil_eval_keys_save(&kb, ek, &err), VEIL_OK);
        ek->boot = good;
        assert_int_equal(veil_eval_keys_load(&server, kb.data, kb.len, &err), VEIL_OK);
        assert_int_equal(server->boot.shift[0], 0);
        assert_int_equal(veil_evaluator_new(&ev, m, server, 1, &err), VEIL_ERR_MISMATCH);
        assert_non_null(strstr(err.detail, "outside [-1, 1]"));
        veil_eval_keys_free(server);
        server = NULL;
        uint8_t *shift = NULL;
        for (size_t i = 0; i + 8 <= kb.len && !shift; i++)
            if (memcmp(kb.data + i, "VEIL-BT2", 8) == 0) shift = kb.data + i + 64 + 8;
        assert_non_null(shift);
        shift[0] = 1;
        assert_int_not_equal(veil_eval_keys_load(&server, kb.data, kb.len, &err), VEIL_OK);
        assert_null(server);
        /* the configuration's precision options travel with the schedule (else the evaluator would bootstrap
         * otherwise than planned): iterated bootstrapping returns a level lower than the schedule's, refused */
        veil_buffer_free(&kb);
        ek->boot.config.message_shift = 2;
        ek->boot.config.iterations = 2;
        ek->boot.config.iteration_shift = 11;
        assert_int_equal(veil_eval_keys_save(&kb, ek, &err), VEIL_OK);
        ek->boot = good;
        assert_int_equal(veil_eval_keys_load(&server, kb.data, kb.len, &err), VEIL_OK);
        assert_int_equal(server->boot.config.message_shift, 2);
        assert_int_equal(server->boot.config.iterations, 2);
        assert_int_equal(server->boot.config.iteration_shift, 11);
        assert_int_equal(veil_evaluator_new(&ev, m, server, 1, &err), VEIL_ERR_MISMATCH);
        printf("  %s\n", err.detail);
        assert_non_null(strstr(err.detail, "after a bootstrap"));
        veil_eval_keys_free(server);
        server = NULL;
        /* an earlier Veil's schedule (VEIL-BT1): no inputs' range to check it with, refused */
        uint8_t ext[64 + 16 * VEIL_ML_BOOT_MAX + 16 + 16 * 5] = {0};
        veil_ml_boot_ext_encode(ext, &good, 5, 1.0, plan->ckks.box_lo, plan->ckks.box_hi);
        veil_ml_boot decoded;
        double bound = 0, *lo = NULL, *hi = NULL;
        assert_int_equal(veil_ml_boot_ext_decode(&decoded, ext, 64 + 16 * good.count + 16 + 16 * 5, 100, 5, &bound,
                                                 &lo, &hi, &err), VEIL_OK);
        assert_int_equal(decoded.count, good.count);
        assert_true(bound == 1.0 && lo[0] == plan->ckks.box_lo[0]);
        free(lo);
        free(hi);
        /* the precision options' word: one of a schedule before they were carried (0) reads as none; values the
         * bootstrapper does not take, or bits past them, are refused */
        assert_int_equal(decoded.config.message_shift, 0);
        assert_true(decoded.config.iterations <= 1);
        const uint8_t bad_words[][8] = {{9}, {0, 3}, {0, 2, 31}, {0, 0, 0, 1}};
        for (size_t i = 0; i < sizeof bad_words / sizeof bad_words[0]; i++) {
            memcpy(ext + 56, bad_words[i], 8);
            assert_int_equal(veil_ml_boot_ext_decode(&decoded, ext, 64 + 16 * good.count + 16 + 16 * 5, 100, 5,
                                                     &bound, &lo, &hi, &err), VEIL_ERR_FORMAT);
        }
        memset(ext + 56, 0, 8);
        memcpy(ext, "VEIL-BT1", 8);
        assert_int_equal(veil_ml_boot_ext_decode(&decoded, ext, 64 + 16 * good.count, 100, 5, &bound, &lo, &hi, &err),
                         VEIL_ERR_FORMAT);
        printf("  %s\n", err.detail);
        assert_non_null(strstr(err.detail, "earlier Veil"));
        veil_buffer_free(&kb);
        veil_eval_keys_free(ek);
        veil_keyset_free(ks);
        veil_plan_free(plan);
        veil_model_free(m);
    }
}

/* Removes the evaluation keys' Galois key of element g (returns whether it was there). */
static int drop_key(veil_eval_keys *k, uint64_t g)
{
    for (size_t i = 0; i < k->n_galois; i++)
        if (veil_switch_key_galois_element(k->galois[i]) == g) {
            veil_switch_key_free(k->galois[i]);
            k->galois[i] = k->galois[--k->n_galois];
            return 1;
        }
    return 0;
}

/* Missing bootstrapping keys, a ciphertext at an unusable level: refused with clear errors. */
static void test_keys_and_levels_refused(void **state)
{
    (void)state;
    veil_model *m = deep_mlp(11, 6, 4, 3, 2, NULL, 0, 1.0);
    veil_plan *plan = NULL;
    veil_error err = {0};
    veil_plan_request req = boot_request();
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    veil_evaluator *ev = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    double x[6 * 2];
    unsigned s = 3;
    for (size_t i = 0; i < 12; i++) x[i] = uniform(&s);
    veil_ciphertexts *in = NULL, *out = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&in, ks, x, 2, NULL, &err), VEIL_OK);
    /* an input dropped to level 1: below where the plan starts */
    assert_int_equal(veil_ckks_mod_drop(ek->ctx, in->cts[3], in->cts[3], 1, &err), VEIL_OK);
    assert_int_equal(veil_model_evaluate(&out, m, ek, in, NULL, NULL, &err), VEIL_ERR_ARGUMENT);
    printf("  %s\n", err.detail);
    assert_non_null(strstr(err.detail, "below the level"));
    /* the encapsulation key missing */
    veil_ckks_encapsulation_key *encaps = ek->encaps;
    ek->encaps = NULL;
    assert_int_equal(veil_evaluator_new(&ev, m, ek, 1, &err), VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "encapsulation key"));
    ek->encaps = encaps;
    /* an encapsulation key of another weight */
    veil_ckks_encapsulation_key *other = NULL;
    assert_int_equal(veil_ckks_encapsulation_key_new(&other, ks->ctx, ks->sk, 16, NULL, &err), VEIL_OK);
    ek->encaps = other;
    veil_ciphertexts_free(in);
    in = NULL;
    assert_int_equal(veil_ciphertexts_encrypt(&in, ks, x, 2, NULL, &err), VEIL_OK);
    assert_int_not_equal(veil_model_evaluate(&out, m, ek, in, NULL, NULL, &err), VEIL_OK);
    printf("  %s\n", err.detail);
    assert_non_null(strstr(err.detail, "weight"));
    ek->encaps = encaps;
    veil_ckks_encapsulation_key_free(other);
    /* a bootstrapping Galois key missing: named before anything is computed */
    assert_true(drop_key(ek, plan->boot_galois[0]));
    assert_int_equal(veil_evaluator_new(&ev, m, ek, 1, &err), VEIL_ERR_MISMATCH);
    printf("  %s\n", err.detail);
    assert_non_null(strstr(err.detail, "bootstrapping key"));
    /* the bundle of a leveled plan for the same model: no schedule, too few levels */
    veil_plan *leveled = NULL;
    veil_plan_request lreq = {.packing = VEIL_PACKING_THROUGHPUT, .batch = 8, .have_range = 1, .range_lo = -1,
                              .range_hi = 1};
    assert_int_equal(veil_model_plan(&leveled, m, &lreq, &err), VEIL_OK);
    veil_plan_info info;
    veil_plan_get_info(leveled, &info);
    assert_int_equal(info.bootstrap_points, 0); /* 5 levels: leveled parameters hold it */
    veil_plan_free(leveled);
    veil_ciphertexts_free(in);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    veil_model_free(m);
}

/* Plans refused: values the plan cannot bound, no range, no place for a bootstrap, other packings and levels. */
static void test_plans_refused(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_plan *plan = NULL;
    veil_model *m = deep_mlp(11, 6, 4, 3, 2, NULL, 0, 1.0);
    veil_plan_request req = boot_request();
    req.range_lo = -1e5;
    req.range_hi = 1e5;
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_ARGUMENT);
    printf("  %s\n", err.detail);
    assert_non_null(strstr(err.detail, "narrow the inputs' range"));
    req = boot_request();
    req.have_range = 0;
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "inputs' range"));
    req = boot_request();
    req.flood = 1; /* flooded decryption with bootstraps: not yet */
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.detail, "--flood"));
    req = boot_request();
    req.security = VEIL_SECURITY_192;
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_UNSUPPORTED);
    req = boot_request();
    req.bootstrap = 0; /* the insecure test set only when bootstrapping is asked for */
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_ARGUMENT);
    req = boot_request();
    req.batch = 4096;
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_ARGUMENT);
    veil_model_free(m);
    /* five squares in a row after one Gemm: after the first bootstrap, no stage to scale before the next */
    m = square_chain(2, 5);
    req = boot_request();
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_UNSUPPORTED);
    printf("  %s\n", err.detail);
    assert_non_null(strstr(err.detail, "no place for a bootstrap"));
    veil_model_free(m);
    /* a Chebyshev activation deeper than a bootstrap's levels */
    m = deep_mlp(14, 4, 4, 2, 1, "Tanh", 31, 1.0);
    req = boot_request();
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_ERR_UNSUPPORTED);
    printf("  %s\n", err.detail);
    assert_non_null(strstr(err.detail, "levels alone"));
    veil_model_free(m);
    assert_null(plan);
}

/*
 * A plan with bootstraps through a plan file (the data owner makes its keys from it, without the model): the
 * schedule, the rotations and the bootstrapping keys' elements as planned, the exact bundle size the same.
 */
static void expect_plan_file(veil_plan *plan)
{
    veil_error err = {0};
    veil_buffer out = {0};
    veil_plan *back = NULL;
    assert_int_equal(veil_plan_save(&out, plan, &err), VEIL_OK);
    if (veil_plan_load(&back, out.data, out.len, &err) != VEIL_OK) fail_msg("plan file: %s", err.detail);
    veil_plan_info a, b;
    veil_plan_get_info(plan, &a);
    veil_plan_get_info(back, &b);
    assert_int_equal(b.packing, a.packing);
    assert_true(b.eval_key_bytes == a.eval_key_bytes);
    assert_int_equal(b.rotations, a.rotations);
    assert_int_equal(b.bootstrap_points, a.bootstrap_points);
    assert_int_equal(b.bootstrap_levels, a.bootstrap_levels);
    assert_true(b.bootstrap_key_bytes == a.bootstrap_key_bytes);
    assert_int_equal(back->boot.count, plan->boot.count);
    assert_memory_equal(back->boot.after, plan->boot.after, plan->boot.count * sizeof *plan->boot.after);
    assert_memory_equal(back->boot.shift, plan->boot.shift, plan->boot.count * sizeof *plan->boot.shift);
    assert_int_equal(back->n_boot_galois, plan->n_boot_galois);
    assert_memory_equal(back->boot_galois, plan->boot_galois, plan->n_boot_galois * sizeof *plan->boot_galois);
    assert_int_equal(back->n_steps, plan->n_steps);
    assert_int_equal(back->boot.config.message_shift, 0);
    veil_plan_free(back);
    /* the bootstrapping configuration's precision options travel with the schedule; iterated bootstrapping
     * returns a level lower than the schedule's: refused */
    veil_buffer precise = {0};
    const veil_ckks_bootstrap_config config = plan->boot.config;
    plan->boot.config.message_shift = 3;
    plan->boot.config.iteration_shift = 11;
    assert_int_equal(veil_plan_save(&precise, plan, &err), VEIL_OK);
    if (veil_plan_load(&back, precise.data, precise.len, &err) != VEIL_OK) fail_msg("plan file: %s", err.detail);
    assert_int_equal(back->boot.config.message_shift, 3);
    assert_int_equal(back->boot.config.iteration_shift, 11);
    veil_plan_free(back);
    back = NULL;
    veil_buffer_free(&precise);
    plan->boot.config.iterations = 2;
    assert_int_equal(veil_plan_save(&precise, plan, &err), VEIL_OK);
    plan->boot.config = config;
    assert_int_not_equal(veil_plan_load(&back, precise.data, precise.len, &err), VEIL_OK);
    printf("  %s\n", err.detail);
    assert_non_null(strstr(err.detail, "bootstrapper"));
    assert_null(back);
    veil_buffer_free(&precise);
    /* a byte of the schedule changed: refused (the set's checksum, or the schedule's checks) */
    for (size_t i = 0; i + 8 <= out.len; i++)
        if (memcmp(out.data + i, "VEIL-BT2", 8) == 0) {
            out.data[i + 16] ^= 1; /* the level */
            break;
        }
    back = NULL;
    assert_int_not_equal(veil_plan_load(&back, out.data, out.len, &err), VEIL_OK);
    assert_null(back);
    veil_buffer_free(&out);
}

/*
 * At 128-bit, without asking: a model deeper than any leveled set (8 Tanh layers of degree 31: 65 levels) is
 * planned with bootstraps on the balanced preset (a plan only: keys at N = 2^16 are for examples/deep); one
 * level less deep than the leveled sets hold is not.
 */
static void test_automatic_at_128_bits(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_plan *plan = NULL;
    veil_plan_info info;
    veil_model *m = deep_mlp(15, 4, 4, 2, 8, "Tanh", 31, 0.5);
    veil_plan_request req = {.packing = VEIL_PACKING_THROUGHPUT, .batch = 32, .have_range = 1, .range_lo = -1,
                             .range_hi = 1};
    if (veil_model_plan(&plan, m, &req, &err) != VEIL_OK) fail_msg("%s", err.detail);
    veil_plan_get_info(plan, &info);
    printf("  depth %zu: N = %zu, %zu bootstrap points, %zu bootstraps, %zu Galois keys, eval keys %.0f bytes\n",
           info.depth, info.n, info.bootstrap_points, info.bootstraps, info.rotations, info.eval_key_bytes);
    assert_int_equal(info.n, 65536);
    assert_int_equal(info.bootstrap_levels, 10);
    assert_true(info.bootstrap_points >= 6);
    for (size_t k = 0; k < info.bootstrap_points; k++) { /* after the tanh layers, bounded near 1 */
        size_t stage;
        int shift;
        assert_int_equal(veil_plan_bootstrap_point(plan, k, &stage, NULL, &shift, NULL, &err), VEIL_OK);
        assert_int_equal(m->program.stages[stage].kind, VEIL_STAGE_CHEBYSHEV);
        assert_true(shift <= 1);
    }
    /* both packings planned: the latency packing's estimate per sample beside throughput's per batch */
    printf("  latency %.3g s per sample, throughput %.3g s per batch of %zu\n", info.latency_sample_seconds,
           info.throughput_batch_seconds, info.throughput_batch);
    assert_true(info.latency_sample_seconds > 0);
    assert_true(info.throughput_batch_seconds == info.estimated_seconds && info.throughput_batch == 32);
    expect_plan_file(plan);
    veil_plan_free(plan);
    plan = NULL;
    req.packing = VEIL_PACKING_LATENCY;
    req.batch = 0;
    if (veil_model_plan(&plan, m, &req, &err) != VEIL_OK) fail_msg("%s", err.detail);
    veil_plan_get_info(plan, &info);
    assert_int_equal(info.bootstraps, info.bootstrap_points);
    assert_true(info.latency_sample_seconds == info.estimated_seconds && info.throughput_batch == 32768);
    expect_plan_file(plan);
    veil_plan_free(plan);
    plan = NULL;
    veil_model_free(m);
    m = deep_mlp(16, 4, 4, 2, 3, "Tanh", 31, 0.5); /* 25 levels: leveled */
    assert_int_equal(veil_model_plan(&plan, m, &req, &err), VEIL_OK);
    veil_plan_get_info(plan, &info);
    assert_int_equal(info.bootstrap_points, 0);
    veil_plan_free(plan);
    veil_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_bootstrap),
        cmocka_unit_test(test_several_bootstraps),
        cmocka_unit_test(test_polynomial_activations),
        cmocka_unit_test(test_latency_bootstraps),
        cmocka_unit_test(test_schedule_mismatch_refused),
        cmocka_unit_test(test_keys_and_levels_refused),
        cmocka_unit_test(test_plans_refused),
        cmocka_unit_test(test_automatic_at_128_bits),
    };
    if (getenv("VEIL_TEST_FILTER")) cmocka_set_test_filter(getenv("VEIL_TEST_FILTER")); /* one test, by name */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
