/*
 * The helpers of `veil`'s commands: the one cli_fail (a library status to a message and an exit code), the
 * progress bar, files written atomically, CSV, key sets, and models and plans made from the options. Calls the
 * library only, never a command.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "veil_cli.h"

#define MAX_FILE_BYTES ((size_t)1 << 34)  /* key and ciphertext files */
#define MAX_MODEL_BYTES ((size_t)1 << 30) /* as veil_model_load_onnx_file */
#define SECRET_SCAN_BYTES ((uint64_t)1 << 28) /* sets beside the evaluation keys read whole up to this size */

/* ---- errors and output ------------------------------------------------------------------------------- */

int cli_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("veil: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

int cli_fail(veil_status st, const veil_error *err, const char *what)
{
    const char *detail = err->detail[0] ? err->detail : veil_strerror(st);
    if (what) fprintf(stderr, "veil: %s: %s\n", what, detail);
    else fprintf(stderr, "veil: %s\n", detail);
    switch (st) {
    case VEIL_ERR_MISMATCH: return EXIT_MISMATCH;
    case VEIL_ERR_BUDGET: return EXIT_BUDGET;
    case VEIL_ERR_FORMAT:
    case VEIL_ERR_ARGUMENT:
    case VEIL_ERR_UNSUPPORTED:
    case VEIL_ERR_INSECURE:
    case VEIL_ERR_NOT_FOUND: return EXIT_INPUT; /* no parameters for the model, a server's unknown model */
    default: return EXIT_RUNTIME;
    }
}

int cli_status(veil_status st, const veil_error *err, const char *what)
{
    return st == VEIL_OK ? EXIT_OK : cli_fail(st, err, what);
}

int cli_finish_output(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "veil: cannot write to standard output\n");
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

double cli_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

const char *cli_size_text(char *buf, size_t cap, double bytes)
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

/* ---- progress ---------------------------------------------------------------------------------------- */

void cli_bar_init(cli_bar *b, const char *what, int quiet)
{
    b->what = what;
    b->on = !quiet && isatty(2);
    b->last = 0;
}

void cli_progress(void *arg, size_t done, size_t total)
{
    cli_bar *b = arg;
    if (!b || !b->on || total == 0) return;
    const long now = (long)time(NULL);
    if (done != total && now == b->last) return;
    b->last = now;
    const int width = 30, filled = (int)((double)width * (double)done / (double)total);
    fprintf(stderr, "\r%s [%.*s%*s] %3d%%", b->what, filled, "##############################", width - filled, "",
            (int)(100.0 * (double)done / (double)total));
    if (done == total) fputc('\n', stderr);
}

/* ---- files ------------------------------------------------------------------------------------------- */

int cli_is_dir(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

int cli_exists(const char *p)
{
    struct stat s;
    return stat(p, &s) == 0;
}

int cli_read_file(const char *path, veil_buffer *b)
{
    veil_error err = {0};
    return cli_status(veil_file_read(b, path, MAX_FILE_BYTES, &err), &err, NULL); /* the message names the file */
}

/*
 * --threads T of eval and train: T is also the arithmetic's thread count (the contexts made from here on read
 * VEIL_THREADS), so that the command uses at most T threads in all, not T ciphertexts each on every core.
 */
void cli_use_threads(size_t threads)
{
    char v[24];
    if (!threads) return;
    snprintf(v, sizeof v, "%zu", threads);
    setenv("VEIL_THREADS", v, 1);
}

int cli_save_buffer(const char *path, veil_buffer *b)
{
    veil_error err = {0};
    veil_status st = veil_file_write_atomic(path, b->data, b->len, &err);
    veil_buffer_free(b);
    return cli_status(st, &err, NULL); /* the writer's message names the file */
}

int cli_save_ciphertexts(const char *path, const veil_ciphertexts *cts)
{
    veil_buffer b = {0};
    veil_error err = {0};
    const int rc = cli_status(veil_ciphertexts_save(&b, cts, &err), &err, NULL);
    return rc ? rc : cli_save_buffer(path, &b);
}

int cli_client_token(veil_client *client, const char *token_file)
{
    veil_error err = {0};
    veil_buffer b = {0};
    char token[520];
    int rc = EXIT_OK;
    const char *env = getenv("VEIL_TOKEN");
    if (!token_file) {
        if (!env || !*env) return EXIT_OK; /* no token: a server without authentication (--no-auth) */
        return cli_status(veil_client_set_token(client, env, &err), &err, "VEIL_TOKEN");
    }
    struct stat sb;
    if (stat(token_file, &sb) != 0) CLI_FAIL(EXIT_INPUT, "--token-file %s: %s", token_file, strerror(errno));
    if (sb.st_mode & 0004) CLI_FAIL(EXIT_INPUT, "--token-file %s is readable by every user: chmod 600 it", token_file);
    CLI_CHECK(cli_status(veil_file_read(&b, token_file, 4096, &err), &err, NULL));
    size_t n = b.len;
    while (n && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r' || b.data[n - 1] == ' ')) n--;
    if (n == 0) CLI_FAIL(EXIT_INPUT, "--token-file %s is empty (veil token add prints a token: save its last line)", token_file);
    if (n >= sizeof token || memchr(b.data, 0, n) || memchr(b.data, '\n', n))
        CLI_FAIL(EXIT_INPUT, "--token-file %s holds more than one token's line", token_file);
    memcpy(token, b.data, n);
    token[n] = 0;
    rc = cli_status(veil_client_set_token(client, token, &err), &err, token_file);
done:
    veil_wipe(token, sizeof token);
    if (b.data) veil_wipe(b.data, b.len);
    veil_buffer_free(&b);
    return rc;
}

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
        return cli_fail(st, err, NULL);
    }
    return EXIT_OK;
}

int cli_write_two(const char *path_a, const veil_buffer *a, const char *path_b, const veil_buffer *b)
{
    char a_new[4200], b_new[4200];
    snprintf(a_new, sizeof a_new, "%s.new", path_a);
    snprintf(b_new, sizeof b_new, "%s.new", path_b);
    veil_error err = {0};
    veil_status st = veil_file_write_atomic(a_new, a->data, a->len, &err);
    if (st == VEIL_OK) st = veil_file_write_atomic(b_new, b->data, b->len, &err);
    return place_two(a_new, path_a, b_new, path_b, st, &err);
}

/* ---- CSV --------------------------------------------------------------------------------------------- */

int cli_read_csv(const char *path, size_t width, double **x, size_t *rows, size_t *width_out)
{
    veil_error err = {0};
    size_t w;
    veil_status st = veil_csv_read(path, width, x, rows, &w, &err);
    if (st == VEIL_OK && width_out) *width_out = w;
    return cli_status(st, &err, NULL);
}

/*
 * The rows of a CSV for keys whose model reads `width` values per row. A CSV whose rows all have another
 * width holds data for another model (EXIT_MISMATCH); a ragged one is a CSV error, named against the keys' width.
 */
int cli_read_rows_for_keys(const char *path, size_t width, const char *keys, double **x, size_t *rows)
{
    veil_error err = {0};
    size_t w = 0;
    veil_status st = veil_csv_read(path, 0, x, rows, &w, &err);
    if (st == VEIL_OK && w == width) return EXIT_OK;
    free(*x);
    *x = NULL;
    if (st == VEIL_OK)
        return cli_error(EXIT_MISMATCH, "%s: keys made for a model of %zu inputs, but the rows of %s have %zu values: "
                         "keys or data of another model", keys, width, path, w);
    return cli_status(veil_csv_read(path, width, x, rows, NULL, &err), &err, NULL);
}

/*
 * What --argmax writes for a model of `width` outputs after its final operation: each row's largest (several
 * outputs), the class index an ArgMax already gave, or 1 for a Sigmoid's probability above 0.5 and 0 below (as
 * scikit-learn's predict: a logit above 0). A single output without either names no class: refused (EXIT_USAGE).
 */
int cli_csv_mode(int argmax, veil_final_op final_op, size_t width, int *mode)
{
    *mode = CLI_CSV_VALUES;
    if (!argmax || (width == 1 && final_op == VEIL_FINAL_ARGMAX)) return EXIT_OK;
    if (width > 1) *mode = CLI_CSV_ARGMAX;
    else if (final_op == VEIL_FINAL_SIGMOID) *mode = CLI_CSV_ABOVE_HALF;
    else
        return cli_error(EXIT_USAGE, "--argmax: the model has one output and ends in neither Sigmoid nor ArgMax: "
                         "there is no class to write (a regression? with --server-sigmoid, the class is whether the "
                         "output is above 0.5)");
    return EXIT_OK;
}

char *cli_csv_text(const double *v, size_t rows, size_t width, int mode, size_t *len_out)
{
    size_t cap = rows * (width * 26 + 26) + 64, len = 0;
    char *text = malloc(cap);
    if (!text) return NULL;
    for (size_t r = 0; r < rows; r++) {
        const double *row = v + r * width;
        if (mode == CLI_CSV_ARGMAX) {
            size_t best = 0;
            for (size_t i = 1; i < width; i++)
                if (row[i] > row[best]) best = i;
            len += (size_t)snprintf(text + len, cap - len, "%zu\n", best);
            continue;
        }
        if (mode == CLI_CSV_ABOVE_HALF) {
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

/* Writes text (len bytes) atomically to path and frees it; NULL text: out of memory. */
static int write_text(const char *path, char *text, size_t len)
{
    if (!text) return cli_error(EXIT_RUNTIME, "out of memory");
    veil_error err = {0};
    veil_status st = veil_file_write_atomic(path, (const uint8_t *)text, len, &err);
    free(text);
    return cli_status(st, &err, NULL);
}

int cli_write_csv(const char *path, const double *v, size_t rows, size_t width, int mode)
{
    size_t len = 0;
    char *text = cli_csv_text(v, rows, width, mode, &len);
    return write_text(path, text, len);
}

int cli_write_int_csv(const char *path, const int64_t *v, size_t rows, size_t width)
{
    size_t cap = rows * (width * 21 + 1) + 64, len = 0;
    char *text = malloc(cap);
    for (size_t r = 0; text && r < rows; r++)
        for (size_t i = 0; i < width; i++)
            len += (size_t)snprintf(text + len, cap - len, "%s%lld%s", i ? "," : "", (long long)v[r * width + i],
                                    i + 1 == width ? "\n" : "");
    return write_text(path, text, len);
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

/* The first line that is neither blank nor a # comment (0 when there is none). */
static int first_line(FILE *f, char *line, size_t cap)
{
    while (fgets(line, (int)cap, f)) {
        const char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (*p && *p != '#') return 1;
    }
    return 0;
}

/*
 * The header is found as the CSV reader finds it: the first line that is neither blank nor a # comment, when
 * one of its cells is not a number; cells are split at every comma (empty cells count).
 */
int cli_find_label_column(const char *path, const char *name, size_t width, size_t *col)
{
    FILE *f = fopen(path, "r");
    if (!f) return cli_error(EXIT_INPUT, "cannot open %s: %s", path, strerror(errno));
    char line[65536];
    const int have = first_line(f, line, sizeof line);
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
    if (cli_parse_size(name, &n) && n >= 1 && n <= width) {
        *col = n - 1;
        return EXIT_OK;
    }
    return cli_error(EXIT_INPUT, "%s has no column named '%s' in its header (nor is it a column number 1..%zu)", path,
                     name, width);
}

void cli_split_labels(const double *all, size_t rows, size_t width, size_t col, double *x, double *y)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0, k = 0; j < width; j++) {
            if (j == col) y[r] = all[r * width + j];
            else x[r * (width - 1) + k++] = all[r * width + j];
        }
}

int cli_write_trained(const char *csv_path, const double *w, size_t count, const char *onnx_path,
                      const veil_buffer *onnx)
{
    veil_buffer csv = {0};
    if (csv_path && !(csv.data = (uint8_t *)cli_csv_text(w, 1, count, CLI_CSV_VALUES, &csv.len)))
        return cli_error(EXIT_RUNTIME, "out of memory");
    veil_error err = {0};
    int rc = EXIT_OK;
    if (csv_path && onnx_path) rc = cli_write_two(csv_path, &csv, onnx_path, onnx);
    else if (csv_path) rc = cli_status(veil_file_write_atomic(csv_path, csv.data, csv.len, &err), &err, NULL);
    else rc = cli_status(veil_file_write_atomic(onnx_path, onnx->data, onnx->len, &err), &err, NULL);
    free(csv.data);
    return rc;
}

/* ---- keys -------------------------------------------------------------------------------------------- */

int cli_load_keyset(const char *dir, veil_keyset **ks)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/secret.key", dir);
    if (!cli_exists(path)) { /* a multi-party group's joint key set (veil party combine) holds no secret key */
        char joint[4096];
        snprintf(joint, sizeof joint, "%s/joint.keys", dir);
        if (cli_exists(joint)) snprintf(path, sizeof path, "%s", joint);
    }
    veil_buffer b = {0};
    int rc = cli_read_file(path, &b);
    if (rc) return rc;
    veil_error err = {0};
    veil_status st = veil_keyset_load(ks, b.data, b.len, &err);
    veil_buffer_free(&b);
    return cli_status(st, &err, path);
}

/*
 * Whether the file at path holds a secret key, whatever its name: 1 when its header (docs/wire-format.md)
 * says it is a secret key or carries the secret flag (a key set), or when it is a set (up to 256 MiB, read
 * whole unless header_only) of which an object is a secret key; 2 for a set that does not open (a set
 * hiding a secret without declaring it is refused by veil_set_open); 0 for anything else, files that are
 * not Veil objects included. The evaluation keys themselves are read by header only: their loader refuses
 * a secret too, and they may be gigabytes.
 */
static int holds_secret(const char *path, int header_only)
{
    uint8_t h[VEIL_HEADER_BYTES];
    FILE *f = fopen(path, "rb");
    if (!f) return 0; /* unreadable: the server cannot read it either (and the keys' loader names them) */
    const size_t got = fread(h, 1, sizeof h, f);
    fclose(f);
    if (got < sizeof h || memcmp(h, "VEIL", 4) != 0) return 0;
    const unsigned type = (unsigned)h[6] | (unsigned)h[7] << 8;
    const uint32_t flags = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 | (uint32_t)h[11] << 24;
    if (type == VEIL_OBJECT_SECRET_KEY || (flags & VEIL_FLAG_SECRET)) return 1;
    struct stat st;
    /* a set declares a secret in its header (veil_set_save), and one that does not is refused by
     * veil_set_open: reading the whole file checks that, for files of a key set's size */
    if (header_only || type != VEIL_OBJECT_SET || stat(path, &st) != 0 || (uint64_t)st.st_size > SECRET_SCAN_BYTES)
        return 0;
    veil_buffer b = {0};
    veil_error err = {0};
    veil_object_info info;
    veil_set_contents c = {0};
    int secret = 0;
    if (veil_file_read(&b, path, MAX_FILE_BYTES, &err) != VEIL_OK ||
        veil_object_peek(&info, b.data, b.len, &err) != VEIL_OK)
        secret = 0; /* not a whole Veil object: holds no key the server could load */
    else if (veil_set_open(&c, b.data, b.len, &err) != VEIL_OK) secret = 2;
    else {
        secret = c.secret;
        for (size_t i = 0; i < c.count; i++) secret |= c.items[i].type == VEIL_OBJECT_SECRET_KEY;
    }
    veil_set_contents_clear(&c);
    veil_buffer_free(&b);
    return secret;
}

int cli_eval_keys_path(const char *given, char *path, size_t cap)
{
    static const char advice[] = "give the server only the evaluation keys (KEYDIR/eval), never the secret key";
    if (!cli_is_dir(given)) {
        snprintf(path, cap, "%s", given);
        if (holds_secret(path, 1)) return cli_error(EXIT_INPUT, "%s holds a secret key: %s", given, advice);
        return EXIT_OK;
    }
    snprintf(path, cap, "%s/eval.keys", given);
    DIR *d = opendir(given);
    if (!d) return cli_error(EXIT_INPUT, "cannot open %s: %s", given, strerror(errno));
    int rc = EXIT_OK;
    char file[4096];
    for (struct dirent *e; rc == EXIT_OK && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(file, sizeof file, "%s/%s", given, e->d_name);
        if (cli_is_dir(file)) continue;
        const int secret = holds_secret(file, !strcmp(e->d_name, "eval.keys"));
        if (secret == 1) rc = cli_error(EXIT_INPUT, "%s holds a secret key (%s): %s", given, e->d_name, advice);
        if (secret == 2)
            rc = cli_error(EXIT_INPUT, "%s holds %s, a damaged Veil set that may hide a secret key: remove it", given,
                           e->d_name);
    }
    closedir(d);
    return rc;
}

int cli_load_eval_keys(const char *path, veil_eval_keys **ek)
{
    veil_buffer b = {0};
    int rc = cli_read_file(path, &b);
    if (rc) return rc;
    veil_error err = {0};
    veil_status st = veil_eval_keys_load(ek, b.data, b.len, &err);
    veil_buffer_free(&b); /* the keys are parsed: their file's bytes are not held through the work */
    return cli_status(st, &err, path);
}

int cli_load_ciphertexts(const char *path, const veil_keyset *ks, const veil_eval_keys *ek, veil_ciphertexts **cts)
{
    veil_buffer b = {0};
    int rc = cli_read_file(path, &b);
    if (rc) return rc;
    veil_error err = {0};
    veil_status st = veil_ciphertexts_load(cts, ks, ek, b.data, b.len, &err);
    veil_buffer_free(&b);
    return cli_status(st, &err, path);
}

/*
 * The folders of a key set, KEYDIR/ (0700) and KEYDIR/eval/, made where missing; made[0] and made[1] say which
 * this call created, for cli_remove_key_dirs after a failure.
 */
int cli_make_key_dirs(const char *dir, const char *eval_dir, int made[2])
{
    made[0] = made[1] = 0;
    if (mkdir(dir, 0700) == 0) made[0] = 1;
    else if (errno != EEXIST) return cli_error(EXIT_RUNTIME, "cannot create %s: %s", dir, strerror(errno));
    if (mkdir(eval_dir, 0755) == 0) made[1] = 1;
    else if (errno != EEXIST) {
        const int rc = cli_error(EXIT_RUNTIME, "cannot create %s: %s", eval_dir, strerror(errno));
        cli_remove_key_dirs(dir, eval_dir, made);
        return rc;
    }
    return EXIT_OK;
}

/* Removes the folders cli_make_key_dirs created, if still empty: never anything that was there before. */
void cli_remove_key_dirs(const char *dir, const char *eval_dir, const int made[2])
{
    if (made[1]) rmdir(eval_dir);
    if (made[0]) rmdir(dir);
}

int cli_keygen_to_files(const char *sk_path, const char *eval_path, const veil_plan *plan, veil_progress_fn report,
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

/* ---- models and plans -------------------------------------------------------------------------------- */

/* LO:HI, two numbers with LO < HI, into the model options. */
static int read_range(const char *text, veil_model_options *mo)
{
    char *end;
    mo->range_lo = strtod(text, &end);
    if (*end != ':' || (mo->range_hi = strtod(end + 1, &end), *end) || !(mo->range_hi > mo->range_lo))
        return cli_error(EXIT_USAGE, "--range is LO:HI with LO < HI, not '%s'", text);
    mo->have_range = 1;
    return EXIT_OK;
}

/* Loads --model with the model options; *why: why the model was refused (VEIL_OK: not the model's fault). */
static int load_model_why(veil_model **m, const cli_options *o, double **calib, veil_status *why)
{
    *why = VEIL_OK;
    *calib = NULL;
    veil_model_options mo = {.degree = o->degree, .server_sigmoid = o->server_sigmoid,
                             .integer = o->scheme == CLI_SCHEME_BGV, .force_approximation = o->force_approximation};
    veil_error err = {0};
    veil_buffer buf = {0};
    int rc = EXIT_OK;
    if (o->range) CLI_CHECK(read_range(o->range, &mo));
    if (o->calibrate) {
        size_t rows, width;
        CLI_CHECK(cli_status(veil_csv_read(o->calibrate, 0, calib, &rows, &width, &err), &err, NULL));
        mo.calibration = *calib;
        mo.calibration_rows = rows;
        mo.calibration_width = width;
    }
    /* read here, so that the parser's messages, which cannot name the file, are prefixed with it */
    CLI_CHECK(cli_status(veil_file_read(&buf, o->model, MAX_MODEL_BYTES, &err), &err, NULL));
    veil_status st = veil_model_load_onnx(m, buf.data, buf.len, &mo, &err);
    if (st == VEIL_OK && o->calibrate && mo.calibration_rows && veil_model_input_width(*m) * mo.calibration_rows == 0)
        st = VEIL_ERR_ARGUMENT;
    *why = st;
    CLI_CHECK(cli_status(st, &err, o->model));
done:
    veil_buffer_free(&buf);
    return rc;
}

int cli_load_model(veil_model **m, const cli_options *o, double **calib)
{
    veil_status why;
    return load_model_why(m, o, calib, &why);
}

/* (CKKS keys are checked against the model's hash by veil_evaluator_new, and their width by encrypt.) */
int cli_load_model_for_keys(veil_model **m, cli_options *o, veil_ml_scheme keys_scheme, const char *keys,
                            double **calib)
{
    if (keys_scheme == VEIL_ML_BGV) o->scheme = CLI_SCHEME_BGV;
    veil_status why;
    const int rc = load_model_why(m, o, calib, &why);
    if (rc && why == VEIL_ERR_UNSUPPORTED && keys_scheme == VEIL_ML_BGV && !o->server_sigmoid)
        return cli_error(EXIT_MISMATCH, "%s: keys for exact inference, made for a model with integer layers: %s is "
                         "another model", keys, o->model);
    return rc;
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

/* --input-range into the plan request: two integers for exact inference, two numbers otherwise. */
static int input_range(const cli_options *o, veil_plan_request *req)
{
    if (o->scheme == CLI_SCHEME_BGV) {
        if (!o->input_range)
            return cli_error(EXIT_USAGE, "--scheme bgv needs --input-range LO:HI, the integer range of the quantized "
                             "inputs (it bounds every output, which fixes the plaintext moduli)");
        if (!parse_int_range(o->input_range, &req->input_lo, &req->input_hi))
            return cli_error(EXIT_USAGE, "--input-range is LO:HI, two integers with LO <= HI, not '%s'", o->input_range);
    } else if (o->input_range) {
        char *end;
        req->range_lo = strtod(o->input_range, &end);
        if (*end != ':' || (req->range_hi = strtod(end + 1, &end), *end) || !(req->range_hi >= req->range_lo) ||
            !isfinite(req->range_lo) || !isfinite(req->range_hi))
            return cli_error(EXIT_USAGE, "--input-range is LO:HI, two numbers with LO <= HI, not '%s'", o->input_range);
        req->have_range = 1;
    }
    return EXIT_OK;
}

int cli_make_plan(const cli_options *o, const veil_model *m, veil_plan **plan)
{
    return cli_try_plan(o, m, plan, NULL);
}

int cli_try_plan(const cli_options *o, const veil_model *m, veil_plan **plan, veil_error *detail)
{
    veil_plan_request req = {.packing = o->latency ? VEIL_PACKING_LATENCY : VEIL_PACKING_THROUGHPUT,
                             .batch = o->batch, .security = (veil_security)o->security, .flood = o->flood,
                             .bootstrap = o->bootstrap, .min_scale_bits = o->smudging_scale};
    if (o->flood && o->scheme == CLI_SCHEME_BGV)
        return cli_error(EXIT_USAGE, "--flood: exact (--scheme bgv) outputs decrypt without error and need no flooding");
    if (o->scheme == CLI_SCHEME_BGV) req.scheme = VEIL_ML_BGV;
    const int rc = input_range(o, &req);
    if (rc) return rc;
    veil_error err = {0};
    if (detail) /* the caller reports the failure (or tries another plan) */
        return veil_model_plan(plan, m, &req, detail) == VEIL_OK ? EXIT_OK : EXIT_INPUT;
    return cli_status(veil_model_plan(plan, m, &req, &err), &err, NULL);
}

int cli_make_train_plan(const cli_options *o, veil_plan **plan)
{
    veil_train_request req = {.features = o->features, .iterations = o->iterations, .degree = (unsigned)o->degree,
                              .range = (unsigned)o->sigmoid_range, .security = (veil_security)o->security,
                              .flood = o->flood, .min_scale_bits = o->smudging_scale};
    if (!strcmp(o->train, "logistic")) req.task = VEIL_TRAIN_LOGISTIC;
    else if (!strcmp(o->train, "linear")) req.task = VEIL_TRAIN_LINEAR;
    else return cli_error(EXIT_USAGE, "--train is logistic or linear, not '%s'", o->train);
    if (!cli_need(o->features ? "" : NULL, "--features") || !cli_need(o->iterations ? "" : NULL, "--iterations"))
        return EXIT_USAGE;
    veil_error err = {0};
    return cli_status(veil_train_plan(plan, &req, &err), &err, NULL);
}
