#!/bin/bash
# The accuracy cost of differentially private encrypted training (DP-GD, docs/privacy.md) on scikit-learn's
# breast-cancer data: logistic regression trained by the server on ciphertexts, with discrete Gaussian noise on
# the encrypted gradient at every iteration, for epsilon = 1, 4 and 8 (delta 1e-5), each RUNS times (the noise
# is random), beside the same training without noise. The feature ranges are declared, not measured on the
# training data: each feature's minimum and maximum over the whole public data set (the table of scikit-learn's
# description of it), so that the data's own statistics do not enter the model.
#
# usage: dp_training.sh VEIL_BINARY [WORKDIR] [RUNS] [ITERATIONS]
set -euo pipefail
veil=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=${2:-$(mktemp -d)}
runs=${3:-3}
iterations=${4:-7}
mkdir -p "$work"
cd "$work"
/usr/bin/python3 "$here/../training/make_data.py" . >/dev/null
/usr/bin/python3 - <<'PY'
from sklearn.datasets import load_breast_cancer
d = load_breast_cancer().data
with open("ranges.csv", "w") as f:
    f.write(",".join(repr(float(v)) for v in d.min(0)) + "\n")
    f.write(",".join(repr(float(v)) for v in d.max(0)) + "\n")
PY
rm -rf keys
"$veil" keygen --train logistic --features 30 --iterations "$iterations" --out keys --quiet
# one key set for the whole experiment: its budget must hold every release below
"$veil" budget --keys keys --epsilon 100 --delta 1e-5 >/dev/null
"$veil" encrypt --keys keys --in breast_train.csv --labels-column label --feature-range ranges.csv --out train.ct --quiet
accuracy() { # accuracy MODEL.onnx: test accuracy and AUC
    /usr/bin/python3 - "$here/../training" "$1" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from sklearn.metrics import roc_auc_score
from evaluate import load_csv, onnx_probabilities
x, y = load_csv("breast_test.csv")
p = onnx_probabilities(sys.argv[2], x)
print("%.4f %.4f" % (((p > 0.5) == y).mean(), roc_auc_score(y, p)))
PY
}
echo "breast cancer (455 train, 114 test, 30 features), $iterations iterations, declared feature ranges"
printf '%-12s %-22s %-22s\n' epsilon "accuracy (runs, mean)" "AUC (runs, mean)"
for eps in none 1 4 8; do
    accs=() aucs=()
    n=$runs
    [ $eps = none ] && n=1
    for r in $(seq "$n"); do
        dp=()
        [ $eps != none ] && dp=(--dp-epsilon "$eps" --dp-delta 1e-5)
        "$veil" train --eval-keys keys/eval --in train.ct --iterations "$iterations" --out model.ct --quiet "${dp[@]}"
        "$veil" decrypt --keys keys --in model.ct --onnx model.onnx --no-flood
        read -r acc auc < <(accuracy model.onnx)
        accs+=("$acc")
        aucs+=("$auc")
    done
    mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.4f", s / NR }'; }
    printf '%-12s %-22s %-22s\n' "$eps" "${accs[*]} ($(mean "${accs[@]}"))" "${aucs[*]} ($(mean "${aucs[@]}"))"
done
"$veil" budget --keys keys | sed 's/^/  /'
