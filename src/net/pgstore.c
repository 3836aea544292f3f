/*
 * The key store in PostgreSQL (issue 22): `veil serve --store postgresql://...`. Tenants' tokens (hashed), key
 * bundles (content-addressed, in 1 MiB bytea chunks), ownership and an audit trail, shared by every replica
 * that names the same database. An upload is acknowledged after its transaction commits (durable and seen by
 * every replica); a replica checks the store on every use of a bundle, so a bundle deleted through one replica
 * is gone from all. Uploads and deletes serialize over the replicas on one advisory lock (the limits are
 * counted in the store). The schema is made and migrated by whoever connects first (veil_schema's version).
 * Built only with libpq; without it, a PostgreSQL store is refused with a clear error.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "net/serve_internal.h"

int veil_store_is_url(const char *store)
{
    return store && (!strncmp(store, "postgresql://", 13) || !strncmp(store, "postgres://", 11));
}

#ifndef VEIL_HAVE_LIBPQ

#define NO_PG "this veil was built without PostgreSQL (libpq): a postgresql:// store is not available"
static veil_status pg_open(veil_server *s, veil_error *err)
{
    (void)s;
    return veil_fail(err, VEIL_ERR_UNSUPPORTED, NO_PG);
}
const store_ops veil_pg_store_ops = {"postgresql", 1, pg_open, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
veil_status veil_pg_tokens_read(const char *url, veil_token_entry **out, size_t *count, veil_error *err)
{
    (void)url, (void)out, (void)count;
    return veil_fail(err, VEIL_ERR_UNSUPPORTED, NO_PG);
}
veil_status veil_pg_token_add(const char *url, const veil_token_entry *e, veil_error *err)
{
    (void)url, (void)e;
    return veil_fail(err, VEIL_ERR_UNSUPPORTED, NO_PG);
}
veil_status veil_pg_token_revoke(const char *url, const char *id, const char *tenant, size_t *revoked, veil_error *err)
{
    (void)url, (void)id, (void)tenant, (void)revoked;
    return veil_fail(err, VEIL_ERR_UNSUPPORTED, NO_PG);
}

#else

#include <libpq-fe.h>
#include <sodium.h>

#define SCHEMA_VERSION 1
#define CHUNK ((size_t)1 << 20)
#define POOL 8
#define PG_FAIL()          \
    do {                   \
        st = VEIL_ERR_IO;  \
        goto done;         \
    } while (0) /* err said why (run) */
#define WRITE_LOCK "SELECT pg_advisory_xact_lock(2207422)" /* uploads and deletes, over every replica */

/* Version 1 of the schema. Every table is named veil_*: the database may hold others'. */
static const char *const schema_v1[] = {
    "CREATE TABLE veil_tokens (hash bytea PRIMARY KEY, tenant text NOT NULL, admin boolean NOT NULL, "
    "created bigint NOT NULL)",
    "CREATE TABLE veil_bundles (id text PRIMARY KEY, bytes bigint NOT NULL, created bigint NOT NULL)",
    "CREATE TABLE veil_bundle_chunks (id text NOT NULL REFERENCES veil_bundles(id) ON DELETE CASCADE, n integer "
    "NOT NULL, data bytea NOT NULL, PRIMARY KEY (id, n))",
    "CREATE TABLE veil_owners (tenant text NOT NULL, id text NOT NULL REFERENCES veil_bundles(id) ON DELETE "
    "CASCADE, created bigint NOT NULL, PRIMARY KEY (tenant, id))",
    "CREATE INDEX veil_owners_by_id ON veil_owners (id)",
    "CREATE TABLE veil_audit (at timestamptz NOT NULL DEFAULT now(), replica text NOT NULL, tenant text NOT NULL, "
    "action text NOT NULL, subject text NOT NULL)",
};

/* The statements of every request (a token's lookup, a bundle's ownership), prepared once per connection
 * (connect_to): parsed and planned once, each use then costs one round trip without a parse (pgbench over the
 * Unix socket: the two took 0.39-0.44 ms unprepared, 0.11-0.13 ms prepared). run() finds them by address. */
static const char SQL_TOKEN[] = "SELECT tenant, admin, created FROM veil_tokens WHERE hash = decode($1, 'hex')";
static const char SQL_OWNS[] = "SELECT b.bytes FROM veil_owners o JOIN veil_bundles b USING (id) WHERE o.tenant = $1 "
                               "AND o.id = $2";
static const char *const prepared_sql[] = {SQL_TOKEN, SQL_OWNS};
static const char *const prepared_name[] = {"veil_token", "veil_owns"};
#define N_PREPARED ((int)(sizeof prepared_sql / sizeof *prepared_sql))

/* A server's connections: a small pool, each connection used by one request at a time. */
typedef struct pg_store {
    char *url;
    char replica[96]; /* host:pid, in the audit trail */
    pthread_mutex_t lock;
    pthread_cond_t freed;
    PGconn *conn[POOL];
    int busy[POOL];
} pg_store;

/* libpq's message, its last newline dropped. */
static const char *pg_message(PGconn *c)
{
    static _Thread_local char msg[512];
    snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "no connection");
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) msg[--n] = 0;
    return msg;
}

/* A statement with text parameters (binary where lens[i] > 0); the result, or NULL (err said) unless it is
 * of the status wanted. */
static PGresult *run(PGconn *c, ExecStatusType want, const char *sql, int n, const char *const *values,
                     const int *lens, int binary_result, veil_error *err)
{
    int formats[8] = {0};
    for (int i = 0; i < n && lens; i++) formats[i] = lens[i] > 0;
    int named = -1;
    for (int i = 0; i < N_PREPARED; i++)
        if (sql == prepared_sql[i]) named = i;
    PGresult *res = named >= 0 ? PQexecPrepared(c, prepared_name[named], n, values, lens, formats, binary_result)
                               : PQexecParams(c, sql, n, NULL, values, lens, formats, binary_result);
    if (res && PQresultStatus(res) == want) return res;
    veil_fail(err, VEIL_ERR_IO, "key store (PostgreSQL): %s", res ? PQresultErrorMessage(res) : pg_message(c));
    for (char *p = err->detail; *p; p++)
        if (*p == '\n') *p = ' ';
    PQclear(res);
    return NULL;
}

static veil_status exec(PGconn *c, const char *sql, veil_error *err)
{
    PGresult *res = run(c, PGRES_COMMAND_OK, sql, 0, NULL, NULL, 0, err);
    if (!res) return VEIL_ERR_IO;
    PQclear(res);
    return VEIL_OK;
}

/* A statement that returns rows, none of them wanted (a lock taken). */
static veil_status select_ok(PGconn *c, const char *sql, veil_error *err)
{
    PGresult *res = run(c, PGRES_TUPLES_OK, sql, 0, NULL, NULL, 0, err);
    if (!res) return VEIL_ERR_IO;
    PQclear(res);
    return VEIL_OK;
}

static void rollback(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
}

/* Makes or migrates the schema, once over every process (an advisory lock): VEIL_ERR_UNSUPPORTED for a schema
 * of a newer veil. */
static veil_status migrate(PGconn *c, veil_error *err)
{
    veil_status st = VEIL_OK;
    PGresult *res = NULL;
    VEIL_CHECK(exec(c, "BEGIN", err));
    VEIL_CHECK(select_ok(c, "SELECT pg_advisory_xact_lock(2207421)", err));
    VEIL_CHECK(exec(c, "CREATE TABLE IF NOT EXISTS veil_schema (version integer NOT NULL)", err));
    if (!(res = run(c, PGRES_TUPLES_OK, "SELECT max(version) FROM veil_schema", 0, NULL, NULL, 0, err)))
        PG_FAIL();
    const int version = PQgetisnull(res, 0, 0) ? 0 : atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    res = NULL;
    if (version > SCHEMA_VERSION)
        VEIL_FAIL(err, VEIL_ERR_UNSUPPORTED, "key store: its schema is version %d, made by a newer veil (this one "
                  "knows %d)", version, SCHEMA_VERSION);
    if (version < 1) {
        for (size_t i = 0; i < sizeof schema_v1 / sizeof *schema_v1; i++) VEIL_CHECK(exec(c, schema_v1[i], err));
        VEIL_CHECK(exec(c, "INSERT INTO veil_schema (version) VALUES (1)", err));
    }
    VEIL_CHECK(exec(c, "COMMIT", err));
    return VEIL_OK;
done:
    PQclear(res);
    rollback(c);
    return st;
}

/* A connection to url: bounded waits (connect, statements, locks), the schema migrated. */
static veil_status connect_to(const char *url, PGconn **out, veil_error *err)
{
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *values[] = {"5", "veil", url, NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    *out = NULL;
    if (!c || PQstatus(c) != CONNECTION_OK) {
        veil_fail(err, VEIL_ERR_IO, "key store (PostgreSQL): cannot connect: %s", pg_message(c));
        PQfinish(c);
        return VEIL_ERR_IO;
    }
    veil_status st = exec(c, "SET client_min_messages = warning", err); /* no NOTICE of the migration on stderr */
    if (st == VEIL_OK) st = exec(c, "SET statement_timeout = '30s'", err);
    if (st == VEIL_OK) st = exec(c, "SET lock_timeout = '30s'", err);
    if (st == VEIL_OK) st = migrate(c, err);
    for (int i = 0; i < N_PREPARED && st == VEIL_OK; i++) { /* after the migration: their tables exist */
        PGresult *res = PQprepare(c, prepared_name[i], prepared_sql[i], 0, NULL);
        if (!res || PQresultStatus(res) != PGRES_COMMAND_OK)
            st = veil_fail(err, VEIL_ERR_IO, "key store (PostgreSQL): cannot prepare a statement: %s",
                           res ? PQresultErrorMessage(res) : pg_message(c));
        PQclear(res);
    }
    if (st != VEIL_OK) {
        PQfinish(c);
        return st;
    }
    *out = c;
    return VEIL_OK;
}

/* ---- the pool ---- */

/* A connection of the pool (made again when it broke); NULL when the database cannot be reached (err said). */
static PGconn *take(pg_store *p, int *slot, veil_error *err)
{
    pthread_mutex_lock(&p->lock);
    int i = -1;
    for (;;) {
        for (int j = 0; j < POOL && i < 0; j++)
            if (!p->busy[j]) i = j;
        if (i >= 0) break;
        pthread_cond_wait(&p->freed, &p->lock);
    }
    p->busy[i] = 1;
    pthread_mutex_unlock(&p->lock);
    *slot = i;
    if (p->conn[i] && PQstatus(p->conn[i]) != CONNECTION_OK) {
        PQfinish(p->conn[i]);
        p->conn[i] = NULL;
    }
    if (!p->conn[i] && connect_to(p->url, &p->conn[i], err) != VEIL_OK) {
        pthread_mutex_lock(&p->lock);
        p->busy[i] = 0;
        pthread_cond_signal(&p->freed);
        pthread_mutex_unlock(&p->lock);
        return NULL;
    }
    return p->conn[i];
}

static void give(pg_store *p, int slot)
{
    pthread_mutex_lock(&p->lock);
    if (p->conn[slot] && PQtransactionStatus(p->conn[slot]) != PQTRANS_IDLE) {
        PQfinish(p->conn[slot]); /* left mid-transaction (a failure): a fresh one next time */
        p->conn[slot] = NULL;
    }
    p->busy[slot] = 0;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

/* A statement outside a transaction, sent once more on a fresh connection when the kept one broke (PostgreSQL
 * restarted since it was made): a read, or a BEGIN, is safe to repeat. The connection in *c may change. */
static PGresult *run_again(pg_store *p, int slot, PGconn **c, ExecStatusType want, const char *sql, int n,
                           const char *const *values, int binary_result, veil_error *err)
{
    PGresult *res = run(*c, want, sql, n, values, NULL, binary_result, err);
    if (res || PQstatus(*c) == CONNECTION_OK) return res;
    PQfinish(p->conn[slot]);
    p->conn[slot] = NULL;
    if (connect_to(p->url, &p->conn[slot], err) != VEIL_OK) return NULL;
    *c = p->conn[slot];
    return run(*c, want, sql, n, values, NULL, binary_result, err);
}

/* BEGIN, on a fresh connection when the kept one broke. */
static veil_status begin(pg_store *p, int slot, PGconn **c, veil_error *err)
{
    PGresult *res = run_again(p, slot, c, PGRES_COMMAND_OK, "BEGIN", 0, NULL, 0, err);
    if (!res) return VEIL_ERR_IO;
    PQclear(res);
    return VEIL_OK;
}

static void audit(PGconn *c, const pg_store *p, const char *tenant, const char *action, const char *subject,
                  veil_error *err, veil_status *st)
{
    if (*st != VEIL_OK) return;
    const char *v[4] = {p ? p->replica : "veil token", tenant, action, subject};
    PGresult *res = run(c, PGRES_COMMAND_OK,
                        "INSERT INTO veil_audit (replica, tenant, action, subject) VALUES ($1, $2, $3, $4)", 4, v,
                        NULL, 0, err);
    if (!res) *st = VEIL_ERR_IO;
    PQclear(res);
}

/* Whether bundle bytes hash to id, as veil_key_bundle_id names them (BLAKE2b-128 in hex). Here rather than a
 * call into keystore.c: the store sits below the files that use it (serve_internal.h's order). */
static int hashes_to(const uint8_t *b, size_t len, const char *id)
{
    uint8_t h[16];
    char hexed[33];
    crypto_generichash(h, sizeof h, b, len, NULL, 0);
    for (size_t i = 0; i < sizeof h; i++) snprintf(hexed + 2 * i, 3, "%02x", h[i]);
    return strcmp(hexed, id) == 0;
}

/* A tenant's name as veil_tenant_name_valid accepts it (1-64 letters, digits, '_', '-'; not "anonymous"). */
static int tenant_ok(const char *t)
{
    const size_t n = strlen(t);
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    return n > 0 && n <= VEIL_TENANT_MAX && strspn(t, allowed) == n && strcmp(t, VEIL_TENANT_ANONYMOUS) != 0;
}

/* ---- the server's operations ---- */

static pg_store *state(veil_server *s) { return (pg_store *)s->store_state; }

static void pg_close(veil_server *s)
{
    pg_store *p = state(s);
    if (!p) return;
    for (int i = 0; i < POOL; i++) PQfinish(p->conn[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    free(p->url);
    free(p);
    s->store_state = NULL;
}

static veil_status pg_open(veil_server *s, veil_error *err)
{
    pg_store *p = calloc(1, sizeof *p);
    if (!p || !(p->url = strdup(s->store_dir))) {
        free(p);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "key store");
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(p->replica, sizeof p->replica, "%.63s:%ld", host, (long)getpid());
    s->store_state = p;
    int slot;
    if (!take(p, &slot, err)) return VEIL_ERR_IO; /* the first connection migrates the schema */
    give(p, slot);
    return veil_body_tmp_open(s->tmp_dir, err);
}

/* The bundle's bytes, checked against its id (the store is not trusted further than the folder). */
static veil_status pg_read(veil_server *s, const char *id, veil_buffer *out, veil_error *err)
{
    int slot;
    PGconn *c = take(state(s), &slot, err);
    if (!c) return VEIL_ERR_IO;
    veil_status st = VEIL_OK;
    const char *v[1] = {id};
    PGresult *res = run_again(state(s), slot, &c, PGRES_TUPLES_OK,
                              "SELECT data FROM veil_bundle_chunks WHERE id = $1 ORDER BY n", 1, v, 1, err);
    memset(out, 0, sizeof *out);
    if (!res) PG_FAIL();
    size_t total = 0;
    for (int i = 0; i < PQntuples(res); i++) total += (size_t)PQgetlength(res, i, 0);
    if (total == 0) VEIL_FAIL(err, VEIL_ERR_NOT_FOUND, "key store: bundle %s is gone", id);
    if (!(out->data = malloc(total))) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "key bundle");
    for (int i = 0; i < PQntuples(res); i++) {
        memcpy(out->data + out->len, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
        out->len += (size_t)PQgetlength(res, i, 0);
    }
    if (!hashes_to(out->data, out->len, id)) VEIL_FAIL(err, VEIL_ERR_FORMAT, "key store: bundle %s does not hash to its id", id);
done:
    if (st != VEIL_OK) veil_buffer_free(out);
    PQclear(res);
    give(state(s), slot);
    return st;
}

/* 1 when tenant owns bundle id in the store (*bytes: its size), 0 when not, -1 when the store cannot say. */
static int pg_owns(veil_server *s, const char *id, const char *tenant, uint64_t *bytes)
{
    veil_error err = {0};
    int slot;
    PGconn *c = take(state(s), &slot, &err);
    if (!c) return -1;
    const char *v[2] = {tenant, id};
    PGresult *res = run_again(state(s), slot, &c, PGRES_TUPLES_OK,
                              SQL_OWNS, 2, v, 0, &err);
    int found = -1;
    if (res) {
        found = PQntuples(res) > 0;
        if (found) *bytes = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    }
    PQclear(res);
    give(state(s), slot);
    return found;
}

/* Two counts of a query: (count, sum of bytes). */
static int counts(PGconn *c, const char *sql, int n, const char *const *v, size_t *count, uint64_t *bytes,
                  veil_error *err)
{
    PGresult *res = run(c, PGRES_TUPLES_OK, sql, n, v, NULL, 0, err);
    if (!res) return 0;
    *count = (size_t)strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    *bytes = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    return 1;
}

/* Keeps the upload (r's body, bundle id) for r's tenant in one transaction: 201 stored, 200 the tenant's
 * already, 429 past the limits (*full, *mine, *my_bytes as over_limits says them), 503 the store unreachable
 * or failing (err). The store's limits are those of this replica's configuration. */
static unsigned pg_put(veil_server *s, const request *r, const char *id, int *full, size_t *mine, uint64_t *my_bytes,
                       veil_error *err)
{
    pg_store *p = state(s);
    int slot;
    PGconn *c = take(p, &slot, err);
    if (!c) return 503;
    unsigned status = 503;
    veil_status st = VEIL_OK;
    PGresult *res = NULL;
    char len[32], now[32], nbuf[16];
    snprintf(len, sizeof len, "%zu", r->len);
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    const char *own[3] = {r->tenant, id, now};
    size_t all = 0;
    uint64_t all_bytes = 0;
    VEIL_CHECK(begin(p, slot, &c, err));
    VEIL_CHECK(select_ok(c, WRITE_LOCK, err));
    if (!(res = run(c, PGRES_TUPLES_OK, "SELECT 1 FROM veil_owners WHERE tenant = $1 AND id = $2", 2, own, NULL, 0, err)))
        PG_FAIL();
    if (PQntuples(res) > 0) {
        status = 200;
        goto done; /* rolled back below: nothing written */
    }
    PQclear(res);
    res = NULL;
    if (!counts(c, "SELECT count(*), coalesce(sum(bytes), 0) FROM veil_bundles", 0, NULL, &all, &all_bytes, err) ||
        !counts(c, "SELECT count(*), coalesce(sum(b.bytes), 0) FROM veil_owners o JOIN veil_bundles b USING (id) "
                   "WHERE o.tenant = $1", 1, own, mine, my_bytes, err))
        PG_FAIL();
    *full = all >= s->cfg.max_keys || all_bytes + r->len > s->cfg.max_store_bytes;
    if (*full || (s->cfg.tenant_max_keys && *mine >= s->cfg.tenant_max_keys) ||
        (s->cfg.tenant_max_bytes && *my_bytes + r->len > s->cfg.tenant_max_bytes)) {
        status = 429;
        goto done;
    }
    const char *b[3] = {id, len, now};
    if (!(res = run(c, PGRES_COMMAND_OK, "INSERT INTO veil_bundles (id, bytes, created) VALUES ($1, $2, $3) "
                                         "ON CONFLICT (id) DO NOTHING", 3, b, NULL, 0, err)))
        PG_FAIL();
    const int fresh = strcmp(PQcmdTuples(res), "1") == 0; /* else another tenant's: only the ownership is new */
    PQclear(res);
    res = NULL;
    for (size_t at = 0, n = 0; fresh && at < r->len; at += CHUNK, n++) {
        const size_t part = r->len - at < CHUNK ? r->len - at : CHUNK;
        snprintf(nbuf, sizeof nbuf, "%zu", n);
        const char *v[3] = {id, nbuf, (const char *)r->body + at};
        const int lens[3] = {0, 0, (int)part};
        if (!(res = run(c, PGRES_COMMAND_OK, "INSERT INTO veil_bundle_chunks (id, n, data) VALUES ($1, $2, $3)", 3, v,
                        lens, 0, err)))
            PG_FAIL();
        PQclear(res);
        res = NULL;
    }
    if (!(res = run(c, PGRES_COMMAND_OK, "INSERT INTO veil_owners (tenant, id, created) VALUES ($1, $2, $3)", 3, own,
                    NULL, 0, err)))
        PG_FAIL();
    audit(c, p, r->tenant, "upload", id, err, &st);
    if (st == VEIL_OK) st = exec(c, "COMMIT", err); /* acknowledged only once committed */
    if (st == VEIL_OK) status = 201;
done:
    PQclear(res);
    if (status != 201) rollback(c);
    give(p, slot);
    return status;
}

/* Removes tenant's ownership of id (id NULL: of every bundle it owns); a bundle goes with its last owner. The
 * number disowned (0: none), or -1 when the store failed (err). */
static long pg_disown(veil_server *s, const char *id, const char *tenant, veil_error *err)
{
    pg_store *p = state(s);
    int slot;
    PGconn *c = take(p, &slot, err);
    if (!c) return -1;
    long n = -1;
    veil_status st = VEIL_OK;
    PGresult *res = NULL;
    const char *v[2] = {tenant, id};
    VEIL_CHECK(begin(p, slot, &c, err));
    VEIL_CHECK(select_ok(c, WRITE_LOCK, err));
    res = id ? run(c, PGRES_COMMAND_OK, "DELETE FROM veil_owners WHERE tenant = $1 AND id = $2", 2, v, NULL, 0, err)
             : run(c, PGRES_COMMAND_OK, "DELETE FROM veil_owners WHERE tenant = $1", 1, v, NULL, 0, err);
    if (!res) PG_FAIL();
    const long gone = atol(PQcmdTuples(res));
    PQclear(res);
    res = NULL;
    VEIL_CHECK(exec(c, "DELETE FROM veil_bundles b WHERE NOT EXISTS (SELECT 1 FROM veil_owners o WHERE o.id = b.id)",
                    err));
    if (gone) audit(c, p, tenant, "delete", id ? id : "*", err, &st);
    if (st == VEIL_OK) st = exec(c, "COMMIT", err);
    if (st == VEIL_OK) n = gone;
done:
    PQclear(res);
    if (n < 0) rollback(c);
    give(p, slot);
    return n;
}

/* A tenant's bundles and their bytes in the store: 1, or 0 when it cannot say. */
static int pg_usage(veil_server *s, const char *tenant, size_t *bundles, uint64_t *bytes)
{
    veil_error err = {0};
    int slot;
    PGconn *c = take(state(s), &slot, &err);
    if (!c) return 0;
    const char *v[1] = {tenant};
    const int ok = counts(c, "SELECT count(*), coalesce(sum(b.bytes), 0) FROM veil_owners o JOIN veil_bundles b "
                             "USING (id) WHERE o.tenant = $1", 1, v, bundles, bytes, &err);
    give(state(s), slot);
    return ok;
}

/* ---- tokens ---- */

static veil_status read_tokens(PGconn *c, veil_token_entry **out, size_t *count, veil_error *err)
{
    *out = NULL;
    *count = 0;
    PGresult *res = run(c, PGRES_TUPLES_OK, "SELECT hash, tenant, admin, created FROM veil_tokens ORDER BY created",
                        0, NULL, NULL, 1, err);
    if (!res) return VEIL_ERR_IO;
    const int n = PQntuples(res);
    veil_token_entry *e = n ? calloc((size_t)n, sizeof *e) : NULL;
    if (n && !e) {
        PQclear(res);
        return veil_fail(err, VEIL_ERR_NO_MEMORY, "tokens");
    }
    for (int i = 0; i < n; i++) {
        const char *tenant = PQgetvalue(res, i, 1);
        if (PQgetlength(res, i, 0) != 32 || PQgetlength(res, i, 2) != 1 || PQgetlength(res, i, 3) != 8 ||
            !tenant_ok(tenant)) {
            free(e);
            PQclear(res);
            return veil_fail(err, VEIL_ERR_FORMAT, "key store: veil_tokens row %d is malformed", i + 1);
        }
        memcpy(e[i].hash, PQgetvalue(res, i, 0), 32);
        snprintf(e[i].tenant, sizeof e[i].tenant, "%s", tenant);
        e[i].admin = PQgetvalue(res, i, 2)[0] != 0;
        const uint8_t *t = (const uint8_t *)PQgetvalue(res, i, 3); /* int8, big-endian */
        uint64_t v = 0;
        for (int j = 0; j < 8; j++) v = v << 8 | t[j];
        e[i].created = (long long)v;
    }
    PQclear(res);
    *out = e;
    *count = (size_t)n;
    return VEIL_OK;
}

static veil_status pg_tokens(veil_server *s, veil_token_entry **out, size_t *count, veil_error *err)
{
    int slot;
    PGconn *c = take(state(s), &slot, err);
    if (!c) return VEIL_ERR_IO;
    pg_store *p = state(s);
    veil_status st = read_tokens(c, out, count, err);
    if (st == VEIL_ERR_IO && PQstatus(c) != CONNECTION_OK) { /* PostgreSQL restarted: once more, connected again */
        PQfinish(p->conn[slot]);
        p->conn[slot] = NULL;
        if (connect_to(p->url, &p->conn[slot], err) == VEIL_OK) st = read_tokens(p->conn[slot], out, count, err);
    }
    give(p, slot);
    return st;
}

/*
 * One token by its hash, the primary key (an index lookup, not the whole table: a replica asks at every request).
 * 1 found, 0 not (or a malformed row: said on stderr, not accepted), -1 PostgreSQL cannot be reached or failed.
 */
static int pg_token(veil_server *s, const uint8_t hash[32], veil_token_entry *out)
{
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, hash, 32);
    const char *v[1] = {hex};
    veil_error err = {0};
    pg_store *p = state(s);
    int slot;
    PGconn *c = take(p, &slot, &err);
    if (!c) return -1;
    PGresult *res = run_again(p, slot, &c, PGRES_TUPLES_OK,
                              SQL_TOKEN, 1, v, 1, &err);
    give(p, slot);
    sodium_memzero(hex, sizeof hex);
    if (!res) return -1;
    int found = 0;
    if (PQntuples(res) == 1) {
        const char *tenant = PQgetvalue(res, 0, 0);
        if (PQgetlength(res, 0, 1) != 1 || PQgetlength(res, 0, 2) != 8 || !tenant_ok(tenant)) {
            fprintf(stderr, "veil: key store: a malformed veil_tokens row: its token is not accepted\n");
        } else {
            memcpy(out->hash, hash, 32);
            snprintf(out->tenant, sizeof out->tenant, "%s", tenant);
            out->admin = PQgetvalue(res, 0, 1)[0] != 0;
            const uint8_t *t = (const uint8_t *)PQgetvalue(res, 0, 2); /* int8, big-endian */
            uint64_t created = 0;
            for (int j = 0; j < 8; j++) created = created << 8 | t[j];
            out->created = (long long)created;
            found = 1;
        }
    }
    PQclear(res);
    return found;
}

veil_status veil_pg_tokens_read(const char *url, veil_token_entry **out, size_t *count, veil_error *err)
{
    PGconn *c = NULL;
    *out = NULL;
    *count = 0;
    if (connect_to(url, &c, err) != VEIL_OK) return VEIL_ERR_IO;
    const veil_status st = read_tokens(c, out, count, err);
    PQfinish(c);
    return st;
}

veil_status veil_pg_token_add(const char *url, const veil_token_entry *e, veil_error *err)
{
    PGconn *c = NULL;
    if (connect_to(url, &c, err) != VEIL_OK) return VEIL_ERR_IO;
    char created[32];
    snprintf(created, sizeof created, "%lld", e->created);
    const char *v[4] = {(const char *)e->hash, e->tenant, e->admin ? "true" : "false", created};
    const int lens[4] = {32, 0, 0, 0};
    veil_status st = exec(c, "BEGIN", err);
    PGresult *res = st == VEIL_OK ? run(c, PGRES_COMMAND_OK, "INSERT INTO veil_tokens (hash, tenant, admin, created) "
                                        "VALUES ($1, $2, $3, $4)", 4, v, lens, 0, err) : NULL;
    if (!res) st = VEIL_ERR_IO;
    PQclear(res);
    audit(c, NULL, e->tenant, "token add", e->admin ? "admin" : "tenant", err, &st);
    if (st == VEIL_OK) st = exec(c, "COMMIT", err);
    PQfinish(c);
    return st;
}

veil_status veil_pg_token_revoke(const char *url, const char *id, const char *tenant, size_t *revoked, veil_error *err)
{
    PGconn *c = NULL;
    if (connect_to(url, &c, err) != VEIL_OK) return VEIL_ERR_IO;
    const char *v[1] = {id ? id : tenant};
    veil_status st = exec(c, "BEGIN", err);
    PGresult *res = st != VEIL_OK ? NULL
                    : id ? run(c, PGRES_COMMAND_OK, "DELETE FROM veil_tokens WHERE substr(encode(hash, 'hex'), 1, 16) = $1",
                               1, v, NULL, 0, err)
                         : run(c, PGRES_COMMAND_OK, "DELETE FROM veil_tokens WHERE tenant = $1", 1, v, NULL, 0, err);
    const size_t n = res ? (size_t)atol(PQcmdTuples(res)) : 0;
    if (!res) st = VEIL_ERR_IO;
    PQclear(res);
    if (st == VEIL_OK && n == 0)
        st = veil_fail(err, VEIL_ERR_NOT_FOUND, "no token %s %.80s", id ? "with id" : "of tenant", id ? id : tenant);
    audit(c, NULL, tenant ? tenant : "-", "token revoke", id ? id : "*", err, &st);
    if (st == VEIL_OK) st = exec(c, "COMMIT", err);
    else rollback(c);
    if (st == VEIL_OK && revoked) *revoked = n;
    PQfinish(c);
    return st;
}

const store_ops veil_pg_store_ops = {"postgresql", 1, pg_open, pg_close, pg_read, pg_owns,
                                     pg_put, pg_disown, pg_usage, pg_tokens, pg_token};

#endif /* VEIL_HAVE_LIBPQ */
