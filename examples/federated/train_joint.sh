#!/usr/bin/env bash
# Part (b) of examples/federated: encrypted logistic regression on the union of three hospitals' records,
# each hospital's records encrypted under the group's joint public key; the three parties decrypt the trained
# weights together, straight into an ONNX model (party decrypt, combine --decrypt --onnx), and also switch
# them to hospital 1's own training keys, whose holder decrypts them alone.
#
#   train_joint.sh VEIL DATA ITERATIONS [TOLERANCE]
#     VEIL        the veil program;  DATA  split.py's folder (hospital1..3.csv, test.csv)
#     ITERATIONS  training iterations (the keys are made for exactly these)
#     LR          (environment) the learning rate, 1 by default, for the encrypted and the plaintext training
#     TOLERANCE   when given: also trains the union under hospital 1's single key, and fails (exit 1) when a
#                 jointly trained weight (decrypted jointly, or switched) differs from it by more than TOLERANCE
#
# Prints the accuracy on test.csv beside centralized plaintext training (`veil train --plain`, float64, the
# same algorithm), the bytes each party sends, and the time of each step. Every party's files live in its
# own folder (P1..P3: secret shares, 0600); the server sees only G/, JOINT/ and the ciphertexts.
set -u
veil=$(realpath "$1") data=$(realpath "$2") iterations=$3 tolerance=${4:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fail() { echo "train_joint: $*" >&2; exit 1; }
now() { date +%s.%N; }
t0=0
step() { t0=$(now); }
took() { printf '  %-52s %8.2f s\n' "$1" "$(echo "$(now) - $t0" | bc)"; }
bytes() { stat -c %s "$@" | awk '{s += $1} END {print s}'; }

# the CSVs get a header naming the label column; the range every hospital declares (agreed beforehand)
header=$(seq -s, -f 'f%g' 1 30),label
for k in 1 2 3; do { echo "$header"; cat "$data/hospital$k.csv"; } >h$k.csv; done
{ echo "$header"; cat "$data"/hospital[123].csv; } >all.csv
range=-11:11 # split.py's standardized features lie within [-3.2, 10.6]
lr=${LR:-1}
plan=(--train logistic --features 30 --iterations "$iterations")

echo "encrypted training across 3 hospitals ($iterations iterations, $(($(wc -l <all.csv) - 1)) records):"
step
"$veil" party init --parties 3 "${plan[@]}" --out G --quiet || fail "party init"
for i in 1 2 3; do "$veil" party keygen --group G --party $i --round 1 --out P$i --quiet || fail "keygen 1"; done
"$veil" party combine --group G --round 1 --in P1 P2 P3 --out JOINT --quiet || fail "combine 1"
for i in 1 2 3; do "$veil" party keygen --group G --party $i --round 2 --in JOINT --out P$i --quiet || fail "keygen 2"; done
"$veil" party combine --group G --round 2 --in P1 P2 P3 --out JOINT --quiet || fail "combine 2"
took "joint training keys (2 rounds, 3 parties)"
step
for k in 1 2 3; do
    "$veil" encrypt --keys JOINT --in h$k.csv --labels-column label --feature-range "$range" --out x$k.ct --quiet ||
        fail "encrypt hospital $k"
done
took "each hospital encrypts its records (3 in all)"
step
"$veil" train --eval-keys JOINT/eval --in x1.ct x2.ct x3.ct --iterations "$iterations" --learning-rate "$lr" \
    --out w.ct --quiet ||
    fail "train"
took "the server trains on the union"
step
for i in 1 2 3; do
    "$veil" party decrypt --group G --party $i --keys P$i --in w.ct --out D$i --quiet || fail "decrypt share $i"
done
"$veil" party combine --group G --decrypt w.ct --in D1 D2 D3 --out wj.csv --onnx wj.onnx --quiet ||
    fail "combine --decrypt --onnx"
took "joint decryption into an ONNX model (3 shares)"
# hospital 1's own keys, from the group's plan (sized for the smudging: the same parameters)
"$veil" keygen --plan G/plan --out H1 --quiet || fail "hospital 1's keys"
step
for i in 1 2 3; do
    "$veil" party switch --group G --party $i --keys P$i --in w.ct --to H1/eval --out S$i --quiet || fail "switch $i"
done
"$veil" party combine --group G --switch w.ct --to H1/eval --in S1 S2 S3 --out w1.ct --quiet || fail "combine"
"$veil" decrypt --keys H1 --in w1.ct --no-flood --out w.csv --onnx w.onnx || fail "decrypt"
took "switch to hospital 1's key (3 shares), decrypt"
"$veil" train --plain "${plan[@]:0:2}" --in all.csv --labels-column label --iterations "$iterations" \
    --learning-rate "$lr" --out wp.csv --onnx wp.onnx 2>/dev/null || fail "plaintext training"

echo "bytes each party sends:"
printf '  %-52s %10d\n' "round 1 (public-key and relinearization shares)" "$(bytes P1/round1.share)"
printf '  %-52s %10d\n' "round 2 (relinearization and rotation shares)" "$(bytes P1/round2.share)"
for k in 1 2 3; do printf '  %-52s %10d\n' "hospital $k's encrypted records" "$(bytes x$k.ct)"; done
printf '  %-52s %10d\n' "a decryption share of the weights" "$(bytes D1)"
printf '  %-52s %10d\n' "a key-switching share of the weights" "$(bytes S1)"

# accuracy on the test rows: the label is the last column
cut -d, -f1-30 "$data/test.csv" >tx.csv
cut -d, -f31 "$data/test.csv" >ty.csv
accuracy() {
    "$veil" plain --model "$1" --in tx.csv --out p.csv 2>/dev/null || fail "plain $1"
    paste -d, p.csv ty.csv | awk -F, '{ok += (($1 >= 0.5) == ($2 >= 0.5))} END {printf "%.4f", ok / NR}'
}
printf 'accuracy: encrypted across silos %s (decrypted jointly %s), centralized plaintext %s\n' "$(accuracy w.onnx)" \
    "$(accuracy wj.onnx)" "$(accuracy wp.onnx)"

if [ -n "$tolerance" ]; then
    # the same training under one key (hospital 1 holding all the records): the joint protocol must agree
    "$veil" encrypt --keys H1 --in all.csv --labels-column label --feature-range "$range" --out xs.ct --quiet ||
        fail "single-key encrypt"
    "$veil" train --eval-keys H1/eval --in xs.ct --iterations "$iterations" --learning-rate "$lr" --out ws.ct --quiet || fail "single train"
    "$veil" decrypt --keys H1 --in ws.ct --no-flood --out ws.csv || fail "single decrypt"
    for got in w wj; do
        worst=$(paste -d'\n' <(tr ',' '\n' <$got.csv) | paste -d, - <(tr ',' '\n' <ws.csv) |
            awk -F, '{d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d} END {printf "%.3g", m}')
        what=$([ $got = w ] && echo "switched to hospital 1" || echo "decrypted jointly")
        echo "largest difference from single-key encrypted training ($what): $worst (tolerance $tolerance)"
        awk -v w="$worst" -v t="$tolerance" 'BEGIN {exit !(w <= t)}' || fail "joint weights ($what) differ by $worst"
    done
    # the joint ONNX model is the weights' model: its predictions are those of the single-key weights' model
    "$veil" decrypt --keys H1 --in ws.ct --no-flood --out ws2.csv --onnx ws.onnx || fail "single decrypt --onnx"
    "$veil" plain --model wj.onnx --in tx.csv --out pj.csv 2>/dev/null || fail "plain wj.onnx"
    "$veil" plain --model ws.onnx --in tx.csv --out ps.csv 2>/dev/null || fail "plain ws.onnx"
    worst=$(paste -d, pj.csv ps.csv | awk -F, '{d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d} END {printf "%.3g", m}')
    echo "largest difference of the joint ONNX model's predictions: $worst"
    awk -v w="$worst" -v t="$tolerance" 'BEGIN {exit !(w <= t)}' || fail "the joint ONNX model predicts differently"
    # shares of the weights from too few parties, or smudged beyond the plan's room: refused, nothing written
    if "$veil" party combine --group G --decrypt w.ct --in D1 D2 --onnx bad.onnx 2>err.txt; then
        fail "two shares of three decrypted the weights"
    fi
    grep -q "missing" err.txt || fail "unexpected refusal: $(cat err.txt)"
    for i in 1 2 3; do
        "$veil" party decrypt --group G --party $i --keys P$i --in w.ct --out L$i --smudging-bits 44 --quiet ||
            fail "decrypt share $i, 44 bits"
    done
    if "$veil" party combine --group G --decrypt w.ct --in L1 L2 L3 --onnx bad.onnx 2>err.txt; then
        fail "weights smudged beyond the plan's room were decrypted"
    fi
    grep -q "beyond the tolerance" err.txt || fail "unexpected refusal: $(cat err.txt)"
    [ -e bad.onnx ] && fail "a refused combine wrote bad.onnx"
    # a set under other keys among the sets: refused before any work
    if "$veil" train --eval-keys JOINT/eval --in x1.ct xs.ct --iterations "$iterations" --out bad.ct 2>err.txt; then
        fail "a set under other keys was trained on"
    fi
    grep -q "other keys" err.txt || fail "unexpected refusal: $(cat err.txt)"
    # a hospital that declared another range: its scaling differs, the decryption refuses the weights
    "$veil" encrypt --keys JOINT --in h3.csv --labels-column label --feature-range -20:20 --out x3b.ct --quiet ||
        fail "encrypt 3b"
    "$veil" train --eval-keys JOINT/eval --in x1.ct x2.ct x3b.ct --iterations "$iterations" --learning-rate "$lr" --out wb.ct --quiet ||
        fail "train b"
    for i in 1 2 3; do
        "$veil" party switch --group G --party $i --keys P$i --in wb.ct --to H1/eval --out B$i --quiet ||
            fail "switch b $i"
    done
    "$veil" party combine --group G --switch wb.ct --to H1/eval --in B1 B2 B3 --out wb1.ct --quiet || fail "combine b"
    if "$veil" decrypt --keys H1 --in wb1.ct --no-flood --out wb.csv 2>err.txt; then
        fail "weights of differently scaled sets were decrypted"
    fi
    grep -q "scaled differently" err.txt || fail "unexpected refusal: $(cat err.txt)"
    echo "train_joint: ok"
fi
