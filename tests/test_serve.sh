#!/usr/bin/env bash
# `veil serve` on loopback: end to end against the local evaluation, bad input, a load of 16 concurrent
# clients, kill -9 during uploads and predictions, and models served with a side file of options. Every loop
# is bounded in count and in time.
#   test_serve.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
source "$src/tests/serve_lib.sh"
# status METHOD PATH [BODY_FILE]: prints the HTTP status, the body to $work/body
status() {
    local data=()
    [ $# -ge 3 ] && data=(--data-binary "@$3" -H "Content-Type: application/octet-stream")
    curl -s -H "Authorization: Bearer $VEIL_TOKEN" -o "$work/body" -w '%{http_code}' -X "$1" "${data[@]}" --max-time 60 "$url$2"
}
expect_status() { # expect_status CODE WHAT METHOD PATH [BODY]: the code and a JSON error body
    local got
    got=$(status "${@:3}")
    if [ "$got" != "$1" ]; then
        echo "FAIL: $2: HTTP $got, wanted $1 ($(head -c 300 "$work/body"))"
        fails=$((fails + 1))
    elif [ "${1:0:1}" = 4 ] && ! grep -q '"error":' "$work/body"; then
        echo "FAIL: $2: no JSON error"
        fails=$((fails + 1))
    fi
    cp "$work/body" "$work/answer"
    [ "$(status GET /healthz)" = 200 ] || { echo "FAIL: unhealthy after $2"; fails=$((fails + 1)); }
    cp "$work/answer" "$work/body"
}

mkdir -p "$work/models"
# one tenant: its token in VEIL_TOKEN (veil predict, keygen --server) and in every curl's Authorization header
VEIL_TOKEN=$("$veil" token add --store "$work/store" --tenant tester 2>/dev/null | tail -1)
export VEIL_TOKEN
/usr/bin/python3 "$src/examples/hospital/train.py" "$work/h" >/dev/null
/usr/bin/python3 "$src/examples/diabetes/train.py" "$work/d" >/dev/null
cp "$work/h/model.onnx" "$work/models/breast_cancer.onnx"
cp "$work/d/model.onnx" "$work/models/diabetes.onnx"
head -6 "$work/h/test.csv" >"$work/h/five.csv"
start_server --timeout 3 --max-batches 1

# --- end to end: the same ciphertext in gives the same ciphertext out as `veil eval` -----------------
"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/ka" --quiet
"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/kb" --quiet
"$veil" keygen --server "$url" --model diabetes --out "$work/kd" --quiet
"$veil" encrypt --keys "$work/ka" --in "$work/h/test.csv" --out "$work/xa.ct"
"$veil" encrypt --keys "$work/kb" --in "$work/h/test.csv" --out "$work/xb.ct"
"$veil" encrypt --keys "$work/kd" --in "$work/d/test.csv" --out "$work/xd.ct"
"$veil" encrypt --keys "$work/ka" --in "$work/h/five.csv" --out "$work/five.ct"
expect_status 201 "upload keys" POST /v1/keys "$work/ka/eval/eval.keys"
ida=$(sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/body")
expect_status 200 "upload the same keys again" POST /v1/keys "$work/ka/eval/eval.keys"
expect_status 201 "upload other keys" POST /v1/keys "$work/kb/eval/eval.keys"
idb=$(sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/body")
expect_status 201 "upload diabetes keys" POST /v1/keys "$work/kd/eval/eval.keys"
idd=$(sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/body")
expect_status 200 "predict" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xa.ct"
cp "$work/body" "$work/ya_http.ct"
"$veil" eval --model "$work/h/model.onnx" --eval-keys "$work/ka/eval" --in "$work/xa.ct" --out "$work/ya_local.ct" --quiet
check "the server's answer equals veil eval's, byte for byte" cmp -s "$work/ya_http.ct" "$work/ya_local.ct"
"$veil" decrypt --keys "$work/ka" --in "$work/ya_http.ct" --out "$work/ya.csv"
"$veil" plain --model "$work/h/model.onnx" --in "$work/h/test.csv" --out "$work/pa.csv"
check "decrypted predictions within 1e-3 of the plaintext model" \
    awk -F, 'NR == FNR { p[NR] = $1; next } { d = $1 - p[FNR]; if (d < 0) d = -d; if (d > 1e-3) bad++ } END { exit bad > 0 }' \
    "$work/pa.csv" "$work/ya.csv"
"$veil" predict --server "$url" --model breast_cancer --keys "$work/ka" --in "$work/h/test.csv" --out "$work/yp.csv" --quiet
check "veil predict agrees with the local decryption (fresh encryptions: within 1e-6)" \
    awk -F, 'NR == FNR { p[NR] = $1; next } { d = $1 - p[FNR]; if (d < 0) d = -d; if (d > 1e-6) bad++ } END { exit bad > 0 || FNR != 171 }' \
    "$work/ya.csv" "$work/yp.csv"
"$veil" predict --server "$url" --model diabetes --keys "$work/kd" --in "$work/d/test.csv" --out "$work/yd.csv" --quiet
"$veil" plain --model "$work/d/model.onnx" --in "$work/d/test.csv" --out "$work/pd.csv"
check "diabetes over HTTP within 1e-4 (keys from the server's plan)" \
    awk -F, 'NR == FNR { p[NR] = $1; next } { d = $1 - p[FNR]; if (d < 0) d = -d; if (d > 1e-4) bad++ } END { exit bad > 0 }' \
    "$work/pd.csv" "$work/yd.csv"

# --- bad input: a 4xx JSON error each, the server healthy after ------------------------------------------
head -c 4096 /dev/urandom >"$work/garbage"
head -c 100000 "$work/ka/eval/eval.keys" >"$work/keys_truncated"
cp "$work/ka/eval/eval.keys" "$work/keys_flipped"
# one bit changed (writing a fixed byte left the file unchanged when the byte was already that value: 1 run in 256)
/usr/bin/python3 -c 'import sys; p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[5000] ^= 0x10; open(p, "wb").write(b)' \
    "$work/keys_flipped"
head -c 300000 "$work/xa.ct" >"$work/ct_truncated"
cp "$work/xa.ct" "$work/ct_flipped"
printf '\x00\x00\x00\x00' | dd of="$work/ct_flipped" bs=1 seek=200 conv=notrunc 2>/dev/null
head -c 20000000 /dev/zero >"$work/huge"
expect_status 400 "garbage keys" POST /v1/keys "$work/garbage"
expect_status 400 "truncated keys" POST /v1/keys "$work/keys_truncated"
expect_status 400 "bit-flipped keys" POST /v1/keys "$work/keys_flipped"
expect_status 422 "a secret key as evaluation keys" POST /v1/keys "$work/ka/secret.key"
grep -q "secret key" "$work/body" || { echo "FAIL: the secret-key refusal does not say so"; fails=$((fails + 1)); }
expect_status 400 "garbage ciphertexts" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/garbage"
expect_status 400 "truncated ciphertexts" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/ct_truncated"
expect_status 400 "bit-flipped ciphertexts" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/ct_flipped"
expect_status 409 "ciphertexts of another key set" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/xb.ct"
expect_status 409 "keys of another model" POST "/v1/models/breast_cancer/predict?keys=$idd" "$work/xd.ct"
expect_status 409 "ciphertexts of another model" POST "/v1/models/diabetes/predict?keys=$idd" "$work/xa.ct"
expect_status 404 "an unknown model" POST "/v1/models/nope/predict?keys=$ida" "$work/xa.ct"
expect_status 404 "an unknown key id" POST "/v1/models/breast_cancer/predict?keys=0123456789abcdef0123456789abcdef" "$work/xa.ct"
expect_status 400 "a malformed key id" POST "/v1/models/breast_cancer/predict?keys=../../etc" "$work/xa.ct"
expect_status 413 "an oversized body" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/huge"
expect_status 404 "an unknown endpoint" GET /v1/nothing
expect_status 405 "a known path with the wrong method" GET /v1/keys
# a slow client: headers and part of a body, then silence; the server drops it after --timeout 3
exec 3<>"/dev/tcp/127.0.0.1/${url##*:}"
printf 'POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc' >&3
expect_status 200 "health while a client stalls" GET /healthz
sleep 4
check "the stalled connection was closed" bash -c "! timeout 2 cat <&3 >/dev/null 2>&1 || true"
exec 3<&- 3>&-
expect_status 200 "delete keys" DELETE "/v1/keys/$idb"
expect_status 404 "deleted keys are gone" GET "/v1/keys/$idb"
expect_status 404 "predict with deleted keys" POST "/v1/models/breast_cancer/predict?keys=$idb" "$work/xb.ct"

# --- load: 16 concurrent clients x 20 predictions, every answer the expected bytes ---------------------
expect_status 200 "reference prediction" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/five.ct"
want=$(sha256sum <"$work/body" | cut -c1-64)
seq 320 | timeout 300 xargs -P 16 -I{} curl -s -H "Authorization: Bearer $VEIL_TOKEN" -o "$work/load.{}" -w '%{http_code} %{time_total}\n' --max-time 60 \
    --data-binary "@$work/five.ct" "$url/v1/models/breast_cancer/predict?keys=$ida" >"$work/load.txt"
ok=$(awk '$1 == 200' "$work/load.txt" | wc -l)
same=0
for f in "$work"/load.[0-9]*; do [ "$(sha256sum <"$f" | cut -c1-64)" = "$want" ] && same=$((same + 1)); done
sort -g -k2 "$work/load.txt" | awk -v ok="$ok" -v same="$same" '{ t[NR] = $2 } END {
    printf "load: %d requests, %d answered 200, %d with the expected bytes, p50 %.1f ms, p99 %.1f ms\n",
           NR, ok, same, 1000 * t[int(NR * 0.5)], 1000 * t[int(NR * 0.99)] }'
check "every loaded request answered correctly" test "$ok" = 320 -a "$same" = 320

# --- faults: kill -9 during uploads and predictions, then restart ----------------------------------------
# two tenants upload (odd uploads the tester's, even ones a second tenant's): after the restart each
# acknowledged bundle is its uploader's and nobody else's
token_b=$("$veil" token add --store "$work/store" --tenant second 2>/dev/null | tail -1)
token_of() { if [ $(($1 % 2)) = 1 ]; then echo "$VEIL_TOKEN"; else echo "$token_b"; fi; }
other_of() { if [ $(($1 % 2)) = 1 ]; then echo "$token_b"; else echo "$VEIL_TOKEN"; fi; }
for i in $(seq 10); do "$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/kf$i" --quiet; done
(for i in $(seq 10); do
     code=$(curl -s -H "Authorization: Bearer $(token_of "$i")" -o "$work/up$i" -w '%{http_code}' --max-time 30 --data-binary "@$work/kf$i/eval/eval.keys" "$url/v1/keys")
     echo "$i $code" >>"$work/acks.txt"
 done) &
uploader=$!
(for i in $(seq 30); do curl -s -H "Authorization: Bearer $VEIL_TOKEN" -o /dev/null --max-time 30 --data-binary "@$work/xa.ct" \
     "$url/v1/models/breast_cancer/predict?keys=$ida"; done) &
predictor=$!
sleep 0.15
kill -9 "$server_pid"
wait "$server_pid" 2>/dev/null
wait "$uploader" "$predictor" 2>/dev/null
start_server
acked=0
while read -r i code; do
    case "$code" in 200 | 201)
        acked=$((acked + 1))
        id=$(sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/up$i")
        VEIL_TOKEN=$(token_of "$i") expect_status 200 "acknowledged upload $i survives kill -9" GET "/v1/keys/$id"
        VEIL_TOKEN=$(other_of "$i") expect_status 404 "upload $i is not the other tenant's after the restart" GET "/v1/keys/$id"
        "$veil" encrypt --keys "$work/kf$i" --in "$work/h/five.csv" --out "$work/f$i.ct"
        VEIL_TOKEN=$(token_of "$i") expect_status 200 "acknowledged keys $i load and predict" POST "/v1/models/breast_cancer/predict?keys=$id" "$work/f$i.ct"
        ;;
    esac
done <"$work/acks.txt"
echo "faults: $acked of 10 uploads (two tenants) acknowledged before kill -9, all present after the restart, each its uploader's only"
check "no partial file is visible in the store" bash -c "! ls '$work/store/keys' | grep -v '^[0-9a-f]\{32\}\.keys$'"
expect_status 200 "keys uploaded before the crash survive" POST "/v1/models/breast_cancer/predict?keys=$ida" "$work/five.ct"
expect_status 200 "metrics" GET /metrics
grep -q 'veil_stored_keys' "$work/body" || { echo "FAIL: metrics"; fails=$((fails + 1)); }

# --- graceful shutdown: SIGTERM finishes the request in flight ---------------------------------------------
# the upload is slowed (2.6 MB at 4 MB/s) so that the request is surely in flight when SIGTERM comes
curl -s -H "Authorization: Bearer $VEIL_TOKEN" -o "$work/inflight" -w '%{http_code}' --max-time 60 --limit-rate 4M --data-binary "@$work/xa.ct" \
    "$url/v1/models/breast_cancer/predict?keys=$ida" >"$work/inflight.code" &
client=$!
sleep 0.3
kill -TERM "$server_pid"
wait "$client"
wait "$server_pid"
check "SIGTERM: the server exits 0" test $? = 0
server_pid=""
check "SIGTERM: the request in flight got its answer" test "$(cat "$work/inflight.code")" = 200

# --- models that need options: a side file NAME.json beside NAME.onnx ---------------------------------------
# iris through an inner Tanh: one copy calibrated on half the flowers, one with a range, a degree and the
# inputs' range its plan is made for; both served, and as `veil plain` with the same options computes them
models="$work/side"
mkdir -p "$models"
/usr/bin/python3 - "$models" <<'PY'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_iris
from sklearn.neural_network import MLPClassifier
out = sys.argv[1]
x, y = load_iris(return_X_y=True)
mean, std = x.mean(axis=0), x.std(axis=0)
clf = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", alpha=1.0, max_iter=2000, random_state=0)
clf.fit((x - mean) / std, y)
f32 = np.float32
inits = [numpy_helper.from_array((clf.coefs_[0] / std[:, None]).astype(f32), "w1"),
         numpy_helper.from_array((clf.intercepts_[0] - (mean / std) @ clf.coefs_[0]).astype(f32), "b1"),
         numpy_helper.from_array(clf.coefs_[1].astype(f32), "w2"),
         numpy_helper.from_array(clf.intercepts_[1].astype(f32), "b2")]
nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="hidden"),
         helper.make_node("Tanh", ["h"], ["t"], name="tanh"),
         helper.make_node("Gemm", ["t", "w2", "b2"], ["logits"], name="out")]
graph = helper.make_graph(nodes, "iris_tanh", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(model)
onnx.save(model, f"{out}/iris.onnx")
onnx.save(model, f"{out}/iris_box.onnx")
np.savetxt(f"{out}/iris.calib.csv", x[::2], delimiter=",", fmt="%.17g")
np.savetxt(f"{out}/../iris_test.csv", x[1::2], delimiter=",", fmt="%.17g")
PY
printf '{"calibrate": "iris.calib.csv", "degree": 15, "server_sigmoid": false, "force_approximation": false}\n' \
    >"$models/iris.json"
printf '{"range": [-13, 15], "degree": 31, "input_range": [0, 8]}\n' >"$models/iris_box.json"
start_server
close_to() { # close_to WHAT PLAIN.csv GOT.csv: every value within 1e-3 (1 + max |plain|), as many rows
    check "$1" awk -F, 'NR == FNR { for (i = 1; i <= NF; i++) { p[NR, i] = $i; a = $i < 0 ? -$i : $i; if (a > m) m = a }
        n = NR; next } { for (i = 1; i <= NF; i++) { d = $i - p[FNR, i]; if (d < 0) d = -d; if (d > 1e-3 * (1 + m)) bad++ } }
        END { exit bad > 0 || FNR != n || n == 0 }' "$2" "$3"
}
"$veil" keygen --server "$url" --model iris --out "$work/ki" --quiet
"$veil" predict --server "$url" --model iris --keys "$work/ki" --in "$work/iris_test.csv" --out "$work/yi.csv" --quiet
"$veil" plain --model "$models/iris.onnx" --calibrate "$models/iris.calib.csv" --in "$work/iris_test.csv" \
    --out "$work/pi.csv"
close_to "an inner Tanh served with a calibration side file, as veil plain --calibrate" "$work/pi.csv" "$work/yi.csv"
"$veil" encrypt --keys "$work/ki" --in "$work/iris_test.csv" --out "$work/xi.ct"
expect_status 200 "keys of the server's plan, uploaded by predict" POST /v1/keys "$work/ki/eval/eval.keys"
idi=$(sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/body")
expect_status 200 "predict with a model of a side file" POST "/v1/models/iris/predict?keys=$idi" "$work/xi.ct"
cp "$work/body" "$work/yi_http.ct"
"$veil" eval --model "$models/iris.onnx" --calibrate "$models/iris.calib.csv" --eval-keys "$work/ki/eval" \
    --in "$work/xi.ct" --out "$work/yi_local.ct" --quiet
check "the side file's options are veil eval's: the same bytes" cmp -s "$work/yi_http.ct" "$work/yi_local.ct"
"$veil" keygen --server "$url" --model iris_box --out "$work/kib" --quiet
"$veil" predict --server "$url" --model iris_box --keys "$work/kib" --in "$work/iris_test.csv" --out "$work/yib.csv" \
    --quiet
"$veil" plain --model "$models/iris_box.onnx" --range -13:15 --degree 31 --in "$work/iris_test.csv" --out "$work/pib.csv"
close_to "an inner Tanh served with a range and a degree, as veil plain --range --degree" "$work/pib.csv" "$work/yib.csv"
printf '1,2,3,9\n' >"$work/iris_out.csv"
"$veil" encrypt --keys "$work/kib" --in "$work/iris_out.csv" --out "$work/iris_out.ct" 2>/dev/null
check "keys of the side file's input_range [0, 8] refuse a 9" test $? = 3 -a ! -e "$work/iris_out.ct"
kill -TERM "$server_pid"
wait "$server_pid"
server_pid=""
unset models
# a bad side file stops the server at start (exit 3), naming the file
mkdir -p "$work/bad"
cp "$work/side/iris.onnx" "$work/side/iris.calib.csv" "$work/bad/"
bad_side() { # bad_side WHAT JSON
    printf '%s\n' "$2" >"$work/bad/iris.json"
    timeout 60 "$veil" serve --models "$work/bad" --store "$work/store_bad" --listen 127.0.0.1:0 --quiet \
        >/dev/null 2>"$work/bad.log"
    local rc=$?
    if [ "$rc" != 3 ] || ! grep -q "bad/iris.json" "$work/bad.log"; then
        echo "FAIL: a side file with $1: exit $rc, wanted 3 and a message naming it: $(head -c 300 "$work/bad.log")"
        fails=$((fails + 1))
    fi
}
bad_side "an unknown key" '{"calibrate": "iris.calib.csv", "calibration": "iris.calib.csv"}'
bad_side "a path escaping the folder" '{"calibrate": "../side/iris.calib.csv"}'
bad_side "an absolute path" "{\"calibrate\": \"$work/side/iris.calib.csv\"}"
bad_side "bad JSON" '{"calibrate": "iris.calib.csv",'
bad_side "a value of the wrong type" '{"calibrate": "iris.calib.csv", "degree": "15"}'
bad_side "a key twice" '{"calibrate": "iris.calib.csv", "degree": 15, "degree": 31}'
bad_side "an empty range" '{"range": [2, 2]}'
bad_side "no options for the Tanh" '{}'

# --- HTTPS (when openssl can make a self-signed certificate) ------------------------------------------
if command -v openssl >/dev/null && openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/key.pem" \
    -out "$work/cert.pem" -days 1 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null; then
    start_server --tls-cert "$work/cert.pem" --tls-key "$work/key.pem"
    https_url="https://127.0.0.1:${url##*:}"
    "$veil" predict --server "$https_url" --cacert "$work/cert.pem" --model breast_cancer --keys "$work/ka" \
        --in "$work/h/five.csv" --out "$work/tls.csv" --quiet
    check "predictions over HTTPS" test "$(wc -l <"$work/tls.csv")" = 5
    "$veil" predict --server "$https_url" --model breast_cancer --keys "$work/ka" --in "$work/h/five.csv" \
        --out "$work/untrusted.csv" --quiet 2>/dev/null
    check "an untrusted certificate is refused" test $? != 0 -a ! -e "$work/untrusted.csv"
    kill -TERM "$server_pid"
    wait "$server_pid"
    server_pid=""
else
    echo "https: skipped (no openssl)"
fi

[ "$fails" = 0 ] && echo "serve: ok"
exit "$fails"
