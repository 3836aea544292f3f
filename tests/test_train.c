/*
 * Encrypted training: linear and logistic regression on ciphertexts against the same algorithm in float64
 * (weights within 1e-3, identical classes), the files, the ONNX model it writes, and bad input.
 * Most cases use VEIL_SECURITY_NONE for a small ring (the algorithm is the same); one checks the plan at
 * 128 bits.
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

/* bootstrapped training against the same algorithm in float64: the weights' largest difference (measured: see
 * test_boot_logistic and test_boot_linear): 20 times the largest measured */
#define BOOT_WEIGHT_BOUND 1e-4 /* measured 2.2e-6 to 4.8e-6 (logistic, 2 refreshes), 1.8e-6 to 4.7e-6 (linear, 1) */

static double uniform(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (double)(*s >> 8) / (double)(1u << 24) * 2.0 - 1.0;
}

/* rows x features, features on different scales and offsets; labels from a noisy linear rule. */
static void make_data(unsigned seed, size_t rows, size_t features, int logistic, double **x, double **y)
{
    unsigned s = seed;
    *x = malloc(rows * features * sizeof **x);
    *y = malloc(rows * sizeof **y);
    for (size_t r = 0; r < rows; r++) {
        double t = 0.3;
        for (size_t j = 0; j < features; j++) {
            const double v = uniform(&s);
            (*x)[r * features + j] = 5.0 * (double)j + v * pow(3.0, (double)(j % 4)); /* raw: offsets, spreads */
            t += (j % 2 ? -1.5 : 2.0) * v / (double)(1 + j % 3);
        }
        t += 0.4 * uniform(&s);
        (*y)[r] = logistic ? (t > 0) : 100 + 20 * t;
    }
}

typedef struct trained {
    double *enc, *plain;
    size_t features;
} trained;

/* Keys, encryption, training and decryption through files (as the CLI does), and the plaintext run. */
static trained train_both_ex(const veil_train_request *request, const veil_train_options *options, size_t rows,
                             const double *x, const double *y)
{
    veil_error err = {0};
    const veil_train_request req = *request;
    const size_t features = req.features;
    veil_plan *plan = NULL;
    if (veil_train_plan(&plan, &req, &err) != VEIL_OK) fail_msg("%s", err.detail);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    veil_buffer kb = {0}, eb = {0}, db = {0}, mb = {0};
    assert_int_equal(veil_keyset_save(&kb, ks, &err), VEIL_OK);
    assert_int_equal(veil_eval_keys_save(&eb, ek, &err), VEIL_OK);
    veil_ciphertexts *data = NULL;
    if (veil_train_encrypt(&data, ks, x, y, rows, NULL, &err) != VEIL_OK) fail_msg("%s", err.detail);
    assert_int_equal(veil_ciphertexts_save(&db, data, &err), VEIL_OK);
    veil_plan_info info; /* the plan's sizes are exact */
    veil_plan_get_info(plan, &info);
    assert_int_equal(eb.len, (size_t)info.eval_key_bytes);
    assert_int_equal(db.len, veil_plan_input_bytes(plan, rows));
    veil_ciphertexts_free(data);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);

    /* the server: eval keys and data from bytes */
    veil_eval_keys *server = NULL;
    veil_ciphertexts *sdata = NULL, *model = NULL;
    assert_int_equal(veil_eval_keys_load(&server, eb.data, eb.len, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_load(&sdata, NULL, server, db.data, db.len, &err), VEIL_OK);
    const veil_train_options opts = *options;
    if (veil_train_run(&model, server, sdata, &opts, NULL, NULL, &err) != VEIL_OK) fail_msg("%s", err.detail);
    assert_int_equal(veil_ciphertexts_save(&mb, model, &err), VEIL_OK);
    veil_ciphertexts_free(model);
    veil_ciphertexts_free(sdata);
    veil_eval_keys_free(server);

    /* the owner */
    trained t = {calloc(features + 1, sizeof(double)), calloc(features + 1, sizeof(double)), features};
    veil_keyset *owner = NULL;
    veil_ciphertexts *m = NULL;
    assert_int_equal(veil_keyset_load(&owner, kb.data, kb.len, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_load(&m, owner, NULL, mb.data, mb.len, &err), VEIL_OK);
    if (veil_train_decrypt(t.enc, owner, m, &err) != VEIL_OK) fail_msg("%s", err.detail);
    veil_ciphertexts_free(m);
    veil_keyset_free(owner);
    double tmax = 0;
    if (veil_train_run_plain(t.plain, &req, &opts, x, y, rows, &tmax, &err) != VEIL_OK) fail_msg("%s", err.detail);
    veil_buffer_free(&kb);
    veil_buffer_free(&eb);
    veil_buffer_free(&db);
    veil_buffer_free(&mb);
    veil_plan_free(plan);
    return t;
}

static trained train_both(veil_train_task task, unsigned degree, size_t features, size_t rows, size_t iterations,
                          double l2, const double *x, const double *y)
{
    const veil_train_request req = {.task = task, .features = features, .iterations = iterations, .degree = degree,
                                    .security = VEIL_SECURITY_NONE, .ring_degree = 2048};
    const veil_train_options opts = {.iterations = iterations, .l2 = l2};
    return train_both_ex(&req, &opts, rows, x, y);
}

/* Weights within 1e-3 (relative to the weight's size when above 1) and the same class or close predictions. */
static void compare(const trained *t, veil_train_task task, const double *x, const double *y, size_t rows)
{
    double worst = 0;
    for (size_t j = 0; j <= t->features; j++) {
        const double d = fabs(t->enc[j] - t->plain[j]) / fmax(1.0, fabs(t->plain[j]));
        if (d > worst) worst = d;
    }
    print_message("    largest weight difference %.3g (weights %.4f %.4f ...)\n", worst, t->plain[0], t->plain[1]);
    assert_true(worst < 1e-3);
    size_t same = 0, correct = 0;
    for (size_t r = 0; r < rows; r++) {
        double a = t->enc[0], b = t->plain[0];
        for (size_t j = 0; j < t->features; j++) {
            a += t->enc[1 + j] * x[r * t->features + j];
            b += t->plain[1 + j] * x[r * t->features + j];
        }
        if (task == VEIL_TRAIN_LOGISTIC) {
            same += (a > 0) == (b > 0);
            correct += (b > 0) == (y[r] > 0.5);
        } else {
            same += fabs(a - b) < 1e-3 * fmax(1.0, fabs(b));
        }
    }
    if (task == VEIL_TRAIN_LOGISTIC) {
        print_message("    plaintext accuracy %.3f\n", (double)correct / (double)rows);
        assert_true(correct > rows * 7 / 10); /* it learned something */
    }
    assert_int_equal(same, rows);
}

static void logistic_case(unsigned degree, size_t iterations)
{
    const size_t features = 6, rows = 300, held = 100;
    double *x, *y;
    make_data(11 + degree, rows + held, features, 1, &x, &y);
    trained t = train_both(VEIL_TRAIN_LOGISTIC, degree, features, rows, iterations, 0, x, y);
    compare(&t, VEIL_TRAIN_LOGISTIC, x + rows * features, y + rows, held); /* the held-out split */
    free(t.enc);
    free(t.plain);
    free(x);
    free(y);
}

static void test_logistic_degree3(void **state)
{
    (void)state;
    logistic_case(3, 5);
}

static void test_logistic_degree5(void **state)
{
    (void)state;
    logistic_case(5, 3);
}

static void test_logistic_degree7(void **state)
{
    (void)state;
    logistic_case(7, 3);
}

static void test_linear_ridge(void **state)
{
    (void)state;
    const size_t features = 5, rows = 200;
    double *x, *y;
    make_data(5, rows, features, 0, &x, &y);
    trained t = train_both(VEIL_TRAIN_LINEAR, 0, features, rows, 4, 0.01, x, y);
    compare(&t, VEIL_TRAIN_LINEAR, x, y, rows);
    free(t.enc);
    free(t.plain);
    free(x);
    free(y);
}

/* The plan at 128 bits for the iDASH shape: 18 features, 7 iterations of degree 3. */
static void test_plan_idash(void **state)
{
    (void)state;
    veil_error err = {0};
    veil_train_request req = {.task = VEIL_TRAIN_LOGISTIC, .features = 18, .iterations = 7};
    veil_plan *plan = NULL;
    assert_int_equal(veil_train_plan(&plan, &req, &err), VEIL_OK);
    veil_plan_info pi;
    veil_train_info ti;
    veil_plan_get_info(plan, &pi);
    assert_int_equal(veil_plan_get_train_info(plan, &ti, &err), VEIL_OK);
    print_message("    N=%zu, %zu levels, %u-bit scale, %zu rotations, %zu records per ciphertext, up to %zu iterations\n",
                  pi.n, pi.q_count - 1, pi.scale_bits, pi.rotations, ti.records_per_ciphertext, ti.max_iterations);
    assert_int_equal(ti.block, 32);
    assert_int_equal(ti.depth_per_iteration, 5);
    assert_true(ti.max_iterations >= 7);
    assert_true(pi.q_count - 1 >= 1 + 5 * 6);
    assert_true(veil_security_max_log_qp(pi.n, VEIL_SECURITY_128) >= pi.log_qp);
    /* the plan survives a file; inference calls refuse it */
    veil_buffer b = {0};
    veil_plan *back = NULL;
    assert_int_equal(veil_plan_save(&b, plan, &err), VEIL_OK);
    assert_int_equal(veil_plan_load(&back, b.data, b.len, &err), VEIL_OK);
    assert_int_equal(veil_plan_get_train_info(back, &ti, &err), VEIL_OK);
    assert_int_equal(ti.features, 18);
    veil_buffer_free(&b);
    veil_plan_free(back);
    /* a depth no 128-bit ring holds is refused before any key is made when bootstrapping is declined */
    req.iterations = 40;
    req.bootstrap = -1;
    veil_plan *deep = NULL;
    assert_int_not_equal(veil_train_plan(&deep, &req, &err), VEIL_OK);
    print_message("    40 iterations: %s\n", err.detail);
    assert_non_null(strstr(err.detail, "fewer iterations"));
    veil_plan_free(plan);
    /* by default it bootstraps: N = 2^16 at 128 bits, 2 iterations between bootstraps, 19 of them for 40 */
    req.bootstrap = 0;
    assert_int_equal(veil_train_plan(&deep, &req, &err), VEIL_OK);
    veil_plan_get_info(deep, &pi);
    assert_int_equal(veil_plan_get_train_info(deep, &ti, &err), VEIL_OK);
    print_message("    40 iterations: N=%zu, log QP %u, dnum %zu, back to level %zu, %zu bootstraps, %.0f MB of keys "
                  "(%.0f MB bootstrapping's), %.3g s per bootstrap (model)\n", pi.n, pi.log_qp, pi.dnum,
                  ti.bootstrap_level, veil_train_bootstraps(&ti, 40), pi.eval_key_bytes / 1e6,
                  ti.bootstrap_key_bytes / 1e6, ti.bootstrap_seconds);
    assert_int_equal(pi.n, 65536);
    assert_true(veil_security_max_log_qp(pi.n, VEIL_SECURITY_128) >= pi.log_qp);
    assert_int_equal(ti.iterations_per_bootstrap, 2);
    assert_int_equal(veil_train_bootstraps(&ti, 40), 19);
    veil_plan_free(deep);
}

/* ---- bootstrapping past the leveled limit (insecure N = 1024, bootstrap asked for: seconds) ------------- */

static veil_train_request boot_request(veil_train_task task, size_t features, size_t iterations)
{
    return (veil_train_request){.task = task, .features = features, .iterations = iterations,
                                .degree = task == VEIL_TRAIN_LOGISTIC ? 3 : 0, .security = VEIL_SECURITY_NONE,
                                .ring_degree = 1024, .bootstrap = 1};
}

/* Largest weight difference, relative above 1. */
static double weight_difference(const trained *t)
{
    double worst = 0;
    for (size_t j = 0; j <= t->features; j++)
        worst = fmax(worst, fabs(t->enc[j] - t->plain[j]) / fmax(1.0, fabs(t->plain[j])));
    return worst;
}

/*
 * The placement: at the test ring a bootstrap returns the weights to a level that holds 2 iterations, so K
 * iterations take (K - 2) / 2 bootstraps, before iterations 3, 5, ... (from 0, the first from w = 0 taking one
 * level). A plan with bootstrapping is not saved as a file (refused, named).
 */
static void test_boot_plan(void **state)
{
    (void)state;
    veil_error err = {0};
    const size_t counts[][2] = {{2, 0}, {3, 0}, {4, 1}, {6, 2}, {9, 3}, {30, 14}};
    veil_train_request req = boot_request(VEIL_TRAIN_LOGISTIC, 6, 6);
    veil_plan *plan = NULL;
    if (veil_train_plan(&plan, &req, &err) != VEIL_OK) fail_msg("%s", err.detail);
    veil_train_info ti;
    veil_plan_info pi;
    veil_plan_get_info(plan, &pi);
    assert_int_equal(veil_plan_get_train_info(plan, &ti, &err), VEIL_OK);
    print_message("    logistic: back to level %zu of %zu, %zu iterations per bootstrap, %zu slots, %.0f bytes of "
                  "bootstrapping keys, %.3g s per bootstrap (model)\n", ti.bootstrap_level, pi.q_count - 1,
                  ti.iterations_per_bootstrap, ti.bootstrap_slots, ti.bootstrap_key_bytes, ti.bootstrap_seconds);
    assert_int_equal(ti.bootstrap_level, 2 * 5 + 1);
    assert_int_equal(ti.iterations_per_bootstrap, 2);
    assert_int_equal(ti.bootstrap_slots, 8);
    assert_int_equal(ti.max_iterations, 1000);
    assert_true(ti.bootstrap_key_bytes > 0 && ti.bootstrap_seconds > 0);
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++)
        assert_int_equal(veil_train_bootstraps(&ti, counts[i][0]), counts[i][1]);
    veil_buffer b = {0};
    assert_int_equal(veil_plan_save(&b, plan, &err), VEIL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.detail, "bootstrapping"));
    veil_plan_free(plan);
    /* linear regression (3 levels per iteration): level 7, 2 iterations per bootstrap */
    req = boot_request(VEIL_TRAIN_LINEAR, 5, 5);
    assert_int_equal(veil_train_plan(&plan, &req, &err), VEIL_OK);
    assert_int_equal(veil_plan_get_train_info(plan, &ti, &err), VEIL_OK);
    assert_int_equal(ti.bootstrap_level, 7);
    assert_int_equal(veil_train_bootstraps(&ti, 5), 1);
    veil_plan_free(plan);
    /* leveled keys: no bootstrap, as many iterations as the levels hold */
    req.bootstrap = 0;
    assert_int_equal(veil_train_plan(&plan, &req, &err), VEIL_OK);
    assert_int_equal(veil_plan_get_train_info(plan, &ti, &err), VEIL_OK);
    assert_int_equal(ti.bootstrap_level, 0);
    assert_int_equal(ti.max_iterations, 5);
    assert_int_equal(veil_train_bootstraps(&ti, 5), 0);
    veil_plan_free(plan);
    req.bootstrap = 2;
    assert_int_equal(veil_train_plan(&plan, &req, &err), VEIL_ERR_ARGUMENT);
    req.bootstrap = 1;
    req.flood = 1;
    assert_int_equal(veil_train_plan(&plan, &req, &err), VEIL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.detail, "bootstrapping"));
}

/* Logistic regression (Nesterov) for 6 iterations: 2 refreshes of the weights and the previous weights. */
static void test_boot_logistic(void **state)
{
    (void)state;
    const size_t features = 6, rows = 300, held = 100, K = 6;
    double *x, *y;
    make_data(23, rows + held, features, 1, &x, &y);
    const veil_train_request req = boot_request(VEIL_TRAIN_LOGISTIC, features, K);
    const veil_train_options opts = {.iterations = K};
    trained t = train_both_ex(&req, &opts, rows, x, y);
    const double d = weight_difference(&t);
    print_message("    %zu iterations, 2 bootstraps: largest weight difference %.3g (weights %.4f %.4f ...)\n", K, d,
                  t.plain[0], t.plain[1]);
    assert_true(d < BOOT_WEIGHT_BOUND);
    size_t same = 0;
    for (size_t r = rows; r < rows + held; r++) {
        double a = t.enc[0], b = t.plain[0];
        for (size_t j = 0; j < features; j++) {
            a += t.enc[1 + j] * x[r * features + j];
            b += t.plain[1 + j] * x[r * features + j];
        }
        same += (a > 0) == (b > 0);
    }
    print_message("    the same class on %zu of %zu held-out records\n", same, held);
    assert_true(same >= held - 1);
    free(t.enc);
    free(t.plain);
    free(x);
    free(y);
}

/* Linear regression for 5 iterations (one bootstrap) at the learning rate 1/(F + 1) that bounds its weights. */
static void test_boot_linear(void **state)
{
    (void)state;
    const size_t features = 5, rows = 200, K = 5;
    double *x, *y;
    make_data(7, rows, features, 0, &x, &y);
    const veil_train_request req = boot_request(VEIL_TRAIN_LINEAR, features, K);
    const veil_train_options opts = {.iterations = K, .learning_rate = 1.0 / 6, .l2 = 0.01};
    trained t = train_both_ex(&req, &opts, rows, x, y);
    const double d = weight_difference(&t);
    print_message("    %zu iterations, 1 bootstrap: largest weight difference %.3g (weights %.4f %.4f ...)\n", K, d,
                  t.plain[0], t.plain[1]);
    assert_true(d < BOOT_WEIGHT_BOUND);
    free(t.enc);
    free(t.plain);
    free(x);
    free(y);
}

/*
 * Bootstrapping's keys written one at a time (veil_keyset_generate_to_file, as `veil keygen --train`) are the
 * bundle veil_eval_keys_save writes from the same randomness, byte for byte, of the plan's exact size, and load
 * back with the encapsulation key and the Galois keys bootstrapping needs.
 */
static void test_boot_keys_file(void **state)
{
    (void)state;
    veil_error err = {0};
    const veil_train_request req = boot_request(VEIL_TRAIN_LOGISTIC, 6, 4);
    veil_plan *plan = NULL;
    assert_int_equal(veil_train_plan(&plan, &req, &err), VEIL_OK);
    veil_plan_info info;
    veil_train_info ti;
    veil_plan_get_info(plan, &info);
    assert_int_equal(veil_plan_get_train_info(plan, &ti, &err), VEIL_OK);
    const uint8_t seed[VEIL_SEED_BYTES] = {17};
    veil_prng *p1 = NULL, *p2 = NULL;
    assert_int_equal(veil_prng_new_seeded(&p1, seed, 0, &err), VEIL_OK);
    assert_int_equal(veil_prng_new_seeded(&p2, seed, 0, &err), VEIL_OK);
    veil_keyset *ks = NULL, *ks2 = NULL;
    veil_eval_keys *ek = NULL, *back = NULL;
    veil_buffer a = {0}, b = {0};
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, p1, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_eval_keys_save(&a, ek, &err), VEIL_OK);
    char dir[] = "/tmp/veil-boot-keys-XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/eval.keys", dir);
    assert_int_equal(veil_keyset_generate_to_file(&ks2, plan, path, p2, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_file_read(&b, path, (size_t)1 << 30, &err), VEIL_OK);
    assert_int_equal(b.len, (size_t)info.eval_key_bytes);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    assert_int_equal(veil_eval_keys_load(&back, b.data, b.len, &err), VEIL_OK);
    assert_non_null(back->encaps);
    assert_int_equal(veil_ckks_encapsulation_key_weight(back->encaps), VEIL_ML_BOOT_WEIGHT);
    assert_int_equal(back->n_galois, info.rotations + ti.bootstrap_galois_keys);
    assert_true(ti.bootstrap_galois_keys > 0);
    veil_train_info back_info;
    assert_int_equal(veil_eval_keys_get_train_info(back, &back_info, &err), VEIL_OK);
    assert_int_equal(back_info.bootstrap_level, ti.bootstrap_level);
    assert_int_equal(back_info.iterations_per_bootstrap, 2);
    unlink(path);
    assert_int_equal(rmdir(dir), 0);
    veil_buffer_free(&a);
    veil_buffer_free(&b);
    veil_prng_free(p1);
    veil_prng_free(p2);
    veil_eval_keys_free(back);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks2);
    veil_keyset_free(ks);
    veil_plan_free(plan);
}

/*
 * Bootstrapped training's refusals: a bundle without the encapsulation key (on load, and keys in memory at
 * the run), a missing bootstrapping Galois key (named), no iteration count, linear regression at a learning
 * rate whose weights have no bound, DP-GD.
 */
static void test_boot_refusals(void **state)
{
    (void)state;
    veil_error err = {0};
    const size_t features = 5, rows = 60;
    double *x, *y;
    make_data(3, rows, features, 0, &x, &y);
    const veil_train_request req = boot_request(VEIL_TRAIN_LINEAR, features, 5);
    veil_plan *plan = NULL;
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL, *back = NULL;
    veil_ciphertexts *data = NULL, *model = NULL;
    veil_buffer eb = {0};
    assert_int_equal(veil_train_plan(&plan, &req, &err), VEIL_OK);
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_train_encrypt(&data, ks, x, y, rows, NULL, &err), VEIL_OK);
    veil_train_options opts = {.iterations = 0, .learning_rate = 1.0 / 6};
    assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "give it"));
    opts.iterations = 5;
    opts.learning_rate = 1;
    assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_UNSUPPORTED);
    print_message("    lr 1: %s\n", err.detail);
    assert_non_null(strstr(err.detail, "learning rate of at most"));
    opts.learning_rate = 1.0 / 6;
    /* a bootstrapping Galois key gone (the last one the bundle holds): named before any work */
    ek->n_galois--;
    assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_MISMATCH);
    print_message("    %s\n", err.detail);
    assert_non_null(strstr(err.detail, "lack bootstrapping's Galois key"));
    ek->n_galois++;
    /* without the encapsulation key: the saved bundle is refused on load, the keys in memory at the run */
    veil_ckks_encapsulation_key_free(ek->encaps);
    ek->encaps = NULL;
    assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_MISMATCH);
    assert_non_null(strstr(err.detail, "no bootstrapping keys"));
    assert_int_equal(veil_eval_keys_save(&eb, ek, &err), VEIL_OK);
    assert_int_equal(veil_eval_keys_load(&back, eb.data, eb.len, &err), VEIL_ERR_FORMAT);
    print_message("    %s\n", err.detail);
    assert_non_null(strstr(err.detail, "lacks bootstrapping's encapsulation key"));
    assert_null(model);
    veil_buffer_free(&eb);
    veil_ciphertexts_free(data);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    free(x);
    free(y);
}

/* veil_train_split's exchange: failing, and handing back 16 bytes of junk as process 1's part */
static int exchange_fails(void *arg, const veil_buffer *mine, veil_buffer *all)
{
    (void)arg;
    (void)mine;
    (void)all;
    return -1;
}

static int exchange_junk(void *arg, const veil_buffer *mine, veil_buffer *all)
{
    (void)arg;
    (void)mine;
    all[1].data = calloc(16, 1);
    all[1].len = all[1].data ? 16 : 0;
    return all[1].data ? 0 : -1;
}

/* an exchange at which the other process had no ciphertext of records (all[] left empty) */
static int exchange_empty(void *arg, const veil_buffer *mine, veil_buffer *all)
{
    (void)arg;
    (void)mine;
    (void)all;
    return 0;
}

/*
 * veil_train_run_serialized (each process loads only its share of the records): alone, the model of
 * veil_train_run byte for byte; as part 1 of 2 when part 0 has no ciphertext of records (the other's part
 * empty), the same bytes again, loaded without the set's digest; part 0 of 2, holding no record, trains without
 * touching the records it did not load; a changed byte or a set of another kind refused, nothing out.
 */
static void check_run_serialized(const veil_eval_keys *ek, const veil_ciphertexts *data, veil_train_options opts)
{
    veil_error err = {0};
    veil_buffer db = {0}, want = {0}, got = {0};
    veil_ciphertexts *model = NULL;
    assert_int_equal(veil_ciphertexts_save(&db, data, &err), VEIL_OK);
    assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_save(&want, model, &err), VEIL_OK);
    veil_ciphertexts_free(model);
    model = NULL;
    assert_int_equal(veil_train_run_serialized(&model, ek, &db, 1, &opts, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_save(&got, model, &err), VEIL_OK);
    assert_true(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
    veil_ciphertexts_free(model);
    veil_buffer_free(&got);
    model = NULL;
    assert_int_equal(veil_ciphertexts_rows(data) <= 256, 1); /* one ciphertext of records: part 1 holds it */
    veil_train_split sp = {.part = 1, .parts = 2, .exchange = exchange_empty};
    opts.split = &sp;
    assert_int_equal(veil_train_run_serialized(&model, ek, &db, 1, &opts, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_save(&got, model, &err), VEIL_OK);
    assert_true(got.len == want.len && memcmp(got.data, want.data, got.len) == 0);
    veil_ciphertexts_free(model);
    veil_buffer_free(&got);
    model = NULL;
    sp.part = 0;
    assert_int_equal(veil_train_run_serialized(&model, ek, &db, 1, &opts, NULL, NULL, &err), VEIL_OK);
    veil_ciphertexts_free(model);
    model = NULL;
    opts.split = NULL;
    db.data[db.len / 2] ^= 4; /* a byte of a ciphertext of records */
    assert_int_equal(veil_train_run_serialized(&model, ek, &db, 1, &opts, NULL, NULL, &err), VEIL_ERR_FORMAT);
    assert_null(model);
    db.data[db.len / 2] ^= 4;
    assert_int_equal(veil_train_run_serialized(&model, ek, &want, 1, &opts, NULL, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_null(model);
    veil_buffer_free(&db);
    veil_buffer_free(&want);
}

static void test_bad_input(void **state)
{
    (void)state;
    veil_error err = {0};
    const size_t features = 3, rows = 40;
    veil_train_request req = {.task = VEIL_TRAIN_LOGISTIC, .features = features, .iterations = 2,
                              .security = VEIL_SECURITY_NONE, .ring_degree = 1024};
    veil_plan *plan = NULL;
    assert_int_equal(veil_train_plan(&plan, &req, &err), VEIL_OK);
    veil_keyset *ks = NULL, *other = NULL;
    veil_eval_keys *ek = NULL, *other_ek = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    assert_int_equal(veil_keyset_generate(&other, &other_ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    double *x, *y;
    make_data(3, rows, features, 1, &x, &y);
    veil_ciphertexts *data = NULL;

    y[7] = 2;
    assert_int_equal(veil_train_encrypt(&data, ks, x, y, rows, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "row 8"));
    y[7] = NAN;
    assert_int_equal(veil_train_encrypt(&data, ks, x, y, rows, NULL, &err), VEIL_ERR_ARGUMENT);
    y[7] = 1;
    const double keep = x[5 * features + 1];
    x[5 * features + 1] = INFINITY;
    assert_int_equal(veil_train_encrypt(&data, ks, x, y, rows, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "row 6, feature 2"));
    x[5 * features + 1] = keep;
    double *flat = malloc(rows * features * sizeof *flat);
    memcpy(flat, x, rows * features * sizeof *flat);
    for (size_t r = 0; r < rows; r++) flat[r * features + 2] = 4.5;
    assert_int_equal(veil_train_encrypt(&data, ks, flat, y, rows, NULL, &err), VEIL_ERR_ARGUMENT);
    assert_non_null(strstr(err.detail, "feature 3 has no variance"));
    assert_null(data);

    assert_int_equal(veil_train_encrypt(&data, ks, x, y, rows, NULL, &err), VEIL_OK);
    veil_ciphertexts *model = NULL;
    /* more iterations than the keys allow: refused before any work */
    veil_train_options opts = {.iterations = 3};
    veil_train_info ti;
    assert_int_equal(veil_eval_keys_get_train_info(ek, &ti, &err), VEIL_OK);
    opts.iterations = ti.max_iterations + 1;
    assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.detail, "allow at most"));
    assert_null(model);
    /* bad options */
    opts.iterations = 1;
    opts.learning_rate = -1;
    assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_ARGUMENT);
    opts.learning_rate = 0;
    opts.l2 = NAN;
    assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_ARGUMENT);
    opts.l2 = 0;
    /* a split over processes (veil_train_split): a part out of range or no exchange refused, DP-GD split refused;
     * an exchange that fails, or hands back bytes that are no ciphertext, fails the training with nothing out */
    assert_true(ti.max_iterations >= 2); /* the keys' 2 iterations */
    {
        veil_train_split sp = {.part = 2, .parts = 2};
        opts.split = &sp;
        assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_ARGUMENT);
        sp.part = 0;
        assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_ARGUMENT);
        sp.exchange = exchange_fails;
        opts.dp_epsilon = 1;
        opts.dp_delta = 1e-6;
        assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_UNSUPPORTED);
        opts.dp_epsilon = opts.dp_delta = 0;
        opts.iterations = 2; /* the first iteration needs no records: the exchange comes at the second */
        assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_IO);
        assert_non_null(strstr(err.detail, "exchange"));
        assert_null(model);
        sp.exchange = exchange_junk;
        assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_FORMAT);
        assert_non_null(strstr(err.detail, "process 1"));
        assert_null(model);
        opts.split = NULL;
        opts.iterations = 1;
    }
    check_run_serialized(ek, data, opts);
    /* the data under other keys: refused, in memory and from a file */
    assert_int_equal(veil_train_run(&model, other_ek, data, &opts, NULL, NULL, &err), VEIL_ERR_MISMATCH);
    veil_buffer db = {0};
    veil_ciphertexts *loaded = NULL;
    assert_int_equal(veil_ciphertexts_save(&db, data, &err), VEIL_OK);
    assert_int_equal(veil_ciphertexts_load(&loaded, NULL, other_ek, db.data, db.len, &err), VEIL_ERR_MISMATCH);
    /* corrupted data files fail cleanly (their integrity digest) */
    for (size_t i = 0; i < 200; i++) {
        const size_t at = (i * 7919u) % db.len;
        db.data[at] ^= (uint8_t)(1u << (i % 8));
        assert_int_equal(veil_ciphertexts_load(&loaded, NULL, ek, db.data, db.len, &err), VEIL_ERR_FORMAT);
        assert_null(loaded);
        db.data[at] ^= (uint8_t)(1u << (i % 8));
    }
    assert_int_equal(veil_ciphertexts_load(&loaded, NULL, ek, db.data, db.len / 2, &err), VEIL_ERR_FORMAT);
    /* training keys and inference calls do not mix */
    double out[4];
    assert_int_equal(veil_ciphertexts_encrypt(&loaded, ks, x, rows, NULL, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(veil_ciphertexts_decrypt(out, NULL, ks, data, &err), VEIL_ERR_ARGUMENT);
    assert_int_equal(veil_train_decrypt(out, ks, data, &err), VEIL_ERR_ARGUMENT);
    /* a model decrypted with other keys */
    assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_OK);
    double w[4];
    assert_int_equal(veil_train_decrypt(w, other, model, &err), VEIL_ERR_MISMATCH);
    assert_int_equal(veil_train_decrypt(w, ks, model, &err), VEIL_OK);
    /* a model or data set claiming more features than the keys (a server's forgery) is refused, not decoded
     * past the caller's buffer */
    model->meta.in_width = 7;
    model->meta.out_width = model->meta.width = 8;
    assert_int_equal(veil_train_decrypt(w, ks, model, &err), VEIL_ERR_MISMATCH);
    data->meta.in_width = 7;
    veil_ciphertexts *again = NULL;
    assert_int_equal(veil_train_run(&again, ek, data, &opts, NULL, NULL, &err), VEIL_ERR_MISMATCH);
    assert_null(again);
    veil_buffer_free(&db);
    veil_ciphertexts_free(model);
    veil_ciphertexts_free(data);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_eval_keys_free(other_ek);
    veil_keyset_free(other);
    veil_plan_free(plan);
    free(flat);
    free(x);
    free(y);
}

/*
 * Flooded decryption of trained weights (veil_train_decrypt_ex): refused when the parameters leave no room
 * for the noise (the default error bound at these scales); with a tight bound given, a set at a high level
 * (1 iteration of keys for 3) decrypts within the predicted noise of the plain weights, differently every
 * time, and the same with the same seeded noise.
 */
static void test_flooded_decrypt(void **state)
{
    (void)state;
    veil_error err = {0};
    const size_t features = 3, rows = 40;
    veil_train_request req = {.task = VEIL_TRAIN_LOGISTIC, .features = features, .iterations = 3,
                              .security = VEIL_SECURITY_NONE, .ring_degree = 1024};
    veil_plan *plan = NULL;
    assert_int_equal(veil_train_plan(&plan, &req, &err), VEIL_OK);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    assert_int_equal(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), VEIL_OK);
    double *x, *y;
    make_data(5, rows, features, 1, &x, &y);
    veil_ciphertexts *data = NULL, *model = NULL;
    assert_int_equal(veil_train_encrypt(&data, ks, x, y, rows, NULL, &err), VEIL_OK);
    veil_train_options opts = {.iterations = 1};
    assert_int_equal(veil_train_run(&model, ek, data, &opts, NULL, NULL, &err), VEIL_OK);
    double plain[4], again[4], f1[4], f2[4], f3[4];
    assert_int_equal(veil_train_decrypt(plain, ks, model, &err), VEIL_OK);
    veil_decrypt_options off = {0};
    assert_int_equal(veil_train_decrypt_ex(again, ks, model, &off, &err), VEIL_OK);
    assert_memory_equal(plain, again, sizeof plain);
    assert_int_equal(veil_train_decrypt_ex(again, ks, model, NULL, &err), VEIL_OK);
    assert_memory_equal(plain, again, sizeof plain);
    /* the conservative default bound: no room at a 2^3x scale */
    veil_decrypt_options fo = {.flood = 1};
    assert_int_equal(veil_train_decrypt_ex(f1, ks, model, &fo, &err), VEIL_ERR_NOISE);
    print_message("    default bound: %s\n", err.detail);
    assert_non_null(strstr(err.detail, "leaves no room"));
    /* bad options */
    fo.tolerance = NAN;
    assert_int_equal(veil_train_decrypt_ex(f1, ks, model, &fo, &err), VEIL_ERR_ARGUMENT);
    fo.tolerance = 0;
    fo.error_bits = 61;
    assert_int_equal(veil_train_decrypt_ex(f1, ks, model, &fo, &err), VEIL_ERR_ARGUMENT);
    /* a tight bound (as measured on known data) and a wider tolerance: flooded, within the noise */
    fo.error_bits = 1;
    fo.tolerance = 1e-2;
    assert_int_equal(veil_train_decrypt_ex(f1, ks, model, &fo, &err), VEIL_OK);
    assert_int_equal(veil_train_decrypt_ex(f2, ks, model, &fo, &err), VEIL_OK);
    double worst = 0;
    for (size_t j = 0; j <= features; j++) worst = fmax(worst, fabs(f1[j] - plain[j]) / fmax(1.0, fabs(plain[j])));
    print_message("    flooded (error 2^1, s = 30, k = 128): largest weight difference %.3g\n", worst);
    assert_true(worst > 0 && worst < 0.1);
    assert_true(memcmp(f1, f2, sizeof f1) != 0 && memcmp(f1, plain, sizeof f1) != 0);
    /* the noise comes from the prng given */
    uint8_t seed[VEIL_SEED_BYTES] = {7};
    veil_prng *p1 = NULL, *p2 = NULL;
    assert_int_equal(veil_prng_new_seeded(&p1, seed, 0, &err), VEIL_OK);
    assert_int_equal(veil_prng_new_seeded(&p2, seed, 0, &err), VEIL_OK);
    fo.prng = p1;
    assert_int_equal(veil_train_decrypt_ex(f2, ks, model, &fo, &err), VEIL_OK);
    fo.prng = p2;
    assert_int_equal(veil_train_decrypt_ex(f3, ks, model, &fo, &err), VEIL_OK);
    assert_memory_equal(f2, f3, sizeof f2);
    veil_prng_free(p1);
    veil_prng_free(p2);
    veil_ciphertexts_free(model);
    veil_ciphertexts_free(data);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    free(x);
    free(y);
}

/* The ONNX model of trained weights loads in Veil and predicts what the weights say. */
static void test_onnx_model(void **state)
{
    (void)state;
    veil_error err = {0};
    const double w[4] = {0.5, -1.25, 2.0, 0.75};
    const double x[6] = {1, 2, 3, -1, 0.5, 4};
    for (int task = 0; task < 2; task++) {
        veil_buffer b = {0};
        assert_int_equal(veil_train_to_onnx(&b, (veil_train_task)task, w, 3, &err), VEIL_OK);
        veil_model *m = NULL;
        if (veil_model_load_onnx(&m, b.data, b.len, NULL, &err) != VEIL_OK) fail_msg("%s", err.detail);
        double out[2];
        assert_int_equal(veil_model_run_plain(m, out, x, 2, &err), VEIL_OK);
        for (size_t r = 0; r < 2; r++) {
            double z = w[0] + w[1] * x[3 * r] + w[2] * x[3 * r + 1] + w[3] * x[3 * r + 2];
            if (task == VEIL_TRAIN_LOGISTIC) z = 1 / (1 + exp(-z));
            assert_true(fabs(out[r] - z) < 1e-6);
        }
        veil_model_free(m);
        veil_buffer_free(&b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_onnx_model),     cmocka_unit_test(test_plan_idash),       cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_linear_ridge),   cmocka_unit_test(test_logistic_degree3), cmocka_unit_test(test_logistic_degree5),
        cmocka_unit_test(test_logistic_degree7), cmocka_unit_test(test_flooded_decrypt),
        cmocka_unit_test(test_boot_plan),        cmocka_unit_test(test_boot_logistic),    cmocka_unit_test(test_boot_linear),
        cmocka_unit_test(test_boot_refusals),    cmocka_unit_test(test_boot_keys_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
