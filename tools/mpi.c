/*
 * The batch work of `veil` over the ranks of an MPI job (docs/scale.md, "Batch work over MPI").
 *
 * veil eval --mpi: a ciphertext set's batches spread over the ranks. Every rank loads the keys and the model.
 * On one machine (every rank in one shared-memory communicator, each finding the file rank 0 opened) every rank
 * maps the input file and takes chunks of batches from an atomic counter in a shared window, loading each in
 * place (veil_ciphertexts_load_batches), while rank 0 also checks the whole set's digest; each chunk's outputs
 * are serialized as soon as evaluated; rank 0 gathers them (validating the others'), joins them in order
 * without loading them again (veil_ciphertexts_join_serialized) and writes the file (eval_mapped).
 * Otherwise (other machines, or VEIL_MPI_DEAL=1) rank 0 alone reads the input file and cuts it into the
 * ranks' shares without loading it
 * (veil_ciphertexts_split_serialized: its digest and metadata checked once; rank r of R gets batches
 * r B / R .. (r + 1) B / R - 1) and sends each its share; each rank loads its share (every ciphertext
 * validated, as a file's), evaluates it and sends its
 * serialized outputs back to rank 0, which loads each, joins them in rank order (veil_ciphertexts_append) and
 * writes the file: the same bytes as one process, since every batch is evaluated alone. A set that is not
 * split (the latency packing, BGV, no batch) is evaluated by rank 0 alone.
 *
 * veil train --mpi: every rank loads the keys; each data set's bytes are mapped by every rank on one machine
 * (map_input, as for eval) or read by rank 0 and broadcast (deal_train_input); each rank trains with a
 * veil_train_split (veil/train.h) through veil_train_run_serialized, which loads only its share of the
 * ciphertexts of records (rank 0 alone checks each set's digest): it computes the record terms of its share,
 * and at every iteration the ranks'
 * partial gradient sums (serialized ciphertexts) are exchanged (each rank broadcasts its own) and added by
 * every rank: rank 0 writes the model, the same bytes as one process.
 *
 * A mapped input is checked on every rank before anything computed from it leaves the rank: the same file,
 * unchanged (input_unchanged), and on rank 0 the same objects in place (input_intact); a file cut while mapped
 * is an error, not SIGBUS (on_sigbus). Rank 0 writes no eval output whose rows are not the input's (check_rows).
 *
 * A rank that fails ends the job (MPI_Abort) after its message; a rank killed outright ends it too (mpirun).
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <fcntl.h>
#include <mpi.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "veil_cli.h"

#define CHUNK ((size_t)1 << 30) /* bytes per message: MPI counts are ints */
#define TAG_LEN 1
#define TAG_DATA 2
#define TAG_GO 3
#define TAG_CHUNK 4

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

/*
 * Sends serialized bytes to rank `to`: their length, then, once the receiver says it is ready (a word it sends
 * just before its blocking receive), the bytes. Without that word a large send waits for its receiver inside
 * MPI_Send, polling a core at 100% (Open MPI's rendezvous), for as long as the receiver is at other work: a
 * rank through with its share sent its outputs while rank 0 still evaluated, and burned a core rank 0 needed.
 */
static int send_bytes(const veil_buffer *b, int to)
{
    uint64_t len = b->len, go = 0;
    MPI_Request rq;
    if (MPI_Send(&len, 1, MPI_UINT64_T, to, TAG_LEN, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    if (!len) return 0;
    if (MPI_Irecv(&go, 1, MPI_UINT64_T, to, TAG_GO, MPI_COMM_WORLD, &rq) != MPI_SUCCESS || wait_idle(&rq)) return -1;
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
    const uint64_t go = 1; /* ready: the bytes are received at once (send_bytes) */
    if (len && MPI_Send(&go, 1, MPI_UINT64_T, from, TAG_GO, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    for (size_t off = 0; off < b->len; off += CHUNK) {
        const size_t n = b->len - off < CHUNK ? b->len - off : CHUNK;
        if (MPI_Recv(b->data + off, (int)n, MPI_BYTE, from, TAG_DATA, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -1;
    }
    return 0;
}

/*
 * A fault for the tests only (tests/test_mpi_input.sh): VEIL_MPI_TEST_FAULT=drop-batch makes ranks 1 .. R-1 drop
 * the first batch of their first outputs of at least 2 batches (a valid set, short of rows: what a faulty rank,
 * or one running another build, could send) so that the test sees rank 0 refuse the job (check_rows). It says
 * so on stderr; nothing else reads the variable. *dropped: 1 once done (then never again).
 */
static int test_fault_drop_batch(veil_ciphertexts **y, int rank, int *dropped)
{
    const char *fault = getenv("VEIL_MPI_TEST_FAULT");
    const size_t b = *y ? veil_ciphertexts_batches_of(*y) : 0;
    if (rank == 0 || *dropped || !fault || strcmp(fault, "drop-batch") != 0 || b < 2) return EXIT_OK;
    veil_ciphertexts *rest = NULL;
    veil_error err = {0};
    const int rc = cli_status(veil_ciphertexts_take_batches(&rest, *y, 1, b - 1, &err), &err, "--mpi");
    veil_ciphertexts_free(*y);
    *y = rest;
    *dropped = 1;
    fprintf(stderr, "veil: --mpi: VEIL_MPI_TEST_FAULT=drop-batch: rank %d drops a batch of its outputs (a test)\n", rank);
    return rc;
}

/* Rank 0: the output about to be written has the input's rows (a rank that lost or added some: refused). */
static int check_rows(uint64_t out_rows, uint64_t in_rows)
{
    if (out_rows == in_rows) return EXIT_OK;
    return cli_error(EXIT_RUNTIME, "--mpi: the ranks' outputs hold %llu rows, the input %llu: nothing written",
                     (unsigned long long)out_rows, (unsigned long long)in_rows);
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
 * own share, loaded, or the whole set when it does not split (the latency packing, BGV); *rows: the set's rows.
 */
static int deal_input(cli_options *o, const veil_eval_keys *ek, int ranks, veil_ciphertexts **mine, int *split,
                      uint64_t *rows)
{
    veil_buffer file = {0}, *parts = calloc((size_t)ranks, sizeof *parts);
    veil_error err = {0};
    int rc = EXIT_OK;
    if (!parts) CLI_FAIL(EXIT_RUNTIME, "--mpi: out of memory");
    CLI_CHECK(cli_read_file(o->in, &file));
    CLI_CHECK(cli_status(veil_ciphertexts_rows_serialized(rows, ek, file.data, file.len, 0, &err), &err, o->in));
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

/* ---- one machine: every rank maps the input and takes chunks of batches from a shared counter ---------- */

/*
 * A mapped input shrunk under the ranks (SIGBUS). A file truncated while mapped makes every read of its pages past
 * the new end raise SIGBUS in the thread that reads, in the middle of library code (the loaders' OpenMP threads
 * included), which killed the rank (and dumped its core). Ways considered:
 * - sigsetjmp/siglongjmp around the reads: the jump would leave library functions halfway, their allocations
 *   and locks held, and a fault in an OpenMP thread cannot jump to the main thread's jmp_buf;
 * - pread into private memory instead of the mapping: every rank of a training job takes its share from
 *   whole sets (veil_train_run_serialized reads the set's framing and rank 0 its digest over every byte), so
 *   each rank would hold a copy of each set, the cost the mapping was made to save (docs/performance.md, "MPI,
 *   third round": the page cache shared, nothing copied or sent);
 * - chosen: a handler that, for a fault inside a registered mapping, maps zero pages (read-only, anonymous,
 *   MAP_FIXED) over the mapping from the faulting page to its end and marks that input changed. The access
 *   that faulted is run again and reads zeros; so do later ones. Zeros are bytes like any other to the loaders,
 *   which validate every byte (framing, digests): they refuse them, or at worst compute on them, and nothing
 *   computed leaves a rank unless input_unchanged, which sees the mark, says the input is unchanged. It works
 *   the same in any thread, holds nothing, and costs nothing until a fault. A SIGBUS at any other address is
 *   not ours: the previous action is put back and the access, run again, raises it as before.
 * The handler is installed while at least one input is mapped and the previous action restored after (a
 * process-wide setting: tools/ only, never the library). mmap and sigaction in a handler: both plain system
 * calls on Linux (sigaction is async-signal-safe by POSIX; mmap is not listed, but glibc's is the bare call).
 */
#define MAPPED_MAX (VEIL_TRAIN_MAX_SETS + 1)

typedef struct mapped_region {
    atomic_uintptr_t lo, hi; /* [lo, hi): the mapping, page-rounded; lo 0: a free slot */
    atomic_int shrunk;       /* the handler put zero pages in it */
} mapped_region;

static mapped_region mapped_regions[MAPPED_MAX];
static uintptr_t mapped_page; /* the page size, read before the handler is installed */
static struct sigaction sigbus_previous;
static int sigbus_users; /* mappings registered (the main thread's only, before and after the work) */

static void on_sigbus(int sig, siginfo_t *si, void *context)
{
    (void)sig;
    (void)context;
    const uintptr_t at = (uintptr_t)si->si_addr, page = mapped_page;
    for (size_t i = 0; i < MAPPED_MAX; i++) {
        const uintptr_t lo = atomic_load(&mapped_regions[i].lo), hi = atomic_load(&mapped_regions[i].hi);
        if (!lo || at < lo || at >= hi) continue;
        const uintptr_t from = at & ~(page - 1);
        if (mmap((void *)from, hi - from, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) break;
        atomic_store(&mapped_regions[i].shrunk, 1);
        return;
    }
    sigaction(SIGBUS, &sigbus_previous, NULL); /* not ours (or no zero pages): as before this handler */
}

/* Registers [data, data + len) for on_sigbus; the slot, or -1 (then the input is not mapped). */
static int watch_mapping(const void *data, size_t len)
{
    const long size = sysconf(_SC_PAGESIZE);
    const uintptr_t page = size > 0 ? (uintptr_t)size : 4096, lo = (uintptr_t)data;
    mapped_page = page;
    for (int i = 0; i < MAPPED_MAX; i++) {
        if (atomic_load(&mapped_regions[i].lo)) continue;
        if (!sigbus_users) {
            struct sigaction sa;
            memset(&sa, 0, sizeof sa);
            sa.sa_sigaction = on_sigbus;
            sa.sa_flags = SA_SIGINFO;
            sigemptyset(&sa.sa_mask);
            if (sigaction(SIGBUS, &sa, &sigbus_previous) != 0) return -1;
        }
        sigbus_users++;
        atomic_store(&mapped_regions[i].shrunk, 0);
        atomic_store(&mapped_regions[i].hi, lo + ((len + page - 1) & ~(page - 1)));
        atomic_store(&mapped_regions[i].lo, lo);
        return i;
    }
    return -1;
}

static void unwatch_mapping(int slot)
{
    if (slot < 0) return;
    atomic_store(&mapped_regions[slot].lo, 0);
    atomic_store(&mapped_regions[slot].hi, 0);
    if (--sigbus_users == 0) sigaction(SIGBUS, &sigbus_previous, NULL);
}

/* The input file as a rank found it: the same file, unchanged, has the same device, inode, size and times. */
typedef struct file_id {
    uint64_t dev, ino, size, mtime_s, mtime_ns, ctime_s, ctime_ns;
} file_id;

typedef struct mapped_input {
    int fd;
    const uint8_t *data;
    size_t len;
    int slot;     /* its mapped_regions slot (-1: none) */
    int reported; /* input_changed said it */
    int printed;  /* rank 0: print holds the set's fingerprint, taken before any rank read the mapping */
    uint8_t print[32];
    file_id id; /* rank 0's */
} mapped_input;

static file_id id_of_fd(int fd)
{
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) return (file_id){0};
    return (file_id){(uint64_t)st.st_dev, (uint64_t)st.st_ino, (uint64_t)st.st_size, (uint64_t)st.st_mtim.tv_sec,
                     (uint64_t)st.st_mtim.tv_nsec, (uint64_t)st.st_ctim.tv_sec, (uint64_t)st.st_ctim.tv_nsec};
}

/*
 * Rank 0's view of the file, taken once the clock has moved past its change time. A file system stamps a
 * change with a coarse clock (a tick, a few ms; whole seconds on some, e.g. 2 s on FAT): a change made in the
 * same tick as the last one before the job would leave the times as they were. Once the clock is past the
 * recorded change time (by 2 s more for a time of whole seconds), any later change is stamped with another
 * time. Waits at most ~2.5 s (a file changed just before the job, or a server's clock ahead of ours).
 */
static file_id settled_id_of_fd(int fd)
{
    file_id id = id_of_fd(fd);
    for (int tries = 0; id.size && tries < 250; tries++) {
        struct timespec now;
        if (clock_gettime(CLOCK_REALTIME_COARSE, &now) != 0) break;
        const uint64_t coarse = id.ctime_ns == 0 ? 2 : 0; /* whole seconds: maybe a file system of seconds */
        if ((uint64_t)now.tv_sec > id.ctime_s + coarse ||
            ((uint64_t)now.tv_sec == id.ctime_s + coarse && (uint64_t)now.tv_nsec > id.ctime_ns))
            break;
        nanosleep(&(struct timespec){0, 10000000}, NULL);
        id = id_of_fd(fd);
    }
    return id;
}

static void unmap_input(mapped_input *in)
{
    unwatch_mapping(in->slot); /* before the addresses may be given to another mapping */
    if (in->data) munmap((void *)in->data, in->len);
    if (in->fd >= 0) close(in->fd);
    in->data = NULL;
    in->fd = -1;
    in->slot = -1;
}

/*
 * Whether the input is still the file rank 0 opened, checked on every rank after its last read of the mapping
 * and before anything it computed leaves it. What it guarantees: the file open on this rank (fstat of the open
 * descriptor, not of the path) is the one rank 0 found (the same device and inode), of the same size, with the
 * same modification and change times, and no page of it was found missing (on_sigbus). Every change made
 * through the file system (write, truncate; a rename over it does not even reach the open file) sets the
 * change time, and rank 0 took its view once the clock had moved past it (settled_id_of_fd): such a change
 * made at any time between rank 0's view and this check is seen. Not seen by the times: a write through
 * another process's shared writable mapping into a page it had already written (Linux stamps a mapped page's
 * first write after it was last saved only), a clock set back to the very tick. For the bytes, see
 * input_intact.
 */
static int input_unchanged(const mapped_input *in)
{
    const file_id now = id_of_fd(in->fd);
    if (in->slot >= 0 && atomic_load(&mapped_regions[in->slot].shrunk)) return 0;
    return memcmp(&now, &in->id, sizeof now) == 0;
}

/*
 * Rank 0, once every rank has read the mapping: input_unchanged, and the set's fingerprint the one rank 0 took
 * before any rank read it (veil_ciphertexts_fingerprint_serialized: the framing, and each object's header and
 * own digest, in place): a walk over the headers, not a second pass of the set's digest over every byte, which
 * rank 0 alone would make while the others wait (on the build machine under load: 0.15 s for a 74 MB set
 * against 0.3 ms for its fingerprint; ~1.2 s for the 591 MB of the digits job of docs/performance.md, "MPI,
 * third round", whose busiest rank works ~3.5 s). 1: intact. With the checks the loaders make, what
 * it guarantees for the bytes, whatever the way they were changed: each ciphertext a rank loaded had its own
 * digest right when it was loaded, and that digest is the one at its place in the file before any rank read
 * and after every rank has, which rank 0 checked (the set's digest over every byte) once while the ranks
 * worked. Not seen: an object replaced, read by a rank, and put back before the end (a change undone); a
 * change of an object after the last rank that reads it has loaded it (harmless: it was loaded before).
 */
static int input_intact(const mapped_input *in)
{
    uint8_t now[32];
    veil_error err = {0};
    if (!input_unchanged(in)) return 0;
    if (!in->printed) return 1;
    return veil_ciphertexts_fingerprint_serialized(now, in->data, in->len, &err) == VEIL_OK &&
           memcmp(now, in->print, sizeof now) == 0;
}

/* The message of a rank that found its mapped input changed (before its outputs could leave it), once. */
static int input_changed(mapped_input *in, const char *path, int rank)
{
    if (in->reported) return EXIT_INPUT;
    in->reported = 1;
    const int shrunk = in->slot >= 0 && atomic_load(&mapped_regions[in->slot].shrunk);
    return cli_error(EXIT_INPUT, "--mpi: the input file %s changed while it was read (rank %d%s): nothing written",
                     path, rank, shrunk ? ", which found it shrunk under its mapping" : "");
}

/* MPI_Barrier over comm, waiting idle. */
static int barrier_idle_on(MPI_Comm comm)
{
    MPI_Request rq;
    return MPI_Ibarrier(comm, &rq) != MPI_SUCCESS || wait_idle(&rq) ? -1 : 0;
}

/*
 * 1 when every rank maps the input itself: all the ranks on one machine (one shared-memory communicator, *node)
 * and each finds the very file rank 0 opened (file_id), mapped read-only (the page cache shared, nothing
 * copied); 0: rank 0 deals the input (deal_input); -1: MPI failed. Decided by all the ranks together (a rank
 * not `allowed` to map makes them all deal).
 */
static int map_input(const char *path, int rank, int ranks, int allowed, mapped_input *in, MPI_Comm *node)
{
    int node_size = 0, ok = 0, all = 0;
    MPI_Request rq;
    *in = (mapped_input){.fd = -1, .slot = -1};
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, node) != MPI_SUCCESS) return -1;
    MPI_Comm_size(*node, &node_size);
    if (rank == 0) {
        in->fd = open(path, O_RDONLY | O_CLOEXEC);
        in->id = settled_id_of_fd(in->fd);
    }
    if (MPI_Ibcast(&in->id, sizeof in->id, MPI_BYTE, 0, MPI_COMM_WORLD, &rq) != MPI_SUCCESS || wait_idle(&rq)) return -1;
    if (allowed && node_size == ranks && in->id.size && in->id.size <= SIZE_MAX) {
        if (rank != 0) in->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (input_unchanged(in)) {
            void *p = mmap(NULL, (size_t)in->id.size, PROT_READ, MAP_PRIVATE, in->fd, 0);
            if (p != MAP_FAILED) {
                in->data = p;
                in->len = (size_t)in->id.size;
                in->slot = watch_mapping(p, in->len); /* before any read of it */
                ok = in->slot >= 0;
                veil_error err = {0}; /* rank 0, before the others may read: the fingerprint (none if malformed) */
                in->printed = ok && rank == 0 &&
                              veil_ciphertexts_fingerprint_serialized(in->print, in->data, in->len, &err) == VEIL_OK;
            }
        }
    }
    if (MPI_Iallreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &rq) != MPI_SUCCESS || wait_idle(&rq)) return -1;
    if (!all) unmap_input(in);
    return all;
}

/* The next chunk's number from the counter in rank 0's shared window (an atomic fetch-and-add). */
static long next_chunk(MPI_Win win)
{
    const long one = 1;
    long got = -1;
    if (MPI_Fetch_and_op(&one, &got, MPI_LONG, 0, 0, MPI_SUM, win) != MPI_SUCCESS || MPI_Win_flush(0, win) != MPI_SUCCESS)
        return -1;
    return got;
}

/*
 * Takes chunks of `per` batches (of the set's B) from the counter until none is left: each loaded in place
 * (veil_ciphertexts_load_batches: every ciphertext validated), evaluated, and its outputs serialized into outs[k]
 * (while the work is still shared out, not after it). A rank that is
 * slowed (by other jobs on its core, or by rank 0's check of the whole set's digest) simply takes fewer.
 */
static int take_chunks(const veil_evaluator *ev, const veil_eval_keys *ek, const mapped_input *in, MPI_Win win,
                       size_t batches, size_t per, veil_buffer *outs, int rank)
{
    const size_t chunks = (batches + per - 1) / per;
    veil_error err = {0};
    int rc = EXIT_OK, dropped = 0;
    for (;;) {
        const long k = next_chunk(win);
        if (k < 0) return cli_error(EXIT_RUNTIME, "--mpi: the shared batch counter failed");
        if ((size_t)k >= chunks) return EXIT_OK;
        const size_t first = (size_t)k * per, n = batches - first < per ? batches - first : per;
        veil_ciphertexts *x = NULL, *y = NULL;
        rc = cli_status(veil_ciphertexts_load_batches(&x, ek, in->data, in->len, first, n, &err), &err, "--mpi: --in");
        if (rc == EXIT_OK) rc = cli_status(veil_evaluator_run(ev, &y, x, NULL, NULL, &err), &err, NULL);
        if (rc == EXIT_OK) rc = test_fault_drop_batch(&y, rank, &dropped);
        if (rc == EXIT_OK) rc = cli_status(veil_ciphertexts_save(&outs[k], y, &err), &err, "--mpi");
        veil_ciphertexts_free(x);
        veil_ciphertexts_free(y);
        if (rc != EXIT_OK) return rc;
    }
}

static int send_u64(uint64_t v, int to)
{
    return MPI_Send(&v, 1, MPI_UINT64_T, to, TAG_CHUNK, MPI_COMM_WORLD) == MPI_SUCCESS ? 0 : -1;
}

static int recv_u64(int from, uint64_t *v)
{
    MPI_Request rq;
    return MPI_Irecv(v, 1, MPI_UINT64_T, from, TAG_CHUNK, MPI_COMM_WORLD, &rq) != MPI_SUCCESS || wait_idle(&rq) ? -1 : 0;
}

/* Ranks 1 .. R-1: how many chunks they evaluated, then each chunk's number and serialized outputs. */
static int send_chunks(const veil_buffer *outs, size_t chunks, int rank)
{
    uint64_t mine = 0;
    for (size_t k = 0; k < chunks; k++) mine += outs[k].len != 0;
    if (send_u64(mine, 0)) return cli_error(EXIT_RUNTIME, "--mpi: rank %d could not send its outputs", rank);
    for (size_t k = 0; k < chunks; k++)
        if (outs[k].len && (send_u64(k, 0) || send_bytes(&outs[k], 0)))
            return cli_error(EXIT_RUNTIME, "--mpi: rank %d could not send its outputs", rank);
    return EXIT_OK;
}

/* Rank 0: every other rank's chunks into outs[k], each chunk once, each validated (loaded, then let go). */
static int receive_chunks(const veil_eval_keys *ek, int ranks, veil_buffer *outs, size_t chunks)
{
    veil_error err = {0};
    for (int r = 1; r < ranks; r++) {
        uint64_t count = 0;
        if (recv_u64(r, &count) || count > chunks)
            return cli_error(EXIT_RUNTIME, "--mpi: the outputs of rank %d did not arrive", r);
        for (uint64_t i = 0; i < count; i++) {
            uint64_t k = 0;
            veil_buffer b = {0};
            veil_ciphertexts *check = NULL;
            if (recv_u64(r, &k) || k >= chunks || outs[k].len || recv_bytes(r, &b)) {
                free(b.data);
                return cli_error(EXIT_RUNTIME, "--mpi: the outputs of rank %d did not arrive whole", r);
            }
            const int rc = cli_status(veil_ciphertexts_load(&check, NULL, ek, b.data, b.len, &err), &err, "--mpi");
            veil_ciphertexts_free(check);
            outs[k] = b; /* malloc'd: freed with veil_buffer_free, as the others */
            if (rc != EXIT_OK) return rc;
        }
    }
    return EXIT_OK;
}

/*
 * Rank 0: the chunks' serialized outputs joined in order without loading them again
 * (veil_ciphertexts_join_serialized: every batch evaluated alone, so the one-process bytes), written.
 */
static int join_and_save(const cli_options *o, const veil_eval_keys *ek, const veil_buffer *outs, size_t chunks,
                         uint64_t in_rows)
{
    veil_error err = {0};
    veil_buffer joined = {0};
    uint64_t rows = 0;
    for (size_t k = 0; k < chunks; k++)
        if (!outs[k].len) return cli_error(EXIT_RUNTIME, "--mpi: no rank evaluated batches chunk %zu", k);
    int rc = cli_status(veil_ciphertexts_join_serialized(&joined, ek, outs, chunks, &err), &err, "--mpi");
    if (rc == EXIT_OK)
        rc = cli_status(veil_ciphertexts_rows_serialized(&rows, ek, joined.data, joined.len, 0, &err), &err, "--mpi");
    if (rc == EXIT_OK) rc = check_rows(rows, in_rows);
    if (rc == EXIT_OK) rc = cli_save_buffer(o->out, &joined);
    veil_buffer_free(&joined);
    return rc;
}

/*
 * The job when every rank maps the input (map_input): the set's framing and metadata checked by every rank (a
 * walk over the headers), its digest by rank 0 while the others already evaluate (no output is written unless
 * it matched); chunks of batches taken from a counter in a shared window; rank 0 gathers and joins the outputs.
 * A set that is not split (the latency packing, BGV) is evaluated by rank 0 alone.
 */
static int eval_mapped(cli_options *o, const veil_evaluator *ev, const veil_eval_keys *ek, mapped_input *in,
                       MPI_Comm node, int rank, int ranks)
{
    veil_error err = {0};
    veil_ciphertexts *whole = NULL, *out = NULL;
    veil_buffer *outs = NULL;
    MPI_Win win = MPI_WIN_NULL;
    uint64_t in_rows = 0;
    size_t batches = 0, chunks = 0;
    int rc = EXIT_OK, locked = 0;
    const veil_status st = veil_ciphertexts_check_serialized(&batches, ek, in->data, in->len, 0, &err);
    if (st == VEIL_ERR_ARGUMENT) { /* not split: the same answer on every rank (the same bytes) */
        if (rank != 0) goto done;
        if (!o->quiet) fprintf(stderr, "veil: --mpi: the set is not split (%s): rank 0 evaluates it all\n", err.detail);
        CLI_CHECK(cli_status(veil_ciphertexts_load(&whole, NULL, ek, in->data, in->len, &err), &err, o->in));
        CLI_CHECK(cli_status(veil_evaluator_run(ev, &out, whole, NULL, NULL, &err), &err, NULL));
        if (!input_intact(in)) { /* (the load checks the set's digest in one pass, reads the objects in another) */
            rc = input_changed(in, o->in, rank);
            goto done;
        }
        CLI_CHECK(check_rows(veil_ciphertexts_rows(out), veil_ciphertexts_rows(whole)));
        CLI_CHECK(cli_save_ciphertexts(o->out, out));
        goto done;
    }
    CLI_CHECK(cli_status(st, &err, o->in));
    /* ~16 chunks a rank: what is left when the last chunk is taken is at most a sixteenth of a rank's share */
    const size_t per = batches / ((size_t)ranks * 16) > 1 ? batches / ((size_t)ranks * 16) : 1;
    chunks = batches ? (batches + per - 1) / per : 0;
    outs = calloc(chunks ? chunks : 1, sizeof *outs);
    if (!outs) CLI_FAIL(EXIT_RUNTIME, "--mpi: out of memory");
    long *base = NULL;
    if (MPI_Win_allocate_shared(rank == 0 ? (MPI_Aint)sizeof(long) : 0, (int)sizeof(long), MPI_INFO_NULL, node, &base,
                                &win) != MPI_SUCCESS || MPI_Win_lock_all(MPI_MODE_NOCHECK, win) != MPI_SUCCESS)
        CLI_FAIL(EXIT_RUNTIME, "--mpi: no shared window for the batch counter");
    locked = 1;
    if (rank == 0) {
        const long zero = 0;
        if (MPI_Accumulate(&zero, 1, MPI_LONG, 0, 0, 1, MPI_LONG, MPI_REPLACE, win) != MPI_SUCCESS ||
            MPI_Win_flush(0, win) != MPI_SUCCESS)
            CLI_FAIL(EXIT_RUNTIME, "--mpi: the batch counter could not be set");
    }
    if (barrier_idle_on(node)) CLI_FAIL(EXIT_RUNTIME, "--mpi: the ranks did not meet");
    if (rank == 0) { /* the whole set's digest, once; the others take chunks meanwhile */
        CLI_CHECK(cli_status(veil_ciphertexts_check_serialized(&batches, ek, in->data, in->len, 1, &err), &err, o->in));
        CLI_CHECK(cli_status(veil_ciphertexts_rows_serialized(&in_rows, ek, in->data, in->len, 0, &err), &err, o->in));
    }
    CLI_CHECK(take_chunks(ev, ek, in, win, batches, per, outs, rank));
    MPI_Win_unlock_all(win);
    locked = 0;
    if (!input_unchanged(in)) {
        rc = input_changed(in, o->in, rank);
        goto done;
    }
    if (rank != 0) {
        CLI_CHECK(send_chunks(outs, chunks, rank));
    } else {
        CLI_CHECK(receive_chunks(ek, ranks, outs, chunks));
        if (!chunks) CLI_FAIL(EXIT_RUNTIME, "--mpi: the set has no batch");
        /* every rank is through reading (each sent its outputs): the digest again, for a change the times miss */
        if (!input_intact(in)) {
            rc = input_changed(in, o->in, rank);
            goto done;
        }
        CLI_CHECK(join_and_save(o, ek, outs, chunks, in_rows));
    }
done:
    if (locked) MPI_Win_unlock_all(win);
    if (win != MPI_WIN_NULL && rc == EXIT_OK) { /* collective: a failed rank aborts the job instead */
        barrier_idle_on(node);
        MPI_Win_free(&win);
    }
    for (size_t k = 0; outs && k < chunks; k++) veil_buffer_free(&outs[k]);
    free(outs);
    veil_ciphertexts_free(whole);
    veil_ciphertexts_free(out);
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
    mapped_input in = {.fd = -1, .slot = -1};
    MPI_Comm node = MPI_COMM_NULL;
    uint64_t in_rows = 0;
    int rc = EXIT_OK, split = 0, dropped = 0;
    CLI_CHECK(cli_load_eval_keys(path, &ek));
    CLI_CHECK(cli_load_eval_model(&m, o, ek, path, &calib));
    CLI_CHECK(cli_status(veil_evaluator_new(&ev, m, ek, o->threads ? o->threads : 1, &err), &err, NULL));
    /* VEIL_MPI_DEAL=1: rank 0 deals the input even on one machine (the other machines' way; tests/test_mpi.sh) */
    const char *deal = getenv("VEIL_MPI_DEAL");
    const int mapped = map_input(o->in, rank, ranks, !(deal && !strcmp(deal, "1")), &in, &node);
    if (mapped < 0) CLI_FAIL(EXIT_RUNTIME, "--mpi: the ranks could not agree on how to read %s", o->in);
    if (mapped) {
        rc = eval_mapped(o, ev, ek, &in, node, rank, ranks);
        /* whatever failed (a loader refusing the zeros of a shrunk file, say), the cause is named */
        if (rc != EXIT_OK && !input_unchanged(&in)) rc = input_changed(&in, o->in, rank);
        goto done;
    }
    if (rank == 0) CLI_CHECK(deal_input(o, ek, ranks, &mine, &split, &in_rows));
    else CLI_CHECK(receive_input(ek, rank, &mine, &split));
    if (rank != 0 && !split) goto done;
    if (mine && (!split || veil_ciphertexts_batches_of(mine) > 0)) { /* not split: rank 0 evaluates it whole */
        cli_bar bar;
        cli_bar_init(&bar, "evaluating", o->quiet || rank != 0);
        CLI_CHECK(cli_status(veil_evaluator_run(ev, &out, mine, cli_progress, &bar, &err), &err, NULL));
    }
    if (rank != 0) {
        CLI_CHECK(test_fault_drop_batch(&out, rank, &dropped));
        if (out) CLI_CHECK(cli_status(veil_ciphertexts_save(&b, out, &err), &err, "--mpi"));
        if (send_bytes(&b, 0)) CLI_FAIL(EXIT_RUNTIME, "--mpi: rank %d could not send its outputs", rank);
        goto done;
    }
    if (split) CLI_CHECK(gather_outputs(ek, ranks, &out));
    if (!out) CLI_FAIL(EXIT_RUNTIME, "--mpi: no rank had outputs");
    CLI_CHECK(check_rows(veil_ciphertexts_rows(out), in_rows));
    CLI_CHECK(cli_save_ciphertexts(o->out, out));
done:
    unmap_input(&in);
    if (node != MPI_COMM_NULL) MPI_Comm_free(&node);
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

/*
 * The threads of a rank when neither --threads nor VEIL_THREADS gives them: its share of the machine's cores.
 * A rank bound to some CPUs (Open MPI binds to a core by default) gets those; an unbound one (--bind-to none)
 * would otherwise take every core, as would each of the other ranks on its machine: R ranks x C threads on C
 * cores, the threads of each taking turns with the others'. It gets C / R instead (at least 1).
 */
static size_t default_threads(void)
{
    MPI_Comm node;
    int here = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_size(node, &here);
        MPI_Comm_free(&node);
    }
    cpu_set_t set;
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    const int mine = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : (int)online;
    if (online < 1 || mine < 1) return 1;
    if (mine < online) return (size_t)mine; /* bound: its own CPUs */
    return online / here > 1 ? (size_t)(online / here) : 1;
}

/*
 * Rank 0 deals the training input: it reads the file and broadcasts its bytes to every rank (the other machines'
 * way, or VEIL_MPI_DEAL=1); each rank then loads only its share of them (veil_train_run_serialized).
 */
static int deal_train_input(const char *path, int rank, veil_buffer *b)
{
    uint64_t len = 0;
    if (rank == 0 && cli_read_file(path, b) != EXIT_OK) len = UINT64_MAX; /* the message is rank 0's */
    else if (rank == 0) len = b->len;
    MPI_Request rq;
    if (MPI_Ibcast(&len, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD, &rq) != MPI_SUCCESS || wait_idle(&rq))
        return cli_error(EXIT_RUNTIME, "--mpi: rank %d: no word from rank 0", rank);
    if (len == UINT64_MAX) return EXIT_INPUT;
    if (len > SIZE_MAX - 1) return cli_error(EXIT_RUNTIME, "--mpi: %s is too large", path);
    if (rank != 0) {
        if (!(b->data = malloc(len ? (size_t)len : 1))) return cli_error(EXIT_RUNTIME, "--mpi: out of memory");
        b->len = (size_t)len;
    }
    for (size_t off = 0; off < b->len; off += CHUNK) {
        const size_t n = b->len - off < CHUNK ? b->len - off : CHUNK;
        if (MPI_Bcast(b->data + off, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
            return cli_error(EXIT_RUNTIME, "--mpi: rank %d: %s did not arrive", rank, path);
    }
    return EXIT_OK;
}

typedef struct train_inputs {
    mapped_input in[VEIL_TRAIN_MAX_SETS];
    size_t n;
    char **paths;
    int rank;
} train_inputs;

/*
 * Whether each mapped input is still the file rank 0 opened (input_unchanged; rank 0: and its digest still holds,
 * input_intact), each change named; 1: all are. After the training every rank has read its share.
 */
static int train_inputs_unchanged(train_inputs *t)
{
    int ok = 1;
    for (size_t h = 0; h < t->n; h++) {
        mapped_input *in = &t->in[h];
        if (in->data && !(t->rank == 0 ? input_intact(in) : input_unchanged(in))) {
            input_changed(in, t->paths[h], t->rank);
            ok = 0;
        }
    }
    return ok;
}

/* cli_train_sets's may_write, on every rank: 1 unless every mapped input is still the file rank 0 opened. */
static int inputs_unchanged(void *arg)
{
    train_inputs *t = arg;
    int ok = train_inputs_unchanged(t), all = 0;
    MPI_Request rq;
    if (MPI_Iallreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &rq) != MPI_SUCCESS || wait_idle(&rq)) return 1;
    return !all;
}

/*
 * The ranks' inputs: on one machine every rank maps each file (map_input, as eval does), else rank 0 deals it;
 * bytes[h] points at set h's bytes (mapped, or b[h] received).
 */
static int open_train_inputs(char **ins, size_t n_in, int rank, int ranks, train_inputs *t, veil_buffer *b,
                             veil_buffer *bytes)
{
    const char *deal = getenv("VEIL_MPI_DEAL");
    t->n = n_in;
    for (size_t h = 0; h < n_in; h++) {
        MPI_Comm node = MPI_COMM_NULL;
        const int mapped = map_input(ins[h], rank, ranks, !(deal && !strcmp(deal, "1")), &t->in[h], &node);
        if (node != MPI_COMM_NULL) MPI_Comm_free(&node);
        if (mapped < 0) return cli_error(EXIT_RUNTIME, "--mpi: the ranks could not agree on how to read %s", ins[h]);
        if (mapped) {
            bytes[h] = (veil_buffer){(uint8_t *)t->in[h].data, t->in[h].len};
            continue;
        }
        const int rc = deal_train_input(ins[h], rank, &b[h]);
        if (rc != EXIT_OK) return rc;
        bytes[h] = b[h];
    }
    return EXIT_OK;
}

int cli_mpi_train(cli_options *o, const char *eval_keys_path, char **ins, size_t n_in)
{
    int who[2] = {0, 1}; /* rank, ranks */
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return cli_error(EXIT_RUNTIME, "--mpi: MPI_Init failed");
    MPI_Comm_rank(MPI_COMM_WORLD, &who[0]);
    MPI_Comm_size(MPI_COMM_WORLD, &who[1]);
    if (!o->threads && !getenv("VEIL_THREADS")) o->threads = default_threads();
    const veil_train_split split = {.part = (size_t)who[0], .parts = (size_t)who[1], .exchange = exchange_parts,
                                    .arg = who};
    train_inputs t = {.n = 0};
    veil_buffer b[VEIL_TRAIN_MAX_SETS] = {{0}}, bytes[VEIL_TRAIN_MAX_SETS] = {{0}};
    for (size_t h = 0; h < VEIL_TRAIN_MAX_SETS; h++) t.in[h] = (mapped_input){.fd = -1, .slot = -1};
    t.paths = ins;
    t.rank = who[0];
    int rc = n_in < 1 || n_in > VEIL_TRAIN_MAX_SETS
                 ? cli_error(EXIT_USAGE, "train: %zu data sets (1 to %d)", n_in, VEIL_TRAIN_MAX_SETS)
                 : open_train_inputs(ins, n_in, who[0], who[1], &t, b, bytes);
    if (rc == EXIT_OK) rc = cli_train_sets(o, eval_keys_path, ins, n_in, &split, bytes, inputs_unchanged, &t);
    /* whatever failed (a loader refusing the zeros of a shrunk file, say), a changed input is named */
    if (rc != EXIT_OK && !train_inputs_unchanged(&t)) rc = EXIT_INPUT;
    for (size_t h = 0; h < n_in && h < VEIL_TRAIN_MAX_SETS; h++) {
        unmap_input(&t.in[h]);
        veil_buffer_free(&b[h]);
    }
    if (rc != EXIT_OK && who[1] > 1) {
        fprintf(stderr, "veil: --mpi: rank %d of %d failed: the job stops\n", who[0], who[1]);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    barrier_idle();
    MPI_Finalize();
    return rc;
}
