/*
 * Plans as files: a server gives its plan (CKKS inference or training) to clients that do not hold the
 * model, so that they generate matching keys. Exact-inference (BGV) plans are not saved.
 */
#include <stdlib.h>
#include <string.h>
#include "ml/ml_plan.h"
#include "serial/serial_internal.h"

#define META_BYTES VEIL_META_BYTES
#define MAX_PLAN_STEPS 65536

static int long_order(const void *a, const void *b)
{
    const long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

/* A plan names each rotation once (a repeated one would only make keys twice). */
static veil_status steps_distinct(const long *steps, size_t n, veil_error *err)
{
    long *sorted = malloc((n + 1) * sizeof *sorted);
    if (!sorted) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    memcpy(sorted, steps, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, long_order);
    veil_status st = VEIL_OK;
    for (size_t i = 1; i < n; i++)
        if (sorted[i] == sorted[i - 1]) VEIL_FAIL(err, VEIL_ERR_FORMAT, "plan: rotation step %ld twice", sorted[i]);
done:
    free(sorted);
    return st;
}

veil_status veil_plan_save(veil_buffer *out, const veil_plan *plan, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(plan, err);
    if (plan->scheme == VEIL_ML_BGV)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "exact-inference (BGV) plans are not saved as files: the data "
                         "owner makes its keys from the model (`veil keygen --scheme bgv`)");
    if (plan->train.boot)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "a training plan with bootstrapping is not saved as a file (its "
                         "bootstrapping keys are not described there yet): make the keys with `veil keygen --train`");
    if (veil_params_security(plan->params) >= VEIL_SECURITY_NONE) /* veil_plan_load would refuse it */
        return veil_fail(err, VEIL_ERR_INSECURE, "the plan's parameters are not secure (the insecure test set): not "
                         "saved as a file");
    if (plan->n_steps > MAX_PLAN_STEPS) return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: %zu rotations", plan->n_steps);
    veil_ml_meta m = {.kind = VEIL_SET_PLAN, .packing = plan->packing, .batch = plan->batch, .slots = plan->slots,
                      .layout = plan->packing != VEIL_PACKING_LATENCY ? 0
                                : plan->boot.count                   ? VEIL_LAYOUT_PERIODIC
                                                                     : VEIL_LAYOUT_LANES,
                      .in_width = (uint32_t)plan->in_width, .out_width = (uint32_t)plan->out_width,
                      .final_op = (uint32_t)plan->final_op, .scale_bits = plan->scale_bits,
                      .train.degree = plan->train.degree, .train.range = plan->train.range};
    memcpy(m.model_hash, plan->model_hash, VEIL_ID_BYTES);
    /* the metadata, the inputs' range (inference plans), the bootstrapping schedule (plans with bootstraps, as
     * their bundles carry it: veil_ml_boot_ext_encode), then the rotation steps */
    const size_t ext = plan->ckks.box_lo ? veil_ml_range_bytes(plan->in_width) : 0;
    if (plan->boot.count && !plan->ckks.box_lo)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: bootstraps without the inputs' range");
    const size_t boot = veil_ml_boot_ext_bytes(&plan->boot, plan->in_width);
    const size_t mlen = META_BYTES + ext + boot + 8 * plan->n_steps;
    uint8_t *meta = calloc(mlen, 1);
    if (!meta) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    veil_ml_meta_encode(meta, &m);
    if (plan->ckks.box_lo)
        veil_ml_range_encode(meta + META_BYTES, plan->bound, plan->ckks.box_lo, plan->ckks.box_hi, plan->in_width);
    if (boot)
        veil_ml_boot_ext_encode(meta + META_BYTES + ext, &plan->boot, plan->in_width, plan->bound, plan->ckks.box_lo,
                                plan->ckks.box_hi);
    for (size_t i = 0; i < plan->n_steps; i++)
        veil_ml_put64(meta + META_BYTES + ext + boot + 8 * i, (uint64_t)(int64_t)plan->steps[i]);
    veil_buffer params = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_params_save(&params, plan->params, 0, err));
    VEIL_CHECK(veil_set_save(out, plan->params, meta, mlen, &params, 1, err));
done:
    veil_buffer_free(&params);
    free(meta);
    return st;
}

/* The rotation steps after the metadata and range extension (ext bytes): counted, in range, distinct. */
static veil_status plan_steps(veil_plan *p, const veil_ml_meta *m, const veil_set_contents *c, size_t ext,
                              veil_error *err)
{
    if ((c->meta_len - META_BYTES - ext) % 8 != 0)
        return veil_fail(err, VEIL_ERR_FORMAT, "plan: the rotation steps do not fill whole 8-byte words");
    p->n_steps = (c->meta_len - META_BYTES - ext) / 8;
    /* a hostile plan must not make a client generate keys without end: the latency packing's steps are
     * at most 4 S + 64 (veil_model_plan), training's MAX_TRAIN_STEPS, and the throughput packing has none */
    const size_t cap = m->packing == VEIL_PACKING_LATENCY    ? 4 * (size_t)m->slots + 64
                       : m->packing == VEIL_PACKING_TRAINING ? MAX_TRAIN_STEPS
                                                             : 0;
    if (p->n_steps > cap || p->n_steps > MAX_PLAN_STEPS)
        return veil_fail(err, VEIL_ERR_FORMAT, "plan: %zu rotation steps, more than a %s plan has", p->n_steps,
                         m->packing == VEIL_PACKING_LATENCY    ? "latency"
                         : m->packing == VEIL_PACKING_TRAINING ? "training"
                                                               : "throughput");
    p->steps = calloc(p->n_steps + 1, sizeof *p->steps);
    if (!p->steps) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    const int64_t limit = (int64_t)veil_params_degree(p->params) / 2;
    for (size_t i = 0; i < p->n_steps; i++) {
        p->steps[i] = (long)(int64_t)veil_ml_get64(c->meta + META_BYTES + ext + 8 * i);
        if (p->steps[i] <= -limit || p->steps[i] >= limit || p->steps[i] == 0)
            return veil_fail(err, VEIL_ERR_FORMAT, "plan: rotation step %ld out of range", p->steps[i]);
    }
    return steps_distinct(p->steps, p->n_steps, err);
}

/*
 * The bootstrapping schedule after the range extension, when there (its tag; a rotation step is never that
 * large): decoded with its inputs' range, which must be the plan's. *ext grows by its bytes. The latency
 * packing's periodic layout exactly with it.
 */
static veil_status plan_boot(veil_plan *p, const veil_ml_meta *m, const veil_set_contents *c, size_t *ext,
                             veil_error *err)
{
    const uint8_t *at = c->meta + META_BYTES + *ext;
    const size_t left = c->meta_len - META_BYTES - *ext;
    veil_status st = VEIL_OK;
    double bound = 0, *lo = NULL, *hi = NULL;
    if (left >= 16 && memcmp(at, "VEIL-BT", 7) == 0) {
        if (m->packing == VEIL_PACKING_TRAINING)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "plan: a bootstrapping schedule in a training plan");
        if (!p->ckks.box_lo)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "plan: a bootstrapping schedule without the inputs' range it was planned "
                      "for");
        const uint64_t count = veil_ml_get64(at + 8);
        if (count == 0 || count > VEIL_ML_BOOT_MAX)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "plan: the bootstrapping schedule is invalid");
        const size_t len = 64 + 16 * (size_t)count + veil_ml_range_bytes(m->in_width);
        if (len > left) VEIL_FAIL(err, VEIL_ERR_FORMAT, "plan: the bootstrapping schedule is truncated");
        VEIL_CHECK(veil_ml_boot_ext_decode(&p->boot, at, len, 1u << 16, m->in_width, &bound, &lo, &hi, err));
        if (bound != p->bound || memcmp(lo, p->ckks.box_lo, m->in_width * sizeof *lo) != 0 ||
            memcmp(hi, p->ckks.box_hi, m->in_width * sizeof *hi) != 0)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "plan: the bootstrapping schedule's inputs' range is not the plan's");
        if (p->boot.config.slots != m->slots)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "plan: the bootstrapping schedule's slots are not the plan's");
        *ext += len;
    }
    if (m->packing == VEIL_PACKING_LATENCY && (m->layout == VEIL_LAYOUT_PERIODIC) != (p->boot.count != 0))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "plan: the latency packing's layout does not match the bootstrapping schedule");
done:
    free(lo);
    free(hi);
    return st;
}

/* The plan's fields and info from its metadata and parameters (the estimates need the model: left at 0). */
static veil_status plan_fill(veil_plan *p, const veil_ml_meta *m, veil_error *err)
{
    memcpy(p->model_hash, m->model_hash, VEIL_ID_BYTES);
    p->packing = m->packing;
    p->batch = (size_t)m->batch;
    p->slots = (size_t)m->slots;
    p->scale_bits = m->scale_bits;
    p->in_width = m->in_width;
    p->out_width = m->out_width;
    p->final_op = (veil_final_op)m->final_op;
    p->train.task = m->final_op;
    p->train.degree = m->train.degree;
    p->train.range = m->train.range;
    veil_plan_info_from_params(p);
    veil_plan_info *in = &p->info;
    in->depth = in->q_count - 1;
    in->in_ciphertexts = p->packing == VEIL_PACKING_THROUGHPUT ? p->in_width : 1;
    in->out_ciphertexts = p->packing == VEIL_PACKING_THROUGHPUT ? p->out_width
                          : p->packing == VEIL_PACKING_TRAINING ? 2 : 1;
    veil_ckks_plan_sizes(p);
    if (p->boot.count) { /* the bootstrapping keys' part (the estimates need the model) */
        in->rotations = p->n_steps + p->n_boot_galois;
        in->bootstrap_points = p->boot.count;
        in->bootstrap_levels = p->boot.levels;
        in->bootstrap_error_bits = veil_ml_boot_error_bits(p->slots);
        in->bootstrap_key_bytes = (double)p->n_boot_galois * (double)veil_switch_key_stored_bytes(p->params) +
                                  (double)veil_ckks_encapsulation_key_stored_bytes(p->params);
    }
    if (p->slots > in->n / 2 || (p->packing == VEIL_PACKING_THROUGHPUT && p->batch > in->n / 2))
        return veil_fail(err, VEIL_ERR_FORMAT, "plan: more slots than the ring has");
    return VEIL_OK;
}

veil_status veil_plan_load(veil_plan **out, const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(data, err);
    veil_plan *p = calloc(1, sizeof *p);
    if (!p) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    veil_set_contents c = {0};
    veil_ml_meta m;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_ml_set_open(&c, &m, &p->params, data, len, err));
    if (m.kind != VEIL_SET_PLAN || c.count != 1) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "this file is not a Veil plan");
    if (veil_params_security(p->params) >= VEIL_SECURITY_NONE)
        VEIL_FAIL(err, VEIL_ERR_INSECURE, "the plan's parameters are not secure: refused");
    size_t ext = 0;
    if (m.packing != VEIL_PACKING_TRAINING) {
        VEIL_CHECK(veil_ml_range_decode(c.meta + META_BYTES, c.meta_len - META_BYTES, m.in_width, &p->bound,
                                        &p->ckks.box_lo, &p->ckks.box_hi, err));
        ext = veil_ml_range_bytes(m.in_width);
    }
    VEIL_CHECK(plan_boot(p, &m, &c, &ext, err));
    VEIL_CHECK(plan_steps(p, &m, &c, ext, err));
    if (p->boot.count) VEIL_CHECK(veil_ml_boot_plan_keys(p, err)); /* its keys' elements, from the parameters */
    VEIL_CHECK(plan_fill(p, &m, err));
    *out = p;
    p = NULL;
done:
    veil_set_contents_clear(&c);
    veil_plan_free(p);
    return st;
}
