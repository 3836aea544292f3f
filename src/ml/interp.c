/*
 * The plaintext reference interpreter: ONNX operators in float64, following the operator specifications
 * (https://onnx.ai/onnx/operators/) for the opsets Veil reads, broadcasting included. It is the oracle of
 * the tests, `veil plain`, the lowering's way to compute affine maps, and the calibration of activations.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <float.h>
#include "ml/ml_internal.h"

/* ---- the environment ------------------------------------------------------------------------------ */

void veil_env_clear(veil_env *env)
{
    for (size_t i = 0; i < env->count; i++) {
        free(env->names[i]);
        veil_tensor_clear(&env->values[i]);
    }
    free(env->names);
    free(env->values);
    memset(env, 0, sizeof *env);
}

static veil_status env_take(veil_env *env, const char *name, veil_tensor *value, veil_error *err)
{
    for (size_t i = 0; i < env->count; i++)
        if (strcmp(env->names[i], name) == 0) {
            veil_tensor_clear(&env->values[i]);
            env->values[i] = *value;
            memset(value, 0, sizeof *value);
            return VEIL_OK;
        }
    if (env->count == env->cap) {
        size_t cap = env->cap ? 2 * env->cap : 16;
        char **names = realloc(env->names, cap * sizeof *names);
        if (!names) return veil_fail(err, VEIL_ERR_NO_MEMORY, "values");
        env->names = names;
        veil_tensor *values = realloc(env->values, cap * sizeof *values);
        if (!values) return veil_fail(err, VEIL_ERR_NO_MEMORY, "values");
        env->values = values;
        env->cap = cap;
    }
    size_t n = strlen(name);
    char *copy = malloc(n + 1);
    if (!copy) return veil_fail(err, VEIL_ERR_NO_MEMORY, "values");
    memcpy(copy, name, n + 1);
    env->names[env->count] = copy;
    env->values[env->count] = *value;
    memset(value, 0, sizeof *value);
    env->count++;
    return VEIL_OK;
}

veil_status veil_env_put(veil_env *env, const char *name, const veil_tensor *value, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_tensor copy = {0};
    VEIL_CHECK(veil_tensor_copy(&copy, value, err));
    VEIL_CHECK(env_take(env, name, &copy, err));
done:
    veil_tensor_clear(&copy);
    return st;
}

const veil_tensor *veil_env_get(const veil_env *env, const char *name)
{
    for (size_t i = 0; i < env->count; i++)
        if (strcmp(env->names[i], name) == 0) return &env->values[i];
    return NULL;
}

/* ---- support ---------------------------------------------------------------------------------- */

static const char *const supported_ops[] = {
    "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Pow", "Constant", "Identity", "Flatten", "Reshape",
    "Squeeze", "Unsqueeze", "Concat", "BatchNormalization", "Sigmoid", "Tanh", "Relu", "Softmax", "LogSoftmax",
    "ArgMax", "Conv", "AveragePool", "GlobalAveragePool", "Pad", "Slice", "Transpose", "Cast", "ConstantOfShape",
    NULL};

int veil_op_supported(const char *op)
{
    for (size_t i = 0; supported_ops[i]; i++)
        if (strcmp(supported_ops[i], op) == 0) return 1;
    return 0;
}

/* The element types Cast converts to: those Veil computes with. */
static int cast_target_supported(int64_t to)
{
    return to == VEIL_DT_FLOAT || to == VEIL_DT_DOUBLE || to == VEIL_DT_INT32 || to == VEIL_DT_INT64;
}

const char *veil_node_unsupported(const veil_node *node, int64_t opset)
{
    (void)opset;
    if (!veil_op_supported(node->op)) return "operator not supported";
    for (size_t i = 0; i < node->n_attrs; i++)
        if (node->attrs[i].kind == VEIL_ATTR_OTHER) return "attribute of an unsupported kind (graph, sparse tensor)";
    if (strcmp(node->op, "BatchNormalization") == 0 &&
        (veil_node_attr_int(node, "training_mode", 0) != 0 || node->n_outputs > 1))
        return "BatchNormalization in training mode";
    if (strcmp(node->op, "AveragePool") == 0 || strcmp(node->op, "Conv") == 0) {
        const veil_attr *ap = veil_node_attr(node, "auto_pad");
        if (ap && ap->kind == VEIL_ATTR_STRING && strcmp(ap->s, "NOTSET") != 0 && strcmp(ap->s, "SAME_UPPER") != 0 &&
            strcmp(ap->s, "SAME_LOWER") != 0 && strcmp(ap->s, "VALID") != 0)
            return "auto_pad value not supported";
    }
    if (strcmp(node->op, "Pad") == 0) {
        const veil_attr *mode = veil_node_attr(node, "mode");
        if (mode && mode->kind == VEIL_ATTR_STRING && strcmp(mode->s, "constant") != 0)
            return "Pad modes other than constant (edge, reflect, wrap) are not supported";
        if (node->n_inputs > 3 && node->inputs[3][0]) return "Pad with an axes input is not supported";
    }
    const veil_attr *to = strcmp(node->op, "Cast") == 0 ? veil_node_attr(node, "to") : NULL;
    if (to && to->kind == VEIL_ATTR_INT && !cast_target_supported(to->i))
        return "Cast to an element type other than float, double, int32 and int64";
    if (strcmp(node->op, "Constant") == 0 && !veil_node_attr(node, "value") && !veil_node_attr(node, "value_float") &&
        !veil_node_attr(node, "value_floats") && !veil_node_attr(node, "value_int") &&
        !veil_node_attr(node, "value_ints"))
        return "Constant other than a numeric tensor";
    return NULL;
}

/* ---- helpers -------------------------------------------------------------------------------------- */

/* A malformed node, in a function of the error idiom (core_internal.h): VEIL_ERR_ARGUMENT and the detail. */
#define FAIL(...) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, __VA_ARGS__)

static veil_status input(const veil_node *n, const veil_env *env, size_t k, const veil_tensor **out, veil_error *err)
{
    if (k >= n->n_inputs || !n->inputs[k][0])
        return veil_fail(err, VEIL_ERR_FORMAT, "node %s (%s) lacks input %zu", n->label, n->op, k + 1);
    *out = veil_env_get(env, n->inputs[k]);
    if (!*out)
        return veil_fail(err, VEIL_ERR_FORMAT, "node %s (%s): input '%s' is not computed before it", n->label,
                         n->op, n->inputs[k]);
    return VEIL_OK;
}

static const veil_tensor *optional_input(const veil_node *n, const veil_env *env, size_t k)
{
    if (k >= n->n_inputs || !n->inputs[k][0]) return NULL;
    return veil_env_get(env, n->inputs[k]);
}

static int is_int(veil_dtype t) { return t == VEIL_DT_INT32 || t == VEIL_DT_INT64; }

/* A shape, axis or pad value of a file as an integer: whole and within +-2^53 (NaN and huge values refused
 * before any conversion, which would be undefined). */
static veil_status index_value(const veil_node *n, double v, int64_t *out, veil_error *err)
{
    if (!(fabs(v) <= 9007199254740992.0) || v != nearbyint(v))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "node %s (%s): %g is not an integer index, dimension or pad",
                         n->label, n->op, v);
    *out = (int64_t)v;
    return VEIL_OK;
}

static int64_t norm_axis(int64_t axis, size_t rank) { return axis < 0 ? axis + (int64_t)rank : axis; }

static veil_status broadcast_shape(const veil_tensor *a, const veil_tensor *b, size_t *rank, int64_t *dims,
                                   const veil_node *n, veil_error *err)
{
    size_t r = a->rank > b->rank ? a->rank : b->rank;
    for (size_t i = 0; i < r; i++) {
        int64_t da = i < r - a->rank ? 1 : a->dims[i - (r - a->rank)];
        int64_t db = i < r - b->rank ? 1 : b->dims[i - (r - b->rank)];
        if (da != db && da != 1 && db != 1)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "node %s (%s): shapes cannot be broadcast (dimension %zu: %lld "
                             "vs %lld)", n->label, n->op, i, (long long)da, (long long)db);
        dims[i] = da == 1 ? db : da;
    }
    *rank = r;
    return VEIL_OK;
}

/* Offset into t of the element at out-index idx (t broadcast to rank r). */
static size_t bcast_offset(const veil_tensor *t, size_t r, const int64_t *idx)
{
    size_t off = 0;
    for (size_t i = r - t->rank; i < r; i++) {
        int64_t d = t->dims[i - (r - t->rank)];
        off = off * (size_t)d + (size_t)(d == 1 ? 0 : idx[i]);
    }
    return off;
}

static void next_index(int64_t *idx, const int64_t *dims, size_t r)
{
    for (size_t i = r; i-- > 0;) {
        if (++idx[i] < dims[i]) return;
        idx[i] = 0;
    }
}

typedef double (*binary_fn)(double, double);
static double op_add(double a, double b) { return a + b; }
static double op_sub(double a, double b) { return a - b; }
static double op_mul(double a, double b) { return a * b; }
static double op_div(double a, double b) { return a / b; }

static veil_status run_binary(const veil_node *n, veil_env *env, binary_fn f, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *a, *b;
    VEIL_CHECK(input(n, env, 0, &a, err));
    VEIL_CHECK(input(n, env, 1, &b, err));
    size_t r;
    int64_t dims[VEIL_MAX_RANK], idx[VEIL_MAX_RANK] = {0};
    VEIL_CHECK(broadcast_shape(a, b, &r, dims, n, err));
    VEIL_CHECK(veil_tensor_init(out, a->dtype, r, dims, err));
    int integer = is_int(a->dtype);
    int pow_op = strcmp(n->op, "Pow") == 0;
    for (size_t i = 0; i < out->size; i++) {
        double x = a->data[bcast_offset(a, r, idx)], y = b->data[bcast_offset(b, r, idx)];
        double v;
        if (pow_op) v = pow(x, y);
        else if (integer && f == op_div) v = y == 0 ? 0 : trunc(x / y);
        else v = f(x, y);
        out->data[i] = integer ? trunc(v) : v;
        next_index(idx, dims, r);
    }
done:
    return st;
}

static double sigmoid(double x) { return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)); }
static double relu(double x) { return x > 0 ? x : 0; }
static double neg(double x) { return -x; }

static veil_status run_unary(const veil_node *n, veil_env *env, double (*f)(double), veil_tensor *out,
                             veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *a;
    VEIL_CHECK(input(n, env, 0, &a, err));
    VEIL_CHECK(veil_tensor_copy(out, a, err));
    for (size_t i = 0; i < out->size; i++) out->data[i] = f(a->data[i]);
done:
    return st;
}

/* C = A B with numpy semantics (1-D operands promoted and the added dimension removed; batch broadcast). */
static veil_status run_matmul(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *a, *b;
    VEIL_CHECK(input(n, env, 0, &a, err));
    VEIL_CHECK(input(n, env, 1, &b, err));
    if (a->rank == 0 || b->rank == 0) FAIL("node %s (MatMul): scalar operand", n->label);
    veil_tensor A = *a, B = *b; /* views with adjusted shapes; data shared */
    if (a->rank == 1) {
        A.rank = 2;
        A.dims[0] = 1;
        A.dims[1] = a->dims[0];
    }
    if (b->rank == 1) {
        B.rank = 2;
        B.dims[0] = b->dims[0];
        B.dims[1] = 1;
    }
    int64_t M = A.dims[A.rank - 2], K = A.dims[A.rank - 1], K2 = B.dims[B.rank - 2], N = B.dims[B.rank - 1];
    if (K != K2) FAIL("node %s (MatMul): inner dimensions differ (%lld vs %lld)", n->label, (long long)K,
                      (long long)K2);
    /* Batch dimensions broadcast. */
    veil_tensor ab = A, bb = B;
    ab.rank = A.rank - 2;
    bb.rank = B.rank - 2;
    size_t br;
    int64_t bdims[VEIL_MAX_RANK], idx[VEIL_MAX_RANK] = {0};
    VEIL_CHECK(broadcast_shape(&ab, &bb, &br, bdims, n, err));
    int64_t odims[VEIL_MAX_RANK + 2];
    size_t orank = 0;
    size_t batches = 1;
    for (size_t i = 0; i < br; i++) {
        odims[orank++] = bdims[i];
        batches *= (size_t)bdims[i];
    }
    if (a->rank > 1) odims[orank++] = M;
    if (b->rank > 1) odims[orank++] = N;
    if (orank > VEIL_MAX_RANK) FAIL("node %s (MatMul): rank too large", n->label);
    VEIL_CHECK(veil_tensor_init(out, a->dtype, orank, odims, err));
    for (size_t t = 0; t < batches; t++) {
        size_t oa = br ? bcast_offset(&ab, br, idx) : 0, ob = br ? bcast_offset(&bb, br, idx) : 0;
        const double *pa = A.data + oa * (size_t)(M * K), *pb = B.data + ob * (size_t)(K * N);
        double *pc = out->data + t * (size_t)(M * N);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += pa[i * K + k] * pb[k * N + j];
                pc[i * N + j] = s;
            }
        if (br) next_index(idx, bdims, br);
    }
done:
    return st;
}

static veil_status run_gemm(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *a, *b, *c = optional_input(n, env, 2);
    VEIL_CHECK(input(n, env, 0, &a, err));
    VEIL_CHECK(input(n, env, 1, &b, err));
    if (a->rank != 2 || b->rank != 2) FAIL("node %s (Gemm): A and B must be matrices", n->label);
    double alpha = veil_node_attr_float(n, "alpha", 1.0), beta = veil_node_attr_float(n, "beta", 1.0);
    int ta = veil_node_attr_int(n, "transA", 0) != 0, tb = veil_node_attr_int(n, "transB", 0) != 0;
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t K2 = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K != K2) FAIL("node %s (Gemm): inner dimensions differ (%lld vs %lld)", n->label, (long long)K,
                      (long long)K2);
    int64_t dims[2] = {M, N};
    if (c) {
        veil_tensor target = {.rank = 2, .dims = {M, N}};
        size_t r;
        int64_t bd[VEIL_MAX_RANK];
        if (c->rank > 2) FAIL("node %s (Gemm): C has rank %zu", n->label, c->rank);
        VEIL_CHECK(broadcast_shape(&target, c, &r, bd, n, err));
        if (bd[0] != M || bd[1] != N) FAIL("node %s (Gemm): C does not broadcast to [%lld, %lld]", n->label,
                                           (long long)M, (long long)N);
    }
    VEIL_CHECK(veil_tensor_init(out, a->dtype, 2, dims, err));
    int64_t idx[2] = {0, 0};
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (ta ? a->data[k * M + i] : a->data[i * K + k]) * (tb ? b->data[j * K + k] : b->data[k * N + j]);
            s *= alpha;
            if (c) {
                idx[0] = i;
                idx[1] = j;
                s += beta * c->data[bcast_offset(c, 2, idx)];
            }
            out->data[i * N + j] = s;
        }
done:
    return st;
}

static veil_status reshape_to(veil_tensor *out, const veil_tensor *a, size_t rank, const int64_t *dims,
                              veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_tensor_init(out, a->dtype, rank, dims, err));
    if (out->size != a->size) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "reshape of %zu elements into %zu", a->size, out->size);
    memcpy(out->data, a->data, a->size * sizeof(double));
done:
    if (st != VEIL_OK) veil_tensor_clear(out);
    return st;
}

static veil_status run_reshape(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *a, *s;
    VEIL_CHECK(input(n, env, 0, &a, err));
    VEIL_CHECK(input(n, env, 1, &s, err));
    if (s->rank != 1 || s->size > VEIL_MAX_RANK) FAIL("node %s (Reshape): bad shape tensor", n->label);
    int allowzero = veil_node_attr_int(n, "allowzero", 0) != 0;
    int64_t dims[VEIL_MAX_RANK];
    size_t known = 1;
    int infer = -1;
    for (size_t i = 0; i < s->size; i++) {
        int64_t d = 0;
        VEIL_CHECK(index_value(n, s->data[i], &d, err));
        if (d == 0 && !allowzero) {
            if (i >= a->rank) FAIL("node %s (Reshape): 0 copies a dimension the input lacks", n->label);
            d = a->dims[i];
        }
        if (d == -1) {
            if (infer >= 0) FAIL("node %s (Reshape): two -1 dimensions", n->label);
            infer = (int)i;
            d = 1;
        } else if (d < 0) {
            FAIL("node %s (Reshape): dimension %lld", n->label, (long long)d);
        }
        dims[i] = d;
        known *= (size_t)d;
    }
    if (infer >= 0) {
        if (known == 0 || a->size % known) FAIL("node %s (Reshape): cannot infer the -1 dimension", n->label);
        dims[infer] = (int64_t)(a->size / known);
    }
    if (reshape_to(out, a, s->size, dims, err) != VEIL_OK)
        FAIL("node %s (Reshape): %zu elements do not fit the shape", n->label, a->size);
done:
    return st;
}

static veil_status run_flatten(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *a;
    VEIL_CHECK(input(n, env, 0, &a, err));
    int64_t axis = norm_axis(veil_node_attr_int(n, "axis", 1), a->rank);
    if (axis < 0 || axis > (int64_t)a->rank) FAIL("node %s (Flatten): axis out of range", n->label);
    int64_t dims[2] = {1, 1};
    for (size_t i = 0; i < a->rank; i++) dims[(int64_t)i < axis ? 0 : 1] *= a->dims[i];
    VEIL_CHECK(reshape_to(out, a, 2, dims, err));
done:
    return st;
}

/* The axes of Squeeze / Unsqueeze: an attribute before opset 13, an input since. */
static veil_status axes_of(const veil_node *n, const veil_env *env, int64_t opset, int64_t *axes, size_t *count,
                           veil_error *err)
{
    veil_status st = VEIL_OK;
    *count = 0;
    const veil_attr *at = veil_node_attr(n, "axes");
    if (at && at->kind == VEIL_ATTR_INTS) {
        if (at->count > VEIL_MAX_RANK) FAIL("node %s: too many axes", n->label);
        for (size_t i = 0; i < at->count; i++) axes[i] = at->ints[i];
        *count = at->count;
    } else {
        (void)opset;
        const veil_tensor *t = optional_input(n, env, 1);
        if (t) {
            if (t->size > VEIL_MAX_RANK) FAIL("node %s: too many axes", n->label);
            for (size_t i = 0; i < t->size; i++) VEIL_CHECK(index_value(n, t->data[i], &axes[i], err));
            *count = t->size;
        }
    }
done:
    return st;
}

static veil_status run_squeeze(const veil_node *n, veil_env *env, int64_t opset, int unsqueeze, veil_tensor *out,
                               veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *a;
    VEIL_CHECK(input(n, env, 0, &a, err));
    int64_t axes[VEIL_MAX_RANK];
    size_t count;
    VEIL_CHECK(axes_of(n, env, opset, axes, &count, err));
    int64_t dims[VEIL_MAX_RANK];
    size_t rank = 0;
    if (unsqueeze) {
        size_t orank = a->rank + count;
        if (orank > VEIL_MAX_RANK) FAIL("node %s (Unsqueeze): rank too large", n->label);
        int mark[VEIL_MAX_RANK] = {0};
        for (size_t i = 0; i < count; i++) {
            int64_t ax = norm_axis(axes[i], orank);
            if (ax < 0 || ax >= (int64_t)orank || mark[ax]) FAIL("node %s (Unsqueeze): bad axes", n->label);
            mark[ax] = 1;
        }
        size_t k = 0;
        for (size_t i = 0; i < orank; i++) dims[i] = mark[i] ? 1 : a->dims[k++];
        rank = orank;
    } else {
        int mark[VEIL_MAX_RANK] = {0};
        for (size_t i = 0; i < count; i++) {
            int64_t ax = norm_axis(axes[i], a->rank);
            if (ax < 0 || ax >= (int64_t)a->rank || a->dims[ax] != 1)
                FAIL("node %s (Squeeze): axis %lld is not of size 1", n->label, (long long)axes[i]);
            mark[ax] = 1;
        }
        for (size_t i = 0; i < a->rank; i++) {
            int drop = count ? mark[i] : a->dims[i] == 1;
            if (!drop) dims[rank++] = a->dims[i];
        }
    }
    VEIL_CHECK(reshape_to(out, a, rank, dims, err));
done:
    return st;
}

/*
 * Pad, constant mode: pads (begin of every axis, then end; negative crops) from the attribute (before opset
 * 11) or the second input, the value from the attribute or the optional third input (0 by default). Affine in
 * the data, so a Pad before a Conv or AveragePool folds into its layer's matrix.
 */
static veil_status run_pad(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *a;
    VEIL_CHECK(input(n, env, 0, &a, err));
    int64_t pads[2 * VEIL_MAX_RANK] = {0};
    const veil_attr *at = veil_node_attr(n, "pads");
    const veil_tensor *pt = optional_input(n, env, 1), *vt = optional_input(n, env, 2);
    const size_t count = at && at->kind == VEIL_ATTR_INTS ? at->count : pt ? pt->size : 0;
    if (count != 2 * a->rank) FAIL("node %s (Pad): %zu pads for a tensor of rank %zu", n->label, count, a->rank);
    for (size_t i = 0; i < count; i++) {
        if (at && at->kind == VEIL_ATTR_INTS) pads[i] = at->ints[i];
        else VEIL_CHECK(index_value(n, pt->data[i], &pads[i], err));
    }
    const double value = vt ? (vt->size == 1 ? vt->data[0] : NAN) : veil_node_attr_float(n, "value", 0.0);
    if (!isfinite(value)) FAIL("node %s (Pad): the constant value must be one finite number", n->label);
    int64_t dims[VEIL_MAX_RANK];
    for (size_t i = 0; i < a->rank; i++) {
        const int64_t limit = (int64_t)1 << 24;
        if (pads[i] < -limit || pads[i] > limit || pads[i + a->rank] < -limit || pads[i + a->rank] > limit)
            FAIL("node %s (Pad): a pad beyond 2^24", n->label);
        dims[i] = a->dims[i] + pads[i] + pads[i + a->rank];
        if (dims[i] < 0) FAIL("node %s (Pad): axis %zu would have %lld values", n->label, i, (long long)dims[i]);
    }
    VEIL_CHECK(veil_tensor_init(out, a->dtype, a->rank, dims, err));
    for (size_t o = 0; o < out->size; o++) {
        /* the output index, axis by axis from the last; its source in a, or none */
        size_t rest = o, src = 0, stride = 1;
        int inside = 1;
        for (size_t k = a->rank; k-- > 0;) {
            const int64_t i = (int64_t)(rest % (size_t)dims[k]) - pads[k];
            rest /= (size_t)dims[k];
            if (i < 0 || i >= a->dims[k]) inside = 0;
            else src += (size_t)i * stride;
            stride *= (size_t)a->dims[k];
        }
        out->data[o] = inside ? a->data[src] : value;
    }
done:
    return st;
}

static veil_status run_concat(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *first;
    VEIL_CHECK(input(n, env, 0, &first, err));
    int64_t axis = norm_axis(veil_node_attr_int(n, "axis", 0), first->rank);
    if (axis < 0 || axis >= (int64_t)first->rank) FAIL("node %s (Concat): axis out of range", n->label);
    int64_t dims[VEIL_MAX_RANK];
    memcpy(dims, first->dims, sizeof dims);
    dims[axis] = 0;
    for (size_t k = 0; k < n->n_inputs; k++) {
        const veil_tensor *t;
        VEIL_CHECK(input(n, env, k, &t, err));
        if (t->rank != first->rank) FAIL("node %s (Concat): inputs of different ranks", n->label);
        for (size_t i = 0; i < t->rank; i++)
            if ((int64_t)i != axis && t->dims[i] != first->dims[i])
                FAIL("node %s (Concat): shapes differ outside the axis", n->label);
        dims[axis] += t->dims[axis];
    }
    VEIL_CHECK(veil_tensor_init(out, first->dtype, first->rank, dims, err));
    size_t outer = 1, inner = 1;
    for (int64_t i = 0; i < axis; i++) outer *= (size_t)dims[i];
    for (size_t i = (size_t)axis + 1; i < first->rank; i++) inner *= (size_t)dims[i];
    size_t pos = 0;
    for (size_t o = 0; o < outer; o++)
        for (size_t k = 0; k < n->n_inputs; k++) {
            const veil_tensor *t = veil_env_get(env, n->inputs[k]);
            size_t chunk = (size_t)t->dims[axis] * inner;
            memcpy(out->data + pos, t->data + o * chunk, chunk * sizeof(double));
            pos += chunk;
        }
done:
    return st;
}

static veil_status run_batchnorm(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *x, *scale, *bias, *mean, *var;
    VEIL_CHECK(input(n, env, 0, &x, err));
    VEIL_CHECK(input(n, env, 1, &scale, err));
    VEIL_CHECK(input(n, env, 2, &bias, err));
    VEIL_CHECK(input(n, env, 3, &mean, err));
    VEIL_CHECK(input(n, env, 4, &var, err));
    if (x->rank < 2) FAIL("node %s (BatchNormalization): input of rank %zu", n->label, x->rank);
    size_t C = (size_t)x->dims[1];
    if (scale->size != C || bias->size != C || mean->size != C || var->size != C)
        FAIL("node %s (BatchNormalization): parameters do not have %zu channels", n->label, C);
    double eps = veil_node_attr_float(n, "epsilon", 1e-5);
    VEIL_CHECK(veil_tensor_copy(out, x, err));
    size_t inner = 1;
    for (size_t i = 2; i < x->rank; i++) inner *= (size_t)x->dims[i];
    for (size_t i = 0; i < x->size; i++) {
        size_t c = (i / inner) % C;
        out->data[i] = scale->data[c] * (x->data[i] - mean->data[c]) / sqrt(var->data[c] + eps) + bias->data[c];
    }
done:
    return st;
}

/* Softmax / LogSoftmax: before opset 13 over the input coerced to 2-D at axis (default 1); since, along axis (-1). */
static veil_status run_softmax(const veil_node *n, veil_env *env, int64_t opset, int log_form, veil_tensor *out,
                               veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *a;
    VEIL_CHECK(input(n, env, 0, &a, err));
    int64_t axis = norm_axis(veil_node_attr_int(n, "axis", opset >= 13 ? -1 : 1), a->rank);
    if (axis < 0 || (axis >= (int64_t)a->rank && a->rank > 0)) FAIL("node %s: axis out of range", n->label);
    VEIL_CHECK(veil_tensor_copy(out, a, err));
    size_t outer = 1, len = 1, inner = 1;
    for (size_t i = 0; i < a->rank; i++) {
        if ((int64_t)i < axis) outer *= (size_t)a->dims[i];
        else if (opset < 13 || (int64_t)i == axis) len *= (size_t)a->dims[i];
        else inner *= (size_t)a->dims[i];
    }
    for (size_t o = 0; o < outer; o++)
        for (size_t in = 0; in < inner; in++) {
            double *base = out->data + o * len * inner + in;
            double mx = -INFINITY, sum = 0;
            for (size_t k = 0; k < len; k++) mx = fmax(mx, base[k * inner]);
            for (size_t k = 0; k < len; k++) sum += exp(base[k * inner] - mx);
            for (size_t k = 0; k < len; k++) {
                double v = base[k * inner] - mx;
                base[k * inner] = log_form ? v - log(sum) : exp(v) / sum;
            }
        }
done:
    return st;
}

static veil_status run_argmax(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *a;
    VEIL_CHECK(input(n, env, 0, &a, err));
    int64_t axis = norm_axis(veil_node_attr_int(n, "axis", 0), a->rank);
    if (axis < 0 || axis >= (int64_t)a->rank) FAIL("node %s (ArgMax): axis out of range", n->label);
    int keep = veil_node_attr_int(n, "keepdims", 1) != 0, last = veil_node_attr_int(n, "select_last_index", 0) != 0;
    int64_t dims[VEIL_MAX_RANK];
    size_t rank = 0, outer = 1, len = (size_t)a->dims[axis], inner = 1;
    for (size_t i = 0; i < a->rank; i++) {
        if ((int64_t)i == axis) {
            if (keep) dims[rank++] = 1;
            continue;
        }
        dims[rank++] = a->dims[i];
        if ((int64_t)i < axis) outer *= (size_t)a->dims[i];
        else inner *= (size_t)a->dims[i];
    }
    VEIL_CHECK(veil_tensor_init(out, VEIL_DT_INT64, rank, dims, err));
    for (size_t o = 0; o < outer; o++)
        for (size_t in = 0; in < inner; in++) {
            const double *base = a->data + o * len * inner + in;
            size_t best = 0;
            for (size_t k = 1; k < len; k++)
                if (base[k * inner] > base[best * inner] || (last && base[k * inner] == base[best * inner])) best = k;
            out->data[o * inner + in] = (double)best;
        }
done:
    return st;
}

static veil_status run_constant(const veil_node *n, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_attr *a;
    if ((a = veil_node_attr(n, "value")) && a->kind == VEIL_ATTR_TENSOR) {
        VEIL_CHECK(veil_tensor_copy(out, &a->t, err));
    } else if ((a = veil_node_attr(n, "value_float")) && a->kind == VEIL_ATTR_FLOAT) {
        VEIL_CHECK(veil_tensor_init(out, VEIL_DT_FLOAT, 0, NULL, err));
        out->data[0] = a->f;
    } else if ((a = veil_node_attr(n, "value_int")) && a->kind == VEIL_ATTR_INT) {
        VEIL_CHECK(veil_tensor_init(out, VEIL_DT_INT64, 0, NULL, err));
        out->data[0] = (double)a->i;
    } else if ((a = veil_node_attr(n, "value_floats")) && a->kind == VEIL_ATTR_FLOATS) {
        int64_t d = (int64_t)a->count;
        VEIL_CHECK(veil_tensor_init(out, VEIL_DT_FLOAT, 1, &d, err));
        memcpy(out->data, a->floats, a->count * sizeof(double));
    } else if ((a = veil_node_attr(n, "value_ints")) && a->kind == VEIL_ATTR_INTS) {
        int64_t d = (int64_t)a->count;
        VEIL_CHECK(veil_tensor_init(out, VEIL_DT_INT64, 1, &d, err));
        for (size_t i = 0; i < a->count; i++) out->data[i] = (double)a->ints[i];
    } else {
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "node %s (Constant): no numeric value", n->label);
    }
done:
    return st;
}

/* ---- Slice, Transpose, Cast, ConstantOfShape ------------------------------------------------------------ */

#define INDEX_LIMIT ((int64_t)1 << 62) /* indices beyond it (INT64_MAX, INT64_MIN as "to the end") are clamped */

/* An index held as a double, clamped to [-2^62, 2^62] so that the arithmetic below cannot overflow. */
static int64_t clamp_index(double v)
{
    if (isnan(v)) return 0;
    if (v <= -(double)INDEX_LIMIT) return -INDEX_LIMIT;
    if (v >= (double)INDEX_LIMIT) return INDEX_LIMIT;
    return (int64_t)v;
}

static int64_t clamp_to(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* One of Slice's lists: the attribute `name` before opset 10, input k since; *given 0 when absent. */
static veil_status slice_list(const veil_node *n, const veil_env *env, int64_t opset, size_t k, const char *name,
                              int64_t *vals, size_t *count, int *given, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_attr *a = opset < 10 ? veil_node_attr(n, name) : NULL;
    const veil_tensor *t = NULL;
    *count = 0;
    *given = 0;
    if (opset >= 10 && k < n->n_inputs && n->inputs[k][0]) VEIL_CHECK(input(n, env, k, &t, err));
    if (a || t) {
        if (a && a->kind != VEIL_ATTR_INTS) FAIL("node %s (Slice): attribute %s must list integers", n->label, name);
        if (t && (!is_int(t->dtype) || t->rank != 1))
            FAIL("node %s (Slice): %s must be a 1-D tensor of int32 or int64", n->label, name);
        *count = a ? a->count : t->size;
        if (*count > VEIL_MAX_RANK) FAIL("node %s (Slice): %zu %s (at most %d)", n->label, *count, name, VEIL_MAX_RANK);
        for (size_t i = 0; i < *count; i++) {
            if (t && isnan(t->data[i])) FAIL("node %s (Slice): %s holds NaN", n->label, name);
            vals[i] = clamp_index(a ? (double)a->ints[i] : t->data[i]);
        }
        *given = 1;
    }
done:
    return st;
}

/*
 * Slice's window along each axis of x: its first index, step and length (unsliced axes: 0, 1, the whole
 * axis). Negative starts and ends count from the end; starts are clamped to [0, dim] (step > 0) or
 * [0, dim - 1] (step < 0), ends to [0, dim] or [-1, dim - 1].
 */
static veil_status slice_window(const veil_node *n, const veil_env *env, int64_t opset, const veil_tensor *x,
                                int64_t *first, int64_t *step, int64_t *len, veil_error *err)
{
    veil_status st = VEIL_OK;
    int64_t starts[VEIL_MAX_RANK], ends[VEIL_MAX_RANK], axes[VEIL_MAX_RANK], steps[VEIL_MAX_RANK];
    size_t ns, ne, na, nt;
    int gs, ge, ga, gt;
    VEIL_CHECK(slice_list(n, env, opset, 1, "starts", starts, &ns, &gs, err));
    VEIL_CHECK(slice_list(n, env, opset, 2, "ends", ends, &ne, &ge, err));
    VEIL_CHECK(slice_list(n, env, opset, 3, "axes", axes, &na, &ga, err));
    VEIL_CHECK(slice_list(n, env, opset, 4, "steps", steps, &nt, &gt, err));
    if (!gs || !ge) VEIL_FAIL(err, VEIL_ERR_FORMAT, "node %s (Slice) lacks its starts or ends", n->label);
    if (ns != ne || (ga && na != ns) || (gt && nt != ns))
        FAIL("node %s (Slice): starts, ends, axes and steps differ in length", n->label);
    if (ns > x->rank) FAIL("node %s (Slice): %zu starts for a tensor of rank %zu", n->label, ns, x->rank);
    int seen[VEIL_MAX_RANK] = {0};
    for (size_t i = 0; i < x->rank; i++) {
        first[i] = 0;
        step[i] = 1;
        len[i] = x->dims[i];
    }
    for (size_t i = 0; i < ns; i++) {
        const int64_t axis = ga ? norm_axis(axes[i], x->rank) : (int64_t)i;
        if (axis < 0 || axis >= (int64_t)x->rank || seen[axis])
            FAIL("node %s (Slice): axis %lld is out of range or repeated", n->label,
                 (long long)(ga ? axes[i] : axis));
        seen[axis] = 1;
        const int64_t dim = x->dims[axis], by = gt ? steps[i] : 1;
        if (by == 0) FAIL("node %s (Slice): a step of 0", n->label);
        int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i], e = ends[i] < 0 ? ends[i] + dim : ends[i];
        int64_t count = 0;
        if (dim > 0 && by > 0) {
            s = clamp_to(s, 0, dim);
            e = clamp_to(e, 0, dim);
            count = e > s ? (e - s - 1) / by + 1 : 0;
        } else if (dim > 0) {
            s = clamp_to(s, 0, dim - 1);
            e = clamp_to(e, -1, dim - 1);
            count = s > e ? (s - e - 1) / -by + 1 : 0;
        }
        first[axis] = count ? s : 0;
        step[axis] = by;
        len[axis] = count;
    }
done:
    return st;
}

static veil_status run_slice(const veil_node *n, veil_env *env, int64_t opset, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *x;
    VEIL_CHECK(input(n, env, 0, &x, err));
    int64_t first[VEIL_MAX_RANK], step[VEIL_MAX_RANK], len[VEIL_MAX_RANK], idx[VEIL_MAX_RANK] = {0};
    size_t stride[VEIL_MAX_RANK];
    VEIL_CHECK(slice_window(n, env, opset, x, first, step, len, err));
    VEIL_CHECK(veil_tensor_init(out, x->dtype, x->rank, len, err));
    for (size_t i = x->rank, s = 1; i-- > 0;) {
        stride[i] = s;
        s *= (size_t)x->dims[i];
    }
    for (size_t o = 0; o < out->size; o++) {
        size_t src = 0;
        for (size_t i = 0; i < x->rank; i++) src += (size_t)(first[i] + idx[i] * step[i]) * stride[i];
        out->data[o] = x->data[src];
        next_index(idx, len, x->rank);
    }
done:
    return st;
}

/* Transpose: output axis i is input axis perm[i]; perm defaults to the axes reversed. */
static veil_status run_transpose(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *x;
    VEIL_CHECK(input(n, env, 0, &x, err));
    const size_t r = x->rank;
    int64_t perm[VEIL_MAX_RANK], dims[VEIL_MAX_RANK], idx[VEIL_MAX_RANK] = {0};
    size_t stride[VEIL_MAX_RANK];
    int seen[VEIL_MAX_RANK] = {0};
    const veil_attr *a = veil_node_attr(n, "perm");
    if (a && (a->kind != VEIL_ATTR_INTS || a->count != r))
        FAIL("node %s (Transpose): perm must list %zu axes", n->label, r);
    for (size_t i = 0; i < r; i++) {
        perm[i] = a ? a->ints[i] : (int64_t)(r - 1 - i);
        if (perm[i] < 0 || perm[i] >= (int64_t)r || seen[perm[i]])
            FAIL("node %s (Transpose): perm is not a permutation of the %zu axes", n->label, r);
        seen[perm[i]] = 1;
        dims[i] = x->dims[perm[i]];
    }
    VEIL_CHECK(veil_tensor_init(out, x->dtype, r, dims, err));
    for (size_t i = r, s = 1; i-- > 0;) {
        stride[i] = s;
        s *= (size_t)x->dims[i];
    }
    for (size_t o = 0; o < out->size; o++) {
        size_t src = 0;
        for (size_t i = 0; i < r; i++) src += (size_t)idx[i] * stride[perm[i]];
        out->data[o] = x->data[src];
        next_index(idx, dims, r);
    }
done:
    return st;
}

/* v rounded to float32 (round to nearest even; beyond the largest float, infinity), without C's undefined
 * conversion of an out-of-range double. */
static double round_to_float(double v)
{
    if (!isfinite(v) || fabs(v) <= FLT_MAX) return (double)(float)v;
    return fabs(v) >= (double)FLT_MAX + ldexp(1.0, 103) ? copysign(INFINITY, v) : copysign(FLT_MAX, v);
}

/* Cast to float (rounded), double, int32 or int64 (truncated toward zero; NaN, infinities and values beyond the
 * integer type's range, which ONNX leaves undefined, are refused). */
static veil_status run_cast(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *x;
    VEIL_CHECK(input(n, env, 0, &x, err));
    const veil_attr *to = veil_node_attr(n, "to");
    if (!to || to->kind != VEIL_ATTR_INT)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "node %s (Cast) lacks its integer attribute 'to'", n->label);
    if (!cast_target_supported(to->i))
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "node %s (Cast): element type %lld", n->label, (long long)to->i);
    VEIL_CHECK(veil_tensor_copy(out, x, err));
    out->dtype = (veil_dtype)to->i;
    const double lo = to->i == VEIL_DT_INT32 ? -2147483648.0 : -9223372036854775808.0;
    for (size_t i = 0; i < out->size; i++) {
        const double v = x->data[i];
        if (to->i == VEIL_DT_FLOAT) out->data[i] = round_to_float(v);
        else if (to->i == VEIL_DT_DOUBLE) out->data[i] = v;
        else if (!isfinite(v) || trunc(v) < lo || trunc(v) >= -lo)
            FAIL("node %s (Cast): %g has no value in %s", n->label, v,
                 to->i == VEIL_DT_INT32 ? "int32" : "int64");
        else out->data[i] = trunc(v);
    }
done:
    return st;
}

/* ConstantOfShape: a tensor of the int64 shape given, filled with the one value of the attribute (float 0). */
static veil_status run_constant_of_shape(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *s;
    VEIL_CHECK(input(n, env, 0, &s, err));
    if (s->dtype != VEIL_DT_INT64 || s->rank != 1)
        FAIL("node %s (ConstantOfShape): the shape must be a 1-D int64 tensor", n->label);
    if (s->size > VEIL_MAX_RANK)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "node %s (ConstantOfShape): rank %zu (at most %d)", n->label,
                  s->size, VEIL_MAX_RANK);
    const veil_attr *v = veil_node_attr(n, "value");
    if (v && (v->kind != VEIL_ATTR_TENSOR || v->t.size != 1))
        FAIL("node %s (ConstantOfShape): value must be a tensor of one element", n->label);
    int64_t dims[VEIL_MAX_RANK];
    for (size_t i = 0; i < s->size; i++) {
        VEIL_CHECK(index_value(n, s->data[i], &dims[i], err));
        if (dims[i] < 0 || dims[i] > (int64_t)VEIL_TENSOR_MAX_ELEMENTS)
            FAIL("node %s (ConstantOfShape): dimension %g (from 0 to 2^26)", n->label, s->data[i]);
    }
    VEIL_CHECK(veil_tensor_init(out, v ? v->t.dtype : VEIL_DT_FLOAT, s->size, dims, err));
    for (size_t i = 0; v && i < out->size; i++) out->data[i] = v->t.data[0];
done:
    return st;
}

/* ---- convolution and pooling (N-D, 1 to 3 spatial dimensions) ----------------------------------------- */

typedef struct window_geometry {
    size_t rank;                     /* spatial dimensions */
    int64_t in[3], out[3], k[3], stride[3], dil[3], pad_begin[3], pad_end[3];
} window_geometry;

static veil_status ints_attr(const veil_node *n, const char *name, int64_t *out, size_t count, int64_t dflt,
                             veil_error *err)
{
    const veil_attr *a = veil_node_attr(n, name);
    for (size_t i = 0; i < count; i++) out[i] = dflt;
    if (!a) return VEIL_OK;
    if (a->kind != VEIL_ATTR_INTS || a->count != count)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "node %s (%s): attribute %s must list %zu integers", n->label, n->op,
                         name, count);
    for (size_t i = 0; i < count; i++) out[i] = a->ints[i];
    return VEIL_OK;
}

/* Output sizes and paddings from kernel_shape, strides, dilations, pads, auto_pad and ceil_mode. */
static veil_status geometry(const veil_node *n, const veil_tensor *x, const int64_t *kernel, window_geometry *g,
                            int ceil_mode, veil_error *err)
{
    veil_status st = VEIL_OK;
    if (x->rank < 3 || x->rank > 5)
        FAIL("node %s (%s): input of rank %zu (Veil pools and convolves 1 to 3 spatial dimensions)", n->label,
             n->op, x->rank);
    g->rank = x->rank - 2;
    int64_t pads[6];
    VEIL_CHECK(ints_attr(n, "strides", g->stride, g->rank, 1, err));
    VEIL_CHECK(ints_attr(n, "dilations", g->dil, g->rank, 1, err));
    VEIL_CHECK(ints_attr(n, "pads", pads, 2 * g->rank, 0, err));
    const veil_attr *ap = veil_node_attr(n, "auto_pad");
    const char *mode = ap && ap->kind == VEIL_ATTR_STRING ? ap->s : "NOTSET";
    for (size_t i = 0; i < g->rank; i++) {
        g->in[i] = x->dims[2 + i];
        g->k[i] = kernel[i];
        if (g->k[i] < 1 || g->stride[i] < 1 || g->dil[i] < 1 || pads[i] < 0 || pads[g->rank + i] < 0)
            FAIL("node %s (%s): kernel, strides, dilations and pads must be positive", n->label, n->op);
        const int64_t span = (g->k[i] - 1) * g->dil[i] + 1;
        if (!strcmp(mode, "SAME_UPPER") || !strcmp(mode, "SAME_LOWER")) {
            g->out[i] = (g->in[i] + g->stride[i] - 1) / g->stride[i];
            int64_t total = (g->out[i] - 1) * g->stride[i] + span - g->in[i];
            if (total < 0) total = 0;
            g->pad_begin[i] = !strcmp(mode, "SAME_UPPER") ? total / 2 : (total + 1) / 2;
            g->pad_end[i] = total - g->pad_begin[i];
            continue;
        }
        if (!strcmp(mode, "VALID")) {
            g->pad_begin[i] = g->pad_end[i] = 0;
        } else {
            g->pad_begin[i] = pads[i];
            g->pad_end[i] = pads[g->rank + i];
        }
        const int64_t room = g->in[i] + g->pad_begin[i] + g->pad_end[i] - span;
        if (room < 0) FAIL("node %s (%s): the kernel is larger than the padded input", n->label, n->op);
        g->out[i] = (ceil_mode ? (room + g->stride[i] - 1) / g->stride[i] : room / g->stride[i]) + 1;
        /* with ceil_mode, a last window that would start inside the end padding is dropped */
        if (ceil_mode && (g->out[i] - 1) * g->stride[i] >= g->in[i] + g->pad_begin[i]) g->out[i]--;
    }
done:
    return st;
}

static size_t prod(const int64_t *d, size_t r)
{
    size_t p = 1;
    for (size_t i = 0; i < r; i++) p *= (size_t)d[i];
    return p;
}

/* Unflattens index t over dims d (rank r) into idx. */
static void unflatten(size_t t, const int64_t *d, size_t r, int64_t *idx)
{
    for (size_t i = r; i-- > 0;) {
        idx[i] = (int64_t)(t % (size_t)d[i]);
        t /= (size_t)d[i];
    }
}

static veil_status run_conv(const veil_node *n, veil_env *env, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *x, *w, *b = optional_input(n, env, 2);
    VEIL_CHECK(input(n, env, 0, &x, err));
    VEIL_CHECK(input(n, env, 1, &w, err));
    if (w->rank != x->rank) FAIL("node %s (Conv): the weights' rank differs from the input's", n->label);
    const int64_t group = veil_node_attr_int(n, "group", 1);
    const int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], Cg = w->dims[1];
    if (group < 1 || C % group || M % group || Cg != C / group)
        FAIL("node %s (Conv): %lld channels, %lld groups and weights of %lld input channels do not fit",
             n->label, (long long)C, (long long)group, (long long)Cg);
    if (b && (b->rank != 1 || b->dims[0] != M)) FAIL("node %s (Conv): the bias must have %lld values", n->label, (long long)M);
    window_geometry g;
    int64_t kernel[3];
    for (size_t i = 0; i + 2 < w->rank && i < 3; i++) kernel[i] = w->dims[2 + i];
    int64_t ks[3];
    VEIL_CHECK(ints_attr(n, "kernel_shape", ks, w->rank - 2 < 3 ? w->rank - 2 : 3, 0, err));
    for (size_t i = 0; i + 2 < w->rank && i < 3; i++)
        if (veil_node_attr(n, "kernel_shape") && ks[i] != kernel[i])
            FAIL("node %s (Conv): kernel_shape disagrees with the weights", n->label);
    VEIL_CHECK(geometry(n, x, kernel, &g, 0, err));
    int64_t odims[VEIL_MAX_RANK] = {N, M};
    for (size_t i = 0; i < g.rank; i++) odims[2 + i] = g.out[i];
    VEIL_CHECK(veil_tensor_init(out, x->dtype, x->rank, odims, err));
    const size_t in_sp = prod(g.in, g.rank), out_sp = prod(g.out, g.rank), k_sp = prod(g.k, g.rank);
    const int64_t Mg = M / group;
    for (int64_t nb = 0; nb < N; nb++)
        for (int64_t m = 0; m < M; m++) {
            const int64_t grp = m / Mg;
            for (size_t o = 0; o < out_sp; o++) {
                int64_t oi[3], ki[3];
                unflatten(o, g.out, g.rank, oi);
                double acc = b ? b->data[m] : 0.0;
                for (int64_t c = 0; c < Cg; c++) {
                    const double *xc = x->data + ((size_t)nb * (size_t)C + (size_t)(grp * Cg + c)) * in_sp;
                    const double *wc = w->data + ((size_t)m * (size_t)Cg + (size_t)c) * k_sp;
                    for (size_t kk = 0; kk < k_sp; kk++) {
                        unflatten(kk, g.k, g.rank, ki);
                        size_t off = 0;
                        int inside = 1;
                        for (size_t d = 0; d < g.rank; d++) {
                            const int64_t pos = oi[d] * g.stride[d] + ki[d] * g.dil[d] - g.pad_begin[d];
                            if (pos < 0 || pos >= g.in[d]) inside = 0;
                            off = off * (size_t)g.in[d] + (size_t)(pos < 0 ? 0 : pos);
                        }
                        if (inside) acc += xc[off] * wc[kk];
                    }
                }
                out->data[((size_t)nb * (size_t)M + (size_t)m) * out_sp + o] = acc;
            }
        }
done:
    return st;
}

static veil_status run_avgpool(const veil_node *n, veil_env *env, int global, veil_tensor *out, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_tensor *x;
    VEIL_CHECK(input(n, env, 0, &x, err));
    window_geometry g;
    int64_t kernel[3];
    if (x->rank < 3 || x->rank > 5) FAIL("node %s (%s): input of rank %zu", n->label, n->op, x->rank);
    if (global) {
        memset(&g, 0, sizeof g);
        g.rank = x->rank - 2;
        for (size_t i = 0; i < g.rank; i++) {
            g.in[i] = g.k[i] = x->dims[2 + i];
            g.out[i] = g.stride[i] = g.dil[i] = 1;
        }
    } else {
        const veil_attr *d = veil_node_attr(n, "dilations");
        for (size_t i = 0; d && i < (d->kind == VEIL_ATTR_INTS ? d->count : 1); i++)
            if (d->kind != VEIL_ATTR_INTS || d->ints[i] != 1)
                VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "node %s (AveragePool): dilations are not supported", n->label);
        VEIL_CHECK(ints_attr(n, "kernel_shape", kernel, x->rank - 2, 0, err));
        VEIL_CHECK(geometry(n, x, kernel, &g, veil_node_attr_int(n, "ceil_mode", 0) != 0, err));
    }
    const int include_pad = !global && veil_node_attr_int(n, "count_include_pad", 0) != 0;
    int64_t odims[VEIL_MAX_RANK] = {x->dims[0], x->dims[1]};
    for (size_t i = 0; i < g.rank; i++) odims[2 + i] = g.out[i];
    VEIL_CHECK(veil_tensor_init(out, x->dtype, x->rank, odims, err));
    const size_t in_sp = prod(g.in, g.rank), out_sp = prod(g.out, g.rank), k_sp = prod(g.k, g.rank);
    const size_t planes = (size_t)x->dims[0] * (size_t)x->dims[1];
    for (size_t p = 0; p < planes; p++)
        for (size_t o = 0; o < out_sp; o++) {
            int64_t oi[3], ki[3];
            unflatten(o, g.out, g.rank, oi);
            double acc = 0;
            size_t count = 0;
            for (size_t kk = 0; kk < k_sp; kk++) {
                unflatten(kk, g.k, g.rank, ki);
                size_t off = 0;
                int inside = 1, in_padded = 1;
                for (size_t d = 0; d < g.rank; d++) {
                    const int64_t pos = oi[d] * g.stride[d] + ki[d] - g.pad_begin[d];
                    if (pos < 0 || pos >= g.in[d]) inside = 0;
                    if (pos < -g.pad_begin[d] || pos >= g.in[d] + g.pad_end[d]) in_padded = 0;
                    off = off * (size_t)g.in[d] + (size_t)(pos < 0 ? 0 : pos);
                }
                if (inside) acc += x->data[p * in_sp + off];
                if (include_pad ? in_padded : inside) count++;
            }
            out->data[p * out_sp + o] = count ? acc / (double)count : 0.0;
        }
done:
    return st;
}

veil_status veil_node_run(const veil_node *n, int64_t opset, veil_env *env, veil_error *err)
{
    const char *why = veil_node_unsupported(n, opset);
    if (why) return veil_fail(err, VEIL_ERR_UNSUPPORTED, "node %s (operator %s): %s", n->label, n->op, why);
    if (n->n_outputs < 1 || !n->outputs[0][0]) return veil_fail(err, VEIL_ERR_FORMAT, "node %s has no output", n->label);
    veil_status st = VEIL_OK;
    veil_tensor out = {0};
    const char *op = n->op;
    if (!strcmp(op, "Add")) VEIL_CHECK(run_binary(n, env, op_add, &out, err));
    else if (!strcmp(op, "Sub")) VEIL_CHECK(run_binary(n, env, op_sub, &out, err));
    else if (!strcmp(op, "Mul")) VEIL_CHECK(run_binary(n, env, op_mul, &out, err));
    else if (!strcmp(op, "Div")) VEIL_CHECK(run_binary(n, env, op_div, &out, err));
    else if (!strcmp(op, "Pow")) VEIL_CHECK(run_binary(n, env, NULL, &out, err));
    else if (!strcmp(op, "Neg")) VEIL_CHECK(run_unary(n, env, neg, &out, err));
    else if (!strcmp(op, "Sigmoid")) VEIL_CHECK(run_unary(n, env, sigmoid, &out, err));
    else if (!strcmp(op, "Tanh")) VEIL_CHECK(run_unary(n, env, tanh, &out, err));
    else if (!strcmp(op, "Relu")) VEIL_CHECK(run_unary(n, env, relu, &out, err));
    else if (!strcmp(op, "Identity")) {
        const veil_tensor *a;
        VEIL_CHECK(input(n, env, 0, &a, err));
        VEIL_CHECK(veil_tensor_copy(&out, a, err));
    } else if (!strcmp(op, "MatMul")) VEIL_CHECK(run_matmul(n, env, &out, err));
    else if (!strcmp(op, "Gemm")) VEIL_CHECK(run_gemm(n, env, &out, err));
    else if (!strcmp(op, "Reshape")) VEIL_CHECK(run_reshape(n, env, &out, err));
    else if (!strcmp(op, "Flatten")) VEIL_CHECK(run_flatten(n, env, &out, err));
    else if (!strcmp(op, "Squeeze")) VEIL_CHECK(run_squeeze(n, env, opset, 0, &out, err));
    else if (!strcmp(op, "Unsqueeze")) VEIL_CHECK(run_squeeze(n, env, opset, 1, &out, err));
    else if (!strcmp(op, "Concat")) VEIL_CHECK(run_concat(n, env, &out, err));
    else if (!strcmp(op, "BatchNormalization")) VEIL_CHECK(run_batchnorm(n, env, &out, err));
    else if (!strcmp(op, "Softmax")) VEIL_CHECK(run_softmax(n, env, opset, 0, &out, err));
    else if (!strcmp(op, "LogSoftmax")) VEIL_CHECK(run_softmax(n, env, opset, 1, &out, err));
    else if (!strcmp(op, "ArgMax")) VEIL_CHECK(run_argmax(n, env, &out, err));
    else if (!strcmp(op, "Constant")) VEIL_CHECK(run_constant(n, &out, err));
    else if (!strcmp(op, "Conv")) VEIL_CHECK(run_conv(n, env, &out, err));
    else if (!strcmp(op, "AveragePool")) VEIL_CHECK(run_avgpool(n, env, 0, &out, err));
    else if (!strcmp(op, "GlobalAveragePool")) VEIL_CHECK(run_avgpool(n, env, 1, &out, err));
    else if (!strcmp(op, "Pad")) VEIL_CHECK(run_pad(n, env, &out, err));
    else if (!strcmp(op, "Slice")) VEIL_CHECK(run_slice(n, env, opset, &out, err));
    else if (!strcmp(op, "Transpose")) VEIL_CHECK(run_transpose(n, env, &out, err));
    else if (!strcmp(op, "Cast")) VEIL_CHECK(run_cast(n, env, &out, err));
    else if (!strcmp(op, "ConstantOfShape")) VEIL_CHECK(run_constant_of_shape(n, env, &out, err));
    else VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "node %s: operator %s", n->label, op);
    VEIL_CHECK(env_take(env, n->outputs[0], &out, err));
done:
    veil_tensor_clear(&out);
    return st;
}

veil_status veil_graph_run_nodes(const veil_graph *g, size_t first, size_t last, veil_env *env, veil_error *err)
{
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < g->n_inits; i++)
        if (!veil_env_get(env, g->init_names[i])) VEIL_CHECK(veil_env_put(env, g->init_names[i], &g->inits[i], err));
    for (size_t i = first; i < last && i < g->n_nodes; i++) VEIL_CHECK(veil_node_run(&g->nodes[i], g->opset, env, err));
done:
    return st;
}
