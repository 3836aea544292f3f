/*
 * The batch work of `veil` over the ranks of an MPI job (docs/scale.md, "Batch work over MPI").
 *
 * veil eval --mpi: a ciphertext set's batches spread over the ranks. Every rank loads the keys and the model;
 * rank 0 alone reads the input file and cuts it into the ranks' shares without loading it
 * (veil_ciphertexts_split_serialized: its digest and metadata checked once; rank r of R gets batches
 * r B / R .. (r + 1) B / R - 1) and sends each its share; each rank loads its share (every ciphertext
 * validated, as a file's), evaluates it and sends its
 * serialized outputs back to rank 0, which loads each, joins them in rank order (veil_ciphertexts_append) and
 * writes the file: the same bytes as one process, since every batch is evaluated alone. A set that is not
 * split (the latency packing, BGV, no batch) is evaluated by rank 0 alone.
 *
 * veil train --mpi: every rank loads the keys and the data sets and trains with a veil_train_split (ml/train.h):
 * it computes the record terms of its share of the ciphertexts of records, and at every iteration the ranks'
 * partial gradient sums (serialized ciphertexts) are exchanged (each rank broadcasts its own) and added by
 * every rank: rank 0 writes the model, the same bytes as one process.
 *
 * A rank that fails ends the job (MPI_Abort) after its message; a rank killed outright ends it too (mpirun).
 */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "veil_cli.h"

#define CHUNK ((size_t)1 << 30) /* bytes per message: MPI counts are ints */
#define TAG_LEN 1
#define TAG_DATA 2

/*
 * Waits for a nonblocking operation without spinning: Open MPI's blocking calls poll a core at 100% while they
 * wait, which on a machine with as many ranks as cores (or fewer cores) takes it from the ranks at work. Used
 * for the waits that may be long (a rank's first word, its turn in the exchange); the bytes that follow come at
 * once and use the blocking calls. Sleeps from 50 us up to 2 ms between tests.
 */
static int wait_idle(MPI_Request *rq)
{
    long ns = 50000;
    for (;;) {
        int done = 0;
        if (MPI_Test(rq, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return -1;
        if (done) return 0;
        struct timespec t = {0, ns};
        nanosleep(&t, NULL);
        if (ns < 2000000) ns *= 2;
    }
}

/* MPI_Barrier, waiting idle (the ranks' last meeting, while rank 0 writes the output) */
static void barrier_idle(void)
{
    MPI_Request rq;
    if (MPI_Ibarrier(MPI_COMM_WORLD, &rq) == MPI_SUCCESS) wait_idle(&rq);
}

/* Sends serialized bytes to rank `to`: their length, then the bytes. */
static int send_bytes(const veil_buffer *b, int to)
{
    uint64_t len = b->len;
    if (MPI_Send(&len, 1, MPI_UINT64_T, to, TAG_LEN, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    for (size_t off = 0; off < b->len; off += CHUNK) {
        const size_t n = b->len - off < CHUNK ? b->len - off : CHUNK;
        if (MPI_Send(b->data + off, (int)n, MPI_BYTE, to, TAG_DATA, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    }
    return 0;
}

static int recv_bytes(int from, veil_buffer *b)
{
    uint64_t len = 0;
    MPI_Request rq;
    if (MPI_Irecv(&len, 1, MPI_UINT64_T, from, TAG_LEN, MPI_COMM_WORLD, &rq) != MPI_SUCCESS || wait_idle(&rq)) return -1;
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

/*
 * Rank 0: reads the input file and cuts it into the ranks' shares without loading it
 * (veil_ciphertexts_split_serialized: the set's digest and metadata checked once), tells the ranks whether it
 * splits (a broadcast of 0 or 1) and sends each rank r > 0 its share (empty when it has no batch); *mine: its
 * own share, loaded, or the whole set when it does not split (the latency packing, BGV).
 */
static int deal_input(cli_options *o, const veil_eval_keys *ek, int ranks, veil_ciphertexts **mine, int *split)
{
    veil_buffer file = {0}, *parts = calloc((size_t)ranks, sizeof *parts);
    veil_error err = {0};
    int rc = EXIT_OK;
    if (!parts) CLI_FAIL(EXIT_RUNTIME, "--mpi: out of memory");
    CLI_CHECK(cli_read_file(o->in, &file));
    const veil_status st = veil_ciphertexts_split_serialized(parts, (size_t)ranks, ek, file.data, file.len, &err);
    *split = st == VEIL_OK;
    if (st != VEIL_OK && st != VEIL_ERR_ARGUMENT) CLI_CHECK(cli_status(st, &err, o->in)); /* not a set of these keys */
    if (!*split) {
        if (!o->quiet) fprintf(stderr, "veil: --mpi: the set is not split (%s): rank 0 evaluates it all\n", err.detail);
        CLI_CHECK(cli_status(veil_ciphertexts_load(mine, NULL, ek, file.data, file.len, &err), &err, o->in));
    }
    veil_buffer_free(&file);
    MPI_Request rq;
    if (MPI_Ibcast(split, 1, MPI_INT, 0, MPI_COMM_WORLD, &rq) != MPI_SUCCESS || wait_idle(&rq))
        CLI_FAIL(EXIT_RUNTIME, "--mpi: the ranks could not be told whether the set splits");
    if (!*split) goto done;
    for (int r = 1; r < ranks; r++) {
        if (send_bytes(&parts[r], r)) CLI_FAIL(EXIT_RUNTIME, "--mpi: the batches of rank %d could not be sent", r);
        veil_buffer_free(&parts[r]);
    }
    if (parts[0].len) /* every byte of its ciphertexts validated, as a file's */
        CLI_CHECK(cli_status(veil_ciphertexts_load(mine, NULL, ek, parts[0].data, parts[0].len, &err), &err, o->in));
done:
    veil_buffer_free(&file);
    for (int r = 0; parts && r < ranks; r++) veil_buffer_free(&parts[r]);
    free(parts);
    return rc;
}

/* Ranks 1 .. R-1: whether the set splits, then their share from rank 0 (*mine NULL: no batch, or no split). */
static int receive_input(const veil_eval_keys *ek, int rank, veil_ciphertexts **mine, int *split)
{
    veil_buffer b = {0};
    veil_error err = {0};
    int rc = EXIT_OK;
    MPI_Request rq;
    if (MPI_Ibcast(split, 1, MPI_INT, 0, MPI_COMM_WORLD, &rq) != MPI_SUCCESS || wait_idle(&rq))
        CLI_FAIL(EXIT_RUNTIME, "--mpi: rank %d: no word from rank 0", rank);
    if (!*split) goto done;
    if (recv_bytes(0, &b)) CLI_FAIL(EXIT_RUNTIME, "--mpi: rank %d: its batches did not arrive", rank);
    if (b.len) /* every byte validated again, as a file's */
        CLI_CHECK(cli_status(veil_ciphertexts_load(mine, NULL, ek, b.data, b.len, &err), &err, "--mpi: its batches"));
done:
    veil_buffer_free(&b);
    return rc;
}

/* One rank's part of the job; 0 batches for this rank: nothing evaluated, an empty message sent. */
static int eval_share(cli_options *o, const char *path, int rank, int ranks)
{
    veil_model *m = NULL;
    double *calib = NULL;
    veil_eval_keys *ek = NULL;
    veil_ciphertexts *mine = NULL, *out = NULL;
    veil_evaluator *ev = NULL;
    veil_buffer b = {0};
    veil_error err = {0};
    int rc = EXIT_OK, split = 0;
    CLI_CHECK(cli_load_eval_keys(path, &ek));
    CLI_CHECK(cli_load_eval_model(&m, o, ek, path, &calib));
    CLI_CHECK(cli_status(veil_evaluator_new(&ev, m, ek, o->threads ? o->threads : 1, &err), &err, NULL));
    if (rank == 0) CLI_CHECK(deal_input(o, ek, ranks, &mine, &split));
    else CLI_CHECK(receive_input(ek, rank, &mine, &split));
    if (rank != 0 && !split) goto done;
    if (mine && (!split || veil_ciphertexts_batches_of(mine) > 0)) { /* not split: rank 0 evaluates it whole */
        cli_bar bar;
        cli_bar_init(&bar, "evaluating", o->quiet || rank != 0);
        CLI_CHECK(cli_status(veil_evaluator_run(ev, &out, mine, cli_progress, &bar, &err), &err, NULL));
    }
    if (rank != 0) {
        if (out) CLI_CHECK(cli_status(veil_ciphertexts_save(&b, out, &err), &err, "--mpi"));
        if (send_bytes(&b, 0)) CLI_FAIL(EXIT_RUNTIME, "--mpi: rank %d could not send its outputs", rank);
        goto done;
    }
    if (split) CLI_CHECK(gather_outputs(ek, ranks, &out));
    if (!out) CLI_FAIL(EXIT_RUNTIME, "--mpi: no rank had outputs");
    CLI_CHECK(cli_save_ciphertexts(o->out, out));
done:
    veil_buffer_free(&b);
    veil_evaluator_free(ev);
    veil_ciphertexts_free(mine);
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
    barrier_idle();
    MPI_Finalize();
    return rc;
}

/*
 * veil_train_split's exchange over MPI: each rank in turn broadcasts its part (its length, then its bytes in
 * messages of at most CHUNK); every other rank keeps it in all[r].
 */
static int exchange_parts(void *arg, const veil_buffer *mine, veil_buffer *all)
{
    const int *who = arg; /* rank, ranks */
    for (int r = 0; r < who[1]; r++) {
        uint64_t len = r == who[0] ? mine->len : 0;
        MPI_Request rq; /* the ranks meet here once each is through its share: the wait may be long */
        if (MPI_Ibcast(&len, 1, MPI_UINT64_T, r, MPI_COMM_WORLD, &rq) != MPI_SUCCESS || wait_idle(&rq)) return -1;
        if (len > SIZE_MAX - 1) return -1;
        uint8_t *data = mine->data;
        if (r != who[0]) {
            if (!len) continue;
            if (!(data = malloc((size_t)len))) return -1;
            all[r].data = data;
            all[r].len = (size_t)len;
        }
        for (size_t off = 0; off < (size_t)len; off += CHUNK) {
            const size_t n = (size_t)len - off < CHUNK ? (size_t)len - off : CHUNK;
            if (MPI_Bcast(data + off, (int)n, MPI_BYTE, r, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
        }
    }
    return 0;
}

int cli_mpi_train(cli_options *o, const char *eval_keys_path, char **ins, size_t n_in)
{
    int who[2] = {0, 1}; /* rank, ranks */
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return cli_error(EXIT_RUNTIME, "--mpi: MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &who[0]);
    MPI_Comm_size(MPI_COMM_WORLD, &who[1]);
    const veil_train_split split = {.part = (size_t)who[0], .parts = (size_t)who[1], .exchange = exchange_parts,
                                    .arg = who};
    const int rc = cli_train_sets(o, eval_keys_path, ins, n_in, &split);
    if (rc != EXIT_OK && who[1] > 1) {
        fprintf(stderr, "veil: --mpi: rank %d of %d failed: the job stops\n", who[0], who[1]);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    barrier_idle();
    MPI_Finalize();
    return rc;
}
