/* Internal: plans, key sets and ciphertext sets of the ML layer. */
#ifndef VEIL_ML_PLAN_H
#define VEIL_ML_PLAN_H

#include "ml/ml_internal.h"
#include "veil/rlwe.h"
#include "veil/ckks.h"
#include <stdatomic.h>

#define VEIL_ID_BYTES 32

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
    uint32_t task, degree, range; /* training plans (veil/train.h) */
};

/* What a key set, its bundle and its ciphertexts agree on. Stored in every set's metadata. */
typedef enum veil_set_kind { VEIL_SET_KEYSET = 1, VEIL_SET_EVAL_KEYS = 2, VEIL_SET_INPUTS = 3, VEIL_SET_OUTPUTS = 4,
                              VEIL_SET_PLAN = 5, VEIL_SET_TRAIN_DATA = 6, VEIL_SET_TRAIN_MODEL = 7 } veil_set_kind;

typedef struct veil_ml_meta {
    veil_set_kind kind;
    veil_packing packing;
    uint8_t key_id[VEIL_ID_BYTES];
    uint8_t model_hash[VEIL_ID_BYTES];
    uint64_t batch, slots, rows;
    uint32_t in_width, out_width, width, final_op, scale_bits;
    uint32_t degree, range; /* training: the sigmoid (final_op holds the task) */
} veil_ml_meta;

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
};

/* Throughput: batches x width ciphertexts, cts[b * width + f]; latency: one per row. */
struct veil_ciphertexts {
    veil_ml_meta meta;
    const veil_context *ctx; /* the keys' context: a set does not outlive its keys */
    veil_ckks_ciphertext **cts;
    size_t count;
};

size_t veil_bsgs_baby(size_t slots);
/* Fills the plan's info from its parameters, packing, slots, batch, scale and rotations (not depth or sizes). */
void veil_plan_info_from_params(veil_plan *plan);
veil_status veil_ciphertexts_alloc(veil_ciphertexts **out, const veil_context *ctx, const veil_ml_meta *meta,
                                   size_t count, veil_error *err);
size_t veil_ciphertexts_batches(const veil_ml_meta *meta);

/* Builds a model from a parsed graph (moved in); dims NULL: the input's declared shape, batch as 1. */
veil_status veil_model_from_graph(veil_model **out, veil_graph *g, const uint8_t *data, size_t len,
                                  const int64_t *dims, size_t rank, const veil_model_options *opts, veil_error *err);

#endif
