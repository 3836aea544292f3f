/* veil: the command-line program: its help, the table of its commands (tools/cmd_*.c) and main. */
#include <stdio.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include "veil/veil.h"
#include "omp_wait.h"
#include "veil_cli.h"

/* The whole help; a command's own (veil COMMAND --help) is drawn from it by command_help. One string, so
 * that the commands' sections are found in it: longer than the 4095 characters ISO C guarantees, which
 * every compiler Veil builds with takes. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverlength-strings"
static const char usage_text[] =
            "usage: veil COMMAND [OPTIONS]\n"
            "\n"
            "Encrypted inference of ONNX models with CKKS: the data owner keeps the secret key, the server\n"
            "evaluates the model on ciphertexts with the evaluation keys only.\n"
            "\n"
            "  veil keygen  --model M.onnx [--batch N | --latency] [--security 128|192|256] --out KEYDIR\n"
            "               KEYDIR/secret.key (mode 0600, the data owner's) and KEYDIR/eval/ (the server's)\n"
            "               [--flood] room for decrypt --flood (a 2^60 scale, one more level; plan shows the cost)\n"
            "  veil encrypt --keys KEYDIR --in X.csv --out X.ct [--model M.onnx: check the ranges]\n"
            "  veil eval    --model M.onnx --eval-keys KEYDIR/eval --in X.ct --out Y.ct [--threads T]\n"
            "               (refused when any file there holds a secret key, whatever its name)\n"
            "  mpirun -n R veil eval --mpi ...   the set's batches spread over R ranks, the same output bytes\n"
            "               (throughput packing; other sets: rank 0 evaluates them; docs/scale.md)\n"
            "  veil decrypt --keys KEYDIR --in Y.ct --out Y.csv [--argmax] [--flood]   --flood: results shown to\n"
            "               others get noise flooding (SECURITY.md); refused where the keys' scale has no room\n"
            "  veil plain   --model M.onnx --in X.csv --out Y.csv [--argmax]   what the encrypted model returns,\n"
            "               in plaintext (its polynomials); --exact: the ONNX graph itself\n"
            "  veil plan    --model M.onnx [--batch N | --latency] [--flood]   (parameters, keys, sizes, time)\n"
            "               [--bootstrap] bootstraps even when leveled parameters would do (a model deeper than\n"
            "               they hold gets them anyway); keygen takes it too; --security insecure-test: the small\n"
            "               insecure bootstrapping test set (tests only)\n"
            "  veil info    FILE   what a key, ciphertext or parameter file holds\n"
            "\n"
            "the cloud side over HTTP:\n"
            "  veil serve   --models DIR --store DIR [--listen 127.0.0.1:8080] [--threads T] [--eval-threads T]\n"
            "               [--tls-cert F --tls-key F] [--max-keys N] [--timeout S] [--max-batches B] [--quiet]\n"
            "               [--tenant-max-keys N] [--tenant-max-bytes B] [--no-auth] [--insecure-http]\n"
            "               [--tenant-rps R] [--tenant-burst N] [--tenant-max-predictions N]\n"
            "               [--max-connections N] [--max-connections-per-address N] [--request-deadline S]\n"
            "               limits (a number, or off): per tenant R requests a second with bursts of N\n"
            "               (200, 400) and N predictions at once (32), past them 429 with Retry-After;\n"
            "               open connections (512) and per client address (32); a request's headers and\n"
            "               body must arrive within S seconds (30), else the connection is closed\n"
            "               [--cache-bytes B] [--memory-budget B]   (loaded keys, LRU: 1G; bodies and keys: 4G;\n"
            "               past the budget 503 + Retry-After; B in bytes or with K, M, G)\n"
            "               [--tenant-max-groups N] [--group-max-bytes B]   multi-party groups (/v1/groups):\n"
            "               groups a tenant is in (16; past it 429), bytes one group holds (1G; past it 413)\n"
            "               every DIR/*.onnx, named by its file name; evaluation keys kept in the store, each\n"
            "               private to the tenant that uploaded it; every request but /healthz and /metrics\n"
            "               needs a bearer token (--no-auth: none, loopback only); an address other than\n"
            "               loopback needs --tls-cert/--tls-key (or --insecure-http, behind a TLS proxy)\n"
            "               DIR/NAME.json beside NAME.onnx: that model's options (calibrate, range, degree,\n"
            "               input_range, server_sigmoid, force_approximation; docs/net.md)\n"
            "  veil token   add --store DIR --tenant NAME [--admin]   a new token, printed once (the last line)\n"
            "  veil token   revoke --store DIR (--id ID | --tenant NAME);  veil token list --store DIR\n"
            "               (while the server runs too: it sees the change at the next request)\n"
            "  veil keygen  --server URL --model NAME [--latency] --out KEYDIR   keys for a server's plan\n"
            "  veil predict --server URL --model NAME --keys KEYDIR --in X.csv --out Y.csv [--argmax]\n"
            "               (--cacert F: trust a server's own certificate for https:// URLs; the token from\n"
            "               $VEIL_TOKEN or --token-file F, never the command line)\n"
            "\n"
            "exact inference of a quantized model in BGV (integer weights and inputs; examples/quantize.py):\n"
            "  veil keygen  --model Q.onnx --scheme bgv --input-range LO:HI --out KEYDIR   (also for plan)\n"
            "  veil decrypt --keys KEYDIR --in Y.ct --out Y.csv --integers   the exact integers (else times the\n"
            "               output scale); veil plain --integers: the same integer computation in plaintext\n"
            "\n"
            "multi-party keys (N parties, each with a share of the key; all N decrypt together; docs/multiparty.md):\n"
            "  veil party init    --parties N (--model M.onnx [--batch N | --latency] | --preset NAME) --out G\n"
            "               [--smudging-bits B]: the shares' smudging (default 20, recorded in G/group as the\n"
            "               default of decrypt and switch); the plan is sized for it: an output scale large\n"
            "               enough for N shares of 2^B within 1e-3 (2^40 for 3 parties at N = 8192; training\n"
            "               2^41), the ordinary plan where B fits it (B = 16: less hiding); refused\n"
            "               when no plan holds B (--tolerance E: the bound the plan keeps, 1e-3 by default)\n"
            "  veil party init    --parties N --train logistic|linear --features F --iterations K --out G\n"
            "               joint training keys: each party encrypts its records with --keys JOINT and\n"
            "               --feature-range LO:HI (the same at every party), the server trains on all the sets\n"
            "               (veil train --in A.ct B.ct ..); the parties decrypt the weights together (party\n"
            "               decrypt, combine --decrypt W.ct --onnx M.onnx [--out W.csv]), or switch them to one\n"
            "               party's training keys (veil keygen --plan G/plan) (docs/multiparty.md)\n"
            "  veil party keygen  --group G --party I --round 1 --out PI   PI/secret.share (0600) + round-1 shares\n"
            "  veil party combine --group G --round 1 --in P1 P2 .. --out JOINT   the joint public key (joint.keys)\n"
            "  veil party keygen  --group G --party I --round 2 --in JOINT --out PI   relinearization, rotations\n"
            "  veil party combine --group G --round 2 --in P1 P2 .. --out JOINT   JOINT/eval: the server's keys\n"
            "               then anyone: veil encrypt --keys JOINT ..., the server: veil eval --eval-keys JOINT/eval\n"
            "  veil party decrypt --group G --party I --keys PI --in Y.ct --out DI [--smudging-bits B]   a share\n"
            "  veil party combine --group G --decrypt Y.ct --in D1 D2 .. --out Y.csv [--argmax] [--keys JOINT]\n"
            "               a trained model's weights: --onnx M.onnx and/or --out W.csv (bias first)\n"
            "  veil party switch  --group G --party I --keys PI --in Y.ct --to RECEIVER/eval --out SI\n"
            "  veil party combine --group G --switch Y.ct --to RECEIVER/eval --in S1 S2 .. --out Y2.ct\n"
            "               Y2.ct under the receiver's keys (veil decrypt --keys RECEIVER); smudging: 2^B times the\n"
            "               error bound per share (B: the group's, 20 by default); every share file is a validated\n"
            "               Veil object\n"
            "               combine refuses smudging that may move an output by more than --tolerance E (1e-3;\n"
            "               the message names the --smudging-bits that fit); it prints the bound it met\n"
            "  t-out-of-N (any T of the N parties decrypt): init --parties N --threshold T; round 1 also writes\n"
            "               PI/box.key; then, after round 1, the dealing:\n"
            "  veil party keygen  --group G --party I --round 3 --in P1 .. PN --out PI   PI/deal.toJ for each J\n"
            "  veil party keygen  --group G --party J --round 4 --in P1 .. PN --out PJ   PJ/threshold.key (0600)\n"
            "  veil party decrypt --group G --party J --keys PJ --set J1,J2,.. --in Y.ct --out DJ   (also switch)\n"
            "               the T parties of --set each make a share; combine --decrypt takes those T shares\n"
            "  through a server (veil serve: /v1/groups, docs/net.md; token: VEIL_TOKEN or --token-file F):\n"
            "  veil party push --server URL --to /v1/groups/NAME[/shares|/joint|/updates?party=I|/decrypt?party=I] --in F\n"
            "  veil party pull --server URL --from /v1/groups/NAME/(shares/R/J|joint|sum|decrypt/J) --out F\n"
            "  public-key switching through the server: switch/to (the receiver's eval keys, PUT), switch?party=I\n"
            "               (veil party switch's shares), pull switch (the set under the receiver's keys)\n"
            "\n"
            "encrypted models (a model owner, a data owner, a cloud; docs/marketplace.md):\n"
            "  veil plan    --model M.onnx --input-range LO:HI --out M.plan   (the model owner: public plan)\n"
            "  veil keygen  --plan M.plan --out KEYDIR   (the data owner: keys for a plan, without the model)\n"
            "  veil encrypt-model --model M.onnx --keys KEYDIR/eval --out M.ctm   (the model owner: the weights\n"
            "               encrypted under the data owner's public key; structure, widths, activations public)\n"
            "               then the cloud: veil eval --model M.ctm --eval-keys KEYDIR/eval --in X.ct --out Y.ct\n"
            "               or sent to a veil serve serving M.plan as NAME: --server URL --served NAME\n"
            "\n"
            "encrypted training (linear or logistic regression; the server never sees the data):\n"
            "  veil keygen  --train logistic|linear --features F --iterations K --out KEYDIR\n"
            "               [--degree 3|5|7] [--sigmoid-range R] (the polynomial sigmoid: degree 3 over [-8, 8])\n"
            "               [--flood] keys whose weights can be flooded for handing on (a 2^60 scale)\n"
            "  veil encrypt --keys KEYDIR --in TRAIN.csv --labels-column NAME --out TRAIN.ct\n"
            "  veil train   --eval-keys KEYDIR/eval --in TRAIN.ct [B.ct ..] --iterations K --out MODEL.ct\n"
            "               several sets: the union of several data owners' records under the same (joint)\n"
            "               keys, encrypted with the same --feature-range (decryption refuses other scalings)\n"
            "               [--learning-rate 1] [--l2 0] [--threads T]\n"
            "  mpirun -n R veil train --mpi ...   the records spread over R ranks, the encrypted gradients summed\n"
            "               each iteration: the one-process model's bytes (docs/scale.md)\n"
            "  veil decrypt --keys KEYDIR --in MODEL.ct --onnx MODEL.onnx [--out WEIGHTS.csv] [--no-flood]\n"
            "               a standard ONNX model (ending in Sigmoid for logistic regression), flooded by\n"
            "               default (it is made to be handed on); --no-flood: weights the key holder keeps\n"
            "  veil plan    --train logistic|linear --features F --iterations K   (depth, parameters, sizes)\n"
            "  veil train   --plain --train logistic|linear --in TRAIN.csv --labels-column NAME --iterations K\n"
            "               --onnx MODEL.onnx   the same algorithm in float64 on the plaintext (the reference)\n"
            "\n"
            "differential privacy (docs/privacy.md; zCDP accounting, discrete Gaussian noise):\n"
            "  veil budget  --keys KEYDIR --epsilon E --delta D   the key set's privacy budget, in\n"
            "               KEYDIR/privacy.budget (0 < E <= 100, 1e-100 <= D <= 0.1); changing it keeps what\n"
            "               is spent; veil budget --keys KEYDIR (or veil info) shows the epsilon spent\n"
            "  veil budget  --delta D (--rho R | --sigma S [--sensitivity S] [--releases N])   the epsilon of\n"
            "               rho-zCDP, or of N Gaussian releases of noise S (composed), at delta D\n"
            "  veil eval    ... --dp-epsilon E --dp-delta D [--dp-sensitivity S] [--input-range LO:HI]\n"
            "               discrete Gaussian noise on the encrypted outputs (CKKS, BGV), for one record's outputs\n"
            "               changing by S in L2 (default: 2 B sqrt(outputs), B the outputs' bound of the plan\n"
            "               of the model options); veil decrypt then charges KEYDIR's budget, exit 5 over it\n"
            "  veil serve   ... a model's side file DIR/NAME.json with \"dp_epsilon\", \"dp_delta\" (and\n"
            "               \"dp_sensitivity\"): every answer gets that output noise; veil predict charges the budget\n"
            "  veil encrypt --keys KEYDIR --in TRAIN.csv --labels-column NAME --feature-range LO:HI|RANGES.csv\n"
            "               training data scaled by declared feature ranges (LO:HI for all, or a CSV of two\n"
            "               rows: each feature's LO, then HI); a record outside them is refused\n"
            "  veil train   ... --dp-epsilon E --dp-delta D   DP-GD (logistic and linear regression): noise on the\n"
            "               encrypted gradient at every iteration, the whole training (E, D)-DP for one record\n"
            "               replaced; veil decrypt charges the budget (data encrypted with --feature-range; linear\n"
            "               regression: also --label-range LO:HI, and [--dp-prediction-bound R] (2), the bound on\n"
            "               the scaled prediction |z.v| its sensitivity 2 (R + 1) sqrt(F + 1) assumes)\n"
            "  federated aggregation with distributed noise (docs/privacy.md): each party's update\n"
            "  veil eval    ... --dp-epsilon E --dp-delta D --dp-sensitivity S --dp-parties N   carries 1/N of the\n"
            "               noise's variance; veil party sum --group G --in U1.ct .. UN.ct --out SUM.ct adds the\n"
            "               updates (the server's /v1/groups sum alike); each party's veil party decrypt|switch\n"
            "               charges its own PI/privacy.budget (veil budget --keys PI), exit 5 over it; a sum with\n"
            "               fewer than N shares is refused\n"
            "\n"
            "model options (give the same ones to keygen, plan and eval):\n"
            "  --calibrate X.csv  the inputs' range (each feature's over X.csv, widened by half its span) and\n"
            "                     the range of Sigmoid/Tanh/Relu inside the network (covering its worst case)\n"
            "  --range LO:HI      or give the latter; --degree D  Chebyshev degree of those approximations (15)\n"
            "  --input-range LO:HI  (keygen, plan) the inputs' range, one for every feature; without it or\n"
            "                     --calibrate, the widest [-R, R] the parameters guarantee. The plan bounds every\n"
            "                     value from it (or refuses); encrypt refuses inputs outside it\n"
            "  --force-approximation  keep an approximation erring by more than a tenth of its range\n"
            "  --server-sigmoid   evaluate a final Sigmoid on the server (degree-3 polynomial)\n"
            "other options: --quiet (no progress bar), --force (keygen: replace an existing key set)\n"
            "\n"
            "CSV input: numbers, an optional header row, one sample per row. Output: one row per input row,\n"
            "%.17g, or the class with --argmax: the largest output's index; for a model of one output, 1 when its\n"
            "final Sigmoid is above 0.5, else 0 (refused without one). Files are written atomically (temporary\n"
            "file, rename); a failed command leaves no output and no key folder it made.\n"
            "\n"
            "  --version   print the version and exit;  -h, --help  print this help and exit\n"
            "  veil COMMAND --help   that command's lines of this help\n"
            "\n"
            "environment: VEIL_THREADS=T default thread count; VEIL_NO_AVX2=1 portable kernels;\n"
            "             VEIL_NO_AVX512=1 the AVX2 kernels where the CPU has AVX-512 IFMA;\n"
            "             VEIL_TOKEN=T a server's token for predict and keygen --server;\n"
            "             VEIL_TIMING=1 print each command's time on standard error; OMP_WAIT_POLICY, when\n"
            "             neither it nor GOMP_SPINCOUNT is set, is set to passive (the program starts again)\n"
            "\n"
            "exit codes: 0 success, 1 runtime error (I/O, memory), 2 usage error, 3 bad input (CSV, model,\n"
            "            file format, unsupported operator), 4 mismatch (keys, ciphertexts or model of another set),\n"
            "            5 a release over the key set's privacy budget (nothing was released)\n";

static void usage(FILE *f)
{
    fputs(usage_text, f);
}

/* Whether `line` (up to its newline) starts with prefix and then `word` followed by a space or the line's end. */
static int line_has(const char *line, const char *prefix, const char *word)
{
    size_t p = strlen(prefix), w = strlen(word);
    return strncmp(line, prefix, p) == 0 && strncmp(line + p, word, w) == 0 &&
           (line[p + w] == ' ' || line[p + w] == '\n');
}

/* Prints the line that starts at *at and moves *at to the next one. */
static void put_line(const char **at, FILE *f)
{
    const char *end = strchr(*at, '\n');
    fwrite(*at, 1, (size_t)(end - *at) + 1, f);
    *at = end + 1;
}

/* A command: its name, the function that runs it (given the arguments after the name), whether its help shows
 * the model options, and whether VEIL_TIMING times it. */
typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    int model_options;
    int timed;
} command;

static const command commands[] = {
    {"keygen", cli_cmd_keygen, 1, 1},   {"encrypt", cli_cmd_encrypt, 1, 1}, {"eval", cli_cmd_eval, 1, 1},
    {"decrypt", cli_cmd_decrypt, 0, 1}, {"plain", cli_cmd_plain, 1, 1},     {"plan", cli_cmd_plan, 1, 1},
    {"train", cli_cmd_train, 0, 1},     {"serve", cli_cmd_serve, 0, 1},     {"predict", cli_cmd_predict, 0, 1},
    {"info", cli_cmd_info, 0, 0},       {"token", cli_cmd_token, 0, 0},     {"party", cli_cmd_party, 1, 1},
    {"budget", cli_cmd_budget, 0, 0},
    {"encrypt-model", cli_cmd_encrypt_model, 1, 1},
};

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

/*
 * veil COMMAND --help: the lines of the whole help that show COMMAND (each under its section's heading), the
 * model options for the commands that take them, and the exit codes. 0 when no line shows COMMAND.
 */
static int command_help(const char *cmd, FILE *f)
{
    const char *heading = NULL, *at = usage_text;
    int shown = 0, heading_shown = 0;
    while (*at) {
        const char *end = strchr(at, '\n');
        if (*at != ' ' && end[-1] == ':') { /* a section's heading */
            heading = at;
            heading_shown = 0;
        }
        if (!line_has(at, "  veil ", cmd)) {
            at = end + 1;
            continue;
        }
        if (!shown) fprintf(f, "usage of veil %s:\n", cmd);
        if (heading && !heading_shown) {
            fputc('\n', f);
            const char *h = heading;
            put_line(&h, f);
        }
        heading_shown = shown = 1;
        put_line(&at, f);
        while (strncmp(at, "    ", 4) == 0) put_line(&at, f); /* its continuation lines */
    }
    if (!shown) return 0;
    const char *m = strstr(usage_text, "\nmodel options");
    const command *c = find_command(cmd);
    if (m && c && c->model_options) {
        fputc('\n', f);
        for (m++; *m && *m != '\n';) put_line(&m, f); /* the section, up to its blank line */
    }
    const char *codes = strstr(usage_text, "\nexit codes:");
    fputc('\n', f);
    if (codes) fputs(codes + 1, f);
    fprintf(f, "every command: veil --help\n");
    return 1;
}

/* Runs a command, timed on standard error when VEIL_TIMING is set. */
static int run_command(const command *c, int argc, char **argv)
{
    const double t0 = cli_seconds();
    const int rc = c->run(argc, argv);
    if (c->timed && getenv("VEIL_TIMING")) fprintf(stderr, "veil %s: %.3f s\n", c->name, cli_seconds() - t0);
    return rc;
}

int main(int argc, char **argv)
{
    veil_omp_passive_wait(argv); /* OMP_WAIT_POLICY=passive unless set: may execute the program again */
#ifdef __GLIBC__
    /* Deep computations (encrypted training at N = 2^16) allocate and free blocks of many megabytes again and
     * again: keep freed memory in the process (glibc would map each block above its threshold afresh and
     * fault its pages in again, a third of the time at that size). The program's choice, not the library's. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
    /* veil COMMAND --help (anywhere after the command), and veil --help COMMAND */
    for (int i = 2; i < argc && argv[1][0] != '-'; i++) {
        if (strcmp(argv[i], "--help") != 0 && strcmp(argv[i], "-h") != 0) continue;
        if (!command_help(argv[1], stdout)) break; /* not a command: the message below */
        return cli_finish_output();
    }
    if (argc == 3 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) && command_help(argv[2], stdout))
        return cli_finish_output();
    const command *c = argc >= 2 ? find_command(argv[1]) : NULL;
    if (c) return run_command(c, argc - 2, argv + 2);
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("veil %s\n", veil_version());
        return cli_finish_output();
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return cli_finish_output();
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
