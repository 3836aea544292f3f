/* veil encrypt: a model's inputs, or training data with its labels, under the data owner's keys. */
#include <stdio.h>
#include <stdlib.h>
#include "veil_cli.h"

/*
 * --feature-range (DP-GD): LO:HI for every feature, or a CSV file of two rows, each feature's LO then its HI;
 * the records are scaled by it and a record outside it is refused.
 */
static int encrypt_ranged(const cli_options *o, const veil_keyset *ks, const double *x, const double *y, size_t rows,
                          size_t features, veil_ciphertexts **cts)
{
    veil_error err = {0};
    double lo = 0, hi = 0, *file = NULL, *los = NULL, *his = NULL;
    size_t frows = 0, fwidth = 0;
    char tail = 0;
    int rc = EXIT_OK;
    if (!(los = calloc(features + 1, sizeof *los)) || !(his = calloc(features + 1, sizeof *his))) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    if (sscanf(o->feature_range, "%lf:%lf%c", &lo, &hi, &tail) == 2) {
        for (size_t j = 0; j < features; j++) los[j] = lo, his[j] = hi;
    } else {
        CLI_CHECK(cli_read_csv(o->feature_range, features, &file, &frows, &fwidth));
        if (frows != 2)
            CLI_FAIL(EXIT_INPUT, "--feature-range %s: two rows (each feature's LO, then its HI), not %zu",
                     o->feature_range, frows);
        for (size_t j = 0; j < features; j++) los[j] = file[j], his[j] = file[features + j];
    }
    if (o->label_range) { /* linear regression's DP-GD: the label's declared range too */
        double llo = 0, lhi = 0;
        if (sscanf(o->label_range, "%lf:%lf%c", &llo, &lhi, &tail) != 2)
            CLI_FAIL(EXIT_USAGE, "--label-range %s: LO:HI", o->label_range);
        CLI_CHECK(cli_status(veil_train_encrypt_ranged_labels(cts, ks, x, y, rows, los, his, llo, lhi, NULL, &err),
                             &err, NULL));
    } else {
        CLI_CHECK(cli_status(veil_train_encrypt_ranged(cts, ks, x, y, rows, los, his, NULL, &err), &err, NULL));
    }
done:
    free(file);
    free(los);
    free(his);
    return rc;
}

/* encrypt --labels-column NAME (or keys for training): the features and labels of TRAIN.csv. */
static int encrypt_training(const cli_options *o, const veil_keyset *ks)
{
    if (veil_keyset_packing(ks) != VEIL_PACKING_TRAINING)
        return cli_error(EXIT_MISMATCH, "--labels-column is for training data; %s holds keys for a model", o->keys);
    if (!o->labels)
        return cli_error(EXIT_USAGE, "these keys are for training: name the labels with --labels-column NAME");
    veil_error err = {0};
    veil_train_info ti;
    double *all = NULL, *x = NULL, *y = NULL;
    size_t rows = 0, width = 0, col = 0;
    veil_ciphertexts *cts = NULL;
    int rc = EXIT_OK;
    CLI_CHECK(cli_status(veil_keyset_get_train_info(ks, &ti, &err), &err, NULL));
    CLI_CHECK(cli_read_csv(o->in, 0, &all, &rows, &width));
    CLI_CHECK(cli_find_label_column(o->in, o->labels, width, &col));
    if (width - 1 != ti.features)
        CLI_FAIL(EXIT_MISMATCH, "the keys were made for %zu features; %s has %zu columns besides the labels",
                 ti.features, o->in, width - 1);
    if (!(x = malloc(rows * (width - 1) * sizeof *x + 1)) || !(y = malloc(rows * sizeof *y + 1))) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    cli_split_labels(all, rows, width, col, x, y);
    if (o->label_range && !o->feature_range) CLI_FAIL(EXIT_USAGE, "--label-range goes with --feature-range");
    if (o->feature_range) CLI_CHECK(encrypt_ranged(o, ks, x, y, rows, width - 1, &cts));
    else CLI_CHECK(cli_status(veil_train_encrypt(&cts, ks, x, y, rows, NULL, &err), &err, NULL));
    CLI_CHECK(cli_save_ciphertexts(o->out, cts));
    if (!o->quiet)
        fprintf(stderr, "veil: encrypted %zu records of %zu features and their labels ('%s') into %s\n", rows,
                width - 1, o->labels, o->out);
done:
    veil_ciphertexts_free(cts);
    free(all);
    free(x);
    free(y);
    return rc;
}

/*
 * With --model: the model first (keys of another model are a mismatch, whatever the data), then a warning
 * refusal for inputs that drive an approximated activation outside the range its polynomial was fitted on.
 * The keys themselves enforce the inputs' range their plan bounded the circuit from (veil_ciphertexts_encrypt).
 */
static int check_with_model(cli_options *o, const veil_keyset *ks, veil_model **m, double **calib)
{
    int rc = cli_load_model_for_keys(m, o, veil_keyset_scheme(ks), o->keys, calib);
    if (rc) return rc;
    if (veil_model_input_width(*m) != veil_keyset_input_width(ks))
        return cli_error(EXIT_MISMATCH, "%s reads %zu values per row, the keys' model %zu: keys of another model",
                         o->model, veil_model_input_width(*m), veil_keyset_input_width(ks));
    return EXIT_OK;
}

static int range_check(const veil_model *m, const double *x, size_t rows)
{
    double excess = 0;
    veil_error err = {0};
    if (veil_model_range_excess(m, x, rows, &excess, &err) == VEIL_OK && excess > 0)
        return cli_error(EXIT_INPUT, "encrypt: some inputs drive an approximated activation up to %g outside the "
                         "range its polynomial was fitted on: the results would not be the model's", excess);
    return EXIT_OK;
}

int cli_cmd_encrypt(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_ENCRYPT) || !cli_need(o.keys, "--keys") || !cli_need(o.in, "--in") ||
        !cli_need(o.out, "--out"))
        return EXIT_USAGE;
    veil_keyset *ks = NULL;
    double *x = NULL, *calib = NULL;
    size_t rows = 0;
    veil_ciphertexts *cts = NULL;
    veil_model *m = NULL;
    veil_error err = {0};
    int rc = EXIT_OK;
    CLI_CHECK(cli_load_keyset(o.keys, &ks));
    if (veil_keyset_packing(ks) == VEIL_PACKING_TRAINING || o.labels) {
        rc = encrypt_training(&o, ks);
        goto done;
    }
    if (o.feature_range || o.label_range)
        CLI_FAIL(EXIT_USAGE, "--feature-range and --label-range are for training data (keys made with --train)");
    if (o.model) CLI_CHECK(check_with_model(&o, ks, &m, &calib));
    CLI_CHECK(cli_read_rows_for_keys(o.in, veil_keyset_input_width(ks), o.keys, &x, &rows));
    if (m) CLI_CHECK(range_check(m, x, rows));
    veil_model_free(m); /* neither is held through the encryption */
    m = NULL;
    free(calib);
    calib = NULL;
    CLI_CHECK(cli_status(veil_ciphertexts_encrypt(&cts, ks, x, rows, NULL, &err), &err, NULL));
    CLI_CHECK(cli_save_ciphertexts(o.out, cts));
done:
    veil_ciphertexts_free(cts);
    veil_model_free(m);
    veil_keyset_free(ks);
    free(calib);
    free(x);
    return rc;
}
