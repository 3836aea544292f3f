/*
 * The key store on disk (STORE/keys, STORE/owners): bundles, their owners, the check at start and quarantine.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <sodium.h>
#include "net/serve_internal.h"

void veil_key_bundle_id(const uint8_t *bundle, size_t len, char id[65])
{
    uint8_t h[16];
    crypto_generichash(h, sizeof h, bundle, len, NULL, 0);
    for (size_t i = 0; i < sizeof h; i++) snprintf(id + 2 * i, 3, "%02x", h[i]);
}

int veil_srv_valid_id(const char *id)
{
    if (strlen(id) != 32) return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'))) return 0;
    return 1;
}

key_entry *veil_srv_new_entry(const char *id, uint64_t bytes)
{
    key_entry *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    snprintf(k->id, sizeof k->id, "%s", id);
    k->bytes = bytes;
    k->model = -1;
    k->known_model = -1;
    pthread_mutex_init(&k->load_lock, NULL);
    return k;
}

void veil_srv_free_entry(key_entry *k)
{
    free(k->owners);
    veil_evaluator_free(k->ev);
    veil_eval_keys_free(k->keys);
    pthread_mutex_destroy(&k->load_lock);
    free(k);
}

int veil_srv_owned_by(const key_entry *k, const char *tenant)
{
    for (size_t i = 0; i < k->n_owners; i++)
        if (strcmp(k->owners[i], tenant) == 0) return 1;
    return 0;
}

int veil_srv_add_owner(key_entry *k, const char *tenant)
{
    char(*grown)[VEIL_TENANT_MAX + 1] = realloc(k->owners, (k->n_owners + 1) * sizeof *k->owners);
    if (!grown) return 0;
    k->owners = grown;
    snprintf(k->owners[k->n_owners++], sizeof *k->owners, "%.64s", tenant);
    return 1;
}

void veil_srv_remove_owner(key_entry *k, const char *tenant)
{
    for (size_t i = 0; i < k->n_owners; i++)
        if (strcmp(k->owners[i], tenant) == 0) {
            memcpy(k->owners[i], k->owners[--k->n_owners], sizeof *k->owners);
            return;
        }
}

/* STORE/owners/TENANT/ID: the record that tenant uploaded bundle ID. */
void veil_srv_owner_path(const veil_server *s, const char *tenant, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/owners/%s%s%s", s->store_dir, tenant, id ? "/" : "", id ? id : "");
}

/* Writes the ownership record (its folder made when missing; the folder synced): 0 on failure. */
int veil_srv_write_owner(const veil_server *s, const char *tenant, const char *id)
{
    char dir[4096], path[4200];
    veil_srv_owner_path(s, tenant, NULL, dir, sizeof dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) return 0;
    veil_srv_owner_path(s, tenant, id, path, sizeof path);
    const int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return 0;
    close(fd);
    const int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 1;
}

/* Moves STORE/WHERE/NAME into STORE/quarantine/ (never served, kept for a look) and says why on stderr. */
void veil_srv_quarantine(const veil_server *s, const char *where, const char *name, const char *why)
{
    char from[4096], qdir[4096], to[4300];
    snprintf(from, sizeof from, "%s/%s/%s", s->store_dir, where, name);
    snprintf(qdir, sizeof qdir, "%s/quarantine", s->store_dir);
    if (mkdir(qdir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "veil: store: cannot make %s (%s): %s/%s is left in place, not served\n", qdir, strerror(errno),
                where, name);
        return;
    }
    const int n = snprintf(to, sizeof to, "%s/%lld-%s-%s", qdir, (long long)time(NULL), where, name);
    for (char *p = to + strlen(qdir) + 1; n > 0 && *p; p++)
        if (*p == '/') *p = '-'; /* owners/TENANT/X: one name in the quarantine */
    if (rename(from, to) != 0)
        fprintf(stderr, "veil: store: %s/%s (%s) could not be moved aside (%s): not served\n", where, name, why,
                strerror(errno));
    else
        fprintf(stderr, "veil: store: %s/%s %s: moved to %s, not served\n", where, name, why, to);
}

/* NULL when STORE/keys/NAME is a bundle to serve: a regular file ID.keys whose content hashes to ID and loads
 * as evaluation keys; otherwise why not. */
static const char *check_bundle(const veil_server *s, const char *name, uint64_t *bytes)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", s->keys_dir, name);
    struct stat sb;
    if (lstat(path, &sb) != 0) return "cannot be read";
    if (!S_ISREG(sb.st_mode)) return "is not a regular file";
    const size_t len = strlen(name);
    char id[65];
    snprintf(id, sizeof id, "%.32s", name);
    if (len != 37 || strcmp(name + 32, ".keys") != 0 || !veil_srv_valid_id(id)) return "is not named ID.keys";
    veil_buffer b = {0};
    veil_error err = {0};
    const char *why = NULL;
    char got[65];
    veil_eval_keys *keys = NULL;
    if (veil_file_read(&b, path, (size_t)1 << 34, &err) != VEIL_OK) why = "cannot be read";
    if (!why) veil_key_bundle_id(b.data, b.len, got);
    if (!why && strcmp(got, id) != 0) why = "does not hash to its id (changed or cut off)";
    if (!why && veil_eval_keys_load(&keys, b.data, b.len, &err) != VEIL_OK) why = "does not load as evaluation keys";
    veil_eval_keys_free(keys);
    *bytes = b.len;
    veil_buffer_free(&b);
    return why;
}

key_entry *veil_srv_find_entry(veil_server *s, const char *id)
{
    for (size_t i = 0; i < s->n_stored; i++)
        if (!s->stored[i]->deleted && strcmp(s->stored[i]->id, id) == 0) return s->stored[i];
    return NULL;
}

/* The ownership records of STORE/owners/TENANT/: each to its bundle; one without a bundle is removed. */
static void read_owners(veil_server *s, const char *tenant)
{
    char dir[4096];
    veil_srv_owner_path(s, tenant, NULL, dir, sizeof dir);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        key_entry *k = veil_srv_valid_id(e->d_name) ? veil_srv_find_entry(s, e->d_name) : NULL;
        if (k) {
            if (!veil_srv_owned_by(k, tenant) && !veil_srv_add_owner(k, tenant))
                fprintf(stderr, "veil: store: out of memory reading owners/%s/%s\n", tenant, e->d_name);
            continue;
        }
        char path[4400], where[300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(where, sizeof where, "owners/%s", tenant);
        if (unlink(path) == 0) fprintf(stderr, "veil: store: owners/%s/%s names no bundle: removed\n", tenant, e->d_name);
        else veil_srv_quarantine(s, where, e->d_name, "is not an ownership record");
    }
    closedir(d);
}

/* STORE/keys: temporary files a crash left behind are removed, every bundle checked (check_bundle) and listed,
 * anything else moved to STORE/quarantine. */
static veil_status scan_keys(veil_server *s, veil_error *err)
{
    DIR *d = opendir(s->keys_dir);
    if (!d) return veil_fail(err, VEIL_ERR_IO, "store %s: %s", s->keys_dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[4096];
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", s->keys_dir, e->d_name);
        struct stat sb;
        if (strstr(e->d_name, ".tmp.") && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            unlink(path); /* an upload that never completed: it was never acknowledged */
            continue;
        }
        uint64_t bytes = 0;
        const char *why = s->n_stored == MAX_STORED ? "is beyond the store's limit" : check_bundle(s, e->d_name, &bytes);
        if (why) {
            veil_srv_quarantine(s, "keys", e->d_name, why);
            continue;
        }
        char id[65];
        snprintf(id, sizeof id, "%.32s", e->d_name);
        key_entry *k = veil_srv_new_entry(id, bytes);
        if (!k) break;
        s->stored[s->n_stored++] = k;
        s->stored_bytes += k->bytes;
    }
    closedir(d);
    return VEIL_OK;
}

/* STORE/owners: each tenant's folder read (read_owners); anything else moved aside. */
static veil_status scan_owners(veil_server *s, const char *owners, veil_error *err)
{
    DIR *d = opendir(owners);
    if (!d) return veil_fail(err, VEIL_ERR_IO, "store %s: %s", owners, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (veil_tenant_name_valid(e->d_name) || !strcmp(e->d_name, VEIL_TENANT_ANONYMOUS)) read_owners(s, e->d_name);
        else veil_srv_quarantine(s, "owners", e->d_name, "is not a tenant's folder");
    }
    closedir(d);
    return VEIL_OK;
}

/* A bundle no tenant owns is moved aside. */
static void drop_unowned(veil_server *s)
{
    for (size_t i = 0; i < s->n_stored;) {
        key_entry *k = s->stored[i];
        if (k->n_owners) {
            i++;
            continue;
        }
        char name[80];
        snprintf(name, sizeof name, "%s.keys", k->id);
        veil_srv_quarantine(s, "keys", name, "is owned by no tenant");
        s->stored_bytes -= k->bytes;
        s->stored[i] = s->stored[--s->n_stored];
        veil_srv_free_entry(k);
    }
}

/*
 * Scans and checks the store: temporary files a crash left behind are removed; every bundle is checked
 * (check_bundle) and anything else in STORE/keys moved to STORE/quarantine; the ownership records are read,
 * and a bundle no tenant owns is moved aside too.
 */
static veil_status folder_open(veil_server *s, veil_error *err)
{
    char owners[4096];
    snprintf(owners, sizeof owners, "%s/owners", s->store_dir);
    const char *dirs[3] = {s->store_dir, s->keys_dir, owners};
    for (int i = 0; i < 3; i++)
        if (mkdir(dirs[i], 0700) != 0 && errno != EEXIST)
            return veil_fail(err, VEIL_ERR_IO, "store %s: %s", dirs[i], strerror(errno));
    veil_status st = scan_keys(s, err);
    if (st == VEIL_OK) st = veil_body_tmp_open(s->tmp_dir, err); /* bodies' files a crash left are removed */
    if (st == VEIL_OK) st = scan_owners(s, owners, err);
    if (st == VEIL_OK) drop_unowned(s);
    return st;
}

/* STORE/keys/ID.keys */
static veil_status folder_read(veil_server *s, const char *id, veil_buffer *out, veil_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.keys", s->keys_dir, id);
    return veil_file_read(out, path, (size_t)1 << 34, err);
}

const store_ops veil_folder_store_ops = {"folder", 0, folder_open, NULL, folder_read, NULL, NULL, NULL, NULL, NULL,
                                         NULL};

veil_status veil_srv_open_store(veil_server *s, veil_error *err) { return s->store->open(s, err); }

/* Under lock: k leaves the index (its last owner gone); returned when no request holds it. */
static key_entry *unlist(veil_server *s, key_entry *k)
{
    for (size_t i = 0; i < s->n_stored; i++)
        if (s->stored[i] == k) {
            s->stored[i] = s->stored[--s->n_stored];
            break;
        }
    s->stored_bytes -= k->bytes;
    k->deleted = 1;
    atomic_fetch_sub(&s->cache_bytes, k->cached); /* its memory goes with its last request */
    k->cached = 0;
    return k->refs == 0 ? k : NULL;
}

key_entry *veil_srv_forget_owner(veil_server *s, key_entry *k, const char *tenant)
{
    veil_srv_remove_owner(k, tenant);
    return k->n_owners ? NULL : unlist(s, k);
}

/* Under lock, a shared store: the index made to agree with what the store said of tenant and id (owned, with its
 * bytes, or not); a bundle that left the index and that no request holds goes into *freed. 0 when the index has
 * no room for it (every entry in use). */
static int index_sync(veil_server *s, const char *id, const char *tenant, int owned, uint64_t bytes, key_entry **freed)
{
    key_entry *k = veil_srv_find_entry(s, id);
    *freed = NULL;
    if (!owned) {
        if (k && veil_srv_owned_by(k, tenant)) *freed = veil_srv_forget_owner(s, k, tenant);
        return 1;
    }
    if (!k) {
        if (s->n_stored == MAX_STORED) { /* a cache: one no request holds makes room (reloaded when used) */
            for (size_t i = 0; i < s->n_stored && !*freed; i++)
                if (!s->stored[i]->refs) *freed = unlist(s, s->stored[i]);
            if (!*freed) return 0;
        }
        if (!(k = veil_srv_new_entry(id, bytes))) return 0;
        s->stored[s->n_stored++] = k;
        s->stored_bytes += bytes;
    }
    return veil_srv_owned_by(k, tenant) || veil_srv_add_owner(k, tenant);
}

key_entry *veil_srv_acquire_key(veil_server *s, const char *id, const char *tenant, int *unavailable)
{
    key_entry *found = NULL, *freed = NULL;
    uint64_t bytes = 0;
    const int owned = s->store->shared ? s->store->owns(s, id, tenant, &bytes) : 1;
    if (unavailable) *unavailable = owned < 0;
    if (owned < 0) return NULL; /* the shared store cannot say: the index alone might serve a deleted bundle */
    pthread_mutex_lock(&s->lock);
    if (s->store->shared && !index_sync(s, id, tenant, owned, bytes, &freed) && unavailable) *unavailable = 1;
    for (size_t i = 0; i < s->n_stored; i++)
        if (!s->stored[i]->deleted && strcmp(s->stored[i]->id, id) == 0 && veil_srv_owned_by(s->stored[i], tenant)) {
            found = s->stored[i];
            found->refs++;
            break;
        }
    pthread_mutex_unlock(&s->lock);
    if (freed) veil_srv_free_entry(freed);
    return found;
}

/* Under lock: a bundle no request holds, loaded for a model an admin unloaded, drops its keys and evaluator (they
 * hold the model; loaded again, it finds no evaluator and says so). */
static void drop_if_unloaded(veil_server *s, key_entry *k)
{
    if (k->refs || !k->ev || k->model < 0 || !atomic_load(&s->models[k->model].unloaded)) return;
    veil_evaluator_free(k->ev);
    veil_eval_keys_free(k->keys);
    k->ev = NULL;
    k->keys = NULL;
    k->model = k->known_model = -1; /* loaded again, it finds the model served then */
    atomic_fetch_sub(&s->cache_bytes, k->cached);
    k->cached = 0;
}

void veil_srv_drop_unloaded(veil_server *s)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->n_stored; i++) drop_if_unloaded(s, s->stored[i]);
    pthread_mutex_unlock(&s->lock);
}

void veil_srv_release_key(veil_server *s, key_entry *k)
{
    pthread_mutex_lock(&s->lock);
    int last = --k->refs == 0 && k->deleted;
    if (!last) drop_if_unloaded(s, k);
    pthread_mutex_unlock(&s->lock);
    if (last) veil_srv_free_entry(k);
}

/* Reads a stored bundle and makes its evaluator for the model it was made for (k->model). */
veil_status veil_srv_read_key(veil_server *s, key_entry *k, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_buffer b = {0};
    VEIL_CHECK(s->store->read(s, k->id, &b, err));
    VEIL_CHECK(veil_eval_keys_load(&k->keys, b.data, b.len, err));
    veil_buffer_free(&b); /* parsed: the file's bytes are not held through the evaluators' making */
    k->model = -1;
    for (size_t i = 0; i < s->n_models && k->model < 0; i++) {
        veil_evaluator *ev = NULL;
        veil_error e2 = {0};
        if (atomic_load(&s->models[i].unloaded)) continue; /* an admin stopped serving it */
        uint64_t weight_bytes = 0;
        if (veil_srv_evaluator_for(s, i, k->keys, k->id, &ev, &weight_bytes, &e2) == VEIL_OK) {
            k->ev = ev; /* NULL: an encrypted model's, its weights not uploaded yet */
            k->model = (int)i;
            k->weight_bytes = weight_bytes;
        }
    }
    if (k->model < 0) {
        veil_eval_keys_free(k->keys);
        k->keys = NULL;
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "these evaluation keys were made for none of the models served here");
    }
done:
    veil_buffer_free(&b);
    return st;
}

key_entry *veil_srv_disown(veil_server *s, key_entry *k, const char *tenant)
{
    char rec[4200];
    veil_srv_owner_path(s, tenant, k->id, rec, sizeof rec);
    unlink(rec);
    veil_srv_remove_owner(k, tenant);
    if (k->n_owners) return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.keys", s->keys_dir, k->id);
    unlink(path); /* under the lock: a concurrent upload of the same id is not undone */
    veil_srv_weights_path(s, k->id, path, sizeof path);
    unlink(path); /* an encrypted model's weights for the bundle go with it */
    return unlist(s, k);
}
