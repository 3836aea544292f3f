/* CRT over several BGV plaintext moduli: split an integer vector into residues, recompose it exactly. */
#include <string.h>
#include "bgv/bgv_internal.h"

static veil_status check_moduli(const uint64_t *moduli, size_t k, veil_error *err)
{
    VEIL_REQUIRE(moduli, err);
    if (k < 2 || k > 4) return veil_fail(err, VEIL_ERR_ARGUMENT, "crt: %zu moduli (2 to 4)", k);
    for (size_t i = 0; i < k; i++) {
        if (moduli[i] < 2 || moduli[i] >= ((uint64_t)1 << 60))
            return veil_fail(err, VEIL_ERR_ARGUMENT, "crt: modulus %llu not in [2, 2^60)", (unsigned long long)moduli[i]);
        for (size_t j = 0; j < i; j++) {
            uint64_t a = moduli[i], b = moduli[j];
            while (b) {
                const uint64_t r = a % b;
                a = b;
                b = r;
            }
            if (a != 1)
                return veil_fail(err, VEIL_ERR_ARGUMENT, "crt: moduli %llu and %llu are not coprime",
                                 (unsigned long long)moduli[j], (unsigned long long)moduli[i]);
        }
    }
    return VEIL_OK;
}

veil_status veil_bgv_crt_split(const uint64_t *moduli, size_t k, const int64_t *values, size_t count,
                               uint64_t *const *residues, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_moduli(moduli, k, err));
    if (count) {
        VEIL_REQUIRE(values, err);
        VEIL_REQUIRE(residues, err);
    }
    for (size_t i = 0; i < k && count; i++) {
        if (!residues[i]) VEIL_FAIL(err, VEIL_ERR_NULL, "crt: residue array %zu is NULL", i);
        const uint64_t t = moduli[i];
        for (size_t j = 0; j < count; j++) {
            const int64_t v = values[j];
            const uint64_t mag = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v, r = mag % t;
            residues[i][j] = v < 0 ? (t - r) % t : r;
        }
    }
done:
    return st;
}

/* Little-endian multiword integers of at most 5 words (4 moduli below 2^60, and a carry). */
enum { WORDS = 5 };

static void mw_mul_small(uint64_t *x, uint64_t m)
{
    uint64_t carry = 0;
    for (int i = 0; i < WORDS; i++) {
        const veil_u128 v = (veil_u128)x[i] * m + carry;
        x[i] = (uint64_t)v;
        carry = (uint64_t)(v >> 64);
    }
}

static void mw_add(uint64_t *x, const uint64_t *y)
{
    uint64_t carry = 0;
    for (int i = 0; i < WORDS; i++) {
        const veil_u128 v = (veil_u128)x[i] + y[i] + carry;
        x[i] = (uint64_t)v;
        carry = (uint64_t)(v >> 64);
    }
}

static int mw_cmp(const uint64_t *x, const uint64_t *y)
{
    for (int i = WORDS - 1; i >= 0; i--)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

static void mw_sub(uint64_t *x, const uint64_t *y) /* x -= y, x >= y */
{
    uint64_t borrow = 0;
    for (int i = 0; i < WORDS; i++) {
        const uint64_t d = x[i] - y[i] - borrow;
        borrow = (x[i] < y[i]) || (x[i] - y[i] < borrow);
        x[i] = d;
    }
}

veil_status veil_bgv_crt_compose(const uint64_t *moduli, size_t k, const uint64_t *const *residues, size_t count,
                                 int64_t *values, veil_error *err)
{
    veil_status st = VEIL_OK;
    VEIL_CHECK(check_moduli(moduli, k, err));
    if (count) {
        VEIL_REQUIRE(values, err);
        VEIL_REQUIRE(residues, err);
    }
    for (size_t i = 0; i < k && count; i++)
        if (!residues[i]) VEIL_FAIL(err, VEIL_ERR_NULL, "crt: residue array %zu is NULL", i);
    /* T and, per modulus, (T / t_i) and [(T / t_i)^-1]_{t_i}: x = sum r_i [(T/t_i)^-1] (T/t_i) mod T */
    uint64_t T[WORDS] = {1}, half[WORDS], basis[4][WORDS], inv[4];
    for (size_t i = 0; i < k; i++) mw_mul_small(T, moduli[i]);
    for (int w = 0; w < WORDS; w++) half[w] = (T[w] >> 1) | (w + 1 < WORDS ? T[w + 1] << 63 : 0);
    for (size_t i = 0; i < k; i++) {
        memset(basis[i], 0, sizeof basis[i]);
        basis[i][0] = 1;
        uint64_t rest = 1; /* (T / t_i) mod t_i */
        for (size_t j = 0; j < k; j++) {
            if (j == i) continue;
            mw_mul_small(basis[i], moduli[j]);
            rest = (uint64_t)((veil_u128)rest * (moduli[j] % moduli[i]) % moduli[i]);
        }
        veil_mod_inv(&inv[i], rest, moduli[i], NULL);
    }
    for (size_t j = 0; j < count; j++) {
        uint64_t x[WORDS] = {0};
        for (size_t i = 0; i < k; i++) {
            if (residues[i][j] >= moduli[i])
                VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "crt: residue %zu of modulus %llu is not below it", j,
                          (unsigned long long)moduli[i]);
            uint64_t term[WORDS];
            memcpy(term, basis[i], sizeof term);
            mw_mul_small(term, (uint64_t)((veil_u128)residues[i][j] * inv[i] % moduli[i]));
            mw_add(x, term);
            while (mw_cmp(x, T) >= 0) mw_sub(x, T);
        }
        /* centered: x > T/2 means x - T < 0 */
        const bool negative = mw_cmp(x, half) > 0;
        if (negative) {
            uint64_t m[WORDS];
            memcpy(m, T, sizeof m);
            mw_sub(m, x);
            memcpy(x, m, sizeof x);
        }
        bool fits = x[0] <= (negative ? (uint64_t)1 << 63 : INT64_MAX);
        for (int w = 1; w < WORDS; w++) fits = fits && x[w] == 0;
        if (!fits) VEIL_FAIL(err, VEIL_ERR_ARGUMENT, "crt: value %zu does not fit 64 signed bits", j);
        values[j] = negative ? (x[0] == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)x[0]) : (int64_t)x[0];
    }
done:
    return st;
}
