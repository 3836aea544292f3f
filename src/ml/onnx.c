#define _POSIX_C_SOURCE 200809L
/*
 * ONNX import: the ModelProto (decoded by the protobuf-c code generated at build time from Debian's
 * onnx.proto) copied into Veil's own graph, with every field we use validated: tensor sizes against their
 * data, element types, ranks, names. Nothing of the protobuf message outlives this file.
 */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <math.h>
#include "ml/ml_internal.h"
#include "onnx.pb-c.h"

#define MAX_NODES 100000
#define MAX_NAME 4096

veil_status veil_tensor_init(veil_tensor *t, veil_dtype dtype, size_t rank, const int64_t *dims, veil_error *err)
{
    memset(t, 0, sizeof *t);
    if (rank > VEIL_MAX_RANK) return veil_fail(err, VEIL_ERR_UNSUPPORTED, "tensor of rank %zu (at most %d)", rank,
                                                VEIL_MAX_RANK);
    size_t size = 1;
    for (size_t i = 0; i < rank; i++) {
        if (dims[i] < 0) return veil_fail(err, VEIL_ERR_FORMAT, "tensor dimension %lld is negative", (long long)dims[i]);
        if (dims[i] > 0 && size > VEIL_TENSOR_MAX_ELEMENTS / (size_t)dims[i])
            return veil_fail(err, VEIL_ERR_UNSUPPORTED, "tensor of more than %zu elements", VEIL_TENSOR_MAX_ELEMENTS);
        size *= (size_t)dims[i];
        t->dims[i] = dims[i];
    }
    t->dtype = dtype;
    t->rank = rank;
    t->size = size;
    t->data = calloc(size ? size : 1, sizeof(double));
    if (!t->data) return veil_fail(err, VEIL_ERR_NO_MEMORY, "tensor of %zu elements", size);
    return VEIL_OK;
}

veil_status veil_tensor_copy(veil_tensor *dst, const veil_tensor *src, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_tensor_init(dst, src->dtype, src->rank, src->dims, err));
    memcpy(dst->data, src->data, src->size * sizeof(double));
done:
    return st;
}

void veil_tensor_clear(veil_tensor *t)
{
    if (!t) return;
    free(t->data);
    memset(t, 0, sizeof *t);
}

int veil_dtype_supported(int onnx_type)
{
    return onnx_type == VEIL_DT_FLOAT || onnx_type == VEIL_DT_DOUBLE || onnx_type == VEIL_DT_INT64 ||
           onnx_type == VEIL_DT_INT32;
}

static const char *dtype_name(int t)
{
    static const char *names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64",
                                  "string", "bool", "float16", "double", "uint32", "uint64", "complex64",
                                  "complex128", "bfloat16"};
    return t >= 0 && t < (int)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

static veil_status copy_tensor_proto(veil_tensor *t, const Onnx__TensorProto *tp, veil_error *err)
{
    if (!veil_dtype_supported(tp->data_type))
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "tensor '%s' has element type %s (Veil reads float, double, "
                         "int32 and int64)", tp->name ? tp->name : "", dtype_name(tp->data_type));
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "tensor '%s' keeps its data in an external file",
                         tp->name ? tp->name : "");
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_tensor_init(t, (veil_dtype)tp->data_type, tp->n_dims, tp->dims, err));
    const size_t n = t->size;
    const size_t width = tp->data_type == VEIL_DT_DOUBLE || tp->data_type == VEIL_DT_INT64 ? 8 : 4;
    size_t have; /* values in the data (SIZE_MAX: raw bytes that are not whole values) */
    if (tp->has_raw_data) have = tp->raw_data.len % width ? SIZE_MAX : tp->raw_data.len / width;
    else if (tp->data_type == VEIL_DT_FLOAT) have = tp->n_float_data;
    else if (tp->data_type == VEIL_DT_DOUBLE) have = tp->n_double_data;
    else if (tp->data_type == VEIL_DT_INT32) have = tp->n_int32_data;
    else have = tp->n_int64_data;
    if (have != n)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "tensor '%s': its shape holds %zu values but its data does not match",
                  tp->name ? tp->name : "", n);
    if (tp->has_raw_data) {
        const uint8_t *r = tp->raw_data.data;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *e = r + i * width; /* little-endian, as ONNX specifies */
            if (tp->data_type == VEIL_DT_FLOAT) {
                uint32_t u = (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
                float f;
                memcpy(&f, &u, 4);
                t->data[i] = f;
            } else if (tp->data_type == VEIL_DT_INT32) {
                uint32_t u = (uint32_t)e[0] | (uint32_t)e[1] << 8 | (uint32_t)e[2] << 16 | (uint32_t)e[3] << 24;
                t->data[i] = (double)(int32_t)u;
            } else {
                uint64_t u = 0;
                for (int b = 7; b >= 0; b--) u = u << 8 | e[b];
                if (tp->data_type == VEIL_DT_DOUBLE) {
                    double d;
                    memcpy(&d, &u, 8);
                    t->data[i] = d;
                } else {
                    t->data[i] = (double)(int64_t)u;
                }
            }
        }
    } else {
        switch (tp->data_type) {
        case VEIL_DT_FLOAT:
            for (size_t i = 0; i < n; i++) t->data[i] = tp->float_data[i];
            break;
        case VEIL_DT_DOUBLE:
            for (size_t i = 0; i < n; i++) t->data[i] = tp->double_data[i];
            break;
        case VEIL_DT_INT32:
            for (size_t i = 0; i < n; i++) t->data[i] = tp->int32_data[i];
            break;
        default:
            for (size_t i = 0; i < n; i++) t->data[i] = (double)tp->int64_data[i];
            break;
        }
    }
done:
    if (st != VEIL_OK) veil_tensor_clear(t);
    return st;
}

static char *dup_name(const char *s)
{
    if (!s) s = "";
    size_t n = strnlen(s, MAX_NAME);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

char *veil_node_label(const char *name, size_t index)
{
    const size_t n = name ? strnlen(name, MAX_NAME) : 0;
    char *d = malloc(n + 24);
    if (!d) return NULL;
    if (n) snprintf(d, n + 24, "'%.*s'", (int)n, name);
    else snprintf(d, n + 24, "#%zu", index);
    return d;
}

static veil_status copy_attr(veil_attr *a, const Onnx__AttributeProto *ap, veil_error *err)
{
    memset(a, 0, sizeof *a);
    if (!(a->name = dup_name(ap->name))) return veil_fail(err, VEIL_ERR_NO_MEMORY, "attribute name");
    switch (ap->type) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT:
        a->kind = VEIL_ATTR_FLOAT;
        a->f = ap->f;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT:
        a->kind = VEIL_ATTR_INT;
        a->i = ap->i;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING:
        a->kind = VEIL_ATTR_STRING;
        if (!(a->s = malloc(ap->s.len + 1))) return veil_fail(err, VEIL_ERR_NO_MEMORY, "attribute");
        if (ap->s.len) memcpy(a->s, ap->s.data, ap->s.len);
        a->s[ap->s.len] = 0;
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR:
        a->kind = VEIL_ATTR_TENSOR;
        if (!ap->t) return veil_fail(err, VEIL_ERR_FORMAT, "attribute '%s' has no tensor", a->name);
        return copy_tensor_proto(&a->t, ap->t, err);
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS:
        a->kind = VEIL_ATTR_FLOATS;
        a->count = ap->n_floats;
        if (!(a->floats = calloc(a->count + 1, sizeof(double)))) return veil_fail(err, VEIL_ERR_NO_MEMORY, "attribute");
        for (size_t i = 0; i < a->count; i++) a->floats[i] = ap->floats[i];
        break;
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS:
        a->kind = VEIL_ATTR_INTS;
        a->count = ap->n_ints;
        if (!(a->ints = calloc(a->count + 1, sizeof(int64_t)))) return veil_fail(err, VEIL_ERR_NO_MEMORY, "attribute");
        for (size_t i = 0; i < a->count; i++) a->ints[i] = ap->ints[i];
        break;
    default:
        a->kind = VEIL_ATTR_OTHER;
        break;
    }
    return VEIL_OK;
}

static void attr_clear(veil_attr *a)
{
    free(a->name);
    free(a->s);
    free(a->floats);
    free(a->ints);
    veil_tensor_clear(&a->t);
}

static veil_status copy_value_info(veil_value_info *v, const Onnx__ValueInfoProto *vp, veil_error *err)
{
    memset(v, 0, sizeof *v);
    if (!(v->name = dup_name(vp->name))) return veil_fail(err, VEIL_ERR_NO_MEMORY, "value name");
    const Onnx__TypeProto *tp = vp->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type) {
        v->elem_type = 0;
        v->rank = (size_t)-1; /* not a tensor, or no type given */
        return VEIL_OK;
    }
    v->elem_type = tp->tensor_type->elem_type;
    const Onnx__TensorShapeProto *sp = tp->tensor_type->shape;
    if (!sp) {
        v->rank = (size_t)-1;
        return VEIL_OK;
    }
    if (sp->n_dim > VEIL_MAX_RANK)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "'%s' has rank %zu (at most %d)", v->name, sp->n_dim, VEIL_MAX_RANK);
    v->rank = sp->n_dim;
    for (size_t i = 0; i < sp->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = sp->dim[i];
        v->dims[i] = d && d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE && d->dim_value >= 0
                         ? d->dim_value : -1;
    }
    return VEIL_OK;
}

static int is_initializer(const veil_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_inits; i++)
        if (strcmp(g->init_names[i], name) == 0) return 1;
    return 0;
}

static veil_status copy_graph(veil_graph *g, const Onnx__ModelProto *mp, veil_error *err)
{
    const Onnx__GraphProto *gp = mp->graph;
    if (!gp) return veil_fail(err, VEIL_ERR_FORMAT, "the ONNX model has no graph");
    g->opset = -1;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (o && (!o->domain || !o->domain[0] || strcmp(o->domain, "ai.onnx") == 0)) g->opset = o->version;
    }
    if (g->opset < 0) g->opset = 1;
    if (gp->n_node > MAX_NODES) return veil_fail(err, VEIL_ERR_UNSUPPORTED, "graph of %zu nodes", gp->n_node);
    if (gp->n_sparse_initializer)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "the graph has sparse initializers");

    /* what is copied belongs to g at once: the caller clears it on failure */
    veil_status st = VEIL_OK;
    g->inits = calloc(gp->n_initializer + 1, sizeof *g->inits);
    g->init_names = calloc(gp->n_initializer + 1, sizeof *g->init_names);
    if (!g->inits || !g->init_names) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "initializers");
    for (size_t i = 0; i < gp->n_initializer; i++) {
        if (!(g->init_names[i] = dup_name(gp->initializer[i]->name)))
            VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "initializer");
        g->n_inits = i + 1;
        VEIL_CHECK(copy_tensor_proto(&g->inits[i], gp->initializer[i], err));
    }

    g->inputs = calloc(gp->n_input + 1, sizeof *g->inputs);
    g->outputs = calloc(gp->n_output + 1, sizeof *g->outputs);
    if (!g->inputs || !g->outputs) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "graph inputs");
    for (size_t i = 0; i < gp->n_input; i++) {
        if (gp->input[i]->name && is_initializer(g, gp->input[i]->name)) continue;
        g->n_inputs++; /* counted first: graph_clear frees its name if copying fails */
        VEIL_CHECK(copy_value_info(&g->inputs[g->n_inputs - 1], gp->input[i], err));
    }
    for (size_t i = 0; i < gp->n_output; i++) {
        g->n_outputs = i + 1;
        VEIL_CHECK(copy_value_info(&g->outputs[i], gp->output[i], err));
    }

    g->nodes = calloc(gp->n_node + 1, sizeof *g->nodes);
    if (!g->nodes) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "nodes");
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        veil_node *n = &g->nodes[i];
        g->n_nodes = i + 1;
        n->op = dup_name(np->op_type);
        n->name = dup_name(np->name);
        n->label = veil_node_label(np->name, i);
        n->inputs = calloc(np->n_input + 1, sizeof(char *));
        n->outputs = calloc(np->n_output + 1, sizeof(char *));
        n->attrs = calloc(np->n_attribute + 1, sizeof *n->attrs);
        if (!n->op || !n->name || !n->label || !n->inputs || !n->outputs || !n->attrs)
            VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "node");
        if (np->domain && np->domain[0] && strcmp(np->domain, "ai.onnx") != 0)
            VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "node %s uses operator domain '%s'", n->label, np->domain);
        if (np->n_output == 0 || !np->output[0] || !np->output[0][0])
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "node %s (%s) has no output", n->label, n->op);
        for (size_t k = 0; k < np->n_input; k++) {
            if (!(n->inputs[k] = dup_name(np->input[k]))) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "node");
            n->n_inputs = k + 1;
        }
        for (size_t k = 0; k < np->n_output; k++) {
            if (!(n->outputs[k] = dup_name(np->output[k]))) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "node");
            n->n_outputs = k + 1;
        }
        for (size_t k = 0; k < np->n_attribute; k++) {
            n->n_attrs = k + 1;
            VEIL_CHECK(copy_attr(&n->attrs[k], np->attribute[k], err));
        }
    }
done:
    return st;
}

void veil_graph_clear(veil_graph *g)
{
    if (!g) return;
    for (size_t i = 0; i < g->n_nodes; i++) {
        veil_node *n = &g->nodes[i];
        free(n->op);
        free(n->name);
        free(n->label);
        for (size_t k = 0; k < n->n_inputs; k++) free(n->inputs[k]);
        for (size_t k = 0; k < n->n_outputs; k++) free(n->outputs[k]);
        for (size_t k = 0; k < n->n_attrs; k++) attr_clear(&n->attrs[k]);
        free(n->inputs);
        free(n->outputs);
        free(n->attrs);
    }
    for (size_t i = 0; i < g->n_inits; i++) {
        free(g->init_names[i]);
        veil_tensor_clear(&g->inits[i]);
    }
    for (size_t i = 0; i < g->n_inputs; i++) free(g->inputs[i].name);
    for (size_t i = 0; i < g->n_outputs; i++) free(g->outputs[i].name);
    free(g->nodes);
    free(g->init_names);
    free(g->inits);
    free(g->inputs);
    free(g->outputs);
    memset(g, 0, sizeof *g);
}

/*
 * protobuf-c decodes nested messages recursively, so a file of a few megabytes nesting messages a million
 * deep (TypeProto in Sequence in TypeProto ...) would overflow the stack. Before decoding, the wire format
 * is scanned without the schema: every length-delimited field whose bytes read as a complete message is
 * descended into, and nesting beyond MAX_NESTING is refused. Real models nest about ten deep; the scan
 * itself recurses at most MAX_NESTING times.
 */
#define MAX_NESTING 48

typedef enum { WIRE_MESSAGE, WIRE_NOT_MESSAGE, WIRE_TOO_DEEP } wire_result;

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        const uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return 1;
    }
    return 0;
}

static wire_result scan_wire(const uint8_t *p, size_t len, unsigned depth)
{
    const uint8_t *end = p + len;
    while (p < end) {
        uint64_t key, v;
        if (!read_varint(&p, end, &key) || (key >> 3) == 0) return WIRE_NOT_MESSAGE;
        switch (key & 7) {
        case 0:
            if (!read_varint(&p, end, &v)) return WIRE_NOT_MESSAGE;
            break;
        case 1:
            if ((size_t)(end - p) < 8) return WIRE_NOT_MESSAGE;
            p += 8;
            break;
        case 5:
            if ((size_t)(end - p) < 4) return WIRE_NOT_MESSAGE;
            p += 4;
            break;
        case 2:
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p)) return WIRE_NOT_MESSAGE;
            if (v > 0 && depth <= MAX_NESTING) {
                if (depth + 1 >= MAX_NESTING) {
                    /* one level more is too deep if these bytes are a message at all */
                    if (scan_wire(p, (size_t)v, MAX_NESTING + 1) == WIRE_MESSAGE) return WIRE_TOO_DEEP;
                } else if (scan_wire(p, (size_t)v, depth + 1) == WIRE_TOO_DEEP) {
                    return WIRE_TOO_DEEP;
                }
            }
            p += v;
            break;
        default:
            return WIRE_NOT_MESSAGE; /* groups (3, 4) are not used by ONNX */
        }
    }
    return WIRE_MESSAGE;
}

veil_status veil_graph_parse(veil_graph *g, const uint8_t *data, size_t len, veil_error *err)
{
    memset(g, 0, sizeof *g);
    if (!data || len == 0) return veil_fail(err, VEIL_ERR_FORMAT, "the model file is empty");
    if (scan_wire(data, len, 0) == WIRE_TOO_DEEP)
        return veil_fail(err, VEIL_ERR_FORMAT, "not a usable ONNX model: messages nested more than %d deep",
                         MAX_NESTING);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, data);
    if (!mp)
        return veil_fail(err, VEIL_ERR_FORMAT, "not an ONNX model (the protobuf message is malformed or truncated)");
    veil_status st = VEIL_OK;
    VEIL_CHECK(copy_graph(g, mp, err));
    if (g->n_nodes == 0 && g->n_outputs == 0)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "not an ONNX model (no nodes and no outputs)");
done:
    onnx__model_proto__free_unpacked(mp, NULL);
    if (st != VEIL_OK) veil_graph_clear(g);
    return st;
}

veil_status veil_tensor_parse(veil_tensor *t, const uint8_t *data, size_t len, veil_error *err)
{
    memset(t, 0, sizeof *t);
    if (scan_wire(data, len, 0) == WIRE_TOO_DEEP)
        return veil_fail(err, VEIL_ERR_FORMAT, "a tensor with messages nested more than %d deep", MAX_NESTING);
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, len, data);
    if (!tp) return veil_fail(err, VEIL_ERR_FORMAT, "not a serialized ONNX tensor");
    veil_status st = VEIL_OK;
    VEIL_CHECK(copy_tensor_proto(t, tp, err));
done:
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return st;
}

const veil_attr *veil_node_attr(const veil_node *node, const char *name)
{
    for (size_t i = 0; i < node->n_attrs; i++)
        if (strcmp(node->attrs[i].name, name) == 0) return &node->attrs[i];
    return NULL;
}

int64_t veil_node_attr_int(const veil_node *node, const char *name, int64_t dflt)
{
    const veil_attr *a = veil_node_attr(node, name);
    return a && a->kind == VEIL_ATTR_INT ? a->i : dflt;
}

double veil_node_attr_float(const veil_node *node, const char *name, double dflt)
{
    const veil_attr *a = veil_node_attr(node, name);
    return a && a->kind == VEIL_ATTR_FLOAT ? a->f : dflt;
}
