/*
 * The mission in four calls of the C API: keygen, encrypt (the data owner), evaluate (the server, with
 * the evaluation keys only), decrypt (the data owner); and the plaintext reference beside it.
 *
 *   usage: inference MODEL.onnx ROWS.csv
 */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <veil/veil.h>

static int fail(const char *what, const veil_error *err)
{
    fprintf(stderr, "inference: %s: %s\n", what, err->detail);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: inference MODEL.onnx ROWS.csv\n");
        return 2;
    }
    veil_error err = {0};
    veil_model *model = NULL;
    veil_plan *plan = NULL;
    veil_keyset *owner = NULL;
    veil_eval_keys *server = NULL;
    veil_ciphertexts *x = NULL, *y = NULL;
    double *rows = NULL;
    size_t count = 0;

    if (veil_model_load_onnx_file(&model, argv[1], NULL, &err) != VEIL_OK) return fail("model", &err);
    if (veil_csv_read(argv[2], veil_model_input_width(model), &rows, &count, NULL, &err) != VEIL_OK)
        return fail("rows", &err);
    /* the inputs' range, here each feature's over the rows: the plan bounds every value of the encrypted
     * model from it (or refuses), and encryption refuses inputs outside it */
    const size_t in_width = veil_model_input_width(model);
    double *lo = calloc(in_width, sizeof *lo), *hi = calloc(in_width, sizeof *hi);
    if (!lo || !hi) return 1;
    for (size_t f = 0; f < in_width; f++) {
        lo[f] = hi[f] = rows[f];
        for (size_t r = 1; r < count; r++) {
            lo[f] = rows[r * in_width + f] < lo[f] ? rows[r * in_width + f] : lo[f];
            hi[f] = rows[r * in_width + f] > hi[f] ? rows[r * in_width + f] : hi[f];
        }
    }
    veil_plan_request request = {.packing = VEIL_PACKING_THROUGHPUT, .box_lo = lo, .box_hi = hi}; /* 128-bit */
    if (veil_model_plan(&plan, model, &request, &err) != VEIL_OK) return fail("plan", &err);
    free(lo);
    free(hi);

    /* 1. the data owner: keys, and its rows encrypted */
    if (veil_keyset_generate(&owner, &server, plan, NULL, NULL, NULL, &err) != VEIL_OK) return fail("keygen", &err);
    if (veil_ciphertexts_encrypt(&x, owner, rows, count, NULL, &err) != VEIL_OK) return fail("encrypt", &err);
    /* 2. the server: the model on ciphertexts, with the evaluation keys (no secret key) */
    if (veil_model_evaluate(&y, model, server, x, NULL, NULL, &err) != VEIL_OK) return fail("evaluate", &err);
    /* 3. the data owner: the model's outputs */
    const size_t width = veil_model_output_width(model);
    double *decrypted = calloc(count * width, sizeof *decrypted), *plain = calloc(count * width, sizeof *plain);
    if (!decrypted || !plain) return 1;
    if (veil_ciphertexts_decrypt(decrypted, NULL, owner, y, &err) != VEIL_OK) return fail("decrypt", &err);
    if (veil_model_run_program(model, plain, rows, count, &err) != VEIL_OK) return fail("plain", &err);

    double worst = 0;
    for (size_t i = 0; i < count * width; i++) worst = fmax(worst, fabs(decrypted[i] - plain[i]));
    printf("%zu rows: first output %.6f (plaintext %.6f), largest difference %.3g\n", count, decrypted[0], plain[0],
           worst);

    free(decrypted);
    free(plain);
    free(rows);
    veil_ciphertexts_free(y); /* ciphertext sets first: they use their keys' context */
    veil_ciphertexts_free(x);
    veil_eval_keys_free(server);
    veil_keyset_free(owner);
    veil_plan_free(plan);
    veil_model_free(model);
    return worst <= 1e-3 ? 0 : 1;
}
