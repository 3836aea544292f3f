/*
 * The CNN benchmark: the CryptoNets-shaped network of examples/fashion on Fashion-MNIST test images.
 *   cnn_throughput  every image of the set, one per slot: images_per_s of the server's evaluation (the
 *                   ciphertexts loaded as a server loads them, not timed; the median of 3 runs), accuracy encrypted and in
 *                   plaintext, identical argmax decisions;
 *   cnn_latency     one image spread over the slots: latency_s of the server's evaluation (median of a few).
 *   cnn_exact       the quantized network in BGV (see bench_exact), when the folder holds it.
 *   cnn_latency_encrypted_weights  the network's weights encrypted under the data owner's latency keys
 *                   (docs/marketplace.md), a few images one at a time (VEIL_BENCH_CNN_ENC_IMAGES, default 5):
 *                   latency_s (median), against the same images with the weights in the clear (vs_clear),
 *                   identical argmax decisions, the encrypted model's bytes and the time to encrypt it.
 * All report the evaluation keys' size and the process's memory peak. The data: VEIL_BENCH_CNN_DIR, a folder
 * that `examples/fashion/train.py DIR` wrote (model.onnx, test.csv, labels.csv; model_q.onnx and test_q.csv
 * from examples/quantize.py); without it the suite says so and exits 0. VEIL_BENCH_CNN_IMAGES limits the
 * images (default: all of test.csv); VEIL_BENCH_CNN_PARTS picks among throughput,latency,exact,encweights (all).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include "bench.h"
#include "veil/veil.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The process's CPU seconds (every thread): under a shared machine's load, the work done, not the wait. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long peak_rss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss * 1024L;
}

static size_t argmax(const double *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 1; i < n; i++)
        if (v[i] > v[k]) k = i;
    return k;
}

/* Keys for a packing, the images encrypted and loaded on the server's side. */
typedef struct cnn_setup {
    veil_plan_info info;
    veil_keyset *ks;
    veil_eval_keys *ek;
    veil_ciphertexts *server_in;
    size_t eval_key_bytes;
} cnn_setup;

static void setup(cnn_setup *s, const veil_model *m, veil_packing packing, const double *x, size_t rows)
{
    veil_error err = {0};
    veil_plan *plan = NULL;
    veil_plan_request req = {.packing = packing, .have_range = 1, .range_lo = 0, .range_hi = 1}; /* pixels in [0, 1] */
    CHECK(veil_model_plan(&plan, m, &req, &err));
    veil_plan_get_info(plan, &s->info);
    CHECK(veil_keyset_generate(&s->ks, &s->ek, plan, NULL, NULL, NULL, &err));
    veil_buffer b = {0};
    CHECK(veil_eval_keys_save(&b, s->ek, &err));
    s->eval_key_bytes = b.len;
    veil_buffer_free(&b);
    veil_ciphertexts *client = NULL;
    CHECK(veil_ciphertexts_encrypt(&client, s->ks, x, rows, NULL, &err));
    CHECK(veil_ciphertexts_save(&b, client, &err));
    CHECK(veil_ciphertexts_load(&s->server_in, NULL, s->ek, b.data, b.len, &err));
    veil_buffer_free(&b);
    veil_ciphertexts_free(client);
    veil_plan_free(plan);
}

static void teardown(cnn_setup *s)
{
    veil_ciphertexts_free(s->server_in);
    veil_eval_keys_free(s->ek);
    veil_keyset_free(s->ks);
}

/* Decrypts a result (through its file, as the data owner would) into rows x width raw outputs. */
static void decrypt_raw(double *raw, const cnn_setup *s, const veil_ciphertexts *out, size_t rows, size_t width)
{
    veil_error err = {0};
    veil_buffer b = {0};
    veil_ciphertexts *mine = NULL;
    CHECK(veil_ciphertexts_save(&b, out, &err));
    CHECK(veil_ciphertexts_load(&mine, s->ks, NULL, b.data, b.len, &err));
    veil_buffer_free(&b);
    double *final = malloc(rows * width * sizeof *final + 1);
    CHECK(veil_ciphertexts_decrypt(final, raw, s->ks, mine, &err));
    free(final);
    veil_ciphertexts_free(mine);
    (void)width;
}

/*
 * Exact inference (cnn_exact): the quantized network (model_q.onnx and test_q.csv of examples/quantize.py in
 * the same folder, when present) in BGV over every image, one per slot: images_per_s, accuracy, and how many
 * images decrypt to exactly the integer computation (all of them, or the run fails its purpose).
 */
static void bench_exact(const bench_config *cfg, const char *dir, const double *labels, size_t rows,
                        double plain_accuracy)
{
    veil_error err = {0};
    char path[4096];
    snprintf(path, sizeof path, "%s/model_q.onnx", dir);
    FILE *probe = fopen(path, "rb");
    if (!probe) return;
    fclose(probe);
    veil_model_options opts = {.integer = 1};
    veil_model *m = NULL;
    CHECK(veil_model_load_onnx_file(&m, path, &opts, &err));
    const size_t width = veil_model_input_width(m), classes = veil_model_raw_width(m);
    double *x = NULL;
    size_t n = 0, w = 0;
    snprintf(path, sizeof path, "%s/test_q.csv", dir);
    CHECK(veil_csv_read(path, width, &x, &n, &w, &err));
    if (n < rows) rows = n;
    int64_t *xi = malloc(rows * width * sizeof *xi), *expect = malloc(rows * classes * sizeof *expect),
            *got = malloc(rows * classes * sizeof *got);
    veil_plan_request req = {.scheme = VEIL_ML_BGV, .input_lo = 0, .input_hi = 0};
    for (size_t i = 0; i < rows * width; i++) {
        xi[i] = (int64_t)x[i];
        if (xi[i] > req.input_hi) req.input_hi = xi[i]; /* the quantized images' range */
    }
    CHECK(veil_model_run_integer(m, expect, xi, rows, &err));
    veil_plan *plan = NULL;
    veil_plan_info info;
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    CHECK(veil_model_plan(&plan, m, &req, &err));
    veil_plan_get_info(plan, &info);
    CHECK(veil_keyset_generate(&ks, &ek, plan, NULL, NULL, NULL, &err));
    veil_buffer b = {0};
    CHECK(veil_eval_keys_save(&b, ek, &err));
    const size_t key_bytes = b.len;
    veil_buffer_free(&b);
    veil_ciphertexts *client = NULL, *in = NULL, *out = NULL, *mine = NULL;
    CHECK(veil_ciphertexts_encrypt(&client, ks, x, rows, NULL, &err));
    CHECK(veil_ciphertexts_save(&b, client, &err));
    CHECK(veil_ciphertexts_load(&in, NULL, ek, b.data, b.len, &err));
    veil_buffer_free(&b);
    veil_ciphertexts_free(client);
    veil_evaluator *ev = NULL;
    CHECK(veil_evaluator_new(&ev, m, ek, (size_t)cfg->threads, &err));
    const double t0 = now();
    CHECK(veil_evaluator_run(ev, &out, in, NULL, NULL, &err));
    const double eval_s = now() - t0;
    CHECK(veil_ciphertexts_save(&b, out, &err));
    CHECK(veil_ciphertexts_load(&mine, ks, NULL, b.data, b.len, &err));
    veil_buffer_free(&b);
    CHECK(veil_ciphertexts_decrypt_integers(got, ks, mine, &err));
    size_t exact = 0, correct = 0;
    double y[64];
    for (size_t r = 0; r < rows; r++) {
        exact += memcmp(got + r * classes, expect + r * classes, classes * sizeof *got) == 0;
        for (size_t k = 0; k < classes && k < 64; k++) y[k] = (double)got[r * classes + k];
        correct += argmax(y, classes < 64 ? classes : 64) == (size_t)labels[r];
    }
    char extra[512];
    bench_result res = {eval_s * 1e6, eval_s * 1e6, 1};
    snprintf(extra, sizeof extra,
             ",\"images\":%zu,\"images_per_s\":%.1f,\"accuracy\":%.4f,\"accuracy_plain\":%.4f,\"exact_images\":%zu,"
             "\"moduli\":%zu,\"bound_bits\":%.1f,\"eval_key_bytes\":%zu,\"peak_rss_bytes\":%ld",
             rows, (double)rows / eval_s, (double)correct / (double)rows, plain_accuracy, exact, info.crt_count,
             info.bound_bits, key_bytes, peak_rss());
    bench_emit("cnn_exact", info.n, info.q_count, cfg->threads, res, extra);
    veil_evaluator_free(ev);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(out);
    veil_ciphertexts_free(mine);
    veil_eval_keys_free(ek);
    veil_keyset_free(ks);
    veil_plan_free(plan);
    free(xi);
    free(expect);
    free(got);
    free(x);
    veil_model_free(m);
}

static void throughput(const bench_config *cfg, const veil_model *m, const double *x, const double *labels,
                       const double *plain, double *raw, size_t rows, size_t classes, size_t plain_correct);
static void latency(const bench_config *cfg, const veil_model *m, const double *x, const double *plain, double *raw,
                    size_t classes);
static void latency_encrypted_weights(const bench_config *cfg, const veil_model *m, const double *x,
                                      const double *plain, size_t rows, size_t classes);

int bench_cnn(const bench_config *cfg)
{
    veil_error err = {0};
    const char *dir = getenv("VEIL_BENCH_CNN_DIR");
    if (!dir || !*dir) {
        fprintf(stderr, "veil-bench cnn: set VEIL_BENCH_CNN_DIR to a folder written by examples/fashion/train.py "
                        "(model.onnx, test.csv, labels.csv)\n");
        return 0;
    }
    char path[4096];
    veil_model *m = NULL;
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    CHECK(veil_model_load_onnx_file(&m, path, NULL, &err));
    const size_t width = veil_model_input_width(m);
    double *x = NULL, *labels = NULL;
    size_t rows = 0, w = 0, lrows = 0;
    snprintf(path, sizeof path, "%s/test.csv", dir);
    CHECK(veil_csv_read(path, width, &x, &rows, &w, &err));
    snprintf(path, sizeof path, "%s/labels.csv", dir);
    CHECK(veil_csv_read(path, 1, &labels, &lrows, &w, &err));
    const char *limit = getenv("VEIL_BENCH_CNN_IMAGES");
    if (limit && atol(limit) > 0 && (size_t)atol(limit) < rows) rows = (size_t)atol(limit);
    if (lrows < rows) rows = lrows;
    const size_t classes_check = veil_model_output_width(m);
    for (size_t r = 0; r < rows; r++)
        if (!(labels[r] >= 0 && labels[r] < (double)classes_check && labels[r] == floor(labels[r]))) {
            fprintf(stderr, "veil-bench cnn: label %zu is %g, not a class index below %zu\n", r + 1, labels[r],
                    classes_check);
            return 1;
        }
    if (rows == 0) {
        fprintf(stderr, "veil-bench cnn: no images\n");
        return 1;
    }

    /* the plaintext model: accuracy and the reference (the example's network ends in Gemm: its logits are
     * the program's outputs, which decryption gives before any final operation) */
    const size_t classes = veil_model_output_width(m);
    double *plain = malloc(rows * classes * sizeof *plain);
    CHECK(veil_model_run_plain(m, plain, x, rows, &err));
    size_t plain_correct = 0;
    for (size_t r = 0; r < rows; r++) plain_correct += argmax(plain + r * classes, classes) == (size_t)labels[r];

    const char *parts = getenv("VEIL_BENCH_CNN_PARTS");
    if (!parts || !*parts) parts = "throughput,latency,exact,encweights";
    double *raw = malloc(rows * classes * sizeof *raw);
    if (strstr(parts, "throughput")) throughput(cfg, m, x, labels, plain, raw, rows, classes, plain_correct);
    if (strstr(parts, "latency")) latency(cfg, m, x, plain, raw, classes);
    if (strstr(parts, "exact")) bench_exact(cfg, dir, labels, rows, (double)plain_correct / (double)rows);
    if (strstr(parts, "encweights")) latency_encrypted_weights(cfg, m, x, plain, rows, classes);
    free(raw);
    free(plain);
    free(x);
    free(labels);
    veil_model_free(m);
    return 0;
}

/* cnn_throughput: every image, one per slot. */
static void throughput(const bench_config *cfg, const veil_model *m, const double *x, const double *labels,
                       const double *plain, double *raw, size_t rows, size_t classes, size_t plain_correct)
{
    veil_error err = {0};
    cnn_setup s = {0};
    setup(&s, m, VEIL_PACKING_THROUGHPUT, x, rows);
    veil_evaluator *ev = NULL;
    CHECK(veil_evaluator_new(&ev, m, s.ek, (size_t)cfg->threads, &err));
    veil_ciphertexts *out = NULL;
    /* a few runs (the first also pays for fresh memory): images_per_s from their median */
    const int reps = cfg->quick ? 1 : 3;
    double times[3], cpu_min = INFINITY;
    for (int i = 0; i < reps; i++) {
        veil_ciphertexts_free(out);
        out = NULL;
        const double t0 = now(), c0 = cpu_now();
        CHECK(veil_evaluator_run(ev, &out, s.server_in, NULL, NULL, &err));
        times[i] = now() - t0;
        cpu_min = fmin(cpu_min, cpu_now() - c0);
    }
    for (int i = 1; i < reps; i++) /* sort */
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            const double tmp = times[j];
            times[j] = times[j - 1];
            times[j - 1] = tmp;
        }
    const double eval_s = times[reps / 2];
    decrypt_raw(raw, &s, out, rows, classes);
    size_t enc_correct = 0, same = 0;
    double worst = 0;
    for (size_t r = 0; r < rows; r++) {
        const size_t a = argmax(raw + r * classes, classes), b = argmax(plain + r * classes, classes);
        enc_correct += a == (size_t)labels[r];
        same += a == b;
        for (size_t k = 0; k < classes; k++) worst = fmax(worst, fabs(raw[r * classes + k] - plain[r * classes + k]));
    }
    char extra[768];
    bench_result res = {eval_s * 1e6, times[0] * 1e6, reps};
    snprintf(extra, sizeof extra,
             ",\"images\":%zu,\"images_per_s\":%.1f,\"accuracy\":%.4f,\"accuracy_plain\":%.4f,\"same_argmax\":%zu,"
             "\"max_error\":%.3g,\"depth\":%zu,\"scale_bits\":%u,\"eval_key_bytes\":%zu,\"peak_rss_bytes\":%ld,"
             "\"cpu_s_min\":%.3f,\"batches\":%zu,\"slots\":%zu",
             rows, (double)rows / eval_s, (double)enc_correct / (double)rows, (double)plain_correct / (double)rows, same,
             worst, s.info.depth, s.info.scale_bits, s.eval_key_bytes, peak_rss(), cpu_min,
             (rows + s.info.slots - 1) / s.info.slots, s.info.slots);
    bench_emit("cnn_throughput", s.info.n, s.info.q_count, cfg->threads, res, extra);
    veil_ciphertexts_free(out);
    veil_evaluator_free(ev);
    teardown(&s);
}

/* cnn_latency: one image over the slots (the first image), the median of a few runs. */
static void latency(const bench_config *cfg, const veil_model *m, const double *x, const double *plain, double *raw,
                    size_t classes)
{
    veil_error err = {0};
    veil_evaluator *ev = NULL;
    veil_ciphertexts *out = NULL;
    double t0, worst;
    char extra[768];
    bench_result res;
    cnn_setup l = {0};
    setup(&l, m, VEIL_PACKING_LATENCY, x, 1);
    CHECK(veil_evaluator_new(&ev, m, l.ek, (size_t)cfg->threads, &err));
    const int reps = cfg->quick ? 1 : 7;
    double times[7], cpu_min = INFINITY;
    for (int i = 0; i < reps; i++) {
        out = NULL;
        t0 = now();
        const double c0 = cpu_now();
        CHECK(veil_evaluator_run(ev, &out, l.server_in, NULL, NULL, &err));
        times[i] = now() - t0;
        cpu_min = fmin(cpu_min, cpu_now() - c0);
        if (i + 1 < reps) veil_ciphertexts_free(out);
    }
    decrypt_raw(raw, &l, out, 1, classes);
    worst = 0;
    for (size_t k = 0; k < classes; k++) worst = fmax(worst, fabs(raw[k] - plain[k]));
    for (int i = 1; i < reps; i++) /* sort */
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            const double tmp = times[j];
            times[j] = times[j - 1];
            times[j - 1] = tmp;
        }
    res = (bench_result){times[reps / 2] * 1e6, times[0] * 1e6, reps};
    snprintf(extra, sizeof extra,
             ",\"latency_s\":%.3f,\"same_argmax\":%d,\"max_error\":%.3g,\"depth\":%zu,\"rotation_keys\":%zu,"
             "\"eval_key_bytes\":%zu,\"peak_rss_bytes\":%ld,\"cpu_s_min\":%.3f",
             times[reps / 2], argmax(raw, classes) == argmax(plain, classes), worst, l.info.depth, l.info.rotations,
             l.eval_key_bytes, peak_rss(), cpu_min);
    bench_emit("cnn_latency", l.info.n, l.info.q_count, cfg->threads, res, extra);
    veil_ciphertexts_free(out);
    veil_evaluator_free(ev);
    teardown(&l);
}

static void sort_times(double *t, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && t[j] < t[j - 1]; j--) {
            const double tmp = t[j];
            t[j] = t[j - 1];
            t[j - 1] = tmp;
        }
}

/* One image's outputs (raw, before the final operation) by ev, timed (wall; *cpu: the process's CPU seconds,
 * all threads, the figure to read on a loaded machine). */
static double run_image(const veil_evaluator *ev, const cnn_setup *l, const veil_ciphertexts *in, double *raw,
                        size_t classes, double *cpu)
{
    veil_error err = {0};
    veil_ciphertexts *out = NULL;
    const double c0 = cpu_now(), t0 = now();
    CHECK(veil_evaluator_run(ev, &out, in, NULL, NULL, &err));
    const double t = now() - t0;
    *cpu = cpu_now() - c0;
    decrypt_raw(raw, l, out, 1, classes);
    veil_ciphertexts_free(out);
    return t;
}

/* cnn_latency_encrypted_weights: the weights encrypted (the vendor's step, timed), then image by image the
 * encrypted model and the model in the clear on the same ciphertexts. */
#define ENC_IMAGES_MAX 64
static void latency_encrypted_weights(const bench_config *cfg, const veil_model *m, const double *x,
                                      const double *plain, size_t rows, size_t classes)
{
    veil_error err = {0};
    const char *limit = getenv("VEIL_BENCH_CNN_ENC_IMAGES");
    size_t images = limit && atol(limit) > 0 ? (size_t)atol(limit) : cfg->quick ? 2 : 5;
    if (images > rows) images = rows;
    if (images > ENC_IMAGES_MAX) images = ENC_IMAGES_MAX;
    const size_t width = veil_model_input_width(m);
    cnn_setup l = {0};
    setup(&l, m, VEIL_PACKING_LATENCY, x, 1);
    veil_buffer mb = {0};
    const double c0 = cpu_now();
    double t0 = now();
    CHECK(veil_model_encrypt(&mb, m, l.ek, NULL, &err));
    const double encrypt_s = now() - t0, encrypt_cpu_s = cpu_now() - c0;
    veil_evaluator *enc = NULL, *clear = NULL;
    t0 = now();
    CHECK(veil_evaluator_new_encrypted(&enc, l.ek, mb.data, mb.len, (size_t)cfg->threads, &err));
    const double load_s = now() - t0;
    CHECK(veil_evaluator_new(&clear, m, l.ek, (size_t)cfg->threads, &err));
    double te[ENC_IMAGES_MAX], tc[ENC_IMAGES_MAX], ce[ENC_IMAGES_MAX], cc[ENC_IMAGES_MAX], worst = 0, worst_clear = 0;
    double *raw = malloc(classes * sizeof *raw), *raw_clear = malloc(classes * sizeof *raw_clear);
    size_t same = 0;
    for (size_t i = 0; i < images; i++) {
        veil_ciphertexts *client = NULL, *in = NULL;
        veil_buffer b = {0};
        CHECK(veil_ciphertexts_encrypt(&client, l.ks, x + i * width, 1, NULL, &err));
        CHECK(veil_ciphertexts_save(&b, client, &err));
        CHECK(veil_ciphertexts_load(&in, NULL, l.ek, b.data, b.len, &err));
        veil_buffer_free(&b);
        veil_ciphertexts_free(client);
        tc[i] = run_image(clear, &l, in, raw_clear, classes, &cc[i]);
        te[i] = run_image(enc, &l, in, raw, classes, &ce[i]);
        same += argmax(raw, classes) == argmax(plain + i * classes, classes);
        for (size_t k = 0; k < classes; k++) {
            worst = fmax(worst, fabs(raw[k] - plain[i * classes + k]));
            worst_clear = fmax(worst_clear, fabs(raw_clear[k] - plain[i * classes + k]));
        }
        veil_ciphertexts_free(in);
    }
    sort_times(te, images);
    sort_times(tc, images);
    sort_times(ce, images);
    sort_times(cc, images);
    const double median = te[images / 2], median_clear = tc[images / 2];
    char extra[1024];
    bench_result res = {median * 1e6, te[0] * 1e6, (int)images};
    snprintf(extra, sizeof extra,
             ",\"latency_s\":%.3f,\"clear_latency_s\":%.3f,\"vs_clear\":%.2f,\"cpu_s\":%.3f,\"clear_cpu_s\":%.3f,"
             "\"vs_clear_cpu\":%.2f,\"images\":%zu,\"same_argmax\":%zu,"
             "\"max_error\":%.3g,\"max_error_clear\":%.3g,\"model_bytes\":%zu,\"encrypt_s\":%.2f,\"encrypt_cpu_s\":%.2f,"
             "\"load_s\":%.2f,"
             "\"rotation_keys\":%zu,\"eval_key_bytes\":%zu,\"peak_rss_bytes\":%ld",
             median, median_clear, median / median_clear, ce[images / 2], cc[images / 2], ce[images / 2] / cc[images / 2],
             images, same, worst, worst_clear, mb.len, encrypt_s, encrypt_cpu_s, load_s,
             l.info.rotations, l.eval_key_bytes, peak_rss());
    bench_emit("cnn_latency_encrypted_weights", l.info.n, l.info.q_count, cfg->threads, res, extra);
    free(raw);
    free(raw_clear);
    veil_evaluator_free(enc);
    veil_evaluator_free(clear);
    veil_buffer_free(&mb);
    teardown(&l);
}
