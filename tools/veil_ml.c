/* The ML commands of `veil`: keygen, encrypt, eval, decrypt, plain, plan. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "veil/veil.h"
#include "veil_cli.h"

#define MAX_KEY_BYTES ((size_t)1 << 34)
#define MAX_MODEL_BYTES ((size_t)1 << 30) /* as veil_model_load_onnx_file */

typedef struct options {
    const char *model, *keys, *eval_keys, *in, *out, *calibrate, *range, *server, *cacert;
    const char *train, *labels, *onnx; /* training */
    const char *scheme, *input_range;  /* exact inference: --scheme bgv --input-range LO:HI */
    size_t features, iterations, sigmoid_range;
    double learning_rate, l2;
    size_t batch, degree, threads;
    int latency, argmax, quiet, force, server_sigmoid, integers, exact, force_approximation;
    veil_security security;
} options;

/*
 * "veil: DETAIL", the library's message, which says what failed (and names the file it read or wrote);
 * "veil: WHAT: DETAIL" where the detail cannot know WHAT (a file whose bytes were parsed from memory).
 */
static int fail(veil_status st, const veil_error *err, const char *what)
{
    const char *detail = err->detail[0] ? err->detail : veil_strerror(st);
    if (what) fprintf(stderr, "veil: %s: %s\n", what, detail);
    else fprintf(stderr, "veil: %s\n", detail);
    switch (st) {
    case VEIL_ERR_MISMATCH: return EXIT_MISMATCH;
    case VEIL_ERR_FORMAT:
    case VEIL_ERR_ARGUMENT:
    case VEIL_ERR_UNSUPPORTED:
    case VEIL_ERR_INSECURE: return EXIT_INPUT;
    default: return EXIT_RUNTIME;
    }
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || s[0] == '-' || !s[0]) return 0;
    *out = (size_t)v;
    return 1;
}

/* Parses --flag VALUE pairs and switches; returns 0 and prints a message on a bad option. */
static int parse(int argc, char **argv, options *o, const char *allowed)
{
    memset(o, 0, sizeof *o);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        char key[64];
        snprintf(key, sizeof key, " %s ", a);
        if (strncmp(a, "--", 2) != 0 || !strstr(allowed, key)) {
            fprintf(stderr, "veil: unexpected argument '%s'\n", a);
            return 0;
        }
        int is_switch = !strcmp(a, "--latency") || !strcmp(a, "--argmax") || !strcmp(a, "--quiet") ||
                        !strcmp(a, "--force") || !strcmp(a, "--server-sigmoid") || !strcmp(a, "--integers") ||
                        !strcmp(a, "--exact") || !strcmp(a, "--force-approximation");
        if (is_switch) {
            if (!strcmp(a, "--latency")) o->latency = 1;
            else if (!strcmp(a, "--argmax")) o->argmax = 1;
            else if (!strcmp(a, "--quiet")) o->quiet = 1;
            else if (!strcmp(a, "--force")) o->force = 1;
            else if (!strcmp(a, "--integers")) o->integers = 1;
            else if (!strcmp(a, "--exact")) o->exact = 1;
            else if (!strcmp(a, "--force-approximation")) o->force_approximation = 1;
            else o->server_sigmoid = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "veil: %s needs a value\n", a);
            return 0;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--keys")) o->keys = v;
        else if (!strcmp(a, "--eval-keys")) o->eval_keys = v;
        else if (!strcmp(a, "--in")) o->in = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--calibrate")) o->calibrate = v;
        else if (!strcmp(a, "--range")) o->range = v;
        else if (!strcmp(a, "--server")) o->server = v;
        else if (!strcmp(a, "--cacert")) o->cacert = v;
        else if (!strcmp(a, "--train")) o->train = v;
        else if (!strcmp(a, "--labels-column")) o->labels = v;
        else if (!strcmp(a, "--onnx")) o->onnx = v;
        else if (!strcmp(a, "--input-range")) o->input_range = v;
        else if (!strcmp(a, "--scheme")) {
            if (strcmp(v, "ckks") != 0 && strcmp(v, "bgv") != 0) {
                fprintf(stderr, "veil: --scheme is ckks or bgv, not '%s'\n", v);
                return 0;
            }
            o->scheme = v;
        }
        else if (!strcmp(a, "--learning-rate") || !strcmp(a, "--l2")) {
            char *end;
            errno = 0;
            double d = strtod(v, &end);
            if (errno || *end || !v[0] || !isfinite(d) || d < 0) {
                fprintf(stderr, "veil: %s wants a number >= 0, not '%s'\n", a, v);
                return 0;
            }
            if (!strcmp(a, "--l2")) o->l2 = d;
            else if (d == 0) {
                fprintf(stderr, "veil: --learning-rate must be above 0\n");
                return 0;
            } else o->learning_rate = d;
        } else if (!strcmp(a, "--batch") || !strcmp(a, "--degree") || !strcmp(a, "--threads") ||
                   !strcmp(a, "--features") || !strcmp(a, "--iterations") || !strcmp(a, "--sigmoid-range")) {
            size_t n;
            if (!parse_size(v, &n) || n == 0 || n > ((size_t)1 << 20)) {
                fprintf(stderr, "veil: %s wants a positive integer (at most 2^20), not '%s'\n", a, v);
                return 0;
            }
            if ((!strcmp(a, "--degree") && n > 1024) || (!strcmp(a, "--sigmoid-range") && n > 64) ||
                (!strcmp(a, "--threads") && n > 1024)) {
                fprintf(stderr, "veil: %s %s is out of range (degree <= 1024, sigmoid range <= 64, threads <= 1024)\n",
                        a, v);
                return 0;
            }
            if (!strcmp(a, "--batch")) o->batch = n;
            else if (!strcmp(a, "--degree")) o->degree = n;
            else if (!strcmp(a, "--features")) o->features = n;
            else if (!strcmp(a, "--iterations")) o->iterations = n;
            else if (!strcmp(a, "--sigmoid-range")) o->sigmoid_range = n;
            else o->threads = n;
        } else if (!strcmp(a, "--security")) {
            if (!strcmp(v, "128")) o->security = VEIL_SECURITY_128;
            else if (!strcmp(v, "192")) o->security = VEIL_SECURITY_192;
            else if (!strcmp(v, "256")) o->security = VEIL_SECURITY_256;
            else {
                fprintf(stderr, "veil: --security is 128, 192 or 256, not '%s'\n", v);
                return 0;
            }
        }
    }
    if (o->latency && o->batch) {
        fprintf(stderr, "veil: --batch and --latency exclude each other\n");
        return 0;
    }
    if (o->integers && !o->scheme) o->scheme = "bgv"; /* the integer computation is that of exact inference */
    return 1;
}

static int need(const char *value, const char *flag)
{
    if (value) return 1;
    fprintf(stderr, "veil: %s is required\n", flag);
    return 0;
}

/* ---- progress ---------------------------------------------------------------------------------------- */

typedef struct bar {
    const char *what;
    int on;
    time_t last;
} bar;

static void progress(void *arg, size_t done, size_t total)
{
    bar *b = arg;
    if (!b->on || total == 0) return;
    time_t now = time(NULL);
    if (done != total && now == b->last) return;
    b->last = now;
    int width = 30, filled = (int)(width * done / total);
    fprintf(stderr, "\r%s [%.*s%*s] %3d%%", b->what, filled, "##############################", width - filled, "",
            (int)(100 * done / total));
    if (done == total) fputc('\n', stderr);
}

static void bar_init(bar *b, const char *what, const options *o)
{
    b->what = what;
    b->on = !o->quiet && isatty(2);
    b->last = 0;
}

/* ---- models ------------------------------------------------------------------------------------------ */

/* Loads --model with the model options; *status: why the model was refused (VEIL_OK: not the model's fault). */
static int load_model_why(veil_model **m, const options *o, double **calib, veil_status *status)
{
    *status = VEIL_OK;
    veil_model_options mo = {.degree = o->degree, .server_sigmoid = o->server_sigmoid,
                             .integer = o->scheme && !strcmp(o->scheme, "bgv"),
                             .force_approximation = o->force_approximation};
    veil_error err = {0};
    *calib = NULL;
    if (o->range) {
        char *end;
        mo.range_lo = strtod(o->range, &end);
        if (*end != ':' || (mo.range_hi = strtod(end + 1, &end), *end) || !(mo.range_hi > mo.range_lo)) {
            fprintf(stderr, "veil: --range is LO:HI with LO < HI, not '%s'\n", o->range);
            return EXIT_USAGE;
        }
        mo.have_range = 1;
    }
    if (o->calibrate) {
        size_t rows, width;
        veil_status st = veil_csv_read(o->calibrate, 0, calib, &rows, &width, &err);
        if (st != VEIL_OK) return fail(st, &err, NULL);
        mo.calibration = *calib;
        mo.calibration_rows = rows;
        mo.calibration_width = width;
    }
    /* read here, so that the parser's messages, which cannot name the file, are prefixed with it */
    veil_buffer buf = {0};
    veil_status st = veil_file_read(&buf, o->model, MAX_MODEL_BYTES, &err);
    if (st != VEIL_OK) return fail(st, &err, NULL); /* the reader's message names the file */
    st = veil_model_load_onnx(m, buf.data, buf.len, &mo, &err);
    veil_buffer_free(&buf);
    if (st == VEIL_OK && o->calibrate && mo.calibration_rows &&
        veil_model_input_width(*m) * mo.calibration_rows == 0) st = VEIL_ERR_ARGUMENT;
    *status = st;
    if (st != VEIL_OK) return fail(st, &err, o->model);
    return EXIT_OK;
}

static int load_model(veil_model **m, const options *o, double **calib)
{
    veil_status why;
    return load_model_why(m, o, calib, &why);
}

/*
 * --model beside keys made for a model: as the keys' scheme has it loaded. Exact (BGV) keys were made from a
 * model that lowers to integer layers: one that does not is another model (EXIT_MISMATCH), whatever the lowering
 * says. (CKKS keys are checked against the model's hash by veil_evaluator_new, and their width by encrypt.)
 */
static int load_model_for_keys(veil_model **m, options *o, veil_ml_scheme keys_scheme, const char *keys,
                               double **calib)
{
    if (keys_scheme == VEIL_ML_BGV) o->scheme = "bgv";
    veil_status why;
    int rc = load_model_why(m, o, calib, &why);
    if (rc && why == VEIL_ERR_UNSUPPORTED && keys_scheme == VEIL_ML_BGV && !o->server_sigmoid) {
        fprintf(stderr, "veil: %s: keys for exact inference, made for a model with integer layers: %s is another "
                        "model\n", keys, o->model);
        return EXIT_MISMATCH;
    }
    return rc;
}

/*
 * The rows of a CSV for keys whose model reads `width` values per row. A CSV whose rows all have another
 * width holds data for another model (EXIT_MISMATCH); a ragged one is a CSV error, named against the keys' width.
 */
int veil_read_rows_for_keys(const char *path, size_t width, const char *keys, double **x, size_t *rows)
{
    veil_error err = {0};
    size_t w = 0;
    veil_status st = veil_csv_read(path, 0, x, rows, &w, &err);
    if (st == VEIL_OK && w == width) return EXIT_OK;
    free(*x);
    *x = NULL;
    if (st == VEIL_OK) {
        fprintf(stderr, "veil: %s: keys made for a model of %zu inputs, but the rows of %s have %zu values: keys or "
                        "data of another model\n", keys, width, path, w);
        return EXIT_MISMATCH;
    }
    st = veil_csv_read(path, width, x, rows, NULL, &err);
    return st == VEIL_OK ? EXIT_OK : fail(st, &err, NULL);
}

/*
 * What --argmax writes for a model of `width` outputs after its final operation: each row's largest (several
 * outputs), the class index an ArgMax already gave, or 1 for a Sigmoid's probability above 0.5 and 0 below (as
 * scikit-learn's predict: a logit above 0). A single output without either names no class: refused (EXIT_USAGE).
 */
int veil_csv_mode(int argmax, veil_final_op final_op, size_t width, int *mode)
{
    *mode = VEIL_CSV_VALUES;
    if (!argmax || (width == 1 && final_op == VEIL_FINAL_ARGMAX)) return EXIT_OK;
    if (width > 1) *mode = VEIL_CSV_ARGMAX;
    else if (final_op == VEIL_FINAL_SIGMOID) *mode = VEIL_CSV_ABOVE_HALF;
    else {
        fprintf(stderr, "veil: --argmax: the model has one output and ends in neither Sigmoid nor ArgMax: there is "
                        "no class to write (a regression? with --server-sigmoid, the class is whether the output is "
                        "above 0.5)\n");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Rows x width values as CSV text (%.17g), or one class per row (veil_csv_mode); NULL when out of memory. */
static char *csv_text(const double *v, size_t rows, size_t width, int mode, size_t *len_out)
{
    size_t cap = rows * (width * 26 + 26) + 64, len = 0;
    char *text = malloc(cap);
    if (!text) return NULL;
    for (size_t r = 0; r < rows; r++) {
        const double *row = v + r * width;
        if (mode == VEIL_CSV_ARGMAX) {
            size_t best = 0;
            for (size_t i = 1; i < width; i++)
                if (row[i] > row[best]) best = i;
            len += (size_t)snprintf(text + len, cap - len, "%zu\n", best);
            continue;
        }
        if (mode == VEIL_CSV_ABOVE_HALF) {
            len += (size_t)snprintf(text + len, cap - len, "%d\n", row[0] > 0.5);
            continue;
        }
        for (size_t i = 0; i < width; i++)
            len += (size_t)snprintf(text + len, cap - len, "%s%.17g", i ? "," : "", row[i]);
        len += (size_t)snprintf(text + len, cap - len, "\n");
    }
    *len_out = len;
    return text;
}

int veil_write_csv(const char *path, const double *v, size_t rows, size_t width, int mode)
{
    size_t len = 0;
    char *text = csv_text(v, rows, width, mode, &len);
    if (!text) {
        fprintf(stderr, "veil: out of memory\n");
        return EXIT_RUNTIME;
    }
    veil_error err = {0};
    veil_status st = veil_file_write_atomic(path, (const uint8_t *)text, len, &err);
    free(text);
    if (st != VEIL_OK) return fail(st, &err, NULL);
    return EXIT_OK;
}

static int read_csv(const char *path, size_t width, double **x, size_t *rows)
{
    veil_error err = {0};
    size_t w;
    veil_status st = veil_csv_read(path, width, x, rows, &w, &err);
    if (st != VEIL_OK) return fail(st, &err, NULL);
    return EXIT_OK;
}

static int save_buffer(const char *path, veil_buffer *b)
{
    veil_error err = {0};
    veil_status st = veil_file_write_atomic(path, b->data, b->len, &err);
    veil_buffer_free(b);
    if (st != VEIL_OK) return fail(st, &err, NULL); /* the writer's message names the file */
    return EXIT_OK;
}

static int read_all(const char *path, veil_buffer *b)
{
    veil_error err = {0};
    veil_status st = veil_file_read(b, path, MAX_KEY_BYTES, &err);
    if (st != VEIL_OK) return fail(st, &err, NULL); /* the reader's message names the file */
    return EXIT_OK;
}

static int load_keyset(const char *dir, veil_keyset **ks)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/secret.key", dir);
    veil_buffer b = {0};
    int rc = read_all(path, &b);
    if (rc) return rc;
    veil_error err = {0};
    veil_status st = veil_keyset_load(ks, b.data, b.len, &err);
    veil_buffer_free(&b);
    if (st != VEIL_OK) return fail(st, &err, path);
    return EXIT_OK;
}

/*
 * Two files, both replaced or neither: each is written beside its final name (PATH.new, atomically), then both
 * are renamed, so that a failure never leaves one new file beside an old or missing other (a new evaluation key
 * beside an old secret key, new weights beside an old model).
 */
/* After st (the writing of a_new and b_new): both renamed into place, or both removed. */
static int place_two(const char *a_new, const char *path_a, const char *b_new, const char *path_b, veil_status st,
                     veil_error *err)
{
    if (st == VEIL_OK && (rename(a_new, path_a) != 0 || rename(b_new, path_b) != 0)) {
        st = VEIL_ERR_IO;
        snprintf(err->detail, sizeof err->detail, "cannot rename the new files into place: %s", strerror(errno));
    }
    if (st != VEIL_OK) {
        unlink(a_new);
        unlink(b_new);
        return fail(st, err, NULL);
    }
    return EXIT_OK;
}

static int write_two(const char *path_a, const veil_buffer *a, const char *path_b, const veil_buffer *b)
{
    char a_new[4200], b_new[4200];
    snprintf(a_new, sizeof a_new, "%s.new", path_a);
    snprintf(b_new, sizeof b_new, "%s.new", path_b);
    veil_error err = {0};
    veil_status st = veil_file_write_atomic(a_new, a->data, a->len, &err);
    if (st == VEIL_OK) st = veil_file_write_atomic(b_new, b->data, b->len, &err);
    return place_two(a_new, path_a, b_new, path_b, st, &err);
}

/*
 * Key generation into both files of a key set, both replaced or neither: the evaluation keys are written to
 * EVAL.new as they are made, one at a time (veil_keyset_generate_to_file: memory holds one key, not all), then the
 * secret key beside its name, then both renamed.
 */
static int keygen_to_files(const char *sk_path, const char *eval_path, const veil_plan *plan, veil_progress_fn report,
                           void *report_arg)
{
    char eval_new[4200], sk_new[4200];
    snprintf(eval_new, sizeof eval_new, "%s.new", eval_path);
    snprintf(sk_new, sizeof sk_new, "%s.new", sk_path);
    veil_error err = {0};
    veil_keyset *ks = NULL;
    veil_buffer sb = {0};
    veil_status st = veil_keyset_generate_to_file(&ks, plan, eval_new, NULL, report, report_arg, &err);
    if (st == VEIL_OK) st = veil_keyset_save(&sb, ks, &err);
    if (st == VEIL_OK) st = veil_file_write_atomic(sk_new, sb.data, sb.len, &err);
    veil_buffer_free(&sb);
    veil_keyset_free(ks);
    return place_two(eval_new, eval_path, sk_new, sk_path, st, &err);
}

/* Both files of a key set, or neither changed (write_two; the secret key file gets mode 0600). */
int veil_write_key_pair(const char *sk_path, const char *eval_path, const veil_keyset *ks, const veil_eval_keys *ek)
{
    veil_buffer sb = {0}, eb = {0};
    veil_error err = {0};
    veil_status st = veil_eval_keys_save(&eb, ek, &err);
    if (st == VEIL_OK) st = veil_keyset_save(&sb, ks, &err);
    int rc = st != VEIL_OK ? fail(st, &err, NULL) : write_two(eval_path, &eb, sk_path, &sb);
    veil_buffer_free(&sb);
    veil_buffer_free(&eb);
    return rc;
}

/*
 * The folders of a key set, KEYDIR/ (0700) and KEYDIR/eval/, made where missing; made[0] and made[1] say which
 * this call created, for veil_remove_key_dirs after a failure.
 */
int veil_make_key_dirs(const char *dir, const char *eval_dir, int made[2])
{
    made[0] = made[1] = 0;
    if (mkdir(dir, 0700) == 0) made[0] = 1;
    else if (errno != EEXIST) {
        fprintf(stderr, "veil: cannot create %s: %s\n", dir, strerror(errno));
        return EXIT_RUNTIME;
    }
    if (mkdir(eval_dir, 0755) == 0) made[1] = 1;
    else if (errno != EEXIST) {
        fprintf(stderr, "veil: cannot create %s: %s\n", eval_dir, strerror(errno));
        veil_remove_key_dirs(dir, eval_dir, made);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

/* Removes the folders veil_make_key_dirs created, if still empty: never anything that was there before. */
void veil_remove_key_dirs(const char *dir, const char *eval_dir, const int made[2])
{
    if (made[1]) rmdir(eval_dir);
    if (made[0]) rmdir(dir);
}

static int is_dir(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static int exists(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0;
}

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A size in decimal units (kB, MB, GB: 10^3, 10^6, 10^9 bytes), three significant digits: every size veil prints. */
static const char *size_text(char *buf, size_t cap, double bytes)
{
    static const char *const unit[] = {"bytes", "kB", "MB", "GB", "TB"};
    size_t u = 0;
    while (bytes >= 1000 && u + 1 < sizeof unit / sizeof *unit) {
        bytes /= 1000;
        u++;
    }
    snprintf(buf, cap, u == 0 ? "%.0f %s" : bytes < 10 ? "%.2f %s" : bytes < 100 ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
    return buf;
}

/* The evaluation-key file of --eval-keys (a folder's eval.keys, or the file); refuses a folder with a secret key. */
static int eval_keys_path(const char *given, char *path, size_t cap)
{
    if (is_dir(given)) {
        snprintf(path, cap, "%s/secret.key", given);
        if (exists(path)) {
            fprintf(stderr, "veil: %s holds a secret key: give the server only the eval/ folder\n", given);
            return 1;
        }
        snprintf(path, cap, "%s/eval.keys", given);
    } else {
        snprintf(path, cap, "%s", given);
    }
    return 0;
}

/* ---- encrypted training (veil/train.h) ------------------------------------------------------------------ */

/* A trained model's files: the weights as CSV (csv_path: bias first) and/or the ONNX model, both or neither. */
static int write_trained(const char *csv_path, const double *w, size_t count, const char *onnx_path,
                         const veil_buffer *onnx)
{
    veil_buffer csv = {0};
    if (csv_path && !(csv.data = (uint8_t *)csv_text(w, 1, count, VEIL_CSV_VALUES, &csv.len))) {
        fprintf(stderr, "veil: out of memory\n");
        return EXIT_RUNTIME;
    }
    veil_error err = {0};
    veil_status st = VEIL_OK;
    int rc = EXIT_OK;
    if (csv_path && onnx_path) rc = write_two(csv_path, &csv, onnx_path, onnx);
    else if (csv_path) st = veil_file_write_atomic(csv_path, csv.data, csv.len, &err);
    else st = veil_file_write_atomic(onnx_path, onnx->data, onnx->len, &err);
    if (st != VEIL_OK) rc = fail(st, &err, NULL);
    free(csv.data);
    return rc;
}

static int make_train_plan(const options *o, veil_plan **plan)
{
    veil_train_request req = {.features = o->features, .iterations = o->iterations, .degree = (unsigned)o->degree,
                              .range = (unsigned)o->sigmoid_range, .security = o->security};
    if (!strcmp(o->train, "logistic")) req.task = VEIL_TRAIN_LOGISTIC;
    else if (!strcmp(o->train, "linear")) req.task = VEIL_TRAIN_LINEAR;
    else {
        fprintf(stderr, "veil: --train is logistic or linear, not '%s'\n", o->train);
        return EXIT_USAGE;
    }
    if (!need(o->features ? "" : NULL, "--features") || !need(o->iterations ? "" : NULL, "--iterations")) return EXIT_USAGE;
    veil_error err = {0};
    veil_status st = veil_train_plan(plan, &req, &err);
    if (st != VEIL_OK) return fail(st, &err, NULL);
    return EXIT_OK;
}

static void print_train_plan(const veil_plan *plan, FILE *f)
{
    veil_plan_info in;
    veil_train_info ti;
    veil_error err = {0};
    veil_plan_get_info(plan, &in);
    if (veil_plan_get_train_info(plan, &ti, &err) != VEIL_OK) return;
    if (ti.task == VEIL_TRAIN_LOGISTIC)
        fprintf(f, "training:       logistic regression, %zu features, Nesterov's accelerated gradient; sigmoid of "
                   "degree %u over [-%u, %u]\n", ti.features, ti.degree, ti.range, ti.range);
    else
        fprintf(f, "training:       linear regression, %zu features, gradient descent\n", ti.features);
    fprintf(f, "iterations:     at most %zu (%zu levels each, the first 1; %zu levels in all)\n", ti.max_iterations,
            ti.depth_per_iteration, in.q_count - 1);
    fprintf(f, "parameters:     N = %zu, %zu Q primes + %zu P primes, log2(QP) = %u, dnum %zu, scale 2^%u\n", in.n,
            in.q_count, in.p_count, in.log_qp, in.dnum, in.scale_bits);
    fprintf(f, "packing:        %zu slots per record, %zu records per ciphertext\n", ti.block, ti.records_per_ciphertext);
    char a[32], b[32], c[32];
    const double one = (double)veil_plan_input_bytes(plan, in.batch), more = (double)veil_plan_input_bytes(plan, 2 * in.batch) - one;
    fprintf(f, "eval keys:      %s (%.0f bytes, exact), %zu rotation keys\n", size_text(a, sizeof a, in.eval_key_bytes),
            in.eval_key_bytes, in.rotations);
    fprintf(f, "data:           %s for up to %zu records (%.0f bytes, exact), %s more per further %zu\n",
            size_text(b, sizeof b, one), in.batch, one, size_text(c, sizeof c, more), in.batch);
    fprintf(f, "estimates:      %.2f s per iteration and ciphertext of records (one thread); memory about %s on the "
               "server, %s for keygen\n", in.estimated_seconds, size_text(a, sizeof a, in.estimated_memory_bytes),
            size_text(b, sizeof b, in.keygen_memory_bytes));
}

static int cmd_plan_train(const options *o)
{
    veil_plan *plan = NULL;
    int rc = make_train_plan(o, &plan);
    if (!rc) {
        print_train_plan(plan, stdout);
        rc = finish_output();
    }
    veil_plan_free(plan);
    return rc;
}

/* Trims spaces and one pair of double quotes. */
static void trim_cell(char *c)
{
    size_t n = strlen(c);
    while (n && (c[n - 1] == ' ' || c[n - 1] == '\r' || c[n - 1] == '\n' || c[n - 1] == '\t')) c[--n] = 0;
    size_t i = 0;
    while (c[i] == ' ' || c[i] == '\t') i++;
    memmove(c, c + i, n - i + 1);
    n = strlen(c);
    if (n >= 2 && c[0] == '"' && c[n - 1] == '"') {
        memmove(c, c + 1, n - 2);
        c[n - 2] = 0;
    }
}

/* Whether a trimmed cell is a number, as the CSV reader takes it. */
static int is_number(const char *c)
{
    char *end;
    if (!c[0]) return 0;
    errno = 0;
    (void)strtod(c, &end);
    return *end == 0;
}

/*
 * The label column: a name in the CSV's header, or a column number (1-based). The header is found as the CSV
 * reader finds it: the first line that is neither blank nor a # comment, when one of its cells is not a number;
 * cells are split at every comma (empty cells count).
 */
static int find_label_column(const char *path, const char *name, size_t width, size_t *col)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "veil: cannot open %s: %s\n", path, strerror(errno));
        return EXIT_INPUT;
    }
    char line[65536];
    int have = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (*p && *p != '#') {
            have = 1;
            break;
        }
    }
    fclose(f);
    int header = 0, found = 0;
    size_t column = 0, start = 0;
    for (size_t i = 0; have; i++) {
        if (line[i] != ',' && line[i] != 0) continue;
        const int last = line[i] == 0;
        line[i] = 0;
        char *cell = line + start;
        trim_cell(cell);
        if (!is_number(cell)) header = 1;
        if (!found && !strcmp(cell, name)) {
            *col = column;
            found = 1;
        }
        if (last) break;
        start = i + 1;
        column++;
    }
    if (header && found) return EXIT_OK;
    size_t n = 0;
    if (parse_size(name, &n) && n >= 1 && n <= width) {
        *col = n - 1;
        return EXIT_OK;
    }
    fprintf(stderr, "veil: %s has no column named '%s' in its header (nor is it a column number 1..%zu)\n", path, name,
            width);
    return EXIT_INPUT;
}

static int encrypt_training(const options *o, const veil_keyset *ks)
{
    if (veil_keyset_packing(ks) != VEIL_PACKING_TRAINING) {
        fprintf(stderr, "veil: --labels-column is for training data; %s holds keys for a model\n", o->keys);
        return EXIT_MISMATCH;
    }
    if (!o->labels) {
        fprintf(stderr, "veil: these keys are for training: name the labels with --labels-column NAME\n");
        return EXIT_USAGE;
    }
    veil_error err = {0};
    veil_train_info ti;
    veil_status st = veil_keyset_get_train_info(ks, &ti, &err);
    if (st != VEIL_OK) return fail(st, &err, NULL);
    double *all = NULL, *x = NULL, *y = NULL;
    size_t rows = 0, width = 0, col = 0;
    st = veil_csv_read(o->in, 0, &all, &rows, &width, &err);
    if (st != VEIL_OK) return fail(st, &err, NULL);
    int rc = find_label_column(o->in, o->labels, width, &col);
    if (!rc && width - 1 != ti.features) {
        fprintf(stderr, "veil: the keys were made for %zu features; %s has %zu columns besides the labels\n",
                ti.features, o->in, width - 1);
        rc = EXIT_MISMATCH;
    }
    if (!rc && (!(x = malloc(rows * (width - 1) * sizeof *x + 1)) || !(y = malloc(rows * sizeof *y + 1)))) rc = EXIT_RUNTIME;
    for (size_t r = 0; !rc && r < rows; r++) {
        size_t k = 0;
        for (size_t j = 0; j < width; j++) {
            if (j == col) y[r] = all[r * width + j];
            else x[r * (width - 1) + k++] = all[r * width + j];
        }
    }
    veil_ciphertexts *cts = NULL;
    if (!rc && (st = veil_train_encrypt(&cts, ks, x, y, rows, NULL, &err)) != VEIL_OK) rc = fail(st, &err, NULL);
    if (!rc) {
        veil_buffer b = {0};
        st = veil_ciphertexts_save(&b, cts, &err);
        rc = st != VEIL_OK ? fail(st, &err, NULL) : save_buffer(o->out, &b);
    }
    if (!rc && !o->quiet)
        fprintf(stderr, "veil: encrypted %zu records of %zu features and their labels ('%s') into %s\n", rows, width - 1,
                o->labels, o->out);
    veil_ciphertexts_free(cts);
    free(all);
    free(x);
    free(y);
    return rc;
}

/*
 * `veil train --plain --train logistic|linear --in TRAIN.csv --labels-column NAME --iterations K ...`: the same
 * algorithm in float64 on the plaintext, for comparison (writes the same --onnx / --out files as decrypt).
 */
static int cmd_train_plain(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --train --in --labels-column --iterations --degree --sigmoid-range --learning-rate "
                               "--l2 --onnx --out ") ||
        !need(o.train, "--train") || !need(o.in, "--in") || !need(o.labels, "--labels-column") ||
        !need(o.iterations ? "" : NULL, "--iterations") || (!o.onnx && !need(o.out, "--out")))
        return EXIT_USAGE;
    veil_error err = {0};
    double *all = NULL, *x = NULL, *y = NULL, *w = NULL, tmax = 0;
    size_t rows = 0, width = 0, col = 0;
    veil_status st = veil_csv_read(o.in, 0, &all, &rows, &width, &err);
    if (st != VEIL_OK) return fail(st, &err, NULL);
    int rc = width >= 2 ? find_label_column(o.in, o.labels, width, &col) : EXIT_INPUT;
    if (!rc && (!(x = malloc(rows * width * sizeof *x)) || !(y = malloc(rows * sizeof *y)) ||
                !(w = calloc(width, sizeof *w))))
        rc = EXIT_RUNTIME;
    for (size_t r = 0; !rc && r < rows; r++)
        for (size_t j = 0, k = 0; j < width; j++) {
            if (j == col) y[r] = all[r * width + j];
            else x[r * (width - 1) + k++] = all[r * width + j];
        }
    veil_train_request req = {.features = width - 1, .iterations = o.iterations, .degree = (unsigned)o.degree,
                              .range = (unsigned)o.sigmoid_range};
    if (!rc && !strcmp(o.train, "linear")) req.task = VEIL_TRAIN_LINEAR;
    else if (!rc && strcmp(o.train, "logistic")) {
        fprintf(stderr, "veil: --train is logistic or linear, not '%s'\n", o.train);
        rc = EXIT_USAGE;
    }
    veil_train_options opts = {.iterations = o.iterations, .learning_rate = o.learning_rate, .l2 = o.l2};
    if (!rc && (st = veil_train_run_plain(w, &req, &opts, x, y, rows, &tmax, &err)) != VEIL_OK) rc = fail(st, &err, NULL);
    veil_buffer onnx = {0};
    if (!rc && o.onnx && (st = veil_train_to_onnx(&onnx, req.task, w, req.features, &err)) != VEIL_OK)
        rc = fail(st, &err, NULL);
    if (!rc) rc = write_trained(o.out, w, width, o.onnx, &onnx);
    const unsigned range = o.sigmoid_range ? (unsigned)o.sigmoid_range : 8; /* the library's default */
    if (!rc && req.task == VEIL_TRAIN_LOGISTIC && tmax > range)
        fprintf(stderr, "veil: warning: |z.w| reached %.2f, outside the sigmoid's range [-%u, %u]: lower the "
                        "learning rate or raise --sigmoid-range\n", tmax, range, range);
    veil_buffer_free(&onnx);
    free(all);
    free(x);
    free(y);
    free(w);
    return rc;
}

static int cmd_train(int argc, char **argv)
{
    options o;
    if (argc >= 1 && !strcmp(argv[0], "--plain")) return cmd_train_plain(argc - 1, argv + 1);
    if (!parse(argc, argv, &o, " --eval-keys --in --out --iterations --learning-rate --l2 --threads --quiet ") ||
        !need(o.eval_keys, "--eval-keys") || !need(o.in, "--in") || !need(o.out, "--out"))
        return EXIT_USAGE;
    char path[4096];
    if (eval_keys_path(o.eval_keys, path, sizeof path)) return EXIT_INPUT;
    veil_buffer kb = {0}, cb = {0};
    veil_eval_keys *ek = NULL;
    veil_ciphertexts *in = NULL, *out = NULL;
    veil_error err = {0};
    veil_status st = VEIL_OK;
    veil_train_info ti;
    int rc = read_all(path, &kb);
    if (!rc && (st = veil_eval_keys_load(&ek, kb.data, kb.len, &err)) != VEIL_OK) rc = fail(st, &err, path);
    veil_buffer_free(&kb); /* the keys are parsed: their file's bytes are not held through the work */
    if (!rc && (st = veil_eval_keys_get_train_info(ek, &ti, &err)) != VEIL_OK) rc = fail(st, &err, path);
    if (!rc && o.iterations > ti.max_iterations) { /* before reading the data */
        fprintf(stderr, "veil: train: %zu iterations asked, but these keys allow at most %zu: make keys with "
                        "--iterations %zu\n", o.iterations, ti.max_iterations, o.iterations);
        rc = EXIT_INPUT;
    }
    if (!rc) rc = read_all(o.in, &cb);
    if (!rc && (st = veil_ciphertexts_load(&in, NULL, ek, cb.data, cb.len, &err)) != VEIL_OK) rc = fail(st, &err, o.in);
    veil_buffer_free(&cb);
    double t0 = seconds();
    if (!rc) {
        veil_train_options opts = {.iterations = o.iterations, .learning_rate = o.learning_rate, .l2 = o.l2,
                                   .threads = o.threads};
        bar b;
        bar_init(&b, "training", &o);
        if ((st = veil_train_run(&out, ek, in, &opts, progress, &b, &err)) != VEIL_OK) rc = fail(st, &err, NULL);
    }
    if (!rc) {
        veil_buffer ob = {0};
        st = veil_ciphertexts_save(&ob, out, &err);
        rc = st != VEIL_OK ? fail(st, &err, NULL) : save_buffer(o.out, &ob);
    }
    if (!rc && !o.quiet)
        fprintf(stderr, "veil: trained on %zu encrypted records in %.1f s; wrote %s\n", veil_ciphertexts_rows(in),
                seconds() - t0, o.out);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(out);
    veil_eval_keys_free(ek);
    veil_buffer_free(&kb);
    veil_buffer_free(&cb);
    return rc;
}

/* A trained model: the weights as CSV (--out: bias first) and/or a standard ONNX model (--onnx). */
static int decrypt_training(const options *o, const veil_keyset *ks, const veil_ciphertexts *cts)
{
    veil_error err = {0};
    veil_train_info ti;
    veil_status st = veil_keyset_get_train_info(ks, &ti, &err);
    if (st != VEIL_OK) return fail(st, &err, NULL);
    double *w = calloc(ti.features + 1, sizeof *w);
    if (!w) return EXIT_RUNTIME;
    int rc = EXIT_OK;
    if ((st = veil_train_decrypt(w, ks, cts, &err)) != VEIL_OK) rc = fail(st, &err, NULL);
    veil_buffer onnx = {0};
    if (!rc && o->onnx && (st = veil_train_to_onnx(&onnx, ti.task, w, ti.features, &err)) != VEIL_OK)
        rc = fail(st, &err, NULL);
    if (!rc) rc = write_trained(o->out, w, ti.features + 1, o->onnx, &onnx);
    veil_buffer_free(&onnx);
    free(w);
    return rc;
}

/* ---- commands ----------------------------------------------------------------------------------------- */

static void print_plan(const veil_plan *plan, FILE *f)
{
    veil_plan_info info;
    veil_plan_get_info(plan, &info);
    const veil_plan_info *in = &info;
    char a[32], b[32], c[32];
    fprintf(f, "packing:        %s\n", in->packing == VEIL_PACKING_LATENCY ? "latency (one sample per ciphertext)"
                                                                          : "throughput (one sample per slot)");
    fprintf(f, "depth:          %zu levels\n", in->depth);
    if (in->scheme == VEIL_ML_BGV) {
        fprintf(f, "scheme:         BGV, exact: outputs bounded by 2^%.1f, %zu plaintext modul%s of %.1f bits in all (",
                in->bound_bits, in->crt_count, in->crt_count == 1 ? "us" : "i", in->modulus_bits);
        for (size_t i = 0; i < in->crt_count; i++) fprintf(f, "%s%llu", i ? ", " : "", (unsigned long long)in->plain_moduli[i]);
        fprintf(f, ")\n");
        fprintf(f, "parameters:     N = %zu, %zu Q primes + %zu P primes, log2(QP) = %u, per modulus\n", in->n,
                in->q_count, in->p_count, in->log_qp);
    } else {
        fprintf(f, "parameters:     N = %zu, %zu Q primes + %zu P primes, log2(QP) = %u, dnum %zu, scale 2^%u\n", in->n,
                in->q_count, in->p_count, in->log_qp, in->dnum, in->scale_bits);
        if (in->input_hi >= in->input_lo)
            fprintf(f, "bounds:         inputs within [%.6g, %.6g] (encryption refuses others), outputs |y| <= %.6g\n",
                    in->input_lo, in->input_hi, in->output_bound);
    }
    fprintf(f, "slots:          %zu%s\n", in->slots, in->packing == VEIL_PACKING_LATENCY ? " (padded width)" : "");
    fprintf(f, "batch:          %zu samples per ciphertext set\n", in->batch);
    fprintf(f, "rotation keys:  %zu\n", in->rotations);
    fprintf(f, "ciphertexts:    %zu in, %zu out per %s\n", in->in_ciphertexts, in->out_ciphertexts,
            in->packing == VEIL_PACKING_LATENCY ? "sample" : "batch");
    const double inputs = (double)veil_plan_input_bytes(plan, in->packing == VEIL_PACKING_LATENCY ? 1 : in->batch);
    fprintf(f, "eval keys:      %s (%.0f bytes, exact)\n", size_text(a, sizeof a, in->eval_key_bytes), in->eval_key_bytes);
    fprintf(f, "inputs:         %s per %s (%.0f bytes, exact), a fresh ciphertext %s\n", size_text(b, sizeof b, inputs),
            in->packing == VEIL_PACKING_LATENCY ? "sample" : "batch", inputs, size_text(c, sizeof c, in->ciphertext_bytes));
    fprintf(f, "estimates:      server time ~%.3g s per %s (single thread), memory ~%s on the server, ~%s for keygen\n",
            in->estimated_seconds, in->packing == VEIL_PACKING_LATENCY ? "sample" : "batch",
            size_text(a, sizeof a, in->estimated_memory_bytes), size_text(b, sizeof b, in->keygen_memory_bytes));
}

/* LO:HI, two integers. */
static int parse_int_range(const char *s, int64_t *lo, int64_t *hi)
{
    char *end;
    errno = 0;
    long long a = strtoll(s, &end, 10);
    if (errno || end == s || *end != ':') return 0;
    const char *b = end + 1;
    long long c = strtoll(b, &end, 10);
    if (errno || end == b || *end || a > c) return 0;
    *lo = a;
    *hi = c;
    return 1;
}

static int make_plan(const options *o, const veil_model *m, veil_plan **plan)
{
    veil_plan_request req = {.packing = o->latency ? VEIL_PACKING_LATENCY : VEIL_PACKING_THROUGHPUT,
                             .batch = o->batch, .security = o->security};
    if (o->scheme && !strcmp(o->scheme, "bgv")) {
        req.scheme = VEIL_ML_BGV;
        if (!o->input_range) {
            fprintf(stderr, "veil: --scheme bgv needs --input-range LO:HI, the integer range of the quantized inputs "
                            "(it bounds every output, which fixes the plaintext moduli)\n");
            return EXIT_USAGE;
        }
        if (!parse_int_range(o->input_range, &req.input_lo, &req.input_hi)) {
            fprintf(stderr, "veil: --input-range is LO:HI, two integers with LO <= HI, not '%s'\n", o->input_range);
            return EXIT_USAGE;
        }
    } else if (o->input_range) {
        char *end;
        req.range_lo = strtod(o->input_range, &end);
        if (*end != ':' || (req.range_hi = strtod(end + 1, &end), *end) || !(req.range_hi >= req.range_lo) ||
            !isfinite(req.range_lo) || !isfinite(req.range_hi)) {
            fprintf(stderr, "veil: --input-range is LO:HI, two numbers with LO <= HI, not '%s'\n", o->input_range);
            return EXIT_USAGE;
        }
        req.have_range = 1;
    }
    veil_error err = {0};
    veil_status st = veil_model_plan(plan, m, &req, &err);
    if (st != VEIL_OK) return fail(st, &err, NULL);
    return EXIT_OK;
}

static int cmd_plan(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --model --batch --latency --security --calibrate --range --degree --force-approximation --server-sigmoid "
                               "--train --features --iterations --sigmoid-range --scheme --input-range ") ||
        (!o.train && !need(o.model, "--model")))
        return EXIT_USAGE;
    if (o.train) return cmd_plan_train(&o);
    veil_model *m = NULL;
    double *calib = NULL;
    int rc = load_model(&m, &o, &calib);
    veil_plan *plan = NULL;
    if (!rc) rc = make_plan(&o, m, &plan);
    if (!rc) {
        veil_plan_info in;
        veil_plan_get_info(plan, &in);
        printf("model:          %s (%zu inputs -> %zu outputs per sample)\n", o.model, veil_model_input_width(m),
               veil_model_output_width(m));
        fputs(veil_model_report(m), stdout);
        print_plan(plan, stdout);
        rc = finish_output();
    }
    veil_plan_free(plan);
    veil_model_free(m);
    free(calib);
    return rc;
}

static int cmd_keygen(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --model --out --batch --latency --security --calibrate --range --degree --force-approximation "
                               "--server-sigmoid --quiet --force --server --cacert --train --features --iterations "
                               "--sigmoid-range --scheme --input-range ") ||
        (!o.train && !need(o.model, "--model")) || !need(o.out, "--out"))
        return EXIT_USAGE;
    if (o.train && (o.model || o.server)) {
        fprintf(stderr, "veil: --train makes keys for training, without a model: drop --model/--server\n");
        return EXIT_USAGE;
    }
    if (o.server && o.scheme && !strcmp(o.scheme, "bgv")) {
        fprintf(stderr, "veil: exact inference (--scheme bgv) makes its keys from the model, not a server's plan\n");
        return EXIT_USAGE;
    }
    if (o.server) return veil_cmd_keygen_remote(o.server, o.model, o.latency, o.out, o.force, o.quiet, o.cacert);
    char sk_path[4096], eval_dir[4096], eval_path[4096];
    snprintf(sk_path, sizeof sk_path, "%s/secret.key", o.out);
    snprintf(eval_dir, sizeof eval_dir, "%s/eval", o.out);
    snprintf(eval_path, sizeof eval_path, "%s/eval/eval.keys", o.out);
    if (exists(sk_path) && !o.force) {
        fprintf(stderr, "veil: %s already holds a key set; keys are never overwritten (use --force to replace "
                        "them: ciphertexts made under the old keys become undecryptable)\n", o.out);
        return EXIT_INPUT;
    }
    int made[2];
    if (veil_make_key_dirs(o.out, eval_dir, made)) return EXIT_RUNTIME;
    veil_model *m = NULL;
    double *calib = NULL;
    veil_plan *plan = NULL;
    int rc = o.train ? make_train_plan(&o, &plan) : load_model(&m, &o, &calib);
    if (!rc && !o.train) rc = make_plan(&o, m, &plan);
    if (!rc) {
        veil_plan_info in;
        veil_plan_get_info(plan, &in);
        if (!o.quiet) {
            char kb[32];
            size_text(kb, sizeof kb, in.eval_key_bytes);
            if (in.scheme == VEIL_ML_BGV)
                fprintf(stderr, "veil: generating BGV keys (N = %zu, %zu plaintext modul%s, %s of evaluation keys)\n",
                        in.n, in.crt_count, in.crt_count == 1 ? "us" : "i", kb);
            else
                fprintf(stderr, "veil: generating keys (N = %zu, %zu rotation keys, %s of evaluation keys)\n", in.n,
                        in.rotations, kb);
            if (m) fputs(veil_model_report(m), stderr); /* the lowering, and each approximation's error */
        }
        bar b;
        bar_init(&b, "keys", &o);
        rc = keygen_to_files(sk_path, eval_path, plan, progress, &b);
    }
    if (rc) veil_remove_key_dirs(o.out, eval_dir, made);
    if (!rc && !o.quiet)
        fprintf(stderr, "veil: wrote %s (secret: keep it) and %s (give it to the server)\n", sk_path, eval_path);
    veil_plan_free(plan);
    veil_model_free(m);
    free(calib);
    return rc;
}

static int cmd_encrypt(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --keys --in --out --model --quiet --calibrate --range --degree --force-approximation --server-sigmoid "
                               "--labels-column ") ||
        !need(o.keys, "--keys") || !need(o.in, "--in") || !need(o.out, "--out"))
        return EXIT_USAGE;
    veil_keyset *ks = NULL;
    int rc = load_keyset(o.keys, &ks);
    if (!rc && (veil_keyset_packing(ks) == VEIL_PACKING_TRAINING || o.labels)) {
        rc = encrypt_training(&o, ks);
        veil_keyset_free(ks);
        return rc;
    }
    double *x = NULL, *calib = NULL;
    size_t rows = 0;
    veil_ciphertexts *cts = NULL;
    veil_model *m = NULL;
    /* the model first: keys of another model are a mismatch, whatever the data */
    if (!rc && o.model) rc = load_model_for_keys(&m, &o, veil_keyset_scheme(ks), o.keys, &calib);
    if (!rc && m && veil_model_input_width(m) != veil_keyset_input_width(ks)) {
        fprintf(stderr, "veil: %s reads %zu values per row, the keys' model %zu: keys of another model\n", o.model,
                veil_model_input_width(m), veil_keyset_input_width(ks));
        rc = EXIT_MISMATCH;
    }
    if (!rc) rc = veil_read_rows_for_keys(o.in, veil_keyset_input_width(ks), o.keys, &x, &rows);
    if (!rc && m) {
        /* with the model at hand: warn about values outside the calibrated range of an approximation */
        double excess = 0;
        veil_error err = {0};
        /* the keys enforce the inputs' range their plan bounded the circuit from (veil_ciphertexts_encrypt); an
         * approximated activation's input beyond its polynomial's range is refused all the same */
        if (!rc && veil_model_range_excess(m, x, rows, &excess, &err) == VEIL_OK && excess > 0) {
            fprintf(stderr, "veil: encrypt: some inputs drive an approximated activation up to %g outside the range "
                            "its polynomial was fitted on: the results would not be the model's\n", excess);
            rc = EXIT_INPUT;
        }
    }
    veil_model_free(m);
    free(calib);
    if (!rc) {
        veil_error err = {0};
        veil_status st = veil_ciphertexts_encrypt(&cts, ks, x, rows, NULL, &err);
        if (st != VEIL_OK) rc = fail(st, &err, NULL);
    }
    if (!rc) {
        veil_buffer b = {0};
        veil_error err = {0};
        veil_status st = veil_ciphertexts_save(&b, cts, &err);
        rc = st != VEIL_OK ? fail(st, &err, NULL) : save_buffer(o.out, &b);
    }
    veil_ciphertexts_free(cts);
    veil_keyset_free(ks);
    free(x);
    return rc;
}

static int cmd_eval(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --model --eval-keys --in --out --threads --quiet --calibrate --range --degree --force-approximation "
                               "--server-sigmoid ") ||
        !need(o.model, "--model") || !need(o.eval_keys, "--eval-keys") || !need(o.in, "--in") || !need(o.out, "--out"))
        return EXIT_USAGE;
    char path[4096];
    if (eval_keys_path(o.eval_keys, path, sizeof path)) return EXIT_INPUT;
    veil_model *m = NULL;
    double *calib = NULL;
    veil_buffer kb = {0}, cb = {0};
    veil_eval_keys *ek = NULL;
    veil_ciphertexts *in = NULL, *out = NULL;
    veil_evaluator *ev = NULL;
    veil_error err = {0};
    veil_status st = VEIL_OK;
    int rc = read_all(path, &kb);
    if (!rc && (st = veil_eval_keys_load(&ek, kb.data, kb.len, &err)) != VEIL_OK) rc = fail(st, &err, path);
    veil_buffer_free(&kb); /* the keys are parsed: their file's bytes are not held through the work */
    if (!rc) rc = load_model_for_keys(&m, &o, veil_eval_keys_scheme(ek), path, &calib);
    if (!rc && (st = veil_evaluator_new(&ev, m, ek, o.threads ? o.threads : 1, &err)) != VEIL_OK)
        rc = fail(st, &err, NULL);
    if (!rc) rc = read_all(o.in, &cb);
    if (!rc && (st = veil_ciphertexts_load(&in, NULL, ek, cb.data, cb.len, &err)) != VEIL_OK) rc = fail(st, &err, o.in);
    veil_buffer_free(&cb);
    if (!rc) {
        bar b;
        bar_init(&b, "evaluating", &o);
        if ((st = veil_evaluator_run(ev, &out, in, progress, &b, &err)) != VEIL_OK) rc = fail(st, &err, NULL);
    }
    if (!rc) {
        veil_buffer ob = {0};
        st = veil_ciphertexts_save(&ob, out, &err);
        rc = st != VEIL_OK ? fail(st, &err, NULL) : save_buffer(o.out, &ob);
    }
    veil_evaluator_free(ev);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(out);
    veil_eval_keys_free(ek);
    veil_buffer_free(&kb);
    veil_buffer_free(&cb);
    veil_model_free(m);
    free(calib);
    return rc;
}

/* Integers as CSV, exactly. */
static int write_int_csv(const char *path, const int64_t *v, size_t rows, size_t width)
{
    size_t cap = rows * (width * 21 + 1) + 64, len = 0;
    char *text = malloc(cap);
    if (!text) {
        fprintf(stderr, "veil: out of memory\n");
        return EXIT_RUNTIME;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < width; i++)
            len += (size_t)snprintf(text + len, cap - len, "%s%lld%s", i ? "," : "", (long long)v[r * width + i],
                                    i + 1 == width ? "\n" : "");
    veil_error err = {0};
    veil_status st = veil_file_write_atomic(path, (const uint8_t *)text, len, &err);
    free(text);
    if (st != VEIL_OK) return fail(st, &err, NULL);
    return EXIT_OK;
}

/* decrypt --integers: exact inference's integers, before the output scale and the final operation. */
static int write_integers(const options *o, const veil_keyset *ks, const veil_ciphertexts *cts)
{
    const size_t rows = veil_ciphertexts_rows(cts), w = veil_ciphertexts_width(cts);
    int64_t *v = calloc(rows * w + 1, sizeof *v);
    if (!v) return EXIT_RUNTIME;
    veil_error err = {0};
    veil_status st = veil_ciphertexts_decrypt_integers(v, ks, cts, &err);
    int rc = st != VEIL_OK ? fail(st, &err, NULL) : write_int_csv(o->out, v, rows, w);
    free(v);
    return rc;
}

static int cmd_decrypt(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --keys --in --out --argmax --onnx --integers ") || !need(o.keys, "--keys") ||
        !need(o.in, "--in") ||
        (!o.onnx && !need(o.out, "--out")))
        return EXIT_USAGE;
    veil_keyset *ks = NULL;
    int rc = load_keyset(o.keys, &ks);
    veil_buffer cb = {0};
    veil_ciphertexts *cts = NULL;
    veil_error err = {0};
    veil_status st;
    double *y = NULL;
    if (!rc) rc = read_all(o.in, &cb);
    if (!rc && (st = veil_ciphertexts_load(&cts, ks, NULL, cb.data, cb.len, &err)) != VEIL_OK) rc = fail(st, &err, o.in);
    if (!rc && veil_keyset_packing(ks) == VEIL_PACKING_TRAINING) {
        rc = decrypt_training(&o, ks, cts);
        veil_ciphertexts_free(cts);
        veil_buffer_free(&cb);
        veil_keyset_free(ks);
        return rc;
    }
    if (!rc && !o.out) {
        fprintf(stderr, "veil: --onnx is for trained models; give --out for a model's outputs\n");
        rc = EXIT_USAGE;
    }
    if (!rc && o.integers) {
        rc = write_integers(&o, ks, cts);
        veil_ciphertexts_free(cts);
        veil_buffer_free(&cb);
        veil_keyset_free(ks);
        return rc;
    }
    size_t rows = cts ? veil_ciphertexts_rows(cts) : 0, w = veil_keyset_output_width(ks);
    int mode = VEIL_CSV_VALUES;
    if (!rc) rc = veil_csv_mode(o.argmax, veil_keyset_final_op(ks), w, &mode);
    if (!rc && !(y = calloc(rows * w + 1, sizeof *y))) rc = EXIT_RUNTIME;
    if (!rc && (st = veil_ciphertexts_decrypt(y, NULL, ks, cts, &err)) != VEIL_OK) rc = fail(st, &err, NULL);
    if (!rc) rc = veil_write_csv(o.out, y, rows, w, mode);
    free(y);
    veil_ciphertexts_free(cts);
    veil_buffer_free(&cb);
    veil_keyset_free(ks);
    return rc;
}

static int cmd_plain(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --model --in --out --argmax --calibrate --range --degree --force-approximation --server-sigmoid "
                               "--integers --exact ") ||
        !need(o.model, "--model") || !need(o.in, "--in") || !need(o.out, "--out"))
        return EXIT_USAGE;
    veil_model *m = NULL;
    double *calib = NULL, *x = NULL, *y = NULL;
    size_t rows = 0;
    int rc = load_model(&m, &o, &calib);
    if (!rc) rc = read_csv(o.in, veil_model_input_width(m), &x, &rows);
    veil_error err = {0};
    veil_status st;
    if (!rc && o.integers) {
        /* the integer computation exact inference equals (the program before the output scale) */
        const size_t iw = veil_model_input_width(m), ow = m ? veil_model_raw_width(m) : 0;
        int64_t *xi = calloc(rows * iw + 1, sizeof *xi), *yi = calloc(rows * ow + 1, sizeof *yi);
        rc = xi && yi ? EXIT_OK : EXIT_RUNTIME;
        for (size_t i = 0; !rc && i < rows * iw; i++) {
            if (x[i] != nearbyint(x[i]) || fabs(x[i]) > 9.0e15) {
                fprintf(stderr, "veil: plain --integers: row %zu, column %zu is %g, not an integer\n", i / iw + 1,
                        i % iw + 1, x[i]);
                rc = EXIT_INPUT;
                break;
            }
            xi[i] = (int64_t)x[i];
        }
        if (!rc && (st = veil_model_run_integer(m, yi, xi, rows, &err)) != VEIL_OK) rc = fail(st, &err, NULL);
        if (!rc) rc = write_int_csv(o.out, yi, rows, ow);
        free(xi);
        free(yi);
        free(x);
        free(calib);
        veil_model_free(m);
        return rc;
    }
    size_t w = m ? veil_model_output_width(m) : 0;
    int mode = VEIL_CSV_VALUES;
    if (!rc) rc = veil_csv_mode(o.argmax, veil_model_final_op(m), w, &mode);
    if (!rc && !(y = calloc(rows * w + 1, sizeof *y))) rc = EXIT_RUNTIME;
    /* what the encrypted model returns (its polynomials), or with --exact the ONNX graph itself */
    if (!rc && (st = o.exact ? veil_model_run_plain(m, y, x, rows, &err) : veil_model_run_program(m, y, x, rows, &err)) !=
                   VEIL_OK)
        rc = fail(st, &err, NULL);
    if (!rc) rc = veil_write_csv(o.out, y, rows, w, mode);
    free(x);
    free(y);
    free(calib);
    veil_model_free(m);
    return rc;
}

int veil_ml_command(const char *cmd, int argc, char **argv)
{
    double t0 = seconds();
    int rc;
    if (!strcmp(cmd, "keygen")) rc = cmd_keygen(argc, argv);
    else if (!strcmp(cmd, "encrypt")) rc = cmd_encrypt(argc, argv);
    else if (!strcmp(cmd, "eval")) rc = cmd_eval(argc, argv);
    else if (!strcmp(cmd, "decrypt")) rc = cmd_decrypt(argc, argv);
    else if (!strcmp(cmd, "plain")) rc = cmd_plain(argc, argv);
    else if (!strcmp(cmd, "plan")) rc = cmd_plan(argc, argv);
    else if (!strcmp(cmd, "train")) rc = cmd_train(argc, argv);
    else if (!strcmp(cmd, "serve")) rc = veil_cmd_serve(argc, argv);
    else if (!strcmp(cmd, "predict")) rc = veil_cmd_predict(argc, argv);
    else return -1;
    if (getenv("VEIL_TIMING")) fprintf(stderr, "veil %s: %.3f s\n", cmd, seconds() - t0);
    return rc;
}
