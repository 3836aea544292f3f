/* The wire format: headers, payloads, validation, zstd compression and atomic files (see veil/serial.h). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>
#include <zstd.h>
#include "veil/serial.h"
#include "serial/serial_internal.h"
#include "ckks/ckks_internal.h"
#include "bgv/bgv_internal.h"
#include "circuits/circuits_internal.h"

static const uint8_t magic[4] = {'V', 'E', 'I', 'L'};

/* ---- little-endian writer and reader ---------------------------------------------------------- */

typedef struct writer {
    uint8_t *buf;
    size_t len, cap;
    bool failed;
} writer;

static void w_bytes(writer *w, const void *p, size_t n)
{
    if (w->failed) return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 1024;
        while (cap < w->len + n) cap *= 2;
        uint8_t *b = veil_alloc(cap, 1);
        if (!b) {
            w->failed = true;
            return;
        }
        if (w->buf) memcpy(b, w->buf, w->len);
        veil_free_secret(w->buf, w->cap);
        w->buf = b;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void w_u64(writer *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, 8);
}

static void w_f64(writer *w, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    w_u64(w, v);
}

/* Bytes of one limb packed at its prime's bit length. */
static size_t limb_bytes(const veil_ring *r, size_t prime_index)
{
    return (r->n * r->mod[prime_index].bits + 7) / 8;
}

/* Bytes of a polynomial over the ring primes first .. first+count-1 (Q limbs) plus, when with_p, P. */
static size_t poly_bytes(const veil_context *ctx, size_t level, bool with_p)
{
    size_t total = 0;
    for (size_t i = 0; i <= level; i++) total += limb_bytes(ctx->ring, i);
    if (with_p)
        for (size_t k = 0; k < ctx->p_count; k++) total += limb_bytes(ctx->ring, ctx->q_count + k);
    return total;
}

static inline uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static inline void or_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] |= (uint8_t)(v >> (8 * i));
}

/*
 * n values of `bits` bits as a little-endian bit stream, padded to a whole byte. Value j starts at bit
 * j * bits: it is OR-ed into the (zeroed) output with one 64-bit store and, when it straddles 8 bytes, one
 * more byte.
 */
static void w_packed(writer *w, const uint64_t *x, size_t n, unsigned bits)
{
    const size_t bytes = (n * bits + 7) / 8;
    if (w->failed) return;
    if (w->len + bytes + 16 > w->cap) { /* grow once, with room for the last store's spill */
        const size_t keep = w->len;
        size_t cap = w->cap ? w->cap : 1024;
        while (cap < keep + bytes + 16) cap *= 2;
        uint8_t *b = veil_alloc(cap, 1);
        if (!b) {
            w->failed = true;
            return;
        }
        if (w->buf) memcpy(b, w->buf, keep);
        veil_free_secret(w->buf, w->cap);
        w->buf = b;
        w->cap = cap;
    }
    uint8_t *dst = w->buf + w->len;
    memset(dst, 0, bytes + 16);
    for (size_t j = 0; j < n; j++) {
        const size_t o = j * bits, byte = o >> 3;
        const unsigned sh = (unsigned)(o & 7);
        or_le64(dst + byte, x[j] << sh);
        if (sh + bits > 64) dst[byte + 8] |= (uint8_t)(x[j] >> (64 - sh));
    }
    w->len += bytes;
}

/* Each limb packed at its prime's bit length. */
static void w_poly(writer *w, const veil_poly *p)
{
    const veil_ring *r = veil_poly_ring(p);
    for (size_t l = 0; l < veil_poly_limb_count(p); l++)
        w_packed(w, veil_poly_limb_const(p, l), r->n, r->mod[veil_poly_prime_index(p, l)].bits);
}

typedef struct reader {
    const uint8_t *p;
    size_t left;
} reader;

static bool r_bytes(reader *r, void *out, size_t n)
{
    if (r->left < n) return false;
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return true;
}

static bool r_u64(reader *r, uint64_t *v)
{
    uint8_t b[8];
    if (!r_bytes(r, b, 8)) return false;
    *v = 0;
    for (int i = 7; i >= 0; i--) *v = (*v << 8) | b[i];
    return true;
}

static bool r_f64(reader *r, double *d)
{
    uint64_t v;
    if (!r_u64(r, &v)) return false;
    memcpy(d, &v, sizeof *d);
    return true;
}

/*
 * n values of `bits` bits, each below bound, and zero padding; limb names the block in messages. Values
 * whose 9 bytes lie inside the data are read with one 64-bit load (and a byte when they straddle); the last
 * few bit by bit.
 */
static veil_status r_packed(reader *r, uint64_t *x, size_t n, unsigned bits, uint64_t bound, size_t limb,
                            const char *what, veil_error *err)
{
    const uint64_t mask = bits == 64 ? ~(uint64_t)0 : ((uint64_t)1 << bits) - 1;
    const size_t bytes = (n * bits + 7) / 8;
    if (r->left < bytes) return veil_fail(err, VEIL_ERR_FORMAT, "%s: the data ends inside limb %zu", what, limb);
    const uint8_t *p = r->p;
    uint64_t bad = 0;
    size_t j = 0;
    for (; j < n; j++) {
        const size_t o = j * bits, byte = o >> 3;
        const unsigned sh = (unsigned)(o & 7);
        if (byte + 9 > bytes) break;
        uint64_t v = load_le64(p + byte) >> sh;
        if (sh + bits > 64) v |= (uint64_t)p[byte + 8] << (64 - sh);
        x[j] = v & mask;
        bad |= (uint64_t)(x[j] >= bound);
    }
    for (; j < n; j++) { /* the tail, bit by bit */
        uint64_t v = 0;
        for (unsigned b = 0; b < bits; b++) {
            const size_t bit = j * bits + b;
            v |= (uint64_t)((p[bit >> 3] >> (bit & 7)) & 1) << b;
        }
        x[j] = v;
        bad |= (uint64_t)(v >= bound);
    }
    if (bad)
        for (j = 0; j < n; j++)
            if (x[j] >= bound)
                return veil_fail(err, VEIL_ERR_FORMAT, "%s: residue %zu of limb %zu is not below its prime", what, j,
                                 limb);
    const unsigned used = (unsigned)((n * bits) & 7);
    if (used && (p[bytes - 1] >> used) != 0)
        return veil_fail(err, VEIL_ERR_FORMAT, "%s: nonzero padding after limb %zu", what, limb);
    r->p += bytes;
    r->left -= bytes;
    return VEIL_OK;
}

static veil_status r_poly(reader *r, veil_poly *p, const char *what, veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_ring *ring = veil_poly_ring(p);
    for (size_t l = 0; l < veil_poly_limb_count(p); l++) {
        const size_t prime = veil_poly_prime_index(p, l);
        VEIL_CHECK(r_packed(r, veil_poly_limb(p, l), ring->n, ring->mod[prime].bits, ring->primes[prime], l, what, err));
    }
    p->form = VEIL_FORM_EVAL;
done:
    return st;
}

void veil_buffer_free(veil_buffer *buf)
{
    if (!buf) return;
    veil_free_secret(buf->data, buf->len);
    buf->data = NULL;
    buf->len = 0;
}

/* ---- header ------------------------------------------------------------------------------------- */

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/*
 * The integrity digest of a version-2 object: BLAKE2b-256 (unkeyed) of its first len bytes, the header and
 * the stored payload. It catches accidental damage; it authenticates nothing (anyone can recompute it).
 */
static void object_digest(uint8_t out[VEIL_DIGEST_BYTES], const uint8_t *data, size_t len)
{
    crypto_generichash(out, VEIL_DIGEST_BYTES, data, len, NULL, 0);
}

void veil_object_reseal(uint8_t *data, size_t len)
{
    if (data && len >= VEIL_DIGEST_BYTES) object_digest(data + len - VEIL_DIGEST_BYTES, data, len - VEIL_DIGEST_BYTES);
}

/* Header, (optionally compressed) payload and digest into out. Consumes the payload writer. */
static veil_status finish(veil_buffer *out, writer *payload, veil_object_type type, uint32_t flags,
                          const veil_params *params, unsigned options, veil_error *err)
{
    veil_status st = VEIL_OK;
    uint8_t *packed = NULL;
    size_t packed_cap = 0;
    out->data = NULL;
    out->len = 0;
    if (payload->failed) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "save: out of memory");
    const uint8_t *body = payload->buf;
    size_t body_len = payload->len;
    /* a secret object is never compressed: zstd's internal buffers would hold copies we cannot wipe */
    if ((options & VEIL_SAVE_COMPRESS) && !(flags & VEIL_FLAG_SECRET)) {
        packed_cap = ZSTD_compressBound(payload->len);
        packed = veil_alloc(packed_cap, 1);
        if (!packed) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "save: out of memory");
        size_t z = ZSTD_compress(packed, packed_cap, payload->buf, payload->len, 3);
        if (ZSTD_isError(z)) VEIL_FAIL(err, VEIL_ERR_INTERNAL, "save: zstd failed: %s", ZSTD_getErrorName(z));
        body = packed;
        body_len = z;
        flags |= VEIL_FLAG_ZSTD;
    }
    out->len = VEIL_HEADER_BYTES + body_len + VEIL_DIGEST_BYTES;
    out->data = veil_alloc(out->len, 1);
    if (!out->data) {
        out->len = 0;
        VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "save: out of memory");
    }
    uint8_t *h = out->data;
    memcpy(h, magic, 4);
    put_le(h + 4, VEIL_FORMAT_VERSION, 2);
    put_le(h + 6, (uint64_t)type, 2);
    put_le(h + 8, flags, 4);
    put_le(h + 12, (uint64_t)veil_params_security(params), 4);
    veil_params_hash(params, h + 16);
    put_le(h + 48, body_len, 8);
    put_le(h + 56, payload->len, 8);
    memcpy(h + VEIL_HEADER_BYTES, body, body_len);
    object_digest(h + VEIL_HEADER_BYTES + body_len, h, VEIL_HEADER_BYTES + body_len);
done:
    veil_free_secret(packed, packed_cap);
    veil_free_secret(payload->buf, payload->cap);
    return st;
}

/*
 * A fuzzing build (VEIL_FUZZ, see tests/fuzz/run.sh) computes the digest but ignores a mismatch, so that
 * mutated inputs still reach the parsers behind it. Never ship such a build.
 */
#ifdef VEIL_FUZZ_IGNORE_DIGEST
#define DIGEST_ENFORCED 0
#else
#define DIGEST_ENFORCED 1
#endif

/* The digest at the end of a version-2 object against its other bytes (len covers the digest). */
static veil_status check_digest(const uint8_t *data, size_t len, veil_error *err)
{
    if (len < VEIL_HEADER_BYTES + VEIL_DIGEST_BYTES)
        return veil_fail(err, VEIL_ERR_FORMAT, "the object is truncated: %zu bytes, shorter than a header and its "
                         "integrity digest", len);
    uint8_t d[VEIL_DIGEST_BYTES];
    object_digest(d, data, len - VEIL_DIGEST_BYTES);
    if (DIGEST_ENFORCED && memcmp(d, data + len - VEIL_DIGEST_BYTES, sizeof d) != 0)
        return veil_fail(err, VEIL_ERR_FORMAT, "the object is corrupt: its integrity digest does not match its %zu "
                         "bytes (damaged or truncated; the digest detects accidents, it is not authentication)", len);
    return VEIL_OK;
}

/*
 * Reads and checks a header. Magic and version come first (they say where the digest is); then, when
 * verify is set, the digest, before any other field is believed. A set's objects are read with verify
 * unset: the set's own digest covers them, and their loaders verify theirs.
 */
static veil_status parse_header(veil_object_info *info, const uint8_t *data, size_t len, bool verify,
                                veil_error *err)
{
    veil_status st = VEIL_OK;
    if (len < VEIL_HEADER_BYTES) VEIL_FAIL(err, VEIL_ERR_FORMAT, "not a Veil object: %zu bytes, shorter than a header", len);
    if (memcmp(data, magic, 4) != 0) VEIL_FAIL(err, VEIL_ERR_FORMAT, "not a Veil object: bad magic");
    uint64_t version = get_le(data + 4, 2);
    if (version < 1 || version > VEIL_FORMAT_VERSION)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "format version %llu is not supported (this build reads 1 to %d)",
                  (unsigned long long)version, VEIL_FORMAT_VERSION);
    size_t body = len - VEIL_HEADER_BYTES; /* the stored payload: everything between header and digest */
    if (version >= 2) {
        if (verify) VEIL_CHECK(check_digest(data, len, err));
        else if (len < VEIL_HEADER_BYTES + VEIL_DIGEST_BYTES)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "the object is truncated: no room for its integrity digest");
        body -= VEIL_DIGEST_BYTES;
    }
    uint64_t type = get_le(data + 6, 2), flags = get_le(data + 8, 4), sec = get_le(data + 12, 4);
    if (type < VEIL_OBJECT_PARAMS || type > VEIL_OBJECT_ENCAPSULATION_KEY)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "unknown object type %llu", (unsigned long long)type);
    if (flags & ~(uint64_t)(VEIL_FLAG_ZSTD | VEIL_FLAG_SEEDED | VEIL_FLAG_SECRET))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "unknown flags 0x%llx", (unsigned long long)flags);
    if (sec > VEIL_SECURITY_NONE) VEIL_FAIL(err, VEIL_ERR_FORMAT, "unknown security level %llu", (unsigned long long)sec);
    info->type = (veil_object_type)type;
    info->flags = (uint32_t)flags;
    info->security = (veil_security)sec;
    memcpy(info->params_hash, data + 16, VEIL_PARAMS_HASH_BYTES);
    info->stored_bytes = get_le(data + 48, 8);
    info->payload_bytes = get_le(data + 56, 8);
    info->version = (unsigned)version;
    if (info->stored_bytes != body)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "the header announces %llu payload bytes but %zu follow",
                  (unsigned long long)info->stored_bytes, body);
    if (!(flags & VEIL_FLAG_ZSTD) && info->payload_bytes != info->stored_bytes)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "an uncompressed payload must be stored as is");
done:
    return st;
}

veil_status veil_object_peek(veil_object_info *info, const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(info, err);
    VEIL_REQUIRE(data, err);
    return parse_header(info, data, len, true, err);
}

veil_status veil_object_peek_ex(veil_object_info *info, const uint8_t *data, size_t len, bool verify, veil_error *err)
{
    VEIL_REQUIRE(info, err);
    VEIL_REQUIRE(data, err);
    return parse_header(info, data, len, verify, err);
}

static const char *type_name(veil_object_type t)
{
    switch (t) {
    case VEIL_OBJECT_PARAMS: return "a parameter set";
    case VEIL_OBJECT_SECRET_KEY: return "a secret key";
    case VEIL_OBJECT_PUBLIC_KEY: return "a public key";
    case VEIL_OBJECT_SWITCH_KEY: return "a key-switching key";
    case VEIL_OBJECT_CKKS_PLAINTEXT: return "a CKKS plaintext";
    case VEIL_OBJECT_CKKS_CIPHERTEXT: return "a CKKS ciphertext";
    case VEIL_OBJECT_BGV_PLAINTEXT: return "a BGV plaintext";
    case VEIL_OBJECT_BGV_CIPHERTEXT: return "a BGV ciphertext";
    case VEIL_OBJECT_SET: return "a set of objects";
    case VEIL_OBJECT_PARTY_GROUP: return "a party group";
    case VEIL_OBJECT_PARTY_SHARE: return "a party's share";
    case VEIL_OBJECT_PARTY_BOX_KEY: return "a party's box key";
    case VEIL_OBJECT_PARTY_DEAL: return "a party's deal";
    case VEIL_OBJECT_PARTY_THRESHOLD_KEY: return "a party's threshold key";
    case VEIL_OBJECT_ENCAPSULATION_KEY: return "an encapsulation key";
    }
    return "an unknown object";
}

/*
 * Checks the header (its digest when verify is set) against the expected type and context, bounds the payload
 * by `limit` before any allocation, and points *raw at the payload: inside data when stored as is, else at
 * its decompressed copy in *owned (free with veil_free_secret(*owned, *raw_len); NULL when nothing was copied).
 */
static veil_status open_object(const uint8_t **raw, size_t *raw_len, uint8_t **owned, uint32_t *flags,
                               const uint8_t *data, size_t len, veil_object_type want, const veil_params *params,
                               size_t limit, bool verify, veil_error *err)
{
    veil_status st = VEIL_OK;
    veil_object_info info;
    *raw = NULL;
    *owned = NULL;
    VEIL_CHECK(parse_header(&info, data, len, verify, err));
    if (info.type != want)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "expected %s, found %s", type_name(want), type_name(info.type));
    if (params) {
        uint8_t h[VEIL_PARAMS_HASH_BYTES];
        veil_params_hash(params, h);
        if (memcmp(h, info.params_hash, sizeof h) != 0)
            VEIL_FAIL(err, VEIL_ERR_MISMATCH, "%s made for another parameter set (hash mismatch)", type_name(want));
    }
    const bool secret = want == VEIL_OBJECT_SECRET_KEY || want == VEIL_OBJECT_PARTY_THRESHOLD_KEY;
    if (!!(info.flags & VEIL_FLAG_SECRET) != secret)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s whose header %s the secret flag", type_name(want),
                  secret ? "lacks" : "carries");
    if (secret && (info.flags & (VEIL_FLAG_ZSTD | VEIL_FLAG_SEEDED)))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "a secret key is never stored compressed or seeded");
    if (want == VEIL_OBJECT_PARAMS || want == VEIL_OBJECT_CKKS_PLAINTEXT || want == VEIL_OBJECT_BGV_PLAINTEXT ||
        want == VEIL_OBJECT_PARTY_GROUP || want == VEIL_OBJECT_PARTY_SHARE || want == VEIL_OBJECT_PARTY_BOX_KEY ||
        want == VEIL_OBJECT_PARTY_DEAL) {
        if (info.flags & VEIL_FLAG_SEEDED)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s has no seeded form", type_name(want));
    }
    if (params && info.security != veil_params_security(params))
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "%s records security level %d, the context has %d", type_name(want),
                  (int)info.security, (int)veil_params_security(params));
    /* a compressed payload may exceed its raw size by zstd's worst case, never more */
    const size_t stored_limit = limit < ((size_t)1 << 40) ? ZSTD_compressBound(limit) : limit;
    if (info.payload_bytes > limit || info.stored_bytes > stored_limit)
        VEIL_FAIL(err, VEIL_ERR_FORMAT,
                  "%s of %llu bytes (%llu stored) exceeds the %zu bytes its parameters allow",
                  type_name(want), (unsigned long long)info.payload_bytes,
                  (unsigned long long)info.stored_bytes, limit);
    const uint8_t *body = data + VEIL_HEADER_BYTES;
    *raw_len = (size_t)info.payload_bytes;
    if (info.flags & VEIL_FLAG_ZSTD) {
        *owned = veil_alloc_scratch(*raw_len ? *raw_len : 1, 1);
        if (!*owned) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "load: out of memory");
        unsigned long long declared = ZSTD_getFrameContentSize(body, (size_t)info.stored_bytes);
        if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN || declared != info.payload_bytes)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "the compressed payload does not announce the header's size");
        size_t got = ZSTD_decompress(*owned, *raw_len, body, (size_t)info.stored_bytes);
        if (ZSTD_isError(got) || got != *raw_len) VEIL_FAIL(err, VEIL_ERR_FORMAT, "the compressed payload is corrupt");
        *raw = *owned;
    } else {
        *raw = body; /* read where it lies: a copy would cost a pass and fresh pages (148 MB of keys) */
    }
    *flags = info.flags;
done:
    if (st != VEIL_OK) { /* nothing is returned on failure */
        veil_free_secret(*owned, *raw_len);
        *owned = NULL;
        *raw = NULL;
    }
    return st;
}

static veil_status expect_end(const reader *r, const char *what, veil_error *err)
{
    if (r->left != 0) return veil_fail(err, VEIL_ERR_FORMAT, "%s: %zu unexpected bytes after the data", what, r->left);
    return VEIL_OK;
}

/* ---- parameters ---------------------------------------------------------------------------------- */

veil_status veil_params_save(veil_buffer *out, const veil_params *p, unsigned options, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(p, err);
    writer w = {0};
    w_u64(&w, p->n);
    w_u64(&w, p->q_count);
    w_u64(&w, p->p_count);
    w_u64(&w, p->dnum);
    w_u64(&w, (uint64_t)p->secret);
    w_u64(&w, p->hamming_weight);
    w_u64(&w, (uint64_t)p->security);
    for (size_t i = 0; i < p->q_count; i++) w_u64(&w, p->q[i]);
    for (size_t i = 0; i < p->p_count; i++) w_u64(&w, p->p[i]);
    w_u64(&w, p->t);
    return finish(out, &w, VEIL_OBJECT_PARAMS, 0, p, options, err);
}

veil_status veil_params_load(veil_params **out, const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(data, err);
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    uint32_t flags = 0;
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len, VEIL_OBJECT_PARAMS, NULL,
                           8 * (8 + 2 * VEIL_PARAMS_MAX_PRIMES), true, err));
    reader r = {raw, raw_len};
    uint64_t f[7];
    for (int i = 0; i < 7; i++)
        if (!r_u64(&r, &f[i])) VEIL_FAIL(err, VEIL_ERR_FORMAT, "parameters: truncated");
    if (f[1] > VEIL_PARAMS_MAX_PRIMES || f[2] > VEIL_PARAMS_MAX_PRIMES || f[4] > 1 || f[6] > 3)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "parameters: field out of range");
    uint64_t q[VEIL_PARAMS_MAX_PRIMES], pp[VEIL_PARAMS_MAX_PRIMES];
    for (uint64_t i = 0; i < f[1]; i++)
        if (!r_u64(&r, &q[i])) VEIL_FAIL(err, VEIL_ERR_FORMAT, "parameters: truncated");
    for (uint64_t i = 0; i < f[2]; i++)
        if (!r_u64(&r, &pp[i])) VEIL_FAIL(err, VEIL_ERR_FORMAT, "parameters: truncated");
    uint64_t t = 0;
    if (!r_u64(&r, &t)) VEIL_FAIL(err, VEIL_ERR_FORMAT, "parameters: truncated");
    VEIL_CHECK(expect_end(&r, "parameters", err));
    /* rebuilding runs every check of veil_params_new, the security check included */
    veil_params_spec spec = {(size_t)f[0], (size_t)f[1], q, NULL, (size_t)f[2], pp, NULL, (size_t)f[3],
                             (veil_secret_kind)f[4], (size_t)f[5], (veil_security)f[6], t};
    VEIL_CHECK(veil_params_new(out, &spec, err));
    uint8_t h[VEIL_PARAMS_HASH_BYTES];
    veil_params_hash(*out, h);
    if (memcmp(h, data + 16, sizeof h) != 0) {
        veil_params_free(*out);
        *out = NULL;
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "parameters: the header's hash does not match the set");
    }
done:
    veil_free_secret(owned, raw_len);
    return st;
}

/* ---- exact stored sizes (serial_internal.h) ------------------------------------------------------- */

static unsigned bit_length(uint64_t v)
{
    unsigned b = 0;
    for (; v; v >>= 1) b++;
    return b;
}

/* A polynomial over q_0 .. q_level (and P when with_p), each limb packed at its prime's bit length. */
static size_t params_poly_bytes(const veil_params *p, size_t level, bool with_p)
{
    size_t total = 0;
    for (size_t i = 0; i <= level && i < p->q_count; i++) total += (p->n * bit_length(p->q[i]) + 7) / 8;
    for (size_t k = 0; with_p && k < p->p_count; k++) total += (p->n * bit_length(p->p[k]) + 7) / 8;
    return total;
}

static size_t object_bytes(size_t payload) { return VEIL_HEADER_BYTES + payload + VEIL_DIGEST_BYTES; }

size_t veil_params_stored_bytes(const veil_params *p) { return object_bytes(8 * (8 + p->q_count + p->p_count)); }

size_t veil_public_key_stored_bytes(const veil_params *p)
{
    return object_bytes(VEIL_SEED_BYTES + params_poly_bytes(p, p->q_count - 1, true));
}

size_t veil_switch_key_stored_bytes(const veil_params *p)
{
    return object_bytes(16 + VEIL_SEED_BYTES + p->dnum * params_poly_bytes(p, p->q_count - 1, true));
}

/* veil_ckks_encapsulation_key_save's size: weight, digits, two seeds, b over {q_0, p_0}, the key back over Q P. */
size_t veil_ckks_encapsulation_key_stored_bytes(const veil_params *p)
{
    if (p->q_count == 0 || p->p_count == 0) return 0;
    const size_t q0 = (p->n * bit_length(p->q[0]) + 7) / 8, p0 = (p->n * bit_length(p->p[0]) + 7) / 8;
    return object_bytes(16 + 2 * VEIL_SEED_BYTES + q0 + p0 + p->dnum * params_poly_bytes(p, p->q_count - 1, true));
}

/* head: the fields before the polynomials (24 bytes in CKKS, 32 in BGV) */
static size_t cipher_stored_bytes(const veil_params *p, size_t head, size_t level, size_t size, bool seeded)
{
    const size_t poly = params_poly_bytes(p, level, false);
    return object_bytes(head + (seeded ? VEIL_SEED_BYTES + poly : size * poly));
}

size_t veil_ckks_ciphertext_stored_bytes(const veil_params *p, size_t level, size_t size, bool seeded)
{
    return cipher_stored_bytes(p, 24, level, size, seeded);
}

size_t veil_bgv_ciphertext_stored_bytes(const veil_params *p, size_t level, size_t size, bool seeded)
{
    return cipher_stored_bytes(p, 32, level, size, seeded);
}

size_t veil_set_stored_bytes(size_t meta_len, size_t count, size_t items_bytes)
{
    return object_bytes(8 + meta_len + 8 + 8 * count + items_bytes);
}

/* ---- keys ---------------------------------------------------------------------------------------- */

veil_status veil_secret_key_save(veil_buffer *out, const veil_secret_key *sk, unsigned options, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(sk, err);
    writer w = {0};
    w_bytes(&w, sk->coeffs, sk->ctx->params.n);
    return finish(out, &w, VEIL_OBJECT_SECRET_KEY, VEIL_FLAG_SECRET, &sk->ctx->params, options, err);
}

veil_status veil_secret_key_load(veil_secret_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    const size_t n = ctx->params.n;
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    uint32_t flags = 0;
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len,
                           VEIL_OBJECT_SECRET_KEY, &ctx->params, n, true, err));
    if (raw_len != n) VEIL_FAIL(err, VEIL_ERR_FORMAT, "secret key: %zu bytes, expected %zu", raw_len, n);
    size_t weight = 0;
    for (size_t j = 0; j < n; j++) {
        int8_t c = (int8_t)raw[j];
        if (c < -1 || c > 1) VEIL_FAIL(err, VEIL_ERR_FORMAT, "secret key: coefficient %zu is not in {-1, 0, 1}", j);
        weight += c != 0;
    }
    if (ctx->params.secret == VEIL_SECRET_TERNARY_HW && weight != ctx->params.hamming_weight)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "secret key: Hamming weight %zu, the parameters say %zu", weight,
                  ctx->params.hamming_weight);
    VEIL_CHECK(veil_secret_key_from_coeffs(out, ctx, (const int8_t *)raw, err));
done:
    veil_free_secret(owned, raw_len);
    return st;
}

/* Limits: the largest payload each object may have under ctx. */
static size_t qp_limbs(const veil_context *ctx) { return ctx->q_count + ctx->p_count; }

veil_status veil_public_key_save(veil_buffer *out, const veil_public_key *pk, unsigned options, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(pk, err);
    writer w = {0};
    w_bytes(&w, pk->seed, sizeof pk->seed);
    w_poly(&w, pk->b);
    return finish(out, &w, VEIL_OBJECT_PUBLIC_KEY, VEIL_FLAG_SEEDED, &pk->ctx->params, options, err);
}

veil_status veil_public_key_load_ex(veil_public_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 bool verify, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    const size_t limbs = qp_limbs(ctx), expected = VEIL_SEED_BYTES + poly_bytes(ctx, ctx->q_count - 1, true);
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    uint32_t flags = 0;
    veil_public_key *pk = NULL;
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len,
                           VEIL_OBJECT_PUBLIC_KEY, &ctx->params, expected, verify, err));
    if (!(flags & VEIL_FLAG_SEEDED) || raw_len != expected)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "public key: %zu bytes in %s form, expected %zu in seeded form", raw_len,
                  flags & VEIL_FLAG_SEEDED ? "seeded" : "full", expected);
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    veil_context_qp_base(ctx, ctx->q_count - 1, base);
    pk = veil_alloc(1, sizeof *pk);
    if (!pk) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "public key: out of memory");
    VEIL_CHECK(veil_poly_new(&pk->a, ctx->ring, base, limbs, VEIL_FORM_EVAL, err));
    VEIL_CHECK(veil_poly_new(&pk->b, ctx->ring, base, limbs, VEIL_FORM_EVAL, err));
    reader r = {raw, raw_len};
    r_bytes(&r, pk->seed, sizeof pk->seed);
    VEIL_CHECK(r_poly(&r, pk->b, "public key", err));
    VEIL_CHECK(veil_uniform_from_seed(pk->a, pk->seed, 0, err));
    pk->ctx = ctx;
    *out = pk;
    pk = NULL;
done:
    veil_public_key_free(pk);
    veil_free_secret(owned, raw_len);
    return st;
}

veil_status veil_public_key_load(veil_public_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 veil_error *err)
{
    return veil_public_key_load_ex(out, ctx, data, len, true, err);
}

veil_status veil_switch_key_save(veil_buffer *out, const veil_switch_key *key, unsigned options, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(key, err);
    writer w = {0};
    w_u64(&w, key->galois);
    w_u64(&w, key->digits);
    if (key->full) { /* a multi-party relinearization key: a_j is no seed's expansion */
        for (size_t j = 0; j < key->digits; j++) {
            w_poly(&w, key->b[j]);
            w_poly(&w, key->a[j]);
        }
        return finish(out, &w, VEIL_OBJECT_SWITCH_KEY, 0, &key->ctx->params, options, err);
    }
    w_bytes(&w, key->seed, sizeof key->seed);
    for (size_t j = 0; j < key->digits; j++) w_poly(&w, key->b[j]);
    return finish(out, &w, VEIL_OBJECT_SWITCH_KEY, VEIL_FLAG_SEEDED, &key->ctx->params, options, err);
}

veil_status veil_switch_key_load_ex(veil_switch_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 bool verify, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    const size_t n = ctx->params.n, limbs = qp_limbs(ctx);
    const size_t seeded = 16 + VEIL_SEED_BYTES + ctx->dnum * poly_bytes(ctx, ctx->q_count - 1, true);
    const size_t full = 16 + 2 * ctx->dnum * poly_bytes(ctx, ctx->q_count - 1, true);
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    uint32_t flags = 0;
    veil_switch_key *k = NULL;
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len,
                           VEIL_OBJECT_SWITCH_KEY, &ctx->params, full, verify, err));
    reader r = {raw, raw_len};
    uint64_t galois = 0, digits = 0;
    const bool is_seeded = (flags & VEIL_FLAG_SEEDED) != 0;
    const size_t expected = is_seeded ? seeded : full;
    if (!r_u64(&r, &galois) || !r_u64(&r, &digits) || raw_len != expected)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "key-switching key: %zu bytes, expected %zu in %s form", raw_len, expected,
                  is_seeded ? "seeded" : "full");
    if (!is_seeded && galois != 0)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "key-switching key: only a relinearization key is stored in full form");
    if (digits != ctx->dnum)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "key-switching key: %llu digits, the parameters have %zu",
                  (unsigned long long)digits, ctx->dnum);
    if (galois != 0 && ((galois & 1) == 0 || galois == 1 || galois >= 2 * (uint64_t)n))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "key-switching key: Galois element %llu is not odd in [3, 2N)",
                  (unsigned long long)galois);
    k = veil_alloc(1, sizeof *k);
    if (k) {
        k->ctx = ctx;
        k->galois = galois;
        k->digits = ctx->dnum;
        k->a = veil_alloc(k->digits, sizeof *k->a);
        k->b = veil_alloc(k->digits, sizeof *k->b);
    }
    if (!k || !k->a || !k->b) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "key-switching key: out of memory");
    if (is_seeded) r_bytes(&r, k->seed, sizeof k->seed);
    k->full = !is_seeded;
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    veil_context_qp_base(ctx, ctx->q_count - 1, base);
    for (size_t j = 0; j < ctx->dnum; j++) {
        VEIL_CHECK(veil_poly_new(&k->b[j], ctx->ring, base, limbs, VEIL_FORM_EVAL, err));
        VEIL_CHECK(veil_poly_new(&k->a[j], ctx->ring, base, limbs, VEIL_FORM_EVAL, err));
        VEIL_CHECK(r_poly(&r, k->b[j], "key-switching key", err));
        if (is_seeded) VEIL_CHECK(veil_uniform_from_seed(k->a[j], k->seed, 1 + j, err));
        else VEIL_CHECK(r_poly(&r, k->a[j], "key-switching key", err));
    }
    *out = k;
    k = NULL;
done:
    veil_switch_key_free(k);
    veil_free_secret(owned, raw_len);
    return st;
}

veil_status veil_switch_key_load(veil_switch_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 veil_error *err)
{
    return veil_switch_key_load_ex(out, ctx, data, len, true, err);
}

veil_status veil_ckks_encapsulation_key_save(veil_buffer *out, const veil_ckks_encapsulation_key *key,
                                             unsigned options, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(key, err);
    writer w = {0};
    w_u64(&w, key->weight);
    w_u64(&w, key->to_dense->digits);
    w_bytes(&w, key->seed, sizeof key->seed);
    w_poly(&w, key->b);
    w_bytes(&w, key->to_dense->seed, sizeof key->to_dense->seed);
    for (size_t j = 0; j < key->to_dense->digits; j++) w_poly(&w, key->to_dense->b[j]);
    return finish(out, &w, VEIL_OBJECT_ENCAPSULATION_KEY, VEIL_FLAG_SEEDED, &key->ctx->params, options, err);
}

veil_status veil_ckks_encapsulation_key_load_ex(veil_ckks_encapsulation_key **out, const veil_context *ctx,
                                             const uint8_t *data, size_t len, bool verify, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    const size_t n = ctx->params.n, limbs = qp_limbs(ctx);
    const size_t expected = 16 + 2 * VEIL_SEED_BYTES + limb_bytes(ctx->ring, 0) + limb_bytes(ctx->ring, ctx->q_count) +
                            ctx->dnum * poly_bytes(ctx, ctx->q_count - 1, true);
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    uint32_t flags = 0;
    veil_ckks_encapsulation_key *k = NULL;
    veil_switch_key *d = NULL;
    if (ctx->params.t != 0 || ctx->p_count == 0)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "encapsulation key: a CKKS parameter set with special primes is needed");
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len,
                           VEIL_OBJECT_ENCAPSULATION_KEY, &ctx->params, expected,
                           verify, err));
    reader r = {raw, raw_len};
    uint64_t weight = 0, digits = 0;
    if (!(flags & VEIL_FLAG_SEEDED) || !r_u64(&r, &weight) || !r_u64(&r, &digits) || raw_len != expected)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "encapsulation key: %zu bytes, expected %zu in seeded form", raw_len, expected);
    if (weight < 1 || weight > n / 2)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "encapsulation key: weight %llu (1..N/2)", (unsigned long long)weight);
    if (digits != ctx->dnum)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "encapsulation key: %llu digits, the parameters have %zu",
                  (unsigned long long)digits, ctx->dnum);
    VEIL_CHECK(veil_boot_encaps_alloc(&k, ctx, (size_t)weight, err));
    r_bytes(&r, k->seed, sizeof k->seed);
    VEIL_CHECK(r_poly(&r, k->b, "encapsulation key", err));
    VEIL_CHECK(veil_uniform_from_seed(k->a, k->seed, 1, err));
    d = veil_alloc(1, sizeof *d);
    if (d) {
        d->ctx = ctx;
        d->galois = 0;
        d->full = false;
        d->digits = ctx->dnum;
        d->a = veil_alloc(d->digits, sizeof *d->a);
        d->b = veil_alloc(d->digits, sizeof *d->b);
    }
    if (!d || !d->a || !d->b) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "encapsulation key: out of memory");
    r_bytes(&r, d->seed, sizeof d->seed);
    size_t base[2 * VEIL_PARAMS_MAX_PRIMES];
    veil_context_qp_base(ctx, ctx->q_count - 1, base);
    for (size_t j = 0; j < ctx->dnum; j++) {
        VEIL_CHECK(veil_poly_new(&d->b[j], ctx->ring, base, limbs, VEIL_FORM_EVAL, err));
        VEIL_CHECK(veil_poly_new(&d->a[j], ctx->ring, base, limbs, VEIL_FORM_EVAL, err));
        VEIL_CHECK(r_poly(&r, d->b[j], "encapsulation key", err));
        VEIL_CHECK(veil_uniform_from_seed(d->a[j], d->seed, 1 + j, err));
    }
    k->to_dense = d;
    d = NULL;
    *out = k;
    k = NULL;
done:
    veil_switch_key_free(d);
    veil_ckks_encapsulation_key_free(k);
    veil_free_secret(owned, raw_len);
    return st;
}

veil_status veil_ckks_encapsulation_key_load(veil_ckks_encapsulation_key **out, const veil_context *ctx,
                                             const uint8_t *data, size_t len, veil_error *err)
{
    return veil_ckks_encapsulation_key_load_ex(out, ctx, data, len, true, err);
}

/* ---- CKKS plaintexts and ciphertexts -------------------------------------------------------------- */

static veil_status check_scale(double scale, const char *what, veil_error *err)
{
    if (!isfinite(scale) || scale < 1.0 || scale > 0x1p1000)
        return veil_fail(err, VEIL_ERR_FORMAT, "%s: scale %g is not a finite number in [1, 2^1000]", what, scale);
    return VEIL_OK;
}

veil_status veil_ckks_plaintext_save(veil_buffer *out, const veil_ckks_plaintext *pt, unsigned options,
                                     veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(pt, err);
    if (!pt->m) return veil_fail(err, VEIL_ERR_ARGUMENT, "save: the plaintext is empty");
    writer w = {0};
    w_u64(&w, pt->level);
    w_f64(&w, pt->scale);
    w_poly(&w, pt->m);
    return finish(out, &w, VEIL_OBJECT_CKKS_PLAINTEXT, 0, &pt->ctx->params, options, err);
}

veil_status veil_ckks_plaintext_load(veil_ckks_plaintext **out, const veil_context *ctx, const uint8_t *data,
                                     size_t len, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    uint32_t flags = 0;
    veil_ckks_plaintext *pt = NULL;
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len, VEIL_OBJECT_CKKS_PLAINTEXT, &ctx->params,
                           16 + poly_bytes(ctx, ctx->q_count - 1, false), true, err));
    reader r = {raw, raw_len};
    uint64_t level = 0;
    double scale = 0;
    if (!r_u64(&r, &level) || !r_f64(&r, &scale)) VEIL_FAIL(err, VEIL_ERR_FORMAT, "plaintext: truncated");
    if (level >= ctx->q_count)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "plaintext: level %llu does not exist", (unsigned long long)level);
    if (raw_len != 16 + poly_bytes(ctx, (size_t)level, false))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "plaintext: wrong length for level %llu", (unsigned long long)level);
    VEIL_CHECK(check_scale(scale, "plaintext", err));
    VEIL_CHECK(veil_ckks_plaintext_new(&pt, ctx, err));
    VEIL_CHECK(veil_context_poly_new(&pt->m, ctx, (size_t)level, VEIL_FORM_EVAL, err));
    VEIL_CHECK(r_poly(&r, pt->m, "plaintext", err));
    pt->level = (size_t)level;
    pt->scale = scale;
    *out = pt;
    pt = NULL;
done:
    veil_ckks_plaintext_free(pt);
    veil_free_secret(owned, raw_len);
    return st;
}

/*
 * Ciphertexts of both schemes are stored alike: the element's level and size (8 bytes each), the scheme's
 * metadata (CKKS: the scale; BGV: the correction factor and the noise estimate), then the polynomials: all
 * of them, or, for a seeded element, the seed and c_0 only (the seeded flag of the header says which).
 */
typedef struct element_head {
    uint64_t level, size;
    bool seeded;
} element_head;

static veil_status check_saved_element(const veil_rlwe_element *e, veil_error *err)
{
    if (e->size < 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "save: the ciphertext is empty");
    return VEIL_OK;
}

static void w_element_head(writer *w, const veil_rlwe_element *e)
{
    w_u64(w, e->level);
    w_u64(w, e->size);
}

/* Writes the element's polynomials after the metadata in w and frames the object. */
static veil_status save_element(veil_buffer *out, writer *w, const veil_rlwe_element *e, veil_object_type type,
                                unsigned options, veil_error *err)
{
    if (e->seeded) {
        w_bytes(w, e->seed, VEIL_SEED_BYTES);
        w_poly(w, e->c[0]);
    } else {
        for (size_t i = 0; i < e->size; i++) w_poly(w, e->c[i]);
    }
    return finish(out, w, type, e->seeded ? VEIL_FLAG_SEEDED : 0, &e->ctx->params, options, err);
}

/* The largest payload of a ciphertext whose metadata ends at byte `head`. */
static size_t element_limit(const veil_context *ctx, size_t head)
{
    return head + VEIL_SEED_BYTES + 3 * poly_bytes(ctx, ctx->q_count - 1, false);
}

/* Opens a ciphertext object and reads its element's level and size (what: the object's name in messages). */
static veil_status open_element(const uint8_t **raw, size_t *raw_len, uint8_t **owned, reader *r, element_head *h,
                                const veil_context *ctx, const uint8_t *data, size_t len, veil_object_type type,
                                size_t head, const char *what, bool verify, veil_error *err)
{
    veil_status st = VEIL_OK;
    uint32_t flags = 0;
    VEIL_CHECK(open_object(raw, raw_len, owned, &flags, data, len, type, &ctx->params, element_limit(ctx, head), verify,
                           err));
    r->p = *raw;
    r->left = *raw_len;
    h->seeded = flags & VEIL_FLAG_SEEDED;
    if (!r_u64(r, &h->level) || !r_u64(r, &h->size)) VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s: truncated", what);
done:
    return st;
}

/*
 * Reads the element's polynomials after its metadata (head: the bytes before them), checking its level, its
 * size and the exact length first; a seeded element's c_1 is the expansion of its seed.
 */
static veil_status r_element(reader *r, veil_rlwe_element *e, const element_head *h, size_t head, const char *what,
                             veil_error *err)
{
    veil_status st = VEIL_OK;
    const veil_context *ctx = e->ctx;
    if (h->level >= ctx->q_count)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s: level %llu does not exist", what, (unsigned long long)h->level);
    if (h->size < 2 || h->size > 3 || (h->seeded && h->size != 2))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s: size %llu is not 2 or 3 (2 when seeded)", what, (unsigned long long)h->size);
    const size_t level = (size_t)h->level, size = (size_t)h->size, polys = h->seeded ? 1 : size;
    const size_t want = head + (h->seeded ? VEIL_SEED_BYTES : 0) + polys * poly_bytes(ctx, level, false);
    if (head + r->left != want) VEIL_FAIL(err, VEIL_ERR_FORMAT, "%s: %zu bytes, expected %zu", what, head + r->left, want);
    for (size_t i = 0; i < size; i++) VEIL_CHECK(veil_context_poly_new(&e->c[i], ctx, level, VEIL_FORM_EVAL, err));
    if (h->seeded) r_bytes(r, e->seed, VEIL_SEED_BYTES);
    for (size_t i = 0; i < polys; i++) VEIL_CHECK(r_poly(r, e->c[i], what, err));
    if (h->seeded) VEIL_CHECK(veil_rlwe_element_expand_seed(e, err));
    e->size = size;
    e->level = level;
    e->seeded = h->seeded;
done:
    return st;
}

veil_status veil_ckks_ciphertext_save(veil_buffer *out, const veil_ckks_ciphertext *ct, unsigned options,
                                      veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(ct, err);
    veil_status st = VEIL_OK;
    writer w = {0};
    VEIL_CHECK(check_saved_element(&ct->el, err));
    w_element_head(&w, &ct->el);
    w_f64(&w, ct->scale);
    VEIL_CHECK(save_element(out, &w, &ct->el, VEIL_OBJECT_CKKS_CIPHERTEXT, options, err));
done:
    return st;
}

veil_status veil_ckks_ciphertext_load_ex(veil_ckks_ciphertext **out, const veil_context *ctx, const uint8_t *data,
                                      size_t len, bool verify, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    reader r = {0};
    element_head h = {0};
    double scale = 0;
    veil_ckks_ciphertext *ct = NULL;
    VEIL_CHECK(open_element(&raw, &raw_len, &owned, &r, &h, ctx, data, len, VEIL_OBJECT_CKKS_CIPHERTEXT, 24, "ciphertext",
                            verify, err));
    if (!r_f64(&r, &scale)) VEIL_FAIL(err, VEIL_ERR_FORMAT, "ciphertext: truncated");
    VEIL_CHECK(check_scale(scale, "ciphertext", err));
    VEIL_CHECK(veil_ckks_ciphertext_new(&ct, ctx, err));
    VEIL_CHECK(r_element(&r, &ct->el, &h, 24, "ciphertext", err));
    ct->scale = scale;
    *out = ct;
    ct = NULL;
done:
    veil_ckks_ciphertext_free(ct);
    veil_free_secret(owned, raw_len);
    return st;
}

veil_status veil_ckks_ciphertext_load(veil_ckks_ciphertext **out, const veil_context *ctx, const uint8_t *data,
                                      size_t len, veil_error *err)
{
    return veil_ckks_ciphertext_load_ex(out, ctx, data, len, true, err);
}

/* ---- BGV plaintexts and ciphertexts --------------------------------------------------------------- */

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        const uint64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

static veil_status check_bgv(const veil_context *ctx, const char *what, veil_error *err)
{
    if (ctx->params.t == 0) return veil_fail(err, VEIL_ERR_MISMATCH, "%s: the context is a CKKS set", what);
    return VEIL_OK;
}

veil_status veil_bgv_plaintext_save(veil_buffer *out, const veil_bgv_plaintext *pt, unsigned options, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(pt, err);
    const veil_context *ctx = pt->ctx;
    writer w = {0};
    w_packed(&w, pt->m, ctx->params.n, bit_length(ctx->params.t - 1));
    return finish(out, &w, VEIL_OBJECT_BGV_PLAINTEXT, 0, &ctx->params, options, err);
}

veil_status veil_bgv_plaintext_load(veil_bgv_plaintext **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                    veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    uint32_t flags = 0;
    veil_bgv_plaintext *pt = NULL;
    VEIL_CHECK(check_bgv(ctx, "bgv plaintext", err));
    const size_t n = ctx->params.n;
    const unsigned bits = bit_length(ctx->params.t - 1);
    const size_t want = (n * bits + 7) / 8;
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len,
                           VEIL_OBJECT_BGV_PLAINTEXT, &ctx->params, want, true, err));
    reader r = {raw, raw_len};
    if (raw_len != want) VEIL_FAIL(err, VEIL_ERR_FORMAT, "bgv plaintext: %zu bytes, expected %zu", raw_len, want);
    VEIL_CHECK(veil_bgv_plaintext_new(&pt, ctx, err));
    VEIL_CHECK(r_packed(&r, pt->m, n, bits, ctx->params.t, 0, "bgv plaintext", err));
    *out = pt;
    pt = NULL;
done:
    veil_bgv_plaintext_free(pt);
    veil_free_secret(owned, raw_len);
    return st;
}

veil_status veil_bgv_ciphertext_save(veil_buffer *out, const veil_bgv_ciphertext *ct, unsigned options, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(ct, err);
    veil_status st = VEIL_OK;
    writer w = {0};
    VEIL_CHECK(check_saved_element(&ct->el, err));
    w_element_head(&w, &ct->el);
    w_u64(&w, ct->factor);
    w_f64(&w, ct->noise_bits);
    VEIL_CHECK(save_element(out, &w, &ct->el, VEIL_OBJECT_BGV_CIPHERTEXT, options, err));
done:
    return st;
}

veil_status veil_bgv_ciphertext_load_ex(veil_bgv_ciphertext **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                     bool verify, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    reader r = {0};
    element_head h = {0};
    uint64_t factor = 0;
    double noise = 0;
    veil_bgv_ciphertext *ct = NULL;
    VEIL_CHECK(check_bgv(ctx, "bgv ciphertext", err));
    VEIL_CHECK(open_element(&raw, &raw_len, &owned, &r, &h, ctx, data, len, VEIL_OBJECT_BGV_CIPHERTEXT, 32, "bgv ciphertext",
                            verify, err));
    if (!r_u64(&r, &factor) || !r_f64(&r, &noise)) VEIL_FAIL(err, VEIL_ERR_FORMAT, "bgv ciphertext: truncated");
    if (factor == 0 || factor >= ctx->params.t || gcd(factor, ctx->params.t) != 1)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "bgv ciphertext: factor %llu is not a unit below t", (unsigned long long)factor);
    if (!isfinite(noise) || noise < 0 || noise > 4096)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "bgv ciphertext: noise estimate %g is not in [0, 4096]", noise);
    VEIL_CHECK(veil_bgv_ciphertext_new(&ct, ctx, err));
    VEIL_CHECK(r_element(&r, &ct->el, &h, 32, "bgv ciphertext", err));
    ct->factor = factor;
    ct->noise_bits = noise;
    *out = ct;
    ct = NULL;
done:
    veil_bgv_ciphertext_free(ct);
    veil_free_secret(owned, raw_len);
    return st;
}

veil_status veil_bgv_ciphertext_load(veil_bgv_ciphertext **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                     veil_error *err)
{
    return veil_bgv_ciphertext_load_ex(out, ctx, data, len, true, err);
}

/* ---- sets: several objects of one parameter set in one file ---------------------------------------- */

#define SET_MAX_META ((size_t)1 << 20) /* an ML key set's inputs' ranges: 16 bytes an input */

/*
 * The set writer: the header (whose lengths come from the declared count and bytes), the metadata and the
 * count, then each object as it comes with its length, then the digest, computed as the bytes pass. Its
 * output is either a buffer of the exact size (sink NULL) or a sink's, in order.
 */
struct veil_set_writer {
    veil_sink_fn sink;
    void *arg;
    uint8_t *buf; /* sink NULL: the whole set */
    size_t len, cap;
    size_t items_left;
    uint64_t bytes_left;
    bool secret;
    crypto_generichash_state hash;
};

static veil_status set_put(veil_set_writer *w, const uint8_t *p, size_t n, veil_error *err)
{
    crypto_generichash_update(&w->hash, p, n);
    if (w->sink) return w->sink(w->arg, p, n, err);
    if (n > w->cap - w->len) return veil_fail(err, VEIL_ERR_INTERNAL, "set: more bytes than declared");
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return VEIL_OK;
}

static veil_status set_put_u64(veil_set_writer *w, uint64_t v, veil_error *err)
{
    uint8_t b[8];
    put_le(b, v, 8);
    return set_put(w, b, 8, err);
}

void veil_set_writer_free(veil_set_writer *w)
{
    if (!w) return;
    veil_free_secret(w->buf, w->cap);
    sodium_memzero(&w->hash, sizeof w->hash);
    free(w);
}

veil_status veil_set_writer_begin(veil_set_writer **out, const veil_params *params, const uint8_t *meta, size_t meta_len,
                                  size_t count, size_t items_bytes, bool secret, veil_sink_fn sink, void *arg,
                                  veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(params, err);
    if (meta_len) VEIL_REQUIRE(meta, err);
    if (meta_len > SET_MAX_META) return veil_fail(err, VEIL_ERR_ARGUMENT, "set: %zu bytes of metadata", meta_len);
    if (count > ((size_t)1 << 40) || items_bytes > ((size_t)1 << 50) || items_bytes < count * VEIL_HEADER_BYTES)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "set: %zu objects of %zu bytes in all", count, items_bytes);
    veil_status st = VEIL_OK;
    veil_set_writer *w = calloc(1, sizeof *w);
    if (!w) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "set: out of memory");
    *w = (veil_set_writer){.sink = sink, .arg = arg, .items_left = count, .bytes_left = items_bytes, .secret = secret};
    const size_t total = veil_set_stored_bytes(meta_len, count, items_bytes);
    const uint64_t body = total - VEIL_HEADER_BYTES - VEIL_DIGEST_BYTES;
    if (!sink) {
        w->cap = total;
        w->buf = veil_alloc_scratch(total, 1);
        if (!w->buf) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "set: out of memory for %zu bytes", total);
    }
    crypto_generichash_init(&w->hash, NULL, 0, VEIL_DIGEST_BYTES);
    uint8_t h[VEIL_HEADER_BYTES];
    memcpy(h, magic, 4);
    put_le(h + 4, VEIL_FORMAT_VERSION, 2);
    put_le(h + 6, VEIL_OBJECT_SET, 2);
    put_le(h + 8, secret ? VEIL_FLAG_SECRET : 0, 4);
    put_le(h + 12, (uint64_t)veil_params_security(params), 4);
    veil_params_hash(params, h + 16);
    put_le(h + 48, body, 8);
    put_le(h + 56, body, 8);
    VEIL_CHECK(set_put(w, h, sizeof h, err));
    VEIL_CHECK(set_put_u64(w, meta_len, err));
    if (meta_len) VEIL_CHECK(set_put(w, meta, meta_len, err));
    VEIL_CHECK(set_put_u64(w, count, err));
    *out = w;
    w = NULL;
done:
    veil_set_writer_free(w);
    return st;
}

veil_status veil_set_writer_add(veil_set_writer *w, const uint8_t *obj, size_t len, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_REQUIRE(w, err);
    VEIL_REQUIRE(obj, err);
    veil_object_info info;
    VEIL_CHECK(veil_object_peek(&info, obj, len, err)); /* a damaged object is never sealed into a set */
    if (w->items_left == 0 || len > w->bytes_left)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "set: more objects or bytes than declared");
    if ((info.flags & VEIL_FLAG_SECRET) && !w->secret)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "set: a secret object in a set not declared secret");
    if (info.type == VEIL_OBJECT_SET) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "set: sets do not nest");
    VEIL_CHECK(set_put_u64(w, len, err));
    VEIL_CHECK(set_put(w, obj, len, err));
    w->items_left--;
    w->bytes_left -= len;
done:
    return st;
}

veil_status veil_set_writer_end(veil_set_writer *w, veil_buffer *out, veil_error *err)
{
    VEIL_REQUIRE(w, err);
    if (out) {
        out->data = NULL;
        out->len = 0;
    }
    veil_status st = VEIL_OK;
    uint8_t d[VEIL_DIGEST_BYTES];
    if (w->items_left || w->bytes_left)
        VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "set: %zu objects (%llu bytes) declared but not added", w->items_left,
                  (unsigned long long)w->bytes_left);
    if (!w->sink && !out) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "set: a set written to memory needs a buffer");
    crypto_generichash_final(&w->hash, d, sizeof d);
    if (w->sink) VEIL_CHECK(w->sink(w->arg, d, sizeof d, err));
    else if (w->len + sizeof d != w->cap) VEIL_FAIL(err, VEIL_ERR_INTERNAL, "set: fewer bytes than declared");
    else memcpy(w->buf + w->len, d, sizeof d);
    if (!w->sink) {
        out->data = w->buf;
        out->len = w->cap;
        w->buf = NULL;
        w->cap = 0;
    }
done:
    veil_set_writer_free(w);
    return st;
}

veil_status veil_set_save(veil_buffer *out, const veil_params *params, const uint8_t *meta, size_t meta_len,
                          const veil_buffer *items, size_t count, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    out->data = NULL;
    out->len = 0;
    VEIL_REQUIRE(params, err);
    if (count) VEIL_REQUIRE(items, err);
    size_t bytes = 0;
    bool secret = false; /* a set holding a secret is itself secret (add checks each object's header) */
    for (size_t i = 0; i < count; i++) {
        bytes += items[i].len;
        secret |= items[i].data && items[i].len >= VEIL_HEADER_BYTES && (get_le(items[i].data + 8, 4) & VEIL_FLAG_SECRET);
    }
    veil_status st = VEIL_OK;
    veil_set_writer *w = NULL, *complete = NULL;
    VEIL_CHECK(veil_set_writer_begin(&w, params, meta, meta_len, count, bytes, secret, NULL, NULL, err));
    for (size_t i = 0; i < count; i++) VEIL_CHECK(veil_set_writer_add(w, items[i].data, items[i].len, err));
    complete = w; /* end releases the writer in every case */
    w = NULL;
    VEIL_CHECK(veil_set_writer_end(complete, out, err));
done:
    veil_set_writer_free(w);
    return st;
}

veil_status veil_set_open(veil_set_contents *view, const uint8_t *data, size_t len, veil_error *err)
{
    return veil_set_open_ex(view, data, len, true, err);
}

veil_status veil_set_open_ex(veil_set_contents *view, const uint8_t *data, size_t len, bool verify, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_REQUIRE(view, err);
    VEIL_REQUIRE(data, err);
    memset(view, 0, sizeof *view);
    veil_object_info info;
    VEIL_CHECK(parse_header(&info, data, len, verify, err));
    if (info.type != VEIL_OBJECT_SET)
        VEIL_FAIL(err, VEIL_ERR_MISMATCH, "expected a set of objects, found %s", type_name(info.type));
    if (info.flags & (VEIL_FLAG_ZSTD | VEIL_FLAG_SEEDED))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "a set is stored uncompressed (its objects may be compressed)");
    reader r = {data + VEIL_HEADER_BYTES, (size_t)info.stored_bytes};
    uint64_t meta_len, count;
    if (!r_u64(&r, &meta_len) || meta_len > SET_MAX_META || meta_len > r.left)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "set: bad metadata length");
    view->meta = r.p;
    view->meta_len = (size_t)meta_len;
    r.p += meta_len;
    r.left -= meta_len;
    if (!r_u64(&r, &count) || count > r.left / (8 + VEIL_HEADER_BYTES))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "set: bad object count");
    view->items = calloc(count ? count : 1, sizeof *view->items);
    if (!view->items) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "set");
    /* objects carry the set's parameter hash, or that of the last parameter-set object before them */
    uint8_t group[VEIL_PARAMS_HASH_BYTES];
    memcpy(group, info.params_hash, sizeof group);
    for (uint64_t i = 0; i < count; i++) {
        uint64_t item_len;
        if (!r_u64(&r, &item_len) || item_len > r.left || item_len < VEIL_HEADER_BYTES)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "set: object %llu is truncated", (unsigned long long)i);
        veil_object_info inner;
        veil_status peeked = parse_header(&inner, r.p, (size_t)item_len, false, err);
        if (peeked == VEIL_OK && inner.type == VEIL_OBJECT_PARAMS && i > 0)
            memcpy(group, inner.params_hash, sizeof group); /* a new group (the loader checks the hash) */
        if (peeked != VEIL_OK || memcmp(inner.params_hash, group, sizeof inner.params_hash) != 0 ||
            (inner.flags & VEIL_FLAG_SECRET && !(info.flags & VEIL_FLAG_SECRET)) || inner.type == VEIL_OBJECT_SET)
            VEIL_FAIL(err, VEIL_ERR_FORMAT, "set: object %llu is malformed, of another parameter set, a "
                      "nested set, or a secret the set's header does not declare", (unsigned long long)i);
        view->items[i].data = r.p;
        view->items[i].len = (size_t)item_len;
        view->items[i].type = inner.type;
        r.p += item_len;
        r.left -= item_len;
        view->count = (size_t)i + 1;
    }
    if (r.left) VEIL_FAIL(err, VEIL_ERR_FORMAT, "set: %zu unexpected bytes after the objects", r.left);
    view->secret = (info.flags & VEIL_FLAG_SECRET) != 0;
    view->verified = verify && info.version >= 2;
    memcpy(view->params_hash, info.params_hash, sizeof view->params_hash);
done:
    if (st != VEIL_OK) veil_set_contents_clear(view);
    return st;
}

void veil_set_contents_clear(veil_set_contents *view)
{
    if (!view) return;
    free(view->items);
    memset(view, 0, sizeof *view);
}

/* ---- files ---------------------------------------------------------------------------------------- */

/* A secret object (its header carries the secret flag) is created readable by its owner only. */
static mode_t file_mode_for(const uint8_t *data, size_t len)
{
    if (len >= VEIL_HEADER_BYTES && memcmp(data, magic, 4) == 0 && !(get_le(data + 8, 4) & VEIL_FLAG_SECRET))
        return 0666; /* less the umask, applied by open */
    return 0600;
}

/* Opens a new temporary file beside path (a random name, created exclusively). */
static int open_temporary(char *tmp, size_t cap, const char *path, mode_t mode)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        uint8_t r[8];
        randombytes_buf(r, sizeof r);
        snprintf(tmp, cap, "%s.tmp.%02x%02x%02x%02x%02x%02x%02x%02x", path, r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                 r[7]);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

/* A file written in pieces and renamed into place when complete (veil_file_write_atomic in steps). */
struct veil_atomic_file {
    char *path, *tmp;
    int fd;
};

void veil_atomic_file_abort(veil_atomic_file *f)
{
    if (!f) return;
    if (f->fd >= 0) {
        close(f->fd);
        unlink(f->tmp); /* nothing already stored at path is touched */
    }
    free(f->path);
    free(f->tmp);
    free(f);
}

veil_status veil_atomic_file_open(veil_atomic_file **out, const char *path, bool secret, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(path, err);
    veil_status st = VEIL_OK;
    veil_atomic_file *f = calloc(1, sizeof *f);
    const size_t cap = strlen(path) + 32;
    if (f) {
        f->fd = -1;
        f->path = strdup(path);
        f->tmp = malloc(cap);
    }
    if (!f || !f->path || !f->tmp) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "write %s: out of memory", path);
    f->fd = open_temporary(f->tmp, cap, path, secret ? 0600 : 0666);
    if (f->fd < 0)
        VEIL_FAIL(err, VEIL_ERR_IO, "write %s: cannot create a temporary file: %s", path, strerror(errno));
    *out = f;
    f = NULL;
done:
    veil_atomic_file_abort(f);
    return st;
}

veil_status veil_atomic_file_write(void *file, const uint8_t *data, size_t len, veil_error *err)
{
    veil_atomic_file *f = file;
    VEIL_REQUIRE(f, err);
    if (len) VEIL_REQUIRE(data, err);
    veil_status st = VEIL_OK;
    for (size_t written = 0; written < len;) {
        ssize_t w = write(f->fd, data + written, len - written);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) VEIL_FAIL(err, VEIL_ERR_IO, "write %s: %s", f->path, strerror(errno));
        if (w == 0) VEIL_FAIL(err, VEIL_ERR_IO, "write %s: the device accepted no more bytes", f->path);
        written += (size_t)w;
    }
done:
    return st;
}

/* Syncs and closes the temporary file, then renames it to its path (on failure, the temporary file goes). */
static veil_status atomic_file_rename(veil_atomic_file *f, veil_error *err)
{
    veil_status st = VEIL_OK;
    const char *path = f->path;
    const int synced = fsync(f->fd), sync_errno = errno;
    const int closed = close(f->fd), close_errno = errno;
    f->fd = -1;
    if (synced != 0) VEIL_FAIL(err, VEIL_ERR_IO, "write %s: fsync: %s", path, strerror(sync_errno));
    if (closed != 0) VEIL_FAIL(err, VEIL_ERR_IO, "write %s: close: %s", path, strerror(close_errno));
    if (rename(f->tmp, path) != 0) VEIL_FAIL(err, VEIL_ERR_IO, "write %s: rename: %s", path, strerror(errno));
done:
    if (st != VEIL_OK) unlink(f->tmp);
    return st;
}

/* Makes a rename in path's folder durable; file systems that cannot sync a folder say EINVAL. */
static veil_status sync_folder(const char *path, veil_error *err)
{
    veil_status st = VEIL_OK;
    char *dir_copy = strdup(path);
    int dfd = dir_copy ? open(dirname(dir_copy), O_RDONLY | O_CLOEXEC) : -1;
    if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL))
        VEIL_FAIL(err, VEIL_ERR_IO, "write %s: the file is written but its folder could not be synced: %s", path,
                  strerror(errno));
done:
    if (dfd >= 0) close(dfd);
    free(dir_copy);
    return st;
}

veil_status veil_atomic_file_commit(veil_atomic_file *f, veil_error *err)
{
    VEIL_REQUIRE(f, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(atomic_file_rename(f, err));
    VEIL_CHECK(sync_folder(f->path, err));
done:
    veil_atomic_file_abort(f);
    return st;
}

veil_status veil_file_write_atomic(const char *path, const uint8_t *data, size_t len, veil_error *err)
{
    VEIL_REQUIRE(path, err);
    if (len) VEIL_REQUIRE(data, err);
    veil_status st = VEIL_OK;
    veil_atomic_file *f = NULL, *written = NULL;
    VEIL_CHECK(veil_atomic_file_open(&f, path, file_mode_for(data, len) == 0600, err));
    VEIL_CHECK(veil_atomic_file_write(f, data, len, err));
    written = f; /* commit releases the file in every case */
    f = NULL;
    VEIL_CHECK(veil_atomic_file_commit(written, err));
done:
    veil_atomic_file_abort(f);
    return st;
}

veil_status veil_file_read(veil_buffer *out, const char *path, size_t max_len, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(path, err);
    out->data = NULL;
    out->len = 0;
    veil_status st = VEIL_OK;
    struct stat sb;
    FILE *f = fopen(path, "rb");
    if (!f) VEIL_FAIL(err, VEIL_ERR_IO, "read %s: %s", path, strerror(errno));
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) VEIL_FAIL(err, VEIL_ERR_IO, "read %s: not a regular file", path);
    if ((uint64_t)sb.st_size > max_len)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "read %s: %lld bytes exceed the limit of %zu", path, (long long)sb.st_size,
                  max_len);
    out->len = (size_t)sb.st_size;
    out->data = veil_alloc(out->len ? out->len : 1, 1);
    if (!out->data) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "read %s: out of memory", path);
    if (fread(out->data, 1, out->len, f) != out->len) VEIL_FAIL(err, VEIL_ERR_IO, "read %s: short read", path);
done:
    if (f) fclose(f);
    if (st != VEIL_OK) veil_buffer_free(out);
    return st;
}

/* ---- multi-party groups and shares (veil/party.h) ------------------------------------------------------------ */

veil_status veil_party_group_save(veil_buffer *out, const veil_party_group *group, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(group, err);
    writer w = {0};
    w_bytes(&w, group->id, VEIL_PARTY_ID_BYTES);
    w_u64(&w, group->parties);
    w_u64(&w, group->threshold);
    if (group->smudging_bits) w_u64(&w, group->smudging_bits); /* absent: the default (a group of before) */
    return finish(out, &w, VEIL_OBJECT_PARTY_GROUP, 0, &group->ctx->params, 0, err);
}

veil_status veil_party_group_load(veil_party_group **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                  veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    const size_t expected = VEIL_PARTY_ID_BYTES + 16; /* and 8 more when the smudging bits are stored */
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL, id[VEIL_PARTY_ID_BYTES];
    size_t raw_len = 0;
    uint32_t flags = 0;
    uint64_t parties = 0, threshold = 0, smudging = 0;
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len,
                           VEIL_OBJECT_PARTY_GROUP, &ctx->params, expected + 8,
                           true, err));
    reader r = {raw, raw_len};
    if ((raw_len != expected && raw_len != expected + 8) || !r_bytes(&r, id, sizeof id) || !r_u64(&r, &parties) ||
        !r_u64(&r, &threshold) || (raw_len > expected && !r_u64(&r, &smudging)))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "party group: %zu bytes, expected %zu or %zu", raw_len, expected,
                  expected + 8);
    if (parties < 2 || parties > VEIL_PARTY_MAX || threshold < 2 || threshold > parties)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "party group: %llu of %llu parties is not a group this version reads "
                  "(2 to %d parties, a threshold of 2 to all of them)", (unsigned long long)threshold,
                  (unsigned long long)parties, VEIL_PARTY_MAX);
    if (raw_len > expected && (smudging < 1 || smudging > 60 || smudging == VEIL_PARTY_DEFAULT_SMUDGING_BITS))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "party group: %llu smudging bits (1 to 60, and the default %d is not stored)",
                  (unsigned long long)smudging, VEIL_PARTY_DEFAULT_SMUDGING_BITS);
    VEIL_CHECK(veil_party_group_from(out, ctx, id, (size_t)parties, (size_t)threshold, err));
    (*out)->smudging_bits = (unsigned)smudging;
done:
    veil_free_secret(owned, raw_len);
    return st;
}

#define SHARE_HEAD (VEIL_PARTY_ID_BYTES + 6 * 8 + 32 + 8)

veil_status veil_party_share_save(veil_buffer *out, const veil_party_share *share, unsigned options, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(share, err);
    writer w = {0};
    w_bytes(&w, share->group, VEIL_PARTY_ID_BYTES);
    w_u64(&w, share->party);
    w_u64(&w, share->parties);
    w_u64(&w, (uint64_t)share->kind);
    w_u64(&w, veil_party_share_round(share));
    w_u64(&w, share->galois);
    w_u64(&w, share->level);
    w_bytes(&w, share->subject, sizeof share->subject);
    w_f64(&w, share->log2_sigma);
    if (veil_party_kind_is_threshold(share->kind)) w_u64(&w, share->set); /* t-out-of-N: the decrypting set */
    for (size_t i = 0; i < share->count; i++) w_poly(&w, share->p[i]);
    return finish(out, &w, VEIL_OBJECT_PARTY_SHARE, 0, &share->ctx->params, options, err);
}

/* The header fields of a share, each against the parameters and the others. */
static veil_status check_share_head(const veil_context *ctx, uint64_t party, uint64_t parties, uint64_t kind,
                                    uint64_t round, uint64_t galois, uint64_t level, double log2_sigma, veil_error *err)
{
    if (kind < VEIL_PARTY_PUBLIC_KEY || kind > VEIL_PARTY_THRESHOLD_SWITCH)
        return veil_fail(err, VEIL_ERR_FORMAT, "party share: unknown kind %llu", (unsigned long long)kind);
    const veil_party_share probe = {.kind = (veil_party_kind)kind};
    if (round != veil_party_share_round(&probe))
        return veil_fail(err, VEIL_ERR_FORMAT, "party share: a %s share of round %llu (its round is %u)",
                         veil_party_kind_name((veil_party_kind)kind), (unsigned long long)round,
                         veil_party_share_round(&probe));
    if (parties < 2 || parties > VEIL_PARTY_MAX || party > parties)
        return veil_fail(err, VEIL_ERR_FORMAT, "party share: party %llu of %llu (groups have 2 to %d parties)",
                         (unsigned long long)party, (unsigned long long)parties, VEIL_PARTY_MAX);
    const bool is_galois = kind == VEIL_PARTY_GALOIS;
    if (is_galois ? ((galois & 1) == 0 || galois == 1 || galois >= 2 * (uint64_t)ctx->params.n) : galois != 0)
        return veil_fail(err, VEIL_ERR_FORMAT, "party share: Galois element %llu on a %s share",
                         (unsigned long long)galois, veil_party_kind_name((veil_party_kind)kind));
    const bool for_ct = kind == VEIL_PARTY_DECRYPT || kind == VEIL_PARTY_SWITCH ||
                        veil_party_kind_is_threshold((veil_party_kind)kind);
    if (level >= ctx->q_count || (!for_ct && level != ctx->q_count - 1))
        return veil_fail(err, VEIL_ERR_FORMAT, "party share: level %llu for a %s share (the top level is %zu)",
                         (unsigned long long)level, veil_party_kind_name((veil_party_kind)kind), ctx->q_count - 1);
    if (for_ct ? !(log2_sigma >= 0 && log2_sigma <= 56) : log2_sigma != 0)
        return veil_fail(err, VEIL_ERR_FORMAT, "party share: a smudging width of 2^%g on a %s share", log2_sigma,
                         veil_party_kind_name((veil_party_kind)kind));
    return VEIL_OK;
}

/* A threshold share's set of parties: a nonempty mask within the group's parties, the share's own party in it. */
static veil_status read_share_set(reader *r, uint64_t *set, uint64_t party, uint64_t parties, veil_error *err)
{
    if (!r_u64(r, set)) return veil_fail(err, VEIL_ERR_FORMAT, "party share: truncated set of parties");
    const uint64_t outside = parties < 64 ? *set >> parties : 0;
    if (*set == 0 || outside != 0 || party == 0 || !(*set >> (party - 1) & 1))
        return veil_fail(err, VEIL_ERR_FORMAT, "party share: a set of parties (0x%llx) that is not one of parties 1..%llu "
                         "with party %llu in it", (unsigned long long)*set, (unsigned long long)parties,
                         (unsigned long long)party);
    return VEIL_OK;
}

veil_status veil_party_share_load(veil_party_share **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                  veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    /* the largest share: two polynomials over QP per digit */
    const size_t limit = SHARE_HEAD + 8 + 2 * ctx->dnum * poly_bytes(ctx, ctx->q_count - 1, true);
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL, group[VEIL_PARTY_ID_BYTES], subject[32];
    size_t raw_len = 0;
    uint32_t flags = 0;
    uint64_t party = 0, parties = 0, kind = 0, round = 0, galois = 0, level = 0, set = 0;
    double log2_sigma = 0;
    veil_party_share *s = NULL;
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len,
                           VEIL_OBJECT_PARTY_SHARE, &ctx->params, limit, true, err));
    reader r = {raw, raw_len};
    if (!r_bytes(&r, group, sizeof group) || !r_u64(&r, &party) || !r_u64(&r, &parties) || !r_u64(&r, &kind) ||
        !r_u64(&r, &round) || !r_u64(&r, &galois) || !r_u64(&r, &level) || !r_bytes(&r, subject, sizeof subject) ||
        !r_f64(&r, &log2_sigma))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "party share: truncated header (%zu bytes)", raw_len);
    VEIL_CHECK(check_share_head(ctx, party, parties, kind, round, galois, level, log2_sigma, err));
    const bool threshold = veil_party_kind_is_threshold((veil_party_kind)kind);
    if (threshold) VEIL_CHECK(read_share_set(&r, &set, party, parties, err));
    bool with_p = false;
    const size_t count = veil_party_kind_polys(ctx, (veil_party_kind)kind, &with_p);
    const size_t expected = SHARE_HEAD + (threshold ? 8 : 0) + count * poly_bytes(ctx, (size_t)level, with_p);
    if (raw_len != expected)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "party share: %zu bytes for a %s share, expected %zu", raw_len,
                  veil_party_kind_name((veil_party_kind)kind), expected);
    VEIL_CHECK(veil_party_share_alloc(&s, ctx, group, (size_t)party, (size_t)parties, (veil_party_kind)kind, galois,
                                      (size_t)level, err));
    memcpy(s->subject, subject, sizeof subject);
    s->log2_sigma = log2_sigma;
    s->set = set;
    for (size_t i = 0; i < count; i++) VEIL_CHECK(r_poly(&r, s->p[i], "party share", err));
    VEIL_CHECK(expect_end(&r, "party share", err));
    *out = s;
    s = NULL;
done:
    veil_party_share_free(s);
    veil_free_secret(owned, raw_len);
    return st;
}

/* ---- t-out-of-N: box keys, deals, threshold keys (veil/party.h, src/rlwe/threshold.c) -------------------------- */

/* The fields common to the three: a party (and dealer, recipient) of a group of `parties` with `threshold`. */
static veil_status check_party_sizes(uint64_t party, uint64_t parties, uint64_t threshold, const char *what,
                                     veil_error *err)
{
    if (parties < 2 || parties > VEIL_PARTY_MAX || threshold < 2 || threshold >= parties)
        return veil_fail(err, VEIL_ERR_FORMAT, "%s: a threshold of %llu of %llu parties (2 to %d parties, a threshold "
                         "of 2 to N-1)", what, (unsigned long long)threshold, (unsigned long long)parties, VEIL_PARTY_MAX);
    if (party < 1 || party > parties)
        return veil_fail(err, VEIL_ERR_FORMAT, "%s: party %llu of %llu", what, (unsigned long long)party,
                         (unsigned long long)parties);
    return VEIL_OK;
}

veil_status veil_party_box_key_save(veil_buffer *out, const veil_party_box_key *key, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(key, err);
    writer w = {0};
    w_bytes(&w, key->group, VEIL_PARTY_ID_BYTES);
    w_u64(&w, key->party);
    w_bytes(&w, key->pk, VEIL_PARTY_BOX_KEY_BYTES);
    return finish(out, &w, VEIL_OBJECT_PARTY_BOX_KEY, 0, &key->ctx->params, 0, err);
}

veil_status veil_party_box_key_load(veil_party_box_key **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                    veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    const size_t expected = VEIL_PARTY_ID_BYTES + 8 + VEIL_PARTY_BOX_KEY_BYTES;
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    uint32_t flags = 0;
    uint64_t party = 0;
    veil_party_box_key *k = veil_alloc(1, sizeof *k);
    if (!k) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "box key: out of memory");
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len,
                           VEIL_OBJECT_PARTY_BOX_KEY, &ctx->params, expected, true, err));
    reader r = {raw, raw_len};
    if (raw_len != expected || !r_bytes(&r, k->group, VEIL_PARTY_ID_BYTES) || !r_u64(&r, &party) ||
        !r_bytes(&r, k->pk, VEIL_PARTY_BOX_KEY_BYTES))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "box key: %zu bytes, expected %zu", raw_len, expected);
    if (party < 1 || party > VEIL_PARTY_MAX)
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "box key: party %llu (parties are 1 to %d)", (unsigned long long)party,
                  VEIL_PARTY_MAX);
    k->ctx = ctx;
    k->party = (size_t)party;
    *out = k;
    k = NULL;
done:
    veil_party_box_key_free(k);
    veil_free_secret(owned, raw_len);
    return st;
}

veil_status veil_party_deal_save(veil_buffer *out, const veil_party_deal *deal, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(deal, err);
    writer w = {0};
    w_bytes(&w, deal->group, VEIL_PARTY_ID_BYTES);
    w_u64(&w, deal->from);
    w_u64(&w, deal->to);
    w_u64(&w, deal->parties);
    w_u64(&w, deal->threshold);
    w_bytes(&w, deal->nonce, sizeof deal->nonce);
    w_bytes(&w, deal->box, deal->box_len);
    return finish(out, &w, VEIL_OBJECT_PARTY_DEAL, 0, &deal->ctx->params, 0, err);
}

veil_status veil_party_deal_load(veil_party_deal **out, const veil_context *ctx, const uint8_t *data, size_t len,
                                 veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    const size_t box = veil_party_deal_box_bytes(ctx);
    const size_t expected = VEIL_PARTY_ID_BYTES + 4 * 8 + VEIL_PARTY_DEAL_NONCE + box;
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    uint32_t flags = 0;
    uint64_t from = 0, to = 0, parties = 0, threshold = 0;
    veil_party_deal *d = veil_alloc(1, sizeof *d);
    if (d) d->box = veil_alloc(box, 1);
    if (!d || !d->box) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "deal: out of memory");
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len,
                           VEIL_OBJECT_PARTY_DEAL, &ctx->params, expected, true, err));
    reader r = {raw, raw_len};
    if (raw_len != expected || !r_bytes(&r, d->group, VEIL_PARTY_ID_BYTES) || !r_u64(&r, &from) || !r_u64(&r, &to) ||
        !r_u64(&r, &parties) || !r_u64(&r, &threshold) || !r_bytes(&r, d->nonce, sizeof d->nonce) ||
        !r_bytes(&r, d->box, box))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "deal: %zu bytes, expected %zu", raw_len, expected);
    VEIL_CHECK(check_party_sizes(from, parties, threshold, "deal (dealer)", err));
    VEIL_CHECK(check_party_sizes(to, parties, threshold, "deal (recipient)", err));
    d->ctx = ctx;
    d->from = (size_t)from;
    d->to = (size_t)to;
    d->parties = (size_t)parties;
    d->threshold = (size_t)threshold;
    d->box_len = box;
    *out = d;
    d = NULL;
done:
    veil_party_deal_free(d);
    veil_free_secret(owned, raw_len);
    return st;
}

veil_status veil_party_threshold_key_save(veil_buffer *out, const veil_party_threshold_key *key, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(key, err);
    writer w = {0};
    w_bytes(&w, key->group, VEIL_PARTY_ID_BYTES);
    w_u64(&w, key->party);
    w_u64(&w, key->parties);
    w_u64(&w, key->threshold);
    w_poly(&w, key->s);
    return finish(out, &w, VEIL_OBJECT_PARTY_THRESHOLD_KEY, VEIL_FLAG_SECRET, &key->ctx->params, 0, err);
}

veil_status veil_party_threshold_key_load(veil_party_threshold_key **out, const veil_context *ctx, const uint8_t *data,
                                          size_t len, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(ctx, err);
    VEIL_REQUIRE(data, err);
    const size_t expected = VEIL_PARTY_ID_BYTES + 3 * 8 + poly_bytes(ctx, ctx->q_count - 1, false);
    veil_status st = VEIL_OK;
    const uint8_t *raw = NULL;
    uint8_t *owned = NULL;
    size_t raw_len = 0;
    uint32_t flags = 0;
    uint64_t party = 0, parties = 0, threshold = 0;
    veil_party_threshold_key *k = veil_alloc(1, sizeof *k);
    if (!k) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "threshold key: out of memory");
    VEIL_CHECK(open_object(&raw, &raw_len, &owned, &flags, data, len,
                           VEIL_OBJECT_PARTY_THRESHOLD_KEY, &ctx->params, expected,
                           true, err));
    reader r = {raw, raw_len};
    if (raw_len != expected || !r_bytes(&r, k->group, VEIL_PARTY_ID_BYTES) || !r_u64(&r, &party) ||
        !r_u64(&r, &parties) || !r_u64(&r, &threshold))
        VEIL_FAIL(err, VEIL_ERR_FORMAT, "threshold key: %zu bytes, expected %zu", raw_len, expected);
    VEIL_CHECK(check_party_sizes(party, parties, threshold, "threshold key", err));
    k->ctx = ctx;
    k->party = (size_t)party;
    k->parties = (size_t)parties;
    k->threshold = (size_t)threshold;
    VEIL_CHECK(veil_context_poly_new(&k->s, ctx, ctx->q_count - 1, VEIL_FORM_EVAL, err));
    VEIL_CHECK(r_poly(&r, k->s, "threshold key", err));
    VEIL_CHECK(expect_end(&r, "threshold key", err));
    *out = k;
    k = NULL;
done:
    veil_party_threshold_key_free(k);
    veil_free_secret(owned, raw_len);
    return st;
}
