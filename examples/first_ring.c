/* The README's first program: the ring X^2 computed through the NTT. */
#include <stdio.h>
#include <veil/veil.h>

int main(void)
{
    veil_error err = {0};
    unsigned bits[] = {50, 50};
    uint64_t primes[2];
    veil_ring *ring = NULL;
    veil_poly *a = NULL;
    if (veil_prime_chain(primes, bits, 2, 8192, NULL, 0, &err) != VEIL_OK ||
        veil_ring_new(&ring, 8192, primes, 2, NULL, &err) != VEIL_OK ||
        veil_poly_new_range(&a, ring, 0, 2, VEIL_FORM_COEFF, &err) != VEIL_OK) {
        fprintf(stderr, "veil: %s\n", err.detail);
        return 1;
    }
    veil_poly_limb(a, 0)[1] = 1;             /* a = X in the first limb */
    veil_poly_to_eval(a, &err);              /* NTT of every limb */
    veil_poly_mul(a, a, a, &err);            /* X^2, pointwise */
    veil_poly_to_coeff(a, &err);
    printf("%llu\n", (unsigned long long)veil_poly_limb(a, 0)[2]); /* 1 */
    veil_poly_free(a);
    veil_ring_free(ring);
    return 0;
}
