/*
 * The served models: each DIR/NAME.onnx with its side file and both plans.
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

/* Bodies: a bundle of either plan's keys, or max_batches batches of fresh ciphertexts. */
static void set_limits(veil_server *s, model_entry *m)
{
    size_t key_limit = 0, body = 0;
    for (int k = 0; k < 2; k++) {
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
        if (len < 6 || strcmp(e->d_name + len - 5, ".onnx") != 0) continue;
        const size_t n = atomic_load(&s->n_models);
        if (n == MAX_MODELS) VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "more than %d models", MAX_MODELS);
        model_entry *m = &s->models[n];
        memset(m, 0, sizeof *m);
        snprintf(m->name, sizeof m->name, "%.*s", (int)(len - 5), e->d_name);
        if (!veil_srv_valid_name(m->name, NAME_MAX_LEN - 1)) continue;
        VEIL_CHECK(load_model(s, m, e->d_name, err));
        set_limits(s, m);
        atomic_store(&s->n_models, n + 1);
    }
    if (s->n_models == 0) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "no *.onnx model in %s", s->models_dir);
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
    if (access(path, R_OK) != 0) VEIL_FAIL(err, VEIL_ERR_NOT_FOUND, "no model file %s in the models folder", file);
    if (n == MAX_MODELS)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "%d models were loaded since the server started: restart it", MAX_MODELS);
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    VEIL_CHECK(load_model(s, m, file, err));
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
