/* veil plain: what the encrypted model returns, in plaintext (or --exact: the ONNX graph; --integers: BGV's). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "veil_cli.h"

/* The integer computation exact inference equals (the program before the output scale). */
static int run_integers(const cli_options *o, const veil_model *m, const double *x, size_t rows)
{
    const size_t iw = veil_model_input_width(m), ow = veil_model_raw_width(m);
    int64_t *xi = calloc(rows * iw + 1, sizeof *xi), *yi = calloc(rows * ow + 1, sizeof *yi);
    veil_error err = {0};
    int rc = EXIT_OK;
    if (!xi || !yi) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    for (size_t i = 0; i < rows * iw; i++) {
        if (x[i] != nearbyint(x[i]) || fabs(x[i]) > 9.0e15)
            CLI_FAIL(EXIT_INPUT, "plain --integers: row %zu, column %zu is %g, not an integer", i / iw + 1, i % iw + 1,
                     x[i]);
        xi[i] = (int64_t)x[i];
    }
    CLI_CHECK(cli_status(veil_model_run_integer(m, yi, xi, rows, &err), &err, NULL));
    CLI_CHECK(cli_write_int_csv(o->out, yi, rows, ow));
done:
    free(xi);
    free(yi);
    return rc;
}

/* What the encrypted model returns (its polynomials), or with --exact the ONNX graph itself. */
static int run_values(const cli_options *o, const veil_model *m, const double *x, size_t rows)
{
    const size_t w = veil_model_output_width(m);
    int mode = CLI_CSV_VALUES;
    double *y = NULL;
    veil_error err = {0};
    int rc = EXIT_OK;
    CLI_CHECK(cli_csv_mode(o->argmax, veil_model_final_op(m), w, &mode));
    if (!(y = calloc(rows * w + 1, sizeof *y))) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    CLI_CHECK(cli_status(o->exact ? veil_model_run_plain(m, y, x, rows, &err)
                                  : veil_model_run_program(m, y, x, rows, &err), &err, NULL));
    CLI_CHECK(cli_write_csv(o->out, y, rows, w, mode));
done:
    free(y);
    return rc;
}

int cli_cmd_plain(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_PLAIN) || !cli_need(o.model, "--model") || !cli_need(o.in, "--in") ||
        !cli_need(o.out, "--out"))
        return EXIT_USAGE;
    /* --exact runs the graph itself, whose Sigmoid/Tanh/Relu need no range and no polynomial; loading lowers
     * the model all the same, and would ask for the polynomials' range or refuse a poor fit: any range does,
     * the polynomials unused (and so their fit unchecked) */
    if (o.exact && !o.integers) {
        if (!o.calibrate && !o.range) o.range = "-1:1";
        o.force_approximation = 1;
    }
    veil_model *m = NULL;
    double *calib = NULL, *x = NULL;
    size_t rows = 0;
    int rc = EXIT_OK;
    CLI_CHECK(cli_load_model(&m, &o, &calib));
    CLI_CHECK(cli_read_csv(o.in, veil_model_input_width(m), &x, &rows, NULL));
    CLI_CHECK(o.integers ? run_integers(&o, m, x, rows) : run_values(&o, m, x, rows));
done:
    free(x);
    free(calib);
    veil_model_free(m);
    return rc;
}
