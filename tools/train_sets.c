/* veil train's encrypted training on loaded sets, alone or as one rank of `veil train --mpi` (tools/mpi.c). */
#include <stdio.h>
#include <stdlib.h>
#include "veil_cli.h"

/*
 * The training of `veil train` on the sets ins[0 .. n_in - 1] with the evaluation keys' file path. split: this
 * process's part of a training split over MPI ranks (tools/mpi.c), NULL alone; only part 0 writes --out and
 * reports. bytes: the sets' serialized bytes (a split: each rank loads only its share of them,
 * veil_train_run_serialized), NULL: the files ins[] loaded whole. may_write: with a split, called by every rank
 * after the training (collective); non-zero when the result must not be written (an input changed).
 */
int cli_train_sets(cli_options *o, const char *path, char **ins, size_t n_in, const veil_train_split *split,
                   const veil_buffer *bytes, int (*may_write)(void *), void *arg)
{
    const int writer = !split || split->part == 0;
    veil_eval_keys *ek = NULL;
    veil_ciphertexts *sets[VEIL_TRAIN_MAX_SETS] = {NULL}, *out = NULL;
    size_t rows = 0;
    veil_error err = {0};
    veil_train_info ti;
    int rc = EXIT_OK;
    cli_use_threads(o->threads);
    CLI_CHECK(cli_load_eval_keys(path, &ek));
    CLI_CHECK(cli_status(veil_eval_keys_get_train_info(ek, &ti, &err), &err, path));
    if (o->iterations > ti.max_iterations) /* before reading the data */
        CLI_FAIL(EXIT_INPUT, "train: %zu iterations asked, but these keys allow at most %zu: make keys with "
                 "--iterations %zu", o->iterations, ti.max_iterations, o->iterations);
    for (size_t h = 0; !bytes && h < n_in; h++) { /* several data owners' sets, under the same (joint) keys */
        CLI_CHECK(cli_load_ciphertexts(ins[h], NULL, ek, &sets[h]));
        rows += veil_ciphertexts_rows(sets[h]);
    }
    const double t0 = cli_seconds();
    veil_train_options opts = {.iterations = o->iterations, .learning_rate = o->learning_rate, .l2 = o->l2,
                               .threads = o->threads, .dp_epsilon = o->dp_epsilon, .dp_delta = o->dp_delta,
                               .dp_prediction_bound = o->dp_prediction_bound, .split = split};
    cli_bar bar;
    cli_bar_init(&bar, "training", o->quiet || !writer);
    if (bytes)
        CLI_CHECK(cli_status(veil_train_run_serialized(&out, ek, bytes, n_in, &opts, cli_progress, &bar, &err), &err,
                             "--in"));
    else
        CLI_CHECK(cli_status(veil_train_run_sets(&out, ek, (const veil_ciphertexts *const *)sets, n_in, &opts,
                                                 cli_progress, &bar, &err), &err, NULL));
    if (may_write && may_write(arg)) /* the rank that saw the change named the file */
        CLI_FAIL(EXIT_INPUT, "train: rank %zu: an input file changed while the ranks read it: nothing written",
                 split ? split->part : 0);
    if (bytes) rows = veil_ciphertexts_rows(out);
    if (!writer) goto done;
    CLI_CHECK(cli_save_ciphertexts(o->out, out));
    if (!o->quiet)
        fprintf(stderr, "veil: trained on %zu encrypted records (%zu data set%s) in %.1f s; wrote %s\n", rows, n_in,
                n_in == 1 ? "" : "s", cli_seconds() - t0, o->out);
    veil_dp_release r;
    if (!o->quiet && veil_ciphertexts_dp_release(out, &r))
        fprintf(stderr, "veil: DP-GD: epsilon %g at delta %g over the training (gradient sensitivity %g, zCDP rho %g)\n",
                r.epsilon, r.delta, r.sensitivity, r.rho);
done:
    for (size_t h = 0; h < n_in; h++) veil_ciphertexts_free(sets[h]);
    veil_ciphertexts_free(out);
    veil_eval_keys_free(ek);
    return rc;
}
