#!/usr/bin/env bash
# Encrypted models (docs/marketplace.md), setting (a): the model owner publishes a plan, the data owner makes
# keys from it without the model, the model owner encrypts the weights under the data owner's public key
# (veil encrypt-model), the cloud evaluates the encrypted model on the encrypted data, the data owner decrypts.
# On the breast-cancer logistic regression (examples/hospital) and the diabetes linear regression
# (examples/diabetes): the results equal the plaintext model's (1e-3, the same classes) and the same model
# evaluated in the clear; the cloud's files (the .ctm, the eval folder) hold none of the weights in the clear
# (their float32, float64 and fixed-point encodings, searched for); keys of another model, another key set,
# another packing, damaged bytes and approximation options given to the cloud are refused. The same in the
# latency packing (one record per ciphertext, the matrices' diagonals encrypted), in both settings.
#   test_cli_encmodel.sh BUILD_DIR SOURCE_DIR CTM_DECRYPT
# CTM_DECRYPT (tests/ctm_decrypt.c) decrypts a .ctm's ciphertexts with a given secret key: the data owner's key
# gives the weights in setting (a) (the check can fail), each party's share alone nothing like them in setting (b).
set -uo pipefail
build=$1 src=$2 ctm_decrypt=$3
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli_lib.sh" # fail, run, expect, compare
# no_weights MODEL.onnx FILE...: none of the model's weights (the ONNX initializers, and the affine map they fold
# into: w / std and b - sum w mean / std for the standardized models) appears in the files as float64, as a
# fixed-point integer round(v 2^s), s = 20..60, in 64 bits (two's complement), or as float32 two consecutive
# weights at a time (a lone 4-byte needle would match the megabytes of uniform residues by chance: 122 of them
# in 5.5 MB match with probability 0.15). The search must find the float32 weights in the ONNX file itself (a
# search that cannot fail proves nothing).
no_weights() {
    /usr/bin/python3 - "$@" <<'EOF' || fail "weights found in the clear in ${*:2}"
import struct, sys
import numpy as np
import onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
inits = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in m.graph.initializer}
arrays = [a.ravel() for a in inits.values()]
if "mean" in inits:  # the affine map the lowering folds the standardization and the Gemm into
    w = inits["weight"].ravel() / inits["std"]
    arrays += [np.append(w, inits["bias"].ravel()[0] - np.sum(w * inits["mean"]))]
values = [v for a in arrays for v in a if abs(v) > 1e-6]
needles = set()
for a in arrays:
    for u, v in zip(a, a[1:]):
        needles.add(struct.pack("<ff", u, v))
for v in values:
    needles.add(struct.pack("<d", v))
    for s in range(20, 61):
        k = round(v * 2.0 ** s)
        if abs(k) < 2 ** 63:
            needles.add(struct.pack("<q", k))
onnx_bytes = open(sys.argv[1], "rb").read()
first = max(arrays[: len(inits)], key=len)  # an initializer as the ONNX file holds it
assert struct.pack("<ff", first[0], first[1]) in onnx_bytes, "the search finds nothing"
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    found = [n for n in needles if n in data]
    assert not found, f"{path}: {len(found)} encodings of weights found"
    print(f"{path}: {len(data)} bytes, none of {len(needles)} encodings of {len(values)} weights")
EOF
}

# decrypts_to yes|no MODEL.onnx MODEL.ctm KEYFILE: whether the ciphertexts of MODEL.ctm, decrypted with the first
# secret key in KEYFILE, hold the model's (folded) weights and biases: every one within 1e-4 (yes), or none
# within 1e-2 of any (no)
decrypts_to() {
    "$ctm_decrypt" "$3" "$4" >"$work/dec.txt" 2>"$work/err" || { fail "ctm_decrypt $3 $4: $(cat "$work/err")"; return; }
    /usr/bin/python3 - "$1" "$2" "$work/dec.txt" <<'EOF2' || fail "$3 decrypted with $4: not what was expected ($1)"
import sys
import numpy as np
import onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[2])
inits = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in m.graph.initializer}
w = inits["weight"].ravel() / inits["std"]
weights = np.append(w, inits["bias"].ravel()[0] - np.sum(w * inits["mean"]))
got = np.array([float(v) for v in open(sys.argv[3])])
near = np.array([np.min(np.abs(weights - v)) for v in got])
print(f"{len(got)} ciphertexts, nearest weight {near.min():.2e} .. {near.max():.2e}, largest |value| {np.abs(got).max():.3g}")
if sys.argv[1] == "yes":
    assert len(got) == len(weights) and near.max() < 1e-4
else:
    assert len(got) == len(weights) and near.min() > 1e-2
EOF2
}

cd "$work" || exit 1
for ex in hospital diabetes; do
    /usr/bin/python3 "$src/examples/$ex/train.py" "$work/$ex" >/dev/null || fail "train $ex"
done

# the whole protocol for each model, each party with its own files
for ex in hospital diabetes; do
    d="$work/$ex"
    # the model options (every party's), and the plan's: the data owner's declared range of the features
    if [ "$ex" = hospital ]; then opts=(--calibrate "$d/train.csv"); popts=(); else opts=(); popts=(--input-range -0.3:0.3); fi
    tol=1e-3
    # the model owner: a public plan; the data owner: keys from the plan alone
    "$veil" plan --model "$d/model.onnx" "${opts[@]}" "${popts[@]}" --out "$ex.plan" >/dev/null 2>"$work/err" || fail "plan --out: $(cat "$work/err")"
    run "$veil" keygen --plan "$ex.plan" --out "K_$ex"
    [ -e "K_$ex/secret.key" ] && [ -e "K_$ex/eval/eval.keys" ] || fail "keygen --plan made no key set"
    # the model owner encrypts with the data owner's eval folder; the cloud evaluates
    run "$veil" encrypt-model --model "$d/model.onnx" "${opts[@]}" --keys "K_$ex/eval" --out "$ex.ctm"
    "$veil" info "$ex.ctm" | grep -q "encrypted model" || fail "veil info does not name an encrypted model"
    run "$veil" encrypt --keys "K_$ex" --in "$d/test.csv" --out "x_$ex.ct"
    run "$veil" eval --model "$ex.ctm" --eval-keys "K_$ex/eval" --in "x_$ex.ct" --out "y_$ex.ct"
    "$veil" decrypt --keys "K_$ex" --in "y_$ex.ct" --out "y_$ex.csv" || fail "decrypt $ex"
    "$veil" plain --model "$d/model.onnx" "${opts[@]}" --in "$d/test.csv" --out "p_$ex.csv" || fail "plain $ex"
    compare "y_$ex.csv" "p_$ex.csv" $tol
    # the same model in the clear on the same ciphertexts
    run "$veil" eval --model "$d/model.onnx" "${opts[@]}" --eval-keys "K_$ex/eval" --in "x_$ex.ct" --out "c_$ex.ct"
    "$veil" decrypt --keys "K_$ex" --in "c_$ex.ct" --out "c_$ex.csv" || fail "decrypt $ex in the clear"
    compare "y_$ex.csv" "c_$ex.csv" $tol
    no_weights "$d/model.onnx" "$ex.ctm" "K_$ex/eval/eval.keys" "$ex.plan"
done
# the classes: identical
"$veil" decrypt --keys K_hospital --in y_hospital.ct --out yc.csv --argmax 2>/dev/null || fail "decrypt --argmax"
"$veil" plain --model hospital/model.onnx --calibrate hospital/train.csv --in hospital/test.csv --out pc.csv --argmax ||
    fail "plain --argmax"
cmp -s yc.csv pc.csv || fail "the encrypted model's classes differ from the plaintext model's"

# setting (b): weights and records under a joint key of the vendor (party 1) and the data owner (party 2); the
# result switched to the data owner's own keys (made from the group's plan) with both parties' shares. Neither
# party's key folder decrypts the model: the joint key set holds no secret, a party's folder only its share.
H=(--model hospital/model.onnx --calibrate hospital/train.csv)
run "$veil" party init --parties 2 "${H[@]}" --out G
for i in 1 2; do run "$veil" party keygen --group G --party $i --round 1 --out P$i; done
run "$veil" party combine --group G --round 1 --in P1 P2 --out JOINT
for i in 1 2; do run "$veil" party keygen --group G --party $i --round 2 --in JOINT --out P$i; done
run "$veil" party combine --group G --round 2 --in P1 P2 --out JOINT
run "$veil" encrypt-model "${H[@]}" --keys JOINT/eval --out joint.ctm
run "$veil" encrypt --keys JOINT --in hospital/test.csv --out xj.ct
run "$veil" eval --model joint.ctm --eval-keys JOINT/eval --in xj.ct --out yj.ct
run "$veil" keygen --plan G/plan --out R
for i in 1 2; do "$veil" party switch --group G --party $i --keys P$i --in yj.ct --to R/eval --out S$i || fail "switch $i"; done
"$veil" party combine --group G --switch yj.ct --to R/eval --in S1 S2 --out zj.ct 2>/dev/null || fail "combine --switch"
"$veil" decrypt --keys R --in zj.ct --out zj.csv || fail "the data owner's decryption"
"$veil" decrypt --keys R --in zj.ct --out zjc.csv --argmax || fail "the data owner's classes"
# the group's plan has room for the default smudging (2^20 per share: a 2^40 scale, docs/multiparty.md), so the
# result is within the usual 1e-3; smudging beyond that room (2^24 per share) is refused by combine
"$veil" party switch --group G --party 1 --keys P1 --in yj.ct --to R/eval --out S1d --smudging-bits 24 || fail "switch, 24 bits"
"$veil" party switch --group G --party 2 --keys P2 --in yj.ct --to R/eval --out S2d --smudging-bits 24 || fail "switch, 24 bits"
expect 1 "beyond the tolerance 0.001" "$veil" party combine --group G --switch yj.ct --to R/eval --in S1d S2d --out out.bad
compare zj.csv p_hospital.csv 1e-3
cmp -s zjc.csv pc.csv || fail "setting (b): the classes differ from the plaintext model's"
no_weights hospital/model.onnx joint.ctm JOINT/eval/eval.keys
for k in P2 JOINT R; do expect 4 "" "$veil" decrypt --keys $k --in joint.ctm --out out.bad; done
# the cryptography behind it: the data owner's key decrypts the weights of setting (a); in setting (b) the data
# owner's share (and the vendor's) alone decrypts nothing like them, nor do the data owner's own keys
decrypts_to yes hospital/model.onnx hospital.ctm K_hospital/secret.key
for k in P2/secret.share P1/secret.share R/secret.key; do decrypts_to no hospital/model.onnx joint.ctm $k; done

# refusals: keys of another model, another key set, latency keys, damaged bytes, options the owner fixed
expect 4 "another model" "$veil" encrypt-model "${H[@]}" --keys K_diabetes/eval --out out.bad
run "$veil" keygen --plan hospital.plan --out K_other
expect 4 "other keys" "$veil" eval --model hospital.ctm --eval-keys K_other/eval --in x_hospital.ct --out out.bad
expect 4 "" "$veil" eval --model hospital.ctm --eval-keys K_diabetes/eval --in x_hospital.ct --out out.bad
# the latency packing (one record per ciphertext, the diagonals encrypted): keys of the throughput plan refused
run "$veil" keygen "${H[@]}" --latency --out K_lat
run "$veil" encrypt-model "${H[@]}" --keys K_lat/eval --out lat.ctm
"$veil" info lat.ctm | grep -q "latency" || fail "veil info does not name the latency packing"
head -n 4 hospital/test.csv >four.csv
"$veil" plain "${H[@]}" --in four.csv --out p4.csv || fail "plain, four rows"
"$veil" plain "${H[@]}" --in four.csv --out p4c.csv --argmax || fail "plain --argmax, four rows"
run "$veil" encrypt --keys K_lat --in four.csv --out x_lat.ct
run "$veil" eval --model lat.ctm --eval-keys K_lat/eval --in x_lat.ct --out y_lat.ct
"$veil" decrypt --keys K_lat --in y_lat.ct --out y_lat.csv || fail "decrypt, latency"
"$veil" decrypt --keys K_lat --in y_lat.ct --out y_latc.csv --argmax || fail "decrypt --argmax, latency"
compare y_lat.csv p4.csv 1e-3
cmp -s y_latc.csv p4c.csv || fail "latency: the classes differ from the plaintext model's"
no_weights hospital/model.onnx lat.ctm
expect 4 "other keys" "$veil" eval --model lat.ctm --eval-keys K_hospital/eval --in x_hospital.ct --out out.bad
expect 4 "" "$veil" eval --model hospital.ctm --eval-keys K_lat/eval --in x_lat.ct --out out.bad
# setting (b) in the latency packing: a joint key of the vendor and the data owner, the result switched
run "$veil" party init --parties 2 "${H[@]}" --latency --out GL
for i in 1 2; do run "$veil" party keygen --group GL --party $i --round 1 --out Q$i; done
run "$veil" party combine --group GL --round 1 --in Q1 Q2 --out JL
for i in 1 2; do run "$veil" party keygen --group GL --party $i --round 2 --in JL --out Q$i; done
run "$veil" party combine --group GL --round 2 --in Q1 Q2 --out JL
run "$veil" encrypt-model "${H[@]}" --keys JL/eval --out jl.ctm
run "$veil" encrypt --keys JL --in four.csv --out xjl.ct
run "$veil" eval --model jl.ctm --eval-keys JL/eval --in xjl.ct --out yjl.ct
run "$veil" keygen --plan GL/plan --out RL
for i in 1 2; do "$veil" party switch --group GL --party $i --keys Q$i --smudging-bits 16 --in yjl.ct --to RL/eval --out T$i || fail "switch $i, latency"; done
"$veil" party combine --group GL --switch yjl.ct --to RL/eval --in T1 T2 --out zjl.ct 2>/dev/null || fail "combine --switch, latency"
"$veil" decrypt --keys RL --in zjl.ct --out zjl.csv || fail "the data owner's decryption, latency"
"$veil" decrypt --keys RL --in zjl.ct --out zjlc.csv --argmax || fail "the data owner's classes, latency"
compare zjl.csv p4.csv 1e-3
cmp -s zjlc.csv p4c.csv || fail "setting (b), latency: the classes differ from the plaintext model's"
no_weights hospital/model.onnx jl.ctm JL/eval/eval.keys
for k in Q1 Q2 JL RL; do expect 4 "" "$veil" decrypt --keys $k --in jl.ctm --out out.bad; done
expect 2 "encrypted model" "$veil" eval --model hospital.ctm --calibrate hospital/train.csv --eval-keys K_hospital/eval \
    --in x_hospital.ct --out out.bad
/usr/bin/python3 - <<'EOF'
data = bytearray(open("hospital.ctm", "rb").read())
data[len(data) // 2] ^= 0x40
open("bad.ctm", "wb").write(bytes(data))
data = bytearray(open("hospital.ctm", "rb").read())
open("short.ctm", "wb").write(bytes(data[: len(data) - 1000]))
EOF
expect 3 "" "$veil" eval --model bad.ctm --eval-keys K_hospital/eval --in x_hospital.ct --out out.bad
expect 3 "" "$veil" eval --model short.ctm --eval-keys K_hospital/eval --in x_hospital.ct --out out.bad
expect 2 "without a model" "$veil" keygen --plan hospital.plan "${H[@]}" --out out.bad
expect 4 "not a Veil plan" "$veil" keygen --plan hospital.ctm --out K_bad
[ -e K_bad ] && fail "a failed keygen --plan left its folder"
expect 3 "not an ONNX model" "$veil" plain --model hospital.ctm --in hospital/test.csv --out out.bad

# outputs too large for a 50-bit first prime at the 2^36 scale (|y| <= 17,839): the plan keeps the first prime and
# lowers the last layer's scale (docs/ml.md, "Room"); the encrypted weights carry the same scale
/usr/bin/python3 - <<'EOF'
import numpy as np
from onnx import TensorProto, helper, numpy_helper, save
rng = np.random.default_rng(1)
w1, b1 = (rng.standard_normal((6, 5)) * 3).astype(np.float32), rng.standard_normal(5).astype(np.float32)
w2, b2 = (rng.standard_normal((5, 3)) * 40).astype(np.float32), (rng.standard_normal(3) * 10).astype(np.float32)
nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"]), helper.make_node("Mul", ["h", "h"], ["s"]),
         helper.make_node("Gemm", ["s", "W2", "b2"], ["y"])]
inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "W1"), (b1, "b1"), (w2, "W2"), (b2, "b2"))]
g = helper.make_graph(nodes, "wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "wide.onnx")
np.savetxt("wide.csv", rng.uniform(-1, 1, (20, 6)), delimiter=",")
EOF
"$veil" plan --model wide.onnx --input-range -1:1 --out wide.plan 2>"$work/err" | grep -q "log2(QP) = 208" ||
    fail "the wide model's plan grew its first prime: $("$veil" plan --model wide.onnx --input-range -1:1 2>&1 | grep param)"
run "$veil" keygen --plan wide.plan --out K_wide
run "$veil" encrypt-model --model wide.onnx --keys K_wide/eval --out wide.ctm
run "$veil" encrypt --keys K_wide --in wide.csv --out x_wide.ct
run "$veil" eval --model wide.ctm --eval-keys K_wide/eval --in x_wide.ct --out y_wide.ct
"$veil" decrypt --keys K_wide --in y_wide.ct --out y_wide.csv || fail "decrypt wide"
"$veil" plain --model wide.onnx --in wide.csv --out p_wide.csv || fail "plain wide"
compare y_wide.csv p_wide.csv 1e-2
run "$veil" eval --model wide.onnx --input-range -1:1 --eval-keys K_wide/eval --in x_wide.ct --out c_wide.ct
"$veil" decrypt --keys K_wide --in c_wide.ct --out c_wide.csv || fail "decrypt wide in the clear"
compare c_wide.csv p_wide.csv 1e-2

if [ "$fails" = 0 ]; then echo "cli encmodel: ok"; else echo "cli encmodel: $fails failures"; exit 1; fi
