/*
 * veil/train.h - encrypted training of linear and logistic regression with CKKS.
 *
 * The data owner encrypts its records (features and labels); the server runs gradient descent on the
 * ciphertexts with only the evaluation keys; the owner decrypts the weights, as a standard ONNX model.
 *
 *   veil_train_plan      the parameters and keys for F features and K iterations (then veil_keyset_generate)
 *   veil_train_encrypt   the data owner: rows of features and labels into a ciphertext set
 *   veil_train_run       the server: K iterations on the ciphertexts
 *   veil_train_decrypt   the data owner: the weights, on the original features
 *   veil_train_run_plain the same algorithm in float64, for comparison
 *
 * The algorithms (public: the learning rate, the iteration count and the number of records):
 *   linear     gradient descent on the mean squared error, w <- (1 - lr l2) w - lr/n sum_r (w.x_r - y_r) x_r;
 *   logistic   Nesterov's accelerated gradient on the log-likelihood (Kim, Song, Kim, Lee, Cheon, JMIR Med
 *              Inform 2018), w <- v + lr/n sum_r sigma(-z_r.v) z_r - lr l2 v with z_r = (2 y_r - 1) (1, x_r),
 *              sigma a least-squares odd polynomial fit of degree 3, 5 or 7 over [-range, range].
 * The data owner scales every feature to [-1, 1] (centred on its mean, divided by its largest deviation; for
 * linear regression the label too) before encryption, so that one learning rate and one sigmoid range suit
 * any data; the scaling is encrypted with the data and undone at decryption, so the model reads raw
 * features. The server never sees it.
 *
 * Packing: each record is a block of B slots (B the power of two at or above F + 2: the bias term 1, the
 * features and a free slot), slots/B records per ciphertext; the owner encrypts the records in two layouts
 * (B - 1 slots apart) and the constant part of the gradient. One iteration is an encrypted inner product per
 * record (a product and a window sum of B rotations in hoisted radix-4 groups), the polynomial, and the
 * gradient as a window sum over records, with the learning rate folded into the polynomial's coefficients.
 * Its depth: 3 levels for linear regression, 5 / 6 / 7 for logistic regression with degree 3 / 5 / 7; the
 * first iteration, from w = 0, uses 1. The plan sizes the parameters for a number of iterations. Past what a
 * leveled parameter set holds (or when asked), it bootstraps instead (veil/circuits.h): the weight vector (and
 * Nesterov's previous weights) are refreshed, with sparse slots (one record's block), whenever their levels
 * run out, so that any number of iterations runs on one key set. docs/training.md has the rest.
 */
#ifndef VEIL_TRAIN_H
#define VEIL_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include "veil/core.h"
#include "veil/params.h"
#include "veil/ml.h"

#ifdef __cplusplus
extern "C" {
#endif

VEIL_API_BEGIN

typedef enum veil_train_task { VEIL_TRAIN_LOGISTIC = 0, VEIL_TRAIN_LINEAR = 1 } veil_train_task;

/* What the keys are made for. Zero-initialised fields take the defaults. */
typedef struct veil_train_request {
    veil_train_task task;
    size_t features;        /* F, 1 .. 1023 */
    size_t iterations;      /* K the keys must allow, at least 1 */
    unsigned degree;        /* logistic: the sigmoid's degree, 3, 5 or 7 (0: 3) */
    unsigned range;         /* logistic: the fit's interval [-range, range], 1 .. 64 (0: 8) */
    veil_security security; /* 128 bits when zero; VEIL_SECURITY_NONE only for tests */
    size_t ring_degree;     /* 0: the smallest the security level allows; required with VEIL_SECURITY_NONE */
    int flood;              /* 1: room for flooded decryption of the weights (a 2^60 scale, a 61-bit first prime;
                             * a larger ring past 2 iterations): docs/training.md */
    /*
     * Bootstrapping: 0 (default) only when no leveled parameter set of the security level holds the
     * iterations; 1 always (the tests, with VEIL_SECURITY_NONE and a ring degree); -1 never (refused past the
     * leveled limit, as before). Bootstrapped keys allow any number of iterations (up to 1000).
     */
    int bootstrap;
    unsigned min_scale_bits; /* above 40 (and at most 50): exactly that scale, the first prime 10 bits above it:
                              * room for the smudging of a joint decryption (veil party init,
                              * docs/multiparty.md); 0: the ordinary 40, 38 or 36 */
} veil_train_request;

typedef struct veil_train_info {
    veil_train_task task;
    size_t features, block, records_per_ciphertext;
    unsigned degree, range;
    size_t depth_per_iteration; /* levels one iteration uses (the first uses fewer) */
    size_t max_iterations;      /* what the parameters allow */
    double coefficients[4];     /* logistic: the odd coefficients a1, a3, a5, a7 of sigma(t) - 1/2 */
    /*
     * Keys with bootstrapping (bootstrap_level > 0): a bootstrap returns the weights to bootstrap_level, which
     * holds iterations_per_bootstrap iterations (and one level for the weights' scaling into bootstrapping's
     * range). Iteration t (from 0) is preceded by a bootstrap when t = 1 + j iterations_per_bootstrap, j >= 1:
     * veil_train_bootstraps(info, K) of them in K iterations, each of 1 or 2 ciphertexts (the weights, and
     * Nesterov's previous weights for logistic regression when its momentum is not 0).
     */
    size_t bootstrap_level, iterations_per_bootstrap, bootstrap_slots;
    size_t bootstrap_galois_keys; /* plans only: bootstrapping's Galois keys the rotations do not give */
    double bootstrap_key_bytes; /* plans only: bootstrapping's keys in the bundle (Galois keys and encapsulation) */
    double bootstrap_seconds;   /* plans only: the time model's estimate of one bootstrap (one thread) */
} veil_train_info;

/* Refreshes K iterations take with these keys (0 for leveled keys). */
size_t veil_train_bootstraps(const veil_train_info *info, size_t iterations);

/*
 * A plan for encrypted training: CKKS parameters for the request's iterations (the smallest ring at the
 * security level, scale 2^40 or less), the rotations (those of the window sums, docs/training.md). Its
 * veil_plan_info tells the sizes; veil_keyset_generate makes the keys; veil_plan_save / veil_plan_load carry it.
 */
veil_status veil_train_plan(veil_plan **out, const veil_train_request *request, veil_error *err);
/* The training side of a plan or of keys made for training (VEIL_ERR_ARGUMENT for inference ones). */
veil_status veil_plan_get_train_info(const veil_plan *plan, veil_train_info *info, veil_error *err);
veil_status veil_eval_keys_get_train_info(const veil_eval_keys *keys, veil_train_info *info, veil_error *err);
veil_status veil_keyset_get_train_info(const veil_keyset *keys, veil_train_info *info, veil_error *err);

/*
 * Encrypts rows x F features (row-major) and rows labels: {0, 1} for logistic regression, any finite number
 * for linear regression. Errors (nothing encrypted): a non-finite value, a label outside {0, 1} for logistic
 * regression, a feature (or a linear label) that is constant over the rows (no variance: it cannot be
 * scaled), more rows than 2^20, or values above 1e12 in magnitude. prng NULL: the OS CSPRNG.
 */
veil_status veil_train_encrypt(veil_ciphertexts **out, const veil_keyset *keys, const double *x, const double *y,
                               size_t rows, veil_prng *prng, veil_error *err);
/*
 * The same with a declared range [lo[j], hi[j]] for each feature j (F of each; lo < hi, finite): each feature
 * is scaled by its range (centre (lo + hi) / 2, half-width (hi - lo) / 2), not by the data's own mean and
 * spread, and a record with a feature outside its range is refused (VEIL_ERR_ARGUMENT, nothing encrypted).
 * The data's statistics then enter neither the scaling nor the model's unscaling: what DP-GD needs (logistic
 * regression only).
 */
veil_status veil_train_encrypt_ranged(veil_ciphertexts **out, const veil_keyset *keys, const double *x,
                                      const double *y, size_t rows, const double *lo, const double *hi,
                                      veil_prng *prng, veil_error *err);
/*
 * Linear regression's declared ranges: the features' as above and the label's [label_lo, label_hi] (the label
 * scaled by its centre and half-width; a label outside it is refused, nothing encrypted). What linear DP-GD
 * needs; veil_train_encrypt_ranged refuses linear regression (its label's range would be undeclared).
 */
veil_status veil_train_encrypt_ranged_labels(veil_ciphertexts **out, const veil_keyset *keys, const double *x,
                                             const double *y, size_t rows, const double *lo, const double *hi,
                                             double label_lo, double label_hi, veil_prng *prng, veil_error *err);

/*
 * Training split over several processes (the ranks of an MPI job, `veil train --mpi`, tools/mpi.c): every
 * process loads the same keys and data sets and calls veil_train_run_sets with the same options; process
 * `part` of `parts` computes the record terms of its share of the ciphertexts of records (ciphertexts
 * c P / parts .. (c + 1) P / parts - 1 of the P, counted over the sets in order), and at every iteration the
 * processes' partial sums (serialized ciphertexts, size 3, before relinearization) are exchanged and added
 * by every process. Ciphertext addition is exact: the result is the one of one process, byte for byte.
 *
 * exchange(arg, mine, all): called collectively, once per iteration after the first, by every process with
 * its serialized partial sum (empty when it has no ciphertext of records); it puts into all[p], for every
 * p != part, the bytes that process p passed (all[part] is left empty), allocated with malloc (the library
 * frees them). It returns 0, or non-zero when the exchange failed (the training then fails). Each part is
 * validated as any ciphertext read (veil_ckks_ciphertext_load) and must be at the level and scale of the
 * others. DP-GD (dp_epsilon) is refused when split: each process would draw its own noise.
 */
typedef int (*veil_train_exchange_fn)(void *arg, const veil_buffer *mine, veil_buffer *all);
typedef struct veil_train_split {
    size_t part, parts; /* this process and the number of processes (1 .. 65536) */
    veil_train_exchange_fn exchange;
    void *arg;
} veil_train_split;

typedef struct veil_train_options {
    size_t iterations;    /* 0: as many as the keys allow */
    double learning_rate; /* 0: 1 */
    double l2;            /* ridge / L2 strength, >= 0 */
    size_t threads;       /* parallel ciphertexts (OpenMP), at most 4096; 0: the context's (VEIL_THREADS) */
    /*
     * DP-GD (docs/privacy.md; logistic and linear regression): discrete Gaussian noise on the encrypted gradient sum at
     * every iteration, the whole training (epsilon, delta)-DP for one record replaced (zCDP, composed over the
     * iterations). 0: none. The model set records the release; decrypting it charges the key set's budget
     * and needs data encrypted with a declared feature range (veil_train_encrypt_ranged; linear regression:
     * veil_train_encrypt_ranged_labels, the label's range too).
     */
    double dp_epsilon, dp_delta;
    /* training split over several processes (veil_train_split above); NULL: this process trains alone */
    const veil_train_split *split;
    /*
     * Linear regression's DP-GD: R, the bound on each record's scaled prediction |z . v| that its sensitivity
     * assumes (the training's premise, as logistic regression's sigmoid range; not enforced in the ciphertexts:
     * `veil train --plain` reports the largest met). A record's term (z . v - y) z, with y and z scaled into
     * [-1, 1] by the declared ranges, moves the gradient sum by at most 2 (R + 1) sqrt(F + 1). 0: 2.
     */
    double dp_prediction_bound;
} veil_train_options;

/*
 * The server's training on an encrypted data set (loaded with the evaluation keys it was made for). More
 * iterations than the keys allow are refused before any work. progress: (iteration, iterations).
 * The result is a set holding the encrypted weights and the data's encrypted scaling.
 */
veil_status veil_train_run(veil_ciphertexts **out, const veil_eval_keys *keys, const veil_ciphertexts *data,
                           const veil_train_options *opts, veil_progress_fn progress, void *progress_arg,
                           veil_error *err);

/*
 * Training on the union of several data sets encrypted under the same keys (the records of several data
 * owners under a joint public key, veil/party.h): one gradient over every record of every set, each set's
 * constant part weighted by its record count. The sets must share their scaling (the same declared feature
 * range, veil_train_encrypt_ranged, at every owner): the result holds every set's encrypted scaling and
 * veil_train_decrypt refuses them when they differ. At most VEIL_TRAIN_MAX_SETS sets.
 */
#define VEIL_TRAIN_MAX_SETS 64
veil_status veil_train_run_sets(veil_ciphertexts **out, const veil_eval_keys *keys,
                                const veil_ciphertexts *const *sets, size_t n_sets, const veil_train_options *opts,
                                veil_progress_fn progress, void *progress_arg, veil_error *err);

/*
 * veil_train_run_sets on serialized data sets (as veil_train_encrypt / veil_ciphertexts_save write them; the
 * bytes of files a caller read or mapped): each process of a split (opts->split) loads only the ciphertexts of
 * records of its own share, with each set's constant part and scaling (every one validated, as a file's), so
 * that its loading work and memory are 1 / parts of the data; the sets' own digests (over every byte) are
 * checked by part 0 alone, the part that releases the result (the others' results reach it only through the
 * exchange). Alone (no split): the whole sets, digests included. The result is veil_train_run_sets's.
 */
veil_status veil_train_run_serialized(veil_ciphertexts **out, const veil_eval_keys *keys, const veil_buffer *sets,
                                      size_t n_sets, const veil_train_options *opts, veil_progress_fn progress,
                                      void *progress_arg, veil_error *err);

/* The weights of a trained set, on the raw features: weights[0] is the bias, weights[1 + j] feature j's. */
veil_status veil_train_decrypt(double *weights, const veil_keyset *keys, const veil_ciphertexts *model, veil_error *err);
/*
 * veil_train_decrypt with options (veil_decrypt_options in ml.h; NULL: plain decryption). Weights handed to
 * anyone else (a published model) should be flooded: `veil decrypt --onnx` floods by default.
 */
veil_status veil_train_decrypt_ex(double *weights, const veil_keyset *keys, const veil_ciphertexts *model,
                                  const veil_decrypt_options *opts, veil_error *err);

/*
 * The same algorithm in float64 (same scaling, polynomial, schedule and iterations; opts->iterations must be
 * set): weights[0..F] as veil_train_decrypt gives them. *t_max, when not NULL, receives the largest |z.v| met,
 * to compare with the sigmoid's range.
 */
veil_status veil_train_run_plain(double *weights, const veil_train_request *request, const veil_train_options *opts,
                                 const double *x, const double *y, size_t rows, double *t_max, veil_error *err);

/*
 * A standard ONNX model for trained weights: input "x" [N, F], output "y" [N, 1] = x W + b, followed by a
 * Sigmoid for logistic regression (so that it gives probabilities). Bytes freed with veil_buffer_free.
 */
veil_status veil_train_to_onnx(veil_buffer *out, veil_train_task task, const double *weights, size_t features,
                               veil_error *err);

VEIL_API_END

#ifdef __cplusplus
}
#endif
#endif /* VEIL_TRAIN_H */
