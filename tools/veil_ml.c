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

typedef struct options {
    const char *model, *keys, *eval_keys, *in, *out, *calibrate, *range, *server, *cacert;
    size_t batch, degree, threads;
    int latency, argmax, quiet, force, server_sigmoid;
    veil_security security;
} options;

static int fail(veil_status st, const veil_error *err, const char *what)
{
    fprintf(stderr, "veil: %s: %s\n", what, err->detail[0] ? err->detail : veil_strerror(st));
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
                        !strcmp(a, "--force") || !strcmp(a, "--server-sigmoid");
        if (is_switch) {
            if (!strcmp(a, "--latency")) o->latency = 1;
            else if (!strcmp(a, "--argmax")) o->argmax = 1;
            else if (!strcmp(a, "--quiet")) o->quiet = 1;
            else if (!strcmp(a, "--force")) o->force = 1;
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
        else if (!strcmp(a, "--batch") || !strcmp(a, "--degree") || !strcmp(a, "--threads")) {
            size_t n;
            if (!parse_size(v, &n) || n == 0) {
                fprintf(stderr, "veil: %s wants a positive integer, not '%s'\n", a, v);
                return 0;
            }
            if (!strcmp(a, "--batch")) o->batch = n;
            else if (!strcmp(a, "--degree")) o->degree = n;
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

static int load_model(veil_model **m, const options *o, double **calib)
{
    veil_model_options mo = {.degree = o->degree, .server_sigmoid = o->server_sigmoid};
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
        if (st != VEIL_OK) return fail(st, &err, "calibration data");
        mo.calibration = *calib;
        mo.calibration_rows = rows;
        mo.calibration_width = width;
    }
    veil_status st = veil_model_load_onnx_file(m, o->model, &mo, &err);
    if (st == VEIL_OK && o->calibrate && mo.calibration_rows &&
        veil_model_input_width(*m) * mo.calibration_rows == 0) st = VEIL_ERR_ARGUMENT;
    if (st != VEIL_OK) return fail(st, &err, o->model);
    return EXIT_OK;
}

int veil_write_csv(const char *path, const double *v, size_t rows, size_t width, int argmax)
{
    size_t cap = rows * (width * 26 + 26) + 64, len = 0;
    char *text = malloc(cap);
    if (!text) {
        fprintf(stderr, "veil: out of memory\n");
        return EXIT_RUNTIME;
    }
    for (size_t r = 0; r < rows; r++) {
        const double *row = v + r * width;
        if (argmax) {
            size_t best = 0;
            for (size_t i = 1; i < width; i++)
                if (row[i] > row[best]) best = i;
            if (width == 1) len += (size_t)snprintf(text + len, cap - len, "%.17g\n", row[0]); /* an ArgMax model's index */
            else len += (size_t)snprintf(text + len, cap - len, "%zu\n", best);
            continue;
        }
        for (size_t i = 0; i < width; i++)
            len += (size_t)snprintf(text + len, cap - len, "%s%.17g", i ? "," : "", row[i]);
        len += (size_t)snprintf(text + len, cap - len, "\n");
    }
    veil_error err = {0};
    veil_status st = veil_file_write_atomic(path, (const uint8_t *)text, len, &err);
    free(text);
    if (st != VEIL_OK) return fail(st, &err, path);
    return EXIT_OK;
}

static int read_csv(const char *path, size_t width, double **x, size_t *rows)
{
    veil_error err = {0};
    size_t w;
    veil_status st = veil_csv_read(path, width, x, rows, &w, &err);
    if (st != VEIL_OK) return fail(st, &err, "input");
    return EXIT_OK;
}

static int save_buffer(const char *path, veil_buffer *b)
{
    veil_error err = {0};
    veil_status st = veil_file_write_atomic(path, b->data, b->len, &err);
    veil_buffer_free(b);
    if (st != VEIL_OK) return fail(st, &err, path);
    return EXIT_OK;
}

static int read_all(const char *path, veil_buffer *b)
{
    veil_error err = {0};
    veil_status st = veil_file_read(b, path, MAX_KEY_BYTES, &err);
    if (st != VEIL_OK) return fail(st, &err, path);
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
 * Both files of a key set, or neither changed: each is written beside its final name (atomically, the secret
 * one 0600), then both are renamed, so that a failure never pairs new evaluation keys with an old secret key.
 */
int veil_write_key_pair(const char *sk_path, const char *eval_path, const veil_keyset *ks, const veil_eval_keys *ek)
{
    char sk_new[4200], eval_new[4200];
    snprintf(sk_new, sizeof sk_new, "%s.new", sk_path);
    snprintf(eval_new, sizeof eval_new, "%s.new", eval_path);
    veil_buffer sb = {0}, eb = {0};
    veil_error err = {0};
    veil_status st = veil_eval_keys_save(&eb, ek, &err);
    if (st == VEIL_OK) st = veil_keyset_save(&sb, ks, &err);
    if (st == VEIL_OK) st = veil_file_write_atomic(eval_new, eb.data, eb.len, &err);
    if (st == VEIL_OK) st = veil_file_write_atomic(sk_new, sb.data, sb.len, &err);
    veil_buffer_free(&sb);
    veil_buffer_free(&eb);
    if (st == VEIL_OK && (rename(eval_new, eval_path) != 0 || rename(sk_new, sk_path) != 0)) {
        st = VEIL_ERR_IO;
        snprintf(err.detail, sizeof err.detail, "cannot rename the new keys into place: %s", strerror(errno));
    }
    if (st != VEIL_OK) {
        unlink(sk_new);
        unlink(eval_new);
        return fail(st, &err, "keygen");
    }
    return EXIT_OK;
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

/* ---- commands ----------------------------------------------------------------------------------------- */

static void print_plan(const veil_plan_info *in, FILE *f)
{
    fprintf(f, "packing:        %s\n", in->packing == VEIL_PACKING_LATENCY ? "latency (one sample per ciphertext)"
                                                                          : "throughput (one sample per slot)");
    fprintf(f, "depth:          %zu levels\n", in->depth);
    fprintf(f, "parameters:     N = %zu, %zu Q primes + %zu P primes, log2(QP) = %u, dnum %zu, scale 2^%u\n", in->n,
            in->q_count, in->p_count, in->log_qp, in->dnum, in->scale_bits);
    fprintf(f, "slots:          %zu%s\n", in->slots, in->packing == VEIL_PACKING_LATENCY ? " (padded width)" : "");
    fprintf(f, "batch:          %zu samples per ciphertext set\n", in->batch);
    fprintf(f, "rotation keys:  %zu\n", in->rotations);
    fprintf(f, "ciphertexts:    %zu in, %zu out per %s\n", in->in_ciphertexts, in->out_ciphertexts,
            in->packing == VEIL_PACKING_LATENCY ? "sample" : "batch");
    fprintf(f, "sizes:          eval keys ~%.1f MiB, a fresh ciphertext ~%.0f KiB\n", in->eval_key_bytes / 1048576.0,
            in->ciphertext_bytes / 1024.0);
    fprintf(f, "estimates:      server time ~%.3g s per %s (single thread), memory ~%.0f MiB\n",
            in->estimated_seconds, in->packing == VEIL_PACKING_LATENCY ? "sample" : "batch",
            in->estimated_memory_bytes / 1048576.0);
}

static int make_plan(const options *o, const veil_model *m, veil_plan **plan)
{
    veil_plan_request req = {.packing = o->latency ? VEIL_PACKING_LATENCY : VEIL_PACKING_THROUGHPUT,
                             .batch = o->batch, .security = o->security};
    veil_error err = {0};
    veil_status st = veil_model_plan(plan, m, &req, &err);
    if (st != VEIL_OK) return fail(st, &err, "plan");
    return EXIT_OK;
}

static int cmd_plan(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --model --batch --latency --security --calibrate --range --degree --server-sigmoid ") ||
        !need(o.model, "--model"))
        return EXIT_USAGE;
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
        print_plan(&in, stdout);
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
    if (!parse(argc, argv, &o, " --model --out --batch --latency --security --calibrate --range --degree "
                               "--server-sigmoid --quiet --force --server --cacert ") ||
        !need(o.model, "--model") || !need(o.out, "--out"))
        return EXIT_USAGE;
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
    if ((!is_dir(o.out) && mkdir(o.out, 0700) != 0) || (!is_dir(eval_dir) && mkdir(eval_dir, 0755) != 0)) {
        fprintf(stderr, "veil: cannot create %s: %s\n", o.out, strerror(errno));
        return EXIT_RUNTIME;
    }
    veil_model *m = NULL;
    double *calib = NULL;
    int rc = load_model(&m, &o, &calib);
    veil_plan *plan = NULL;
    if (!rc) rc = make_plan(&o, m, &plan);
    veil_keyset *ks = NULL;
    veil_eval_keys *ek = NULL;
    if (!rc) {
        veil_plan_info in;
        veil_plan_get_info(plan, &in);
        if (!o.quiet) {
            fprintf(stderr, "veil: generating keys (N = %zu, %zu rotation keys)\n", in.n, in.rotations);
            fputs(veil_model_report(m), stderr); /* the lowering, and each approximation's error */
        }
        veil_error err = {0};
        bar b;
        bar_init(&b, "keys", &o);
        veil_status st = veil_keygen_progress(&ks, &ek, plan, NULL, progress, &b, &err);
        if (st != VEIL_OK) rc = fail(st, &err, "keygen");
    }
    if (!rc) rc = veil_write_key_pair(sk_path, eval_path, ks, ek);
    if (!rc && !o.quiet)
        fprintf(stderr, "veil: wrote %s (secret: keep it) and %s (give it to the server)\n", sk_path, eval_path);
    veil_keyset_free(ks);
    veil_eval_keys_free(ek);
    veil_plan_free(plan);
    veil_model_free(m);
    free(calib);
    return rc;
}

static int cmd_encrypt(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --keys --in --out --model --quiet --calibrate --range --degree --server-sigmoid ") ||
        !need(o.keys, "--keys") || !need(o.in, "--in") || !need(o.out, "--out"))
        return EXIT_USAGE;
    veil_keyset *ks = NULL;
    int rc = load_keyset(o.keys, &ks);
    double *x = NULL;
    size_t rows = 0;
    veil_ciphertexts *cts = NULL;
    if (!rc) rc = read_csv(o.in, veil_keyset_input_width(ks), &x, &rows);
    if (!rc && o.model) {
        /* with the model at hand: warn about values outside the calibrated range of an approximation */
        veil_model *m = NULL;
        double *calib = NULL, excess = 0;
        veil_error err = {0};
        rc = load_model(&m, &o, &calib);
        if (!rc && veil_model_input_width(m) != veil_keyset_input_width(ks)) {
            fprintf(stderr, "veil: %s reads %zu values per row, the keys' model %zu\n", o.model,
                    veil_model_input_width(m), veil_keyset_input_width(ks));
            rc = EXIT_MISMATCH;
        }
        if (!rc && veil_model_range_excess(m, x, rows, &excess, &err) == VEIL_OK && excess > 0)
            fprintf(stderr, "veil: warning: some inputs drive an approximated activation up to %g outside the range "
                            "its polynomial was fitted on: those results will be inaccurate\n", excess);
        veil_model_free(m);
        free(calib);
    }
    if (!rc) {
        veil_error err = {0};
        veil_status st = veil_encrypt_inputs(&cts, ks, x, rows, NULL, &err);
        if (st != VEIL_OK) rc = fail(st, &err, "encrypt");
    }
    if (!rc) {
        veil_buffer b = {0};
        veil_error err = {0};
        veil_status st = veil_ciphertexts_save(&b, cts, &err);
        rc = st != VEIL_OK ? fail(st, &err, "encrypt") : save_buffer(o.out, &b);
    }
    veil_ciphertexts_free(cts);
    veil_keyset_free(ks);
    free(x);
    return rc;
}

static int cmd_eval(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --model --eval-keys --in --out --threads --quiet --calibrate --range --degree "
                               "--server-sigmoid ") ||
        !need(o.model, "--model") || !need(o.eval_keys, "--eval-keys") || !need(o.in, "--in") || !need(o.out, "--out"))
        return EXIT_USAGE;
    char path[4096];
    if (is_dir(o.eval_keys)) {
        snprintf(path, sizeof path, "%s/secret.key", o.eval_keys);
        if (exists(path)) {
            fprintf(stderr, "veil: %s holds a secret key: give the server only the eval/ folder\n", o.eval_keys);
            return EXIT_INPUT;
        }
        snprintf(path, sizeof path, "%s/eval.keys", o.eval_keys);
    } else {
        snprintf(path, sizeof path, "%s", o.eval_keys);
    }
    veil_model *m = NULL;
    double *calib = NULL;
    int rc = load_model(&m, &o, &calib);
    veil_buffer kb = {0}, cb = {0};
    veil_eval_keys *ek = NULL;
    veil_ciphertexts *in = NULL, *out = NULL;
    veil_evaluator *ev = NULL;
    veil_error err = {0};
    veil_status st = VEIL_OK;
    if (!rc) rc = read_all(path, &kb);
    if (!rc && (st = veil_eval_keys_load(&ek, kb.data, kb.len, &err)) != VEIL_OK) rc = fail(st, &err, path);
    if (!rc && (st = veil_evaluator_new(&ev, m, ek, o.threads ? o.threads : 1, &err)) != VEIL_OK)
        rc = fail(st, &err, "eval");
    if (!rc) rc = read_all(o.in, &cb);
    if (!rc && (st = veil_ciphertexts_load(&in, NULL, ek, cb.data, cb.len, &err)) != VEIL_OK) rc = fail(st, &err, o.in);
    if (!rc) {
        bar b;
        bar_init(&b, "evaluating", &o);
        if ((st = veil_evaluator_run(ev, &out, in, progress, &b, &err)) != VEIL_OK) rc = fail(st, &err, "eval");
    }
    if (!rc) {
        veil_buffer ob = {0};
        st = veil_ciphertexts_save(&ob, out, &err);
        rc = st != VEIL_OK ? fail(st, &err, "eval") : save_buffer(o.out, &ob);
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

static int cmd_decrypt(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --keys --in --out --argmax ") || !need(o.keys, "--keys") || !need(o.in, "--in") ||
        !need(o.out, "--out"))
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
    size_t rows = cts ? veil_ciphertexts_rows(cts) : 0, w = veil_keyset_output_width(ks);
    if (!rc && !(y = calloc(rows * w + 1, sizeof *y))) rc = EXIT_RUNTIME;
    if (!rc && (st = veil_decrypt_outputs(y, NULL, ks, cts, &err)) != VEIL_OK) rc = fail(st, &err, "decrypt");
    if (!rc) rc = veil_write_csv(o.out, y, rows, w, o.argmax);
    free(y);
    veil_ciphertexts_free(cts);
    veil_buffer_free(&cb);
    veil_keyset_free(ks);
    return rc;
}

static int cmd_plain(int argc, char **argv)
{
    options o;
    if (!parse(argc, argv, &o, " --model --in --out --argmax --calibrate --range --degree --server-sigmoid ") ||
        !need(o.model, "--model") || !need(o.in, "--in") || !need(o.out, "--out"))
        return EXIT_USAGE;
    veil_model *m = NULL;
    double *calib = NULL, *x = NULL, *y = NULL;
    size_t rows = 0;
    int rc = load_model(&m, &o, &calib);
    if (!rc) rc = read_csv(o.in, veil_model_input_width(m), &x, &rows);
    size_t w = m ? veil_model_output_width(m) : 0;
    if (!rc && !(y = calloc(rows * w + 1, sizeof *y))) rc = EXIT_RUNTIME;
    veil_error err = {0};
    veil_status st;
    if (!rc && (st = veil_model_run_plain(m, y, x, rows, &err)) != VEIL_OK) rc = fail(st, &err, "plain");
    if (!rc) rc = veil_write_csv(o.out, y, rows, w, o.argmax);
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
    else if (!strcmp(cmd, "serve")) rc = veil_cmd_serve(argc, argv);
    else if (!strcmp(cmd, "predict")) rc = veil_cmd_predict(argc, argv);
    else return -1;
    if (getenv("VEIL_TIMING")) fprintf(stderr, "veil %s: %.3f s\n", cmd, seconds() - t0);
    return rc;
}
