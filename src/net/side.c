/*
 * A served model's side file, DIR/NAME.json beside DIR/NAME.onnx: the options `veil keygen`, `plan` and `eval`
 * take on the command line (--calibrate, --range, --degree, --server-sigmoid, --force-approximation,
 * --input-range), for a model that cannot be served without them (a Sigmoid, Tanh or Relu inside the network
 * is approximated over a range that must be given). Parsed with jansson; every key and value is checked.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jansson.h>
#include "veil/serial.h"
#include "core/core_internal.h"
#include "net/net_internal.h"

#define MAX_DEGREE 1024

static const char *const known_keys[] = {"calibrate", "range", "degree", "input_range", "server_sigmoid",
                                         "force_approximation", "dp_epsilon", "dp_delta", "dp_sensitivity"};
#define N_KEYS (sizeof known_keys / sizeof *known_keys)

/* A refusal naming the side file. */
static veil_status side_fail(veil_error *err, veil_status st, const veil_side_options *o, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static veil_status side_fail(veil_error *err, veil_status st, const veil_side_options *o, const char *fmt, ...)
{
    char msg[VEIL_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return veil_fail(err, st, "%s: %s", o->path, msg);
}

static int is_known(const char *key)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(key, known_keys[i]) == 0) return 1;
    return 0;
}

/* "KEY": [LO, HI], two finite numbers with LO < HI. */
static veil_status read_range(const veil_side_options *o, const char *key, const json_t *v, double *lo, double *hi,
                              veil_error *err)
{
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_number(json_array_get(v, 0)) ||
        !json_is_number(json_array_get(v, 1)))
        return side_fail(err, VEIL_ERR_FORMAT, o, "\"%s\" is [LO, HI], two numbers", key);
    *lo = json_number_value(json_array_get(v, 0));
    *hi = json_number_value(json_array_get(v, 1));
    if (!(isfinite(*lo) && isfinite(*hi) && *lo < *hi))
        return side_fail(err, VEIL_ERR_ARGUMENT, o, "\"%s\" is [LO, HI] with LO < HI, not [%g, %g]", key, *lo, *hi);
    return VEIL_OK;
}

static veil_status read_flag(const veil_side_options *o, const char *key, const json_t *v, int *out, veil_error *err)
{
    if (!json_is_boolean(v)) return side_fail(err, VEIL_ERR_FORMAT, o, "\"%s\" is true or false", key);
    *out = json_is_true(v);
    return VEIL_OK;
}

static veil_status read_degree(const veil_side_options *o, const json_t *v, size_t *out, veil_error *err)
{
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_DEGREE)
        return side_fail(err, VEIL_ERR_FORMAT, o, "\"degree\" is an integer from 1 to %d", MAX_DEGREE);
    *out = (size_t)json_integer_value(v);
    return VEIL_OK;
}

/* A path inside the models folder: relative, with no ".." component. */
static int inside_folder(const char *rel)
{
    if (rel[0] == '\0' || rel[0] == '/') return 0;
    for (const char *p = rel; *p;) {
        const size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.') return 0;
        p += n;
        if (*p == '/') p++;
    }
    return 1;
}

/* "calibrate": a CSV in the models folder, read into o->calibration. */
static veil_status read_calibration(veil_side_options *o, const char *dir, const json_t *v, veil_error *err)
{
    if (!json_is_string(v)) return side_fail(err, VEIL_ERR_FORMAT, o, "\"calibrate\" is a file name (a string)");
    const char *rel = json_string_value(v);
    if (!inside_folder(rel))
        return side_fail(err, VEIL_ERR_ARGUMENT, o, "\"calibrate\": '%.64s' is not a path inside the models folder "
                         "(relative, without '..')", rel);
    char path[4096];
    struct stat sb;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, rel) >= sizeof path)
        return side_fail(err, VEIL_ERR_ARGUMENT, o, "\"calibrate\": the path is too long");
    if (stat(path, &sb) != 0)
        return side_fail(err, VEIL_ERR_ARGUMENT, o, "\"calibrate\": %s: %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return side_fail(err, VEIL_ERR_ARGUMENT, o, "\"calibrate\": %s: not a regular file", path);
    size_t rows = 0, width = 0;
    veil_error csv = {0};
    const veil_status read = veil_csv_read(path, 0, &o->calibration, &rows, &width, &csv);
    if (read != VEIL_OK) return side_fail(err, read, o, "\"calibrate\": %s", csv.detail);
    o->model.calibration = o->calibration;
    o->model.calibration_rows = rows;
    o->model.calibration_width = width;
    return VEIL_OK;
}

/* "dp_epsilon", "dp_delta", "dp_sensitivity": a finite number above 0 (the pair's range is checked after). */
static veil_status read_positive(const veil_side_options *o, const char *key, const json_t *v, double *out,
                                 veil_error *err)
{
    if (!json_is_number(v) || !(json_number_value(v) > 0) || !isfinite(json_number_value(v)))
        return side_fail(err, VEIL_ERR_FORMAT, o, "\"%s\" is a number above 0", key);
    *out = json_number_value(v);
    return VEIL_OK;
}

static veil_status read_key(veil_side_options *o, const char *dir, const char *key, const json_t *v, veil_error *err)
{
    if (!strcmp(key, "dp_epsilon")) return read_positive(o, key, v, &o->dp_epsilon, err);
    if (!strcmp(key, "dp_delta")) return read_positive(o, key, v, &o->dp_delta, err);
    if (!strcmp(key, "dp_sensitivity")) return read_positive(o, key, v, &o->dp_sensitivity, err);
    if (!strcmp(key, "calibrate")) return read_calibration(o, dir, v, err);
    if (!strcmp(key, "degree")) return read_degree(o, v, &o->model.degree, err);
    if (!strcmp(key, "server_sigmoid")) return read_flag(o, key, v, &o->model.server_sigmoid, err);
    if (!strcmp(key, "force_approximation")) return read_flag(o, key, v, &o->model.force_approximation, err);
    if (!strcmp(key, "range")) {
        o->model.have_range = 1;
        return read_range(o, key, v, &o->model.range_lo, &o->model.range_hi, err);
    }
    o->have_input_range = 1;
    return read_range(o, key, v, &o->input_lo, &o->input_hi, err);
}

/* The object's keys: unknown ones refused (before anything is read), then each read. */
static veil_status read_object(veil_side_options *o, const char *dir, json_t *root, veil_error *err)
{
    if (!json_is_object(root)) return side_fail(err, VEIL_ERR_FORMAT, o, "not a JSON object ({\"key\": value, ...})");
    veil_status st = VEIL_OK;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!is_known(key))
            return side_fail(err, VEIL_ERR_FORMAT, o, "unknown key \"%.40s\" (known: calibrate, range, degree, "
                             "input_range, server_sigmoid, force_approximation, dp_epsilon, dp_delta, "
                             "dp_sensitivity)", key);
    }
    json_object_foreach(root, key, v) VEIL_CHECK(read_key(o, dir, key, v, err));
    if (!o->dp_epsilon != !o->dp_delta)
        return side_fail(err, VEIL_ERR_ARGUMENT, o, "\"dp_epsilon\" and \"dp_delta\" go together");
    if (o->dp_sensitivity && !o->dp_epsilon)
        return side_fail(err, VEIL_ERR_ARGUMENT, o, "\"dp_sensitivity\" goes with \"dp_epsilon\"");
    if (o->dp_epsilon) {
        double rho;
        veil_error why = {0};
        if (veil_dp_rho_for(o->dp_epsilon, o->dp_delta, &rho, &why) != VEIL_OK)
            return side_fail(err, VEIL_ERR_ARGUMENT, o, "%s", why.detail);
    }
done:
    return st;
}

static veil_status parse(veil_side_options *o, const char *dir, const veil_buffer *b, veil_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb((const char *)b->data, b->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return side_fail(err, VEIL_ERR_FORMAT, o, "not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                         jerr.column);
    const veil_status st = read_object(o, dir, root, err);
    json_decref(root);
    return st;
}

veil_status veil_side_options_read(veil_side_options *out, const char *dir, const char *name, int *found,
                                   veil_error *err)
{
    VEIL_REQUIRE(out, err);
    memset(out, 0, sizeof *out);
    VEIL_REQUIRE(dir, err);
    VEIL_REQUIRE(name, err);
    VEIL_REQUIRE(found, err);
    *found = 0;
    if ((size_t)snprintf(out->path, sizeof out->path, "%s/%s.json", dir, name) >= sizeof out->path)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "the side file of model %s: the path is too long", name);
    struct stat sb;
    if (stat(out->path, &sb) != 0 && errno == ENOENT) return VEIL_OK;
    *found = 1;
    veil_status st = VEIL_OK;
    veil_buffer b = {0};
    VEIL_CHECK(veil_file_read(&b, out->path, VEIL_SIDE_FILE_MAX, err)); /* its messages name the file */
    VEIL_CHECK(parse(out, dir, &b, err));
done:
    veil_buffer_free(&b);
    if (st != VEIL_OK) veil_side_options_clear(out); /* nothing held after a refusal */
    return st;
}

void veil_side_options_clear(veil_side_options *o)
{
    if (!o) return;
    free(o->calibration);
    o->calibration = NULL;
    memset(&o->model, 0, sizeof o->model);
    o->have_input_range = 0;
}
