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
    VEIL_TRY(veil_tensor_init(&g->inits[g->n_inits], VEIL_DT_FLOAT, rank, dims, err));
    memcpy(g->inits[g->n_inits].data, data, g->inits[g->n_inits].size * sizeof(double));
    g->init_names[g->n_inits] = dup(name);
    g->n_inits++;
    return VEIL_OK;
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
    n->inputs = calloc(n_inputs + 1, sizeof(char *));
    n->outputs = calloc(2, sizeof(char *));
    n->attrs = calloc(2, sizeof *n->attrs);
    if (!n->op || !n->name || !n->inputs || !n->outputs || !n->attrs) return veil_fail(err, VEIL_ERR_NO_MEMORY, "node");
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
