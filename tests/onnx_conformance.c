/*
 * ONNX's own operator tests (Debian libonnx-testdata, data/node/test_<op>*) as the oracle of Veil's import:
 * every case of a supported operator runs in the plaintext interpreter and must match ONNX's expected
 * outputs within 1e-6 relative; the cases that lower to an encrypted program (the first input encrypted,
 * the others bound as model constants) also run encrypted, within 1e-4 absolute. Cases using an operator,
 * attribute or element type Veil does not support are skipped, with the reason printed.
 *
 * usage: onnx_conformance [DATA_DIR] [--plain-only]
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "veil/veil.h"
#include "ml/ml_plan.h"

#define HE_MAX_INPUT 1024 /* values of the encrypted input: one ciphertext each in the throughput packing */

static const char *const prefixes[] = {"gemm", "matmul", "add", "sub", "mul", "div", "neg", "pow", "constant",
                                       "identity", "flatten", "reshape", "squeeze", "unsqueeze", "concat",
                                       "batchnorm", "sigmoid", "tanh", "relu", "softmax", "logsoftmax", "argmax", "conv",
                                       "averagepool", "globalaveragepool", "edge_pad",
                                       "reflect_pad", "slice", "transpose", "cast", "constantofshape", NULL};

typedef struct reason {
    char text[400];
    int count;
} reason;

static reason reasons[64];
static size_t n_reasons;

static void skip_reason(const char *case_name, const char *why)
{
    char text[400];
    snprintf(text, sizeof text, "%s", why);
    for (size_t i = 0; i < n_reasons; i++)
        if (strcmp(reasons[i].text, text) == 0) {
            reasons[i].count++;
            return;
        }
    if (n_reasons < 64) {
        snprintf(reasons[n_reasons].text, sizeof reasons[n_reasons].text, "%s", text);
        reasons[n_reasons++].count = 1;
    }
    (void)case_name;
}

static int wanted(const char *name)
{
    if (strncmp(name, "test_", 5) != 0) return 0;
    for (size_t i = 0; prefixes[i]; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(name + 5, prefixes[i], n) == 0 && (name[5 + n] == 0 || name[5 + n] == '_')) return 1;
    }
    return 0;
}

static int read_file(const char *path, veil_buffer *buf)
{
    veil_error e;
    return veil_file_read(buf, path, (size_t)1 << 28, &e) == VEIL_OK;
}

static int load_tensor(const char *path, veil_tensor *t, char *why, size_t cap)
{
    veil_buffer b = {0};
    if (!read_file(path, &b)) {
        snprintf(why, cap, "missing test data");
        return 0;
    }
    veil_error e = {0};
    int ok = veil_tensor_parse(t, b.data, b.len, &e) == VEIL_OK;
    if (!ok) snprintf(why, cap, "%s", e.status == VEIL_ERR_UNSUPPORTED ? "element type not supported" : "input is not a tensor");
    veil_buffer_free(&b);
    return ok;
}

static int close_rel(double got, double want) { return fabs(got - want) <= 1e-6 * fmax(1.0, fabs(want)); }

typedef struct counts {
    int cases, plain_pass, plain_fail, skipped, he_run, he_pass, he_fail, he_skipped;
} counts;

/* The encrypted run: input 0 encrypted, the other inputs bound as constants. Returns 1 pass, 0 fail, -1 skip. */
static int run_encrypted(const char *name, const veil_buffer *model, veil_tensor *inputs, size_t n_in,
                         const veil_tensor *expected, char *why, size_t cap)
{
    veil_graph g;
    veil_error e = {0};
    if (veil_graph_parse(&g, model->data, model->len, &e) != VEIL_OK) return -1;
    /* bind inputs 1.. as initializers */
    if (g.n_inputs != n_in) {
        veil_graph_clear(&g);
        snprintf(why, cap, "inputs do not match the data");
        return -1;
    }
    char **names = realloc(g.init_names, (g.n_inits + n_in) * sizeof *names);
    veil_tensor *vals = realloc(g.inits, (g.n_inits + n_in) * sizeof *vals);
    if (names) g.init_names = names;
    if (vals) g.inits = vals;
    if (!names || !vals) {
        veil_graph_clear(&g);
        return -1;
    }
    for (size_t i = 1; i < n_in; i++) {
        g.init_names[g.n_inits] = g.inputs[i].name;
        g.inputs[i].name = NULL;
        veil_tensor_copy(&g.inits[g.n_inits], &inputs[i], &e);
        g.n_inits++;
    }
    g.n_inputs = 1;
    veil_model *m = NULL;
    /* approximated activations are fitted over the range of this input (its own calibration) */
    veil_model_options opts = {.calibration = inputs[0].data, .calibration_rows = 1};
    if (veil_model_from_graph(&m, &g, model->data, model->len, inputs[0].dims, inputs[0].rank, &opts, &e) != VEIL_OK) {
        snprintf(why, cap, "not evaluable under encryption: %s", e.detail);
        return -1;
    }
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = VEIL_PACKING_THROUGHPUT, .batch = 1};
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    veil_ciphertexts *in = NULL, *out = NULL;
    double *y = NULL;
    int result = 0;
    veil_status st = veil_model_plan(&plan, m, &req, &e);
    if (st == VEIL_OK) st = veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &e);
    if (st == VEIL_OK) st = veil_ciphertexts_encrypt(&in, ks, inputs[0].data, 1, NULL, &e);
    veil_ciphertexts *in_server = NULL;
    if (st == VEIL_OK) {
        /* what the server sees: the set saved and loaded with the eval keys */
        veil_buffer b = {0};
        st = veil_ciphertexts_save(&b, in, &e);
        if (st == VEIL_OK) st = veil_ciphertexts_load(&in_server, NULL, ek, b.data, b.len, &e);
        veil_buffer_free(&b);
    }
    if (st == VEIL_OK) st = veil_model_evaluate(&out, m, ek, in_server, NULL, NULL, &e);
    veil_ciphertexts *out_owner = NULL;
    if (st == VEIL_OK) {
        veil_buffer b = {0};
        st = veil_ciphertexts_save(&b, out, &e);
        if (st == VEIL_OK) st = veil_ciphertexts_load(&out_owner, ks, NULL, b.data, b.len, &e);
        veil_buffer_free(&b);
    }
    size_t w = veil_model_output_width(m);
    if (st == VEIL_OK && !(y = calloc(w, sizeof *y))) st = VEIL_ERR_NO_MEMORY;
    if (st == VEIL_OK) st = veil_ciphertexts_decrypt(y, NULL, ks, out_owner, &e);
    if (st != VEIL_OK) {
        printf("FAIL %s (encrypted): %s\n", name, e.detail);
    } else if (w != expected->size) {
        printf("FAIL %s (encrypted): %zu outputs, expected %zu\n", name, w, expected->size);
    } else {
        /* an approximated activation adds its own (reported) error to the tolerance */
        double worst = 0, approx = 0;
        for (size_t i = 0; i < m->program.n_stages; i++) approx += m->program.stages[i].approx_error;
        for (size_t i = 0; i < w; i++) worst = fmax(worst, fabs(y[i] - expected->data[i]));
        result = worst <= 1e-4 + approx;
        if (approx > 0) printf("note %s (encrypted): polynomial approximation, error %.3g (approximation %.3g)\n",
                               name, worst, approx);
        if (!result) printf("FAIL %s (encrypted): largest error %.3g > 1e-4\n", name, worst);
    }
    free(y);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(in_server);
    veil_ciphertexts_free(out);
    veil_ciphertexts_free(out_owner);
    veil_keyset_free(ks);
    veil_eval_keys_free(ek);
    veil_plan_free(plan);
    veil_model_free(m);
    return result;
}

static void run_case(const char *dir, const char *name, int plain_only, counts *c)
{
    char path[4096], why[400] = "";
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, name);
    veil_buffer model = {0};
    if (!read_file(path, &model)) return;
    c->cases++;
    veil_graph g;
    veil_error e = {0};
    if (veil_graph_parse(&g, model.data, model.len, &e) != VEIL_OK) {
        c->skipped++;
        snprintf(why, sizeof why, "model not read: %s", e.detail);
        skip_reason(name, why);
        veil_buffer_free(&model);
        return;
    }
    for (size_t i = 0; i < g.n_nodes && !why[0]; i++) {
        const char *u = veil_node_unsupported(&g.nodes[i], g.opset);
        if (u) snprintf(why, sizeof why, "%s: %s", g.nodes[i].op, u);
    }
    veil_tensor inputs[16] = {{0}}, expected[16] = {{0}};
    size_t n_in = g.n_inputs, n_out = g.n_outputs;
    if (!why[0] && (n_in > 16 || n_out > 16)) snprintf(why, sizeof why, "too many inputs");
    for (size_t i = 0; !why[0] && i < n_in; i++) {
        if (g.inputs[i].elem_type == 0) snprintf(why, sizeof why, "input is not a tensor (sequence or optional)");
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/input_%zu.pb", dir, name, i);
        if (!why[0]) load_tensor(path, &inputs[i], why, sizeof why);
    }
    for (size_t i = 0; !why[0] && i < n_out; i++) {
        snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_%zu.pb", dir, name, i);
        load_tensor(path, &expected[i], why, sizeof why);
    }
    if (why[0]) {
        c->skipped++;
        skip_reason(name, why);
        goto done;
    }
    veil_env env = {0};
    veil_status st = VEIL_OK;
    for (size_t i = 0; st == VEIL_OK && i < n_in; i++) st = veil_env_put(&env, g.inputs[i].name, &inputs[i], &e);
    if (st == VEIL_OK) st = veil_graph_run_nodes(&g, 0, g.n_nodes, &env, &e);
    int pass = st == VEIL_OK;
    if (!pass) printf("FAIL %s: %s\n", name, e.detail);
    for (size_t o = 0; pass && o < n_out; o++) {
        const veil_tensor *got = veil_env_get(&env, g.outputs[o].name);
        if (!got || got->rank != expected[o].rank ||
            memcmp(got->dims, expected[o].dims, got->rank * sizeof *got->dims) != 0) {
            printf("FAIL %s: output %zu has the wrong shape\n", name, o);
            pass = 0;
            break;
        }
        for (size_t i = 0; i < got->size; i++)
            if (!close_rel(got->data[i], expected[o].data[i])) {
                printf("FAIL %s: output %zu[%zu] = %.9g, expected %.9g\n", name, o, i, got->data[i], expected[o].data[i]);
                pass = 0;
                break;
            }
    }
    veil_env_clear(&env);
    if (pass) c->plain_pass++;
    else c->plain_fail++;
    if (pass && !plain_only && n_out == 1 && n_in >= 1 && inputs[0].size > HE_MAX_INPUT) {
        c->he_skipped++;
        skip_reason(name, "encrypted run skipped: an input of more than 1024 values (checked in plaintext)");
    } else if (pass && !plain_only && n_out == 1 && n_in >= 1) {
        char hwhy[400] = "";
        int r = run_encrypted(name, &model, inputs, n_in, &expected[0], hwhy, sizeof hwhy);
        if (r < 0) {
            c->he_skipped++;
            if (hwhy[0]) skip_reason(name, hwhy);
        } else {
            c->he_run++;
            if (r) c->he_pass++;
            else c->he_fail++;
        }
    }
done:
    for (size_t i = 0; i < 16; i++) {
        veil_tensor_clear(&inputs[i]);
        veil_tensor_clear(&expected[i]);
    }
    veil_graph_clear(&g);
    veil_buffer_free(&model);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv)
{
    const char *dir = "/usr/share/libonnx-testdata/data/node";
    int plain_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--plain-only") == 0) plain_only = 1;
        else dir = argv[i];
    }
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "onnx_conformance: %s not found (Debian package libonnx-testdata)\n", dir);
        return 1;
    }
    char *names[4096];
    size_t n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) && n < 4096)
        if (wanted(ent->d_name)) names[n++] = strdup(ent->d_name);
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    counts c = {0};
    for (size_t i = 0; i < n; i++) {
        run_case(dir, names[i], plain_only, &c);
        free(names[i]);
    }
    printf("ONNX node tests of Veil's operators: %d cases, %d passed, %d failed, %d skipped as unsupported\n",
           c.cases, c.plain_pass, c.plain_fail, c.skipped);
    if (!plain_only)
        printf("encrypted: %d cases ran, %d passed, %d failed; %d not evaluable under encryption\n", c.he_run,
               c.he_pass, c.he_fail, c.he_skipped);
    printf("reasons for skipping:\n");
    for (size_t i = 0; i < n_reasons; i++) printf("  %3d x %s\n", reasons[i].count, reasons[i].text);
    return c.plain_fail || c.he_fail || c.cases == 0 ? 1 : 0;
}
