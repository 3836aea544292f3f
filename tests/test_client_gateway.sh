#!/usr/bin/env bash
# Veil's client behind a balancer that loses requests: a gateway answering 502 to the first request of each
# path (as nginx or HAProxy do when the replica they chose dies with the request body, which a streaming
# balancer cannot send again) costs the client a retry, not a failed prediction: every request Veil makes is
# idempotent. A gateway that always answers 502 fails the client after its attempts, with the status named.
#   test_client_gateway.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
source "$src/tests/serve_lib.sh"
mkdir -p "$work/models"
VEIL_TOKEN=$("$veil" token add --store "$work/store" --tenant tester 2>/dev/null | tail -1)
export VEIL_TOKEN
/usr/bin/python3 "$src/examples/hospital/train.py" "$work/h" >/dev/null
cp "$work/h/model.onnx" "$work/models/breast_cancer.onnx"
head -6 "$work/h/test.csv" >"$work/five.csv"
start_server
gateway() { # gateway NAME [--always]: a flaky gateway in front of the server; sets gw_url
    : >"$work/$1.port"
    /usr/bin/python3 "$src/tests/flaky_gateway.py" "$url" "${@:2}" >"$work/$1.port" 2>"$work/$1.log" &
    bg_pids+=($!)
    for _ in $(seq 100); do
        grep -q "listening on port" "$work/$1.port" 2>/dev/null && break
        sleep 0.1
    done
    gw_url="http://127.0.0.1:$(awk '{print $4}' "$work/$1.port")"
}

"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/ka" --quiet
"$veil" plain --model "$work/h/model.onnx" --in "$work/five.csv" --out "$work/plain.csv"
gateway flaky
check "predictions through a gateway that loses each path's first request" \
    "$veil" predict --server "$gw_url" --model breast_cancer --keys "$work/ka" --in "$work/five.csv" \
    --out "$work/through.csv" --quiet
check "the gateway answered 502 (so the check above could fail)" grep -q '^502 ' "$work/flaky.log"
check "the predictions within 1e-3 of the plaintext model" \
    awk -F, 'NR == FNR { p[NR] = $1; next } { d = $1 - p[FNR]; if (d < 0) d = -d; if (d > 1e-3) bad++ } END { exit FNR < 5 || bad > 0 }' \
    "$work/plain.csv" "$work/through.csv"

gateway dead --always
"$veil" predict --server "$gw_url" --model breast_cancer --keys "$work/ka" --in "$work/five.csv" \
    --out "$work/dead.csv" --quiet 2>"$work/dead.err"
rc=$?
check "a gateway that always answers 502: the client fails" test "$rc" -ne 0
check "... naming the status" grep -q '502' "$work/dead.err"
check "... after its attempts (4), not forever" test "$(grep -c '^502' "$work/dead.log")" -le 4
check "... and writes no predictions" test ! -e "$work/dead.csv"

[ "$fails" = 0 ] && echo "client_gateway: ok" || { echo "client_gateway: $fails failure(s)"; exit 1; }
