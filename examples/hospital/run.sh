#!/usr/bin/env bash
# The mission end to end: a hospital encrypts its patients' records, a cloud evaluates a breast-cancer
# model on them holding only evaluation keys, the hospital decrypts the predictions.
#
#   usage: examples/hospital/run.sh [BUILD_DIR] [WORK_DIR]
#
# The hospital's folder holds the model, the patients and the key set; the cloud's folder receives only
# the model, eval/ and the ciphertexts, and never sees a secret key.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
work=${2:-$(mktemp -d)}
veil="$build/veil"
hospital="$work/hospital"
cloud="$work/cloud"
rm -rf "$hospital" "$cloud"
mkdir -p "$hospital" "$cloud"

now() { date +%s.%N; }
step() { # step NAME COMMAND...: runs and times a step
    local name=$1
    shift
    local t0 t1
    t0=$(now)
    "$@"
    t1=$(now)
    awk -v a="$t0" -v b="$t1" -v n="$name" 'BEGIN { printf "  %-44s %8.3f s\n", n, b - a }'
}
size() { stat -c %s "$1"; }

echo "== Veil: encrypted breast-cancer screening =="
echo "timings:"
step "hospital: train the model (scikit-learn)" bash -c '/usr/bin/python3 "$0" "$1" >"$1/train.log"' "$here/train.py" "$hospital"
# --calibrate: the inputs' range (each feature's over the training records, widened by 10%), from which the
# plan bounds every value the encrypted model computes; encryption refuses records outside it
step "hospital: generate keys" "$veil" keygen --model "$hospital/model.onnx" --calibrate "$hospital/train.csv" \
    --out "$hospital/keys" --quiet
step "hospital: encrypt $(($(wc -l <"$hospital/test.csv") - 1)) patients" \
    "$veil" encrypt --keys "$hospital/keys" --in "$hospital/test.csv" --out "$hospital/patients.ct"

# What crosses the wire to the cloud: the model, the evaluation keys, the ciphertexts. Nothing else.
cp "$hospital/model.onnx" "$cloud/"
cp -r "$hospital/keys/eval" "$cloud/eval"
cp "$hospital/patients.ct" "$cloud/"
for f in "$cloud"/eval/* "$cloud"/*.ct; do
    if "$veil" info "$f" | grep -q SECRET; then
        echo "a secret key reached the cloud: $f" >&2
        exit 1
    fi
done
step "cloud: evaluate the model on ciphertexts" \
    "$veil" eval --model "$cloud/model.onnx" --eval-keys "$cloud/eval" --in "$cloud/patients.ct" --out "$cloud/predictions.ct" --quiet
cp "$cloud/predictions.ct" "$hospital/"
step "hospital: decrypt the predictions" \
    "$veil" decrypt --keys "$hospital/keys" --in "$hospital/predictions.ct" --out "$hospital/encrypted.csv"
step "hospital: the same model in plaintext" \
    "$veil" plain --model "$hospital/model.onnx" --in "$hospital/test.csv" --out "$hospital/plain.csv"

echo "sent to the cloud:"
printf '  %-44s %10d bytes\n' "model.onnx" "$(size "$cloud/model.onnx")"
printf '  %-44s %10d bytes\n' "eval/eval.keys" "$(size "$cloud/eval/eval.keys")"
printf '  %-44s %10d bytes\n' "patients.ct" "$(size "$cloud/patients.ct")"
echo "sent back:"
printf '  %-44s %10d bytes\n' "predictions.ct" "$(size "$cloud/predictions.ct")"

paste -d, "$hospital/encrypted.csv" "$hospital/plain.csv" "$hospital/labels.csv" | awk -F, '
    { n++; e = ($1 >= 0.5); p = ($2 >= 0.5); ce += (e == $3); cp += (p == $3); same += (e == p)
      d = $1 - $2; if (d < 0) d = -d; if (d > maxd) maxd = d }
    END {
      printf "results on %d patients:\n", n
      printf "  %-44s %8.4f\n", "accuracy, encrypted predictions", ce / n
      printf "  %-44s %8.4f\n", "accuracy, plaintext predictions", cp / n
      printf "  %-44s %8d of %d\n", "identical decisions", same, n
      printf "  %-44s %8.3g\n", "largest |encrypted - plaintext| probability", maxd
      if (same != n || maxd > 1e-3) exit 1
    }'

# The same over the network: the cloud runs `veil serve` on a loopback port; the hospital's `veil predict`
# uploads the evaluation keys, sends the encrypted patients, decrypts the answers.
echo "over HTTP (veil serve on loopback):"
mkdir -p "$cloud/models"
cp "$cloud/model.onnx" "$cloud/models/breast_cancer.onnx"
# the hospital is a tenant of the cloud: the cloud's operator makes it a token (printed once, kept hashed in the
# store); the hospital's veil predict reads it from VEIL_TOKEN, never from the command line
VEIL_TOKEN=$("$veil" token add --store "$cloud/store" --tenant hospital 2>/dev/null | tail -1)
export VEIL_TOKEN
echo "  cloud: veil token add --tenant hospital: the token goes to the hospital, only its hash stays in the store"
"$veil" serve --models "$cloud/models" --store "$cloud/store" --listen 127.0.0.1:0 --quiet \
    >"$cloud/port.txt" 2>"$cloud/serve.log" &
server=$!
trap 'kill "$server" 2>/dev/null' EXIT
for _ in $(seq 100); do grep -q "listening on port" "$cloud/port.txt" 2>/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$(awk '{print $4}' "$cloud/port.txt")"
step "hospital: veil predict against $url" \
    "$veil" predict --server "$url" --model breast_cancer --keys "$hospital/keys" --in "$hospital/test.csv" \
    --out "$hospital/network.csv" 2>"$hospital/predict.log"
sed -n 's/^veil: /  /p' "$hospital/predict.log"
kill -TERM "$server"
wait "$server"
trap - EXIT
paste -d, "$hospital/network.csv" "$hospital/plain.csv" "$hospital/labels.csv" | awk -F, '
    { n++; e = ($1 >= 0.5); p = ($2 >= 0.5); ce += (e == $3); cp += (p == $3); same += (e == p)
      d = $1 - $2; if (d < 0) d = -d; if (d > maxd) maxd = d }
    END {
      printf "  %-44s %8.4f (plaintext %.4f)\n", "accuracy, predictions over HTTP", ce / n, cp / n
      printf "  %-44s %8d of %d\n", "identical decisions", same, n
      printf "  %-44s %8.3g\n", "largest |HTTP - plaintext| probability", maxd
      if (same != n || maxd > 1e-3) exit 1
    }'
echo "work folder: $work"
