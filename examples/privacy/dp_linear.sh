#!/bin/bash
# The accuracy cost of differentially private encrypted linear regression (DP-GD, docs/privacy.md) on
# scikit-learn's diabetes data (442 patients, 10 features, the disease progression a year later; split 80/20
# with a fixed seed): the server trains on ciphertexts with discrete Gaussian noise on the encrypted gradient at
# every iteration, for epsilon = 1, 4 and 8 (delta 1e-5), each RUNS times (the noise is random), beside the
# same training without noise and plaintext training (float64, the data's own scaling). The ranges are
# declared, not measured on the training rows: each feature's minimum and maximum over the whole public data
# set, and the label's [25, 346] (its published range). The sensitivity assumes |z.v| <= 2 (the default
# --dp-prediction-bound); the script prints the largest |z.v| plaintext training met, to show the premise held.
#
# usage: dp_linear.sh VEIL_BINARY [WORKDIR] [RUNS] [ITERATIONS]
set -euo pipefail
veil=$(realpath "$1")
work=${2:-$(mktemp -d)}
runs=${3:-3}
iterations=${4:-7}
mkdir -p "$work"
cd "$work"
/usr/bin/python3 - <<'PY'
import numpy as np
from sklearn.datasets import load_diabetes
d = load_diabetes()
x, y = d.data, d.target
order = np.random.RandomState(0).permutation(len(y))
cut = int(0.8 * len(y))
for path, idx in (("diabetes_train.csv", order[:cut]), ("diabetes_test.csv", order[cut:])):
    with open(path, "w") as f:
        f.write(",".join(list(d.feature_names) + ["target"]) + "\n")
        for i in idx:
            f.write(",".join(repr(float(v)) for v in x[i]) + ",%g\n" % y[i])
with open("ranges.csv", "w") as f:
    f.write(",".join(repr(float(v)) for v in x.min(0)) + "\n")
    f.write(",".join(repr(float(v)) for v in x.max(0)) + "\n")
PY
score() { # score WEIGHTS.csv: test R^2 and RMSE of bias + x . w, and the largest |z.v| over the training rows
    /usr/bin/python3 - "$1" <<'PY'
import csv, math, sys
w = [float(v) for v in next(csv.reader(open(sys.argv[1])))]
predict = lambda r: w[0] + sum(wj * float(v) for wj, v in zip(w[1:], r[:-1]))
rows = list(csv.reader(open("diabetes_test.csv")))[1:]
y = [float(r[-1]) for r in rows]
p = [predict(r) for r in rows]
m = sum(y) / len(y)
ss = sum((a - b) ** 2 for a, b in zip(y, p))
# the final model's scaled prediction z.v on the declared label scaling (centre 185.5, half-width 160.5): DP-GD's
# premise |z.v| <= 2, checked here at the end of training only
zv = max(abs((predict(r) - 185.5) / 160.5) for r in list(csv.reader(open("diabetes_train.csv")))[1:])
print("%.4f %.2f %.2f" % (1 - ss / sum((a - m) ** 2 for a in y), math.sqrt(ss / len(y)), zv))
PY
}
rm -rf keys
"$veil" keygen --train linear --features 10 --iterations "$iterations" --out keys --quiet
"$veil" budget --keys keys --epsilon 100 --delta 1e-5 >/dev/null # one key set for every release below
"$veil" encrypt --keys keys --in diabetes_train.csv --labels-column target --feature-range ranges.csv \
    --label-range 25:346 --out train.ct --quiet
"$veil" train --plain --train linear --in diabetes_train.csv --labels-column target --iterations "$iterations" \
    --onnx plain.onnx --out plain.csv 2>plain.log >/dev/null
echo "diabetes (353 train, 89 test, 10 features), $iterations iterations, declared feature and label ranges"
echo "plaintext training (the data's own scaling): R^2, RMSE, |z.v| $(score plain.csv); $(grep -o 'largest .*met: [0-9.]*' plain.log)"
printf '%-10s %-30s %-30s %s\n' epsilon "test R^2 (runs; mean)" "test RMSE (runs; mean)" "largest |z.v| (runs)"
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.4f", s / NR }'; }
for eps in none 1 4 8; do
    r2s=() rmses=() zvs=()
    n=$runs
    [ $eps = none ] && n=1
    for r in $(seq "$n"); do
        dp=()
        [ $eps != none ] && dp=(--dp-epsilon "$eps" --dp-delta 1e-5)
        "$veil" train --eval-keys keys/eval --in train.ct --iterations "$iterations" --out model.ct --quiet "${dp[@]}"
        "$veil" decrypt --keys keys --in model.ct --onnx model.onnx --out w.csv --no-flood 2>/dev/null
        read -r r2 rmse zv < <(score w.csv)
        r2s+=("$r2")
        zvs+=("$zv")
        rmses+=("$rmse")
    done
    printf '%-10s %-30s %-30s %s\n' "$eps" "${r2s[*]}; $(mean "${r2s[@]}")" "${rmses[*]}; $(mean "${rmses[@]}")" "${zvs[*]}"
done
"$veil" budget --keys keys | sed 's/^/  /'
