/* veil train: encrypted training on the server's side, and --plain: the same algorithm on plaintext. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "veil_cli.h"

/*
 * `veil train --plain --train logistic|linear --in TRAIN.csv --labels-column NAME --iterations K ...`: the same
 * algorithm in float64 on the plaintext, for comparison (writes the same --onnx / --out files as decrypt).
 */
static int train_plain(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_TRAIN_PLAIN) || !cli_need(o.train, "--train") || !cli_need(o.in, "--in") ||
        !cli_need(o.labels, "--labels-column") || !cli_need(o.iterations ? "" : NULL, "--iterations") ||
        (!o.onnx && !cli_need(o.out, "--out")))
        return EXIT_USAGE;
    veil_error err = {0};
    double *all = NULL, *x = NULL, *y = NULL, *w = NULL, tmax = 0;
    size_t rows = 0, width = 0, col = 0;
    veil_buffer onnx = {0};
    int rc = EXIT_OK;
    CLI_CHECK(cli_read_csv(o.in, 0, &all, &rows, &width));
    CLI_CHECK(width >= 2 ? cli_find_label_column(o.in, o.labels, width, &col) : EXIT_INPUT);
    if (!(x = malloc(rows * width * sizeof *x)) || !(y = malloc(rows * sizeof *y)) || !(w = calloc(width, sizeof *w))) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    cli_split_labels(all, rows, width, col, x, y);
    veil_train_request req = {.features = width - 1, .iterations = o.iterations, .degree = (unsigned)o.degree,
                              .range = (unsigned)o.sigmoid_range};
    if (!strcmp(o.train, "linear")) req.task = VEIL_TRAIN_LINEAR;
    else if (strcmp(o.train, "logistic")) CLI_FAIL(EXIT_USAGE, "--train is logistic or linear, not '%s'", o.train);
    veil_train_options opts = {.iterations = o.iterations, .learning_rate = o.learning_rate, .l2 = o.l2};
    CLI_CHECK(cli_status(veil_train_run_plain(w, &req, &opts, x, y, rows, &tmax, &err), &err, NULL));
    if (o.onnx) CLI_CHECK(cli_status(veil_train_to_onnx(&onnx, req.task, w, req.features, &err), &err, NULL));
    CLI_CHECK(cli_write_trained(o.out, w, width, o.onnx, &onnx));
    const unsigned range = o.sigmoid_range ? (unsigned)o.sigmoid_range : 8; /* the library's default */
    if (req.task == VEIL_TRAIN_LOGISTIC && tmax > range)
        fprintf(stderr, "veil: warning: |z.w| reached %.2f, outside the sigmoid's range [-%u, %u]: lower the "
                        "learning rate or raise --sigmoid-range\n", tmax, range, range);
    if (req.task == VEIL_TRAIN_LINEAR && !o.quiet) /* linear DP-GD's premise (docs/privacy.md) */
        fprintf(stderr, "veil: the largest |z.w| met: %.3f (the scaled prediction; linear DP-GD's sensitivity assumes "
                        "it within --dp-prediction-bound, 2 by default)\n", tmax);
done:
    veil_buffer_free(&onnx);
    free(all);
    free(x);
    free(y);
    free(w);
    return rc;
}

/*
 * `--in A.ct B.ct ...`: the values after --in (up to the next option) are the data sets, trained on as one
 * (veil_train_run_sets); the first stays in rest for the option parser.
 */
static int split_sets(int argc, char **argv, char **rest, int *n_rest, char **ins, size_t *n_in)
{
    *n_rest = 0;
    *n_in = 0;
    for (int i = 0; i < argc; i++) {
        rest[(*n_rest)++] = argv[i];
        if (strcmp(argv[i], "--in") != 0) continue;
        if (i + 1 < argc) rest[(*n_rest)++] = argv[i + 1];
        while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
            if (*n_in == VEIL_TRAIN_MAX_SETS) return cli_error(EXIT_USAGE, "--in: at most %d data sets", VEIL_TRAIN_MAX_SETS);
            ins[(*n_in)++] = argv[++i];
        }
    }
    return EXIT_OK;
}

int cli_cmd_train(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "--plain")) return train_plain(argc - 1, argv + 1);
    cli_options o;
    char **rest = calloc((size_t)argc + 1, sizeof *rest), *ins[VEIL_TRAIN_MAX_SETS];
    size_t n_in = 0;
    int n_rest = 0;
    if (!rest) return EXIT_RUNTIME;
    if (split_sets(argc, argv, rest, &n_rest, ins, &n_in) != EXIT_OK || !cli_parse(n_rest, rest, &o, CLI_TRAIN) ||
        !cli_need(o.eval_keys, "--eval-keys") || !cli_need(o.in, "--in") || !cli_need(o.out, "--out")) {
        free(rest);
        return EXIT_USAGE;
    }
    free(rest);
    char path[4096];
    if (cli_eval_keys_path(o.eval_keys, path, sizeof path)) return EXIT_INPUT;
    if (!!o.dp_epsilon != !!o.dp_delta) return cli_error(EXIT_USAGE, "--dp-epsilon and --dp-delta go together");
    if (o.dp_prediction_bound && !o.dp_epsilon)
        return cli_error(EXIT_USAGE, "--dp-prediction-bound goes with --dp-epsilon (linear regression's DP-GD)");
    if (o.mpi) {
#ifdef VEIL_HAVE_MPI
        if (o.dp_epsilon) return cli_error(EXIT_USAGE, "--mpi does not go with --dp-epsilon (each rank would draw its "
                                                       "own noise): train in one process");
        return cli_mpi_train(&o, path, ins, n_in);
#else
        return cli_error(EXIT_USAGE, "--mpi: this veil was built without MPI (see docs/scale.md)");
#endif
    }
    return cli_train_sets(&o, path, ins, n_in, NULL, NULL, NULL, NULL);
}
