/*
 * The discrete Gaussian N_Z(0, sigma^2), P[x] proportional to exp(-x^2 / (2 sigma^2)) on the integers, for
 * differential privacy: Canonne, Kamath, Steinke, "The Discrete Gaussian for Differential Privacy"
 * (NeurIPS 2020), Algorithm 1 (Bernoulli(exp(-gamma)) for a rational gamma), Algorithm 2 (the discrete
 * Laplace, here with the integer scale t) and Algorithm 3 (the discrete Gaussian by rejection from the
 * discrete Laplace of scale t = floor(sigma) + 1). sigma^2 = num/den is a rational and every decision is
 * a comparison of integers (256-bit where needed): no floating point, so the output has exactly the
 * distribution above (up to the cut-off documented in ring.h, below 2^-2800).
 *
 * Timing. The rejection loops of Algorithms 2 and 3 repeat a variable number of times; a repeat only
 * reveals values that are then thrown away. Inside one candidate the loops whose length the paper lets
 * depend on the candidate are run a fixed number of times with branch-free bookkeeping:
 *  - Algorithm 1's loop "K <- K+1 while Bernoulli(gamma/K)" runs BERN_ROUNDS rounds (it ends later only
 *    when all of them succeed, probability below 1/BERN_ROUNDS! < 2^-61);
 *  - the geometric V of Algorithm 2 and the floor(gamma) Bernoulli(exp(-1)) trials of Algorithm 1 run
 *    GEOM_ROUNDS rounds (longer only with probability below exp(-GEOM_ROUNDS) < 2^-69 for a value that is
 *    then kept).
 * Uniform integers below a bound are drawn by rejection under the bound's bit mask: the number of draws
 * depends on discarded draws only, and the bounds themselves depend on sigma (public) and round counters.
 */
#include <string.h>
#include "ring/ring_internal.h"

enum { BERN_ROUNDS = 20, GEOM_ROUNDS = 48, TAIL_FACTOR = 64 };

/* Random bits served from 64-bit words of the prng, so that a small uniform costs a few bits, not a word. */
typedef struct {
    veil_prng *prng;
    uint64_t word;
    unsigned left; /* unused bits in word */
} bit_source;

static uint64_t take_bits(bit_source *src, unsigned bits) /* 1 <= bits <= 64 */
{
    if (bits == 64) return veil_prng_u64(src->prng);
    if (src->left < bits) {
        src->word = veil_prng_u64(src->prng);
        src->left = 64;
    }
    uint64_t v = src->word & (((uint64_t)1 << bits) - 1);
    src->word >>= bits;
    src->left -= bits;
    return v;
}

/* 256-bit unsigned integers, little-endian limbs; every operation touches all four limbs. */
typedef struct {
    uint64_t w[4];
} u256;

static u256 u256_of(uint64_t x)
{
    u256 r = {{x, 0, 0, 0}};
    return r;
}

/* a * b modulo 2^256 (callers keep products below 2^256). */
static u256 u256_mul(u256 a, u256 b)
{
    u256 r = {{0, 0, 0, 0}};
    for (int i = 0; i < 4; i++) {
        veil_u128 carry = 0;
        for (int j = 0; i + j < 4; j++) {
            veil_u128 cur = (veil_u128)a.w[i] * b.w[j] + r.w[i + j] + carry;
            r.w[i + j] = (uint64_t)cur;
            carry = cur >> 64;
        }
    }
    return r;
}

/* a - b modulo 2^256; *borrow (when not NULL) gets 1 when a < b. */
static u256 u256_sub(u256 a, u256 b, uint64_t *borrow)
{
    u256 r;
    uint64_t br = 0;
    for (int i = 0; i < 4; i++) {
        veil_u128 cur = (veil_u128)a.w[i] - b.w[i] - br;
        r.w[i] = (uint64_t)cur;
        br = (uint64_t)(cur >> 64) & 1;
    }
    if (borrow) *borrow = br;
    return r;
}

/* 1 when a < b, without branches. */
static uint64_t u256_lt(u256 a, u256 b)
{
    uint64_t borrow;
    (void)u256_sub(a, b, &borrow);
    return borrow;
}

/* mask ? a : b, for mask 0 or 1. */
static u256 u256_select(uint64_t mask, u256 a, u256 b)
{
    uint64_t m = 0 - mask;
    u256 r;
    for (int i = 0; i < 4; i++) r.w[i] = (a.w[i] & m) | (b.w[i] & ~m);
    return r;
}

static unsigned u256_bits(u256 a) /* bit length; used on public bounds only */
{
    for (int i = 3; i >= 0; i--)
        if (a.w[i]) return (unsigned)(64 * i + 64 - __builtin_clzll(a.w[i]));
    return 0;
}

/* Uniform in [0, bound), bound >= 1 public: draws of the bound's bit length until one is below it. */
static u256 uniform_below(bit_source *src, u256 bound)
{
    const unsigned bits = u256_bits(bound);
    for (;;) {
        u256 r = u256_of(0);
        for (unsigned i = 0; 64 * i < bits; i++) r.w[i] = take_bits(src, bits - 64 * i >= 64 ? 64 : bits - 64 * i);
        if (u256_lt(r, bound)) return r;
    }
}

static uint64_t uniform_below64(bit_source *src, uint64_t bound) /* 1 <= bound < 2^63, public */
{
    const unsigned bits = bound > 1 ? (unsigned)(64 - __builtin_clzll(bound - 1)) : 1;
    for (;;) {
        uint64_t r = take_bits(src, bits);
        if (r < bound) return r;
    }
}

/* Bernoulli(num / den) for num <= den. */
static uint64_t bernoulli(bit_source *src, u256 num, u256 den)
{
    return u256_lt(uniform_below(src, den), num);
}

/*
 * Algorithm 1, gamma = num/den in [0, 1]: K = the first k >= 1 with Bernoulli(gamma / k) = 0; returns
 * 1 when K is odd (probability exp(-gamma)). BERN_ROUNDS rounds always run; more only when all succeed
 * (probability below 1 / BERN_ROUNDS! < 2^-61).
 */
static uint64_t bernoulli_exp_unit(bit_source *src, u256 num, u256 den)
{
    uint64_t alive = 1, result = 0, k = 1;
    for (; k <= BERN_ROUNDS; k++) {
        uint64_t a = bernoulli(src, num, u256_mul(den, u256_of(k)));
        result |= alive & (a ^ 1) & (k & 1);
        alive &= a;
    }
    for (; alive; k++) {
        uint64_t a = bernoulli(src, num, u256_mul(den, u256_of(k)));
        result |= (a ^ 1) & (k & 1);
        alive = a;
    }
    return result;
}

/* The same for num <= den < 2^40 in 64-bit arithmetic (the discrete Laplace and exp(-1)). */
static uint64_t bernoulli_exp_unit64(bit_source *src, uint64_t num, uint64_t den)
{
    uint64_t alive = 1, result = 0, k = 1;
    for (; k <= BERN_ROUNDS; k++) {
        uint64_t a = (uint64_t)(uniform_below64(src, den * k) < num);
        result |= alive & (a ^ 1) & (k & 1);
        alive &= a;
    }
    for (; alive && k < ((uint64_t)1 << 20); k++) { /* the bound keeps den * k in range; 1/(2^20)! */
        uint64_t a = (uint64_t)(uniform_below64(src, den * k) < num);
        result |= (a ^ 1) & (k & 1);
        alive = a;
    }
    return result;
}

static uint64_t bernoulli_exp_minus_one(bit_source *src)
{
    return bernoulli_exp_unit64(src, 1, 1);
}

/*
 * Algorithm 1, any gamma = num/den >= 0: floor(gamma) trials of Bernoulli(exp(-1)) must all succeed, then
 * Bernoulli(exp(-(gamma - floor(gamma)))). The integer part is peeled off by subtracting den, GEOM_ROUNDS
 * times without branches (a trial is drawn every round and counts only while den still fits).
 */
static uint64_t bernoulli_exp(bit_source *src, u256 num, u256 den)
{
    uint64_t ok = 1;
    u256 rest = num;
    for (int i = 0; i < GEOM_ROUNDS; i++) {
        uint64_t fits = u256_lt(rest, den) ^ 1;
        uint64_t trial = bernoulli_exp_minus_one(src);
        ok &= (fits ^ 1) | trial;
        rest = u256_select(fits, u256_sub(rest, den, NULL), rest);
    }
    while (!u256_lt(rest, den)) { /* gamma >= GEOM_ROUNDS: accepted with probability below exp(-48) */
        if (!bernoulli_exp_minus_one(src)) return 0;
        rest = u256_sub(rest, den, NULL);
    }
    return ok & bernoulli_exp_unit(src, rest, den);
}

/*
 * Algorithm 2 with integer scale t (s = 1): P[y] proportional to exp(-|y| / t). U uniform below t is kept
 * with probability exp(-U/t); V geometric with ratio exp(-1) (GEOM_ROUNDS trials, branch-free); the sign
 * B uniform, (B = 1, y = 0) rejected so that 0 is not counted twice.
 */
static int64_t discrete_laplace(bit_source *src, uint64_t t)
{
    for (;;) {
        uint64_t u = uniform_below64(src, t);
        uint64_t keep = bernoulli_exp_unit64(src, u, t);
        uint64_t v = 0, alive = 1;
        for (int i = 0; i < GEOM_ROUNDS; i++) {
            uint64_t trial = bernoulli_exp_minus_one(src);
            alive &= trial;
            v += alive;
        }
        while (alive) { /* probability exp(-48) */
            alive = bernoulli_exp_minus_one(src);
            v += alive;
        }
        uint64_t sign = take_bits(src, 1);
        uint64_t x = u + t * v; /* t <= 2^33, v < 2^20 in every run that ends */
        if (!keep || (sign && x == 0)) continue; /* rejections reveal only the discarded candidate */
        uint64_t neg = 0 - sign;
        return (int64_t)((x ^ neg) + sign);
    }
}

static veil_status check_sigma2(uint64_t num, uint64_t den, veil_error *err)
{
    if (den == 0 || den > VEIL_DGAUSS_MAX_DEN)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "discrete gaussian: denominator %llu outside [1, 2^32]",
                         (unsigned long long)den);
    if (num < den)
        return veil_fail(err, VEIL_ERR_ARGUMENT, "discrete gaussian: sigma^2 = %llu/%llu is below 1",
                         (unsigned long long)num, (unsigned long long)den);
    return VEIL_OK;
}

/* floor(sqrt(num / den)) exactly: the largest m with m^2 * den <= num (binary search; public values). */
static uint64_t floor_sigma(uint64_t num, uint64_t den)
{
    uint64_t lo = 1, hi = (uint64_t)1 << 32; /* m^2 <= num < 2^64 */
    while (lo + 1 < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        u256 sq = u256_mul(u256_mul(u256_of(mid), u256_of(mid)), u256_of(den));
        if (u256_lt(u256_of(num), sq)) hi = mid; else lo = mid;
    }
    return lo;
}

veil_status veil_sample_discrete_gaussian(int64_t *out, size_t n, uint64_t sigma2_num, uint64_t sigma2_den,
                                          veil_prng *prng, veil_error *err)
{
    if (n > 0) VEIL_REQUIRE(out, err);
    VEIL_REQUIRE(prng, err);
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_sigma2(sigma2_num, sigma2_den, err));
    /* Algorithm 3: candidate Y from the discrete Laplace of scale t, kept with probability
     * exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2)) = exp(-a^2 / b), a = |Y| t den - num, b = 2 num den t^2. */
    const uint64_t t = floor_sigma(sigma2_num, sigma2_den) + 1;
    const u256 num = u256_of(sigma2_num), den = u256_of(sigma2_den), tt = u256_of(t);
    const u256 b = u256_mul(u256_mul(u256_mul(u256_of(2), num), den), u256_mul(tt, tt));
    const uint64_t cap = TAIL_FACTOR * t; /* |Y| beyond it: acceptance below exp(-63^2/2), rejected */
    bit_source src = {prng, 0, 0};
    for (size_t i = 0; i < n;) {
        int64_t y = discrete_laplace(&src, t);
        uint64_t neg = (uint64_t)y >> 63;
        uint64_t mag = ((uint64_t)y ^ (0 - neg)) + neg;
        uint64_t within = (uint64_t)(mag <= cap);
        u256 m = u256_select(within, u256_of(mag), u256_of(cap));
        u256 pos = u256_mul(u256_mul(m, tt), den);
        uint64_t below;
        u256 diff = u256_sub(pos, num, &below);
        u256 a = u256_select(below, u256_sub(num, pos, NULL), diff);
        uint64_t keep = bernoulli_exp(&src, u256_mul(a, a), b);
        if (!(keep & within)) continue;
        out[i++] = y;
    }
    veil_wipe(&src, sizeof src);
done:
    return st;
}

veil_status veil_dgauss_sigma2_rational(double sigma, uint64_t *num, uint64_t *den, veil_error *err)
{
    VEIL_REQUIRE(num, err);
    VEIL_REQUIRE(den, err);
    if (!(sigma >= 1.0) || !(sigma <= VEIL_DGAUSS_MAX_SIGMA))
        return veil_fail(err, VEIL_ERR_ARGUMENT, "discrete gaussian: sigma %g outside [1, 2^31]", sigma);
    /* the largest power-of-two denominator (<= 2^32) that keeps the numerator below 2^63, rounded up so
     * that the noise is never smaller than asked */
    const long double s2 = (long double)sigma * (long double)sigma;
    uint64_t d = VEIL_DGAUSS_MAX_DEN;
    while (d > 1 && s2 * (long double)d >= 9.2e18L) d >>= 1;
    long double scaled = s2 * (long double)d;
    uint64_t nm = (uint64_t)scaled;
    if ((long double)nm < scaled) nm++;
    *num = nm;
    *den = d;
    return VEIL_OK;
}
