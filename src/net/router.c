/*
 * libmicrohttpd's request steps: the headers checked and routed, the body kept, the answer dispatched.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "net/serve_internal.h"

#define MAX_QUERY_ARGS 16 /* past it, 400 */

typedef struct header_scan {
    unsigned lengths, chunked, other_coding;
    const char *length;
    int conflict;
} header_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    header_scan *h = cls;
    if (!value) value = "";
    if (!strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH)) {
        if (h->length && strcmp(h->length, value) != 0) h->conflict = 1;
        h->length = value;
        h->lengths++;
    } else if (!strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING)) {
        if (!strcasecmp(value, "chunked")) h->chunked++;
        else h->other_coding++;
    }
    return MHD_YES;
}

/*
 * What libmicrohttpd lets through but the server refuses, at the headers: a Transfer-Encoding other than chunked
 * (501), Content-Length given twice with different values, not a number, or beside Transfer-Encoding (400), a
 * POST without a length (411), too many query arguments (400). 0 when none; else the status and *why.
 */
static unsigned malformed(struct MHD_Connection *c, const char *method, const char **why)
{
    header_scan h = {0};
    MHD_get_connection_values(c, MHD_HEADER_KIND, scan_header, &h);
    if (h.other_coding) return *why = "only the chunked Transfer-Encoding is implemented", 501;
    if (h.conflict) return *why = "Content-Length is given twice with different values", 400;
    if (h.lengths && h.chunked) return *why = "Content-Length and Transfer-Encoding together", 400;
    if (h.length && (!h.length[0] || strspn(h.length, "0123456789") != strlen(h.length)))
        return *why = "Content-Length is not a number", 400;
    if (!strcmp(method, "POST") && !h.lengths && !h.chunked)
        return *why = "a POST needs Content-Length (or Transfer-Encoding: chunked)", 411;
    if (MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, NULL, NULL) > MAX_QUERY_ARGS)
        return *why = "too many query arguments", 400;
    return 0;
}

/* A request's place: its endpoint, the name or id in its path (pointing into buf, a copy of the path), and an
 * admin operation (EP_ADMIN). */
typedef struct route_t {
    endpoint ep;
    admin_op op;
    const char *name;
    char buf[256];
} route_t;

/* /v1/tenants/NAME/tokens|keys and /v1/tokens/ID: the admin scope's paths. */
static endpoint route_admin(route_t *rt, int post, int del)
{
    char *p = rt->buf;
    if (!strncmp(p, "/v1/tokens/", 11) && del) {
        rt->name = p + 11;
        rt->op = ADMIN_REVOKE_TOKEN;
        return EP_ADMIN;
    }
    if (strncmp(p, "/v1/tenants/", 12) != 0) return EP_OTHER;
    char *rest = p + 12, *slash = strchr(rest, '/');
    if (!slash) return EP_OTHER;
    *slash = 0;
    rt->name = rest;
    if (!strcmp(slash + 1, "tokens")) rt->op = post ? ADMIN_ADD_TOKEN : del ? ADMIN_REVOKE_TENANT : ADMIN_NONE;
    else if (!strcmp(slash + 1, "keys") && del) rt->op = ADMIN_DELETE_TENANT_KEYS;
    return rt->op == ADMIN_NONE ? EP_OTHER : EP_ADMIN;
}

/* /v1/models/NAME[/plan|/predict|/load]. */
static endpoint route_model(route_t *rt, int get, int post, int del)
{
    char *rest = rt->buf + 11, *slash = strchr(rest, '/');
    rt->name = rest;
    if (!slash) {
        if (del) rt->op = ADMIN_UNLOAD_MODEL;
        return get ? EP_MODEL : del ? EP_ADMIN : EP_OTHER;
    }
    *slash = 0;
    if (get && !strcmp(slash + 1, "plan")) return EP_PLAN;
    if (post && !strcmp(slash + 1, "predict")) return EP_PREDICT;
    if (post && !strcmp(slash + 1, "weights")) return EP_WEIGHTS; /* an encrypted model's, for a key bundle */
    if (post && !strcmp(slash + 1, "load")) {
        rt->op = ADMIN_LOAD_MODEL;
        return EP_ADMIN;
    }
    return EP_OTHER;
}

static void route(route_t *rt, const char *method, const char *url)
{
    rt->name = NULL;
    rt->op = ADMIN_NONE;
    snprintf(rt->buf, sizeof rt->buf, "%s", url);
    const char *p = rt->buf;
    const int get = !strcmp(method, "GET"), post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
    if (get && !strcmp(p, "/healthz")) rt->ep = EP_HEALTH;
    else if (get && !strcmp(p, "/metrics")) rt->ep = EP_METRICS;
    else if (get && !strcmp(p, "/v1/models")) rt->ep = EP_MODELS;
    else if (get && !strcmp(p, "/v1/tenants")) rt->ep = EP_TENANTS;
    else if (post && !strcmp(p, "/v1/keys")) rt->ep = EP_KEYS_POST;
    else if (!strncmp(p, "/v1/keys/", 9)) {
        rt->name = p + 9;
        rt->ep = get ? EP_KEYS_GET : del ? EP_KEYS_DELETE : EP_OTHER;
    } else if (!strncmp(p, "/v1/models/", 11)) rt->ep = route_model(rt, get, post, del);
    else if (!strncmp(p, "/v1/groups/", 11)) {
        rt->name = p + 11;
        rt->ep = EP_GROUPS;
    }
    else rt->ep = route_admin(rt, post, del);
}

/* GET /v1/models/NAME, /plan and POST /predict. */
static enum MHD_Result dispatch_model(veil_server *s, struct MHD_Connection *c, request *r, const route_t *rt)
{
    model_entry *m = veil_srv_valid_name(rt->name, NAME_MAX_LEN - 1) ? veil_srv_find_model(s, rt->name) : NULL;
    if (!m) return veil_srv_send_error(c, r, 404, "no model named '%.100s' (GET /v1/models lists them)", rt->name);
    if (rt->ep == EP_MODEL) return veil_srv_describe_model(s, c, r, m);
    if (rt->ep == EP_PLAN) return veil_srv_send_plan(c, r, m);
    if (rt->ep == EP_WEIGHTS) return veil_srv_upload_weights(s, c, r, m, veil_srv_lookup(c, r, MHD_GET_ARGUMENT_KIND, "keys"));
    return veil_srv_predict(s, c, r, m, veil_srv_lookup(c, r, MHD_GET_ARGUMENT_KIND, "keys"));
}

/* 405 for a known path with another method, else 404. */
static enum MHD_Result no_endpoint(struct MHD_Connection *c, request *r, const char *url, const char *method)
{
    static const char *const known[] = {"/healthz", "/metrics", "/v1/models", "/v1/keys", "/v1/tenants", "/v1/tokens"};
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strncmp(url, known[i], strlen(known[i])))
            return veil_srv_send_error(c, r, 405, "%s is not allowed on %.100s (see docs/net.md)", method, url);
    return veil_srv_send_error(c, r, 404, "no such endpoint: %s %.100s", method, url);
}

static enum MHD_Result dispatch(veil_server *s, struct MHD_Connection *c, request *r, const char *url,
                                const char *method)
{
    route_t rt;
    route(&rt, method, url);
    if (r->too_large)
        return veil_srv_send_error(c, r, 413, "the body is larger than the %zu bytes this endpoint accepts", r->limit);
    switch (rt.ep) {
    case EP_HEALTH: return veil_srv_send_bytes(c, r, 200, "application/json", "{\"status\":\"ok\"}\n", 16);
    case EP_METRICS: return veil_srv_metrics(s, c, r);
    case EP_MODELS: return veil_srv_list_models(s, c, r);
    case EP_TENANTS: return veil_srv_list_tenants(s, c, r);
    case EP_ADMIN: return veil_srv_admin(s, c, r, rt.op, rt.name);
    case EP_KEYS_POST: return veil_srv_upload_keys(s, c, r);
    case EP_KEYS_GET: return veil_srv_get_keys(s, c, r, rt.name);
    case EP_KEYS_DELETE: return veil_srv_delete_keys(s, c, r, rt.name);
    case EP_GROUPS: return veil_srv_groups(s, c, r, rt.name);
    case EP_MODEL:
    case EP_PLAN:
    case EP_PREDICT:
    case EP_WEIGHTS: return dispatch_model(s, c, r, &rt);
    default: return no_endpoint(c, r, url, method);
    }
}

/* Counts the declared body (0: not declared; it is counted as it comes) in the memory budget, or answers 503
 * when it has no room; a body above the small bound goes to a temporary file from its first byte. */
static enum MHD_Result expect_body(veil_server *s, struct MHD_Connection *c, request *r, uint64_t declared)
{
    if (declared) {
        const uint64_t before = atomic_fetch_add(&s->body_bytes, declared);
        r->reserved = declared;
        if (before + declared + atomic_load(&s->cache_bytes) > s->cfg.memory_budget) {
            r->too_large = 1; /* drop the body */
            return veil_srv_over_budget(s, c, r, declared);
        }
    }
    veil_error err = {0};
    if (veil_body_expect(&r->store, s->tmp_dir, declared, &err) != VEIL_OK) {
        r->body_failed = 1;
        snprintf(r->body_error, sizeof r->body_error, "%s", err.detail);
    }
    return MHD_YES;
}

/* A piece of the body: counted in the memory budget beyond what was declared (a chunked body), and kept. */
static void take_body(veil_server *s, request *r, const char *data, size_t n)
{
    if (r->len + n > r->reserved) {
        const uint64_t more = r->len + n - r->reserved;
        const uint64_t before = atomic_fetch_add(&s->body_bytes, more);
        r->reserved += more;
        if (before + more + atomic_load(&s->cache_bytes) > s->cfg.memory_budget) {
            r->over_budget = 1; /* keep reading and dropping: the answer is 503 */
            veil_body_free(&r->store);
            return;
        }
    }
    veil_error err = {0};
    if (veil_body_append(&r->store, s->tmp_dir, data, n, &err) != VEIL_OK) {
        r->body_failed = 1;
        snprintf(r->body_error, sizeof r->body_error, "%s", err.detail);
        veil_body_free(&r->store);
        return;
    }
    r->len = r->store.len;
}

/* A new request's state, routed, with its body's bound. *m: a prediction's model (NULL: none, or unknown). */
static request *new_request(veil_server *s, const veil_server_request *q, const char *url, const char *method,
                            model_entry **m, route_t *rt)
{
    request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (q) {
        r->offline = q;
        r->query = strchr(q->url, '?');
        if (r->query) r->query++;
    }
    r->t0 = veil_srv_now_s();
    veil_body_init(&r->store);
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    route(rt, method, url);
    r->ep = rt->ep;
    r->limit = SMALL_BODY;
    if (r->ep == EP_KEYS_POST) r->limit = atomic_load(&s->key_limit);
    if (r->ep == EP_GROUPS) r->limit = VEIL_SRV_GROUP_BODY_MAX;
    if (r->ep == EP_WEIGHTS) r->limit = s->cfg.memory_budget / 2; /* a .ctm: the memory budget bounds it */
    *m = NULL;
    if (r->ep == EP_PREDICT) {
        *m = veil_srv_valid_name(rt->name, NAME_MAX_LEN - 1) ? veil_srv_find_model(s, rt->name) : NULL;
        if (*m) r->limit = (*m)->body_limit;
    }
    return r;
}

/* An answer from the headers alone (the body dropped unread): malformed, stopping, no valid token, an unknown
 * model, past the tenant's limits. MHD_YES with r->status 0 when the request goes on. */
static enum MHD_Result refuse_early(veil_server *s, struct MHD_Connection *c, request *r, const char *method,
                                    const model_entry *m, const char *name)
{
    const char *why = NULL;
    const unsigned bad = c ? malformed(c, method, &why) : 0;
    const int open_ep = r->ep == EP_HEALTH || r->ep == EP_METRICS;
    r->too_large = 1; /* drop the body, unless the request goes on (below) */
    if (bad) /* answered, and the connection closed: what follows the headers cannot be trusted */
        return veil_srv_send_error_with(c, r, bad, MHD_HTTP_HEADER_CONNECTION, "close", why);
    if (atomic_load(&s->stopping) && r->ep != EP_HEALTH) /* requests begun before stopping finish */
        return veil_srv_send_error(c, r, 503, "the server is shutting down");
    if (!open_ep && !veil_srv_authenticate(s, c, r))
        return veil_srv_send_error_with(c, r, 401, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"veil\"",
                                        "a valid bearer token is required (Authorization: Bearer TOKEN; "
                                        "veil token add makes one)");
    if (r->ep == EP_PREDICT && !m)
        return veil_srv_send_error(c, r, 404, "no model named '%.100s' (GET /v1/models lists them)", name);
    unsigned retry = 0;
    const char *refused = NULL;
    if (!open_ep && veil_srv_admit(s, r, &retry, &refused)) {
        char after[16];
        snprintf(after, sizeof after, "%u", retry);
        return veil_srv_send_error_with(c, r, 429, MHD_HTTP_HEADER_RETRY_AFTER, after, refused);
    }
    r->too_large = 0;
    if (r->ep == EP_PREDICT) return veil_srv_early_key(s, c, r, m);
    return MHD_YES;
}

/* The first step: the headers. */
static enum MHD_Result begin(veil_server *s, struct MHD_Connection *c, const veil_server_request *q, const char *url,
                             const char *method, void **state)
{
    model_entry *m = NULL;
    route_t rt;
    request *r = new_request(s, q, url, method, &m, &rt);
    if (!r) return MHD_NO;
    atomic_fetch_add(&s->in_flight, 1);
    *state = r;
    if (refuse_early(s, c, r, method, m, rt.name) != MHD_YES) return MHD_NO;
    if (r->status) return MHD_YES; /* answered from the headers: the body is dropped unread */
    const char *cl = veil_srv_lookup(c, r, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
    if (cl && announced > r->limit) {
        r->too_large = 1;
        return veil_srv_send_error(c, r, 413, "the body (%s bytes) is larger than the %zu bytes this endpoint accepts",
                                   cl, r->limit);
    }
    return expect_body(s, c, r, announced);
}

/* A piece of the body: kept, or dropped (answered already, too large, past the budget). */
static enum MHD_Result piece(veil_server *s, request *r, const char *data, size_t *size)
{
    const size_t n = *size;
    *size = 0;
    atomic_fetch_add(&s->bytes_in, n);
    if (r->status || r->too_large || r->over_budget || r->body_failed) return MHD_YES; /* dropped */
    if (r->len + n > r->limit) {
        r->too_large = 1; /* keep reading and dropping: the answer is 413 */
        veil_body_free(&r->store);
        return MHD_YES;
    }
    take_body(s, r, data, n);
    return MHD_YES;
}

/* The last step: the request arrived whole; the answer. */
static enum MHD_Result finish(veil_server *s, struct MHD_Connection *c, request *r, const char *url, const char *method)
{
    veil_srv_conn_mark(s, c, 1); /* the request has arrived whole: the deadline no longer applies */
    if (r->status) return MHD_YES; /* answered already (413 on the header) */
    if (r->too_large) return dispatch(s, c, r, url, method);
    if (r->over_budget) return veil_srv_over_budget(s, c, r, r->len);
    veil_error err = {0};
    if (!r->body_failed && veil_body_finish(&r->store, &r->body, &err) != VEIL_OK) r->body_failed = 1;
    if (r->body_failed)
        return veil_srv_send_error(c, r, 500, "the request's body could not be kept: %s", r->body_error);
    return dispatch(s, c, r, url, method);
}

/* One step of a request (libmicrohttpd's access handler): the headers (first call), a piece of the body, or
 * its end (the answer). c NULL: the offline request q (veil_server_handle). */
static enum MHD_Result step(veil_server *s, struct MHD_Connection *c, const veil_server_request *q, const char *url,
                            const char *method, const char *upload_data, size_t *upload_size, void **state)
{
    request *r = *state;
    if (!r) return begin(s, c, q, url, method, state);
    if (*upload_size) return piece(s, r, upload_data, upload_size);
    return finish(s, c, r, url, method);
}

enum MHD_Result veil_srv_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void)version;
    return step(cls, c, NULL, url, method, upload_data, upload_size, state);
}

void veil_srv_on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode code)
{
    veil_server *s = cls;
    request *r = *state;
    if (!r) return;
    const double dt = veil_srv_now_s() - r->t0;
    veil_srv_count_request(s, r, dt);
    if (!s->cfg.quiet) {
        char path[400];
        veil_srv_json_escape(path, sizeof path, r->path);
        fprintf(stderr, "{\"ts\":%lld,\"method\":\"%s\",\"path\":\"%s\",\"status\":%u,\"ms\":%.3f,\"in\":%zu,\"out\":%zu%s%s%s%s}\n",
                (long long)time(NULL), r->method, path, r->status, dt * 1e3, r->len, r->out_bytes,
                r->tenant[0] ? ",\"tenant\":\"" : "", r->tenant, r->tenant[0] ? "\"" : "",
                code == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : ",\"aborted\":true");
    }
    veil_srv_prediction_done(s, r);
    if (c) veil_srv_conn_mark(s, c, 0); /* the next request on this connection has its own deadline */
    veil_body_free(&r->store); /* a temporary file goes with it */
    atomic_fetch_sub(&s->body_bytes, r->reserved);
    if (r->key) veil_srv_release_key(s, r->key);
    free(r);
    *state = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

unsigned veil_server_handle(veil_server *s, const veil_server_request *q)
{
    char path[4096];
    const char *qm = strchr(q->url, '?');
    const size_t n = qm ? (size_t)(qm - q->url) : strlen(q->url);
    snprintf(path, sizeof path, "%.*s", (int)(n < sizeof path ? n : sizeof path - 1), q->url);
    void *state = NULL;
    size_t none = 0;
    if (step(s, NULL, q, path, q->method, NULL, &none, &state) != MHD_YES || !state) return 0;
    for (size_t at = 0; at < q->len;) { /* the body in pieces, as a connection delivers it */
        size_t piece = q->len - at < 65536 ? q->len - at : 65536, left = piece;
        if (step(s, NULL, q, path, q->method, (const char *)q->body + at, &left, &state) != MHD_YES) break;
        at += piece;
    }
    none = 0;
    step(s, NULL, q, path, q->method, NULL, &none, &state);
    const unsigned status = ((request *)state)->status;
    veil_srv_on_completed(s, NULL, &state, MHD_REQUEST_TERMINATED_COMPLETED_OK);
    return status;
}
