/* veil keygen: a key set for a model (CKKS or exact BGV), for encrypted training, or for a server's plan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "veil_cli.h"

/* KEYDIR's three paths. */
typedef struct key_paths {
    char sk[4096], eval_dir[4096], eval[4096];
} key_paths;

static void key_paths_of(key_paths *p, const char *dir)
{
    snprintf(p->sk, sizeof p->sk, "%s/secret.key", dir);
    snprintf(p->eval_dir, sizeof p->eval_dir, "%s/eval", dir);
    snprintf(p->eval, sizeof p->eval, "%s/eval/eval.keys", dir);
}

/* What is about to be made (unless --quiet): the parameters, the keys' size, and the model's lowering. */
static void announce(const veil_plan *plan, const veil_model *m)
{
    veil_plan_info in;
    veil_plan_get_info(plan, &in);
    char kb[32];
    cli_size_text(kb, sizeof kb, in.eval_key_bytes);
    if (in.scheme == VEIL_ML_BGV)
        fprintf(stderr, "veil: generating BGV keys (N = %zu, %zu plaintext modul%s, %s of evaluation keys)\n", in.n,
                in.crt_count, in.crt_count == 1 ? "us" : "i", kb);
    else
        fprintf(stderr, "veil: generating keys (N = %zu, %zu rotation keys, %s of evaluation keys)\n", in.n,
                in.rotations, kb);
    veil_train_info ti;
    veil_error err = {0};
    if (!m && veil_plan_get_train_info(plan, &ti, &err) == VEIL_OK && ti.bootstrap_level)
        fprintf(stderr, "veil: with bootstrapping's keys (%zu Galois keys and the encapsulation key): any number of "
                        "iterations\n", ti.bootstrap_galois_keys);
    if (m) fputs(veil_model_report(m), stderr); /* the lowering, and each approximation's error */
}

/* keygen --plan FILE: keys for a plan file (veil plan --out), for a data owner without the model (an encrypted
 * model's buyer, docs/marketplace.md). */
static int keygen_plan_file(const cli_options *o)
{
    key_paths p;
    key_paths_of(&p, o->out);
    if (cli_exists(p.sk) && !o->force)
        return cli_error(EXIT_INPUT, "%s already holds a key set; keys are never overwritten (use --force)", o->out);
    veil_buffer pb = {0};
    veil_plan *plan = NULL;
    veil_error err = {0};
    int made[2] = {0, 0}, dirs = 0;
    int rc = cli_read_file(o->plan_file, &pb);
    if (rc) return rc;
    CLI_CHECK(cli_status(veil_plan_load(&plan, pb.data, pb.len, &err), &err, o->plan_file));
    if (cli_make_key_dirs(o->out, p.eval_dir, made)) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    dirs = 1;
    if (!o->quiet) announce(plan, NULL);
    cli_bar bar;
    cli_bar_init(&bar, "keys", o->quiet);
    CLI_CHECK(cli_keygen_to_files(p.sk, p.eval, plan, cli_progress, &bar));
    if (!o->quiet) fprintf(stderr, "veil: wrote %s (secret: keep it) and %s (give it to the model owner and the "
                           "server)\n", p.sk, p.eval);
done:
    if (rc && dirs) cli_remove_key_dirs(o->out, p.eval_dir, made);
    veil_buffer_free(&pb);
    veil_plan_free(plan);
    return rc;
}

/* keygen --server URL --model NAME: keys for the plan a server publishes, for a client without the model file. */
static int keygen_remote(const cli_options *o)
{
    key_paths p;
    key_paths_of(&p, o->out);
    if (cli_exists(p.sk) && !o->force)
        return cli_error(EXIT_INPUT, "%s already holds a key set; keys are never overwritten (use --force)", o->out);
    int made[2];
    if (cli_make_key_dirs(o->out, p.eval_dir, made)) return EXIT_RUNTIME;
    veil_error err = {0};
    veil_client *client = NULL;
    veil_buffer pb = {0};
    veil_plan *plan = NULL;
    char path[512];
    int rc = EXIT_OK;
    snprintf(path, sizeof path, "/v1/models/%s/plan?packing=%s", o->model, o->latency ? "latency" : "throughput");
    CLI_CHECK(cli_status(veil_client_new(&client, o->server, &err), &err, "server"));
    if (o->cacert) CLI_CHECK(cli_status(veil_client_set_ca_file(client, o->cacert, &err), &err, "--cacert"));
    CLI_CHECK(cli_client_token(client, o->token_file));
    CLI_CHECK(cli_status(veil_client_get(client, path, &pb, &err), &err, "plan"));
    CLI_CHECK(cli_status(veil_plan_load(&plan, pb.data, pb.len, &err), &err, "the server's plan"));
    if (!o->quiet) fprintf(stderr, "veil: generating keys for %s's plan of model %s...\n", o->server, o->model);
    cli_bar bar;
    cli_bar_init(&bar, "keys", o->quiet);
    CLI_CHECK(cli_keygen_to_files(p.sk, p.eval, plan, cli_progress, &bar));
    if (!o->quiet) fprintf(stderr, "veil: wrote %s (secret: keep it) and %s\n", p.sk, p.eval);
done:
    if (rc) cli_remove_key_dirs(o->out, p.eval_dir, made);
    veil_buffer_free(&pb);
    veil_plan_free(plan);
    veil_client_free(client);
    return rc;
}

int cli_cmd_keygen(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_KEYGEN) || (!o.train && !o.plan_file && !cli_need(o.model, "--model")) ||
        !cli_need(o.out, "--out"))
        return EXIT_USAGE;
    if (o.plan_file && (o.model || o.server || o.train))
        return cli_error(EXIT_USAGE, "--plan makes keys for a plan file, without a model: drop --model/--server/--train");
    if (o.plan_file) return keygen_plan_file(&o);
    if (o.train && (o.model || o.server))
        return cli_error(EXIT_USAGE, "--train makes keys for training, without a model: drop --model/--server");
    if (o.server && o.scheme == CLI_SCHEME_BGV)
        return cli_error(EXIT_USAGE, "exact inference (--scheme bgv) makes its keys from the model, not a server's plan");
    if (o.token_file && !o.server) return cli_error(EXIT_USAGE, "--token-file is for keygen --server URL");
    if (o.flood && o.server) /* the server's plan fixes the parameters, without flooding's room */
        return cli_error(EXIT_USAGE, "--flood (keys whose results can be flooded) is for keys made from the model "
                                     "(--model M --flood) or for --train keys; a server's plan keeps no room for "
                                     "flooding (docs/ml.md)");
    if (o.server) return keygen_remote(&o);
    key_paths p;
    key_paths_of(&p, o.out);
    if (cli_exists(p.sk) && !o.force)
        return cli_error(EXIT_INPUT, "%s already holds a key set; keys are never overwritten (use --force to replace "
                         "them: ciphertexts made under the old keys become undecryptable)", o.out);
    int made[2];
    if (cli_make_key_dirs(o.out, p.eval_dir, made)) return EXIT_RUNTIME;
    veil_model *m = NULL;
    double *calib = NULL;
    veil_plan *plan = NULL;
    int rc = EXIT_OK;
    if (o.train) {
        CLI_CHECK(cli_make_train_plan(&o, &plan));
    } else {
        CLI_CHECK(cli_load_model(&m, &o, &calib));
        CLI_CHECK(cli_make_plan(&o, m, &plan));
    }
    if (!o.quiet) announce(plan, m);
    cli_bar bar;
    cli_bar_init(&bar, "keys", o.quiet);
    CLI_CHECK(cli_keygen_to_files(p.sk, p.eval, plan, cli_progress, &bar));
    if (!o.quiet) fprintf(stderr, "veil: wrote %s (secret: keep it) and %s (give it to the server)\n", p.sk, p.eval);
done:
    if (rc) cli_remove_key_dirs(o.out, p.eval_dir, made);
    veil_plan_free(plan);
    veil_model_free(m);
    free(calib);
    return rc;
}
