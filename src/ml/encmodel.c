/*
 * Encrypted models (veil_model_encrypt, veil_model_load_encrypted; docs/marketplace.md): a model owner encrypts
 * the weights of a lowered CKKS program with the public key of a data owner's evaluation keys; the cloud
 * evaluates it with ciphertext-by-ciphertext products (ckks_infer.c), and only the data owner can decrypt.
 *
 * Each weight and bias is one ciphertext holding the value in every slot (the throughput packing: slot r of an
 * input ciphertext holds sample r, so one product weighs every sample), at the level of its stage's input and
 * at the scale q_l of that level's last prime: the product w x then has scale q_l D, and the rescale by q_l
 * brings it back to D, exactly as the plaintext path's integers round(w q_l) do. So the circuit uses the same
 * levels as the model in the clear, and the plan's bounds (bounds.c) hold unchanged: the product's largest value
 * before the rescale, |w x| q_l D, fits Q_l exactly when |w x| D fits Q_{l-1}, which the plan checked.
 * A CNN's convolution, folded into a dense matrix by the lowering, costs one ciphertext per entry (its zeros
 * encrypted too): a model whose ciphertexts would hold more than ENC_MAX_BYTES in memory is refused before
 * encrypting, naming the size.
 *
 * The latency packing (one sample over S values in each of R lanes, ckks_infer.c): each affine stage's
 * diagonals, as the evaluator of a model in the clear encodes them (pre-rotated by their giant step, the lanes
 * filled), are ciphertexts instead of plaintexts, at the same level and scale q_l, and so is the bias vector;
 * the transform multiplies ciphertexts (veil_ckks_linear_transform_encrypted) and relinearizes once per giant
 * step. The same levels and rotations as the model in the clear again: the plan and the keys are unchanged.
 * A diagonal zero in every lane is left out, as the plan's rotations leave out its steps: which ones is public
 * (the plan's rotation steps tell as much).
 *
 * The file: a Veil set (docs/wire-format.md) of [parameters, then per affine stage its weights row by row and
 * its biases (latency: its diagonals present, then its bias vector)], whose metadata is the 128 bytes of ML metadata (kind VEIL_SET_ENC_MODEL) followed by the public
 * structure: the tag "VEIL-EM1", the program's widths, final operation and shapes, and per stage its kind,
 * widths and (polynomials) degree, range and coefficients; the latency packing adds per affine stage its
 * diagonals' count and a bit mask of those present (64 per word). Every field is checked on loading.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sodium.h>
#include "ml/ml_plan.h"
#include "veil/serial.h"
#include "veil/params.h"
#include "veil/circuits.h"

static const uint8_t structure_tag[8] = {'V', 'E', 'I', 'L', '-', 'E', 'M', '1'};
#define ENC_MAX_STAGES 64
#define ENC_MAX_WIDTH ((size_t)1 << 16)
#define ENC_MAX_DEGREE 255
#define ENC_MAX_CIPHERTEXTS ((size_t)1 << 20)
/* the ciphertexts in the memory of the server that loads them: 16 GiB */
#define ENC_MAX_BYTES ((double)((uint64_t)16 << 30))

/* The level of each stage's input: the top level, less the levels the stages before it use (as the evaluator). */
static size_t stage_level(const veil_program *p, size_t top, size_t stage)
{
    size_t level = top;
    for (size_t i = 0; i < stage; i++) {
        veil_program one = {.stages = &p->stages[i], .n_stages = 1};
        level -= veil_program_depth(&one);
    }
    return level;
}

/* ---- the latency packing's layout (as prepare_latency in ckks_infer.c) ---------------------------------- */

typedef struct latency_shape {
    size_t S, half, R;     /* slots per lane, N/2, lanes */
    size_t K, lanes, Kl, g; /* of one stage: diagonals, lanes they spread over, diagonals per lane, baby step */
} latency_shape;

static latency_shape latency_shape_of(const veil_program *p, size_t stage, size_t slots, size_t half)
{
    latency_shape sh = {.S = slots, .half = half, .R = half / slots};
    sh.K = veil_latency_diagonals(p->stages[stage].out_width, slots);
    sh.lanes = veil_latency_lanes(p, stage, slots, half);
    sh.Kl = sh.K / sh.lanes;
    sh.g = veil_ckks_linear_transform_baby(sh.Kl);
    return sh;
}

/* Diagonal k over the N/2 slots (value t / R of lane t mod R); 1 when it is not zero. */
static int latency_diagonal(const veil_stage *s, const latency_shape *sh, size_t k, double *v)
{
    int nonzero = 0;
    for (size_t t = 0; t < sh->half; t++) {
        const size_t lane = t % sh->R;
        v[t] = lane < sh->lanes ? veil_latency_diag(s, sh->S, sh->K, lane * sh->Kl + k, t / sh->R) : 0.0;
        nonzero |= v[t] != 0;
    }
    return nonzero;
}

/* The bias at every copy of each row in lane 0 (the hybrid method leaves row i mod K at value i). */
static void latency_bias(const veil_stage *s, const latency_shape *sh, double *v)
{
    for (size_t t = 0; t < sh->half; t++) v[t] = 0;
    for (size_t i = 0; i < sh->S; i++)
        if (i % sh->K < s->out_width) v[i * sh->R] = s->b[i % sh->K];
}

static size_t mask_words(size_t Kl) { return (Kl + 63) / 64; }

/* ---- the public structure ------------------------------------------------------------------------------- */

typedef struct writer {
    uint8_t *p;
    size_t len, cap;
} writer;

static void put_u64(writer *w, uint64_t v)
{
    if (w->p && w->len + 8 <= w->cap) veil_ml_put64(w->p + w->len, v);
    w->len += 8;
}

static void put_f64(writer *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    put_u64(w, v);
}

/* Encodes the structure (w->p NULL: only counts the bytes); masks (latency, else NULL): per affine stage its
 * diagonals present, kl[s] of them. */
static void structure_encode(writer *w, const veil_program *p, uint64_t *const *masks, const size_t *kl)
{
    if (w->p && w->cap >= 8) memcpy(w->p, structure_tag, 8);
    w->len = 8;
    put_u64(w, p->n_stages);
    put_u64(w, p->in_width);
    put_u64(w, p->out_width);
    put_u64(w, (uint64_t)p->final_op);
    put_u64(w, (uint64_t)p->final_axis);
    put_u64(w, (uint64_t)p->argmax_keepdims);
    put_u64(w, p->in_rank);
    for (size_t i = 0; i < VEIL_MAX_RANK; i++) put_u64(w, (uint64_t)p->in_dims[i]);
    put_u64(w, p->out_rank);
    for (size_t i = 0; i < VEIL_MAX_RANK; i++) put_u64(w, (uint64_t)p->out_dims[i]);
    for (size_t s = 0; s < p->n_stages; s++) {
        const veil_stage *st = &p->stages[s];
        const int poly = st->kind == VEIL_STAGE_CHEBYSHEV || st->kind == VEIL_STAGE_POWER;
        put_u64(w, (uint64_t)st->kind);
        put_u64(w, st->in_width);
        put_u64(w, st->out_width);
        put_u64(w, poly ? st->degree : 0);
        put_f64(w, poly ? st->lo : 0);
        put_f64(w, poly ? st->hi : 0);
        for (size_t k = 0; poly && k <= st->degree; k++) put_f64(w, st->coeffs[k]);
    }
    for (size_t s = 0; masks && s < p->n_stages; s++) {
        if (p->stages[s].kind != VEIL_STAGE_AFFINE) continue;
        put_u64(w, kl[s]);
        for (size_t i = 0; i < mask_words(kl[s]); i++) put_u64(w, masks[s][i]);
    }
}

typedef struct reader {
    const uint8_t *p;
    size_t len, at;
    int bad;
} reader;

static uint64_t get_u64(reader *r)
{
    if (r->at + 8 > r->len) {
        r->bad = 1;
        return 0;
    }
    const uint64_t v = veil_ml_get64(r->p + r->at);
    r->at += 8;
    return v;
}

static double get_f64(reader *r)
{
    const uint64_t v = get_u64(r);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

#define BAD(...) VEIL_FAIL(err, VEIL_ERR_FORMAT, "encrypted model: " __VA_ARGS__)

/* One stage of the structure, checked. */
static veil_status stage_decode(reader *r, veil_stage *sg, size_t in_width, veil_error *err)
{
    const uint64_t kind = get_u64(r), iw = get_u64(r), ow = get_u64(r), degree = get_u64(r);
    const double lo = get_f64(r), hi = get_f64(r);
    veil_status st = VEIL_OK;
    if (r->bad) BAD("the structure is truncated");
    if (kind < VEIL_STAGE_AFFINE || kind > VEIL_STAGE_POWER) BAD("a stage of unknown kind %llu", (unsigned long long)kind);
    if (iw != in_width || ow == 0 || ow > ENC_MAX_WIDTH || (kind != VEIL_STAGE_AFFINE && ow != iw))
        BAD("a stage's widths (%llu -> %llu) do not chain", (unsigned long long)iw, (unsigned long long)ow);
    sg->kind = (veil_stage_kind)kind;
    sg->in_width = (size_t)iw;
    sg->out_width = (size_t)ow;
    const int poly = kind == VEIL_STAGE_CHEBYSHEV || kind == VEIL_STAGE_POWER;
    if (!poly && (degree || lo != 0 || hi != 0)) BAD("a stage without a polynomial has one");
    if (poly) {
        if (degree > (kind == VEIL_STAGE_POWER ? 3u : ENC_MAX_DEGREE) || !isfinite(lo) || !isfinite(hi) ||
            (kind == VEIL_STAGE_CHEBYSHEV && !(lo < hi)))
            BAD("a polynomial's degree or range is out of bounds");
        sg->degree = (size_t)degree;
        sg->lo = lo;
        sg->hi = hi;
        sg->coeffs = calloc(sg->degree + 1, sizeof *sg->coeffs);
        if (!sg->coeffs) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypted model");
        for (size_t k = 0; k <= sg->degree; k++) {
            sg->coeffs[k] = get_f64(r);
            if (r->bad || !isfinite(sg->coeffs[k])) BAD("a polynomial's coefficient is missing or not finite");
        }
    }
    sg->what = malloc(sizeof "an encrypted layer");
    if (!sg->what) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypted model");
    memcpy(sg->what, "an encrypted layer", sizeof "an encrypted layer");
done:
    return st;
}

/* The program's structure (weights NULL), checked; p is cleared by the caller on failure. *used: the bytes it
 * took (the latency packing's masks follow). */
static veil_status structure_decode(veil_program *p, const uint8_t *in, size_t len, size_t *used, veil_error *err)
{
    reader r = {in, len, 8, 0};
    veil_status st = VEIL_OK;
    if (len < 8 || memcmp(in, structure_tag, 8) != 0) BAD("the metadata holds no model structure");
    const uint64_t n = get_u64(&r), iw = get_u64(&r), ow = get_u64(&r), fop = get_u64(&r);
    const uint64_t axis = get_u64(&r), keep = get_u64(&r), in_rank = get_u64(&r);
    int64_t in_dims[VEIL_MAX_RANK], out_dims[VEIL_MAX_RANK];
    for (size_t i = 0; i < VEIL_MAX_RANK; i++) in_dims[i] = (int64_t)get_u64(&r);
    const uint64_t out_rank = get_u64(&r);
    for (size_t i = 0; i < VEIL_MAX_RANK; i++) out_dims[i] = (int64_t)get_u64(&r);
    if (r.bad) BAD("the structure is truncated");
    if (n == 0 || n > ENC_MAX_STAGES || iw == 0 || iw > ENC_MAX_WIDTH || ow == 0 || ow > ENC_MAX_WIDTH ||
        fop > VEIL_FINAL_ARGMAX || keep > 1 || in_rank > VEIL_MAX_RANK || out_rank > VEIL_MAX_RANK ||
        (int64_t)axis < -(int64_t)VEIL_MAX_RANK || (int64_t)axis >= (int64_t)VEIL_MAX_RANK)
        BAD("the structure's fields are out of range");
    p->stages = calloc((size_t)n, sizeof *p->stages);
    if (!p->stages) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypted model");
    p->n_stages = (size_t)n;
    p->in_width = (size_t)iw;
    p->out_width = (size_t)ow;
    p->final_op = (veil_final_op)fop;
    p->final_axis = (int64_t)axis;
    p->argmax_keepdims = (int)keep;
    p->in_rank = (size_t)in_rank;
    p->out_rank = (size_t)out_rank;
    memcpy(p->in_dims, in_dims, sizeof in_dims);
    memcpy(p->out_dims, out_dims, sizeof out_dims);
    p->out_scale = 1;
    size_t width = p->in_width;
    for (size_t s = 0; s < p->n_stages; s++) {
        VEIL_CHECK(stage_decode(&r, &p->stages[s], width, err));
        width = p->stages[s].out_width;
    }
    if (width != p->out_width) BAD("the last stage's width is not the model's");
    *used = r.at;
done:
    return st;
}

/* ---- encryption ------------------------------------------------------------------------------------------ */

/* Ciphertexts the affine stages hold: (in + 1) x out each. */
static size_t weight_count(const veil_program *p)
{
    size_t n = 0;
    for (size_t s = 0; s < p->n_stages; s++)
        if (p->stages[s].kind == VEIL_STAGE_AFFINE) n += (p->stages[s].in_width + 1) * p->stages[s].out_width;
    return n;
}

/* The throughput packing: the bytes of the affine stages' ciphertexts in memory, one per weight and bias,
 * 2 N (l + 1) 8 bytes each at its stage's level l (the file is smaller: its coefficients are packed to the
 * primes' bits). */
static double throughput_bytes(const veil_program *p, const veil_params *params)
{
    const size_t top = veil_params_q_count(params) - 1;
    double bytes = 0;
    for (size_t s = 0; s < p->n_stages; s++) {
        const veil_stage *st = &p->stages[s];
        if (st->kind != VEIL_STAGE_AFFINE) continue;
        bytes += (double)((st->in_width + 1) * st->out_width) * 2.0 * (double)veil_params_degree(params) *
                 (double)(stage_level(p, top, s) + 1) * 8.0;
    }
    return bytes;
}

/* log2 Q_l = the sum of the primes' logs up to level l. */
static double log2_modulus(const veil_params *params, size_t level)
{
    double bits = 0;
    for (size_t i = 0; i <= level; i++) bits += log2((double)veil_params_q(params, i));
    return bits;
}

/*
 * The scale of a stage's weights: q_l, so that the rescale by q_l brings the products back to the inputs' scale;
 * the last stage's q_l / 2^s when the keys' plan lowers the outputs' scale by s bits (veil_ckks_output_shift,
 * as the plaintext weights round(w q_l / 2^s)).
 */
static double weight_scale(const veil_eval_keys *k, const veil_program *p, size_t stage, size_t level,
                           unsigned out_shift /* veil_ml_ckks_keys_output_shift */)
{
    const unsigned shift = stage + 1 == p->n_stages ? out_shift : 0;
    return ldexp((double)veil_params_q(k->params, level), -(int)shift);
}

/* slots[0 .. half) at the given scale and level l (as a diagonal k of baby step g when g, else as they are),
 * encrypted under the public key and saved. */
typedef struct enc_work {
    const veil_eval_keys *k;
    veil_ckks_encoder *enc;
    veil_ckks_plaintext *pt;
    veil_ckks_ciphertext *ct;
    double *slots;
    size_t half;
    veil_prng *prng;
    unsigned out_shift; /* the last stage's (weight_scale) */
} enc_work;

static veil_status encrypt_slots(veil_buffer *out, enc_work *wk, size_t level, double scale, size_t k, size_t g,
                                 long unit, veil_error *err)
{
    veil_status st = VEIL_OK;
    if (g) VEIL_CHECK(veil_ckks_linear_transform_encode(wk->enc, wk->pt, wk->slots, k, g, unit, scale, level, err));
    else VEIL_CHECK(veil_ckks_encode(wk->enc, wk->pt, wk->slots, NULL, wk->half, scale, level, err));
    VEIL_CHECK(veil_ckks_encrypt_pk(wk->k->ctx, wk->ct, wk->pt, wk->k->pk, wk->prng, err));
    VEIL_CHECK(veil_ckks_ciphertext_save(out, wk->ct, 0, err)); /* uniform residues: zstd gains nothing */
done:
    return st;
}

/* One value in every slot (the throughput packing). */
static veil_status encrypt_value(veil_buffer *out, enc_work *wk, double value, size_t level, double scale,
                                 veil_error *err)
{
    for (size_t i = 0; i < wk->half; i++) wk->slots[i] = value;
    return encrypt_slots(out, wk, level, scale, 0, 0, 0, err);
}

/* The keys fit the model: the same plan (model hash, widths), a public and a relinearization key, the levels. */
static veil_status check_keys_for(const veil_model *m, const veil_eval_keys *k, veil_error *err)
{
    const veil_program *p = &m->program;
    if (m->enc) return veil_fail(err, VEIL_ERR_ARGUMENT, "encrypt-model: the model is already encrypted");
    if (k->meta.scheme != VEIL_ML_CKKS || p->integer)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "encrypt-model: exact (BGV) models cannot be encrypted yet");
    if (k->meta.packing != VEIL_PACKING_THROUGHPUT && k->meta.packing != VEIL_PACKING_LATENCY)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "encrypt-model: training keys: an encrypted model is evaluated "
                         "with inference keys (throughput or latency packing)");
    if (memcmp(m->hash, k->meta.model_hash, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt-model: the evaluation keys were made for another model (or "
                         "other approximation settings): the data owner makes them for this model's plan");
    if (p->in_width != k->meta.in_width || p->out_width != k->meta.out_width)
        return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt-model: the evaluation keys do not match the model's widths");
    if (!k->pk || !k->relin)
        return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt-model: the evaluation keys hold no public or "
                         "relinearization key");
    const size_t top = veil_context_max_level(k->ctx);
    if (veil_program_depth(p) > top)
        return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt-model: the keys' parameters have %zu levels, the model "
                         "needs %zu", top, veil_program_depth(p));
    if (k->meta.packing == VEIL_PACKING_LATENCY)
        for (size_t s = 0; s < p->n_stages; s++)
            if (p->stages[s].in_width > k->meta.slots || p->stages[s].out_width > k->meta.slots)
                return veil_fail(err, VEIL_ERR_MISMATCH, "encrypt-model: a layer is wider than the keys' %llu slots",
                                 (unsigned long long)k->meta.slots);
    /* each weight at scale q_l must fit Q_l with the plan's 3 bits of margin (it always does: |w| < 2^k with
     * Q_l / q_l >= 2^(k+3) is what the plan's room check asks of the products) */
    for (size_t s = 0; s < p->n_stages; s++) {
        const veil_stage *st = &p->stages[s];
        if (st->kind != VEIL_STAGE_AFFINE) continue;
        const size_t l = stage_level(p, top, s);
        double largest = 0;
        for (size_t i = 0; i < st->in_width * st->out_width; i++) largest = fmax(largest, fabs(st->w[i]));
        for (size_t i = 0; i < st->out_width; i++) largest = fmax(largest, fabs(st->b[i]));
        if (!isfinite(largest) ||
            (largest > 0 && log2(largest) + log2((double)veil_params_q(k->params, l)) + 3 > log2_modulus(k->params, l)))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "encrypt-model: layer %zu (%s) has a weight of %g, too large "
                             "for its level's modulus", s + 1, st->what ? st->what : "affine", largest);
    }
    return VEIL_OK;
}

/* The latency packing: per affine stage its diagonals per lane (kl) and those present (masks); *count: the
 * ciphertexts (the diagonals present and one bias vector per stage). */
static veil_status latency_masks(const veil_program *p, const veil_eval_keys *k, double *v, uint64_t **masks,
                                 size_t *kl, size_t *count, veil_error *err)
{
    const size_t half = veil_params_degree(k->params) / 2;
    *count = 0;
    for (size_t s = 0; s < p->n_stages; s++) {
        if (p->stages[s].kind != VEIL_STAGE_AFFINE) continue;
        const latency_shape sh = latency_shape_of(p, s, (size_t)k->meta.slots, half);
        kl[s] = sh.Kl;
        masks[s] = calloc(mask_words(sh.Kl), sizeof *masks[s]);
        if (!masks[s]) return veil_fail(err, VEIL_ERR_NO_MEMORY, "encrypt-model");
        for (size_t d = 0; d < sh.Kl; d++)
            if (latency_diagonal(&p->stages[s], &sh, d, v)) {
                masks[s][d / 64] |= (uint64_t)1 << (d % 64);
                (*count)++;
            }
        (*count)++;
    }
    return *count > ENC_MAX_CIPHERTEXTS
               ? veil_fail(err, VEIL_ERR_UNSUPPORTED, "encrypt-model: %zu diagonals: at most %zu", *count,
                           ENC_MAX_CIPHERTEXTS)
               : VEIL_OK;
}

/* The ciphertexts of every affine stage into items[1 ..]. */
static veil_status encrypt_stages(veil_buffer *items, const veil_program *p, enc_work *wk, uint64_t *const *masks,
                                  veil_error *err)
{
    const veil_eval_keys *k = wk->k;
    const size_t top = veil_context_max_level(k->ctx);
    veil_status st = VEIL_OK;
    size_t at = 1;
    for (size_t s = 0; s < p->n_stages; s++) {
        const veil_stage *sg = &p->stages[s];
        if (sg->kind != VEIL_STAGE_AFFINE) continue;
        const size_t l = stage_level(p, top, s);
        const double scale = weight_scale(wk->k, p, s, l, wk->out_shift);
        if (!masks) { /* throughput: each weight and bias in every slot */
            for (size_t i = 0; i < sg->in_width * sg->out_width; i++)
                VEIL_CHECK(encrypt_value(&items[at++], wk, sg->w[i], l, scale, err));
            for (size_t i = 0; i < sg->out_width; i++)
                VEIL_CHECK(encrypt_value(&items[at++], wk, sg->b[i], l, scale, err));
            continue;
        }
        const latency_shape sh = latency_shape_of(p, s, (size_t)k->meta.slots, wk->half);
        for (size_t d = 0; d < sh.Kl; d++) {
            if (!(masks[s][d / 64] >> (d % 64) & 1)) continue;
            latency_diagonal(sg, &sh, d, wk->slots);
            VEIL_CHECK(encrypt_slots(&items[at++], wk, l, scale, d, sh.g, (long)sh.R, err));
        }
        latency_bias(sg, &sh, wk->slots);
        VEIL_CHECK(encrypt_slots(&items[at++], wk, l, scale, 0, 0, 0, err));
    }
done:
    return st;
}

veil_status veil_model_encrypt(veil_buffer *out, const veil_model *m, const veil_eval_keys *k, veil_prng *prng,
                               veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(m, err);
    VEIL_REQUIRE(k, err);
    const veil_program *p = &m->program;
    veil_status st = check_keys_for(m, k, err);
    if (st != VEIL_OK) return st;
    if (k->boot.count) /* the evaluator bootstraps with the weights in the clear only (ckks_infer.c prepare_boot) */
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "encrypt-model: these keys bootstrap, which encrypted models do "
                         "not support yet");
    const int latency = k->meta.packing == VEIL_PACKING_LATENCY;
    size_t count = weight_count(p);
    if (p->n_stages > ENC_MAX_STAGES || (!latency && count > ENC_MAX_CIPHERTEXTS))
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "encrypt-model: %zu weights (one ciphertext each): at most %zu",
                         count, ENC_MAX_CIPHERTEXTS);
    /* a convolution folded into a dense matrix costs one ciphertext per matrix entry (a CNN in the throughput
     * packing): refused, naming the size, where its ciphertexts would not fit a server's memory */
    if (!latency && throughput_bytes(p, k->params) > ENC_MAX_BYTES)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "encrypt-model: %zu weights and biases of one ciphertext each "
                         "would hold %.0f GiB in memory in the throughput packing (at most %.0f GiB); the latency "
                         "packing encrypts a layer's diagonals instead (veil plan --latency)", count,
                         throughput_bytes(p, k->params) / (1u << 30), ENC_MAX_BYTES / (1u << 30));
    enc_work wk = {.k = k, .half = veil_params_degree(k->params) / 2, .prng = prng};
    st = veil_ml_ckks_keys_output_shift(&wk.out_shift, p, k, err);
    if (st != VEIL_OK) return st;
    veil_buffer *items = NULL;
    uint8_t *meta = NULL;
    uint64_t **masks = latency ? calloc(p->n_stages, sizeof *masks) : NULL;
    size_t *kl = latency ? calloc(p->n_stages, sizeof *kl) : NULL;
    wk.slots = calloc(wk.half, sizeof *wk.slots);
    if (!wk.slots || (latency && (!masks || !kl))) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypt-model");
    if (latency) VEIL_CHECK(latency_masks(p, k, wk.slots, masks, kl, &count, err));
    writer sw = {0};
    structure_encode(&sw, p, masks, kl);
    const size_t meta_len = VEIL_META_BYTES + sw.len;
    items = calloc(count + 1, sizeof *items);
    meta = calloc(1, meta_len);
    if (!items || !meta) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypt-model");
    VEIL_CHECK(veil_ckks_encoder_new(&wk.enc, k->ctx, err));
    VEIL_CHECK(veil_ckks_plaintext_new(&wk.pt, k->ctx, err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&wk.ct, k->ctx, err));
    VEIL_CHECK(veil_params_save(&items[0], k->params, 0, err));
    VEIL_CHECK(encrypt_stages(items, p, &wk, masks, err));
    veil_ml_meta mm = k->meta;
    mm.kind = VEIL_SET_ENC_MODEL;
    mm.rows = 0;
    mm.width = mm.in_width;
    veil_ml_meta_encode(meta, &mm);
    writer w = {meta + VEIL_META_BYTES, 0, sw.len};
    structure_encode(&w, p, masks, kl);
    VEIL_CHECK(veil_set_save(out, k->params, meta, meta_len, items, count + 1, err));
done:
    if (wk.slots) sodium_memzero(wk.slots, wk.half * sizeof *wk.slots); /* the model owner's weights */
    free(wk.slots);
    for (size_t i = 0; items && i <= count; i++) veil_buffer_free(&items[i]);
    free(items);
    free(meta);
    for (size_t s = 0; masks && s < p->n_stages; s++) free(masks[s]);
    free(masks);
    free(kl);
    veil_ckks_ciphertext_free(wk.ct);
    veil_ckks_plaintext_free(wk.pt); /* the encoder's plaintext held a weight: freed (wiped by the ring layer) */
    veil_ckks_encoder_free(wk.enc);
    return st;
}

/* ---- loading ------------------------------------------------------------------------------------------------ */

/* One weight's ciphertext, checked: of size 2, at its stage's level and scale (weight_scale). */
static veil_status load_value(veil_ckks_ciphertext **ct, const veil_eval_keys *k, const veil_set_item *item,
                              size_t level, double scale, veil_error *err)
{
    veil_status st = VEIL_OK;
    if (item->type != VEIL_OBJECT_CKKS_CIPHERTEXT) BAD("an object is not a CKKS ciphertext");
    VEIL_CHECK(veil_ckks_ciphertext_load(ct, k->ctx, item->data, item->len, err));
    if (veil_ckks_ciphertext_level(*ct) != level || veil_ckks_ciphertext_size(*ct) != 2 ||
        !(fabs(veil_ckks_ciphertext_scale(*ct) / scale - 1) < 1e-9))
        BAD("a weight's ciphertext is not at its layer's level (%zu) and scale (2^%.2f)", level, log2(scale));
done:
    return st;
}

/* m->enc, holding the keys' context, its per-stage lists empty. */
static veil_status enc_new(veil_model *m, const veil_eval_keys *k, veil_packing packing, veil_error *err)
{
    const size_t n = m->program.n_stages;
    if (!k->refs) return veil_fail(err, VEIL_ERR_ARGUMENT, "encrypted model: evaluation keys without a shared context");
    m->enc = calloc(1, sizeof *m->enc);
    if (!m->enc) return veil_fail(err, VEIL_ERR_NO_MEMORY, "encrypted model");
    atomic_fetch_add(k->refs, 1); /* the model's ciphertexts hold the keys' context */
    m->enc->ctx = k->ctx;
    m->enc->params = k->params;
    m->enc->refs = k->refs;
    memcpy(m->enc->key_id, k->meta.key_id, VEIL_ID_BYTES);
    m->enc->n_stages = n;
    m->enc->packing = packing;
    m->enc->w = calloc(n, sizeof *m->enc->w);
    m->enc->b = calloc(n, sizeof *m->enc->b);
    if (packing == VEIL_PACKING_LATENCY) m->enc->n_w = calloc(n, sizeof *m->enc->n_w);
    if (!m->enc->w || !m->enc->b || (packing == VEIL_PACKING_LATENCY && !m->enc->n_w))
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "encrypted model");
    return VEIL_OK;
}

/* The latency packing's masks (in[0 .. len): per affine stage its diagonals' count and bit mask, checked against
 * the layout the keys' slots give), then its diagonals and bias vector, each checked. */
static veil_status load_latency(veil_model *m, const veil_eval_keys *k, const veil_set_contents *c, const uint8_t *in,
                                size_t len, unsigned out_shift, veil_error *err)
{
    const veil_program *p = &m->program;
    const size_t top = veil_context_max_level(k->ctx), half = veil_params_degree(k->params) / 2;
    reader r = {in, len, 0, 0};
    veil_status st = VEIL_OK;
    uint64_t **masks = calloc(p->n_stages, sizeof *masks);
    if (!masks) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypted model");
    for (size_t s = 0; s < p->n_stages; s++)
        if (p->stages[s].in_width > k->meta.slots || p->stages[s].out_width > k->meta.slots)
            BAD("a layer is wider than the keys' %llu slots", (unsigned long long)k->meta.slots);
    size_t count = 0;
    for (size_t s = 0; s < p->n_stages; s++) {
        if (p->stages[s].kind != VEIL_STAGE_AFFINE) continue;
        const latency_shape sh = latency_shape_of(p, s, (size_t)k->meta.slots, half);
        if (get_u64(&r) != sh.Kl || r.bad) BAD("layer %zu's diagonals are not the latency packing's %zu", s + 1, sh.Kl);
        masks[s] = calloc(mask_words(sh.Kl), sizeof *masks[s]);
        if (!masks[s]) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypted model");
        for (size_t i = 0; i < mask_words(sh.Kl); i++) {
            masks[s][i] = get_u64(&r);
            count += (size_t)__builtin_popcountll(masks[s][i]);
        }
        if (r.bad) BAD("the diagonals' masks are truncated");
        if (sh.Kl % 64 && masks[s][sh.Kl / 64] >> (sh.Kl % 64)) BAD("a mask names diagonals beyond the layer's");
        count++;
    }
    if (r.at != len) BAD("%zu bytes follow the structure", len - r.at);
    if (c->count != count + 1) BAD("%zu objects for %zu diagonals and biases", c->count, count);
    VEIL_CHECK(enc_new(m, k, VEIL_PACKING_LATENCY, err));
    size_t at = 1;
    for (size_t s = 0; s < p->n_stages; s++) {
        if (p->stages[s].kind != VEIL_STAGE_AFFINE) continue;
        const latency_shape sh = latency_shape_of(p, s, (size_t)k->meta.slots, half);
        const size_t l = stage_level(p, top, s);
        m->enc->n_w[s] = sh.Kl;
        m->enc->w[s] = calloc(sh.Kl, sizeof *m->enc->w[s]);
        m->enc->b[s] = calloc(2, sizeof *m->enc->b[s]); /* one more NULL ends the list */
        if (!m->enc->w[s] || !m->enc->b[s]) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypted model");
        const double scale = weight_scale(k, p, s, l, out_shift);
        for (size_t d = 0; d < sh.Kl; d++)
            if (masks[s][d / 64] >> (d % 64) & 1)
                VEIL_CHECK(load_value(&m->enc->w[s][d], k, &c->items[at++], l, scale, err));
        VEIL_CHECK(load_value(&m->enc->b[s][0], k, &c->items[at++], l, scale, err));
    }
done:
    for (size_t s = 0; masks && s < p->n_stages; s++) free(masks[s]);
    free(masks);
    return st;
}

veil_status veil_model_load_encrypted(veil_model **out, const veil_eval_keys *k, const uint8_t *data, size_t len,
                                      veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(k, err);
    VEIL_REQUIRE(data, err);
    veil_set_contents c;
    veil_ml_meta meta;
    veil_params *params = NULL;
    veil_status st = veil_ml_set_open(&c, &meta, &params, data, len, err);
    if (st != VEIL_OK) return st; /* nothing held */
    veil_model *m = NULL;
    veil_params_free(params); /* the keys' own are used: the hash below ties them */
    if (meta.kind != VEIL_SET_ENC_MODEL)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "this Veil file is not an encrypted model (veil info tells what it is)");
    if (sodium_memcmp(meta.key_id, k->meta.key_id, VEIL_ID_BYTES) != 0)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the model was encrypted under other keys than these evaluation keys");
    uint8_t h[VEIL_PARAMS_HASH_BYTES];
    veil_params_hash(k->params, h);
    if (memcmp(h, c.params_hash, sizeof h) != 0)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the encrypted model's parameters are not the keys'");
    if (meta.scheme != VEIL_ML_CKKS || meta.packing != k->meta.packing || meta.slots != k->meta.slots ||
        (meta.packing != VEIL_PACKING_THROUGHPUT && meta.packing != VEIL_PACKING_LATENCY) ||
        memcmp(meta.model_hash, k->meta.model_hash, VEIL_ID_BYTES) != 0 || meta.in_width != k->meta.in_width ||
        meta.out_width != k->meta.out_width || meta.final_op != k->meta.final_op)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "the encrypted model is not the model these keys were made for");
    m = calloc(1, sizeof *m);
    if (!m) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypted model");
    size_t used = 0;
    VEIL_CHECK(structure_decode(&m->program, c.meta + VEIL_META_BYTES, c.meta_len - VEIL_META_BYTES, &used, err));
    const veil_program *p = &m->program;
    if (p->in_width != meta.in_width || p->out_width != meta.out_width || (uint32_t)p->final_op != meta.final_op)
        BAD("the structure disagrees with the metadata");
    const size_t top = veil_context_max_level(k->ctx);
    if (veil_program_depth(p) > top) BAD("the model needs more levels (%zu) than the keys have", veil_program_depth(p));
    unsigned out_shift = 0;
    VEIL_CHECK(veil_ml_ckks_keys_output_shift(&out_shift, p, k, err));
    if (meta.packing == VEIL_PACKING_LATENCY) {
        VEIL_CHECK(load_latency(m, k, &c, c.meta + VEIL_META_BYTES + used, c.meta_len - VEIL_META_BYTES - used,
                                out_shift, err));
        goto loaded;
    }
    if (c.meta_len - VEIL_META_BYTES != used) BAD("%zu bytes follow the structure", c.meta_len - VEIL_META_BYTES - used);
    if (c.count != weight_count(p) + 1) BAD("%zu objects for %zu weights", c.count, weight_count(p));
    VEIL_CHECK(enc_new(m, k, VEIL_PACKING_THROUGHPUT, err));
    size_t at = 1;
    for (size_t s = 0; s < p->n_stages; s++) {
        const veil_stage *sg = &p->stages[s];
        if (sg->kind != VEIL_STAGE_AFFINE) continue;
        const size_t l = stage_level(p, top, s), nw = sg->in_width * sg->out_width;
        /* one more NULL ends each list (veil_model_enc_free) */
        m->enc->w[s] = calloc(nw + 1, sizeof *m->enc->w[s]);
        m->enc->b[s] = calloc(sg->out_width + 1, sizeof *m->enc->b[s]);
        if (!m->enc->w[s] || !m->enc->b[s]) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypted model");
        const double scale = weight_scale(k, p, s, l, out_shift);
        for (size_t i = 0; i < nw; i++) VEIL_CHECK(load_value(&m->enc->w[s][i], k, &c.items[at++], l, scale, err));
        for (size_t i = 0; i < sg->out_width; i++)
            VEIL_CHECK(load_value(&m->enc->b[s][i], k, &c.items[at++], l, scale, err));
    }
loaded:
    memcpy(m->hash, meta.model_hash, VEIL_ID_BYTES);
    m->report = malloc(sizeof "encrypted model: weights are ciphertexts\n");
    if (!m->report) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encrypted model");
    memcpy(m->report, "encrypted model: weights are ciphertexts\n", sizeof "encrypted model: weights are ciphertexts\n");
    m->options.degree = 0;
    *out = m;
    m = NULL;
done:
    veil_model_free(m);
    veil_set_contents_clear(&c);
    return st;
}

/* ---- serving: the keys of a plan ------------------------------------------------------------------------- */

veil_status veil_plan_matches_eval_keys(const veil_plan *plan, const veil_eval_keys *keys, veil_error *err)
{
    VEIL_REQUIRE(plan, err);
    VEIL_REQUIRE(keys, err);
    const veil_ml_meta *m = &keys->meta;
    if (plan->scheme != VEIL_ML_CKKS || m->scheme != VEIL_ML_CKKS || plan->packing == VEIL_PACKING_TRAINING)
        return veil_fail(err, VEIL_ERR_MISMATCH, "the plan and the keys are not both for CKKS inference");
    if (memcmp(plan->model_hash, m->model_hash, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "the evaluation keys were made for another model's plan");
    if (plan->packing != m->packing || plan->batch != m->batch || plan->slots != m->slots ||
        plan->in_width != m->in_width || plan->out_width != m->out_width || (uint32_t)plan->final_op != m->final_op ||
        plan->scale_bits != m->scale_bits)
        return veil_fail(err, VEIL_ERR_MISMATCH, "the evaluation keys were made from another plan of this model "
                         "(packing, batch or widths)");
    uint8_t a[VEIL_PARAMS_HASH_BYTES], b[VEIL_PARAMS_HASH_BYTES];
    veil_params_hash(plan->params, a);
    veil_params_hash(keys->params, b);
    if (memcmp(a, b, sizeof a) != 0)
        return veil_fail(err, VEIL_ERR_MISMATCH, "the evaluation keys' parameters are not the plan's");
    return VEIL_OK;
}

size_t veil_plan_input_width(const veil_plan *plan) { return plan ? plan->in_width : 0; }
size_t veil_plan_output_width(const veil_plan *plan) { return plan ? plan->out_width : 0; }
