#!/usr/bin/env bash
# A torch model with nn.ZeroPad2d (its pads computed by a constant subgraph of ConstantOfShape, Slice,
# Transpose and Cast: tests/torch_pad_model.py) through the CLI: `veil plain --exact` must equal torch's
# outputs within 1e-5, and keygen, encrypt, eval, decrypt `veil plain` within 1e-3 (1 + max |plain|).
#   test_cli_pad.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$src/tests/torch_pad_model.py" "$work"
m="$work/model.onnx"
"$veil" plain --exact --model "$m" --in "$work/x.csv" --out "$work/exact.csv"
"$veil" plain --model "$m" --in "$work/x.csv" --out "$work/plain.csv"
"$veil" keygen --model "$m" --input-range 0:1 --out "$work/keys" --quiet
"$veil" encrypt --keys "$work/keys" --in "$work/x.csv" --out "$work/x.ct"
"$veil" eval --model "$m" --eval-keys "$work/keys/eval" --in "$work/x.ct" --out "$work/y.ct" --quiet
"$veil" decrypt --keys "$work/keys" --in "$work/y.ct" --out "$work/y.csv"
# compare A B TOL RELATIVE NAME: every value of A within TOL of B's (times 1 + max |B| when RELATIVE)
compare() {
    paste -d'|' "$1" "$2" | awk -F'|' -v tol="$3" -v rel="$4" -v name="$5" '
        { n++; k = split($1, a, ","); m = split($2, b, ",")
          if (k != m) bad++
          for (i = 1; i <= k; i++) { d = a[i] - b[i]; if (d < 0) d = -d; if (d > worst) worst = d
                                     v = b[i] < 0 ? -b[i] : b[i]; if (v > big) big = v } }
        END { limit = rel ? tol * (1 + big) : tol
              printf "%s: %d rows, largest difference %.3g (at most %.3g)\n", name, n, worst, limit
              if (n == 0 || bad || worst > limit) exit 1 }'
}
compare "$work/exact.csv" "$work/torch.csv" 1e-5 0 "plain --exact vs torch"
compare "$work/y.csv" "$work/plain.csv" 1e-3 1 "encrypted vs plain"
echo "cli pad: ok"
