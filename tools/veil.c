/* veil: the command-line program. Today it reports its version; the scheme and ML commands follow. */
#include <stdio.h>
#include <string.h>
#include "veil/veil.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: veil [--version | --help]\n"
            "\n"
            "Veil: fully homomorphic encryption for privacy-preserving machine learning.\n"
            "The key generation, encryption, evaluation and decryption commands come with the CKKS, BGV\n"
            "and ML layers; this release provides the library's core and ring layers and veil-bench.\n"
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

int main(int argc, char **argv)
{
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
