/*
 * The public entry points of encrypted inference (veil/ml.h): each checks what every scheme shares, then picks
 * the back end's table of operations (ml_plan.h) from the scheme of the plan, the keys or the set, once. This
 * is the one place that chooses the scheme; the back ends never call it.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sodium.h>
#include "ml/ml_plan.h"
#include "veil/serial.h"
#include "veil/train.h"
#include "serial/serial_internal.h"

/* The back end of a scheme (the metadata's field: checked when decoded, or a plan's). */
static const veil_ml_backend *backend_of(uint32_t scheme)
{
    return scheme == VEIL_ML_BGV ? &veil_ml_bgv_backend : &veil_ml_ckks_backend;
}

/* ---- plans ------------------------------------------------------------------------------------------ */

veil_status veil_model_plan(veil_plan **out, const veil_model *m, const veil_plan_request *req, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(m, err);
    if (m->enc) return veil_model_need_weights(m, "plan", err);
    veil_plan_request dflt = {0};
    if (!req) req = &dflt;
    if (req->packing != VEIL_PACKING_THROUGHPUT && req->packing != VEIL_PACKING_LATENCY)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: unknown packing %d", (int)req->packing);
    if (req->security > VEIL_SECURITY_NONE || (req->security == VEIL_SECURITY_NONE && !req->bootstrap))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: a security level of 128, 192 or 256 bits is required (the "
                         "insecure test set, VEIL_SECURITY_NONE, only for bootstrapping plans when asked for)");
    if (req->scheme != VEIL_ML_CKKS && req->scheme != VEIL_ML_BGV)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: unknown scheme %d", (int)req->scheme);
    const veil_program *p = &m->program;
    if ((req->scheme == VEIL_ML_BGV) != (p->integer != 0))
        return veil_fail(err, VEIL_ERR_ARGUMENT, p->integer ? "plan: the model was loaded for exact inference: plan it with BGV"
                         : "plan: exact inference (BGV) needs the model loaded for it (options.integer, `--scheme bgv`)");
    veil_plan *plan = calloc(1, sizeof *plan);
    if (!plan) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    memcpy(plan->model_hash, m->hash, sizeof plan->model_hash);
    plan->packing = req->packing;
    plan->in_width = p->in_width;
    plan->out_width = p->out_width;
    plan->final_op = p->final_op;
    veil_status st = VEIL_OK;
    VEIL_CHECK(backend_of(req->scheme)->plan(plan, m, req, err));
    *out = plan;
    plan = NULL;
done:
    veil_plan_free(plan);
    return st;
}

size_t veil_plan_input_bytes(const veil_plan *plan, size_t rows)
{
    if (!plan || rows == 0) return 0;
    if (plan->packing == VEIL_PACKING_TRAINING) return veil_train_data_bytes(plan, rows);
    return backend_of(plan->scheme)->input_bytes(plan, rows);
}

/* ---- keys ------------------------------------------------------------------------------------------- */

veil_status veil_keyset_generate(veil_keyset **secret_out, veil_eval_keys **eval_out, const veil_plan *plan,
                                 veil_prng *prng, veil_progress_fn progress, void *progress_arg, veil_error *err)
{
    VEIL_REQUIRE(secret_out, err);
    VEIL_REQUIRE(eval_out, err);
    *secret_out = NULL;
    *eval_out = NULL;
    VEIL_REQUIRE(plan, err);
    return backend_of(plan->scheme)->keygen(secret_out, eval_out, plan, prng, progress, progress_arg, err);
}

veil_status veil_keyset_generate_to_file(veil_keyset **secret_out, const veil_plan *plan, const char *eval_path,
                                         veil_prng *prng, veil_progress_fn progress, void *progress_arg,
                                         veil_error *err)
{
    VEIL_REQUIRE(secret_out, err);
    *secret_out = NULL;
    VEIL_REQUIRE(plan, err);
    VEIL_REQUIRE(eval_path, err);
    return backend_of(plan->scheme)->keygen_to_file(secret_out, plan, eval_path, prng, progress, progress_arg, err);
}

veil_status veil_keyset_save(veil_buffer *out, const veil_keyset *k, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(k, err);
    return backend_of(k->meta.scheme)->keyset_save(out, k, err);
}

veil_status veil_keyset_load(veil_keyset **out, const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(data, err);
    veil_keyset *k = calloc(1, sizeof *k);
    if (!k) return veil_fail(err, VEIL_ERR_NO_MEMORY, "key set");
    veil_set_contents c = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_ml_set_open(&c, &k->meta, &k->params, data, len, err));
    if (k->meta.kind != VEIL_SET_KEYSET) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "this file is not a Veil key set (secret.key)");
    VEIL_CHECK(backend_of(k->meta.scheme)->keyset_load(k, &c, err));
    *out = k;
    k = NULL;
done:
    veil_set_contents_clear(&c);
    veil_keyset_free(k);
    return st;
}

veil_status veil_eval_keys_save(veil_buffer *out, const veil_eval_keys *k, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(k, err);
    return backend_of(k->meta.scheme)->eval_keys_save(out, k, err);
}

/* Refuses a file that holds a secret key; loads a bundle into a context of its own. */
veil_status veil_eval_keys_load(veil_eval_keys **out, const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(data, err);
    veil_object_info info; /* the digest is checked by veil_ml_set_open, next */
    veil_status st = veil_object_peek_ex(&info, data, len, false, err);
    if (st != VEIL_OK) return st;
    if (info.flags & VEIL_FLAG_SECRET)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "this file holds a secret key: the server side is given only the "
                         "evaluation keys (KEYDIR/eval), never the secret key");
    veil_eval_keys *k = calloc(1, sizeof *k);
    if (!k) return veil_fail(err, VEIL_ERR_NO_MEMORY, "eval keys");
    veil_set_contents c = {0};
    VEIL_CHECK(veil_ml_set_open(&c, &k->meta, &k->params, data, len, err));
    if (k->meta.kind != VEIL_SET_EVAL_KEYS) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "this file is not an evaluation-key bundle");
    VEIL_CHECK(backend_of(k->meta.scheme)->eval_keys_load(k, &c, err));
    *out = k;
    k = NULL;
done:
    veil_set_contents_clear(&c);
    veil_eval_keys_free(k);
    return st;
}

/* ---- ciphertext sets -------------------------------------------------------------------------------- */

veil_status veil_ciphertexts_save(veil_buffer *out, const veil_ciphertexts *cts, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(cts, err);
    return backend_of(cts->meta.scheme)->ciphertexts_save(out, cts, err);
}

/* A set's metadata against the keys': VEIL_OK, or the failure naming what differs. */
static veil_status set_matches(const veil_ml_meta *meta, const veil_ml_meta *km, const veil_set_contents *c,
                               const veil_context *ctx, veil_error *err)
{
    uint8_t h[VEIL_PARAMS_HASH_BYTES];
    veil_params_hash(veil_context_params(ctx), h);
    const int train_set = meta->kind == VEIL_SET_TRAIN_DATA || meta->kind == VEIL_SET_TRAIN_MODEL;
    if (meta->kind != VEIL_SET_INPUTS && meta->kind != VEIL_SET_OUTPUTS && !train_set)
        return veil_fail(err, VEIL_ERR_MISMATCH, "this file is not a ciphertext set");
    if (memcmp(h, c->params_hash, sizeof h) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "these ciphertexts were made under another parameter set than the keys'");
    if (sodium_memcmp(meta->key_id, km->key_id, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "these ciphertexts were encrypted under other keys than the ones given");
    if (meta->scheme != km->scheme || meta->bgv.crt_count != km->bgv.crt_count ||
        meta->bgv.input_lo != km->bgv.input_lo || meta->bgv.input_hi != km->bgv.input_hi ||
        (meta->scheme == VEIL_ML_BGV && meta->bgv.out_scale != km->bgv.out_scale))
        return veil_fail(err, VEIL_ERR_MISMATCH, "these ciphertexts belong to another scheme or plan than the keys");
    if (memcmp(meta->model_hash, km->model_hash, VEIL_ID_BYTES) != 0 || meta->packing != km->packing ||
        meta->slots != km->slots || meta->batch != km->batch || meta->final_op != km->final_op ||
        meta->train.degree != km->train.degree || meta->train.range != km->train.range ||
        meta->train.boot != km->train.boot || meta->layout != km->layout)
        return veil_fail(err, VEIL_ERR_MISMATCH, "these ciphertexts belong to another model or plan than the keys");
    if (train_set && (meta->in_width != km->in_width || meta->out_width != km->out_width ||
                      meta->scale_bits != km->scale_bits))
        return veil_fail(err, VEIL_ERR_FORMAT, "training set: %u features at scale 2^%u, the keys are for %u at 2^%u",
                         meta->in_width, meta->scale_bits, km->in_width, km->scale_bits);
    if (!train_set && meta->width != (meta->kind == VEIL_SET_INPUTS ? km->in_width : km->out_width))
        return veil_fail(err, VEIL_ERR_FORMAT, "ciphertext set: %u values per row, the model has %u", meta->width,
                         meta->kind == VEIL_SET_INPUTS ? km->in_width : km->out_width);
    return VEIL_OK;
}

veil_status veil_ciphertexts_load(veil_ciphertexts **out, const veil_keyset *keys, const veil_eval_keys *eval,
                                  const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(data, err);
    if (!keys == !eval) return veil_fail(err, VEIL_ERR_ARGUMENT, "ciphertexts_load: give the key set or the eval keys");
    const veil_ml_meta *km = keys ? &keys->meta : &eval->meta;
    const veil_context *ctx = keys ? keys->ctx : eval->ctx;
    veil_set_contents c;
    veil_ml_meta meta;
    veil_params *params = NULL;
    veil_status st = veil_ml_set_open(&c, &meta, &params, data, len, err);
    if (st != VEIL_OK) return st;
    veil_params_free(params); /* its hash is the set's, checked against the keys' below */
    veil_ciphertexts *set = NULL;
    VEIL_CHECK(set_matches(&meta, km, &c, ctx, err));
    const int train_set = meta.kind == VEIL_SET_TRAIN_DATA || meta.kind == VEIL_SET_TRAIN_MODEL;
    const size_t per = meta.packing == VEIL_PACKING_THROUGHPUT ? meta.width : 1;
    /* a trained model: the weights and one scaling per data set trained on (veil_train_run_sets) */
    const size_t model_count = c.count >= 3 && c.count <= 2 + VEIL_TRAIN_MAX_SETS ? c.count - 1 : 2;
    size_t expect = train_set ? (meta.kind == VEIL_SET_TRAIN_MODEL ? model_count : veil_train_data_count(&meta)) : 0;
    const size_t groups = meta.bgv.crt_count ? meta.bgv.crt_count : 1; /* exact inference: one group per modulus */
    size_t total = 0; /* crafted rows and width can wrap the count: refused */
    if ((!train_set && __builtin_mul_overflow(veil_ciphertexts_batches(&meta), per, &expect)) ||
        expect == SIZE_MAX || __builtin_mul_overflow(groups, expect + 1, &total))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "ciphertext set: %llu rows of %u values are more ciphertexts than a set holds",
                  (unsigned long long)meta.rows, meta.width);
    if (c.count != total)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "ciphertext set: %zu ciphertexts for %llu rows, expected %zu", c.count - 1,
                  (unsigned long long)meta.rows, expect);
    const veil_context *ctxs[VEIL_CRT_MAX] = {ctx};
    for (size_t m = 1; m < meta.bgv.crt_count; m++) ctxs[m] = keys ? keys->bgv.crt[m].ctx : eval->bgv.crt[m].ctx;
    VEIL_CHECK(veil_ciphertexts_alloc(&set, ctx, &meta, 0, err));
    VEIL_CHECK(backend_of(meta.scheme)->ciphertexts_load(set, &c, ctxs, expect, err));
    set->has_dp = veil_ml_dp_tail(c.meta, c.meta_len, &set->dp, NULL) == 1; /* validated by veil_ml_set_open */
    *out = set;
    set = NULL;
done:
    veil_set_contents_clear(&c);
    veil_ciphertexts_free(set);
    return st;
}

/* Part p of the set opened in c (params, metadata meta): its batches' ciphertexts, a set of their own. */
static veil_status write_part(veil_buffer *out, const veil_set_contents *c, const veil_params *params,
                              const veil_ml_meta *meta, size_t first, size_t n, size_t per, veil_error *err)
{
    veil_ml_meta m = *meta;
    const uint64_t lo = (uint64_t)first * meta->batch, hi = (uint64_t)(first + n) * meta->batch;
    m.rows = (hi < meta->rows ? hi : meta->rows) - lo;
    uint8_t mb[VEIL_META_EXACT_BYTES] = {0};
    const size_t mlen = veil_ml_meta_encode(mb, &m);
    veil_buffer *items = calloc(1 + n * per, sizeof *items);
    if (!items) return veil_fail(err, VEIL_ERR_NO_MEMORY, "split: a part");
    /* the objects' bytes as they are (each with its own digest): pointed at, not copied */
    items[0] = (veil_buffer){(uint8_t *)c->items[0].data, c->items[0].len};
    for (size_t i = 0; i < n * per; i++)
        items[1 + i] = (veil_buffer){(uint8_t *)c->items[1 + first * per + i].data, c->items[1 + first * per + i].len};
    const veil_status st = veil_set_save(out, params, mb, mlen, items, 1 + n * per, err);
    free(items);
    return st;
}

/*
 * Opens a serialized set of the throughput packing that is split by batches (veil_ciphertexts_split_serialized,
 * veil_ciphertexts_load_batches): its framing (and its own digest when verify is set), its metadata against the
 * keys', every object after the parameters a CKKS ciphertext; *batches: B. What is not split by batches is
 * refused with VEIL_ERR_ARGUMENT. c and *params are released by the caller (on failure too).
 */
static veil_status open_by_batches(veil_set_contents *c, veil_ml_meta *meta, veil_params **params, size_t *batches,
                                   const veil_eval_keys *eval, const uint8_t *data, size_t len, bool verify,
                                   veil_error *err)
{
    memset(c, 0, sizeof *c);
    veil_status st = veil_ml_set_open_ex(c, meta, params, data, len, verify, err);
    if (st != VEIL_OK) return st;
    VEIL_CHECK(set_matches(meta, &eval->meta, c, eval->ctx, err));
    if (meta->scheme != VEIL_ML_CKKS) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "batches: a BGV set is not split");
    if (meta->packing != VEIL_PACKING_THROUGHPUT || meta->kind == VEIL_SET_TRAIN_DATA ||
        meta->kind == VEIL_SET_TRAIN_MODEL)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "batches: only sets of the throughput packing are split");
    veil_dp_release dp;
    if (veil_ml_dp_tail(c->meta, c->meta_len, &dp, NULL) != 0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "batches: a differentially private release is not split");
    if (c->meta_len != VEIL_META_BYTES) /* each part's metadata is written anew: nothing else may ride on it */
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "batches: this set's metadata carries more than a set of batches");
    *batches = veil_ciphertexts_batches(meta);
    size_t count = 0; /* crafted rows and width can wrap the count: refused */
    if (__builtin_mul_overflow(*batches, (size_t)meta->width, &count) || count == SIZE_MAX)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "ciphertext set: %llu rows of %u values are more ciphertexts than a set holds",
                  (unsigned long long)meta->rows, meta->width);
    if (!meta->batch || c->count != count + 1)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "ciphertext set: %zu ciphertexts for %llu rows, expected %zu", c->count - 1,
                  (unsigned long long)meta->rows, *batches * meta->width);
    for (size_t i = 1; i < c->count; i++)
        if (c->items[i].type != VEIL_OBJECT_CKKS_CIPHERTEXT)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "ciphertext set: object %zu is not a CKKS ciphertext", i);
done:
    return st;
}

veil_status veil_ciphertexts_split_serialized(veil_buffer *outs, size_t parts, const veil_eval_keys *eval,
                                              const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(outs, err);
    for (size_t p = 0; p < parts; p++) outs[p] = (veil_buffer){0};
    VEIL_REQUIRE(eval, err);
    VEIL_REQUIRE(data, err);
    if (parts < 1 || parts > 65536) return veil_fail(err, VEIL_ERR_ARGUMENT, "split: %zu parts (1 to 65536)", parts);
    veil_set_contents c;
    veil_ml_meta meta;
    veil_params *params = NULL;
    size_t batches = 0;
    veil_status st = VEIL_OK;
    VEIL_CHECK(open_by_batches(&c, &meta, &params, &batches, eval, data, len, true, err));
    for (size_t p = 0; p < parts; p++) {
        const size_t first = p * batches / parts, n = (p + 1) * batches / parts - first;
        if (n) VEIL_CHECK(write_part(&outs[p], &c, params, &meta, first, n, meta.width, err));
    }
done:
    if (st != VEIL_OK)
        for (size_t p = 0; p < parts; p++) veil_buffer_free(&outs[p]);
    veil_set_contents_clear(&c);
    veil_params_free(params);
    return st;
}

veil_status veil_ciphertexts_check_serialized(size_t *batches, const veil_eval_keys *eval, const uint8_t *data,
                                              size_t len, int digest, veil_error *err)
{
    VEIL_REQUIRE(batches, err);
    *batches = 0;
    VEIL_REQUIRE(eval, err);
    VEIL_REQUIRE(data, err);
    veil_set_contents c;
    veil_ml_meta meta;
    veil_params *params = NULL;
    const veil_status st = open_by_batches(&c, &meta, &params, batches, eval, data, len, digest != 0, err);
    veil_set_contents_clear(&c);
    veil_params_free(params);
    return st;
}

veil_status veil_ciphertexts_rows_serialized(uint64_t *rows, const veil_eval_keys *eval, const uint8_t *data, size_t len,
                                             int digest, veil_error *err)
{
    VEIL_REQUIRE(rows, err);
    *rows = 0;
    VEIL_REQUIRE(eval, err);
    VEIL_REQUIRE(data, err);
    veil_set_contents c;
    veil_ml_meta meta;
    veil_params *params = NULL;
    memset(&c, 0, sizeof c);
    veil_status st = veil_ml_set_open_ex(&c, &meta, &params, data, len, digest != 0, err);
    if (st == VEIL_OK) st = set_matches(&meta, &eval->meta, &c, eval->ctx, err);
    if (st == VEIL_OK) *rows = meta.rows;
    veil_set_contents_clear(&c);
    veil_params_free(params);
    return st;
}

veil_status veil_ciphertexts_fingerprint_serialized(uint8_t fingerprint[32], const uint8_t *data, size_t len,
                                                   veil_error *err)
{
    VEIL_REQUIRE(fingerprint, err);
    memset(fingerprint, 0, 32);
    VEIL_REQUIRE(data, err);
    veil_set_contents c;
    memset(&c, 0, sizeof c);
    const veil_status st = veil_set_open_ex(&c, data, len, false, err);
    if (st != VEIL_OK) return st;
    crypto_generichash_state h;
    crypto_generichash_init(&h, (const unsigned char *)"veil-set-fingerprint", 20, 32);
    /* the set's framing up to its first object: header, metadata, count */
    crypto_generichash_update(&h, data, c.count ? (size_t)(c.items[0].data - data) : len);
    for (size_t i = 0; i < c.count; i++) {
        const uint8_t *o = c.items[i].data;
        const size_t n = c.items[i].len;
        uint8_t l[8];
        for (int b = 0; b < 8; b++) l[b] = (uint8_t)((uint64_t)n >> (8 * b));
        crypto_generichash_update(&h, l, sizeof l);
        /* a version-2 object ends with its own digest over all of it; a version-1 object (none) counts whole */
        const unsigned version = (unsigned)o[4] | (unsigned)o[5] << 8;
        if (version >= 2 && n >= VEIL_HEADER_BYTES + VEIL_DIGEST_BYTES) {
            crypto_generichash_update(&h, o, VEIL_HEADER_BYTES);
            crypto_generichash_update(&h, o + n - VEIL_DIGEST_BYTES, VEIL_DIGEST_BYTES);
        } else {
            crypto_generichash_update(&h, o, n);
        }
    }
    if (len >= VEIL_DIGEST_BYTES) crypto_generichash_update(&h, data + len - VEIL_DIGEST_BYTES, VEIL_DIGEST_BYTES);
    crypto_generichash_final(&h, fingerprint, 32);
    veil_set_contents_clear(&c);
    return VEIL_OK;
}

veil_status veil_ciphertexts_load_batches(veil_ciphertexts **out, const veil_eval_keys *eval, const uint8_t *data,
                                          size_t len, size_t first, size_t n, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(eval, err);
    VEIL_REQUIRE(data, err);
    veil_set_contents c;
    veil_ml_meta meta;
    veil_params *params = NULL;
    veil_ciphertexts *set = NULL;
    size_t batches = 0;
    veil_status st = VEIL_OK;
    /* the set's own digest is the caller's (veil_ciphertexts_check_serialized); each ciphertext's is checked */
    VEIL_CHECK(open_by_batches(&c, &meta, &params, &batches, eval, data, len, false, err));
    if (n == 0 || first >= batches || n > batches - first)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "batches %zu .. %zu of a set of %zu", first, first + n, batches);
    const size_t per = meta.width;
    const uint64_t lo = (uint64_t)first * meta.batch, hi = (uint64_t)(first + n) * meta.batch;
    meta.rows = (hi < meta.rows ? hi : meta.rows) - lo;
    veil_set_contents part = c; /* the parameters, then the batches' ciphertexts (the loader skips items[0]) */
    part.items = c.items + first * per;
    part.count = 1 + n * per;
    VEIL_CHECK(veil_ciphertexts_alloc(&set, eval->ctx, &meta, 0, err));
    const veil_context *ctxs[VEIL_CRT_MAX] = {eval->ctx};
    VEIL_CHECK(backend_of(meta.scheme)->ciphertexts_load(set, &part, ctxs, n * per, err));
    *out = set;
    set = NULL;
done:
    veil_ciphertexts_free(set);
    veil_set_contents_clear(&c);
    veil_params_free(params);
    return st;
}

/* Part p's place in a join: its set opened (digest checked), of the same kind and plan as part 0. */
static veil_status open_join_part(veil_set_contents *c, veil_ml_meta *meta, const veil_ml_meta *first,
                                  const veil_eval_keys *eval, const veil_buffer *part, size_t p, veil_error *err)
{
    veil_params *params = NULL;
    size_t batches = 0;
    veil_status st = open_by_batches(c, meta, &params, &batches, eval, part->data, part->len, true, err);
    veil_params_free(params); /* its hash is the keys' (set_matches) */
    if (st != VEIL_OK) return st;
    veil_ml_meta a = *meta, b = *first;
    a.rows = b.rows = 0;
    uint8_t ea[VEIL_META_EXACT_BYTES] = {0}, eb[VEIL_META_EXACT_BYTES] = {0}; /* compared encoded: no padding */
    const size_t la = veil_ml_meta_encode(ea, &a), lb = veil_ml_meta_encode(eb, &b);
    if (p > 0 && (la != lb || memcmp(ea, eb, la) != 0))
        return veil_fail(err, VEIL_ERR_MISMATCH, "join: part %zu is not of the same kind of set as part 0", p);
    return VEIL_OK;
}

veil_status veil_ciphertexts_join_serialized(veil_buffer *out, const veil_eval_keys *eval, const veil_buffer *parts,
                                             size_t n, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = (veil_buffer){0};
    VEIL_REQUIRE(eval, err);
    VEIL_REQUIRE(parts, err);
    if (n < 1) return veil_fail(err, VEIL_ERR_ARGUMENT, "join: no part");
    veil_set_contents *c = calloc(n, sizeof *c);
    veil_ml_meta first = {0}, meta = {0};
    veil_params *params = NULL;
    veil_set_writer *w = NULL, *complete = NULL;
    if (!c) return veil_fail(err, VEIL_ERR_NO_MEMORY, "join");
    veil_status st = VEIL_OK;
    size_t count = 1, bytes = 0;
    uint64_t rows = 0;
    for (size_t p = 0; p < n; p++) {
        VEIL_CHECK(open_join_part(&c[p], p ? &meta : &first, &first, eval, &parts[p], p, err));
        const veil_ml_meta *m = p ? &meta : &first;
        if (p + 1 < n && m->rows % m->batch) /* only the last part may end with a partial batch */
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "join: part %zu ends with a partial batch", p);
        rows += m->rows;
        count += c[p].count - 1;
        for (size_t i = 1; i < c[p].count; i++) bytes += c[p].items[i].len;
    }
    bytes += c[0].items[0].len;
    VEIL_CHECK(veil_params_load(&params, c[0].items[0].data, c[0].items[0].len, err));
    veil_ml_meta joined = first;
    joined.rows = rows;
    uint8_t mb[VEIL_META_EXACT_BYTES] = {0};
    const size_t mlen = veil_ml_meta_encode(mb, &joined);
    /* the objects' bytes as they are (each checked again by the writer): what saving the joined set writes */
    VEIL_CHECK(veil_set_writer_begin(&w, params, mb, mlen, count, bytes, false, NULL, NULL, err));
    VEIL_CHECK(veil_set_writer_add(w, c[0].items[0].data, c[0].items[0].len, err));
    for (size_t p = 0; p < n; p++)
        for (size_t i = 1; i < c[p].count; i++) VEIL_CHECK(veil_set_writer_add(w, c[p].items[i].data, c[p].items[i].len, err));
    complete = w;
    w = NULL;
    VEIL_CHECK(veil_set_writer_end(complete, out, err));
done:
    veil_set_writer_free(w);
    for (size_t p = 0; p < n; p++) veil_set_contents_clear(&c[p]);
    free(c);
    veil_params_free(params);
    return st;
}

veil_status veil_ciphertexts_encrypt(veil_ciphertexts **out, const veil_keyset *k, const double *in, size_t rows,
                                     veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(k, err);
    VEIL_REQUIRE(in, err);
    if (rows == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "encrypt: no rows");
    if (k->meta.packing == VEIL_PACKING_TRAINING)
        return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt: these keys were made for training (encrypt with the labels)");
    return backend_of(k->meta.scheme)->encrypt(out, k, in, rows, prng, err);
}

veil_status veil_ciphertexts_decrypt(double *out, double *raw_out, const veil_keyset *k, const veil_ciphertexts *cts,
                                     veil_error *err)
{
    return veil_ciphertexts_decrypt_ex(out, raw_out, k, cts, NULL, err);
}

veil_status veil_ciphertexts_decrypt_ex(double *out, double *raw_out, const veil_keyset *k, const veil_ciphertexts *cts,
                                        const veil_decrypt_options *opts, veil_error *err)
{
    VEIL_REQUIRE(k, err);
    VEIL_REQUIRE(cts, err);
    if (!out && !raw_out) return veil_fail(err, VEIL_ERR_NULL, "decrypt: no output buffer");
    if (!k->sk && k->pk)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "decrypt: a joint key set holds no secret key: the parties decrypt "
                         "together (veil_ciphertexts_decrypt_share, veil_ciphertexts_decrypt_joint; veil party)");
    /* either side exact: the exact back end refuses what does not match */
    const uint32_t scheme = k->meta.scheme == VEIL_ML_BGV ? k->meta.scheme : cts->meta.scheme;
    return backend_of(scheme)->decrypt(out, raw_out, k, cts, opts, err);
}

/* ---- the evaluator ---------------------------------------------------------------------------------- */

struct veil_evaluator {
    const veil_ml_backend *backend;
    void *state; /* the back end's */
    const veil_eval_keys *keys;
    veil_model *owned; /* veil_evaluator_new_encrypted: the encrypted model it loaded, freed with it */
};

void veil_evaluator_free(veil_evaluator *ev)
{
    if (!ev) return;
    if (ev->state) ev->backend->evaluator_free(ev->state);
    veil_model_free(ev->owned);
    free(ev);
}

/* The model and keys must agree: made for this model (its hash), its widths, and its scheme. */
static veil_status model_matches_keys(const veil_model *model, const veil_eval_keys *keys, veil_error *err)
{
    if (keys->meta.packing == VEIL_PACKING_TRAINING)
        return veil_fail(err, VEIL_ERR_MISMATCH, "these evaluation keys were made for training, not for a model");
    if (memcmp(model->hash, keys->meta.model_hash, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "the evaluation keys were made for another model (or other "
                         "approximation settings): run keygen with this model");
    const veil_program *p = &model->program;
    if (p->in_width != keys->meta.in_width || p->out_width != keys->meta.out_width)
        return veil_fail(err, VEIL_ERR_MISMATCH, "the evaluation keys do not match the model's widths");
    if ((keys->meta.scheme == VEIL_ML_BGV) != (p->integer != 0))
        return veil_fail(err, VEIL_ERR_MISMATCH, keys->meta.scheme == VEIL_ML_BGV
                         ? "these are exact-inference (BGV) keys: load the model for it (options.integer, --scheme bgv)"
                         : "the model was loaded for exact inference (BGV): these keys are CKKS keys");
    return VEIL_OK;
}

veil_status veil_evaluator_new(veil_evaluator **out, const veil_model *model, const veil_eval_keys *keys,
                               size_t threads, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(model, err);
    VEIL_REQUIRE(keys, err);
    if (threads > VEIL_ML_THREADS_MAX)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "evaluator: %zu threads; at most %d", threads, VEIL_ML_THREADS_MAX);
    veil_status st = model_matches_keys(model, keys, err);
    if (st != VEIL_OK) return st;
    veil_evaluator *ev = calloc(1, sizeof *ev);
    if (!ev) return veil_fail(err, VEIL_ERR_NO_MEMORY, "evaluator");
    ev->backend = backend_of(keys->meta.scheme);
    ev->keys = keys;
    VEIL_CHECK(ev->backend->evaluator_new(&ev->state, model, keys, threads, err));
    *out = ev;
    ev = NULL;
done:
    veil_evaluator_free(ev);
    return st;
}

veil_status veil_evaluator_new_encrypted(veil_evaluator **out, const veil_eval_keys *keys, const uint8_t *data,
                                         size_t len, size_t threads, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    veil_model *m = NULL;
    veil_status st = veil_model_load_encrypted(&m, keys, data, len, err);
    if (st != VEIL_OK) return st;
    st = veil_evaluator_new(out, m, keys, threads, err);
    if (st == VEIL_OK) (*out)->owned = m;
    else veil_model_free(m);
    return st;
}

veil_status veil_evaluator_run(const veil_evaluator *ev, veil_ciphertexts **out, const veil_ciphertexts *in,
                               veil_progress_fn fn, void *arg, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ev, err);
    VEIL_REQUIRE(in, err);
    const veil_eval_keys *k = ev->keys;
    if (in->ctx != k->ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "evaluate: load the ciphertexts with these eval keys");
    if (in->meta.kind != VEIL_SET_INPUTS) return veil_fail(err, VEIL_ERR_ARGUMENT, "evaluate: these are not inputs");
    if (in->meta.scheme != k->meta.scheme || in->meta.bgv.crt_count != k->meta.bgv.crt_count)
        return veil_fail(err, VEIL_ERR_MISMATCH, "evaluate: these ciphertexts are not of the keys' scheme");
    return ev->backend->evaluator_run(ev->state, out, in, fn, arg, err);
}

veil_status veil_model_evaluate(veil_ciphertexts **out, const veil_model *model, const veil_eval_keys *keys,
                                const veil_ciphertexts *in, veil_progress_fn fn, void *arg, veil_error *err)
{
    veil_evaluator *ev = NULL;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_evaluator_new(&ev, model, keys, 1, err));
    VEIL_CHECK(veil_evaluator_run(ev, out, in, fn, arg, err));
done:
    veil_evaluator_free(ev);
    return st;
}

/* ---- a training split's share, loaded from serialized sets (veil_train_run_serialized) --------------------- */

/*
 * Data set h of n (serialized, as veil_train_encrypt writes it) opened: its framing, its own digest when verify
 * is set, its metadata against the keys', a CKKS training data set of the count its rows give. *nct: its
 * ciphertexts of records (Z_A, then as many Z_X, then the constant part and the scaling).
 */
static veil_status open_train_data(veil_set_contents *c, veil_ml_meta *meta, size_t *nct, const veil_eval_keys *eval,
                                   const veil_buffer *data, size_t h, bool verify, veil_error *err)
{
    veil_params *params = NULL;
    memset(c, 0, sizeof *c);
    veil_status st = veil_ml_set_open_ex(c, meta, &params, data->data, data->len, verify, err);
    veil_params_free(params); /* its hash is the set's, checked against the keys' below */
    if (st != VEIL_OK) return st;
    VEIL_CHECK(set_matches(meta, &eval->meta, c, eval->ctx, err));
    if (meta->kind != VEIL_SET_TRAIN_DATA || meta->scheme != VEIL_ML_CKKS)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "train: data set %zu is not an encrypted training data set", h + 1);
    const size_t count = veil_train_data_count(meta);
    if (c->count != count + 1)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "train: data set %zu: %zu ciphertexts for %llu rows, expected %zu", h + 1,
                  c->count - 1, (unsigned long long)meta->rows, count);
    *nct = (count - 2) / 2;
done:
    return st;
}

veil_status veil_ml_train_load_share(veil_ciphertexts **sets, const veil_eval_keys *eval, const veil_buffer *data,
                                     size_t n, size_t my_part, size_t parts, bool verify, veil_error *err)
{
    veil_set_contents c[VEIL_TRAIN_MAX_SETS];
    veil_ml_meta meta[VEIL_TRAIN_MAX_SETS];
    size_t nct[VEIL_TRAIN_MAX_SETS], total = 0, opened = 0;
    veil_status st = VEIL_OK;
    if (n < 1 || n > VEIL_TRAIN_MAX_SETS || parts < 1 || my_part >= parts)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: %zu data sets, part %zu of %zu", n, my_part, parts);
    for (size_t h = 0; h < n; h++) sets[h] = NULL;
    for (; opened < n; opened++) {
        VEIL_CHECK(open_train_data(&c[opened], &meta[opened], &nct[opened], eval, &data[opened], opened, verify, err));
        total += nct[opened];
    }
    /* this part's ciphertexts of records, counted over the sets in order: as veil_train_run_sets takes them */
    const size_t first = my_part * total / parts, end = (my_part + 1) * total / parts;
    for (size_t h = 0, at = 0; h < n; at += nct[h], h++) {
        veil_ciphertexts *s = NULL;
        VEIL_CHECK(veil_ciphertexts_alloc(&s, eval->ctx, &meta[h], 0, err));
        sets[h] = s;
        const size_t count = 2 * nct[h] + 2;
        free(s->cts);
        s->cts = calloc(count, sizeof *s->cts); /* the slots of the other parts' records stay NULL */
        if (!s->cts) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "train: data set %zu", h + 1);
        s->count = count;
        size_t k = 0;
        /* [first, end) within this set's [at, at + nct[h]), as indices into the set */
        const size_t lo = first <= at ? 0 : (first - at < nct[h] ? first - at : nct[h]);
        const size_t hi = end <= at ? 0 : (end - at < nct[h] ? end - at : nct[h]);
        const size_t mine = hi > lo ? hi - lo : 0, want = 2 * mine + 2;
        size_t *which = malloc(want * sizeof *which);
        if (!which) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "train: data set %zu", h + 1);
        for (size_t i = lo; i < lo + mine; i++) which[k++] = i, which[k++] = nct[h] + i; /* Z_A and Z_X */
        which[k++] = 2 * nct[h];     /* the constant part */
        which[k++] = 2 * nct[h] + 1; /* the scaling */
        VEIL_PARALLEL_PARTS(want, veil_ring_threads(veil_context_ring(eval->ctx)), err,
                            veil_ckks_ciphertext_load_ex(&s->cts[which[part]], eval->ctx, c[h].items[which[part] + 1].data,
                                                         c[h].items[which[part] + 1].len, !c[h].verified, &e_));
        free(which);
        if (st != VEIL_OK) goto done;
    }
done:
    for (size_t h = 0; h < n && h <= opened && h < VEIL_TRAIN_MAX_SETS; h++) veil_set_contents_clear(&c[h]);
    if (st != VEIL_OK)
        for (size_t h = 0; h < n; h++) {
            veil_ciphertexts_free(sets[h]);
            sets[h] = NULL;
        }
    return st;
}

/* A training split: its share loaded from the sets' bytes, then trained (veil_train_run_sets, train.c). */
veil_status veil_train_run_serialized(veil_ciphertexts **out, const veil_eval_keys *keys, const veil_buffer *sets,
                                      size_t n_sets, const veil_train_options *opts, veil_progress_fn progress,
                                      void *progress_arg, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(keys, err);
    VEIL_REQUIRE(sets, err);
    if (n_sets < 1 || n_sets > VEIL_TRAIN_MAX_SETS)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "train: %zu data sets (1 to %d)", n_sets, VEIL_TRAIN_MAX_SETS);
    for (size_t h = 0; h < n_sets; h++) VEIL_REQUIRE(sets[h].data, err);
    const veil_train_split *split = opts ? opts->split : NULL;
    const size_t parts = split && split->parts > 1 ? split->parts : 1, part = parts > 1 ? split->part : 0;
    if (part >= parts) return veil_fail(err, VEIL_ERR_ARGUMENT, "train: split: process %zu of %zu", part, parts);
    veil_ciphertexts *loaded[VEIL_TRAIN_MAX_SETS] = {NULL};
    /* the sets' own digests (every byte) by part 0 alone, which writes the result; the others' by nobody twice */
    veil_status st = veil_ml_train_load_share(loaded, keys, sets, n_sets, part, parts, part == 0, err);
    if (st == VEIL_OK)
        st = veil_train_run_sets(out, keys, (const veil_ciphertexts *const *)loaded, n_sets, opts, progress,
                                 progress_arg, err);
    for (size_t h = 0; h < n_sets; h++) veil_ciphertexts_free(loaded[h]);
    return st;
}
