/*
 * Exact inference of quantized models in BGV (throughput packing: sample r of a batch in slot r of every
 * feature's ciphertext).
 *
 * The plan propagates the inputs' integer range through the program by interval arithmetic: an affine row
 * maps [lo, hi] to b + sum_i (w_i > 0 ? w_i [lo_i, hi_i] : w_i [hi_i, lo_i]), a square to [0 or the smaller
 * square, the larger square]. The outputs' worst-case bound B fixes the plaintext moduli: BGV computes
 * modulo t, so the result is exact when the product T of the moduli exceeds 2 B + 1 (the centered residue is
 * the integer). One t below 2^40 holds 39 bits; larger bounds take k = 2 .. 4 moduli, each its own parameter
 * set and keys, combined by the CRT at decryption (Veil's CRT recomposition, veil_bgv_crt_compose). The plan
 * takes the k and ring that cost least (k x N x primes).
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
#include "ring/ring_internal.h"

#define MAX_BOUND_BITS 62.0 /* the outputs are recomposed into int64 */
#define MAX_T_BITS 39       /* veil_bgv_params_select takes t below 2^40 */
#define MIN_T_BITS 17
#define BGV_TERM_NS 2.5  /* calibrated: docs/ml.md, "Estimates" */

void veil_crt_part_clear(veil_crt_part *part)
{
    if (!part->params && !part->ctx) return;
    veil_secret_key_free(part->sk);
    veil_public_key_free(part->pk);
    veil_switch_key_free(part->relin);
    veil_ml_context_release(part->ctx, part->params, part->refs);
    memset(part, 0, sizeof *part);
}

/* ---- the plan ------------------------------------------------------------------------------------ */

/* The bound of every output over inputs in [lo, hi], the linear layers' largest noise growth, the squares. */
static veil_status program_bounds(const veil_program *p, int64_t lo, int64_t hi, double *bound, double *bound_bits,
                                  double *linear_bits, unsigned *squares, veil_error *err)
{
    size_t maxw = p->in_width;
    for (size_t i = 0; i < p->n_stages; i++)
        if (p->stages[i].out_width > maxw) maxw = p->stages[i].out_width;
    long double *l = calloc(maxw, sizeof *l), *h = calloc(maxw, sizeof *h), *nl = calloc(maxw, sizeof *nl),
                *nh = calloc(maxw, sizeof *nh);
    if (!l || !h || !nl || !nh) {
        free(l), free(h), free(nl), free(nh);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "plan");
    }
    for (size_t i = 0; i < p->in_width; i++) l[i] = (long double)lo, h[i] = (long double)hi;
    long double worst = fmaxl(fabsl((long double)lo), fabsl((long double)hi));
    double growth = 0;
    *squares = 0;
    for (size_t si = 0; si < p->n_stages; si++) {
        const veil_stage *s = &p->stages[si];
        if (s->kind != VEIL_STAGE_SQUARE && s->kind != VEIL_STAGE_AFFINE) {
            free(l), free(h), free(nl), free(nh);
            return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: exact inference takes affine layers and squares only");
        }
        if (s->kind == VEIL_STAGE_SQUARE) {
            (*squares)++;
            for (size_t i = 0; i < s->in_width; i++) {
                const long double a = l[i] * l[i], b = h[i] * h[i];
                nh[i] = fmaxl(a, b);
                nl[i] = l[i] <= 0 && h[i] >= 0 ? 0 : fminl(a, b);
            }
        } else {
            for (size_t r = 0; r < s->out_width; r++) {
                long double a = s->b[r], b = s->b[r];
                double weight = 0;
                for (size_t c = 0; c < s->in_width; c++) {
                    const long double w = s->w[r * s->in_width + c];
                    a += w > 0 ? w * l[c] : w * h[c];
                    b += w > 0 ? w * h[c] : w * l[c];
                    weight += fabs(s->w[r * s->in_width + c]);
                }
                nl[r] = a, nh[r] = b;
                if (weight > 0) growth = fmax(growth, log2(weight));
            }
        }
        for (size_t i = 0; i < s->out_width; i++) {
            l[i] = nl[i], h[i] = nh[i];
            worst = fmaxl(worst, fmaxl(fabsl(l[i]), fabsl(h[i])));
        }
    }
    long double out = 0;
    for (size_t i = 0; i < p->out_width; i++) out = fmaxl(out, fmaxl(fabsl(l[i]), fabsl(h[i])));
    free(l), free(h), free(nl), free(nh);
    /* every value must fit the int64 reference; the outputs fix the moduli */
    const double worst_bits = worst > 0 ? (double)log2l(worst) : 0;
    if (worst_bits >= MAX_BOUND_BITS)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: the quantized network's values may reach 2^%.1f on inputs "
                         "in [%lld, %lld]; exact inference holds 2^%.0f: quantize to fewer bits (weights or inputs), "
                         "no keys were made", worst_bits, (long long)lo, (long long)hi, MAX_BOUND_BITS);
    *bound_bits = out > 0 ? (double)log2l(out) : 0;
    *bound = ceil((double)out * (1 + 0x1p-40)); /* rounded up: every output is an integer at most this */
    *linear_bits = ceil(growth);
    return VEIL_OK;
}

/* k distinct primes t = 1 mod 2n of `bits` bits, the largest first; 0 when there are not enough. */
static int find_moduli(uint64_t *t, size_t k, unsigned bits, size_t n)
{
    const uint64_t step = 2 * (uint64_t)n, top = ((uint64_t)1 << bits) - 1, bottom = (uint64_t)1 << (bits - 1);
    uint64_t c = top - (top - 1) % step; /* the largest value = 1 mod 2n below 2^bits */
    size_t found = 0;
    for (; found < k && c > bottom; c -= step)
        if (veil_is_prime(c)) t[found++] = c;
    return found == k;
}

typedef struct candidate {
    veil_params *params[VEIL_CRT_MAX];
    uint64_t t[VEIL_CRT_MAX];
    size_t k, n;
    double cost;
} candidate;

static void candidate_clear(candidate *c)
{
    for (size_t i = 0; i < VEIL_CRT_MAX; i++) veil_params_free(c->params[i]);
    memset(c, 0, sizeof *c);
}

/* The cheapest ring for k moduli of `bits` bits each (c->k = 0 when none holds them). */
static void try_moduli(candidate *c, size_t k, unsigned bits, unsigned depth, unsigned linear_bits,
                       veil_security security, size_t min_slots)
{
    memset(c, 0, sizeof *c);
    for (size_t n = 4096; n <= 65536; n *= 2) {
        if (n < min_slots || !find_moduli(c->t, k, bits, n)) continue;
        int ok = 1;
        double primes = 0;
        for (size_t i = 0; i < k && ok; i++) {
            veil_bgv_request req = {depth, c->t[i], true, n, security, linear_bits};
            veil_error ignored = {VEIL_OK, ""};
            ok = veil_bgv_params_select(&c->params[i], &req, &ignored) == VEIL_OK &&
                 veil_params_degree(c->params[i]) == n;
            if (ok) primes += (double)(veil_params_q_count(c->params[i]) + veil_params_p_count(c->params[i]));
        }
        if (ok) {
            c->k = k;
            c->n = n;
            c->cost = (double)n * primes;
            return;
        }
        candidate_clear(c);
    }
}

veil_status veil_exact_plan(veil_plan *plan, const veil_model *m, const veil_plan_request *req, veil_error *err)
{
    const veil_program *p = &m->program;
    if (req->packing != VEIL_PACKING_THROUGHPUT)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: exact inference (BGV) runs the throughput packing only");
    if (req->input_lo > req->input_hi || req->input_lo <= -((int64_t)1 << 40) || req->input_hi >= ((int64_t)1 << 40))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: the inputs' integer range [%lld, %lld] is empty or beyond 2^40",
                         (long long)req->input_lo, (long long)req->input_hi);
    if (req->batch > ((size_t)1 << 16))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "plan: batch %zu is above 65536 samples per ciphertext", req->batch);
    double bound = 0, bound_bits = 0, linear_bits = 0;
    unsigned squares = 0;
    VEIL_TRY(program_bounds(p, req->input_lo, req->input_hi, &bound, &bound_bits, &linear_bits, &squares, err));
    if (squares > 20)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "plan: %u squares; exact inference holds at most 20", squares);
    /* T > 2 B + 1: the bits of 2 B + 2, with one bit to spare, shared among k moduli */
    const double need = bound_bits + 2;
    candidate best = {0};
    for (size_t k = 1; k <= VEIL_CRT_MAX; k++) {
        unsigned bits = (unsigned)ceil(need / (double)k);
        if (bits < MIN_T_BITS) bits = MIN_T_BITS;
        /* the primes found sit below 2^bits: one more bit when their product falls short */
        for (const unsigned first = bits; bits <= MAX_T_BITS && bits <= first + 2; bits++) {
            candidate c;
            try_moduli(&c, k, bits, squares ? squares : 1, (unsigned)linear_bits, req->security, req->batch);
            double have = 0;
            for (size_t i = 0; i < c.k; i++) have += log2((double)c.t[i]);
            if (c.k && have >= need) { /* more bits would only cost more */
                if (!best.k || c.cost < best.cost) {
                    candidate_clear(&best);
                    best = c;
                } else {
                    candidate_clear(&c);
                }
                break;
            }
            candidate_clear(&c);
        }
    }
    if (!best.k)
        return veil_fail(err, VEIL_ERR_NOT_FOUND, "plan: no BGV parameters hold outputs of 2^%.1f with %u squares and "
                         "linear layers growing the noise by 2^%.0f at this security level; no keys were made",
                         bound_bits, squares, linear_bits);
    plan->scheme = VEIL_ML_BGV;
    plan->crt_count = best.k;
    plan->params = best.params[0];
    for (size_t i = 1; i < best.k; i++) plan->crt_params[i] = best.params[i];
    plan->input_lo = req->input_lo;
    plan->input_hi = req->input_hi;
    plan->out_scale = p->out_scale;
    plan->bound = bound;
    plan->slots = best.n;
    plan->batch = req->batch ? req->batch : best.n;
    plan->scale_bits = 0;
    veil_plan_info_from_params(plan);
    veil_plan_info *in = &plan->info;
    in->scheme = VEIL_ML_BGV;
    in->depth = squares;
    in->crt_count = best.k;
    in->modulus_bits = 0;
    for (size_t i = 0; i < best.k; i++) {
        in->plain_moduli[i] = best.t[i];
        in->modulus_bits += log2((double)best.t[i]);
    }
    in->bound_bits = bound_bits;
    in->in_ciphertexts = p->in_width * best.k;
    in->out_ciphertexts = p->out_width * best.k;
    veil_plan_sizes(plan);
    const double n = (double)best.n, limbs = (double)in->q_count;
    size_t nnz = 0, wide = p->in_width;
    for (size_t i = 0; i < p->n_stages; i++) {
        const veil_stage *s = &p->stages[i];
        if (s->kind == VEIL_STAGE_AFFINE)
            for (size_t j = 0; j < s->in_width * s->out_width; j++) nnz += s->w[j] != 0;
        if (s->out_width > wide) wide = s->out_width;
    }
    /* per modulus: BGV_TERM_NS per coefficient and limb of a term of a linear layer (128-bit lazy sums, scalar
     * code), and for every square of the widest layer a key switch and a modulus switch (model.c's cost model) */
    const size_t top = in->q_count - 1;
    in->estimated_seconds = (double)best.k * (BGV_TERM_NS * 1e-9 * n * limbs * 2 * (double)nnz +
                                              (veil_key_switch_seconds(in, top) + veil_rescale_seconds(in, top)) *
                                                  (double)wide * squares);
    /* a batch's inputs and the widest layer's outputs, per modulus */
    veil_plan_memory(plan, (double)best.k * (double)(p->in_width + wide) *
                               veil_ciphertext_memory(plan->params, in->q_count - 1));
    return VEIL_OK;
}

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
    return (part_view){&k->crt[m].params, &k->crt[m].ctx, &k->crt[m].refs};
}

static part_view eval_part(veil_eval_keys *k, size_t m)
{
    if (m == 0) return (part_view){&k->params, &k->ctx, &k->refs};
    return (part_view){&k->crt[m].params, &k->crt[m].ctx, &k->crt[m].refs};
}

static veil_secret_key **keyset_sk(veil_keyset *k, size_t m) { return m ? &k->crt[m].sk : &k->sk; }
static veil_public_key **eval_pk(veil_eval_keys *k, size_t m) { return m ? &k->crt[m].pk : &k->pk; }
static veil_switch_key **eval_relin(veil_eval_keys *k, size_t m) { return m ? &k->crt[m].relin : &k->relin; }
static const veil_context *eval_ctx(const veil_eval_keys *k, size_t m) { return m ? k->crt[m].ctx : k->ctx; }

veil_status veil_exact_keygen(veil_keyset **secret_out, veil_eval_keys **eval_out, const veil_plan *plan,
                              veil_prng *prng, veil_progress_fn progress, void *progress_arg, veil_error *err)
{
    veil_keyset *ks = calloc(1, sizeof *ks);
    veil_eval_keys *ek = calloc(1, sizeof *ek);
    veil_buffer pks[VEIL_CRT_MAX] = {{0}};
    const size_t k = plan->crt_count;
    veil_status st = ks && ek ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "keys");
    for (size_t m = 0; st == VEIL_OK && m < k; m++) {
        part_view sp = keyset_part(ks, m), ep = eval_part(ek, m);
        st = veil_ml_copy_params(sp.params, m ? plan->crt_params[m] : plan->params, err);
        if (st == VEIL_OK) st = veil_ml_context_new(*sp.params, sp.ctx, sp.refs, err);
        if (st == VEIL_OK) {
            /* the eval keys hold the same context */
            *ep.params = *sp.params;
            *ep.ctx = *sp.ctx;
            *ep.refs = *sp.refs;
            atomic_fetch_add(*sp.refs, 1);
            st = veil_secret_key_new(keyset_sk(ks, m), *sp.ctx, prng, err);
        }
        if (st == VEIL_OK) st = veil_public_key_new(eval_pk(ek, m), *sp.ctx, *keyset_sk(ks, m), prng, err);
        if (st == VEIL_OK) st = veil_relin_key_new(eval_relin(ek, m), *sp.ctx, *keyset_sk(ks, m), prng, err);
        if (st == VEIL_OK) st = veil_public_key_save(&pks[m], *eval_pk(ek, m), 0, err);
        if (st == VEIL_OK && progress) progress(progress_arg, m + 1, k);
    }
    if (st == VEIL_OK) {
        veil_ml_meta *mt = &ks->meta;
        mt->kind = VEIL_SET_KEYSET;
        mt->packing = VEIL_PACKING_THROUGHPUT;
        mt->scheme = VEIL_ML_BGV;
        mt->crt_count = (uint32_t)k;
        mt->input_lo = plan->input_lo;
        mt->input_hi = plan->input_hi;
        mt->out_scale = plan->out_scale;
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
    for (size_t m = 0; m < VEIL_CRT_MAX; m++) veil_buffer_free(&pks[m]);
    if (st != VEIL_OK) {
        veil_keyset_free(ks);
        veil_eval_keys_free(ek);
        return st;
    }
    *secret_out = ks;
    *eval_out = ek;
    return VEIL_OK;
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

veil_status veil_exact_keyset_save(veil_buffer *out, const veil_keyset *k, veil_error *err)
{
    const size_t n = k->meta.crt_count;
    veil_buffer *items = calloc(2 * n, sizeof *items);
    const veil_params *params[VEIL_CRT_MAX] = {k->params};
    veil_status st = items ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "key set");
    for (size_t m = 0; st == VEIL_OK && m < n; m++) {
        params[m] = m ? k->crt[m].params : k->params;
        st = veil_params_save(&items[2 * m], params[m], 0, err);
        if (st == VEIL_OK) st = veil_secret_key_save(&items[2 * m + 1], m ? k->crt[m].sk : k->sk, 0, err);
    }
    if (st == VEIL_OK) st = save_groups(out, &k->meta, params, n, items, 1, err);
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
    if (it->type != VEIL_OBJECT_PARAMS)
        return veil_fail(err, VEIL_ERR_FORMAT, "exact set: modulus %zu's group does not start with its parameters", m);
    VEIL_TRY(veil_params_load(params, it->data, it->len, err));
    const uint64_t t = veil_params_plain_modulus(*params);
    if (t == 0 || veil_params_degree(*params) != veil_params_degree(first) ||
        veil_params_security(*params) >= VEIL_SECURITY_NONE)
        return veil_fail(err, VEIL_ERR_FORMAT, "exact set: modulus %zu's parameters are not BGV of the first's ring at "
                         "a security level", m);
    for (size_t j = 0; j < m; j++) {
        const veil_set_item *prev = &c->items[j * (per + 1)];
        if (memcmp(prev->data + 16, it->data + 16, VEIL_PARAMS_HASH_BYTES) == 0)
            return veil_fail(err, VEIL_ERR_FORMAT, "exact set: modulus %zu repeats an earlier parameter set", m);
    }
    return veil_ml_context_new(*params, ctx, refs, err);
}

veil_status veil_exact_keyset_load(veil_keyset *k, const veil_set_contents *c, veil_error *err)
{
    const size_t n = k->meta.crt_count;
    if (c->count != 2 * n) return veil_fail(err, VEIL_ERR_FORMAT, "key set: %zu objects for %zu moduli", c->count, n);
    veil_status st = veil_ml_context_new(k->params, &k->ctx, &k->refs, err);
    for (size_t m = 0; st == VEIL_OK && m < n; m++) {
        if (m) st = load_group(c, m, 1, k->params, &k->crt[m].params, &k->crt[m].ctx, &k->crt[m].refs, err);
        if (st == VEIL_OK && c->items[2 * m + 1].type != VEIL_OBJECT_SECRET_KEY)
            st = veil_fail(err, VEIL_ERR_MISMATCH, "this file is not a Veil key set (secret.key)");
        if (st == VEIL_OK)
            st = veil_secret_key_load(keyset_sk(k, m), m ? k->crt[m].ctx : k->ctx, c->items[2 * m + 1].data,
                                      c->items[2 * m + 1].len, err);
    }
    return st;
}

veil_status veil_exact_eval_keys_save(veil_buffer *out, const veil_eval_keys *k, veil_error *err)
{
    const size_t n = k->meta.crt_count;
    veil_buffer *items = calloc(3 * n, sizeof *items);
    const veil_params *params[VEIL_CRT_MAX] = {k->params};
    veil_status st = items ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "eval keys");
    for (size_t m = 0; st == VEIL_OK && m < n; m++) {
        params[m] = m ? k->crt[m].params : k->params;
        st = veil_params_save(&items[3 * m], params[m], 0, err);
        if (st == VEIL_OK) st = veil_public_key_save(&items[3 * m + 1], m ? k->crt[m].pk : k->pk, k->pk_options, err);
        if (st == VEIL_OK) st = veil_switch_key_save(&items[3 * m + 2], m ? k->crt[m].relin : k->relin, 0, err);
    }
    if (st == VEIL_OK) st = save_groups(out, &k->meta, params, n, items, 2, err);
    free_items(items, 3 * n);
    return st;
}

veil_status veil_exact_eval_keys_load(veil_eval_keys *k, const veil_set_contents *c, veil_error *err)
{
    const size_t n = k->meta.crt_count;
    if (c->count != 3 * n) return veil_fail(err, VEIL_ERR_FORMAT, "eval keys: %zu objects for %zu moduli", c->count, n);
    veil_buffer pks[VEIL_CRT_MAX];
    for (size_t m = 0; m < n; m++) pks[m] = (veil_buffer){(uint8_t *)c->items[3 * m + 1].data, c->items[3 * m + 1].len};
    uint8_t id[VEIL_ID_BYTES];
    key_id_of(id, pks, n);
    if (sodium_memcmp(id, k->meta.key_id, VEIL_ID_BYTES) != 0)
        return veil_fail(err, VEIL_ERR_FORMAT, "eval keys: the key id does not match the public keys");
    veil_status st = veil_ml_context_new(k->params, &k->ctx, &k->refs, err);
    for (size_t m = 0; st == VEIL_OK && m < n; m++) {
        if (m) st = load_group(c, m, 2, k->params, &k->crt[m].params, &k->crt[m].ctx, &k->crt[m].refs, err);
        const veil_context *ctx = eval_ctx(k, m);
        if (st == VEIL_OK) st = veil_public_key_load(eval_pk(k, m), ctx, c->items[3 * m + 1].data, c->items[3 * m + 1].len, err);
        if (st == VEIL_OK && m == 0) k->pk_options = veil_ml_stored_options(c->items[1].data, c->items[1].len);
        if (st == VEIL_OK)
            st = veil_switch_key_load(eval_relin(k, m), ctx, c->items[3 * m + 2].data, c->items[3 * m + 2].len, err);
        if (st == VEIL_OK && veil_switch_key_galois_element(*eval_relin(k, m)) != 0)
            st = veil_fail(err, VEIL_ERR_FORMAT, "eval keys: modulus %zu's relinearization key is a Galois key", m);
    }
    return st;
}

/* ---- ciphertext sets ---------------------------------------------------------------------------------- */

static size_t per_modulus(const veil_ciphertexts *c) { return c->count / c->meta.crt_count; }

static veil_status alloc_exact(veil_ciphertexts *set, const veil_context *const *ctx, size_t k, size_t per,
                               int fill, veil_error *err)
{
    set->bcts = calloc(k * per > 0 ? k * per : 1, sizeof *set->bcts);
    if (!set->bcts) return veil_fail(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    set->count = k * per; /* only now: the set is freed as an exact one */
    for (size_t m = 0; m < k; m++) set->bctx[m] = ctx[m];
    for (size_t i = 0; fill && i < set->count; i++)
        VEIL_TRY(veil_bgv_ciphertext_new(&set->bcts[i], ctx[i / per], err));
    return VEIL_OK;
}

veil_status veil_exact_ciphertexts_save(veil_buffer *out, const veil_ciphertexts *cts, veil_error *err)
{
    const size_t k = cts->meta.crt_count, per = per_modulus(cts);
    veil_buffer *items = calloc(k * (per + 1), sizeof *items);
    const veil_params *params[VEIL_CRT_MAX] = {NULL};
    veil_status st = items ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "ciphertext set");
    for (size_t m = 0; st == VEIL_OK && m < k; m++) {
        params[m] = veil_context_params(cts->bctx[m]);
        st = veil_params_save(&items[m * (per + 1)], params[m], 0, err);
        for (size_t i = 0; st == VEIL_OK && i < per; i++)
            st = veil_bgv_ciphertext_save(&items[m * (per + 1) + 1 + i], cts->bcts[m * per + i], 0, err);
    }
    if (st == VEIL_OK) st = save_groups(out, &cts->meta, params, k, items, per, err);
    free_items(items, k * (per + 1));
    return st;
}

veil_status veil_exact_ciphertexts_load(veil_ciphertexts *set, const veil_set_contents *c, const veil_context *const *ctx,
                                        size_t k, veil_error *err)
{
    const size_t per = c->count / k - 1;
    VEIL_TRY(alloc_exact(set, ctx, k, per, 0, err));
    for (size_t m = 0; m < k; m++) {
        const veil_set_item *it = &c->items[m * (per + 1)];
        uint8_t h[VEIL_PARAMS_HASH_BYTES];
        veil_params_hash(veil_context_params(ctx[m]), h);
        if (it->type != VEIL_OBJECT_PARAMS || memcmp(it->data + 16, h, sizeof h) != 0)
            return veil_fail(err, VEIL_ERR_MISMATCH, "ciphertext set: modulus %zu was encrypted under another parameter "
                             "set than the keys'", m);
        const size_t threads = (size_t)veil_context_ring(ctx[m])->threads;
        const veil_set_item *items = &c->items[m * (per + 1) + 1];
        veil_status st;
        VEIL_PARALLEL_PARTS(per, per > 1 ? threads : 1, err,
                            veil_bgv_ciphertext_load(&set->bcts[m * per + part], ctx[m], items[part].data,
                                                     items[part].len, &e_));
        VEIL_TRY(st);
    }
    return VEIL_OK;
}

/* ---- encryption and decryption ----------------------------------------------------------------------- */

static const veil_context *keyset_ctx(const veil_keyset *k, size_t m) { return m ? k->crt[m].ctx : k->ctx; }

veil_status veil_exact_encrypt(veil_ciphertexts **out, const veil_keyset *k, const double *in, size_t rows,
                               veil_prng *prng, veil_error *err)
{
    const veil_ml_meta *km = &k->meta;
    const size_t w = km->in_width;
    for (size_t i = 0; i < rows * w; i++)
        if (!(in[i] >= (double)km->input_lo && in[i] <= (double)km->input_hi) || in[i] != nearbyint(in[i]))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "encrypt: row %zu, column %zu is %g: the keys take integers in "
                             "[%lld, %lld] (the quantized inputs the plan bounded)", i / w + 1, i % w + 1, in[i],
                             (long long)km->input_lo, (long long)km->input_hi);
    veil_ml_meta meta = *km;
    meta.kind = VEIL_SET_INPUTS;
    meta.rows = rows;
    meta.width = (uint32_t)w;
    const size_t kk = km->crt_count, batches = veil_ciphertexts_batches(&meta), per = batches * w;
    const veil_context *ctxs[VEIL_CRT_MAX];
    for (size_t m = 0; m < kk; m++) ctxs[m] = keyset_ctx(k, m);
    veil_ciphertexts *set = NULL;
    uint64_t *v = calloc(meta.slots, sizeof *v);
    veil_status st = v ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "encrypt");
    if (st == VEIL_OK) st = veil_ciphertexts_alloc(&set, ctxs[0], &meta, 0, err);
    if (st == VEIL_OK) st = alloc_exact(set, ctxs, kk, per, 1, err);
    for (size_t m = 0; st == VEIL_OK && m < kk; m++) {
        veil_bgv_encoder *enc = NULL;
        veil_bgv_plaintext *pt = NULL;
        const uint64_t t = veil_params_plain_modulus(veil_context_params(ctxs[m]));
        st = veil_bgv_encoder_new(&enc, ctxs[m], err);
        if (st == VEIL_OK) st = veil_bgv_plaintext_new(&pt, ctxs[m], err);
        for (size_t i = 0; st == VEIL_OK && i < per; i++) {
            const size_t b = i / w, f = i % w, first = b * meta.batch;
            const size_t n = rows - first < meta.batch ? rows - first : meta.batch;
            memset(v, 0, meta.slots * sizeof *v);
            for (size_t r = 0; r < n; r++) {
                const int64_t x = (int64_t)in[(first + r) * w + f];
                v[r] = x >= 0 ? (uint64_t)x % t : (t - (uint64_t)(-x) % t) % t;
            }
            st = veil_bgv_encode(enc, pt, v, n, err);
            if (st == VEIL_OK) st = veil_bgv_encrypt_sk(ctxs[m], set->bcts[m * per + i], pt, m ? k->crt[m].sk : k->sk, prng, err);
        }
        veil_bgv_plaintext_free(pt);
        veil_bgv_encoder_free(enc);
    }
    if (v) sodium_memzero(v, meta.slots * sizeof *v);
    free(v);
    if (st != VEIL_OK) {
        veil_ciphertexts_free(set);
        return st;
    }
    *out = set;
    return VEIL_OK;
}

veil_status veil_decrypt_integers(int64_t *out, const veil_keyset *k, const veil_ciphertexts *cts, veil_error *err)
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
    const size_t kk = cts->meta.crt_count, w = cts->meta.width, rows = (size_t)cts->meta.rows, per = per_modulus(cts);
    const size_t batch = (size_t)cts->meta.batch, slots = (size_t)cts->meta.slots;
    uint64_t moduli[VEIL_CRT_MAX], *res[VEIL_CRT_MAX] = {NULL}, *vals = calloc(slots, sizeof *vals);
    veil_status st = vals ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "decrypt");
    for (size_t m = 0; st == VEIL_OK && m < kk; m++) {
        moduli[m] = veil_params_plain_modulus(veil_context_params(keyset_ctx(k, m)));
        res[m] = calloc(rows * w + 1, sizeof *res[m]);
        if (!res[m]) st = veil_fail(err, VEIL_ERR_NO_MEMORY, "decrypt");
    }
    for (size_t m = 0; st == VEIL_OK && m < kk; m++) {
        const veil_context *ctx = keyset_ctx(k, m);
        veil_bgv_encoder *enc = NULL;
        veil_bgv_plaintext *pt = NULL;
        st = veil_bgv_encoder_new(&enc, ctx, err);
        if (st == VEIL_OK) st = veil_bgv_plaintext_new(&pt, ctx, err);
        for (size_t i = 0; st == VEIL_OK && i < per; i++) {
            const size_t b = i / w, f = i % w, first = b * batch;
            const size_t n = rows - first < batch ? rows - first : batch;
            st = veil_bgv_decrypt(ctx, pt, cts->bcts[m * per + i], m ? k->crt[m].sk : k->sk, err);
            if (st == VEIL_OK) st = veil_bgv_decode(enc, vals, n, pt, err);
            for (size_t r = 0; st == VEIL_OK && r < n; r++) res[m][(first + r) * w + f] = vals[r];
        }
        veil_bgv_plaintext_free(pt);
        veil_bgv_encoder_free(enc);
    }
    if (st == VEIL_OK && kk == 1) {
        for (size_t i = 0; i < rows * w; i++)
            out[i] = res[0][i] > moduli[0] / 2 ? -(int64_t)(moduli[0] - res[0][i]) : (int64_t)res[0][i];
    } else if (st == VEIL_OK) {
        st = veil_bgv_crt_compose(moduli, kk, (const uint64_t *const *)res, rows * w, out, err);
    }
    /* T > 4 B: a result past the bound is not the computation's (noise overflow, or a forged result) */
    for (size_t i = 0; st == VEIL_OK && i < rows * w; i++)
        if (fabs((double)out[i]) > k->meta.bound)
            st = veil_fail(err, VEIL_ERR_NOISE, "decrypt: output %zu of row %zu decrypts to %lld, beyond the bound "
                           "2^%.1f the plan proved: the result is not the model's (noise overflow or a forged "
                           "ciphertext)", i % w + 1, i / w + 1, (long long)out[i], log2(k->meta.bound));
    for (size_t m = 0; m < kk; m++) free(res[m]);
    free(vals);
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
    VEIL_TRY(veil_bgv_mod_switch_to(ctx, y, x, level, err));
    VEIL_TRY(veil_bgv_mul_relin(ctx, y, y, y, rk, err));
    if (veil_bgv_ciphertext_level(y) != level)
        return veil_fail(err, VEIL_ERR_INTERNAL, "square layer: a product left the layer's level");
    return VEIL_OK;
}

/* One square layer: every input to the level the noisiest one's product lands on, then the products. */
static veil_status square_layer(const veil_context *ctx, const veil_switch_key *rk, size_t width,
                                veil_bgv_ciphertext *const *x, veil_bgv_ciphertext **y, size_t threads, veil_error *err)
{
    size_t noisiest = 0;
    for (size_t i = 1; i < width; i++)
        if (veil_bgv_noise_budget_estimate(x[i]) < veil_bgv_noise_budget_estimate(x[noisiest])) noisiest = i;
    VEIL_TRY(veil_bgv_mul_relin(ctx, y[noisiest], x[noisiest], x[noisiest], rk, err));
    const size_t level = veil_bgv_ciphertext_level(y[noisiest]);
    veil_status st;
    VEIL_PARALLEL_PARTS(width, threads, err, part == noisiest ? VEIL_OK : square_at(ctx, rk, y[part], x[part], level, &e_));
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
    veil_bgv_ciphertext **owned = NULL;
    size_t width = p->in_width;
    veil_status st = VEIL_OK;
    for (size_t si = 0; st == VEIL_OK && si < p->n_stages; si++) {
        const veil_stage *s = &p->stages[si];
        veil_bgv_ciphertext **y = calloc(s->out_width, sizeof *y);
        st = y ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "evaluate");
        for (size_t j = 0; st == VEIL_OK && j < s->out_width; j++) st = veil_bgv_ciphertext_new(&y[j], ctx, err);
        if (st == VEIL_OK && s->kind == VEIL_STAGE_AFFINE) st = linear_layer(ctx, s, x, y, threads, err);
        else if (st == VEIL_OK && s->kind == VEIL_STAGE_SQUARE) st = square_layer(ctx, rk, width, x, y, threads, err);
        else if (st == VEIL_OK) st = veil_fail(err, VEIL_ERR_UNSUPPORTED, "evaluate: exact inference takes affine "
                                               "layers and squares only");
        free_layer(owned, width);
        owned = y;
        x = y;
        width = s->out_width;
    }
    if (st == VEIL_OK && !owned) st = veil_fail(err, VEIL_ERR_UNSUPPORTED, "evaluate: the program has no layers");
    for (size_t j = 0; st == VEIL_OK && j < width; j++) {
        veil_bgv_ciphertext_free(out[j]);
        out[j] = owned[j];
        owned[j] = NULL;
    }
    free_layer(owned, width);
    return st;
}

veil_status veil_exact_evaluate(veil_ciphertexts **out, const veil_program *p, const veil_eval_keys *k,
                                const veil_ciphertexts *in, size_t threads, veil_progress_fn fn, void *arg,
                                veil_error *err)
{
    if (in->meta.scheme != VEIL_ML_BGV || in->meta.crt_count != k->meta.crt_count)
        return veil_fail(err, VEIL_ERR_MISMATCH, "evaluate: these ciphertexts are not of the keys' scheme");
    veil_ml_meta meta = in->meta;
    meta.kind = VEIL_SET_OUTPUTS;
    meta.width = (uint32_t)p->out_width;
    const size_t kk = meta.crt_count, batches = veil_ciphertexts_batches(&in->meta), per_in = batches * p->in_width;
    const size_t per_out = batches * p->out_width;
    const veil_context *ctxs[VEIL_CRT_MAX];
    for (size_t m = 0; m < kk; m++) ctxs[m] = eval_ctx(k, m);
    veil_ciphertexts *res = NULL;
    VEIL_TRY(veil_ciphertexts_alloc(&res, ctxs[0], &meta, 0, err));
    veil_status st = alloc_exact(res, ctxs, kk, per_out, 0, err);
    for (size_t m = 0; st == VEIL_OK && m < kk; m++)
        for (size_t b = 0; st == VEIL_OK && b < batches; b++) {
            st = run_exact_batch(ctxs[m], m ? k->crt[m].relin : k->relin, p,
                                 in->bcts + m * per_in + b * p->in_width, res->bcts + m * per_out + b * p->out_width,
                                 threads, err);
            if (fn) fn(arg, m * batches + b + 1, kk * batches);
        }
    if (st != VEIL_OK) {
        veil_ciphertexts_free(res);
        return st;
    }
    *out = res;
    return VEIL_OK;
}
