#!/usr/bin/env bash
# Fashion-MNIST with a CryptoNets-shaped network, encrypted:
#   examples/fashion/run.sh [BUILD_DIR] [WORK_DIR] [IMAGES]
# trains the network (examples/fashion/train.py), classifies IMAGES test images (default 1000) encrypted
# in the throughput packing (CKKS), and prints the accuracy beside the plaintext model's, the images per
# second of the server's evaluation, and the agreement of the argmax. Then the same exactly: the network
# quantized (examples/quantize.py) and evaluated in BGV, whose decrypted integers must equal the integer
# computation on every image. Last, the network with its weights encrypted (docs/marketplace.md): a vendor's
# latency plan, the data owner's keys from it, the weights encrypted under them (veil encrypt-model), the first
# ENC_IMAGES images (default 5) one per ciphertext; their argmax must equal the plaintext network's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../../build}" && pwd)
work=${2:-$(mktemp -d)}
images=${3:-1000}
veil="$build/veil"
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    echo "run.sh: Fashion-MNIST is missing: install Debian's dataset-fashion-mnist (sudo apt-get install dataset-fashion-mnist)" >&2
    exit 1
fi
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

# exact inference: the quantized network in BGV
range=$(/usr/bin/python3 "$here/../quantize.py" "$work/model.onnx" "$work/calib.csv" "$work/calib_labels.csv" \
    "$work/model_q.onnx" | tee /dev/stderr | sed -n 's/.*--input-range 0:\([0-9]*\).*/\1/p')
/usr/bin/python3 "$here/../quantize.py" --inputs "$range" "$work/images.csv" "$work/images_q.csv"
rm -rf "$work/keys_q"
"$veil" keygen --model "$work/model_q.onnx" --scheme bgv --input-range "0:$range" --out "$work/keys_q" --quiet
"$veil" encrypt --keys "$work/keys_q" --in "$work/images_q.csv" --out "$work/xq.ct"
t0=$(date +%s.%N)
"$veil" eval --model "$work/model_q.onnx" --eval-keys "$work/keys_q/eval" --in "$work/xq.ct" --out "$work/yq.ct" --quiet
t1=$(date +%s.%N)
"$veil" decrypt --keys "$work/keys_q" --in "$work/yq.ct" --out "$work/encq_int.csv" --integers
"$veil" plain --model "$work/model_q.onnx" --in "$work/images_q.csv" --out "$work/plainq_int.csv" --integers
"$veil" decrypt --keys "$work/keys_q" --in "$work/yq.ct" --out "$work/encq.csv" --argmax
exact=$(paste -d';' "$work/encq_int.csv" "$work/plainq_int.csv" | awk -F';' '$1 == $2 { n++ } END { print n + 0 }')
paste -d, "$work/encq.csv" "$work/labels_used.csv" | awk -F, -v a="$t0" -v b="$t1" -v e="$exact" '
    { n++; c += ($1 == $2) }
    END { printf "%d images, exact (BGV): accuracy %.4f, %d equal to the integer computation, %.1f images/s (%.1f s)\n",
                 n, c / n, e, n / (b - a), b - a }'
[ "$exact" = "$(wc -l <"$work/images_q.csv")" ]

# encrypted weights: the vendor's plan (latency), the data owner's keys, the vendor's encrypted model
enc=${ENC_IMAGES:-5}
head -n "$enc" "$work/test.csv" >"$work/enc_images.csv"
"$veil" plan --model "$work/model.onnx" --latency --input-range 0:1 --out "$work/latency.plan" >/dev/null
rm -rf "$work/keys_lat"
"$veil" keygen --plan "$work/latency.plan" --out "$work/keys_lat" --quiet
t0=$(date +%s.%N)
"$veil" encrypt-model --model "$work/model.onnx" --keys "$work/keys_lat/eval" --out "$work/model.ctm" --quiet
t1=$(date +%s.%N)
"$veil" encrypt --keys "$work/keys_lat" --in "$work/enc_images.csv" --out "$work/xe.ct"
t2=$(date +%s.%N)
"$veil" eval --model "$work/model.ctm" --eval-keys "$work/keys_lat/eval" --in "$work/xe.ct" --out "$work/ye.ct" --quiet
t3=$(date +%s.%N)
"$veil" decrypt --keys "$work/keys_lat" --in "$work/ye.ct" --out "$work/enc_weights.csv" --argmax
"$veil" plain --model "$work/model.onnx" --in "$work/enc_images.csv" --out "$work/enc_plain.csv" --argmax
same=$(paste -d, "$work/enc_weights.csv" "$work/enc_plain.csv" | awk -F, '$1 == $2 { n++ } END { print n + 0 }')
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v n="$enc" -v s="$same" -v bytes="$(stat -c %s "$work/model.ctm")" '
    BEGIN { printf "%d images, encrypted weights (latency packing): %d argmax equal to the plaintext network; " \
                   "model encrypted in %.1f s (%.0f MB), %.2f s per image (veil eval, whole command)\n",
                   n, s, b - a, bytes / 1e6, (d - c) / n }'
[ "$same" = "$enc" ]
