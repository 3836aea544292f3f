#!/usr/bin/env bash
# Encrypted training through the CLI, the server side given only KEYDIR/eval and the ciphertexts:
#   test_cli_train.sh BUILD_DIR SOURCE_DIR
# logistic and linear regression for 2 iterations on the breast-cancer data of examples/training: the weights
# decrypted from `veil train` must match `veil train --plain` within 1e-3 (relative to each weight's size
# above 1), the ONNX model written must load in `veil plain` and give the same classes as the plaintext
# algorithm's; then bad input must fail with the documented exit code and write nothing.
set -euo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
/usr/bin/python3 "$src/examples/training/make_data.py" .

compare_weights() { # a.csv b.csv name
    paste -d'|' "$1" "$2" | awk -F'|' -v name="$3" '
        { k = split($1, a, ","); split($2, b, ",")
          for (i = 1; i <= k; i++) { d = a[i] - b[i]; if (d < 0) d = -d; m = b[i] < 0 ? -b[i] : b[i]
                                     if (m > 1) d /= m; if (d > worst) worst = d } }
        END { printf "%s: %d weights, largest difference %.3g\n", name, k, worst; if (k < 2 || worst > 1e-3) exit 1 }'
}

for task in logistic linear; do
    label=label
    [ $task = linear ] && label=mean_area
    rm -rf keys server
    "$veil" keygen --train $task --features 30 --iterations 2 --out keys --quiet
    "$veil" encrypt --keys keys --in breast_train.csv --labels-column $label --out train.ct --quiet
    mkdir server && cp -r keys/eval server/eval && cp train.ct server/
    "$veil" train --eval-keys server/eval --in server/train.ct --iterations 2 --out server/model.ct --quiet
    "$veil" decrypt --keys keys --in server/model.ct --onnx enc.onnx --out enc.csv --no-flood
    "$veil" train --plain --train $task --in breast_train.csv --labels-column $label --iterations 2 \
        --onnx plain.onnx --out plain.csv
    compare_weights enc.csv plain.csv "$task"
    "$veil" info server/model.ct | grep -q "encrypted trained model" || { echo "FAIL: veil info on a trained model"; exit 1; }
    "$veil" info server/train.ct | grep -q "encrypted training data" || { echo "FAIL: veil info on training data"; exit 1; }
    # the ONNX model loads and predicts: the test rows without their label column
    col=$(head -1 breast_test.csv | tr ',' '\n' | grep -n "^$label\$" | cut -d: -f1)
    cut -d, -f"$col" --complement breast_test.csv > test_x.csv
    "$veil" plain --model enc.onnx --in test_x.csv --out enc_pred.csv
    "$veil" plain --model plain.onnx --in test_x.csv --out plain_pred.csv
    paste -d, enc_pred.csv plain_pred.csv | awk -F, -v task=$task '
        { n++; if (task == "logistic" && (($1 > 0.5) != ($2 > 0.5))) diff++
          d = $1 - $2; if (d < 0) d = -d; m = $2 < 0 ? -$2 : $2; if (m > 1) d /= m; if (d > worst) worst = d }
        END { printf "%s model: %d test rows predicted, largest difference %.3g, %d classes differ\n", task, n, worst, diff
              if (n != 114 || diff > 0 || worst > 1e-3) exit 1 }'
done

expect() { # code description command...
    local code=$1 what=$2
    shift 2
    set +e
    "$@" 2>err.txt
    local rc=$?
    set -e
    if [ $rc -ne "$code" ]; then
        echo "FAIL: $what: exit $rc (expected $code): $(cat err.txt)"
        exit 1
    fi
    echo "ok: $what -> $code: $(head -1 err.txt)"
}

rm -rf keys other out.ct
"$veil" keygen --train logistic --features 30 --iterations 2 --out keys --quiet
"$veil" keygen --train logistic --features 30 --iterations 2 --out other --quiet
max=$("$veil" plan --train logistic --features 30 --iterations 2 | awk '/^iterations:/ { print $4 }')
sed '2s/,[01]$/,2/' breast_train.csv > bad_label.csv
sed '3s/,[01]$/,yes/' breast_train.csv > word_label.csv
sed '4s/,[01]$/,/' breast_train.csv > missing_label.csv
awk -F, -v OFS=, 'NR > 1 { $3 = 7.5 } { print }' breast_train.csv > constant.csv
expect 3 "a label outside {0,1}" "$veil" encrypt --keys keys --in bad_label.csv --labels-column label --out out.ct
expect 3 "a non-numeric label" "$veil" encrypt --keys keys --in word_label.csv --labels-column label --out out.ct
expect 3 "a missing label" "$veil" encrypt --keys keys --in missing_label.csv --labels-column label --out out.ct
expect 3 "a feature with no variance" "$veil" encrypt --keys keys --in constant.csv --labels-column label --out out.ct
expect 3 "an unknown label column" "$veil" encrypt --keys keys --in breast_train.csv --labels-column nope --out out.ct
expect 2 "training keys without --labels-column" "$veil" encrypt --keys keys --in breast_train.csv --out out.ct
[ ! -e out.ct ] || { echo "FAIL: a refused encryption wrote out.ct"; exit 1; }
"$veil" encrypt --keys keys --in breast_train.csv --labels-column label --out train.ct --quiet
# the plan's sizes are the files': the bundle, and a data set of up to one ciphertext of records
"$veil" plan --train logistic --features 30 --iterations 2 > plan.txt
exact() { sed -n "s/^$1 .*(\([0-9]*\) bytes, exact).*/\1/p" plan.txt; }
batch=$(sed -n 's/^data: .* for up to \([0-9]*\) records.*/\1/p' plan.txt)
head -n $((batch + 1)) breast_train.csv > one_batch.csv
"$veil" encrypt --keys keys --in one_batch.csv --labels-column label --out one_batch.ct --quiet
[ "$(exact 'eval keys:')" = "$(stat -c %s keys/eval/eval.keys)" ] || { echo "FAIL: eval keys: $(cat plan.txt)"; exit 1; }
[ "$(exact data:)" = "$(stat -c %s one_batch.ct)" ] || { echo "FAIL: data: $(cat plan.txt)"; exit 1; }
# past the leveled limit the plan bootstraps (N = 2^16): where and how many, for the iDASH shape
"$veil" plan --train logistic --features 18 --iterations 30 > boot_plan.txt
grep -q "^bootstrapping:  the weights (32 slots) return to level 11, which holds 2 iterations: 14 refreshes in 30 \
iterations, before iterations 4, 6, ..., 30" boot_plan.txt || { echo "FAIL: bootstrapped plan: $(cat boot_plan.txt)"; exit 1; }
grep -q "^iterations:     any number" boot_plan.txt || { echo "FAIL: bootstrapped plan: $(cat boot_plan.txt)"; exit 1; }
echo "ok: $(grep -A2 '^bootstrapping:' boot_plan.txt | head -1)"
# without a header, the labels are named by their column number (never matched against the data)
tail -n +2 breast_train.csv > noheader.csv
"$veil" encrypt --keys keys --in noheader.csv --labels-column 31 --out nh.ct --quiet
expect 3 "no column named 'label'" "$veil" encrypt --keys keys --in noheader.csv --labels-column label --out out.ct
expect 3 "more iterations than the keys allow ($max)" "$veil" train --eval-keys keys/eval --in train.ct \
    --iterations $((max + 1)) --out model.ct
expect 4 "data encrypted under other keys" "$veil" train --eval-keys other/eval --in train.ct --iterations 1 --out model.ct
expect 2 "a negative learning rate" "$veil" train --eval-keys keys/eval --in train.ct --learning-rate -1 --out model.ct
expect 3 "a secret key given to the server" "$veil" train --eval-keys keys --in train.ct --out model.ct
[ ! -e model.ct ] || { echo "FAIL: a refused training wrote model.ct"; exit 1; }
"$veil" train --eval-keys keys/eval --in train.ct --iterations 1 --out model.ct --quiet
expect 4 "a model decrypted with other keys" "$veil" decrypt --keys other --in model.ct --onnx x.onnx
[ ! -e x.onnx ] || { echo "FAIL: a refused decryption wrote x.onnx"; exit 1; }
# two outputs are written both or neither: an ONNX file that cannot be written leaves no weights either
expect 1 "an unwritable --onnx beside --out" "$veil" decrypt --keys keys --in model.ct --out w.csv --onnx nodir/x.onnx \
    --no-flood
expect 1 "an unwritable --onnx beside --out (plain)" "$veil" train --plain --train logistic --in breast_train.csv \
    --labels-column label --iterations 1 --out w.csv --onnx nodir/x.onnx
if ls w.csv* >/dev/null 2>&1; then echo "FAIL: a failed write left $(ls w.csv*)"; exit 1; fi

# DP-GD (docs/privacy.md): declared feature ranges bound each record; noise on the gradient; the budget
/usr/bin/python3 -c "
import numpy as np
x = np.loadtxt('breast_train.csv', delimiter=',', skiprows=1)[:, :-1]
np.savetxt('ranges.csv', np.vstack([x.min(0) - 1, x.max(0) + 1]), delimiter=',')
np.savetxt('narrow.csv', np.vstack([x.min(0), x.max(0) / 2]), delimiter=',')"
expect 3 "a feature outside its declared range" "$veil" encrypt --keys keys --in breast_train.csv --labels-column label \
    --feature-range narrow.csv --out out.ct
expect 3 "a range that does not bound the data (LO:HI)" "$veil" encrypt --keys keys --in breast_train.csv \
    --labels-column label --feature-range 0:100 --out out.ct
expect 3 "an empty declared range" "$veil" encrypt --keys keys --in breast_train.csv --labels-column label \
    --feature-range 5:5 --out out.ct
[ ! -e out.ct ] || { echo "FAIL: a refused encryption wrote out.ct"; exit 1; }
"$veil" encrypt --keys keys --in breast_train.csv --labels-column label --feature-range ranges.csv --out dp.ct --quiet
expect 2 "--dp-epsilon without --dp-delta" "$veil" train --eval-keys keys/eval --in dp.ct --dp-epsilon 1 --out m.ct
expect 2 "a negative epsilon" "$veil" train --eval-keys keys/eval --in dp.ct --dp-epsilon -1 --dp-delta 1e-5 --out m.ct
expect 3 "an absurd epsilon" "$veil" train --eval-keys keys/eval --in dp.ct --dp-epsilon 1e6 --dp-delta 1e-5 --out m.ct
expect 3 "an absurd delta" "$veil" train --eval-keys keys/eval --in dp.ct --dp-epsilon 1 --dp-delta 0.9 --out m.ct
[ ! -e m.ct ] || { echo "FAIL: a refused training wrote m.ct"; exit 1; }
"$veil" train --eval-keys keys/eval --in dp.ct --iterations 1 --dp-epsilon 4 --dp-delta 1e-5 --out dpmodel.ct --quiet
"$veil" info dpmodel.ct | grep -q "noisy release: epsilon 4 at delta 1e-05" || { echo "FAIL: info of a DP model"; exit 1; }
expect 5 "a DP model without a budget" "$veil" decrypt --keys keys --in dpmodel.ct --onnx dp.onnx --no-flood
"$veil" budget --keys keys --epsilon 5 --delta 1e-5 >/dev/null # two releases of 4 compose to 5.96
"$veil" decrypt --keys keys --in dpmodel.ct --onnx dp.onnx --no-flood || { echo "FAIL: decrypt of a DP model"; exit 1; }
expect 5 "a second DP model over budget" "$veil" decrypt --keys keys --in dpmodel.ct --onnx dp2.onnx --no-flood
[ ! -e dp2.onnx ] || { echo "FAIL: a model over budget was written"; exit 1; }
# the data's own scaling would reveal its statistics through the weights: a DP model of it is refused
"$veil" budget --keys keys --epsilon 100 --delta 1e-5 >/dev/null
"$veil" train --eval-keys keys/eval --in train.ct --iterations 1 --dp-epsilon 4 --dp-delta 1e-5 --out dpbad.ct --quiet
expect 3 "scaled by its own statistics" "$veil" decrypt --keys keys --in dpbad.ct --onnx bad.onnx --no-flood
echo "cli train: ok"
