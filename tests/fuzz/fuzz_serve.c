/*
 * libFuzzer target for `veil serve`'s request handlers: an in-memory request (method, path, authorization,
 * body) through the same routing, authentication, ownership and handlers as a connection's requests
 * (veil_server_handle), without sockets. Every request must get a status (never a crash, hang, leak or
 * out-of-bounds access), and the server must stay consistent across requests.
 *
 * Input: "METHOD PATH\n" then "AUTH\n" then the body. In PATH, "@K" stands for the id of a bundle tenant a
 * stored at start. AUTH is "a", "b" or "x" (the tokens of tenants a, b and the admin), "-" (none), or an
 * Authorization header's value as it is. A body "@E" is a valid evaluation-key bundle and "@C" a valid
 * ciphertext set for it. The server is made once: a small model, three tokens, a's bundle. The admin scope may
 * revoke tokens, delete a's bundles and unload the model: after its requests they are restored.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "veil/veil.h"
#include "ml/ml_plan.h" /* veil_graph: the model built in memory */
#include "net/net_internal.h"

#define FEATURES 4

static veil_server *server;
static char tokens[3][VEIL_TOKEN_SIZE], auth[3][VEIL_TOKEN_SIZE + 8];
static char key_id[65], store[128];
static veil_buffer bundle, cts;

static void must(veil_status st, const veil_error *err)
{
    if (st != VEIL_OK) {
        fprintf(stderr, "fuzz_serve: setup failed: %s\n", err->detail);
        abort();
    }
}

static void init(void)
{
    veil_error err = {0};
    static char dir[] = "/tmp/veil-fuzz-serve-XXXXXX";
    if (!mkdtemp(dir)) abort();
    char models[128], path[160];
    snprintf(models, sizeof models, "%s/models", dir);
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(path, sizeof path, "%s/m.onnx", models);
    if (mkdir(models, 0700) != 0) abort();
    /* a logistic regression of FEATURES inputs */
    veil_graph g = {0};
    double w[FEATURES] = {0.5, -0.25, 0.125, 1}, b = 0.2;
    int64_t in_dims[2] = {-1, FEATURES}, wd[2] = {1, FEATURES}, bd[1] = {1};
    const char *gi[3] = {"x", "w", "b"}, *si[1] = {"logit"};
    must(veil_graph_add_input(&g, "x", in_dims, 2, &err), &err);
    must(veil_graph_add_init(&g, "w", w, wd, 2, &err), &err);
    must(veil_graph_add_init(&g, "b", &b, bd, 1, &err), &err);
    must(veil_graph_add_node(&g, "Gemm", gi, 3, "logit", "transB", 1, &err), &err);
    must(veil_graph_add_node(&g, "Sigmoid", si, 1, "p", NULL, 0, &err), &err);
    must(veil_graph_add_output(&g, "p", &err), &err);
    uint8_t *onnx = NULL;
    size_t onnx_len = 0;
    must(veil_graph_to_onnx(&g, &onnx, &onnx_len, &err), &err);
    veil_graph_clear(&g);
    must(veil_file_write_atomic(path, onnx, onnx_len, &err), &err);
    veil_model *m = NULL;
    must(veil_model_load_onnx(&m, onnx, onnx_len, NULL, &err), &err);
    free(onnx);
    /* keys and a ciphertext set for the latency plan (small) */
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = VEIL_PACKING_LATENCY};
    must(veil_model_plan(&plan, m, &req, &err), &err);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    must(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err), &err);
    double x[FEATURES] = {0.1, 0.2, -0.3, 0.4};
    veil_ciphertexts *in = NULL;
    must(veil_ciphertexts_encrypt(&in, ks, x, 1, NULL, &err), &err);
    must(veil_ciphertexts_save(&cts, in, &err), &err);
    must(veil_eval_keys_save(&bundle, ek, &err), &err);
    veil_ciphertexts_free(in);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    veil_model_free(m);
    /* the tenants and the server */
    const char *names[3] = {"a", "b", "ops"};
    for (int i = 0; i < 3; i++) {
        must(veil_token_add(store, names[i], i == 2, tokens[i], NULL, &err), &err);
        snprintf(auth[i], sizeof auth[i], "Bearer %s", tokens[i]);
    }
    veil_server_config cfg = {.models_dir = models, .store_dir = store, .listen = "127.0.0.1:0", .quiet = 1,
                              .max_keys = 8, .tenant_max_keys = 4};
    must(veil_server_open(&server, &cfg, &err), &err);
    veil_key_bundle_id(bundle.data, bundle.len, key_id);
    veil_server_request up = {.method = "POST", .url = "/v1/keys", .authorization = auth[0], .body = bundle.data,
                              .len = bundle.len};
    if (veil_server_handle(server, &up) != 201) abort();
}

/* A new token for tenant i (0: a, 2: the admin) after the admin scope revoked its tokens. */
static void new_token(int i)
{
    veil_error err = {0};
    must(veil_token_add(store, i == 2 ? "ops" : "a", i == 2, tokens[i], NULL, &err), &err);
    snprintf(auth[i], sizeof auth[i], "Bearer %s", tokens[i]);
}

/*
 * After a request of the admin scope, which may revoke tokens, delete a's bundles and unload the model, the
 * state the checks rely on comes back: a's token and bundle, the admin's token, the model loaded.
 */
static void restore_after_admin(void)
{
    char u[80];
    snprintf(u, sizeof u, "/v1/keys/%s", key_id);
    veil_server_request get = {.method = "GET", .url = u, .authorization = auth[0]};
    unsigned st = veil_server_handle(server, &get);
    if (st == 401) {
        new_token(0);
        get.authorization = auth[0];
        st = veil_server_handle(server, &get);
    }
    if (st == 404) {
        veil_server_request up = {.method = "POST", .url = "/v1/keys", .authorization = auth[0],
                                  .body = bundle.data, .len = bundle.len};
        char cl[32];
        snprintf(cl, sizeof cl, "%zu", bundle.len);
        up.content_length = cl;
        veil_server_handle(server, &up);
    }
    veil_server_request tenants = {.method = "GET", .url = "/v1/tenants", .authorization = auth[2]};
    if (veil_server_handle(server, &tenants) == 401) new_token(2);
    veil_server_request load = {.method = "POST", .url = "/v1/models/m/load", .authorization = auth[2]};
    veil_server_handle(server, &load);
}

/* The line at *at (up to '\n' or the end) into out, NUL-terminated; *at moves past it. */
static void line(const uint8_t **at, const uint8_t *end, char *out, size_t cap)
{
    size_t n = 0;
    while (*at < end && **at != '\n') {
        if (n + 1 < cap) out[n++] = (char)**at;
        (*at)++;
    }
    if (*at < end) (*at)++;
    out[n] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server) init();
    const uint8_t *at = data, *end = data + size;
    char first[600], who[600], url[700];
    line(&at, end, first, sizeof first);
    line(&at, end, who, sizeof who);
    char *space = strchr(first, ' ');
    if (!space) return 0;
    *space = 0;
    /* the path, "@K" replaced by the stored bundle's id */
    size_t n = 0;
    for (const char *p = space + 1; *p && n + 40 < sizeof url; p++) {
        if (p[0] == '@' && p[1] == 'K') {
            n += (size_t)snprintf(url + n, sizeof url - n, "%s", key_id);
            p++;
        } else {
            url[n++] = *p;
        }
    }
    url[n] = 0;
    if (url[0] != '/') return 0; /* libmicrohttpd hands on absolute paths only */
    veil_server_request q = {.method = first, .url = url, .body = at, .len = (size_t)(end - at)};
    if (!strcmp(who, "a")) q.authorization = auth[0];
    else if (!strcmp(who, "b")) q.authorization = auth[1];
    else if (!strcmp(who, "x")) q.authorization = auth[2];
    else if (strcmp(who, "-") != 0) q.authorization = who;
    if (q.len == 2 && !memcmp(at, "@E", 2)) q.body = bundle.data, q.len = bundle.len;
    else if (q.len == 2 && !memcmp(at, "@C", 2)) q.body = cts.data, q.len = cts.len;
    char cl[32];
    snprintf(cl, sizeof cl, "%zu", q.len);
    q.content_length = q.len ? cl : NULL;
    const unsigned status = veil_server_handle(server, &q);
    if (status < 200 || status > 599) abort(); /* every request is answered */
    if (q.authorization == auth[2]) { /* the admin scope may remove a's bundle and tokens: put them back */
        restore_after_admin();
        return 0;
    }
    /* a's bundle is a's: another tenant's DELETE never removes it */
    if (q.authorization != auth[0] && !strcmp(first, "DELETE")) {
        veil_server_request get = {.method = "GET", .url = "/v1/keys/", .authorization = auth[0]};
        char u[80];
        snprintf(u, sizeof u, "/v1/keys/%s", key_id);
        get.url = u;
        const unsigned got = veil_server_handle(server, &get);
        /* 429: a's requests past its rate (200 a second by default; the fuzzer runs over 1,000 inputs a second
         * on an idle machine), refused before any lookup: no answer about the bundle */
        if (got != 200 && got != 429) {
            fprintf(stderr, "fuzz_serve: a's bundle answered %u after %s %s\n", got, first, url);
            abort();
        }
    }
    if (q.authorization == auth[0] && !strcmp(first, "DELETE") && status == 200) { /* a deleted it: store it again */
        veil_server_request up = {.method = "POST", .url = "/v1/keys", .authorization = auth[0],
                                  .body = bundle.data, .len = bundle.len};
        veil_server_handle(server, &up);
    }
    return 0;
}
