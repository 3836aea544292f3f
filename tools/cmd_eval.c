/* veil eval: the server's side, run locally: the model on ciphertexts, with the evaluation keys only. */
#include <stdlib.h>
#include "veil_cli.h"

int cli_cmd_eval(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_EVAL) || !cli_need(o.model, "--model") || !cli_need(o.eval_keys, "--eval-keys") ||
        !cli_need(o.in, "--in") || !cli_need(o.out, "--out"))
        return EXIT_USAGE;
    char path[4096];
    if (cli_eval_keys_path(o.eval_keys, path, sizeof path)) return EXIT_INPUT;
    veil_model *m = NULL;
    double *calib = NULL;
    veil_eval_keys *ek = NULL;
    veil_ciphertexts *in = NULL, *out = NULL;
    veil_evaluator *ev = NULL;
    veil_error err = {0};
    int rc = EXIT_OK;
    CLI_CHECK(cli_load_eval_keys(path, &ek));
    CLI_CHECK(cli_load_eval_model(&m, &o, ek, path, &calib)); /* an ONNX file, or an encrypted model */
    CLI_CHECK(cli_status(veil_evaluator_new(&ev, m, ek, o.threads ? o.threads : 1, &err), &err, NULL));
    CLI_CHECK(cli_load_ciphertexts(o.in, NULL, ek, &in));
    cli_bar bar;
    cli_bar_init(&bar, "evaluating", o.quiet);
    CLI_CHECK(cli_status(veil_evaluator_run(ev, &out, in, cli_progress, &bar, &err), &err, NULL));
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
