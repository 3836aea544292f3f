/* Single-word modular arithmetic: public wrappers and the Barrett constant. */
#include "ring/ring_internal.h"

void veil_modulus_init(veil_modulus *m, uint64_t q)
{
    /* floor(2^128 / q) = floor((2^128 - 1) / q) for every q that is not a power of two */
    veil_u128 ratio = ~(veil_u128)0 / q;
    m->q = q;
    m->ratio_hi = (uint64_t)(ratio >> 64);
    m->ratio_lo = (uint64_t)ratio;
    m->bits = 0;
    for (uint64_t v = q; v; v >>= 1) m->bits++;
}

uint64_t veil_mod_add(uint64_t a, uint64_t b, uint64_t q)
{
    return veil_addmod(a, b, q);
}

uint64_t veil_mod_sub(uint64_t a, uint64_t b, uint64_t q)
{
    return veil_submod(a, b, q);
}

uint64_t veil_mod_mul(uint64_t a, uint64_t b, uint64_t q)
{
    return (uint64_t)(((veil_u128)a * b) % q);
}

uint64_t veil_mod_pow(uint64_t base, uint64_t exp, uint64_t q)
{
    uint64_t result = 1 % q, b = base % q;
    while (exp) {
        if (exp & 1) result = veil_mod_mul(result, b, q);
        b = veil_mod_mul(b, b, q);
        exp >>= 1;
    }
    return result;
}

veil_status veil_mod_inv(uint64_t *out, uint64_t a, uint64_t q, veil_error *err)
{
    VEIL_REQUIRE(out, err);
    if (q < 2) return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_mod_inv: modulus %llu is below 2",
                                (unsigned long long)q);
    /* extended Euclid on (a mod q, q), tracking the coefficient of a with signed 128-bit values */
    veil_i128 t0 = 0, t1 = 1;
    uint64_t r0 = q, r1 = a % q;
    while (r1 != 0) {
        uint64_t quot = r0 / r1, r2 = r0 - quot * r1;
        veil_i128 t2 = t0 - (veil_i128)quot * t1;
        r0 = r1; r1 = r2; t0 = t1; t1 = t2;
    }
    if (r0 != 1) return veil_fail(err, VEIL_ERR_ARGUMENT, "veil_mod_inv: %llu has no inverse modulo %llu",
                                  (unsigned long long)a, (unsigned long long)q);
    if (t0 < 0) t0 += q;
    *out = (uint64_t)t0;
    return VEIL_OK;
}
