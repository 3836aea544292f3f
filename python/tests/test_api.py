"""The high-level API against the plaintext model, for every kind of model the CLI handles; byte equality
and interchange with the CLI's files; pickling; errors on bad input; the server client; the GIL.

Each encrypted result is compared with the same computation in plaintext: with `Model.simulate` (the lowered
program, its polynomials included) to 1e-3, with `Model.predict` (the ONNX graph itself) to 1e-3 where the
model is polynomial and by identical argmax where it approximates activations; BGV exactly.
"""
import contextlib
import os
import pickle
import subprocess
import threading
import time

import numpy as np
import pytest

import veil

torch = pytest.importorskip("torch")
sklearn_datasets = pytest.importorskip("sklearn.datasets")
from sklearn.linear_model import LinearRegression, LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

CLI = os.environ.get("VEIL_CLI")
TOL = 1e-3
def serve_token(tmp_path, tenant="pytest"):
    """A tenant's bearer token for the test server whose store is tmp_path/store, made as its operator does
    (the last line of `veil token add`); the same one on every call."""
    path = tmp_path / f"token-{tenant}"
    if not path.exists():
        out = subprocess.run([CLI, "token", "add", "--store", str(tmp_path / "store"), "--tenant", tenant],
                             check=True, capture_output=True, text=True).stdout
        path.write_text(out.strip().splitlines()[-1])
    return path.read_text()


@contextlib.contextmanager
def served_cancer_model(tmp_path, cancer):
    """veil serve on loopback hosting a breast-cancer pipeline as "cancer" (inputs in [-100, 5000]): yields
    (url, a tenant's token, the compiled model, the fitted pipeline); the server is stopped after."""
    X, y = cancer
    p = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    (tmp_path / "models").mkdir()
    m = veil.compile(p)
    (tmp_path / "models" / "cancer.onnx").write_bytes(m.onnx)
    (tmp_path / "models" / "cancer.json").write_text('{"input_range": [-100, 5000]}')
    token = serve_token(tmp_path)
    server = subprocess.Popen([CLI, "serve", "--models", str(tmp_path / "models"), "--store", str(tmp_path / "store"),
                               "--listen", "127.0.0.1:0", "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert "listening on port" in line, line
        yield f"http://127.0.0.1:{line.split()[3]}", token, m, p
    finally:
        server.terminate()
        server.wait(timeout=60)


def roundtrip(m, X, keys, **run):
    """The four steps, the server's side holding only bytes of the evaluation keys and ciphertexts."""
    ct = m.encrypt(X, keys)
    server_keys = veil.EvalKeys.from_bytes(keys.eval.to_bytes())
    out = m.run(veil.Ciphertexts.from_bytes(ct.to_bytes()), server_keys, **run)
    return m.decrypt(veil.Ciphertexts.from_bytes(out.to_bytes()), keys)


def check(m, X, *, polynomial):
    """The encrypted result equals the lowered program (simulate) to 1e-3 with identical argmax; a polynomial
    model equals the ONNX graph itself (predict) too. Approximated activations differ from the graph by their
    approximation error, reported by compile: there the argmax may flip on near ties, and only agreement with
    the graph on almost every row is asked."""
    keys = m.keygen()
    Y = roundtrip(m, X, keys)
    S, P = m.simulate(X), m.predict(X)
    assert Y.shape == (X.shape[0], m.output_width)
    assert np.abs(Y - S).max() < TOL, np.abs(Y - S).max()
    if m.output_width > 1:
        assert (Y.argmax(1) == S.argmax(1)).all()
    if polynomial:
        assert np.abs(Y - P).max() < TOL, np.abs(Y - P).max()
        if m.output_width > 1:
            assert (Y.argmax(1) == P.argmax(1)).all()
    elif m.output_width > 1:
        assert (Y.argmax(1) == P.argmax(1)).mean() >= 0.95
    return Y, keys


# ---- models ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cancer():
    X, y = sklearn_datasets.load_breast_cancer(return_X_y=True)
    return X, y


@pytest.fixture(scope="module")
def digits():
    d = sklearn_datasets.load_digits()
    return (d.data / 16.0), d.target


class Square(torch.nn.Module):
    def forward(self, x):
        return x * x


class Image(torch.nn.Module):
    def forward(self, x):
        return x.reshape(-1, 1, 8, 8)


def trained(module, X, y, epochs=60):
    torch.manual_seed(0)
    opt = torch.optim.Adam(module.parameters(), lr=1e-2)
    xt, yt = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y).long()
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(xt), yt).backward()
        opt.step()
    return module.eval()


@pytest.mark.parametrize("packing", ["throughput", "latency"])
def test_logistic_regression_pipeline(cancer, packing):
    X, y = cancer
    p = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    m = veil.compile(p, calibrate=X, packing=packing)
    assert m.final_op == "sigmoid" and m.output_width == 1
    rows = X[:40] if packing == "latency" else X
    Y, keys = check(m, rows, polynomial=True)
    assert np.abs(Y[:, 0] - p.predict_proba(rows)[:, 1]).max() < TOL
    assert (m.decrypt(m.run(m.encrypt(rows, keys), keys.eval), keys, argmax=True) == p.predict(rows)).all()


@pytest.mark.parametrize("packing", ["throughput", "latency"])
def test_linear_regression(packing):
    X, y = sklearn_datasets.load_diabetes(return_X_y=True)
    r = LinearRegression().fit(X, y)
    m = veil.compile(r, calibrate=X, packing=packing)
    rows = X[:30] if packing == "latency" else X
    Y, _ = check(m, rows, polynomial=True)
    assert np.abs(Y[:, 0] - r.predict(rows)).max() < TOL * max(1, np.abs(y).max())


def test_multiclass_softmax(digits):
    X, y = digits
    clf = LogisticRegression(max_iter=3000).fit(X, y)
    m = veil.compile(clf, calibrate=X)
    assert m.final_op == "softmax" and m.output_width == 10
    Y, _ = check(m, X[:500], polynomial=True)
    assert (Y.argmax(1) == clf.predict(X[:500])).all()


@pytest.mark.parametrize("packing", ["throughput", "latency"])
def test_torch_mlp_square(digits, packing):
    X, y = digits
    net = trained(torch.nn.Sequential(torch.nn.Linear(64, 32), Square(), torch.nn.Linear(32, 10)), X, y)
    m = veil.compile(net, example_input=torch.zeros(1, 64), calibrate=X, packing=packing)
    rows = X[:20] if packing == "latency" else X[:300]
    Y, _ = check(m, rows, polynomial=True)
    with torch.no_grad():
        ref = net(torch.as_tensor(rows, dtype=torch.float32)).numpy()
    assert np.abs(Y - ref).max() < 1e-3 * max(1, np.abs(ref).max())


@pytest.mark.parametrize("act", [torch.nn.Tanh, torch.nn.Sigmoid, torch.nn.ReLU])
def test_torch_mlp_approximated(digits, act):
    X, y = digits
    net = trained(torch.nn.Sequential(torch.nn.Linear(64, 16), act(), torch.nn.Linear(16, 10)), X, y)
    m = veil.compile(net, example_input=torch.zeros(1, 64), calibrate=X, degree=31)
    assert "Chebyshev" in m.report or "approx" in m.report.lower()
    check(m, X[:200], polynomial=False)


def test_torch_cnn(digits):
    X, y = digits
    net = trained(torch.nn.Sequential(Image(), torch.nn.Conv2d(1, 4, 3), Square(), torch.nn.AvgPool2d(2),
                                      torch.nn.Flatten(), torch.nn.Linear(36, 10)), X, y, epochs=40)
    m = veil.compile(net, example_input=torch.zeros(1, 64), calibrate=X)
    check(m, X[:100], polynomial=True)


def integer_model(onnx_lib):
    """A quantized network: integer Gemm, square, integer Gemm, then the output scale (a Mul)."""
    helper, numpy_helper, TensorProto = onnx_lib.helper, onnx_lib.numpy_helper, onnx_lib.TensorProto
    rng = np.random.default_rng(7)
    w1 = rng.integers(-8, 9, size=(6, 4)).astype(np.float32)
    b1 = rng.integers(-20, 21, size=6).astype(np.float32)
    w2 = rng.integers(-8, 9, size=(3, 6)).astype(np.float32)
    b2 = rng.integers(-20, 21, size=3).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"), (np.array(0.01, dtype=np.float32), "s"))]
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
             helper.make_node("Mul", ["h", "h"], ["h2"]),
             helper.make_node("Gemm", ["h2", "w2", "b2"], ["z"], transB=1),
             helper.make_node("Mul", ["z", "s"], ["y"])]
    g = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    return m.SerializeToString(), (w1, b1, w2, b2)


def test_bgv_exact():
    onnx = pytest.importorskip("onnx")
    import onnx.numpy_helper  # noqa: F401
    data, (w1, b1, w2, b2) = integer_model(onnx)
    m = veil.compile(data, scheme="bgv", input_range=(-15, 15))
    assert m.scheme == "bgv" and m.plan().scheme == "bgv"
    rng = np.random.default_rng(1)
    X = rng.integers(-15, 16, size=(50, 4)).astype(np.float64)
    keys = m.keygen()
    out = m.run(m.encrypt(X, keys), keys.eval)
    ints = m.decrypt(out, keys, integers=True)
    h = X @ w1.T + b1
    expect = (h * h) @ w2.T + b2
    assert ints.dtype == np.int64 and (ints == expect.astype(np.int64)).all()
    assert np.array_equal(m.decrypt(out, keys), m.simulate(X))
    with pytest.raises(veil.VeilError):
        m.encrypt(X * 3, keys)  # outside the integer range the moduli were chosen for


@pytest.mark.parametrize("cls,task", [(veil.train.LogisticRegression, "logistic"),
                                      (veil.train.LinearRegression, "linear")])
def test_training(cls, task):
    X, y = sklearn_datasets.load_breast_cancer(return_X_y=True)
    X = X[:, :6]
    if task == "linear":
        y = X @ np.arange(1, 7) + 3.0
    est = cls(iterations=3, security="none", ring_degree=4096)
    enc = est.fit(X, y)
    w_enc = np.concatenate([[enc.intercept_], enc.coef_])
    ref = cls(iterations=3, security="none", ring_degree=4096).fit_plain(X, y)
    w_ref = np.concatenate([[ref.intercept_], ref.coef_])
    assert np.abs(w_enc - w_ref).max() < 1e-3 * max(1.0, np.abs(w_ref).max())
    onnx_model = veil.compile(enc.to_onnx())
    want = enc.predict_proba(X)[:, 1] if task == "logistic" else enc.predict(X)
    # the ONNX model holds the weights in float32: relative to the outputs' size
    assert np.abs(onnx_model.predict(X)[:, 0] - want).max() < 1e-6 * max(1.0, np.abs(want).max())


# ---- the CLI's files -----------------------------------------------------------------------------------------

needs_cli = pytest.mark.skipif(not CLI or not os.path.exists(CLI), reason="VEIL_CLI (the veil program) not given")


def cli(*args):
    subprocess.run([CLI, *args, *(["--quiet"] if args[0] == "keygen" else [])], check=True,
                   stdout=subprocess.DEVNULL)


@needs_cli
@pytest.mark.parametrize("packing", ["throughput", "latency"])
def test_cli_files_interchange(tmp_path, cancer, packing):
    """Keys and ciphertexts move between the CLI and Python both ways, and the server's step is the same
    computation: Python's m.run on the CLI's ciphertext writes the same bytes as `veil eval`."""
    X, y = cancer
    X = X[:16]
    p = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(*cancer)
    model = tmp_path / "model.onnx"
    m = veil.compile(p, input_range=(-100, 5000), packing=packing)
    model.write_bytes(m.onnx)
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    extra = ["--latency"] if packing == "latency" else []
    cli("keygen", "--model", str(model), "--input-range", "-100:5000", "--out", str(tmp_path / "k"), *extra)
    cli("encrypt", "--keys", str(tmp_path / "k"), "--in", str(tmp_path / "x.csv"), "--out", str(tmp_path / "x.ct"))
    cli("eval", "--model", str(model), "--eval-keys", str(tmp_path / "k" / "eval"), "--in", str(tmp_path / "x.ct"),
        "--out", str(tmp_path / "y.ct"), "--threads", "1")
    keys = veil.KeySet.load(tmp_path / "k")
    ct = veil.Ciphertexts.load(tmp_path / "x.ct")
    out = m.run(ct, veil.EvalKeys.load(tmp_path / "k" / "eval"), threads=1)
    assert out.to_bytes() == (tmp_path / "y.ct").read_bytes()
    assert np.abs(m.decrypt(out, keys) - m.predict(X)).max() < TOL
    # Python's keys and ciphertexts through the CLI
    mine = m.keygen()
    mine.save(tmp_path / "py")
    assert os.stat(tmp_path / "py" / "secret.key").st_mode & 0o777 == 0o600
    m.encrypt(X, mine).save(tmp_path / "px.ct")
    cli("eval", "--model", str(model), "--eval-keys", str(tmp_path / "py" / "eval"), "--in",
        str(tmp_path / "px.ct"), "--out", str(tmp_path / "py.ct"))
    cli("decrypt", "--keys", str(tmp_path / "py"), "--in", str(tmp_path / "py.ct"), "--out", str(tmp_path / "y.csv"))
    assert np.abs(np.loadtxt(tmp_path / "y.csv", ndmin=2) - m.predict(X)).max() < TOL
    with pytest.raises(FileExistsError):
        mine.save(tmp_path / "py")


@needs_cli
def test_cli_training_onnx_identical(tmp_path):
    """`veil decrypt --onnx` and Python's to_onnx write the same model from the same encrypted weights."""
    X, y = sklearn_datasets.load_breast_cancer(return_X_y=True)
    X = X[:200, :5]
    est = veil.train.LogisticRegression(iterations=2)
    keys = est.keygen(5)
    out = est.run(est.encrypt(X, y[:200], keys), keys.eval)
    keys.save(tmp_path / "k")
    out.save(tmp_path / "m.ct")
    cli("decrypt", "--keys", str(tmp_path / "k"), "--in", str(tmp_path / "m.ct"), "--onnx", str(tmp_path / "m.onnx"),
        "--no-flood")
    assert est.decrypt(out, keys, flood=False).to_onnx() == (tmp_path / "m.onnx").read_bytes()


# ---- objects as bytes and pickles ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(cancer):
    X, y = cancer
    p = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, y)
    m = veil.compile(p, calibrate=X)
    return m, m.keygen(), X[:64]


def test_pickle_round_trips(small):
    m, keys, X = small
    ct = m.encrypt(X, keys)
    keys2 = pickle.loads(pickle.dumps(keys))
    ev2 = pickle.loads(pickle.dumps(keys.eval))
    assert keys2.id == keys.id == ev2.id
    out = m.run(pickle.loads(pickle.dumps(ct)), ev2)
    out2 = pickle.loads(pickle.dumps(out))
    assert np.abs(m.decrypt(out2, keys2) - m.simulate(X)).max() < TOL
    assert out2.to_bytes() == out.to_bytes()
    err = pickle.loads(pickle.dumps(veil.MismatchError("x", 4)))
    assert isinstance(err, veil.MismatchError) and err.status == 4


def test_seeded_keys_and_ciphertexts_repeat(small):
    m, _, X = small
    seed = bytes(range(32))
    a, b = m.keygen(seed=seed), m.keygen(seed=seed)
    assert a.to_bytes() == b.to_bytes() and a.eval.to_bytes() == b.eval.to_bytes()
    assert m.encrypt(X, a, seed=seed).to_bytes() == m.encrypt(X, b, seed=seed).to_bytes()
    assert m.keygen().id != a.id


# ---- errors ------------------------------------------------------------------------------------------------

def test_bad_inputs(small, cancer):
    m, keys, X = small
    with pytest.raises(ValueError, match="features"):
        m.encrypt(X[:, :5], keys)
    with pytest.raises(ValueError, match="2-D"):
        m.encrypt(X[0], keys)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        m.encrypt(bad, keys)
    with pytest.raises(veil.ArgumentError) as e:  # outside the range the keys were made for
        m.encrypt(X * 1000, keys)
    assert e.value.status == 2 and "range" in e.value.detail
    with pytest.raises(TypeError):
        m.encrypt(X, keys.eval)  # the public part cannot encrypt for a model
    with pytest.raises(TypeError):
        m.run(m.encrypt(X, keys), keys.eval.to_bytes())


def test_wrong_keys(small):
    m, keys, X = small
    other = m.keygen()
    ct = m.encrypt(X, keys)
    with pytest.raises(veil.MismatchError):
        m.run(veil.Ciphertexts.from_bytes(ct.to_bytes()), other.eval)
    out = m.run(ct, keys.eval)
    with pytest.raises(veil.MismatchError):
        m.decrypt(veil.Ciphertexts.from_bytes(out.to_bytes()), other)
    with pytest.raises(veil.MismatchError):
        veil.KeySet.from_bytes(keys.to_bytes(), other.eval)
    # keys of another model
    X2, y2 = sklearn_datasets.load_diabetes(return_X_y=True)
    m2 = veil.compile(LinearRegression().fit(X2, y2), calibrate=X2)
    with pytest.raises(veil.MismatchError):
        m2.encrypt(X2[:4], keys)


def test_secret_key_refused_where_public_belongs(small):
    _, keys, _ = small
    with pytest.raises(veil.VeilError):
        veil.EvalKeys.from_bytes(keys.to_bytes())


def test_corrupt_bytes(small):
    m, keys, X = small
    data = bytearray(m.encrypt(X, keys).to_bytes())
    for damage in (lambda d: d[: len(d) // 2], lambda d: d[:10], lambda d: b"", lambda d: b"VEIL" + bytes(100)):
        with pytest.raises(veil.VeilError):
            veil.Ciphertexts.from_bytes(bytes(damage(bytes(data))), keys)
    flipped = bytearray(data)
    flipped[len(flipped) // 3] ^= 0x40
    with pytest.raises(veil.FormatError):
        veil.Ciphertexts.from_bytes(bytes(flipped), keys)
    ek = bytearray(keys.eval.to_bytes())
    ek[-5] ^= 1
    with pytest.raises(veil.FormatError):
        veil.EvalKeys.from_bytes(bytes(ek))
    with pytest.raises(veil.VeilError):
        veil.compile(b"not an onnx model")
    with pytest.raises(TypeError):
        veil.compile(3.5)


def test_options_refused():
    with pytest.raises(ValueError):
        veil.compile(b"", packing="fast")
    with pytest.raises(ValueError):
        veil.compile(b"", scheme="tfhe")
    with pytest.raises(ValueError):
        veil.compile(b"", security=100)


# ---- the GIL ------------------------------------------------------------------------------------------------

def test_gil_released_during_evaluation(digits):
    """Another Python thread keeps running while the C library evaluates."""
    X, y = digits
    net = trained(torch.nn.Sequential(torch.nn.Linear(64, 64), Square(), torch.nn.Linear(64, 10)), X, y, epochs=5)
    m = veil.compile(net, example_input=torch.zeros(1, 64), calibrate=X)
    keys = m.keygen()
    ct = m.encrypt(X[:100], keys)
    m.run(ct, keys.eval, threads=1)  # the evaluator is made; the next run is the evaluation alone
    ticks, stop = [0], threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1

    t = threading.Thread(target=count)
    t.start()
    time.sleep(0.05)
    before = ticks[0]
    t0 = time.perf_counter()
    m.run(ct, keys.eval, threads=1)
    elapsed = time.perf_counter() - t0
    during = ticks[0] - before
    stop.set()
    t.join()
    # a thread starved by the GIL counts almost nothing (a few switches); a free one counts millions per second
    assert elapsed > 0.05, elapsed
    assert during > 20000 * elapsed, (during, elapsed)


# ---- the server ---------------------------------------------------------------------------------------------

@needs_cli
def test_client_against_veil_serve(tmp_path, cancer):
    X, y = cancer
    with served_cancer_model(tmp_path, cancer) as (url, token, m, p):
        with pytest.raises(veil.VeilError):  # no token, or one the server does not know: 401
            veil.Client(url, token="veil_not-a-token").models()
        c = veil.Client(url, token=token)
        assert any(e.get("name") == "cancer" for e in c.models())
        assert c.plan("cancer").packing == "throughput"
        keys = c.keygen("cancer")
        Y = c.predict("cancer", X[:100], keys)
        assert np.abs(Y - m.predict(X[:100])).max() < TOL
        assert (c.predict("cancer", X[:100], keys, argmax=True) == p.predict(X[:100])).all()
        sent, received = c.traffic()
        assert sent > len(keys.eval.to_bytes()) and received > 0
        with pytest.raises(veil.VeilError):
            c.predict("no-such-model", X[:2], keys)
        with pytest.raises(ValueError):
            veil.Client("http://127.0.0.1:1", token="bad token with spaces")


# ---- object lifetimes -------------------------------------------------------------------------------------------

def test_objects_freed_in_any_order(small):
    """C objects are freed after everything made from them, whatever order the interpreter collects their
    handles in: reference cycles (which the collector clears in an arbitrary order) included."""
    import gc
    m, _, X = small
    rng = np.random.default_rng(3)
    for trial in range(6):
        keys = m.keygen()
        objs = [keys, keys.eval, m.encrypt(X, keys)]
        objs.append(m.run(objs[2], veil.EvalKeys.from_bytes(keys.eval.to_bytes())))
        objs.append(veil.Ciphertexts.from_bytes(objs[3].to_bytes(), keys))
        order = list(rng.permutation(len(objs)))
        cycle = [objs[i] for i in order]
        cycle.append(cycle)  # a cycle: only the cycle collector frees it
        for o in objs:
            try:
                o._cycle = cycle
            except AttributeError:
                pass
        del objs, cycle, keys, o
        gc.collect()
    assert np.abs(m.decrypt(m.run(m.encrypt(X, small[1]), small[1].eval), small[1]) - m.simulate(X)).max() < TOL


# ---- random models: a result within tolerance, or a refusal --------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_random_networks_never_silently_wrong(seed):
    """Random MLPs (widths, weight scales, square or approximated activations) on inputs of random scale: the
    encrypted result equals the program to a tolerance relative to the outputs' size, or Veil refuses, at
    compile (depth, bounds) or at encryption (inputs outside the range); never a wrong answer without an error."""
    rng = np.random.default_rng(100 + seed)
    width = int(rng.integers(2, 12))
    hidden = int(rng.integers(2, 16))
    scale = 10.0 ** rng.uniform(-2, 2)
    act = [Square, torch.nn.Tanh, torch.nn.Sigmoid][seed % 3]
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(width, hidden), act(), torch.nn.Linear(hidden, 3)).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(float(10.0 ** rng.uniform(-1, 1)))
    X = rng.normal(0, scale, size=(64, width))
    try:
        m = veil.compile(net, example_input=torch.zeros(1, width), calibrate=X, degree=31)
        keys = m.keygen()
        Y = roundtrip(m, X, keys)
    except veil.VeilError as e:
        assert e.detail  # refused, with a reason
        return
    S = m.simulate(X)
    assert np.abs(Y - S).max() <= TOL * max(1.0, np.abs(S).max()), (np.abs(Y - S).max(), np.abs(S).max())
    # inputs beyond the calibrated range are refused, not evaluated
    with pytest.raises(veil.VeilError):
        m.encrypt(X * 100 + 1000, keys)


def test_model_pickles(small):
    """A model pickles as its ONNX bytes and options: the copy has the same plan and takes the same keys."""
    m, keys, X = small
    m2 = pickle.loads(pickle.dumps(m))
    assert m2.plan() == m.plan() and m2.plan_bytes() == m.plan_bytes() and m2.name == m.name
    out = m2.run(m.encrypt(X, keys), keys.eval)
    assert np.abs(m2.decrypt(out, keys) - m.simulate(X)).max() < TOL


# ---- scikit-learn models as scikit-learn computes them -------------------------------------------------------------

def test_sklearn_converter_matches_sklearn():
    """Probabilities, decisions and labels as scikit-learn's own, for the classifiers' variants and scalers."""
    from sklearn.linear_model import LinearRegression as LR, SGDClassifier
    from sklearn.preprocessing import MinMaxScaler
    from sklearn.svm import LinearSVC
    X, y = sklearn_datasets.load_iris(return_X_y=True)
    binary = y != 0
    labels = np.where(binary, 7, 3)  # labels other than 0..k-1
    cases = [
        (LogisticRegression(max_iter=3000).fit(X, labels), "proba"),
        (LogisticRegression(max_iter=3000, multi_class="multinomial").fit(X, labels), "proba"),
        (LogisticRegression(max_iter=3000).fit(X, y), "proba"),
        (make_pipeline(MinMaxScaler(), LinearSVC(max_iter=20000)).fit(X, labels), "decision"),
        (SGDClassifier(loss="log_loss", random_state=0).fit(X, labels), "proba"),
    ]
    for est, kind in cases:
        m = veil.compile(est, calibrate=X)
        ref = est.predict_proba(X) if kind == "proba" else est.decision_function(X).reshape(len(X), -1)
        got = m.predict(X)
        if kind == "proba" and ref.shape[1] == 2:
            ref = ref[:, 1:]
        assert np.abs(got - ref).max() < 1e-9, type(est).__name__
        keys = m.keygen()
        out = m.run(m.encrypt(X, keys), keys.eval)
        assert (m.decrypt(out, keys, argmax=True) == est.predict(X)).all(), type(est).__name__
    # raw features far from zero: the scaler's constants keep their digits
    Xo = X + 1234.567
    p = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)).fit(Xo, binary)
    assert np.abs(veil.compile(p, calibrate=Xo).predict(Xo)[:, 0] - p.predict_proba(Xo)[:, 1]).max() < 1e-9
    with pytest.raises(ValueError, match="one-vs-rest"):
        veil.compile(LogisticRegression(multi_class="ovr", max_iter=3000).fit(X, y))
    with pytest.raises(ValueError, match="clip"):
        veil.compile(make_pipeline(MinMaxScaler(clip=True), LR()).fit(X, y))


def test_argument_checks(small):
    m, keys, X = small
    with pytest.raises(TypeError):
        veil.KeySet.from_bytes(keys.to_bytes(), keys)  # a key set where the public part belongs
    for bad in (65536, -1, 2.5):
        with pytest.raises((ValueError, TypeError)):
            m.run(m.encrypt(X, keys), keys.eval, threads=bad)
    with pytest.raises(ValueError):
        m.encrypt(X.astype(complex), keys)
    with pytest.raises(ValueError):
        m.encrypt(np.full(X.shape, "1.0"), keys)
    with pytest.raises((ValueError, TypeError)):
        veil.compile(m.onnx, degree=3.7)
    with pytest.raises(ValueError):
        veil.train.LogisticRegression(iterations=1).encrypt(X, np.zeros((len(X) // 2, 2)),
                                                             veil.train.LogisticRegression(1).keygen(X.shape[1]))


def test_client_shared_between_threads_and_keys_lost(tmp_path, cancer):
    """One Client from several threads (one connection: calls take turns), and evaluation keys the server lost
    are uploaded again."""
    if not CLI or not os.path.exists(CLI):
        pytest.skip("VEIL_CLI not given")
    import concurrent.futures
    import urllib.request
    X, y = cancer
    with served_cancer_model(tmp_path, cancer) as (url, token, m, p):
        c = veil.Client(url, token=token)
        keys = c.keygen("cancer")
        ref = m.predict(X[:8])
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: c.predict("cancer", X[:8], keys), range(12)))
        assert all(np.abs(r - ref).max() < TOL for r in results)
        req = urllib.request.Request(f"{url}/v1/keys/{c.upload_keys(keys)}", method="DELETE")
        req.add_header("Authorization", f"Bearer {token}")
        urllib.request.urlopen(req).read()
        assert np.abs(c.predict("cancer", X[:8], keys) - ref).max() < TOL
