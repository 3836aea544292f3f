#!/bin/bash
# Encrypted training end to end: the data owner makes keys and encrypts its records (features and labels),
# the server trains logistic regression on the ciphertexts with the evaluation keys only, and the owner
# decrypts a standard ONNX model; then accuracy and AUC beside the same algorithm in plaintext and beside
# scikit-learn. Data: examples/training/make_data.py (scikit-learn's breast cancer; a 1,579 x 18 set of the
# iDASH 2017 shape from scikit-learn's digits).
#
# usage: run.sh VEIL_BINARY [WORKDIR] [ITERATIONS]
set -euo pipefail
veil=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=${2:-$(mktemp -d)}
iterations=${3:-7}
mkdir -p "$work"
cd "$work"
/usr/bin/python3 "$here/make_data.py" .
for set in breast idash; do
    if [ $set = breast ]; then train=breast_train.csv test=breast_test.csv; else train=idash.csv test=idash_test.csv; fi
    features=$(($(head -1 $train | tr ',' '\n' | wc -l) - 1))
    echo "== $set: $(($(wc -l < $train) - 1)) records x $features features, $iterations iterations (NAG, sigmoid of degree 3)"
    rm -rf keys-$set
    t0=$(date +%s.%N)
    "$veil" keygen --train logistic --features $features --iterations $iterations --out keys-$set --quiet
    t1=$(date +%s.%N)
    "$veil" encrypt --keys keys-$set --in $train --labels-column label --out $set.ct --quiet
    t2=$(date +%s.%N)
    "$veil" train --eval-keys keys-$set/eval --in $set.ct --iterations $iterations --out $set-model.ct --quiet  # the server
    t3=$(date +%s.%N)
    "$veil" decrypt --keys keys-$set --in $set-model.ct --onnx $set-encrypted.onnx --no-flood  # kept by its owner
    "$veil" train --plain --train logistic --in $train --labels-column label --iterations $iterations --onnx $set-plain.onnx
    printf '  keygen %.1f s, encrypt %.1f s, training on the server %.1f s; %s MB sent to the server\n' \
        "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$(echo "$t3 - $t2" | bc)" \
        "$(( ($(stat -c %s keys-$set/eval/eval.keys) + $(stat -c %s $set.ct)) / 1000000 ))"
    /usr/bin/python3 "$here/evaluate.py" $train $test $set-encrypted.onnx $set-plain.onnx
done
