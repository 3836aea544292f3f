"""Flooded decryption from Python (veil_decrypt_options; SECURITY.md, docs/training.md): `flood=True` reaches the
C library's flooded decryption, which refuses with NoiseError where the keys' scale leaves no room for the noise
(today's plans, at the default 30 bits over 128 decryptions); trained weights flood by default, as
`veil decrypt --onnx` does, and flood=False decrypts them as before; inference decrypts plainly by default.
"""
import numpy as np
import pytest

import veil

sklearn_datasets = pytest.importorskip("sklearn.datasets")
from sklearn.linear_model import LinearRegression  # noqa: E402


@pytest.fixture(scope="module")
def trained():
    X, y = sklearn_datasets.load_breast_cancer(return_X_y=True)
    X = X[:200, :4]
    est = veil.train.LogisticRegression(iterations=2, security="none", ring_degree=2048)
    keys = est.keygen(4)
    return est, keys, est.run(est.encrypt(X, y[:200], keys), keys.eval)


def test_training_floods_by_default(trained):
    est, keys, model = trained
    with pytest.raises(veil.NoiseError, match="leaves no room"):
        est.decrypt(model, keys)
    with pytest.raises(veil.NoiseError, match="leaves no room"):
        est.decrypt(model, keys, flood=True)
    w = np.concatenate([[est.decrypt(model, keys, flood=False).intercept_], est.coef_])
    assert np.isfinite(w).all()
    again = veil.train.LogisticRegression(iterations=2, security="none", ring_degree=2048)
    w2 = np.concatenate([[again.decrypt(model, keys, flood=False).intercept_], again.coef_])
    assert np.array_equal(w, w2)  # plain decryption: the same weights every time


def test_flood_room_keys_flood_the_weights():
    """Keys made with flood_room=True (a 2^60 scale, `veil keygen --flood`): the default flooded decryption
    succeeds, within 1e-3 of the plain one on the scaled features, and noisy."""
    X, y = sklearn_datasets.load_breast_cancer(return_X_y=True)
    X, y = X[:200, :4], y[:200]
    est = veil.train.LogisticRegression(iterations=2, security="none", ring_degree=2048, flood_room=True)
    keys = est.keygen(4)
    model = est.run(est.encrypt(X, y, keys), keys.eval)
    plain = veil.train.LogisticRegression(iterations=2, security="none", ring_degree=2048, flood_room=True)
    plain.decrypt(model, keys, flood=False)
    est.decrypt(model, keys)
    mean, dev = X.mean(axis=0), np.abs(X - X.mean(axis=0)).max(axis=0)

    def scaled(e):  # the weights on the features centred and divided by their largest deviation
        return np.concatenate([[e.intercept_ + e.coef_ @ mean], e.coef_ * dev])
    diff = np.abs(scaled(est) - scaled(plain)).max()
    assert 1e-9 < diff <= 1e-3, diff


def test_fit_keeps_plain_weights():
    X, y = sklearn_datasets.load_breast_cancer(return_X_y=True)
    est = veil.train.LogisticRegression(iterations=2, security="none", ring_degree=2048).fit(X[:100, :3], y[:100])
    assert np.isfinite(est.coef_).all()


def test_inference_flood():
    X, y = sklearn_datasets.load_diabetes(return_X_y=True)
    m = veil.compile(LinearRegression().fit(X, y), calibrate=X)
    keys = m.keygen()
    out = m.run(m.encrypt(X[:20], keys), keys.eval)
    plain = m.decrypt(out, keys)
    assert np.array_equal(plain, m.decrypt(out, keys, flood=False))
    assert np.array_equal(plain, keys.decrypt(out))
    with pytest.raises(veil.NoiseError, match="leaves no room"):
        m.decrypt(out, keys, flood=True)
    with pytest.raises(veil.NoiseError, match="leaves no room"):
        keys.decrypt(out, flood=True, raw=True)


@pytest.mark.parametrize("packing", ["throughput", "latency"])
def test_flood_room_keys_flood_predictions(packing):
    """Keys made with flood_room=True (`veil keygen --model M --flood`): flooded predictions within 1e-3 of the
    model in plaintext, and away from the plain decryption (the noise was added); exact plans refuse it."""
    X, y = sklearn_datasets.load_diabetes(return_X_y=True)
    m = veil.compile(LinearRegression().fit(X, y), calibrate=X, packing=packing, flood_room=True)
    keys = m.keygen()
    rows = X[:3] if packing == "latency" else X[:20]
    out = m.run(m.encrypt(rows, keys), keys.eval)
    plain, flooded, want = m.decrypt(out, keys), m.decrypt(out, keys, flood=True), m.predict(rows)
    assert np.abs(plain - want).max() <= 1e-9
    assert 1e-9 < np.abs(flooded - plain).max() and np.abs(flooded - want).max() <= 1e-3
    with pytest.raises(ValueError, match="need no flooding"):
        veil.compile(LinearRegression().fit(X, y), scheme="bgv", input_range=(0, 1), flood_room=True)
