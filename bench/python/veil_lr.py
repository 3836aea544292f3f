"""Veil through Python on the logistic regression: 8,192 records in the throughput packing (one call), and one
record in the latency packing with keys and contexts kept in the process. Run with the Python that has the
veil package (run.sh: VEIL_PYTHON)."""
import os
import pickle
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, REPS, lr_data, once, record, timed  # noqa: E402

import veil  # noqa: E402


def main():
    d = lr_data()
    with open(os.path.join(DATA, "lr_model.pkl"), "rb") as f:
        clf = pickle.load(f)
    X, y, plain = d["X"], d["y"], d["plain"]
    n = len(X)

    # 8,192 records, one batch call
    m = veil.compile(clf, packing="throughput", calibrate=d["calib"])
    info = m.plan()
    t_keygen, keys = once(m.keygen)
    t_enc, _, ct = timed(lambda: m.encrypt(X, keys))
    m.run(ct, keys.eval, threads=1)  # the evaluator is made on the first call and kept: warm it
    t_run, runs, out = timed(lambda: m.run(ct, keys.eval, threads=1))
    t_dec, _, cls = timed(lambda: m.decrypt(out, keys, argmax=True))
    prob = m.decrypt(out, keys)[:, 0]
    ref = m.predict(X)[:, 0]
    record(tool="veil", version=veil.__version__, task="lr_batch", samples=n, reps=REPS,
           params=f"CKKS throughput, N = {info.n}, batch {info.batch}, depth {info.depth}, log QP {info.log_qp}",
           keygen_s=t_keygen, encrypt_s=t_enc, server_s=t_run, server_s_runs=runs, server_s_per_sample=t_run / n,
           decrypt_s=t_dec, eval_key_bytes=len(keys.eval.to_bytes()),
           ct_bytes_per_sample=len(ct.to_bytes()) / n, out_bytes_per_sample=len(out.to_bytes()) / n,
           accuracy=float(np.mean(cls == y)), plain_accuracy=float(np.mean(plain == y)),
           agree=float(np.mean(cls == plain)), max_abs_err=float(np.max(np.abs(prob - ref))),
           note="logit on the server, sigmoid after decryption (Veil's default)")

    # one record, latency packing, everything kept loaded in the process
    m1 = veil.compile(clf, packing="latency", calibrate=d["calib"])
    info1 = m1.plan()
    t_keygen1, keys1 = once(m1.keygen)
    x1 = X[:1]
    t_enc1, _, ct1 = timed(lambda: m1.encrypt(x1, keys1), max(REPS, 20))
    m1.run(ct1, keys1.eval, threads=1)
    t_run1, runs1, out1 = timed(lambda: m1.run(ct1, keys1.eval, threads=1), max(REPS, 20))
    t_dec1, _, _ = timed(lambda: m1.decrypt(out1, keys1), max(REPS, 20))

    def e2e():
        return m1.decrypt(m1.run(m1.encrypt(x1, keys1), keys1.eval, threads=1), keys1, argmax=True)
    t_e2e, _, _ = timed(e2e, max(REPS, 20))
    # accuracy over 256 records, one at a time
    cls1 = np.array([e2e_i for e2e_i in (m1.decrypt(m1.run(m1.encrypt(X[i:i + 1], keys1), keys1.eval, threads=1),
                                                    keys1, argmax=True)[0] for i in range(256))])
    record(tool="veil", version=veil.__version__, task="lr_one", samples=1, reps=max(REPS, 20),
           params=f"CKKS latency, N = {info1.n}, {info1.rotations} rotation keys, depth {info1.depth}",
           keygen_s=t_keygen1, encrypt_s=t_enc1, server_s=t_run1, server_s_runs=runs1, server_s_per_sample=t_run1,
           decrypt_s=t_dec1, end_to_end_s=t_e2e, eval_key_bytes=len(keys1.eval.to_bytes()),
           ct_bytes_per_sample=len(ct1.to_bytes()), out_bytes_per_sample=len(out1.to_bytes()),
           accuracy=float(np.mean(cls1 == y[:256])), plain_accuracy=float(np.mean(plain[:256] == y[:256])),
           agree=float(np.mean(cls1 == plain[:256])), accuracy_samples=256,
           note="in-process: keys, context and evaluator kept between calls")


if __name__ == "__main__":
    main()
