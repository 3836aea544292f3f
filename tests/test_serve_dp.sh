#!/usr/bin/env bash
# Output noise in `veil serve` (docs/privacy.md): a model whose side file asks for it ("dp_epsilon", "dp_delta",
# "dp_sensitivity") answers noisy releases; `veil predict` charges the client's key set budget and refuses a
# release over it; bad privacy keys in a side file stop the server at start.
#   test_serve_dp.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
# shellcheck source=serve_lib.sh
. "$src/tests/serve_lib.sh"
/usr/bin/python3 "$src/examples/diabetes/train.py" "$work/d" >/dev/null || exit 1
mkdir -p "$work/models"
cp "$work/d/model.onnx" "$work/models/diabetes.onnx"
printf '{"dp_epsilon": 2, "dp_delta": 1e-6, "dp_sensitivity": 20}\n' >"$work/models/diabetes.json"
start_server --no-auth
[ -n "$port" ] || { echo "FAIL: the server did not start: $(cat "$work/server.log")"; exit 1; }
"$veil" keygen --server "$url" --model diabetes --out "$work/k" --quiet || fail "keygen --server"
"$veil" keygen --model "$work/d/model.onnx" --out "$work/kl" --quiet
pred=("$veil" predict --server "$url" --model diabetes --keys "$work/k" --in "$work/d/test.csv" --quiet)
"${pred[@]}" --out "$work/y.csv" 2>"$work/err"
[ $? = 5 ] && grep -q "no privacy budget" "$work/err" || fail "a release without a budget: $(cat "$work/err")"
check "nothing written without a budget" test ! -e "$work/y.csv"
"$veil" budget --keys "$work/k" --epsilon 2.5 --delta 1e-6 >/dev/null
"${pred[@]}" --out "$work/y.csv" || fail "predict with a budget"
"$veil" plain --model "$work/d/model.onnx" --in "$work/d/test.csv" --out "$work/p.csv"
# sigma of epsilon 2, delta 1e-6, sensitivity 20 (veil eval prints it)
sigma=47.63
check "the answer is noisy with about the sigma of epsilon 2 (47.6)" awk -F, -v s="$sigma" '
    NR == FNR { p[FNR] = $1; next } { d = $1 - p[FNR]; n++; sq += d * d }
    END { sd = sqrt(sq / n); exit !(n == 111 && sd > 0.75 * s && sd < 1.3 * s) }' "$work/p.csv" "$work/y.csv"
check "the release is charged" sh -c "'$veil' budget --keys '$work/k' | grep -q 'in 1 release;'"
"${pred[@]}" --out "$work/y2.csv" 2>"$work/err"
[ $? = 5 ] && grep -q "privacy budget exceeded" "$work/err" || fail "a release over budget: $(cat "$work/err")"
check "nothing written over budget" test ! -e "$work/y2.csv"
stop_server
# bad privacy keys stop the server at start (exit 3), naming the side file
mkdir -p "$work/bad"
cp "$work/d/model.onnx" "$work/bad/diabetes.onnx"
for json in '{"dp_epsilon": -1, "dp_delta": 1e-6}' '{"dp_epsilon": 1}' '{"dp_epsilon": 1000, "dp_delta": 1e-6}' \
    '{"dp_epsilon": 1, "dp_delta": 0.5}' '{"dp_sensitivity": 3}' '{"dp_epsilon": "1", "dp_delta": 1e-6}'; do
    printf '%s\n' "$json" >"$work/bad/diabetes.json"
    timeout 60 "$veil" serve --models "$work/bad" --store "$work/store_bad" --listen 127.0.0.1:0 --quiet --no-auth \
        >/dev/null 2>"$work/bad.log"
    rc=$?
    [ "$rc" = 3 ] && grep -q "diabetes" "$work/bad.log" || fail "side file $json: exit $rc: $(head -c 300 "$work/bad.log")"
done
[ "$fails" = 0 ] && echo "serve dp: ok"
exit "$fails"
