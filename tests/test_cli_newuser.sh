#!/usr/bin/env bash
# What a new user meets with a model of their own (scikit-learn's MLPClassifier with Tanh on the wine data, which
# no other test uses, exported with onnx.helper): `veil plain --exact` runs the graph without asking for the
# polynomials' range (--calibrate/--range: the graph needs none) and equals scikit-learn; eval refuses model
# options other than keygen's (README, "Encrypted inference in four commands") and, given keygen's, decrypts to
# what `veil plain` computes; eval started by mpirun without --mpi says that every rank does the whole job; a
# bootstrapping plan prints the error of its slot count.
#   test_cli_newuser.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
source "$src/tests/cli_lib.sh"

/usr/bin/python3 - "$work" <<'EOF' || { echo "FAIL: the model"; exit 1; }
import sys, warnings
import numpy as np, onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_wine
from sklearn.neural_network import MLPClassifier
w = sys.argv[1]
d = load_wine()
x = d.data
mean, std = x.mean(0), x.std(0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    clf = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", alpha=1.0, max_iter=300, random_state=0)
    clf.fit((x - mean) / std, d.target)
f = np.float32
(w1, w2), (b1, b2) = clf.coefs_, clf.intercepts_
inits = [numpy_helper.from_array(a.astype(f), n) for a, n in
         ((mean, "mean"), (std, "std"), (w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))]
nodes = [helper.make_node("Sub", ["x", "mean"], ["c"]), helper.make_node("Div", ["c", "std"], ["z"]),
         helper.make_node("MatMul", ["z", "w1"], ["h0"]), helper.make_node("Add", ["h0", "b1"], ["h1"]),
         helper.make_node("Tanh", ["h1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["o0"]),
         helper.make_node("Add", ["o0", "b2"], ["logits"]), helper.make_node("Softmax", ["logits"], ["p"], axis=1)]
g = helper.make_graph(nodes, "wine_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 13])],
                      [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, f"{w}/model.onnx")
# three hidden layers, only planned (with bootstraps)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    deep = MLPClassifier(hidden_layer_sizes=(8, 8, 8), activation="tanh", alpha=1.0, max_iter=300, random_state=0)
    deep.fit((x - mean) / std, d.target)
nodes = [helper.make_node("Sub", ["x", "mean"], ["c"]), helper.make_node("Div", ["c", "std"], ["h0"])]
inits = inits[:2]
for i, (wk, bk) in enumerate(zip(deep.coefs_, deep.intercepts_)):
    inits += [numpy_helper.from_array(wk.astype(f), f"w{i}"), numpy_helper.from_array(bk.astype(f), f"b{i}")]
    nodes += [helper.make_node("MatMul", [f"h{i}", f"w{i}"], [f"m{i}"]), helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"])]
    if i < len(deep.coefs_) - 1:
        nodes.append(helper.make_node("Tanh", [f"a{i}"], [f"h{i + 1}"]))
g = helper.make_graph(nodes, "wine_deep", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 13])],
                      [helper.make_tensor_value_info(f"a{len(deep.coefs_) - 1}", TensorProto.FLOAT, ["N", 3])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, f"{w}/deep.onnx")
# five hidden layers with squares (a linear network's weights), only planned: a bootstrap after the second
# layer, whose values reach 20 over the inputs' range of narrow.csv (the mean +- 0.8 standard deviations)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    sq = MLPClassifier(hidden_layer_sizes=(8,) * 5, activation="identity", alpha=1.0, max_iter=200, random_state=0)
    sq.fit((x - mean) / std, d.target)
nodes = [helper.make_node("Sub", ["x", "mean"], ["c"]), helper.make_node("Div", ["c", "std"], ["h0"])]
inits = inits[:2]
for i, (wk, bk) in enumerate(zip(sq.coefs_, sq.intercepts_)):
    inits += [numpy_helper.from_array(wk.astype(f), f"w{i}"), numpy_helper.from_array(bk.astype(f), f"b{i}")]
    nodes += [helper.make_node("MatMul", [f"h{i}", f"w{i}"], [f"m{i}"]), helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"])]
    if i < len(sq.coefs_) - 1:
        nodes.append(helper.make_node("Mul", [f"a{i}", f"a{i}"], [f"h{i + 1}"]))
g = helper.make_graph(nodes, "wine_squares", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 13])],
                      [helper.make_tensor_value_info(f"a{len(sq.coefs_) - 1}", TensorProto.FLOAT, ["N", 3])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
onnx.checker.check_model(m)
onnx.save(m, f"{w}/squares.onnx")
np.savetxt(f"{w}/narrow.csv", np.array([mean - 0.4 * std, mean + 0.4 * std]), delimiter=",", fmt="%.17g")
np.savetxt(f"{w}/all.csv", x, delimiter=",", fmt="%.17g")
np.savetxt(f"{w}/x.csv", x[::6], delimiter=",", fmt="%.17g")  # 30 rows from every class
np.savetxt(f"{w}/sk.csv", clf.predict_proba((x - mean) / std), delimiter=",", fmt="%.17g")
EOF
m="$work/model.onnx"

# the graph itself, with no range given: scikit-learn's probabilities (float32 weights: within 1e-5)
"$veil" plain --exact --model "$m" --in "$work/all.csv" --out "$work/exact.csv" 2>"$work/err" ||
    fail "plain --exact without --calibrate: $(cat "$work/err")"
compare "$work/exact.csv" "$work/sk.csv" 1e-5
# and the same bytes as with a range, which --exact does not use
"$veil" plain --exact --model "$m" --calibrate "$work/all.csv" --in "$work/all.csv" --out "$work/exact2.csv" ||
    fail "plain --exact --calibrate"
cmp -s "$work/exact.csv" "$work/exact2.csv" || fail "plain --exact depends on --calibrate"
# the polynomial program still needs the range
expect 3 "give calibration data (--calibrate X.csv)" "$veil" plain --model "$m" --in "$work/x.csv" --out "$work/out.bad"

opts=(--model "$m" --calibrate "$work/all.csv" --degree 31)
run "$veil" keygen "${opts[@]}" --batch 16 --out "$work/k"
run "$veil" encrypt --keys "$work/k" --in "$work/x.csv" --out "$work/x.ct"
expect 3 "give calibration data (--calibrate X.csv)" "$veil" eval --model "$m" --eval-keys "$work/k/eval" \
    --in "$work/x.ct" --out "$work/out.bad"
expect 4 "made for another model (or other approximation settings)" "$veil" eval "${opts[@]}" --degree 63 \
    --eval-keys "$work/k/eval" --in "$work/x.ct" --out "$work/out.bad"
expect 4 "made for another model (or other approximation settings)" "$veil" eval --model "$m" --range -8:8 \
    --eval-keys "$work/k/eval" --in "$work/x.ct" --out "$work/out.bad"
run "$veil" eval "${opts[@]}" --eval-keys "$work/k/eval" --in "$work/x.ct" --out "$work/y.ct"
"$veil" decrypt --keys "$work/k" --in "$work/y.ct" --out "$work/y.csv" || fail "decrypt"
"$veil" plain "${opts[@]}" --in "$work/x.csv" --out "$work/p.csv" || fail "plain"
compare "$work/y.csv" "$work/p.csv" 1e-4

# started by mpirun as one of several ranks but without --mpi (Open MPI's environment, as mpirun sets it): rank
# 0 says that every rank evaluates the whole set, the others keep quiet; the output is the same
ev=(eval "${opts[@]}" --eval-keys "$work/k/eval" --in "$work/x.ct" --quiet)
OMPI_COMM_WORLD_SIZE=3 OMPI_COMM_WORLD_RANK=0 "$veil" "${ev[@]}" --out "$work/y0.ct" 2>"$work/err" || fail "eval as rank 0"
grep -q "started as one of 3 MPI ranks without --mpi: every rank evaluates the whole set" "$work/err" ||
    fail "eval as rank 0 of 3 without --mpi: no warning: $(cat "$work/err")"
cmp -s "$work/y.ct" "$work/y0.ct" || fail "eval as rank 0: other bytes"
OMPI_COMM_WORLD_SIZE=3 OMPI_COMM_WORLD_RANK=1 "$veil" "${ev[@]}" --out "$work/y1.ct" 2>"$work/err" || fail "eval as rank 1"
[ -s "$work/err" ] && fail "eval as rank 1 of 3: $(cat "$work/err")"
OMPI_COMM_WORLD_SIZE=1 OMPI_COMM_WORLD_RANK=0 "$veil" "${ev[@]}" --out "$work/y1.ct" 2>"$work/err" || fail "eval as 1 rank"
[ -s "$work/err" ] && fail "eval as the only rank: $(cat "$work/err")"

# a bootstrapping plan at 128-bit (planned only: no key is made) prints each point's error from its slots: a
# bootstrap's error grows as the square root of its slots (2^-14.7 at worst with 32 slots, 2^-9.6 with all
# 32,768 at N = 2^16), the default batch fills the slots
deep=(--model "$work/deep.onnx" --calibrate "$work/all.csv" --degree 31)
"$veil" plan "${deep[@]}" --bootstrap >"$work/plan.txt" 2>&1 || fail "plan --bootstrap: $(cat "$work/plan.txt")"
grep -q "^  after stage .*(its worst with 32768 slots, 2^-9.7 on \[-1, 1\], times 2^" "$work/plan.txt" ||
    fail "plan --bootstrap, full slots: $(grep -A1 "after stage" "$work/plan.txt")"
"$veil" plan "${deep[@]}" --bootstrap --batch 8 >"$work/plan.txt" 2>&1 || fail "plan --bootstrap --batch 8"
grep -q "^  after stage .*(its worst with 8 slots, 2^-14.7 on \[-1, 1\], times 2^" "$work/plan.txt" ||
    fail "plan --bootstrap --batch 8: $(grep -A1 "after stage" "$work/plan.txt")"
# a point that needs a shift of 2^5 (five squares after it): past 2^-5 with full slots (a run decrypted 4% off
# veil plain with exit 0 before the limit), so refused there, naming fewer slots; planned with 32
sq=(--model "$work/squares.onnx" --calibrate "$work/narrow.csv" --bootstrap)
"$veil" plan "${sq[@]}" >"$work/plan.txt" 2>&1 && fail "plan squares at full slots: not refused"
grep -q "(2^-9.7 with 32768 slots) times 2^shift would pass 2^-5; bootstrap fewer slots (a smaller --batch" "$work/plan.txt" ||
    fail "plan squares at full slots: $(cat "$work/plan.txt")"
"$veil" plan "${sq[@]}" --batch 32 >"$work/plan.txt" 2>&1 || fail "plan squares --batch 32: $(cat "$work/plan.txt")"
grep -q "^  after stage 3 (MatMul+Add): .*multiplied by 2^5 after: an error of about 2^-9.7 (its worst with 32 slots" \
    "$work/plan.txt" || fail "plan squares --batch 32: $(grep -A1 "after stage" "$work/plan.txt")"

[ "$fails" = 0 ] && echo "cli newuser: ok"
exit "$fails"
