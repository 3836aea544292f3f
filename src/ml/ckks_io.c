/*
 * CKKS inference sets: encryption of rows in the throughput and latency packings, decryption with the
 * outputs' bound checked and the final operation applied, and the ciphertexts of a set file.
 *
 * Throughput packing (CryptoNets, Gilad-Bachrach et al. 2016): slot r of ciphertext f holds feature f of
 * sample r. Latency packing: one sample's features over S values in each of R = N/2S lanes, value s of lane
 * b at slot s R + b (veil_latency_lanes in ml_plan.h).
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sodium.h>
#include "ml/ml_plan.h"
#include "veil/ring.h"
#include "serial/serial_internal.h"

#define META_BYTES VEIL_META_BYTES

/* ---- the set's file --------------------------------------------------------------------------------- */

veil_status veil_ml_ckks_ciphertexts_save(veil_buffer *out, const veil_ciphertexts *cts, veil_error *err)
{
    veil_buffer *items = calloc(cts->count + 1, sizeof *items);
    if (!items) return veil_fail(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    const veil_params *params = veil_context_params(cts->ctx);
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_params_save(&items[0], params, 0, err));
    for (size_t i = 0; i < cts->count; i++) /* uniform residues: zstd gains nothing */
        VEIL_CHECK(veil_ckks_ciphertext_save(&items[i + 1], cts->cts[i], 0, err));
    uint8_t mb[META_BYTES + VEIL_DP_TAIL_BYTES];
    veil_ml_meta_encode(mb, &cts->meta);
    if (cts->has_dp) veil_ml_dp_encode(mb + META_BYTES, &cts->dp); /* a noisy release: its record */
    VEIL_CHECK(veil_set_save(out, params, mb, META_BYTES + (cts->has_dp ? VEIL_DP_TAIL_BYTES : 0), items,
                             cts->count + 1, err));
done:
    for (size_t i = 0; i <= cts->count; i++) veil_buffer_free(&items[i]);
    free(items);
    return st;
}

/* The set's `expect` ciphertexts, independent (each regenerates its own seed): loaded on the context's threads. */
veil_status veil_ml_ckks_ciphertexts_load(veil_ciphertexts *set, const veil_set_contents *c,
                                          const veil_context *const *ctx, size_t expect, veil_error *err)
{
    veil_status st = VEIL_OK;
    free(set->cts);
    set->cts = calloc(expect ? expect : 1, sizeof *set->cts);
    if (!set->cts) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    set->count = expect; /* every slot is freed on failure, loaded or NULL */
    VEIL_PARALLEL_PARTS(expect, veil_ring_threads(veil_context_ring(ctx[0])), err,
                        veil_ckks_ciphertext_load_ex(&set->cts[part], ctx[0], c->items[part + 1].data,
                                                     c->items[part + 1].len, !c->verified, &e_));
done:
    return st;
}

/* ---- encryption and decryption ----------------------------------------------------------------------- */

/* Rows within the keys' inputs' range, into the packing's slots (veil_ciphertexts_encrypt). */
veil_status veil_ml_ckks_encrypt(veil_ciphertexts **out, const veil_keyset *k, const double *in, size_t rows,
                                 veil_prng *prng, veil_error *err)
{
    for (size_t i = 0; i < rows * k->meta.in_width; i++)
        if (!isfinite(in[i]))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "encrypt: row %zu, column %zu is not a finite number",
                             i / k->meta.in_width + 1, i % k->meta.in_width + 1);
    if (!k->ckks.box_lo) return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt: these keys carry no inputs' range");
    /* the range the plan bounded every value of the circuit from: outside it, nothing is guaranteed */
    for (size_t i = 0; i < rows * k->meta.in_width; i++) {
        const size_t f = i % k->meta.in_width;
        if (in[i] < k->ckks.box_lo[f] || in[i] > k->ckks.box_hi[f])
            return veil_fail(err, VEIL_ERR_ARGUMENT, "encrypt: row %zu, column %zu is %g, outside [%g, %g], the range "
                             "the keys were made for (the results could wrap around to garbage): make keys for these "
                             "inputs (keygen --calibrate DATA.csv or --input-range LO:HI)", i / k->meta.in_width + 1,
                             f + 1, in[i], k->ckks.box_lo[f], k->ckks.box_hi[f]);
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
    veil_status st = VEIL_OK;
    double *v = calloc(vlen, sizeof *v);
    if (!v) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypt");
    VEIL_CHECK(veil_ckks_encoder_new(&enc, k->ctx, err));
    VEIL_CHECK(veil_ckks_plaintext_new(&pt, k->ctx, err));
    VEIL_CHECK(veil_ciphertexts_alloc(&set, k->ctx, &meta, count, err));
    for (size_t i = 0; i < count; i++) {
        memset(v, 0, vlen * sizeof *v);
        if (meta.packing == VEIL_PACKING_THROUGHPUT) {
            /* every slot holds a row of the batch (the unused ones repeat them): an unused slot left at 0 would
             * compute the model at 0, which may lie outside the inputs' range and wrap around, and a wrap in one
             * slot spreads to all of them */
            const size_t b = i / w, f = i % w, first = b * meta.batch;
            const size_t n = rows - first < meta.batch ? rows - first : meta.batch;
            /* periodic in the plan's slots, as sparse bootstrapping reads them (ckks_boot.c) */
            for (size_t r = 0; r < half; r++) v[r] = in[(first + r % S % n) * w + f];
        } else {
            /* lane b of the N/2 = S R slots holds the row turned by b S / L values, L = min(R, S) lanes
             * (veil_latency_lanes); the periodic layout (R = 1, veil_latency_span): the row repeated with period S */
            const size_t R = veil_latency_span(half, S, meta.layout == VEIL_LAYOUT_PERIODIC) / S, L = R < S ? R : S;
            for (size_t t = 0; t < half; t++) {
                const size_t at = (t / R + (t % R) * (S / L)) % S;
                v[t] = at < w ? in[i * w + at] : 0.0;
            }
        }
        VEIL_CHECK(veil_ckks_encode(enc, pt, v, NULL, half, scale, level, err));
        if (k->pk) VEIL_CHECK(veil_ckks_encrypt_pk(k->ctx, set->cts[i], pt, k->pk, prng, err)); /* a joint key set */
        else VEIL_CHECK(veil_ckks_encrypt_sk(k->ctx, set->cts[i], pt, k->sk, prng, err));
    }
    *out = set;
    set = NULL;
done:
    if (v) sodium_memzero(v, vlen * sizeof *v); /* the data owner's values, as veil_train_encrypt does */
    free(v);
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    veil_ciphertexts_free(set);
    return st;
}

/* ---- flooded decryption (veil_decrypt_options) ------------------------------------------------------- */

veil_status veil_ml_flood_size(veil_ml_flood *fl, const veil_keyset *k, veil_ckks_ciphertext *const *cts, size_t count,
                               const veil_decrypt_options *opts, veil_error *err)
{
    memset(fl, 0, sizeof *fl);
    if (!opts || !opts->flood) return VEIL_OK;
    const double tol = opts->tolerance ? opts->tolerance : VEIL_DECRYPT_DEFAULT_TOLERANCE;
    if (!(tol > 0) || !isfinite(tol))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "decrypt: a flooding tolerance of %g (above 0, finite)",
                         opts->tolerance);
    if (!(opts->error_bits >= 0) || !(opts->error_bits <= 60))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "decrypt: an error bound of 2^%g is not in [2^0, 2^60]",
                         opts->error_bits);
    double min_scale = INFINITY;
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < count; i++) min_scale = fmin(min_scale, veil_ckks_ciphertext_scale(cts[i]));
    if (!count || !(min_scale >= 1)) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "decrypt: no ciphertext to flood");
    const size_t half = veil_params_degree(k->params) / 2;
    double error_bits = opts->error_bits;
    if (error_bits == 0) {
        /* the values are real: the error's part that conjugation negates is error alone (see ml.h) */
        for (size_t i = 0; i < count; i++) {
            double bits = 0;
            VEIL_CHECK(veil_ckks_estimate_error_real(k->ctx, &bits, cts[i], k->sk, err));
            error_bits = fmax(error_bits, bits);
        }
        error_bits = fmax(1.0, ceil(error_bits * 16) / 16); /* rounded up to 1/16 bit, not a whole bit: a whole
                                                              bit doubled sigma for an error just past 2^k */
        if (error_bits > 60)
            VEIL_FAIL(err, VEIL_ERR_NOISE, "decrypt: the set's error (2^%.0f) is too large to flood: it is no result "
                      "of the keys' computation", error_bits);
    }
    fl->f.error_bits = error_bits;
    fl->f.statistical_security = opts->statistical_security;
    fl->f.queries = opts->queries;
    VEIL_CHECK(veil_ckks_flooding_bits(&fl->f, &fl->log2_sigma, err));
    /* the noise's largest effect on a slot: 6 standard deviations of sigma sqrt(N/2) / scale */
    const double effect = 6.0 * exp2(fl->log2_sigma) * sqrt((double)half) / min_scale;
    if (!(effect <= tol))
        VEIL_FAIL(err, VEIL_ERR_NOISE, "decrypt: flooding (s = %u bits, k = %lu, error 2^%.2f) adds errors up to %.3g "
                  "to the values, beyond the tolerance %g: scale 2^%.1f leaves no room (plain decryption "
                  "only for results the key holder keeps)", fl->f.statistical_security ? fl->f.statistical_security :
                  VEIL_FLOODING_DEFAULT_SECURITY, fl->f.queries ? fl->f.queries :
                  (unsigned long)VEIL_FLOODING_DEFAULT_QUERIES, error_bits, effect, tol, log2(min_scale));
    fl->on = 1;
    fl->prng = opts->prng;
done:
    return st;
}

veil_status veil_ml_decrypt_ct(veil_ckks_plaintext *pt, const veil_keyset *k, const veil_ckks_ciphertext *ct,
                               const veil_ml_flood *fl, veil_error *err)
{
    if (!fl->on) return veil_ckks_decrypt(k->ctx, pt, ct, k->sk, err);
    return veil_ckks_decrypt_flooded(k->ctx, pt, ct, k->sk, &fl->f, fl->prng, err);
}

/* How far beyond the outputs' bound a decryption may lie (relative, and absolute): CKKS's approximation. */
#define DECRYPT_SLACK 1e-3

veil_status veil_ml_key_source_get(void *arg, veil_ckks_plaintext *pt, size_t i, veil_error *err)
{
    const veil_ml_key_source *src = arg;
    return veil_ml_decrypt_ct(pt, src->k, src->set->cts[i], &src->fl, err);
}

/* The outputs, checked against their bound, with the final operation (veil_ciphertexts_decrypt). */
veil_status veil_ml_ckks_decrypt(double *out, double *raw_out, const veil_keyset *k, const veil_ciphertexts *cts,
                                 const veil_decrypt_options *opts, veil_error *err)
{
    veil_ml_key_source src = {.k = k, .set = cts};
    veil_status st = veil_ml_ckks_check_outputs(k, cts, err);
    if (st) return st;
    st = veil_ml_flood_size(&src.fl, k, cts->cts, cts->count, opts, err);
    if (st) return st;
    return veil_ml_ckks_decode(out, raw_out, k, cts, veil_ml_key_source_get, &src, err);
}

veil_status veil_ml_ckks_check_outputs(const veil_keyset *k, const veil_ciphertexts *cts, veil_error *err)
{
    if (cts->ctx != k->ctx && sodium_memcmp(cts->meta.key_id, k->meta.key_id, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "decrypt: the ciphertexts were encrypted under other keys");
    if (cts->ctx != k->ctx)
        return veil_fail(err, VEIL_ERR_MISMATCH, "decrypt: load the ciphertexts with this key set");
    const veil_ml_meta *m = &cts->meta;
    if (m->kind != VEIL_SET_OUTPUTS)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "decrypt: these are encrypted inputs, not a model's outputs");
    return VEIL_OK;
}

veil_status veil_ml_ckks_decode(double *out, double *raw_out, const veil_keyset *k, const veil_ciphertexts *cts,
                                veil_ml_plaintext_fn get, void *arg, veil_error *err)
{
    const veil_ml_meta *m = &cts->meta;
    const size_t w = m->width, rows = (size_t)m->rows;
    veil_program final = {.final_op = (veil_final_op)k->meta.final_op, .out_width = w};
    const size_t fw = m->kind == VEIL_SET_OUTPUTS ? veil_final_width(&final) : w;
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    const size_t half = veil_params_degree(k->params) / 2,
                 R = veil_latency_span(half, (size_t)m->slots, m->layout == VEIL_LAYOUT_PERIODIC) / (size_t)m->slots;
    size_t values = 0; /* crafted rows and width can wrap the count: refused */
    if (__builtin_mul_overflow(rows, w, &values) || values >= SIZE_MAX / sizeof(double))
        return veil_fail(err, VEIL_ERR_FORMAT, "decrypt: %zu rows of %zu values are more than a set holds", rows, w);
    double *row = calloc(w, sizeof *row), *vals = calloc(m->packing == VEIL_PACKING_THROUGHPUT ? m->batch : half,
                                                             sizeof *vals);
    double *all = calloc(values + 1, sizeof *all);
    veil_status st = VEIL_OK;
    if (!row || !vals || !all) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "decrypt");
    VEIL_CHECK(veil_ckks_encoder_new(&enc, k->ctx, err));
    VEIL_CHECK(veil_ckks_plaintext_new(&pt, k->ctx, err));
    for (size_t i = 0; i < cts->count; i++) {
        VEIL_CHECK(get(arg, pt, i, err));
        if (m->packing == VEIL_PACKING_THROUGHPUT) {
            const size_t b = i / w, f = i % w, first = b * m->batch;
            const size_t n = rows - first < m->batch ? rows - first : m->batch;
            VEIL_CHECK(veil_ckks_decode(enc, vals, NULL, n, pt, err));
            for (size_t r = 0; r < n; r++) all[(first + r) * w + f] = vals[r];
        } else {
            VEIL_CHECK(veil_ckks_decode(enc, vals, NULL, half, pt, err)); /* the results in lane 0: slots 0, R, 2R, .. */
            for (size_t c = 0; c < w; c++) all[i * w + c] = vals[c * R];
        }
    }
    /* the plan bounded every output over the inputs' range: a larger one is no result (a wrap, or a set
     * not computed by the model from inputs of that range) */
    const double allowed = k->meta.bound * (1 + DECRYPT_SLACK) + DECRYPT_SLACK +
                           (cts->has_dp ? 40 * cts->dp.sigma : 0); /* a noisy release: its noise's tail */
    for (size_t i = 0; k->ckks.box_lo && i < values; i++)
        if (!(fabs(all[i]) <= allowed))
            VEIL_FAIL(err, VEIL_ERR_NOISE, "decrypt: row %zu, output %zu decrypts to %g, beyond %g, the largest "
                      "|output| the model can give on the inputs' range: this is not the model's result",
                      i / w + 1, i % w + 1, all[i], k->meta.bound);
    for (size_t r = 0; r < rows; r++) {
        memcpy(row, all + r * w, w * sizeof *row);
        if (raw_out) memcpy(raw_out + r * w, row, w * sizeof *row);
        if (m->kind == VEIL_SET_OUTPUTS) veil_final_apply(&final, row, w);
        if (out) memcpy(out + r * fw, row, fw * sizeof *row);
    }
done:
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    free(row);
    free(vals);
    free(all);
    return st;
}

