/* RLWE parameter sets: construction, the HomomorphicEncryption.org security check, selection, presets. */
#include <string.h>
#include <sodium.h>
#include "rlwe/rlwe_internal.h"

#define DEFAULT_HAMMING_WEIGHT 192

/*
 * Largest log2(QP) for ternary secrets against classical attacks (HomomorphicEncryption.org security
 * standard, Albrecht et al. 2018, table of the uniform ternary distribution; 2^16 and 2^17 from its
 * extended tables), rows N = 2^10 .. 2^17, columns 128 / 192 / 256 bits.
 */
static const unsigned security_table[8][3] = {
    {27, 19, 14},       {54, 37, 29},       {109, 75, 58},      {218, 152, 118},
    {438, 305, 237},    {881, 611, 476},    {1747, 1199, 929},  {3523, 2411, 1866},
};

unsigned veil_security_max_log_qp(size_t n, veil_security level)
{
    if (level > VEIL_SECURITY_256 || n < 1024 || n > 131072 || (n & (n - 1)) != 0) return 0;
    unsigned row = 0;
    while (((size_t)1024 << row) < n) row++;
    return security_table[row][level];
}

unsigned veil_primes_log_product(const uint64_t *primes, size_t count)
{
    unsigned total = 0;
    for (size_t i = 0; i < count; i++)
        for (uint64_t v = primes[i]; v; v >>= 1) total++;
    return total;
}

static const char *level_name(veil_security s)
{
    switch (s) {
    case VEIL_SECURITY_128: return "128-bit";
    case VEIL_SECURITY_192: return "192-bit";
    case VEIL_SECURITY_256: return "256-bit";
    case VEIL_SECURITY_NONE: return "no";
    }
    return "unknown";
}

/* Fills primes from explicit values or from sizes, all distinct across Q and P. */
static veil_status choose_primes(veil_params *pr, const veil_params_spec *s, veil_error *err)
{
    unsigned bits[2 * VEIL_PARAMS_MAX_PRIMES];
    uint64_t chosen[2 * VEIL_PARAMS_MAX_PRIMES];
    size_t want = 0;
    if (!s->q) {
        if (!s->q_bits) return veil_fail(err, VEIL_ERR_NULL, "parameters: neither Q primes nor their sizes given");
        for (size_t i = 0; i < s->q_count; i++) bits[want++] = s->q_bits[i];
    }
    if (!s->p) {
        if (!s->p_bits) return veil_fail(err, VEIL_ERR_NULL, "parameters: neither P primes nor their sizes given");
        for (size_t i = 0; i < s->p_count; i++) bits[want++] = s->p_bits[i];
    }
    /* explicit primes are avoided when choosing the others */
    uint64_t given[2 * VEIL_PARAMS_MAX_PRIMES];
    size_t given_count = 0;
    if (s->q) for (size_t i = 0; i < s->q_count; i++) given[given_count++] = s->q[i];
    if (s->p) for (size_t i = 0; i < s->p_count; i++) given[given_count++] = s->p[i];
    veil_status st = VEIL_OK;
    if (want) VEIL_CHECK(veil_prime_chain(chosen, bits, want, s->n, given, given_count, err));
    size_t next = 0;
    for (size_t i = 0; i < s->q_count; i++) pr->q[i] = s->q ? s->q[i] : chosen[next++];
    for (size_t i = 0; i < s->p_count; i++) pr->p[i] = s->p ? s->p[i] : chosen[next++];
done:
    return st;
}

static veil_status check_primes(const veil_params *pr, veil_error *err)
{
    const uint64_t two_n = 2 * (uint64_t)pr->n;
    uint64_t all[2 * VEIL_PARAMS_MAX_PRIMES];
    size_t count = 0;
    for (size_t i = 0; i < pr->q_count; i++) all[count++] = pr->q[i];
    for (size_t i = 0; i < pr->p_count; i++) all[count++] = pr->p[i];
    for (size_t i = 0; i < count; i++) {
        if (all[i] >= ((uint64_t)1 << VEIL_PRIME_MAX_BITS) || !veil_is_prime(all[i]) || all[i] % two_n != 1)
            return veil_fail(err, VEIL_ERR_ARGUMENT,
                             "parameters: %llu is not a prime below 2^%d congruent to 1 mod 2N = %llu",
                             (unsigned long long)all[i], VEIL_PRIME_MAX_BITS, (unsigned long long)two_n);
        for (size_t j = 0; j < i; j++)
            if (all[j] == all[i])
                return veil_fail(err, VEIL_ERR_ARGUMENT, "parameters: prime %llu appears twice",
                                 (unsigned long long)all[i]);
    }
    return VEIL_OK;
}

/* Every digit of the decomposition of Q must be at most P, or key switching adds too much noise. */
static veil_status check_digits(const veil_params *pr, veil_error *err)
{
    const size_t alpha = (pr->q_count + pr->dnum - 1) / pr->dnum;
    const unsigned p_bits = veil_primes_log_product(pr->p, pr->p_count);
    for (size_t start = 0; start < pr->q_count; start += alpha) {
        size_t len = pr->q_count - start < alpha ? pr->q_count - start : alpha;
        unsigned digit_bits = veil_primes_log_product(pr->q + start, len);
        if (digit_bits > p_bits)
            return veil_fail(err, VEIL_ERR_ARGUMENT,
                             "parameters: with dnum = %zu a key-switching digit has %u bits but P only %u: add "
                             "special primes or raise dnum",
                             pr->dnum, digit_bits, p_bits);
    }
    return VEIL_OK;
}

/* BGV: t >= 2 below 2^60, prime to every Q and P prime (it is inverted modulo each of them). */
static veil_status check_plain_modulus(const veil_params *pr, veil_error *err)
{
    const uint64_t t = pr->t;
    if (t == 0) return VEIL_OK;
    if (t < 2 || t >= ((uint64_t)1 << 60))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "parameters: plaintext modulus %llu is not in [2, 2^60)",
                         (unsigned long long)t);
    for (size_t i = 0; i < pr->q_count + pr->p_count; i++) {
        const uint64_t q = i < pr->q_count ? pr->q[i] : pr->p[i - pr->q_count];
        if (t % q == 0)
            return veil_fail(err, VEIL_ERR_ARGUMENT, "parameters: plaintext modulus %llu is a multiple of the prime %llu",
                             (unsigned long long)t, (unsigned long long)q);
    }
    return VEIL_OK;
}

static veil_status check_security(const veil_params *pr, veil_error *err)
{
    if (pr->security == VEIL_SECURITY_NONE) return VEIL_OK;
    const unsigned limit = veil_security_max_log_qp(pr->n, pr->security);
    const unsigned log_qp = veil_primes_log_product(pr->q, pr->q_count) + veil_primes_log_product(pr->p, pr->p_count);
    if (log_qp > limit)
        return veil_fail(err, VEIL_ERR_INSECURE,
                         "parameters: log2(QP) = %u bits exceeds the %u bits that the HomomorphicEncryption.org "
                         "standard allows for %s security at N = %zu (use a larger N or fewer primes)",
                         log_qp, limit, level_name(pr->security), pr->n);
    return VEIL_OK;
}

static veil_status check_spec(const veil_params_spec *s, veil_error *err)
{
    if (s->n < 1024 || s->n > 131072 || (s->n & (s->n - 1)) != 0)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "parameters: N = %zu is not a power of two in [2^10, 2^17]", s->n);
    if (s->q_count == 0 || s->p_count == 0 || s->q_count + s->p_count > VEIL_PARAMS_MAX_PRIMES)
        return veil_fail(err, VEIL_ERR_ARGUMENT,
                         "parameters: need 1 or more Q primes and 1 or more P primes, %d in all at most (got %zu + %zu)",
                         VEIL_PARAMS_MAX_PRIMES, s->q_count, s->p_count);
    if (s->dnum > s->q_count)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "parameters: dnum = %zu exceeds the %zu Q primes", s->dnum, s->q_count);
    if (s->security > VEIL_SECURITY_NONE)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "parameters: unknown security level %d", (int)s->security);
    if (s->secret != VEIL_SECRET_TERNARY && s->secret != VEIL_SECRET_TERNARY_HW)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "parameters: unknown secret distribution %d", (int)s->secret);
    if (s->secret == VEIL_SECRET_TERNARY_HW && s->hamming_weight > s->n)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "parameters: Hamming weight %zu exceeds N = %zu", s->hamming_weight,
                         s->n);
    return VEIL_OK;
}

veil_status veil_params_new(veil_params **out, const veil_params_spec *spec, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(spec, err);
    veil_status st = VEIL_OK;
    veil_params *pr = NULL;
    VEIL_CHECK(check_spec(spec, err));
    pr = veil_alloc(1, sizeof *pr);
    if (!pr) VEIL_FAIL(err, VEIL_ERR_NO_MEMORY, "parameters: out of memory");
    pr->n = spec->n;
    pr->q_count = spec->q_count;
    pr->p_count = spec->p_count;
    pr->dnum = spec->dnum ? spec->dnum : (spec->q_count + spec->p_count - 1) / spec->p_count;
    if (pr->dnum > pr->q_count) pr->dnum = pr->q_count;
    pr->secret = spec->secret;
    pr->security = spec->security;
    pr->t = spec->plain_modulus;
    if (spec->secret == VEIL_SECRET_TERNARY_HW) {
        const size_t fallback = DEFAULT_HAMMING_WEIGHT < spec->n / 2 ? DEFAULT_HAMMING_WEIGHT : spec->n / 2;
        pr->hamming_weight = spec->hamming_weight ? spec->hamming_weight : fallback;
    }
    VEIL_CHECK(choose_primes(pr, spec, err));
    VEIL_CHECK(check_primes(pr, err));
    VEIL_CHECK(check_digits(pr, err));
    VEIL_CHECK(check_plain_modulus(pr, err));
    VEIL_CHECK(check_security(pr, err));
    *out = pr;
    pr = NULL;
done:
    veil_free(pr);
    return st;
}

void veil_params_free(veil_params *params)
{
    veil_free(params);
}

veil_status veil_params_select(veil_params **out, const veil_params_request *req, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(req, err);
    const unsigned scale = req->scale_bits;
    unsigned first = req->first_bits ? req->first_bits : (scale + 10 > 60 ? 60 : scale + 10);
    if (scale < 20 || scale > 60 || first < 20 || first > VEIL_PRIME_MAX_BITS)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "parameter selection: scale %u or first prime %u bits outside [20, 60]",
                         scale, first);
    if (req->security >= VEIL_SECURITY_NONE)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "parameter selection: a security level is required");
    veil_status st = VEIL_OK;
    const size_t q_count = (size_t)req->depth + 1;
    const unsigned special = first > scale ? first : scale; /* each special prime as large as any Q prime */
    unsigned q_bits[VEIL_PARAMS_MAX_PRIMES], p_bits[VEIL_PARAMS_MAX_PRIMES];
    if (q_count >= VEIL_PARAMS_MAX_PRIMES)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "parameter selection: depth %u is too large", req->depth);
    q_bits[0] = first;
    for (size_t i = 1; i < q_count; i++) q_bits[i] = scale;
    const unsigned q_total = first + req->depth * scale;
    for (size_t n = 1024; n <= 131072; n *= 2) {
        if (req->slots > n / 2) continue;
        const unsigned limit = veil_security_max_log_qp(n, req->security);
        /* fewest digits first: one digit per special-prime group of alpha primes */
        for (size_t dnum = 1; dnum <= q_count; dnum++) {
            const size_t alpha = (q_count + dnum - 1) / dnum;
            if (q_count + alpha > VEIL_PARAMS_MAX_PRIMES) continue;
            if (q_total + alpha * special > limit) continue;
            for (size_t i = 0; i < alpha; i++) p_bits[i] = special;
            veil_params_spec spec = {n, q_count, NULL, q_bits, alpha, NULL, p_bits, dnum, req->secret, 0, req->security, 0};
            veil_error attempt = {VEIL_OK, ""};
            st = veil_params_new(out, &spec, &attempt);
            if (st == VEIL_ERR_NOT_FOUND) continue; /* too few primes of these sizes at this N */
            if (st != VEIL_OK) VEIL_FAIL(err, st, "%s", attempt.detail);
            goto done;
        }
    }
    VEIL_FAIL(err, VEIL_ERR_NOT_FOUND,
              "parameter selection: no N up to 2^17 fits depth %u with %u-bit scale at %s security", req->depth, scale,
              level_name(req->security));
done:
    return st;
}

typedef struct preset {
    const char *name;
    size_t n, q_count, p_count, dnum;
    unsigned first, scale, special[2];
} preset;

/* Special primes of at least the largest digit's size keep the key-switching noise at the rounding level. */
static const preset presets[] = {
    {"ckks-n8192-d2", 8192, 3, 2, 3, 50, 40, {50, 30}},
    {"ckks-n16384-d7", 16384, 8, 2, 4, 50, 40, {50, 50}},
    {"ckks-n32768-d14", 32768, 15, 2, 8, 50, 50, {50, 50}},
};

/*
 * BGV presets with t = 65537 (batching up to N = 2^15) and the total modulus SEAL 4.4.3 chooses by default
 * at each N (218 and 438 bits): one special prime as large as any Q prime, one digit per Q prime.
 */
typedef struct bgv_preset {
    const char *name;
    size_t n, q_count;
    unsigned q_bits[VEIL_PARAMS_MAX_PRIMES], p_bits;
} bgv_preset;

static const bgv_preset bgv_presets[] = {
    {"bgv-n8192", 8192, 4, {44, 43, 43, 44}, 44},
    {"bgv-n16384", 16384, 8, {49, 49, 49, 49, 49, 48, 48, 48}, 49},
};

static const char *const preset_names[] = {"ckks-n8192-d2", "ckks-n16384-d7", "ckks-n32768-d14", "bgv-n8192",
                                           "bgv-n16384", NULL};

const char *const *veil_params_preset_names(void)
{
    return preset_names;
}

veil_status veil_params_preset(veil_params **out, const char *name, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(name, err);
    for (size_t k = 0; k < sizeof presets / sizeof presets[0]; k++) {
        const preset *ps = &presets[k];
        if (strcmp(ps->name, name) != 0) continue;
        unsigned q_bits[VEIL_PARAMS_MAX_PRIMES], p_bits[VEIL_PARAMS_MAX_PRIMES];
        q_bits[0] = ps->first;
        for (size_t i = 1; i < ps->q_count; i++) q_bits[i] = ps->scale;
        for (size_t i = 0; i < ps->p_count; i++) p_bits[i] = ps->special[i];
        veil_params_spec spec = {ps->n, ps->q_count, NULL, q_bits, ps->p_count, NULL, p_bits, ps->dnum,
                                 VEIL_SECRET_TERNARY, 0, VEIL_SECURITY_128, 0};
        return veil_params_new(out, &spec, err);
    }
    for (size_t k = 0; k < sizeof bgv_presets / sizeof bgv_presets[0]; k++) {
        const bgv_preset *ps = &bgv_presets[k];
        if (strcmp(ps->name, name) != 0) continue;
        veil_params_spec spec = {ps->n, ps->q_count, NULL, ps->q_bits, 1, NULL, &ps->p_bits, ps->q_count,
                                 VEIL_SECRET_TERNARY, 0, VEIL_SECURITY_128, 65537};
        return veil_params_new(out, &spec, err);
    }
    return veil_fail(err, VEIL_ERR_NOT_FOUND, "no parameter preset named '%s'", name);
}

size_t veil_params_degree(const veil_params *p) { return p ? p->n : 0; }
size_t veil_params_q_count(const veil_params *p) { return p ? p->q_count : 0; }
size_t veil_params_p_count(const veil_params *p) { return p ? p->p_count : 0; }
uint64_t veil_params_q(const veil_params *p, size_t i) { return (p && i < p->q_count) ? p->q[i] : 0; }
uint64_t veil_params_p(const veil_params *p, size_t i) { return (p && i < p->p_count) ? p->p[i] : 0; }
size_t veil_params_dnum(const veil_params *p) { return p ? p->dnum : 0; }
veil_security veil_params_security(const veil_params *p) { return p ? p->security : VEIL_SECURITY_NONE; }
veil_secret_kind veil_params_secret(const veil_params *p) { return p ? p->secret : VEIL_SECRET_TERNARY; }
size_t veil_params_hamming_weight(const veil_params *p) { return p ? p->hamming_weight : 0; }
uint64_t veil_params_plain_modulus(const veil_params *p) { return p ? p->t : 0; }

unsigned veil_params_log_qp(const veil_params *p)
{
    return p ? veil_primes_log_product(p->q, p->q_count) + veil_primes_log_product(p->p, p->p_count) : 0;
}

static void put_u64(crypto_generichash_state *st, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    crypto_generichash_update(st, b, sizeof b);
}

void veil_params_hash(const veil_params *p, uint8_t out[VEIL_PARAMS_HASH_BYTES])
{
    static const char domain[] = "veil-params-v1";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, VEIL_PARAMS_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof domain - 1);
    put_u64(&st, p->n);
    put_u64(&st, p->q_count);
    for (size_t i = 0; i < p->q_count; i++) put_u64(&st, p->q[i]);
    put_u64(&st, p->p_count);
    for (size_t i = 0; i < p->p_count; i++) put_u64(&st, p->p[i]);
    put_u64(&st, p->dnum);
    put_u64(&st, (uint64_t)p->secret);
    put_u64(&st, p->hamming_weight);
    put_u64(&st, (uint64_t)p->security);
    if (p->t) put_u64(&st, p->t); /* BGV only: CKKS sets hash as they always did */
    crypto_generichash_final(&st, out, VEIL_PARAMS_HASH_BYTES);
}

veil_status veil_params_copy(veil_params **out, const veil_params *params, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    *out = NULL;
    VEIL_REQUIRE(params, err);
    veil_params *copy = veil_alloc(1, sizeof *copy);
    if (!copy) return veil_fail(err, VEIL_ERR_NO_MEMORY, "parameters: out of memory");
    *copy = *params;
    *out = copy;
    return VEIL_OK;
}
