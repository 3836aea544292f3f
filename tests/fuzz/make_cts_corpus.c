/*
 * fuzz_cts's seed corpus: valid sets under its key sets (cts_keys.h), each prefixed by the selector byte that
 * loads it with the evaluation keys and, again, with the key set: inputs and outputs of CKKS inference in
 * both packings and of exact inference, and a training data set and its trained model.
 */
#include <stdio.h>
#include <stdlib.h>
#include "cts_keys.h"

static int put(const char *dir, const char *name, int kind, const veil_ciphertexts *cts)
{
    veil_buffer b = {0};
    if (veil_ciphertexts_save(&b, cts, NULL) != VEIL_OK) return 1;
    int bad = 0;
    for (int owner = 0; owner < 2; owner++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s-%s", dir, name, owner ? "owner" : "server");
        FILE *f = fopen(path, "wb");
        if (!f) {
            bad = 1;
            break;
        }
        fputc(kind + owner * CTS_KINDS, f);
        fwrite(b.data, 1, b.len, f);
        bad |= fclose(f) != 0;
    }
    veil_buffer_free(&b);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    static const char *const names[CTS_KINDS] = {"throughput", "latency", "bgv", "training"};
    cts_keys k;
    veil_error err = {0};
    veil_status st = VEIL_OK;
    int bad = 0;
    const double x[12] = {0, 1, 2, 3, 2, 0, 1, 3, 1, 2, 0, 3}, y[4] = {1, 0, 1, 0};
    VEIL_CHECK(cts_keys_make(&k, &err));
    for (int i = 0; i < CTS_KINDS && !bad; i++) {
        veil_ciphertexts *in = NULL, *out = NULL;
        char name[64];
        if (i == CTS_TRAINING) {
            veil_train_options o = {.iterations = 1};
            st = veil_train_encrypt(&in, k.ks[i], x, y, 4, NULL, &err);
            if (st == VEIL_OK) st = veil_train_run(&out, k.ek[i], in, &o, NULL, NULL, &err);
        } else {
            st = veil_ciphertexts_encrypt(&in, k.ks[i], x, i == CTS_LATENCY ? 2 : 4, NULL, &err);
            if (st == VEIL_OK) st = veil_model_evaluate(&out, k.model[i], k.ek[i], in, NULL, NULL, &err);
        }
        if (st == VEIL_OK) {
            snprintf(name, sizeof name, "%s-in", names[i]);
            bad |= put(argv[1], name, i, in);
            snprintf(name, sizeof name, "%s-out", names[i]);
            bad |= put(argv[1], name, i, out);
        }
        veil_ciphertexts_free(in);
        veil_ciphertexts_free(out);
        if (st != VEIL_OK) goto done;
    }
done:
    if (st != VEIL_OK) fprintf(stderr, "make_cts_corpus: %s\n", err.detail);
    cts_keys_free(&k);
    return st != VEIL_OK || bad;
}
