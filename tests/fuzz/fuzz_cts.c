/*
 * libFuzzer target for the ciphertext-set loader (veil_ciphertexts_load): a server loads sets from clients,
 * a data owner sets from the server. The first input byte picks the key set (cts_keys.h: CKKS throughput,
 * latency, BGV, training) and whether the set is loaded with the key set or its evaluation keys; the rest is
 * the set. A set must be refused or loaded whole: never a crash, hang, leak or out-of-bounds read. A loaded
 * set is saved again, and a key holder's decrypts (a small one: its rows bounded), which must also refuse or
 * succeed cleanly. Built with -fsanitize=fuzzer,address,undefined by `make fuzz`, which ignores
 * integrity-digest mismatches (VEIL_FUZZ_IGNORE_DIGEST) so that mutated sets reach the parsers.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "cts_keys.h"

static cts_keys keys;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A loaded set, as its next user would take it. */
static void use(const veil_ciphertexts *cts, int kind, int owner)
{
    veil_buffer b = {0};
    veil_ciphertexts_save(&b, cts, NULL);
    veil_buffer_free(&b);
    if (!owner) return;
    const veil_keyset *ks = keys.ks[kind];
    const size_t rows = veil_ciphertexts_rows(cts), width = veil_ciphertexts_width(cts);
    if (rows > 4096 || width > 4096) return;
    const size_t out_w = veil_keyset_output_width(ks) + veil_keyset_input_width(ks) + 1;
    double *out = calloc((rows + 1) * (out_w + width), sizeof *out);
    if (!out) return;
    if (kind == CTS_TRAINING) veil_train_decrypt(out, ks, cts, NULL);
    else veil_ciphertexts_decrypt(out, NULL, ks, cts, NULL);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        veil_error err = {0};
        if (cts_keys_make(&keys, &err) != VEIL_OK) {
            fprintf(stderr, "fuzz_cts: keys: %s\n", err.detail);
            abort(); /* fixed parameters: this cannot happen */
        }
        ready = 1;
    }
    if (size < 1) return 0;
    const int kind = data[0] % CTS_KINDS, owner = (data[0] / CTS_KINDS) % 2;
    veil_ciphertexts *cts = NULL;
    if (veil_ciphertexts_load(&cts, owner ? keys.ks[kind] : NULL, owner ? NULL : keys.ek[kind], data + 1, size - 1,
                              NULL) == VEIL_OK)
        use(cts, kind, owner);
    veil_ciphertexts_free(cts);
    return 0;
}
