"""Shared by every script of bench/python: timing, the JSON-lines record, the prepared data.

Each script runs one tool on one task and appends one JSON object per line to OUT/results.jsonl
(run.sh sets VEIL_BENCH_OUT). Times are medians over the repetitions (`reps` in the record); every time is
wall-clock seconds on one thread (run.sh pins the process to one core).
"""
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

OUT = os.environ.get("VEIL_BENCH_OUT", "/tmp/veil-bench-python")
DATA = os.environ.get("VEIL_BENCH_DATA", os.path.join(OUT, "data"))
REPS = int(os.environ.get("VEIL_BENCH_REPS", "5"))


def timed(fn, reps=None):
    """(median seconds, all the times, the last result) of fn() over reps runs."""
    times, result = [], None
    for _ in range(reps or REPS):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, result


def once(fn):
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def record(**fields):
    """Appends one record to OUT/results.jsonl and prints it."""
    fields.setdefault("python", platform.python_version())
    fields.setdefault("time_utc", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    line = json.dumps(fields, sort_keys=True)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "results.jsonl"), "a") as f:
        f.write(line + "\n")
    print(line, flush=True)


def lr_data():
    """The logistic-regression task (prepare.py): X (8192, 30) standardized, y, the plaintext model's w, b,
    the 569 standardized records (calibration), and the plaintext predictions."""
    d = np.load(os.path.join(DATA, "lr.npz"))
    return {k: d[k] for k in d.files}


def cnn_data():
    """The CNN task (prepare.py): the trained weights, the test images (n, 784) in [0, 1], their labels, the
    calibration images, and the plaintext model's classes of the test images."""
    d = np.load(os.path.join(DATA, "cnn.npz"))
    return {k: d[k] for k in d.files}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def cnn_plain(d, x):
    """The float64 CNN on images (n, 784): Conv 5x5 stride 2 (5 channels) -> square -> 720 -> 100 -> square
    -> 10, in numpy (the reference for every tool)."""
    img = x.reshape(-1, 28, 28)
    n = img.shape[0]
    cols = np.empty((n, 144, 25))
    for i in range(12):
        for j in range(12):
            cols[:, i * 12 + j, :] = img[:, 2 * i:2 * i + 5, 2 * j:2 * j + 5].reshape(n, 25)
    conv = np.einsum("npk,ck->ncp", cols, d["conv_w"].reshape(5, 25)) + d["conv_b"][None, :, None]
    h = (conv ** 2).reshape(n, 720)
    h = (h @ d["fc1_w"].T + d["fc1_b"]) ** 2
    return h @ d["fc2_w"].T + d["fc2_b"]


def fail(tool, task, why):
    """A record saying that a tool could not run a task, and why."""
    record(tool=tool, task=task, failed=str(why))
    sys.exit(0)
