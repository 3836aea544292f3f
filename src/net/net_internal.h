/* The server's internals shared between its files (src/net). */
#ifndef VEIL_NET_INTERNAL_H
#define VEIL_NET_INTERNAL_H

#include "veil/ml.h"

#define VEIL_SIDE_FILE_MAX (64 * 1024) /* bytes of a model's side file */

/*
 * A served model's options, from its side file DIR/NAME.json beside DIR/NAME.onnx (docs/net.md): the
 * approximation settings the model is loaded with, and the inputs' range its plans are made for.
 */
typedef struct veil_side_options {
    veil_model_options model; /* model.calibration points into calibration */
    double *calibration;      /* the calibration rows (owned; NULL without "calibrate") */
    int have_input_range;
    double input_lo, input_hi;
    /* output noise (docs/privacy.md): "dp_epsilon" and "dp_delta" (0: none), "dp_sensitivity" (0: the plan's) */
    double dp_epsilon, dp_delta, dp_sensitivity;
    char path[4096];          /* the side file, for messages */
} veil_side_options;

/*
 * Reads DIR/NAME.json when there is one (*found = 1) into out; without one, *found = 0 and out holds no
 * options. A side file that is not a JSON object of the known keys with values of their types, or whose
 * calibration file is outside DIR or unreadable, is refused with a message naming it.
 */
veil_status veil_side_options_read(veil_side_options *out, const char *dir, const char *name, int *found,
                                   veil_error *err);
void veil_side_options_clear(veil_side_options *o);

/* ---- tenants (tenants.c) ---- */

#define VEIL_TENANT_MAX 64
#define VEIL_TENANT_ANONYMOUS "anonymous" /* the owner of keys uploaded to a server without tokens (--no-auth) */

/* A token of STORE/tokens: its hash (BLAKE2b-256 of the token's text), tenant and scope. */
typedef struct veil_token_entry {
    uint8_t hash[32];
    char tenant[VEIL_TENANT_MAX + 1];
    int admin;
    long long created;
} veil_token_entry;

/* 1-64 letters, digits, '_' or '-', and not the reserved VEIL_TENANT_ANONYMOUS. */
int veil_tenant_name_valid(const char *name);
void veil_token_hash(const char *token, size_t len, uint8_t hash[32]);
/* STORE/tokens, validated whole (a missing file: no tokens; a malformed one: VEIL_ERR_FORMAT naming the line). */
veil_status veil_tokens_read(const char *store_dir, veil_token_entry **out, size_t *count, veil_error *err);

/* ---- requests without a connection (server.c; the fuzz target tests/fuzz/fuzz_serve.c) ---- */

typedef struct veil_server veil_server;
typedef struct veil_server_config veil_server_config;
/* One request as a connection would bring it: the URL with its query (?name=value&..., not decoded). */
typedef struct veil_server_request {
    const char *method, *url;
    const char *authorization, *content_length; /* those headers (NULL: absent) */
    const uint8_t *body;
    size_t len;
} veil_server_request;
/* veil_server_start without listening: models, store, tokens (stop it with veil_server_stop). The tenants'
 * request rate is not limited unless cfg->tenant_rps says so (a fuzzer asks faster than any client). */
veil_status veil_server_open(veil_server **out, const veil_server_config *cfg, veil_error *err);
/* Runs the request through the handlers a connection's requests go through; its HTTP status (0: dropped). */
unsigned veil_server_handle(veil_server *s, const veil_server_request *q);

/* ---- request bodies (body.c): in memory up to VEIL_BODY_SPILL bytes, else an unlinked file in STORE/tmp ---- */

#define VEIL_BODY_SPILL ((size_t)1 << 20)
typedef struct veil_body {
    uint8_t *heap;      /* a small body */
    size_t len, cap;    /* bytes received; the heap buffer's size */
    int fd;             /* the temporary file of a large body (-1: none) */
    uint8_t *map;       /* the file mapped read-only, once complete */
    size_t map_len;
} veil_body;
void veil_body_init(veil_body *b);
/* Prepares for a body of declared bytes (0: unknown): a file when above the bound. */
veil_status veil_body_expect(veil_body *b, const char *tmp_dir, uint64_t declared, veil_error *err);
/* Appends a piece; a body growing past the bound moves to a file. */
veil_status veil_body_append(veil_body *b, const char *tmp_dir, const void *data, size_t n, veil_error *err);
/* The whole body (NULL when empty): the heap buffer, or the file mapped read-only. Valid until veil_body_free. */
veil_status veil_body_finish(veil_body *b, const uint8_t **data, veil_error *err);
void veil_body_free(veil_body *b);
/* Makes STORE/tmp (0700) and removes the files left in it. */
/* A PostgreSQL store (postgresql:// or postgres://) rather than a folder (pgstore.c). */
int veil_store_is_url(const char *store);
/* The token file's operations on a PostgreSQL store (pgstore.c; VEIL_ERR_UNSUPPORTED built without libpq). */
veil_status veil_pg_tokens_read(const char *url, veil_token_entry **out, size_t *count, veil_error *err);
veil_status veil_pg_token_add(const char *url, const veil_token_entry *e, veil_error *err);
veil_status veil_pg_token_revoke(const char *url, const char *id, const char *tenant, size_t *revoked,
                                 veil_error *err);
veil_status veil_body_tmp_open(const char *tmp_dir, veil_error *err);

#endif /* VEIL_NET_INTERNAL_H */
