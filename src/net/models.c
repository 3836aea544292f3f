/*
 * The served models: each DIR/NAME.onnx with its side file and both plans; and each DIR/NAME.plan, an encrypted
 * model (docs/marketplace.md) served from its owner's plan alone, its weights a .ctm per key bundle.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "net/serve_internal.h"

int veil_srv_valid_name(const char *s, size_t max)
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

void veil_srv_free_model(model_entry *m)
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
        veil_srv_free_model(m); /* keeps the side file's path, for the message */
        if (m->has_side_file) VEIL_FAIL(err, loaded, "model %s (options from %s): %s", file, m->options.path, detail);
        VEIL_FAIL(err, loaded, "model %s: %s", file, detail);
    }
done:
    return st;
}

/* The largest plan file an encrypted model's entry reads. */
#define PLAN_FILE_MAX ((size_t)64 << 20)

/*
 * An encrypted model: DIR/FILE, a CKKS inference plan its owner made (`veil plan --out`), kept for its packing.
 * A side file is refused: the model's options were fixed in the plan.
 */
static veil_status load_plan_model(veil_server *s, model_entry *m, const char *file, veil_error *err)
{
    veil_status st = VEIL_OK;
    char path[4096];
    veil_plan *plan = NULL;
    veil_buffer b = {0};
    snprintf(path, sizeof path, "%s/%s.json", s->models_dir, m->name);
    if (access(path, F_OK) == 0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "model %s: %s.json: an encrypted model's options are fixed in its plan "
                  "(remove the side file)", file, m->name);
    snprintf(path, sizeof path, "%s/%s.onnx", s->models_dir, m->name);
    if (access(path, F_OK) == 0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "model %s: %s.onnx is there too: serve the model in the clear or "
                  "encrypted, not both", file, m->name);
    if ((size_t)snprintf(path, sizeof path, "%s/%s", s->models_dir, file) >= sizeof path)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "the path is too long");
    VEIL_CHECK(veil_file_read(&b, path, PLAN_FILE_MAX, err));
    VEIL_CHECK(veil_plan_load(&plan, b.data, b.len, err));
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    if (info.scheme != VEIL_ML_CKKS || (info.packing != VEIL_PACKING_THROUGHPUT && info.packing != VEIL_PACKING_LATENCY))
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "model %s: an encrypted model is served from a CKKS inference plan", file);
    const int k = info.packing == VEIL_PACKING_LATENCY;
    m->plans[k] = plan;
    m->plan_files[k] = b;
    plan = NULL;
    b = (veil_buffer){0};
    m->encrypted = 1;
    m->in_width = veil_plan_input_width(m->plans[k]);
    m->out_width = veil_plan_output_width(m->plans[k]);
done:
    if (st != VEIL_OK && err && strncmp(err->detail, "model ", 6) != 0) {
        char detail[VEIL_DETAIL_MAX];
        snprintf(detail, sizeof detail, "%s", err->detail);
        veil_fail(err, st, "model %s: %s", file, detail);
    }
    veil_plan_free(plan);
    veil_buffer_free(&b);
    return st;
}

size_t veil_srv_model_input_width(const model_entry *m)
{
    return m->encrypted ? m->in_width : veil_model_input_width(m->model);
}

size_t veil_srv_model_output_width(const model_entry *m)
{
    return m->encrypted ? m->out_width : veil_model_output_width(m->model);
}

void veil_srv_weights_path(const veil_server *s, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/weights/%s.ctm", s->store_dir, id);
}

/* The largest .ctm read from the store or the models folder (the upload's limit is the memory budget's). */
#define WEIGHTS_FILE_MAX ((size_t)16 << 30)

/* The bundle's weights: STORE/weights/ID.ctm, else MODELS/NAME.ctm when encrypted under these keys. */
static veil_status encrypted_evaluator(veil_server *s, const model_entry *m, const veil_eval_keys *keys, const char *id,
                                       veil_evaluator **ev, uint64_t *weight_bytes, veil_error *err)
{
    char path[4096];
    veil_buffer b = {0};
    veil_status st = VEIL_OK;
    veil_srv_weights_path(s, id, path, sizeof path);
    if (access(path, F_OK) == 0) {
        VEIL_CHECK(veil_file_read(&b, path, WEIGHTS_FILE_MAX, err));
        VEIL_CHECK(veil_evaluator_new_encrypted(ev, keys, b.data, b.len, s->cfg.eval_threads, err));
        *weight_bytes = b.len;
        goto done;
    }
    snprintf(path, sizeof path, "%s/%s.ctm", s->models_dir, m->name);
    if (access(path, F_OK) != 0) goto done; /* no weights yet: predictions wait for them */
    VEIL_CHECK(veil_file_read(&b, path, WEIGHTS_FILE_MAX, err));
    veil_error other = {0};
    if (veil_evaluator_new_encrypted(ev, keys, b.data, b.len, s->cfg.eval_threads, &other) == VEIL_OK)
        *weight_bytes = b.len;
    else if (other.status != VEIL_ERR_MISMATCH) /* encrypted under other keys: not these keys' weights */
        VEIL_FAIL(err, other.status, "%s: %s", path, other.detail);
done:
    veil_buffer_free(&b);
    return st;
}

veil_status veil_srv_evaluator_for(veil_server *s, size_t i, const veil_eval_keys *keys, const char *id,
                                   veil_evaluator **ev, uint64_t *weight_bytes, veil_error *err)
{
    const model_entry *m = &s->models[i];
    *ev = NULL;
    *weight_bytes = 0;
    if (!m->encrypted) return veil_evaluator_new(ev, m->model, keys, s->cfg.eval_threads, err);
    const veil_plan *plan = m->plans[veil_eval_keys_packing(keys) == VEIL_PACKING_LATENCY];
    if (!plan) return veil_fail(err, VEIL_ERR_MISMATCH, "model %s is served in the other packing", m->name);
    const veil_status st = veil_plan_matches_eval_keys(plan, keys, err);
    return st == VEIL_OK ? encrypted_evaluator(s, m, keys, id, ev, weight_bytes, err) : st;
}

/* Bodies: a bundle of either plan's keys, or max_batches batches of fresh ciphertexts. */
static void set_limits(veil_server *s, model_entry *m)
{
    size_t key_limit = 0, body = 0;
    for (int k = 0; k < 2; k++) {
        if (!m->plans[k]) continue; /* an encrypted model: its plan's packing only */
        veil_plan_info in;
        veil_plan_get_info(m->plans[k], &in);
        const double ct = 2.0 * (double)in.n * (double)in.q_count * 8.0;
        const double per_batch = ct * (double)(k == 0 ? in.in_ciphertexts : 16);
        if (2 * in.eval_key_bytes + (1 << 20) > (double)key_limit) key_limit = (size_t)(2 * in.eval_key_bytes) + (1 << 20);
        if (per_batch * s->cfg.max_batches + (1 << 20) > (double)body)
            body = (size_t)(per_batch * s->cfg.max_batches) + (1 << 20);
    }
    m->body_limit = body;
    if (key_limit > atomic_load(&s->key_limit)) atomic_store(&s->key_limit, key_limit); /* at start, or under models_lock */
}

veil_status veil_srv_load_models(veil_server *s, veil_error *err)
{
    DIR *d = opendir(s->models_dir);
    if (!d) return veil_fail(err, VEIL_ERR_IO, "models folder %s: %s", s->models_dir, strerror(errno));
    veil_status st = VEIL_OK;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        const int plan = len >= 6 && strcmp(e->d_name + len - 5, ".plan") == 0; /* an encrypted model */
        if (len < 6 || (strcmp(e->d_name + len - 5, ".onnx") != 0 && !plan)) continue;
        const size_t n = atomic_load(&s->n_models);
        if (n == MAX_MODELS) VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "more than %d models", MAX_MODELS);
        model_entry *m = &s->models[n];
        memset(m, 0, sizeof *m);
        snprintf(m->name, sizeof m->name, "%.*s", (int)(len - 5), e->d_name);
        if (!veil_srv_valid_name(m->name, NAME_MAX_LEN - 1)) continue;
        if (plan) VEIL_CHECK(load_plan_model(s, m, e->d_name, err));
        else VEIL_CHECK(load_model(s, m, e->d_name, err));
        set_limits(s, m);
        atomic_store(&s->n_models, n + 1);
    }
    if (s->n_models == 0) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "no *.onnx model (nor *.plan) in %s", s->models_dir);
done:
    closedir(d);
    return st;
}

model_entry *veil_srv_find_model(veil_server *s, const char *name)
{
    const size_t n = atomic_load(&s->n_models);
    for (size_t i = 0; i < n; i++)
        if (!atomic_load(&s->models[i].unloaded) && strcmp(s->models[i].name, name) == 0) return &s->models[i];
    return NULL;
}

veil_status veil_srv_load_named(veil_server *s, const char *name, veil_error *err)
{
    char file[NAME_MAX_LEN + 8], path[4096];
    snprintf(file, sizeof file, "%s.onnx", name);
    snprintf(path, sizeof path, "%s/%s", s->models_dir, file);
    veil_status st = VEIL_OK;
    pthread_mutex_lock(&s->models_lock);
    const size_t n = atomic_load(&s->n_models);
    model_entry *m = &s->models[n < MAX_MODELS ? n : 0];
    if (veil_srv_find_model(s, name)) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "model %s is served already", name);
    int plan = 0;
    if (access(path, R_OK) != 0) { /* an encrypted model: NAME.plan */
        snprintf(file, sizeof file, "%s.plan", name);
        snprintf(path, sizeof path, "%s/%s", s->models_dir, file);
        plan = access(path, R_OK) == 0;
        if (!plan) VEIL_FAIL(err, VEIL_ERR_NOT_FOUND, "no model file %s.onnx (nor %s) in the models folder", name, file);
    }
    if (n == MAX_MODELS)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "%d models were loaded since the server started: restart it", MAX_MODELS);
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    if (plan) VEIL_CHECK(load_plan_model(s, m, file, err));
    else VEIL_CHECK(load_model(s, m, file, err));
    set_limits(s, m);
    atomic_store(&s->n_models, n + 1); /* the entry is whole: readers may see it */
done:
    pthread_mutex_unlock(&s->models_lock);
    return st;
}

int veil_srv_unload(veil_server *s, const char *name)
{
    pthread_mutex_lock(&s->models_lock);
    model_entry *m = veil_srv_find_model(s, name);
    if (m) atomic_store(&m->unloaded, 1);
    pthread_mutex_unlock(&s->models_lock);
    return m != NULL;
}
