#!/usr/bin/env bash
# A data marketplace with three parties, none of whom sees another's secret (docs/marketplace.md):
#   the vendor     owns a risk model (logistic regression on scikit-learn's breast-cancer data: the
#                  probability that a tumour is benign), and sells predictions without showing its weights;
#   the seller     owns patients' records, and buys predictions without showing the records;
#   the cloud      evaluates the encrypted model on the encrypted records, and learns neither.
# The vendor publishes a plan (parameters and the inputs' range: no weight); the seller makes keys from it;
# the vendor encrypts its weights under the seller's public key (veil encrypt-model); the cloud evaluates;
# the seller decrypts. Prints what each party received (bytes, never values), the predictions' accuracy
# against the model in the clear, and the cost against evaluating the model in the clear.
#
#   usage: examples/marketplace/run.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
work=${2:-$(mktemp -d)}
veil="$build/veil"
vendor="$work/vendor" seller="$work/seller" cloud="$work/cloud"
rm -rf "$vendor" "$seller" "$cloud"
mkdir -p "$vendor" "$seller" "$cloud"
size() { stat -c %s "$1"; }
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

echo "== Veil: a data marketplace (encrypted model, encrypted records) =="
# the vendor's model, trained on its own data; the seller's records and their true labels (the seller's)
/usr/bin/python3 "$here/../hospital/train.py" "$work/data" >/dev/null
cp "$work/data/model.onnx" "$work/data/train.csv" "$vendor/"
cp "$work/data/test.csv" "$work/data/labels.csv" "$seller/"
rows=$(($(wc -l <"$seller/test.csv") - 1))

# 1. vendor: the public plan (parameters, the inputs' range from its training data, the output bound)
"$veil" plan --model "$vendor/model.onnx" --calibrate "$vendor/train.csv" --out "$vendor/model.plan" >/dev/null
cp "$vendor/model.plan" "$seller/"
# 2. seller: keys for the plan, without the model; the eval folder goes to the vendor and the cloud
"$veil" keygen --plan "$seller/model.plan" --out "$seller/keys" --quiet
cp -r "$seller/keys/eval" "$vendor/seller-eval"
cp -r "$seller/keys/eval" "$cloud/eval"
# 3. vendor: the weights encrypted under the seller's public key, sent to the cloud
"$veil" encrypt-model --model "$vendor/model.onnx" --calibrate "$vendor/train.csv" --keys "$vendor/seller-eval" \
    --out "$vendor/model.ctm" --quiet
cp "$vendor/model.ctm" "$cloud/"
# 4. seller: the records encrypted, sent to the cloud
"$veil" encrypt --keys "$seller/keys" --in "$seller/test.csv" --out "$seller/records.ct" --quiet
cp "$seller/records.ct" "$cloud/"
# 5. cloud: the encrypted model on the encrypted records; the result goes to the seller
t0=$(now)
"$veil" eval --model "$cloud/model.ctm" --eval-keys "$cloud/eval" --in "$cloud/records.ct" --out "$cloud/scores.ct" --quiet
t1=$(now)
cp "$cloud/scores.ct" "$seller/"
# 6. seller: decrypts
"$veil" decrypt --keys "$seller/keys" --in "$seller/scores.ct" --out "$seller/scores.csv"
"$veil" decrypt --keys "$seller/keys" --in "$seller/scores.ct" --out "$seller/classes.csv" --argmax

for f in "$cloud"/eval/* "$cloud"/*.ct* "$vendor"/seller-eval/*; do
    if "$veil" info "$f" | grep -q SECRET; then
        echo "a secret key left the seller: $f" >&2
        exit 1
    fi
done

echo "what each party received (bytes; no party saw another's values):"
printf "  %-8s %-52s %12s\n" vendor "the seller's evaluation keys (public key inside)" "$(size "$vendor/seller-eval/eval.keys")"
printf "  %-8s %-52s %12s\n" seller "the vendor's plan (parameters, ranges; no weight)" "$(size "$seller/model.plan")"
printf "  %-8s %-52s %12s\n" seller "$rows encrypted scores" "$(size "$seller/scores.ct")"
printf "  %-8s %-52s %12s\n" cloud "the encrypted model (structure public, weights not)" "$(size "$cloud/model.ctm")"
printf "  %-8s %-52s %12s\n" cloud "the seller's evaluation keys" "$(size "$cloud/eval/eval.keys")"
printf "  %-8s %-52s %12s\n" cloud "$rows encrypted records" "$(size "$cloud/records.ct")"
echo "  (the vendor's model in the clear: $(size "$vendor/model.onnx") bytes; it never left the vendor)"

# the cost: the same records evaluated with the model in the clear (what the cloud would run if it held it)
t2=$(now)
"$veil" eval --model "$vendor/model.onnx" --calibrate "$vendor/train.csv" --eval-keys "$cloud/eval" \
    --in "$cloud/records.ct" --out "$work/clear.ct" --quiet
t3=$(now)
"$veil" decrypt --keys "$seller/keys" --in "$work/clear.ct" --out "$work/clear.csv"
"$veil" plain --model "$vendor/model.onnx" --calibrate "$vendor/train.csv" --in "$seller/test.csv" \
    --out "$work/plain_classes.csv" --argmax
enc_s=$(took "$t0" "$t1") clear_s=$(took "$t2" "$t3")
echo "the cloud's time (veil eval, whole command): encrypted model ${enc_s} s, model in the clear ${clear_s} s"
/usr/bin/python3 - "$seller/scores.csv" "$work/clear.csv" "$seller/classes.csv" "$work/plain_classes.csv" \
    "$seller/labels.csv" <<'PY'
import sys
read = lambda p: [float(l.split(",")[0]) for l in open(p) if l.strip()]
enc, clear, cls, plain_cls, labels = (read(p) for p in sys.argv[1:])
n = len(labels)
diff = max(abs(a - b) for a, b in zip(enc, clear))
agree = sum(a == b for a, b in zip(cls, plain_cls))
acc = sum(a == b for a, b in zip(cls, labels)) / n
acc_plain = sum(a == b for a, b in zip(plain_cls, labels)) / n
print(f"accuracy (seller's labels): encrypted model {acc:.4f}, plaintext model {acc_plain:.4f}; "
      f"{agree}/{n} classes identical; largest score difference from the model in the clear {diff:.2e}")
assert agree == n and diff <= 1e-3, "the encrypted model disagrees with the plaintext model"
PY
echo "marketplace: ok"
