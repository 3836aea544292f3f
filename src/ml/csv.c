/* CSV input: numbers only, an optional header row, every cell checked (row and column named on error). */
#define _POSIX_C_SOURCE 200809L
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <math.h>
#include <ctype.h>
#include "ml/ml_internal.h"

#define CSV_MAX_LINE (1 << 20)
#define CSV_MAX_COLUMNS 65536

/* Splits a line in place at commas; trims blanks and quotes around cells. Returns the number of cells. */
static size_t split(char *line, char **cells, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *end = strchr(p, ',');
        if (end) *end = 0;
        while (isspace((unsigned char)*p)) p++;
        size_t len = strlen(p);
        while (len && isspace((unsigned char)p[len - 1])) p[--len] = 0;
        if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
            p[len - 1] = 0;
            p++;
        }
        if (n < max) cells[n] = p;
        n++;
        if (!end) break;
        p = end + 1;
    }
    return n;
}

static int parse_number(const char *s, double *v)
{
    if (!*s) return 0;
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return *end == 0 && errno != ERANGE;
}

veil_status veil_csv_read(const char *path, size_t width, double **values, size_t *rows, size_t *width_out,
                          veil_error *err)
{
    VEIL_REQUIRE(path, err);
    VEIL_REQUIRE(values, err);
    VEIL_REQUIRE(rows, err);
    *values = NULL;
    *rows = 0;
    FILE *f = fopen(path, "r");
    if (!f) return veil_fail(err, VEIL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    veil_status st = VEIL_OK;
    char *line = malloc(CSV_MAX_LINE + 2);
    char **cells = calloc(CSV_MAX_COLUMNS, sizeof *cells);
    double *data = NULL;
    size_t cap = 0, n = 0, lineno = 0;
    if (!line || !cells) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "csv");
    while (fgets(line, CSV_MAX_LINE + 2, f)) {
        lineno++;
        size_t len = strlen(line);
        if (len > CSV_MAX_LINE)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "%s: line %zu is longer than %d bytes", path, lineno, CSV_MAX_LINE);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0 || line[0] == '#') continue;
        size_t c = split(line, cells, CSV_MAX_COLUMNS);
        if (c > CSV_MAX_COLUMNS)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "%s: line %zu has more than %d columns", path, lineno, CSV_MAX_COLUMNS);
        if (n == 0 && !data) {
            /* a header: a first row with a cell that is not a number (and not a NaN or an infinity) */
            int header = 0;
            for (size_t i = 0; i < c; i++) {
                double v;
                const char *s = cells[i];
                if (!parse_number(s, &v) && strcasecmp(s, "nan") != 0 && strncasecmp(s, "inf", 3) != 0 &&
                    strncasecmp(s, "-inf", 4) != 0 && *s && !isdigit((unsigned char)*s) && *s != '-' && *s != '+' && *s != '.')
                    header = 1;
            }
            if (width == 0) width = c;
            if (header) {
                if (c != width)
                    VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "%s: the header has %zu columns, the model expects %zu", path,
                              c, width);
                continue;
            }
        }
        if (c != width)
            VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "%s: row %zu (line %zu) has %zu columns, expected %zu", path, n + 1,
                      lineno, c, width);
        if ((n + 1) * width > cap) {
            size_t ncap = cap ? 2 * cap : 1024 * width;
            double *d = realloc(data, ncap * sizeof *d);
            if (!d) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "csv of %zu rows", n);
            data = d;
            cap = ncap;
        }
        for (size_t i = 0; i < c; i++) {
            double v;
            if (!parse_number(cells[i], &v))
                VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "%s: row %zu, column %zu: '%.40s' is not a number", path, n + 1,
                          i + 1, cells[i]);
            if (!isfinite(v))
                VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "%s: row %zu, column %zu: %s is not a finite number", path, n + 1,
                          i + 1, cells[i]);
            data[n * width + i] = v;
        }
        n++;
    }
    if (ferror(f)) VEIL_FAIL(err, VEIL_ERR_IO, "%s: read error", path);
    if (n == 0) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "%s: no data rows", path);
    *values = data;
    data = NULL;
    *rows = n;
    if (width_out) *width_out = width;
done:
    fclose(f);
    free(line);
    free(cells);
    free(data);
    return st;
}
