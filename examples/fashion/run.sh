#!/usr/bin/env bash
# Fashion-MNIST with a CryptoNets-shaped network, encrypted (work in progress toward the CNN issue):
#   examples/fashion/run.sh [BUILD_DIR] [WORK_DIR] [IMAGES]
# trains the network (examples/fashion/train.py), classifies IMAGES test images (default 1000) encrypted
# in the throughput packing, and prints the accuracy beside the plaintext model's, the images per second
# of the server's evaluation, and the agreement of the argmax.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
work=${2:-$(mktemp -d)}
images=${3:-1000}
veil="$build/veil"
mkdir -p "$work"
[ -e "$work/model.onnx" ] || /usr/bin/python3 "$here/train.py" "$work" "$images"
head -n "$images" "$work/test.csv" >"$work/images.csv"
head -n "$images" "$work/labels.csv" >"$work/labels_used.csv"
"$veil" plan --model "$work/model.onnx"
rm -rf "$work/keys"
"$veil" keygen --model "$work/model.onnx" --out "$work/keys" --quiet
"$veil" encrypt --keys "$work/keys" --in "$work/images.csv" --out "$work/x.ct"
t0=$(date +%s.%N)
"$veil" eval --model "$work/model.onnx" --eval-keys "$work/keys/eval" --in "$work/x.ct" --out "$work/y.ct" --quiet
t1=$(date +%s.%N)
"$veil" decrypt --keys "$work/keys" --in "$work/y.ct" --out "$work/enc.csv" --argmax
"$veil" plain --model "$work/model.onnx" --in "$work/images.csv" --out "$work/plain.csv" --argmax
paste -d, "$work/enc.csv" "$work/plain.csv" "$work/labels_used.csv" | awk -F, -v a="$t0" -v b="$t1" '
    { n++; same += ($1 == $2); ce += ($1 == $3); cp += ($2 == $3) }
    END { printf "%d images: encrypted accuracy %.4f, plaintext %.4f, identical argmax %d, %.1f images/s (%.1f s)\n",
                 n, ce / n, cp / n, same, n / (b - a), b - a }'
