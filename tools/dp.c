/* A key folder's differential-privacy budget file (KEYDIR/privacy.budget, docs/privacy.md), for budget,
 * decrypt and info. */
#include <stdio.h>
#include "veil_cli.h"

static void budget_path(char *out, size_t cap, const char *keydir)
{
    snprintf(out, cap, "%s/%s", keydir, VEIL_DP_BUDGET_FILE);
}

int cli_load_budget(const char *keydir, veil_dp_budget *b, int *exists)
{
    char path[4096];
    budget_path(path, sizeof path, keydir);
    *exists = cli_exists(path);
    if (!*exists) return EXIT_OK;
    veil_buffer buf = {0};
    veil_error err = {0};
    int rc = cli_read_file(path, &buf);
    if (rc == EXIT_OK) rc = cli_status(veil_dp_budget_load(b, buf.data, buf.len, &err), &err, path);
    veil_buffer_free(&buf);
    return rc;
}

int cli_save_budget(const char *keydir, const veil_dp_budget *b)
{
    char path[4096];
    budget_path(path, sizeof path, keydir);
    veil_buffer buf = {0};
    veil_error err = {0};
    int rc = cli_status(veil_dp_budget_save(&buf, b, &err), &err, NULL);
    return rc ? rc : cli_save_buffer(path, &buf);
}

void cli_print_budget(const veil_dp_budget *b)
{
    double spent = 0;
    (void)veil_dp_budget_spent_epsilon(b, &spent, NULL);
    printf("privacy:    budget epsilon %.6g at delta %.3g (zCDP rho %.6g)\n", b->epsilon, b->delta, b->rho_limit);
    printf("spent:      epsilon %.6g (rho %.6g) in %llu release%s; rho %.6g left\n", spent, b->rho_spent,
           (unsigned long long)b->releases, b->releases == 1 ? "" : "s", b->rho_limit - b->rho_spent);
}

int cli_charge_release(const char *keydir, const char *what, const veil_ciphertexts *cts)
{
    veil_dp_release r;
    if (!veil_ciphertexts_dp_release(cts, &r)) return EXIT_OK;
    int rc = cli_refuse_incomplete_release(what, cts);
    if (rc) return rc;
    veil_dp_budget b;
    veil_error err = {0};
    int exists = 0;
    rc = cli_load_budget(keydir, &b, &exists);
    if (rc) return rc;
    if (!exists)
        return cli_error(EXIT_BUDGET, "%s is a differentially private release (epsilon %g at delta %g) and %s has "
                         "no privacy budget: set one with veil budget --keys %s --epsilon E --delta D", what,
                         r.epsilon, r.delta, keydir, keydir);
    rc = cli_status(veil_dp_budget_charge(&b, r.rho, &err), &err, what);
    return rc ? rc : cli_save_budget(keydir, &b);
}

int cli_refuse_incomplete_release(const char *what, const veil_ciphertexts *cts)
{
    veil_dp_release r;
    if (!veil_ciphertexts_dp_release(cts, &r) || veil_dp_release_complete(&r)) return EXIT_OK;
    return cli_error(EXIT_BUDGET, "%s carries %u of the %u differential-privacy noise shares its release needs (each "
                     "party adds one to its update: veil eval --dp-parties): its noise falls short, it is not released",
                     what, r.shares, r.parties);
}
