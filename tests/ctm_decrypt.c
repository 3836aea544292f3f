/*
 * What a secret key makes of an encrypted model's ciphertexts (test_cli_encmodel.sh): ctm_decrypt MODEL.ctm KEYS
 * decrypts every ciphertext of MODEL.ctm with the first secret key held in the Veil set KEYS (a key set's
 * secret.key, or one party's secret.share of a joint key) and prints slot 0 of each, one per line. With the key
 * the model was encrypted under, these are its weights (the test's check that this tool decrypts); with one
 * party's share of a joint key, values unrelated to them.
 */
#include <stdio.h>
#include <stdlib.h>
#include "veil/veil.h"

static int read_all(const char *path, veil_buffer *b)
{
    veil_error err = {0};
    if (veil_file_read(b, path, (size_t)1 << 34, &err) == VEIL_OK) return 0;
    fprintf(stderr, "ctm_decrypt: %s: %s\n", path, err.detail);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: ctm_decrypt MODEL.ctm KEYS\n");
        return 2;
    }
    veil_buffer mb = {0}, kb = {0};
    veil_set_contents m = {0}, k = {0};
    veil_params *params = NULL;
    veil_context *ctx = NULL;
    veil_secret_key *sk = NULL;
    veil_ckks_encoder *enc = NULL;
    veil_ckks_plaintext *pt = NULL;
    veil_error err = {0};
    int bad = read_all(argv[1], &mb) || read_all(argv[2], &kb) || veil_set_open(&m, mb.data, mb.len, &err) ||
              veil_set_open(&k, kb.data, kb.len, &err) || m.count < 2 ||
              veil_params_load(&params, m.items[0].data, m.items[0].len, &err) ||
              veil_context_new(&ctx, params, NULL, &err) || veil_ckks_encoder_new(&enc, ctx, &err) ||
              veil_ckks_plaintext_new(&pt, ctx, &err);
    for (size_t i = 0; i < k.count && !bad && !sk; i++)
        if (k.items[i].type == VEIL_OBJECT_SECRET_KEY)
            bad = veil_secret_key_load(&sk, ctx, k.items[i].data, k.items[i].len, &err) != VEIL_OK;
    if (!sk) bad = 1;
    for (size_t i = 1; i < m.count && !bad; i++) {
        veil_ckks_ciphertext *ct = NULL;
        double v = 0;
        bad = veil_ckks_ciphertext_load(&ct, ctx, m.items[i].data, m.items[i].len, &err) ||
              veil_ckks_decrypt(ctx, pt, ct, sk, &err) || veil_ckks_decode(enc, &v, NULL, 1, pt, &err);
        if (!bad) printf("%.17g\n", v);
        veil_ckks_ciphertext_free(ct);
    }
    if (bad) fprintf(stderr, "ctm_decrypt: %s\n", err.detail[0] ? err.detail : "no secret key, or not a model");
    veil_ckks_plaintext_free(pt);
    veil_ckks_encoder_free(enc);
    veil_secret_key_free(sk);
    veil_context_free(ctx);
    veil_params_free(params);
    veil_set_contents_clear(&m);
    veil_set_contents_clear(&k);
    veil_buffer_free(&mb);
    veil_buffer_free(&kb);
    return bad;
}
