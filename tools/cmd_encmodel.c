/*
 * veil encrypt-model: the model owner's step of a data marketplace (docs/marketplace.md): the weights of a model
 * encrypted under the data owner's public key (the evaluation keys the data owner made for the model's plan),
 * for a cloud that evaluates them on the data owner's ciphertexts. And the cloud's reading of such a file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "veil_cli.h"

/* Whether a file holds a Veil object (an encrypted model) rather than an ONNX protobuf. */
static int is_veil_object(const veil_buffer *b)
{
    veil_object_info info;
    return veil_object_peek(&info, b->data, b->len, NULL) == VEIL_OK;
}

int cli_load_eval_model(veil_model **m, cli_options *o, const veil_eval_keys *ek, const char *keys_path,
                        double **calib)
{
    veil_buffer b = {0};
    int rc = cli_read_file(o->model, &b);
    if (rc) return rc;
    if (!is_veil_object(&b)) {
        veil_buffer_free(&b);
        return cli_load_model_for_keys(m, o, veil_eval_keys_scheme(ek), keys_path, calib);
    }
    if (o->calibrate || o->range || o->degree || o->force_approximation || o->server_sigmoid) {
        veil_buffer_free(&b);
        return cli_error(EXIT_USAGE, "%s is an encrypted model: its approximations were fixed by its owner (drop "
                         "--calibrate, --range, --degree, --force-approximation and --server-sigmoid)", o->model);
    }
    veil_error err = {0};
    veil_status st = veil_model_load_encrypted(m, ek, b.data, b.len, &err);
    veil_buffer_free(&b);
    return cli_status(st, &err, o->model);
}

/*
 * --server URL --served NAME: the data owner's evaluation keys (the bundle at eval_path) uploaded, which the
 * vendor then holds too, and the encrypted model sent for them (POST /v1/models/NAME/weights?keys=ID,
 * docs/net.md).
 */
static int upload_weights(const cli_options *o, const char *eval_path, const veil_buffer *ctm)
{
    veil_error err = {0};
    veil_client *client = NULL;
    veil_buffer bundle = {0}, answer = {0};
    char id[65], path[512];
    int rc = EXIT_OK;
    for (const char *c = o->served; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
              *c == '-' || *c == '.') || c - o->served > 120)
            return cli_error(EXIT_USAGE, "--served %s: a served model's name (letters, digits, '_', '-', '.')", o->served);
    CLI_CHECK(cli_read_file(eval_path, &bundle));
    CLI_CHECK(cli_status(veil_client_new(&client, o->server, &err), &err, "server"));
    if (o->cacert) CLI_CHECK(cli_status(veil_client_set_ca_file(client, o->cacert, &err), &err, "--cacert"));
    CLI_CHECK(cli_client_token(client, o->token_file));
    CLI_CHECK(cli_status(veil_client_upload_keys(client, bundle.data, bundle.len, id, &err), &err, "the keys' upload"));
    snprintf(path, sizeof path, "/v1/models/%s/weights?keys=%s", o->served, id);
    CLI_CHECK(cli_status(veil_client_send(client, "POST", path, ctm->data, ctm->len, &answer, &err), &err,
                         "the weights' upload"));
    if (!o->quiet) fprintf(stderr, "veil: sent the encrypted model to %s (model %s, keys %s)\n", o->server, o->served, id);
done:
    veil_buffer_free(&answer);
    veil_buffer_free(&bundle);
    veil_client_free(client);
    return rc;
}

int cli_cmd_encrypt_model(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_ENCRYPT_MODEL) || !cli_need(o.model, "--model") || !cli_need(o.keys, "--keys"))
        return EXIT_USAGE;
    if (!o.out && !o.server) return cli_error(EXIT_USAGE, "encrypt-model needs --out M.ctm, or --server URL --served NAME");
    if (!o.server != !o.served) return cli_error(EXIT_USAGE, "--server URL and --served NAME go together");
    char path[4096];
    if (cli_eval_keys_path(o.keys, path, sizeof path)) return EXIT_INPUT;
    veil_model *m = NULL;
    double *calib = NULL;
    veil_eval_keys *ek = NULL;
    veil_buffer out = {0};
    veil_error err = {0};
    int rc = EXIT_OK;
    CLI_CHECK(cli_load_eval_keys(path, &ek));
    CLI_CHECK(cli_load_model_for_keys(&m, &o, veil_eval_keys_scheme(ek), path, &calib));
    CLI_CHECK(cli_status(veil_model_encrypt(&out, m, ek, NULL, &err), &err, NULL));
    const size_t bytes = out.len;
    if (o.server) CLI_CHECK(upload_weights(&o, path, &out));
    if (!o.out) goto done;
    CLI_CHECK(cli_save_buffer(o.out, &out));
    if (!o.quiet) {
        char size[32];
        fprintf(stderr, "veil: wrote %s (%s: the weights as ciphertexts under the keys' public key; the layers' kinds "
                "and widths public)\n", o.out, cli_size_text(size, sizeof size, (double)bytes));
    }
done:
    veil_buffer_free(&out);
    veil_eval_keys_free(ek);
    veil_model_free(m);
    free(calib);
    return rc;
}
