/*
 * The metadata of ML files (key sets, evaluation keys, ciphertext sets, plans): its encoding, its decoding
 * with every field checked, the inputs' range extension, opening a set, and `veil info`'s description.
 */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <math.h>
#include "ml/ml_plan.h"
#include "veil/train.h"
#include "serial/serial_internal.h"

static size_t next_pow2(size_t x)
{
    size_t p = 1;
    while (p < x) p *= 2;
    return p;
}

size_t veil_train_block(size_t features) { return next_pow2(features + 2); }

size_t veil_train_data_count(const veil_ml_meta *m)
{
    return 2 * (size_t)((m->rows + m->batch - 1) / m->batch) + 2;
}

veil_status veil_ml_box_copy(double **lo, double **hi, const double *from_lo, const double *from_hi, size_t w,
                             veil_error *err)
{
    *lo = malloc(w * sizeof **lo);
    *hi = malloc(w * sizeof **hi);
    if (!*lo || !*hi) return veil_fail(err, VEIL_ERR_NO_MEMORY, "input range");
    memcpy(*lo, from_lo, w * sizeof **lo);
    memcpy(*hi, from_hi, w * sizeof **hi);
    return VEIL_OK;
}

/* The range extension of CKKS inference key sets and plans (ml_plan.h). */
static const uint8_t range_tag[8] = {'V', 'E', 'I', 'L', '-', 'R', 'N', '1'};
size_t veil_ml_range_bytes(size_t w) { return 16 + 16 * w; }
int veil_ml_range_tagged(const uint8_t *in, size_t len)
{
    return len >= sizeof range_tag && memcmp(in, range_tag, sizeof range_tag) == 0;
}

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

void veil_ml_range_encode(uint8_t *out, double bound, const double *lo, const double *hi, size_t w)
{
    memcpy(out, range_tag, sizeof range_tag);
    put_f64(out + 8, bound);
    for (size_t i = 0; i < w; i++) {
        put_f64(out + 16 + 16 * i, lo[i]);
        put_f64(out + 24 + 16 * i, hi[i]);
    }
}

veil_status veil_ml_range_decode(const uint8_t *in, size_t len, size_t w, double *bound, double **lo, double **hi,
                                 veil_error *err)
{
    *lo = *hi = NULL;
    if (len < veil_ml_range_bytes(w) || memcmp(in, range_tag, sizeof range_tag) != 0)
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

/* ---- bundles (sets with ML metadata) ---------------------------------------------------------------- */

#define META_BYTES VEIL_META_BYTES
static const uint8_t meta_magic[8] = {'V', 'E', 'I', 'L', '-', 'M', 'L', '1'};

#define put64 veil_ml_put64
#define get64 veil_ml_get64

size_t veil_ml_meta_encode(uint8_t *out, const veil_ml_meta *m)
{
    const int exact = m->scheme == VEIL_ML_BGV;
    memset(out, 0, exact ? VEIL_META_EXACT_BYTES : META_BYTES);
    memcpy(out, meta_magic, 8);
    put64(out + 8, (uint64_t)m->kind);
    /* the latency layout: 1, the lanes of veil_latency_lanes (files of the earlier layout are refused); 2, the
     * periodic layout of plans with bootstraps (ml_plan.h) */
    const uint64_t layout = m->packing != VEIL_PACKING_LATENCY ? 0 : m->layout == VEIL_LAYOUT_PERIODIC ? VEIL_LAYOUT_PERIODIC
                                                                                                      : VEIL_LAYOUT_LANES;
    /* training keys with bootstrapping: the level it returns to, in bits 24..31 (0 for leveled keys and files) */
    const uint64_t boot = m->packing == VEIL_PACKING_TRAINING ? (uint64_t)(m->train.boot & 0xff) : 0;
    put64(out + 16, (uint64_t)m->packing | (uint64_t)(m->scheme & 0xff) << 8 | layout << 16 | boot << 24);
    memcpy(out + 24, m->key_id, VEIL_ID_BYTES);
    memcpy(out + 56, m->model_hash, VEIL_ID_BYTES);
    put64(out + 88, m->batch);
    put64(out + 96, m->slots);
    put64(out + 104, m->rows);
    put64(out + 112, (uint64_t)m->in_width | (uint64_t)m->out_width << 32);
    put64(out + 120, (uint64_t)m->width | (uint64_t)(m->final_op & 0xff) << 32 | (uint64_t)(m->scale_bits & 0xff) << 40 |
                         (uint64_t)(m->train.degree & 0xff) << 48 | (uint64_t)(m->train.range & 0xff) << 56);
    if (!exact) return META_BYTES;
    /* exact inference: 40 more bytes (the moduli count, the inputs' range, the output scale, reserved) */
    uint64_t scale_bits, bound_bits;
    memcpy(&scale_bits, &m->bgv.out_scale, sizeof scale_bits);
    memcpy(&bound_bits, &m->bound, sizeof bound_bits);
    put64(out + 128, m->bgv.crt_count);
    put64(out + 136, (uint64_t)m->bgv.input_lo);
    put64(out + 144, (uint64_t)m->bgv.input_hi);
    put64(out + 152, scale_bits);
    put64(out + 160, bound_bits);
    return VEIL_META_EXACT_BYTES;
}

/* The fields of exact-inference metadata. */
static int exact_meta_valid(const veil_ml_meta *m, size_t len)
{
    if (m->scheme == VEIL_ML_CKKS)
        return len == META_BYTES || m->kind == VEIL_SET_PLAN || m->kind == VEIL_SET_KEYSET || m->kind == VEIL_SET_ENC_MODEL ||
               m->kind == VEIL_SET_EVAL_KEYS; /* eval keys: a bootstrapping schedule (ckks_boot.c), decoded there */
    if (m->scheme != VEIL_ML_BGV || len != VEIL_META_EXACT_BYTES || m->packing != VEIL_PACKING_THROUGHPUT ||
        m->kind == VEIL_SET_PLAN || m->scale_bits != 0)
        return 0;
    const int64_t limit = (int64_t)1 << 40;
    return m->bgv.crt_count >= 1 && m->bgv.crt_count <= VEIL_CRT_MAX && m->bgv.input_lo <= m->bgv.input_hi &&
           m->bgv.input_lo > -limit &&
           m->bgv.input_hi < limit && isfinite(m->bgv.out_scale) && m->bgv.out_scale != 0 && m->bound >= 0 &&
           m->bound < 0x1p62;
}

/* The fields of training metadata: the task, the sigmoid, the block and records per ciphertext. */
static int train_meta_valid(const veil_ml_meta *m)
{
    if (m->packing != VEIL_PACKING_TRAINING) return 1; /* training kinds were refused with other packings */
    if (m->kind == VEIL_SET_INPUTS || m->kind == VEIL_SET_OUTPUTS || m->final_op > VEIL_TRAIN_LINEAR || m->in_width >= 1024 || m->out_width != m->in_width + 1)
        return 0;
    if (m->final_op == VEIL_TRAIN_LOGISTIC && (m->train.degree < 3 || m->train.degree > 7 || m->train.degree % 2 == 0 ||
                                               m->train.range < 1 || m->train.range > 64))
        return 0;
    if (m->final_op == VEIL_TRAIN_LINEAR && (m->train.degree != 0 || m->train.range != 0)) return 0;
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
    const uint64_t scheme = packing >> 8 & 0xff, layout = packing >> 16 & 0xff, boot = packing >> 24 & 0xff,
                   rest = packing >> 32;
    packing &= 0xff;
    const int layout_ok = (packing & 0xff) == VEIL_PACKING_LATENCY
                              ? layout == VEIL_LAYOUT_LANES || layout == VEIL_LAYOUT_PERIODIC : layout == 0;
    if (rest || (boot && packing != VEIL_PACKING_TRAINING) || scheme > VEIL_ML_BGV || !layout_ok)
        return veil_fail(err, VEIL_ERR_FORMAT, "ML metadata: unknown scheme or layout (a latency file of an earlier "
                         "Veil, whose slots were laid out otherwise, is refused: make new keys)");
    m->scheme = (uint32_t)scheme;
    if (m->scheme == VEIL_ML_BGV && len == VEIL_META_EXACT_BYTES) {
        uint64_t scale_bits = get64(in + 152), bound_bits = get64(in + 160), count = get64(in + 128);
        m->bgv.crt_count = count <= VEIL_CRT_MAX ? (uint32_t)count : 0; /* 0: refused below */
        m->bgv.input_lo = (int64_t)get64(in + 136);
        m->bgv.input_hi = (int64_t)get64(in + 144);
        memcpy(&m->bgv.out_scale, &scale_bits, sizeof scale_bits);
        memcpy(&m->bound, &bound_bits, sizeof bound_bits);
    }
    if (kind < VEIL_SET_KEYSET || kind > VEIL_SET_ENC_MODEL || packing > VEIL_PACKING_TRAINING ||
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
    m->train.degree = (uint32_t)(x >> 48) & 0xff;
    m->train.range = (uint32_t)(x >> 56) & 0xff;
    m->train.boot = (uint32_t)boot;
    m->layout = (uint32_t)layout;
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

/* Opens a set, decodes its ML metadata, and loads its parameters (the first object). */
veil_status veil_ml_set_open(veil_set_contents *c, veil_ml_meta *meta, veil_params **params, const uint8_t *data,
                             size_t len, veil_error *err)
{
    return veil_ml_set_open_ex(c, meta, params, data, len, true, err);
}

veil_status veil_ml_set_open_ex(veil_set_contents *c, veil_ml_meta *meta, veil_params **params, const uint8_t *data,
                                size_t len, bool verify, veil_error *err)
{
    *params = NULL;
    veil_status st = veil_set_open_ex(c, data, len, verify, err);
    if (st != VEIL_OK) return st; /* nothing held */
    {
        /* a noisy release's record (dp_noise.c) follows the metadata of a set of outputs */
        veil_dp_release dp;
        const int tail = veil_ml_dp_tail(c->meta, c->meta_len, &dp, err);
        if (tail < 0) {
            st = VEIL_ERR_FORMAT; /* err holds the reason */
            goto done;
        }
        VEIL_CHECK(veil_ml_meta_decode(meta, c->meta, c->meta_len - (tail ? VEIL_DP_TAIL_BYTES : 0), err));
        if (tail && meta->kind != VEIL_SET_OUTPUTS && meta->kind != VEIL_SET_TRAIN_MODEL)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "ML file: a differential-privacy record on a set that is not of outputs "
                      "or a trained model");
    }
    if (c->count < 1 || c->items[0].type != VEIL_OBJECT_PARAMS)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "ML file: the parameters do not come first");
    VEIL_CHECK(veil_params_load(params, c->items[0].data, c->items[0].len, err));
    if ((veil_params_plain_modulus(*params) != 0) != (meta->scheme == VEIL_ML_BGV))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "ML file: the parameter set is not of the scheme the metadata names");
    /* the slots the metadata names must exist: CKKS has N/2, BGV (exact inference) N */
    const uint64_t n = veil_params_degree(*params), have = meta->scheme == VEIL_ML_BGV ? n : n / 2;
    if (meta->slots > have || meta->batch > have || (meta->scheme == VEIL_ML_BGV && meta->slots != n))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "ML file: %llu slots and batch %llu for a ring of %llu slots",
                  (unsigned long long)meta->slots, (unsigned long long)meta->batch, (unsigned long long)have);
done:
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

veil_status veil_ml_file_describe(const uint8_t *data, size_t len, char *text, size_t cap, veil_error *err)
{
    VEIL_REQUIRE(data, err);
    VEIL_REQUIRE(text, err);
    veil_set_contents c;
    veil_ml_meta m;
    veil_status st = veil_set_open(&c, data, len, err);
    if (st != VEIL_OK) return st; /* nothing held */
    veil_dp_release dp;
    const int tail = veil_ml_dp_tail(c.meta, c.meta_len, &dp, err);
    if (tail < 0) {
        st = VEIL_ERR_FORMAT;
        goto done;
    }
    VEIL_CHECK(veil_ml_meta_decode(&m, c.meta, c.meta_len - (tail ? VEIL_DP_TAIL_BYTES : 0), err));
    {
        static const char *kinds[] = {"", "key set (holds the SECRET key)", "evaluation keys (public: for the server)",
                                      "encrypted inputs", "encrypted outputs", "plan (parameters and rotations)",
                                      "encrypted training data (records, labels, scaling)",
                                      "encrypted trained model (weights, scaling)",
                                      "encrypted model (weights under the keys' public key; structure public)"};
        static const char *packings[] = {"throughput", "latency", "training"};
        static const char *finals[] = {"none", "sigmoid", "softmax", "log-softmax", "argmax"};
        char id[17];
        for (int i = 0; i < 8; i++) snprintf(id + 2 * i, 3, "%02x", m.key_id[i]);
        int used = snprintf(text, cap,
                            "ml file:    %s\nkey id:     %s...\npacking:    %s\nslots:      %llu\nbatch:      %llu\n"
                            "widths:     %u inputs, %u outputs (final operation: %s)\nobjects:    %zu\n",
                            m.kind == VEIL_SET_KEYSET && !c.secret ? "joint key set (multi-party: the joint public key, "
                                                                     "no secret)" : kinds[m.kind], id, packings[m.packing],
                            (unsigned long long)m.slots, (unsigned long long)m.batch, m.in_width, m.out_width,
                            m.packing == VEIL_PACKING_TRAINING ? (m.final_op ? "linear regression" : "logistic regression")
                                                                : finals[m.final_op],
                            c.count);
        if (m.kind >= VEIL_SET_INPUTS && m.kind != VEIL_SET_ENC_MODEL && used > 0 && (size_t)used < cap)
            used += snprintf(text + used, cap - (size_t)used, "rows:       %llu\n", (unsigned long long)m.rows);
        if (tail && dp.parties && used > 0 && (size_t)used < cap)
            used += snprintf(text + used, cap - (size_t)used, "privacy:    %u of %u noise shares (%s): epsilon %g at "
                             "delta %g, sensitivity %g, sigma %g (grid %g), the full sum's zCDP rho %g\n", dp.shares,
                             dp.parties, dp.shares >= dp.parties ? "a complete release" : "not a release yet",
                             dp.epsilon, dp.delta, dp.sensitivity, dp.sigma, dp.resolution, dp.rho);
        else if (tail && used > 0 && (size_t)used < cap)
            used += snprintf(text + used, cap - (size_t)used, "privacy:    a noisy release: epsilon %g at delta %g, "
                             "sensitivity %g, sigma %g (grid %g), zCDP rho %g\n", dp.epsilon, dp.delta,
                             dp.sensitivity, dp.sigma, dp.resolution, dp.rho);
        if (m.scheme == VEIL_ML_BGV && used > 0 && (size_t)used < cap)
            snprintf(text + used, cap - (size_t)used, "scheme:     BGV, exact: %u plaintext modul%s, integer inputs "
                     "in [%lld, %lld], output scale %.9g\n", m.bgv.crt_count, m.bgv.crt_count == 1 ? "us" : "i",
                     (long long)m.bgv.input_lo, (long long)m.bgv.input_hi, m.bgv.out_scale);
    }
done:
    veil_set_contents_clear(&c);
    return st;
}

