/* The default thread count: VEIL_THREADS, else OpenMP's. */
#include <errno.h>
#include <stdlib.h>
#include <omp.h>
#include "core/core_internal.h"

#define THREADS_MAX 4096 /* larger VEIL_THREADS values are taken for typos and ignored */

/*
 * Parses VEIL_THREADS strictly: decimal digits only (no sign, no spaces, nothing after them), a value in
 * [1, THREADS_MAX]. Returns the value, or 0 when the variable is unset or not such a number.
 */
static int threads_from_env(void)
{
    const char *v = getenv("VEIL_THREADS");
    if (v == NULL || *v < '0' || *v > '9') return 0;
    char *end = NULL;
    errno = 0;
    long t = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || t < 1 || t > THREADS_MAX) return 0;
    return (int)t;
}

int veil_threads_default(void)
{
    int t = threads_from_env();
    if (t > 0) return t;
    t = omp_get_max_threads();
    return t >= 1 ? t : 1;
}
