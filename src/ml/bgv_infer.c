/*
 * Exact inference of quantized models in BGV (throughput packing: sample r of a batch in slot r of every
 * feature's ciphertext): keys (one set per plaintext modulus), ciphertext sets, encryption, decryption with
 * the CRT recomposition, the evaluator, and the back end's table (bgv_plan.c makes the plan).
 *
 * A linear layer is one veil_bgv_linear_combination per output. A square layer first brings its inputs to
 * the level the automatic modulus switching chooses for the noisiest of them, so that every product lands
 * on one level and factor, which the next linear layer needs.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sodium.h>
#include "ml/ml_plan.h"
#include "veil/serial.h"
#include "veil/ring.h"
#include "serial/serial_internal.h"

/* ---- keys ---------------------------------------------------------------------------------------- */

/* The key id: a hash of every modulus's stored public key. */
static veil_status key_id_of(uint8_t id[VEIL_ID_BYTES], const veil_buffer *pks, size_t k)
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, (const unsigned char *)"veil-exact-keys", 15, VEIL_ID_BYTES);
    for (size_t i = 0; i < k; i++) crypto_generichash_update(&h, pks[i].data, pks[i].len);
    crypto_generichash_final(&h, id, VEIL_ID_BYTES);
    return VEIL_OK;
}

/* Modulus m's context, keys and holders of a key set or eval keys (0: the main fields). */
typedef struct part_view {
    veil_params **params;
    veil_context **ctx;
    atomic_int **refs;
} part_view;

static part_view keyset_part(veil_keyset *k, size_t m)
{
    if (m == 0) return (part_view){&k->params, &k->ctx, &k->refs};
    return (part_view){&k->bgv.crt[m].params, &k->bgv.crt[m].ctx, &k->bgv.crt[m].refs};
}

static part_view eval_part(veil_eval_keys *k, size_t m)
{
    if (m == 0) return (part_view){&k->params, &k->ctx, &k->refs};
    return (part_view){&k->bgv.crt[m].params, &k->bgv.crt[m].ctx, &k->bgv.crt[m].refs};
}

static veil_secret_key **keyset_sk(veil_keyset *k, size_t m) { return m ? &k->bgv.crt[m].sk : &k->sk; }
static veil_public_key **eval_pk(veil_eval_keys *k, size_t m) { return m ? &k->bgv.crt[m].pk : &k->pk; }
static veil_switch_key **eval_relin(veil_eval_keys *k, size_t m) { return m ? &k->bgv.crt[m].relin : &k->relin; }
static const veil_context *eval_ctx(const veil_eval_keys *k, size_t m) { return m ? k->bgv.crt[m].ctx : k->ctx; }

static veil_status bgv_keygen(veil_keyset **secret_out, veil_eval_keys **eval_out, const veil_plan *plan,
                              veil_prng *prng, veil_progress_fn progress, void *progress_arg, veil_error *err)
{
    veil_keyset *ks = calloc(1, sizeof *ks);
    veil_eval_keys *ek = calloc(1, sizeof *ek);
    veil_buffer pks[VEIL_CRT_MAX] = {{0}};
    const size_t k = plan->bgv.crt_count;
    veil_status st = VEIL_OK;
    if (!ks || !ek) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "keys");
    for (size_t m = 0; m < k; m++) {
        part_view sp = keyset_part(ks, m), ep = eval_part(ek, m);
        VEIL_CHECK(veil_params_copy(sp.params, m ? plan->bgv.crt_params[m] : plan->params, err));
        VEIL_CHECK(veil_ml_context_new(*sp.params, sp.ctx, sp.refs, err));
        /* the eval keys hold the same context */
        *ep.params = *sp.params;
        *ep.ctx = *sp.ctx;
        *ep.refs = *sp.refs;
        atomic_fetch_add(*sp.refs, 1);
        VEIL_CHECK(veil_secret_key_new(keyset_sk(ks, m), *sp.ctx, prng, err));
        VEIL_CHECK(veil_public_key_new(eval_pk(ek, m), *sp.ctx, *keyset_sk(ks, m), prng, err));
        VEIL_CHECK(veil_relin_key_new(eval_relin(ek, m), *sp.ctx, *keyset_sk(ks, m), prng, err));
        VEIL_CHECK(veil_public_key_save(&pks[m], *eval_pk(ek, m), 0, err));
        if (progress) progress(progress_arg, m + 1, k);
    }
    {
        veil_ml_meta *mt = &ks->meta;
        mt->kind = VEIL_SET_KEYSET;
        mt->packing = VEIL_PACKING_THROUGHPUT;
        mt->scheme = VEIL_ML_BGV;
        mt->bgv.crt_count = (uint32_t)k;
        mt->bgv.input_lo = plan->bgv.input_lo;
        mt->bgv.input_hi = plan->bgv.input_hi;
        mt->bgv.out_scale = plan->bgv.out_scale;
        mt->bound = plan->bound;
        memcpy(mt->model_hash, plan->model_hash, VEIL_ID_BYTES);
        mt->batch = plan->batch;
        mt->slots = plan->slots;
        mt->in_width = (uint32_t)plan->in_width;
        mt->out_width = (uint32_t)plan->out_width;
        mt->final_op = (uint32_t)plan->final_op;
        key_id_of(mt->key_id, pks, k);
        ek->meta = *mt;
        ek->meta.kind = VEIL_SET_EVAL_KEYS;
    }
    *secret_out = ks;
    *eval_out = ek;
    ks = NULL;
    ek = NULL;
done:
    for (size_t m = 0; m < VEIL_CRT_MAX; m++) veil_buffer_free(&pks[m]);
    veil_keyset_free(ks);
    veil_eval_keys_free(ek);
    return st;
}

/* Saves a set whose groups are [params, objects...] per modulus. */
static veil_status save_groups(veil_buffer *out, const veil_ml_meta *meta, const veil_params *const *params,
                               size_t k, veil_buffer *items, size_t per_group, veil_error *err)
{
    uint8_t mb[VEIL_META_EXACT_BYTES];
    const size_t len = veil_ml_meta_encode(mb, meta);
    return veil_set_save(out, params[0], mb, len, items, k * (per_group + 1), err);
}

static void free_items(veil_buffer *items, size_t count)
{
    for (size_t i = 0; items && i < count; i++) veil_buffer_free(&items[i]);
    free(items);
}

static veil_status bgv_keyset_save(veil_buffer *out, const veil_keyset *k, veil_error *err)
{
    const size_t n = k->meta.bgv.crt_count;
    veil_buffer *items = calloc(2 * n, sizeof *items);
    const veil_params *params[VEIL_CRT_MAX] = {k->params};
    veil_status st = VEIL_OK;
    if (!items) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "key set");
    for (size_t m = 0; m < n; m++) {
        params[m] = m ? k->bgv.crt[m].params : k->params;
        VEIL_CHECK(veil_params_save(&items[2 * m], params[m], 0, err));
        VEIL_CHECK(veil_secret_key_save(&items[2 * m + 1], m ? k->bgv.crt[m].sk : k->sk, 0, err));
    }
    VEIL_CHECK(save_groups(out, &k->meta, params, n, items, 1, err));
done:
    free_items(items, 2 * n);
    return st;
}

/*
 * Group m of a set: its parameter set (item m * (per + 1), the same ring as modulus 0's, a plaintext modulus
 * of its own) and a context for it. Group 0's parameters and context were made by the caller.
 */
static veil_status load_group(const veil_set_contents *c, size_t m, size_t per, const veil_params *first,
                              veil_params **params, veil_context **ctx, atomic_int **refs, veil_error *err)
{
    const veil_set_item *it = &c->items[m * (per + 1)];
    veil_status st = VEIL_OK;
    if (it->type != VEIL_OBJECT_PARAMS)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "exact set: modulus %zu's group does not start with its parameters", m);
    VEIL_CHECK(veil_params_load(params, it->data, it->len, err)); /* the caller's part holds it */
    const uint64_t t = veil_params_plain_modulus(*params);
    if (t == 0 || veil_params_degree(*params) != veil_params_degree(first) ||
        veil_params_security(*params) >= VEIL_SECURITY_NONE)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "exact set: modulus %zu's parameters are not BGV of the first's ring at "
                  "a security level", m);
    for (size_t j = 0; j < m; j++) {
        const veil_set_item *prev = &c->items[j * (per + 1)];
        if (memcmp(prev->data + 16, it->data + 16, VEIL_PARAMS_HASH_BYTES) == 0)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "exact set: modulus %zu repeats an earlier parameter set", m);
    }
    VEIL_CHECK(veil_ml_context_new(*params, ctx, refs, err));
done:
    return st;
}

static veil_status bgv_keyset_load(veil_keyset *k, const veil_set_contents *c, veil_error *err)
{
    const size_t n = k->meta.bgv.crt_count;
    if (c->count != 2 * n) return veil_fail(err, VEIL_ERR_FORMAT, "key set: %zu objects for %zu moduli", c->count, n);
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_ml_context_new(k->params, &k->ctx, &k->refs, err));
    for (size_t m = 0; m < n; m++) {
        if (m) VEIL_CHECK(load_group(c, m, 1, k->params, &k->bgv.crt[m].params, &k->bgv.crt[m].ctx, &k->bgv.crt[m].refs, err));
        if (c->items[2 * m + 1].type != VEIL_OBJECT_SECRET_KEY)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "this file is not a Veil key set (secret.key)");
        VEIL_CHECK(veil_secret_key_load(keyset_sk(k, m), m ? k->bgv.crt[m].ctx : k->ctx, c->items[2 * m + 1].data,
                                        c->items[2 * m + 1].len, err));
    }
done:
    return st;
}

static veil_status bgv_eval_keys_save(veil_buffer *out, const veil_eval_keys *k, veil_error *err)
{
    const size_t n = k->meta.bgv.crt_count;
    veil_buffer *items = calloc(3 * n, sizeof *items);
    const veil_params *params[VEIL_CRT_MAX] = {k->params};
    veil_status st = VEIL_OK;
    if (!items) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "eval keys");
    for (size_t m = 0; m < n; m++) {
        params[m] = m ? k->bgv.crt[m].params : k->params;
        VEIL_CHECK(veil_params_save(&items[3 * m], params[m], 0, err));
        VEIL_CHECK(veil_public_key_save(&items[3 * m + 1], m ? k->bgv.crt[m].pk : k->pk, k->pk_options, err));
        VEIL_CHECK(veil_switch_key_save(&items[3 * m + 2], m ? k->bgv.crt[m].relin : k->relin, 0, err));
    }
    VEIL_CHECK(save_groups(out, &k->meta, params, n, items, 2, err));
done:
    free_items(items, 3 * n);
    return st;
}

static veil_status bgv_eval_keys_load(veil_eval_keys *k, const veil_set_contents *c, veil_error *err)
{
    const size_t n = k->meta.bgv.crt_count;
    if (c->count != 3 * n) return veil_fail(err, VEIL_ERR_FORMAT, "eval keys: %zu objects for %zu moduli", c->count, n);
    veil_buffer pks[VEIL_CRT_MAX];
    for (size_t m = 0; m < n; m++) pks[m] = (veil_buffer){(uint8_t *)c->items[3 * m + 1].data, c->items[3 * m + 1].len};
    uint8_t id[VEIL_ID_BYTES];
    key_id_of(id, pks, n);
    if (sodium_memcmp(id, k->meta.key_id, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_FORMAT, "eval keys: the key id does not match the public keys");
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_ml_context_new(k->params, &k->ctx, &k->refs, err));
    for (size_t m = 0; m < n; m++) {
        if (m) VEIL_CHECK(load_group(c, m, 2, k->params, &k->bgv.crt[m].params, &k->bgv.crt[m].ctx, &k->bgv.crt[m].refs, err));
        const veil_context *ctx = eval_ctx(k, m);
        VEIL_CHECK(veil_public_key_load_ex(eval_pk(k, m), ctx, c->items[3 * m + 1].data, c->items[3 * m + 1].len,
                                           !c->verified, err));
        if (m == 0) k->pk_options = veil_ml_stored_options(c->items[1].data, c->items[1].len);
        VEIL_CHECK(veil_switch_key_load_ex(eval_relin(k, m), ctx, c->items[3 * m + 2].data, c->items[3 * m + 2].len,
                                           !c->verified, err));
        if (veil_switch_key_galois_element(*eval_relin(k, m)) != 0)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "eval keys: modulus %zu's relinearization key is a Galois key", m);
    }
done:
    return st;
}

/* ---- ciphertext sets ---------------------------------------------------------------------------------- */

static size_t per_modulus(const veil_ciphertexts *c) { return c->count / c->meta.bgv.crt_count; }

static veil_status alloc_exact(veil_ciphertexts *set, const veil_context *const *ctx, size_t k, size_t per,
                               int fill, veil_error *err)
{
    set->bcts = calloc(k * per > 0 ? k * per : 1, sizeof *set->bcts);
    if (!set->bcts) return veil_fail(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    set->count = k * per; /* only now: the set is freed as an exact one */
    for (size_t m = 0; m < k; m++) set->bctx[m] = ctx[m];
    veil_status st = VEIL_OK;
    for (size_t i = 0; fill && i < set->count; i++) VEIL_CHECK(veil_bgv_ciphertext_new(&set->bcts[i], ctx[i / per], err));
done:
    return st; /* the set holds what was made */
}

static veil_status bgv_ciphertexts_save(veil_buffer *out, const veil_ciphertexts *cts, veil_error *err)
{
    const size_t k = cts->meta.bgv.crt_count, per = per_modulus(cts);
    veil_buffer *items = calloc(k * (per + 1), sizeof *items);
    const veil_params *params[VEIL_CRT_MAX] = {NULL};
    veil_status st = VEIL_OK;
    if (!items) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    for (size_t m = 0; m < k; m++) {
        params[m] = veil_context_params(cts->bctx[m]);
        VEIL_CHECK(veil_params_save(&items[m * (per + 1)], params[m], 0, err));
        for (size_t i = 0; i < per; i++)
            VEIL_CHECK(veil_bgv_ciphertext_save(&items[m * (per + 1) + 1 + i], cts->bcts[m * per + i], 0, err));
    }
    {
        /* a noisy release (dp_noise.c): its record after the metadata */
        uint8_t mb[VEIL_META_EXACT_BYTES + VEIL_DP_TAIL_BYTES];
        size_t len = veil_ml_meta_encode(mb, &cts->meta);
        if (cts->has_dp) veil_ml_dp_encode(mb + len, &cts->dp), len += VEIL_DP_TAIL_BYTES;
        VEIL_CHECK(veil_set_save(out, params[0], mb, len, items, k * (per + 1), err));
    }
done:
    free_items(items, k * (per + 1));
    return st;
}

static veil_status bgv_ciphertexts_load(veil_ciphertexts *set, const veil_set_contents *c, const veil_context *const *ctx,
                                        size_t expect, veil_error *err)
{
    (void)expect; /* the caller checked the count: crt_count groups of a parameter set and `per` ciphertexts */
    const size_t k = set->meta.bgv.crt_count, per = c->count / k - 1;
    veil_status st = VEIL_OK;
    VEIL_CHECK(alloc_exact(set, ctx, k, per, 0, err));
    for (size_t m = 0; m < k; m++) {
        const veil_set_item *it = &c->items[m * (per + 1)];
        uint8_t h[VEIL_PARAMS_HASH_BYTES];
        veil_params_hash(veil_context_params(ctx[m]), h);
        if (it->type != VEIL_OBJECT_PARAMS || memcmp(it->data + 16, h, sizeof h) != 0)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "ciphertext set: modulus %zu was encrypted under another parameter "
                      "set than the keys'", m);
        const size_t threads = (size_t)veil_ring_threads(veil_context_ring(ctx[m]));
        const veil_set_item *items = &c->items[m * (per + 1) + 1];
        VEIL_PARALLEL_PARTS(per, per > 1 ? threads : 1, err,
                            veil_bgv_ciphertext_load_ex(&set->bcts[m * per + part], ctx[m], items[part].data,
                                                        items[part].len, !c->verified, &e_));
        if (st != VEIL_OK) goto done;
    }
done:
    return st;
}

/* ---- encryption and decryption ----------------------------------------------------------------------- */

static const veil_context *keyset_ctx(const veil_keyset *k, size_t m) { return m ? k->bgv.crt[m].ctx : k->ctx; }

/* Modulus m's ciphertexts of the set (per of them: batches x width), from the rows' integers modulo its t. */
static veil_status encrypt_modulus(veil_ciphertexts *set, const veil_keyset *k, size_t m, const double *in, size_t rows,
                                   uint64_t *v, veil_prng *prng, veil_error *err)
{
    const veil_context *ctx = set->bctx[m];
    const size_t w = set->meta.width, batch = (size_t)set->meta.batch, slots = (size_t)set->meta.slots;
    const size_t per = set->count / set->meta.bgv.crt_count;
    const uint64_t t = veil_params_plain_modulus(veil_context_params(ctx));
    veil_bgv_encoder *enc = NULL;
    veil_bgv_plaintext *pt = NULL;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_bgv_encoder_new(&enc, ctx, err));
    VEIL_CHECK(veil_bgv_plaintext_new(&pt, ctx, err));
    for (size_t i = 0; i < per; i++) {
        const size_t b = i / w, f = i % w, first = b * batch;
        const size_t n = rows - first < batch ? rows - first : batch;
        memset(v, 0, slots * sizeof *v);
        for (size_t r = 0; r < n; r++) {
            const int64_t x = (int64_t)in[(first + r) * w + f];
            v[r] = x >= 0 ? (uint64_t)x % t : (t - (uint64_t)(-x) % t) % t;
        }
        VEIL_CHECK(veil_bgv_encode(enc, pt, v, n, err));
        VEIL_CHECK(veil_bgv_encrypt_sk(ctx, set->bcts[m * per + i], pt, m ? k->bgv.crt[m].sk : k->sk, prng, err));
    }
done:
    veil_bgv_plaintext_free(pt);
    veil_bgv_encoder_free(enc);
    return st;
}

static veil_status bgv_encrypt(veil_ciphertexts **out, const veil_keyset *k, const double *in, size_t rows,
                               veil_prng *prng, veil_error *err)
{
    const veil_ml_meta *km = &k->meta;
    const size_t w = km->in_width;
    for (size_t i = 0; i < rows * w; i++)
        if (!(in[i] >= (double)km->bgv.input_lo && in[i] <= (double)km->bgv.input_hi) || in[i] != nearbyint(in[i]))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "encrypt: row %zu, column %zu is %g: the keys take integers in "
                             "[%lld, %lld] (the quantized inputs the plan bounded)", i / w + 1, i % w + 1, in[i],
                             (long long)km->bgv.input_lo, (long long)km->bgv.input_hi);
    veil_ml_meta meta = *km;
    meta.kind = VEIL_SET_INPUTS;
    meta.rows = rows;
    meta.width = (uint32_t)w;
    const size_t kk = km->bgv.crt_count, batches = veil_ciphertexts_batches(&meta), per = batches * w;
    const veil_context *ctxs[VEIL_CRT_MAX];
    for (size_t m = 0; m < kk; m++) ctxs[m] = keyset_ctx(k, m);
    veil_ciphertexts *set = NULL;
    veil_status st = VEIL_OK;
    uint64_t *v = calloc(meta.slots, sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypt");
    VEIL_CHECK(veil_ciphertexts_alloc(&set, ctxs[0], &meta, 0, err));
    VEIL_CHECK(alloc_exact(set, ctxs, kk, per, 1, err));
    for (size_t m = 0; m < kk; m++) VEIL_CHECK(encrypt_modulus(set, k, m, in, rows, v, prng, err));
    *out = set;
    set = NULL;
done:
    if (v) sodium_memzero(v, meta.slots * sizeof *v);
    free(v);
    veil_ciphertexts_free(set);
    return st;
}

/* Modulus m's residues of every output (rows x width) into res. */
static veil_status decrypt_modulus(uint64_t *res, const veil_keyset *k, size_t m, const veil_ciphertexts *cts,
                                   uint64_t *vals, veil_error *err)
{
    const veil_context *ctx = keyset_ctx(k, m);
    const size_t w = cts->meta.width, rows = (size_t)cts->meta.rows, per = per_modulus(cts);
    const size_t batch = (size_t)cts->meta.batch;
    veil_bgv_encoder *enc = NULL;
    veil_bgv_plaintext *pt = NULL;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_bgv_encoder_new(&enc, ctx, err));
    VEIL_CHECK(veil_bgv_plaintext_new(&pt, ctx, err));
    for (size_t i = 0; i < per; i++) {
        const size_t b = i / w, f = i % w, first = b * batch;
        const size_t n = rows - first < batch ? rows - first : batch;
        VEIL_CHECK(veil_bgv_decrypt(ctx, pt, cts->bcts[m * per + i], m ? k->bgv.crt[m].sk : k->sk, err));
        VEIL_CHECK(veil_bgv_decode(enc, vals, n, pt, err));
        for (size_t r = 0; r < n; r++) res[(first + r) * w + f] = vals[r];
    }
done:
    veil_bgv_plaintext_free(pt);
    veil_bgv_encoder_free(enc);
    return st;
}

veil_status veil_ciphertexts_decrypt_integers(int64_t *out, const veil_keyset *k, const veil_ciphertexts *cts,
                                              veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(k, err);
    VEIL_REQUIRE(cts, err);
    if (k->meta.scheme != VEIL_ML_BGV || cts->meta.scheme != VEIL_ML_BGV)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "decrypt: exact integers come from BGV keys and ciphertexts only");
    if (sodium_memcmp(cts->meta.key_id, k->meta.key_id, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "decrypt: the ciphertexts were encrypted under other keys");
    if (cts->bctx[0] != k->ctx) return veil_fail(err, VEIL_ERR_MISMATCH, "decrypt: load the ciphertexts with this key set");
    if (cts->meta.kind != VEIL_SET_OUTPUTS)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "decrypt: these are encrypted inputs, not a model's outputs");
    const size_t kk = cts->meta.bgv.crt_count, w = cts->meta.width, rows = (size_t)cts->meta.rows;
    const size_t slots = (size_t)cts->meta.slots;
    uint64_t moduli[VEIL_CRT_MAX], *res[VEIL_CRT_MAX] = {NULL}, *vals = calloc(slots, sizeof *vals);
    veil_status st = VEIL_OK;
    if (!vals) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "decrypt");
    for (size_t m = 0; m < kk; m++) {
        moduli[m] = veil_params_plain_modulus(veil_context_params(keyset_ctx(k, m)));
        res[m] = calloc(rows * w + 1, sizeof *res[m]);
        if (!res[m]) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "decrypt");
    }
    for (size_t m = 0; m < kk; m++) VEIL_CHECK(decrypt_modulus(res[m], k, m, cts, vals, err));
    if (kk == 1) {
        for (size_t i = 0; i < rows * w; i++)
            out[i] = res[0][i] > moduli[0] / 2 ? -(int64_t)(moduli[0] - res[0][i]) : (int64_t)res[0][i];
    } else {
        VEIL_CHECK(veil_bgv_crt_compose(moduli, kk, (const uint64_t *const *)res, rows * w, out, err));
    }
    /* T > 4 B: a result past the bound is not the computation's (noise overflow, or a forged result) */
    const double allowed = k->meta.bound + (cts->has_dp ? 40 * cts->dp.sigma / cts->dp.resolution : 0); /* noise */
    for (size_t i = 0; i < rows * w; i++)
        if (fabs((double)out[i]) > allowed)
            VEIL_FAIL(err, VEIL_ERR_NOISE, "decrypt: output %zu of row %zu decrypts to %lld, beyond the bound "
                      "2^%.1f the plan proved: the result is not the model's (noise overflow or a forged "
                      "ciphertext)", i % w + 1, i / w + 1, (long long)out[i], log2(k->meta.bound));
done:
    for (size_t m = 0; m < kk; m++) free(res[m]);
    free(vals);
    return st;
}

/* The integers, times the output scale, then the final operation. Exact: no error to flood (opts ignored). */
static veil_status bgv_decrypt(double *out, double *raw_out, const veil_keyset *k, const veil_ciphertexts *cts,
                               const veil_decrypt_options *opts, veil_error *err)
{
    (void)opts;
    if (cts->meta.kind != VEIL_SET_OUTPUTS)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "decrypt: these are encrypted inputs, not a model's outputs");
    const size_t w = cts->meta.width, rows = (size_t)cts->meta.rows;
    veil_program final = {.final_op = (veil_final_op)k->meta.final_op, .out_width = w};
    const size_t fw = veil_final_width(&final);
    veil_status st = VEIL_OK;
    int64_t *ints = calloc(rows * w + 1, sizeof *ints);
    double *row = calloc(w + 1, sizeof *row);
    if (!ints || !row) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "decrypt");
    VEIL_CHECK(veil_ciphertexts_decrypt_integers(ints, k, cts, err));
    for (size_t r = 0; r < rows; r++) {
        for (size_t i = 0; i < w; i++) row[i] = (double)ints[r * w + i] * k->meta.bgv.out_scale;
        if (raw_out) memcpy(raw_out + r * w, row, w * sizeof *row);
        veil_final_apply(&final, row, w);
        if (out) memcpy(out + r * fw, row, fw * sizeof *row);
    }
done:
    free(ints);
    free(row);
    return st;
}

/* ---- the evaluator ------------------------------------------------------------------------------------ */

/* One linear layer on one modulus: out_j = W_j . x + b_j, the outputs in parallel. */
static veil_status linear_layer(const veil_context *ctx, const veil_stage *s, veil_bgv_ciphertext *const *x,
                                veil_bgv_ciphertext **y, size_t threads, veil_error *err)
{
    int64_t *w = malloc(s->in_width * s->out_width * sizeof *w);
    if (!w) return veil_fail(err, VEIL_ERR_NO_MEMORY, "linear layer");
    for (size_t i = 0; i < s->in_width * s->out_width; i++) w[i] = (int64_t)s->w[i];
    veil_status st;
    VEIL_PARALLEL_PARTS(s->out_width, threads, err,
                        veil_bgv_linear_combination(ctx, y[part], (const veil_bgv_ciphertext *const *)x,
                                                    w + part * s->in_width, s->in_width, (int64_t)s->b[part], &e_));
    free(w);
    return st;
}

/* x squared into y at `level`: the product of a layer's input, brought to the layer's level first. */
static veil_status square_at(const veil_context *ctx, const veil_switch_key *rk, veil_bgv_ciphertext *y,
                             const veil_bgv_ciphertext *x, size_t level, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_bgv_mod_switch_to(ctx, y, x, level, err));
    VEIL_CHECK(veil_bgv_mul_relin(ctx, y, y, y, rk, err));
    if (veil_bgv_ciphertext_level(y) != level)
        VEIL_FAIL(err, VEIL_ERR_INTERNAL, "square layer: a product left the layer's level");
done:
    return st;
}

/* One square layer: every input to the level the noisiest one's product lands on, then the products. */
static veil_status square_layer(const veil_context *ctx, const veil_switch_key *rk, size_t width,
                                veil_bgv_ciphertext *const *x, veil_bgv_ciphertext **y, size_t threads, veil_error *err)
{
    size_t noisiest = 0;
    for (size_t i = 1; i < width; i++)
        if (veil_bgv_noise_budget_estimate(x[i]) < veil_bgv_noise_budget_estimate(x[noisiest])) noisiest = i;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_bgv_mul_relin(ctx, y[noisiest], x[noisiest], x[noisiest], rk, err));
    const size_t level = veil_bgv_ciphertext_level(y[noisiest]);
    VEIL_PARALLEL_PARTS(width, threads, err, part == noisiest ? VEIL_OK : square_at(ctx, rk, y[part], x[part], level, &e_));
done:
    return st;
}

static void free_layer(veil_bgv_ciphertext **c, size_t n)
{
    for (size_t i = 0; c && i < n; i++) veil_bgv_ciphertext_free(c[i]);
    free(c);
}

/* One batch of one modulus through the program; the outputs are moved into out. */
static veil_status run_exact_batch(const veil_context *ctx, const veil_switch_key *rk, const veil_program *p,
                                   veil_bgv_ciphertext *const *in, veil_bgv_ciphertext **out, size_t threads,
                                   veil_error *err)
{
    veil_bgv_ciphertext *const *x = in;
    veil_bgv_ciphertext **owned = NULL, **y = NULL;
    size_t width = p->in_width, y_width = 0;
    veil_status st = VEIL_OK;
    for (size_t si = 0; si < p->n_stages; si++) {
        const veil_stage *s = &p->stages[si];
        y = calloc(s->out_width, sizeof *y);
        if (!y) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "evaluate");
        y_width = s->out_width;
        for (size_t j = 0; j < s->out_width; j++) VEIL_CHECK(veil_bgv_ciphertext_new(&y[j], ctx, err));
        if (s->kind == VEIL_STAGE_AFFINE) VEIL_CHECK(linear_layer(ctx, s, x, y, threads, err));
        else if (s->kind == VEIL_STAGE_SQUARE) VEIL_CHECK(square_layer(ctx, rk, width, x, y, threads, err));
        else VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "evaluate: exact inference takes affine layers and squares only");
        free_layer(owned, width);
        owned = y;
        y = NULL;
        x = owned;
        width = s->out_width;
    }
    if (!owned) VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "evaluate: the program has no layers");
    for (size_t j = 0; j < width; j++) {
        veil_bgv_ciphertext_free(out[j]);
        out[j] = owned[j];
        owned[j] = NULL;
    }
done:
    free_layer(y, y_width);
    free_layer(owned, width);
    return st;
}

/* The evaluator's state: exact inference prepares nothing (the weights are small integers, used as they are). */
typedef struct bgv_evaluator {
    const veil_model *model;
    const veil_eval_keys *keys;
    size_t threads;
} bgv_evaluator;

static veil_status bgv_evaluator_new(void **state, const veil_model *model, const veil_eval_keys *keys, size_t threads,
                                     veil_error *err)
{
    bgv_evaluator *ev = calloc(1, sizeof *ev);
    if (!ev) return veil_fail(err, VEIL_ERR_NO_MEMORY, "evaluator");
    ev->model = model;
    ev->keys = keys;
    ev->threads = threads ? threads : 1;
    *state = ev;
    return VEIL_OK;
}

static void bgv_evaluator_free(void *state) { free(state); }

static veil_status bgv_evaluator_run(const void *state, veil_ciphertexts **out, const veil_ciphertexts *in,
                                     veil_progress_fn fn, void *arg, veil_error *err)
{
    const bgv_evaluator *ev = state;
    const veil_program *p = &ev->model->program;
    const veil_eval_keys *k = ev->keys;
    veil_ml_meta meta = in->meta;
    meta.kind = VEIL_SET_OUTPUTS;
    meta.width = (uint32_t)p->out_width;
    const size_t kk = meta.bgv.crt_count, batches = veil_ciphertexts_batches(&in->meta), per_in = batches * p->in_width;
    const size_t per_out = batches * p->out_width;
    const veil_context *ctxs[VEIL_CRT_MAX];
    for (size_t m = 0; m < kk; m++) ctxs[m] = eval_ctx(k, m);
    veil_status st = VEIL_OK;
    veil_ciphertexts *res = NULL;
    VEIL_CHECK(veil_ciphertexts_alloc(&res, ctxs[0], &meta, 0, err));
    VEIL_CHECK(alloc_exact(res, ctxs, kk, per_out, 0, err));
    for (size_t m = 0; m < kk; m++)
        for (size_t b = 0; b < batches; b++) {
            st = run_exact_batch(ctxs[m], m ? k->bgv.crt[m].relin : k->relin, p, in->bcts + m * per_in + b * p->in_width,
                                 res->bcts + m * per_out + b * p->out_width, ev->threads, err);
            if (fn) fn(arg, m * batches + b + 1, kk * batches);
            if (st != VEIL_OK) goto done;
        }
    *out = res;
    res = NULL;
done:
    veil_ciphertexts_free(res);
    return st;
}

/* A few keys: generated in memory, then the bundle written (atomically). */
static veil_status bgv_keygen_to_file(veil_keyset **secret_out, const veil_plan *plan, const char *eval_path,
                                      veil_prng *prng, veil_progress_fn progress, void *progress_arg, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    veil_buffer b = {0};
    VEIL_CHECK(bgv_keygen(&ks, &ek, plan, prng, progress, progress_arg, err));
    VEIL_CHECK(bgv_eval_keys_save(&b, ek, err));
    VEIL_CHECK(veil_file_write_atomic(eval_path, b.data, b.len, err));
    *secret_out = ks;
    ks = NULL;
done:
    veil_buffer_free(&b);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    return st;
}

const veil_ml_backend veil_ml_bgv_backend = {
    .plan = veil_bgv_plan,
    .input_bytes = veil_bgv_plan_input_bytes,
    .keygen = bgv_keygen,
    .keygen_to_file = bgv_keygen_to_file,
    .keyset_save = bgv_keyset_save,
    .keyset_load = bgv_keyset_load,
    .eval_keys_save = bgv_eval_keys_save,
    .eval_keys_load = bgv_eval_keys_load,
    .ciphertexts_save = bgv_ciphertexts_save,
    .ciphertexts_load = bgv_ciphertexts_load,
    .encrypt = bgv_encrypt,
    .decrypt = bgv_decrypt,
    .evaluator_new = bgv_evaluator_new,
    .evaluator_run = bgv_evaluator_run,
    .evaluator_free = bgv_evaluator_free,
};
