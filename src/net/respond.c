/*
 * Answers: JSON errors and bytes, over a connection or for an offline request; a request's headers and arguments.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "net/serve_internal.h"

double veil_srv_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* An answer, with one more header (name NULL: none). Without a connection (veil_server_handle), only its
 * status and size are kept. */
enum MHD_Result veil_srv_send_with(struct MHD_Connection *c, request *r, unsigned status, const char *type,
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

enum MHD_Result veil_srv_send_bytes(struct MHD_Connection *c, request *r, unsigned status, const char *type,
                                  const void *data, size_t len)
{
    return veil_srv_send_with(c, r, status, type, data, len, NULL, NULL);
}

/* Writes s as a JSON string body (quotes and control characters escaped). */
void veil_srv_json_escape(char *out, size_t cap, const char *s)
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
enum MHD_Result veil_srv_send_error_with(struct MHD_Connection *c, request *r, unsigned status, const char *name,
                                       const char *value, const char *msg)
{
    char esc[1100], body[1300];
    veil_srv_json_escape(esc, sizeof esc, msg);
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\",\"status\":%u}\n", esc, status);
    return veil_srv_send_with(c, r, status, "application/json", body, (size_t)n, name, value);
}

enum MHD_Result veil_srv_send_error(struct MHD_Connection *c, request *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum MHD_Result veil_srv_send_error(struct MHD_Connection *c, request *r, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return veil_srv_send_error_with(c, r, status, NULL, NULL, msg);
}

/* A header or URL argument of the request: the connection's, or the offline request's. */
const char *veil_srv_lookup(struct MHD_Connection *c, request *r, enum MHD_ValueKind kind, const char *key)
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

unsigned veil_srv_status_for(veil_status st)
{
    switch (st) {
    case VEIL_ERR_MISMATCH: return 409;
    case VEIL_ERR_NO_MEMORY:
    case VEIL_ERR_INTERNAL:
    case VEIL_ERR_IO: return 500;
    default: return 400;
    }
}

/* 503 with Retry-After: need more bytes would take the server past its memory budget. */
enum MHD_Result veil_srv_over_budget(veil_server *s, struct MHD_Connection *c, request *r, uint64_t need)
{
    char msg[256];
    atomic_fetch_add(&s->over_budget, 1);
    snprintf(msg, sizeof msg, "the server is at its memory budget (%llu bytes; this request needs %llu more): "
             "try again later", (unsigned long long)s->cfg.memory_budget, (unsigned long long)need);
    return veil_srv_send_error_with(c, r, 503, MHD_HTTP_HEADER_RETRY_AFTER, "5", msg);
}

enum MHD_Result veil_srv_store_unavailable(struct MHD_Connection *c, request *r)
{
    return veil_srv_send_error_with(c, r, 503, MHD_HTTP_HEADER_RETRY_AFTER, "1",
                                    "the key store cannot be reached: try again (nothing was changed)");
}
