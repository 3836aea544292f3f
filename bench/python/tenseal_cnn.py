"""TenSEAL on the CryptoNets-shaped CNN, one image, the way its encrypted-MNIST tutorial does it: the image
im2col-encoded in one CKKS vector (ts.im2col_encoding), one conv2d_im2col per output channel, pack_vectors,
square, mm (vector-matrix product, rotations), square, mm. Same weights as every tool (prepare.py).
Parameters: N = 16384, Q = {60, 6 x 40, 60}, scale 2^40. The tutorial's N = 8192 (Q = {31, 6 x 26, 31},
scale 2^26, VEIL_BENCH_TENSEAL_N=8192) does not hold this network's im2col encoding (25 kernel positions x
144 windows, padded, above 4,096 slots): TenSEAL splits the vector into chunks and refuses conv2d_im2col on
them. Each of the first VEIL_BENCH_TENSEAL_CNN_IMAGES test images (default 5; about 30 s each) is encrypted,
evaluated and decrypted and timed; the figures are the medians, the accuracy over them.
Run with the peers' Python (run.sh: the throw-away venv)."""
import os
import statistics
import sys

import numpy as np
import tenseal as ts

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cnn_data, cnn_plain, once, record  # noqa: E402

VERSION = getattr(ts, "__version__", "0.3")
IMAGES = int(os.environ.get("VEIL_BENCH_TENSEAL_CNN_IMAGES", "5"))
N = int(os.environ.get("VEIL_BENCH_TENSEAL_N", "16384"))


def context():
    if N == 8192:
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=8192, coeff_mod_bit_sizes=[31] + [26] * 6 + [31])
        ctx.global_scale = 2 ** 26
    else:
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=16384, coeff_mod_bit_sizes=[60] + [40] * 6 + [60])
        ctx.global_scale = 2 ** 40
    ctx.generate_galois_keys()
    return ctx


def main():
    d = cnn_data()
    x, labels, plain = d["images"], d["labels"], d["plain"]
    conv_w = d["conv_w"].reshape(5, 5, 5).tolist()
    conv_b = d["conv_b"].tolist()
    fc1_w, fc1_b = d["fc1_w"].T.tolist(), d["fc1_b"].tolist()
    fc2_w, fc2_b = d["fc2_w"].T.tolist(), d["fc2_b"].tolist()

    t_keygen, ctx = once(context)

    def encrypt(img):
        return ts.im2col_encoding(ctx, img.reshape(28, 28).tolist(), 5, 5, 2)

    def server(enc):
        enc_x, windows = enc
        channels = [enc_x.conv2d_im2col(k, windows) + b for k, b in zip(conv_w, conv_b)]
        h = ts.CKKSVector.pack_vectors(channels)
        h.square_()
        h = h.mm(fc1_w) + fc1_b
        h.square_()
        return h.mm(fc2_w) + fc2_b

    # every image timed: the medians over the k images are the figures (one image takes half a minute)
    k = min(IMAGES, len(x))
    t_encs, t_runs, t_decs, scores = [], [], [], []
    for i in range(k):
        t, enc = once(lambda: encrypt(x[i]))
        t_encs.append(t)
        t, out = once(lambda: server(enc))
        t_runs.append(t)
        t, y = once(lambda: out.decrypt())
        t_decs.append(t)
        scores.append(y)
        if i == 0:
            enc1, out1 = enc, out
    t_enc, t_run, t_dec = (statistics.median(v) for v in (t_encs, t_runs, t_decs))
    scores = np.array(scores)
    cls = np.argmax(scores, axis=1)
    err = float(np.max(np.abs(scores - cnn_plain(d, x[:k]))))
    public = ctx.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=True, save_relin_keys=True)
    params = ("CKKS N = 8192, Q = {31, 6 x 26, 31}, scale 2^26 (the tutorial's)" if N == 8192 else
              "CKKS N = 16384, Q = {60, 6 x 40, 60}, scale 2^40")
    record(tool="tenseal", version=VERSION, task="cnn_one", samples=1, reps=k,
           params=params + "; im2col encoding, conv2d_im2col, pack_vectors, mm (the MNIST tutorial's way)",
           keygen_s=t_keygen, encrypt_s=t_enc, server_s=t_run, server_s_runs=t_runs, server_s_per_sample=t_run,
           decrypt_s=t_dec, end_to_end_s=t_enc + t_run + t_dec, eval_key_bytes=len(public),
           ct_bytes_per_sample=len(enc1[0].serialize()), out_bytes_per_sample=len(out1.serialize()),
           accuracy=float(np.mean(cls == labels[:k])), plain_accuracy=float(np.mean(plain[:k] == labels[:k])),
           agree=float(np.mean(cls == plain[:k])), accuracy_samples=k, max_abs_err=err,
           note="evaluation keys: the public context (public, relinearization and Galois keys)")


if __name__ == "__main__":
    main()
