#!/usr/bin/env bash
# `veil serve` serving an encrypted model (docs/marketplace.md): the models folder holds the vendor's plan
# (hospital.plan), no weights; the data owner makes keys from the server's plan and uploads them; the vendor
# uploads the same evaluation keys and its .ctm for them (POST /v1/models/NAME/weights?keys=ID); the data
# owner's predictions (veil predict, over HTTP on loopback) equal the plaintext model's (1e-3, the same
# classes). In the latency packing too, with the operator's .ctm in the models folder. The server's files (the
# models folder, the store) hold no weight in the clear. Refused: predictions before the weights (409), weights
# for another tenant's keys (404), weights of other keys (409), damaged weights (422), a second upload (409),
# `veil encrypt-model --server` without a token or a served name (usage),
# weights for a model served in the clear (409), a side file beside a plan (the server does not start).
#   test_serve_encmodel.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
# shellcheck source=serve_lib.sh
. "$src/tests/serve_lib.sh"
d="$work/h"
/usr/bin/python3 "$src/examples/hospital/train.py" "$d" >/dev/null || exit 1
H=(--model "$d/model.onnx" --calibrate "$d/train.csv")
head -n 5 "$d/test.csv" >"$work/five.csv"
"$veil" plain "${H[@]}" --in "$work/five.csv" --out "$work/p.csv" || fail "plain"
"$veil" plain "${H[@]}" --in "$work/five.csv" --out "$work/pc.csv" --argmax || fail "plain --argmax"
compare() { # compare A.csv B.csv: the same rows within 1e-3
    /usr/bin/python3 - "$1" "$2" <<'EOF' || fail "$1 is not $2 within 1e-3"
import csv, sys
a = [[float(v) for v in r] for r in csv.reader(open(sys.argv[1]))]
b = [[float(v) for v in r] for r in csv.reader(open(sys.argv[2]))]
assert len(a) == len(b) > 0, (len(a), len(b))
worst = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
print(f"{sys.argv[1]}: largest difference {worst:.2e}")
assert worst <= 1e-3
EOF
}

# the vendor's plans: throughput (served as hospital) and latency (served as hospital_lat); a model in the clear
mkdir -p "$work/models"
"$veil" plan "${H[@]}" --out "$work/models/hospital.plan" >/dev/null 2>&1 || fail "plan"
"$veil" plan "${H[@]}" --latency --out "$work/models/hospital_lat.plan" >/dev/null 2>&1 || fail "plan --latency"
/usr/bin/python3 "$src/examples/diabetes/train.py" "$work/dia" >/dev/null || exit 1
cp "$work/dia/model.onnx" "$work/models/diabetes.onnx"
mkdir -p "$work/store"
owner=$("$veil" token add --store "$work/store" --tenant owner 2>/dev/null | tail -1)
vendor=$("$veil" token add --store "$work/store" --tenant vendor 2>/dev/null | tail -1)
other=$("$veil" token add --store "$work/store" --tenant other 2>/dev/null | tail -1)
# the operator's weights for the latency model, encrypted under the data owner's latency keys (made first, from
# the vendor's plan, as the data owner would)
"$veil" keygen --plan "$work/models/hospital_lat.plan" --out "$work/kl" --quiet || fail "keygen --plan, latency"
"$veil" encrypt-model "${H[@]}" --keys "$work/kl/eval" --out "$work/models/hospital_lat.ctm" --quiet ||
    fail "encrypt-model, latency"
start_server
[ -n "$port" ] || { echo "FAIL: the server did not start: $(cat "$work/server.log")"; exit 1; }
expect 200 "the model list" "$owner" GET /v1/models
check "the model list names the encrypted model" grep -q '"name":"hospital","input_width":30,"output_width":[0-9]*,"encrypted":true' \
    "$work/body"
expect 200 "describe the encrypted model" "$owner" GET /v1/models/hospital
check "described as encrypted" grep -q '"encrypted":true' "$work/body"
expect 404 "the latency plan of a throughput-only encrypted model" "$owner" GET "/v1/models/hospital/plan?packing=latency"

# the data owner: keys from the server's plan, uploaded; a prediction before the weights: 409
VEIL_TOKEN=$owner "$veil" keygen --server "$url" --model hospital --out "$work/k" --quiet || fail "keygen --server"
VEIL_TOKEN=$owner "$veil" predict --server "$url" --model hospital --keys "$work/k" --in "$work/five.csv" \
    --out "$work/y.csv" --quiet 2>"$work/err"
grep -q "has not uploaded its weights" "$work/err" || fail "a prediction before the weights: $(cat "$work/err")"
id=$(sed -n 's/.*weights?keys=\([0-9a-f]*\)).*/\1/p' "$work/err")
expect 200 "the owner's keys are stored" "$owner" GET "/v1/keys/$id"
# the vendor: encrypts for the data owner's eval keys; another tenant cannot send weights for them
"$veil" encrypt-model "${H[@]}" --keys "$work/k/eval" --out "$work/m.ctm" --quiet || fail "encrypt-model"
expect 404 "weights for keys the vendor does not hold" "$vendor" POST "/v1/models/hospital/weights?keys=$id" "$work/m.ctm"
expect 201 "the vendor uploads the same eval keys" "$vendor" POST /v1/keys "$work/k/eval/eval.keys"
check "the vendor's upload is the owner's bundle" grep -q "\"id\":\"$id\"" "$work/body"
expect 409 "weights of other keys" "$vendor" POST "/v1/models/hospital_lat/weights?keys=$id" "$work/m.ctm"
/usr/bin/python3 - "$work/m.ctm" "$work/bad.ctm" <<'EOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
data[len(data) // 2] ^= 0x40
open(sys.argv[2], "wb").write(bytes(data))
EOF
expect 422 "damaged weights" "$vendor" POST "/v1/models/hospital/weights?keys=$id" "$work/bad.ctm"
expect 409 "weights for a model served in the clear" "$vendor" POST "/v1/models/diabetes/weights?keys=$id" "$work/m.ctm"
# the vendor's upload with veil: the bundle (held already) and the weights, encrypted afresh
VEIL_TOKEN=$vendor "$veil" encrypt-model "${H[@]}" --keys "$work/k/eval" --server "$url" --served hospital \
    2>"$work/err" || fail "encrypt-model --server: $(cat "$work/err")"
grep -q "sent the encrypted model" "$work/err" || fail "encrypt-model --server says nothing: $(cat "$work/err")"
cp "$work/store/weights/$id.ctm" "$work/kept.ctm" # the server's file, searched below
expect 409 "a second upload of weights" "$vendor" POST "/v1/models/hospital/weights?keys=$id" "$work/m.ctm"
"$veil" encrypt-model "${H[@]}" --keys "$work/k/eval" --server "$url" --quiet 2>"$work/err"
[ $? = 2 ] && grep -q "go together" "$work/err" || fail "--server without --served: $(cat "$work/err")"
"$veil" encrypt-model "${H[@]}" --keys "$work/k/eval" --server "$url" --served hospital --quiet 2>"$work/err"
[ $? != 0 ] && grep -q "401" "$work/err" || fail "encrypt-model --server without a token: $(cat "$work/err")"
expect 404 "weights for another tenant" "$other" POST "/v1/models/hospital/weights?keys=$id" "$work/m.ctm"
# the data owner's predictions: the plaintext model's values and classes
VEIL_TOKEN=$owner "$veil" predict --server "$url" --model hospital --keys "$work/k" --in "$work/five.csv" \
    --out "$work/y.csv" --quiet 2>>"$work/client.log" || fail "predict: $(tail -2 "$work/client.log")"
compare "$work/y.csv" "$work/p.csv"
VEIL_TOKEN=$owner "$veil" predict --server "$url" --model hospital --keys "$work/k" --in "$work/five.csv" \
    --out "$work/yc.csv" --argmax --quiet 2>>"$work/client.log" || fail "predict --argmax"
cmp -s "$work/yc.csv" "$work/pc.csv" || fail "the encrypted model's classes differ from the plaintext model's"
# the latency model: the operator's .ctm, found for the data owner's latency keys
VEIL_TOKEN=$owner "$veil" predict --server "$url" --model hospital_lat --keys "$work/kl" --in "$work/five.csv" \
    --out "$work/yl.csv" --quiet 2>>"$work/client.log" || fail "predict, latency: $(tail -2 "$work/client.log")"
compare "$work/yl.csv" "$work/p.csv"
# after a restart the weights are read from the store
stop_server
start_server
VEIL_TOKEN=$owner "$veil" predict --server "$url" --model hospital --keys "$work/k" --in "$work/five.csv" \
    --out "$work/y2.csv" --quiet 2>>"$work/client.log" || fail "predict after a restart"
compare "$work/y2.csv" "$work/p.csv"
# the data owner's delete keeps the bundle (the vendor owns it too); the vendor's removes it and its weights
expect 200 "the owner deletes its keys" "$owner" DELETE "/v1/keys/$id"
check "the weights stay while the vendor holds the bundle" test -e "$work/store/weights/$id.ctm"
expect 200 "the vendor deletes the keys" "$vendor" DELETE "/v1/keys/$id"
check "the weights go with the bundle" test ! -e "$work/store/weights/$id.ctm"
stop_server

# the server's files: none of the weights in the clear (float32 pairs, float64, fixed point 2^20 .. 2^60), the
# search checked on the ONNX file itself
mv "$work/kept.ctm" "$work/store/kept.ctm" # the uploaded weights, as the store held them
/usr/bin/python3 - "$d/model.onnx" "$work/models" "$work/store" <<'EOF' || fail "weights found in the clear in the server's files"
import os, struct, sys
import numpy as np
import onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
inits = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in m.graph.initializer}
arrays = [a.ravel() for a in inits.values()]
w = inits["weight"].ravel() / inits["std"]
arrays.append(np.append(w, inits["bias"].ravel()[0] - np.sum(w * inits["mean"])))
needles = set()
for a in arrays:
    for u, v in zip(a, a[1:]):
        needles.add(struct.pack("<ff", u, v))
    for v in a:
        if abs(v) > 1e-6:
            needles.add(struct.pack("<d", v))
            for s in range(20, 61):
                k = round(v * 2.0 ** s)
                if abs(k) < 2 ** 63:
                    needles.add(struct.pack("<q", k))
assert struct.pack("<ff", arrays[0][0], arrays[0][1]) in open(sys.argv[1], "rb").read(), "the search finds nothing"
files = 0
for top in sys.argv[2:]:
    for root, _, names in os.walk(top):
        for name in names:
            if name.startswith("diabetes"):
                continue  # the model served in the clear
            data = open(os.path.join(root, name), "rb").read()
            files += 1
            found = [n for n in needles if n in data]
            assert not found, f"{name}: {len(found)} encodings of weights"
print(f"{files} files of the server, none of {len(needles)} encodings of the weights")
assert files >= 4
EOF

# a side file beside a plan: the server does not start
mkdir -p "$work/bad"
cp "$work/models/hospital.plan" "$work/bad/"
printf '{"dp_epsilon": 1, "dp_delta": 1e-6}\n' >"$work/bad/hospital.json"
timeout 60 "$veil" serve --models "$work/bad" --store "$work/store_bad" --listen 127.0.0.1:0 --quiet --no-auth \
    >/dev/null 2>"$work/bad.log"
rc=$?
[ "$rc" = 3 ] && grep -q "options are fixed in its plan" "$work/bad.log" || fail "a side file beside a plan: exit $rc: $(head -c 300 "$work/bad.log")"
[ "$fails" = 0 ] && echo "serve encmodel: ok"
exit "$fails"
