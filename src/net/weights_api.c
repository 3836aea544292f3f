/*
 * POST /v1/models/NAME/weights?keys=ID: an encrypted model's weights (docs/marketplace.md) for one key bundle.
 * The model owner sends the .ctm it made with the bundle's public key (`veil encrypt-model`); it must own the
 * bundle too (it uploads the same evaluation keys, which it had to encrypt the weights). The weights are loaded
 * with the bundle's keys (every byte checked, made for these keys and this model), kept as STORE/weights/ID.ctm,
 * and from then on the bundle's predictions evaluate them. Weights are set once per bundle: replacing them could
 * pull an evaluator from under a prediction in flight (delete the keys to start again).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include "net/serve_internal.h"

/* The weights loaded for bundle k (held, loaded, of model m) and kept, or the answer that refuses them. */
static enum MHD_Result set_weights(veil_server *s, struct MHD_Connection *c, request *r, model_entry *m, key_entry *k)
{
    veil_error err = {0};
    veil_evaluator *ev = NULL;
    char path[4096], dir[4096];
    unsigned status = 201;
    pthread_mutex_lock(&k->load_lock);
    if (k->ev) {
        status = 409;
        veil_fail(&err, VEIL_ERR_ARGUMENT, "these keys hold model %s's weights already (delete the keys to send "
                  "others)", m->name);
    } else {
        const veil_status st = veil_evaluator_new_encrypted(&ev, k->keys, r->body, r->len, s->cfg.eval_threads, &err);
        if (st != VEIL_OK) status = st == VEIL_ERR_MISMATCH ? 409 : veil_srv_status_for(st) == 500 ? 500 : 422;
    }
    if (status == 201) {
        snprintf(dir, sizeof dir, "%s/weights", s->store_dir);
        veil_srv_weights_path(s, k->id, path, sizeof path);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            status = 500;
            veil_fail(&err, VEIL_ERR_IO, "%s: %s", dir, strerror(errno));
        } else if (veil_file_write_atomic(path, r->body, r->len, &err) != VEIL_OK) {
            status = 500;
        }
    }
    if (status == 201) {
        k->ev = ev;
        ev = NULL;
        pthread_mutex_lock(&s->lock); /* the weights' memory counted with the bundle's */
        k->weight_bytes = r->len;
        if (k->cached) {
            k->cached += r->len;
            atomic_fetch_add(&s->cache_bytes, r->len);
        }
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&k->load_lock);
    veil_evaluator_free(ev);
    if (status != 201) return veil_srv_send_error(c, r, status, "weights for keys %s: %s", k->id, err.detail);
    char body[320];
    const int n = snprintf(body, sizeof body, "{\"model\":\"%s\",\"keys\":\"%s\",\"bytes\":%zu}\n", m->name, k->id,
                           r->len);
    return veil_srv_send_bytes(c, r, 201, "application/json", body, (size_t)n);
}

enum MHD_Result veil_srv_upload_weights(veil_server *s, struct MHD_Connection *c, request *r, model_entry *m,
                                        const char *id)
{
    if (!m->encrypted)
        return veil_srv_send_error(c, r, 409, "model %s is served in the clear: it takes no encrypted weights", m->name);
    if (s->store->shared)
        return veil_srv_send_error(c, r, 501, "encrypted weights are kept in a key-store folder, not in a shared store");
    if (!id || !veil_srv_valid_id(id))
        return veil_srv_send_error(c, r, 400, "give the key id: /v1/models/%s/weights?keys=ID", m->name);
    int unavailable = 0;
    key_entry *k = veil_srv_acquire_key(s, id, r->tenant, &unavailable);
    if (!k && unavailable) return veil_srv_store_unavailable(c, r);
    if (!k) return veil_srv_send_error(c, r, 404, "no stored keys with id %s: upload them first (POST /v1/keys)", id);
    veil_error err = {0};
    enum MHD_Result ret;
    if (!veil_srv_cache_admit(s, k)) {
        ret = veil_srv_over_budget(s, c, r, veil_srv_cache_estimate(k));
    } else {
        const veil_status st = veil_srv_load_key(s, k, &err);
        if (st != VEIL_OK) ret = veil_srv_send_error(c, r, veil_srv_status_for(st), "keys %s: %s", id, err.detail);
        else if (&s->models[k->model] != m)
            ret = veil_srv_send_error(c, r, 409, "keys %s were made for model %s, not %s", id, s->models[k->model].name,
                                      m->name);
        else ret = set_weights(s, c, r, m, k);
    }
    veil_srv_release_key(s, k);
    return ret;
}
