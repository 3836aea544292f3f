#!/usr/bin/env bash
# Federated aggregation with distributed noise (docs/privacy.md): three hospitals under a joint key each add a
# third of the noise's variance to their encrypted update (veil eval --dp-parties 3), the updates are summed
# (veil party sum), and only the sum of all three shares is released by the joint decryption, which each party
# charges to its own budget. Checked: the noise of the decrypted sum against the sigma of the full noise (and
# not one share's), the budget's epsilon against Google's dp-accounting (pinned, as test_dp_accounting.sh
# installs it), a sum short of shares refused, mixed and mismatched shares refused, a second release over
# budget refused with nothing written, bad epsilon, delta and party counts.
#   test_cli_dp_fed.sh BUILD_DIR SOURCE_DIR [no-accounting]   (the sanitizers' run: no dp-accounting)
set -uo pipefail
build=$1 src=$2 accounting=${3:-accounting}
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli_lib.sh" # fail, run, expect, compare

/usr/bin/python3 "$src/examples/diabetes/train.py" "$work/d" >/dev/null
# a regression (no activation after decryption): the decrypted outputs are the noisy values themselves.
# Each update holds the 111 test patients four times over (444 rows: the noise is fresh in every slot).
model=(--model "$work/d/model.onnx")
{ head -1 "$work/d/test.csv"; for c in 1 2 3 4; do tail -n +2 "$work/d/test.csv"; done; } >"$work/rows.csv"
cd "$work" || exit 1

run "$veil" party init --parties 3 "${model[@]}" --out G
for i in 1 2 3; do run "$veil" party keygen --group G --party $i --round 1 --out P$i; done
run "$veil" party combine --group G --round 1 --in P1 P2 P3 --out JOINT
for i in 1 2 3; do run "$veil" party keygen --group G --party $i --round 2 --in JOINT --out P$i; done
run "$veil" party combine --group G --round 2 --in P1 P2 P3 --out JOINT
run "$veil" encrypt --keys JOINT --in rows.csv --out x.ct

dp=(--dp-epsilon 4 --dp-delta 1e-6 --dp-sensitivity 20)
# bad input: each refused with its message
expect 2 "--dp-parties goes with --dp-epsilon" "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out out.bad --dp-parties 3
expect 2 "out of range" "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out out.bad "${dp[@]}" --dp-parties 65
expect 2 "positive integer" "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out out.bad "${dp[@]}" --dp-parties 0
expect 2 "dp-epsilon" "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out out.bad --dp-epsilon -1 --dp-delta 1e-6 --dp-sensitivity 1 --dp-parties 3
expect 3 "epsilon 1e+06 outside" "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out out.bad --dp-epsilon 1e6 --dp-delta 1e-6 --dp-sensitivity 1 --dp-parties 3
expect 3 "delta 0.5 outside" "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out out.bad --dp-epsilon 4 --dp-delta 0.5 --dp-sensitivity 1 --dp-parties 3

# each hospital's update (here the model's outputs on the same rows) with its share of the noise
for i in 1 2 3; do
    run "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out u$i.ct "${dp[@]}" --dp-parties 3
done
run "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out u0.ct
run "$veil" eval "${model[@]}" --eval-keys JOINT/eval --in x.ct --out u2p.ct "${dp[@]}" --dp-parties 2
"$veil" info u1.ct | grep -q "1 of 3 noise shares (not a release yet)" || fail "info of a share: $("$veil" info u1.ct)"
expect 4 "the other none" "$veil" party sum --group G --in u1.ct u0.ct --out out.bad
expect 4 "noise shares differ" "$veil" party sum --group G --in u1.ct u2p.ct --out out.bad
run "$veil" party sum --group G --in u1.ct u2.ct --out s12.ct
"$veil" info s12.ct | grep -q "2 of 3 noise shares" || fail "info of a partial sum"
for i in 1 2 3; do "$veil" budget --keys P$i --epsilon 5 --delta 1e-6 >/dev/null || fail "budget $i"; done
expect 5 "carries 2 of the 3" "$veil" party decrypt --group G --party 1 --keys P1 --in s12.ct --out out.bad --smudging-bits 16
run "$veil" party sum --group G --in u1.ct u2.ct u3.ct --out sum.ct
"$veil" info sum.ct | grep -q "3 of 3 noise shares (a complete release)" || fail "info of the sum"
sigma=$("$veil" info sum.ct | sed -n 's/.*, sigma \([0-9.e+-]*\) .*/\1/p')
rho=$("$veil" info sum.ct | sed -n 's/.*zCDP rho \([0-9.e+-]*\)$/\1/p')

mkdir -p NB && cp P1/* NB/ && rm NB/privacy.budget
expect 5 "has no privacy budget" "$veil" party decrypt --group G --party 1 --keys NB --in sum.ct --out out.bad --smudging-bits 16
for i in 1 2 3; do
    run "$veil" party decrypt --group G --party $i --keys P$i --in sum.ct --out D$i --smudging-bits 16
done
run "$veil" party combine --group G --decrypt sum.ct --in D1 D2 D3 --out sum.csv
# a second release of epsilon 4 does not fit a budget of 5: refused, nothing written, the budget unchanged
cp P1/privacy.budget before.budget
expect 5 "privacy budget exceeded" "$veil" party decrypt --group G --party 1 --keys P1 --in sum.ct --out out.bad --smudging-bits 16
cmp -s before.budget P1/privacy.budget || fail "a refused release changed the budget"

# the noise of the decrypted sum (the noiseless sum is three times the plaintext output): its standard
# deviation within 15% of the full noise's sigma (444 values: the estimate's own spread is 3.4%), which one
# share's (sigma / sqrt 3) would fail
"$veil" plain "${model[@]}" --in rows.csv --out plain.csv 2>/dev/null || fail "plain"
/usr/bin/python3 - "$sigma" <<'PY' || fail "the noise of the sum"
import csv, math, sys
sigma = float(sys.argv[1])
noisy = [float(r[0]) for r in csv.reader(open("sum.csv"))]
plain = [3 * float(r[0]) for r in csv.reader(open("plain.csv"))]
noise = [a - b for a, b in zip(noisy, plain)]
n = len(noise)
mean = sum(noise) / n
sd = math.sqrt(sum((x - mean) ** 2 for x in noise) / (n - 1))
print(f"noise of the sum: {n} values, sd {sd:.4f}, mean {mean:.4f}, sigma of 3 shares {sigma:.4f}")
assert n == 444, n
assert 0.85 * sigma <= sd <= 1.15 * sigma, (sd, sigma)
assert abs(mean) <= 4 * sigma / math.sqrt(n), mean
PY

# the accountant: the budget charged the rho of the full noise (20^2 / (2 sigma^2); the Kairouz-Liu-Steinke
# excess is below 1e-300 here), and its epsilon agrees with dp-accounting's Renyi accountant for that Gaussian
[ "$accounting" = no-accounting ] && { [ "$fails" = 0 ] || { echo "$fails failures"; exit 1; }; echo "cli dp fed: ok"; exit 0; }
spent=$("$veil" budget --keys P2 | sed -n 's/^spent: *epsilon \([0-9.e+-]*\) (rho \([0-9.e+-]*\)).*/\1 \2/p')
venv=$build/dp-accounting-venv
version=0.6.0
if [ ! -f "$venv/.installed-$version" ]; then
    rm -rf "$venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv" &&
        "$venv/bin/pip" install -q --disable-pip-version-check "dp-accounting==$version" &&
        touch "$venv/.installed-$version"
fi
"$venv/bin/python" - "$sigma" "$rho" $spent <<'PY' || fail "the accountant against dp-accounting"
import sys
import dp_accounting
import numpy as np
sigma, rho, eps, spent_rho = map(float, sys.argv[1:5])
want_rho = 20.0 ** 2 / (2 * sigma ** 2)
assert abs(rho - want_rho) <= 2e-5 * want_rho, (rho, want_rho)  # info prints 6 digits
assert abs(spent_rho - rho) <= 1e-5 * rho, (spent_rho, rho)
acc = dp_accounting.rdp.RdpAccountant(list(1.0 + np.logspace(-2, 5, 10000)))
acc.compose(dp_accounting.GaussianDpEvent(sigma / 20.0), 1)
google = acc.get_epsilon(1e-6)
print(f"one federated release: veil epsilon {eps:.6f} (rho {spent_rho:.6f}), dp-accounting {google:.6f}")
assert abs(eps - google) <= 1e-3 * google, (eps, google)
assert eps <= 4 * (1 + 1e-6), eps
PY

[ "$fails" = 0 ] || { echo "$fails failures"; exit 1; }
echo "cli dp fed: ok"
