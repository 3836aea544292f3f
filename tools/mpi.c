/*
 * veil eval --mpi: a ciphertext set's batches spread over the ranks of an MPI job (docs/scale.md, "Batch work
 * over MPI"). Every rank loads the keys, the model and the whole input file, takes its share of the batches
 * (veil_ciphertexts_take_batches: rank r of R, batches r B / R .. (r + 1) B / R - 1) and evaluates them; ranks
 * 1 .. R-1 send their serialized outputs to rank 0, which loads each (validated as any file), joins them in
 * rank order (veil_ciphertexts_append) and writes the file: the same bytes as one process, since every batch
 * is evaluated alone. A set that is not split (the latency packing, BGV, no batch) is evaluated by rank 0
 * alone. A rank that fails ends the job (MPI_Abort) after its message.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "veil_cli.h"

#define CHUNK ((size_t)1 << 30) /* bytes per message: MPI counts are ints */
#define TAG_LEN 1
#define TAG_DATA 2

/* Sends a serialized set to rank 0: its length, then its bytes. */
static int send_bytes(const veil_buffer *b)
{
    uint64_t len = b->len;
    if (MPI_Send(&len, 1, MPI_UINT64_T, 0, TAG_LEN, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    for (size_t off = 0; off < b->len; off += CHUNK) {
        const size_t n = b->len - off < CHUNK ? b->len - off : CHUNK;
        if (MPI_Send(b->data + off, (int)n, MPI_BYTE, 0, TAG_DATA, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    }
    return 0;
}

static int recv_bytes(int from, veil_buffer *b)
{
    uint64_t len = 0;
    if (MPI_Recv(&len, 1, MPI_UINT64_T, from, TAG_LEN, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) return -1;
    if (len > SIZE_MAX - 1) return -1;
    b->data = malloc(len ? (size_t)len : 1);
    if (!b->data) return -1;
    b->len = (size_t)len;
    for (size_t off = 0; off < b->len; off += CHUNK) {
        const size_t n = b->len - off < CHUNK ? b->len - off : CHUNK;
        if (MPI_Recv(b->data + off, (int)n, MPI_BYTE, from, TAG_DATA, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -1;
    }
    return 0;
}

/* Rank 0: its own outputs (NULL when it had no batch), then each other rank's, in rank order. */
static int gather_outputs(const veil_eval_keys *ek, int ranks, veil_ciphertexts **acc)
{
    veil_error err = {0};
    int rc = EXIT_OK;
    for (int r = 1; r < ranks; r++) {
        veil_buffer b = {0};
        veil_ciphertexts *part = NULL;
        if (recv_bytes(r, &b)) {
            free(b.data);
            return cli_error(EXIT_RUNTIME, "--mpi: the outputs of rank %d did not arrive", r);
        }
        if (b.len) rc = cli_status(veil_ciphertexts_load(&part, NULL, ek, b.data, b.len, &err), &err, "--mpi");
        free(b.data);
        if (rc != EXIT_OK) return rc;
        if (!part) continue; /* a rank without a batch */
        if (!*acc) {
            *acc = part;
            continue;
        }
        rc = cli_status(veil_ciphertexts_append(*acc, part, &err), &err, "--mpi");
        if (rc != EXIT_OK) return rc;
    }
    return EXIT_OK;
}

/* One rank's part of the job; 0 batches for this rank: nothing evaluated, an empty message sent. */
static int eval_share(cli_options *o, const char *path, int rank, int ranks)
{
    veil_model *m = NULL;
    double *calib = NULL;
    veil_eval_keys *ek = NULL;
    veil_ciphertexts *in = NULL, *mine = NULL, *out = NULL, *probe = NULL;
    veil_evaluator *ev = NULL;
    veil_buffer b = {0};
    veil_error err = {0};
    int rc = EXIT_OK;
    CLI_CHECK(cli_load_eval_keys(path, &ek));
    CLI_CHECK(cli_load_eval_model(&m, o, ek, path, &calib));
    CLI_CHECK(cli_status(veil_evaluator_new(&ev, m, ek, o->threads ? o->threads : 1, &err), &err, NULL));
    CLI_CHECK(cli_load_ciphertexts(o->in, NULL, ek, &in));
    const size_t batches = veil_ciphertexts_batches_of(in);
    /* taking no batch tells whether the set splits (every rank reads the same file: the same answer) */
    const int split = batches > 0 && veil_ciphertexts_take_batches(&probe, in, 0, 0, &err) == VEIL_OK;
    if (!split) {
        if (rank == 0 && !o->quiet)
            fprintf(stderr, "veil: --mpi: the set is not split (%s): rank 0 evaluates it all\n",
                    batches ? err.detail : "no batch");
        if (rank != 0) goto done;
        mine = in;
        in = NULL;
    } else {
        const size_t first = (size_t)rank * batches / (size_t)ranks, end = (size_t)(rank + 1) * batches / (size_t)ranks;
        CLI_CHECK(cli_status(veil_ciphertexts_take_batches(&mine, in, first, end - first, &err), &err, "--mpi"));
    }
    if (veil_ciphertexts_batches_of(mine) > 0) {
        cli_bar bar;
        cli_bar_init(&bar, "evaluating", o->quiet || rank != 0);
        CLI_CHECK(cli_status(veil_evaluator_run(ev, &out, mine, cli_progress, &bar, &err), &err, NULL));
    }
    if (rank != 0) {
        if (out) CLI_CHECK(cli_status(veil_ciphertexts_save(&b, out, &err), &err, "--mpi"));
        if (send_bytes(&b)) CLI_FAIL(EXIT_RUNTIME, "--mpi: rank %d could not send its outputs", rank);
        goto done;
    }
    if (split) CLI_CHECK(gather_outputs(ek, ranks, &out));
    if (!out) CLI_FAIL(EXIT_RUNTIME, "--mpi: no rank had outputs");
    CLI_CHECK(cli_save_ciphertexts(o->out, out));
done:
    veil_buffer_free(&b);
    veil_evaluator_free(ev);
    veil_ciphertexts_free(probe);
    veil_ciphertexts_free(mine);
    veil_ciphertexts_free(in);
    veil_ciphertexts_free(out);
    veil_eval_keys_free(ek);
    veil_model_free(m);
    free(calib);
    return rc;
}

int cli_mpi_eval(cli_options *o, const char *eval_keys_path)
{
    int rank = 0, ranks = 1;
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return cli_error(EXIT_RUNTIME, "--mpi: MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    const int rc = eval_share(o, eval_keys_path, rank, ranks);
    if (rc != EXIT_OK && ranks > 1) {
        fprintf(stderr, "veil: --mpi: rank %d of %d failed: the job stops\n", rank, ranks);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    MPI_Finalize();
    return rc;
}
