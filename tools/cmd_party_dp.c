/*
 * veil party sum: the aggregator's step of federated learning run locally (what `veil serve` does for a group,
 * docs/multiparty.md): the parties' encrypted updates under the joint key added into one set. Updates that
 * carry shares of distributed differential-privacy noise (veil eval --dp-parties) sum into a set that records
 * how many shares it holds; the joint decryption releases it once it holds them all (docs/privacy.md).
 */
#include <stdio.h>
#include "veil_cli.h"

int cli_party_sum(const char *keys_dir, char **ins, size_t n_in, const char *out, int quiet)
{
    veil_keyset *joint = NULL;
    veil_ciphertexts *acc = NULL, *one = NULL;
    veil_error err = {0};
    int rc = EXIT_OK;
    if (n_in < 2) return cli_error(EXIT_USAGE, "party sum: --in at least two updates");
    CLI_CHECK(cli_load_keyset(keys_dir, &joint));
    if (!veil_keyset_is_joint(joint)) CLI_FAIL(EXIT_INPUT, "%s does not hold a joint key set", keys_dir);
    CLI_CHECK(cli_load_ciphertexts(ins[0], joint, NULL, &acc));
    for (size_t k = 1; k < n_in; k++) {
        CLI_CHECK(cli_load_ciphertexts(ins[k], joint, NULL, &one));
        CLI_CHECK(cli_status(veil_ciphertexts_add(acc, one, &err), &err, ins[k]));
        veil_ciphertexts_free(one);
        one = NULL;
    }
    CLI_CHECK(cli_save_ciphertexts(out, acc));
    veil_dp_release r;
    if (!quiet && veil_ciphertexts_dp_release(acc, &r) && r.parties)
        fprintf(stderr, "veil: the sum holds %u of the %u noise shares (%s): sigma %g, epsilon %g at delta %g\n",
                r.shares, r.parties, veil_dp_release_complete(&r) ? "a complete release" : "not a release yet",
                r.sigma, r.epsilon, r.delta);
done:
    veil_ciphertexts_free(one);
    veil_ciphertexts_free(acc);
    veil_keyset_free(joint);
    return rc;
}
