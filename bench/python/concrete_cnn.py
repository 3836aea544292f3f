"""Concrete-ML on the CryptoNets-shaped CNN, one image: the same network and weights (prepare.py) as a
torch.nn.Module with x ** 2 for the squares (one table lookup each, what Concrete-ML does best with a
square), compiled by compile_torch_model (post-training quantization, VEIL_BENCH_CONCRETE_BITS bits, default
6, calibrated on 500 training images, rounding_threshold_bits VEIL_BENCH_CONCRETE_ROUNDING, default 6), then
keygen, and one image through the circuit's encrypt/run/decrypt (fhe="execute" in its steps). Keygen and
the run take minutes: run once. The accuracy over the first VEIL_BENCH_CNN_IMAGES test images (default 20)
is fhe="simulate"'s (Concrete-ML's own model of the encrypted computation), and the one executed image is
checked against it. Run with the peers' Python (run.sh: the throw-away venv)."""
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import cnn_data, once, record  # noqa: E402

import concrete.ml  # noqa: E402
from concrete.ml.torch.compile import compile_torch_model  # noqa: E402

IMAGES = int(os.environ.get("VEIL_BENCH_CNN_IMAGES", "20"))
BITS = int(os.environ.get("VEIL_BENCH_CONCRETE_BITS", "6"))
ROUNDING = int(os.environ.get("VEIL_BENCH_CONCRETE_ROUNDING", "6"))


class Net(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 5, kernel_size=5, stride=2)
        self.fc1 = torch.nn.Linear(720, 100)
        self.fc2 = torch.nn.Linear(100, 10)
        with torch.no_grad():
            for layer, w, b in ((self.conv, "conv_w", "conv_b"), (self.fc1, "fc1_w", "fc1_b"),
                                (self.fc2, "fc2_w", "fc2_b")):
                layer.weight.copy_(torch.from_numpy(d[w]).float())
                layer.bias.copy_(torch.from_numpy(d[b]).float())

    def forward(self, x):
        x = self.conv(x) ** 2
        x = torch.flatten(x, 1)
        x = self.fc1(x) ** 2
        return self.fc2(x)


def main():
    torch.set_num_threads(1)
    d = cnn_data()
    x, labels, plain = d["images"].reshape(-1, 1, 28, 28), d["labels"], d["plain"]
    net = Net(d).eval()
    calib = d["calib"].reshape(-1, 1, 28, 28).astype(np.float32)
    t_compile, qm = once(lambda: compile_torch_model(net, calib, n_bits=BITS, rounding_threshold_bits=ROUNDING))
    circuit = qm.fhe_circuit
    print(f"concrete_cnn.py: compiled in {t_compile:.1f} s; max bit width {circuit.graph.maximum_integer_bit_width()}",
          flush=True)
    k = min(IMAGES, len(x))
    sim = np.argmax(qm.forward(x[:k].astype(np.float32), fhe="simulate"), axis=1)
    clear = np.argmax(qm.forward(x[:k].astype(np.float32), fhe="disable"), axis=1)
    t_keygen, _ = once(lambda: circuit.keygen(force=True))
    print(f"concrete_cnn.py: keygen {t_keygen:.1f} s", flush=True)
    eval_key_bytes = len(circuit.keys.evaluation.serialize())
    x1 = x[:1].astype(np.float32)
    t_enc, enc = once(lambda: circuit.encrypt(qm.quantize_input(x1)))
    t0 = time.perf_counter()
    res = circuit.run(enc)
    t_run = time.perf_counter() - t0
    print(f"concrete_cnn.py: one image in {t_run:.1f} s", flush=True)
    t_dec, y = once(lambda: qm.post_processing(qm.dequantize_output(circuit.decrypt(res))))
    record(tool="concrete-ml", version=getattr(concrete.ml, "__version__", "1.9"), task="cnn_one", samples=1, reps=1,
           params=f"TFHE, compile_torch_model, {BITS}-bit post-training quantization, rounding_threshold_bits "
                  f"{ROUNDING}, x ** 2 squares; max integer width {circuit.graph.maximum_integer_bit_width()} bits",
           compile_s=t_compile, keygen_s=t_keygen, encrypt_s=t_enc, server_s=t_run, server_s_runs=[t_run],
           server_s_per_sample=t_run, decrypt_s=t_dec, end_to_end_s=t_enc + t_run + t_dec,
           eval_key_bytes=eval_key_bytes, ct_bytes_per_sample=len(enc.serialize()),
           out_bytes_per_sample=len(res.serialize()),
           accuracy=float(np.mean(sim == labels[:k])), plain_accuracy=float(np.mean(plain[:k] == labels[:k])),
           agree=float(np.mean(sim == plain[:k])), accuracy_samples=k,
           quantized_clear_accuracy=float(np.mean(clear == labels[:k])),
           executed_agrees_simulated=bool(int(np.argmax(y, axis=1)[0]) == int(sim[0])),
           note="run once (keygen and evaluation take minutes); accuracy by fhe='simulate'")


if __name__ == "__main__":
    main()
