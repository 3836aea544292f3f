/*
 * Passive OpenMP waiting for Veil's programs (veil, veil-bench): linked into the executables, not the library.
 *
 * libgomp's threads spin for a while after each parallel region before they sleep. Veil's ring operations
 * are regions of tens of microseconds, thousands per evaluation, so the waiting threads keep spinning: on a
 * machine where another process keeps a core busy they take the CPU from the thread that has the work
 * (docs/performance.md, "A busy machine"). OMP_WAIT_POLICY=passive makes them sleep at once.
 *
 * libgomp reads OMP_WAIT_POLICY once, in its constructor, before main. Setting it earlier does not work
 * either: a function in the executable's .preinit_array runs first, but libc's own initialization, which
 * comes after it, resets the environment to the one the kernel passed. So the program sets the variable and
 * executes itself again, once: the second run finds it set.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "omp_wait.h"

void veil_omp_passive_wait(char **argv)
{
    if (getenv("OMP_WAIT_POLICY") != NULL || getenv("GOMP_SPINCOUNT") != NULL) return;
    const char *preload = getenv("LD_PRELOAD");
    if (preload != NULL && strstr(preload, "vgpreload") != NULL) return; /* under valgrind: the new run would escape it */
    char path[4096];
    const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0 || (size_t)n >= sizeof path - 1) return;
    path[n] = '\0';
    if (setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
    execv(path, argv);
    unsetenv("OMP_WAIT_POLICY"); /* not executed (a deleted binary, no permission): run on as we are */
}
