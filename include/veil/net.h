/*
 * veil/net.h - the cloud side over HTTP: a server that hosts models, stores clients' evaluation keys and
 * answers encrypted predictions without ever holding a secret key (libmicrohttpd), and its client (libcurl).
 *
 * Endpoints (JSON for metadata and errors; Veil's wire format, application/octet-stream, for keys, plans
 * and ciphertexts):
 *   GET    /v1/models                        the models: name, input and output widths
 *   GET    /v1/models/NAME                   one model, with both plans' parameters
 *   GET    /v1/models/NAME/plan?packing=P    the plan (throughput or latency) as a file, for veil_keyset_generate
 *   POST   /v1/keys                          an evaluation-key bundle; answers {"id": ...} (content hash)
 *   GET    /v1/keys/ID                       whether a bundle is stored
 *   DELETE /v1/keys/ID
 *   POST   /v1/models/NAME/predict?keys=ID   a ciphertext set in, the encrypted outputs out
 *   POST   /v1/models/NAME/weights?keys=ID   an encrypted model's weights (a .ctm) for bundle ID: 201; 409 a model
 *                                            in the clear, other keys' weights, weights set already; 422 bad bytes
 *   GET    /v1/tenants                       the tenants, their tokens and bundles (admin scope; else 403)
 *   POST   /v1/tenants/NAME/tokens[?admin=1] a new token, shown once; DELETE: all of NAME's tokens (admin)
 *   DELETE /v1/tokens/ID                     revokes a token (admin)
 *   DELETE /v1/tenants/NAME/keys             NAME's bundles (admin)
 *   POST   /v1/models/NAME/load              serves MODELS/NAME.onnx; DELETE /v1/models/NAME: no longer (admin)
 *   PUT    /v1/groups/NAME[/...]             a multi-party group's protocol; DELETE: the group (its maker,
 *                                             or admin); docs/net.md, "Groups"
 *   GET    /healthz, GET /metrics            liveness; Prometheus text format
 * Every endpoint but /healthz and /metrics needs a tenant's bearer token (Authorization: Bearer TOKEN; 401
 * with WWW-Authenticate: Bearer without a valid one); a tenant sees, uses and deletes its own keys only
 * (another tenant's id answers 404, as an unknown one).
 * Errors: 400 malformed, 401 no valid token, 403 not the admin scope, 404 unknown model or key id, 409 keys
 * of another model, 413 body too large, 422 a secret key or an object of the wrong kind, 429 key store or
 * the tenant's share of it full, or the tenant's request rate or predictions at once past their limits
 * (Retry-After), 411 a POST without a length, 431 headers too large, 501 a Transfer-Encoding other than
 * chunked, 503 busy, over the memory budget (Retry-After) or shutting down.
 */
#ifndef VEIL_NET_H
#define VEIL_NET_H

#include <stddef.h>
#include <stdint.h>
#include "veil/core.h"
#include "veil/serial.h"
#include "veil/ml.h" /* veil_progress_fn */

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

typedef struct veil_server_config {
    const char *models_dir;     /* every *.onnx in it is served, named by its file name without .onnx */
    const char *store_dir;      /* evaluation-key bundles, kept across restarts */
    const char *listen;         /* "HOST:PORT" (NULL: 127.0.0.1:8080; port 0: any free port) */
    unsigned threads;           /* connection threads (0: 4) */
    size_t eval_threads;        /* threads per evaluation (0: 1) */
    const char *tls_cert, *tls_key; /* PEM files: HTTPS when both are given */
    size_t max_keys;            /* stored bundles (0: 64) */
    uint64_t max_store_bytes;   /* (0: 4 GiB) */
    size_t tenant_max_keys;     /* bundles a tenant may hold (0: no limit but the store's) */
    uint64_t tenant_max_bytes;  /* bytes of the bundles a tenant holds (0: no limit but the store's) */
    unsigned timeout_s;         /* per-connection inactivity limit (0: 60 s) */
    unsigned max_batches;       /* ciphertext batches per request: bounds the body size (0: 16) */
    int quiet;                  /* no request log lines */
    int no_auth;                /* serve without tokens (every client is the tenant "anonymous"): loopback only */
    int insecure_http;          /* plain HTTP on an address other than loopback (behind a TLS proxy) */
    /* limits against slow and hostile clients (docs/net.md, "Limits"); VEIL_LIMIT_OFF turns one off */
    unsigned tenant_rps;             /* requests per second per tenant, a token bucket (0: 200); past it 429 */
    unsigned tenant_burst;           /* the bucket's size: requests at once (0: 2 x tenant_rps, at least 10) */
    unsigned tenant_max_predictions; /* predictions per tenant in progress at once (0: 32); past it 429 */
    unsigned max_connections;        /* open connections in all (0, VEIL_LIMIT_OFF: 512) */
    unsigned max_connections_per_address; /* open connections per client address (0: 32) */
    unsigned request_deadline_s;     /* a request's headers and body must arrive within it, else the connection
                                        is closed (0: 30 s) */
    uint64_t cache_bytes;       /* loaded bundles' estimated memory; least recently used evicted (0: 1 GiB) */
    uint64_t memory_budget;     /* in-flight bodies plus loaded bundles; beyond it 503 (0: 4 GiB) */
    /* multi-party groups (/v1/groups, docs/net.md "Groups") */
    size_t tenant_max_groups;   /* groups a tenant is a member of (0: 16); past it 429 */
    uint64_t group_max_bytes;   /* bytes one group's files hold (0: 1 GiB); past it 413 */
} veil_server_config;

#define VEIL_LIMIT_OFF 0xffffffffu /* a veil_server_config limit that is off */

typedef struct veil_server veil_server;

/* Loads the models, opens the store (removing temporary files a crash left), and starts listening. */
veil_status veil_server_start(veil_server **out, const veil_server_config *config, veil_error *err);
uint16_t veil_server_port(const veil_server *server);
/* Stops accepting connections, lets the requests in flight finish (up to 30 s), and frees the server. */
void veil_server_stop(veil_server *server);

/* ---- tenants: bearer tokens, kept hashed in STORE/tokens (docs/net.md) -------------------------------- */

#define VEIL_TOKEN_SIZE 72 /* a token's text: "veil_" and 64 hex digits (32 random bytes), and its NUL */
/*
 * A new token for tenant (1-64 letters, digits, '_', '-'), admin scope or not, in token (shown once: only its
 * hash is stored) and its id (16 hex digits, for veil_token_revoke) in id[17] (NULL: not wanted). The store
 * folder is made (0700) when missing; the token file is rewritten atomically (0600) under a lock, and a
 * running server sees the change at its next request.
 */
veil_status veil_token_add(const char *store_dir, const char *tenant, int admin, char token[VEIL_TOKEN_SIZE],
                           char id[17], veil_error *err);
/* Revokes the token of an id, or (id NULL) every token of tenant; *revoked: how many (VEIL_ERR_NOT_FOUND: none). */
veil_status veil_token_revoke(const char *store_dir, const char *id, const char *tenant, size_t *revoked,
                              veil_error *err);
/* The tokens as text, a line each: ID, scope, creation time (UTC), tenant; a header line first. */
veil_status veil_token_list(const char *store_dir, veil_buffer *out, veil_error *err);

/* ---- the client ----------------------------------------------------------------------------------- */

typedef struct veil_client veil_client;
/*
 * base_url: "http://host:port" or "https://...". Requests (all idempotent) are retried on connection errors, and
 * after a 429 or 503 answer with a Retry-After of 1 to 30 s once it has passed (60 s of such waits in all).
 */
veil_status veil_client_new(veil_client **out, const char *base_url, veil_error *err);
void veil_client_free(veil_client *client);
/* Trusts the certificates of a CA bundle (PEM) for HTTPS, e.g. a server's self-signed certificate. The
 * server's certificate is always verified. */
veil_status veil_client_set_ca_file(veil_client *client, const char *path, veil_error *err);
/*
 * Sends "Authorization: Bearer TOKEN" with every request (the server's tenants, docs/net.md); NULL or "" sends
 * none. The token is printable ASCII without spaces, at most 512 characters; it is wiped when replaced or freed.
 */
veil_status veil_client_set_token(veil_client *client, const char *token, veil_error *err);
/*
 * Reports the progress of each request's body as it is sent: progress(arg, done, total) in bytes, and
 * (total, total) once the server has answered it; requests without a body (GET) report nothing. NULL: no
 * reports (the default). The library draws nothing itself: the caller's function does (veil's progress bar).
 */
void veil_client_set_progress(veil_client *client, veil_progress_fn progress, void *arg);

/* GET a path; the body in out (JSON or a Veil object). */
veil_status veil_client_get(veil_client *client, const char *path, veil_buffer *out, veil_error *err);
/* Uploads an evaluation-key bundle unless the server already holds it; its id (hex) in id[65]. */
veil_status veil_client_upload_keys(veil_client *client, const uint8_t *bundle, size_t len, char id[65],
                                    veil_error *err);
/* One prediction: a saved ciphertext set in, the server's saved output set in out. */
veil_status veil_client_predict(veil_client *client, const char *model, const char *key_id, const uint8_t *cts,
                                size_t len, veil_buffer *out, veil_error *err);
/* PUT or POST a body (a Veil object) to a path (with its query); the answer's body in out (NULL: dropped).
 * A 4xx or 5xx answer fails with the server's message (409: VEIL_ERR_MISMATCH, 404: VEIL_ERR_NOT_FOUND). */
veil_status veil_client_send(veil_client *client, const char *method, const char *path, const uint8_t *body,
                             size_t len, veil_buffer *out, veil_error *err);
/* Bytes sent and received by this client so far. */
void veil_client_traffic(const veil_client *client, uint64_t *sent, uint64_t *received);

/* The id the server gives a bundle: hex of BLAKE2b-256 of its bytes, truncated to 32 characters. */
void veil_key_bundle_id(const uint8_t *bundle, size_t len, char id[65]);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_NET_H */
