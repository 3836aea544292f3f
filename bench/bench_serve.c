/*
 * The service benchmark: the breast-cancer-sized logistic regression (30 features, Gemm + final Sigmoid
 * left to the client) served by veil_server over loopback, against veil_evaluator_run on the same
 * ciphertexts in the same process:
 *   serve_throughput  batches of 4096 samples: predictions per second, p50/p99, overhead over direct
 *   serve_latency     one sample per request (latency packing): p50/p99, overhead over direct
 * The server's side of a request: receive the body, validate and load the ciphertexts (seeded: their
 * uniform halves regenerated), evaluate, save, send.
 *   serve_attack      (issue 21) how long a legitimate client (127.0.0.1, a fresh connection) waits for /healthz
 *                     and for a one-sample prediction while 300 slow connections from 127.0.0.2 are open (each
 *                     sent a request's first lines, never its end), with the default limits; and the cost of
 *                     authentication and limits on a prediction: p50 against a --no-auth server with the limits
 *                     off, in the same binary (and on GET /v1/keys/ID, which does no other work)
 *   serve_memory      (issue 21) the peak memory (VmHWM) of a `veil serve` process (the veil program beside
 *                     veil-bench, default limits) at start, after 64 tenants' bundles are stored (throughput
 *                     keys, one per tenant), and after one prediction with each (all 64 loaded in the cache)
 *   serve_cluster     (issue 22; only with VEIL_BENCH_SERVE_ONLY=cluster, run by bench/scale_overhead.sh) the
 *                     same prediction sent to running servers, VEIL_BENCH_SERVE_ENDPOINTS="NAME=URL=TOKEN ..."
 *                     (one server on its folder store, a replica on PostgreSQL, the balancer in front of the
 *                     replicas), in turn, one request at a time: p50/p99/mean per endpoint and the overhead
 *                     over the first (of the p50s, and paired: the median of the rounds' ratios, with their
 *                     quartiles); VEIL_BENCH_SERVE_ROUNDS rounds (40). VEIL_BENCH_SERVE_ONLY=model writes the model
 *                     the servers must serve, breast_cancer.onnx, into VEIL_BENCH_SERVE_MODELS and stops.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
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

/* n connections from 127.0.0.2 to port, each sent a request's first lines and never its end: their sockets
 * in fds (-1 where one could not connect); how many connected. */
static int open_slow(uint16_t port, int *fds, int n)
{
    int connected = 0;
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET, .sin_port = htons(port)};
        inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
        inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
        static const char head[] = "GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n";
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&from, sizeof from) != 0 ||
            connect(fds[i], (struct sockaddr *)&to, sizeof to) != 0 ||
            send(fds[i], head, sizeof head - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof head - 1)) {
            if (fds[i] >= 0) close(fds[i]);
            fds[i] = -1;
            continue;
        }
        connected++;
    }
    return connected;
}

/* The p50 of reps one-sample predictions through client (after one warm-up). */
static double predict_p50(veil_client *client, const char *id, const veil_buffer *body, int reps)
{
    veil_error err = {0};
    double *t = malloc((size_t)reps * sizeof *t);
    for (int r = -1; r < reps; r++) {
        veil_buffer answer = {0};
        const double t0 = now_s();
        CHECK(veil_client_predict(client, "breast_cancer", id, body->data, body->len, &answer, &err));
        if (r >= 0) t[r] = now_s() - t0;
        veil_buffer_free(&answer);
    }
    qsort(t, (size_t)reps, sizeof *t, by_value);
    const double p50 = t[reps / 2];
    free(t);
    return p50;
}

/* The p50 of reps GET path through client: a request that does no work but authentication and limits. */
static double get_p50(veil_client *client, const char *path, int reps)
{
    veil_error err = {0};
    double *t = malloc((size_t)reps * sizeof *t);
    for (int r = -1; r < reps; r++) {
        veil_buffer answer = {0};
        const double t0 = now_s();
        CHECK(veil_client_get(client, path, &answer, &err));
        if (r >= 0) t[r] = now_s() - t0;
        veil_buffer_free(&answer);
    }
    qsort(t, (size_t)reps, sizeof *t, by_value);
    const double p50 = t[reps / 2];
    free(t);
    return p50;
}

/* serve_attack: srv has the default limits and tokens; open (no tokens, limits off) serves the same models. */
static void run_attack(veil_model *m, veil_server *srv, veil_server *open_srv, int reps, int threads)
{
    veil_error err = {0};
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = VEIL_PACKING_LATENCY};
    CHECK(veil_model_plan(&plan, m, &req, &err));
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    CHECK(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err));
    double x[FEATURES];
    unsigned s = 11;
    for (int i = 0; i < FEATURES; i++) x[i] = lcg(&s);
    veil_ciphertexts *in = NULL;
    veil_buffer body = {0}, keys = {0}, answer = {0};
    CHECK(veil_ciphertexts_encrypt(&in, ks, x, 1, NULL, &err));
    CHECK(veil_ciphertexts_save(&body, in, &err));
    CHECK(veil_eval_keys_save(&keys, ek, &err));
    char url[64], open_url[64], id[65];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)veil_server_port(srv));
    snprintf(open_url, sizeof open_url, "http://127.0.0.1:%u", (unsigned)veil_server_port(open_srv));
    veil_client *client = NULL, *open_client = NULL;
    CHECK(veil_client_new(&client, url, &err));
    CHECK(veil_client_set_token(client, bench_token, &err));
    CHECK(veil_client_new(&open_client, open_url, &err));
    CHECK(veil_client_upload_keys(client, keys.data, keys.len, id, &err));
    CHECK(veil_client_upload_keys(open_client, keys.data, keys.len, id, &err));
    /* the cost of authentication and limits: the same prediction, alternately, so that both see the same load */
    double limited = 1e9, open = 1e9, get_limited = 1e9, get_open = 1e9;
    char keys_path[100];
    snprintf(keys_path, sizeof keys_path, "/v1/keys/%s", id);
    for (int round = 0; round < 5; round++) { /* the best p50 of each: the machine's other load is noise */
        limited = fmin(limited, predict_p50(client, id, &body, reps));
        open = fmin(open, predict_p50(open_client, id, &body, reps));
        get_limited = fmin(get_limited, get_p50(client, keys_path, 2 * reps));
        get_open = fmin(get_open, get_p50(open_client, keys_path, 2 * reps));
    }
    /* 300 slow connections from 127.0.0.2; then a fresh client on 127.0.0.1 */
    enum { SLOW = 300 };
    int fds[SLOW];
    const int connected = open_slow(veil_server_port(srv), fds, SLOW);
    struct timespec settle = {1, 0};
    nanosleep(&settle, NULL);
    veil_client *fresh = NULL;
    CHECK(veil_client_new(&fresh, url, &err));
    CHECK(veil_client_set_token(fresh, bench_token, &err));
    double t0 = now_s();
    CHECK(veil_client_get(fresh, "/healthz", &answer, &err));
    const double healthz_s = now_s() - t0;
    veil_buffer_free(&answer);
    veil_client_free(fresh);
    fresh = NULL;
    CHECK(veil_client_new(&fresh, url, &err));
    CHECK(veil_client_set_token(fresh, bench_token, &err));
    t0 = now_s();
    CHECK(veil_client_predict(fresh, "breast_cancer", id, body.data, body.len, &answer, &err));
    const double predict_s = now_s() - t0;
    veil_buffer_free(&answer);
    veil_client_free(fresh);
    int held = 0; /* the slow connections the server still holds: not closed (a read would block) */
    for (int i = 0; i < SLOW; i++) {
        if (fds[i] < 0) continue;
        char c;
        const ssize_t got = recv(fds[i], &c, 1, MSG_DONTWAIT | MSG_PEEK);
        held += got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        close(fds[i]);
    }
    bench_result res = {.us_median = limited * 1e6, .us_min = limited * 1e6, .reps = reps};
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    char extra[600];
    snprintf(extra, sizeof extra,
             ",\"slow_connections\":%d,\"slow_held\":%d,\"healthz_under_attack_us\":%.1f,"
             "\"predict_under_attack_us\":%.1f,\"predict_p50_us\":%.1f,\"predict_open_p50_us\":%.1f,"
             "\"auth_limits_overhead_us\":%.1f,\"auth_limits_overhead\":%.4f,\"keys_get_p50_us\":%.1f,"
             "\"keys_get_open_p50_us\":%.1f",
             connected, held, healthz_s * 1e6, predict_s * 1e6, limited * 1e6, open * 1e6, (limited - open) * 1e6,
             (limited - open) / open, get_limited * 1e6, get_open * 1e6);
    bench_emit("serve_attack", info.n, info.q_count, threads, res, extra);
    veil_client_free(client);
    veil_client_free(open_client);
    veil_buffer_free(&body);
    veil_buffer_free(&keys);
    veil_ciphertexts_free(in);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
}

/* The peak resident memory (VmHWM) of process pid, in MB (-1 when unreadable). */
static double peak_mb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    double kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = strtod(line + 6, NULL);
    if (f) fclose(f);
    return kb < 0 ? -1 : kb / 1024;
}

/* `veil serve` (the veil program beside this one) on models and store, as a child process: its pid, and its port
 * read from its first line; 0 when it does not start. */
static pid_t spawn_server(const char *models, const char *store, uint16_t *port)
{
    char self[600], veil[700];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 0;
    self[n] = 0;
    char *slash = strrchr(self, '/');
    if (slash) *slash = 0;
    snprintf(veil, sizeof veil, "%s/veil", self);
    int out[2];
    if (pipe(out) != 0) return 0;
    const pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl(veil, veil, "serve", "--models", models, "--store", store, "--listen", "127.0.0.1:0", "--threads", "4",
              "--quiet", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    FILE *f = fdopen(out[0], "r");
    char line[128] = "";
    unsigned p = 0;
    if (pid > 0 && f && fgets(line, sizeof line, f)) sscanf(line, "listening on port %u", &p);
    if (f) fclose(f);
    *port = (uint16_t)p;
    if (pid > 0 && !p) kill(pid, SIGKILL), waitpid(pid, NULL, 0);
    return p ? pid : 0;
}

/* serve_memory: 64 tenants each store a bundle, then predict once with it, against a `veil serve` process. */
static void run_memory(veil_model *m, const char *dir, int threads)
{
    enum { BUNDLES = 64 };
    veil_error err = {0};
    char models[600], store[600], url[64];
    snprintf(models, sizeof models, "%s/models", dir);
    snprintf(store, sizeof store, "%s/memory-store", dir);
    static char tokens[BUNDLES][VEIL_TOKEN_SIZE];
    for (int i = 0; i < BUNDLES; i++) {
        char tenant[16];
        snprintf(tenant, sizeof tenant, "tenant%d", i);
        CHECK(veil_token_add(store, tenant, 0, tokens[i], NULL, &err));
    }
    uint16_t port = 0;
    const pid_t pid = spawn_server(models, store, &port);
    if (!pid) {
        fprintf(stderr, "veil-bench serve: the veil program did not start (serve_memory skipped)\n");
        return;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)port);
    const double at_start = peak_mb(pid);
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = VEIL_PACKING_THROUGHPUT};
    CHECK(veil_model_plan(&plan, m, &req, &err));
    veil_buffer bodies[BUNDLES];
    char ids[BUNDLES][65];
    size_t bundle_bytes = 0;
    double t0 = now_s();
    for (int i = 0; i < BUNDLES; i++) { /* each tenant's keys, stored; its one-sample request kept for later */
        veil_keyset *ks = NULL;
        veil_eval_keys *ek = NULL;
        veil_ciphertexts *in = NULL;
        veil_buffer keys = {0};
        veil_client *client = NULL;
        double x[FEATURES];
        unsigned s = 13u + (unsigned)i;
        for (int j = 0; j < FEATURES; j++) x[j] = lcg(&s);
        memset(&bodies[i], 0, sizeof bodies[i]);
        CHECK(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err));
        CHECK(veil_eval_keys_save(&keys, ek, &err));
        CHECK(veil_ciphertexts_encrypt(&in, ks, x, 1, NULL, &err));
        CHECK(veil_ciphertexts_save(&bodies[i], in, &err));
        CHECK(veil_client_new(&client, url, &err));
        CHECK(veil_client_set_token(client, tokens[i], &err));
        CHECK(veil_client_upload_keys(client, keys.data, keys.len, ids[i], &err));
        bundle_bytes = keys.len;
        veil_client_free(client);
        veil_buffer_free(&keys);
        veil_ciphertexts_free(in);
        veil_eval_keys_free(ek);
        veil_keyset_free(ks);
    }
    const double stored = peak_mb(pid), upload_s = now_s() - t0;
    for (int i = 0; i < BUNDLES; i++) {
        veil_client *client = NULL;
        veil_buffer answer = {0};
        CHECK(veil_client_new(&client, url, &err));
        CHECK(veil_client_set_token(client, tokens[i], &err));
        CHECK(veil_client_predict(client, "breast_cancer", ids[i], bodies[i].data, bodies[i].len, &answer, &err));
        veil_buffer_free(&answer);
        veil_buffer_free(&bodies[i]);
        veil_client_free(client);
    }
    const double used = peak_mb(pid);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    bench_result res = {.us_median = upload_s * 1e6 / BUNDLES, .us_min = upload_s * 1e6 / BUNDLES, .reps = BUNDLES};
    char extra[300];
    snprintf(extra, sizeof extra,
             ",\"bundles\":%d,\"bundle_bytes\":%zu,\"peak_mb_at_start\":%.1f,\"peak_mb_stored\":%.1f,"
             "\"peak_mb_after_predictions\":%.1f,\"per_bundle_loaded_mb\":%.2f",
             BUNDLES, bundle_bytes, at_start, stored, used, (used - at_start) / BUNDLES);
    bench_emit("serve_memory", info.n, info.q_count, threads, res, extra);
    veil_plan_free(plan);
}

/* serve_cluster: one endpoint under test */
typedef struct endpoint {
    char name[32], url[256], token[VEIL_TOKEN_SIZE + 1], id[65];
    veil_client *client;
    double *t;
} endpoint;

/* "NAME=URL=TOKEN ..." into e[]: how many (at most max), or -1 when malformed */
static int parse_endpoints(const char *spec, endpoint *e, int max)
{
    int n = 0;
    while (*spec) {
        while (*spec == ' ') spec++;
        if (!*spec) break;
        const size_t len = strcspn(spec, " ");
        char item[600];
        if (n == max || len >= sizeof item) return -1;
        memcpy(item, spec, len);
        item[len] = 0;
        spec += len;
        char *a = strchr(item, '='), *b = a ? strchr(a + 1, '=') : NULL;
        if (!a || !b) return -1;
        *a = *b = 0;
        memset(&e[n], 0, sizeof e[n]);
        if (strlen(item) >= sizeof e[n].name || strlen(a + 1) >= sizeof e[n].url ||
            strlen(b + 1) >= sizeof e[n].token)
            return -1;
        strcpy(e[n].name, item);
        strcpy(e[n].url, a + 1);
        strcpy(e[n].token, b + 1);
        n++;
    }
    return n;
}

/*
 * serve_cluster: the throughput case's request (4096 samples) sent to each endpoint in turn, `reps` rounds, one
 * request at a time (interleaved, so that the machine's load weighs on every endpoint alike, the order reversed
 * every other round); the keys uploaded
 * through each endpoint first (a replica behind the balancer reads them from PostgreSQL), four warm-ups each.
 */
static void run_cluster(veil_model *m, int reps, int threads)
{
    /* warm-up rounds: a balancer sends them to each replica in turn, which loads the keys at their first use */
    enum { MAX_ENDPOINTS = 8, WARM_UP = 4 };
    veil_error err = {0};
    endpoint e[MAX_ENDPOINTS];
    const char *spec = getenv("VEIL_BENCH_SERVE_ENDPOINTS");
    const int n = spec ? parse_endpoints(spec, e, MAX_ENDPOINTS) : -1;
    if (n < 1) {
        fprintf(stderr, "veil-bench serve: VEIL_BENCH_SERVE_ENDPOINTS=\"NAME=URL=TOKEN ...\" (at most %d)\n",
                MAX_ENDPOINTS);
        exit(2);
    }
    const size_t samples = 4096;
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = VEIL_PACKING_THROUGHPUT, .batch = samples};
    CHECK(veil_model_plan(&plan, m, &req, &err));
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    CHECK(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err));
    double *x = malloc(samples * FEATURES * sizeof *x);
    unsigned s = 9;
    for (size_t i = 0; i < samples * FEATURES; i++) x[i] = lcg(&s);
    veil_ciphertexts *in = NULL;
    veil_buffer body = {0}, keys = {0};
    CHECK(veil_ciphertexts_encrypt(&in, ks, x, samples, NULL, &err));
    CHECK(veil_ciphertexts_save(&body, in, &err));
    CHECK(veil_eval_keys_save(&keys, ek, &err));
    for (int i = 0; i < n; i++) {
        CHECK(veil_client_new(&e[i].client, e[i].url, &err));
        CHECK(veil_client_set_token(e[i].client, e[i].token, &err));
        CHECK(veil_client_upload_keys(e[i].client, keys.data, keys.len, e[i].id, &err));
        e[i].t = malloc((size_t)reps * sizeof *e[i].t);
        if (!e[i].t) exit(1);
    }
    for (int r = -WARM_UP; r < reps; r++)
        for (int k = 0; k < n; k++) {
            /* the order reversed every other round (A B C, C B A, ...): no endpoint always follows another */
            const int i = (r & 1) ? n - 1 - k : k;
            veil_buffer answer = {0};
            const double t0 = now_s();
            CHECK(veil_client_predict(e[i].client, "breast_cancer", e[i].id, body.data, body.len, &answer, &err));
            if (r >= 0) e[i].t[r] = now_s() - t0;
            veil_buffer_free(&answer);
        }
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    /* paired: the median over the rounds of endpoint i's time over the first's in the same round (the machine's
     * load drifts between rounds far more than within one) */
    double paired[MAX_ENDPOINTS] = {0}, paired_q1[MAX_ENDPOINTS] = {0}, paired_q3[MAX_ENDPOINTS] = {0};
    double *ratio = malloc((size_t)reps * sizeof *ratio);
    if (!ratio) exit(1);
    for (int i = 1; i < n; i++) {
        for (int r = 0; r < reps; r++) ratio[r] = e[i].t[r] / e[0].t[r];
        qsort(ratio, (size_t)reps, sizeof *ratio, by_value);
        paired[i] = ratio[reps / 2] - 1;
        paired_q1[i] = ratio[reps / 4] - 1; /* the quartiles of the rounds' ratios: how far the load moved them */
        paired_q3[i] = ratio[(3 * reps) / 4] - 1;
    }
    free(ratio);
    double first_p50 = 0, first_p10 = 0;
    for (int i = 0; i < n; i++) {
        double sum = 0;
        for (int r = 0; r < reps; r++) sum += e[i].t[r];
        qsort(e[i].t, (size_t)reps, sizeof *e[i].t, by_value);
        const double p50 = e[i].t[reps / 2], p99 = e[i].t[(reps * 99) / 100], p10 = e[i].t[reps / 10];
        if (i == 0) first_p50 = p50;
        if (i == 0) first_p10 = p10; /* the quieter moments': less of the machine's other load in it */
        bench_result res = {.us_median = p50 * 1e6, .us_min = e[i].t[0] * 1e6, .reps = reps};
        char extra[700];
        snprintf(extra, sizeof extra,
                 ",\"endpoint\":\"%.31s\",\"samples_per_request\":%zu,\"request_bytes\":%zu,\"p99_us\":%.1f,"
                 "\"mean_us\":%.1f,\"overhead_over\":\"%.31s\",\"overhead\":%.3f,\"overhead_us\":%.1f,"
                 "\"paired_overhead\":%.3f,\"paired_q1\":%.3f,\"paired_q3\":%.3f,\"p10_us\":%.1f,"
                 "\"p10_overhead\":%.3f",
                 e[i].name, samples, body.len, p99 * 1e6, sum / reps * 1e6, e[0].name, (p50 - first_p50) / first_p50,
                 (p50 - first_p50) * 1e6, paired[i], paired_q1[i], paired_q3[i], p10 * 1e6,
                 (p10 - first_p10) / first_p10);
        bench_emit("serve_cluster", info.n, info.q_count, threads, res, extra);
        free(e[i].t);
        veil_client_free(e[i].client);
    }
    free(x);
    veil_buffer_free(&body);
    veil_buffer_free(&keys);
    veil_ciphertexts_free(in);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
}

int bench_serve(const bench_config *cfg)
{
    const char *only_mode = getenv("VEIL_BENCH_SERVE_ONLY");
    if (only_mode && (!strcmp(only_mode, "model") || !strcmp(only_mode, "cluster"))) { /* issue 22: running servers */
        veil_model *m = NULL;
        const char *to = getenv("VEIL_BENCH_SERVE_MODELS");
        if (!strcmp(only_mode, "model") && !to) {
            fprintf(stderr, "veil-bench serve: VEIL_BENCH_SERVE_MODELS=DIR for the model\n");
            return 2;
        }
        char tmp[] = "/tmp/veil-bench-model-XXXXXX";
        if (!to && !(to = mkdtemp(tmp))) return 1;
        write_model(to, &m);
        if (!strcmp(only_mode, "cluster")) {
            const char *rounds = getenv("VEIL_BENCH_SERVE_ROUNDS"); /* 40 by default (10 with --quick), 4-1000 */
            const int reps = rounds ? atoi(rounds) : cfg->quick ? 10 : 40;
            if (reps < 4 || reps > 1000) {
                fprintf(stderr, "veil-bench serve: VEIL_BENCH_SERVE_ROUNDS is 4 to 1000\n");
                return 2;
            }
            run_cluster(m, reps, cfg->threads);
        }
        if (to == tmp) {
            char path[700];
            snprintf(path, sizeof path, "%s/breast_cancer.onnx", tmp);
            unlink(path);
            rmdir(tmp);
        }
        veil_model_free(m);
        return 0;
    }


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
                             .eval_threads = (size_t)cfg->threads, .quiet = 1,
                             .tenant_rps = 100000}; /* the limits on, the rate's never reached by the loops below */
    veil_server *srv = NULL;
    CHECK(veil_token_add(store, "bench", 0, bench_token, NULL, &err));
    CHECK(veil_server_start(&srv, &sc, &err));
    const char *only = only_mode; /* "throughput", "latency", "attack" or "memory" */
    if (!only || !strcmp(only, "throughput")) run_case(m, srv, VEIL_PACKING_THROUGHPUT, 4096, cfg->quick ? 5 : 30, cfg->threads);
    if (!only || !strcmp(only, "latency")) run_case(m, srv, VEIL_PACKING_LATENCY, 1, cfg->quick ? 20 : 200, cfg->threads);
    if (!only || !strcmp(only, "attack")) {
        char open_store[600];
        snprintf(open_store, sizeof open_store, "%s/open-store", dir);
        veil_server_config oc = sc; /* --no-auth, every limit off */
        oc.store_dir = open_store;
        oc.no_auth = 1;
        oc.tenant_rps = oc.tenant_max_predictions = oc.max_connections_per_address = VEIL_LIMIT_OFF;
        oc.request_deadline_s = VEIL_LIMIT_OFF;
        veil_server *open_srv = NULL;
        CHECK(veil_server_start(&open_srv, &oc, &err));
        run_attack(m, srv, open_srv, cfg->quick ? 20 : 100, cfg->threads);
        veil_server_stop(open_srv);
    }
    veil_server_stop(srv);
    if (!only || !strcmp(only, "memory")) run_memory(m, dir, cfg->threads);
    veil_model_free(m);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "veil-bench serve: could not remove %s\n", dir);
    return 0;
}
