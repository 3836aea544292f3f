"""The examples in examples/python, each run as a user runs it (a subprocess of this interpreter, the installed
package), with small sizes; the assertions read the lines they print: the encrypted results agree with the
plaintext model's. VEIL_SOURCE_DIR (the repository) and VEIL_CLI (the veil program, for `veil serve`) come
from tests/test_python.sh."""
import os
import re
import subprocess
import sys

import pytest

SOURCE = os.environ.get("VEIL_SOURCE_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
EXAMPLES = os.path.join(SOURCE, "examples", "python")


def run_example(name, *args, timeout=300):
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], capture_output=True, text=True,
                          timeout=timeout, cwd=EXAMPLES)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    print(proc.stdout)
    return proc.stdout


def value(out, label, occurrence=0):
    """The number printed after `label` (its occurrence-th line)."""
    found = re.findall(r"^\s*" + re.escape(label) + r"\s+([-+0-9.e]+)", out, re.M)
    assert len(found) > occurrence, f"no line {label!r} in:\n{out}"
    return float(found[occurrence])


def agreement(out, label, occurrence=0):
    """(same, of) from a line `label   same of n`."""
    found = re.findall(r"^\s*" + re.escape(label) + r"\s+(\d+) of (\d+)", out, re.M)
    assert len(found) > occurrence, f"no line {label!r} in:\n{out}"
    return tuple(map(int, found[occurrence]))


def test_hospital_local_and_over_http():
    if not os.environ.get("VEIL_CLI"):
        pytest.skip("VEIL_CLI (the veil program, for veil serve) is not set")
    out = run_example("hospital.py", "--patients", "60", "--serve")
    assert agreement(out, "identical decisions") == (60, 60)
    assert agreement(out, "identical decisions", 1) == (60, 60)  # over HTTP
    assert value(out, "largest |encrypted - plaintext| probability") < 1e-3
    assert value(out, "largest |HTTP - plaintext| probability") < 1e-3
    assert value(out, "accuracy, encrypted predictions") == value(out, "accuracy, plaintext predictions")
    assert value(out, "accuracy, encrypted predictions") > 0.9
    assert value(out, "eval.keys") > 0 and value(out, "patients.ct") > 0
    assert value(out, "bytes sent (evaluation keys, ciphertexts)") > value(out, "patients.ct")
    assert "cloud: evaluate the model on ciphertexts" in out


def test_sklearn_pipeline():
    out = run_example("sklearn_pipeline.py", "--components", "4")
    assert "StandardScaler + PCA + LogisticRegression" in out
    same, n = agreement(out, "identical classes")
    assert same == n == 54
    assert value(out, "largest |encrypted - plaintext| probability") < 1e-3
    assert value(out, "accuracy, encrypted") == value(out, "accuracy, plaintext (scikit-learn)")
    assert value(out, "accuracy, encrypted") > 0.85


def test_torch_model_both_packings():
    out = run_example("torch_model.py", "--epochs", "150", "--images", "120", "--latency-images", "2")
    assert agreement(out, "identical classes (argmax)") == (120, 120)      # throughput
    assert agreement(out, "identical classes (argmax)", 1) == (2, 2)       # latency
    assert value(out, "accuracy, encrypted") == value(out, "accuracy, plaintext")
    assert value(out, "accuracy, encrypted") > 0.85
    assert value(out, "largest |encrypted - plaintext| score") < 1e-2
    assert value(out, "largest |encrypted - plaintext| score", 1) < 1e-2
    assert "ckks latency" in out and "ckks throughput" in out


def test_training():
    out = run_example("training.py", "--iterations", "3", "--features", "8")
    same, n = agreement(out, "identical decisions, encrypted vs plaintext")
    assert same >= n - 2
    assert value(out, "largest |encrypted - plaintext| weight") < 0.05
    enc = re.search(r"encrypted \(veil\.train\)\s+accuracy ([0-9.]+)", out)
    assert enc and float(enc.group(1)) > 0.8, out
    inference = re.search(r"encrypted inference with the trained model\s+largest difference ([-+0-9.e]+)", out)
    assert inference and float(inference.group(1)) < 1e-3, out
