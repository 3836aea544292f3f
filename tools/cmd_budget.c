/*
 * veil budget: a key set's differential-privacy budget (KEYDIR/privacy.budget: the limit as epsilon at delta,
 * and the zCDP rho spent by the noisy releases decrypted so far), and the accountant as a calculator.
 *   veil budget --keys KEYDIR --epsilon E --delta D   sets the limit (made, or changed keeping what is spent)
 *   veil budget --keys KEYDIR                         shows it
 *   veil budget --delta D (--rho R | --sigma S [--sensitivity S] [--releases N])   epsilon of that much
 */
#include <math.h>
#include <stdio.h>
#include "veil_cli.h"

/* --rho, or --releases Gaussian releases of noise --sigma and sensitivity --sensitivity (1), composed. */
static int calculator(const cli_options *o)
{
    veil_error err = {0};
    double rho = o->dp_rho, epsilon = 0;
    if (o->dp_sigma) {
        const double sens = o->dp_sensitivity ? o->dp_sensitivity : 1.0;
        const double releases = o->dp_releases ? (double)o->dp_releases : 1.0;
        double one = 0;
        int rc = cli_status(veil_dp_gaussian_rho(sens, o->dp_sigma, &one, &err), &err, NULL);
        if (rc) return rc;
        rho = one * releases; /* zCDP composes by adding */
    }
    int rc = cli_status(veil_dp_epsilon(rho, o->dp_delta, &epsilon, &err), &err, NULL);
    if (rc) return rc;
    printf("epsilon %.17g\nrho %.17g\n", epsilon, rho);
    return cli_finish_output();
}

static int set_limit(const cli_options *o)
{
    veil_error err = {0};
    veil_dp_budget old, b;
    int exists = 0;
    int rc = cli_load_budget(o->keys, &old, &exists);
    if (rc) return rc;
    rc = cli_status(veil_dp_budget_init(&b, o->dp_epsilon, o->dp_delta, &err), &err, NULL);
    if (rc) return rc;
    if (exists) {
        if (old.rho_spent > b.rho_limit)
            return cli_error(EXIT_INPUT, "%s: epsilon %g at delta %g is below what is already spent (rho %g)",
                             o->keys, o->dp_epsilon, o->dp_delta, old.rho_spent);
        b.rho_spent = old.rho_spent; /* what was released stays spent */
        b.releases = old.releases;
    }
    rc = cli_save_budget(o->keys, &b);
    if (rc) return rc;
    cli_print_budget(&b);
    return cli_finish_output();
}

int cli_cmd_budget(int argc, char **argv)
{
    cli_options o;
    if (!cli_parse(argc, argv, &o, CLI_BUDGET)) return EXIT_USAGE;
    if (!o.keys) {
        if (!o.dp_delta || (!o.dp_rho == !o.dp_sigma))
            return cli_error(EXIT_USAGE, "give --keys KEYDIR, or --delta D with one of --rho R and --sigma S");
        if (o.dp_rho && (o.dp_sensitivity || o.dp_releases))
            return cli_error(EXIT_USAGE, "--sensitivity and --releases go with --sigma");
        return calculator(&o);
    }
    if (o.dp_rho || o.dp_sigma || o.dp_sensitivity || o.dp_releases)
        return cli_error(EXIT_USAGE, "--rho, --sigma, --sensitivity and --releases are the calculator's (no --keys)");
    if (!cli_is_dir(o.keys)) return cli_error(EXIT_INPUT, "%s is not a key folder", o.keys);
    if (!!o.dp_epsilon != !!o.dp_delta) return cli_error(EXIT_USAGE, "--epsilon and --delta go together");
    if (o.dp_epsilon) return set_limit(&o);
    veil_dp_budget b;
    int exists = 0;
    int rc = cli_load_budget(o.keys, &b, &exists);
    if (rc) return rc;
    if (!exists)
        return cli_error(EXIT_INPUT, "%s has no privacy budget: set one with veil budget --keys %s --epsilon E --delta D",
                         o.keys, o.keys);
    cli_print_budget(&b);
    return cli_finish_output();
}
