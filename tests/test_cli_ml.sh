#!/usr/bin/env bash
# Bad input through the veil CLI: each a clear message, the documented exit code, no output file left.
#   test_cli_ml.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
expect() { # expect CODE PATTERN COMMAND...: exit code and a message on standard error
    local code=$1 pattern=$2
    shift 2
    "$@" 2>"$work/err" >/dev/null
    local rc=$?
    if [ "$rc" != "$code" ] || ! grep -q -- "$pattern" "$work/err"; then
        echo "FAIL: '$*' gave $rc (wanted $code), stderr: $(cat "$work/err") (wanted /$pattern/)"
        fails=$((fails + 1))
    fi
    # one prefix per message: never "veil: plan: plan: ..." nor "veil: F: read F: ..."
    if grep -qE '^veil: ([^:]+): ((read|write) )?\1:' "$work/err"; then
        echo "FAIL: '$*': a doubled prefix: $(cat "$work/err")"
        fails=$((fails + 1))
    fi
}
/usr/bin/python3 "$src/examples/diabetes/train.py" "$work/d" >/dev/null
/usr/bin/python3 "$src/examples/hospital/train.py" "$work/h" >/dev/null
d="$work/d"
"$veil" keygen --model "$d/model.onnx" --out "$work/k1" --quiet
"$veil" keygen --model "$d/model.onnx" --out "$work/k3" --quiet
"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/k2" --quiet
"$veil" encrypt --keys "$work/k1" --in "$d/test.csv" --out "$work/x1.ct"
"$veil" encrypt --keys "$work/k3" --in "$d/test.csv" --out "$work/x3.ct"

# the plan's sizes are the files': the evaluation keys and a batch of inputs (throughput: 111 rows in one batch)
"$veil" keygen --model "$d/model.onnx" --latency --out "$work/kl" --quiet
head -2 "$d/test.csv" >"$work/one.csv"
"$veil" encrypt --keys "$work/kl" --in "$work/one.csv" --out "$work/one.ct"
for packing in throughput latency; do
    if [ $packing = throughput ]; then keys=k1 ct=x1.ct flag=; else keys=kl ct=one.ct flag=--latency; fi
    "$veil" plan --model "$d/model.onnx" $flag >"$work/plan.txt"
    exact() { sed -n "s/^$1 .*(\([0-9]*\) bytes, exact).*/\1/p" "$work/plan.txt"; }
    if [ "$(exact 'eval keys:')" != "$(stat -c %s "$work/$keys/eval/eval.keys")" ] ||
        [ "$(exact inputs:)" != "$(stat -c %s "$work/$ct")" ]; then
        echo "FAIL: $packing: the plan's sizes are not the files' ($(ls -l "$work/$keys/eval/eval.keys" "$work/$ct")): $(cat "$work/plan.txt")"
        fails=$((fails + 1))
    fi
done

# the secret key file is the owner's only
[ "$(stat -c %a "$work/k1/secret.key")" = 600 ] || { echo "FAIL: secret.key is not 0600"; fails=$((fails + 1)); }

# CSV
(head -2 "$d/test.csv"; printf '1,2,3\n') >"$work/short.csv"
expect 3 "row 2 (line 3) has 3 columns, expected 10" "$veil" encrypt --keys "$work/k1" --in "$work/short.csv" --out "$work/bad.ct"
(head -3 "$d/test.csv"; echo "0,0,0,0,x,0,0,0,0,0") >"$work/word.csv"
expect 3 "row 3, column 5: 'x' is not a number" "$veil" encrypt --keys "$work/k1" --in "$work/word.csv" --out "$work/bad.ct"
# inputs on another scale than the model's: outside the range the keys' plan bounded the circuit from, so the
# outputs could wrap around at decryption: refused, with or without the model
awk -F, -v OFS=, 'NR == 1 && $1 !~ /^-?[0-9.]/ { print; next } { for (i = 1; i <= NF; i++) $i *= 1000; print }' \
    "$d/test.csv" >"$work/scaled.csv"
expect 3 "outside .* the range the keys were made for" "$veil" encrypt --keys "$work/k1" --in "$work/scaled.csv" \
    --model "$d/model.onnx" --out "$work/bad.ct"
expect 3 "outside .* the range the keys were made for" "$veil" encrypt --keys "$work/k1" --in "$work/scaled.csv" \
    --out "$work/bad.ct"
[ ! -e "$work/bad.ct" ] || { echo "FAIL: a refused encryption left ciphertexts"; fails=$((fails + 1)); }
(head -2 "$d/test.csv"; echo "0,0,0,0,0,0,NaN,0,0,0") >"$work/nan.csv"
expect 3 "row 2, column 7: NaN is not a finite number" "$veil" plain --model "$d/model.onnx" --in "$work/nan.csv" --out "$work/bad.csv"
(head -2 "$d/test.csv"; echo "0,0,0,0,0,0,0,0,0,inf") >"$work/inf.csv"
expect 3 "column 10" "$veil" encrypt --keys "$work/k1" --in "$work/inf.csv" --out "$work/bad.ct"

# models
head -c 100 "$d/model.onnx" >"$work/truncated.onnx"
expect 3 "not an ONNX model" "$veil" plan --model "$work/truncated.onnx"
expect 3 "not an ONNX model" "$veil" plain --model "$d/test.csv" --in "$d/test.csv" --out "$work/bad.csv"
expect 1 "cannot open\|No such file" "$veil" plan --model "$work/missing.onnx"

# keys and ciphertexts of other sets; data and models of another width than the keys' model, before any work
expect 4 "keys made for a model of 30 inputs, but the rows of .* have 10 values" "$veil" encrypt --keys "$work/k2" \
    --in "$d/test.csv" --out "$work/bad.ct"
expect 4 "reads 30 values per row, the keys' model 10" "$veil" encrypt --keys "$work/k1" --in "$d/test.csv" \
    --model "$work/h/model.onnx" --out "$work/bad.ct"
expect 4 "another model" "$veil" eval --model "$d/model.onnx" --eval-keys "$work/k2/eval" --in "$work/x1.ct" --out "$work/bad.ct"
expect 4 "other keys" "$veil" eval --model "$d/model.onnx" --eval-keys "$work/k3/eval" --in "$work/x1.ct" --out "$work/bad.ct"
expect 4 "other keys" "$veil" decrypt --keys "$work/k3" --in "$work/x1.ct" --out "$work/bad.csv"
expect 3 "holds a secret key" "$veil" eval --model "$d/model.onnx" --eval-keys "$work/k1" --in "$work/x1.ct" --out "$work/bad.ct"
expect 3 "secret key" "$veil" eval --model "$d/model.onnx" --eval-keys "$work/k1/secret.key" --in "$work/x1.ct" --out "$work/bad.ct"
head -c 5000 "$work/x1.ct" >"$work/truncated.ct"
expect 3 "" "$veil" eval --model "$d/model.onnx" --eval-keys "$work/k1/eval" --in "$work/truncated.ct" --out "$work/bad.ct"

# one byte changed in the middle of a file: refused as corrupt (the integrity digest), never decrypted to garbage
flip() { # flip FILE: the middle byte of FILE with one bit changed
    /usr/bin/python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x10; open(p, "wb").write(b)' "$1"
}
cp "$work/x1.ct" "$work/flipped.ct" && flip "$work/flipped.ct"
expect 3 "corrupt: its integrity digest does not match" "$veil" decrypt --keys "$work/k1" --in "$work/flipped.ct" --out "$work/bad.csv"
expect 3 "corrupt" "$veil" eval --model "$d/model.onnx" --eval-keys "$work/k1/eval" --in "$work/flipped.ct" --out "$work/bad.ct"
expect 3 "corrupt" "$veil" info "$work/flipped.ct"
cp -p -r "$work/k1" "$work/k1f" && flip "$work/k1f/secret.key" && flip "$work/k1f/eval/eval.keys"
expect 3 "corrupt" "$veil" decrypt --keys "$work/k1f" --in "$work/x1.ct" --out "$work/bad.csv"
expect 3 "corrupt" "$veil" eval --model "$d/model.onnx" --eval-keys "$work/k1f/eval" --in "$work/x1.ct" --out "$work/bad.ct"

# keys are never overwritten without --force
sum=$(sha256sum "$work/k1/secret.key")
expect 3 "never overwritten" "$veil" keygen --model "$d/model.onnx" --out "$work/k1"
[ "$(sha256sum "$work/k1/secret.key")" = "$sum" ] || { echo "FAIL: the key set changed"; fails=$((fails + 1)); }

# --argmax: a final Sigmoid's one output is the class 1 above 0.5, 0 below; one output without it is refused
h="$work/h"
"$veil" encrypt --keys "$work/k2" --in "$h/test.csv" --out "$work/xh.ct"
"$veil" eval --model "$h/model.onnx" --eval-keys "$work/k2/eval" --in "$work/xh.ct" --out "$work/yh.ct" --quiet
"$veil" decrypt --keys "$work/k2" --in "$work/yh.ct" --out "$work/h_enc.csv" --argmax
"$veil" plain --model "$h/model.onnx" --in "$h/test.csv" --out "$work/h_plain.csv" --argmax
"$veil" plain --model "$h/model.onnx" --in "$h/test.csv" --out "$work/h_prob.csv"
awk '{ print ($1 > 0.5) ? 1 : 0 }' "$work/h_prob.csv" >"$work/h_threshold.csv"
cmp -s "$work/h_plain.csv" "$work/h_threshold.csv" && cmp -s "$work/h_enc.csv" "$work/h_plain.csv" &&
    [ "$(sort -u "$work/h_plain.csv" | tr '\n' ' ')" = "0 1 " ] ||
    { echo "FAIL: --argmax on a one-output Sigmoid model is not its probability above 0.5"; fails=$((fails + 1)); }
expect 2 "one output and ends in neither Sigmoid nor ArgMax" "$veil" plain --model "$d/model.onnx" --in "$d/test.csv" \
    --out "$work/bad.csv" --argmax
"$veil" eval --model "$d/model.onnx" --eval-keys "$work/k1/eval" --in "$work/x1.ct" --out "$work/y1.ct" --quiet
expect 2 "one output and ends in neither Sigmoid nor ArgMax" "$veil" decrypt --keys "$work/k1" --in "$work/y1.ct" \
    --out "$work/bad.csv" --argmax

# a failed keygen leaves no folder it made, and nothing of a folder that was there is touched
expect 1 "missing.onnx" "$veil" keygen --model "$work/missing.onnx" --out "$work/kbad" --quiet
[ ! -e "$work/kbad" ] || { echo "FAIL: a failed keygen left $(find "$work/kbad")"; fails=$((fails + 1)); }
mkdir "$work/kmine" && echo mine >"$work/kmine/notes.txt"
expect 3 "not an ONNX model" "$veil" keygen --model "$d/test.csv" --out "$work/kmine" --quiet
[ "$(ls -A "$work/kmine")" = notes.txt ] && [ "$(cat "$work/kmine/notes.txt")" = mine ] ||
    { echo "FAIL: a failed keygen changed a folder that was there: $(ls -A "$work/kmine")"; fails=$((fails + 1)); }

# usage
expect 2 "--model is required" "$veil" keygen --out "$work/k9"
expect 2 "exclude each other" "$veil" plan --model "$d/model.onnx" --batch 4 --latency
expect 2 "positive integer" "$veil" plan --model "$d/model.onnx" --batch -3
expect 3 "^veil: plan: batch 100000 is above" "$veil" plan --model "$d/model.onnx" --batch 100000
expect 3 "^veil: decrypt: exact integers" "$veil" decrypt --keys "$work/k1" --in "$work/x1.ct" --out "$work/bad.csv" --integers
expect 1 "^veil: read $work/nokeys/secret.key: " "$veil" encrypt --keys "$work/nokeys" --in "$d/test.csv" --out "$work/bad.ct"

# no half-written outputs
if ls "$work"/bad.* "$work"/*.tmp.* >/dev/null 2>&1; then
    echo "FAIL: an output was left behind: $(ls "$work"/bad.* "$work"/*.tmp.* 2>/dev/null)"
    fails=$((fails + 1))
fi
# info describes without the key
"$veil" info "$work/k1/eval/eval.keys" | grep -q "evaluation keys" || { echo "FAIL: info"; fails=$((fails + 1)); }
"$veil" info "$work/k1/secret.key" | grep -q "SECRET" || { echo "FAIL: info secret"; fails=$((fails + 1)); }
[ "$fails" = 0 ] && echo "cli ml: ok"
exit "$fails"
