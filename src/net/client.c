/* The client of `veil serve` (libcurl): uploads evaluation keys once, sends ciphertexts, retries safely. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include "veil/net.h"
#include "core/core_internal.h"

#define MAX_RESPONSE ((size_t)1 << 34)
#define ATTEMPTS 4
#define RETRY_AFTER_TOTAL 60 /* seconds of Retry-After waits one request may take before it fails */

struct veil_client {
    CURL *curl;
    char base[512];
    char ca_file[512]; /* a CA bundle for HTTPS servers with their own certificate ("" : the system's) */
    char auth[600];    /* "Authorization: Bearer TOKEN" ("": no token) */
    veil_progress_fn progress; /* the body's bytes as they are sent (NULL: no reports) */
    void *progress_arg;
    uint64_t sent, received;
};

typedef struct sink {
    uint8_t *data;
    size_t len, cap;
    int overflow;
} sink;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    sink *s = arg;
    size_t n = size * nmemb;
    if (s->len + n > MAX_RESPONSE) {
        s->overflow = 1;
        return 0;
    }
    if (s->len + n + 1 > s->cap) { /* one spare byte: the body is kept NUL-terminated */
        size_t cap = s->cap ? s->cap : 65536;
        while (cap < s->len + n + 1) cap *= 2;
        uint8_t *d = realloc(s->data, cap);
        if (!d) return 0;
        s->data = d;
        s->cap = cap;
    }
    memcpy(s->data + s->len, ptr, n);
    s->len += n;
    s->data[s->len] = 0;
    return n;
}

/* libcurl's transfer callback: the body's bytes sent so far, to the client's progress function. The whole
 * body (done == total) is reported once, when the server has answered (request). */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    const veil_client *c = arg;
    if (ultotal > 0 && ulnow < ultotal) c->progress(c->progress_arg, (size_t)ulnow, (size_t)ultotal);
    return 0;
}

static veil_status global_init(veil_error *err)
{
    static int done; /* libcurl's own process-wide initialization, once (not thread-safe by curl's design) */
    if (!done && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return veil_fail(err, VEIL_ERR_INTERNAL, "libcurl could not be initialized");
    done = 1;
    return VEIL_OK;
}

veil_status veil_client_new(veil_client **out, const char *base_url, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(base_url, err);
    if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "the server URL must start with http:// or https://, not '%s'", base_url);
    if (strlen(base_url) >= 500) return veil_fail(err, VEIL_ERR_ARGUMENT, "the server URL is too long");
    veil_status st = VEIL_OK;
    veil_client *c = NULL;
    VEIL_CHECK(global_init(err));
    c = calloc(1, sizeof *c);
    if (!c) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "client");
    c->curl = curl_easy_init();
    if (!c->curl) VEIL_FAIL(err, VEIL_ERR_INTERNAL, "libcurl: no handle");
    snprintf(c->base, sizeof c->base, "%s", base_url);
    size_t n = strlen(c->base);
    while (n && c->base[n - 1] == '/') c->base[--n] = 0;
    *out = c;
    c = NULL;
done:
    veil_client_free(c); /* after a failure */
    return st;
}

void veil_client_free(veil_client *c)
{
    if (!c) return;
    curl_easy_cleanup(c->curl);
    veil_wipe(c->auth, sizeof c->auth);
    free(c);
}

veil_status veil_client_set_ca_file(veil_client *c, const char *path, veil_error *err)
{
    VEIL_REQUIRE(c, err);
    VEIL_REQUIRE(path, err);
    if (strlen(path) >= sizeof c->ca_file) return veil_fail(err, VEIL_ERR_ARGUMENT, "CA file path too long");
    if (access(path, R_OK) != 0) return veil_fail(err, VEIL_ERR_IO, "cannot read the CA file %s", path);
    snprintf(c->ca_file, sizeof c->ca_file, "%s", path);
    return VEIL_OK;
}

veil_status veil_client_set_token(veil_client *c, const char *token, veil_error *err)
{
    VEIL_REQUIRE(c, err);
    veil_wipe(c->auth, sizeof c->auth);
    if (!token || !*token) return VEIL_OK;
    const size_t len = strlen(token);
    if (len > 512) return veil_fail(err, VEIL_ERR_ARGUMENT, "the token is longer than 512 characters");
    for (size_t i = 0; i < len; i++) /* a header value: printable ASCII without spaces, nothing that ends it */
        if (token[i] <= ' ' || token[i] > '~')
            return veil_fail(err, VEIL_ERR_ARGUMENT, "the token holds a character that is not printable ASCII");
    snprintf(c->auth, sizeof c->auth, "Authorization: Bearer %s", token);
    return VEIL_OK;
}

void veil_client_set_progress(veil_client *c, veil_progress_fn progress, void *arg)
{
    if (!c) return;
    c->progress = progress;
    c->progress_arg = arg;
}

void veil_client_traffic(const veil_client *c, uint64_t *sent, uint64_t *received)
{
    if (sent) *sent = c ? c->sent : 0;
    if (received) *received = c ? c->received : 0;
}

static int retryable(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_PARTIAL_FILE;
}

/* A gateway's answer that no replica answered (502 Bad Gateway, 504 Gateway Timeout): Veil's server never
 * sends either itself. */
static int gateway_failed(long status) { return status == 502 || status == 504; }

/* The error message of a JSON error body ({"error": "..."}), or the body's start. */
static void error_text(const sink *s, char *out, size_t cap)
{
    const char *p = s->data ? memchr(s->data, '{', s->len) : NULL;
    const char *key = p ? strstr(p, "\"error\":\"") : NULL;
    if (key && s->len && s->data[s->len - 1] == '\n') {
        key += 9;
        size_t i = 0;
        while (key[i] && key[i] != '"' && i + 1 < cap && (const uint8_t *)key + i < s->data + s->len) {
            out[i] = key[i];
            i++;
        }
        out[i] = 0;
        return;
    }
    snprintf(out, cap, "(no message)");
}

/* One attempt at a request: the answer's body into s (emptied first). */
static CURLcode attempt(veil_client *c, const char *method, const char *url, const uint8_t *body, size_t len,
                        const char *type, sink *s)
{
    free(s->data);
    memset(s, 0, sizeof *s);
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a transfer that stalls for 5 minutes fails */
    curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, 300L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    if (c->ca_file[0]) curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_file); /* verification stays on */
    struct curl_slist *headers = NULL;
    if (c->auth[0]) headers = curl_slist_append(headers, c->auth);
    if (body) {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, (const char *)body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        char h[128];
        snprintf(h, sizeof h, "Content-Type: %s", type ? type : "application/octet-stream");
        headers = curl_slist_append(headers, h);
        headers = curl_slist_append(headers, "Expect:");
        if (c->progress) {
            curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
            curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
            curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
        }
    }
    if (headers) curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
    const CURLcode rc = curl_easy_perform(c->curl);
    curl_slist_free_all(headers);
    return rc;
}

/*
 * The seconds a 429 or 503 answer asks to wait before the same request (its Retry-After, 1 to 30), or 0: no
 * such answer, or a wait too long to take on the caller's behalf.
 */
static unsigned retry_after(veil_client *c, long status)
{
    if (status != 429 && status != 503) return 0;
    struct curl_header *h = NULL;
    if (curl_easy_header(c->curl, "Retry-After", 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h || !h->value) return 0;
    char *end;
    const long v = strtol(h->value, &end, 10);
    return end != h->value && *end == 0 && v >= 1 && v <= 30 ? (unsigned)v : 0;
}

/*
 * One request, retried on connection errors and on a balancer's 502 or 504 (gateway_failed) with backoff (100,
 * 200, 400 ms), and after the waits a server asks for (retry_after): every request Veil makes is idempotent
 * (uploads are content-addressed, predictions are pure functions of their inputs).
 */
static veil_status request(veil_client *c, const char *method, const char *path, const uint8_t *body, size_t len,
                           const char *type, veil_buffer *out, long *http_status, veil_error *err)
{
    veil_status st = VEIL_OK;
    char url[1024];
    snprintf(url, sizeof url, "%s%s", c->base, path);
    sink s = {0};
    CURLcode rc = CURLE_OK;
    long status = 0;
    unsigned waited = 0;
    for (int i = 0; i < ATTEMPTS; i++) {
        rc = attempt(c, method, url, body, len, type, &s);
        if (rc == CURLE_OK) {
            curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
            c->sent += len;
            c->received += s.len;
            if (body && c->progress) c->progress(c->progress_arg, len, len); /* answered: the whole body went */
            const unsigned after = retry_after(c, status);
            if (after && waited + after <= RETRY_AFTER_TOTAL) { /* a tenant's limit, or the server's memory */
                struct timespec t = {(time_t)after, 0};
                nanosleep(&t, NULL);
                waited += after;
                i--; /* not a connection attempt */
                continue;
            }
            /* a balancer's 502 or 504: the replica it chose died or hung with the request (a streaming balancer
             * cannot send the body again itself); another attempt reaches another replica */
            if (!gateway_failed(status) || i + 1 == ATTEMPTS) break; /* attempt() empties the sink */
            struct timespec t = {0, (long)(100 * 1000 * 1000) << i};
            nanosleep(&t, NULL);
            continue;
        }
        if (!retryable(rc) || i + 1 == ATTEMPTS) break;
        struct timespec t = {0, (long)(100 * 1000 * 1000) << i};
        nanosleep(&t, NULL);
    }
    if (rc != CURLE_OK)
        VEIL_FAIL(err, VEIL_ERR_IO, "%s %s: %s", method, url, s.overflow ? "the answer is too large" : curl_easy_strerror(rc));
    *http_status = status;
    if (status >= 400) {
        char msg[400];
        error_text(&s, msg, sizeof msg);
        VEIL_FAIL(err, status == 409 ? VEIL_ERR_MISMATCH : status == 404 ? VEIL_ERR_NOT_FOUND : VEIL_ERR_ARGUMENT,
                  "the server answered %ld: %s", status, msg);
    }
    if (out) {
        out->data = s.data;
        out->len = s.len;
        s.data = NULL; /* the caller's now */
    }
done:
    free(s.data);
    return st;
}

veil_status veil_client_get(veil_client *c, const char *path, veil_buffer *out, veil_error *err)
{
    VEIL_REQUIRE(c, err);
    VEIL_REQUIRE(path, err);
    VEIL_REQUIRE(out, err);
    long status;
    return request(c, "GET", path, NULL, 0, NULL, out, &status, err);
}

veil_status veil_client_upload_keys(veil_client *c, const uint8_t *bundle, size_t len, char id[65], veil_error *err)
{
    VEIL_REQUIRE(c, err);
    VEIL_REQUIRE(bundle, err);
    veil_key_bundle_id(bundle, len, id);
    char path[128];
    snprintf(path, sizeof path, "/v1/keys/%s", id);
    veil_status st = VEIL_OK;
    long status;
    veil_error probe = {0};
    const veil_status stored = request(c, "GET", path, NULL, 0, NULL, NULL, &status, &probe);
    if (stored == VEIL_OK) goto done; /* the server holds them already */
    if (probe.status != VEIL_ERR_NOT_FOUND) VEIL_FAIL(err, probe.status, "%s", probe.detail);
    VEIL_CHECK(request(c, "POST", "/v1/keys", bundle, len, "application/octet-stream", NULL, &status, err));
done:
    return st;
}

veil_status veil_client_predict(veil_client *c, const char *model, const char *key_id, const uint8_t *cts, size_t len,
                                veil_buffer *out, veil_error *err)
{
    VEIL_REQUIRE(c, err);
    VEIL_REQUIRE(model, err);
    VEIL_REQUIRE(key_id, err);
    VEIL_REQUIRE(cts, err);
    VEIL_REQUIRE(out, err);
    char path[512];
    char *m = curl_easy_escape(c->curl, model, 0);
    if (!m) return veil_fail(err, VEIL_ERR_NO_MEMORY, "predict");
    snprintf(path, sizeof path, "/v1/models/%s/predict?keys=%s", m, key_id);
    curl_free(m);
    long status;
    return request(c, "POST", path, cts, len, "application/octet-stream", out, &status, err);
}

veil_status veil_client_send(veil_client *c, const char *method, const char *path, const uint8_t *body, size_t len,
                             veil_buffer *out, veil_error *err)
{
    VEIL_REQUIRE(c, err);
    VEIL_REQUIRE(method, err);
    VEIL_REQUIRE(path, err);
    veil_status st = VEIL_OK;
    if ((strcmp(method, "PUT") && strcmp(method, "POST")) || path[0] != '/' || (!body && len))
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "veil_client_send: PUT or POST, a path from '/', a body");
    long status;
    static const uint8_t empty[1] = {0};
    return request(c, method, path, body ? body : empty, len, "application/octet-stream", out, &status, err);
done:
    return st;
}
