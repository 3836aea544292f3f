#!/usr/bin/env bash
# Bootstrapping through the veil CLI on the small insecure test set (--security insecure-test --bootstrap): the
# plan shows where it bootstraps and its exact key bytes, the four steps return what `veil plain` computes,
# and the refusals are clear.
#   test_cli_boot.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$src/tests/cli_lib.sh"
# digits, 64 -> 8 -> 8 -> 10 with squares: 5 levels, one more than the test set's 4 after a bootstrap
/usr/bin/python3 "$src/examples/deep/train.py" "$work/m" 2 8 square >/dev/null || { echo "FAIL: train.py"; exit 1; }
m="$work/m/model.onnx"
head -16 "$work/m/test.csv" >"$work/x.csv"
opts=(--security insecure-test --bootstrap --input-range 0:1 --batch 16)

"$veil" plan --model "$m" "${opts[@]}" >"$work/plan.txt" || fail "plan: $(cat "$work/plan.txt")"
grep -q "^bootstraps:     1 point, each back to level 4; 8 bootstraps per batch of 16" "$work/plan.txt" ||
    fail "plan: no bootstrap shown: $(cat "$work/plan.txt")"
grep -q "^  after stage 3 (Gemm): values |v| <= " "$work/plan.txt" || fail "plan: the point: $(cat "$work/plan.txt")"
grep -q "^bootstrap keys: " "$work/plan.txt" || fail "plan: the keys' cost"

# keys made with the plan's options (their bytes the plan's exact figure), then encrypt, eval and decrypt against
# `veil plain`: round_trip P PLAN.txt OPTIONS..., the files $work/P* (inputs P x.csv, keys P k, results P y.csv)
round_trip() {
    local p=$1 plan=$2 bytes
    shift 2
    run "$veil" keygen --model "$m" "$@" --out "$work/${p}k"
    bytes=$(sed -n 's/^eval keys: .*(\([0-9]*\) bytes, exact).*/\1/p' "$plan")
    [ "$bytes" = "$(stat -c %s "$work/${p}k/eval/eval.keys")" ] ||
        fail "$plan: the plan's eval keys ($bytes) are not the file's"
    run "$veil" encrypt --keys "$work/${p}k" --in "$work/${p}x.csv" --out "$work/${p}x.ct"
    run "$veil" eval --model "$m" --eval-keys "$work/${p}k/eval" --in "$work/${p}x.ct" --out "$work/${p}y.ct"
    "$veil" decrypt --keys "$work/${p}k" --in "$work/${p}y.ct" --out "$work/${p}y.csv" || fail "decrypt ($plan)"
    "$veil" plain --model "$m" --in "$work/${p}x.csv" --out "$work/${p}p.csv" || fail "plain"
    compare "$work/${p}y.csv" "$work/${p}p.csv" 0.05
}
round_trip "" "$work/plan.txt" "${opts[@]}"
"$veil" decrypt --keys "$work/k" --in "$work/y.ct" --out "$work/ya.csv" --argmax || fail "decrypt --argmax"
"$veil" plain --model "$m" --in "$work/x.csv" --out "$work/pa.csv" --argmax || fail "plain --argmax"
cmp -s "$work/ya.csv" "$work/pa.csv" || fail "the classes differ from the plaintext program's"

grep -q "^packing choice: latency ~.* s per sample; throughput ~.* s per batch of 16 samples" "$work/plan.txt" ||
    fail "plan: the packings' costs: $(cat "$work/plan.txt")"

# the latency packing: one sample per ciphertext in the periodic layout, one sparse bootstrap of 64 slots per point
lopts=(--security insecure-test --bootstrap --input-range 0:1 --latency)
"$veil" plan --model "$m" "${lopts[@]}" >"$work/lplan.txt" || fail "plan --latency: $(cat "$work/lplan.txt")"
grep -q "^bootstraps:     1 point, each back to level 4; 1 bootstrap per sample (one sparse bootstrap of 64 slots" \
    "$work/lplan.txt" || fail "plan --latency: no bootstrap shown: $(cat "$work/lplan.txt")"
grep -q "^packing choice: latency ~.*throughput pays from [0-9]* samples on" "$work/lplan.txt" ||
    fail "plan --latency: the packings' costs: $(cat "$work/lplan.txt")"
head -4 "$work/x.csv" >"$work/lx.csv"
round_trip l "$work/lplan.txt" "${lopts[@]}"
# the throughput bundle's inputs with the latency keys: refused
expect 4 "under other keys" "$veil" eval --model "$m" --eval-keys "$work/lk/eval" --in "$work/x.ct" --out "$work/out.bad"

# refusals
expect 3 "insecure test set, VEIL_SECURITY_NONE, only for bootstrapping" "$veil" plan --model "$m" \
    --security insecure-test --input-range 0:1
expect 3 "needs the inputs' range" "$veil" plan --model "$m" --security insecure-test --bootstrap
expect 3 "narrow the inputs' range" "$veil" plan --model "$m" --security insecure-test --bootstrap \
    --input-range -1000:1000
expect 3 "not saved as a file" "$veil" plan --model "$m" "${opts[@]}" --out "$work/out.bad"
# the evaluation keys of a leveled plan for this model: no bootstrapping schedule, too few levels
run "$veil" keygen --model "$m" --input-range 0:1 --batch 16 --out "$work/lev"
expect 4 "another parameter set" "$veil" eval --model "$m" --eval-keys "$work/lev/eval" \
    --in "$work/x.ct" --out "$work/out.bad"
[ "$fails" = 0 ] && echo "cli boot: ok"
exit "$fails"
