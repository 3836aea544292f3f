/*
 * `veil serve`'s parts (src/net), shared between its files. Each file has one job, and calls only into the
 * files listed before it here (no cycles):
 *   respond.c   answers (JSON errors, bytes), a request's headers and arguments
 *   limits.c    connections (the per-request deadline, garbage closed early) and the tenants' limits
 *   models.c    the served models: loading, finding, unloading; an encrypted model's plan and its evaluator
 *               for a key bundle (the bundle's .ctm, uploaded or the operator's)
 *   keystore.c  the key store on disk: bundles, ownership records, the check at start, quarantine; the
 *               store's interface (store_ops: the folder, or pgstore.c's PostgreSQL) and the index in memory
 *   pgstore.c   the key store in PostgreSQL, shared by replicas (issue 22; built with libpq)
 *   cache.c     loaded bundles in memory: the budget, LRU eviction
 *   auth.c      bearer tokens: the token file, a request's tenant
 *   keys_api.c  /v1/keys: upload, look up, delete
 *   weights_api.c /v1/models/NAME/weights: an encrypted model's weights for a key bundle, from its owner
 *   predict.c   /v1/models: the list, a model, its plans, predictions
 *   admin.c     the admin scope: tenants, tokens, tenants' bundles, models
 *   party_store.c, party_switch.c (party_internal.h): /v1/groups' stored files, and its public-key switching
 *   party_api.c /v1/groups: the server as a multi-party aggregator (round shares, joint keys, sums, decryption
 *               shares; deletion and the groups' limits)
 *   metrics.c   /metrics and the counters each request adds to
 *   router.c    libmicrohttpd's request steps: routing, the body, the answer
 *   server.c    start and stop
 */
#ifndef VEIL_SERVE_INTERNAL_H
#define VEIL_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <microhttpd.h>
#include "veil/net.h"
#include "veil/ml.h"
#include "core/core_internal.h"
#include "net/net_internal.h"

#define MAX_MODELS 64
#define MAX_STORED 4096
#define NAME_MAX_LEN 128
#define SMALL_BODY (64 * 1024)
#define N_BUCKETS 12     /* the latency histogram's buckets (metrics.c) */
#define N_ERROR_CODES 13 /* the error statuses counted (metrics.c) */

typedef enum endpoint { EP_MODELS, EP_MODEL, EP_PLAN, EP_KEYS_POST, EP_KEYS_GET, EP_KEYS_DELETE, EP_PREDICT, EP_HEALTH,
                        EP_METRICS, EP_TENANTS, EP_ADMIN, EP_OTHER, EP_GROUPS, EP_WEIGHTS, EP_COUNT } endpoint;

/* What an admin request does (EP_ADMIN; admin.c). */
typedef enum admin_op { ADMIN_NONE, ADMIN_ADD_TOKEN, ADMIN_REVOKE_TENANT, ADMIN_REVOKE_TOKEN, ADMIN_DELETE_TENANT_KEYS,
                        ADMIN_LOAD_MODEL, ADMIN_UNLOAD_MODEL } admin_op;

typedef struct model_entry {
    char name[NAME_MAX_LEN];
    veil_model *model;
    veil_plan *plans[2];
    veil_buffer plan_files[2];
    size_t body_limit;
    veil_side_options options; /* from DIR/NAME.json, when there is one */
    int has_side_file;
    atomic_int unloaded; /* no longer served (admin): not found, no new evaluator; freed when the server stops */
    /* an encrypted model (docs/marketplace.md): served from DIR/NAME.plan, model NULL and only its plan's
     * packing in plans[]; its weights come per key bundle, a .ctm (weights_api.c) */
    int encrypted;
    size_t in_width, out_width; /* of an encrypted model (its plan's) */
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
    uint64_t weight_bytes; /* an encrypted model's weights (its .ctm) loaded for these keys: counted in the cache */
} key_entry;

struct request;

/* Where the tokens, bundles and their owners are kept. The folder (STORE/, keystore.c and tenants.c) belongs to
 * one server: its index in memory (stored) is the truth, and the operations below past read are NULL. A shared
 * store (PostgreSQL, pgstore.c) is written by several replicas: the index is a cache of what the store said,
 * checked on every use (owns), and uploads, deletes, limits and tokens go to the store. */
typedef struct store_ops {
    const char *name;
    int shared;
    veil_status (*open)(struct veil_server *s, veil_error *err);
    void (*close)(struct veil_server *s);
    /* a bundle's bytes, checked against its id */
    veil_status (*read)(struct veil_server *s, const char *id, veil_buffer *out, veil_error *err);
    /* 1 when tenant owns bundle id now (*bytes: its size), 0 when not, -1 when the store cannot say */
    int (*owns)(struct veil_server *s, const char *id, const char *tenant, uint64_t *bytes);
    /* keeps an upload in one transaction: 201 stored, 200 the tenant's already, 429 past the limits (*full: the
     * store's, with the tenant's bundles and bytes), 503 the store unreachable or failing (err) */
    unsigned (*put)(struct veil_server *s, const struct request *r, const char *id, int *full, size_t *mine,
                    uint64_t *my_bytes, veil_error *err);
    /* tenant's ownership of id (NULL: of all its bundles) removed, a bundle with its last owner: how many, -1
     * when the store failed (err) */
    long (*disown)(struct veil_server *s, const char *id, const char *tenant, veil_error *err);
    /* a tenant's bundles and bytes: 1, or 0 when the store cannot say */
    int (*usage)(struct veil_server *s, const char *tenant, size_t *bundles, uint64_t *bytes);
    /* the tokens, read now */
    veil_status (*tokens)(struct veil_server *s, veil_token_entry **out, size_t *count, veil_error *err);
    /* one token by its hash (an indexed lookup; NULL: read them all): 1 found (*out), 0 not, -1 the store cannot say */
    int (*token)(struct veil_server *s, const uint8_t hash[32], veil_token_entry *out);
} store_ops;

struct veil_server {
    veil_server_config cfg;
    const store_ops *store; /* the folder's (veil_folder_store_ops) or PostgreSQL's (a postgresql:// store) */
    void *store_state;
    char *models_dir, *store_dir, *keys_dir;
    model_entry models[MAX_MODELS];
    atomic_size_t n_models; /* grows (an admin's load, under models_lock) once the entry is whole: read freely */
    pthread_mutex_t models_lock;
    key_entry *stored[MAX_STORED];
    size_t n_stored;
    uint64_t stored_bytes;
    pthread_mutex_t lock;
    struct MHD_Daemon *daemon;
    uint16_t port;
    atomic_size_t key_limit;
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
    atomic_ullong deadline_closes, garbage_closes, rate_refusals, prediction_refusals;
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

/* An open connection (libmicrohttpd's socket context): when its current request began, and whether that request
 * has arrived whole (then the deadline no longer applies: the answer is being made or sent). */
typedef struct conn_entry {
    struct conn_entry *prev, *next;
    int fd;
    double start;
    int arrived;
    /* garbage (limits.c): whether the current request's line was seen, the bytes libmicrohttpd had read from the
     * socket before it, and since when more read have made no request line (0: none yet) */
    int line_seen;
    unsigned long long bytes_before;
    double bytes_seen;
} conn_entry;

/* A tenant's counters: its token bucket (tokens, refilled at tenant_rps from last) and its predictions in
 * progress. One per tenant that has made a request; tenants are those of the token file, so they are few. */
typedef struct tenant_limit {
    char name[VEIL_TENANT_MAX + 1];
    double tokens, last;
    unsigned predictions;
} tenant_limit;



static inline int veil_srv_limit_on(unsigned v) { return v != VEIL_LIMIT_OFF; }

/* ---- respond.c ---- */
double veil_srv_now_s(void);
/* An answer, with one more header (name NULL: none). Without a connection (veil_server_handle), only its
 * status and size are kept. */
enum MHD_Result veil_srv_send_with(struct MHD_Connection *c, request *r, unsigned status, const char *type,
                                   const void *data, size_t len, const char *name, const char *value);
enum MHD_Result veil_srv_send_bytes(struct MHD_Connection *c, request *r, unsigned status, const char *type,
                                    const void *data, size_t len);
/* Writes s as a JSON string body (quotes and control characters escaped). */
void veil_srv_json_escape(char *out, size_t cap, const char *s);
/* A JSON error {"error": msg, "status": status}, with one more header (name NULL: none). */
enum MHD_Result veil_srv_send_error_with(struct MHD_Connection *c, request *r, unsigned status, const char *name,
                                         const char *value, const char *msg);
enum MHD_Result veil_srv_send_error(struct MHD_Connection *c, request *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A header or URL argument of the request: the connection's, or the offline request's. */
const char *veil_srv_lookup(struct MHD_Connection *c, request *r, enum MHD_ValueKind kind, const char *key);
unsigned veil_srv_status_for(veil_status st);
/* 503 with Retry-After: a shared key store (PostgreSQL) cannot be reached. */
enum MHD_Result veil_srv_store_unavailable(struct MHD_Connection *c, request *r);
/* 503 with Retry-After: need more bytes would take the server past its memory budget. */
enum MHD_Result veil_srv_over_budget(veil_server *s, struct MHD_Connection *c, request *r, uint64_t need);

/* ---- limits.c ---- */
void veil_srv_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                            enum MHD_ConnectionNotificationCode code);
void veil_srv_conn_mark(veil_server *s, struct MHD_Connection *c, int arrived);
void *veil_srv_watchdog_main(void *arg);
unsigned veil_srv_admit(veil_server *s, request *r, unsigned *retry, const char **why);
void veil_srv_prediction_done(veil_server *s, request *r);
void *veil_srv_on_uri(void *cls, const char *uri, struct MHD_Connection *c);

/* ---- models.c ---- */
int veil_srv_valid_name(const char *s, size_t max);
void veil_srv_free_model(model_entry *m);
veil_status veil_srv_load_models(veil_server *s, veil_error *err);
/* A served model by name (NULL: none, or unloaded). */
model_entry *veil_srv_find_model(veil_server *s, const char *name);
/* Loads DIR/NAME.onnx (with its side file) while serving: VEIL_ERR_ARGUMENT when NAME is served already,
 * VEIL_ERR_NOT_FOUND without the file, VEIL_ERR_UNSUPPORTED past MAX_MODELS loads. */
veil_status veil_srv_load_named(veil_server *s, const char *name, veil_error *err);
/* Stops serving NAME (its bundles' evaluators are evicted once unused); 0 when no such model is served. */
int veil_srv_unload(veil_server *s, const char *name);
/* A model's widths (an encrypted model's from its plan). */
size_t veil_srv_model_input_width(const model_entry *m);
size_t veil_srv_model_output_width(const model_entry *m);
/* STORE/weights/ID.ctm: where an encrypted model's weights for bundle ID are kept. */
void veil_srv_weights_path(const veil_server *s, const char *id, char *out, size_t cap);
/*
 * Whether keys (bundle id) were made for served model i: VEIL_OK with its evaluator in *ev, or VEIL_ERR_MISMATCH.
 * An encrypted model: its plan's keys; *ev from the bundle's weights (STORE/weights/ID.ctm, else the operator's
 * MODELS/NAME.ctm when it was encrypted under these keys), or NULL while none (*weight_bytes: their size).
 */
veil_status veil_srv_evaluator_for(veil_server *s, size_t i, const veil_eval_keys *keys, const char *id,
                                   veil_evaluator **ev, uint64_t *weight_bytes, veil_error *err);

/* ---- keystore.c ---- */
int veil_srv_valid_id(const char *id);
key_entry *veil_srv_new_entry(const char *id, uint64_t bytes);
void veil_srv_free_entry(key_entry *k);
int veil_srv_owned_by(const key_entry *k, const char *tenant);
int veil_srv_add_owner(key_entry *k, const char *tenant);
void veil_srv_remove_owner(key_entry *k, const char *tenant);
void veil_srv_owner_path(const veil_server *s, const char *tenant, const char *id, char *out, size_t cap);
int veil_srv_write_owner(const veil_server *s, const char *tenant, const char *id);
void veil_srv_quarantine(const veil_server *s, const char *where, const char *name, const char *why);
key_entry *veil_srv_find_entry(veil_server *s, const char *id);
veil_status veil_srv_open_store(veil_server *s, veil_error *err);
/* Finds a bundle the tenant owns and takes a reference: NULL when unknown or another tenant's, or (a shared
 * store, *unavailable set when not NULL) when the store cannot say. */
key_entry *veil_srv_acquire_key(veil_server *s, const char *id, const char *tenant, int *unavailable);
void veil_srv_release_key(veil_server *s, key_entry *k);
veil_status veil_srv_read_key(veil_server *s, key_entry *k, veil_error *err);
/* Under lock: the tenant no longer owns k (its record removed); the bundle goes with its last owner (removed from
 * the store; returned when no request holds it, for the caller to free outside the lock). */
key_entry *veil_srv_disown(veil_server *s, key_entry *k, const char *tenant);
/* Drops the keys and evaluators of the bundles loaded for unloaded models that no request holds. */
void veil_srv_drop_unloaded(veil_server *s);

/* the store's interface (serve_internal.h's store_ops) */
extern const store_ops veil_folder_store_ops;
extern const store_ops veil_pg_store_ops;
/* Under lock: tenant no longer owns k in memory (the store said so, or it was disowned there); k leaves the
 * index with its last owner, returned when no request holds it, for the caller to free outside the lock. */
key_entry *veil_srv_forget_owner(veil_server *s, key_entry *k, const char *tenant);

/* ---- cache.c ---- */
/* A loaded bundle's keys and its evaluator, once used (the evaluator keeps its scratch memory for the next
 * request), take about this many times the bundle's bytes: measured on the breast-cancer model, 64 bundles of
 * 381,656 bytes loaded and used once took the server from 10 to 899 MB, 13.7 MB (36 times) each. */
#define CACHE_FACTOR 36
uint64_t veil_srv_cache_estimate(const key_entry *k);
uint64_t veil_srv_memory_used(veil_server *s);
void veil_srv_trim_freed(veil_server *s);
int veil_srv_cache_reserve(veil_server *s, uint64_t need);
int veil_srv_cache_admit(veil_server *s, key_entry *k);
veil_status veil_srv_load_key(veil_server *s, key_entry *k, veil_error *err);
/* A loaded bundle's evaluator (NULL: an encrypted model's, its weights not uploaded yet), read under its lock. */
const veil_evaluator *veil_srv_key_evaluator(key_entry *k);

/* ---- auth.c ---- */
void veil_srv_refresh_tokens(veil_server *s);
int veil_srv_authenticate(veil_server *s, struct MHD_Connection *c, request *r);

/* ---- keys_api.c ---- */
enum MHD_Result veil_srv_upload_keys(veil_server *s, struct MHD_Connection *c, request *r);
enum MHD_Result veil_srv_get_keys(veil_server *s, struct MHD_Connection *c, request *r, const char *id);
enum MHD_Result veil_srv_delete_keys(veil_server *s, struct MHD_Connection *c, request *r, const char *id);

/* ---- weights_api.c ---- */
/* POST /v1/models/NAME/weights?keys=ID: an encrypted model's weights (a .ctm) for a bundle the tenant owns. */
enum MHD_Result veil_srv_upload_weights(veil_server *s, struct MHD_Connection *c, request *r, model_entry *m,
                                        const char *id);

/* ---- predict.c ---- */
enum MHD_Result veil_srv_list_models(veil_server *s, struct MHD_Connection *c, request *r);
enum MHD_Result veil_srv_describe_model(veil_server *s, struct MHD_Connection *c, request *r, model_entry *m);
enum MHD_Result veil_srv_send_plan(struct MHD_Connection *c, request *r, model_entry *m);
enum MHD_Result veil_srv_predict(veil_server *s, struct MHD_Connection *c, request *r, model_entry *m, const char *id);
enum MHD_Result veil_srv_early_key(veil_server *s, struct MHD_Connection *c, request *r, const model_entry *m);

/* ---- admin.c ---- */
/* GET /v1/tenants: each tenant of the tokens, with its tokens, scope and stored bundles (admin scope). */
enum MHD_Result veil_srv_list_tenants(veil_server *s, struct MHD_Connection *c, request *r);
/* The admin scope's operations (403 for another token): op on name (a tenant, a token id or a model). */
enum MHD_Result veil_srv_admin(veil_server *s, struct MHD_Connection *c, request *r, admin_op op, const char *name);

/* ---- party_api.c ---- */
#define VEIL_SRV_GROUP_BODY_MAX ((size_t)64 << 20) /* a round share, joint key set, update or decryption share */
/* /v1/groups/NAME[/...] (path: what follows "/v1/groups/"), any method. */
enum MHD_Result veil_srv_groups(veil_server *s, struct MHD_Connection *c, request *r, const char *path);
/* At start: the removals and writes of groups a crash interrupted are finished (hidden .deleted.NAME folders
 * removed, temporary files of interrupted writes removed). */
void veil_srv_groups_at_start(veil_server *s);

/* ---- metrics.c ---- */
enum MHD_Result veil_srv_metrics(veil_server *s, struct MHD_Connection *c, request *r);
/* A finished request's counters (its endpoint, status, latency dt, bytes). */
void veil_srv_count_request(veil_server *s, const request *r, double dt);

/* ---- router.c ---- */
enum MHD_Result veil_srv_on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                    const char *version, const char *upload_data, size_t *upload_size, void **state);
void veil_srv_on_completed(void *cls, struct MHD_Connection *c, void **state, enum MHD_RequestTerminationCode code);

#endif /* VEIL_SERVE_INTERNAL_H */
