#!/usr/bin/env python3
"""The mission in Python: a hospital encrypts its patients' records, a cloud evaluates a breast-cancer model
on them holding only evaluation keys, the hospital decrypts the predictions (examples/hospital/run.sh with
the CLI).

The hospital trains a scikit-learn Pipeline (StandardScaler + LogisticRegression) on 70% of scikit-learn's
breast-cancer data and compiles it directly. The cloud is a function that receives bytes only (the model's
ONNX, the evaluation keys, the ciphertexts) and returns bytes (the encrypted predictions): it never holds a
secret key. Printed: each step's time, the bytes crossing the wire, and the accuracy of the encrypted
predictions beside the plaintext model's.

usage: hospital.py [--patients N] [--serve | --server URL [--model-name NAME]] [--export DIR]

  --patients N   encrypt only the first N test patients (default: all 171)
  --serve        also do it over HTTP against `veil serve` started here on a loopback port (the veil program:
                 $VEIL_CLI, else `veil` on PATH, else build/veil of this repository)
  --server URL   also do it over HTTP against a running `veil serve` that hosts this model as NAME
                 (default breast_cancer; write its files with --export DIR)
  --export DIR   write DIR/breast_cancer.onnx and its side file (breast_cancer.json: the calibration rows,
                 breast_cancer.calib.csv), the model as `veil serve --models DIR` hosts it

Needs: numpy, scikit-learn, onnx (Debian: python3-numpy, python3-sklearn, python3-onnx) and the veil package.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import veil  # first: it sets OMP_WAIT_POLICY=passive before scikit-learn loads the OpenMP runtime

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


TIMES = []


def step(name, fn, *args):
    """Runs and times one step."""
    t0 = time.perf_counter()
    result = fn(*args)
    TIMES.append((name, time.perf_counter() - t0))
    print(f"  {name:<48} {TIMES[-1][1]:8.3f} s")
    return result


# ---- the cloud: bytes in, bytes out ----

def cloud(model_onnx: bytes, eval_key_bytes: bytes, ciphertext_bytes: bytes) -> bytes:
    """What the cloud does with what it received: no secret key here (EvalKeys.from_bytes refuses one)."""
    model = veil.compile(model_onnx)
    eval_keys = veil.EvalKeys.from_bytes(eval_key_bytes)
    patients = veil.Ciphertexts.from_bytes(ciphertext_bytes)
    return model.run(patients, eval_keys).to_bytes()


# ---- the hospital ----

def train(x_train, y_train):
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)).fit(x_train, y_train)


def results(name, prob, plain_prob, labels):
    """Prints accuracy encrypted vs plaintext and the largest difference; True when the decisions agree."""
    enc, plain = (prob >= 0.5).astype(int), (plain_prob >= 0.5).astype(int)
    same = int((enc == plain).sum())
    diff = float(np.max(np.abs(prob - plain_prob)))
    print(f"results on {len(labels)} patients ({name}):")
    print(f"  {'accuracy, ' + name + ' predictions':<48} {np.mean(enc == labels):8.4f}")
    print(f"  {'accuracy, plaintext predictions':<48} {np.mean(plain == labels):8.4f}")
    print(f"  {'identical decisions':<48} {same:8d} of {len(labels)}")
    print(f"  {'largest |' + name + ' - plaintext| probability':<48} {diff:8.3g}")
    return same == len(labels) and diff <= 1e-3


def find_veil():
    for candidate in (os.environ.get("VEIL_CLI"), shutil.which("veil"),
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "veil")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("hospital.py: --serve needs the veil program ($VEIL_CLI, on PATH, or build/veil)")


def export(models: str, model_onnx: bytes, x_train) -> None:
    """The model as `veil serve --models DIR` hosts it: DIR/breast_cancer.onnx, and its side file naming the
    calibration rows, so that the plan the server gives clients (veil.Client.keygen, `veil keygen --server`)
    admits the patients' range (docs/net.md)."""
    os.makedirs(models, exist_ok=True)
    with open(os.path.join(models, "breast_cancer.onnx"), "wb") as f:
        f.write(model_onnx)
    np.savetxt(os.path.join(models, "breast_cancer.calib.csv"), x_train, delimiter=",", fmt="%.17g")
    with open(os.path.join(models, "breast_cancer.json"), "w") as f:
        f.write('{"calibrate": "breast_cancer.calib.csv"}\n')


def start_server(model_onnx: bytes, x_train, work: str):
    """`veil serve` on a loopback port with the model as breast_cancer: (process, URL, the hospital's token)."""
    models = os.path.join(work, "models")
    export(models, model_onnx, x_train)
    # the hospital is a tenant: `veil token add` prints its token once (its last line), kept hashed in the store
    token = subprocess.run([find_veil(), "token", "add", "--store", os.path.join(work, "store"), "--tenant", "hospital"],
                           check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    port_file = os.path.join(work, "port.txt")
    with open(port_file, "w") as out, open(os.path.join(work, "serve.log"), "w") as log:
        server = subprocess.Popen([find_veil(), "serve", "--models", models, "--store", os.path.join(work, "store"),
                                   "--listen", "127.0.0.1:0", "--quiet"], stdout=out, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        with open(port_file) as f:
            line = f.read()
        if "listening on port" in line:
            return server, f"http://127.0.0.1:{line.split()[3]}", token
        if server.poll() is not None:
            break
        time.sleep(0.1)
    server.kill()
    sys.exit("hospital.py: veil serve did not start (see its log in " + work + ")")


def over_http(url, name, keys, x_test, plain_prob, labels, token=None):
    """The same against `veil serve`: the client uploads keys.eval once, sends ciphertexts, decrypts. The
    token: the tenant's (None: $VEIL_TOKEN)."""
    client = veil.Client(url, token=token)
    prob = step(f"hospital: predict against {url}", client.predict, name, x_test, keys)[:, 0]
    sent, received = client.traffic()
    print(f"  {'bytes sent (evaluation keys, ciphertexts)':<48} {sent:10d}")
    print(f"  {'bytes received (encrypted predictions)':<48} {received:10d}")
    return results("HTTP", prob, plain_prob, labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--patients", type=int, default=0)
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--server")
    ap.add_argument("--model-name", default="breast_cancer")
    ap.add_argument("--export")
    args = ap.parse_args()

    data = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(data.data, data.target, test_size=0.3, random_state=0,
                                                        stratify=data.target)
    if args.patients:
        x_test, y_test = x_test[:args.patients], y_test[:args.patients]

    print("== Veil in Python: encrypted breast-cancer screening ==")
    print("timings:")
    pipe = step("hospital: train the model (scikit-learn)", train, x_train, y_train)
    # calibrate: the inputs' range (each feature's over the training records, widened by half its span), from
    # which the plan bounds every value the encrypted model computes; encrypt refuses records outside it
    model = step("hospital: compile the pipeline", lambda: veil.compile(pipe, calibrate=x_train))
    keys = step("hospital: generate keys", model.keygen)
    patients = step(f"hospital: encrypt {len(x_test)} patients", model.encrypt, x_test, keys)

    # What crosses the wire to the cloud: the model, the evaluation keys, the ciphertexts. Nothing else.
    wire = {"model.onnx": model.onnx, "eval.keys": keys.eval.to_bytes(), "patients.ct": patients.to_bytes()}
    answer = step("cloud: evaluate the model on ciphertexts", cloud, wire["model.onnx"], wire["eval.keys"],
                  wire["patients.ct"])

    predictions = veil.Ciphertexts.from_bytes(answer)
    prob = step("hospital: decrypt the predictions", model.decrypt, predictions, keys)[:, 0]
    plain_prob = step("hospital: the same model in plaintext", model.predict, x_test)[:, 0]
    sklearn_prob = pipe.predict_proba(x_test)[:, 1]

    print("sent to the cloud:")
    for name, blob in wire.items():
        print(f"  {name:<48} {len(blob):10d} bytes")
    print("sent back:")
    print(f"  {'predictions.ct':<48} {len(answer):10d} bytes")

    ok = results("encrypted", prob, plain_prob, y_test)
    print(f"  {'largest |plaintext - scikit-learn| probability':<48} "
          f"{np.max(np.abs(plain_prob - sklearn_prob)):8.3g}")

    if args.export:
        export(args.export, model.onnx, x_train)
    if args.serve or args.server:
        print("over HTTP:")
        if args.server:
            ok = over_http(args.server, args.model_name, keys, x_test, plain_prob, y_test) and ok
        else:
            work = tempfile.mkdtemp(prefix="veil-hospital-")
            server, url, token = start_server(model.onnx, x_train, work)
            try:
                ok = over_http(url, "breast_cancer", keys, x_test, plain_prob, y_test, token) and ok
            finally:
                server.terminate()
                server.wait()
                shutil.rmtree(work, ignore_errors=True)
    if not ok:
        sys.exit("hospital.py: the encrypted predictions differ from the plaintext model's")


if __name__ == "__main__":
    main()
