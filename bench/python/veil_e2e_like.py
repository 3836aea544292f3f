"""The CLI's keygen + encrypt + eval + decrypt of veil_cli_lr.py through the Python package, in one process:
read the model, the calibration and the records (CSV), make keys, encrypt, evaluate, decrypt, write the CSV.
usage: veil_e2e_like.py MODEL.onnx CALIB.csv X.csv Y.csv"""
import sys

import numpy as np

import veil

model, calib, x_csv, y_csv = sys.argv[1:5]
m = veil.compile(model, calibrate=np.loadtxt(calib, delimiter=","))
keys = m.keygen()
y = m.decrypt(m.run(m.encrypt(np.loadtxt(x_csv, delimiter=","), keys), keys.eval, threads=1), keys)
np.savetxt(y_csv, y, delimiter=",", fmt="%.17g")
