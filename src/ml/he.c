/*
 * Encrypted inference: key generation for a plan, encryption of rows, the evaluator of both packings, and
 * decryption with the final operation.
 *
 * Throughput packing (CryptoNets, Gilad-Bachrach et al. 2016): slot r of ciphertext f holds feature f of
 * sample r. An affine stage is, per output, one fused linear combination of the input ciphertexts (scalar
 * weights, lazy reduction, one rescale); elementwise stages act on each ciphertext. No rotations.
 *
 * Latency packing: one sample's features over S values (a power of two at least the widest layer) in each
 * of R = N/2S lanes, value s of lane b at slot s R + b, so that a rotation by i R is cyclic over S in every
 * lane. An affine stage W (m x n, padded) is the diagonal method (Halevi-Shoup 2014): W x = sum_k d_k *
 * rot(x, k), computed by baby-step giant-step, k = g j + i: sum_j rot(sum_i rot(d_{gj+i}, -g j) * rot(x, i),
 * g j), with the baby rotations of x hoisted (Halevi-Shoup 2018) and the diagonals encoded once, when the
 * evaluator is made. A narrow layer uses the hybrid method's K extended diagonals, and the first full-width
 * layer spreads its diagonals over the lanes (veil_latency_diagonals, veil_latency_lanes in ml_plan.h).
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sodium.h>
#include <omp.h>
#include "ml/ml_plan.h"
#include "ring/ring_internal.h"
#include "veil/serial.h"
#include "veil/train.h"
#include "veil/circuits.h"
#include "serial/serial_internal.h"

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
    c->meta = *meta;
    c->ctx = ctx;
    c->cts = calloc(count ? count : 1, sizeof *c->cts);
    if (!c->cts) {
        free(c);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    }
    c->count = count;
    for (size_t i = 0; i < count && meta->scheme == VEIL_ML_CKKS; i++) {
        veil_status st = veil_ckks_ciphertext_new(&c->cts[i], ctx, err);
        if (st != VEIL_OK) {
            veil_ciphertexts_free(c);
            return st;
        }
    }
    *out = c;
    return VEIL_OK;
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
size_t veil_ciphertexts_width(const veil_ciphertexts *c) { return c ? c->meta.width : 0; }

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

void veil_keyset_free(veil_keyset *k)
{
    if (!k) return;
    veil_secret_key_free(k->sk);
    for (size_t i = 1; i < VEIL_CRT_MAX; i++) veil_crt_part_clear(&k->crt[i]);
    veil_ml_context_release(k->ctx, k->params, k->refs);
    free(k->box_lo);
    free(k->box_hi);
    free(k);
}

void veil_eval_keys_free(veil_eval_keys *k)
{
    if (!k) return;
    veil_public_key_free(k->pk);
    veil_switch_key_free(k->relin);
    for (size_t i = 0; i < k->n_galois; i++) veil_switch_key_free(k->galois[i]);
    free(k->galois);
    for (size_t i = 1; i < VEIL_CRT_MAX; i++) veil_crt_part_clear(&k->crt[i]);
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
    if (!k || !k->box_lo) return 0;
    if (lo) *lo = k->box_lo;
    if (hi) *hi = k->box_hi;
    if (output_bound) *output_bound = k->meta.bound;
    return k->meta.in_width;
}

size_t veil_keyset_output_width(const veil_keyset *k)
{
    return k ? (k->meta.final_op == VEIL_FINAL_ARGMAX ? 1 : k->meta.out_width) : 0;
}

veil_status veil_ml_copy_params(veil_params **out, const veil_params *p, veil_error *err)
{
    veil_buffer b = {0};
    VEIL_TRY(veil_params_save(&b, p, 0, err));
    veil_status st = veil_params_load(out, b.data, b.len, err);
    veil_buffer_free(&b);
    return st;
}

static veil_status eval_keys_parse(veil_eval_keys **out, const uint8_t *data, size_t len, veil_error *err);

static veil_status box_copy(double **lo, double **hi, const double *from_lo, const double *from_hi, size_t w,
                            veil_error *err)
{
    *lo = malloc(w * sizeof **lo);
    *hi = malloc(w * sizeof **hi);
    if (!*lo || !*hi) return veil_fail(err, VEIL_ERR_NO_MEMORY, "input range");
    memcpy(*lo, from_lo, w * sizeof **lo);
    memcpy(*hi, from_hi, w * sizeof **hi);
    return VEIL_OK;
}

/*
 * CKKS inference key sets and plans carry, after the 128 bytes of metadata, the range extension: a tag, the
 * outputs' bound (a double) and each input's range (in_width pairs of doubles).
 */
static const uint8_t range_tag[8] = {'V', 'E', 'I', 'L', '-', 'R', 'N', '1'};
static size_t range_ext_bytes(size_t w) { return 16 + 16 * w; }

static void put_f64(uint8_t *p, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static double get_f64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

static void range_ext_encode(uint8_t *out, double bound, const double *lo, const double *hi, size_t w)
{
    memcpy(out, range_tag, sizeof range_tag);
    put_f64(out + 8, bound);
    for (size_t i = 0; i < w; i++) {
        put_f64(out + 16 + 16 * i, lo[i]);
        put_f64(out + 24 + 16 * i, hi[i]);
    }
}

static veil_status range_ext_decode(const uint8_t *in, size_t len, size_t w, double *bound, double **lo, double **hi,
                                    veil_error *err)
{
    *lo = *hi = NULL;
    if (len < range_ext_bytes(w) || memcmp(in, range_tag, sizeof range_tag) != 0)
        return veil_fail(err, VEIL_ERR_FORMAT, "these keys (or this plan) carry no inputs' range: they were made by an "
                         "earlier Veil, which did not bound the circuit's values; make new keys");
    *bound = get_f64(in + 8);
    if (!isfinite(*bound) || *bound < 0 || *bound > 0x1p80)
        return veil_fail(err, VEIL_ERR_FORMAT, "ML metadata: the outputs' bound %g is out of range", *bound);
    *lo = malloc(w * sizeof **lo);
    *hi = malloc(w * sizeof **hi);
    if (!*lo || !*hi) return veil_fail(err, VEIL_ERR_NO_MEMORY, "input range");
    for (size_t i = 0; i < w; i++) {
        (*lo)[i] = get_f64(in + 16 + 16 * i);
        (*hi)[i] = get_f64(in + 24 + 16 * i);
        if (!isfinite((*lo)[i]) || !isfinite((*hi)[i]) || (*lo)[i] > (*hi)[i])
            return veil_fail(err, VEIL_ERR_FORMAT, "ML metadata: input %zu's range is empty or not finite", i + 1);
    }
    return VEIL_OK;
}

veil_status veil_keygen(veil_keyset **secret_out, veil_eval_keys **eval_out, const veil_plan *plan, veil_prng *prng,
                        veil_error *err)
{
    return veil_keygen_progress(secret_out, eval_out, plan, prng, NULL, NULL, err);
}

/* The metadata a key set and its bundle share (the key id comes with the public key). */
static veil_status keyset_meta(veil_keyset *ks, const veil_plan *plan, veil_error *err)
{
    veil_ml_meta *m = &ks->meta;
    m->kind = VEIL_SET_KEYSET;
    m->packing = plan->packing;
    memcpy(m->model_hash, plan->model_hash, VEIL_ID_BYTES);
    m->batch = plan->batch;
    m->slots = plan->slots;
    m->scale_bits = plan->scale_bits;
    m->in_width = (uint32_t)plan->in_width;
    m->out_width = (uint32_t)plan->out_width;
    m->final_op = (uint32_t)plan->final_op;
    m->degree = plan->degree;
    m->range = plan->range;
    m->bound = plan->bound;
    if (plan->box_lo) return box_copy(&ks->box_lo, &ks->box_hi, plan->box_lo, plan->box_hi, plan->in_width, err);
    return VEIL_OK;
}

/*
 * The first half of CKKS key generation: the key set (secret key, metadata) and the public key, stored
 * (uncompressed) in *pk_bytes, whose hash is the key id.
 */
static veil_status keygen_begin(veil_keyset **out, veil_public_key **pk, veil_buffer *pk_bytes, const veil_plan *plan,
                                veil_prng *prng, veil_error *err)
{
    veil_keyset *ks = calloc(1, sizeof *ks);
    if (!ks) return veil_fail(err, VEIL_ERR_NO_MEMORY, "key set");
    veil_status st = veil_ml_copy_params(&ks->params, plan->params, err);
    if (st == VEIL_OK) st = veil_ml_context_new(ks->params, &ks->ctx, &ks->refs, err);
    if (st == VEIL_OK) st = veil_secret_key_new(&ks->sk, ks->ctx, prng, err);
    if (st == VEIL_OK) st = veil_public_key_new(pk, ks->ctx, ks->sk, prng, err);
    if (st == VEIL_OK) st = keyset_meta(ks, plan, err);
    if (st == VEIL_OK) st = veil_public_key_save(pk_bytes, *pk, 0, err);
    if (st == VEIL_OK) crypto_generichash(ks->meta.key_id, VEIL_ID_BYTES, pk_bytes->data, pk_bytes->len, NULL, 0);
    if (st != VEIL_OK) {
        veil_keyset_free(ks);
        return st;
    }
    *out = ks;
    return VEIL_OK;
}

/* Receives each key-switching key as it is made (and owns it from then on). */
typedef veil_status (*key_sink)(void *arg, veil_switch_key *key, veil_error *err);

/* The relinearization key, then the plan's Galois keys in its order, one at a time; one progress unit each. */
static veil_status keygen_switch_keys(const veil_keyset *ks, const veil_plan *plan, veil_prng *prng, key_sink sink,
                                      void *arg, veil_progress_fn progress, void *progress_arg, veil_error *err)
{
    const size_t units = 2 + plan->n_steps;
    veil_switch_key *key = NULL;
    veil_status st = veil_relin_key_new(&key, ks->ctx, ks->sk, prng, err);
    if (st == VEIL_OK) st = sink(arg, key, err);
    if (st == VEIL_OK && progress) progress(progress_arg, 1, units);
    for (size_t i = 0; st == VEIL_OK && i < plan->n_steps; i++) {
        key = NULL;
        st = veil_galois_key_new(&key, ks->ctx, ks->sk, veil_galois_element_rotation(ks->ctx, plan->steps[i]), prng, err);
        if (st == VEIL_OK) st = sink(arg, key, err);
        if (st == VEIL_OK && progress) progress(progress_arg, 2 + i, units);
    }
    return st;
}

/* In memory: the relinearization key, then the Galois keys, into the eval keys. */
static veil_status keep_key(void *arg, veil_switch_key *key, veil_error *err)
{
    veil_eval_keys *k = arg;
    (void)err;
    if (!k->relin) k->relin = key;
    else k->galois[k->n_galois++] = key;
    return VEIL_OK;
}

/* The eval keys sharing the key set's context, with its metadata. */
static veil_status eval_keys_of(veil_eval_keys **out, const veil_keyset *ks, size_t n_galois, veil_error *err)
{
    veil_eval_keys *k = calloc(1, sizeof *k);
    if (k) k->galois = calloc(n_galois + 1, sizeof *k->galois);
    if (!k || !k->galois) {
        free(k);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "eval keys");
    }
    k->meta = ks->meta;
    k->meta.kind = VEIL_SET_EVAL_KEYS;
    k->params = ks->params;
    k->ctx = ks->ctx;
    k->refs = ks->refs;
    atomic_fetch_add(k->refs, 1);
    *out = k;
    return VEIL_OK;
}

veil_status veil_keygen_progress(veil_keyset **secret_out, veil_eval_keys **eval_out, const veil_plan *plan,
                                 veil_prng *prng, veil_progress_fn progress, void *progress_arg, veil_error *err)
{
    VEIL_REQUIRE(secret_out, err);
    VEIL_REQUIRE(eval_out, err);
    *secret_out = NULL;
    *eval_out = NULL;
    VEIL_REQUIRE(plan, err);
    if (plan->scheme == VEIL_ML_BGV) return veil_exact_keygen(secret_out, eval_out, plan, prng, progress, progress_arg, err);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    veil_public_key *pk = NULL;
    veil_buffer pk_bytes = {0};
    veil_status st = keygen_begin(&ks, &pk, &pk_bytes, plan, prng, err);
    veil_buffer_free(&pk_bytes);
    if (st == VEIL_OK) st = eval_keys_of(&ek, ks, plan->n_steps, err);
    if (st == VEIL_OK) {
        ek->pk = pk;
        pk = NULL;
        st = keygen_switch_keys(ks, plan, prng, keep_key, ek, progress, progress_arg, err);
    }
    if (st == VEIL_OK && progress) progress(progress_arg, 2 + plan->n_steps, 2 + plan->n_steps);
    veil_public_key_free(pk);
    if (st != VEIL_OK) {
        veil_eval_keys_free(ek);
        veil_keyset_free(ks);
        return st;
    }
    *secret_out = ks;
    *eval_out = ek;
    return VEIL_OK;
}

/* To a set writer: each key stored (uncompressed), added, and freed at once. */
static veil_status write_key(void *arg, veil_switch_key *key, veil_error *err)
{
    veil_buffer b = {0};
    veil_status st = veil_switch_key_save(&b, key, 0, err);
    veil_switch_key_free(key);
    if (st == VEIL_OK) st = veil_set_writer_add(arg, b.data, b.len, err);
    veil_buffer_free(&b);
    return st;
}

/*
 * Begins the bundle (the layout of bundle_eval): metadata, count and sizes declared from the plan, then
 * the parameters and the public key.
 */
static veil_status bundle_begin(veil_set_writer **w, const veil_keyset *ks, const veil_plan *plan,
                                const veil_buffer *pk_bytes, veil_sink_fn sink, void *arg, veil_error *err)
{
    veil_ml_meta m = ks->meta;
    m.kind = VEIL_SET_EVAL_KEYS;
    uint8_t mb[VEIL_META_BYTES];
    veil_ml_meta_encode(mb, &m);
    veil_buffer pb = {0};
    VEIL_TRY(veil_params_save(&pb, ks->params, 0, err));
    const size_t bytes = pb.len + pk_bytes->len + (1 + plan->n_steps) * veil_switch_key_stored_bytes(ks->params);
    veil_status st = veil_set_writer_begin(w, ks->params, mb, sizeof mb, 3 + plan->n_steps, bytes, false, sink, arg, err);
    if (st == VEIL_OK) st = veil_set_writer_add(*w, pb.data, pb.len, err);
    if (st == VEIL_OK) st = veil_set_writer_add(*w, pk_bytes->data, pk_bytes->len, err);
    veil_buffer_free(&pb);
    return st;
}

veil_status veil_keygen_to_file(veil_keyset **secret_out, const veil_plan *plan, const char *eval_path, veil_prng *prng,
                                veil_progress_fn progress, void *progress_arg, veil_error *err)
{
    VEIL_REQUIRE(secret_out, err);
    *secret_out = NULL;
    VEIL_REQUIRE(plan, err);
    VEIL_REQUIRE(eval_path, err);
    veil_keyset *ks = NULL;
    if (plan->scheme == VEIL_ML_BGV) { /* a few keys: in memory, then written */
        veil_eval_keys *ek = NULL;
        veil_buffer b = {0};
        veil_status st = veil_exact_keygen(&ks, &ek, plan, prng, progress, progress_arg, err);
        if (st == VEIL_OK) st = veil_eval_keys_save(&b, ek, err);
        if (st == VEIL_OK) st = veil_file_write_atomic(eval_path, b.data, b.len, err);
        veil_buffer_free(&b);
        veil_eval_keys_free(ek);
        if (st == VEIL_OK) *secret_out = ks;
        else veil_keyset_free(ks);
        return st;
    }
    veil_public_key *pk = NULL;
    veil_buffer pk_bytes = {0};
    veil_atomic_file *f = NULL;
    veil_set_writer *w = NULL;
    veil_status st = keygen_begin(&ks, &pk, &pk_bytes, plan, prng, err);
    veil_public_key_free(pk); /* only its stored form goes on */
    if (st == VEIL_OK) st = veil_atomic_file_open(&f, eval_path, false, err);
    if (st == VEIL_OK) st = bundle_begin(&w, ks, plan, &pk_bytes, veil_atomic_file_write, f, err);
    veil_buffer_free(&pk_bytes);
    if (st == VEIL_OK) st = keygen_switch_keys(ks, plan, prng, write_key, w, progress, progress_arg, err);
    if (st == VEIL_OK) {
        st = veil_set_writer_end(w, NULL, err);
        w = NULL;
    }
    if (st == VEIL_OK) {
        st = veil_atomic_file_commit(f, err);
        f = NULL;
    }
    if (st == VEIL_OK && progress) progress(progress_arg, 2 + plan->n_steps, 2 + plan->n_steps);
    veil_set_writer_free(w);
    veil_atomic_file_abort(f);
    if (st != VEIL_OK) {
        veil_keyset_free(ks);
        return st;
    }
    *secret_out = ks;
    return VEIL_OK;
}

/* ---- bundles (sets with ML metadata) ---------------------------------------------------------------- */

#define META_BYTES VEIL_META_BYTES
static const uint8_t meta_magic[8] = {'V', 'E', 'I', 'L', '-', 'M', 'L', '1'};

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

size_t veil_ml_meta_encode(uint8_t *out, const veil_ml_meta *m)
{
    const int exact = m->scheme == VEIL_ML_BGV;
    memset(out, 0, exact ? VEIL_META_EXACT_BYTES : META_BYTES);
    memcpy(out, meta_magic, 8);
    put64(out + 8, (uint64_t)m->kind);
    /* the latency layout: 1, the lanes of veil_latency_lanes (files of the earlier layout are refused) */
    const uint64_t layout = m->packing == VEIL_PACKING_LATENCY ? 1 : 0;
    put64(out + 16, (uint64_t)m->packing | (uint64_t)(m->scheme & 0xff) << 8 | layout << 16);
    memcpy(out + 24, m->key_id, VEIL_ID_BYTES);
    memcpy(out + 56, m->model_hash, VEIL_ID_BYTES);
    put64(out + 88, m->batch);
    put64(out + 96, m->slots);
    put64(out + 104, m->rows);
    put64(out + 112, (uint64_t)m->in_width | (uint64_t)m->out_width << 32);
    put64(out + 120, (uint64_t)m->width | (uint64_t)(m->final_op & 0xff) << 32 | (uint64_t)(m->scale_bits & 0xff) << 40 |
                         (uint64_t)(m->degree & 0xff) << 48 | (uint64_t)(m->range & 0xff) << 56);
    if (!exact) return META_BYTES;
    /* exact inference: 40 more bytes (the moduli count, the inputs' range, the output scale, reserved) */
    uint64_t scale_bits, bound_bits;
    memcpy(&scale_bits, &m->out_scale, sizeof scale_bits);
    memcpy(&bound_bits, &m->bound, sizeof bound_bits);
    put64(out + 128, m->crt_count);
    put64(out + 136, (uint64_t)m->input_lo);
    put64(out + 144, (uint64_t)m->input_hi);
    put64(out + 152, scale_bits);
    put64(out + 160, bound_bits);
    return VEIL_META_EXACT_BYTES;
}

/* The fields of exact-inference metadata. */
static int exact_meta_valid(const veil_ml_meta *m, size_t len)
{
    if (m->scheme == VEIL_ML_CKKS) return len == META_BYTES || m->kind == VEIL_SET_PLAN || m->kind == VEIL_SET_KEYSET;
    if (m->scheme != VEIL_ML_BGV || len != VEIL_META_EXACT_BYTES || m->packing != VEIL_PACKING_THROUGHPUT ||
        m->kind == VEIL_SET_PLAN || m->scale_bits != 0)
        return 0;
    const int64_t limit = (int64_t)1 << 40;
    return m->crt_count >= 1 && m->crt_count <= VEIL_CRT_MAX && m->input_lo <= m->input_hi && m->input_lo > -limit &&
           m->input_hi < limit && isfinite(m->out_scale) && m->out_scale != 0 && m->bound >= 0 &&
           m->bound < 0x1p62;
}

/* The fields of training metadata: the task, the sigmoid, the block and records per ciphertext. */
static int train_meta_valid(const veil_ml_meta *m)
{
    if (m->packing != VEIL_PACKING_TRAINING) return 1; /* training kinds were refused with other packings */
    if (m->kind == VEIL_SET_INPUTS || m->kind == VEIL_SET_OUTPUTS || m->final_op > VEIL_TRAIN_LINEAR || m->in_width >= 1024 || m->out_width != m->in_width + 1)
        return 0;
    if (m->final_op == VEIL_TRAIN_LOGISTIC && (m->degree < 3 || m->degree > 7 || m->degree % 2 == 0 || m->range < 1 ||
                                               m->range > 64))
        return 0;
    if (m->final_op == VEIL_TRAIN_LINEAR && (m->degree != 0 || m->range != 0)) return 0;
    if (veil_train_block(m->in_width) * m->batch != m->slots) return 0;
    if (m->kind == VEIL_SET_TRAIN_DATA && (m->width != m->in_width || m->rows == 0 || m->rows > ((uint64_t)1 << 20)))
        return 0;
    if (m->kind == VEIL_SET_TRAIN_MODEL && (m->width != m->out_width || m->rows == 0 || m->rows > ((uint64_t)1 << 20)))
        return 0;
    return 1;
}

veil_status veil_ml_meta_decode(veil_ml_meta *m, const uint8_t *in, size_t len, veil_error *err)
{
    memset(m, 0, sizeof *m);
    if (len < META_BYTES || memcmp(in, meta_magic, 8) != 0)
        return veil_fail(err, VEIL_ERR_FORMAT, "not a Veil ML file (keys or ciphertexts): bad metadata");
    uint64_t kind = get64(in + 8), packing = get64(in + 16), w = get64(in + 112), x = get64(in + 120);
    const uint64_t scheme = packing >> 8 & 0xff, layout = packing >> 16 & 0xff, rest = packing >> 24;
    packing &= 0xff;
    if (rest || scheme > VEIL_ML_BGV || layout != (packing == VEIL_PACKING_LATENCY ? 1u : 0u))
        return veil_fail(err, VEIL_ERR_FORMAT, "ML metadata: unknown scheme or layout (a latency file of an earlier "
                         "Veil, whose slots were laid out otherwise, is refused: make new keys)");
    m->scheme = (uint32_t)scheme;
    if (m->scheme == VEIL_ML_BGV && len == VEIL_META_EXACT_BYTES) {
        uint64_t scale_bits = get64(in + 152), bound_bits = get64(in + 160), count = get64(in + 128);
        m->crt_count = count <= VEIL_CRT_MAX ? (uint32_t)count : 0; /* 0: refused below */
        m->input_lo = (int64_t)get64(in + 136);
        m->input_hi = (int64_t)get64(in + 144);
        memcpy(&m->out_scale, &scale_bits, sizeof scale_bits);
        memcpy(&m->bound, &bound_bits, sizeof bound_bits);
    }
    if (kind < VEIL_SET_KEYSET || kind > VEIL_SET_TRAIN_MODEL || packing > VEIL_PACKING_TRAINING ||
        ((kind == VEIL_SET_TRAIN_DATA || kind == VEIL_SET_TRAIN_MODEL) && packing != VEIL_PACKING_TRAINING))
        return veil_fail(err, VEIL_ERR_FORMAT, "ML metadata: unknown kind %llu or packing %llu",
                         (unsigned long long)kind, (unsigned long long)packing);
    m->kind = (veil_set_kind)kind;
    m->packing = (veil_packing)packing;
    memcpy(m->key_id, in + 24, VEIL_ID_BYTES);
    memcpy(m->model_hash, in + 56, VEIL_ID_BYTES);
    m->batch = get64(in + 88);
    m->slots = get64(in + 96);
    m->rows = get64(in + 104);
    m->in_width = (uint32_t)w;
    m->out_width = (uint32_t)(w >> 32);
    m->width = (uint32_t)x;
    m->final_op = (uint32_t)(x >> 32) & 0xff;
    m->scale_bits = (uint32_t)(x >> 40) & 0xff;
    m->degree = (uint32_t)(x >> 48) & 0xff;
    m->range = (uint32_t)(x >> 56) & 0xff;
    const int training = m->packing == VEIL_PACKING_TRAINING;
    if (!exact_meta_valid(m, len))
        return veil_fail(err, VEIL_ERR_FORMAT, "ML metadata: the scheme's fields are out of range");
    const int scale_ok = m->scheme == VEIL_ML_BGV || (m->scale_bits >= 20 && m->scale_bits <= 60);
    if (m->final_op > VEIL_FINAL_ARGMAX || !scale_ok || m->batch == 0 ||
        m->batch > ((uint64_t)1 << 16) || m->slots == 0 || m->slots > ((uint64_t)1 << 16) || (m->slots & (m->slots - 1)) ||
        m->in_width == 0 || m->out_width == 0 || m->rows > ((uint64_t)1 << 40) || (!training && (x >> 48) != 0) || !train_meta_valid(m) ||
        (m->packing == VEIL_PACKING_LATENCY && (m->in_width > m->slots || m->out_width > m->slots || m->batch != 1)) ||
        (m->packing == VEIL_PACKING_THROUGHPUT && m->batch > m->slots) ||
        (m->kind >= VEIL_SET_INPUTS && m->kind <= VEIL_SET_OUTPUTS &&
         m->width != (m->kind == VEIL_SET_INPUTS ? m->in_width : m->out_width)))
        return veil_fail(err, VEIL_ERR_FORMAT, "ML metadata: a field is out of range");
    return VEIL_OK;
}

/* One key stored (uncompressed) and added to the set. */
static veil_status add_key(veil_set_writer *w, const veil_switch_key *key, veil_error *err)
{
    veil_buffer b = {0};
    veil_status st = veil_switch_key_save(&b, key, 0, err);
    if (st == VEIL_OK) st = veil_set_writer_add(w, b.data, b.len, err);
    veil_buffer_free(&b);
    return st;
}

/*
 * The bundle: [parameters, public key, relinearization key, Galois keys], built in one buffer of its exact
 * size, one key stored at a time (a bundle of gigabytes is not held twice). Keys are stored uncompressed:
 * their residues are uniform, zstd gains nothing, and the sizes are exact. The key id names the key set: a
 * hash of the stored public key.
 */
static veil_status bundle_eval(veil_buffer *out, veil_ml_meta *meta, const veil_params *params, const veil_public_key *pk,
                               const veil_switch_key *relin, veil_switch_key *const *galois, size_t n_galois,
                               unsigned pk_options, veil_error *err)
{
    veil_buffer pb = {0}, kb = {0};
    veil_set_writer *w = NULL;
    veil_status st = veil_params_save(&pb, params, 0, err);
    if (st == VEIL_OK) st = veil_public_key_save(&kb, pk, pk_options, err);
    if (st == VEIL_OK) {
        crypto_generichash(meta->key_id, VEIL_ID_BYTES, kb.data, kb.len, NULL, 0);
        meta->kind = VEIL_SET_EVAL_KEYS;
        uint8_t mb[META_BYTES];
        veil_ml_meta_encode(mb, meta);
        const size_t bytes = pb.len + kb.len + (1 + n_galois) * veil_switch_key_stored_bytes(params);
        st = veil_set_writer_begin(&w, params, mb, sizeof mb, 3 + n_galois, bytes, false, NULL, NULL, err);
    }
    if (st == VEIL_OK) st = veil_set_writer_add(w, pb.data, pb.len, err);
    if (st == VEIL_OK) st = veil_set_writer_add(w, kb.data, kb.len, err);
    veil_buffer_free(&pb);
    veil_buffer_free(&kb);
    if (st == VEIL_OK) st = add_key(w, relin, err);
    for (size_t i = 0; st == VEIL_OK && i < n_galois; i++) st = add_key(w, galois[i], err);
    if (st == VEIL_OK) return veil_set_writer_end(w, out, err);
    veil_set_writer_free(w);
    return st;
}

veil_status veil_eval_keys_save(veil_buffer *out, const veil_eval_keys *k, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(k, err);
    if (k->meta.scheme == VEIL_ML_BGV) return veil_exact_eval_keys_save(out, k, err);
    veil_ml_meta m = k->meta;
    return bundle_eval(out, &m, k->params, k->pk, k->relin, k->galois, k->n_galois, k->pk_options, err);
}

/* Opens a set, decodes its ML metadata, and loads its parameters (the first object). */
static veil_status open_ml_set(veil_set_contents *c, veil_ml_meta *meta, veil_params **params, const uint8_t *data,
                               size_t len, veil_error *err)
{
    *params = NULL;
    VEIL_TRY(veil_set_open(c, data, len, err));
    veil_status st = veil_ml_meta_decode(meta, c->meta, c->meta_len, err);
    if (st == VEIL_OK && (c->count < 1 || c->items[0].type != VEIL_OBJECT_PARAMS))
        st = veil_fail(err, VEIL_ERR_FORMAT, "ML file: the parameters do not come first");
    if (st == VEIL_OK) st = veil_params_load(params, c->items[0].data, c->items[0].len, err);
    if (st == VEIL_OK && (veil_params_plain_modulus(*params) != 0) != (meta->scheme == VEIL_ML_BGV))
        st = veil_fail(err, VEIL_ERR_FORMAT, "ML file: the parameter set is not of the scheme the metadata names");
    if (st == VEIL_OK) {
        /* the slots the metadata names must exist: CKKS has N/2, BGV (exact inference) N */
        const uint64_t n = veil_params_degree(*params), have = meta->scheme == VEIL_ML_BGV ? n : n / 2;
        if (meta->slots > have || meta->batch > have || (meta->scheme == VEIL_ML_BGV && meta->slots != n))
            st = veil_fail(err, VEIL_ERR_FORMAT, "ML file: %llu slots and batch %llu for a ring of %llu slots",
                           (unsigned long long)meta->slots, (unsigned long long)meta->batch,
                           (unsigned long long)have);
    }
    if (st != VEIL_OK) {
        veil_params_free(*params);
        *params = NULL;
        veil_set_contents_clear(c);
    }
    return st;
}

/* The save option that reproduces a loaded object's form: VEIL_SAVE_COMPRESS when it was stored compressed. */
unsigned veil_ml_stored_options(const uint8_t *data, size_t len)
{
    veil_object_info info;
    return veil_object_peek(&info, data, len, NULL) == VEIL_OK && (info.flags & VEIL_FLAG_ZSTD) ? VEIL_SAVE_COMPRESS : 0;
}

veil_status veil_eval_keys_load(veil_eval_keys **out, const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(data, err);
    return eval_keys_parse(out, data, len, err);
}

/* Loads a bundle, into a context of its own. */
static veil_status eval_keys_parse(veil_eval_keys **out, const uint8_t *data, size_t len, veil_error *err)
{
    veil_object_info info;
    VEIL_TRY(veil_object_peek(&info, data, len, err));
    if (info.flags & VEIL_FLAG_SECRET)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "this file holds a secret key: the server side is given only the "
                         "evaluation keys (KEYDIR/eval), never the secret key");
    veil_eval_keys *k = calloc(1, sizeof *k);
    if (!k) return veil_fail(err, VEIL_ERR_NO_MEMORY, "eval keys");
    veil_set_contents c;
    veil_status st = open_ml_set(&c, &k->meta, &k->params, data, len, err);
    if (st != VEIL_OK) {
        free(k);
        return st;
    }
    if (k->meta.kind != VEIL_SET_EVAL_KEYS)
        st = veil_fail(err, VEIL_ERR_MISMATCH, "this file is not an evaluation-key bundle");
    if (st == VEIL_OK && k->meta.scheme == VEIL_ML_BGV) {
        st = veil_exact_eval_keys_load(k, &c, err);
        veil_set_contents_clear(&c);
        if (st != VEIL_OK) {
            veil_eval_keys_free(k);
            return st;
        }
        *out = k;
        return VEIL_OK;
    }
    if (st == VEIL_OK && c.count < 3) st = veil_fail(err, VEIL_ERR_FORMAT, "eval keys: the bundle is incomplete");
    if (st == VEIL_OK) st = veil_ml_context_new(k->params, &k->ctx, &k->refs, err);
    if (st == VEIL_OK) {
        uint8_t id[VEIL_ID_BYTES];
        crypto_generichash(id, VEIL_ID_BYTES, c.items[1].data, c.items[1].len, NULL, 0);
        if (sodium_memcmp(id, k->meta.key_id, VEIL_ID_BYTES) != 0)
            st = veil_fail(err, VEIL_ERR_FORMAT, "eval keys: the key id does not match the public key");
    }
    if (st == VEIL_OK) st = veil_public_key_load(&k->pk, k->ctx, c.items[1].data, c.items[1].len, err);
    if (st == VEIL_OK) k->pk_options = veil_ml_stored_options(c.items[1].data, c.items[1].len);
    if (st == VEIL_OK) st = veil_switch_key_load(&k->relin, k->ctx, c.items[2].data, c.items[2].len, err);
    if (st == VEIL_OK && veil_switch_key_galois_element(k->relin) != 0)
        st = veil_fail(err, VEIL_ERR_FORMAT, "eval keys: the third object is not a relinearization key");
    if (st == VEIL_OK) {
        k->galois = calloc(c.count, sizeof *k->galois);
        if (!k->galois) st = veil_fail(err, VEIL_ERR_NO_MEMORY, "eval keys");
    }
    for (size_t i = 3; st == VEIL_OK && i < c.count; i++) {
        st = veil_switch_key_load(&k->galois[k->n_galois], k->ctx, c.items[i].data, c.items[i].len, err);
        if (st == VEIL_OK) k->n_galois++;
    }
    veil_set_contents_clear(&c);
    if (st != VEIL_OK) {
        veil_eval_keys_free(k);
        return st;
    }
    *out = k;
    return VEIL_OK;
}

veil_status veil_keyset_save(veil_buffer *out, const veil_keyset *k, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(k, err);
    if (k->meta.scheme == VEIL_ML_BGV) return veil_exact_keyset_save(out, k, err);
    veil_buffer items[2] = {{0}, {0}};
    veil_status st = veil_params_save(&items[0], k->params, 0, err);
    if (st == VEIL_OK) st = veil_secret_key_save(&items[1], k->sk, 0, err);
    const size_t w = k->meta.in_width, mlen = META_BYTES + (k->box_lo ? range_ext_bytes(w) : 0);
    uint8_t *mb = st == VEIL_OK ? calloc(mlen, 1) : NULL;
    if (st == VEIL_OK && !mb) st = veil_fail(err, VEIL_ERR_NO_MEMORY, "key set");
    if (st == VEIL_OK) {
        veil_ml_meta_encode(mb, &k->meta);
        if (k->box_lo) range_ext_encode(mb + META_BYTES, k->meta.bound, k->box_lo, k->box_hi, w);
        st = veil_set_save(out, k->params, mb, mlen, items, 2, err);
    }
    free(mb);
    veil_buffer_free(&items[0]);
    veil_buffer_free(&items[1]);
    return st;
}

veil_status veil_keyset_load(veil_keyset **out, const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(data, err);
    veil_keyset *k = calloc(1, sizeof *k);
    if (!k) return veil_fail(err, VEIL_ERR_NO_MEMORY, "key set");
    veil_set_contents c;
    veil_status st = open_ml_set(&c, &k->meta, &k->params, data, len, err);
    if (st != VEIL_OK) {
        free(k);
        return st;
    }
    if (k->meta.kind != VEIL_SET_KEYSET)
        st = veil_fail(err, VEIL_ERR_MISMATCH, "this file is not a Veil key set (secret.key)");
    else if (k->meta.scheme == VEIL_ML_BGV) {
        st = veil_exact_keyset_load(k, &c, err);
        veil_set_contents_clear(&c);
        if (st != VEIL_OK) {
            veil_keyset_free(k);
            return st;
        }
        *out = k;
        return VEIL_OK;
    } else if (c.count != 2 || c.items[1].type != VEIL_OBJECT_SECRET_KEY)
        st = veil_fail(err, VEIL_ERR_MISMATCH, "this file is not a Veil key set (secret.key)");
    if (st == VEIL_OK && k->meta.packing != VEIL_PACKING_TRAINING)
        st = range_ext_decode(c.meta + META_BYTES, c.meta_len - META_BYTES, k->meta.in_width, &k->meta.bound,
                              &k->box_lo, &k->box_hi, err);
    else if (st == VEIL_OK && c.meta_len != META_BYTES)
        st = veil_fail(err, VEIL_ERR_FORMAT, "ML metadata: a training key set with %zu bytes of metadata", c.meta_len);
    if (st == VEIL_OK && k->box_lo && c.meta_len != META_BYTES + range_ext_bytes(k->meta.in_width))
        st = veil_fail(err, VEIL_ERR_FORMAT, "ML metadata: %zu bytes, not those of %u inputs' ranges", c.meta_len,
                       k->meta.in_width);
    if (st == VEIL_OK) st = veil_ml_context_new(k->params, &k->ctx, &k->refs, err);
    if (st == VEIL_OK) st = veil_secret_key_load(&k->sk, k->ctx, c.items[1].data, c.items[1].len, err);
    veil_set_contents_clear(&c);
    if (st != VEIL_OK) {
        veil_keyset_free(k);
        return st;
    }
    *out = k;
    return VEIL_OK;
}

veil_status veil_ciphertexts_save(veil_buffer *out, const veil_ciphertexts *cts, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(cts, err);
    if (cts->meta.scheme == VEIL_ML_BGV) return veil_exact_ciphertexts_save(out, cts, err);
    veil_buffer *items = calloc(cts->count + 1, sizeof *items);
    if (!items) return veil_fail(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    const veil_params *params = veil_context_params(cts->ctx);
    veil_status st = veil_params_save(&items[0], params, 0, err);
    for (size_t i = 0; st == VEIL_OK && i < cts->count; i++)
        st = veil_ckks_ciphertext_save(&items[i + 1], cts->cts[i], 0, err); /* uniform residues: zstd gains nothing */
    if (st == VEIL_OK) {
        uint8_t mb[META_BYTES];
        veil_ml_meta_encode(mb, &cts->meta);
        st = veil_set_save(out, params, mb, sizeof mb, items, cts->count + 1, err);
    }
    for (size_t i = 0; i <= cts->count; i++) veil_buffer_free(&items[i]);
    free(items);
    return st;
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
    VEIL_TRY(open_ml_set(&c, &meta, &params, data, len, err));
    veil_params_free(params); /* its hash is the set's, checked against the keys' below */
    veil_status st = VEIL_OK;
    uint8_t h[VEIL_PARAMS_HASH_BYTES];
    veil_params_hash(veil_context_params(ctx), h);
    const int train_set = meta.kind == VEIL_SET_TRAIN_DATA || meta.kind == VEIL_SET_TRAIN_MODEL;
    if (meta.kind != VEIL_SET_INPUTS && meta.kind != VEIL_SET_OUTPUTS && !train_set)
        st = veil_fail(err, VEIL_ERR_MISMATCH, "this file is not a ciphertext set");
    else if (memcmp(h, c.params_hash, sizeof h) != 0)
        st = veil_fail(err, VEIL_ERR_MISMATCH, "these ciphertexts were made under another parameter set than the keys'");
    else if (sodium_memcmp(meta.key_id, km->key_id, VEIL_ID_BYTES) != 0)
        st = veil_fail(err, VEIL_ERR_MISMATCH, "these ciphertexts were encrypted under other keys than the ones given");
    else if (meta.scheme != km->scheme || meta.crt_count != km->crt_count || meta.input_lo != km->input_lo ||
             meta.input_hi != km->input_hi || (meta.scheme == VEIL_ML_BGV && meta.out_scale != km->out_scale))
        st = veil_fail(err, VEIL_ERR_MISMATCH, "these ciphertexts belong to another scheme or plan than the keys");
    else if (memcmp(meta.model_hash, km->model_hash, VEIL_ID_BYTES) != 0 || meta.packing != km->packing ||
             meta.slots != km->slots || meta.batch != km->batch || meta.final_op != km->final_op ||
             meta.degree != km->degree || meta.range != km->range)
        st = veil_fail(err, VEIL_ERR_MISMATCH, "these ciphertexts belong to another model or plan than the keys");
    else if (train_set && (meta.in_width != km->in_width || meta.out_width != km->out_width ||
                           meta.scale_bits != km->scale_bits))
        st = veil_fail(err, VEIL_ERR_FORMAT, "training set: %u features at scale 2^%u, the keys are for %u at 2^%u",
                       meta.in_width, meta.scale_bits, km->in_width, km->scale_bits);
    else if (!train_set && meta.width != (meta.kind == VEIL_SET_INPUTS ? km->in_width : km->out_width))
        st = veil_fail(err, VEIL_ERR_FORMAT, "ciphertext set: %u values per row, the model has %u", meta.width,
                       meta.kind == VEIL_SET_INPUTS ? km->in_width : km->out_width);
    size_t expect = 0;
    if (st == VEIL_OK) {
        size_t per = meta.packing == VEIL_PACKING_THROUGHPUT ? meta.width : 1;
        expect = train_set ? (meta.kind == VEIL_SET_TRAIN_MODEL ? 2 : veil_train_data_count(&meta))
                           : veil_ciphertexts_batches(&meta) * per;
        const size_t groups = meta.scheme == VEIL_ML_BGV ? meta.crt_count : 1;
        if (c.count != groups * (expect + 1))
            st = veil_fail(err, VEIL_ERR_FORMAT, "ciphertext set: %zu ciphertexts for %llu rows, expected %zu",
                           c.count - 1, (unsigned long long)meta.rows, expect);
    }
    veil_ciphertexts *set = NULL;
    if (st == VEIL_OK) st = veil_ciphertexts_alloc(&set, ctx, &meta, 0, err);
    if (st == VEIL_OK && meta.scheme == VEIL_ML_BGV) {
        const veil_context *ctxs[VEIL_CRT_MAX] = {ctx};
        for (size_t m = 1; m < meta.crt_count; m++) ctxs[m] = keys ? keys->crt[m].ctx : eval->crt[m].ctx;
        st = veil_exact_ciphertexts_load(set, &c, ctxs, meta.crt_count, err);
        veil_set_contents_clear(&c);
        if (st != VEIL_OK) {
            veil_ciphertexts_free(set);
            return st;
        }
        *out = set;
        return VEIL_OK;
    }
    if (st == VEIL_OK) {
        free(set->cts);
        set->cts = calloc(expect ? expect : 1, sizeof *set->cts);
        if (!set->cts) st = veil_fail(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    }
    if (st == VEIL_OK) {
        /* the ciphertexts are independent (each regenerates its own seed): loaded on the context's threads */
        set->count = expect; /* every slot is freed on failure, loaded or NULL */
        VEIL_PARALLEL_PARTS(expect, veil_context_ring(ctx)->threads, err,
                            veil_ckks_ciphertext_load(&set->cts[part], ctx, c.items[part + 1].data,
                                                      c.items[part + 1].len, &e_));
    }
    veil_set_contents_clear(&c);
    if (st != VEIL_OK) {
        veil_ciphertexts_free(set);
        return st;
    }
    *out = set;
    return VEIL_OK;
}

/* ---- encryption and decryption ----------------------------------------------------------------------- */

veil_status veil_encrypt_inputs(veil_ciphertexts **out, const veil_keyset *k, const double *in, size_t rows,
                                veil_prng *prng, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(k, err);
    VEIL_REQUIRE(in, err);
    if (rows == 0) return veil_fail(err, VEIL_ERR_ARGUMENT, "encrypt: no rows");
    if (k->meta.packing == VEIL_PACKING_TRAINING)
        return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt: these keys were made for training (encrypt with the labels)");
    if (k->meta.scheme == VEIL_ML_BGV) return veil_exact_encrypt(out, k, in, rows, prng, err);
    for (size_t i = 0; i < rows * k->meta.in_width; i++)
        if (!isfinite(in[i]))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "encrypt: row %zu, column %zu is not a finite number",
                             i / k->meta.in_width + 1, i % k->meta.in_width + 1);
    if (!k->box_lo) return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt: these keys carry no inputs' range");
    /* the range the plan bounded every value of the circuit from: outside it, nothing is guaranteed */
    for (size_t i = 0; i < rows * k->meta.in_width; i++) {
        const size_t f = i % k->meta.in_width;
        if (in[i] < k->box_lo[f] || in[i] > k->box_hi[f])
            return veil_fail(err, VEIL_ERR_ARGUMENT, "encrypt: row %zu, column %zu is %g, outside [%g, %g], the range "
                             "the keys were made for (the results could wrap around to garbage): make keys for these "
                             "inputs (keygen --calibrate DATA.csv or --input-range LO:HI)", i / k->meta.in_width + 1,
                             f + 1, in[i], k->box_lo[f], k->box_hi[f]);
    }
    veil_ml_meta meta = k->meta;
    meta.kind = VEIL_SET_INPUTS;
    meta.rows = rows;
    meta.width = meta.in_width;
    const size_t w = meta.in_width, batches = veil_ciphertexts_batches(&meta);
    const size_t count = meta.packing == VEIL_PACKING_THROUGHPUT ? batches * w : rows;
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    veil_ciphertexts *set = NULL;
    const size_t level = veil_context_max_level(k->ctx);
    const double scale = ldexp(1.0, (int)meta.scale_bits);
    const size_t half = veil_params_degree(k->params) / 2, S = (size_t)meta.slots;
    const size_t vlen = half;
    double *v = calloc(vlen, sizeof *v);
    veil_status st = v ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "encrypt");
    if (st == VEIL_OK) st = veil_ckks_encoder_new(&enc, k->ctx, err);
    if (st == VEIL_OK) st = veil_ckks_plaintext_new(&pt, k->ctx, err);
    if (st == VEIL_OK) st = veil_ciphertexts_alloc(&set, k->ctx, &meta, count, err);
    for (size_t i = 0; st == VEIL_OK && i < count; i++) {
        memset(v, 0, vlen * sizeof *v);
        if (meta.packing == VEIL_PACKING_THROUGHPUT) {
            /* every slot holds a row of the batch (the unused ones repeat them): an unused slot left at 0 would
             * compute the model at 0, which may lie outside the inputs' range and wrap around, and a wrap in one
             * slot spreads to all of them */
            const size_t b = i / w, f = i % w, first = b * meta.batch;
            const size_t n = rows - first < meta.batch ? rows - first : meta.batch;
            for (size_t r = 0; r < half; r++) v[r] = in[(first + r % n) * w + f];
            st = veil_ckks_encode(enc, pt, v, NULL, half, scale, level, err);
        } else {
            /* lane b of the N/2 = S R slots holds the row turned by b S / L values, L = min(R, S) lanes
             * (veil_latency_lanes) */
            const size_t R = half / S, L = R < S ? R : S;
            for (size_t t = 0; t < half; t++) {
                const size_t at = (t / R + (t % R) * (S / L)) % S;
                v[t] = at < w ? in[i * w + at] : 0.0;
            }
            st = veil_ckks_encode(enc, pt, v, NULL, half, scale, level, err);
        }
        if (st == VEIL_OK) st = veil_ckks_encrypt_sk(k->ctx, set->cts[i], pt, k->sk, prng, err);
    }
    if (v) sodium_memzero(v, vlen * sizeof *v); /* the data owner's values, as veil_train_encrypt does */
    free(v);
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    if (st != VEIL_OK) {
        veil_ciphertexts_free(set);
        return st;
    }
    *out = set;
    return VEIL_OK;
}

/* Exact inference: the integers, times the output scale, then the final operation. */
static veil_status exact_decrypt_outputs(double *out, double *raw_out, const veil_keyset *k, const veil_ciphertexts *cts,
                                         veil_error *err)
{
    const size_t w = cts->meta.width, rows = (size_t)cts->meta.rows;
    veil_program final = {.final_op = (veil_final_op)k->meta.final_op, .out_width = w};
    const size_t fw = veil_final_width(&final);
    int64_t *ints = calloc(rows * w + 1, sizeof *ints);
    double *row = calloc(w + 1, sizeof *row);
    veil_status st = ints && row ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "decrypt");
    if (st == VEIL_OK) st = veil_decrypt_integers(ints, k, cts, err);
    for (size_t r = 0; st == VEIL_OK && r < rows; r++) {
        for (size_t i = 0; i < w; i++) row[i] = (double)ints[r * w + i] * k->meta.out_scale;
        if (raw_out) memcpy(raw_out + r * w, row, w * sizeof *row);
        veil_final_apply(&final, row, w);
        if (out) memcpy(out + r * fw, row, fw * sizeof *row);
    }
    free(ints);
    free(row);
    return st;
}

/* How far beyond the outputs' bound a decryption may lie (relative, and absolute): CKKS's approximation. */
#define DECRYPT_SLACK 1e-3

veil_status veil_decrypt_outputs(double *out, double *raw_out, const veil_keyset *k, const veil_ciphertexts *cts,
                                 veil_error *err)
{
    VEIL_REQUIRE(k, err);
    VEIL_REQUIRE(cts, err);
    if (!out && !raw_out) return veil_fail(err, VEIL_ERR_NULL, "decrypt: no output buffer");
    if (k->meta.scheme == VEIL_ML_BGV || cts->meta.scheme == VEIL_ML_BGV) {
        if (cts->meta.kind != VEIL_SET_OUTPUTS)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "decrypt: these are encrypted inputs, not a model's outputs");
        return exact_decrypt_outputs(out, raw_out, k, cts, err);
    }
    if (cts->ctx != k->ctx && sodium_memcmp(cts->meta.key_id, k->meta.key_id, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "decrypt: the ciphertexts were encrypted under other keys");
    if (cts->ctx != k->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "decrypt: load the ciphertexts with this key set");
    const veil_ml_meta *m = &cts->meta;
    if (m->kind != VEIL_SET_OUTPUTS)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "decrypt: these are encrypted inputs, not a model's outputs");
    const size_t w = m->width, rows = (size_t)m->rows;
    veil_program final = {.final_op = (veil_final_op)k->meta.final_op, .out_width = w};
    const size_t fw = m->kind == VEIL_SET_OUTPUTS ? veil_final_width(&final) : w;
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    const size_t half = veil_params_degree(k->params) / 2, R = half / (size_t)m->slots;
    double *row = calloc(w, sizeof *row), *vals = calloc(m->packing == VEIL_PACKING_THROUGHPUT ? m->batch : half,
                                                             sizeof *vals);
    double *all = calloc(rows * w + 1, sizeof *all);
    veil_status st = row && vals && all ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "decrypt");
    if (st == VEIL_OK) st = veil_ckks_encoder_new(&enc, k->ctx, err);
    if (st == VEIL_OK) st = veil_ckks_plaintext_new(&pt, k->ctx, err);
    for (size_t i = 0; st == VEIL_OK && i < cts->count; i++) {
        st = veil_ckks_decrypt(k->ctx, pt, cts->cts[i], k->sk, err);
        if (st != VEIL_OK) break;
        if (m->packing == VEIL_PACKING_THROUGHPUT) {
            const size_t b = i / w, f = i % w, first = b * m->batch;
            const size_t n = rows - first < m->batch ? rows - first : m->batch;
            st = veil_ckks_decode(enc, vals, NULL, n, pt, err);
            for (size_t r = 0; st == VEIL_OK && r < n; r++) all[(first + r) * w + f] = vals[r];
        } else {
            st = veil_ckks_decode(enc, vals, NULL, half, pt, err); /* the results in lane 0: slots 0, R, 2R, .. */
            for (size_t c = 0; st == VEIL_OK && c < w; c++) all[i * w + c] = vals[c * R];
        }
    }
    /* the plan bounded every output over the inputs' range: a larger one is no result (a wrap, or a set
     * not computed by the model from inputs of that range) */
    const double allowed = k->meta.bound * (1 + DECRYPT_SLACK) + DECRYPT_SLACK;
    for (size_t i = 0; st == VEIL_OK && k->box_lo && i < rows * w; i++)
        if (!(fabs(all[i]) <= allowed))
            st = veil_fail(err, VEIL_ERR_NOISE, "decrypt: row %zu, output %zu decrypts to %g, beyond %g, the largest "
                           "|output| the model can give on the inputs' range: this is not the model's result",
                           i / w + 1, i % w + 1, all[i], k->meta.bound);
    for (size_t r = 0; st == VEIL_OK && r < rows; r++) {
        memcpy(row, all + r * w, w * sizeof *row);
        if (raw_out) memcpy(raw_out + r * w, row, w * sizeof *row);
        if (m->kind == VEIL_SET_OUTPUTS) veil_final_apply(&final, row, w);
        if (out) memcpy(out + r * fw, row, fw * sizeof *row);
    }
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    free(row);
    free(vals);
    free(all);
    return st;
}

/* ---- the evaluator ------------------------------------------------------------------------------------ */

typedef struct prepared_stage {
    size_t level;                 /* of the stage's input */
    veil_ckks_plaintext **diag;   /* latency affine: n_diag pre-rotated diagonals (NULL when zero) */
    size_t n_diag, lanes;
    double *bias_slots;           /* latency: the bias, at every copy of each row in lane 0 of the N/2 slots */
} prepared_stage;

struct veil_evaluator {
    const veil_model *model;
    const veil_eval_keys *keys;
    veil_ckks_encoder *enc;
    prepared_stage *stages;
    size_t n_stages, slots; /* copies: freeing needs neither the model nor the keys */
    size_t threads;
};

static const veil_switch_key *galois_for(const veil_eval_keys *k, long step, veil_error *err)
{
    uint64_t e = veil_galois_element_rotation(k->ctx, step);
    for (size_t i = 0; i < k->n_galois; i++)
        if (veil_switch_key_galois_element(k->galois[i]) == e) return k->galois[i];
    veil_fail(err, VEIL_ERR_MISMATCH, "the evaluation keys lack the Galois key of rotation %ld", step);
    return NULL;
}

/* out = x rotated by step slots, with the eval keys' Galois key for it. */
static veil_status rotate_by(const veil_evaluator *ev, veil_ckks_ciphertext *out, const veil_ckks_ciphertext *x,
                             long step, veil_error *err)
{
    const veil_switch_key *gk = galois_for(ev->keys, step, err);
    return gk ? veil_ckks_rotate(ev->keys->ctx, out, x, step, gk, err) : VEIL_ERR_MISMATCH;
}

static size_t stage_depth(const veil_stage *s)
{
    veil_program one = {.stages = (veil_stage *)s, .n_stages = 1};
    return veil_program_depth(&one);
}

void veil_evaluator_free(veil_evaluator *ev)
{
    if (!ev) return;
    for (size_t i = 0; ev->stages && i < ev->n_stages; i++) {
        prepared_stage *ps = &ev->stages[i];
        for (size_t k = 0; ps->diag && k < ps->n_diag; k++) veil_ckks_plaintext_free(ps->diag[k]);
        free(ps->diag);
        free(ps->bias_slots);
    }
    free(ev->stages);
    veil_ckks_encoder_free(ev->enc);
    free(ev);
}

/*
 * Latency: the diagonals of an affine stage, pre-rotated for the giant steps, encoded at scale q_l over all
 * N/2 slots (value s of lane b at slot s R + b). Lane b of diagonal k' holds d_{b K' + k'} when the stage
 * spreads its K diagonals over the lanes (K' = K / lanes), and only lane 0 is used otherwise.
 */
static veil_status prepare_latency(veil_evaluator *ev, const veil_stage *s, size_t stage, prepared_stage *ps,
                                   veil_error *err)
{
    const veil_context *ctx = ev->keys->ctx;
    const size_t S = ev->slots, half = veil_params_degree(veil_context_params(ctx)) / 2, R = half / S;
    const size_t K = veil_latency_diagonals(s->out_width, S);
    const size_t lanes = veil_latency_lanes(&ev->model->program, stage, S, half), Kl = K / lanes;
    const size_t g = veil_bsgs_baby(Kl);
    const double q_l = (double)veil_params_q(veil_context_params(ctx), ps->level);
    double *v = calloc(half, sizeof *v);
    ps->bias_slots = calloc(half, sizeof *ps->bias_slots);
    ps->diag = calloc(Kl, sizeof *ps->diag);
    if (!v || !ps->bias_slots || !ps->diag) {
        free(v);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "evaluator");
    }
    ps->n_diag = Kl;
    ps->lanes = lanes;
    /* the hybrid method leaves at value i of lane 0 a copy of row i mod K: each copy gets its bias, so that
     * every value of lane 0 is an output of the layer or 0 (rows K > out_width), which the bounds cover */
    for (size_t i = 0; i < S; i++)
        if (i % K < s->out_width) ps->bias_slots[i * R] = s->b[i % K];
    veil_status st = VEIL_OK;
    for (size_t k = 0; st == VEIL_OK && k < Kl; k++) {
        const size_t giant = k - k % g;
        int nonzero = 0;
        for (size_t t = 0; t < half; t++) {
            /* rot(D_k, -giant R)[t] = D_k[t - giant R]: value (t / R - giant) mod S of lane t mod R */
            const size_t lane = t % R, at = (t / R + S - giant) % S;
            v[t] = lane < lanes ? veil_latency_diag(s, S, K, lane * Kl + k, at) : 0.0;
            if (v[t] != 0) nonzero = 1;
        }
        if (!nonzero) continue;
        st = veil_ckks_plaintext_new(&ps->diag[k], ctx, err);
        if (st == VEIL_OK) st = veil_ckks_encode(ev->enc, ps->diag[k], v, NULL, half, q_l, ps->level, err);
    }
    free(v);
    return st;
}

veil_status veil_evaluator_new(veil_evaluator **out, const veil_model *model, const veil_eval_keys *keys,
                               size_t threads, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(model, err);
    VEIL_REQUIRE(keys, err);
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
    if (keys->meta.scheme == VEIL_ML_BGV) {
        /* exact inference prepares nothing: the weights are small integers, used as they are */
        veil_evaluator *ev = calloc(1, sizeof *ev);
        if (!ev) return veil_fail(err, VEIL_ERR_NO_MEMORY, "evaluator");
        ev->model = model;
        ev->keys = keys;
        ev->threads = threads ? threads : 1;
        *out = ev;
        return VEIL_OK;
    }
    if (veil_program_depth(p) > veil_context_max_level(keys->ctx))
        return veil_fail(err, VEIL_ERR_MISMATCH, "the keys' parameters have %zu levels, the model needs %zu",
                         veil_context_max_level(keys->ctx), veil_program_depth(p));
    veil_evaluator *ev = calloc(1, sizeof *ev);
    if (!ev) return veil_fail(err, VEIL_ERR_NO_MEMORY, "evaluator");
    ev->model = model;
    ev->keys = keys;
    ev->n_stages = p->n_stages;
    ev->slots = (size_t)keys->meta.slots;
    ev->threads = threads ? threads : 1;
    ev->stages = calloc(p->n_stages + 1, sizeof *ev->stages);
    veil_status st = ev->stages ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "evaluator");
    if (st == VEIL_OK) st = veil_ckks_encoder_new(&ev->enc, keys->ctx, err);
    size_t level = veil_context_max_level(keys->ctx);
    for (size_t i = 0; st == VEIL_OK && i < p->n_stages; i++) {
        ev->stages[i].level = level;
        if (keys->meta.packing == VEIL_PACKING_LATENCY && p->stages[i].kind == VEIL_STAGE_AFFINE) {
            if (p->stages[i].in_width > keys->meta.slots || p->stages[i].out_width > keys->meta.slots)
                st = veil_fail(err, VEIL_ERR_MISMATCH, "a layer is wider than the keys' %llu slots",
                               (unsigned long long)keys->meta.slots);
            else st = prepare_latency(ev, &p->stages[i], i, &ev->stages[i], err);
        }
        level -= stage_depth(&p->stages[i]);
    }
    if (st != VEIL_OK) {
        veil_evaluator_free(ev);
        return st;
    }
    *out = ev;
    return VEIL_OK;
}

/* An elementwise stage on one ciphertext. */
static veil_status elementwise(const veil_evaluator *ev, const veil_stage *s, veil_ckks_ciphertext *out,
                               const veil_ckks_ciphertext *x, veil_error *err)
{
    const veil_context *ctx = ev->keys->ctx;
    const veil_switch_key *rk = ev->keys->relin;
    if (s->kind == VEIL_STAGE_SQUARE) return veil_ckks_mul_relin_rescale(ctx, out, x, x, rk, err);
    if (s->kind == VEIL_STAGE_CHEBYSHEV)
        return veil_ckks_eval_chebyshev(ctx, out, x, s->coeffs, s->degree, s->lo, s->hi, rk, err);
    /* power basis, degree <= 3: c0 + c1 x + c2 x^2 + (c3 x) x^2, two levels */
    const double *c = s->coeffs;
    veil_ckks_ciphertext *x2 = NULL, *t = NULL, *acc = NULL;
    veil_status st = veil_ckks_ciphertext_new(&t, ctx, err);
    if (st == VEIL_OK) st = veil_ckks_ciphertext_new(&acc, ctx, err);
    if (st == VEIL_OK) st = veil_ckks_mul_constant(ctx, acc, x, s->degree >= 1 ? c[1] : 0.0, err);
    if (st == VEIL_OK && s->degree >= 2) {
        st = veil_ckks_ciphertext_new(&x2, ctx, err);
        if (st == VEIL_OK) st = veil_ckks_mul_relin_rescale(ctx, x2, x, x, rk, err);
        if (st == VEIL_OK && c[2] != 0) {
            st = veil_ckks_mul_constant(ctx, t, x2, c[2], err);
            if (st == VEIL_OK) st = veil_ckks_add(ctx, acc, acc, t, err);
        }
        if (st == VEIL_OK && s->degree >= 3 && c[3] != 0) {
            st = veil_ckks_mul_constant(ctx, t, x, c[3], err);
            if (st == VEIL_OK) st = veil_ckks_mul_relin_rescale(ctx, t, t, x2, rk, err);
            if (st == VEIL_OK) st = veil_ckks_add(ctx, acc, acc, t, err);
        }
    }
    if (st == VEIL_OK) st = veil_ckks_add_constant(ctx, out, acc, c[0], err);
    veil_ckks_ciphertext_free(x2);
    veil_ckks_ciphertext_free(t);
    veil_ckks_ciphertext_free(acc);
    return st;
}

/* Latency: one affine stage on one sample. */
#define VEIL_LATENCY_THREADS 16

/* Giant-step groups j0 .. j1 - 1: acc (when *have) += rot(sum_i d_{j g + i} * rot(x, i R), j g R). */
static veil_status giant_groups(const veil_evaluator *ev, const prepared_stage *ps, const veil_ckks_ciphertext *const *xr,
                                size_t g, size_t R, size_t j0, size_t j1, veil_ckks_ciphertext *acc,
                                veil_ckks_ciphertext *inner, int *have, veil_error *err)
{
    const veil_context *ctx = ev->keys->ctx;
    veil_status st = VEIL_OK;
    for (size_t j = j0; st == VEIL_OK && j < j1; j++) {
        int have_inner = 0;
        for (size_t i = 0; st == VEIL_OK && i < g && j * g + i < ps->n_diag; i++) {
            const veil_ckks_plaintext *d = ps->diag[j * g + i];
            if (!d) continue;
            st = have_inner ? veil_ckks_mul_plain_accumulate(ctx, inner, xr[i], d, err)
                            : veil_ckks_mul_plain(ctx, inner, xr[i], d, err);
            have_inner = 1;
        }
        if (st != VEIL_OK || !have_inner) continue;
        if (j > 0) st = rotate_by(ev, inner, inner, (long)(j * g * R), err);
        if (st == VEIL_OK) st = *have ? veil_ckks_add(ctx, acc, acc, inner, err)
                                      : veil_ckks_add_constant(ctx, acc, inner, 0.0, err);
        *have = 1;
    }
    return st;
}


static veil_status latency_affine(const veil_evaluator *ev, const prepared_stage *ps, veil_ckks_ciphertext *out,
                                  const veil_ckks_ciphertext *x, veil_error *err)
{
    const veil_context *ctx = ev->keys->ctx;
    const size_t S = ev->slots, half = veil_params_degree(veil_context_params(ctx)) / 2, R = half / S;
    const size_t Kl = ps->n_diag, K = Kl * ps->lanes, g = veil_bsgs_baby(Kl), groups = (Kl + g - 1) / g;
    veil_status st = VEIL_OK;
    veil_ckks_plaintext *bias = NULL;
    /* baby steps: rotations of x by i R (value s -> s + i in every lane), 0 < i < g, that a diagonal uses */
    veil_ckks_ciphertext *baby[256] = {0}, *inner[VEIL_LATENCY_THREADS] = {0}, *accs[VEIL_LATENCY_THREADS] = {0};
    veil_ckks_ciphertext *acc = NULL, *prod = NULL;
    const veil_ckks_ciphertext *xr[256] = {x};
    long steps[256];
    const veil_switch_key *keys[256];
    veil_ckks_ciphertext *outs[256];
    size_t nb = 0;
    if (g > 256) return veil_fail(err, VEIL_ERR_UNSUPPORTED, "latency packing over more than 65536 slots");
    for (size_t i = 1; i < g && st == VEIL_OK; i++) {
        int used = 0;
        for (size_t k = i; k < Kl && !used; k += g) used = ps->diag[k] != NULL;
        if (!used) continue;
        st = veil_ckks_ciphertext_new(&baby[i], ctx, err);
        if (st == VEIL_OK && !(keys[nb] = galois_for(ev->keys, (long)(i * R), err))) st = VEIL_ERR_MISMATCH;
        steps[nb] = (long)(i * R);
        xr[i] = baby[i];
        outs[nb++] = baby[i];
    }
    /* the baby steps share one ModUp per thread; the threads take the giant-step groups in turn */
    const size_t threads = ev->threads < VEIL_LATENCY_THREADS ? ev->threads : VEIL_LATENCY_THREADS;
    const size_t bt = nb < threads ? (nb ? nb : 1) : threads, gt = groups < threads ? groups : threads;
    if (st == VEIL_OK && nb)
        VEIL_PARALLEL_PARTS(bt, bt, err,
                       veil_ckks_rotate_hoisted(ctx, outs + part * nb / bt, x, steps + part * nb / bt,
                                                (part + 1) * nb / bt - part * nb / bt, keys + part * nb / bt, &e_));
    int have[VEIL_LATENCY_THREADS] = {0};
    for (size_t t = 0; st == VEIL_OK && t < gt; t++) {
        st = veil_ckks_ciphertext_new(&inner[t], ctx, err);
        if (st == VEIL_OK) st = veil_ckks_ciphertext_new(&accs[t], ctx, err);
    }
    if (st == VEIL_OK) st = veil_ckks_ciphertext_new(&prod, ctx, err);
    if (st == VEIL_OK)
        VEIL_PARALLEL_PARTS(gt, gt, err,
                       giant_groups(ev, ps, xr, g, R, part * groups / gt, (part + 1) * groups / gt, accs[part],
                                    inner[part], &have[part], &e_));
    int have_acc = 0;
    for (size_t t = 0; st == VEIL_OK && t < gt; t++) {
        if (!have[t]) continue;
        if (!have_acc) acc = accs[t], accs[t] = NULL;
        else st = veil_ckks_add(ctx, acc, acc, accs[t], err);
        have_acc = 1;
    }
    if (st == VEIL_OK && !acc) st = veil_ckks_ciphertext_new(&acc, ctx, err);
    if (st == VEIL_OK && !have_acc) st = veil_ckks_mul_integer(ctx, acc, x, 0, err); /* an all-zero matrix */
    if (st == VEIL_OK && have_acc) st = veil_ckks_rescale(ctx, acc, acc, err);
    /* the lanes' parts of every row, added into lane 0 (lanes are adjacent slots) */
    for (size_t r = 1; st == VEIL_OK && have_acc && r < ps->lanes; r *= 2) {
        st = rotate_by(ev, prod, acc, (long)r, err);
        if (st == VEIL_OK) st = veil_ckks_add(ctx, acc, acc, prod, err);
    }
    /* the hybrid method: value s holds the part of row s mod K; the parts of a row are K values apart */
    for (size_t r = K; st == VEIL_OK && have_acc && r < S; r *= 2) {
        st = rotate_by(ev, prod, acc, (long)(r * R), err);
        if (st == VEIL_OK) st = veil_ckks_add(ctx, acc, acc, prod, err);
    }
    if (st == VEIL_OK) st = veil_ckks_plaintext_new(&bias, ctx, err);
    if (st == VEIL_OK)
        st = veil_ckks_encode(ev->enc, bias, ps->bias_slots, NULL, half, veil_ckks_ciphertext_scale(acc),
                              veil_ckks_ciphertext_level(acc), err);
    if (st == VEIL_OK) st = veil_ckks_add_plain(ctx, out, acc, bias, err);
    veil_ckks_plaintext_free(bias);
    for (size_t i = 0; i < 256; i++) veil_ckks_ciphertext_free(baby[i]);
    for (size_t t = 0; t < VEIL_LATENCY_THREADS; t++) {
        veil_ckks_ciphertext_free(inner[t]);
        veil_ckks_ciphertext_free(accs[t]);
    }
    veil_ckks_ciphertext_free(acc);
    veil_ckks_ciphertext_free(prod);
    return st;
}

typedef struct progress {
    veil_progress_fn fn;
    void *arg;
    size_t done, total;
} progress;

static void tick(progress *pr, size_t units)
{
    if (!pr->fn) return;
#pragma omp critical(veil_progress)
    {
        pr->done += units;
        pr->fn(pr->arg, pr->done, pr->total);
    }
}

/* One output of an elementwise stage (a square feeding an affine layer left unrelinearized when lazy). */
static veil_status elementwise_output(const veil_evaluator *ev, const veil_stage *s, int lazy, veil_ckks_ciphertext *y,
                                      const veil_ckks_ciphertext *x, progress *pr, veil_error *err)
{
    const veil_context *ctx = ev->keys->ctx;
    veil_status st;
    if (lazy) {
        st = veil_ckks_mul(ctx, y, x, x, err);
        if (st == VEIL_OK) st = veil_ckks_rescale(ctx, y, y, err);
    } else {
        st = elementwise(ev, s, y, x, err);
    }
    tick(pr, 1);
    return st;
}

/* Throughput: one batch (width ciphertexts in, out_width out). cur is consumed. */
static veil_status run_batch(const veil_evaluator *ev, veil_ckks_ciphertext **cur, size_t width,
                             veil_ckks_ciphertext **result, progress *pr, veil_error *err)
{
    const veil_program *p = &ev->model->program;
    const veil_context *ctx = ev->keys->ctx;
    veil_ckks_ciphertext **x = cur;
    veil_ckks_ciphertext **owned = NULL;
    veil_status st = VEIL_OK;
    for (size_t si = 0; st == VEIL_OK && si < p->n_stages; si++) {
        const veil_stage *s = &p->stages[si];
        const size_t ow = s->out_width;
        veil_ckks_ciphertext **y = calloc(ow, sizeof *y);
        if (!y) {
            st = veil_fail(err, VEIL_ERR_NO_MEMORY, "evaluate");
            break;
        }
        for (size_t o = 0; st == VEIL_OK && o < ow; o++) st = veil_ckks_ciphertext_new(&y[o], ctx, err);
        if (st == VEIL_OK && s->kind == VEIL_STAGE_AFFINE) {
            /* the whole layer at once: inputs read once; products left unrelinearized are relinearized here */
            st = veil_ckks_linear_layer(ctx, y, ow, (const veil_ckks_ciphertext *const *)x, s->in_width, s->w, s->b,
                                        ev->keys->relin, err);
            tick(pr, ow);
        } else if (st == VEIL_OK) { /* elementwise */
            /* a square feeding an affine layer stays unrelinearized: the layer relinearizes its fewer outputs */
            const int lazy = s->kind == VEIL_STAGE_SQUARE && si + 1 < p->n_stages &&
                             p->stages[si + 1].kind == VEIL_STAGE_AFFINE;
            VEIL_PARALLEL_PARTS(ow, ev->threads, err, elementwise_output(ev, s, lazy, y[part], x[part], pr, &e_));
        }
        if (owned) {
            for (size_t i = 0; i < width; i++) veil_ckks_ciphertext_free(owned[i]);
            free(owned);
        }
        owned = y;
        x = y;
        width = ow;
    }
    if (st == VEIL_OK) {
        for (size_t o = 0; o < width; o++) {
            if (owned) {
                veil_ckks_ciphertext_free(result[o]);
                result[o] = owned[o];
                owned[o] = NULL;
            } else {
                st = veil_ckks_add_constant(ctx, result[o], x[o], 0.0, err); /* a program without stages */
            }
        }
    }
    if (owned) {
        for (size_t i = 0; i < width; i++) veil_ckks_ciphertext_free(owned[i]);
        free(owned);
    }
    return st;
}

/* Latency: one sample through every stage (one unit of progress). */
static veil_status run_sample(const veil_evaluator *ev, const veil_ckks_ciphertext *in, veil_ckks_ciphertext *out,
                              progress *pr, veil_error *err)
{
    const veil_program *p = &ev->model->program;
    const veil_context *ctx = ev->keys->ctx;
    veil_ckks_ciphertext *a = NULL, *b = NULL;
    veil_status st = veil_ckks_ciphertext_new(&a, ctx, err);
    if (st == VEIL_OK) st = veil_ckks_ciphertext_new(&b, ctx, err);
    const veil_ckks_ciphertext *x = in;
    for (size_t si = 0; st == VEIL_OK && si < p->n_stages; si++) {
        const veil_stage *s = &p->stages[si];
        veil_ckks_ciphertext *y = x == a ? b : a;
        if (s->kind == VEIL_STAGE_AFFINE) st = latency_affine(ev, &ev->stages[si], y, x, err);
        else st = elementwise(ev, s, y, x, err);
        x = y;
    }
    if (st == VEIL_OK) st = veil_ckks_add_constant(ctx, out, x, 0.0, err);
    veil_ckks_ciphertext_free(a);
    veil_ckks_ciphertext_free(b);
    tick(pr, 1);
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
    const veil_program *p = &ev->model->program;
    if (k->meta.scheme == VEIL_ML_BGV) return veil_exact_evaluate(out, p, k, in, ev->threads, fn, arg, err);
    veil_ml_meta meta = in->meta;
    meta.kind = VEIL_SET_OUTPUTS;
    meta.width = (uint32_t)p->out_width;
    const size_t batches = veil_ciphertexts_batches(&in->meta);
    const size_t per_out = meta.packing == VEIL_PACKING_THROUGHPUT ? p->out_width : 1;
    veil_ciphertexts *res = NULL;
    VEIL_TRY(veil_ciphertexts_alloc(&res, k->ctx, &meta, batches * per_out, err));
    progress pr = {fn, arg, 0, 0};
    veil_status st = VEIL_OK;
    if (meta.packing == VEIL_PACKING_THROUGHPUT) {
        for (size_t i = 0; i < p->n_stages; i++) pr.total += p->stages[i].out_width * batches;
        for (size_t b = 0; st == VEIL_OK && b < batches; b++)
            st = run_batch(ev, in->cts + b * p->in_width, p->in_width, res->cts + b * per_out, &pr, err);
    } else {
        pr.total = batches;
        VEIL_PARALLEL_PARTS(batches, ev->threads, err, run_sample(ev, in->cts[part], res->cts[part], &pr, &e_));
    }
    if (st != VEIL_OK) {
        veil_ciphertexts_free(res);
        return st;
    }
    *out = res;
    return VEIL_OK;
}

veil_status veil_evaluate(veil_ciphertexts **out, const veil_model *model, const veil_eval_keys *keys,
                          const veil_ciphertexts *in, veil_progress_fn fn, void *arg, veil_error *err)
{
    veil_evaluator *ev = NULL;
    VEIL_TRY(veil_evaluator_new(&ev, model, keys, 1, err));
    veil_status st = veil_evaluator_run(ev, out, in, fn, arg, err);
    veil_evaluator_free(ev);
    return st;
}

veil_status veil_ml_describe(const uint8_t *data, size_t len, char *text, size_t cap, veil_error *err)
{
    VEIL_REQUIRE(data, err);
    VEIL_REQUIRE(text, err);
    veil_set_contents c;
    veil_ml_meta m;
    VEIL_TRY(veil_set_open(&c, data, len, err));
    veil_status st = veil_ml_meta_decode(&m, c.meta, c.meta_len, err);
    if (st == VEIL_OK) {
        static const char *kinds[] = {"", "key set (holds the SECRET key)", "evaluation keys (public: for the server)",
                                      "encrypted inputs", "encrypted outputs", "plan (parameters and rotations)",
                                      "encrypted training data (records, labels, scaling)",
                                      "encrypted trained model (weights, scaling)"};
        static const char *packings[] = {"throughput", "latency", "training"};
        static const char *finals[] = {"none", "sigmoid", "softmax", "log-softmax", "argmax"};
        char id[17];
        for (int i = 0; i < 8; i++) snprintf(id + 2 * i, 3, "%02x", m.key_id[i]);
        int used = snprintf(text, cap,
                            "ml file:    %s\nkey id:     %s...\npacking:    %s\nslots:      %llu\nbatch:      %llu\n"
                            "widths:     %u inputs, %u outputs (final operation: %s)\nobjects:    %zu\n",
                            kinds[m.kind], id, packings[m.packing],
                            (unsigned long long)m.slots, (unsigned long long)m.batch, m.in_width, m.out_width,
                            m.packing == VEIL_PACKING_TRAINING ? (m.final_op ? "linear regression" : "logistic regression")
                                                                : finals[m.final_op],
                            c.count);
        if (m.kind >= VEIL_SET_INPUTS && used > 0 && (size_t)used < cap)
            used += snprintf(text + used, cap - (size_t)used, "rows:       %llu\n", (unsigned long long)m.rows);
        if (m.scheme == VEIL_ML_BGV && used > 0 && (size_t)used < cap)
            snprintf(text + used, cap - (size_t)used, "scheme:     BGV, exact: %u plaintext modul%s, integer inputs "
                     "in [%lld, %lld], output scale %.9g\n", m.crt_count, m.crt_count == 1 ? "us" : "i",
                     (long long)m.input_lo, (long long)m.input_hi, m.out_scale);
    }
    veil_set_contents_clear(&c);
    return st;
}

/* ---- plans as files (a server gives its plan to clients, which generate matching keys) ---------------- */

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
    for (size_t i = 1; st == VEIL_OK && i < n; i++)
        if (sorted[i] == sorted[i - 1]) st = veil_fail(err, VEIL_ERR_FORMAT, "plan: rotation step %ld twice", sorted[i]);
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
    if (plan->n_steps > MAX_PLAN_STEPS) return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: %zu rotations", plan->n_steps);
    veil_ml_meta m = {.kind = VEIL_SET_PLAN, .packing = plan->packing, .batch = plan->batch, .slots = plan->slots,
                      .in_width = (uint32_t)plan->in_width, .out_width = (uint32_t)plan->out_width,
                      .final_op = (uint32_t)plan->final_op, .scale_bits = plan->scale_bits,
                      .degree = plan->degree, .range = plan->range};
    memcpy(m.model_hash, plan->model_hash, VEIL_ID_BYTES);
    /* the metadata, the inputs' range (inference plans), then the rotation steps */
    const size_t ext = plan->box_lo ? range_ext_bytes(plan->in_width) : 0, mlen = META_BYTES + ext + 8 * plan->n_steps;
    uint8_t *meta = calloc(mlen, 1);
    if (!meta) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    veil_ml_meta_encode(meta, &m);
    if (plan->box_lo) range_ext_encode(meta + META_BYTES, plan->bound, plan->box_lo, plan->box_hi, plan->in_width);
    for (size_t i = 0; i < plan->n_steps; i++) put64(meta + META_BYTES + ext + 8 * i, (uint64_t)(int64_t)plan->steps[i]);
    veil_buffer params = {0};
    veil_status st = veil_params_save(&params, plan->params, 0, err);
    if (st == VEIL_OK) st = veil_set_save(out, plan->params, meta, mlen, &params, 1, err);
    veil_buffer_free(&params);
    free(meta);
    return st;
}

veil_status veil_plan_load(veil_plan **out, const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(data, err);
    veil_plan *p = calloc(1, sizeof *p);
    if (!p) return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    veil_set_contents c;
    veil_ml_meta m;
    veil_status st = open_ml_set(&c, &m, &p->params, data, len, err);
    if (st != VEIL_OK) {
        free(p);
        return st;
    }
    if (m.kind != VEIL_SET_PLAN || c.count != 1) st = veil_fail(err, VEIL_ERR_MISMATCH, "this file is not a Veil plan");
    else if (veil_params_security(p->params) >= VEIL_SECURITY_NONE)
        st = veil_fail(err, VEIL_ERR_INSECURE, "the plan's parameters are not secure: refused");
    size_t ext = 0;
    if (st == VEIL_OK && m.packing != VEIL_PACKING_TRAINING) {
        st = range_ext_decode(c.meta + META_BYTES, c.meta_len - META_BYTES, m.in_width, &p->bound, &p->box_lo,
                              &p->box_hi, err);
        ext = range_ext_bytes(m.in_width);
    }
    if (st == VEIL_OK && (c.meta_len - META_BYTES - ext) % 8 != 0)
        st = veil_fail(err, VEIL_ERR_FORMAT, "plan: the rotation steps do not fill whole 8-byte words");
    if (st == VEIL_OK) {
        p->n_steps = (c.meta_len - META_BYTES - ext) / 8;
        /* a hostile plan must not make a client generate keys without end: the latency packing's steps are
         * at most 4 S + 64 (veil_model_plan), training's MAX_TRAIN_STEPS, and the throughput packing has none */
        const size_t cap = m.packing == VEIL_PACKING_LATENCY    ? 4 * (size_t)m.slots + 64
                           : m.packing == VEIL_PACKING_TRAINING ? MAX_TRAIN_STEPS
                                                                : 0;
        if (p->n_steps > cap || p->n_steps > MAX_PLAN_STEPS)
            st = veil_fail(err, VEIL_ERR_FORMAT, "plan: %zu rotation steps, more than a %s plan has", p->n_steps,
                           m.packing == VEIL_PACKING_LATENCY    ? "latency"
                           : m.packing == VEIL_PACKING_TRAINING ? "training"
                                                                : "throughput");
    }
    if (st == VEIL_OK) {
        p->steps = calloc(p->n_steps + 1, sizeof *p->steps);
        if (!p->steps) st = veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
        const int64_t limit = (int64_t)veil_params_degree(p->params) / 2;
        for (size_t i = 0; st == VEIL_OK && i < p->n_steps; i++) {
            p->steps[i] = (long)(int64_t)get64(c.meta + META_BYTES + ext + 8 * i);
            if (p->steps[i] <= -limit || p->steps[i] >= limit || p->steps[i] == 0)
                st = veil_fail(err, VEIL_ERR_FORMAT, "plan: rotation step %ld out of range", p->steps[i]);
        }
        if (st == VEIL_OK) st = steps_distinct(p->steps, p->n_steps, err);
    }
    if (st == VEIL_OK) {
        memcpy(p->model_hash, m.model_hash, VEIL_ID_BYTES);
        p->packing = m.packing;
        p->batch = (size_t)m.batch;
        p->slots = (size_t)m.slots;
        p->scale_bits = m.scale_bits;
        p->in_width = m.in_width;
        p->out_width = m.out_width;
        p->final_op = (veil_final_op)m.final_op;
        p->task = m.final_op;
        p->degree = m.degree;
        p->range = m.range;
        veil_plan_info_from_params(p);
        veil_plan_info *in = &p->info;
        in->depth = in->q_count - 1;
        in->in_ciphertexts = p->packing == VEIL_PACKING_THROUGHPUT ? p->in_width : 1;
        in->out_ciphertexts = p->packing == VEIL_PACKING_THROUGHPUT ? p->out_width
                              : p->packing == VEIL_PACKING_TRAINING ? 2 : 1;
        veil_plan_sizes(p); /* the time and memory estimates need the model: left at 0 */
        if (p->slots > in->n / 2 || (p->packing == VEIL_PACKING_THROUGHPUT && p->batch > in->n / 2))
            st = veil_fail(err, VEIL_ERR_FORMAT, "plan: more slots than the ring has");
    }
    veil_set_contents_clear(&c);
    if (st != VEIL_OK) {
        veil_plan_free(p);
        return st;
    }
    *out = p;
    return VEIL_OK;
}
