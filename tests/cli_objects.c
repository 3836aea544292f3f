/* Writes a parameter set, a seeded ciphertext and a secret key into DIR, for the `veil info` test. */
#include <stdio.h>
#include "veil/veil.h"

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    veil_error err = {0};
    veil_params *params = NULL;
    veil_context *ctx = NULL;
    veil_secret_key *sk = NULL;
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    veil_ckks_ciphertext *ct = NULL;
    veil_buffer b[3] = {{0}};
    double v[2] = {1, 2};
    char path[3][512];
    const char *names[3] = {"params.veil", "x.ct", "secret.key"};
    for (int i = 0; i < 3; i++) snprintf(path[i], sizeof path[i], "%s/%s", argv[1], names[i]);
    int bad = veil_params_preset(&params, "ckks-n8192-d2", &err) || veil_context_new(&ctx, params, NULL, &err) ||
              veil_secret_key_new(&sk, ctx, NULL, &err) || veil_ckks_encoder_new(&enc, ctx, &err) ||
              veil_ckks_plaintext_new(&pt, ctx, &err) || veil_ckks_encode(enc, pt, v, NULL, 2, 1 << 30, 2, &err) ||
              veil_ckks_ciphertext_new(&ct, ctx, &err) || veil_ckks_encrypt_sk(ctx, ct, pt, sk, NULL, &err) ||
              veil_params_save(&b[0], params, 0, &err) || veil_ckks_ciphertext_save(&b[1], ct, VEIL_SAVE_COMPRESS, &err) ||
              veil_secret_key_save(&b[2], sk, 0, &err);
    for (int i = 0; i < 3 && !bad; i++) bad = veil_file_write_atomic(path[i], b[i].data, b[i].len, &err) != VEIL_OK;
    if (bad) fprintf(stderr, "cli_objects: %s\n", err.detail);
    for (int i = 0; i < 3; i++) veil_buffer_free(&b[i]);
    veil_ckks_ciphertext_free(ct);
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    veil_secret_key_free(sk);
    veil_context_free(ctx);
    veil_params_free(params);
    return bad;
}
