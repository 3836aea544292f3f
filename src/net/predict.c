/*
 * /v1/models: the models, one model and its plans, and predictions.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net/serve_internal.h"

enum MHD_Result veil_srv_list_models(veil_server *s, struct MHD_Connection *c, request *r)
{
    const size_t models = atomic_load(&s->n_models);
    size_t cap = 256 + models * 256, n = 0;
    char *body = malloc(cap);
    if (!body) return veil_srv_send_error(c, r, 500, "out of memory");
    n += (size_t)snprintf(body + n, cap - n, "{\"models\":[");
    for (size_t i = 0, first = 1; i < models; i++) {
        const model_entry *m = &s->models[i];
        if (atomic_load(&m->unloaded)) continue;
        n += (size_t)snprintf(body + n, cap - n, "%s{\"name\":\"%s\",\"input_width\":%zu,\"output_width\":%zu%s}",
                              first ? "" : ",", m->name, veil_srv_model_input_width(m),
                              veil_srv_model_output_width(m), m->encrypted ? ",\"encrypted\":true" : "");
        first = 0;
    }
    n += (size_t)snprintf(body + n, cap - n, "]}\n");
    enum MHD_Result ret = veil_srv_send_bytes(c, r, 200, "application/json", body, n);
    free(body);
    return ret;
}

enum MHD_Result veil_srv_describe_model(veil_server *s, struct MHD_Connection *c, request *r, model_entry *m)
{
    (void)s;
    char body[4096], report[1024];
    veil_srv_json_escape(report, sizeof report,
                         m->encrypted ? "encrypted model: its weights are uploaded by its owner for each key bundle "
                                        "(POST /v1/models/NAME/weights?keys=ID)"
                                      : veil_model_report(m->model));
    size_t n = (size_t)snprintf(body, sizeof body,
                                "{\"name\":\"%s\",\"input_width\":%zu,\"output_width\":%zu,%s\"lowering\":\"%s\",\"plans\":[",
                                m->name, veil_srv_model_input_width(m), veil_srv_model_output_width(m),
                                m->encrypted ? "\"encrypted\":true," : "", report);
    for (int k = 0, first = 1; k < 2; k++) {
        if (!m->plans[k]) continue; /* an encrypted model: its plan's packing only */
        veil_plan_info in;
        veil_plan_get_info(m->plans[k], &in);
        n += (size_t)snprintf(body + n, sizeof body - n,
                              "%s{\"packing\":\"%s\",\"n\":%zu,\"slots\":%zu,\"batch\":%zu,\"depth\":%zu,\"q_primes\":%zu,"
                              "\"p_primes\":%zu,\"dnum\":%zu,\"log_qp\":%u,\"scale_bits\":%u,\"rotation_keys\":%zu,"
                              "\"max_body_bytes\":%zu}",
                              first ? "" : ",", k ? "latency" : "throughput", in.n, in.slots, in.batch, in.depth,
                              in.q_count, in.p_count, in.dnum, in.log_qp, in.scale_bits, in.rotations, m->body_limit);
        first = 0;
    }
    n += (size_t)snprintf(body + n, sizeof body - n, "]}\n");
    return veil_srv_send_bytes(c, r, 200, "application/json", body, n);
}

/* GET /v1/models/NAME/plan[?packing=throughput|latency]: the plan's file. */
enum MHD_Result veil_srv_send_plan(struct MHD_Connection *c, request *r, model_entry *m)
{
    const char *p = veil_srv_lookup(c, r, MHD_GET_ARGUMENT_KIND, "packing");
    int k = p && !strcmp(p, "latency") ? 1 : 0;
    if (p && k == 0 && strcmp(p, "throughput") != 0) return veil_srv_send_error(c, r, 400, "packing is throughput or latency");
    if (!p && !m->plans[k]) k = 1 - k; /* an encrypted model: its plan's packing */
    if (!m->plans[k])
        return veil_srv_send_error(c, r, 404, "model %s is an encrypted model served in the %s packing only (its "
                                   "owner's plan)", m->name, k ? "throughput" : "latency");
    return veil_srv_send_bytes(c, r, 200, "application/octet-stream", m->plan_files[k].data, m->plan_files[k].len);
}

/* A request's ciphertexts through the keys' evaluator, the outputs saved into out; *stage names what failed
 * ("ciphertexts": the body; "evaluation": the work). */
static veil_status evaluate_body(const key_entry *k, const veil_evaluator *ev, const model_entry *m,
                                 const request *r, veil_buffer *out, const char **stage, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_ciphertexts *in = NULL, *res = NULL;
    *stage = "ciphertexts";
    VEIL_CHECK(veil_ciphertexts_load(&in, NULL, k->keys, r->body, r->len, err));
    *stage = "evaluation";
    VEIL_CHECK(veil_evaluator_run(ev, &res, in, NULL, NULL, err));
    if (m->options.dp_epsilon) /* the model's side file asks for output noise: added before anything leaves */
        VEIL_CHECK(veil_ciphertexts_add_dp_noise(res, k->keys, m->options.dp_epsilon, m->options.dp_delta,
                                                 m->options.dp_sensitivity, NULL, err));
    VEIL_CHECK(veil_ciphertexts_save(out, res, err));
done:
    veil_ciphertexts_free(res);
    veil_ciphertexts_free(in);
    return st;
}

enum MHD_Result veil_srv_predict(veil_server *s, struct MHD_Connection *c, request *r, model_entry *m, const char *id)
{
    if (!id || !veil_srv_valid_id(id)) return veil_srv_send_error(c, r, 400, "give the key id: /v1/models/%s/predict?keys=ID", m->name);
    key_entry *k = r->key; /* looked up before the body was read */
    if (k) r->key = NULL;
    int unavailable = 0;
    if (!k) k = veil_srv_acquire_key(s, id, r->tenant, &unavailable);
    if (!k && unavailable) return veil_srv_store_unavailable(c, r);
    if (!k) return veil_srv_send_error(c, r, 404, "no stored keys with id %s: upload them first (POST /v1/keys)", id);
    veil_error err = {0};
    enum MHD_Result ret;
    const veil_evaluator *ev = NULL;
    if (!veil_srv_cache_admit(s, k)) {
        ret = veil_srv_over_budget(s, c, r, veil_srv_cache_estimate(k));
        veil_srv_release_key(s, k);
        return ret;
    }
    const veil_status st = veil_srv_load_key(s, k, &err);
    if (st != VEIL_OK) {
        ret = veil_srv_send_error(c, r, veil_srv_status_for(st), "keys %s: %s", id, err.detail);
    } else if (&s->models[k->model] != m) {
        ret = veil_srv_send_error(c, r, 409, "keys %s were made for model %s, not %s", id, s->models[k->model].name, m->name);
    } else if (!(ev = veil_srv_key_evaluator(k))) { /* an encrypted model whose owner has not sent the weights */
        ret = veil_srv_send_error(c, r, 409, "model %s is encrypted and its owner has not uploaded its weights for "
                                  "keys %s (POST /v1/models/%s/weights?keys=%s)", m->name, id, m->name, id);
    } else {
        veil_buffer ob = {0};
        const char *stage = NULL;
        const veil_status ran = evaluate_body(k, ev, m, r, &ob, &stage, &err);
        ret = ran == VEIL_OK ? veil_srv_send_bytes(c, r, 200, "application/octet-stream", ob.data, ob.len)
                             : veil_srv_send_error(c, r, veil_srv_status_for(ran), "%s: %s", stage, err.detail);
        veil_buffer_free(&ob);
    }
    veil_srv_release_key(s, k);
    return ret;
}

/* A prediction's keys, before its body is read: a missing or malformed id (400), one the tenant does not hold
 * (404), or keys known to be of another model (409) are answered at once, and the body is dropped unread. The
 * keys found are held (r->key) until the request completes: they are not evicted under it. */
enum MHD_Result veil_srv_early_key(veil_server *s, struct MHD_Connection *c, request *r, const model_entry *m)
{
    const char *id = veil_srv_lookup(c, r, MHD_GET_ARGUMENT_KIND, "keys");
    r->too_large = 1; /* drop the body unless it is wanted (below) */
    if (!id || !veil_srv_valid_id(id)) return veil_srv_send_error(c, r, 400, "give the key id: /v1/models/%s/predict?keys=ID", m->name);
    int unavailable = 0;
    r->key = veil_srv_acquire_key(s, id, r->tenant, &unavailable);
    if (!r->key && unavailable) return veil_srv_store_unavailable(c, r);
    if (!r->key) return veil_srv_send_error(c, r, 404, "no stored keys with id %s: upload them first (POST /v1/keys)", id);
    pthread_mutex_lock(&s->lock);
    const int known = r->key->known_model;
    pthread_mutex_unlock(&s->lock);
    if (known >= 0 && &s->models[known] != m)
        return veil_srv_send_error(c, r, 409, "keys %s were made for model %s, not %s", id, s->models[known].name, m->name);
    r->too_large = 0;
    return MHD_YES;
}
