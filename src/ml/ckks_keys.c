/*
 * CKKS keys of the ML layer (inference and training): key generation for a plan, in memory or with the
 * evaluation keys written to a file one at a time, and the files of key sets and evaluation-key bundles.
 *
 * The bundle: [parameters, public key, relinearization key, Galois keys in the plan's order, then those of
 * bootstrapping, then bootstrapping's encapsulation key (object type 15) when the plan bootstraps]. Keys are
 * stored uncompressed: their residues are uniform, zstd gains nothing, and the sizes are exact. The key id
 * names the key set: a hash of the stored public key.
 */
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "ml/ml_plan.h"
#include "veil/serial.h"
#include "veil/circuits.h"
#include "serial/serial_internal.h"

#define META_BYTES VEIL_META_BYTES

/* ---- key generation ------------------------------------------------------------------------------- */

/* The metadata a key set and its bundle share (the key id comes with the public key). */
veil_status veil_ml_keyset_meta(veil_keyset *ks, const veil_plan *plan, veil_error *err)
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
    m->train.degree = plan->train.degree;
    m->train.range = plan->train.range;
    m->train.boot = plan->train.boot;
    m->bound = plan->bound;
    /* the latency packing with bootstraps lays the sample out periodically, as sparse bootstrapping reads it */
    m->layout = plan->packing != VEIL_PACKING_LATENCY ? 0 : plan->boot.count ? VEIL_LAYOUT_PERIODIC : VEIL_LAYOUT_LANES;
    if (plan->ckks.box_lo)
        return veil_ml_box_copy(&ks->ckks.box_lo, &ks->ckks.box_hi, plan->ckks.box_lo, plan->ckks.box_hi, plan->in_width, err);
    return VEIL_OK;
}

/*
 * The first half of key generation: the key set (secret key, metadata) and the public key, stored
 * (uncompressed) in *pk_bytes, whose hash is the key id.
 */
static veil_status keygen_begin(veil_keyset **out, veil_public_key **pk, veil_buffer *pk_bytes, const veil_plan *plan,
                                veil_prng *prng, veil_error *err)
{
    veil_keyset *ks = calloc(1, sizeof *ks);
    if (!ks) return veil_fail(err, VEIL_ERR_NO_MEMORY, "key set");
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_params_copy(&ks->params, plan->params, err));
    VEIL_CHECK(veil_ml_context_new(ks->params, &ks->ctx, &ks->refs, err));
    VEIL_CHECK(veil_secret_key_new(&ks->sk, ks->ctx, prng, err));
    VEIL_CHECK(veil_public_key_new(pk, ks->ctx, ks->sk, prng, err));
    VEIL_CHECK(veil_ml_keyset_meta(ks, plan, err));
    VEIL_CHECK(veil_public_key_save(pk_bytes, *pk, 0, err));
    crypto_generichash(ks->meta.key_id, VEIL_ID_BYTES, pk_bytes->data, pk_bytes->len, NULL, 0);
    *out = ks;
    ks = NULL;
done:
    veil_keyset_free(ks);
    return st;
}

/* Receives each key-switching key as it is made (and owns it from then on). */
typedef veil_status (*key_sink)(void *arg, veil_switch_key *key, veil_error *err);

/* ---- bootstrapping's keys (small functions that any plan with bootstrapping elements can use) ---------- */

/* Galois keys after the relinearization key: the plan's rotations, then bootstrapping's other elements. */
size_t veil_ml_plan_galois_count(const veil_plan *plan)
{
    return plan->n_steps + plan->train.n_boot_elements + plan->n_boot_galois;
}
/* The encapsulation key's Hamming weight when the plan bootstraps (training's or a model's), else 0. */
static uint32_t plan_encaps_weight(const veil_plan *plan)
{
    if (plan->train.boot) return VEIL_ML_BOOT_WEIGHT;
    return plan->boot.count ? plan->boot.config.encapsulation_weight : 0;
}
/* 1 when the bundle ends with an encapsulation key (a plan that bootstraps). */
int veil_ml_plan_has_encaps(const veil_plan *plan) { return plan_encaps_weight(plan) != 0; }
/* Progress units of key generation: the relinearization key, the Galois keys, the encapsulation key. */
static size_t keygen_units(const veil_plan *plan)
{
    return 1 + veil_ml_plan_galois_count(plan) + (size_t)veil_ml_plan_has_encaps(plan);
}

/* Bootstrapping's Galois keys, by element, to the sink (after the plan's rotations). */
veil_status veil_ml_boot_galois_keys(const veil_context *ctx, const veil_secret_key *sk, const uint64_t *elements,
                                     size_t count, veil_prng *prng,
                                     veil_status (*sink)(void *, veil_switch_key *, veil_error *), void *arg,
                                     veil_error *err)
{
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < count; i++) {
        veil_switch_key *key = NULL;
        VEIL_CHECK(veil_galois_key_new(&key, ctx, sk, elements[i], prng, err));
        VEIL_CHECK(sink(arg, key, err));
    }
done:
    return st;
}

/* Receives the encapsulation key (and owns it from then on). */
typedef veil_status (*encaps_sink)(void *arg, veil_ckks_encapsulation_key *key, veil_error *err);

static veil_status keep_encaps(void *arg, veil_ckks_encapsulation_key *key, veil_error *err)
{
    (void)err;
    ((veil_eval_keys *)arg)->encaps = key;
    return VEIL_OK;
}

static veil_status write_encaps(void *arg, veil_ckks_encapsulation_key *key, veil_error *err)
{
    veil_buffer b = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_ckks_encapsulation_key_save(&b, key, 0, err));
    VEIL_CHECK(veil_set_writer_add(arg, b.data, b.len, err));
done:
    veil_ckks_encapsulation_key_free(key);
    veil_buffer_free(&b);
    return st;
}

static veil_status keygen_encaps(const veil_keyset *ks, const veil_plan *plan, veil_prng *prng, encaps_sink sink,
                                 void *arg, veil_error *err)
{
    if (!veil_ml_plan_has_encaps(plan)) return VEIL_OK;
    veil_ckks_encapsulation_key *key = NULL;
    veil_status st = veil_ckks_encapsulation_key_new(&key, ks->ctx, ks->sk, plan_encaps_weight(plan), prng, err);
    return st == VEIL_OK ? sink(arg, key, err) : st;
}

/* Bootstrapping's Galois keys (plans with bootstraps): after the plan's rotation keys, one progress unit each. */
static veil_status keygen_boot_keys(const veil_keyset *ks, const veil_plan *plan, veil_prng *prng, key_sink sink,
                                    void *arg, veil_progress_fn progress, void *progress_arg, veil_error *err)
{
    const size_t units = keygen_units(plan), first = 2 + plan->n_steps + plan->train.n_boot_elements;
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < plan->n_boot_galois; i++) {
        veil_switch_key *key = NULL;
        VEIL_CHECK(veil_galois_key_new(&key, ks->ctx, ks->sk, plan->boot_galois[i], prng, err));
        VEIL_CHECK(sink(arg, key, err));
        if (progress) progress(progress_arg, first + i, units);
    }
done:
    return st;
}

/* The relinearization key, then the plan's Galois keys in its order, one at a time; one progress unit each. */
static veil_status keygen_switch_keys(const veil_keyset *ks, const veil_plan *plan, veil_prng *prng, key_sink sink,
                                      void *arg, veil_progress_fn progress, void *progress_arg, veil_error *err)
{
    const size_t units = keygen_units(plan);
    veil_switch_key *key = NULL;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_relin_key_new(&key, ks->ctx, ks->sk, prng, err));
    VEIL_CHECK(sink(arg, key, err));
    if (progress) progress(progress_arg, 1, units);
    for (size_t i = 0; i < plan->n_steps; i++) {
        key = NULL;
        VEIL_CHECK(veil_galois_key_new(&key, ks->ctx, ks->sk, veil_galois_element_rotation(ks->ctx, plan->steps[i]),
                                       prng, err));
        VEIL_CHECK(sink(arg, key, err));
        if (progress) progress(progress_arg, 2 + i, units);
    }
    VEIL_CHECK(veil_ml_boot_galois_keys(ks->ctx, ks->sk, plan->train.boot_elements, plan->train.n_boot_elements, prng,
                                        sink, arg, err));
    VEIL_CHECK(keygen_boot_keys(ks, plan, prng, sink, arg, progress, progress_arg, err));
done:
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

/* The back end's key generation: the key set and its eval keys, sharing one context. */
veil_status veil_ml_ckks_keygen(veil_keyset **secret_out, veil_eval_keys **eval_out, const veil_plan *plan,
                                veil_prng *prng, veil_progress_fn progress, void *progress_arg, veil_error *err)
{
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    veil_public_key *pk = NULL;
    veil_buffer pk_bytes = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(keygen_begin(&ks, &pk, &pk_bytes, plan, prng, err));
    VEIL_CHECK(eval_keys_of(&ek, ks, veil_ml_plan_galois_count(plan), err));
    ek->pk = pk;
    pk = NULL;
    VEIL_CHECK(keygen_switch_keys(ks, plan, prng, keep_key, ek, progress, progress_arg, err));
    ek->boot = plan->boot;
    if (plan->ckks.box_lo && plan->packing != VEIL_PACKING_TRAINING) /* as the bundle carries it */
        VEIL_CHECK(veil_ml_box_copy(&ek->boot_lo, &ek->boot_hi, plan->ckks.box_lo, plan->ckks.box_hi, plan->in_width,
                                    err));
    VEIL_CHECK(keygen_encaps(ks, plan, prng, keep_encaps, ek, err));
    if (progress) progress(progress_arg, keygen_units(plan), keygen_units(plan));
    *secret_out = ks;
    *eval_out = ek;
    ks = NULL;
    ek = NULL;
done:
    veil_buffer_free(&pk_bytes);
    veil_public_key_free(pk);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    return st;
}

/* To a set writer: each key stored (uncompressed), added, and freed at once. */
static veil_status write_key(void *arg, veil_switch_key *key, veil_error *err)
{
    veil_buffer b = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_switch_key_save(&b, key, 0, err));
    VEIL_CHECK(veil_set_writer_add(arg, b.data, b.len, err));
done:
    veil_switch_key_free(key);
    veil_buffer_free(&b);
    return st;
}

/*
 * The metadata of a bundle: the 128 bytes, and after them for a plan with bootstraps its schedule
 * (veil_ml_boot_ext_encode), else for inference keys the inputs' range and the outputs' bound as a key set's
 * (veil_ml_range_encode: the evaluator takes the outputs' scale from the bound, veil_ml_ckks_keys_output_shift).
 * *mb freed by the caller.
 */
static veil_status bundle_meta(uint8_t **mb, size_t *len, const veil_ml_meta *meta, const veil_ml_boot *boot,
                               const double *lo, const double *hi, veil_error *err)
{
    if (boot->count && (!lo || !hi))
        return veil_fail(err, VEIL_ERR_MISMATCH, "eval keys: a bootstrapping schedule without the inputs' range");
    const int range = !boot->count && lo && hi && meta->packing != VEIL_PACKING_TRAINING;
    *len = META_BYTES + (range ? veil_ml_range_bytes(meta->in_width) : veil_ml_boot_ext_bytes(boot, meta->in_width));
    *mb = calloc(*len, 1);
    if (!*mb) return veil_fail(err, VEIL_ERR_NO_MEMORY, "eval keys");
    veil_ml_meta_encode(*mb, meta);
    if (boot->count) veil_ml_boot_ext_encode(*mb + META_BYTES, boot, meta->in_width, meta->bound, lo, hi);
    else if (range) veil_ml_range_encode(*mb + META_BYTES, meta->bound, lo, hi, meta->in_width);
    return VEIL_OK;
}

/* The encapsulation key's place in a bundle: 1 item when the bootstraps use one. */
static size_t encaps_items(const veil_ml_boot *boot)
{
    return boot->count && boot->config.encapsulation_weight ? 1 : 0;
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
    uint8_t *mb = NULL;
    size_t mlen = 0;
    veil_buffer pb = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(bundle_meta(&mb, &mlen, &m, &plan->boot, plan->ckks.box_lo, plan->ckks.box_hi, err));
    VEIL_CHECK(veil_params_save(&pb, ks->params, 0, err));
    const int encaps = veil_ml_plan_has_encaps(plan);
    const size_t bytes = pb.len + pk_bytes->len +
                         (1 + veil_ml_plan_galois_count(plan)) * veil_switch_key_stored_bytes(ks->params) +
                         (encaps ? veil_ckks_encapsulation_key_stored_bytes(ks->params) : 0);
    VEIL_CHECK(veil_set_writer_begin(w, ks->params, mb, mlen, 3 + veil_ml_plan_galois_count(plan) + (size_t)encaps,
                                     bytes, false, sink, arg, err));
    VEIL_CHECK(veil_set_writer_add(*w, pb.data, pb.len, err));
    VEIL_CHECK(veil_set_writer_add(*w, pk_bytes->data, pk_bytes->len, err));
done:
    free(mb);
    veil_buffer_free(&pb);
    return st;
}

/* The encapsulation key, stored and added to a bundle. */
static veil_status add_encaps(veil_set_writer *w, const veil_ckks_encapsulation_key *key, veil_error *err)
{
    veil_buffer b = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_ckks_encapsulation_key_save(&b, key, 0, err));
    VEIL_CHECK(veil_set_writer_add(w, b.data, b.len, err));
done:
    veil_buffer_free(&b);
    return st;
}

/* Key generation with the bundle written to eval_path one key at a time (veil_keyset_generate_to_file). */
veil_status veil_ml_ckks_keygen_to_file(veil_keyset **secret_out, const veil_plan *plan, const char *eval_path,
                                        veil_prng *prng, veil_progress_fn progress, void *progress_arg,
                                        veil_error *err)
{
    veil_keyset *ks = NULL;
    veil_public_key *pk = NULL;
    veil_buffer pk_bytes = {0};
    veil_atomic_file *f = NULL;
    veil_set_writer *w = NULL;
    veil_status st = VEIL_OK;
    st = keygen_begin(&ks, &pk, &pk_bytes, plan, prng, err);
    veil_public_key_free(pk); /* only its stored form goes on */
    if (st != VEIL_OK) goto done;
    VEIL_CHECK(veil_atomic_file_open(&f, eval_path, false, err));
    VEIL_CHECK(bundle_begin(&w, ks, plan, &pk_bytes, veil_atomic_file_write, f, err));
    veil_buffer_free(&pk_bytes);
    VEIL_CHECK(keygen_switch_keys(ks, plan, prng, write_key, w, progress, progress_arg, err));
    VEIL_CHECK(keygen_encaps(ks, plan, prng, write_encaps, w, err));
    st = veil_set_writer_end(w, NULL, err);
    w = NULL;
    if (st != VEIL_OK) goto done;
    st = veil_atomic_file_commit(f, err);
    f = NULL;
    if (st != VEIL_OK) goto done;
    if (progress) progress(progress_arg, keygen_units(plan), keygen_units(plan));
    *secret_out = ks;
    ks = NULL;
done:
    veil_buffer_free(&pk_bytes);
    veil_set_writer_free(w);
    veil_atomic_file_abort(f);
    veil_keyset_free(ks);
    return st;
}

/* ---- files ------------------------------------------------------------------------------------------ */

/* One key stored (uncompressed) and added to the set. */
static veil_status add_key(veil_set_writer *w, const veil_switch_key *key, veil_error *err)
{
    veil_buffer b = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_switch_key_save(&b, key, 0, err));
    VEIL_CHECK(veil_set_writer_add(w, b.data, b.len, err));
done:
    veil_buffer_free(&b);
    return st;
}

/*
 * The bundle, built in one buffer of its exact size, one key stored at a time (a bundle of gigabytes is not
 * held twice).
 */
static veil_status bundle_eval(veil_buffer *out, veil_ml_meta *meta, const veil_params *params, const veil_public_key *pk,
                               const veil_switch_key *relin, veil_switch_key *const *galois, size_t n_galois,
                               unsigned pk_options, const veil_ml_boot *boot, const double *boot_lo,
                               const double *boot_hi, const veil_ckks_encapsulation_key *encaps, veil_error *err)
{
    veil_buffer pb = {0}, kb = {0}, rb = {0};
    veil_set_writer *w = NULL;
    uint8_t *mb = NULL;
    size_t mlen = 0;
    const veil_ml_boot none = {0};
    if (!boot) boot = &none;
    veil_status st = VEIL_OK;
    if (encaps_items(boot) && !encaps) VEIL_FAIL(err, VEIL_ERR_MISMATCH, "eval keys: the encapsulation key is missing");
    VEIL_CHECK(veil_params_save(&pb, params, 0, err));
    VEIL_CHECK(veil_public_key_save(&kb, pk, pk_options, err));
    /* stored first: a multi-party relinearization key is stored in full form, larger than a seeded one */
    VEIL_CHECK(veil_switch_key_save(&rb, relin, 0, err));
    crypto_generichash(meta->key_id, VEIL_ID_BYTES, kb.data, kb.len, NULL, 0);
    meta->kind = VEIL_SET_EVAL_KEYS;
    VEIL_CHECK(bundle_meta(&mb, &mlen, meta, boot, boot_lo, boot_hi, err));
    const size_t ex = encaps ? 1 : 0;
    const size_t bytes = pb.len + kb.len + rb.len + n_galois * veil_switch_key_stored_bytes(params) +
                         ex * veil_ckks_encapsulation_key_stored_bytes(params);
    VEIL_CHECK(veil_set_writer_begin(&w, params, mb, mlen, 3 + n_galois + ex, bytes, false, NULL, NULL, err));
    VEIL_CHECK(veil_set_writer_add(w, pb.data, pb.len, err));
    VEIL_CHECK(veil_set_writer_add(w, kb.data, kb.len, err));
    VEIL_CHECK(veil_set_writer_add(w, rb.data, rb.len, err));
    veil_buffer_free(&pb);
    veil_buffer_free(&kb);
    veil_buffer_free(&rb);
    for (size_t i = 0; i < n_galois; i++) VEIL_CHECK(add_key(w, galois[i], err));
    if (ex) VEIL_CHECK(add_encaps(w, encaps, err));
    st = veil_set_writer_end(w, out, err);
    w = NULL;
done:
    free(mb);
    veil_buffer_free(&pb);
    veil_buffer_free(&kb);
    veil_buffer_free(&rb);
    veil_set_writer_free(w);
    return st;
}

veil_status veil_ml_ckks_eval_keys_joint(veil_buffer *out, const veil_keyset *joint, const veil_switch_key *relin,
                                         veil_switch_key *const *galois, size_t n_galois, veil_error *err)
{
    veil_ml_meta m = joint->meta;
    return bundle_eval(out, &m, joint->params, joint->pk, relin, galois, n_galois, 0, NULL, joint->ckks.box_lo,
                       joint->ckks.box_hi, NULL, err);
}

veil_status veil_ml_ckks_eval_keys_save(veil_buffer *out, const veil_eval_keys *k, veil_error *err)
{
    veil_ml_meta m = k->meta;
    return bundle_eval(out, &m, k->params, k->pk, k->relin, k->galois, k->n_galois, k->pk_options, &k->boot,
                       k->boot_lo, k->boot_hi, k->encaps, err);
}

/*
 * A bundle's bootstrapping schedule (the metadata extension) and its encapsulation key: one, the last object,
 * exactly when the schedule asks for one.
 */
static veil_status load_boot(veil_eval_keys *k, const veil_set_contents *c, veil_error *err)
{
    veil_status st = VEIL_OK;
    const uint8_t *ext = c->meta + META_BYTES;
    if (c->meta_len > META_BYTES && veil_ml_range_tagged(ext, c->meta_len - META_BYTES)) {
        /* inference keys without bootstraps: the inputs' range and the outputs' bound, as the key set's */
        if (k->meta.packing == VEIL_PACKING_TRAINING || c->meta_len != META_BYTES + veil_ml_range_bytes(k->meta.in_width))
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "eval keys: the inputs' range extension is invalid");
        VEIL_CHECK(veil_ml_range_decode(ext, c->meta_len - META_BYTES, k->meta.in_width, &k->meta.bound, &k->boot_lo,
                                        &k->boot_hi, err));
    } else if (c->meta_len > META_BYTES) {
        if (k->meta.packing == VEIL_PACKING_TRAINING)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "eval keys: a bootstrapping schedule in training keys");
        double bound = 0;
        VEIL_CHECK(veil_ml_boot_ext_decode(&k->boot, c->meta + META_BYTES, c->meta_len - META_BYTES, 1u << 16,
                                           k->meta.in_width, &bound, &k->boot_lo, &k->boot_hi, err));
        k->meta.bound = bound; /* as the key set's (the 128 bytes do not carry it) */
        /* the inputs repeat with the bundle's period; sparse bootstrapping reads them with the schedule's */
        if (k->boot.count && k->boot.config.slots != k->meta.slots)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "eval keys: the bootstrapping schedule's slots (%zu) are not the bundle's "
                      "(%llu)", k->boot.config.slots, (unsigned long long)k->meta.slots);
    }
    /* the latency packing's periodic layout exactly when it bootstraps (sparse bootstrapping reads it) */
    if (k->meta.packing == VEIL_PACKING_LATENCY && (k->meta.layout == VEIL_LAYOUT_PERIODIC) != (k->boot.count != 0))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "eval keys: the latency packing's layout does not match the bootstrapping "
                  "schedule");
    size_t found = 0;
    for (size_t i = 3; i < c->count; i++) found += c->items[i].type == VEIL_OBJECT_ENCAPSULATION_KEY;
    /* keys made to bootstrap (training past the leveled limit, or a model's schedule) carry one, the last object */
    const int training = k->meta.packing == VEIL_PACKING_TRAINING;
    const size_t want = training ? (k->meta.train.boot ? 1 : 0) : encaps_items(&k->boot);
    const uint32_t weight = training ? VEIL_ML_BOOT_WEIGHT : k->boot.config.encapsulation_weight;
    if (training && found != want)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "eval keys: %s", want
                  ? "keys made for bootstrapped training, but the bundle lacks bootstrapping's encapsulation key"
                  : "an encapsulation key in a bundle made without bootstrapping");
    if (found != want || (want && c->items[c->count - 1].type != VEIL_OBJECT_ENCAPSULATION_KEY))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "eval keys: %zu encapsulation keys, the bootstrapping schedule needs %zu", found,
                  want);
    if (want) {
        const veil_set_item *it = &c->items[c->count - 1];
        VEIL_CHECK(veil_ckks_encapsulation_key_load_ex(&k->encaps, k->ctx, it->data, it->len, !c->verified, err));
        if (veil_ckks_encapsulation_key_weight(k->encaps) != weight)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "eval keys: the encapsulation key's weight is not the schedule's");
    }
done:
    return st;
}

/* The bundle's keys, into a context of their own (the metadata and parameters were read). */
veil_status veil_ml_ckks_eval_keys_load(veil_eval_keys *k, const veil_set_contents *c, veil_error *err)
{
    veil_status st = VEIL_OK;
    if (c->count < 3) VEIL_FAIL(err, VEIL_ERR_FORMAT, "eval keys: the bundle is incomplete");
    VEIL_CHECK(veil_ml_context_new(k->params, &k->ctx, &k->refs, err));
    uint8_t id[VEIL_ID_BYTES];
    crypto_generichash(id, VEIL_ID_BYTES, c->items[1].data, c->items[1].len, NULL, 0);
    if (sodium_memcmp(id, k->meta.key_id, VEIL_ID_BYTES) != 0)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "eval keys: the key id does not match the public key");
    VEIL_CHECK(veil_public_key_load_ex(&k->pk, k->ctx, c->items[1].data, c->items[1].len, !c->verified, err));
    k->pk_options = veil_ml_stored_options(c->items[1].data, c->items[1].len);
    VEIL_CHECK(veil_switch_key_load_ex(&k->relin, k->ctx, c->items[2].data, c->items[2].len, !c->verified, err));
    if (veil_switch_key_galois_element(k->relin) != 0)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "eval keys: the third object is not a relinearization key");
    k->galois = calloc(c->count, sizeof *k->galois);
    if (!k->galois) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "eval keys");
    VEIL_CHECK(load_boot(k, c, err));
    for (size_t i = 3; i < c->count; i++) {
        if (c->items[i].type == VEIL_OBJECT_ENCAPSULATION_KEY) continue; /* load_boot's */
        VEIL_CHECK(veil_switch_key_load_ex(&k->galois[k->n_galois], k->ctx, c->items[i].data, c->items[i].len,
                                           !c->verified, err));
        k->n_galois++;
    }
done:
    return st;
}

veil_status veil_ml_ckks_keyset_save(veil_buffer *out, const veil_keyset *k, veil_error *err)
{
    veil_buffer items[2] = {{0}, {0}};
    uint8_t *mb = NULL;
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_params_save(&items[0], k->params, 0, err));
    if (k->pk) VEIL_CHECK(veil_public_key_save(&items[1], k->pk, 0, err)); /* a joint key set */
    else VEIL_CHECK(veil_secret_key_save(&items[1], k->sk, 0, err));
    const size_t w = k->meta.in_width, mlen = META_BYTES + (k->ckks.box_lo ? veil_ml_range_bytes(w) : 0);
    mb = calloc(mlen, 1);
    if (!mb) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "key set");
    veil_ml_meta_encode(mb, &k->meta);
    if (k->ckks.box_lo) veil_ml_range_encode(mb + META_BYTES, k->meta.bound, k->ckks.box_lo, k->ckks.box_hi, w);
    VEIL_CHECK(veil_set_save(out, k->params, mb, mlen, items, 2, err));
done:
    free(mb);
    veil_buffer_free(&items[0]);
    veil_buffer_free(&items[1]);
    return st;
}

/* The secret key and, for inference keys, the inputs' range (the metadata and parameters were read). */
veil_status veil_ml_ckks_keyset_load(veil_keyset *k, const veil_set_contents *c, veil_error *err)
{
    veil_status st = VEIL_OK;
    const bool joint = c->count == 2 && c->items[1].type == VEIL_OBJECT_PUBLIC_KEY;
    if (c->count != 2 || (c->items[1].type != VEIL_OBJECT_SECRET_KEY && !joint))
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "this file is not a Veil key set (secret.key)");
    if (k->meta.packing != VEIL_PACKING_TRAINING)
        VEIL_CHECK(veil_ml_range_decode(c->meta + META_BYTES, c->meta_len - META_BYTES, k->meta.in_width,
                                        &k->meta.bound, &k->ckks.box_lo, &k->ckks.box_hi, err));
    else if (c->meta_len != META_BYTES)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "ML metadata: a training key set with %zu bytes of metadata", c->meta_len);
    if (k->ckks.box_lo && c->meta_len != META_BYTES + veil_ml_range_bytes(k->meta.in_width))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "ML metadata: %zu bytes, not those of %u inputs' ranges", c->meta_len,
                  k->meta.in_width);
    VEIL_CHECK(veil_ml_context_new(k->params, &k->ctx, &k->refs, err));
    if (joint) {
        /* the key id names the joint public key as it names a key holder's */
        uint8_t id[VEIL_ID_BYTES];
        crypto_generichash(id, VEIL_ID_BYTES, c->items[1].data, c->items[1].len, NULL, 0);
        if (sodium_memcmp(id, k->meta.key_id, VEIL_ID_BYTES) != 0)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "joint key set: the key id does not match the public key");
        VEIL_CHECK(veil_public_key_load(&k->pk, k->ctx, c->items[1].data, c->items[1].len, err));
    } else {
        VEIL_CHECK(veil_secret_key_load(&k->sk, k->ctx, c->items[1].data, c->items[1].len, err));
    }
done:
    return st;
}
