"""Veil through Python on the CryptoNets-shaped CNN, one image, latency packing (`veil plan --latency` takes the
network: N = 2^14, one image per ciphertext), keys, context and evaluator kept in the process. The accuracy is
over the first VEIL_BENCH_CNN_IMAGES test images (default 20), each encrypted, evaluated and decrypted alone.
Run with the Python that has the veil package (run.sh: VEIL_PYTHON)."""
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DATA, REPS, cnn_data, once, record, timed  # noqa: E402

import veil  # noqa: E402

IMAGES = int(os.environ.get("VEIL_BENCH_CNN_IMAGES", "20"))


def main():
    d = cnn_data()
    x, labels, plain = d["images"], d["labels"], d["plain"]
    m = veil.compile(os.path.join(DATA, "fashion", "model.onnx"), packing="latency", calibrate=d["calib"])
    info = m.plan()
    t_keygen, keys = once(m.keygen)
    x1 = x[:1]
    t_enc, _, ct = timed(lambda: m.encrypt(x1, keys))
    m.run(ct, keys.eval, threads=1)  # the first call makes the evaluator (encoded diagonals), kept after
    # m.run and one bare veil_evaluator_run call through cffi on the same evaluator and input, interleaved: what
    # the Python wrapper adds to the server's step
    from veil._lib import ffi, lib
    ev, h_in = m._evaluator(keys.eval, 1), ct._handle_for(keys.eval)

    def bare():
        o = ffi.new("veil_ciphertexts **")
        assert lib.veil_evaluator_run(ev, o, h_in, ffi.NULL, ffi.NULL, ffi.NULL) == 0
        lib.veil_ciphertexts_free(o[0])
    runs, bare_runs = [], []
    for _ in range(REPS):
        runs.append(timed(lambda: m.run(ct, keys.eval, threads=1), 1)[0])
        bare_runs.append(timed(bare, 1)[0])
    t_run, t_bare = statistics.median(runs), statistics.median(bare_runs)
    out = m.run(ct, keys.eval, threads=1)
    t_dec, _, _ = timed(lambda: m.decrypt(out, keys))
    t_e2e, _, _ = timed(lambda: m.decrypt(m.run(m.encrypt(x1, keys), keys.eval, threads=1), keys, argmax=True))
    k = min(IMAGES, len(x))
    cls = np.array([m.decrypt(m.run(m.encrypt(x[i:i + 1], keys), keys.eval, threads=1), keys, argmax=True)[0]
                    for i in range(k)])
    record(tool="veil", version=veil.__version__, task="cnn_one", samples=1, reps=REPS,
           params=f"CKKS latency, N = {info.n}, {info.rotations} rotation keys, depth {info.depth}, "
                  f"scale 2^{info.scale_bits}",
           keygen_s=t_keygen, encrypt_s=t_enc, server_s=t_run, server_s_runs=runs, server_s_per_sample=t_run,
           decrypt_s=t_dec, end_to_end_s=t_e2e, c_run_s=t_bare, c_run_runs=bare_runs,
           run_wrapper_overhead=t_run / t_bare - 1, eval_key_bytes=len(keys.eval.to_bytes()),
           ct_bytes_per_sample=len(ct.to_bytes()), out_bytes_per_sample=len(out.to_bytes()),
           accuracy=float(np.mean(cls == labels[:k])), plain_accuracy=float(np.mean(plain[:k] == labels[:k])),
           agree=float(np.mean(cls == plain[:k])), accuracy_samples=k,
           note="in-process: keys, context and evaluator kept between calls")


if __name__ == "__main__":
    main()
