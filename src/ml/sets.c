/*
 * The base of the ML layer's objects: ciphertext sets, the contexts a key set shares with its evaluation keys,
 * freeing key sets, and the accessors of their metadata.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "ml/ml_plan.h"

/* ---- ciphertext sets ------------------------------------------------------------------------------ */

size_t veil_ciphertexts_batches(const veil_ml_meta *meta)
{
    if (meta->packing == VEIL_PACKING_LATENCY) return (size_t)meta->rows;
    return meta->batch ? (size_t)((meta->rows + meta->batch - 1) / meta->batch) : 0;
}

veil_status veil_ciphertexts_alloc(veil_ciphertexts **out, const veil_context *ctx, const veil_ml_meta *meta,
                                   size_t count, veil_error *err)
{
    veil_ciphertexts *c = calloc(1, sizeof *c);
    if (!c) return veil_fail(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    veil_status st = VEIL_OK;
    c->meta = *meta;
    c->ctx = ctx;
    c->cts = calloc(count ? count : 1, sizeof *c->cts);
    if (!c->cts) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    c->count = count;
    /* CKKS sets are made full; exact (BGV) ones are filled by their back end (bcts) */
    for (size_t i = 0; i < count && meta->scheme == VEIL_ML_CKKS; i++)
        VEIL_CHECK(veil_ckks_ciphertext_new(&c->cts[i], ctx, err));
    *out = c;
    c = NULL;
done:
    veil_ciphertexts_free(c);
    return st;
}

void veil_ciphertexts_free(veil_ciphertexts *c)
{
    if (!c) return;
    for (size_t i = 0; !c->bcts && i < c->count; i++) veil_ckks_ciphertext_free(c->cts[i]);
    for (size_t i = 0; c->bcts && i < c->count; i++) veil_bgv_ciphertext_free(c->bcts[i]);
    free(c->cts);
    free(c->bcts);
    free(c);
}

size_t veil_ciphertexts_rows(const veil_ciphertexts *c) { return c ? (size_t)c->meta.rows : 0; }

/* ---- splitting and joining by batches (veil eval --mpi) ------------------------------------------------- */

static veil_status check_splittable(const veil_ciphertexts *c, veil_error *err)
{
    if (c->meta.scheme != VEIL_ML_CKKS || c->bcts)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "batches: a BGV set is not split");
    if (c->meta.packing != VEIL_PACKING_THROUGHPUT)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "batches: only sets of the throughput packing are split");
    if (c->has_dp) return veil_fail(err, VEIL_ERR_ARGUMENT, "batches: a differentially private release is not split");
    const size_t batches = veil_ciphertexts_batches(&c->meta);
    if (!c->meta.batch || (batches ? c->count % batches : c->count))
        return veil_fail(err, VEIL_ERR_FORMAT, "batches: the set's ciphertexts are not whole batches");
    return VEIL_OK;
}

size_t veil_ciphertexts_batches_of(const veil_ciphertexts *c) { return c ? veil_ciphertexts_batches(&c->meta) : 0; }

veil_status veil_ciphertexts_take_batches(veil_ciphertexts **out, veil_ciphertexts *in, size_t first, size_t n,
                                          veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(in, err);
    veil_status st = check_splittable(in, err);
    if (st != VEIL_OK) return st;
    const size_t batches = veil_ciphertexts_batches(&in->meta);
    if (first > batches || n > batches - first) return veil_fail(err, VEIL_ERR_ARGUMENT, "batches: out of range");
    const size_t per = batches ? in->count / batches : 0;
    for (size_t i = first * per; i < (first + n) * per; i++)
        if (!in->cts[i]) return veil_fail(err, VEIL_ERR_ARGUMENT, "batches: these were taken already");
    veil_ml_meta meta = in->meta;
    const uint64_t lo = (uint64_t)first * in->meta.batch;
    const uint64_t hi = n ? (uint64_t)(first + n) * in->meta.batch : lo;
    meta.rows = (hi < in->meta.rows ? hi : in->meta.rows) - lo;
    veil_ciphertexts *c = calloc(1, sizeof *c);
    if (!c) return veil_fail(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    c->cts = calloc(n * per > 0 ? n * per : 1, sizeof *c->cts);
    if (!c->cts) {
        free(c);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    }
    c->meta = meta;
    c->ctx = in->ctx;
    c->count = n * per;
    for (size_t i = 0; i < c->count; i++) {
        c->cts[i] = in->cts[first * per + i];
        in->cts[first * per + i] = NULL;
    }
    *out = c;
    return VEIL_OK;
}

/* Equal metadata but for the rows: compared in their encoded form (a struct may hold padding). */
static int same_meta_but_rows(const veil_ml_meta *a, const veil_ml_meta *b)
{
    veil_ml_meta x = *a, y = *b;
    x.rows = y.rows = 0;
    uint8_t ex[VEIL_META_EXACT_BYTES] = {0}, ey[VEIL_META_EXACT_BYTES] = {0};
    const size_t nx = veil_ml_meta_encode(ex, &x), ny = veil_ml_meta_encode(ey, &y);
    return nx == ny && !memcmp(ex, ey, nx) && x.bound == y.bound;
}

veil_status veil_ciphertexts_append(veil_ciphertexts *acc, veil_ciphertexts *part, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_ckks_ciphertext **grown = NULL;
    if (!acc || !part) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "append: a set is missing");
    VEIL_CHECK(check_splittable(acc, err));
    VEIL_CHECK(check_splittable(part, err));
    if (acc->ctx != part->ctx) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "append: sets of other keys");
    if (!same_meta_but_rows(&acc->meta, &part->meta)) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "append: sets of another kind");
    if (acc->meta.rows % acc->meta.batch) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "append: the first set's last batch is partial");
    if (part->count > SIZE_MAX / sizeof *grown - acc->count - 1) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "append: too large");
    grown = realloc(acc->cts, (acc->count + part->count + 1) * sizeof *grown);
    if (!grown) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    acc->cts = grown;
    for (size_t i = 0; i < part->count; i++) {
        acc->cts[acc->count + i] = part->cts[i];
        part->cts[i] = NULL;
    }
    acc->count += part->count;
    acc->meta.rows += part->meta.rows;
done:
    veil_ciphertexts_free(part);
    return st;
}
size_t veil_ciphertexts_width(const veil_ciphertexts *c) { return c ? c->meta.width : 0; }

/* ---- encrypted models (encmodel.c): their ciphertexts and the keys' context they hold --------------- */

void veil_model_enc_free(struct veil_model_enc *e)
{
    if (!e) return;
    for (size_t s = 0; s < e->n_stages; s++) {
        if (e->n_w && e->w && e->w[s]) /* the latency packing: NULL diagonals among them */
            for (size_t i = 0; i < e->n_w[s]; i++) veil_ckks_ciphertext_free(e->w[s][i]);
        for (size_t i = 0; !e->n_w && e->w && e->w[s] && e->w[s][i]; i++) veil_ckks_ciphertext_free(e->w[s][i]);
        for (size_t i = 0; e->b && e->b[s] && e->b[s][i]; i++) veil_ckks_ciphertext_free(e->b[s][i]);
        if (e->w) free(e->w[s]);
        if (e->b) free(e->b[s]);
    }
    free(e->w);
    free(e->b);
    free(e->n_w);
    if (e->refs) veil_ml_context_release(e->ctx, e->params, e->refs);
    free(e);
}

/* ---- keys ------------------------------------------------------------------------------------------ */

/* Drops one holder of a shared context; the last one frees it. */
void veil_ml_context_release(veil_context *ctx, veil_params *params, atomic_int *refs)
{
    if (refs && atomic_fetch_sub(refs, 1) > 1) return;
    veil_context_free(ctx);
    veil_params_free(params);
    free(refs);
}

veil_status veil_ml_context_new(veil_params *params, veil_context **ctx, atomic_int **refs, veil_error *err)
{
    *refs = malloc(sizeof **refs);
    if (!*refs) return veil_fail(err, VEIL_ERR_NO_MEMORY, "context");
    atomic_init(*refs, 1);
    return veil_context_new(ctx, params, NULL, err);
}

void veil_crt_part_clear(veil_crt_part *part)
{
    if (!part->params && !part->ctx) return;
    veil_secret_key_free(part->sk);
    veil_public_key_free(part->pk);
    veil_switch_key_free(part->relin);
    veil_ml_context_release(part->ctx, part->params, part->refs);
    memset(part, 0, sizeof *part);
}

void veil_keyset_free(veil_keyset *k)
{
    if (!k) return;
    veil_secret_key_free(k->sk);
    veil_public_key_free(k->pk);
    for (size_t i = 1; i < VEIL_CRT_MAX; i++) veil_crt_part_clear(&k->bgv.crt[i]);
    veil_ml_context_release(k->ctx, k->params, k->refs);
    free(k->ckks.box_lo);
    free(k->ckks.box_hi);
    free(k);
}

void veil_eval_keys_free(veil_eval_keys *k)
{
    if (!k) return;
    veil_public_key_free(k->pk);
    veil_switch_key_free(k->relin);
    for (size_t i = 0; i < k->n_galois; i++) veil_switch_key_free(k->galois[i]);
    free(k->galois);
    veil_ckks_encapsulation_key_free(k->encaps);
    free(k->boot_lo);
    free(k->boot_hi);
    for (size_t i = 1; i < VEIL_CRT_MAX; i++) veil_crt_part_clear(&k->bgv.crt[i]);
    veil_ml_context_release(k->ctx, k->params, k->refs);
    free(k);
}

const uint8_t *veil_keyset_id(const veil_keyset *k) { return k ? k->meta.key_id : NULL; }
const uint8_t *veil_eval_keys_id(const veil_eval_keys *k) { return k ? k->meta.key_id : NULL; }
veil_packing veil_eval_keys_packing(const veil_eval_keys *k) { return k ? k->meta.packing : VEIL_PACKING_THROUGHPUT; }
size_t veil_eval_keys_batch(const veil_eval_keys *k) { return k ? (size_t)k->meta.batch : 0; }
veil_packing veil_keyset_packing(const veil_keyset *k) { return k ? k->meta.packing : VEIL_PACKING_THROUGHPUT; }
size_t veil_keyset_batch(const veil_keyset *k) { return k ? (size_t)k->meta.batch : 0; }
size_t veil_keyset_input_width(const veil_keyset *k) { return k ? k->meta.in_width : 0; }
veil_ml_scheme veil_keyset_scheme(const veil_keyset *k) { return k ? (veil_ml_scheme)k->meta.scheme : VEIL_ML_CKKS; }
veil_ml_scheme veil_eval_keys_scheme(const veil_eval_keys *k) { return k ? (veil_ml_scheme)k->meta.scheme : VEIL_ML_CKKS; }
veil_final_op veil_keyset_final_op(const veil_keyset *k)
{
    /* training keys hold the task there, and no model */
    return k && k->meta.packing != VEIL_PACKING_TRAINING ? (veil_final_op)k->meta.final_op : VEIL_FINAL_NONE;
}

double veil_keyset_output_limit(const veil_keyset *k)
{
    if (!k) return 0;
    if (k->meta.scheme == VEIL_ML_BGV) return HUGE_VAL; /* the plan bounds every output of the inputs' range */
    return (double)veil_params_q(k->params, 0) / 4 / ldexp(1.0, (int)k->meta.scale_bits);
}

size_t veil_keyset_input_range(const veil_keyset *k, const double **lo, const double **hi, double *output_bound)
{
    if (!k || !k->ckks.box_lo) return 0;
    if (lo) *lo = k->ckks.box_lo;
    if (hi) *hi = k->ckks.box_hi;
    if (output_bound) *output_bound = k->meta.bound;
    return k->meta.in_width;
}

size_t veil_keyset_output_width(const veil_keyset *k)
{
    return k ? (k->meta.final_op == VEIL_FINAL_ARGMAX ? 1 : k->meta.out_width) : 0;
}

