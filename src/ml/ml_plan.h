/*
 * Internal: plans, key sets and ciphertext sets of the ML layer, and the table of operations each scheme's
 * back end offers.
 *
 * The files, from the bottom up (each calls only the files of the levels below it):
 *   base       sets.c (ciphertext sets, shared contexts, key-set accessors), meta.c (the metadata of ML
 *              files, `veil info`), plan.c (plan info, the latency layout, the time and memory models),
 *              and the front end (onnx.c, interp.c, lower.c, bounds.c, build.c, csv.c, model.c)
 *   back ends  CKKS: ckks_plan.c, ckks_keys.c, ckks_io.c, ckks_infer.c (its table), encmodel.c (encrypted
 *              models); training (CKKS):
 *              train.c; BGV: bgv_plan.c, bgv_infer.c (its table); planfile.c (plan files, CKKS only)
 *   dispatch   api.c: the public entry points, which pick a back end's table from the scheme once
 */
#ifndef VEIL_ML_PLAN_H
#define VEIL_ML_PLAN_H

#include <stdbool.h>
#include "ml/ml_internal.h"
#include "veil/rlwe.h"
#include "veil/ckks.h"
#include "veil/bgv.h"
#include "veil/circuits.h"
#include <stdatomic.h>

#define VEIL_ID_BYTES 32

/*
 * Bootstrapping in CKKS inference (ckks_boot.c, docs/bootstrapping.md "In the ML layer"): after stage after[k]
 * every ciphertext is bootstrapped, its values divided by 2^shift[k] before (folded into that stage's
 * weights or coefficients) and multiplied by 2^shift[k] after (an exact integer product), so that they lie in
 * [-1, 1] where the bootstrap reads them. Inputs start at level `levels`, where a bootstrap returns.
 */
#define VEIL_ML_BOOT_MAX 64
typedef struct veil_ml_boot {
    size_t count;
    uint32_t after[VEIL_ML_BOOT_MAX];
    int32_t shift[VEIL_ML_BOOT_MAX];
    double bound[VEIL_ML_BOOT_MAX]; /* the values' worst-case |value| there, before the shift (plans only) */
    size_t levels;
    veil_ckks_bootstrap_config config;
} veil_ml_boot;

struct veil_plan {
    uint8_t model_hash[VEIL_ID_BYTES];
    veil_packing packing;
    size_t batch, slots;
    unsigned scale_bits;
    veil_params *params;
    long *steps;
    size_t n_steps;
    veil_plan_info info;
    size_t in_width, out_width;
    veil_final_op final_op;
    veil_ml_scheme scheme;
    double bound; /* the outputs' worst-case |value| over the inputs' range */
    /* each back end reads only its own part */
    struct {
        double *box_lo, *box_hi; /* CKKS inference: each input's range (in_width values) */
    } ckks;
    struct {
        size_t crt_count; /* params holds modulus 0's set, crt_params[1 .. crt_count) the others' */
        veil_params *crt_params[VEIL_CRT_MAX];
        int64_t input_lo, input_hi; /* the integer inputs' range */
        double out_scale;
    } bgv;
    struct {
        uint32_t task, degree, range; /* veil/train.h */
        /* past the leveled limit (train.c): the level a bootstrapped weight vector is at (0: leveled keys), the
         * bootstrap's slots, and the Galois elements of its keys that the rotations above do not give */
        uint32_t boot;
        size_t boot_slots, n_boot_elements, boot_galois; /* boot_galois: all the Galois keys it uses */
        uint64_t *boot_elements;
    } train;
    veil_ml_boot boot; /* CKKS inference with bootstrapping: count 0 for a leveled plan */
    uint64_t *boot_galois; /* the bootstrapping keys' Galois elements (not among steps), n_boot_galois */
    size_t n_boot_galois;
    char *boot_what[VEIL_ML_BOOT_MAX]; /* the description of the stage before each bootstrap */
};

/* What a key set, its bundle and its ciphertexts agree on. Stored in every set's metadata. */
typedef enum veil_set_kind { VEIL_SET_KEYSET = 1, VEIL_SET_EVAL_KEYS = 2, VEIL_SET_INPUTS = 3, VEIL_SET_OUTPUTS = 4,
                              VEIL_SET_PLAN = 5, VEIL_SET_TRAIN_DATA = 6, VEIL_SET_TRAIN_MODEL = 7,
                              VEIL_SET_ENC_MODEL = 8 } veil_set_kind;

typedef struct veil_ml_meta {
    veil_set_kind kind;
    veil_packing packing;
    uint32_t layout; /* the latency packing's slots: VEIL_LAYOUT_LANES or VEIL_LAYOUT_PERIODIC (0 otherwise) */
    uint8_t key_id[VEIL_ID_BYTES];
    uint8_t model_hash[VEIL_ID_BYTES];
    uint64_t batch, slots, rows;
    uint32_t in_width, out_width, width, final_op, scale_bits;
    uint32_t scheme;
    double bound; /* the outputs' worst-case |value|: a larger decryption is refused */
    struct {
        uint32_t degree, range; /* the sigmoid (final_op holds the task) */
        uint32_t boot;          /* training keys with bootstrapping: the level it returns to (0: leveled) */
    } train;
    struct {
        uint32_t crt_count; /* the moduli, the inputs' range and the output scale (in 40 more bytes) */
        int64_t input_lo, input_hi;
        double out_scale;
    } bgv;
} veil_ml_meta;

#define VEIL_META_BYTES 128
#define VEIL_META_EXACT_BYTES (VEIL_META_BYTES + 40)
/*
 * The latency packing's layouts: VEIL_LAYOUT_LANES, value s of lane b at slot s R + b (R = N/2S lanes, see
 * veil_latency_lanes); VEIL_LAYOUT_PERIODIC (plans with bootstraps, ckks_boot.c), the S values repeated over the
 * N/2 slots with period S, as sparse packing and sparse bootstrapping read them: every latency formula with
 * one lane, R = 1 (veil_latency_span). A file of a layout its keys were not made for is refused.
 */
#define VEIL_LAYOUT_LANES 1
#define VEIL_LAYOUT_PERIODIC 2
/* The N/2 of the latency formulas (R = span / S, lanes from veil_latency_lanes(.., span)): N/2, or S when periodic. */
static inline size_t veil_latency_span(size_t half_n, size_t slots, int periodic) { return periodic ? slots : half_n; }
/* The metadata of ML sets (meta.c): encoding, and decoding with every field checked. */
size_t veil_ml_meta_encode(uint8_t *out, const veil_ml_meta *m);
veil_status veil_ml_meta_decode(veil_ml_meta *m, const uint8_t *in, size_t len, veil_error *err);
/* The save option that reproduces a loaded object's form: VEIL_SAVE_COMPRESS when it was stored compressed. */
unsigned veil_ml_stored_options(const uint8_t *data, size_t len);
/* A context with a holder count, shared by a key set and its eval keys; the last holder frees it. */
#define VEIL_ML_THREADS_MAX 4096 /* threads an evaluator or a training run may be given (as VEIL_THREADS) */
veil_status veil_ml_context_new(veil_params *params, veil_context **ctx, atomic_int **refs, veil_error *err);
void veil_ml_context_release(veil_context *ctx, veil_params *params, atomic_int *refs);
/* Opens a set, decodes its ML metadata, and loads its parameters (the first object); *params NULL on failure. */
veil_status veil_ml_set_open(veil_set_contents *c, veil_ml_meta *meta, veil_params **params, const uint8_t *data,
                             size_t len, veil_error *err);
/*
 * veil_train_run_serialized's loading: the n serialized training data sets opened (each one's own digest checked
 * when verify is set; framing, metadata against the keys), and of each only the ciphertexts of records that
 * part `part` of `parts` trains on (veil_train_split's share, counted over the sets in order), its constant
 * part and its scaling loaded into sets[h] (every one validated); the other slots NULL. Such sets never leave
 * the library (veil_train_run_sets takes them; nothing else would). sets[] NULL on failure.
 */
veil_status veil_ml_train_load_share(veil_ciphertexts **sets, const veil_eval_keys *eval, const veil_buffer *data,
                                     size_t n, size_t part, size_t parts, bool verify, veil_error *err);
/* The same, with the set's own digest checked (verify) or not (veil_set_open_ex). */
veil_status veil_ml_set_open_ex(veil_set_contents *c, veil_ml_meta *meta, veil_params **params, const uint8_t *data,
                                size_t len, bool verify, veil_error *err);
/*
 * CKKS inference key sets and plans carry, after the 128 bytes of metadata, the range extension: a tag, the
 * outputs' bound (a double) and each input's range (w pairs of doubles), veil_ml_range_bytes(w) bytes.
 */
size_t veil_ml_range_bytes(size_t w);
/* Whether in[0 .. len) begins with the range extension's tag (CKKS evaluation-key bundles without bootstraps). */
int veil_ml_range_tagged(const uint8_t *in, size_t len);
void veil_ml_range_encode(uint8_t *out, double bound, const double *lo, const double *hi, size_t w);
veil_status veil_ml_range_decode(const uint8_t *in, size_t len, size_t w, double *bound, double **lo, double **hi,
                                 veil_error *err);
/* Copies of w inputs' ranges. */
veil_status veil_ml_box_copy(double **lo, double **hi, const double *from_lo, const double *from_hi, size_t w,
                             veil_error *err);

/* Little-endian 64-bit words of the metadata. */
static inline void veil_ml_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t veil_ml_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* One more plaintext modulus of exact inference: its parameters, context and keys. */
typedef struct veil_crt_part {
    veil_params *params;
    veil_context *ctx;
    atomic_int *refs;
    veil_secret_key *sk;
    veil_public_key *pk;
    veil_switch_key *relin;
} veil_crt_part;

#define MAX_TRAIN_STEPS 64 /* rotations a training plan may ask for (train.c); a plan file claiming more is refused */

/* Training: the block of slots a record takes (bias, features, and one free slot), a power of two. */
size_t veil_train_block(size_t features);
/* Ciphertexts a training data set holds for its rows (records, labels for linear regression, the scaling). */
size_t veil_train_data_count(const veil_ml_meta *meta);

/* A key set and the eval keys made with it share one context (so that their ciphertexts mix in memory). */
struct veil_keyset {
    veil_ml_meta meta;
    veil_params *params;
    veil_context *ctx;
    atomic_int *refs; /* holders of params and ctx */
    veil_secret_key *sk;
    veil_public_key *pk; /* a joint key set (multi-party, party.c): the joint public key, and sk NULL */
    /* each back end reads only its own part */
    struct {
        double *box_lo, *box_hi; /* CKKS inference: each input's range (meta.in_width values); meta.bound */
    } ckks;
    struct {
        veil_crt_part crt[VEIL_CRT_MAX]; /* exact inference: moduli 1 .. meta.crt_count - 1 (0 is the above) */
    } bgv;
};

struct veil_eval_keys {
    veil_ml_meta meta;
    veil_params *params;
    veil_context *ctx;
    atomic_int *refs;
    veil_public_key *pk;
    veil_switch_key *relin;
    veil_switch_key **galois;
    size_t n_galois;
    /* bootstrapping's sparse-secret encapsulation key, the bundle's last object when there (veil/circuits.h);
     * bootstrapping's Galois keys are among galois */
    veil_ckks_encapsulation_key *encaps;
    struct {
        veil_crt_part crt[VEIL_CRT_MAX]; /* exact inference: moduli 1 .. meta.crt_count - 1 */
    } bgv;
    /*
     * How the public keys are saved: 0 (uncompressed), or VEIL_SAVE_COMPRESS for keys loaded from a bundle of
     * an earlier Veil, which compressed them: the key id is a hash of their stored bytes, so a bundle saved
     * again keeps their form and its id.
     */
    unsigned pk_options;
    veil_ml_boot boot; /* the plan's bootstraps (count 0: none), from the bundle's metadata extension */
    /* CKKS inference: the inputs' range the keys were planned for (in_width each), from the bundle's metadata
     * extension (its outputs' bound in meta.bound); NULL in a bundle of an earlier Veil without bootstraps */
    double *boot_lo, *boot_hi;
};

/*
 * An encrypted model's weights (encmodel.c, docs/marketplace.md): for each affine stage s, w[s] holds its
 * out_width x in_width weights and b[s] its out_width biases, one ciphertext each, the value in every slot,
 * at the level of the stage's input and the scale of that level's prime q_l (as the plaintext path's
 * integers round(w q_l): the rescale after the product brings it back to the input's scale); NULL for the
 * other stages. Under the public key of the eval keys whose context they were loaded in.
 */
struct veil_model_enc {
    veil_context *ctx; /* the eval keys' context, held (refs) so that the model may outlive the keys */
    veil_params *params;
    atomic_int *refs;
    uint8_t key_id[VEIL_ID_BYTES];
    size_t n_stages;
    veil_ckks_ciphertext ***w, ***b;
    /*
     * The latency packing (packing VEIL_PACKING_LATENCY): w[s] holds instead the stage's n_w[s] diagonals as
     * prepare_latency (ckks_infer.c) would encode them (pre-rotated by their giant step, lanes filled), NULL
     * where a diagonal is zero in every lane, and b[s][0] the bias at every copy of each row in lane 0.
     */
    veil_packing packing;
    size_t *n_w;
};

/* Throughput: batches x width ciphertexts, cts[b * width + f]; latency: one per row. */
struct veil_ciphertexts {
    veil_ml_meta meta;
    const veil_context *ctx; /* the keys' context: a set does not outlive its keys */
    veil_ckks_ciphertext **cts;
    size_t count;
    /* exact inference: count ciphertexts, modulus m's batches x width at bcts[m * count / crt_count] */
    veil_bgv_ciphertext **bcts;
    const veil_context *bctx[VEIL_CRT_MAX];
    /* a differentially private release (dp_noise.c): the noise it carries, saved after the metadata */
    int has_dp;
    veil_dp_release dp;
};
/* The release's record after a set's metadata: "VEIL-DP1" and six doubles (dp_noise.c). */
#define VEIL_DP_TAIL_BYTES 56
void veil_ml_dp_encode(uint8_t out[VEIL_DP_TAIL_BYTES], const veil_dp_release *dp);
/* 1 when the metadata ends with a release's record (validated into *dp; -1 and err when it is invalid), else 0. */
int veil_ml_dp_tail(const uint8_t *meta, size_t meta_len, veil_dp_release *dp, veil_error *err);

/*
 * Latency packing, an affine stage of m outputs over S slots: K = min(S, the power of two at least m)
 * diagonals, extended over the S slots (K < S: the hybrid method of Juvekar et al., GAZELLE 2018, section
 * 5.2): d_k[i] = W[i mod K][(i + k) mod S]. Then sum_k d_k * rot(x, k) holds, at slot i, the part of row
 * i mod K over the columns = i + k, and rotating by K, 2K, .. S/2 and adding sums the parts.
 */
size_t veil_latency_diagonals(size_t out_width, size_t slots);
double veil_latency_diag(const veil_stage *s, size_t slots, size_t K, size_t k, size_t i);
/*
 * The latency packing's layout over the N/2 = S R slots: value s of lane b sits at slot s R + b, so that a
 * rotation by i R turns every lane by i values, cyclically over S. The data owner fills lane b with its input
 * turned by b S / L values (L = min(R, S)); the first affine stage with S diagonals (any wider than S/2)
 * takes diagonals b S/L .. (b + 1) S/L - 1 in lane b, L times fewer products and rotations, and log2(L)
 * rotations add the lanes. Every result is read in lane 0. The lanes a stage spreads its diagonals over
 * (1 or L):
 */
size_t veil_latency_lanes(const veil_program *p, size_t stage, size_t slots, size_t half_n);
/* Fills the plan's info from its parameters, packing, slots, batch, scale and rotations (not depth or sizes). */
void veil_plan_info_from_params(veil_plan *plan);
/* The time model's key switch and rescale at a level (plan.c, docs/ml.md "Estimates"), single thread. */
double veil_key_switch_seconds(const veil_plan_info *info, size_t level);
double veil_rescale_seconds(const veil_plan_info *info, size_t level);
double veil_hoisted_rotation_seconds(const veil_plan_info *info, size_t level); /* after the first of a group */
/* The time model of a CKKS inference plan (throughput or latency): server seconds per batch or sample. */
double veil_plan_ckks_seconds(const veil_plan *plan, const veil_program *p);
/* The latency packing's diagonals, encoded once per evaluator (bytes). */
double veil_plan_diagonal_bytes(const veil_plan *plan, const veil_program *p);
/*
 * The memory model (plan.c): the bytes of a ciphertext in memory at a level, and the plan's two peaks from the
 * computation's working set (work_bytes): info.estimated_memory_bytes (the server, its keys loaded from the
 * file) and info.keygen_memory_bytes (veil keygen, keys written one at a time). Needs the sizes first. The
 * keys: `groups` parameter sets (plan->params, then plan->crt_params[1 ..]) of switch_keys key-switching keys
 * each; keys_in_memory: key generation keeps them and writes the bundle from memory (else one at a time).
 */
double veil_ciphertext_memory(const veil_params *params, size_t level);
void veil_plan_memory(veil_plan *plan, size_t groups, double switch_keys, int keys_in_memory, double work_bytes);
/* Training: the stored size of a data set of these rows (veil_train_encrypt's, levels included). */
size_t veil_train_data_bytes(const veil_plan *plan, size_t rows);
veil_status veil_ciphertexts_alloc(veil_ciphertexts **out, const veil_context *ctx, const veil_ml_meta *meta,
                                   size_t count, veil_error *err);
size_t veil_ciphertexts_batches(const veil_ml_meta *meta);

void veil_crt_part_clear(veil_crt_part *part);

/* ---- the back ends -------------------------------------------------------------------------------- */

/*
 * What a scheme's back end does, one table per scheme (veil_ml_ckks_backend in ckks_infer.c,
 * veil_ml_bgv_backend in bgv_infer.c). api.c checks the arguments the public calls share and picks the
 * table from the scheme of the plan, keys or set; the back end does the rest. An evaluator's state is the
 * back end's own.
 */
typedef struct veil_ml_backend {
    /* fills a plan whose common fields are set (model hash, packing, widths, final operation) */
    veil_status (*plan)(veil_plan *plan, const veil_model *m, const veil_plan_request *req, veil_error *err);
    /* the stored size of an inference input set of `rows` rows (veil_plan_input_bytes) */
    size_t (*input_bytes)(const veil_plan *plan, size_t rows);
    veil_status (*keygen)(veil_keyset **secret_out, veil_eval_keys **eval_out, const veil_plan *plan, veil_prng *prng,
                          veil_progress_fn progress, void *progress_arg, veil_error *err);
    veil_status (*keygen_to_file)(veil_keyset **secret_out, const veil_plan *plan, const char *eval_path,
                                  veil_prng *prng, veil_progress_fn progress, void *progress_arg, veil_error *err);
    veil_status (*keyset_save)(veil_buffer *out, const veil_keyset *k, veil_error *err);
    /* k holds the metadata and the first parameter set; c the set's objects */
    veil_status (*keyset_load)(veil_keyset *k, const veil_set_contents *c, veil_error *err);
    veil_status (*eval_keys_save)(veil_buffer *out, const veil_eval_keys *k, veil_error *err);
    veil_status (*eval_keys_load)(veil_eval_keys *k, const veil_set_contents *c, veil_error *err);
    veil_status (*ciphertexts_save)(veil_buffer *out, const veil_ciphertexts *cts, veil_error *err);
    /* set is empty (made by veil_ciphertexts_alloc); ctx[m] the keys' context of modulus m; expect: per group */
    veil_status (*ciphertexts_load)(veil_ciphertexts *set, const veil_set_contents *c, const veil_context *const *ctx,
                                    size_t expect, veil_error *err);
    veil_status (*encrypt)(veil_ciphertexts **out, const veil_keyset *k, const double *in, size_t rows,
                           veil_prng *prng, veil_error *err);
    /* opts: NULL or checked by api.c */
    veil_status (*decrypt)(double *out, double *raw_out, const veil_keyset *k, const veil_ciphertexts *cts,
                           const veil_decrypt_options *opts, veil_error *err);
    /* the model and keys were checked against each other */
    veil_status (*evaluator_new)(void **state, const veil_model *model, const veil_eval_keys *keys, size_t threads,
                                 veil_error *err);
    /* in was checked: inputs, loaded with the evaluator's keys */
    veil_status (*evaluator_run)(const void *state, veil_ciphertexts **out, const veil_ciphertexts *in,
                                 veil_progress_fn progress, void *progress_arg, veil_error *err);
    void (*evaluator_free)(void *state);
} veil_ml_backend;

extern const veil_ml_backend veil_ml_ckks_backend;
extern const veil_ml_backend veil_ml_bgv_backend;

/*
 * The CKKS back end's operations (its table, ckks_backend.c): plans (ckks_plan.c, whose sizes training and
 * plan files share), keys (ckks_keys.c), sets (ckks_io.c) and the evaluator (ckks_infer.c).
 */
veil_status veil_ckks_plan(veil_plan *plan, const veil_model *m, const veil_plan_request *req, veil_error *err);
void veil_ckks_plan_sizes(veil_plan *plan); /* the exact stored sizes, into the info */
/* The info's depth, ciphertexts in and out per batch or sample, outputs' bound and inputs' range (ckks_steps.c). */
void veil_ckks_plan_info_shape(veil_plan *plan, const veil_program *p);
/* The latency packing's rotation steps into plan->steps (its slots and parameters set; boot.count: periodic). */
veil_status veil_ckks_plan_latency_steps(veil_plan *plan, const veil_program *p, veil_error *err);
/* The widest vector of the program (its inputs, every stage's inputs and outputs): ckks_steps.c. */
size_t veil_program_max_width(const veil_program *p);
size_t veil_ckks_plan_input_bytes(const veil_plan *plan, size_t rows);
/*
 * Bootstrapping's keys in a bundle (ckks_keys.c): the Galois keys of bootstrapping come after the plan's
 * rotations (plan->train.boot_elements), the encapsulation key (weight VEIL_ML_BOOT_WEIGHT) last.
 */
#define VEIL_ML_BOOT_WEIGHT 32 /* the ephemeral secret's Hamming weight (as the presets, docs/bootstrapping.md) */
size_t veil_ml_plan_galois_count(const veil_plan *plan);
int veil_ml_plan_has_encaps(const veil_plan *plan);
veil_status veil_ml_boot_galois_keys(const veil_context *ctx, const veil_secret_key *sk, const uint64_t *elements,
                                     size_t count, veil_prng *prng,
                                     veil_status (*sink)(void *, veil_switch_key *, veil_error *), void *arg,
                                     veil_error *err);
/*
 * The bits by which the last stage (when affine) lowers its outputs' scale, so that outputs bounded by `bound`
 * fit the modulus of their level without a first prime beyond 50 bits (the vector kernels' limit): its weights
 * are taken at q_l / 2^shift instead of q_l. The plan checks the outputs at that scale and the evaluator takes
 * the same shift from the keys (their packing, parameters, scale and outputs' bound). At most 8 bits, the
 * outputs' scale at least 2^24; 0 when nothing is lacking, and in the latency packing.
 */
unsigned veil_ckks_output_shift(const veil_program *p, veil_packing packing, const veil_params *params,
                                unsigned scale_bits, double bound);
/*
 * The shift the keys' plan gave the last stage (veil_ckks_output_shift with the outputs' bound the bundle
 * carries), as the evaluator and encrypt-model take it: the same for keys made in memory and keys loaded from
 * a file. Keys without the bound (a bundle of an earlier Veil) are refused where the plan may have shifted.
 */
veil_status veil_ml_ckks_keys_output_shift(unsigned *shift, const veil_program *p, const veil_eval_keys *k,
                                           veil_error *err);
veil_status veil_ml_ckks_keygen(veil_keyset **secret_out, veil_eval_keys **eval_out, const veil_plan *plan,
                                veil_prng *prng, veil_progress_fn progress, void *progress_arg, veil_error *err);
veil_status veil_ml_ckks_keygen_to_file(veil_keyset **secret_out, const veil_plan *plan, const char *eval_path,
                                        veil_prng *prng, veil_progress_fn progress, void *progress_arg,
                                        veil_error *err);
veil_status veil_ml_ckks_keyset_save(veil_buffer *out, const veil_keyset *k, veil_error *err);
veil_status veil_ml_ckks_keyset_load(veil_keyset *k, const veil_set_contents *c, veil_error *err);
veil_status veil_ml_ckks_eval_keys_save(veil_buffer *out, const veil_eval_keys *k, veil_error *err);
veil_status veil_ml_ckks_eval_keys_load(veil_eval_keys *k, const veil_set_contents *c, veil_error *err);
veil_status veil_ml_ckks_ciphertexts_save(veil_buffer *out, const veil_ciphertexts *cts, veil_error *err);
veil_status veil_ml_ckks_ciphertexts_load(veil_ciphertexts *set, const veil_set_contents *c,
                                          const veil_context *const *ctx, size_t expect, veil_error *err);
veil_status veil_ml_ckks_encrypt(veil_ciphertexts **out, const veil_keyset *k, const double *in, size_t rows,
                                 veil_prng *prng, veil_error *err);
veil_status veil_ml_ckks_decrypt(double *out, double *raw_out, const veil_keyset *k, const veil_ciphertexts *cts,
                                 const veil_decrypt_options *opts, veil_error *err);
/*
 * Flooded decryption of a CKKS set's ciphertexts (veil_decrypt_options, ckks_io.c): veil_ml_flood_size sizes
 * one noise width for all of them (or refuses), veil_ml_decrypt_ct decrypts one, flooded when fl->on.
 */
typedef struct veil_ml_flood {
    int on;
    veil_ckks_flooding f;
    double log2_sigma;
    veil_prng *prng;
} veil_ml_flood;
veil_status veil_ml_flood_size(veil_ml_flood *fl, const veil_keyset *k, veil_ckks_ciphertext *const *cts, size_t count,
                               const veil_decrypt_options *opts, veil_error *err);
veil_status veil_ml_decrypt_ct(veil_ckks_plaintext *pt, const veil_keyset *k, const veil_ckks_ciphertext *ct,
                               const veil_ml_flood *fl, veil_error *err);
/*
 * CKKS inference outputs from their plaintexts: get(arg, pt, i) writes the plaintext of ciphertext i (a key
 * holder's decryption, or a joint one); the outputs are checked against their bound and the final operation
 * applied (veil_ml_ckks_decrypt). check_outputs: the set is outputs of the key set's keys.
 */
typedef veil_status (*veil_ml_plaintext_fn)(void *arg, veil_ckks_plaintext *pt, size_t i, veil_error *err);
/* The plaintexts of a key holder's decryption of a set's ciphertexts (flooded when fl.on): get is
 * veil_ml_key_source_get, arg the source (ckks_io.c; the outputs' and a trained model's decryption). */
typedef struct veil_ml_key_source {
    const veil_keyset *k;
    const veil_ciphertexts *set;
    veil_ml_flood fl;
} veil_ml_key_source;
veil_status veil_ml_key_source_get(void *arg, veil_ckks_plaintext *pt, size_t i, veil_error *err);
veil_status veil_ml_ckks_check_outputs(const veil_keyset *k, const veil_ciphertexts *cts, veil_error *err);
veil_status veil_ml_ckks_decode(double *out, double *raw_out, const veil_keyset *k, const veil_ciphertexts *cts,
                                veil_ml_plaintext_fn get, void *arg, veil_error *err);
/*
 * Trained models (train.c): check_model: the set is a trained model of the key set's keys; weights: its
 * weights from its ciphertexts' plaintexts (get: a key holder's decryption, or a joint one), every set's
 * scaling checked against the first's, unscaled to the original features (veil_train_decrypt).
 */
veil_status veil_ml_train_check_model(const veil_keyset *k, const veil_ciphertexts *model, veil_error *err);
/* What the parties decrypt jointly (party.c, threshold.c): a set of the key set's outputs, or a trained model. */
veil_status veil_ml_party_check_decryptable(const veil_keyset *joint, const veil_ciphertexts *cts, veil_error *err);
veil_status veil_ml_train_weights(double *weights, const veil_keyset *k, const veil_ciphertexts *model,
                                  veil_ml_plaintext_fn get, void *arg, veil_error *err);
/*
 * Multi-party (party.c, ckks_keys.c): a joint key set holds the joint public key (pk) instead of a secret key;
 * its metadata is the plan's. The joint bundle: the key set's public key and the given relinearization and
 * Galois keys (of the key set's context).
 */
veil_status veil_ml_keyset_meta(veil_keyset *ks, const veil_plan *plan, veil_error *err);
veil_status veil_ml_ckks_eval_keys_joint(veil_buffer *out, const veil_keyset *joint, const veil_switch_key *relin,
                                         veil_switch_key *const *galois, size_t n_galois, veil_error *err);
veil_status veil_ml_ckks_evaluator_new(void **state, const veil_model *model, const veil_eval_keys *keys,
                                       size_t threads, veil_error *err);
veil_status veil_ml_ckks_evaluator_run(const void *state, veil_ciphertexts **out, const veil_ciphertexts *in,
                                       veil_progress_fn fn, void *arg, veil_error *err);
void veil_ml_ckks_evaluator_free(void *state);

/* ---- bootstrapping in CKKS inference (ckks_boot.c) ------------------------------------------------- */

/* The bootstrapping plan of a model (veil_ckks_plan calls it when the model needs it or req->bootstrap). */
veil_status veil_ckks_plan_boot(veil_plan *plan, const veil_model *m, const veil_plan_request *req, veil_error *err);
/* The Galois elements the plan's bootstraps need, for its parameters and slots, into *out (freed by the caller). */
veil_status veil_ml_boot_elements(const veil_context *ctx, const veil_ml_boot *b, uint64_t **out, size_t *count,
                                  veil_error *err);
/*
 * The metadata extension of a bundle with bootstraps (after the 128 bytes): its size, encoding and decoding. It
 * carries the schedule and the inputs' range it was planned for (w inputs, lo and hi, and the outputs' bound, as
 * veil_ml_range_encode), so that the evaluator checks the schedule against the model (veil_ml_boot_check).
 * Decoding allocates *lo and *hi (freed by the caller, also on failure).
 */
size_t veil_ml_boot_ext_bytes(const veil_ml_boot *b, size_t w);
void veil_ml_boot_ext_encode(uint8_t *out, const veil_ml_boot *b, size_t w, double bound, const double *lo,
                             const double *hi);
veil_status veil_ml_boot_ext_decode(veil_ml_boot *b, const uint8_t *in, size_t len, size_t n_stages_max, size_t w,
                                    double *bound, double **lo, double **hi, veil_error *err);
/*
 * A schedule checked against a model: every point after a stage that can be scaled, whose values over the inputs'
 * box [lo, hi] (interval arithmetic, zero_slots as the latency packing's) lie within 2^shift, so that the
 * bootstrap reads them in [-1, 1]; every stage within the levels a bootstrap leaves and its peak within the
 * modulus of its level. Fills b->bound. VEIL_ERR_MISMATCH (or ARGUMENT) naming the point or layer otherwise.
 */
veil_status veil_ml_boot_check(const veil_program *p, veil_ml_boot *b, const double *lo, const double *hi,
                               const veil_params *params, unsigned scale_bits, int zero_slots, veil_error *err);
/*
 * The program the evaluator runs: a copy of p with the stage before each bootstrap divided by 2^shift (its
 * weights and bias, or its polynomial's coefficients). Checked against the keys' plan: stages in range and
 * foldable. Cleared with veil_program_clear.
 */
veil_status veil_ml_boot_program(veil_program *out, const veil_program *p, const veil_ml_boot *b, veil_error *err);
/*
 * A plan loaded from a file (planfile.c): its bootstrapping keys' Galois elements (boot_galois) from its
 * parameters, schedule and rotations, the schedule's level checked against the bootstrapper's.
 */
veil_status veil_ml_boot_plan_keys(veil_plan *plan, veil_error *err);
/* The time model of one bootstrap (seconds, single thread) at ring degree n with these slots. */
double veil_ml_boot_seconds(size_t n, size_t slots);
/* A bootstrap's worst error on [-1, 1], in bits, by its slots (the balanced preset's, measured). */
double veil_ml_boot_error_bits(size_t slots);

/* The BGV back end's plan (bgv_plan.c; its table is in bgv_infer.c). */
veil_status veil_bgv_plan(veil_plan *plan, const veil_model *m, const veil_plan_request *req, veil_error *err);
size_t veil_bgv_plan_input_bytes(const veil_plan *plan, size_t rows);

/* Builds a model from a parsed graph (moved in); dims NULL: the input's declared shape, batch as 1. */
veil_status veil_model_from_graph(veil_model **out, veil_graph *g, const uint8_t *data, size_t len,
                                  const int64_t *dims, size_t rank, const veil_model_options *opts, veil_error *err);

/* The receiver's public key in a joint key set's context, its keys checked to be for the same plan (party.c). */
veil_status veil_ml_party_receiver_key(veil_public_key **out, const veil_keyset *joint, const veil_eval_keys *receiver,
                                       veil_error *err);

#endif
