#!/usr/bin/python3
"""The tables of OUT/results.jsonl (the latest record of each tool and task), as markdown, to stdout and to
OUT/table.md.   usage: table.py OUT"""
import json
import os
import sys


# the tables' short "how"; each record's params and note say it all
HOW = {
    ("veil", "lr_batch"): "CKKS throughput (N = 8192, 4,096 records per ciphertext set), `m.run` of the whole batch",
    ("tenseal", "lr_batch"): "one vector per feature and 4,096 records (N = 8192), `auto_rescale` off, bias on a "
                             "column of ones: its fastest",
    ("tenseal", "lr_batch_default"): "the same with TenSEAL's default rescale after each product",
    ("tenseal", "lr_batch_rows"): "one vector per record, `.dot` (its tutorial's), 64 records timed",
    ("concrete-ml", "lr_batch"): "`from_sklearn_model`, 8 bits, one record per call: 64 timed, scaled",
    ("veil", "lr_one"): "CKKS latency, N = 8192, 5 rotation keys",
    ("tenseal", "lr_one"): "one vector, `.dot`, N = 8192, Galois keys",
    ("concrete-ml", "lr_one"): "8-bit circuit, one record",
    ("veil", "cnn_one"): "CKKS latency, N = 16384, 28 rotation keys",
    ("tenseal", "cnn_one"): "im2col + `conv2d_im2col` + `mm` (its MNIST tutorial's), N = 16384",
    ("concrete-ml", "cnn_one"): "`compile_torch_model`, 6 bits, `rounding_threshold_bits` 6; run once",
}


def how(r):
    return HOW.get((r["tool"], r["task"]), r.get("params", ""))


def load(out):
    latest = {}
    with open(os.path.join(out, "results.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            latest[(r["tool"], r["task"])] = r
    return latest


def b(n):
    if n is None:
        return ""
    for unit, k in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.3g} {unit}"
    return f"{n:.0f} B"


def s(t, unit="s"):
    if t is None:
        return ""
    v = t * {"s": 1, "ms": 1e3, "us": 1e6}[unit]
    return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"


def acc(r):
    if "accuracy" not in r:
        return ""
    n = r.get("accuracy_samples", r.get("samples"))
    return f"{r['accuracy']:.4f} ({r['plain_accuracy']:.4f}), {n} samples, {r['agree']:.4f} agree"


def x(ref, other):
    if not (ref and other):
        return ""
    r = other / ref
    return f"**{r:,.0f}x**" if r >= 100 else f"**{r:.1f}x**"


def failed(rows, tool, task, cols):
    r = rows.get((tool, task))
    if r and "failed" in r:
        return f"| {tool} | failed: {r['failed']} |" + " |" * (cols - 2)
    return None


def main(out):
    rows = load(out)
    lines = []
    add = lines.append
    v = rows.get(("veil", "lr_batch"))
    add("**Logistic regression, breast cancer, 8,192 records in one batch** (server time per record; Veil's "
        "factor: the peer's time over Veil's)")
    add("")
    add("| tool | how | encrypt 8,192 (s) | server per record (µs) | Veil faster by | decrypt (s) | evaluation keys |"
        " ciphertext per record | accuracy (plaintext), records, agreement |")
    add("|---|---|---|---|---|---|---|---|---|")
    for tool, task in (("veil", "lr_batch"), ("tenseal", "lr_batch"), ("tenseal", "lr_batch_default"),
                       ("tenseal", "lr_batch_rows"), ("concrete-ml", "lr_batch")):
        r = rows.get((tool, task))
        if r is None:
            continue
        if "failed" in r:
            add(f"| {tool} {r.get('version', '')} | failed: {r['failed']} | | | | | | | |")
            continue
        add(f"| {tool} {r['version']} | {how(r)} "
            f"| {s(r.get('encrypt_s'))} | {s(r['server_s_per_sample'], 'us')} "
            f"| {x(v and v['server_s_per_sample'], r['server_s_per_sample']) if tool != 'veil' else ''} "
            f"| {s(r.get('decrypt_s'))} | {b(r['eval_key_bytes'])} | {b(r['ct_bytes_per_sample'])} | {acc(r)} |")
    add("")
    v = rows.get(("veil", "lr_one"))
    add("**Logistic regression, one record, in process** (keys and contexts kept loaded between calls; ms)")
    add("")
    add("| tool | how | encrypt | server | Veil faster by | decrypt | end to end | evaluation keys | ciphertext |"
        " accuracy (plaintext), records, agreement |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    for tool in ("veil", "tenseal", "concrete-ml"):
        r = rows.get((tool, "lr_one"))
        if r is None:
            continue
        if "failed" in r:
            add(f"| {tool} | failed: {r['failed']} | | | | | | | | |")
            continue
        add(f"| {tool} {r['version']} | {how(r)} | {s(r['encrypt_s'], 'ms')} | {s(r['server_s'], 'ms')} "
            f"| {x(v and v['server_s'], r['server_s']) if tool != 'veil' else ''} | {s(r['decrypt_s'], 'ms')} "
            f"| {s(r.get('end_to_end_s'), 'ms')} | {b(r['eval_key_bytes'])} | {b(r['ct_bytes_per_sample'])} "
            f"| {acc(r)} |")
    add("")
    v = rows.get(("veil", "cnn_one"))
    add("**The CryptoNets-shaped CNN (Fashion-MNIST), one image** (seconds)")
    add("")
    add("| tool | how | keygen | encrypt | server | Veil faster by | decrypt | evaluation keys | ciphertext |"
        " accuracy (plaintext), images, agreement |")
    add("|---|---|---|---|---|---|---|---|---|---|")
    for tool in ("veil", "tenseal", "concrete-ml"):
        r = rows.get((tool, "cnn_one"))
        if r is None:
            continue
        if "failed" in r:
            add(f"| {tool} | failed: {r['failed']} | | | | | | | | |")
            continue
        add(f"| {tool} {r['version']} | {how(r)} | {s(r['keygen_s'])} | {s(r['encrypt_s'])} "
            f"| {s(r['server_s'])} | {x(v and v['server_s'], r['server_s']) if tool != 'veil' else ''} "
            f"| {s(r['decrypt_s'])} | {b(r['eval_key_bytes'])} | {b(r['ct_bytes_per_sample'])} | {acc(r)} |")
    add("")
    r = rows.get(("veil", "overhead"))
    if r:
        add("**Python against the C CLI, the same 8,192-record batch** (same ONNX, calibration, keys and "
            "ciphertexts; ms)")
        add("")
        add("| what | CLI (C) | Python | Python over C |")
        add("|---|---|---|---|")
        add(f"| the server's step in process: `m.run` against one bare `veil_evaluator_run` call | "
            f"{s(r['c_run_s'], 'ms')} | {s(r['py_run_s'], 'ms')} | {100 * r['run_wrapper_overhead']:+.1f}% |")
        c = rows.get(("veil", "cnn_one"))
        if c and "c_run_s" in c:
            add(f"| the same for the CNN, one image (latency packing) | {s(c['c_run_s'], 'ms')} "
                f"| {s(c['server_s'], 'ms')} | {100 * c['run_wrapper_overhead']:+.1f}% |")
        add(f"| `veil eval` process against a Python process doing the same (`veil_eval_like.py`) | "
            f"{s(r['cli_eval_s'], 'ms')} | {s(r['py_eval_process_s'], 'ms')} | {100 * r['eval_process_overhead']:+.0f}% |")
        add(f"| `veil eval` process against `m.run` in a process keeping keys loaded | {s(r['cli_eval_s'], 'ms')} "
            f"| {s(r['py_run_s'], 'ms')} | {100 * (r['run_vs_cli_eval'] - 1):+.0f}% |")
        add(f"| end to end: CLI keygen + encrypt + eval + decrypt processes against one Python process "
            f"(`veil_e2e_like.py`) | {s(r['cli_e2e_s'], 'ms')} | {s(r['py_e2e_s'], 'ms')} "
            f"| {100 * r['e2e_overhead']:+.0f}% |")
        add(f"| end to end, Python keeping the compiled model loaded | {s(r['cli_e2e_s'], 'ms')} "
            f"| {s(r['py_e2e_inprocess_s'], 'ms')} | {100 * (r['py_e2e_inprocess_s'] / r['cli_e2e_s'] - 1):+.0f}% |")
        add("")
        add(f"Python's and the CLI's decrypted outputs differ by at most {r['max_abs_diff_py_cli']:.3g} "
            f"(same ciphertexts) and {r['max_abs_diff_e2e']:.3g} (own keys).")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "table.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
