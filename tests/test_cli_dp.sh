#!/usr/bin/env bash
# Differential privacy through the CLI (docs/privacy.md): veil budget, output noise at veil eval, the budget
# charged at veil decrypt and a release over it refused, and bad input (epsilon, delta, budget files).
#   test_cli_dp.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
expect() { # expect CODE PATTERN COMMAND...: exit code and a message on standard error
    local code=$1 pattern=$2
    shift 2
    "$@" 2>"$work/err" >/dev/null
    local rc=$?
    if [ "$rc" != "$code" ] || ! grep -q -- "$pattern" "$work/err"; then
        fail "'$*' gave $rc (wanted $code), stderr: $(cat "$work/err") (wanted /$pattern/)"
    fi
}
/usr/bin/python3 "$src/examples/diabetes/train.py" "$work/d" >/dev/null
d="$work/d" k="$work/k"
"$veil" keygen --model "$d/model.onnx" --out "$k" --quiet
"$veil" encrypt --keys "$k" --in "$d/test.csv" --out "$work/x.ct"
"$veil" eval --model "$d/model.onnx" --eval-keys "$k/eval" --in "$work/x.ct" --out "$work/y0.ct" --quiet
"$veil" decrypt --keys "$k" --in "$work/y0.ct" --out "$work/y0.csv"

# the budget: bad values refused, nothing written
expect 3 "no privacy budget" "$veil" budget --keys "$k"
expect 2 "wants a number >= 0" "$veil" budget --keys "$k" --epsilon -1 --delta 1e-6
expect 2 "must be above 0" "$veil" budget --keys "$k" --epsilon 0 --delta 1e-6
expect 3 "epsilon 1000 outside" "$veil" budget --keys "$k" --epsilon 1000 --delta 1e-6
expect 3 "delta 0.5 outside" "$veil" budget --keys "$k" --epsilon 1 --delta 0.5
expect 2 "go together" "$veil" budget --keys "$k" --epsilon 1
expect 2 "wants a number" "$veil" budget --keys "$k" --epsilon nan --delta 1e-6
expect 2 "one of --rho R and --sigma S" "$veil" budget --delta 1e-6
[ -e "$k/privacy.budget" ] && fail "a refused budget left a file"

# output noise: bad parameters refused before anything is written
ev=("$veil" eval --model "$d/model.onnx" --eval-keys "$k/eval" --in "$work/x.ct" --quiet)
expect 2 "wants a number >= 0" "${ev[@]}" --out "$work/bad.ct" --dp-epsilon -2 --dp-delta 1e-6
expect 3 "epsilon 500 outside" "${ev[@]}" --out "$work/bad.ct" --dp-epsilon 500 --dp-delta 1e-6
expect 3 "delta 1 outside" "${ev[@]}" --out "$work/bad.ct" --dp-epsilon 1 --dp-delta 1
expect 2 "go together" "${ev[@]}" --out "$work/bad.ct" --dp-delta 1e-6
expect 2 "goes with --dp-epsilon" "${ev[@]}" --out "$work/bad.ct" --dp-sensitivity 3
# the model's own sensitivity (outputs' range over the keys' inputs' range) needs noise past the parameters
expect 3 "does not fit the parameters" "${ev[@]}" --out "$work/bad.ct" --dp-epsilon 1 --dp-delta 1e-6
[ -e "$work/bad.ct" ] && fail "a refused eval left its output"

# a release: the set records it, the noise has the sigma it claims (111 rows: sd within 25%, mean near 0)
"${ev[@]}" --out "$work/y.ct" --dp-epsilon 2 --dp-delta 1e-6 --dp-sensitivity 20
"$veil" info "$work/y.ct" | grep -q "noisy release: epsilon 2 at delta 1e-06, sensitivity 20" || fail "info of a release"
sigma=$("$veil" info "$work/y.ct" | sed -n 's/.*, sigma \([0-9.e+-]*\) .*/\1/p')
expect 5 "has no privacy budget" "$veil" decrypt --keys "$k" --in "$work/y.ct" --out "$work/y.csv"
[ -e "$work/y.csv" ] && fail "a release without budget was decrypted"
"$veil" budget --keys "$k" --epsilon 3 --delta 1e-6 >/dev/null || fail "budget set"
"$veil" decrypt --keys "$k" --in "$work/y0.ct" --out "$work/y0b.csv" || fail "decrypt without noise"
"$veil" budget --keys "$k" | grep -q "in 0 releases" || fail "a noiseless decryption was charged"
"$veil" decrypt --keys "$k" --in "$work/y.ct" --out "$work/y.csv" || fail "decrypt of a release"
paste -d, "$work/y.csv" "$work/y0.csv" | awk -F, -v s="$sigma" '
    { d = $1 - $2; n++; sum += d; sq += d * d }
    END { sd = sqrt(sq / n); if (n != 111 || sd < 0.75 * s || sd > 1.3 * s || (sum / n) ^ 2 > 16 * s * s / n) {
          printf "noise: %d rows, sd %g, mean %g, sigma %g\n", n, sd, sum / n, s; exit 1 } }' || fail "the noise's distribution"
"$veil" budget --keys "$k" | grep -q "epsilon 2 (rho 0.0881[0-9]*) in 1 release;" || fail "the budget after one release: $("$veil" budget --keys "$k")"
"$veil" info "$k/secret.key" | grep -q "^spent: *epsilon 2 " || fail "info of the key set shows no budget"
# epsilon 2 twice composes to 2.92 <= 3; the third is over budget: refused, nothing written, budget unchanged
"$veil" decrypt --keys "$k" --in "$work/y.ct" --out "$work/y2.csv" || fail "the second release"
cp "$k/privacy.budget" "$work/before"
expect 5 "privacy budget exceeded" "$veil" decrypt --keys "$k" --in "$work/y.ct" --out "$work/y3.csv"
[ -e "$work/y3.csv" ] && fail "a release over budget was written"
cmp -s "$k/privacy.budget" "$work/before" || fail "a refused release changed the budget"
# raising the limit keeps what is spent; lowering it below is refused
"$veil" budget --keys "$k" --epsilon 8 --delta 1e-6 | grep -q "in 2 releases" || fail "raising the budget"
expect 3 "below what is already spent" "$veil" budget --keys "$k" --epsilon 1 --delta 1e-6
# a damaged budget file is refused, never reset
printf '\x01' | dd of="$k/privacy.budget" bs=1 seek=40 conv=notrunc 2>/dev/null
expect 3 "integrity digest mismatch" "$veil" decrypt --keys "$k" --in "$work/y.ct" --out "$work/y4.csv"
expect 3 "integrity digest mismatch" "$veil" info "$k/privacy.budget"
head -c 50 "$work/before" >"$k/privacy.budget"
expect 3 "bytes where 88 were expected" "$veil" budget --keys "$k"
[ -e "$work/y4.csv" ] && fail "a release with a damaged budget was written"
# a damaged release record is refused
python3 - "$work/y.ct" "$work/yb.ct" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
i = b.find(b"VEIL-DP1")
b[i + 40] ^= 0x40  # sigma
open(sys.argv[2], "wb").write(bytes(b))
PY
expect 3 "" "$veil" decrypt --keys "$k" --in "$work/yb.ct" --out "$work/y5.csv"
[ "$fails" = 0 ] && echo "cli dp: ok"
exit "$fails"
