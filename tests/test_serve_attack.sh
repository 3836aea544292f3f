#!/usr/bin/env bash
# `veil serve` under attack, on loopback (issue 21): an attacker (the tenant mallory, and sockets from 127.0.0.2)
# and a legitimate tenant (alice, from 127.0.0.1). The request rate per tenant (429 + Retry-After, then
# recovery); predictions per tenant at once; 300 slow connections from another address while alice gets
# /healthz and a prediction in under 1 s; the per-address cap; the whole-request deadline closing connections
# that trickle a header line every second; every malformed request answered with its code or closed within a
# bound. alice's predictions succeed throughout. Every loop and wait is bounded.
#   test_serve_attack.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
attack="/usr/bin/python3 $src/tests/serve_attack.py"
source "$src/tests/serve_lib.sh"

under() { awk -v t="$1" -v b="$2" 'BEGIN { exit !(t < b) }'; } # under SECONDS BOUND

mkdir -p "$work/models"
/usr/bin/python3 "$src/examples/hospital/train.py" "$work/h" >/dev/null
cp "$work/h/model.onnx" "$work/models/breast_cancer.onnx"
cp "$work/h/train.csv" "$work/models/breast_cancer.calib.csv"
printf '{"calibrate": "breast_cancer.calib.csv"}\n' >"$work/models/breast_cancer.json"
head -6 "$work/h/test.csv" >"$work/five.csv"
alice=$("$veil" token add --store "$work/store" --tenant alice 2>/dev/null | tail -1)
mallory=$("$veil" token add --store "$work/store" --tenant mallory 2>/dev/null | tail -1)
"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/ka" --quiet
"$veil" encrypt --keys "$work/ka" --in "$work/five.csv" --out "$work/xa.ct"
"$veil" keygen --model "$work/h/model.onnx" --calibrate "$work/h/train.csv" --out "$work/km" --quiet
"$veil" encrypt --keys "$work/km" --in "$work/five.csv" --out "$work/xm.ct"

# --- the defaults do not hurt normal use ----------------------------------------------------------------------
start_server
expect 201 "alice uploads her keys" "$alice" POST /v1/keys "$work/ka/eval/eval.keys"
ida=$(sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/body")
predict="/v1/models/breast_cancer/predict?keys=$ida"
for i in $(seq 20); do expect 200 "alice's prediction $i of 20 under the default limits" "$alice" POST "$predict" "$work/xa.ct"; done
legit "under the default limits"
stop_server

start_server --tenant-rps 2 --tenant-burst 10 --tenant-max-predictions 1 --max-connections-per-address 8 \
    --request-deadline 4

# --- the request rate per tenant: 429 with Retry-After past the burst, then recovery ----------------------------
urls=()
for i in $(seq 15); do urls+=("$url/v1/models"); done
codes=$(curl -s -D "$work/headers" -o /dev/null -w '%{http_code} ' -H "Authorization: Bearer $mallory" --max-time 60 "${urls[@]}")
n200=$(echo $codes | tr ' ' '\n' | grep -c '^200$')
check "mallory's burst of 15 requests at once: about 10 answered ($codes)" test "$n200" -ge 10 -a "$n200" -le 12
check "mallory's burst of 15 requests at once: then 429 ($codes)" test "${codes% }" != "${codes%429 }"
check "the rate's 429 carries Retry-After" grep -qi '^Retry-After: [1-9]' "$work/headers"
expect 429 "mallory past her rate" "$mallory" GET /v1/models
check "the rate's 429 is a JSON error naming the limit" grep -q 'tenant-rps' "$work/body"
retry=$(tr -d '\r' <"$work/headers" | awk 'tolower($1) == "retry-after:" { print $2 + 0 }' | head -1)
expect 200 "alice is not limited by mallory's rate" "$alice" POST "$predict" "$work/xa.ct"
check "Retry-After is 1 s or 2 at 2 requests a second (${retry:-none})" test "${retry:-0}" -ge 1 -a "${retry:-0}" -le 2
sleep "${retry:-1}"
expect 200 "mallory after Retry-After" "$mallory" GET /v1/models
# Veil's client waits out a 429's Retry-After itself: a whole veil predict past the rate (a key check, an
# upload, a prediction) still succeeds
for _ in $(seq 12); do as "$mallory" GET /v1/models >/dev/null; done
VEIL_TOKEN=$mallory "$veil" predict --server "$url" --model breast_cancer --keys "$work/km" --in "$work/five.csv" \
    --out "$work/mallory.csv" --quiet 2>>"$work/client.log"
check "veil predict past the rate waits out Retry-After and succeeds" test "$(wc -l <"$work/mallory.csv" 2>/dev/null)" = 5

# --- predictions per tenant at once ------------------------------------------------------------------------------
sleep 1.5 # mallory's bucket: room for the requests below (2 a second)
# mallory predicts with keys of her own (another tenant's key id is unknown to her: 404 from the headers,
# before any prediction starts)
curl -s -o "$work/upm" -H "Authorization: Bearer $mallory" --max-time 60 --data-binary "@$work/km/eval/eval.keys" "$url/v1/keys"
idm=$(sed 's/.*"id":"\([0-9a-f]*\)".*/\1/' "$work/upm")
predict_m="/v1/models/breast_cancer/predict?keys=$idm"
sleep 1
$attack hold "$port" "$mallory" "$predict_m" 100000 3 >"$work/hold.txt" &
holder=$!
for _ in $(seq 50); do grep -q holding "$work/hold.txt" && break; sleep 0.1; done
sleep 0.3
expect 429 "mallory's second prediction at once past --tenant-max-predictions 1" "$mallory" POST "$predict_m" "$work/xm.ct"
check "the predictions' 429 carries Retry-After" grep -qi '^Retry-After: [1-9]' "$work/headers"
check "the predictions' 429 names the limit" grep -q 'tenant-max-predictions' "$work/body"
expect 200 "alice predicts while mallory's prediction is open" "$alice" POST "$predict" "$work/xa.ct"
wait "$holder"
sleep 0.5
expect 200 "mallory's prediction once the first is over: admitted" "$mallory" POST "$predict_m" "$work/xm.ct"
expect 404 "mallory with alice's key id: unknown to her" "$mallory" POST "$predict" "$work/xa.ct"

# --- 300 slow connections from 127.0.0.2: the per-address cap, alice served at once, the deadline -----------------
sleep 2.5 # alice's bucket refilled
timeout 60 $attack slow "$port" 300 1 7 "$alice" breast_cancer "$ida" "$work/xa.ct" >"$work/slow.txt" 2>&1
cat "$work/slow.txt" | grep -v open_at
read -r _ hst ht < <(grep '^healthz ' "$work/slow.txt")
read -r _ pst pt < <(grep '^predict ' "$work/slow.txt")
check "/healthz under 300 slow connections: 200 (${hst:-none})" test "${hst:-}" = 200
check "/healthz under 300 slow connections in under 1 s (${ht:-none} s)" under "${ht:-99}" 1
check "a prediction under 300 slow connections: 200 (${pst:-none})" test "${pst:-}" = 200
check "a prediction under 300 slow connections in under 1 s (${pt:-none} s)" under "${pt:-99}" 1
check "the server holds at most 8 connections of 127.0.0.2 ($(grep '^slow_open' "$work/slow.txt"))" \
    test "$(awk '$1 == "slow_open" { print $2 }' "$work/slow.txt")" = 8
# they trickle a header line every second (never idle for --timeout): closed by the deadline, 4 s after they began
# (open_at: seconds since the first connection opened; the server holds the first 8)
check "the slow connections are still open before the deadline" \
    test "$(awk '$1 == "open_at" && $2 < 3.5 && $3 != 8' "$work/slow.txt" | wc -l)" = 0
check "the deadline closes every slow connection by 5.5 s ($(awk '$1 == "open_at" && $2 >= 5.5' "$work/slow.txt" | head -1))" \
    test "$(awk '$1 == "open_at" && $2 >= 5.5 && $3 != 0' "$work/slow.txt" | wc -l)" = 0 -a \
    "$(awk '$1 == "open_at" && $2 >= 5.5' "$work/slow.txt" | wc -l)" -gt 0
expect 200 "metrics" "$alice" GET /metrics
check "the deadline's closes are counted" grep -q '^veil_deadline_closes_total [1-9]' "$work/body"
legit "after the slow connections"

# --- malformed requests: their code, or a prompt close (bound: 2 s; binary garbage that never makes a request
# line: closed 2 s after it arrived, before the 4 s deadline, bound 3.5 s) -----------------------------------------
while read -r name want bound; do
    got=$(timeout 30 $attack raw "$port" "$name" 8)
    set -- $got
    case "$want" in
    closed) ok=$([ "$1" = closed ] && echo 1) ;;
    *) ok=$([ "${2:-}" = "$want" ] && echo 1) ;;
    esac
    check "$name: wanted $want within $bound s, got '$got'" test "${ok:-}" = 1
    check "$name: within $bound s ('$got')" under "${got##* }" "$bound"
done <<'CASES'
args500 closed 2
args20 400 2
garbage 400 2
garbage_binary closed 3.5
te_gzip 501 2
two_lengths 400 2
length_and_chunked 400 2
no_length 411 2
long_header 431 2
many_headers 431 2
long_url 414 2
CASES
# garbage that keeps coming (a bounded loop: 64 bytes every 0.1 s, 8 s at most): closed as garbage, not at the deadline
got=$(timeout 30 $attack stream "$port" 8)
check "streamed binary garbage: closed within 3.5 s (deadline 4 s), got '$got'" bash -c "[ '${got%% *}' = closed ]"
check "streamed binary garbage: within 3.5 s ('$got')" under "${got##* }" 3.5
expect 200 "metrics after the garbage" "$alice" GET /metrics
check "the garbage closes are counted as such (2: one sent at once, one streamed)" \
    grep -q '^veil_garbage_closes_total [2-9]' "$work/body"
expect 200 "healthy after the malformed requests" "$alice" GET /healthz
legit "after the malformed requests"
stop_server
[ "$fails" = 0 ] || cat "$work/server.log"

[ "$fails" = 0 ] && echo "serve attack: ok"
exit "$fails"
