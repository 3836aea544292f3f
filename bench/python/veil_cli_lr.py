"""Python's overhead over the C CLI on the same task: the logistic regression on the 8,192 records, the same
ONNX file, calibration file, key set and ciphertexts for both. Timed, each VEIL_BENCH_REPS times (median):

- cli_eval: the `veil eval --threads 1` process (start, read the model, plan, read the evaluation keys and the
  ciphertexts, evaluate, write the result);
- py_eval_process: a Python process doing exactly that through the package (veil_eval_like.py);
- py_run: m.run in a process that keeps the model, keys and ciphertexts loaded (the server's step alone);
- c_run: the same evaluation as one bare veil_evaluator_run call through cffi (what m.run wraps);
- end to end: CLI keygen + encrypt (CSV) + eval + decrypt (CSV) processes, against one Python process doing
  compile + keygen + encrypt + run + decrypt from the same CSV (veil_e2e_like.py), and keygen + encrypt + run +
  decrypt in a process that keeps the compiled model (py_e2e_inprocess).

usage: veil_cli_lr.py VEIL_CLI   (run with the Python that has the veil package)"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import DATA, REPS, lr_data, record, timed  # noqa: E402

import veil  # noqa: E402


def main(cli):
    d = lr_data()
    onnx_path, calib, xcsv = (os.path.join(DATA, f) for f in ("lr.onnx", "calib.csv", "X.csv"))
    import pickle
    with open(os.path.join(DATA, "lr_model.pkl"), "rb") as f:
        clf = pickle.load(f)
    with open(onnx_path, "wb") as f:
        f.write(veil.compile(clf, calibrate=d["calib"]).onnx)
    work = tempfile.mkdtemp(prefix="veil-bench-cli-")
    keys_dir, xct, yct, ycsv = (os.path.join(work, f) for f in ("keys", "x.ct", "y.ct", "y.csv"))
    model_opts = ["--model", onnx_path, "--calibrate", calib]

    def sh(*args):
        subprocess.run(list(args), check=True, stdout=subprocess.DEVNULL)

    def cli_e2e():
        shutil.rmtree(keys_dir, ignore_errors=True)
        sh(cli, "keygen", *model_opts, "--out", keys_dir, "--quiet")
        sh(cli, "encrypt", "--keys", keys_dir, "--in", xcsv, "--out", xct)
        sh(cli, "eval", *model_opts, "--eval-keys", os.path.join(keys_dir, "eval"), "--in", xct, "--out", yct,
           "--threads", "1", "--quiet")
        sh(cli, "decrypt", "--keys", keys_dir, "--in", yct, "--out", ycsv)
    t_cli_e2e, _, _ = timed(cli_e2e)
    cli_prob = np.loadtxt(ycsv, delimiter=",")

    py = sys.executable
    t_py_e2e, _, _ = timed(lambda: sh(py, os.path.join(HERE, "veil_e2e_like.py"), onnx_path, calib, xcsv,
                                      os.path.join(work, "py_y.csv")))
    py_prob = np.loadtxt(os.path.join(work, "py_y.csv"), delimiter=",")

    # the server's step, on the CLI's keys and ciphertexts
    evalc = [cli, "eval", *model_opts, "--eval-keys", os.path.join(keys_dir, "eval"), "--in", xct, "--out", yct,
             "--threads", "1", "--quiet"]
    t_cli_eval, cli_runs, _ = timed(lambda: sh(*evalc))
    pyc = [py, os.path.join(HERE, "veil_eval_like.py"), onnx_path, calib, os.path.join(keys_dir, "eval"), xct,
           os.path.join(work, "py_y.ct")]
    t_py_eval, py_runs, _ = timed(lambda: sh(*pyc))
    m = veil.compile(onnx_path, calibrate=np.loadtxt(calib, delimiter=","))
    keys = veil.KeySet.load(keys_dir)
    ct = veil.Ciphertexts.load(xct, keys.eval)
    out = m.run(ct, keys.eval, threads=1)
    same = np.max(np.abs(m.decrypt(out, keys)[:, 0] - cli_prob))

    # the same evaluation as one bare C call through cffi (the package's evaluator and input handle, no
    # wrapper around it): what m.run adds over the library
    from veil._lib import ffi, lib
    ev, h_in = m._evaluator(keys.eval, 1), ct._handle_for(keys.eval)

    def bare():
        o = ffi.new("veil_ciphertexts **")
        assert lib.veil_evaluator_run(ev, o, h_in, ffi.NULL, ffi.NULL, ffi.NULL) == 0
        lib.veil_ciphertexts_free(o[0])
    bare()
    # interleaved, so that the machine's drift hits both alike
    run_runs, bare_runs = [], []
    for _ in range(max(REPS, 30)):
        run_runs.append(timed(lambda: m.run(ct, keys.eval, threads=1), 1)[0])
        bare_runs.append(timed(bare, 1)[0])
    t_run, t_bare = statistics.median(run_runs), statistics.median(bare_runs)

    # end to end in one process that keeps the compiled model (keygen, encrypt, run, decrypt of the arrays)
    X = np.loadtxt(xcsv, delimiter=",")
    t_py_inproc, _, _ = timed(lambda: (lambda k: m.decrypt(m.run(m.encrypt(X, k), k.eval, threads=1), k))(m.keygen()))
    shutil.rmtree(work, ignore_errors=True)
    record(tool="veil", version=veil.__version__, task="overhead", samples=len(d["X"]), reps=REPS,
           cli_eval_s=t_cli_eval, cli_eval_runs=cli_runs, py_eval_process_s=t_py_eval, py_eval_process_runs=py_runs,
           py_run_s=t_run, py_run_runs=run_runs, c_run_s=t_bare, c_run_runs=bare_runs,
           run_wrapper_overhead=t_run / t_bare - 1, py_e2e_inprocess_s=t_py_inproc, cli_e2e_s=t_cli_e2e, py_e2e_s=t_py_e2e,
           eval_process_overhead=t_py_eval / t_cli_eval - 1, e2e_overhead=t_py_e2e / t_cli_e2e - 1,
           run_vs_cli_eval=t_run / t_cli_eval, max_abs_diff_py_cli=float(same),
           max_abs_diff_e2e=float(np.max(np.abs(py_prob - cli_prob))),
           note="same ONNX, calibration, keys and ciphertexts; the Python run reads the CLI's key files")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
