/* The default thread count: VEIL_THREADS, else OpenMP's. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <omp.h>
#include "core/core_internal.h"

int veil_threads_default(void)
{
    const char *v = getenv("VEIL_THREADS");
    if (v && *v) {
        char *end;
        errno = 0;
        long t = strtol(v, &end, 10);
        if (errno == 0 && *end == '\0' && t >= 1 && t <= 4096) return (int)t;
    }
    int t = omp_get_max_threads();
    return t >= 1 ? t : 1;
}
