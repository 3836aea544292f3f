/* Passive OpenMP waiting for Veil's programs (tools/omp_wait.c). */
#ifndef VEIL_OMP_WAIT_H
#define VEIL_OMP_WAIT_H

/*
 * Call first in main. When neither OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set, sets OMP_WAIT_POLICY=passive
 * and executes the program again (/proc/self/exe, the same argv; the same process, file descriptors and exit
 * status). Returns only when it did not re-execute: a policy was set (by the user, or by the first run), the
 * program runs under valgrind, or the executable could not be found or executed (then the environment is left
 * as it was).
 */
void veil_omp_passive_wait(char **argv);

#endif
