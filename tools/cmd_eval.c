/* veil eval: the server's side, run locally: the model on ciphertexts, with the evaluation keys only. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "veil_cli.h"

/*
 * --dp-epsilon E --dp-delta D: discrete Gaussian noise on the encrypted outputs (docs/privacy.md), of the
 * sensitivity --dp-sensitivity or, without it, that of the plan the model options give (2 B sqrt(outputs)).
 */
static int add_output_noise(const cli_options *o, const veil_model *m, const veil_eval_keys *ek, veil_ciphertexts *out)
{
    veil_error err = {0};
    veil_plan *plan = NULL;
    double sens = o->dp_sensitivity;
    int rc = EXIT_OK;
    if (!sens) {
        CLI_CHECK(cli_make_plan(o, m, &plan));
        CLI_CHECK(cli_status(veil_plan_dp_sensitivity(plan, &sens, &err), &err, NULL));
    }
    if (o->dp_parties) { /* federated: this party's share, sigma^2 / n; the sum of the n updates is the release */
        CLI_CHECK(cli_status(veil_ciphertexts_add_dp_share(out, o->dp_epsilon, o->dp_delta, sens,
                                                           (uint32_t)o->dp_parties, NULL, &err), &err, NULL));
    } else {
        CLI_CHECK(cli_status(veil_ciphertexts_add_dp_noise(out, ek, o->dp_epsilon, o->dp_delta, sens, NULL, &err),
                             &err, NULL));
    }
    veil_dp_release r;
    if (!o->quiet && veil_ciphertexts_dp_release(out, &r) && r.parties)
        fprintf(stderr, "veil: a share of distributed noise (1 of %u): epsilon %g at delta %g, sensitivity %g, share "
                "sigma %g; the sum of the %u shares: sigma %g (zCDP rho %g)\n", r.parties, r.epsilon, r.delta,
                r.sensitivity, r.sigma, r.parties, r.sigma * sqrt((double)r.parties), r.rho);
    else if (!o->quiet && veil_ciphertexts_dp_release(out, &r))
        fprintf(stderr, "veil: output noise: epsilon %g at delta %g, sensitivity %g, sigma %g (zCDP rho %g)\n",
                r.epsilon, r.delta, r.sensitivity, r.sigma, r.rho);
done:
    veil_plan_free(plan);
    return rc;
}

/*
 * Started by mpirun (Open MPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE of MPICH's Hydra) as one of several ranks
 * without --mpi: every rank would evaluate the whole set, R times the work for one file. Says so, once.
 */
static void warn_ranks_without_mpi(void)
{
    const char *size = getenv("OMPI_COMM_WORLD_SIZE"), *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (!size) {
        size = getenv("PMI_SIZE");
        rank = getenv("PMI_RANK");
    }
    if (size && atoi(size) > 1 && (!rank || atoi(rank) == 0))
        fprintf(stderr, "veil: eval: started as one of %d MPI ranks without --mpi: every rank evaluates the whole set "
                "(give --mpi to spread its batches over the ranks, docs/scale.md)\n", atoi(size));
}

int cli_cmd_eval(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_EVAL) || !cli_need(o.model, "--model") || !cli_need(o.eval_keys, "--eval-keys") ||
        !cli_need(o.in, "--in") || !cli_need(o.out, "--out"))
        return EXIT_USAGE;
    if (!!o.dp_epsilon != !!o.dp_delta) return cli_error(EXIT_USAGE, "--dp-epsilon and --dp-delta go together");
    if (o.dp_sensitivity && !o.dp_epsilon) return cli_error(EXIT_USAGE, "--dp-sensitivity goes with --dp-epsilon");
    if (o.dp_parties && !o.dp_epsilon) return cli_error(EXIT_USAGE, "--dp-parties goes with --dp-epsilon");
    char path[4096];
    if (cli_eval_keys_path(o.eval_keys, path, sizeof path)) return EXIT_INPUT;
    if (o.mpi) {
#ifdef VEIL_HAVE_MPI
        if (o.dp_epsilon) return cli_error(EXIT_USAGE, "--mpi does not go with --dp-epsilon");
        return cli_mpi_eval(&o, path);
#else
        return cli_error(EXIT_USAGE, "--mpi: this veil was built without MPI (see docs/scale.md)");
#endif
    }
    warn_ranks_without_mpi();
    veil_model *m = NULL;
    double *calib = NULL;
    veil_eval_keys *ek = NULL;
    veil_ciphertexts *in = NULL, *out = NULL;
    veil_evaluator *ev = NULL;
    veil_error err = {0};
    int rc = EXIT_OK;
    cli_use_threads(o.threads);
    CLI_CHECK(cli_load_eval_keys(path, &ek));
    CLI_CHECK(cli_load_eval_model(&m, &o, ek, path, &calib)); /* an ONNX file, or an encrypted model */
    CLI_CHECK(cli_status(veil_evaluator_new(&ev, m, ek, o.threads ? o.threads : 1, &err), &err, NULL));
    CLI_CHECK(cli_load_ciphertexts(o.in, NULL, ek, &in));
    cli_bar bar;
    cli_bar_init(&bar, "evaluating", o.quiet);
    CLI_CHECK(cli_status(veil_evaluator_run(ev, &out, in, cli_progress, &bar, &err), &err, NULL));
    if (o.dp_epsilon) CLI_CHECK(add_output_noise(&o, m, ek, out));
    CLI_CHECK(cli_save_ciphertexts(o.out, out));
done:
    veil_evaluator_free(ev);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(out);
    veil_eval_keys_free(ek);
    veil_model_free(m);
    free(calib);
    return rc;
}
