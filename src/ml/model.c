/* Models: loading an ONNX file and the plaintext references (the plans are built by the back ends: api.c). */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdio.h>
#include <sodium.h>
#include "ml/ml_internal.h"
#include "ml/ml_plan.h"
#include "veil/ckks.h"
#include "veil/rlwe.h"
#include "serial/serial_internal.h"

#define MAX_MODEL_BYTES ((size_t)1 << 30)

/* Hash of the model as the server evaluates it: the ONNX bytes and what the lowering was told. */
static void model_hash(veil_model *m, const uint8_t *data, size_t len)
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, (const unsigned char *)"veil-model-v2", 13, sizeof m->hash);
    crypto_generichash_update(&h, data, len);
    /* every stage's kind and polynomial (an approximation's range and degree, a server-side sigmoid), and the
     * final operation: keys made for one lowering never pass for another */
    for (size_t i = 0; i < m->program.n_stages; i++) {
        const veil_stage *s = &m->program.stages[i];
        double v[6] = {(double)s->kind, (double)s->in_width, (double)s->out_width, (double)s->degree, s->lo, s->hi};
        crypto_generichash_update(&h, (const unsigned char *)v, sizeof v);
        if (s->coeffs && s->kind != VEIL_STAGE_AFFINE)
            crypto_generichash_update(&h, (const unsigned char *)s->coeffs, (s->degree + 1) * sizeof *s->coeffs);
    }
    const double fin[2] = {(double)m->program.final_op, m->program.out_scale};
    crypto_generichash_update(&h, (const unsigned char *)fin, sizeof fin);
    if (m->program.integer) crypto_generichash_update(&h, (const unsigned char *)"exact", 5);
    crypto_generichash_final(&h, m->hash, sizeof m->hash);
}

/* The shape of one sample: the declared input shape with the batch dimension (the first, at rank >= 2) as 1. */
static veil_status sample_shape(veil_model *m, const veil_value_info *in, veil_error *err)
{
    if (in->rank == (size_t)-1)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "input '%s' has no declared tensor shape", in->name);
    if (in->elem_type != VEIL_DT_FLOAT && in->elem_type != VEIL_DT_DOUBLE)
        return veil_fail(err, VEIL_ERR_UNSUPPORTED, "input '%s' is not a float tensor", in->name);
    m->input_rank = in->rank;
    for (size_t i = 0; i < in->rank; i++) {
        int64_t d = in->dims[i];
        if (i == 0 && in->rank >= 2) d = 1;
        if (d <= 0)
            return veil_fail(err, VEIL_ERR_UNSUPPORTED, "input '%s': dimension %zu is unknown or zero (Veil needs "
                             "the shape of one sample)", in->name, i);
        m->input_dims[i] = d;
    }
    return VEIL_OK;
}

veil_status veil_model_from_graph(veil_model **out, veil_graph *g, const uint8_t *data, size_t len,
                                  const int64_t *dims, size_t rank, const veil_model_options *opts, veil_error *err)
{
    veil_model *m = calloc(1, sizeof *m);
    if (!m) {
        veil_graph_clear(g);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "model");
    }
    m->graph = *g;
    memset(g, 0, sizeof *g);
    if (opts) m->options = *opts;
    veil_status st = VEIL_OK;
    if (m->graph.n_inputs != 1)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "the model has %zu inputs besides its weights; Veil encrypts models "
                  "of one input", m->graph.n_inputs);
    const veil_value_info *in = &m->graph.inputs[0];
    m->input_name = in->name;
    if (dims) {
        m->input_rank = rank;
        memcpy(m->input_dims, dims, rank * sizeof *dims);
    } else {
        VEIL_CHECK(sample_shape(m, in, err));
    }
    VEIL_CHECK(veil_program_lower(m, err));
    model_hash(m, data, len);
    *out = m;
    m = NULL;
done:
    veil_model_free(m);
    return st;
}

veil_status veil_model_load_onnx(veil_model **out, const uint8_t *data, size_t len, const veil_model_options *opts,
                                 veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(data, err);
    veil_graph g;
    veil_status st = veil_graph_parse(&g, data, len, err);
    if (st != VEIL_OK) return st; /* nothing held */
    return veil_model_from_graph(out, &g, data, len, NULL, 0, opts, err);
}

veil_status veil_model_load_onnx_file(veil_model **out, const char *path, const veil_model_options *opts,
                                      veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(path, err);
    veil_buffer buf = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_file_read(&buf, path, MAX_MODEL_BYTES, err));
    VEIL_CHECK(veil_model_load_onnx(out, buf.data, buf.len, opts, err));
done:
    veil_buffer_free(&buf);
    return st;
}

void veil_model_free(veil_model *m)
{
    if (!m) return;
    veil_program_clear(&m->program);
    veil_graph_clear(&m->graph);
    free(m->box_lo);
    free(m->box_hi);
    free(m->report);
    veil_model_enc_free(m->enc);
    free(m);
}

veil_status veil_model_need_weights(const veil_model *m, const char *what, veil_error *err)
{
    (void)m;
    return veil_fail(err, VEIL_ERR_ARGUMENT, "%s: this is an encrypted model, whose weights are ciphertexts only the "
                     "evaluator uses; give the model in the clear (its owner's ONNX file)", what);
}

int veil_model_is_encrypted(const veil_model *m) { return m && m->enc; }

size_t veil_model_input_width(const veil_model *m) { return m ? m->program.in_width : 0; }
size_t veil_model_output_width(const veil_model *m) { return m ? veil_final_width(&m->program) : 0; }
size_t veil_model_raw_width(const veil_model *m) { return m ? m->program.out_width : 0; }
const char *veil_model_report(const veil_model *m) { return m && m->report ? m->report : ""; }

veil_status veil_model_run_plain(const veil_model *m, double *out, const double *in, size_t rows, veil_error *err)
{
    VEIL_REQUIRE(m, err);
    if (m->enc) return veil_model_need_weights(m, "plain run", err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    const size_t w_in = m->program.in_width, w_out = veil_final_width(&m->program);
    veil_env env = {0};
    veil_tensor x = {0};
    veil_status st = VEIL_OK;
    VEIL_CHECK(veil_graph_run_nodes(&m->graph, 0, 0, &env, err));
    VEIL_CHECK(veil_tensor_init(&x, VEIL_DT_FLOAT, m->input_rank, m->input_dims, err));
    for (size_t r = 0; r < rows; r++) {
        memcpy(x.data, in + r * w_in, w_in * sizeof(double));
        VEIL_CHECK(veil_env_put(&env, m->input_name, &x, err));
        VEIL_CHECK(veil_graph_run_nodes(&m->graph, 0, m->graph.n_nodes, &env, err));
        const veil_tensor *y = veil_env_get(&env, m->graph.outputs[0].name);
        if (!y || y->size != w_out)
            VEIL_FAIL(err, VEIL_ERR_INTERNAL, "plain run: the output has %zu values, the program %zu",
                      y ? y->size : 0, w_out);
        memcpy(out + r * w_out, y->data, w_out * sizeof(double));
    }
done:
    veil_tensor_clear(&x);
    veil_env_clear(&env);
    return st;
}

veil_status veil_model_run_program(const veil_model *m, double *out, const double *in, size_t rows, veil_error *err)
{
    VEIL_REQUIRE(m, err);
    if (m->enc) return veil_model_need_weights(m, "program run", err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    const veil_program *p = &m->program;
    const size_t w_in = p->in_width, w_raw = p->out_width, w_out = veil_final_width(p);
    double *row = calloc(w_raw + 1, sizeof *row);
    if (!row) return veil_fail(err, VEIL_ERR_NO_MEMORY, "program run");
    veil_status st = VEIL_OK;
    for (size_t r = 0; r < rows; r++) {
        VEIL_CHECK(veil_program_run_plain(p, in + r * w_in, row, err));
        for (size_t i = 0; p->integer && i < w_raw; i++) row[i] *= p->out_scale;
        veil_final_apply(p, row, w_raw);
        memcpy(out + r * w_out, row, w_out * sizeof *row);
    }
done:
    free(row);
    return st;
}

veil_status veil_model_run_integer(const veil_model *m, int64_t *out, const int64_t *in, size_t rows,
                                   veil_error *err)
{
    VEIL_REQUIRE(m, err);
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(in, err);
    if (!m->program.integer)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "integer run: the model was not loaded for exact inference");
    veil_status st = VEIL_OK;
    for (size_t r = 0; r < rows; r++)
        VEIL_CHECK(veil_program_run_integer(&m->program, in + r * m->program.in_width, out + r * m->program.out_width,
                                            err));
done:
    return st;
}

double veil_model_output_scale(const veil_model *m) { return m && m->program.integer ? m->program.out_scale : 1.0; }

veil_status veil_model_range_excess(const veil_model *m, const double *in, size_t rows, double *excess,
                                    veil_error *err)
{
    VEIL_REQUIRE(m, err);
    if (m->enc) return veil_model_need_weights(m, "range check", err);
    VEIL_REQUIRE(in, err);
    VEIL_REQUIRE(excess, err);
    *excess = 0;
    double *y = calloc(m->program.out_width + 1, sizeof *y);
    if (!y) return veil_fail(err, VEIL_ERR_NO_MEMORY, "range check");
    veil_status st = VEIL_OK;
    for (size_t r = 0; r < rows; r++)
        VEIL_CHECK(veil_program_run_plain_excess(&m->program, in + r * m->program.in_width, y, excess, err));
done:
    free(y);
    return st;
}
