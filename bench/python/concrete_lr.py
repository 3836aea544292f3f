"""Concrete-ML on the logistic regression: the scikit-learn model (same weights as every tool, prepare.py)
brought in with LogisticRegression.from_sklearn_model (8-bit quantization, calibrated on the 569 records),
compiled, and run with its circuit's encrypt/run/decrypt (fhe="execute" split in its steps). Concrete-ML
evaluates one record per call (TFHE: no slot batching), so the batch figure is per record over a subset
(VEIL_BENCH_CONCRETE_ROWS, default 64) times 8,192; the accuracy over all 8,192 is fhe="simulate"'s.
Run with the peers' Python (run.sh: the throw-away venv)."""
import os
import pickle
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, REPS, lr_data, once, record, timed  # noqa: E402

import concrete.ml  # noqa: E402
from concrete.ml.sklearn import LogisticRegression  # noqa: E402

ROWS = int(os.environ.get("VEIL_BENCH_CONCRETE_ROWS", "64"))
N_BITS = int(os.environ.get("VEIL_BENCH_CONCRETE_BITS", "8"))


def main():
    d = lr_data()
    X, y, plain = d["X"], d["y"], d["plain"]
    n = len(X)
    with open(os.path.join(DATA, "lr_model.pkl"), "rb") as f:
        sk = pickle.load(f)
    model = LogisticRegression.from_sklearn_model(sk, X=d["calib"], n_bits=N_BITS)
    t_compile, circuit = once(lambda: model.compile(d["calib"]))
    t_keygen, _ = once(lambda: circuit.keygen(force=True))
    eval_key_bytes = len(circuit.keys.evaluation.serialize())

    def enc(x):
        return circuit.encrypt(model.quantize_input(x))

    def dec(r):
        return model.post_processing(model.dequantize_output(circuit.decrypt(r)))

    x1 = X[:1]
    reps1 = max(REPS, 20)
    t_enc1, _, c1 = timed(lambda: enc(x1), reps1)
    t_run1, runs1, r1 = timed(lambda: circuit.run(c1), reps1)
    t_dec1, _, _ = timed(lambda: dec(r1), reps1)
    t_e2e, _, _ = timed(lambda: dec(circuit.run(enc(x1))), reps1)
    ct_bytes = len(c1.serialize())
    out_bytes = len(r1.serialize())

    k = min(ROWS, n)
    t_rows_enc, encs = once(lambda: [enc(X[i:i + 1]) for i in range(k)])
    t_rows, runs, res = timed(lambda: [circuit.run(c) for c in encs], 3)
    t_rows_dec, probs = once(lambda: np.concatenate([dec(r) for r in res]))
    cls_exec = np.argmax(probs, axis=1)
    cls_sim = model.predict(X, fhe="simulate")
    cls_clear = model.predict(X)
    version = getattr(concrete.ml, "__version__", "1.9")
    common = dict(tool="concrete-ml", version=version, eval_key_bytes=eval_key_bytes, ct_bytes_per_sample=ct_bytes,
                  out_bytes_per_sample=out_bytes, keygen_s=t_keygen, compile_s=t_compile,
                  params=f"TFHE, {N_BITS}-bit quantization (from_sklearn_model), one record per circuit call")
    record(task="lr_batch", samples=k, reps=3, encrypt_s=t_rows_enc / k * n, server_s=t_rows / k * n,
           server_s_runs=runs, server_s_per_sample=t_rows / k, decrypt_s=t_rows_dec / k * n,
           accuracy=float(np.mean(cls_sim == y)), agree=float(np.mean(cls_sim == plain)), accuracy_samples=n,
           plain_accuracy=float(np.mean(plain == y)),
           quantized_clear_accuracy=float(np.mean(cls_clear == y)),
           execute_agree_simulate=float(np.mean(cls_exec == cls_sim[:k])),
           note=f"timed on {k} records one at a time, scaled to 8,192; accuracy over 8,192 by fhe='simulate'",
           **common)
    record(task="lr_one", samples=1, reps=reps1, encrypt_s=t_enc1, server_s=t_run1, server_s_runs=runs1,
           server_s_per_sample=t_run1, decrypt_s=t_dec1, end_to_end_s=t_e2e,
           accuracy=float(np.mean(cls_exec == y[:k])), agree=float(np.mean(cls_exec == plain[:k])),
           plain_accuracy=float(np.mean(plain[:k] == y[:k])),
           accuracy_samples=k, note="in-process circuit calls, keys kept", **common)


if __name__ == "__main__":
    main()
