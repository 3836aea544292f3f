/* veil: the command-line program. Today: its version and `veil info FILE`; the ML commands follow. */
#include <stdio.h>
#include <string.h>
#include "veil/veil.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: veil [--version | --help]\n"
            "       veil info FILE    what a stored Veil object holds (type, form, security, sizes)\n"
            "\n"
            "Veil: fully homomorphic encryption for privacy-preserving machine learning.\n"
            "The key generation, encryption, evaluation and decryption commands come with the ML layer;\n"
            "this release provides the library (core, ring, RLWE, CKKS, wire format) and veil-bench.\n"
            "\n"
            "options:\n"
            "  --version   print the version and exit\n"
            "  -h, --help  print this help and exit\n"
            "\n"
            "environment:\n"
            "  VEIL_THREADS=T   default thread count\n"
            "  VEIL_NO_AVX2=1   use the portable kernels even on an AVX2 CPU\n"
            "\n"
            "exit codes: 0 success, 1 runtime error, 2 usage error\n");
}

/* Exit status after writing to stdout: EXIT_RUNTIME when the output could not be written (a full disk,
 * a closed pipe), EXIT_OK otherwise. */
static int finish_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "veil: cannot write to standard output\n");
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

static const char *type_name(veil_object_type t)
{
    switch (t) {
    case VEIL_OBJECT_PARAMS: return "parameter set";
    case VEIL_OBJECT_SECRET_KEY: return "secret key";
    case VEIL_OBJECT_PUBLIC_KEY: return "public key";
    case VEIL_OBJECT_SWITCH_KEY: return "key-switching key (relinearization or Galois)";
    case VEIL_OBJECT_CKKS_PLAINTEXT: return "CKKS plaintext";
    case VEIL_OBJECT_CKKS_CIPHERTEXT: return "CKKS ciphertext";
    case VEIL_OBJECT_BGV_PLAINTEXT: return "BGV plaintext";
    case VEIL_OBJECT_BGV_CIPHERTEXT: return "BGV ciphertext";
    case VEIL_OBJECT_SET: return "set of objects";
    }
    return "unknown";
}

static const char *security_name(veil_security s)
{
    switch (s) {
    case VEIL_SECURITY_128: return "128-bit";
    case VEIL_SECURITY_192: return "192-bit";
    case VEIL_SECURITY_256: return "256-bit";
    case VEIL_SECURITY_NONE: return "NONE (insecure, tests only)";
    }
    return "unknown";
}

/* veil info FILE: the header of a stored object, and the set itself for a parameter file. */
static int cmd_info(const char *path)
{
    veil_error err = {0};
    veil_buffer buf = {0};
    veil_object_info info;
    if (veil_file_read(&buf, path, (size_t)1 << 34, &err) != VEIL_OK ||
        veil_object_peek(&info, buf.data, buf.len, &err) != VEIL_OK) {
        if (buf.data) fprintf(stderr, "veil: %s: %s\n", path, err.detail);
        else fprintf(stderr, "veil: %s\n", err.detail); /* the reader's message names the file */
        veil_buffer_free(&buf);
        return EXIT_RUNTIME;
    }
    printf("file:       %s\n", path);
    printf("object:     %s\n", type_name(info.type));
    printf("form:       %s%s%s\n", info.flags & VEIL_FLAG_SEEDED ? "seeded" : "full",
           info.flags & VEIL_FLAG_ZSTD ? ", zstd-compressed" : "", info.flags & VEIL_FLAG_SECRET ? ", SECRET" : "");
    printf("security:   %s\n", security_name(info.security));
    printf("parameters: ");
    for (int i = 0; i < 8; i++) printf("%02x", info.params_hash[i]);
    printf("... (hash)\n");
    printf("size:       %zu bytes (payload %llu, stored %llu)\n", buf.len, (unsigned long long)info.payload_bytes,
           (unsigned long long)info.stored_bytes);
    if (info.type == VEIL_OBJECT_PARAMS) {
        veil_params *p = NULL;
        if (veil_params_load(&p, buf.data, buf.len, &err) != VEIL_OK) {
            fprintf(stderr, "veil: %s: %s\n", path, err.detail);
            veil_buffer_free(&buf);
            return EXIT_RUNTIME;
        }
        printf("scheme:     %s\n", veil_params_plain_modulus(p) ? "BGV" : "CKKS");
        printf("N:          %zu\nQ primes:   %zu\nP primes:   %zu\ndnum:       %zu\nlog2(QP):   %u\n",
               veil_params_degree(p), veil_params_q_count(p), veil_params_p_count(p), veil_params_dnum(p),
               veil_params_log_qp(p));
        if (veil_params_plain_modulus(p)) printf("t:          %llu\n", (unsigned long long)veil_params_plain_modulus(p));
        veil_params_free(p);
    }
    veil_buffer_free(&buf);
    return finish_stdout();
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "info") == 0) {
        if (argc != 3) {
            fprintf(stderr, "usage: veil info FILE\n");
            return EXIT_USAGE;
        }
        return cmd_info(argv[2]);
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("veil %s\n", veil_version());
        return finish_stdout();
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return finish_stdout();
    }
    if (argc > 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "--help") == 0))
        fprintf(stderr, "veil: unexpected argument '%s' after %s\n", argv[2], argv[1]);
    else if (argc > 1)
        fprintf(stderr, "veil: unknown command or option '%s'\n", argv[1]);
    if (argc > 1) {
        fprintf(stderr, "try 'veil --help'\n");
        return EXIT_USAGE;
    }
    usage(stderr); /* no arguments at all: the whole usage */
    return EXIT_USAGE;
}
