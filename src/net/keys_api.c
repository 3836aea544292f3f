/*
 * /v1/keys: a tenant's evaluation-key bundles uploaded, looked up and deleted.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "net/serve_internal.h"

/* {"id": ID, "stored": false}: a bundle the tenant holds already. */
static enum MHD_Result stored_already(struct MHD_Connection *c, request *r, const char *id)
{
    char body[128];
    const int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"stored\":false}\n", id);
    return veil_srv_send_bytes(c, r, 200, "application/json", body, (size_t)n);
}

/* The body's bundle loaded and its evaluator made for one of the models (*k, counted in the cache with need
 * bytes), or the answer that refuses it (*k NULL). */
static enum MHD_Result make_entry(veil_server *s, struct MHD_Connection *c, request *r, const char *id, uint64_t need,
                                  key_entry **k)
{
    veil_error err = {0};
    veil_eval_keys *keys = NULL;
    *k = NULL;
    const veil_status st = veil_eval_keys_load(&keys, r->body, r->len, &err);
    if (st != VEIL_OK)
        return veil_srv_send_error(c, r, st == VEIL_ERR_ARGUMENT || st == VEIL_ERR_MISMATCH ? 422 : 400,
                                   "not an evaluation-key bundle: %s", err.detail);
    int model = -1;
    veil_evaluator *ev = NULL;
    uint64_t weight_bytes = 0;
    for (size_t i = 0; i < s->n_models && model < 0; i++) {
        veil_error e2 = {0};
        if (!atomic_load(&s->models[i].unloaded) &&
            veil_srv_evaluator_for(s, i, keys, id, &ev, &weight_bytes, &e2) == VEIL_OK)
            model = (int)i; /* ev NULL: an encrypted model's, its weights not uploaded yet */
    }
    if (model < 0) {
        veil_eval_keys_free(keys);
        return veil_srv_send_error(c, r, 409, "these evaluation keys were made for none of the models served here");
    }
    if (!(*k = veil_srv_new_entry(id, r->len))) {
        veil_evaluator_free(ev);
        veil_eval_keys_free(keys);
        return veil_srv_send_error(c, r, 500, "out of memory");
    }
    (*k)->keys = keys;
    (*k)->ev = ev;
    (*k)->model = model;
    (*k)->cached = need;
    (*k)->weight_bytes = weight_bytes;
    return MHD_YES;
}

/* Under lock: 0 when the tenant may store len more bytes, else 429 (*full: the store's limit, else the
 * tenant's), with its bundles and bytes. The limits apply alike to a bundle another tenant holds: the answer
 * tells nothing of the others'. */
static unsigned over_limits(veil_server *s, const request *r, int *full, size_t *mine, uint64_t *my_bytes)
{
    for (size_t i = 0; i < s->n_stored; i++)
        if (veil_srv_owned_by(s->stored[i], r->tenant)) {
            (*mine)++;
            *my_bytes += s->stored[i]->bytes;
        }
    *full = s->n_stored >= s->cfg.max_keys || s->stored_bytes + r->len > s->cfg.max_store_bytes;
    if (*full) return 429;
    if ((s->cfg.tenant_max_keys && *mine >= s->cfg.tenant_max_keys) ||
        (s->cfg.tenant_max_bytes && *my_bytes + r->len > s->cfg.tenant_max_bytes))
        return 429;
    return 0;
}

/* 429 past the store's or the tenant's limits, with Retry-After. */
static enum MHD_Result refuse_full(veil_server *s, struct MHD_Connection *c, request *r, int full, size_t mine,
                                   uint64_t my_bytes)
{
    char msg[256];
    if (full)
        snprintf(msg, sizeof msg, "the key store is full (%zu bundles, %llu bytes at most): delete unused keys",
                 s->cfg.max_keys, (unsigned long long)s->cfg.max_store_bytes);
    else
        snprintf(msg, sizeof msg, "tenant %s holds %zu bundles (%llu bytes): its limit is %zu bundles, %llu bytes; "
                 "delete unused keys", r->tenant, mine, (unsigned long long)my_bytes, s->cfg.tenant_max_keys,
                 (unsigned long long)s->cfg.tenant_max_bytes);
    return veil_srv_send_error_with(c, r, 429, MHD_HTTP_HEADER_RETRY_AFTER, "60", msg);
}

/*
 * Stores the bundle k for the tenant: the check, the files and the index under one lock, so that concurrent
 * uploads and deletes of one id serialize. The ownership record is written before the bundle: a crash between
 * leaves a record the next start removes. A bundle another tenant holds gets this tenant's record only (the
 * answer the same as for a new bundle: no tenant learns what another stored). Answers the request; k is the
 * store's on 201 for a new bundle, else freed.
 */
static enum MHD_Result store_entry(veil_server *s, struct MHD_Connection *c, request *r, key_entry *k)
{
    char path[4096], id[65];
    snprintf(path, sizeof path, "%s/%s.keys", s->keys_dir, k->id);
    snprintf(id, sizeof id, "%s", k->id);
    veil_error err = {0};
    int full = 0;
    size_t mine = 0;
    uint64_t my_bytes = 0;
    pthread_mutex_lock(&s->lock);
    key_entry *held = veil_srv_find_entry(s, k->id);
    const int shared = held != NULL;
    unsigned status = held && veil_srv_owned_by(held, r->tenant) ? 200 : 201; /* 200: raced, stored already */
    if (status == 201 && over_limits(s, r, &full, &mine, &my_bytes)) status = 429;
    if (status == 201 && (!veil_srv_write_owner(s, r->tenant, k->id) || !veil_srv_add_owner(shared ? held : k, r->tenant)))
        status = 500;
    if (status == 201 && !shared && veil_file_write_atomic(path, r->body, r->len, &err) != VEIL_OK) status = 500;
    const int kept = status == 201 && !shared;
    if (kept) {
        s->stored[s->n_stored++] = k;
        s->stored_bytes += k->bytes;
        k->known_model = k->model; /* loaded: in the cache, most recently used */
        k->last_used = ++s->clock;
    } else {
        atomic_fetch_sub(&s->cache_bytes, k->cached);
    }
    pthread_mutex_unlock(&s->lock);
    const int model = k->model;
    if (!kept) veil_srv_free_entry(k);
    if (status == 429) return refuse_full(s, c, r, full, mine, my_bytes);
    if (status == 500) return veil_srv_send_error(c, r, 500, "storing the keys failed: %s", err.detail);
    if (status == 200) return stored_already(c, r, id);
    char body[160];
    const int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"stored\":true,\"model\":\"%s\"}\n", id,
                           s->models[model].name);
    return veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)n);
}

/*
 * A shared store (PostgreSQL): the upload kept by the store's transaction first (the limits counted there, over
 * every replica), then k in this replica's index (or freed when the index holds the bundle already). Answers
 * the request once the store committed.
 */
static enum MHD_Result store_shared(veil_server *s, struct MHD_Connection *c, request *r, key_entry *k)
{
    char id[65];
    snprintf(id, sizeof id, "%s", k->id);
    veil_error err = {0};
    int full = 0;
    size_t mine = 0;
    uint64_t my_bytes = 0;
    const unsigned status = s->store->put(s, r, id, &full, &mine, &my_bytes, &err);
    int kept = 0;
    pthread_mutex_lock(&s->lock);
    key_entry *held = veil_srv_find_entry(s, id);
    if ((status == 201 || status == 200) && held) {
        if (!veil_srv_owned_by(held, r->tenant)) veil_srv_add_owner(held, r->tenant); /* else: found again at use */
    } else if ((status == 201 || status == 200) && s->n_stored < MAX_STORED && veil_srv_add_owner(k, r->tenant)) {
        s->stored[s->n_stored++] = k;
        s->stored_bytes += k->bytes;
        k->known_model = k->model; /* loaded: in the cache, most recently used */
        k->last_used = ++s->clock;
        kept = 1;
    }
    if (!kept) atomic_fetch_sub(&s->cache_bytes, k->cached);
    pthread_mutex_unlock(&s->lock);
    const int model = k->model;
    if (!kept) veil_srv_free_entry(k);
    if (status == 429) return refuse_full(s, c, r, full, mine, my_bytes);
    if (status == 503) {
        char msg[400];
        snprintf(msg, sizeof msg, "the keys were not stored (try again): %s", err.detail);
        return veil_srv_send_error_with(c, r, 503, MHD_HTTP_HEADER_RETRY_AFTER, "1", msg);
    }
    if (status == 200) return stored_already(c, r, id);
    char body[160];
    const int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"stored\":true,\"model\":\"%s\"}\n", id,
                           s->models[model].name);
    return veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)n);
}

enum MHD_Result veil_srv_upload_keys(veil_server *s, struct MHD_Connection *c, request *r)
{
    if (r->len == 0)
        return veil_srv_send_error(c, r, 400, "empty body: send an evaluation-key bundle (KEYDIR/eval/eval.keys)");
    veil_error err = {0};
    veil_object_info info;
    if (veil_object_peek(&info, r->body, r->len, &err) != VEIL_OK)
        return veil_srv_send_error(c, r, 400, "not a Veil object: %s", err.detail);
    if (info.flags & VEIL_FLAG_SECRET)
        return veil_srv_send_error(c, r, 422, "this object holds a secret key: the server accepts evaluation keys "
                                              "only, never a secret key (upload KEYDIR/eval/eval.keys)");
    char id[65];
    veil_key_bundle_id(r->body, r->len, id);
    int unavailable = 0;
    key_entry *existing = veil_srv_acquire_key(s, id, r->tenant, &unavailable);
    if (unavailable) return veil_srv_store_unavailable(c, r);
    if (existing) {
        veil_srv_release_key(s, existing);
        return stored_already(c, r, id);
    }
    /* validate fully: a loadable bundle, for a model served here; its load counted in the cache first */
    const uint64_t need = (uint64_t)r->len * CACHE_FACTOR;
    pthread_mutex_lock(&s->lock);
    const int room = veil_srv_cache_reserve(s, need);
    pthread_mutex_unlock(&s->lock);
    veil_srv_trim_freed(s);
    if (!room) return veil_srv_over_budget(s, c, r, need);
    key_entry *k = NULL;
    const enum MHD_Result refused = make_entry(s, c, r, id, need, &k);
    if (!k) {
        atomic_fetch_sub(&s->cache_bytes, need);
        return refused;
    }
    return s->store->shared ? store_shared(s, c, r, k) : store_entry(s, c, r, k);
}

enum MHD_Result veil_srv_get_keys(veil_server *s, struct MHD_Connection *c, request *r, const char *id)
{
    if (!veil_srv_valid_id(id)) return veil_srv_send_error(c, r, 400, "malformed key id");
    int unavailable = 0;
    key_entry *k = veil_srv_acquire_key(s, id, r->tenant, &unavailable);
    if (unavailable) return veil_srv_store_unavailable(c, r);
    if (!k) return veil_srv_send_error(c, r, 404, "no stored keys with id %s", id);
    char body[128];
    const int n = snprintf(body, sizeof body, "{\"id\":\"%s\",\"bytes\":%llu}\n", k->id, (unsigned long long)k->bytes);
    veil_srv_release_key(s, k);
    return veil_srv_send_bytes(c, r, 200, "application/json", body, (size_t)n);
}

/* Removes the tenant's ownership of bundle id; the bundle itself goes with its last owner. */
enum MHD_Result veil_srv_delete_keys(veil_server *s, struct MHD_Connection *c, request *r, const char *id)
{
    if (!veil_srv_valid_id(id)) return veil_srv_send_error(c, r, 400, "malformed key id");
    key_entry *victim = NULL;
    veil_error err = {0};
    const long in_store = s->store->shared ? s->store->disown(s, id, r->tenant, &err) : 1;
    if (in_store < 0) {
        char msg[400];
        snprintf(msg, sizeof msg, "the keys were not deleted (try again): %s", err.detail);
        return veil_srv_send_error_with(c, r, 503, MHD_HTTP_HEADER_RETRY_AFTER, "1", msg);
    }
    pthread_mutex_lock(&s->lock);
    key_entry *held = veil_srv_find_entry(s, id);
    int owned = held && veil_srv_owned_by(held, r->tenant);
    if (owned) victim = s->store->shared ? veil_srv_forget_owner(s, held, r->tenant) : veil_srv_disown(s, held, r->tenant);
    if (s->store->shared) owned = in_store > 0; /* the store says; the index may not have known it */
    pthread_mutex_unlock(&s->lock);
    if (!owned) return veil_srv_send_error(c, r, 404, "no stored keys with id %s", id);
    if (victim) veil_srv_free_entry(victim);
    return veil_srv_send_bytes(c, r, 200, "application/json", "{\"deleted\":true}\n", 17);
}
