/*
 * veil/ml.h - encrypted inference of ONNX models with CKKS.
 *
 * The four calls of the mission:
 *   veil_keyset_generate     the data owner: a secret key set and the evaluation keys for a model's plan;
 *   veil_ciphertexts_encrypt the data owner: rows of features into a ciphertext set;
 *   veil_model_evaluate      the server: the model on the ciphertexts, with only the evaluation keys;
 *   veil_ciphertexts_decrypt the data owner: the model's outputs, with the final activation applied.
 *
 * A model is an ONNX file. Veil lowers its graph to a program on one sample's flattened features: affine
 * stages (every run of Gemm, MatMul, Conv, AveragePool, GlobalAveragePool, Add, Sub, Mul and Div by
 * constants, Neg, BatchNormalization, Pad, and the shape operators (Reshape, Flatten, Squeeze, Unsqueeze,
 * Concat, Slice, Transpose, Cast to float), folded into one matrix and bias), squares (Mul of a tensor by
 * itself, Pow 2), and polynomial approximations of Sigmoid, Tanh and Relu inside the network (Chebyshev,
 * over a range given or covering the calibration data and the worst case over the inputs' range). A final Sigmoid, Softmax, LogSoftmax or ArgMax is applied by the data
 * owner after decryption, exactly. Anything else is refused with the operator's and the node's names (a node
 * without a name by its index in the graph's node list: "node #3 (Relu)").
 *
 * Exact inference (BGV): a quantized model, whose affine layers have integer weights and biases, runs on
 * integer inputs in the BGV scheme and decrypts to exactly the integer computation. Its ONNX file is the
 * integer network, optionally ending with a Mul (or Div) by one scalar constant, the dequantization scale,
 * which the data owner applies after decryption. The plan propagates the inputs' integer range through the
 * layers to the worst-case bound of every output and chooses the plaintext moduli (one, or up to four
 * combined by the CRT) so that no output can wrap around; the outputs must stay below 2^62.
 *
 * The plan chooses the CKKS parameters (128-bit security by default), the packing and the exact rotation
 * keys:
 *   throughput  one sample per slot, each feature in its own ciphertext (CryptoNets); no rotations;
 *   latency     one sample per ciphertext, its features in the slots; matrix-vector products by the
 *               diagonal method with baby-step giant-step and hoisted rotations (Halevi-Shoup 2014, 2018),
 *               the hybrid method for narrow layers and the slots' spare copies used as lanes (docs/ml.md).
 */
#ifndef VEIL_ML_H
#define VEIL_ML_H

#include <stddef.h>
#include <stdint.h>
#include "veil/core.h"
#include "veil/params.h"
#include "veil/serial.h"

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

typedef struct veil_model veil_model;

/* How non-polynomial activations inside the network are approximated. Zero-initialised: the defaults. */
typedef struct veil_model_options {
    size_t degree;          /* Chebyshev degree of approximations; 0: 15 */
    int have_range;         /* use [range_lo, range_hi] for every approximated activation's input */
    double range_lo, range_hi;
    /*
     * rows x calibration_width samples: each input's range over them (widened by half its span each side) is the box
     * the plan bounds every value of the circuit from, and the activations' ranges cover both what the rows
     * reach and the worst case over that box
     */
    const double *calibration;
    size_t calibration_rows;
    size_t calibration_width;  /* must equal the model's input width (0: taken to be it) */
    /*
     * Evaluate a final Sigmoid on the server as the degree-3 polynomial 0.5 + 0.15012 z - 0.0015930 z^3 (the
     * approximation of the logistic-regression benchmarks of SEAL and OpenFHE, good for |z| < 8) instead of
     * leaving it to the data owner: the server then returns approximate probabilities.
     */
    int server_sigmoid;
    /*
     * Lower for exact inference (veil_plan_request.scheme = VEIL_ML_BGV): affine layers and squares only,
     * every weight and bias an integer (|weight| < 2^20) once a trailing scalar Mul or Div (the output scale)
     * is taken out; refused otherwise, naming the layer.
     */
    int integer;
    /*
     * Keep a Chebyshev approximation whose largest error over its range exceeds a tenth of the activation's
     * range there (refused otherwise, naming the degree that would meet it).
     */
    int force_approximation;
} veil_model_options;

/* Loads an ONNX model (the bytes of a ModelProto). opts may be NULL. */
veil_status veil_model_load_onnx(veil_model **out, const uint8_t *data, size_t len, const veil_model_options *opts,
                                 veil_error *err);
veil_status veil_model_load_onnx_file(veil_model **out, const char *path, const veil_model_options *opts,
                                      veil_error *err);
void veil_model_free(veil_model *model);

size_t veil_model_input_width(const veil_model *model);  /* features per sample */
size_t veil_model_output_width(const veil_model *model); /* values per sample after the final operation */
size_t veil_model_raw_width(const veil_model *model);    /* values per sample before it (the server's) */
/*
 * The model's final operation, which the data owner applies after decryption (a Sigmoid evaluated on the server,
 * options.server_sigmoid, is not one: NONE). An output row holds its result: probabilities (SIGMOID, SOFTMAX),
 * log-probabilities, or the class index (ARGMAX, one value).
 */
typedef enum veil_final_op { VEIL_FINAL_NONE = 0, VEIL_FINAL_SIGMOID, VEIL_FINAL_SOFTMAX, VEIL_FINAL_LOGSOFTMAX,
                             VEIL_FINAL_ARGMAX } veil_final_op;
veil_final_op veil_model_final_op(const veil_model *model);
/* Lines describing the lowering (stages, approximations and their errors); never NULL. */
const char *veil_model_report(const veil_model *model);
/*
 * The plaintext reference: rows samples of input width through the ONNX graph in float64, the activations
 * inside the network computed exactly (not what the encrypted model returns: see veil_model_run_program).
 */
veil_status veil_model_run_plain(const veil_model *model, double *out, const double *in, size_t rows, veil_error *err);
/*
 * What the encrypted model returns, in float64: the lowered program (its polynomial approximations, a
 * server-side Sigmoid's polynomial), then the final operation. The encrypted result equals it up to CKKS's
 * approximation error (docs/ml.md).
 */
veil_status veil_model_run_program(const veil_model *model, double *out, const double *in, size_t rows,
                                   veil_error *err);
/*
 * Exact models (loaded with options.integer): the integer computation the server's BGV result equals, on
 * integer inputs, before the output scale and the final operation (rows x the program's output width).
 * VEIL_ERR_ARGUMENT when a value leaves the int64 range.
 */
veil_status veil_model_run_integer(const veil_model *model, int64_t *out, const int64_t *in, size_t rows,
                                   veil_error *err);
/* The output scale of an exact model (1 when the graph has none, and for approximate models). */
double veil_model_output_scale(const veil_model *model);
/* Largest |x| by which the input row exceeds the calibrated range of an approximated activation (0: none). */
veil_status veil_model_range_excess(const veil_model *model, const double *in, size_t rows, double *excess,
                                    veil_error *err);

/* ---- the plan ----------------------------------------------------------------------------------- */

/* TRAINING: keys and sets made for encrypted training (veil/train.h); the inference calls refuse them. */
typedef enum veil_packing { VEIL_PACKING_THROUGHPUT = 0, VEIL_PACKING_LATENCY = 1, VEIL_PACKING_TRAINING = 2 } veil_packing;

typedef enum veil_ml_scheme { VEIL_ML_CKKS = 0, VEIL_ML_BGV = 1 } veil_ml_scheme;

#define VEIL_CRT_MAX 4 /* plaintext moduli of exact inference */

typedef struct veil_plan_request {
    veil_packing packing;
    size_t batch;          /* throughput: samples per call (0: as many as the slots hold) */
    veil_security security; /* 128 bits when zero */
    /* BGV: exact inference of an integer model (throughput packing), on integer inputs in [input_lo, input_hi] */
    veil_ml_scheme scheme;
    int64_t input_lo, input_hi;
    /*
     * CKKS: the inputs' range, which encryption enforces and from which the plan bounds every value the
     * circuit computes (interval arithmetic), choosing the moduli with that headroom or refusing, naming the
     * layer. Taken from, in order: box_lo/box_hi (one interval per input value), have_range (one interval for
     * all), the model's calibration rows (each input's range over them, widened by half its span each side), or else the widest
     * [-R, R] the smallest parameters guarantee.
     */
    const double *box_lo, *box_hi;
    int have_range;
    double range_lo, range_hi;
    /*
     * CKKS: room for flooded decryption of the outputs (veil_decrypt_options.flood, for results shown to
     * others): a 2^60 scale (a 61-bit first prime) and one more level, so that the outputs keep about 40 bits
     * of precision under flooding's noise (docs/ml.md); weights of any size are carried by their residues.
     * Costs a larger ring and 60-bit primes (veil plan shows it). Ignored by exact (BGV) plans.
     */
    int flood;
    /*
     * CKKS bootstrapping (docs/bootstrapping.md, "In the ML layer"): 0, the plan bootstraps only when the model
     * needs more levels than any leveled parameter set holds; 1, always (a bootstrapping parameter set even for
     * a shallow model). Bootstrapping plans use either packing (the latency packing: one sparse bootstrap of
     * the sample's slots per point), 128-bit security (the boot-n65536-balanced preset), or VEIL_SECURITY_NONE
     * for the small insecure test set (N = 2^10), which only bootstrapping plans accept.
     */
    int bootstrap;
    /*
     * CKKS: an output scale of at least 2^min_scale_bits (0: the ordinary choice; at most 60): room for the
     * smudging noise of a joint decryption (veil/party.h, docs/multiparty.md, "Smudging"), which moves an
     * output by about 6 sqrt(N_parties N / 2) 2^bits / scale whatever the ciphertext's error. The scale is
     * then exactly that, and the first prime grows (up to 61 bits) for the outputs; the plan is refused when
     * none holds them. `veil party init` asks for the scale its smudging bits need.
     */
    unsigned min_scale_bits;
} veil_plan_request;

typedef struct veil_plan_info {
    veil_packing packing;
    size_t depth;            /* levels used */
    size_t n, slots;         /* ring degree; slots per ciphertext (samples in throughput, padded width in latency) */
    size_t batch;            /* samples per ciphertext set */
    unsigned scale_bits, log_qp;
    size_t q_count, p_count, dnum;
    size_t rotations;        /* Galois keys */
    size_t in_ciphertexts, out_ciphertexts; /* per batch (throughput) or per sample (latency) */
    /*
     * Exact stored sizes (bytes, from the parameters and docs/wire-format.md): the evaluation-key bundle as
     * veil_keyset_generate writes it, and one fresh input ciphertext (see veil_plan_input_bytes for whole sets)
     */
    double eval_key_bytes, ciphertext_bytes;
    /* estimates (docs/ml.md, "Estimates": their accuracy); 0 for a plan loaded from a file, which has no model */
    double estimated_seconds; /* server time per batch (throughput) or per sample (latency), single thread */
    double estimated_memory_bytes; /* the server's peak (see keygen_memory_bytes below) */
    /* BGV: the plaintext moduli, and the bits of their product and of the outputs' worst-case bound */
    veil_ml_scheme scheme;
    size_t crt_count;
    uint64_t plain_moduli[VEIL_CRT_MAX];
    double modulus_bits, bound_bits;
    /* CKKS: the hull of the inputs' range, and the outputs' worst-case |value| over it */
    double input_lo, input_hi, output_bound;
    /*
     * The memory peak of key generation written to a file one key at a time (veil_keyset_generate_to_file, `veil
     * keygen`), an estimate; estimated_memory_bytes is the server's (evaluation or training of one batch,
     * the keys loaded from their file). 0 for a plan loaded from a file.
     */
    double keygen_memory_bytes;
    /*
     * CKKS bootstrapping: the points where the plan bootstraps (after the stages veil_plan_bootstrap_point
     * names; 0: a leveled plan), the bootstraps one batch takes (points x the ciphertexts at each), their part of
     * estimated_seconds, the bootstrapping keys' part of eval_key_bytes (Galois keys and the encapsulation
     * key), the level a bootstrap returns to, and a bootstrap's worst error on [-1, 1] in bits for the plan's
     * slots (measured with the balanced preset at N = 2^16: 14.7 with up to 32 slots, half a bit less per
     * doubling); each point's shift keeps that error times 2^shift within 2^-5.
     */
    size_t bootstrap_points, bootstraps, bootstrap_levels;
    double bootstrap_seconds, bootstrap_key_bytes, bootstrap_error_bits;
    /*
     * The choice of packing for a model that bootstraps: the model planned in both packings, each's estimated
     * server time (single thread, bootstraps included): the latency packing's per sample, and the throughput
     * packing's per batch of throughput_batch samples (this plan's batch, or a full ciphertext's slots when this
     * plan is the latency one). 0 where that packing is refused for the model. Throughput pays from
     * throughput_batch_seconds / latency_sample_seconds samples on.
     */
    double latency_sample_seconds, throughput_batch_seconds;
    size_t throughput_batch;
} veil_plan_info;

typedef struct veil_plan veil_plan;
veil_status veil_model_plan(veil_plan **out, const veil_model *model, const veil_plan_request *request,
                            veil_error *err);
void veil_plan_free(veil_plan *plan);
void veil_plan_get_info(const veil_plan *plan, veil_plan_info *info);
/*
 * Bootstrap point k (k < info.bootstrap_points): the 0-based program stage after which the values are
 * bootstrapped, the stage's description, and the power of two 2^shift they are divided by before (folded into
 * that stage) and multiplied by after, so that they lie in [-1, 1] there (their bound from the plan's interval
 * arithmetic in *bound). VEIL_ERR_ARGUMENT for k out of range.
 */
veil_status veil_plan_bootstrap_point(const veil_plan *plan, size_t k, size_t *stage, const char **what, int *shift,
                                      double *bound, veil_error *err);
/*
 * A plan as a file: the parameters, the packing, the rotation steps, the model's hash and widths, and a
 * bootstrapping plan's schedule. A server gives it to clients that do not hold the model, so that they generate
 * matching keys (veil_keyset_generate). Saving and loading refuse parameters without a security level.
 */
veil_status veil_plan_save(veil_buffer *out, const veil_plan *plan, veil_error *err);
veil_status veil_plan_load(veil_plan **out, const uint8_t *data, size_t len, veil_error *err);
/*
 * The exact stored size of the set of encrypted inputs for `rows` rows (a training data set for training
 * plans) as veil_ciphertexts_encrypt (veil_train_encrypt) and veil_ciphertexts_save make it; 0 when rows is 0.
 */
size_t veil_plan_input_bytes(const veil_plan *plan, size_t rows);
/* The rotation steps whose Galois keys the plan needs (count written to *count; at most max). */
size_t veil_plan_rotations(const veil_plan *plan, long *steps, size_t max);

/* ---- keys --------------------------------------------------------------------------------------- */

/* Progress of long calls: (done, total) units of work. */
typedef void (*veil_progress_fn)(void *arg, size_t done, size_t total);

typedef struct veil_keyset veil_keyset;       /* the data owner's: secret key, parameters, plan */
typedef struct veil_eval_keys veil_eval_keys; /* the server's: public, relinearization and Galois keys */

/*
 * A key set for the plan, and its evaluation keys (public, relinearization, exactly the plan's Galois keys).
 * The two share one context, so that ciphertexts move between them in memory; loaded from files, each has
 * its own, and a ciphertext set must be loaded with the keys that will use it. prng NULL: the OS CSPRNG.
 * progress, when not NULL, is called with (done, total): one unit per key made.
 */
veil_status veil_keyset_generate(veil_keyset **secret_out, veil_eval_keys **eval_out, const veil_plan *plan,
                                 veil_prng *prng, veil_progress_fn progress, void *progress_arg, veil_error *err);
/*
 * As veil_keyset_generate, for a data owner who writes the evaluation keys to a file rather than keeping
 * them: the bundle goes to eval_path (created atomically: complete, or not at all) one key at a time, each
 * freed once written, so that memory holds one evaluation key instead of all of them (training's keys are
 * gigabytes). The file is byte for byte what veil_eval_keys_save writes. Returns the key set only.
 */
veil_status veil_keyset_generate_to_file(veil_keyset **secret_out, const veil_plan *plan, const char *eval_path,
                                         veil_prng *prng, veil_progress_fn progress, void *progress_arg,
                                         veil_error *err);
void veil_keyset_free(veil_keyset *keys);
void veil_eval_keys_free(veil_eval_keys *keys);

/* Files: a key set (holds the secret key: write it with mode 0600) and the evaluation-key bundle. */
veil_status veil_keyset_save(veil_buffer *out, const veil_keyset *keys, veil_error *err);
veil_status veil_keyset_load(veil_keyset **out, const uint8_t *data, size_t len, veil_error *err);
veil_status veil_eval_keys_save(veil_buffer *out, const veil_eval_keys *keys, veil_error *err);
/* Refuses a bundle that holds a secret key, or any object but evaluation keys. */
veil_status veil_eval_keys_load(veil_eval_keys **out, const uint8_t *data, size_t len, veil_error *err);
/* 32 bytes naming a key set (a hash of its public key): equal in the key set, its bundle and its ciphertexts. */
const uint8_t *veil_keyset_id(const veil_keyset *keys);
const uint8_t *veil_eval_keys_id(const veil_eval_keys *keys);
veil_packing veil_eval_keys_packing(const veil_eval_keys *keys);
veil_packing veil_keyset_packing(const veil_keyset *keys);
size_t veil_keyset_batch(const veil_keyset *keys); /* samples per ciphertext (1 in the latency packing) */
size_t veil_eval_keys_batch(const veil_eval_keys *keys);

/* ---- ciphertext sets ------------------------------------------------------------------------------ */

/* Encrypted rows. A set uses the context of the keys it was made or loaded with: free it before them. */
typedef struct veil_ciphertexts veil_ciphertexts;
void veil_ciphertexts_free(veil_ciphertexts *cts);
size_t veil_ciphertexts_rows(const veil_ciphertexts *cts);
veil_status veil_ciphertexts_save(veil_buffer *out, const veil_ciphertexts *cts, veil_error *err);
/* A set that belongs to a key set: eval keys or key set given (one of them) to check it. */
veil_status veil_ciphertexts_load(veil_ciphertexts **out, const veil_keyset *keys, const veil_eval_keys *eval,
                                  const uint8_t *data, size_t len, veil_error *err);
/*
 * acc += in, ciphertext by ciphertext (an aggregating server's sum of encrypted updates: src/ml/sum.c). Both
 * CKKS sets of one key set (loaded with the same keys), rows, width and packing; the sum's bound is the sum
 * of the bounds. A BGV set or a differentially private release: refused; sets carrying shares of the same
 * distributed noise (veil_ciphertexts_add_dp_share) are summed and their shares counted (shares of different
 * noise, or one set with shares and one without: VEIL_ERR_MISMATCH). acc is unchanged on failure only
 * for the checks (an error in an addition, which the checks rule out, may leave it part-summed).
 */
veil_status veil_ciphertexts_add(veil_ciphertexts *acc, const veil_ciphertexts *in, veil_error *err);
/*
 * Splitting a set by batches, for work spread over processes (veil eval --mpi, tools/mpi.c). A batch is one
 * group of ciphertexts of the throughput packing (veil_ciphertexts_batches: rows / rows-per-batch, rounded
 * up; the last one may be partial). CKKS sets of the throughput packing only; a BGV set, the latency packing
 * or a differentially private release: refused.
 */
size_t veil_ciphertexts_batches_of(const veil_ciphertexts *cts);
/*
 * Moves batches first .. first + n - 1 of *in into a new set *out (their rows; the same metadata otherwise).
 * *in loses those ciphertexts: afterwards it is only good to take other batches from or to free. n may be 0
 * (an empty set of 0 rows).
 */
veil_status veil_ciphertexts_take_batches(veil_ciphertexts **out, veil_ciphertexts *in, size_t first, size_t n,
                                          veil_error *err);
/*
 * Moves the batches of *part after those of *acc (rows summed) and frees part (also on failure). Both of one
 * key set's context and of equal metadata but for their rows; acc's last batch must be full (acc's rows a
 * multiple of the batch size), so that joining the parts of veil_ciphertexts_take_batches in order gives back
 * the whole set, and evaluating them the same bytes as evaluating the whole.
 */
veil_status veil_ciphertexts_append(veil_ciphertexts *acc, veil_ciphertexts *part, veil_error *err);
/*
 * A serialized set of the throughput packing (as veil_ciphertexts_save writes it) cut into `parts` serialized sets
 * without loading its ciphertexts: outs[p] holds batches p B / parts .. (p + 1) B / parts - 1 of its B batches
 * (len 0 when none), a whole set with its own digest, as veil_ciphertexts_take_batches and veil_ciphertexts_save
 * would make it. The set's framing and digest are checked once, its metadata against the evaluation keys (as
 * veil_ciphertexts_load does); each ciphertext is validated when a part is loaded. What take_batches refuses
 * (BGV, the latency packing, a differentially private release) is refused the same way. outs[0 .. parts - 1]
 * are freed with veil_buffer_free (on failure too). `veil eval --mpi`: rank 0 sends each rank its part.
 */
veil_status veil_ciphertexts_split_serialized(veil_buffer *outs, size_t parts, const veil_eval_keys *eval,
                                              const uint8_t *data, size_t len, veil_error *err);
/*
 * Reading a serialized set by batches in place (`veil eval --mpi` on one machine: every rank maps the input file
 * and loads the batches it takes). veil_ciphertexts_check_serialized checks what veil_ciphertexts_split_serialized
 * checks (the set's digest, framing and metadata against the keys; a set that is not split by batches:
 * VEIL_ERR_ARGUMENT) and gives its number of batches B; digest 0: all but the set's digest (a walk over the
 * objects' headers, cheap). veil_ciphertexts_load_batches loads batches first ..
 * first + n - 1 (n >= 1) as veil_ciphertexts_take_batches would give them (each ciphertext validated, its digest included;
 * the framing and metadata checked) but does NOT check the set's own digest, which covers every byte: a caller
 * checks it once with veil_ciphertexts_check_serialized on the same bytes, before it releases any result.
 */
veil_status veil_ciphertexts_check_serialized(size_t *batches, const veil_eval_keys *eval, const uint8_t *data,
                                              size_t len, int digest, veil_error *err);
veil_status veil_ciphertexts_load_batches(veil_ciphertexts **out, const veil_eval_keys *eval, const uint8_t *data,
                                          size_t len, size_t first, size_t n, veil_error *err);
/*
 * The rows of a serialized set of these keys (any kind: inputs, outputs, training data) without loading its
 * ciphertexts: its framing and metadata checked against the keys (as veil_ciphertexts_load does), and its own
 * digest (every byte read) when digest is non-zero. `veil eval --mpi`: rank 0 checks that the joined output has
 * the input's rows.
 */
veil_status veil_ciphertexts_rows_serialized(uint64_t *rows, const veil_eval_keys *eval, const uint8_t *data, size_t len,
                                             int digest, veil_error *err);
/*
 * A serialized set's fingerprint: a digest of its framing (header, metadata, object count), of each object's
 * length, header and own digest (a version-1 object, which has none: all its bytes) and of the set's digest,
 * without reading the objects' payloads (a walk over the headers, cheap). Sets with one fingerprint hold, at every place, objects of the
 * same header and own digest: a loader that checked an object's own digest loaded the object the fingerprint
 * names there. It does not check the set's digest. `veil eval --mpi` and `veil train --mpi`: rank 0 takes a
 * mapped input's fingerprint before any rank reads it and again after every rank has (tools/mpi.c).
 */
veil_status veil_ciphertexts_fingerprint_serialized(uint8_t fingerprint[32], const uint8_t *data, size_t len,
                                                   veil_error *err);
/*
 * Serialized sets of the throughput packing, parts[0 .. n-1] (as veil_ciphertexts_save writes them), joined in
 * order into one serialized set without loading their ciphertexts: the bytes veil_ciphertexts_append and
 * veil_ciphertexts_save would give. Each part's digest, framing and metadata are checked against the keys and
 * part 0 (of one kind and plan, every part but the last ending with a full batch), each object's digest as it
 * is added. `veil eval --mpi`: rank 0 joins the ranks' serialized outputs.
 */
veil_status veil_ciphertexts_join_serialized(veil_buffer *out, const veil_eval_keys *eval, const veil_buffer *parts,
                                             size_t n, veil_error *err);

/* Encrypts rows x input width values (row-major) with the secret key (seeded: half the size). */
veil_status veil_ciphertexts_encrypt(veil_ciphertexts **out, const veil_keyset *keys, const double *in, size_t rows,
                                     veil_prng *prng, veil_error *err);
/*
 * The server's work. The model must be the one the keys were made for (its hash is in the keys).
 * progress, when not NULL, is called with (done, total) units of work.
 */
veil_status veil_model_evaluate(veil_ciphertexts **out, const veil_model *model, const veil_eval_keys *keys,
                                const veil_ciphertexts *in, veil_progress_fn progress, void *progress_arg,
                                veil_error *err);
/*
 * The evaluator behind veil_model_evaluate, for servers that answer many requests: made once per (model, keys),
 * it encodes the latency packing's diagonals once. threads (at most 4096) > 1 evaluates independent ciphertexts in
 * parallel (OpenMP): a CKKS throughput set of at least `threads` batches has its batches evaluated side by side,
 * one thread each (memory: one batch's intermediates per thread), the others share each layer's outputs; the
 * outputs are the same bytes for every thread count. The model and keys must outlive it. Runs may be concurrent.
 */
typedef struct veil_evaluator veil_evaluator;
veil_status veil_evaluator_new(veil_evaluator **out, const veil_model *model, const veil_eval_keys *keys,
                               size_t threads, veil_error *err);
veil_status veil_evaluator_run(const veil_evaluator *ev, veil_ciphertexts **out, const veil_ciphertexts *in,
                               veil_progress_fn progress, void *progress_arg, veil_error *err);
void veil_evaluator_free(veil_evaluator *ev);

/*
 * Encrypted models (docs/marketplace.md): the model owner encrypts the weights and biases of every affine
 * layer with the public key of the data owner's evaluation keys (made for this model: its hash), one
 * ciphertext per value replicated over the slots in the throughput packing, one per diagonal of each layer's
 * matrix (and one for its biases) in the latency packing, at the levels of the model in the clear. The
 * model's structure stays public: the layers' kinds and widths, the approximations' polynomials and ranges,
 * the final operation, the model hash. The file is a Veil set (docs/wire-format.md) holding only ciphertexts
 * and that structure. veil_model_load_encrypted checks every byte and that the file was made for these keys;
 * the model it gives evaluates with veil_evaluator_new like a plaintext one (ciphertext-by-ciphertext
 * products, relinearized), and is refused by the calls that need the weights (plan, plain runs).
 * VEIL_ERR_UNSUPPORTED, naming the size, when the throughput packing's ciphertexts would hold more than 16 GiB
 * in memory (a CNN's convolution folded into a dense matrix costs one ciphertext per entry): the latency
 * packing encrypts diagonals instead.
 */
veil_status veil_model_encrypt(veil_buffer *out, const veil_model *model, const veil_eval_keys *keys, veil_prng *prng,
                               veil_error *err);
veil_status veil_model_load_encrypted(veil_model **out, const veil_eval_keys *keys, const uint8_t *data, size_t len,
                                      veil_error *err);
/* Whether a model was loaded encrypted (its weights are ciphertexts). */
int veil_model_is_encrypted(const veil_model *model);
/*
 * The server's side of an encrypted model: the evaluator of the encrypted model in data[0 .. len) (a .ctm,
 * veil_model_encrypt) loaded with keys, which it holds until veil_evaluator_free (the keys must outlive it).
 * Errors as veil_model_load_encrypted's and veil_evaluator_new's.
 */
veil_status veil_evaluator_new_encrypted(veil_evaluator **out, const veil_eval_keys *keys, const uint8_t *data,
                                         size_t len, size_t threads, veil_error *err);
/*
 * VEIL_OK when the evaluation keys were made from this plan (CKKS inference: the same model hash, packing,
 * slots, batch, widths, final operation and parameters), else VEIL_ERR_MISMATCH saying what differs: how a
 * server that holds only a model's plan (its weights encrypted) finds the model a key bundle is for.
 */
veil_status veil_plan_matches_eval_keys(const veil_plan *plan, const veil_eval_keys *keys, veil_error *err);
/* The values per sample a plan's model reads and computes (before the final operation). */
size_t veil_plan_input_width(const veil_plan *plan);
size_t veil_plan_output_width(const veil_plan *plan);

/*
 * Decrypts rows x output width values (after the final Sigmoid / Softmax / LogSoftmax; ArgMax gives the
 * class index as a double). raw_out, when not NULL, receives the values before the final operation
 * (rows x veil_model_output_width of the program before it: see veil_ciphertexts_width).
 */
veil_status veil_ciphertexts_decrypt(double *out, double *raw_out, const veil_keyset *keys,
                                     const veil_ciphertexts *cts, veil_error *err);
/*
 * How veil_ciphertexts_decrypt_ex and veil_train_decrypt_ex decrypt; all zero (or NULL options): plain
 * decryption, as veil_ciphertexts_decrypt. flood: noise flooding (veil_ckks_decrypt_flooded, SECURITY.md),
 * for CKKS results that anyone but the key holder will see (published predictions or statistics, trained
 * weights handed on): a plain approximate decryption reveals the ciphertext's error, and with it the secret
 * key, to whoever also holds the ciphertext. A result that stays with the key holder needs none.
 *
 * The error bound B (error_bits = log2 B, in the coefficients at the result's scale): 0 estimates it from
 * the set itself: the values are real, so the error's part that conjugation negates is free of the
 * message (veil_ckks_estimate_error_real: 4 times its largest coefficient), the largest over the set's
 * ciphertexts rounded up to a whole bit: one width for the whole set, which reveals at most that bit count. Give error_bits from a run on known data
 * (veil_ckks_measure_error) for a tighter bound. The noise is sigma = sqrt(24 k) 2^(s/2) B; its largest
 * effect on a value, 6 sigma sqrt(N/2) / scale, must stay within tolerance (0: 1e-3, the ML layer's
 * documented precision; for training, on the weights before the features' scaling is undone), or the call
 * refuses with VEIL_ERR_NOISE before decrypting anything: the parameters leave no room for that noise (keys
 * for training made with veil_train_request.flood have it). It is also refused (VEIL_ERR_ARGUMENT) when the
 * noise would carry a value past the modulus at the set's level.
 * Exact (BGV) results need no flooding: their decryption is exact and reveals no error; flood is ignored.
 */
typedef struct veil_decrypt_options {
    int flood;                     /* 1: flooded decryption */
    unsigned statistical_security; /* s; 0: VEIL_FLOODING_DEFAULT_SECURITY (30) */
    unsigned long queries;         /* k, related decryptions an adversary may see; 0: VEIL_FLOODING_DEFAULT_QUERIES */
    double error_bits;             /* log2 of a bound on the coefficient error; 0: estimated (above) */
    double tolerance;              /* the largest error flooding may add to a value; 0: 1e-3 */
    veil_prng *prng;               /* the noise's source; NULL: the OS CSPRNG */
} veil_decrypt_options;
#define VEIL_DECRYPT_DEFAULT_TOLERANCE 1e-3
/* veil_ciphertexts_decrypt with options (NULL: plain decryption). */
veil_status veil_ciphertexts_decrypt_ex(double *out, double *raw_out, const veil_keyset *keys,
                                        const veil_ciphertexts *cts, const veil_decrypt_options *opts,
                                        veil_error *err);
/*
 * Exact inference: the integers the server computed (rows x the program's output width, before the output
 * scale and the final operation), recomposed from the CRT moduli. veil_ciphertexts_decrypt gives the same values
 * times the output scale, with the final operation applied. VEIL_ERR_ARGUMENT for CKKS sets.
 */
veil_status veil_ciphertexts_decrypt_integers(int64_t *out, const veil_keyset *keys, const veil_ciphertexts *cts,
                                              veil_error *err);
veil_ml_scheme veil_keyset_scheme(const veil_keyset *keys);
veil_ml_scheme veil_eval_keys_scheme(const veil_eval_keys *keys);
/* Values per row a set carries (input width for inputs, the program's output width for results). */
size_t veil_ciphertexts_width(const veil_ciphertexts *cts);
/* Values per row the key set's model reads. */
size_t veil_keyset_input_width(const veil_keyset *keys);
/* Values per row veil_ciphertexts_decrypt writes to out. */
size_t veil_keyset_output_width(const veil_keyset *keys);
/* The final operation of the key set's model (veil_model_final_op), which veil_ciphertexts_decrypt applies. */
veil_final_op veil_keyset_final_op(const veil_keyset *keys);
/*
 * A quarter of q_0 over the scale: the largest |output| the key set's parameters hold at level 0 (training
 * checks its model's weights against it). Inference keys bound every value from their inputs' range instead
 * (veil_keyset_input_range).
 */
double veil_keyset_output_limit(const veil_keyset *keys);
/*
 * CKKS inference: each input's range (in_width values each), which veil_ciphertexts_encrypt enforces, and the
 * outputs' worst-case |value| over it, beyond which veil_ciphertexts_decrypt refuses a result. Returns the
 * width (0 for other key sets).
 */
size_t veil_keyset_input_range(const veil_keyset *keys, const double **lo, const double **hi, double *output_bound);

/* What a Veil ML file (key set, eval keys, ciphertexts) holds, as lines of text for `veil info`. */
veil_status veil_ml_file_describe(const uint8_t *data, size_t len, char *text, size_t cap, veil_error *err);

/* ---- Differential privacy: the accountant and a key set's budget (docs/privacy.md) -------------- */
/*
 * Releases are Gaussian mechanisms: L2 sensitivity D and noise N_Z(0, sigma^2) (veil_sample_discrete_gaussian)
 * cost rho = D^2 / (2 sigma^2) in zero-concentrated DP; rhos add up over releases; rho-zCDP is converted to
 * (epsilon, delta)-DP by Canonne-Kamath-Steinke 2020, Proposition 12 (the infimum over Renyi orders alpha > 1
 * of alpha rho + log(1 - 1/alpha) - (log delta + log alpha) / (alpha - 1)), tighter than
 * rho + 2 sqrt(rho log(1/delta)). Accepted ranges: 0 < epsilon <= 100, 1e-100 <= delta <= 0.1.
 */
#define VEIL_DP_MAX_EPSILON 100.0
#define VEIL_DP_MIN_DELTA 1e-100
#define VEIL_DP_MAX_DELTA 0.1
#define VEIL_DP_BUDGET_FILE "privacy.budget" /* the budget's file in a key folder, beside secret.key */

/* epsilon of rho-zCDP at delta (rho >= 0). */
veil_status veil_dp_epsilon(double rho, double delta, double *epsilon, veil_error *err);
/* The largest rho whose epsilon at delta is at most epsilon. */
veil_status veil_dp_rho_for(double epsilon, double delta, double *rho, veil_error *err);
/* rho = sensitivity^2 / (2 sigma^2) of one Gaussian release (both > 0). */
veil_status veil_dp_gaussian_rho(double sensitivity, double sigma, double *rho, veil_error *err);
/* The sigma that makes one release of that sensitivity (epsilon, delta)-DP: sensitivity / sqrt(2 rho_for). */
veil_status veil_dp_sigma_for(double sensitivity, double epsilon, double delta, double *sigma, veil_error *err);

/* A key set's budget: the limit (epsilon at delta, and the rho it allows) and the rho spent so far. */
typedef struct veil_dp_budget {
    double epsilon, delta; /* the limit */
    double rho_limit;      /* veil_dp_rho_for(epsilon, delta) */
    double rho_spent;      /* the sum of the charged releases' rho */
    uint64_t releases;     /* how many were charged */
} veil_dp_budget;

/* A fresh budget of (epsilon, delta), nothing spent. */
veil_status veil_dp_budget_init(veil_dp_budget *b, double epsilon, double delta, veil_error *err);
/* VEIL_ERR_BUDGET (a message with the epsilon it would reach) when a release of that rho does not fit. */
veil_status veil_dp_budget_check(const veil_dp_budget *b, double rho, veil_error *err);
/* veil_dp_budget_check, then adds rho to the spent total; *b is unchanged on failure. */
veil_status veil_dp_budget_charge(veil_dp_budget *b, double rho, veil_error *err);
/* epsilon spent so far (at the budget's delta). */
veil_status veil_dp_budget_spent_epsilon(const veil_dp_budget *b, double *epsilon, veil_error *err);
/* The budget file (88 bytes with an integrity digest) and back; load validates every field (VEIL_ERR_FORMAT). */
veil_status veil_dp_budget_save(veil_buffer *out, const veil_dp_budget *b, veil_error *err);
veil_status veil_dp_budget_load(veil_dp_budget *b, const uint8_t *data, size_t len, veil_error *err);
/* 1 when data starts like a budget file. */
int veil_dp_budget_is(const uint8_t *data, size_t len);

/*
 * Output noise on encrypted results (veil eval --dp-epsilon): the evaluator adds discrete Gaussian noise to
 * every slot of a set of model outputs, homomorphically, so that no one sees the noiseless value, and records
 * the release in the set (saved with it). sigma = veil_dp_sigma_for(sensitivity, epsilon, delta), rounded up
 * to the sampler's rational. CKKS: the noise is Z * resolution with Z ~ N_Z(0, (sigma / resolution)^2) and
 * resolution = 2^-k, k = min(the scale's bits, the largest keeping sigma / resolution <= 2^30): a grid far
 * finer than the scale's precision; the result must keep bound + 40 sigma below the parameters' limit.
 * Exact (BGV) sets: the noise is on the integers themselves (sigma at least one unit of the output scale):
 * N_Z(0, (sigma / scale)^2) while that is at most 2^30 (the exact guarantee), else g N_Z(0, (sigma / (g
 * scale))^2) on multiples of the smallest power of two g (<= 2^24) that brings it there; added to every
 * plaintext modulus' residues, with bound + 40 sigma below half the moduli's product. On failure the set is left partly noisy: discard it.
 * prng NULL: the OS CSPRNG.
 */
typedef struct veil_dp_release {
    double epsilon, delta; /* asked for */
    double sensitivity;    /* L2, in output units */
    double sigma;          /* the noise's standard deviation in output units, at least the calibrated one */
    double resolution;     /* the noise's grid */
    double rho;            /* sensitivity^2 / (2 sigma^2): what decrypting the release costs */
    /* distributed noise (veil_ciphertexts_add_dp_share): 0 for a release noised by one evaluator. Else the
     * shares that make the full noise (parties) and the shares the set carries; sigma is then the noise of
     * `parties` shares and rho their sum's (veil_dp_sum_rho); the release is complete when shares >= parties. */
    uint32_t parties, shares;
} veil_dp_release;
veil_status veil_ciphertexts_add_dp_noise(veil_ciphertexts *cts, const veil_eval_keys *keys, double epsilon,
                                          double delta, double sensitivity, veil_prng *prng, veil_error *err);
/* 1 and *out when the set is a noisy release, else 0. */
int veil_ciphertexts_dp_release(const veil_ciphertexts *cts, veil_dp_release *out);
/*
 * The default sensitivity of one record's outputs (neighbouring = one record replaced): each of the w outputs
 * lies in [-B, B], B the plan's outputs' bound over the declared inputs' range (for exact inference the
 * integers' bound times the output scale), so the L2 sensitivity of a row is 2 B sqrt(w).
 */
veil_status veil_plan_dp_sensitivity(const veil_plan *plan, double *sensitivity, veil_error *err);
/*
 * Distributed noise for federated aggregation (docs/privacy.md, "Federated aggregation"): each of n parties adds
 * to its own encrypted update a share of discrete Gaussian noise of variance sigma^2 / n (sigma =
 * veil_dp_sigma_for(sensitivity, epsilon, delta)), so that only the sum of the n updates (veil_ciphertexts_add)
 * carries the full noise, and the joint decryption releases the noisy sum. A sum of discrete Gaussians is not a
 * discrete Gaussian: its cost is the bound of Kairouz, Liu and Steinke, "The distributed discrete Gaussian
 * mechanism for federated learning with secure aggregation" (ICML 2021, Section 3): for n shares of N_Z(0, s^2)
 * (s >= 1/2, in units of the grid) and an integer shift of L2 norm D, the Renyi divergence of every order
 * alpha >= 1 is at most alpha D^2 / (2 n s^2) + tau d, tau = 10 sum_{k=1}^{n-1} exp(-2 pi^2 s^2 k / (k + 1)),
 * d the coordinates; since alpha >= 1 that is rho-zCDP with rho = D^2 / (2 n s^2) + tau d (veil_dp_sum_rho,
 * with d bounded by 2^40, more coordinates than any set holds). CKKS sets of outputs only (a model's outputs:
 * what joint decryption releases). The set records the share (saved with it); on failure it is partly noisy:
 * discard it. prng NULL: the OS CSPRNG.
 */
veil_status veil_ciphertexts_add_dp_share(veil_ciphertexts *cts, double epsilon, double delta, double sensitivity,
                                          uint32_t parties, veil_prng *prng, veil_error *err);
/* rho of the sum of `parties` shares of N_Z(0, (share_sigma / resolution)^2) times resolution, for an L2
 * sensitivity (Kairouz-Liu-Steinke's bound above; share_sigma / resolution at least 1/2). */
veil_status veil_dp_sum_rho(double sensitivity, double share_sigma, double resolution, uint32_t parties, double *rho,
                            veil_error *err);
/* 1 when a release is complete (noised by one evaluator, or carrying at least the shares it needs), else 0. */
int veil_dp_release_complete(const veil_dp_release *r);
/* ---- multi-party keys (veil/party.h, docs/multiparty.md) ------------------------------------------------ */

/*
 * N parties, each holding a share of the secret key, make joint keys for a plan (the protocol of veil/party.h,
 * run by `veil party`), so that anyone encrypts under the joint public key, the server evaluates with the joint
 * evaluation keys unchanged, and only all N parties together decrypt. CKKS inference plans only (exact BGV
 * inference and training: VEIL_ERR_UNSUPPORTED). Groups, secret shares and shares travel as Veil objects
 * (veil/serial.h); these functions take their stored bytes and load them into the key set's context.
 */
/* The plan's parameter set (owned by the plan). */
const veil_params *veil_plan_params(const veil_plan *plan);
/*
 * A joint key set: the plan's metadata and inputs' range, and the joint public key (stored, as
 * veil_public_key_save writes it) in place of a secret key. It encrypts (with the public key) and loads
 * ciphertext sets; veil_ciphertexts_decrypt refuses it. Saved and loaded as any key set (it holds no secret).
 */
veil_status veil_keyset_joint(veil_keyset **out, const veil_plan *plan, const uint8_t *public_key, size_t len,
                              veil_error *err);
int veil_keyset_is_joint(const veil_keyset *keys);
/*
 * The evaluation-key bundle of a joint key set (what veil_eval_keys_load reads): its public key, the joint
 * relinearization key and the joint Galois keys (stored; relin first), of the key set's parameters.
 */
veil_status veil_eval_keys_joint_save(veil_buffer *out, const veil_keyset *joint, const veil_buffer *switch_keys,
                                      size_t count, veil_error *err);
/*
 * The combination of the key-generation rounds from the parties' stored shares, for whoever combines (veil
 * serve's groups, docs/net.md "Groups"; veil party combine does the same from files). The group: its id
 * (VEIL_PARTY_ID_BYTES), party count and threshold. Round 1: shares[k * 2 + j] is party k+1's public-key share
 * (j 0) and relinearization round-1 share (j 1), every party once; writes the joint key set (as
 * veil_keyset_save) and the two aggregates (aggregates[0] public key, [1] relinearization round 1: what each
 * party needs for round 2). Round 2: shares[k * per + j] is party k+1's relinearization round-2 share (j 0)
 * and its Galois shares for the plan's rotations in order (per = 1 + the plan's rotation count); writes the
 * joint evaluation keys (as veil_eval_keys_joint_save). Any share of another group, kind, round or Galois
 * element, a missing or duplicated party: an error, nothing written.
 */
veil_status veil_ml_party_combine_round1(veil_buffer *joint_keys, veil_buffer *aggregates, const veil_plan *plan,
                                         const uint8_t *group_id, size_t parties, size_t threshold,
                                         const veil_buffer *shares, veil_error *err);
veil_status veil_ml_party_combine_round2(veil_buffer *eval_keys, const veil_plan *plan, const uint8_t *joint_keys,
                                         size_t joint_len, const uint8_t *group_id, size_t parties, size_t threshold,
                                         const veil_buffer *relin_round1, const veil_buffer *shares, size_t per,
                                         veil_error *err);
/*
 * Party `party`'s decryption shares of every ciphertext of a set of outputs or of a trained model (cts, loaded
 * with the joint key set),
 * made with its secret share (a stored secret key) and smudging (NULL: the defaults), as one Veil set.
 * decrypt_joint combines the share sets of all N parties (any order) into rows x output width values, as
 * veil_ciphertexts_decrypt: a set of another group, party count, ciphertext set or kind, a duplicated or
 * missing party, is an error (nothing written).
 */
veil_status veil_ciphertexts_decrypt_share(veil_buffer *out, const veil_keyset *joint, const uint8_t *group,
                                           size_t group_len, size_t party, const uint8_t *secret_share,
                                           size_t secret_len, const veil_ciphertexts *cts,
                                           const veil_party_smudging *smudging, veil_error *err);
veil_status veil_ciphertexts_decrypt_joint(double *out, double *raw_out, const veil_keyset *joint, const uint8_t *group,
                                           size_t group_len, const veil_ciphertexts *cts, const veil_buffer *shares,
                                           size_t count, veil_error *err);
/*
 * The smudging's error: the shares' noise (each records its width) may move an output by up to
 * 6 sqrt(sum_k sigma_k^2) sqrt(N/2) / scale (6 standard deviations, as flooded decryption counts). Beyond
 * `tolerance` (0: VEIL_DECRYPT_DEFAULT_TOLERANCE, 1e-3) the combination refuses (VEIL_ERR_NOISE, nothing
 * written): the result would not keep the plan's precision (docs/ml.md, "Precision"). decrypt_joint is
 * decrypt_joint_ex with tolerance 0; *smudging_error (when not NULL) receives that bound. The same holds for
 * switch_joint(_ex) below: the switched set carries that error to the receiver.
 */
veil_status veil_ciphertexts_decrypt_joint_ex(double *out, double *raw_out, const veil_keyset *joint,
                                              const uint8_t *group, size_t group_len, const veil_ciphertexts *cts,
                                              const veil_buffer *shares, size_t count, double tolerance,
                                              double *smudging_error, veil_error *err);
/*
 * A trained model decrypted jointly (veil_train_run under the joint key set: the records encrypted with its
 * public key, docs/multiparty.md, "Encrypted training across the parties' records"): the parties' share sets
 * of the model set (veil_ciphertexts_decrypt_share or the threshold ones, which take trained models as they
 * take outputs) combined into the weights, weights[0..F] as veil_train_decrypt gives them (for
 * veil_train_to_onnx); every check of veil_train_decrypt and the smudging check of decrypt_joint_ex apply.
 */
veil_status veil_train_decrypt_joint(double *weights, const veil_keyset *joint, const uint8_t *group,
                                     size_t group_len, const veil_ciphertexts *model, const veil_buffer *shares,
                                     size_t count, double tolerance, double *smudging_error, veil_error *err);
/*
 * Public-key switching of a set: each party's shares towards the receiver's evaluation keys (a key holder's,
 * for the same plan), and their combination into a set under the receiver's keys (which its key set
 * decrypts with veil_ciphertexts_decrypt), without anyone decrypting.
 */
veil_status veil_ciphertexts_switch_share(veil_buffer *out, const veil_keyset *joint, const uint8_t *group,
                                          size_t group_len, size_t party, const uint8_t *secret_share,
                                          size_t secret_len, const veil_ciphertexts *cts, const veil_eval_keys *receiver,
                                          const veil_party_smudging *smudging, veil_error *err);
veil_status veil_ciphertexts_switch_joint(veil_ciphertexts **out, const veil_keyset *joint, const uint8_t *group,
                                          size_t group_len, const veil_ciphertexts *cts, const veil_eval_keys *receiver,
                                          const veil_buffer *shares, size_t count, veil_error *err);
veil_status veil_ciphertexts_switch_joint_ex(veil_ciphertexts **out, const veil_keyset *joint, const uint8_t *group,
                                             size_t group_len, const veil_ciphertexts *cts,
                                             const veil_eval_keys *receiver, const veil_buffer *shares, size_t count,
                                             double tolerance, double *smudging_error, veil_error *err);

/* ---- t-out-of-N (veil/party.h, "t-out-of-N"; docs/multiparty.md) ------------------------------------------ */

/*
 * In a group of threshold t (veil_party_group_new with 2 <= t < N, after the dealing of veil/party.h), the
 * share set of the party whose threshold key (stored, as veil_party_threshold_key_save writes it) is given,
 * for the set of decrypting parties `set` (set_count party numbers, itself among them, at least t): as
 * veil_ciphertexts_decrypt_share and veil_ciphertexts_switch_share, and combined by the same
 * veil_ciphertexts_decrypt_joint and veil_ciphertexts_switch_joint with the share sets of every party of the
 * set (fewer than t, another set, a missing member: an error, nothing written).
 */
veil_status veil_ciphertexts_threshold_decrypt_share(veil_buffer *out, const veil_keyset *joint, const uint8_t *group,
                                                     size_t group_len, const uint8_t *threshold_key, size_t key_len,
                                                     const size_t *set, size_t set_count, const veil_ciphertexts *cts,
                                                     const veil_party_smudging *smudging, veil_error *err);
veil_status veil_ciphertexts_threshold_switch_share(veil_buffer *out, const veil_keyset *joint, const uint8_t *group,
                                                    size_t group_len, const uint8_t *threshold_key, size_t key_len,
                                                    const size_t *set, size_t set_count, const veil_ciphertexts *cts,
                                                    const veil_eval_keys *receiver,
                                                    const veil_party_smudging *smudging, veil_error *err);

/* ---- CSV ---------------------------------------------------------------------------------------- */

/*
 * Reads a CSV of numbers: an optional header row (detected: a first row with a non-numeric cell), then rows
 * of exactly `width` cells (width 0: the first row's count). NaN, infinities, empty and non-numeric cells
 * are errors naming the row and the column. *values is rows x width, freed with free().
 */
veil_status veil_csv_read(const char *path, size_t width, double **values, size_t *rows, size_t *width_out,
                          veil_error *err);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_ML_H */
