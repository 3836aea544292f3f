/*
 * The service benchmark: the breast-cancer-sized logistic regression (30 features, Gemm + final Sigmoid
 * left to the client) served by veil_server over loopback, against veil_evaluator_run on the same
 * ciphertexts in the same process:
 *   serve_throughput  batches of 4096 samples: predictions per second, p50/p99, overhead over direct
 *   serve_latency     one sample per request (latency packing): p50/p99, overhead over direct
 * The server's side of a request: receive the body, validate and load the ciphertexts (seeded: their
 * uniform halves regenerated), evaluate, save, send.
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"
#include "veil/veil.h"
#include "ml/ml_plan.h"

#define FEATURES 30

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#include <sys/stat.h>
static int mkdir_p(const char *path)
{
    char buf[600];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0700);
            *p = '/';
        }
    return mkdir(buf, 0700) == 0 ? 0 : -1;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double lcg(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (double)(*s >> 8) / (double)(1u << 24) * 2 - 1;
}

static void write_model(const char *dir, veil_model **model)
{
    veil_error err = {0};
    veil_graph g = {0};
    double w[FEATURES], b = 0.2;
    unsigned s = 5;
    for (int i = 0; i < FEATURES; i++) w[i] = 0.5 * lcg(&s);
    int64_t in_dims[2] = {-1, FEATURES}, wd[2] = {1, FEATURES}, bd[1] = {1};
    const char *gi[3] = {"x", "w", "b"}, *si[1] = {"logit"};
    CHECK(veil_graph_add_input(&g, "x", in_dims, 2, &err));
    CHECK(veil_graph_add_init(&g, "w", w, wd, 2, &err));
    CHECK(veil_graph_add_init(&g, "b", &b, bd, 1, &err));
    CHECK(veil_graph_add_node(&g, "Gemm", gi, 3, "logit", "transB", 1, &err));
    CHECK(veil_graph_add_node(&g, "Sigmoid", si, 1, "p", NULL, 0, &err));
    CHECK(veil_graph_add_output(&g, "p", &err));
    uint8_t *bytes = NULL;
    size_t len = 0;
    CHECK(veil_graph_to_onnx(&g, &bytes, &len, &err));
    veil_graph_clear(&g);
    char path[700];
    snprintf(path, sizeof path, "%s/breast_cancer.onnx", dir);
    CHECK(veil_file_write_atomic(path, bytes, len, &err));
    CHECK(veil_model_load_onnx(model, bytes, len, NULL, &err));
    free(bytes);
}

/* the bench's tenant's token (veil_token_add into the server's store): requests are authenticated as in use */
static char bench_token[VEIL_TOKEN_SIZE];

static void run_case(veil_model *m, veil_server *srv, veil_packing packing, size_t samples, int reps, int threads)
{
    veil_error err = {0};
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = packing, .batch = packing == VEIL_PACKING_THROUGHPUT ? samples : 0};
    CHECK(veil_model_plan(&plan, m, &req, &err));
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    CHECK(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err));
    double *x = malloc(samples * FEATURES * sizeof *x);
    unsigned s = 9;
    for (size_t i = 0; i < samples * FEATURES; i++) x[i] = lcg(&s);
    veil_ciphertexts *in = NULL, *loaded = NULL;
    veil_buffer body = {0}, keys = {0};
    CHECK(veil_ciphertexts_encrypt(&in, ks, x, samples, NULL, &err));
    CHECK(veil_ciphertexts_save(&body, in, &err));
    CHECK(veil_eval_keys_save(&keys, ek, &err));

    /* direct: the evaluator on ciphertexts already in memory */
    veil_evaluator *ev = NULL;
    CHECK(veil_evaluator_new(&ev, m, ek, (size_t)threads, &err));
    double load_s = 1e9, save_s = 1e9;
    for (int r = 0; r < 5; r++) { /* what the server adds in compute: loading (validation, seeds) and saving */
        veil_ciphertexts_free(loaded);
        loaded = NULL;
        double t0 = now_s();
        CHECK(veil_ciphertexts_load(&loaded, NULL, ek, body.data, body.len, &err));
        load_s = fmin(load_s, now_s() - t0);
    }
    {
        veil_ciphertexts *out = NULL;
        CHECK(veil_evaluator_run(ev, &out, loaded, NULL, NULL, &err));
        for (int r = 0; r < 5; r++) {
            veil_buffer ob = {0};
            double t0 = now_s();
            CHECK(veil_ciphertexts_save(&ob, out, &err));
            save_s = fmin(save_s, now_s() - t0);
            veil_buffer_free(&ob);
        }
        veil_ciphertexts_free(out);
    }
    double *direct = malloc((size_t)reps * sizeof *direct), *served = malloc((size_t)reps * sizeof *served);
    for (int r = 0; r < reps; r++) {
        veil_ciphertexts *out = NULL;
        double t0 = now_s();
        CHECK(veil_evaluator_run(ev, &out, loaded, NULL, NULL, &err));
        direct[r] = now_s() - t0;
        veil_ciphertexts_free(out);
    }
    /* served: the same bytes over loopback */
    char url[64], id[65];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)veil_server_port(srv));
    veil_client *client = NULL;
    CHECK(veil_client_new(&client, url, &err));
    CHECK(veil_client_set_token(client, bench_token, &err));
    CHECK(veil_client_upload_keys(client, keys.data, keys.len, id, &err));
    for (int r = -1; r < reps; r++) { /* one warm-up: the server loads the keys at first use */
        veil_buffer answer = {0};
        double t0 = now_s();
        CHECK(veil_client_predict(client, "breast_cancer", id, body.data, body.len, &answer, &err));
        if (r >= 0) served[r] = now_s() - t0;
        veil_buffer_free(&answer);
    }
    qsort(direct, (size_t)reps, sizeof *direct, by_value);
    qsort(served, (size_t)reps, sizeof *served, by_value);
    const double p50d = direct[reps / 2], p50s = served[reps / 2], p99s = served[(reps * 99) / 100];
    bench_result res = {.us_median = p50s * 1e6, .us_min = served[0] * 1e6, .reps = reps};
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    char extra[400];
    snprintf(extra, sizeof extra,
             ",\"packing\":\"%s\",\"samples_per_request\":%zu,\"p99_us\":%.1f,\"direct_p50_us\":%.1f,"
             "\"overhead\":%.3f,\"overhead_us\":%.1f,\"load_us\":%.1f,\"save_us\":%.1f,\"predictions_per_s\":%.1f,"
             "\"request_bytes\":%zu",
             packing == VEIL_PACKING_LATENCY ? "latency" : "throughput", samples, p99s * 1e6, p50d * 1e6,
             (p50s - p50d) / p50d, (p50s - p50d) * 1e6, load_s * 1e6, save_s * 1e6, (double)samples / p50s, body.len);
    bench_emit(packing == VEIL_PACKING_LATENCY ? "serve_latency" : "serve_throughput", info.n, info.q_count, threads,
               res, extra);
    free(direct);
    free(served);
    free(x);
    veil_client_free(client);
    veil_evaluator_free(ev);
    veil_buffer_free(&body);
    veil_buffer_free(&keys);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(loaded);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
}

int bench_serve(const bench_config *cfg)
{
    veil_error err = {0};
    char dir[] = "/tmp/veil-bench-serve-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("veil-bench serve");
        return 1;
    }
    char models[600], store[600];
    snprintf(models, sizeof models, "%s/models", dir);
    snprintf(store, sizeof store, "%s/store", dir);
    if (mkdir_p(models) != 0) return 1;
    veil_model *m = NULL;
    write_model(models, &m);
    veil_server_config sc = {.models_dir = models, .store_dir = store, .listen = "127.0.0.1:0", .threads = 2,
                             .eval_threads = (size_t)cfg->threads, .quiet = 1};
    veil_server *srv = NULL;
    CHECK(veil_token_add(store, "bench", 0, bench_token, NULL, &err));
    CHECK(veil_server_start(&srv, &sc, &err));
    const char *only = getenv("VEIL_BENCH_SERVE_ONLY"); /* "throughput" or "latency" (for profiling) */
    if (!only || strcmp(only, "latency") != 0) run_case(m, srv, VEIL_PACKING_THROUGHPUT, 4096, cfg->quick ? 5 : 30, cfg->threads);
    if (!only || strcmp(only, "throughput") != 0) run_case(m, srv, VEIL_PACKING_LATENCY, 1, cfg->quick ? 20 : 200, cfg->threads);
    veil_server_stop(srv);
    veil_model_free(m);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "veil-bench serve: could not remove %s\n", dir);
    return 0;
}
