/* Internal types of the ML layer: tensors, the ONNX graph, the plaintext interpreter and the lowered program. */
#ifndef VEIL_ML_INTERNAL_H
#define VEIL_ML_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "veil/ml.h"
#include "core/core_internal.h"

/* ---- tensors ------------------------------------------------------------------------------------ */

#define VEIL_MAX_RANK 8
#define VEIL_TENSOR_MAX_ELEMENTS ((size_t)1 << 26) /* 64 Mi values: far above any model Veil can encrypt */

/* Element types Veil computes with; every value is held as a double (int64 values up to 2^53 exactly). */
typedef enum veil_dtype { VEIL_DT_FLOAT = 1, VEIL_DT_INT32 = 6, VEIL_DT_INT64 = 7, VEIL_DT_DOUBLE = 11 } veil_dtype;

typedef struct veil_tensor {
    veil_dtype dtype;
    size_t rank;
    int64_t dims[VEIL_MAX_RANK];
    size_t size; /* product of dims (1 for a scalar) */
    double *data;
} veil_tensor;

veil_status veil_tensor_init(veil_tensor *t, veil_dtype dtype, size_t rank, const int64_t *dims, veil_error *err);
veil_status veil_tensor_copy(veil_tensor *dst, const veil_tensor *src, veil_error *err);
void veil_tensor_clear(veil_tensor *t);
int veil_dtype_supported(int onnx_type);

/* ---- the graph ---------------------------------------------------------------------------------- */

typedef enum veil_attr_kind { VEIL_ATTR_FLOAT, VEIL_ATTR_INT, VEIL_ATTR_STRING, VEIL_ATTR_TENSOR, VEIL_ATTR_FLOATS,
                              VEIL_ATTR_INTS, VEIL_ATTR_OTHER } veil_attr_kind;

typedef struct veil_attr {
    char *name;
    veil_attr_kind kind;
    double f;
    int64_t i;
    char *s;
    veil_tensor t;
    double *floats;
    int64_t *ints;
    size_t count;
} veil_attr;

typedef struct veil_node {
    char *op, *name;
    char *label; /* in messages: 'name', or #i (graph.node[i]) for a node without a name */
    char **inputs, **outputs; /* an empty input name is an omitted optional input */
    size_t n_inputs, n_outputs;
    veil_attr *attrs;
    size_t n_attrs;
} veil_node;

typedef struct veil_value_info {
    char *name;
    int elem_type;
    size_t rank;
    int64_t dims[VEIL_MAX_RANK]; /* -1: symbolic or unknown */
} veil_value_info;

typedef struct veil_graph {
    veil_node *nodes;
    size_t n_nodes;
    char **init_names;
    veil_tensor *inits;
    size_t n_inits;
    veil_value_info *inputs; /* runtime inputs (graph inputs that are not initializers) */
    size_t n_inputs;
    veil_value_info *outputs;
    size_t n_outputs;
    int64_t opset; /* of the default domain */
} veil_graph;

/* Parses an ONNX ModelProto; every field Veil reads is validated. */
veil_status veil_graph_parse(veil_graph *g, const uint8_t *data, size_t len, veil_error *err);
void veil_graph_clear(veil_graph *g);
/* Parses a serialized TensorProto (the .pb files of ONNX's test data). */
veil_status veil_tensor_parse(veil_tensor *t, const uint8_t *data, size_t len, veil_error *err);

const veil_attr *veil_node_attr(const veil_node *node, const char *name);
int64_t veil_node_attr_int(const veil_node *node, const char *name, int64_t dflt);
double veil_node_attr_float(const veil_node *node, const char *name, double dflt);

/* ---- the plaintext interpreter ------------------------------------------------------------------- */

/* A set of named values. */
typedef struct veil_env {
    char **names;
    veil_tensor *values;
    size_t count, cap;
} veil_env;

void veil_env_clear(veil_env *env);
veil_status veil_env_put(veil_env *env, const char *name, const veil_tensor *value, veil_error *err); /* copies */
const veil_tensor *veil_env_get(const veil_env *env, const char *name);

/* Whether the interpreter implements an operator, and a reason when a node's attributes are not supported. */
int veil_op_supported(const char *op);
const char *veil_node_unsupported(const veil_node *node, int64_t opset);
/* Runs one node: reads its inputs from env, stores its outputs there. */
veil_status veil_node_run(const veil_node *node, int64_t opset, veil_env *env, veil_error *err);
/* Runs nodes[first..last) of the graph in order. */
veil_status veil_graph_run_nodes(const veil_graph *g, size_t first, size_t last, veil_env *env, veil_error *err);

/* ---- the lowered program: what the server evaluates on a flat vector per sample ---------------------- */

typedef enum veil_stage_kind {
    VEIL_STAGE_AFFINE = 1, /* y = W x + b */
    VEIL_STAGE_SQUARE = 2, /* y = x * x, elementwise */
    VEIL_STAGE_CHEBYSHEV = 3, /* y = p(x) in the Chebyshev basis over [lo, hi], elementwise */
    VEIL_STAGE_POWER = 4   /* y = c0 + c1 x + c2 x^2 + c3 x^3, elementwise (degree <= 3) */
} veil_stage_kind;

typedef struct veil_stage {
    veil_stage_kind kind;
    size_t in_width, out_width;
    double *w; /* out_width x in_width, row-major (affine) */
    double *b; /* out_width (affine) */
    double *coeffs; /* degree + 1 (polynomials) */
    size_t degree;
    double lo, hi;
    char *what; /* the ONNX nodes it came from, for messages */
    double approx_error; /* the approximation's largest error over [lo, hi] (Chebyshev) */
} veil_stage;

typedef struct veil_program {
    veil_stage *stages;
    size_t n_stages;
    size_t in_width, out_width;
    int64_t in_dims[VEIL_MAX_RANK], out_dims[VEIL_MAX_RANK]; /* per sample, the batch dimension as 1 */
    size_t in_rank, out_rank;
    veil_final_op final_op;
    int64_t final_axis;          /* softmax / argmax axis over the output row */
    int argmax_keepdims;
    int integer;       /* lowered for exact inference: integer weights and biases, affine and square stages */
    double out_scale;  /* exact: the dequantization scale the data owner applies (1: none) */
} veil_program;

void veil_program_clear(veil_program *p);
/* Levels a program uses. */
size_t veil_program_depth(const veil_program *p);
/* Exact programs: one sample in int64, VEIL_ERR_ARGUMENT when a value leaves the int64 range. */
veil_status veil_program_run_integer(const veil_program *p, const int64_t *in, int64_t *out, veil_error *err);
/*
 * Interval arithmetic through stages [0, upto) from the box [in_lo, in_hi] (one interval per input value;
 * bounds.c): the box of stage upto's input in out_lo, out_hi (either may be NULL), and in peak[s] (when not
 * NULL) the largest |value| stage s computes, its outputs and the intermediate values of its evaluation.
 * zero_slots: unused slots hold 0 (the latency packing). VEIL_ERR_ARGUMENT, naming the layer, when an
 * approximated activation's input can leave the range of its approximation.
 */
veil_status veil_program_bounds(const veil_program *p, size_t upto, const double *in_lo, const double *in_hi,
                                int zero_slots, double *out_lo, double *out_hi, double *peak, veil_error *err);
/* Runs the lowered program in float64 (for tests: it must agree with the interpreter). */
veil_status veil_program_run_plain(const veil_program *p, const double *in, double *out, veil_error *err);
/* The same, raising *excess to how far an approximated activation's input leaves its range (0: never). */
veil_status veil_program_run_plain_excess(const veil_program *p, const double *in, double *out, double *excess,
                                          veil_error *err);
/* Applies the final (client-side) operation to one row in place; argmax leaves its index in row[0]. */
void veil_final_apply(const veil_program *p, double *row, size_t width);
size_t veil_final_width(const veil_program *p);

struct veil_model {
    veil_graph graph;
    veil_program program;
    uint8_t hash[32]; /* BLAKE2b-256 of the ONNX bytes */
    char *input_name;
    int64_t input_dims[VEIL_MAX_RANK]; /* as declared, -1 symbolic */
    size_t input_rank;
    veil_model_options options;
    double calib_lo, calib_hi; /* the range measured (or given) for approximated activations */
    double *box_lo, *box_hi;   /* calibration rows given: each input's range over them, widened by 10% (else NULL) */
    char *report; /* lines describing approximations */
    struct veil_model_enc *enc; /* an encrypted model (encmodel.c): its weights are ciphertexts, stage w and b NULL */
};

/* Frees an encrypted model's ciphertexts and its hold on the keys' context (sets.c). */
void veil_model_enc_free(struct veil_model_enc *enc);
/* VEIL_ERR_ARGUMENT for an encrypted model, whose weights only the evaluator can use; `what` names the call
 * (model.c). */
veil_status veil_model_need_weights(const veil_model *m, const char *what, veil_error *err);

/* Building graphs in code (build.c). */
veil_status veil_graph_add_input(veil_graph *g, const char *name, const int64_t *dims, size_t rank, veil_error *err);
veil_status veil_graph_add_output(veil_graph *g, const char *name, veil_error *err);
veil_status veil_graph_add_init(veil_graph *g, const char *name, const double *data, const int64_t *dims, size_t rank,
                                veil_error *err);
/* A node with one output (also its name) and at most one integer attribute (int_attr NULL: none). */
veil_status veil_graph_add_node(veil_graph *g, const char *op, const char *const *inputs, size_t n_inputs,
                                const char *output, const char *int_attr, int64_t value, veil_error *err);

/* A node's label in messages: 'name' in quotes, or #index (its place in the graph's node list) when it has none. */
char *veil_node_label(const char *name, size_t index);
/* The graph as an ONNX ModelProto (float initializers, integer attributes); *out freed with free(). */
veil_status veil_graph_to_onnx(const veil_graph *g, uint8_t **out, size_t *len, veil_error *err);

/* Lowers the graph to a program with the input bound to one sample of shape dims. */
veil_status veil_program_lower(veil_model *m, veil_error *err);

#endif
