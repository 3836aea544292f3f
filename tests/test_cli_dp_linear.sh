#!/usr/bin/env bash
# DP-GD for linear regression (docs/privacy.md): breast-cancer records (examples/training), the label mean_area
# predicted from the other 30 columns, features and label scaled by declared ranges (the public data set's
# minimum and maximum). One iteration of training is w = (lr / n) (sum y z + N), so the noise in the decrypted
# weights, brought back to the scaled coordinates, is N / n: its standard deviation is checked against the
# sigma the model records (8 trainings, 248 values), the sensitivity against 2 (R + 1) sqrt(F + 1), and bad
# input (ranges that do not bound the data, a label range missing or given to logistic regression, bad
# prediction bounds) against its messages.
#   test_cli_dp_linear.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli_lib.sh" # fail, run, expect
cd "$work" || exit 1
/usr/bin/python3 "$src/examples/training/make_data.py" . >/dev/null
/usr/bin/python3 - <<'PY'
from sklearn.datasets import load_breast_cancer
d = load_breast_cancer().data
cols = [j for j in range(30) if j != 3]  # the file's features: every column but mean area, then the label
lo = [float(d[:, j].min()) for j in cols] + [0.0]
hi = [float(d[:, j].max()) for j in cols] + [1.0]
with open("ranges.csv", "w") as f:
    f.write(",".join(map(repr, lo)) + "\n" + ",".join(map(repr, hi)) + "\n")
PY
labels=143.5:2501 # mean area's minimum and maximum over the data set
rows=$(($(wc -l <breast_train.csv) - 1))
run "$veil" keygen --train linear --features 30 --iterations 1 --out keys
run "$veil" keygen --train logistic --features 30 --iterations 1 --out lkeys
enc=("$veil" encrypt --keys keys --in breast_train.csv --labels-column mean_area --feature-range ranges.csv)
expect 3 "include the label's" "${enc[@]}" --out out.bad
expect 3 "label of row .* outside its declared range" "${enc[@]}" --label-range 143.5:1000 --out out.bad
expect 3 "is not LO < HI" "${enc[@]}" --label-range 5:5 --out out.bad
expect 2 "LO:HI" "${enc[@]}" --label-range 5 --out out.bad
expect 2 "goes with --feature-range" "$veil" encrypt --keys keys --in breast_train.csv --labels-column mean_area --label-range "$labels" --out out.bad
expect 3 "a label range is for linear regression" "$veil" encrypt --keys lkeys --in breast_train.csv --labels-column label --feature-range 0:5000 --label-range 0:1 --out out.bad
run "${enc[@]}" --label-range "$labels" --out t.ct
tr=("$veil" train --eval-keys keys/eval --in t.ct --iterations 1 --quiet)
expect 2 "goes with --dp-epsilon" "${tr[@]}" --dp-prediction-bound 3 --out out.bad
expect 2 "wants a number" "${tr[@]}" --dp-epsilon 8 --dp-delta 1e-5 --dp-prediction-bound -1 --out out.bad
expect 3 "prediction bound 1e+07 is outside" "${tr[@]}" --dp-epsilon 8 --dp-delta 1e-5 --dp-prediction-bound 1e7 --out out.bad
expect 3 "epsilon -0\|epsilon 1e+06 outside" "${tr[@]}" --dp-epsilon 1e6 --dp-delta 1e-5 --out out.bad

"$veil" budget --keys keys --epsilon 100 --delta 1e-5 >/dev/null || fail "budget"
run "${tr[@]}" --out m0.ct
"$veil" decrypt --keys keys --in m0.ct --onnx m0.onnx --out w0.csv --no-flood 2>/dev/null || fail "decrypt without noise"
for r in 1 2 3 4 5 6 7 8; do
    run "${tr[@]}" --dp-epsilon 8 --dp-delta 1e-5 --out m$r.ct
    "$veil" decrypt --keys keys --in m$r.ct --onnx m$r.onnx --out w$r.csv --no-flood 2>/dev/null || fail "decrypt $r"
done
info=$("$veil" info m1.ct)
echo "$info" | grep -q "noisy release: epsilon 8 at delta 1e-05, sensitivity 33.4066," || fail "the sensitivity 2 (2 + 1) sqrt(31): $info"
sigma=$(echo "$info" | sed -n 's/.*, sigma \([0-9.e+-]*\) .*/\1/p')
/usr/bin/python3 - "$labels" "$rows" "$sigma" w0.csv w[1-8].csv <<'PY' || fail "the noise of DP-GD"
import csv, math, sys
ranges = [[float(v) for v in r] for r in csv.reader(open("ranges.csv"))]
llo, lhi = map(float, sys.argv[1].split(":"))
rows, sigma = int(sys.argv[2]), float(sys.argv[3])
mean = [(a + b) / 2 for a, b in zip(*ranges)]
dev = [(b - a) / 2 for a, b in zip(*ranges)]
ym, yd = (llo + lhi) / 2, (lhi - llo) / 2
def scaled(path):  # the weights on the scaled features and label (the inverse of the unscaling)
    w = [float(v) for v in next(csv.reader(open(path)))]
    ws = [w[1 + j] * dev[j] / yd for j in range(len(dev))]
    return [(w[0] - ym) / yd + sum(ws[j] * mean[j] / dev[j] for j in range(len(dev)))] + ws
base = scaled(sys.argv[4])
noise = [(a - b) * rows for p in sys.argv[5:] for a, b in zip(scaled(p), base)]  # one step: lr / n, lr = 1
n = len(noise)
m = sum(noise) / n
sd = math.sqrt(sum((x - m) ** 2 for x in noise) / (n - 1))
print(f"DP-GD noise: {n} values, sd {sd:.3f}, mean {m:.3f}, sigma {sigma}")
assert n == 248, n
assert 0.85 * sigma <= sd <= 1.15 * sigma, (sd, sigma)
assert abs(m) <= 4 * sigma / math.sqrt(n), m
PY
# a larger prediction bound: a larger sensitivity, 2 (4 + 1) sqrt(31)
run "${tr[@]}" --dp-epsilon 8 --dp-delta 1e-5 --dp-prediction-bound 4 --out m9.ct
"$veil" info m9.ct | grep -q "sensitivity 55.6776," || fail "the sensitivity with R = 4: $("$veil" info m9.ct)"

[ "$fails" = 0 ] || { echo "$fails failures"; exit 1; }
echo "cli dp linear: ok"
