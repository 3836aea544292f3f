#!/usr/bin/env bash
# A deep MLP on digits through the four steps with bootstrapping (docs/bootstrapping.md, "In the ML layer"):
# 8 hidden Tanh layers of 8 (65 levels with the degree-31 approximations: more than any leveled parameter set
# at 128-bit holds), planned with bootstraps, run on ROWS test digits, and compared with the plaintext model.
#   run.sh [WORKDIR [ROWS]]   env: VEIL (the veil program), SECURITY (128, or insecure-test: the small test
#                             set, which holds 4 levels per bootstrap and needs a shallower model), THREADS,
#                             LAYERS (8), BOOTSTRAP=1 (--bootstrap: bootstraps even where a leveled set would do),
#                             LATENCY=1 (the latency packing: one sample per ciphertext, one sparse bootstrap of
#                             its 64 slots per point)
# At 128-bit (N = 2^16) the evaluation is heavy: 56 bootstraps per batch, about 15 s of CPU each.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
veil=${VEIL:-veil}
work=${1:-deep-run}
rows=${2:-32}
security=${SECURITY:-128}
layers=${LAYERS:-8}
boot=()
[ "${BOOTSTRAP:-0}" = 1 ] && boot=(--bootstrap)
packing=(--batch "$rows")
[ "${LATENCY:-0}" = 1 ] && packing=(--latency)
mkdir -p "$work"
/usr/bin/python3 "$here/train.py" "$work" "$layers" 8
model=(--model "$work/model.onnx" --calibrate "$work/train.csv" --degree 31)
head -"$rows" "$work/test.csv" >"$work/x.csv"
head -"$rows" "$work/labels.csv" >"$work/labels_x.csv"
head -"$rows" "$work/plain.csv" >"$work/torch_x.csv"
"$veil" plan "${model[@]}" "${boot[@]}" "${packing[@]}" --security "$security" | tee "$work/plan.txt"
t0=$(date +%s)
"$veil" keygen "${model[@]}" "${boot[@]}" "${packing[@]}" --security "$security" --out "$work/keys" --quiet
t1=$(date +%s)
"$veil" encrypt --keys "$work/keys" --in "$work/x.csv" --out "$work/x.ct"
t2=$(date +%s)
"$veil" eval "${model[@]}" --eval-keys "$work/keys/eval" --in "$work/x.ct" --out "$work/y.ct" \
    --threads "${THREADS:-1}"
t3=$(date +%s)
"$veil" decrypt --keys "$work/keys" --in "$work/y.ct" --out "$work/y.csv"
"$veil" plain "${model[@]}" --in "$work/x.csv" --out "$work/program.csv"
echo "run.sh: keygen $((t1 - t0)) s, encrypt $((t2 - t1)) s, eval $((t3 - t2)) s (wall)"
/usr/bin/python3 - "$work" <<'PY'
import sys
import numpy as np
w = sys.argv[1]
enc = np.loadtxt(f"{w}/y.csv", delimiter=",", ndmin=2)
prog = np.loadtxt(f"{w}/program.csv", delimiter=",", ndmin=2)
torch_scores = np.loadtxt(f"{w}/torch_x.csv", delimiter=",", ndmin=2)
labels = np.loadtxt(f"{w}/labels_x.csv", dtype=int, ndmin=1)
n = len(labels)
print(f"encrypted: {n} digits, accuracy {np.mean(enc.argmax(1) == labels):.4f} "
      f"(plaintext model {np.mean(torch_scores.argmax(1) == labels):.4f}, Veil's polynomial program "
      f"{np.mean(prog.argmax(1) == labels):.4f})")
print(f"argmax agreement: with the polynomial program {np.mean(enc.argmax(1) == prog.argmax(1)):.4f}, with the "
      f"plaintext model {np.mean(enc.argmax(1) == torch_scores.argmax(1)):.4f}")
print(f"largest |encrypted - polynomial program| {np.abs(enc - prog).max():.3g}, mean {np.abs(enc - prog).mean():.3g}; "
      f"largest |encrypted - plaintext model| {np.abs(enc - torch_scores).max():.3g} (outputs up to "
      f"{np.abs(prog).max():.3g})")
PY
