/*
 * Lowering an ONNX graph to the program the server evaluates: a chain of stages on one sample's flattened
 * features.
 *
 * 1. Constant folding: every node that does not depend on the data input is computed once.
 * 2. The data path must be a chain (each node reads one data value; Mul(x, x) reads it twice).
 * 3. Each maximal run of nodes that are affine in the data (Gemm, MatMul, Add, Sub, Mul and Div by
 *    constants, Neg, BatchNormalization, Concat with constants, and the shape operators) becomes one
 *    affine stage y = W x + b. W and b are not derived operator by operator: the run is executed by the
 *    interpreter on 0 and on each unit vector, b = f(0) and column i of W = f(e_i) - b, which is exact
 *    for an affine map and folds BatchNormalization, standardization and reshapes into one matrix.
 * 4. Squares (Mul(x, x), Pow(x, 2)) and approximated activations (Sigmoid, Tanh, Relu inside the network:
 *    Chebyshev interpolation over a calibrated range) are elementwise stages.
 * 5. A final Sigmoid, Softmax, LogSoftmax or ArgMax is left to the data owner.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdio.h>
#include "ml/ml_internal.h"
#include "veil/ckks.h"
#include "veil/circuits.h"

#define DEFAULT_DEGREE 15
#define CALIBRATION_MARGIN 0.5 /* the inputs' box: the calibration range widened by half its span */
#define APPROX_TOLERANCE 0.1 /* an approximation may err by a tenth of the activation's range */
#define VEIL_MAX_AFFINE_WEIGHTS (1 << 24) /* 128 MiB of float64 per layer */

typedef enum node_class { NC_CONST, NC_AFFINE, NC_SQUARE, NC_ACTIVATION, NC_FINAL } node_class;

static int is_data(char **data_names, size_t n_data, const char *name)
{
    for (size_t i = 0; i < n_data; i++)
        if (strcmp(data_names[i], name) == 0) return 1;
    return 0;
}

static void append_report(veil_model *m, const char *line)
{
    size_t old = m->report ? strlen(m->report) : 0, add = strlen(line);
    char *r = realloc(m->report, old + add + 2);
    if (!r) return;
    memcpy(r + old, line, add);
    r[old + add] = '\n';
    r[old + add + 1] = 0;
    m->report = r;
}

void veil_program_clear(veil_program *p)
{
    for (size_t i = 0; i < p->n_stages; i++) {
        free(p->stages[i].w);
        free(p->stages[i].b);
        free(p->stages[i].coeffs);
        free(p->stages[i].what);
    }
    free(p->stages);
    memset(p, 0, sizeof *p);
}

size_t veil_program_depth(const veil_program *p)
{
    size_t depth = 0;
    for (size_t i = 0; i < p->n_stages; i++) {
        const veil_stage *s = &p->stages[i];
        switch (s->kind) {
        case VEIL_STAGE_AFFINE: depth += 1; break;
        case VEIL_STAGE_SQUARE: depth += 1; break;
        case VEIL_STAGE_CHEBYSHEV: depth += veil_ckks_chebyshev_depth(s->degree); break;
        case VEIL_STAGE_POWER: depth += s->degree <= 1 ? 1 : 2; break;
        }
    }
    return depth;
}

static double cheb_eval(const double *c, size_t degree, double lo, double hi, double x)
{
    double t = (2 * x - (lo + hi)) / (hi - lo), t0 = 1, t1 = t, s = c[0];
    if (degree >= 1) s += c[1] * t;
    for (size_t k = 2; k <= degree; k++) {
        double t2 = 2 * t * t1 - t0;
        s += c[k] * t2;
        t0 = t1;
        t1 = t2;
    }
    return s;
}

static double stage_scalar(const veil_stage *s, double x)
{
    switch (s->kind) {
    case VEIL_STAGE_SQUARE: return x * x;
    case VEIL_STAGE_CHEBYSHEV: return cheb_eval(s->coeffs, s->degree, s->lo, s->hi, x);
    case VEIL_STAGE_POWER: {
        double r = 0;
        for (size_t k = s->degree + 1; k-- > 0;) r = r * x + s->coeffs[k];
        return r;
    }
    default: return x;
    }
}

veil_status veil_program_run_plain(const veil_program *p, const double *in, double *out, veil_error *err)
{
    return veil_program_run_plain_excess(p, in, out, NULL, err);
}

veil_status veil_program_run_plain_excess(const veil_program *p, const double *in, double *out, double *excess,
                                          veil_error *err)
{
    size_t maxw = p->in_width;
    for (size_t i = 0; i < p->n_stages; i++)
        if (p->stages[i].out_width > maxw) maxw = p->stages[i].out_width;
    veil_status st = VEIL_OK;
    double *x = calloc(maxw, sizeof *x), *y = calloc(maxw, sizeof *y);
    if (!x || !y) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "program run");
    memcpy(x, in, p->in_width * sizeof *x);
    size_t w = p->in_width;
    for (size_t i = 0; i < p->n_stages; i++) {
        const veil_stage *s = &p->stages[i];
        if (s->kind == VEIL_STAGE_AFFINE) {
            for (size_t r = 0; r < s->out_width; r++) {
                double acc = s->b[r];
                for (size_t c = 0; c < s->in_width; c++) acc += s->w[r * s->in_width + c] * x[c];
                y[r] = acc;
            }
            memcpy(x, y, s->out_width * sizeof *x);
            w = s->out_width;
        } else {
            for (size_t k = 0; excess && s->kind == VEIL_STAGE_CHEBYSHEV && k < w; k++)
                *excess = fmax(*excess, fmax(s->lo - x[k], x[k] - s->hi));
            for (size_t k = 0; k < w; k++) x[k] = stage_scalar(s, x[k]);
        }
    }
    memcpy(out, x, p->out_width * sizeof *out);
done:
    free(x);
    free(y);
    return st;
}

size_t veil_final_width(const veil_program *p) { return p->final_op == VEIL_FINAL_ARGMAX ? 1 : p->out_width; }
veil_final_op veil_model_final_op(const veil_model *m) { return m ? m->program.final_op : VEIL_FINAL_NONE; }

void veil_final_apply(const veil_program *p, double *row, size_t width)
{
    double mx = -INFINITY, sum = 0;
    size_t best = 0;
    switch (p->final_op) {
    case VEIL_FINAL_NONE: break;
    case VEIL_FINAL_SIGMOID:
        for (size_t i = 0; i < width; i++)
            row[i] = row[i] >= 0 ? 1 / (1 + exp(-row[i])) : exp(row[i]) / (1 + exp(row[i]));
        break;
    case VEIL_FINAL_SOFTMAX:
    case VEIL_FINAL_LOGSOFTMAX:
        for (size_t i = 0; i < width; i++) mx = fmax(mx, row[i]);
        for (size_t i = 0; i < width; i++) sum += exp(row[i] - mx);
        for (size_t i = 0; i < width; i++)
            row[i] = p->final_op == VEIL_FINAL_SOFTMAX ? exp(row[i] - mx) / sum : row[i] - mx - log(sum);
        break;
    case VEIL_FINAL_ARGMAX:
        for (size_t i = 1; i < width; i++)
            if (row[i] > row[best]) best = i;
        row[0] = (double)best;
        break;
    }
}

/* ---- classification of the data path ------------------------------------------------------------- */

static const char *const affine_ops[] = {"Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Neg", "Identity", "Flatten",
                                         "Reshape", "Squeeze", "Unsqueeze", "Concat", "BatchNormalization", "Conv",
                                         "AveragePool", "GlobalAveragePool", "Pad", "Slice", "Transpose", "Cast",
                                         NULL};

static int op_is(const char *op, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(op, list[i]) == 0) return 1;
    return 0;
}

/* How a data node acts on its data input; NC_CONST means refused (reason in err). */
static veil_status classify(const veil_node *n, char **data, size_t n_data, const veil_env *consts, node_class *cls,
                            veil_error *err)
{
    size_t data_inputs = 0, first = 0;
    for (size_t k = 0; k < n->n_inputs; k++)
        if (n->inputs[k][0] && is_data(data, n_data, n->inputs[k])) {
            if (!data_inputs) first = k;
            data_inputs++;
        }
    const char *op = n->op;
    int self_product = data_inputs == 2 && n->n_inputs == 2 && strcmp(n->inputs[0], n->inputs[1]) == 0;
    if (strcmp(op, "Mul") == 0 && self_product) {
        *cls = NC_SQUARE;
        return VEIL_OK;
    }
    if (data_inputs > 1)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED,
                         "node %s (%s) combines two data-dependent values; Veil evaluates chains of layers", n->label,
                         op);
    if (strcmp(op, "Pow") == 0) {
        const veil_tensor *e = n->n_inputs > 1 ? veil_env_get(consts, n->inputs[1]) : NULL;
        if (first == 0 && e && e->size == 1 && e->data[0] == 2.0) {
            *cls = NC_SQUARE;
            return VEIL_OK;
        }
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "node %s (Pow): only a data value to the constant power 2 is "
                         "evaluated under encryption", n->label);
    }
    if (strcmp(op, "Div") == 0 && first != 0)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "node %s (Div): division by an encrypted value", n->label);
    if ((strcmp(op, "Reshape") == 0 || strcmp(op, "Squeeze") == 0 || strcmp(op, "Unsqueeze") == 0) && first != 0)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "node %s (%s): a shape computed from the data", n->label, op);
    if ((strcmp(op, "BatchNormalization") == 0 || strcmp(op, "Conv") == 0 || strcmp(op, "Pad") == 0) && first != 0)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "node %s (%s): encrypted parameters", n->label, op);
    if (strcmp(op, "Slice") == 0 && first != 0)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "node %s (Slice): slice bounds computed from the data", n->label);
    if (strcmp(op, "ConstantOfShape") == 0)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "node %s (ConstantOfShape): a shape computed from the data",
                         n->label);
    /* a Cast to float or double is the identity on the data (float32's rounding is far below CKKS's precision);
     * to an integer type it truncates, which no polynomial computes */
    const int64_t to = strcmp(op, "Cast") == 0 ? veil_node_attr_int(n, "to", 0) : 0;
    if (to == VEIL_DT_INT32 || to == VEIL_DT_INT64)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "node %s (Cast): a cast of the data to an integer type (it "
                         "truncates) is not evaluated under encryption", n->label);
    if (op_is(op, affine_ops)) {
        *cls = NC_AFFINE;
        return VEIL_OK;
    }
    if (strcmp(op, "Sigmoid") == 0 || strcmp(op, "Tanh") == 0 || strcmp(op, "Relu") == 0) {
        *cls = NC_ACTIVATION;
        return VEIL_OK;
    }
    if (strcmp(op, "Softmax") == 0 || strcmp(op, "LogSoftmax") == 0 || strcmp(op, "ArgMax") == 0) {
        *cls = NC_FINAL;
        return VEIL_OK;
    }
    return veil_fail(err, VEIL_ERR_UNSUPPORTED, "node %s (%s): the operator is not supported by Veil", n->label, op);
}

/* ---- building stages ------------------------------------------------------------------------------ */

static veil_status push_stage(veil_program *p, const veil_stage *s, veil_error *err)
{
    veil_stage *st = realloc(p->stages, (p->n_stages + 1) * sizeof *st);
    if (!st) return veil_fail(err, VEIL_ERR_NO_MEMORY, "stages");
    p->stages = st;
    p->stages[p->n_stages++] = *s;
    return VEIL_OK;
}

static char *describe(const veil_graph *g, size_t first, size_t last)
{
    char buf[256];
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = first; i < last && len < sizeof buf - 40; i++) {
        int w = snprintf(buf + len, sizeof buf - len, "%s%s", len ? "+" : "", g->nodes[i].op);
        if (w > 0) len += (size_t)w;
    }
    char *d = malloc(len + 1);
    if (d) memcpy(d, buf, len + 1);
    return d;
}

/* The affine map of nodes [first, last) (the data ones among them) from in_name (shape in_shape) to out_name. */
static veil_status affine_stage(const veil_graph *g, const veil_env *consts, const size_t *chain, size_t first,
                                size_t last, const char *in_name, const veil_tensor *in_shape, const char *out_name,
                                size_t out_width, veil_program *p, veil_error *err)
{
    size_t nin = in_shape->size;
    if (out_width && nin > VEIL_MAX_AFFINE_WEIGHTS / out_width)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "the layer %s maps %zu values to %zu: more than the %d weights Veil "
                         "lowers to a dense matrix", g->nodes[chain[first]].label, nin, out_width, VEIL_MAX_AFFINE_WEIGHTS);
    veil_stage s = {.kind = VEIL_STAGE_AFFINE, .in_width = nin, .out_width = out_width};
    s.w = calloc(out_width * (nin ? nin : 1), sizeof(double));
    s.b = calloc(out_width ? out_width : 1, sizeof(double));
    s.what = describe(g, chain[first], chain[last - 1] + 1);
    veil_env env = {0};
    veil_tensor x = {0};
    veil_status st = VEIL_OK;
    if (!s.w || !s.b) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "affine stage of %zu x %zu", out_width, nin);
    for (size_t i = 0; i < consts->count; i++)
        VEIL_CHECK(veil_env_put(&env, consts->names[i], &consts->values[i], err));
    VEIL_CHECK(veil_tensor_copy(&x, in_shape, err));
    for (size_t col = 0; col <= nin; col++) {
        /* col == 0: f(0) = b; col > 0: f(e_{col-1}) - b */
        memset(x.data, 0, nin * sizeof(double));
        if (col > 0) x.data[col - 1] = 1.0;
        VEIL_CHECK(veil_env_put(&env, in_name, &x, err));
        for (size_t k = first; k < last; k++) VEIL_CHECK(veil_node_run(&g->nodes[chain[k]], g->opset, &env, err));
        const veil_tensor *y = veil_env_get(&env, out_name);
        if (!y || y->size != out_width) VEIL_FAIL(err, VEIL_ERR_INTERNAL, "affine stage: output shape changed");
        for (size_t r = 0; r < out_width; r++) {
            if (col == 0) s.b[r] = y->data[r];
            else s.w[r * nin + col - 1] = y->data[r] - s.b[r];
        }
    }
    VEIL_CHECK(push_stage(p, &s, err));
done:
    veil_tensor_clear(&x);
    veil_env_clear(&env);
    if (st != VEIL_OK) {
        free(s.w);
        free(s.b);
        free(s.what);
    }
    return st;
}

static double act_fn(const char *op, double x)
{
    if (strcmp(op, "Sigmoid") == 0) return x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x));
    if (strcmp(op, "Tanh") == 0) return tanh(x);
    return x > 0 ? x : 0;
}

/* Chebyshev interpolation of f at degree + 1 Chebyshev nodes of [lo, hi], into c (degree + 1 values). */
static void chebyshev_fit(const char *op, size_t d, double lo, double hi, double *c)
{
    const double pi = 3.14159265358979323846;
    for (size_t k = 0; k <= d; k++) c[k] = 0;
    for (size_t j = 0; j <= d; j++) {
        double t = cos(pi * ((double)j + 0.5) / (double)(d + 1));
        double fx = act_fn(op, (lo + hi) / 2 + t * (hi - lo) / 2);
        for (size_t k = 0; k <= d; k++) c[k] += fx * cos((double)k * pi * ((double)j + 0.5) / (double)(d + 1));
    }
    for (size_t k = 0; k <= d; k++) c[k] *= (k == 0 ? 1.0 : 2.0) / (double)(d + 1);
}

/* The fit's largest error over [lo, hi] (4001 points), and the activation's own range there (max - min). */
static double chebyshev_error(const char *op, const double *c, size_t d, double lo, double hi, double *span)
{
    double worst = 0, mn = INFINITY, mx = -INFINITY;
    for (int i = 0; i <= 4000; i++) {
        double x = lo + (hi - lo) * i / 4000.0, f = act_fn(op, x);
        worst = fmax(worst, fabs(cheb_eval(c, d, lo, hi, x) - f));
        mn = fmin(mn, f);
        mx = fmax(mx, f);
    }
    *span = mx - mn;
    return worst;
}

/* The smallest degree 2^k - 1 (up to 1023) whose fit meets the tolerance; 0 when none does. */
static size_t degree_meeting(const char *op, double lo, double hi, double tolerance)
{
    double *c = malloc(1024 * sizeof *c), span;
    for (size_t d = 7; c && d <= 1023; d = 2 * d + 1) {
        chebyshev_fit(op, d, lo, hi, c);
        if (chebyshev_error(op, c, d, lo, hi, &span) <= tolerance) {
            free(c);
            return d;
        }
    }
    free(c);
    return 0;
}

/*
 * The activation as a Chebyshev polynomial over [lo, hi]. The server computes the polynomial, not the
 * activation: a fit whose largest error exceeds a tenth of the activation's range over [lo, hi] is refused
 * (unless options.force_approximation), naming the degree that meets it.
 */
static veil_status activation_stage(veil_model *m, const veil_node *n, size_t width, double lo, double hi,
                                    veil_program *p, veil_error *err)
{
    size_t d = m->options.degree ? m->options.degree : DEFAULT_DEGREE;
    if (d > 1024) return veil_fail(err, VEIL_ERR_ARGUMENT, "approximation degree %zu (at most 1024)", d);
    veil_status st = VEIL_OK;
    veil_stage s = {.kind = VEIL_STAGE_CHEBYSHEV, .in_width = width, .out_width = width, .degree = d, .lo = lo, .hi = hi};
    s.coeffs = calloc(d + 1, sizeof(double));
    s.what = describe(&m->graph, (size_t)(n - m->graph.nodes), (size_t)(n - m->graph.nodes) + 1);
    if (!s.coeffs || !s.what) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "approximation");
    chebyshev_fit(n->op, d, lo, hi, s.coeffs);
    double span = 0;
    const double worst = chebyshev_error(n->op, s.coeffs, d, lo, hi, &span), tolerance = APPROX_TOLERANCE * span;
    s.approx_error = worst;
    if (worst > tolerance && !m->options.force_approximation) {
        const size_t better = degree_meeting(n->op, lo, hi, tolerance);
        char hint[96];
        if (better) snprintf(hint, sizeof hint, "degree %zu meets it (--degree %zu)", better, better);
        else snprintf(hint, sizeof hint, "no degree up to 1023 meets it: narrow the range");
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "%s %s: its degree-%zu approximation over [%g, %g] errs by up to %.3g, "
                  "more than a tenth of the activation's range there (%.3g); %s, or force it (--force-approximation)",
                  n->op, n->label, d, lo, hi, worst, tolerance, hint);
    }
    char line[256];
    snprintf(line, sizeof line, "%s %s approximated by a degree-%zu Chebyshev polynomial over [%g, %g]: "
             "largest error %.3g", n->op, n->label, d, lo, hi, worst);
    append_report(m, line);
    VEIL_CHECK(push_stage(p, &s, err));
done:
    if (st != VEIL_OK) {
        free(s.coeffs);
        free(s.what);
    }
    return st;
}

/* A square of the data (Mul of a value by itself, Pow 2): the graph's node `node`. */
static veil_status square_stage(const veil_graph *g, size_t node, size_t width, veil_program *p, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_stage s = {.kind = VEIL_STAGE_SQUARE, .in_width = width, .out_width = width};
    s.what = describe(g, node, node + 1);
    VEIL_CHECK(push_stage(p, &s, err));
done:
    if (st != VEIL_OK) free(s.what);
    return st;
}

/* A final Sigmoid evaluated on the server (options.server_sigmoid): the graph's node `node`. */
static veil_status server_sigmoid_stage(veil_model *m, size_t node, size_t width, veil_program *p, veil_error *err)
{
    static const double poly3[4] = {0.5, 0.15012, 0.0, -0.0015930};
    veil_status st = VEIL_OK;
    /* the peers' cubic follows the sigmoid within about 0.1 over [-7.8, 7.8] only: the bounds refuse inputs that
     * can leave it */
    veil_stage s = {.kind = VEIL_STAGE_POWER, .in_width = width, .out_width = width, .degree = 3, .lo = -7.8,
                    .hi = 7.8};
    s.coeffs = malloc(sizeof poly3);
    s.what = describe(&m->graph, node, node + 1);
    if (!s.coeffs || !s.what) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "stage");
    VEIL_CHECK(push_stage(p, &s, err));
    memcpy(s.coeffs, poly3, sizeof poly3);
    append_report(m, "final Sigmoid evaluated on the server as 0.5 + 0.15012 z - 0.0015930 z^3");
done:
    if (st != VEIL_OK) {
        free(s.coeffs);
        free(s.what);
    }
    return st;
}

/*
 * Each input's range over the calibration rows, widened by half its span (and 1e-3) on each side, so that
 * records a little beyond the calibration data (a new patient) are still admitted: the box from which
 * the plan bounds every value of the circuit, and the approximations' ranges below.
 */
static veil_status calibration_box(veil_model *m, size_t width, veil_error *err)
{
    if (!m->options.calibration || m->options.calibration_rows == 0) return VEIL_OK;
    if (m->options.calibration_width && m->options.calibration_width != width)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "the calibration rows have %zu values, the model reads %zu",
                         m->options.calibration_width, width);
    m->box_lo = malloc(width * sizeof *m->box_lo);
    m->box_hi = malloc(width * sizeof *m->box_hi);
    if (!m->box_lo || !m->box_hi) return veil_fail(err, VEIL_ERR_NO_MEMORY, "calibration");
    for (size_t i = 0; i < width; i++) {
        double mn = INFINITY, mx = -INFINITY;
        for (size_t r = 0; r < m->options.calibration_rows; r++) {
            const double v = m->options.calibration[r * width + i];
            if (!isfinite(v)) return veil_fail(err, VEIL_ERR_ARGUMENT, "calibration row %zu, value %zu is not finite", r + 1, i + 1);
            mn = fmin(mn, v);
            mx = fmax(mx, v);
        }
        const double pad = CALIBRATION_MARGIN * (mx - mn) + 1e-3;
        m->box_lo[i] = mn - pad;
        m->box_hi[i] = mx + pad;
    }
    return VEIL_OK;
}

/*
 * The range of an activation's input: given, or from the calibration rows: the range measured on them
 * (widened by 10%), joined with the worst case over their box (interval arithmetic through the stages so
 * far, veil_program_bounds) and with 0 (the latency packing's unused slots), so that no input the box
 * admits leaves the polynomial's range.
 */
static veil_status activation_range(veil_model *m, const size_t *chain, size_t upto, const char *in_name,
                                    const veil_env *consts, const veil_node *n, const veil_program *p, double *lo,
                                    double *hi, veil_error *err)
{
    if (m->options.have_range) {
        *lo = m->options.range_lo;
        *hi = m->options.range_hi;
        if (!(*hi > *lo) || !isfinite(*hi - *lo))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "range [%g, %g] is empty or too wide", *lo, *hi);
        return VEIL_OK;
    }
    if (!m->box_lo)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "%s %s inside the network is approximated by a polynomial over "
                         "the range of its input: give calibration data (--calibrate X.csv) or a range (--range LO:HI)",
                         n->op, n->label);
    size_t width = p->in_width;
    double mn = INFINITY, mx = -INFINITY;
    veil_env env = {0};
    veil_tensor x = {0};
    double *wlo = NULL, *whi = NULL;
    veil_status st = VEIL_OK;
    for (size_t i = 0; i < consts->count; i++)
        VEIL_CHECK(veil_env_put(&env, consts->names[i], &consts->values[i], err));
    VEIL_CHECK(veil_tensor_init(&x, VEIL_DT_FLOAT, m->input_rank, m->input_dims, err));
    for (size_t r = 0; r < m->options.calibration_rows; r++) {
        memcpy(x.data, m->options.calibration + r * width, width * sizeof(double));
        VEIL_CHECK(veil_env_put(&env, m->input_name, &x, err));
        for (size_t k = 0; k < upto; k++)
            VEIL_CHECK(veil_node_run(&m->graph.nodes[chain[k]], m->graph.opset, &env, err));
        const veil_tensor *v = veil_env_get(&env, in_name);
        for (size_t i = 0; v && i < v->size; i++) {
            mn = fmin(mn, v->data[i]);
            mx = fmax(mx, v->data[i]);
        }
    }
    double pad = 0.1 * (mx - mn) + 1e-3;
    *lo = fmin(mn - pad, 0);
    *hi = fmax(mx + pad, 0);
    const size_t w = p->n_stages ? p->stages[p->n_stages - 1].out_width : p->in_width;
    wlo = malloc(w * sizeof *wlo);
    whi = malloc(w * sizeof *whi);
    if (!wlo || !whi) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "calibration");
    VEIL_CHECK(veil_program_bounds(p, p->n_stages, m->box_lo, m->box_hi, 1, wlo, whi, NULL, err));
    for (size_t i = 0; i < w; i++) {
        *lo = fmin(*lo, wlo[i]);
        *hi = fmax(*hi, whi[i]);
    }
done:
    veil_tensor_clear(&x);
    veil_env_clear(&env);
    free(wlo);
    free(whi);
    return st;
}

/* A node that multiplies the data by one scalar constant: its factor (Div: the inverse), else 0. */
static double scalar_factor(const veil_node *n, const veil_env *consts)
{
    if ((strcmp(n->op, "Mul") != 0 && strcmp(n->op, "Div") != 0) || n->n_inputs != 2) return 0;
    for (size_t k = 0; k < 2; k++) {
        const veil_tensor *c = veil_env_get(consts, n->inputs[k]);
        if (!c || c->size != 1 || !isfinite(c->data[0]) || c->data[0] == 0) continue;
        if (strcmp(n->op, "Div") == 0) return k == 1 && isfinite(1 / c->data[0]) ? 1 / c->data[0] : 0;
        return c->data[0];
    }
    return 0;
}

#define INTEGER_MAX_WEIGHT ((double)(1 << 20))
#define INTEGER_MAX_BIAS 9007199254740992.0 /* 2^53 */

/* v as an integer when it is one up to the rounding of float64 arithmetic (an absolute 1e-6: a weight of
 * 600000.4 is no integer however large it is). */
static int near_integer(double v, double *rounded)
{
    *rounded = nearbyint(v);
    return fabs(v - *rounded) <= 1e-6;
}

/*
 * The chain index of the output scale, the last data node before the final operations when it multiplies by
 * one scalar constant (its factor in *scale), or SIZE_MAX.
 */
static size_t output_scale_node(const veil_graph *g, const size_t *chain, size_t n_chain, const veil_env *consts,
                                double *scale)
{
    size_t k = n_chain;
    while (k > 0) {
        const char *op = g->nodes[chain[k - 1]].op;
        if (strcmp(op, "Sigmoid") && strcmp(op, "Softmax") && strcmp(op, "LogSoftmax") && strcmp(op, "ArgMax")) break;
        k--;
    }
    if (k == 0) return SIZE_MAX;
    const double f = scalar_factor(&g->nodes[chain[k - 1]], consts);
    if (f == 0 || f < 0) return SIZE_MAX; /* a negative scale would turn an ArgMax around: left in the layers */
    *scale = f;
    return k - 1;
}

/* Exact inference: every stage must be affine with integer weights and biases, or a square. */
static veil_status integer_program(veil_program *p, veil_error *err)
{
    p->integer = 1;
    for (size_t si = 0; si < p->n_stages; si++) {
        veil_stage *s = &p->stages[si];
        if (s->kind == VEIL_STAGE_SQUARE) continue;
        if (s->kind != VEIL_STAGE_AFFINE)
            return veil_fail(err, VEIL_ERR_UNSUPPORTED, "exact inference takes affine layers and squares: the layer "
                             "'%s' needs a polynomial approximation (quantize a network with square activations)",
                             s->what ? s->what : "?");
        for (size_t i = 0; i < s->out_width * s->in_width; i++) {
            double r;
            if (!near_integer(s->w[i], &r) || fabs(r) >= INTEGER_MAX_WEIGHT)
                return veil_fail(err, VEIL_ERR_UNSUPPORTED, "exact inference: the layer '%s' has weight %.9g (row %zu, "
                                 "column %zu), not an integer below 2^20 in magnitude: quantize the model (and put its "
                                 "scale in a final Mul)", s->what ? s->what : "?", s->w[i], i / s->in_width + 1,
                                 i % s->in_width + 1);
            s->w[i] = r;
        }
        for (size_t i = 0; i < s->out_width; i++) {
            double r;
            if (!near_integer(s->b[i], &r) || fabs(r) >= INTEGER_MAX_BIAS)
                return veil_fail(err, VEIL_ERR_UNSUPPORTED, "exact inference: the layer '%s' has bias %.9g (output "
                                 "%zu), not an integer below 2^53", s->what ? s->what : "?", s->b[i], i + 1);
            s->b[i] = r;
        }
    }
    return VEIL_OK;
}

veil_status veil_program_run_integer(const veil_program *p, const int64_t *in, int64_t *out, veil_error *err)
{
    size_t maxw = p->in_width;
    for (size_t i = 0; i < p->n_stages; i++)
        if (p->stages[i].out_width > maxw) maxw = p->stages[i].out_width;
    veil_status st = VEIL_OK;
    int64_t *x = calloc(maxw, sizeof *x), *y = calloc(maxw, sizeof *y);
    if (!x || !y) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "integer run");
    memcpy(x, in, p->in_width * sizeof *x);
    for (size_t i = 0; i < p->n_stages; i++) {
        const veil_stage *s = &p->stages[i];
        int overflow = 0;
        if (s->kind == VEIL_STAGE_AFFINE) {
            for (size_t r = 0; r < s->out_width; r++) {
                int64_t acc = (int64_t)s->b[r], term;
                for (size_t c = 0; c < s->in_width; c++) {
                    overflow |= __builtin_mul_overflow((int64_t)s->w[r * s->in_width + c], x[c], &term);
                    overflow |= __builtin_add_overflow(acc, term, &acc);
                }
                y[r] = acc;
            }
            memcpy(x, y, s->out_width * sizeof *x);
        } else if (s->kind == VEIL_STAGE_SQUARE) {
            for (size_t k = 0; k < s->in_width; k++) overflow |= __builtin_mul_overflow(x[k], x[k], &x[k]);
        } else {
            VEIL_FAIL(err, VEIL_ERR_INTERNAL, "integer run: layer %zu is neither affine nor a square", i + 1);
        }
        if (overflow)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "integer run: layer %zu ('%s') leaves the int64 range", i + 1,
                      s->what ? s->what : "?");
    }
    memcpy(out, x, p->out_width * sizeof *out);
done:
    free(x);
    free(y);
    return st;
}

static int final_covers_row(const veil_node *n, const veil_tensor *v, int64_t opset)
{
    if (strcmp(n->op, "Sigmoid") == 0) return 1; /* elementwise */
    int64_t dflt = strcmp(n->op, "ArgMax") == 0 ? 0 : (opset >= 13 ? -1 : 1);
    int64_t axis = veil_node_attr_int(n, "axis", dflt);
    if (axis < 0) axis += (int64_t)v->rank;
    if (axis < 0 || axis >= (int64_t)v->rank) return 0;
    if (strcmp(n->op, "ArgMax") != 0 && opset < 13) {
        for (int64_t i = 0; i < axis; i++)
            if (v->dims[i] != 1) return 0;
        return 1;
    }
    for (size_t i = 0; i < v->rank; i++)
        if ((int64_t)i != axis && v->dims[i] != 1) return 0;
    return 1;
}

veil_status veil_program_lower(veil_model *m, veil_error *err)
{
    veil_graph *g = &m->graph;
    veil_program *p = &m->program;
    memset(p, 0, sizeof *p);
    veil_env consts = {0}, shapes = {0};
    size_t outputs = 1;
    for (size_t i = 0; i < g->n_nodes; i++) outputs += g->nodes[i].n_outputs;
    char **data = calloc(outputs + 1, sizeof(char *));
    size_t n_data = 0;
    size_t *chain = calloc(g->n_nodes + 1, sizeof *chain);
    size_t n_chain = 0;
    veil_status st = VEIL_OK;
    veil_tensor x = {0};
    if (!data || !chain) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "lowering");
    data[n_data++] = m->input_name;

    /* 1. constants and the data chain */
    VEIL_CHECK(veil_graph_run_nodes(g, 0, 0, &consts, err));
    for (size_t i = 0; i < g->n_nodes; i++) {
        const veil_node *n = &g->nodes[i];
        int dep = 0;
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k][0] && is_data(data, n_data, n->inputs[k])) dep = 1;
        if (!dep) {
            VEIL_CHECK(veil_node_run(n, g->opset, &consts, err));
            continue;
        }
        const char *why = veil_node_unsupported(n, g->opset);
        if (why) VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "node %s (%s): %s", n->label, n->op, why);
        /* the chain: this node must read the output of the previous data node (or the input) */
        const char *prev = n_chain ? g->nodes[chain[n_chain - 1]].outputs[0] : m->input_name;
        for (size_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k][0] && is_data(data, n_data, n->inputs[k]) && strcmp(n->inputs[k], prev) != 0)
                VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "node %s (%s) reads '%s', an earlier value of the data "
                          "path: Veil evaluates chains of layers (no branches or skip connections)",
                          n->label, n->op, n->inputs[k]);
        /* refused on the data path (a Cast to int, a shape from the data...) before the shapes below are run */
        node_class cls;
        VEIL_CHECK(classify(n, data, n_data, &consts, &cls, err));
        chain[n_chain++] = i;
        for (size_t k = 0; k < n->n_outputs; k++) data[n_data++] = n->outputs[k];
    }
    if (n_chain == 0)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "the model's output does not depend on its input '%s'", m->input_name);
    const char *last_out = g->nodes[chain[n_chain - 1]].outputs[0];
    if (g->n_outputs == 0 || !last_out) VEIL_FAIL(err, VEIL_ERR_FORMAT, "the model declares no output");
    if (g->n_outputs != 1 || strcmp(g->outputs[0].name, last_out) != 0) {
        int found = 0;
        for (size_t k = 0; k < g->n_outputs; k++)
            if (strcmp(g->outputs[k].name, last_out) == 0) found = 1;
        if (g->n_outputs != 1 || !found)
            VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "the model has %zu outputs; Veil evaluates models with one output, "
                      "computed by the last node of the data path", g->n_outputs);
    }

    /* 2. shapes along the chain: run it once on zeros (this also reports shape mismatches by node) */
    for (size_t i = 0; i < consts.count; i++)
        VEIL_CHECK(veil_env_put(&shapes, consts.names[i], &consts.values[i], err));
    VEIL_CHECK(veil_tensor_init(&x, VEIL_DT_FLOAT, m->input_rank, m->input_dims, err));
    VEIL_CHECK(veil_env_put(&shapes, m->input_name, &x, err));
    for (size_t k = 0; k < n_chain; k++)
        VEIL_CHECK(veil_node_run(&g->nodes[chain[k]], g->opset, &shapes, err));

    /* 3. stages */
    if (x.size == 0) VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "input '%s' is empty (a dimension is 0)", m->input_name);
    p->in_width = x.size;
    if (!m->options.integer) VEIL_CHECK(calibration_box(m, x.size, err));
    p->in_rank = m->input_rank;
    memcpy(p->in_dims, m->input_dims, sizeof p->in_dims);
    size_t seg_start = 0;
    const char *seg_in = m->input_name;
    const veil_tensor *cur = veil_env_get(&shapes, m->input_name);
    /* exact inference: the output scale (a last scalar Mul or Div before the final operations) stays out of
     * the affine stages, whose weights must come out as exact integers */
    p->out_scale = 1;
    const size_t scale_k = m->options.integer ? output_scale_node(g, chain, n_chain, &consts, &p->out_scale) : SIZE_MAX;
    size_t k = 0;
    for (; k <= n_chain; k++) {
        node_class cls = NC_FINAL;
        const veil_node *n = k < n_chain ? &g->nodes[chain[k]] : NULL;
        if (n) VEIL_CHECK(classify(n, data, n_data, &consts, &cls, err));
        if (n && cls == NC_ACTIVATION && k == n_chain - 1 && strcmp(n->op, "Sigmoid") == 0) cls = NC_FINAL;
        if (cls == NC_AFFINE && k != scale_k) continue;
        /* close the affine run [seg_start, k) */
        if (k > seg_start) {
            const char *out_name = g->nodes[chain[k - 1]].outputs[0];
            const veil_tensor *outv = veil_env_get(&shapes, out_name);
            VEIL_CHECK(affine_stage(g, &consts, chain, seg_start, k, seg_in, cur, out_name, outv->size, p, err));
            cur = outv;
            seg_in = out_name;
        }
        if (!n) break;
        if (cls == NC_FINAL) break;
        size_t width = cur->size;
        if (k == scale_k) {
            /* applied by the data owner: nothing to evaluate */
        } else if (cls == NC_SQUARE) {
            VEIL_CHECK(square_stage(g, chain[k], width, p, err));
        } else {
            double lo = 0, hi = 0;
            VEIL_CHECK(activation_range(m, chain, k, seg_in, &consts, n, p, &lo, &hi, err));
            VEIL_CHECK(activation_stage(m, n, width, lo, hi, p, err));
        }
        seg_in = n->outputs[0];
        cur = veil_env_get(&shapes, seg_in);
        seg_start = k + 1;
    }
    /* the final operations, applied by the data owner */
    if (cur->size == 0) VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "the data path produces an empty tensor");
    p->out_width = cur->size;
    p->out_rank = cur->rank;
    memcpy(p->out_dims, cur->dims, sizeof p->out_dims);
    for (; k < n_chain; k++) {
        const veil_node *n = &g->nodes[chain[k]];
        node_class cls;
        VEIL_CHECK(classify(n, data, n_data, &consts, &cls, err));
        if (cls == NC_ACTIVATION && strcmp(n->op, "Sigmoid") == 0) cls = NC_FINAL;
        if (cls != NC_FINAL || p->final_op == VEIL_FINAL_ARGMAX ||
            (p->final_op != VEIL_FINAL_NONE && strcmp(n->op, "ArgMax") != 0))
            VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "node %s (%s) follows the model's final %s: only an ArgMax "
                      "may follow it", n->label, n->op, g->nodes[chain[k - 1]].op);
        if (!final_covers_row(n, cur, g->opset) ||
            (strcmp(n->op, "ArgMax") == 0 && veil_node_attr_int(n, "select_last_index", 0) != 0))
            VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "node %s (%s): a final %s is applied by the data owner over "
                      "one sample's whole output row (this one reduces another axis, or selects the last index)",
                      n->label, n->op, n->op);
        if (!strcmp(n->op, "Sigmoid") && m->options.server_sigmoid && k + 1 == n_chain && !p->final_op) {
            VEIL_CHECK(server_sigmoid_stage(m, chain[k], cur->size, p, err));
        } else if (!strcmp(n->op, "Sigmoid")) p->final_op = p->final_op ? p->final_op : VEIL_FINAL_SIGMOID;
        else if (!strcmp(n->op, "Softmax")) p->final_op = VEIL_FINAL_SOFTMAX;
        else if (!strcmp(n->op, "LogSoftmax")) p->final_op = VEIL_FINAL_LOGSOFTMAX;
        else {
            p->final_op = VEIL_FINAL_ARGMAX;
            p->argmax_keepdims = veil_node_attr_int(n, "keepdims", 1) != 0;
        }
        if (p->final_op == VEIL_FINAL_SIGMOID && k + 1 < n_chain && strcmp(g->nodes[chain[k + 1]].op, "ArgMax") == 0)
            VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "node %s: ArgMax after Sigmoid", g->nodes[chain[k + 1]].label);
    }
    /* after the final operations: a server-side Sigmoid would be a polynomial stage, which exact inference refuses */
    if (m->options.integer) VEIL_CHECK(integer_program(p, err));
    {
        char line[160];
        snprintf(line, sizeof line, "program: %zu stages, %zu -> %zu values per sample, depth %zu", p->n_stages,
                 p->in_width, p->out_width, veil_program_depth(p));
        append_report(m, line);
    }
done:
    veil_tensor_clear(&x);
    veil_env_clear(&consts);
    veil_env_clear(&shapes);
    free(data);
    free(chain);
    if (st != VEIL_OK) veil_program_clear(p);
    return st;
}
