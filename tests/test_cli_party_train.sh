#!/usr/bin/env bash
# veil party init --train with a threshold: three hospitals (examples/federated/split.py, scikit-learn's breast
# cancer) make 2-out-of-3 training keys, each encrypts its records under the joint key, the server trains on the
# union (one iteration: the keys stay at N = 16384), and every pair of hospitals decrypts the trained weights
# jointly, straight into an ONNX model, with the third offline; the weights match the same training under one
# key within 1e-3, and the ONNX model predicts as that key holder's. Refusals: one share (fewer than the
# threshold), shares smudged beyond the plan's room, --onnx for a model's outputs.
#   test_cli_party_train.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli_lib.sh" # fail, run, expect, compare

/usr/bin/python3 "$src/examples/federated/split.py" "$work/data" >/dev/null || fail "split.py"
cd "$work" || exit 1
header=$(seq -s, -f 'f%g' 1 30),label
for k in 1 2 3; do { echo "$header"; cat data/hospital$k.csv; } >h$k.csv; done
{ echo "$header"; cat data/hospital[123].csv; } >all.csv
cut -d, -f1-30 data/test.csv >tx.csv
plan=(--train logistic --features 30 --iterations 1)
range=(--labels-column label --feature-range -11:11)

# 2-out-of-3 training keys: rounds 1 and 2, then the dealing (3 and 4)
run "$veil" party init --parties 3 --threshold 2 "${plan[@]}" --out G
for i in 1 2 3; do run "$veil" party keygen --group G --party $i --round 1 --out P$i; done
run "$veil" party combine --group G --round 1 --in P1 P2 P3 --out JOINT
for i in 1 2 3; do run "$veil" party keygen --group G --party $i --round 2 --in JOINT --out P$i; done
run "$veil" party combine --group G --round 2 --in P1 P2 P3 --out JOINT
for i in 1 2 3; do run "$veil" party keygen --group G --party $i --round 3 --in P1 P2 P3 --out P$i; done
for i in 1 2 3; do run "$veil" party keygen --group G --party $i --round 4 --in P1 P2 P3 --out P$i; done
for k in 1 2 3; do run "$veil" encrypt --keys JOINT --in h$k.csv "${range[@]}" --out x$k.ct; done
run "$veil" train --eval-keys JOINT/eval --in x1.ct x2.ct x3.ct --iterations 1 --out w.ct

# the same training under one key (the group's plan: the same parameters), its weights and ONNX model
run "$veil" keygen --plan G/plan --out K
run "$veil" encrypt --keys K --in all.csv "${range[@]}" --out xs.ct
run "$veil" train --eval-keys K/eval --in xs.ct --iterations 1 --out ws.ct
"$veil" decrypt --keys K --in ws.ct --no-flood --out ws.csv --onnx ws.onnx || fail "single-key decrypt"
"$veil" plain --model ws.onnx --in tx.csv --out ps.csv || fail "plain ws.onnx"

# every pair decrypts the weights with the third offline: CSV and ONNX
for pair in 1,2 1,3 2,3; do
    a=${pair%,*} b=${pair#*,}
    for i in $a $b; do
        run "$veil" party decrypt --group G --party $i --keys P$i --set $pair --in w.ct --out D$i.$a$b
    done
    run "$veil" party combine --group G --decrypt w.ct --in D$b.$a$b D$a.$a$b --out w$a$b.csv --onnx w$a$b.onnx
    compare w$a$b.csv ws.csv 1e-3
    "$veil" plain --model w$a$b.onnx --in tx.csv --out p$a$b.csv || fail "plain w$a$b.onnx"
    compare p$a$b.csv ps.csv 1e-3
done
# the ONNX model alone, without --out: the same model from the same shares
run "$veil" party combine --group G --decrypt w.ct --in D1.13 D3.13 --onnx only.onnx
cmp -s only.onnx w13.onnx || fail "combine --onnx alone gives another model"

# refusals: each a clear message and its exit code, nothing written
expect 3 "fewer than the group.s threshold of 2" "$veil" party combine --group G --decrypt w.ct --in D1.12 \
    --onnx out.bad
for i in 1 2; do
    run "$veil" party decrypt --group G --party $i --keys P$i --set 1,2 --in w.ct --out L$i --smudging-bits 44
done
expect 1 "beyond the tolerance 0.001" "$veil" party combine --group G --decrypt w.ct --in L1 L2 --out out.bad
expect 2 "--onnx is for veil party combine --decrypt" "$veil" party decrypt --group G --party 1 --keys P1 --set 1,2 \
    --in w.ct --out out.bad --onnx out.bad
run "$veil" encrypt --keys JOINT --in h1.csv "${range[@]}" --out in.ct
expect 3 "encrypted inputs" "$veil" party decrypt --group G --party 1 --keys P1 --set 1,2 --in in.ct --out out.bad

[ "$fails" = 0 ] && echo "cli party train: ok"
exit "$fails"
