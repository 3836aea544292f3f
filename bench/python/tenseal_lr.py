"""TenSEAL on the logistic regression. Two ways a TenSEAL user packs it:
- columns (the faster one, the headline): each CKKS vector holds one feature of 4,096 records (N = 8192), so
  the server computes w . x + b as 30 plaintext-scalar products and additions per 4,096 records; the fastest
  form (auto_rescale off, the bias on a column of ones) is the lr_batch record, TenSEAL's default form
  (a rescale after each product) lr_batch_default;
- rows (TenSEAL's logistic-regression tutorial): one vector per record and CKKSVector.dot, which needs
  rotations (Galois keys); timed on a subset and given per record; also the one-record latency figure.
Same weights as every tool (prepare.py); the sigmoid is applied after decryption, as Veil does by default.
Run with the peers' Python (run.sh: the throw-away venv)."""
import os
import sys

import numpy as np
import tenseal as ts

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import REPS, lr_data, once, record, timed  # noqa: E402

VERSION = getattr(ts, "__version__", "0.3")
ROWS_SUBSET = int(os.environ.get("VEIL_BENCH_TENSEAL_ROWS", "64"))


def context(galois):
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=8192, coeff_mod_bit_sizes=[60, 40, 60])
    ctx.global_scale = 2 ** 40
    if galois:
        ctx.generate_galois_keys()
    return ctx


def public_bytes(ctx):
    return len(ctx.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=True,
                             save_relin_keys=True))


def main():
    d = lr_data()
    X, y, w, b, plain = d["X"], d["y"], d["w"], float(d["b"][0]), d["plain"]
    n, f = X.shape
    wl = [float(v) for v in w]

    # columns: 2 blocks of 4,096 records, one vector per feature. Two ways: TenSEAL's default (a rescale after
    # every product) and the fastest its Python API allows: auto_rescale off, the 30 products summed at scale
    # 2^80 and decrypted there; the bias then rides on a 31st encrypted column of ones (a plaintext added to a
    # ciphertext must match its scale, which the API cannot encode at 2^80).
    for fast in (True, False):
        t_keygen, ctx = once(lambda: context(False))
        ctx.auto_rescale = not fast
        slots = 4096
        blocks = [X[i:i + slots] for i in range(0, n, slots)]
        cols_per_block = f + 1 if fast else f

        def encrypt():
            return [[ts.ckks_vector(ctx, blk[:, j].tolist()) for j in range(f)] +
                    ([ts.ckks_vector(ctx, [1.0] * len(blk))] if fast else []) for blk in blocks]
        t_enc, _, cts = timed(encrypt)
        wb = wl + [b]

        def server():
            outs = []
            for cols in cts:
                acc = cols[0] * wb[0]
                for j in range(1, cols_per_block):
                    acc += cols[j] * wb[j]
                outs.append(acc if fast else acc + b)
            return outs
        server()
        t_run, runs, outs = timed(server)
        t_dec, _, logits = timed(lambda: np.concatenate([np.array(o.decrypt()) for o in outs]))
        cls = (logits > 0).astype(np.int64)
        ref = X @ w + b
        ct_bytes = sum(len(c.serialize()) for cols in cts for c in cols)
        how = ("auto_rescale off, 30 products and the bias (times a column of ones) summed, one scale 2^80, no "
               "rescale" if fast else "TenSEAL's default: a rescale after each product, then the bias")
        record(tool="tenseal", version=VERSION, task="lr_batch" if fast else "lr_batch_default", samples=n, reps=REPS,
               params="CKKS N = 8192, Q = {60, 40, 60}, scale 2^40; column packing: one vector per feature per "
                      "4,096 records; " + how,
               keygen_s=t_keygen, encrypt_s=t_enc, server_s=t_run, server_s_runs=runs, server_s_per_sample=t_run / n,
               decrypt_s=t_dec, eval_key_bytes=public_bytes(ctx), ct_bytes_per_sample=ct_bytes / n,
               out_bytes_per_sample=sum(len(o.serialize()) for o in outs) / n,
               accuracy=float(np.mean(cls == y)), plain_accuracy=float(np.mean(plain == y)),
               agree=float(np.mean(cls == plain)), max_abs_err_logit=float(np.max(np.abs(logits - ref))),
               note="evaluation keys: the public context (public and relinearization keys)")

    # rows: one vector per record, .dot (the tutorial's way); Galois keys needed
    t_keygen1, ctx1 = once(lambda: context(True))
    k = min(ROWS_SUBSET, n)
    x1 = X[0].tolist()
    reps1 = max(REPS, 20)
    t_enc1, _, v1 = timed(lambda: ts.ckks_vector(ctx1, x1), reps1)
    t_run1, runs1, o1 = timed(lambda: v1.dot(wl) + b, reps1)
    t_dec1, _, _ = timed(lambda: o1.decrypt(), reps1)
    t_e2e, _, _ = timed(lambda: (ts.ckks_vector(ctx1, x1).dot(wl) + b).decrypt(), reps1)
    vs = [ts.ckks_vector(ctx1, X[i].tolist()) for i in range(k)]
    t_rows, _, outs1 = timed(lambda: [v.dot(wl) + b for v in vs], 3)
    cls1 = np.array([int(o.decrypt()[0] > 0) for o in outs1])
    common = dict(tool="tenseal", version=VERSION, eval_key_bytes=public_bytes(ctx1),
                  ct_bytes_per_sample=len(v1.serialize()), out_bytes_per_sample=len(o1.serialize()),
                  params="CKKS N = 8192, Q = {60, 40, 60}, scale 2^40, Galois keys; one vector per record, .dot",
                  accuracy=float(np.mean(cls1 == y[:k])), plain_accuracy=float(np.mean(plain[:k] == y[:k])),
                  agree=float(np.mean(cls1 == plain[:k])), accuracy_samples=k)
    record(task="lr_one", samples=1, reps=reps1, keygen_s=t_keygen1, encrypt_s=t_enc1, server_s=t_run1,
           server_s_runs=runs1, server_s_per_sample=t_run1, decrypt_s=t_dec1, end_to_end_s=t_e2e, **common)
    record(task="lr_batch_rows", samples=k, reps=3, keygen_s=t_keygen1, server_s=t_rows, server_s_per_sample=t_rows / k,
           note=f"rows timed on {k} records, given per record (x 8,192 for the batch)", **common)


if __name__ == "__main__":
    main()
