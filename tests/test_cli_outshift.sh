#!/usr/bin/env bash
# The outputs' lowered scale through files (docs/ml.md, "Room"): a throughput model whose outputs' bound outgrows
# a 50-bit first prime at the 2^36 scale gets a plan that lowers the last layer's scale by a few bits instead of
# growing the prime (veil_ckks_output_shift). `veil keygen` writes the evaluation keys and `veil eval` loads them:
# the bundle must give the evaluator the plan's outputs' bound, or it evaluates at the full scale and outputs
# beyond q_0 / 2 (|y| > ~8192 here) wrap around and decrypt to a wrong value within the bound. The rows below
# reach |y| ~ 15,000, so the check fails without the shift.
#   test_cli_outshift.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
veil="$build/veil"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$src/tests/cli_lib.sh" # fail, run, expect, compare
cd "$work" || exit 1

/usr/bin/python3 - <<'EOF'
import numpy as np
from onnx import TensorProto, helper, numpy_helper, save
w = np.array([[4000, -3000], [4000, 2000], [4000, 1000], [4000, -500]], dtype=np.float32)  # 4 inputs, 2 outputs
b = np.array([100, -50], dtype=np.float32)
g = helper.make_graph([helper.make_node("Gemm", ["x", "W", "b"], ["y"])], "big",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
                      [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")])
save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), "big.onnx")
rng = np.random.default_rng(7)
# a batch of samples near the top of the range: the wrap is one of the encoded polynomial's coefficients, whose
# constant term is the mean over the batch's slots (a few large rows among empty slots would not wrap)
rows = np.vstack([[[0.9, 0.8, 0.95, 0.7], [-0.9, -0.95, -0.85, -0.99], [1, 1, 1, 1]], rng.uniform(-1, 1, (13, 4)),
                  rng.uniform(0.8, 1, (4000, 4))])
np.savetxt("big.csv", rows, delimiter=",")
np.savetxt("few.csv", rows[:16], delimiter=",")
EOF
"$veil" plain --model big.onnx --in big.csv --out p_big.csv || fail "plain"
"$veil" plain --model big.onnx --in few.csv --out p_few.csv || fail "plain"
# the test can fail: the batch's first output averages beyond 8192 (q_0 / 2 at the 2^36 scale)
/usr/bin/python3 -c "
import csv, sys
m = [float(r[0]) for r in csv.reader(open('p_big.csv'))]
print(f'first output: mean {sum(m) / len(m):.0f}, largest {max(m):.0f}')
sys.exit(0 if sum(m) / len(m) > 12000 else 1)" || fail "the outputs are too small to wrap without the shift"
# the plan keeps its 50-bit first prime (it lowers the outputs' scale instead of growing it)
"$veil" plan --model big.onnx --input-range -1:1 >plan.txt 2>&1 || fail "plan: $(cat plan.txt)"

for packing in throughput latency; do
    flag=
    [ $packing = latency ] && flag=--latency
    data=big
    [ $packing = latency ] && data=few # one sample per ciphertext
    run "$veil" keygen --model big.onnx --input-range -1:1 $flag --out K_$packing || continue
    run "$veil" encrypt --keys K_$packing --in $data.csv --out x_$packing.ct
    run "$veil" eval --model big.onnx --eval-keys K_$packing/eval --in x_$packing.ct --out y_$packing.ct
    "$veil" decrypt --keys K_$packing --in y_$packing.ct --out y_$packing.csv 2>"$work/err" ||
        fail "decrypt $packing: $(cat "$work/err")"
    compare y_$packing.csv p_$data.csv 1e-1
    # the encrypted model's last weights are at the same lowered scale (encrypt-model loads the keys too)
    if [ $packing = throughput ]; then
        run "$veil" encrypt-model --model big.onnx --keys K_$packing/eval --out big.ctm
        run "$veil" eval --model big.ctm --eval-keys K_$packing/eval --in x_$packing.ct --out e_$packing.ct
        "$veil" decrypt --keys K_$packing --in e_$packing.ct --out e_$packing.csv 2>"$work/err" ||
            fail "decrypt the encrypted model's outputs: $(cat "$work/err")"
        compare e_$packing.csv p_big.csv 1e-1
        # noise on the outputs (docs/privacy.md) fits them at their lowered scale: q_0 / 4 at 2^(36 - s)
        "$veil" budget --keys K_$packing --epsilon 4 --delta 1e-5 >/dev/null 2>&1 || fail "budget"
        run "$veil" eval --model big.onnx --eval-keys K_$packing/eval --in x_$packing.ct --out n_$packing.ct \
            --dp-epsilon 2 --dp-delta 1e-6 --dp-sensitivity 20
        "$veil" decrypt --keys K_$packing --in n_$packing.ct --out n_$packing.csv 2>"$work/err" ||
            fail "decrypt the noisy outputs: $(cat "$work/err")"
        compare n_$packing.csv p_big.csv 600 # sigma ~53
    fi
done

if [ "$fails" = 0 ]; then echo "cli outshift: ok"; else echo "cli outshift: $fails failures"; exit 1; fi
