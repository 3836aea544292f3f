"""What `veil eval --model M --calibrate C --eval-keys K --in X --out Y` does, through the Python package, as
one process (for veil_cli_lr.py): read the model and plan it, read the keys and ciphertexts, evaluate, write.
usage: veil_eval_like.py MODEL.onnx CALIB.csv EVAL_DIR X.ct Y.ct"""
import sys

import numpy as np

import veil

model, calib, eval_dir, x_ct, y_ct = sys.argv[1:6]
m = veil.compile(model, calibrate=np.loadtxt(calib, delimiter=","))
ek = veil.EvalKeys.load(eval_dir)
m.run(veil.Ciphertexts.load(x_ct, ek), ek, threads=1).save(y_ct)
