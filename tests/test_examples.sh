#!/usr/bin/env bash
# An example model end to end through the CLI, the server side given only KEYDIR/eval:
#   test_examples.sh BUILD_DIR SOURCE_DIR EXAMPLE PACKING TOLERANCE [ROWS]
# trains the example (examples/EXAMPLE/train.py), runs keygen, encrypt, eval (in a folder holding only
# the model, eval/ and the ciphertexts), decrypt; compares with `veil plain`: the largest absolute
# difference must be at most TOLERANCE and the argmax (for several outputs) identical on every row.
set -euo pipefail
build=$1 src=$2 example=$3 packing=$4 tol=$5 rows=${6:-0}
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$src/examples/$example/train.py" "$work/owner" >/dev/null
input="$work/owner/test.csv"
if [ "$rows" -gt 0 ]; then
    head -n "$((rows + 1))" "$input" >"$work/owner/rows.csv"
    input="$work/owner/rows.csv"
fi
flag=""
[ "$packing" = latency ] && flag=--latency
# the inputs' range: the training records where the example writes them, else the widest the plan allows
[ -f "$work/owner/train.csv" ] && flag="$flag --calibrate $work/owner/train.csv"
"$veil" keygen --model "$work/owner/model.onnx" $flag --out "$work/owner/keys" --quiet
"$veil" encrypt --keys "$work/owner/keys" --in "$input" --out "$work/owner/x.ct"
mkdir "$work/server"
cp "$work/owner/model.onnx" "$work/owner/x.ct" "$work/server/"
cp -r "$work/owner/keys/eval" "$work/server/eval"
"$veil" eval --model "$work/server/model.onnx" --eval-keys "$work/server/eval" --in "$work/server/x.ct" \
    --out "$work/server/y.ct" --quiet
"$veil" decrypt --keys "$work/owner/keys" --in "$work/server/y.ct" --out "$work/owner/y.csv"
"$veil" plain --model "$work/owner/model.onnx" --in "$input" --out "$work/owner/p.csv"
paste -d'|' "$work/owner/y.csv" "$work/owner/p.csv" | awk -F'|' -v tol="$tol" -v name="$example/$packing" '
    { n++; k = split($1, a, ","); split($2, b, ",")
      ba = 1; bb = 1
      for (i = 1; i <= k; i++) { d = a[i] - b[i]; if (d < 0) d = -d; if (d > worst) worst = d
                                 if (a[i] > a[ba]) ba = i; if (b[i] > b[bb]) bb = i }
      if (k > 1 && ba != bb) diff++ }
    END { printf "%s: %d rows, largest |encrypted - plain| %.3g, %d argmax differences\n", name, n, worst, diff
          if (n == 0 || worst > tol || diff > 0) exit 1 }'
