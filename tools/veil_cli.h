/* Shared between the parts of the `veil` program. */
#ifndef VEIL_CLI_H
#define VEIL_CLI_H

#include <stddef.h>
#include "veil/ml.h"

/* Exit codes, documented in `veil --help` and docs/veil.1. */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_INPUT = 3, EXIT_MISMATCH = 4 };

/* EXIT_RUNTIME when standard output could not be written, EXIT_OK otherwise. */
int finish_output(void);
/* Runs an ML command (keygen, encrypt, eval, decrypt, plain, plan); -1 when cmd is none of them. */
int veil_ml_command(const char *cmd, int argc, char **argv);

/* Reads X.csv for keys of `width` inputs: rows of another width are EXIT_MISMATCH (keys or data of another model). */
int veil_read_rows_for_keys(const char *path, size_t width, const char *keys, double **x, size_t *rows);
/* What an output CSV holds: the values, each row's argmax, or 1/0 for a probability above/below 0.5. */
enum { VEIL_CSV_VALUES = 0, VEIL_CSV_ARGMAX = 1, VEIL_CSV_ABOVE_HALF = 2 };
/* The mode --argmax (or its absence) gives for a model's final operation and width; EXIT_USAGE when it names
 * no class. */
int veil_csv_mode(int argmax, veil_final_op final_op, size_t width, int *mode);
/* Writes rows x width values as CSV (%.17g), or one class per row (mode), atomically. */
int veil_write_csv(const char *path, const double *v, size_t rows, size_t width, int mode);

/* Writes a key set's two files so that both change or neither does (tools/veil_ml.c). */
int veil_write_key_pair(const char *sk_path, const char *eval_path, const veil_keyset *ks, const veil_eval_keys *ek);
/* KEYDIR/ and KEYDIR/eval/, made where missing (made[]: which); after a failure, removes those it made. */
int veil_make_key_dirs(const char *dir, const char *eval_dir, int made[2]);
void veil_remove_key_dirs(const char *dir, const char *eval_dir, const int made[2]);

/* The network commands (tools/veil_net.c). */
int veil_cmd_serve(int argc, char **argv);
int veil_cmd_predict(int argc, char **argv);
int veil_cmd_keygen_remote(const char *url, const char *model, int latency, const char *out_dir, int force, int quiet,
                           const char *cacert);

#endif
