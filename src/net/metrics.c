/*
 * /metrics (Prometheus text) and the counters each finished request adds to.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include "net/serve_internal.h"

static const char *const endpoint_names[EP_COUNT] = {"models", "model", "plan", "keys_upload", "keys_get", "keys_delete",
                                                     "predict", "healthz", "metrics", "tenants", "admin", "other", "groups",
                                                     "weights"};
static const double buckets[N_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
static const unsigned error_codes[N_ERROR_CODES] = {400, 401, 403, 404, 409, 411, 413, 422, 429, 431, 500, 501, 503};
static const char *const error_kinds[N_ERROR_CODES] = {"bad_request", "unauthorized", "forbidden", "not_found",
                                                       "mismatch", "length_required", "too_large", "refused",
                                                       "too_many", "headers_too_large", "internal", "not_implemented",
                                                       "unavailable"};

void veil_srv_count_request(veil_server *s, const request *r, double dt)
{
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
}

/* The requests by endpoint, the responses by class and error, and the latency histogram. */
static size_t write_requests(veil_server *s, char *body, size_t cap)
{
    size_t n = (size_t)snprintf(body, cap, "# TYPE veil_requests_total counter\n");
    for (int e = 0; e < EP_COUNT; e++)
        n += (size_t)snprintf(body + n, cap - n, "veil_requests_total{endpoint=\"%s\"} %llu\n", endpoint_names[e],
                              (unsigned long long)s->requests[e]);
    n += (size_t)snprintf(body + n, cap - n, "# TYPE veil_responses_total counter\n");
    for (int k = 1; k < 6; k++)
        n += (size_t)snprintf(body + n, cap - n, "veil_responses_total{class=\"%dxx\"} %llu\n", k,
                              (unsigned long long)s->status_counts[k]);
    n += (size_t)snprintf(body + n, cap - n, "# TYPE veil_errors_total counter\n");
    for (size_t k = 0; k < N_ERROR_CODES; k++)
        n += (size_t)snprintf(body + n, cap - n, "veil_errors_total{kind=\"%s\",status=\"%u\"} %llu\n", error_kinds[k],
                              error_codes[k], (unsigned long long)s->error_counts[k]);
    n += (size_t)snprintf(body + n, cap - n, "# TYPE veil_request_seconds histogram\n");
    unsigned long long cum = 0;
    for (size_t b = 0; b <= N_BUCKETS; b++) {
        cum += s->hist[b];
        if (b < N_BUCKETS)
            n += (size_t)snprintf(body + n, cap - n, "veil_request_seconds_bucket{le=\"%g\"} %llu\n", buckets[b], cum);
        else
            n += (size_t)snprintf(body + n, cap - n, "veil_request_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
    }
    pthread_mutex_lock(&s->lock);
    n += (size_t)snprintf(body + n, cap - n, "veil_request_seconds_sum %.6f\nveil_request_seconds_count %llu\n",
                          s->latency_sum, cum);
    pthread_mutex_unlock(&s->lock);
    return n;
}

/* The cache, the store, the traffic and the limits' refusals. */
static size_t write_state(veil_server *s, char *body, size_t cap)
{
    pthread_mutex_lock(&s->lock);
    size_t keys = s->n_stored, loaded = 0;
    uint64_t bytes = s->stored_bytes;
    for (size_t i = 0; i < s->n_stored; i++) loaded += s->stored[i]->cached != 0;
    pthread_mutex_unlock(&s->lock);
    size_t n = (size_t)snprintf(body, cap,
                                "# TYPE veil_cache_loaded_keys gauge\nveil_cache_loaded_keys %zu\n"
                                "# TYPE veil_cache_bytes gauge\nveil_cache_bytes %llu\n"
                                "# TYPE veil_cache_evictions_total counter\nveil_cache_evictions_total %llu\n"
                                "# TYPE veil_body_bytes gauge\nveil_body_bytes %llu\n"
                                "# TYPE veil_over_budget_total counter\nveil_over_budget_total %llu\n",
                                loaded, (unsigned long long)atomic_load(&s->cache_bytes),
                                (unsigned long long)atomic_load(&s->evictions),
                                (unsigned long long)atomic_load(&s->body_bytes),
                                (unsigned long long)atomic_load(&s->over_budget));
    n += (size_t)snprintf(body + n, cap - n,
                          "# TYPE veil_bytes_received_total counter\nveil_bytes_received_total %llu\n"
                          "# TYPE veil_bytes_sent_total counter\nveil_bytes_sent_total %llu\n"
                          "# TYPE veil_stored_keys gauge\nveil_stored_keys %zu\n"
                          "# TYPE veil_stored_key_bytes gauge\nveil_stored_key_bytes %llu\n"
                          "# TYPE veil_deadline_closes_total counter\nveil_deadline_closes_total %llu\n"
                          "# TYPE veil_garbage_closes_total counter\nveil_garbage_closes_total %llu\n"
                          "# TYPE veil_limit_refusals_total counter\nveil_limit_refusals_total{limit=\"rate\"} %llu\n"
                          "veil_limit_refusals_total{limit=\"predictions\"} %llu\n",
                          (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out, keys,
                          (unsigned long long)bytes, (unsigned long long)s->deadline_closes,
                          (unsigned long long)s->garbage_closes, (unsigned long long)s->rate_refusals,
                          (unsigned long long)s->prediction_refusals);
    return n;
}

enum MHD_Result veil_srv_metrics(veil_server *s, struct MHD_Connection *c, request *r)
{
    char body[8192];
    size_t n = write_requests(s, body, sizeof body);
    n += write_state(s, body + n, sizeof body - n);
    return veil_srv_send_bytes(c, r, 200, "text/plain; version=0.0.4", body, n);
}
