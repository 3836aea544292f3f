/* Building graphs in code (for the benchmark and the tests: the same graphs an ONNX file would give). */
#include <stdlib.h>
#include <string.h>
#include "ml/ml_internal.h"

static char *dup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static int grow(void **p, size_t count, size_t size)
{
    void *q = realloc(*p, (count + 1) * size);
    if (!q) return 0;
    *p = q;
    return 1;
}

veil_status veil_graph_add_input(veil_graph *g, const char *name, const int64_t *dims, size_t rank, veil_error *err)
{
    if (rank > VEIL_MAX_RANK || !grow((void **)&g->inputs, g->n_inputs, sizeof *g->inputs))
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "graph input");
    veil_value_info *v = &g->inputs[g->n_inputs];
    memset(v, 0, sizeof *v);
    v->name = dup(name);
    v->elem_type = VEIL_DT_FLOAT;
    v->rank = rank;
    memcpy(v->dims, dims, rank * sizeof *dims);
    g->n_inputs++;
    if (g->opset == 0) g->opset = 13;
    return v->name ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "graph input");
}

veil_status veil_graph_add_output(veil_graph *g, const char *name, veil_error *err)
{
    if (!grow((void **)&g->outputs, g->n_outputs, sizeof *g->outputs)) return veil_fail(err, VEIL_ERR_NO_MEMORY, "output");
    veil_value_info *v = &g->outputs[g->n_outputs];
    memset(v, 0, sizeof *v);
    v->name = dup(name);
    v->rank = (size_t)-1;
    g->n_outputs++;
    return v->name ? VEIL_OK : veil_fail(err, VEIL_ERR_NO_MEMORY, "output");
}

veil_status veil_graph_add_init(veil_graph *g, const char *name, const double *data, const int64_t *dims, size_t rank,
                                veil_error *err)
{
    if (!grow((void **)&g->inits, g->n_inits, sizeof *g->inits) ||
        !grow((void **)&g->init_names, g->n_inits, sizeof *g->init_names))
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "initializer");
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_tensor_init(&g->inits[g->n_inits], VEIL_DT_FLOAT, rank, dims, err));
    memcpy(g->inits[g->n_inits].data, data, g->inits[g->n_inits].size * sizeof(double));
    g->init_names[g->n_inits] = dup(name);
    g->n_inits++;
done:
    return st;
}

veil_status veil_graph_add_node(veil_graph *g, const char *op, const char *const *inputs, size_t n_inputs,
                                const char *output, const char *int_attr, int64_t value, veil_error *err)
{
    if (!grow((void **)&g->nodes, g->n_nodes, sizeof *g->nodes)) return veil_fail(err, VEIL_ERR_NO_MEMORY, "node");
    veil_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    g->n_nodes++;
    n->op = dup(op);
    n->name = dup(output);
    n->label = veil_node_label(output, g->n_nodes - 1);
    n->inputs = calloc(n_inputs + 1, sizeof(char *));
    n->outputs = calloc(2, sizeof(char *));
    n->attrs = calloc(2, sizeof *n->attrs);
    if (!n->op || !n->name || !n->label || !n->inputs || !n->outputs || !n->attrs)
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "node");
    for (size_t i = 0; i < n_inputs; i++) {
        if (!(n->inputs[i] = dup(inputs[i]))) return veil_fail(err, VEIL_ERR_NO_MEMORY, "node");
        n->n_inputs = i + 1;
    }
    if (!(n->outputs[0] = dup(output))) return veil_fail(err, VEIL_ERR_NO_MEMORY, "node");
    n->n_outputs = 1;
    if (int_attr) {
        n->attrs[0].name = dup(int_attr);
        n->attrs[0].kind = VEIL_ATTR_INT;
        n->attrs[0].i = value;
        n->n_attrs = 1;
    }
    return VEIL_OK;
}

/* ---- writing a graph as ONNX (float tensors, integer attributes: what the builders above make) ------- */

#include "onnx.pb-c.h"

typedef struct onnx_arena {
    void **blocks;
    size_t count;
} onnx_arena;

static void *arena_alloc(onnx_arena *a, size_t size)
{
    void **b = realloc(a->blocks, (a->count + 1) * sizeof *b);
    if (!b) return NULL;
    a->blocks = b;
    void *p = calloc(1, size ? size : 1);
    if (p) a->blocks[a->count++] = p;
    return p;
}

static Onnx__ValueInfoProto *value_info(onnx_arena *a, const veil_value_info *v)
{
    Onnx__ValueInfoProto *vi = arena_alloc(a, sizeof *vi);
    Onnx__TypeProto *tp = arena_alloc(a, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = arena_alloc(a, sizeof *tt);
    Onnx__TensorShapeProto *sp = arena_alloc(a, sizeof *sp);
    if (!vi || !tp || !tt || !sp) return NULL;
    onnx__value_info_proto__init(vi);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sp);
    vi->name = v->name;
    vi->type = tp;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    tt->has_elem_type = 1;
    tt->elem_type = v->elem_type ? v->elem_type : VEIL_DT_FLOAT;
    if (v->rank == (size_t)-1) return vi;
    tt->shape = sp;
    sp->n_dim = v->rank;
    sp->dim = arena_alloc(a, v->rank * sizeof *sp->dim);
    for (size_t i = 0; sp->dim && i < v->rank; i++) {
        Onnx__TensorShapeProto__Dimension *d = arena_alloc(a, sizeof *d);
        if (!d) return NULL;
        onnx__tensor_shape_proto__dimension__init(d);
        if (v->dims[i] >= 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = v->dims[i];
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = (char *)"batch";
        }
        sp->dim[i] = d;
    }
    return vi;
}

veil_status veil_graph_to_onnx(const veil_graph *g, uint8_t **out, size_t *len, veil_error *err)
{
    onnx_arena a = {0};
    veil_status st = VEIL_OK;
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsets[1] = {&opset};
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.producer_name = (char *)"veil";
    model.n_opset_import = 1;
    model.opset_import = opsets;
    opset.domain = (char *)"";
    opset.has_version = 1;
    opset.version = g->opset ? g->opset : 13;
    model.graph = &graph;
    graph.name = (char *)"veil_graph";
    graph.n_node = g->n_nodes;
    graph.node = arena_alloc(&a, g->n_nodes * sizeof *graph.node);
    for (size_t i = 0; graph.node && i < g->n_nodes; i++) {
        const veil_node *n = &g->nodes[i];
        Onnx__NodeProto *np = arena_alloc(&a, sizeof *np);
        if (!np) break;
        onnx__node_proto__init(np);
        np->op_type = n->op;
        np->name = n->name;
        np->n_input = n->n_inputs;
        np->input = n->inputs;
        np->n_output = n->n_outputs;
        np->output = n->outputs;
        np->attribute = arena_alloc(&a, n->n_attrs * sizeof *np->attribute);
        for (size_t k = 0; np->attribute && k < n->n_attrs; k++) {
            Onnx__AttributeProto *ap = arena_alloc(&a, sizeof *ap);
            if (!ap || n->attrs[k].kind != VEIL_ATTR_INT) continue;
            onnx__attribute_proto__init(ap);
            ap->name = n->attrs[k].name;
            ap->has_type = 1;
            ap->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            ap->has_i = 1;
            ap->i = n->attrs[k].i;
            np->attribute[np->n_attribute++] = ap;
        }
        graph.node[i] = np;
    }
    graph.n_initializer = g->n_inits;
    graph.initializer = arena_alloc(&a, g->n_inits * sizeof *graph.initializer);
    for (size_t i = 0; graph.initializer && i < g->n_inits; i++) {
        const veil_tensor *t = &g->inits[i];
        Onnx__TensorProto *tp = arena_alloc(&a, sizeof *tp);
        float *f = arena_alloc(&a, t->size * sizeof *f);
        if (!tp || !f) break;
        onnx__tensor_proto__init(tp);
        tp->name = g->init_names[i];
        tp->has_data_type = 1;
        tp->data_type = VEIL_DT_FLOAT;
        tp->n_dims = t->rank;
        tp->dims = (int64_t *)t->dims;
        for (size_t k = 0; k < t->size; k++) f[k] = (float)t->data[k];
        tp->n_float_data = t->size;
        tp->float_data = f;
        graph.initializer[i] = tp;
    }
    graph.n_input = g->n_inputs;
    graph.input = arena_alloc(&a, g->n_inputs * sizeof *graph.input);
    for (size_t i = 0; graph.input && i < g->n_inputs; i++) graph.input[i] = value_info(&a, &g->inputs[i]);
    graph.n_output = g->n_outputs;
    graph.output = arena_alloc(&a, g->n_outputs * sizeof *graph.output);
    for (size_t i = 0; graph.output && i < g->n_outputs; i++) graph.output[i] = value_info(&a, &g->outputs[i]);
    int complete = graph.node && graph.initializer && graph.input && graph.output;
    for (size_t i = 0; complete && i < g->n_nodes; i++) complete = graph.node[i] != NULL;
    for (size_t i = 0; complete && i < g->n_inits; i++) complete = graph.initializer[i] != NULL;
    for (size_t i = 0; complete && i < g->n_inputs; i++) complete = graph.input[i] != NULL;
    for (size_t i = 0; complete && i < g->n_outputs; i++) complete = graph.output[i] != NULL;
    if (!complete) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "onnx export");
    *len = onnx__model_proto__get_packed_size(&model);
    *out = malloc(*len ? *len : 1);
    if (!*out) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "onnx export");
    onnx__model_proto__pack(&model, *out);
done:
    for (size_t i = 0; i < a.count; i++) free(a.blocks[i]);
    free(a.blocks);
    return st;
}
