/*
 * Shared between the parts of the `veil` program. The program is layered without loops:
 *
 *   veil.c        the help, the command table and main; calls the commands
 *   cmd_*.c       one file per command (or group of commands); each calls options.c, io.c and the library,
 *                 never another command's file
 *   io.c          files, CSV, key sets, models and plans from the options, the one cli_fail, the progress bar
 *   options.c     the table of options and the loop that parses argv against it (calls nothing of tools/)
 *
 * The error idiom of the program (exit codes, not veil_status). A command keeps its exit code in
 * `int rc = EXIT_OK;`, checks each step that returns an exit code with CLI_CHECK, turns a library call's status
 * into an exit code with cli_status (EXIT_OK, or the library's message printed and the status's exit code),
 * reports a failure it finds itself with CLI_FAIL (a message "veil: ..." and an exit code), and ends with a
 * `done:` label that frees what it holds and returns rc:
 *
 *     int rc = EXIT_OK;
 *     veil_keyset *ks = NULL;
 *     CLI_CHECK(cli_load_keyset(o.keys, &ks));
 *     CLI_CHECK(cli_status(veil_something(ks, &err), &err, NULL));
 *     if (too_wide(ks)) CLI_FAIL(EXIT_MISMATCH, "%s: keys of another model", o.keys);
 * done:
 *     veil_keyset_free(ks);
 *     return rc;
 *
 * Checks before anything is held may return directly (`return cli_error(EXIT_USAGE, ...)`).
 */
#ifndef VEIL_CLI_H
#define VEIL_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "veil/veil.h"

/* Exit codes, documented in `veil --help` and docs/veil.1. */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_INPUT = 3, EXIT_MISMATCH = 4 };
enum { EXIT_BUDGET = 5 }; /* a release over the key set's privacy budget (docs/privacy.md) */

/* Prints "veil: MESSAGE" and a newline on standard error; returns code. */
int cli_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define CLI_CHECK(expr)                                                                                         \
    do {                                                                                                        \
        rc = (expr);                                                                                            \
        if (rc != EXIT_OK) goto done;                                                                           \
    } while (0)
#define CLI_FAIL(...)                                                                                           \
    do {                                                                                                        \
        rc = cli_error(__VA_ARGS__);                                                                            \
        goto done;                                                                                              \
    } while (0)

/* ---- commands (cmd_*.c): each takes the arguments after its name ------------------------------------- */

int cli_cmd_keygen(int argc, char **argv);  /* cmd_keys.c: a key set, for a model, for training or a server */
int cli_cmd_encrypt(int argc, char **argv); /* cmd_encrypt.c */
int cli_cmd_eval(int argc, char **argv);    /* cmd_eval.c */
int cli_cmd_decrypt(int argc, char **argv); /* cmd_decrypt.c */
int cli_cmd_plain(int argc, char **argv);   /* cmd_plain.c */
int cli_cmd_plan(int argc, char **argv);    /* cmd_plan.c */
int cli_cmd_train(int argc, char **argv);   /* cmd_train.c: encrypted training, and --plain */
int cli_cmd_info(int argc, char **argv);    /* cmd_info.c */
int cli_cmd_serve(int argc, char **argv);   /* cmd_net.c */
int cli_cmd_predict(int argc, char **argv); /* cmd_net.c */
int cli_cmd_token(int argc, char **argv);   /* cmd_token.c: a server's tenants' tokens */
int cli_cmd_budget(int argc, char **argv);  /* cmd_budget.c: a key set's privacy budget, the accountant */

/* ---- differential privacy (dp.c): a key folder's budget file, KEYDIR/privacy.budget -------------------- */

/* Reads KEYDIR's budget into *b; *exists 0 (and *b untouched) when there is none. */
int cli_load_budget(const char *keydir, veil_dp_budget *b, int *exists);
/* Writes it atomically. */
int cli_save_budget(const char *keydir, const veil_dp_budget *b);
/* The budget as lines "privacy:   ..." for budget and info. */
void cli_print_budget(const veil_dp_budget *b);
/*
 * A noisy release (veil eval --dp-epsilon, a served model's dp_epsilon): refused (EXIT_BUDGET) unless KEYDIR's
 * budget holds its rho, which is charged and the budget file written before any value is; EXIT_OK and nothing
 * done for a set without noise. `what` names the set in messages.
 */
int cli_charge_release(const char *keydir, const char *what, const veil_ciphertexts *cts);
/* A set with fewer noise shares than its release needs (veil eval --dp-parties): refused (EXIT_BUDGET). */
int cli_refuse_incomplete_release(const char *what, const veil_ciphertexts *cts);
/* veil party sum --group G --in U1.ct U2.ct ... --out SUM.ct: the parties' updates added (cmd_party_dp.c) */
int cli_party_sum(const char *keys_dir, char **ins, size_t n_in, const char *out, int quiet);
int cli_cmd_party(int argc, char **argv);   /* cmd_party.c: multi-party keys and joint decryption */
int cli_party_net(int argc, char **argv);   /* cmd_party_net.c: veil party push|pull (a server's /v1/groups) */
int cli_cmd_encrypt_model(int argc, char **argv); /* cmd_encmodel.c: a model owner's encrypted weights */

/* ---- options (options.c) ------------------------------------------------------------------------------ */

/* The commands, as bits of the option table's column "which commands accept it". */
enum {
    CLI_KEYGEN = 1 << 0,
    CLI_ENCRYPT = 1 << 1,
    CLI_EVAL = 1 << 2,
    CLI_DECRYPT = 1 << 3,
    CLI_PLAIN = 1 << 4,
    CLI_PLAN = 1 << 5,
    CLI_TRAIN = 1 << 6,
    CLI_TRAIN_PLAIN = 1 << 7, /* veil train --plain */
    CLI_SERVE = 1 << 8,
    CLI_PREDICT = 1 << 9,
    CLI_TOKEN = 1 << 10,
    CLI_BUDGET = 1 << 24, /* far from the others' bits, so that commands added on other branches merge */
    CLI_PARTY = 1 << 11, /* veil party init|keygen|combine|decrypt|switch */
    CLI_ENCRYPT_MODEL = 1 << 12, /* veil encrypt-model */
};

/* --scheme (0 when not given). */
enum { CLI_SCHEME_CKKS = 1, CLI_SCHEME_BGV = 2 };

/* Every command's options; what one command does not take stays zero. */
typedef struct cli_options {
    const char *model, *keys, *eval_keys, *in, *out, *calibrate, *range, *server, *cacert;
    const char *train, *labels, *onnx; /* training */
    const char *input_range;           /* --input-range LO:HI */
    int scheme;                        /* exact inference: --scheme bgv (CLI_SCHEME_*) */
    int security;                      /* veil_security */
    size_t features, iterations, sigmoid_range;
    double learning_rate, l2;
    size_t batch, degree, threads;
    int latency, argmax, quiet, force, server_sigmoid, integers, exact, force_approximation;
    int flood, no_flood; /* decrypt: noise flooding (--flood; the default with --onnx, --no-flood) */
    int bootstrap; /* plan, keygen: a bootstrapping plan even when the leveled parameters would do (--bootstrap) */
    int mpi;             /* eval: batches, train: records spread over MPI ranks (tools/mpi.c) */
    /* serve: its numbers are read by the command (docs/veil.1: any number, 0 for the default) */
    const char *models, *store, *listen, *tls_cert, *tls_key;
    const char *serve_threads, *eval_threads, *max_keys, *timeout, *max_batches;
    int no_auth, insecure_http;
    const char *tenant_max_keys, *tenant_max_bytes;
    const char *tenant_rps, *tenant_burst, *tenant_max_predictions, *max_connections, *max_per_address,
        *request_deadline; /* serve's limits: a number or "off" */
    const char *cache_bytes, *memory_budget; /* serve: B, or with K, M or G (issue 21) */
    const char *tenant_max_groups, *group_max_bytes; /* serve: the groups' limits (issue 18) */
    const char *token_file, *tenant, *token_id; /* predict, keygen --server; token */
    int admin;
    /* differential privacy (docs/privacy.md): budget's --epsilon/--delta/..., eval's --dp-* */
    double dp_epsilon, dp_delta, dp_rho, dp_sigma, dp_sensitivity;
    size_t dp_releases;
    size_t dp_parties; /* eval --dp-parties N: a share of distributed noise (federated aggregation) */
    const char *feature_range; /* encrypt: training data's declared range LO:HI (DP-GD) */
    const char *label_range;   /* encrypt: linear regression's label range LO:HI (DP-GD) */
    double dp_prediction_bound; /* train: linear DP-GD's bound on |z.v| */
    /* party: its sizes, and its paths (--in takes a list there: the party's own parser, cmd_party.c) */
    size_t parties, threshold, party, round, smudging_bits;
    const char *preset, *group, *decrypt_ct, *switch_ct, *to;
    const char *set; /* party decrypt|switch --set 1,3: the decrypting parties of a t-out-of-N group */
    double tolerance; /* party combine --tolerance E: the error the shares' smudging may add (0: 1e-3) */
    /* party init: room for the shares' smudging: the output scale (veil_plan_request.min_scale_bits; training:
     * flood's) */
    unsigned smudging_scale;
    const char *plan_file; /* keygen --plan FILE: keys for a plan file (veil plan --out), without the model */
    const char *served; /* encrypt-model --server URL --served NAME: the served model the weights are sent to */
} cli_options;

/*
 * Parses argv (the arguments after the command's name) against the option table for `command` (a CLI_* bit)
 * into *o (zeroed first). Returns 0 after printing the message of the first bad argument: an option the
 * command does not take, a missing value, a value out of its range.
 */
int cli_parse(int argc, char **argv, cli_options *o, unsigned command);
/* 1 when value is not NULL; otherwise prints "veil: FLAG is required" and returns 0. */
int cli_need(const void *value, const char *flag);
/* A whole decimal number without a sign; 0 when s is not one. */
int cli_parse_size(const char *s, size_t *out);

/* ---- output, errors and progress (io.c) ----------------------------------------------------------------- */

/*
 * The exit code of a library call: EXIT_OK for VEIL_OK; otherwise prints "veil: DETAIL" (the library's message,
 * which says what failed and names the file it read or wrote), or "veil: WHAT: DETAIL" where the detail cannot
 * know WHAT (a file whose bytes were parsed from memory), and returns cli_fail's code.
 */
int cli_status(veil_status st, const veil_error *err, const char *what);
/* The same for a status known to be a failure: EXIT_MISMATCH, EXIT_INPUT (bad input: format, arguments,
 * unsupported, insecure, not found) or EXIT_RUNTIME. */
int cli_fail(veil_status st, const veil_error *err, const char *what);
/* EXIT_RUNTIME when standard output could not be written (a full disk, a closed pipe), EXIT_OK otherwise. */
int cli_finish_output(void);
/* Seconds of a monotonic clock. */
double cli_seconds(void);
/* A size in decimal units (kB, MB, GB: 10^3, 10^6, 10^9 bytes), three significant digits: every size veil prints. */
const char *cli_size_text(char *buf, size_t cap, double bytes);

/*
 * The one progress bar: "WHAT [#####     ]  50%" on standard error, redrawn at most once a second, ended by a
 * newline when done reaches total. Drawn only when standard error is a terminal and --quiet was not given.
 * cli_progress is a veil_progress_fn: give it, with the bar, to every long call.
 */
typedef struct cli_bar {
    const char *what;
    int on;
    long last; /* the second of the last drawing */
} cli_bar;
void cli_bar_init(cli_bar *b, const char *what, int quiet);
void cli_progress(void *bar, size_t done, size_t total);

/* ---- files ---------------------------------------------------------------------------------------------- */

int cli_is_dir(const char *path);
int cli_exists(const char *path);
/* A whole file of at most 2^34 bytes (a key or ciphertext file). */
void cli_use_threads(size_t threads);
int cli_read_file(const char *path, veil_buffer *b);
/* Writes b atomically to path and frees it. */
int cli_save_buffer(const char *path, veil_buffer *b);
/* Writes a ciphertext set atomically to path. */
int cli_save_ciphertexts(const char *path, const veil_ciphertexts *cts);
/*
 * Two files, both replaced or neither: each is written beside its final name (PATH.new, atomically), then both
 * are renamed, so that a failure never leaves one new file beside an old or missing other (a new evaluation key
 * beside an old secret key, new weights beside an old model).
 */
int cli_write_two(const char *path_a, const veil_buffer *a, const char *path_b, const veil_buffer *b);

/* ---- CSV -------------------------------------------------------------------------------------------------- */

/* Reads a CSV of rows of `width` values (0: any width, written to *width_out when not NULL). */
int cli_read_csv(const char *path, size_t width, double **x, size_t *rows, size_t *width_out);
/* Reads X.csv for keys of `width` inputs: rows of another width are EXIT_MISMATCH (keys or data of another model). */
int cli_read_rows_for_keys(const char *path, size_t width, const char *keys, double **x, size_t *rows);
/* What an output CSV holds: the values, each row's argmax, or 1/0 for a probability above/below 0.5. */
enum { CLI_CSV_VALUES = 0, CLI_CSV_ARGMAX = 1, CLI_CSV_ABOVE_HALF = 2 };
/* The mode --argmax (or its absence) gives for a model's final operation and width; EXIT_USAGE when it names
 * no class. */
int cli_csv_mode(int argmax, veil_final_op final_op, size_t width, int *mode);
/* Rows x width values as CSV text (%.17g), or one class per row (mode); NULL when out of memory. */
char *cli_csv_text(const double *v, size_t rows, size_t width, int mode, size_t *len_out);
/* Writes rows x width values as CSV (%.17g), or one class per row (mode), atomically. */
int cli_write_csv(const char *path, const double *v, size_t rows, size_t width, int mode);
/* Integers as CSV, exactly, atomically. */
int cli_write_int_csv(const char *path, const int64_t *v, size_t rows, size_t width);
/* The label column of a training CSV: a name in its header, or a column number (1-based). */
int cli_find_label_column(const char *path, const char *name, size_t width, size_t *col);
/* Splits rows x width values into features (x: width - 1 per row) and labels (y: column col). */
void cli_split_labels(const double *all, size_t rows, size_t width, size_t col, double *x, double *y);
/* A trained model's files: the weights as CSV (csv_path: bias first) and/or the ONNX model, both or neither. */
int cli_write_trained(const char *csv_path, const double *w, size_t count, const char *onnx_path,
                      const veil_buffer *onnx);

/* ---- keys ------------------------------------------------------------------------------------------------- */

/*
 * The client's bearer token: $VEIL_TOKEN, or the file token_file (not NULL: one line, not readable by others);
 * neither: none. A token never comes from the command line, where other users see it.
 */
int cli_client_token(veil_client *client, const char *token_file);

/* KEYDIR/secret.key, or KEYDIR/joint.keys where there is none (a multi-party group's joint key set). */
int cli_load_keyset(const char *dir, veil_keyset **ks);
/* The evaluation-key file of --eval-keys (a folder's eval.keys, or the file); refuses a folder with a secret key. */
int cli_eval_keys_path(const char *given, char *path, size_t cap);
/* The evaluation keys of the file path (cli_eval_keys_path); the file's bytes are not held once parsed. */
int cli_load_eval_keys(const char *path, veil_eval_keys **ek);
/* veil eval --model: an encrypted model (a Veil file, loaded with the eval keys) or an ONNX file (cmd_encmodel.c) */
int cli_load_eval_model(veil_model **m, cli_options *o, const veil_eval_keys *ek, const char *keys_path,
                        double **calib);
/* veil eval --mpi, with the eval keys' file (tools/mpi.c; built when MPI is found) */
int cli_mpi_eval(cli_options *o, const char *eval_keys_path);
/* veil train: the sets' training (train_sets.c); split: this rank's part under --mpi (only part 0 writes), or NULL */
int cli_train_sets(cli_options *o, const char *path, char **ins, size_t n_in, const veil_train_split *split,
                   const veil_buffer *bytes, int (*may_write)(void *), void *arg);
/* veil train --mpi: the records' ciphertexts spread over the ranks, the gradient parts summed (tools/mpi.c) */
int cli_mpi_train(cli_options *o, const char *eval_keys_path, char **ins, size_t n_in);
/* A ciphertext file, for a key set or evaluation keys (one of them). */
int cli_load_ciphertexts(const char *path, const veil_keyset *ks, const veil_eval_keys *ek, veil_ciphertexts **cts);
/* KEYDIR/ and KEYDIR/eval/, made where missing (made[]: which); after a failure, removes those it made. */
int cli_make_key_dirs(const char *dir, const char *eval_dir, int made[2]);
void cli_remove_key_dirs(const char *dir, const char *eval_dir, const int made[2]);
/*
 * Key generation into both files of a key set, both replaced or neither: the evaluation keys are written to
 * EVAL.new as they are made (one key in memory at a time), then the secret key beside its name, then both
 * renamed. report (with report_arg) is called with one unit per key.
 */
int cli_keygen_to_files(const char *sk_path, const char *eval_path, const veil_plan *plan, veil_progress_fn report,
                        void *report_arg);

/* ---- models and plans from the options --------------------------------------------------------------------- */

/* Loads --model with the model options (--calibrate, --range, --degree, ...); *calib: the calibration rows. */
int cli_load_model(veil_model **m, const cli_options *o, double **calib);
/*
 * --model beside keys made for a model: as the keys' scheme has it loaded. Exact (BGV) keys were made from a
 * model that lowers to integer layers: one that does not is another model (EXIT_MISMATCH).
 */
int cli_load_model_for_keys(veil_model **m, cli_options *o, veil_ml_scheme keys_scheme, const char *keys,
                            double **calib);
/* The plan of --batch/--latency/--security/--scheme/--input-range for a model. */
int cli_make_plan(const cli_options *o, const veil_model *m, veil_plan **plan);
/* The same, the library's refusal left in *detail (not printed: EXIT_INPUT) when detail is not NULL. */
int cli_try_plan(const cli_options *o, const veil_model *m, veil_plan **plan, veil_error *detail);
/* The plan of --train/--features/--iterations/--degree/--sigmoid-range/--security. */
int cli_make_train_plan(const cli_options *o, veil_plan **plan);

/* --store names a PostgreSQL database (postgresql://...) rather than a folder: said without its password. */
static inline int cli_store_is_url(const char *store)
{
    return store && (!strncmp(store, "postgresql://", 13) || !strncmp(store, "postgres://", 11));
}

#endif
