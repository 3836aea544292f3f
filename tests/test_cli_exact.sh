#!/usr/bin/env bash
# Exact inference through the CLI: a quantized CNN on scikit-learn's digits (examples/digits/train_cnn.py,
# examples/quantize.py) in BGV. The decrypted integers must equal `veil plain --integers` byte for byte, the
# classes the plaintext model's; bad input fails with its message and exit code and writes nothing.
#   test_cli_exact.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if ! "$@"; then
        echo "FAIL: $what"
        fails=$((fails + 1))
    fi
}
expect() { # expect CODE PATTERN COMMAND...: exit code and a message on standard error
    local code=$1 pattern=$2
    shift 2
    "$@" 2>"$work/err" >/dev/null
    local rc=$?
    if [ "$rc" != "$code" ] || ! grep -q -- "$pattern" "$work/err"; then
        echo "FAIL: '$*' gave $rc (wanted $code), stderr: $(cat "$work/err") (wanted /$pattern/)"
        fails=$((fails + 1))
    fi
}
d="$work/d"
/usr/bin/python3 "$src/examples/digits/train_cnn.py" "$d" >/dev/null || exit 1
/usr/bin/python3 "$src/examples/quantize.py" "$d/model_cnn.onnx" "$d/calib.csv" "$d/calib_labels.csv" \
    "$d/model_q.onnx" 16 || exit 1
/usr/bin/python3 "$src/examples/quantize.py" --inputs 16 "$d/test.csv" "$d/x.csv" || exit 1
m="$d/model_q.onnx"

"$veil" plan --model "$m" --scheme bgv --input-range 0:16 >"$work/plan.txt"
check "the plan names the scheme and the bound" grep -q "BGV, exact: outputs bounded by 2^" "$work/plan.txt"
"$veil" keygen --model "$m" --scheme bgv --input-range 0:16 --out "$work/k" --quiet || exit 1
"$veil" encrypt --keys "$work/k" --in "$d/x.csv" --out "$work/x.ct" --model "$m" || exit 1
mkdir "$work/server" && cp -r "$work/k/eval" "$work/server/"
"$veil" eval --model "$m" --eval-keys "$work/server/eval" --in "$work/x.ct" --out "$work/y.ct" --quiet || exit 1
"$veil" decrypt --keys "$work/k" --in "$work/y.ct" --out "$work/enc_int.csv" --integers
"$veil" plain --model "$m" --in "$d/x.csv" --out "$work/plain_int.csv" --integers
check "decrypted integers equal the integer computation exactly" cmp -s "$work/enc_int.csv" "$work/plain_int.csv"
check "one line per image" test "$(wc -l <"$work/enc_int.csv")" = "$(wc -l <"$d/x.csv")"
"$veil" decrypt --keys "$work/k" --in "$work/y.ct" --out "$work/enc.csv" --argmax
"$veil" plain --model "$m" --in "$d/x.csv" --out "$work/plain.csv" --argmax
check "the classes equal the plaintext model's" cmp -s "$work/enc.csv" "$work/plain.csv"
paste -d, "$work/enc.csv" "$d/labels.csv" | awk -F, '{ n++; c += ($1 == $2) } END { printf "digits, exact: %d images, accuracy %.4f\n", n, c / n }'

# bad input: nothing is written
expect 2 "needs --input-range" "$veil" keygen --model "$m" --scheme bgv --out "$work/k2" --quiet
expect 2 "two integers" "$veil" keygen --model "$m" --scheme bgv --input-range 0:1.5 --out "$work/k2" --quiet
expect 3 "quantize to fewer bits" "$veil" keygen --model "$m" --scheme bgv --input-range 0:100000 --out "$work/k2" --quiet
expect 3 "throughput packing only" "$veil" plan --model "$m" --scheme bgv --input-range 0:16 --latency
expect 2 "ckks or bgv" "$veil" plan --model "$m" --scheme tfhe --input-range 0:16
check "no key set from a refused keygen" test ! -e "$work/k2/secret.key"
awk -F, -v OFS=, 'NR == 2 { $5 = 17 } { print }' "$d/x.csv" >"$work/big.csv"
expect 3 "row 2, column 5 is 17" "$veil" encrypt --keys "$work/k" --in "$work/big.csv" --out "$work/bad.ct"
awk -F, -v OFS=, 'NR == 3 { $1 = 0.5 } { print }' "$d/x.csv" >"$work/frac.csv"
expect 3 "row 3, column 1 is 0.5" "$veil" encrypt --keys "$work/k" --in "$work/frac.csv" --out "$work/bad.ct"
check "no ciphertexts from a refused encryption" test ! -e "$work/bad.ct"
# the float model, given with exact keys: another model than theirs (its weights are not integers)
expect 4 "is another model" "$veil" eval --model "$d/model_cnn.onnx" --eval-keys "$work/k/eval" --in "$work/x.ct" \
    --out "$work/bad.ct"
expect 4 "is another model" "$veil" encrypt --keys "$work/k" --model "$d/model_cnn.onnx" --in "$d/x.csv" \
    --out "$work/bad.ct"
# CKKS keys of the same model do not take exact ciphertexts
"$veil" keygen --model "$m" --out "$work/kc" --quiet
expect 4 "" "$veil" eval --model "$m" --eval-keys "$work/kc/eval" --in "$work/x.ct" --out "$work/bad.ct"
check "no outputs from a refused evaluation" test ! -e "$work/bad.ct"

# differential privacy on exact results (docs/privacy.md): integer noise on every modulus' residues, of the
# sigma the set records (within 25% over 450 x 10 outputs), the budget charged; the classes mostly survive
"$veil" eval --model "$m" --eval-keys "$work/server/eval" --in "$work/x.ct" --out "$work/ydp.ct" --quiet \
    --dp-epsilon 4 --dp-delta 1e-6 --dp-sensitivity 2 || exit 1
"$veil" budget --keys "$work/k" --epsilon 5 --delta 1e-6 >/dev/null # two releases of 4 compose to 5.9
"$veil" decrypt --keys "$work/k" --in "$work/ydp.ct" --out "$work/dp_int.csv" --integers || exit 1
sigma=$("$veil" info "$work/ydp.ct" | sed -n 's/.*, sigma \([0-9.e+-]*\) .*/\1/p')
scale=$("$veil" info "$work/ydp.ct" | sed -n 's/.*output scale \([0-9.e+-]*\)$/\1/p')
check "the exact noise has the recorded sigma ($sigma)" awk -F, -v s="$sigma" -v u="$scale" '
    NR == FNR { for (i = 1; i <= NF; i++) a[FNR, i] = $i; next }
    { for (i = 1; i <= NF; i++) { d = ($i - a[FNR, i]) * u; n++; sq += d * d } }
    END { sd = sqrt(sq / n); exit !(n == 4500 && sd > 0.75 * s && sd < 1.3 * s) }' "$work/enc_int.csv" "$work/dp_int.csv"
check "the release is charged" sh -c "'$veil' budget --keys '$work/k' | grep -q 'in 1 release;'"
expect 5 "privacy budget exceeded" "$veil" decrypt --keys "$work/k" --in "$work/ydp.ct" --out "$work/dp2.csv" --integers
check "nothing written over budget" test ! -e "$work/dp2.csv"

if [ "$fails" = 0 ]; then echo "cli exact: ok"; else echo "cli exact: $fails failures"; exit 1; fi
