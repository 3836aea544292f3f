/*
 * `veil serve`: models, a key store and encrypted predictions over HTTP/1.1 (libmicrohttpd, thread pool).
 * The server holds evaluation keys only: a body that is, or holds, a secret key is refused (422).
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif
#include <microhttpd.h>
#include <sodium.h>
#include "veil/net.h"
#include "veil/ml.h"
#include "core/core_internal.h"
#include "net/net_internal.h"

#define MAX_MODELS 64
#define MAX_STORED 4096
#define NAME_MAX_LEN 128
#define SMALL_BODY (64 * 1024)

typedef enum endpoint { EP_MODELS, EP_MODEL, EP_PLAN, EP_KEYS_POST, EP_KEYS_GET, EP_KEYS_DELETE, EP_PREDICT, EP_HEALTH,
                        EP_METRICS, EP_TENANTS, EP_OTHER, EP_COUNT } endpoint;
static const char *const endpoint_names[EP_COUNT] = {"models", "model", "plan", "keys_upload", "keys_get", "keys_delete",
                                                     "predict", "healthz", "metrics", "tenants", "other"};
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define N_BUCKETS (sizeof buckets / sizeof *buckets)
static const unsigned error_codes[] = {400, 401, 403, 404, 409, 411, 413, 422, 429, 431, 500, 501, 503};
static const char *const error_kinds[] = {"bad_request", "unauthorized", "forbidden", "not_found", "mismatch",
                                          "length_required", "too_large", "refused", "too_many",
                                          "headers_too_large", "internal", "not_implemented", "unavailable"};
#define N_ERROR_CODES (sizeof error_codes / sizeof *error_codes)

typedef struct model_entry {
    char name[NAME_MAX_LEN];
    veil_model *model;
    veil_plan *plans[2];
    veil_buffer plan_files[2];
    size_t body_limit;
    veil_side_options options; /* from DIR/NAME.json, when there is one */
    int has_side_file;
} model_entry;

/* A stored bundle; loaded (and its evaluator made) at first use. refs counts requests using it. Each tenant
 * that uploaded it owns it (STORE/owners/TENANT/ID): the others do not see it. */
typedef struct key_entry {
    char id[65];
    uint64_t bytes;
    char (*owners)[VEIL_TENANT_MAX + 1];
    size_t n_owners;
    veil_eval_keys *keys;
    veil_evaluator *ev;
    int model; /* index, -1 until loaded */
    int refs;
    int deleted;
    pthread_mutex_t load_lock;
    /* the cache (under the server's lock): the estimated bytes of keys and evaluator while loaded (or being
     * loaded; 0: not), when last used, and the model once known (-1: not yet) */
    uint64_t cached;
    unsigned long long last_used;
    int known_model;
} key_entry;

struct veil_server {
    veil_server_config cfg;
    char *models_dir, *store_dir, *keys_dir;
    model_entry models[MAX_MODELS];
    size_t n_models;
    key_entry *stored[MAX_STORED];
    size_t n_stored;
    uint64_t stored_bytes;
    pthread_mutex_t lock;
    struct MHD_Daemon *daemon;
    uint16_t port;
    size_t key_limit;
    atomic_int in_flight;
    atomic_int stopping;
    char *tmp_dir;              /* STORE/tmp: large bodies, unlinked */
    atomic_ullong body_bytes;   /* bytes of the bodies in flight (reserved as declared, or as they come) */
    atomic_ullong cache_bytes;  /* estimated bytes of the loaded bundles (under lock when changed) */
    unsigned long long clock;   /* the cache's use counter (under lock) */
    atomic_ullong evictions, over_budget;
    atomic_int trim_wanted;     /* bundles were evicted: their memory goes back to the system (trim_freed) */
    /* metrics */
    atomic_ullong requests[EP_COUNT], bytes_in, bytes_out, status_counts[6], hist[N_BUCKETS + 1];
    atomic_ullong error_counts[N_ERROR_CODES];
    double latency_sum; /* guarded by lock */
    char *tls_cert_pem, *tls_key_pem;
    /* the tokens: STORE/tokens as last read, read again when its inode, size or time changes */
    pthread_mutex_t auth_lock;
    veil_token_entry *tokens;
    size_t n_tokens;
    struct stat tokens_seen;
    int tokens_read;
    /* limits (limits below): the open connections, the watchdog that closes those past the deadline, and the
     * tenants' counters */
    pthread_mutex_t conn_lock;
    struct conn_entry *conns;
    pthread_t watchdog;
    int watchdog_started;
    atomic_int watchdog_stop;
    atomic_ullong deadline_closes, rate_refusals, prediction_refusals;
    pthread_mutex_t limits_lock;
    struct tenant_limit *tenant_limits;
    size_t n_tenant_limits;
};

typedef struct request {
    endpoint ep;
    double t0;
    veil_body store;         /* the body as it comes: in memory when small, else a temporary file */
    const uint8_t *body;     /* the whole body, once received (veil_body_finish) */
    size_t len, limit;
    uint64_t reserved;       /* bytes of the memory budget this request's body holds */
    int over_budget;         /* the body outgrew the memory budget: 503 */
    int body_failed;         /* the body could not be kept (a temporary file's error): 500 */
    char body_error[256];
    key_entry *key;          /* a prediction's keys, looked up (and held) before the body is read */
    int too_large;
    unsigned status;
    size_t out_bytes;
    char method[8];
    char path[160];
    char tenant[VEIL_TENANT_MAX + 1]; /* who asked (authenticated) */
    int admin;
    int predicting; /* counted in its tenant's predictions in progress */
    const veil_server_request *offline; /* a request without a connection (veil_server_handle), else NULL */
    const char *query;                  /* offline: the URL's part after '?' */
    char arg[160];                      /* offline: the value of the last argument looked up */
} request;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- responses -------------------------------------------------------------------------------------- */

/* An answer, with one more header (name NULL: none). Without a connection (veil_server_handle), only its
 * status and size are kept. */
static enum MHD_Result send_with(struct MHD_Connection *c, request *r, unsigned status, const char *type,
                                 const void *data, size_t len, const char *name, const char *value)
{
    if (!c) {
        r->status = status;
        r->out_bytes = len;
        return MHD_YES;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    if (name) MHD_add_response_header(resp, name, value);
    r->status = status;
    r->out_bytes = len;
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result send_bytes(struct MHD_Connection *c, request *r, unsigned status, const char *type,
                                  const void *data, size_t len)
{
    return send_with(c, r, status, type, data, len, NULL, NULL);
}

/* Writes s as a JSON string body (quotes and control characters escaped). */
static void json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = 0;
}

/* A JSON error {"error": msg, "status": status}, with one more header (name NULL: none). */
static enum MHD_Result send_error_with(struct MHD_Connection *c, request *r, unsigned status, const char *name,
                                       const char *value, const char *msg)
{
    char esc[1100], body[1300];
    json_escape(esc, sizeof esc, msg);
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"status\":%u}\n", esc, status);
    return send_with(c, r, status, "application/json", body, (size_t)n, name, value);
}

static enum MHD_Result send_error(struct MHD_Connection *c, request *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_error(struct MHD_Connection *c, request *r, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return send_error_with(c, r, status, NULL, NULL, msg);
}

/* A header or URL argument of the request: the connection's, or the offline request's. */
static const char *lookup(struct MHD_Connection *c, request *r, enum MHD_ValueKind kind, const char *key)
{
    if (c) return MHD_lookup_connection_value(c, kind, key);
    const veil_server_request *q = r->offline;
    if (kind == MHD_HEADER_KIND)
        return !strcasecmp(key, MHD_HTTP_HEADER_AUTHORIZATION)    ? q->authorization
               : !strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) ? q->content_length
                                                                   : NULL;
    const size_t k = strlen(key);
    for (const char *a = r->query; a && *a;) { /* name=value&...: the first of that name, not decoded */
        const char *end = strchr(a, '&');
        const size_t n = end ? (size_t)(end - a) : strlen(a);
        if (n > k && !strncmp(a, key, k) && a[k] == '=') {
            snprintf(r->arg, sizeof r->arg, "%.*s", (int)(n - k - 1), a + k + 1);
            return r->arg;
        }
        a = end ? end + 1 : NULL;
    }
    return NULL;
}

static unsigned status_for(veil_status st)
{
    switch (st) {
    case VEIL_ERR_MISMATCH: return 409;
    case VEIL_ERR_NO_MEMORY:
    case VEIL_ERR_INTERNAL:
    case VEIL_ERR_IO: return 500;
    default: return 400;
    }
}

/* ---- limits: connections (per address, a whole request's deadline), tenants (rate, predictions) ------------- */

/* An open connection (libmicrohttpd's socket context): when its current request began, and whether that request
 * has arrived whole (then the deadline no longer applies: the answer is being made or sent). */
typedef struct conn_entry {
    struct conn_entry *prev, *next;
    int fd;
    double start;
    int arrived;
} conn_entry;

/* A tenant's counters: its token bucket (tokens, refilled at tenant_rps from last) and its predictions in
 * progress. One per tenant that has made a request; tenants are those of the token file, so they are few. */
typedef struct tenant_limit {
    char name[VEIL_TENANT_MAX + 1];
    double tokens, last;
    unsigned predictions;
} tenant_limit;

static int limit_on(unsigned v) { return v != VEIL_LIMIT_OFF; }

/* libmicrohttpd's connection notices: a connection opened (stamped, listed for the watchdog) or closed (unlisted,
 * before its socket is closed, so the watchdog never shuts another's socket). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    veil_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_entry *e = calloc(1, sizeof *e);
        if (!e) return; /* not watched: --timeout still bounds it */
        const union MHD_ConnectionInfo *fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        e->fd = fd ? fd->connect_fd : -1;
        e->start = now_s();
        pthread_mutex_lock(&s->conn_lock);
        e->next = s->conns;
        if (s->conns) s->conns->prev = e;
        s->conns = e;
        pthread_mutex_unlock(&s->conn_lock);
        *socket_context = e;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn_entry *e = *socket_context;
        pthread_mutex_lock(&s->conn_lock);
        if (e->prev) e->prev->next = e->next;
        else s->conns = e->next;
        if (e->next) e->next->prev = e->prev;
        pthread_mutex_unlock(&s->conn_lock);
        free(e);
        *socket_context = NULL;
    }
}

static conn_entry *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *i = c ? MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT) : NULL;
    return i ? i->socket_context : NULL;
}

/* The request of c has arrived whole (arrived 1), or was answered and the connection waits for the next one
 * (arrived 0: its deadline starts now). */
static void conn_mark(veil_server *s, struct MHD_Connection *c, int arrived)
{
    conn_entry *e = conn_of(c);
    if (!e) return;
    pthread_mutex_lock(&s->conn_lock);
    e->arrived = arrived;
    if (!arrived) e->start = now_s();
    pthread_mutex_unlock(&s->conn_lock);
}

/* The watchdog: every 100 ms, shuts the socket of each connection whose request has not arrived whole within
 * the deadline, whatever its pace (libmicrohttpd's own timeout counts idle time only); libmicrohttpd then
 * closes it. */
static void *watchdog_main(void *arg)
{
    veil_server *s = arg;
    const double deadline = s->cfg.request_deadline_s;
    while (!atomic_load(&s->watchdog_stop)) {
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
        const double now = now_s();
        pthread_mutex_lock(&s->conn_lock);
        for (conn_entry *e = s->conns; e; e = e->next)
            if (!e->arrived && e->fd >= 0 && now - e->start > deadline) {
                shutdown(e->fd, SHUT_RDWR);
                e->fd = -1; /* once */
                atomic_fetch_add(&s->deadline_closes, 1);
            }
        pthread_mutex_unlock(&s->conn_lock);
    }
    return NULL;
}

/* The tenant's counters (made at its first request): under limits_lock; NULL when out of memory. */
static tenant_limit *tenant_counters(veil_server *s, const char *tenant)
{
    for (size_t i = 0; i < s->n_tenant_limits; i++)
        if (!strcmp(s->tenant_limits[i].name, tenant)) return &s->tenant_limits[i];
    tenant_limit *grown = realloc(s->tenant_limits, (s->n_tenant_limits + 1) * sizeof *grown);
    if (!grown) return NULL;
    s->tenant_limits = grown;
    tenant_limit *t = &grown[s->n_tenant_limits++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%.64s", tenant);
    t->tokens = s->cfg.tenant_burst;
    t->last = now_s();
    return t;
}

/* The request of an authenticated tenant against its limits: 0 when admitted (a prediction counted in its
 * tenant's, r->predicting), else 429 with *retry, the seconds after which to try again, and *why. */
static unsigned admit(veil_server *s, request *r, unsigned *retry, const char **why)
{
    const int rate = limit_on(s->cfg.tenant_rps), preds = limit_on(s->cfg.tenant_max_predictions);
    if (!rate && !(preds && r->ep == EP_PREDICT)) return 0;
    unsigned status = 0;
    pthread_mutex_lock(&s->limits_lock);
    tenant_limit *t = tenant_counters(s, r->tenant);
    if (!t) {
        status = 429;
        *retry = 1;
        *why = "out of memory for the tenant's counters: retry later";
    } else if (rate) {
        const double now = now_s();
        t->tokens += (now - t->last) * s->cfg.tenant_rps;
        if (t->tokens > s->cfg.tenant_burst) t->tokens = s->cfg.tenant_burst;
        t->last = now;
        if (t->tokens < 1) {
            status = 429;
            *retry = (unsigned)ceil((1 - t->tokens) / s->cfg.tenant_rps);
            if (*retry < 1) *retry = 1;
            *why = "this tenant's request rate is past its limit (--tenant-rps): retry later";
            atomic_fetch_add(&s->rate_refusals, 1);
        } else {
            t->tokens -= 1;
        }
    }
    if (t && !status && preds && r->ep == EP_PREDICT) {
        if (t->predictions >= s->cfg.tenant_max_predictions) {
            status = 429;
            *retry = 1;
            *why = "too many predictions of this tenant at once (--tenant-max-predictions): retry later";
            atomic_fetch_add(&s->prediction_refusals, 1);
        } else {
            t->predictions++;
            r->predicting = 1;
        }
    }
    pthread_mutex_unlock(&s->limits_lock);
    return status;
}

/* A prediction counted by admit is over. */
static void prediction_done(veil_server *s, request *r)
{
    if (!r->predicting) return;
    pthread_mutex_lock(&s->limits_lock);
    tenant_limit *t = tenant_counters(s, r->tenant);
    if (t && t->predictions) t->predictions--;
    pthread_mutex_unlock(&s->limits_lock);
    r->predicting = 0;
}

#define MAX_QUERY_ARGS 16    /* past it, 400 */
#define CLOSE_QUERY_ARGS 200 /* past it, the connection is closed at once: libmicrohttpd 0.9.75 would not answer
                                once the arguments fill the connection's memory (about 450 arguments) */

/* libmicrohttpd's first look at a request (its URI, before the arguments are parsed): a URI of so many query
 * arguments that libmicrohttpd could not hold them is closed at once. Returns the request's state: none yet. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    veil_server *s = cls;
    size_t args = 0;
    const char *q = strchr(uri, '?');
    for (const char *p = q; p && *p; p++) args += *p == '&' || *p == ';';
    if (q && args + 1 > CLOSE_QUERY_ARGS) {
        conn_entry *e = conn_of(c);
        pthread_mutex_lock(&s->conn_lock);
        if (e && e->fd >= 0) {
            shutdown(e->fd, SHUT_RDWR);
            e->fd = -1;
        }
        pthread_mutex_unlock(&s->conn_lock);
    }
    return NULL;
}

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

/* ---- models ------------------------------------------------------------------------------------------- */

static int valid_name(const char *s, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (n >= max || !((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                          ch == '_' || ch == '-' || ch == '.'))
            return 0;
    }
    return n > 0 && s[0] != '.';
}

static void free_model(model_entry *m)
{
    veil_model_free(m->model);
    m->model = NULL;
    for (int k = 0; k < 2; k++) {
        veil_plan_free(m->plans[k]);
        m->plans[k] = NULL;
        veil_buffer_free(&m->plan_files[k]);
    }
    veil_side_options_clear(&m->options);
}

/* The model of DIR/FILE (with the side file's options read into m) and both plans, saved as files. */
static veil_status load_model_file(veil_server *s, model_entry *m, const char *file, veil_error *err)
{
    veil_status st = VEIL_OK;
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", s->models_dir, file) >= sizeof path)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "the path is too long");
    VEIL_CHECK(veil_model_load_onnx_file(&m->model, path, m->has_side_file ? &m->options.model : NULL, err));
    for (int k = 0; k < 2; k++) { /* the side file's inputs' range bounds both */
        veil_plan_request req = {.packing = (veil_packing)k, .have_range = m->options.have_input_range,
                                 .range_lo = m->options.input_lo, .range_hi = m->options.input_hi};
        VEIL_CHECK(veil_model_plan(&m->plans[k], m->model, &req, err));
        VEIL_CHECK(veil_plan_save(&m->plan_files[k], m->plans[k], err));
    }
    /* output noise without a given sensitivity: the plan's (docs/privacy.md), refused at start when none */
    if (m->options.dp_epsilon && !m->options.dp_sensitivity)
        VEIL_CHECK(veil_plan_dp_sensitivity(m->plans[0], &m->options.dp_sensitivity, err));
done:
    return st;
}

/*
 * The model of DIR/FILE with its side file's options, and both plans. A refused side file is named by its own
 * message; a refused model by "model FILE" (and the side file its options came from).
 */
static veil_status load_model(veil_server *s, model_entry *m, const char *file, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_side_options_read(&m->options, s->models_dir, m->name, &m->has_side_file, err));
    const veil_status loaded = load_model_file(s, m, file, err);
    if (loaded != VEIL_OK) {
        char detail[VEIL_DETAIL_MAX];
        snprintf(detail, sizeof detail, "%s", err ? err->detail : "");
        free_model(m); /* keeps the side file's path, for the message */
        if (m->has_side_file) VEIL_FAIL(err, loaded, "model %s (options from %s): %s", file, m->options.path, detail);
        VEIL_FAIL(err, loaded, "model %s: %s", file, detail);
    }
done:
    return st;
}

/* Bodies: a bundle of either plan's keys, or max_batches batches of fresh ciphertexts. */
static void set_limits(veil_server *s, model_entry *m)
{
    size_t key_limit = 0, body = 0;
    for (int k = 0; k < 2; k++) {
        veil_plan_info in;
        veil_plan_get_info(m->plans[k], &in);
        const double ct = 2.0 * (double)in.n * (double)in.q_count * 8.0;
        const double per_batch = ct * (double)(k == 0 ? in.in_ciphertexts : 16);
        if (2 * in.eval_key_bytes + (1 << 20) > (double)key_limit) key_limit = (size_t)(2 * in.eval_key_bytes) + (1 << 20);
        if (per_batch * s->cfg.max_batches + (1 << 20) > (double)body)
            body = (size_t)(per_batch * s->cfg.max_batches) + (1 << 20);
    }
    m->body_limit = body;
    if (key_limit > s->key_limit) s->key_limit = key_limit;
}

static veil_status load_models(veil_server *s, veil_error *err)
{
    DIR *d = opendir(s->models_dir);
    if (!d) return veil_fail(err, VEIL_ERR_IO, "models folder %s: %s", s->models_dir, strerror(errno));
    veil_status st = VEIL_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".onnx") != 0) continue;
        if (s->n_models == MAX_MODELS) VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "more than %d models", MAX_MODELS);
        model_entry *m = &s->models[s->n_models];
        memset(m, 0, sizeof *m);
        snprintf(m->name, sizeof m->name, "%.*s", (int)(len - 5), e->d_name);
        if (!valid_name(m->name, NAME_MAX_LEN - 1)) continue;
        VEIL_CHECK(load_model(s, m, e->d_name, err));
        set_limits(s, m);
        s->n_models++;
    }
    if (s->n_models == 0) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "no *.onnx model in %s", s->models_dir);
done:
    closedir(d);
    return st;
}

static model_entry *find_model(veil_server *s, const char *name)
{
    for (size_t i = 0; i < s->n_models; i++)
        if (strcmp(s->models[i].name, name) == 0) return &s->models[i];
    return NULL;
}

/* ---- the key store ------------------------------------------------------------------------------------ */

void veil_key_bundle_id(const uint8_t *bundle, size_t len, char id[65])
{
    uint8_t h[16];
    crypto_generichash(h, sizeof h, bundle, len, NULL, 0);
    for (size_t i = 0; i < sizeof h; i++) snprintf(id + 2 * i, 3, "%02x", h[i]);
}

static int valid_id(const char *id)
{
    if (strlen(id) != 32) return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

static key_entry *new_entry(const char *id, uint64_t bytes)
{
    key_entry *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    snprintf(k->id, sizeof k->id, "%s", id);
    k->bytes = bytes;
    k->model = -1;
    k->known_model = -1;
    pthread_mutex_init(&k->load_lock, NULL);
    return k;
}

static void free_entry(key_entry *k)
{
    free(k->owners);
    veil_evaluator_free(k->ev);
    veil_eval_keys_free(k->keys);
    pthread_mutex_destroy(&k->load_lock);
    free(k);
}

static int owned_by(const key_entry *k, const char *tenant)
{
    for (size_t i = 0; i < k->n_owners; i++)
        if (strcmp(k->owners[i], tenant) == 0) return 1;
    return 0;
}

static int add_owner(key_entry *k, const char *tenant)
{
    char(*grown)[VEIL_TENANT_MAX + 1] = realloc(k->owners, (k->n_owners + 1) * sizeof *k->owners);
    if (!grown) return 0;
    k->owners = grown;
    snprintf(k->owners[k->n_owners++], sizeof *k->owners, "%.64s", tenant);
    return 1;
}

static void remove_owner(key_entry *k, const char *tenant)
{
    for (size_t i = 0; i < k->n_owners; i++)
        if (strcmp(k->owners[i], tenant) == 0) {
            memcpy(k->owners[i], k->owners[--k->n_owners], sizeof *k->owners);
            return;
        }
}

/* STORE/owners/TENANT/ID: the record that tenant uploaded bundle ID. */
static void owner_path(const veil_server *s, const char *tenant, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/owners/%s%s%s", s->store_dir, tenant, id ? "/" : "", id ? id : "");
}

/* Writes the ownership record (its folder made when missing; the folder synced): 0 on failure. */
static int write_owner(const veil_server *s, const char *tenant, const char *id)
{
    char dir[4096], path[4200];
    owner_path(s, tenant, NULL, dir, sizeof dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return 0;
    owner_path(s, tenant, id, path, sizeof path);
    const int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return 0;
    close(fd);
    const int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 1;
}

/* Moves STORE/WHERE/NAME into STORE/quarantine/ (never served, kept for a look) and says why on stderr. */
static void quarantine(const veil_server *s, const char *where, const char *name, const char *why)
{
    char from[4096], qdir[4096], to[4300];
    snprintf(from, sizeof from, "%s/%s/%s", s->store_dir, where, name);
    snprintf(qdir, sizeof qdir, "%s/quarantine", s->store_dir);
    if (mkdir(qdir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "veil: store: cannot make %s (%s): %s/%s is left in place, not served\n", qdir, strerror(errno),
                where, name);
        return;
    }
    const int n = snprintf(to, sizeof to, "%s/%lld-%s-%s", qdir, (long long)time(NULL), where, name);
    for (char *p = to + strlen(qdir) + 1; n > 0 && *p; p++)
        if (*p == '/') *p = '-'; /* owners/TENANT/X: one name in the quarantine */
    if (rename(from, to) != 0)
        fprintf(stderr, "veil: store: %s/%s (%s) could not be moved aside (%s): not served\n", where, name, why,
                strerror(errno));
    else
        fprintf(stderr, "veil: store: %s/%s %s: moved to %s, not served\n", where, name, why, to);
}

/* NULL when STORE/keys/NAME is a bundle to serve: a regular file ID.keys whose content hashes to ID and loads
 * as evaluation keys; otherwise why not. */
static const char *check_bundle(const veil_server *s, const char *name, uint64_t *bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s->keys_dir, name);
    struct stat sb;
    if (lstat(path, &sb) != 0) return "cannot be read";
    if (!S_ISREG(sb.st_mode)) return "is not a regular file";
    const size_t len = strlen(name);
    char id[65];
    snprintf(id, sizeof id, "%.32s", name);
    if (len != 37 || strcmp(name + 32, ".keys") != 0 || !valid_id(id)) return "is not named ID.keys";
    veil_buffer b = {0};
    veil_error err = {0};
    const char *why = NULL;
    char got[65];
    veil_eval_keys *keys = NULL;
    if (veil_file_read(&b, path, (size_t)1 << 34, &err) != VEIL_OK) why = "cannot be read";
    if (!why) veil_key_bundle_id(b.data, b.len, got);
    if (!why && strcmp(got, id) != 0) why = "does not hash to its id (changed or cut off)";
    if (!why && veil_eval_keys_load(&keys, b.data, b.len, &err) != VEIL_OK) why = "does not load as evaluation keys";
    veil_eval_keys_free(keys);
    *bytes = b.len;
    veil_buffer_free(&b);
    return why;
}

static key_entry *find_entry(veil_server *s, const char *id)
{
    for (size_t i = 0; i < s->n_stored; i++)
        if (!s->stored[i]->deleted && strcmp(s->stored[i]->id, id) == 0) return s->stored[i];
    return NULL;
}

/* The ownership records of STORE/owners/TENANT/: each to its bundle; one without a bundle is removed. */
static void read_owners(veil_server *s, const char *tenant)
{
    char dir[4096];
    owner_path(s, tenant, NULL, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        key_entry *k = valid_id(e->d_name) ? find_entry(s, e->d_name) : NULL;
        if (k) {
            if (!owned_by(k, tenant) && !add_owner(k, tenant))
                fprintf(stderr, "veil: store: out of memory reading owners/%s/%s\n", tenant, e->d_name);
            continue;
        }
        char path[4400], where[300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(where, sizeof where, "owners/%s", tenant);
        if (unlink(path) == 0) fprintf(stderr, "veil: store: owners/%s/%s names no bundle: removed\n", tenant, e->d_name);
        else quarantine(s, where, e->d_name, "is not an ownership record");
    }
    closedir(d);
}

/*
 * Scans and checks the store: temporary files a crash left behind are removed; every bundle is checked
 * (check_bundle) and anything else in STORE/keys moved to STORE/quarantine; the ownership records are read,
 * and a bundle no tenant owns is moved aside too.
 */
static veil_status open_store(veil_server *s, veil_error *err)
{
    char owners[4096];
    snprintf(owners, sizeof owners, "%s/owners", s->store_dir);
    if (mkdir(s->store_dir, 0700) != 0 && errno != EEXIST)
        return veil_fail(err, VEIL_ERR_IO, "store %s: %s", s->store_dir, strerror(errno));
    if (mkdir(s->keys_dir, 0700) != 0 && errno != EEXIST)
        return veil_fail(err, VEIL_ERR_IO, "store %s: %s", s->keys_dir, strerror(errno));
    if (mkdir(owners, 0700) != 0 && errno != EEXIST)
        return veil_fail(err, VEIL_ERR_IO, "store %s: %s", owners, strerror(errno));
    DIR *d = opendir(s->keys_dir);
    if (!d) return veil_fail(err, VEIL_ERR_IO, "store %s: %s", s->keys_dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[4096];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", s->keys_dir, e->d_name);
        struct stat sb;
        if (strstr(e->d_name, ".tmp.") && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            unlink(path); /* an upload that never completed: it was never acknowledged */
            continue;
        }
        uint64_t bytes = 0;
        const char *why = s->n_stored == MAX_STORED ? "is beyond the store's limit" : check_bundle(s, e->d_name, &bytes);
        if (why) {
            quarantine(s, "keys", e->d_name, why);
            continue;
        }
        char id[65];
        snprintf(id, sizeof id, "%.32s", e->d_name);
        key_entry *k = new_entry(id, bytes);
        if (!k) break;
        s->stored[s->n_stored++] = k;
        s->stored_bytes += k->bytes;
    }
    closedir(d);
    const veil_status tmp = veil_body_tmp_open(s->tmp_dir, err); /* bodies' files a crash left are removed */
    if (tmp != VEIL_OK) return tmp;
    if (!(d = opendir(owners))) return veil_fail(err, VEIL_ERR_IO, "store %s: %s", owners, strerror(errno));
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (veil_tenant_name_valid(e->d_name) || !strcmp(e->d_name, VEIL_TENANT_ANONYMOUS)) read_owners(s, e->d_name);
        else quarantine(s, "owners", e->d_name, "is not a tenant's folder");
    }
    closedir(d);
    for (size_t i = 0; i < s->n_stored;) {
        key_entry *k = s->stored[i];
        if (k->n_owners) {
            i++;
            continue;
        }
        char name[80];
        snprintf(name, sizeof name, "%s.keys", k->id);
        quarantine(s, "keys", name, "is owned by no tenant");
        s->stored_bytes -= k->bytes;
        s->stored[i] = s->stored[--s->n_stored];
        free_entry(k);
    }
    return VEIL_OK;
}

/* Finds a bundle the tenant owns and takes a reference (NULL when unknown, or another tenant's). */
static key_entry *acquire_key(veil_server *s, const char *id, const char *tenant)
{
    key_entry *found = NULL;
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_stored; i++)
        if (!s->stored[i]->deleted && strcmp(s->stored[i]->id, id) == 0 && owned_by(s->stored[i], tenant)) {
            found = s->stored[i];
            found->refs++;
            break;
        }
    pthread_mutex_unlock(&s->lock);
    return found;
}

static void release_key(veil_server *s, key_entry *k)
{
    pthread_mutex_lock(&s->lock);
    int last = --k->refs == 0 && k->deleted;
    pthread_mutex_unlock(&s->lock);
    if (last) free_entry(k);
}

/* Reads a stored bundle and makes its evaluator for the model it was made for (k->model). */
static veil_status read_key(veil_server *s, key_entry *k, veil_error *err)
{
    veil_status st = VEIL_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.keys", s->keys_dir, k->id);
    veil_buffer b = {0};
    VEIL_CHECK(veil_file_read(&b, path, (size_t)1 << 34, err));
    VEIL_CHECK(veil_eval_keys_load(&k->keys, b.data, b.len, err));
    veil_buffer_free(&b); /* parsed: the file's bytes are not held through the evaluators' making */
    k->model = -1;
    for (size_t i = 0; i < s->n_models && k->model < 0; i++) {
        veil_evaluator *ev = NULL;
        veil_error e2 = {0};
        if (veil_evaluator_new(&ev, s->models[i].model, k->keys, s->cfg.eval_threads, &e2) == VEIL_OK) {
            k->ev = ev;
            k->model = (int)i;
        }
    }
    if (k->model < 0) {
        veil_eval_keys_free(k->keys);
        k->keys = NULL;
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "these evaluation keys were made for none of the models served here");
    }
done:
    veil_buffer_free(&b);
    return st;
}

/* ---- the cache of loaded bundles (issue 21): an estimate of each one's memory, a budget, LRU eviction ---- */

/* A loaded bundle's keys and its evaluator, once used (the evaluator keeps its scratch memory for the next
 * request), take about this many times the bundle's bytes: measured on the breast-cancer model, 64 bundles of
 * 381,656 bytes loaded and used once took the server from 10 to 899 MB, 13.7 MB (36 times) each. */
#define CACHE_FACTOR 36

static uint64_t cache_estimate(const key_entry *k) { return k->bytes * CACHE_FACTOR; }

static uint64_t memory_used(veil_server *s) { return atomic_load(&s->body_bytes) + atomic_load(&s->cache_bytes); }

/* Under lock: frees the keys and evaluator of the least recently used loaded bundles that no request holds
 * until the cache's estimate is at most target (a bundle in use is never freed under its request). */
static void evict_to(veil_server *s, uint64_t target)
{
    while (atomic_load(&s->cache_bytes) > target) {
        key_entry *lru = NULL;
        for (size_t i = 0; i < s->n_stored; i++) {
            key_entry *k = s->stored[i];
            if (k->cached && k->refs == 0 && (!lru || k->last_used < lru->last_used)) lru = k;
        }
        if (!lru) return;
        veil_evaluator_free(lru->ev);
        veil_eval_keys_free(lru->keys);
        lru->ev = NULL;
        lru->keys = NULL; /* reloaded from the store at its next use */
        atomic_fetch_sub(&s->cache_bytes, lru->cached);
        lru->cached = 0;
        atomic_fetch_add(&s->evictions, 1);
        atomic_store(&s->trim_wanted, 1);
    }
}

/* After an eviction, outside the lock: the allocator hands the freed pages back to the system. veil keeps freed
 * memory for reuse (mallopt in tools/veil.c), and an evaluator freed in one thread's arena would otherwise stay
 * in the process beside the one loaded in another's. */
static void trim_freed(veil_server *s)
{
    if (!atomic_exchange(&s->trim_wanted, 0)) return;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

/* Under lock: room for need more bytes of loaded bundles, evicting unused ones beyond the cache's budget; 1
 * with need counted in the cache, or 0 (nothing counted) when the memory budget has no room even so. */
static int cache_reserve(veil_server *s, uint64_t need)
{
    evict_to(s, s->cfg.cache_bytes > need ? s->cfg.cache_bytes - need : 0);
    if (memory_used(s) + need > s->cfg.memory_budget) return 0;
    atomic_fetch_add(&s->cache_bytes, need);
    return 1;
}

/* k (held by the caller) in the cache: marked used, and its load counted when it is not loaded; 0 when the
 * memory budget has no room for it. */
static int cache_admit(veil_server *s, key_entry *k)
{
    int ok = 1;
    pthread_mutex_lock(&s->lock);
    k->last_used = ++s->clock;
    if (!k->cached) {
        const uint64_t need = cache_estimate(k);
        ok = cache_reserve(s, need);
        if (ok) k->cached = need;
    }
    pthread_mutex_unlock(&s->lock);
    trim_freed(s);
    return ok;
}

/* Loads the bundle from the store and makes its evaluator, once (concurrent requests wait for the first); its
 * room in the cache is given back when that fails. */
static veil_status load_key(veil_server *s, key_entry *k, veil_error *err)
{
    pthread_mutex_lock(&k->load_lock);
    const veil_status st = k->keys ? VEIL_OK : read_key(s, k, err);
    pthread_mutex_lock(&s->lock);
    if (st == VEIL_OK) {
        k->known_model = k->model;
    } else if (k->cached) {
        atomic_fetch_sub(&s->cache_bytes, k->cached);
        k->cached = 0;
    }
    pthread_mutex_unlock(&s->lock);
    pthread_mutex_unlock(&k->load_lock);
    return st;
}

/* ---- handlers ----------------------------------------------------------------------------------------- */

static enum MHD_Result list_models(veil_server *s, struct MHD_Connection *c, request *r)
{
    size_t cap = 256 + s->n_models * 256, n = 0;
    char *body = malloc(cap);
    if (!body) return send_error(c, r, 500, "out of memory");
    n += (size_t)snprintf(body + n, cap - n, "{\"models\":[");
    for (size_t i = 0; i < s->n_models; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s{\"name\":\"%s\",\"input_width\":%zu,\"output_width\":%zu}",
                              i ? "," : "", s->models[i].name, veil_model_input_width(s->models[i].model),
                              veil_model_output_width(s->models[i].model));
    n += (size_t)snprintf(body + n, cap - n, "]}\n");
    enum MHD_Result ret = send_bytes(c, r, 200, "application/json", body, n);
    free(body);
    return ret;
}

static enum MHD_Result describe_model(veil_server *s, struct MHD_Connection *c, request *r, model_entry *m)
{
    (void)s;
    char body[4096], report[1024];
    json_escape(report, sizeof report, veil_model_report(m->model));
    size_t n = (size_t)snprintf(body, sizeof body,
                                "{\"name\":\"%s\",\"input_width\":%zu,\"output_width\":%zu,\"lowering\":\"%s\",\"plans\":[",
                                m->name, veil_model_input_width(m->model), veil_model_output_width(m->model), report);
    for (int k = 0; k < 2; k++) {
        veil_plan_info in;
        veil_plan_get_info(m->plans[k], &in);
        n += (size_t)snprintf(body + n, sizeof body - n,
                              "%s{\"packing\":\"%s\",\"n\":%zu,\"slots\":%zu,\"batch\":%zu,\"depth\":%zu,\"q_primes\":%zu,"
                              "\"p_primes\":%zu,\"dnum\":%zu,\"log_qp\":%u,\"scale_bits\":%u,\"rotation_keys\":%zu,"
                              "\"max_body_bytes\":%zu}",
                              k ? "," : "", k ? "latency" : "throughput", in.n, in.slots, in.batch, in.depth, in.q_count,
                              in.p_count, in.dnum, in.log_qp, in.scale_bits, in.rotations, m->body_limit);
    }
    n += (size_t)snprintf(body + n, sizeof body - n, "]}\n");
    return send_bytes(c, r, 200, "application/json", body, n);
}

/* 503 with Retry-After: need more bytes would take the server past its memory budget. */
static enum MHD_Result over_budget(veil_server *s, struct MHD_Connection *c, request *r, uint64_t need)
{
    char msg[256];
    atomic_fetch_add(&s->over_budget, 1);
    snprintf(msg, sizeof msg, "the server is at its memory budget (%llu bytes; this request needs %llu more): "
             "try again later", (unsigned long long)s->cfg.memory_budget, (unsigned long long)need);
    return send_error_with(c, r, 503, MHD_HTTP_HEADER_RETRY_AFTER, "5", msg);
}

static enum MHD_Result upload_keys(veil_server *s, struct MHD_Connection *c, request *r)
{
    if (r->len == 0) return send_error(c, r, 400, "empty body: send an evaluation-key bundle (KEYDIR/eval/eval.keys)");
    veil_error err = {0};
    veil_object_info info;
    if (veil_object_peek(&info, r->body, r->len, &err) != VEIL_OK)
        return send_error(c, r, 400, "not a Veil object: %s", err.detail);
    if (info.flags & VEIL_FLAG_SECRET)
        return send_error(c, r, 422, "this object holds a secret key: the server accepts evaluation keys only, "
                                     "never a secret key (upload KEYDIR/eval/eval.keys)");
    char id[65];
    veil_key_bundle_id(r->body, r->len, id);
    key_entry *existing = acquire_key(s, id, r->tenant);
    if (existing) {
        release_key(s, existing);
        char body[128];
        int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"stored\":false}\n", id);
        return send_bytes(c, r, 200, "application/json", body, (size_t)n);
    }
    /* validate fully: a loadable bundle, for a model served here; its load counted in the cache first */
    const uint64_t need = (uint64_t)r->len * CACHE_FACTOR;
    pthread_mutex_lock(&s->lock);
    const int room = cache_reserve(s, need);
    pthread_mutex_unlock(&s->lock);
    trim_freed(s);
    if (!room) return over_budget(s, c, r, need);
    veil_eval_keys *keys = NULL;
    const veil_status st = veil_eval_keys_load(&keys, r->body, r->len, &err);
    if (st != VEIL_OK) {
        atomic_fetch_sub(&s->cache_bytes, need);
        return send_error(c, r, st == VEIL_ERR_ARGUMENT || st == VEIL_ERR_MISMATCH ? 422 : 400,
                          "not an evaluation-key bundle: %s", err.detail);
    }
    int model = -1;
    veil_evaluator *ev = NULL;
    for (size_t i = 0; i < s->n_models && model < 0; i++) {
        veil_error e2 = {0};
        if (veil_evaluator_new(&ev, s->models[i].model, keys, s->cfg.eval_threads, &e2) == VEIL_OK) model = (int)i;
    }
    if (model < 0) {
        veil_eval_keys_free(keys);
        atomic_fetch_sub(&s->cache_bytes, need);
        return send_error(c, r, 409, "these evaluation keys were made for none of the models served here");
    }
    key_entry *k = new_entry(id, r->len);
    if (!k) {
        veil_evaluator_free(ev);
        veil_eval_keys_free(keys);
        atomic_fetch_sub(&s->cache_bytes, need);
        return send_error(c, r, 500, "out of memory");
    }
    k->keys = keys;
    k->ev = ev;
    k->model = model;
    /* the check, the files and the index under one lock: concurrent uploads and deletes of one id serialize.
     * The ownership record is written before the bundle: a crash between leaves a record the next start
     * removes. A bundle another tenant holds gets this tenant's record only (the answer the same as for a
     * new bundle: no tenant learns what another stored). */
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.keys", s->keys_dir, id);
    int status = 201, shared = 0, full = 0;
    pthread_mutex_lock(&s->lock);
    key_entry *held = find_entry(s, id);
    if (held && owned_by(held, r->tenant)) status = 200; /* raced: stored already */
    shared = held != NULL;
    size_t mine = 0;
    uint64_t my_bytes = 0;
    for (size_t i = 0; i < s->n_stored; i++)
        if (owned_by(s->stored[i], r->tenant)) {
            mine++;
            my_bytes += s->stored[i]->bytes;
        }
    /* the limits apply alike to a bundle another tenant holds: the answer tells nothing of the others' */
    if (status == 201 && (s->n_stored >= s->cfg.max_keys || s->stored_bytes + r->len > s->cfg.max_store_bytes))
        status = 429, full = 1;
    if (status == 201 && ((s->cfg.tenant_max_keys && mine >= s->cfg.tenant_max_keys) ||
                          (s->cfg.tenant_max_bytes && my_bytes + r->len > s->cfg.tenant_max_bytes)))
        status = 429;
    if (status == 201 && (!write_owner(s, r->tenant, id) || (shared ? !add_owner(held, r->tenant) : !add_owner(k, r->tenant))))
        status = 500;
    if (status == 201 && !shared && veil_file_write_atomic(path, r->body, r->len, &err) != VEIL_OK) status = 500;
    if (status == 201 && !shared) {
        s->stored[s->n_stored++] = k;
        s->stored_bytes += k->bytes;
        k->cached = need; /* loaded: in the cache, most recently used */
        k->known_model = model;
        k->last_used = ++s->clock;
    } else {
        atomic_fetch_sub(&s->cache_bytes, need);
    }
    pthread_mutex_unlock(&s->lock);
    if (status != 201 || shared) free_entry(k);
    if (status == 429) {
        char msg[256];
        if (full)
            snprintf(msg, sizeof msg, "the key store is full (%zu bundles, %llu bytes at most): delete unused keys",
                     s->cfg.max_keys, (unsigned long long)s->cfg.max_store_bytes);
        else
            snprintf(msg, sizeof msg, "tenant %s holds %zu bundles (%llu bytes): its limit is %zu bundles, %llu bytes; "
                     "delete unused keys", r->tenant, mine, (unsigned long long)my_bytes, s->cfg.tenant_max_keys,
                     (unsigned long long)s->cfg.tenant_max_bytes);
        return send_error_with(c, r, 429, MHD_HTTP_HEADER_RETRY_AFTER, "60", msg);
    }
    if (status == 500) return send_error(c, r, 500, "storing the keys failed: %s", err.detail);
    if (status == 200) {
        char again[128];
        int m = snprintf(again, sizeof again, "{\"id\":\"%s\",\"stored\":false}\n", id);
        return send_bytes(c, r, 200, "application/json", again, (size_t)m);
    }
    char body[160];
    int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"stored\":true,\"model\":\"%s\"}\n", id, s->models[model].name);
    return send_bytes(c, r, 201, "application/json", body, (size_t)n);
}

/* Removes the tenant's ownership of bundle id; the bundle itself goes with its last owner. */
static enum MHD_Result delete_keys(veil_server *s, struct MHD_Connection *c, request *r, const char *id)
{
    key_entry *victim = NULL;
    int owned = 0;
    pthread_mutex_lock(&s->lock);
    key_entry *held = find_entry(s, id);
    if (held && owned_by(held, r->tenant)) {
        char rec[4200];
        owner_path(s, r->tenant, id, rec, sizeof rec);
        unlink(rec);
        remove_owner(held, r->tenant);
        owned = 1;
    }
    for (size_t i = 0; owned && i < s->n_stored; i++)
        if (s->stored[i] == held && held->n_owners == 0) {
            victim = s->stored[i];
            s->stored[i] = s->stored[--s->n_stored];
            s->stored_bytes -= victim->bytes;
            victim->deleted = 1;
            atomic_fetch_sub(&s->cache_bytes, victim->cached); /* its memory goes with its last request */
            victim->cached = 0;
            break;
        }
    int free_now = victim && victim->refs == 0;
    if (victim) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.keys", s->keys_dir, id);
        unlink(path); /* under the lock: a concurrent upload of the same id is not undone */
    }
    pthread_mutex_unlock(&s->lock);
    if (!owned) return send_error(c, r, 404, "no stored keys with id %s", id);
    if (free_now) free_entry(victim);
    return send_bytes(c, r, 200, "application/json", "{\"deleted\":true}\n", 17);
}

/* A request's ciphertexts through the keys' evaluator, the outputs saved into out; *stage names what failed
 * ("ciphertexts": the body; "evaluation": the work). */
static veil_status evaluate_body(const key_entry *k, const model_entry *m, const request *r, veil_buffer *out,
                                 const char **stage, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_ciphertexts *in = NULL, *res = NULL;
    *stage = "ciphertexts";
    VEIL_CHECK(veil_ciphertexts_load(&in, NULL, k->keys, r->body, r->len, err));
    *stage = "evaluation";
    VEIL_CHECK(veil_evaluator_run(k->ev, &res, in, NULL, NULL, err));
    if (m->options.dp_epsilon) /* the model's side file asks for output noise: added before anything leaves */
        VEIL_CHECK(veil_ciphertexts_add_dp_noise(res, k->keys, m->options.dp_epsilon, m->options.dp_delta,
                                                 m->options.dp_sensitivity, NULL, err));
    VEIL_CHECK(veil_ciphertexts_save(out, res, err));
done:
    veil_ciphertexts_free(res);
    veil_ciphertexts_free(in);
    return st;
}

static enum MHD_Result predict(veil_server *s, struct MHD_Connection *c, request *r, model_entry *m, const char *id)
{
    if (!id || !valid_id(id)) return send_error(c, r, 400, "give the key id: /v1/models/%s/predict?keys=ID", m->name);
    key_entry *k = r->key; /* looked up before the body was read */
    if (k) r->key = NULL;
    else k = acquire_key(s, id, r->tenant);
    if (!k) return send_error(c, r, 404, "no stored keys with id %s: upload them first (POST /v1/keys)", id);
    veil_error err = {0};
    enum MHD_Result ret;
    if (!cache_admit(s, k)) {
        ret = over_budget(s, c, r, cache_estimate(k));
        release_key(s, k);
        return ret;
    }
    const veil_status st = load_key(s, k, &err);
    if (st != VEIL_OK) {
        ret = send_error(c, r, status_for(st), "keys %s: %s", id, err.detail);
    } else if (&s->models[k->model] != m) {
        ret = send_error(c, r, 409, "keys %s were made for model %s, not %s", id, s->models[k->model].name, m->name);
    } else {
        veil_buffer ob = {0};
        const char *stage = NULL;
        const veil_status ran = evaluate_body(k, m, r, &ob, &stage, &err);
        ret = ran == VEIL_OK ? send_bytes(c, r, 200, "application/octet-stream", ob.data, ob.len)
                             : send_error(c, r, status_for(ran), "%s: %s", stage, err.detail);
        veil_buffer_free(&ob);
    }
    release_key(s, k);
    return ret;
}

/* ---- tenants ------------------------------------------------------------------------------------------- */

/* STORE/tokens again when it changed since last read (a token added or revoked): under auth_lock. A token file
 * that cannot be read or is malformed leaves no token valid (said on stderr) until it is fixed. */
static void refresh_tokens(veil_server *s)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokens", s->store_dir);
    struct stat sb;
    if (stat(path, &sb) != 0) memset(&sb, 0, sizeof sb);
    const struct stat *o = &s->tokens_seen;
    if (s->tokens_read && sb.st_ino == o->st_ino && sb.st_dev == o->st_dev && sb.st_size == o->st_size &&
        sb.st_mtim.tv_sec == o->st_mtim.tv_sec && sb.st_mtim.tv_nsec == o->st_mtim.tv_nsec &&
        sb.st_ctim.tv_sec == o->st_ctim.tv_sec && sb.st_ctim.tv_nsec == o->st_ctim.tv_nsec)
        return;
    veil_token_entry *e = NULL;
    size_t n = 0;
    veil_error err = {0};
    if (veil_tokens_read(s->store_dir, &e, &n, &err) != VEIL_OK) {
        fprintf(stderr, "veil: %s: no token is accepted until it is fixed\n", err.detail);
        e = NULL;
        n = 0;
    }
    if (s->tokens) sodium_memzero(s->tokens, s->n_tokens * sizeof *s->tokens);
    free(s->tokens);
    s->tokens = e;
    s->n_tokens = n;
    s->tokens_seen = sb;
    s->tokens_read = 1;
}

/* The tenant of the request's bearer token into r: 1, or 0 without a valid one. Every token is compared, in
 * constant time. Without authentication (--no-auth), every request is the tenant "anonymous". */
static int authenticate(veil_server *s, struct MHD_Connection *c, request *r)
{
    if (s->cfg.no_auth) {
        snprintf(r->tenant, sizeof r->tenant, "%s", VEIL_TENANT_ANONYMOUS);
        return 1;
    }
    const char *h = lookup(c, r, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    const char *t = h + 7;
    while (*t == ' ') t++;
    size_t len = strlen(t);
    while (len && t[len - 1] == ' ') len--;
    if (len == 0 || len > 512) return 0;
    uint8_t hash[32];
    veil_token_hash(t, len, hash);
    int found = -1;
    pthread_mutex_lock(&s->auth_lock);
    refresh_tokens(s);
    for (size_t i = 0; i < s->n_tokens; i++)
        if (sodium_memcmp(hash, s->tokens[i].hash, sizeof hash) == 0) found = (int)i;
    if (found >= 0) {
        snprintf(r->tenant, sizeof r->tenant, "%.64s", s->tokens[found].tenant);
        r->admin = s->tokens[found].admin;
    }
    pthread_mutex_unlock(&s->auth_lock);
    sodium_memzero(hash, sizeof hash);
    return found >= 0;
}

/* GET /v1/tenants (admin scope): each tenant of the tokens, with its tokens, scope and stored bundles. */
static enum MHD_Result list_tenants(veil_server *s, struct MHD_Connection *c, request *r)
{
    if (!r->admin) return send_error(c, r, 403, "listing the tenants needs a token of the admin scope");
    pthread_mutex_lock(&s->auth_lock);
    refresh_tokens(s);
    const size_t n = s->n_tokens;
    veil_token_entry *t = n ? malloc(n * sizeof *t) : NULL;
    if (t) memcpy(t, s->tokens, n * sizeof *t);
    pthread_mutex_unlock(&s->auth_lock);
    if (n && !t) return send_error(c, r, 500, "out of memory");
    const size_t cap = 64 + n * (VEIL_TENANT_MAX + 128);
    char *body = malloc(cap);
    if (!body) {
        free(t);
        return send_error(c, r, 500, "out of memory");
    }
    size_t len = (size_t)snprintf(body, cap, "{\"tenants\":[");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        size_t tokens = 0, bundles = 0;
        int admin = 0, seen = 0;
        for (size_t j = 0; j < n; j++)
            if (!strcmp(t[j].tenant, t[i].tenant)) {
                seen |= j < i;
                tokens++;
                admin |= t[j].admin;
            }
        if (seen) continue;
        uint64_t bytes = 0;
        pthread_mutex_lock(&s->lock);
        for (size_t k = 0; k < s->n_stored; k++)
            if (owned_by(s->stored[k], t[i].tenant)) {
                bundles++;
                bytes += s->stored[k]->bytes;
            }
        pthread_mutex_unlock(&s->lock);
        len += (size_t)snprintf(body + len, cap - len,
                                "%s{\"name\":\"%s\",\"tokens\":%zu,\"admin\":%s,\"bundles\":%zu,\"bytes\":%llu}",
                                first ? "" : ",", t[i].tenant, tokens, admin ? "true" : "false", bundles,
                                (unsigned long long)bytes);
        first = 0;
    }
    len += (size_t)snprintf(body + len, cap - len, "]}\n");
    free(t);
    enum MHD_Result ret = send_bytes(c, r, 200, "application/json", body, len);
    free(body);
    return ret;
}

static enum MHD_Result metrics(veil_server *s, struct MHD_Connection *c, request *r)
{
    char body[8192];
    size_t n = 0;
    n += (size_t)snprintf(body + n, sizeof body - n, "# TYPE veil_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        n += (size_t)snprintf(body + n, sizeof body - n, "veil_requests_total{endpoint=\"%s\"} %llu\n",
                              endpoint_names[e], (unsigned long long)s->requests[e]);
    n += (size_t)snprintf(body + n, sizeof body - n, "# TYPE veil_responses_total counter\n");
    for (int k = 1; k < 6; k++)
        n += (size_t)snprintf(body + n, sizeof body - n, "veil_responses_total{class=\"%dxx\"} %llu\n", k,
                              (unsigned long long)s->status_counts[k]);
    n += (size_t)snprintf(body + n, sizeof body - n, "# TYPE veil_errors_total counter\n");
    for (size_t k = 0; k < N_ERROR_CODES; k++)
        n += (size_t)snprintf(body + n, sizeof body - n, "veil_errors_total{kind=\"%s\",status=\"%u\"} %llu\n",
                              error_kinds[k], error_codes[k], (unsigned long long)s->error_counts[k]);
    n += (size_t)snprintf(body + n, sizeof body - n, "# TYPE veil_request_seconds histogram\n");
    unsigned long long cum = 0;
    for (size_t b = 0; b <= N_BUCKETS; b++) {
        cum += s->hist[b];
        if (b < N_BUCKETS)
            n += (size_t)snprintf(body + n, sizeof body - n, "veil_request_seconds_bucket{le=\"%g\"} %llu\n", buckets[b], cum);
        else
            n += (size_t)snprintf(body + n, sizeof body - n, "veil_request_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    }
    pthread_mutex_lock(&s->lock);
    n += (size_t)snprintf(body + n, sizeof body - n, "veil_request_seconds_sum %.6f\nveil_request_seconds_count %llu\n",
                          s->latency_sum, cum);
    size_t keys = s->n_stored, loaded = 0;
    uint64_t bytes = s->stored_bytes;
    for (size_t i = 0; i < s->n_stored; i++) loaded += s->stored[i]->cached != 0;
    pthread_mutex_unlock(&s->lock);
    n += (size_t)snprintf(body + n, sizeof body - n,
                          "# TYPE veil_cache_loaded_keys gauge\nveil_cache_loaded_keys %zu\n"
                          "# TYPE veil_cache_bytes gauge\nveil_cache_bytes %llu\n"
                          "# TYPE veil_cache_evictions_total counter\nveil_cache_evictions_total %llu\n"
                          "# TYPE veil_body_bytes gauge\nveil_body_bytes %llu\n"
                          "# TYPE veil_over_budget_total counter\nveil_over_budget_total %llu\n",
                          loaded, (unsigned long long)atomic_load(&s->cache_bytes),
                          (unsigned long long)atomic_load(&s->evictions),
                          (unsigned long long)atomic_load(&s->body_bytes),
                          (unsigned long long)atomic_load(&s->over_budget));
    n += (size_t)snprintf(body + n, sizeof body - n,
                          "# TYPE veil_bytes_received_total counter\nveil_bytes_received_total %llu\n"
                          "# TYPE veil_bytes_sent_total counter\nveil_bytes_sent_total %llu\n"
                          "# TYPE veil_stored_keys gauge\nveil_stored_keys %zu\n"
                          "# TYPE veil_stored_key_bytes gauge\nveil_stored_key_bytes %llu\n"
                          "# TYPE veil_deadline_closes_total counter\nveil_deadline_closes_total %llu\n"
                          "# TYPE veil_limit_refusals_total counter\nveil_limit_refusals_total{limit=\"rate\"} %llu\n"
                          "veil_limit_refusals_total{limit=\"predictions\"} %llu\n",
                          (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out, keys,
                          (unsigned long long)bytes, (unsigned long long)s->deadline_closes,
                          (unsigned long long)s->rate_refusals, (unsigned long long)s->prediction_refusals);
    return send_bytes(c, r, 200, "text/plain; version=0.0.4", body, n);
}

/* Routes a path; *name and *id point into buf (a copy of the path). */
static endpoint route(const char *method, const char *url, char *buf, size_t cap, const char **name)
{
    *name = NULL;
    snprintf(buf, cap, "%s", url);
    int get = !strcmp(method, "GET"), post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
    if (get && !strcmp(buf, "/healthz")) return EP_HEALTH;
    if (get && !strcmp(buf, "/metrics")) return EP_METRICS;
    if (get && !strcmp(buf, "/v1/models")) return EP_MODELS;
    if (get && !strcmp(buf, "/v1/tenants")) return EP_TENANTS;
    if (post && !strcmp(buf, "/v1/keys")) return EP_KEYS_POST;
    if (!strncmp(buf, "/v1/keys/", 9)) {
        *name = buf + 9;
        return get ? EP_KEYS_GET : del ? EP_KEYS_DELETE : EP_OTHER;
    }
    if (!strncmp(buf, "/v1/models/", 11)) {
        char *rest = buf + 11, *slash = strchr(rest, '/');
        *name = rest;
        if (!slash) return get ? EP_MODEL : EP_OTHER;
        *slash = 0;
        if (get && !strcmp(slash + 1, "plan")) return EP_PLAN;
        if (post && !strcmp(slash + 1, "predict")) return EP_PREDICT;
    }
    return EP_OTHER;
}

static enum MHD_Result dispatch(veil_server *s, struct MHD_Connection *c, request *r, const char *url,
                                const char *method)
{
    char buf[256];
    const char *name;
    endpoint ep = route(method, url, buf, sizeof buf, &name);
    if (r->too_large)
        return send_error(c, r, 413, "the body is larger than the %zu bytes this endpoint accepts", r->limit);
    switch (ep) {
    case EP_HEALTH: return send_bytes(c, r, 200, "application/json", "{\"status\":\"ok\"}\n", 16);
    case EP_METRICS: return metrics(s, c, r);
    case EP_MODELS: return list_models(s, c, r);
    case EP_TENANTS: return list_tenants(s, c, r);
    case EP_KEYS_POST: return upload_keys(s, c, r);
    case EP_KEYS_GET: {
        if (!valid_id(name)) return send_error(c, r, 400, "malformed key id");
        key_entry *k = acquire_key(s, name, r->tenant);
        if (!k) return send_error(c, r, 404, "no stored keys with id %s", name);
        char body[128];
        int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"bytes\":%llu}\n", k->id, (unsigned long long)k->bytes);
        release_key(s, k);
        return send_bytes(c, r, 200, "application/json", body, (size_t)n);
    }
    case EP_KEYS_DELETE:
        if (!valid_id(name)) return send_error(c, r, 400, "malformed key id");
        return delete_keys(s, c, r, name);
    case EP_MODEL:
    case EP_PLAN:
    case EP_PREDICT: {
        model_entry *m = valid_name(name, NAME_MAX_LEN - 1) ? find_model(s, name) : NULL;
        if (!m) return send_error(c, r, 404, "no model named '%.100s' (GET /v1/models lists them)", name);
        if (ep == EP_MODEL) return describe_model(s, c, r, m);
        if (ep == EP_PLAN) {
            const char *p = lookup(c, r, MHD_GET_ARGUMENT_KIND, "packing");
            int k = p && !strcmp(p, "latency") ? 1 : 0;
            if (p && k == 0 && strcmp(p, "throughput") != 0)
                return send_error(c, r, 400, "packing is throughput or latency");
            return send_bytes(c, r, 200, "application/octet-stream", m->plan_files[k].data, m->plan_files[k].len);
        }
        return predict(s, c, r, m, lookup(c, r, MHD_GET_ARGUMENT_KIND, "keys"));
    }
    default: {
        static const char *const known[] = {"/healthz", "/metrics", "/v1/models", "/v1/keys", "/v1/tenants"};
        for (size_t i = 0; i < sizeof known / sizeof *known; i++)
            if (!strncmp(url, known[i], strlen(known[i])))
                return send_error(c, r, 405, "%s is not allowed on %.100s (see docs/net.md)", method, url);
        return send_error(c, r, 404, "no such endpoint: %s %.100s", method, url);
    }
    }
}

/* A prediction's keys, before its body is read: a missing or malformed id (400), one the tenant does not hold
 * (404), or keys known to be of another model (409) are answered at once, and the body is dropped unread. The
 * keys found are held (r->key) until the request completes: they are not evicted under it. */
static enum MHD_Result early_key(veil_server *s, struct MHD_Connection *c, request *r, const model_entry *m)
{
    const char *id = lookup(c, r, MHD_GET_ARGUMENT_KIND, "keys");
    r->too_large = 1; /* drop the body unless it is wanted (below) */
    if (!id || !valid_id(id)) return send_error(c, r, 400, "give the key id: /v1/models/%s/predict?keys=ID", m->name);
    r->key = acquire_key(s, id, r->tenant);
    if (!r->key) return send_error(c, r, 404, "no stored keys with id %s: upload them first (POST /v1/keys)", id);
    pthread_mutex_lock(&s->lock);
    const int known = r->key->known_model;
    pthread_mutex_unlock(&s->lock);
    if (known >= 0 && &s->models[known] != m)
        return send_error(c, r, 409, "keys %s were made for model %s, not %s", id, s->models[known].name, m->name);
    r->too_large = 0;
    return MHD_YES;
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
            return over_budget(s, c, r, declared);
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

/* One step of a request (libmicrohttpd's access handler): the headers (first call), a piece of the body, or
 * its end (the answer). c NULL: the offline request q (veil_server_handle). */
static enum MHD_Result step(veil_server *s, struct MHD_Connection *c, const veil_server_request *q, const char *url,
                            const char *method, const char *upload_data, size_t *upload_size, void **state)
{
    request *r = *state;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        if (q) {
            r->offline = q;
            r->query = strchr(q->url, '?');
            if (r->query) r->query++;
        }
        r->t0 = now_s();
        veil_body_init(&r->store);
        snprintf(r->method, sizeof r->method, "%s", method);
        snprintf(r->path, sizeof r->path, "%s", url);
        char buf[256];
        const char *name;
        r->ep = route(method, url, buf, sizeof buf, &name);
        r->limit = SMALL_BODY;
        if (r->ep == EP_KEYS_POST) r->limit = s->key_limit;
        model_entry *m = NULL;
        if (r->ep == EP_PREDICT) {
            m = valid_name(name, NAME_MAX_LEN - 1) ? find_model(s, name) : NULL;
            if (m) r->limit = m->body_limit;
        }
        atomic_fetch_add(&s->in_flight, 1);
        *state = r;
        const char *why = NULL;
        const unsigned bad = c ? malformed(c, method, &why) : 0;
        if (bad) { /* answered, and the connection closed: what follows the headers cannot be trusted */
            r->too_large = 1; /* drop the body */
            return send_error_with(c, r, bad, MHD_HTTP_HEADER_CONNECTION, "close", why);
        }
        if (atomic_load(&s->stopping) && r->ep != EP_HEALTH) { /* requests begun before stopping finish */
            r->too_large = 1; /* drop the body */
            return send_error(c, r, 503, "the server is shutting down");
        }
        if (r->ep != EP_HEALTH && r->ep != EP_METRICS && !authenticate(s, c, r)) {
            r->too_large = 1; /* drop the body */
            return send_error_with(c, r, 401, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"veil\"",
                                   "a valid bearer token is required (Authorization: Bearer TOKEN; "
                                   "veil token add makes one)");
        }
        if (r->ep == EP_PREDICT && !m) {
            r->too_large = 1; /* drop the body */
            return send_error(c, r, 404, "no model named '%.100s' (GET /v1/models lists them)", name);
        }
        unsigned retry = 0;
        const char *refused = NULL;
        if (r->ep != EP_HEALTH && r->ep != EP_METRICS && admit(s, r, &retry, &refused)) {
            r->too_large = 1; /* drop the body */
            char after[16];
            snprintf(after, sizeof after, "%u", retry);
            return send_error_with(c, r, 429, MHD_HTTP_HEADER_RETRY_AFTER, after, refused);
        }
        if (r->ep == EP_PREDICT && early_key(s, c, r, m) != MHD_YES) return MHD_NO;
        if (r->status) return MHD_YES; /* answered from the headers: the body is dropped unread */
        const char *cl = lookup(c, r, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const unsigned long long announced = cl ? strtoull(cl, NULL, 10) : 0;
        if (cl && announced > r->limit) {
            r->too_large = 1;
            return send_error(c, r, 413, "the body (%s bytes) is larger than the %zu bytes this endpoint accepts", cl,
                              r->limit);
        }
        return expect_body(s, c, r, announced);
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        atomic_fetch_add(&s->bytes_in, n);
        if (r->status || r->too_large || r->over_budget || r->body_failed) return MHD_YES; /* dropped */
        if (r->len + n > r->limit) {
            r->too_large = 1; /* keep reading and dropping: the answer is 413 */
            veil_body_free(&r->store);
            return MHD_YES;
        }
        take_body(s, r, upload_data, n);
        return MHD_YES;
    }
    conn_mark(s, c, 1); /* the request has arrived whole: the deadline no longer applies */
    if (r->status) return MHD_YES; /* answered already (413 on the header) */
    if (r->too_large) return dispatch(s, c, r, url, method);
    if (r->over_budget) return over_budget(s, c, r, r->len);
    veil_error err = {0};
    if (!r->body_failed && veil_body_finish(&r->store, &r->body, &err) != VEIL_OK) r->body_failed = 1;
    if (r->body_failed) return send_error(c, r, 500, "the request's body could not be kept: %s", r->body_error);
    return dispatch(s, c, r, url, method);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size, void **state)
{
    (void)version;
    return step(cls, c, NULL, url, method, upload_data, upload_size, state);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode code)
{
    veil_server *s = cls;
    request *r = *state;
    if (!r) return;
    const double dt = now_s() - r->t0;
    s->requests[r->ep]++;
    if (r->status >= 100 && r->status < 600) s->status_counts[r->status / 100]++;
    for (size_t k = 0; k < N_ERROR_CODES; k++)
        if (r->status == error_codes[k]) s->error_counts[k]++;
    size_t b = 0;
    while (b < N_BUCKETS && dt > buckets[b]) b++;
    s->hist[b]++;
    pthread_mutex_lock(&s->lock);
    s->latency_sum += dt;
    pthread_mutex_unlock(&s->lock);
    s->bytes_out += r->out_bytes;
    if (!s->cfg.quiet) {
        char path[400];
        json_escape(path, sizeof path, r->path);
        fprintf(stderr, "{\"ts\":%lld,\"method\":\"%s\",\"path\":\"%s\",\"status\":%u,\"ms\":%.3f,\"in\":%zu,\"out\":%zu%s%s%s%s}\n",
                (long long)time(NULL), r->method, path, r->status, dt * 1e3, r->len, r->out_bytes,
                r->tenant[0] ? ",\"tenant\":\"" : "", r->tenant, r->tenant[0] ? "\"" : "",
                code == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : ",\"aborted\":true");
    }
    prediction_done(s, r);
    if (c) conn_mark(s, c, 0); /* the next request on this connection has its own deadline */
    veil_body_free(&r->store); /* a temporary file goes with it */
    atomic_fetch_sub(&s->body_bytes, r->reserved);
    if (r->key) release_key(s, r->key);
    free(r);
    *state = NULL;
    atomic_fetch_sub(&s->in_flight, 1);
}

/* ---- start and stop ---------------------------------------------------------------------------------- */

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static veil_status read_text(const char *path, char **out, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_buffer b = {0};
    VEIL_CHECK(veil_file_read(&b, path, 1 << 20, err));
    *out = malloc(b.len + 1);
    if (!*out) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "tls");
    memcpy(*out, b.data, b.len);
    (*out)[b.len] = 0;
done:
    veil_buffer_free(&b);
    return st;
}

static veil_status parse_listen(const char *listen, struct sockaddr_in *addr, veil_error *err)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "--listen wants HOST:PORT, not '%s'", listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &addr->sin_addr) != 1)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "--listen wants an IPv4 HOST:PORT, not '%s'", listen);
    return VEIL_OK;
}

void veil_server_stop(veil_server *s)
{
    if (!s) return;
    atomic_store(&s->stopping, 1);
    if (s->daemon) {
        const MHD_socket listener = MHD_quiesce_daemon(s->daemon); /* no new connections; those open finish */
        for (int i = 0; i < 3000 && atomic_load(&s->in_flight) > 0; i++) {
            struct timespec t = {0, 10 * 1000 * 1000};
            nanosleep(&t, NULL);
        }
        MHD_stop_daemon(s->daemon);
        if (listener != MHD_INVALID_SOCKET) close(listener); /* quiescing handed it to us */
    }
    if (s->watchdog_started) { /* after the daemon: no connection is left for it */
        atomic_store(&s->watchdog_stop, 1);
        pthread_join(s->watchdog, NULL);
    }
    while (s->conns) { /* none left once the daemon stopped; in case */
        conn_entry *e = s->conns;
        s->conns = e->next;
        free(e);
    }
    for (size_t i = 0; i < s->n_stored; i++) free_entry(s->stored[i]); /* evaluators before their models */
    s->n_stored = 0;
    for (size_t i = 0; i < s->n_models; i++) free_model(&s->models[i]);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->auth_lock);
    pthread_mutex_destroy(&s->conn_lock);
    pthread_mutex_destroy(&s->limits_lock);
    free(s->tenant_limits);
    if (s->tokens) sodium_memzero(s->tokens, s->n_tokens * sizeof *s->tokens);
    free(s->tokens);
    free(s->models_dir);
    free(s->store_dir);
    free(s->keys_dir);
    free(s->tmp_dir);
    free(s->tls_cert_pem);
    free(s->tls_key_pem);
    free(s);
}

uint16_t veil_server_port(const veil_server *s) { return s ? s->port : 0; }

/* libmicrohttpd's daemon on addr: a thread pool, HTTPS when the server has a certificate, the connection limits;
 * NULL when it cannot listen. */
static struct MHD_Daemon *start_daemon(veil_server *s, const struct sockaddr_in *addr)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_EPOLL;
    struct MHD_OptionItem o[13];
    size_t n = 0;
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)addr};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, s->cfg.threads, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, s->cfg.timeout_s, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_connections, NULL};
    if (limit_on(s->cfg.max_connections_per_address))
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->cfg.max_connections_per_address, NULL};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, s};
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, s};
    if (s->tls_cert_pem) {
        flags |= MHD_USE_TLS;
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert_pem};
        o[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key_pem};
    }
    o[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, o, MHD_OPTION_END);
}

/* The server of cfg: models, store, tokens; listening when listen is 1. */
static veil_status server_open(veil_server **out, const veil_server_config *cfg, int listen_on, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(cfg, err);
    if (!cfg->models_dir || !cfg->store_dir) return veil_fail(err, VEIL_ERR_ARGUMENT, "serve: --models and --store are required");
    if (!cfg->tls_cert != !cfg->tls_key) return veil_fail(err, VEIL_ERR_ARGUMENT, "serve: TLS needs both a certificate and a key");
    veil_server *s = calloc(1, sizeof *s);
    if (!s) return veil_fail(err, VEIL_ERR_NO_MEMORY, "server");
    veil_status st = VEIL_OK;
    struct sockaddr_in addr;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->auth_lock, NULL);
    pthread_mutex_init(&s->conn_lock, NULL);
    pthread_mutex_init(&s->limits_lock, NULL);
    s->cfg = *cfg;
    if (!s->cfg.threads) s->cfg.threads = 4;
    if (!s->cfg.eval_threads) s->cfg.eval_threads = 1;
    if (!s->cfg.max_keys) s->cfg.max_keys = 64;
    if (s->cfg.max_keys > MAX_STORED) s->cfg.max_keys = MAX_STORED;
    if (!s->cfg.max_store_bytes) s->cfg.max_store_bytes = (uint64_t)4 << 30;
    if (!s->cfg.timeout_s) s->cfg.timeout_s = 60;
    if (!s->cfg.max_batches) s->cfg.max_batches = 16;
    if (!s->cfg.tenant_rps) s->cfg.tenant_rps = listen_on ? 200 : VEIL_LIMIT_OFF; /* offline: as fast as asked */
    if (!s->cfg.tenant_burst) s->cfg.tenant_burst = limit_on(s->cfg.tenant_rps) && s->cfg.tenant_rps < 5 ? 10 : 2 * s->cfg.tenant_rps;
    if (!s->cfg.tenant_max_predictions) s->cfg.tenant_max_predictions = 32;
    if (!s->cfg.max_connections || !limit_on(s->cfg.max_connections)) s->cfg.max_connections = 512;
    if (!s->cfg.max_connections_per_address) s->cfg.max_connections_per_address = 32;
    if (!s->cfg.request_deadline_s) s->cfg.request_deadline_s = 30;
    if (!s->cfg.cache_bytes) s->cfg.cache_bytes = (uint64_t)1 << 30;
    if (!s->cfg.memory_budget) s->cfg.memory_budget = (uint64_t)4 << 30;
    s->models_dir = dup_str(cfg->models_dir);
    s->store_dir = dup_str(cfg->store_dir);
    s->keys_dir = malloc(strlen(cfg->store_dir) + 8);
    s->tmp_dir = malloc(strlen(cfg->store_dir) + 8);
    if (!s->models_dir || !s->store_dir || !s->keys_dir || !s->tmp_dir) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "server");
    sprintf(s->keys_dir, "%s/keys", cfg->store_dir);
    sprintf(s->tmp_dir, "%s/tmp", cfg->store_dir);
    const char *listen = cfg->listen ? cfg->listen : "127.0.0.1:8080";
    VEIL_CHECK(parse_listen(listen, &addr, err));
    const int loopback = (ntohl(addr.sin_addr.s_addr) >> 24) == 127;
    if (cfg->no_auth && !loopback)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT,
                  "serve: --no-auth serves everyone without a token: only on a loopback address (127.x.x.x), not %s",
                  listen);
    if (!cfg->tls_cert && !loopback && !cfg->insecure_http)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT,
                  "serve: %s is not a loopback address: give --tls-cert and --tls-key (HTTPS), or --insecure-http "
                  "to serve plain HTTP behind a proxy that terminates TLS",
                  listen);
    VEIL_CHECK(load_models(s, err));
    VEIL_CHECK(open_store(s, err));
    if (!cfg->no_auth) {
        VEIL_CHECK(veil_tokens_read(s->store_dir, &s->tokens, &s->n_tokens, err)); /* a bad file stops the start */
        pthread_mutex_lock(&s->auth_lock);
        refresh_tokens(s);
        pthread_mutex_unlock(&s->auth_lock);
        if (!s->n_tokens)
            fprintf(stderr, "veil: no token in %s/tokens yet: every request but /healthz and /metrics is refused "
                            "(veil token add --store %s --tenant NAME)\n", s->store_dir, s->store_dir);
    }
    if (cfg->tls_cert) {
        VEIL_CHECK(read_text(cfg->tls_cert, &s->tls_cert_pem, err));
        VEIL_CHECK(read_text(cfg->tls_key, &s->tls_key_pem, err));
    }
    if (listen_on && limit_on(s->cfg.request_deadline_s)) {
        if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0)
            VEIL_FAIL(err, VEIL_ERR_INTERNAL, "serve: cannot start the request deadline's thread");
        s->watchdog_started = 1;
    }
    if (listen_on) s->daemon = start_daemon(s, &addr);
    if (listen_on && !s->daemon)
        VEIL_FAIL(err, VEIL_ERR_IO, "cannot listen on %s (in use, or not an address of this machine)",
                  cfg->listen ? cfg->listen : "127.0.0.1:8080");
    const union MHD_DaemonInfo *info = s->daemon ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    s->port = info ? info->port : ntohs(addr.sin_port);
    *out = s;
    s = NULL;
done:
    veil_server_stop(s); /* after a failure: what was started stops, what was loaded is freed */
    return st;
}

veil_status veil_server_start(veil_server **out, const veil_server_config *cfg, veil_error *err)
{
    return server_open(out, cfg, 1, err);
}

veil_status veil_server_open(veil_server **out, const veil_server_config *cfg, veil_error *err)
{
    return server_open(out, cfg, 0, err);
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
    on_completed(s, NULL, &state, MHD_REQUEST_TERMINATED_COMPLETED_OK);
    return status;
}
