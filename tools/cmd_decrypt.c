/*
 * veil decrypt: a model's outputs (values, classes or exact integers), or a trained model's weights. --flood
 * (the default with --onnx: a model is made to be handed on) adds noise flooding for results that anyone but
 * the key holder will see (SECURITY.md); --no-flood keeps plain decryption.
 */
#include <stdio.h>
#include <stdlib.h>
#include "veil_cli.h"

/* A trained model: the weights as CSV (--out: bias first) and/or a standard ONNX model (--onnx). */
static int decrypt_training(const cli_options *o, const veil_keyset *ks, const veil_ciphertexts *cts,
                            const veil_decrypt_options *dec)
{
    veil_error err = {0};
    veil_train_info ti;
    veil_buffer onnx = {0};
    double *w = NULL;
    int rc = EXIT_OK;
    CLI_CHECK(cli_status(veil_keyset_get_train_info(ks, &ti, &err), &err, NULL));
    if (!(w = calloc(ti.features + 1, sizeof *w))) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    if (veil_train_decrypt_ex(w, ks, cts, dec, &err) != VEIL_OK) {
        rc = cli_status(err.status, &err, NULL);
        if (err.status == VEIL_ERR_NOISE && dec->flood && !o->flood)
            fprintf(stderr, "veil: --onnx floods the weights by default (a model is made to be handed on): make the "
                            "keys with `veil keygen --train ... --flood` for weights to hand on, or give --no-flood "
                            "if they stay with the key holder\n");
        goto done;
    }
    if (o->onnx) CLI_CHECK(cli_status(veil_train_to_onnx(&onnx, ti.task, w, ti.features, &err), &err, NULL));
    CLI_CHECK(cli_write_trained(o->out, w, ti.features + 1, o->onnx, &onnx));
done:
    veil_buffer_free(&onnx);
    free(w);
    return rc;
}

/* decrypt --integers: exact inference's integers, before the output scale and the final operation. */
static int write_integers(const cli_options *o, const veil_keyset *ks, const veil_ciphertexts *cts)
{
    const size_t rows = veil_ciphertexts_rows(cts), w = veil_ciphertexts_width(cts);
    int64_t *v = calloc(rows * w + 1, sizeof *v);
    if (!v) return EXIT_RUNTIME;
    veil_error err = {0};
    int rc = EXIT_OK;
    CLI_CHECK(cli_status(veil_ciphertexts_decrypt_integers(v, ks, cts, &err), &err, NULL));
    CLI_CHECK(cli_write_int_csv(o->out, v, rows, w));
done:
    free(v);
    return rc;
}

/* The model's outputs, as values or (--argmax) classes. */
static int write_outputs(const cli_options *o, const veil_keyset *ks, const veil_ciphertexts *cts,
                         const veil_decrypt_options *dec)
{
    const size_t rows = veil_ciphertexts_rows(cts), w = veil_keyset_output_width(ks);
    int mode = CLI_CSV_VALUES;
    double *y = NULL;
    veil_error err = {0};
    int rc = EXIT_OK;
    CLI_CHECK(cli_csv_mode(o->argmax, veil_keyset_final_op(ks), w, &mode));
    if (!(y = calloc(rows * w + 1, sizeof *y))) {
        rc = EXIT_RUNTIME;
        goto done;
    }
    CLI_CHECK(cli_status(veil_ciphertexts_decrypt_ex(y, NULL, ks, cts, dec, &err), &err, NULL));
    CLI_CHECK(cli_write_csv(o->out, y, rows, w, mode));
done:
    free(y);
    return rc;
}

int cli_cmd_decrypt(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_DECRYPT) || !cli_need(o.keys, "--keys") || !cli_need(o.in, "--in") ||
        (!o.onnx && !cli_need(o.out, "--out")))
        return EXIT_USAGE;
    if (o.flood && o.no_flood) {
        fprintf(stderr, "veil: --flood and --no-flood exclude each other\n");
        return EXIT_USAGE;
    }
    const veil_decrypt_options dec = {.flood = o.flood || (o.onnx && !o.no_flood)};
    veil_keyset *ks = NULL;
    veil_ciphertexts *cts = NULL;
    int rc = EXIT_OK;
    CLI_CHECK(cli_load_keyset(o.keys, &ks));
    CLI_CHECK(cli_load_ciphertexts(o.in, ks, NULL, &cts));
    CLI_CHECK(cli_charge_release(o.keys, o.in, cts)); /* a noisy release: its budget, before any value */
    if (veil_keyset_packing(ks) == VEIL_PACKING_TRAINING) CLI_CHECK(decrypt_training(&o, ks, cts, &dec));
    else if (!o.out) CLI_FAIL(EXIT_USAGE, "--onnx is for trained models; give --out for a model's outputs");
    else if (o.integers) CLI_CHECK(write_integers(&o, ks, cts));
    else CLI_CHECK(write_outputs(&o, ks, cts, &dec));
done:
    veil_ciphertexts_free(cts);
    veil_keyset_free(ks);
    return rc;
}
