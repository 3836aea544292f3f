/*
 * The default thread count: VEIL_THREADS, else OpenMP's, capped by the CPUs this process may run on (its
 * CPU affinity) and may use (the CPU quota of its cgroup, v2 or v1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#ifdef __linux__
#include <sched.h>
#endif
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

/* Reads a decimal number of 1 to 18 digits at *s (no sign) and moves *s past it; 0 when there is none. */
static int read_u64(const char **s, uint64_t *v)
{
    uint64_t x = 0;
    int digits = 0;
    while (**s >= '0' && **s <= '9') {
        if (++digits > 18) return 0;
        x = x * 10 + (uint64_t)(**s - '0');
        (*s)++;
    }
    *v = x;
    return digits > 0;
}

/* Whether s holds nothing but spaces, tabs and newlines. */
static int only_space(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    return *s == '\0';
}

/* ceil(quota / period), at most THREADS_MAX; 0 for a zero quota or period. */
static int cpus_of_quota(uint64_t quota, uint64_t period)
{
    if (quota == 0 || period == 0) return 0;
    uint64_t c = quota / period + (quota % period != 0);
    return c > THREADS_MAX ? THREADS_MAX : (int)c;
}

int veil_cgroup_cpu_max_parse(const char *text)
{
    if (text == NULL) return 0;
    const char *s = text;
    uint64_t quota, period;
    if (strncmp(s, "max", 3) == 0) return 0; /* no limit */
    if (!read_u64(&s, &quota) || *s++ != ' ' || !read_u64(&s, &period) || !only_space(s)) return 0;
    return cpus_of_quota(quota, period);
}

int veil_cgroup_cfs_parse(const char *quota_text, const char *period_text)
{
    if (quota_text == NULL || period_text == NULL) return 0;
    const char *q = quota_text, *p = period_text;
    uint64_t quota, period;
    if (!read_u64(&q, &quota) || !only_space(q) || !read_u64(&p, &period) || !only_space(p)) return 0; /* -1: none */
    return cpus_of_quota(quota, period);
}

#ifdef __linux__
enum { FILE_TEXT_MAX = 64, CGROUP_PATH_MAX = 4096 };

/* Reads a small text file whole into buf (NUL-terminated); 0 when it is missing, unreadable or too long. */
static int read_small(const char *path, char buf[FILE_TEXT_MAX])
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, FILE_TEXT_MAX - 1, f);
    int whole = n < FILE_TEXT_MAX - 1 && !ferror(f);
    fclose(f);
    buf[whole ? n : 0] = '\0';
    return whole;
}

/* The CPU limit set in one cgroup directory (v2 cpu.max, or v1 cfs files): 0 when none or unreadable. */
static int limit_at(const char *dir, int v2)
{
    char path[CGROUP_PATH_MAX + 32], a[FILE_TEXT_MAX], b[FILE_TEXT_MAX];
    if (v2) {
        snprintf(path, sizeof path, "%s/cpu.max", dir);
        return read_small(path, a) ? veil_cgroup_cpu_max_parse(a) : 0;
    }
    snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
    if (!read_small(path, a)) return 0;
    snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
    return read_small(path, b) ? veil_cgroup_cfs_parse(a, b) : 0;
}

/* The tightest limit from mount point base down to the process's cgroup rel (and every cgroup between). */
static int limit_under(const char *base, const char *rel, int v2)
{
    char dir[CGROUP_PATH_MAX];
    /* a path outside this namespace's view ("/../x") or too long: the mount point alone */
    if (strstr(rel, "/..") || (size_t)snprintf(dir, sizeof dir, "%s%s", base, rel) >= sizeof dir)
        snprintf(dir, sizeof dir, "%s", base);
    const size_t base_len = strlen(base);
    int best = 0;
    for (;;) {
        size_t len = strlen(dir);
        while (len > base_len && dir[len - 1] == '/') dir[--len] = '\0';
        int c = limit_at(dir, v2);
        if (c > 0 && (best == 0 || c < best)) best = c;
        if (len <= base_len) break;
        char *slash = strrchr(dir + base_len, '/');
        if (!slash) break;
        *slash = '\0';
    }
    return best;
}

/* Whether the comma-separated controller list holds "cpu". */
static int has_cpu_controller(const char *list, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && list[j] != ',') j++;
        if (j - i == 3 && memcmp(list + i, "cpu", 3) == 0) return 1;
        i = j + 1;
    }
    return 0;
}

/* The CPUs the process's cgroups allow (v2 and v1 quotas, the process's own and its ancestors'), 0: no limit. */
static int cgroup_cpus(void)
{
    FILE *f = fopen("/proc/self/cgroup", "r");
    int best = 0;
    char line[CGROUP_PATH_MAX + 256];
    while (f && fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        if (len == 0 || line[len - 1] != '\n') break; /* a line too long for the buffer: stop there */
        line[len - 1] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/') continue;
        int c = 0;
        if (strncmp(line, "0::", 3) == 0) c = limit_under("/sys/fs/cgroup", c2 + 1, 1);
        else if (has_cpu_controller(c1 + 1, (size_t)(c2 - c1 - 1))) {
            const char *mounts[] = {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct,cpu"};
            for (size_t m = 0; m < sizeof mounts / sizeof mounts[0] && c == 0; m++) c = limit_under(mounts[m], c2 + 1, 0);
        }
        if (c > 0 && (best == 0 || c < best)) best = c;
    }
    if (f) fclose(f);
    return best;
}

/* The CPUs in the process's affinity mask, 0 when unknown. */
static int affinity_cpus(void)
{
    for (int n = 1024; n <= 65536; n *= 4) {
        cpu_set_t *set = CPU_ALLOC(n);
        if (!set) return 0;
        const size_t size = CPU_ALLOC_SIZE(n);
        int ok = sched_getaffinity(0, size, set) == 0, count = ok ? CPU_COUNT_S(size, set) : 0, again = !ok && errno == EINVAL;
        CPU_FREE(set);
        if (!again) return count;
    }
    return 0;
}
#else
static int cgroup_cpus(void) { return 0; }
static int affinity_cpus(void) { return 0; }
#endif

int veil_threads_default(void)
{
    int t = threads_from_env();
    if (t > 0) return t;
    t = omp_get_max_threads();
    const int affinity = affinity_cpus(), quota = cgroup_cpus();
    if (affinity > 0 && affinity < t) t = affinity;
    if (quota > 0 && quota < t) t = quota;
    return t >= 1 ? t : 1;
}
