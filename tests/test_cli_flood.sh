#!/usr/bin/env bash
# Flooded decryption and the server's keys through the CLI:
#   test_cli_flood.sh BUILD_DIR SOURCE_DIR
# - `veil decrypt --onnx` floods by default; at the scales of keys made without --flood (2^36 .. 2^40)
#   flooding for 30 bits of statistical security over 128 decryptions cannot keep 1e-3, so it is refused
#   with a clear message (--no-flood and keygen --flood named), writing nothing; --no-flood decrypts as
#   before; --flood and --no-flood exclude each other; --flood on inference outputs is refused the same way.
# - training keys made with `keygen --flood` (a 2^60 scale): the default flooded --onnx succeeds, its weights
#   (on the scaled features) within 1e-3 of float64 training and noisy (above 1e-7, where plain decryption
#   is within 1e-6); keygen --flood with a server's plan is refused (it keeps no room).
# - inference keys made with `keygen --model M --flood` (a 2^60 scale, one more level): `decrypt --flood` on
#   the diabetes regression (throughput and latency) and the breast-cancer logistic regression (throughput,
#   raw records) within 1e-3 (1 + max |output|) of `veil plain`, away from the plain decryption (noise added),
#   fresh noise each time; `plan --flood` shows its cost; the latency packing on raw records is refused.
# - `veil eval` and `veil train` refuse an evaluation-key folder holding any secret key, whatever its name
#   (eval/other.bin, eval/eval.keys itself, a key set), and the file itself when one is given; other files
#   in the folder are fine.
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
expect() { # expect CODE PATTERN COMMAND...: exit code and a message on standard error
    local code=$1 pattern=$2
    shift 2
    "$@" 2>err.txt >/dev/null
    local rc=$?
    if [ "$rc" != "$code" ] || ! grep -q -- "$pattern" err.txt; then
        fail "'$*' gave $rc (wanted $code), stderr: $(cat err.txt) (wanted /$pattern/)"
    else
        echo "ok: $* -> $rc: $(head -1 err.txt)"
    fi
}
/usr/bin/python3 "$src/examples/training/make_data.py" . >/dev/null || exit 1

# ---- training: --onnx floods by default ----
"$veil" keygen --train logistic --features 30 --iterations 2 --out keys --quiet || exit 1
"$veil" encrypt --keys keys --in breast_train.csv --labels-column label --out train.ct --quiet || exit 1
"$veil" train --eval-keys keys/eval --in train.ct --iterations 2 --out model.ct --quiet || exit 1
expect 1 "leaves no room" "$veil" decrypt --keys keys --in model.ct --onnx f.onnx --out f.csv
grep -q -- "--no-flood" err.txt || fail "the default refusal does not name --no-flood: $(cat err.txt)"
grep -q -- "keygen .*--flood" err.txt || fail "the default refusal does not name keygen --flood: $(cat err.txt)"
if [ -e f.onnx ] || [ -e f.csv ]; then fail "a refused flooded decryption wrote its outputs"; fi
expect 1 "leaves no room" "$veil" decrypt --keys keys --in model.ct --out f.csv --flood
expect 2 "exclude each other" "$veil" decrypt --keys keys --in model.ct --onnx f.onnx --flood --no-flood
"$veil" decrypt --keys keys --in model.ct --onnx p.onnx --out p.csv --no-flood || fail "decrypt --no-flood"
"$veil" decrypt --keys keys --in model.ct --out p2.csv || fail "decrypt --out (plain by default)"
cmp -s p.csv p2.csv || fail "--no-flood and the plain default differ"

# ---- training keys made for flooding (keygen --flood): --onnx floods by default, within the tolerance ----
"$veil" plan --train logistic --features 30 --iterations 2 --flood >fplan.txt || fail "plan --flood"
grep -q "scale 2^60" fplan.txt || fail "plan --flood: no 2^60 scale: $(cat fplan.txt)"
"$veil" keygen --train logistic --features 30 --iterations 2 --flood --out fk --quiet || exit 1
"$veil" encrypt --keys fk --in breast_train.csv --labels-column label --out ftrain.ct --quiet || exit 1
"$veil" train --eval-keys fk/eval --in ftrain.ct --iterations 2 --out fmodel.ct --quiet || exit 1
"$veil" train --plain --train logistic --in breast_train.csv --labels-column label --iterations 2 \
    --out fplain.csv || exit 1
"$veil" decrypt --keys fk --in fmodel.ct --onnx flooded.onnx --out flooded.csv 2>err.txt ||
    fail "the default flooded --onnx on --flood keys: $(cat err.txt)"
"$veil" decrypt --keys fk --in fmodel.ct --out again.csv --flood || fail "decrypt --flood on --flood keys"
"$veil" decrypt --keys fk --in fmodel.ct --out fclear.csv --no-flood || fail "decrypt --no-flood on --flood keys"
# the tolerance (1e-3) holds for the weights on the scaled features (each feature centred on its mean and
# divided by its largest deviation): back to those from the raw weights, flooded against float64 training
/usr/bin/python3 - breast_train.csv fplain.csv flooded.csv again.csv fclear.csv <<'PY' || fail "flooded weights"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
feats = [k for k in rows[0] if k != "label"]
cols = [[float(r[k]) for r in rows] for k in feats]
mean = [sum(c) / len(c) for c in cols]
dev = [max(abs(v - m) for v in c) for c, m in zip(cols, mean)]
def scaled(path):
    w = [float(x) for x in open(path).read().replace("\n", ",").split(",") if x.strip()]
    assert len(w) == len(feats) + 1, path
    return [w[0] + sum(w[1 + j] * mean[j] for j in range(len(feats)))] + [w[1 + j] * dev[j] for j in range(len(feats))]
plain = scaled(sys.argv[2])
for path, most, least in ((sys.argv[3], 1e-3, 1e-7), (sys.argv[4], 1e-3, 1e-7), (sys.argv[5], 1e-6, 0)):
    worst = max(abs(a - b) for a, b in zip(scaled(path), plain))
    print(f"{path}: largest difference from float64 on the scaled weights {worst:.3g} (within {most}, above {least})")
    if not (least <= worst <= most): sys.exit(1)
PY
cut -d, -f1-30 breast_train.csv >fx.csv
"$veil" plain --model flooded.onnx --in fx.csv --out fpred.csv || fail "the flooded ONNX model does not run"

# ---- inference: --flood on CKKS outputs, and on exact outputs (nothing to flood) ----
/usr/bin/python3 "$src/examples/diabetes/train.py" d >/dev/null || exit 1
"$veil" keygen --model d/model.onnx --out ik --quiet || exit 1
expect 2 "a server's plan keeps no room" "$veil" keygen --server http://127.0.0.1:9 --model diabetes \
    --flood --out nk --quiet
"$veil" encrypt --keys ik --in d/test.csv --out x.ct || exit 1
"$veil" eval --model d/model.onnx --eval-keys ik/eval --in x.ct --out y.ct --quiet || exit 1
"$veil" decrypt --keys ik --in y.ct --out y.csv || fail "plain decryption of inference outputs"
expect 1 "leaves no room" "$veil" decrypt --keys ik --in y.ct --out yf.csv --flood
expect 2 "unexpected argument" "$veil" eval --model d/model.onnx --eval-keys ik/eval --in x.ct --out y.ct --flood

# ---- inference keys with flooding's room (keygen --model M --flood): flooded outputs within the tolerance ----
# compare A B C: A (flooded) within 1e-3 of C (veil plain; flooding's tolerance, tighter than the documented
# 1e-3 (1 + max |C|)), and away from B (plain decryption,
# itself within 1e-9 of C): the noise was added
compare() {
    /usr/bin/python3 - "$@" <<'PY'
import csv, sys
rows = lambda p: [[float(v) for v in r] for r in csv.reader(open(p)) if r]
a, b, c = rows(sys.argv[1]), rows(sys.argv[2]), rows(sys.argv[3])
assert len(a) == len(b) == len(c) > 0, (len(a), len(b), len(c))
diff = lambda x, y: max(abs(u - v) for p, q in zip(x, y) for u, v in zip(p, q))
tol = min(1e-3 * (1 + max(abs(v) for r in c for v in r)), 1e-3 + diff(b, c)) # documented; flooding's own 1e-3
print(f"{sys.argv[1]}: flooded - plain model {diff(a, c):.3g} (within {tol:.3g}), "
      f"flooded - unflooded {diff(a, b):.3g} (above 1e-9), unflooded - plain model {diff(b, c):.3g}")
sys.exit(0 if diff(a, c) <= tol and diff(a, b) > 1e-9 and diff(b, c) <= 1e-9 else 1)
PY
}
flooded_inference() { # flooded_inference NAME MODEL INPUTS KEYGEN-OPTIONS...
    local name=$1 model=$2 inputs=$3
    shift 3
    "$veil" keygen --model "$model" "$@" --flood --out "$name.k" --quiet || { fail "$name: keygen --flood"; return; }
    "$veil" encrypt --keys "$name.k" --in "$inputs" --out "$name.x" || { fail "$name: encrypt"; return; }
    "$veil" eval --model "$model" --eval-keys "$name.k/eval" --in "$name.x" --out "$name.y" --quiet ||
        { fail "$name: eval"; return; }
    "$veil" decrypt --keys "$name.k" --in "$name.y" --out "$name.f.csv" --flood 2>err.txt ||
        { fail "$name: decrypt --flood: $(cat err.txt)"; return; }
    "$veil" decrypt --keys "$name.k" --in "$name.y" --out "$name.f2.csv" --flood || fail "$name: decrypt --flood again"
    "$veil" decrypt --keys "$name.k" --in "$name.y" --out "$name.p.csv" || fail "$name: plain decryption"
    "$veil" plain --model "$model" --in "$inputs" --out "$name.ref.csv" || fail "$name: veil plain"
    compare "$name.f.csv" "$name.p.csv" "$name.ref.csv" || fail "$name: flooded outputs"
    cmp -s "$name.f.csv" "$name.f2.csv" && fail "$name: two flooded decryptions gave the same values (no fresh noise)"
}
"$veil" plan --model d/model.onnx --flood >dplan.txt || fail "plan --model --flood"
grep -q "scale 2^60" dplan.txt || fail "plan --model --flood: no 2^60 scale: $(cat dplan.txt)"
grep -q "cost of --flood" dplan.txt || fail "plan --model --flood: no cost line: $(cat dplan.txt)"
head -5 d/test.csv >d/few.csv
flooded_inference diabetes d/model.onnx d/test.csv --batch 128          # regression, throughput packing
flooded_inference diabetes-latency d/model.onnx d/few.csv --latency     # the latency packing
/usr/bin/python3 "$src/examples/hospital/train.py" h >/dev/null || exit 1
# breast-cancer logistic regression on raw records (up to 4,254): weights of the standardization beyond 2^62
# at the 2^60 scale (carried by their residues), the probabilities after the Sigmoid
flooded_inference hospital h/model.onnx h/test.csv --calibrate h/train.csv
# the latency packing's diagonals are rounded plaintexts whose error grows with the inputs: raw records are
# refused at the plan, before any key
expect 3 "standardize the inputs" "$veil" keygen --model h/model.onnx --calibrate h/train.csv --latency --flood \
    --out hl --quiet
[ ! -e hl/secret.key ] || fail "a refused keygen --flood wrote a key"

# ---- the server's keys: no secret key, whatever its name ----
mkdir -p s1 s2 s3 s4
cp ik/eval/eval.keys s1/ && cp ik/secret.key s1/other.bin            # a secret key under another name
cp ik/secret.key s2/eval.keys                                        # the key set as the bundle itself
cp ik/eval/eval.keys s3/ && echo "notes" > s3/README && mkdir s3/sub # other files are fine
cp ik/eval/eval.keys s4/ && cp keys/secret.key s4/.hidden            # another key set's, hidden
expect 3 "holds a secret key (other.bin)" "$veil" eval --model d/model.onnx --eval-keys s1 --in x.ct --out o.ct
expect 3 "holds a secret key (eval.keys)" "$veil" eval --model d/model.onnx --eval-keys s2 --in x.ct --out o.ct
expect 3 "s2/eval.keys holds a secret key" "$veil" eval --model d/model.onnx --eval-keys s2/eval.keys --in x.ct \
    --out o.ct
expect 3 "holds a secret key (.hidden)" "$veil" eval --model d/model.onnx --eval-keys s4 --in x.ct --out o.ct
expect 3 "holds a secret key (secret.key)" "$veil" eval --model d/model.onnx --eval-keys ik --in x.ct --out o.ct
[ ! -e o.ct ] || fail "a refused eval wrote o.ct"
"$veil" eval --model d/model.onnx --eval-keys s3 --in x.ct --out o.ct --quiet || fail "eval with other files beside"
mkdir -p t1 && cp keys/eval/eval.keys t1/ && cp keys/secret.key t1/copy.key
expect 3 "holds a secret key (copy.key)" "$veil" train --eval-keys t1 --in train.ct --iterations 1 --out m.ct
[ "$fails" = 0 ] && echo "cli flood: ok"
exit "$fails"
