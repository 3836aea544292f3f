"""veil.Context, veil.CKKSVector and veil.BGVVector against numpy: every operation on random data (CKKS within
a tolerance set by the scale, BGV exactly), depth exhaustion, public contexts, bytes and pickling, damaged
bytes, contexts that do not mix, and the GIL released during long calls.

The contexts are small (security="none", N = 2048 or 4096) so that the whole file runs in well under two
minutes on one core; one test uses N = 16384 for a long single call."""
import pickle
import threading
import time

import numpy as np
import pytest

import veil


def ckks_tol(ctx, magnitude=1.0):
    """What CKKS guarantees here: about 2^-(scale_bits - 20) relative to the values' magnitude (measured errors
    are near 2^-(scale_bits - 10) for these circuits; the margin is for the products' growth)."""
    return 2.0 ** -(ctx.scale_bits - 20) * max(1.0, magnitude)


def close(got, want, tol):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    err = np.max(np.abs(got - want)) if want.size else 0.0
    assert err <= tol, f"max error {err:.3g} above {tol:.3g}"


@pytest.fixture(scope="module")
def ckks():
    return veil.Context.ckks(n=2048, depth=4, security="none", seed=bytes(32))


@pytest.fixture(scope="module")
def ckks30():
    return veil.Context.ckks(n=2048, depth=3, scale_bits=30, security="none")


@pytest.fixture(scope="module")
def bgv():
    return veil.Context.bgv(n=2048, depth=3, security="none", seed=bytes(range(32)))


# ---- contexts ---------------------------------------------------------------------------------------------


def test_context_properties(ckks, bgv):
    assert ckks.scheme == "ckks" and ckks.n == 2048 and ckks.slots == 1024 and ckks.depth == 4
    assert ckks.scale_bits == 40 and ckks.t is None and ckks.security == "none" and ckks.has_secret_key
    # rotations "auto": the powers of two both ways
    assert set(ckks.rotation_steps) >= {1, 2, 4, 512, 1023, 1022}
    assert bgv.scheme == "bgv" and bgv.t == 65537 and bgv.scale_bits is None and bgv.depth >= 1
    assert "ckks" in repr(ckks) and "secret" in repr(ckks) and "public" in repr(ckks.public())


def test_context_selection_and_presets():
    assert "ckks-n8192-d2" in veil.Context.presets() and "bgv-n8192" in veil.Context.presets()
    auto = veil.Context.ckks(depth=2, rotations=None)  # 128-bit: the C library's choice
    assert auto.n == 8192 and auto.depth == 2 and auto.security == 128 and auto.rotation_steps == []
    wide = veil.Context.ckks(n=16384, depth=2, rotations=None)  # a larger ring than needed, as asked
    assert wide.n == 16384 and wide.slots == 8192 and wide.depth == 2
    p = veil.Context.ckks("ckks-n8192-d2", rotations=[1])
    assert p.n == 8192 and p.depth == 2 and p.scale_bits == 40
    x = np.linspace(-1, 1, 100)
    v = veil.CKKSVector(p, x)
    close((v * v + v).decrypt(), x * x + x, ckks_tol(p))
    close(v.rotate(3).decrypt(), np.roll(x, -3), ckks_tol(p))  # composed from the single key for 1
    b = veil.Context.bgv("bgv-n8192", rotations=None)
    assert b.n == 8192 and b.t == 65537
    with pytest.raises(ValueError):
        veil.Context.ckks("bgv-n8192")
    with pytest.raises(veil.NotFoundError):
        veil.Context.ckks("no-such-preset")
    with pytest.raises(ValueError):
        veil.Context.ckks(depth=2, security="none")  # tests only, and with an explicit n
    with pytest.raises(ValueError):
        veil.Context.ckks(depth=2, security=100)
    with pytest.raises(veil.InsecureError):
        veil.Context.ckks(n=1024, depth=6)  # refused by the C library's security check


# ---- CKKS against numpy -----------------------------------------------------------------------------------


def test_ckks_operations(ckks):
    rng = np.random.default_rng(1)
    n = 37
    x, y, p = rng.uniform(-2, 2, n), rng.uniform(-2, 2, n), rng.uniform(-2, 2, n)
    a, b = veil.CKKSVector(ckks, x), veil.CKKSVector(ckks, y)
    tol = ckks_tol(ckks, 4)
    assert len(a) == n and a.size == n and a.level == ckks.depth
    close(a.decrypt(), x, tol)
    close((a + b).decrypt(), x + y, tol)
    close((a - b).decrypt(), x - y, tol)
    close((a * b).decrypt(), x * y, tol)
    close((-a).decrypt(), -x, tol)
    close((a + 1.5).decrypt(), x + 1.5, tol)
    close((2.25 + a).decrypt(), x + 2.25, tol)
    close((a - 0.5).decrypt(), x - 0.5, tol)
    close((3 - a).decrypt(), 3 - x, tol)
    close((a * 3).decrypt(), 3 * x, tol)          # an integer: no level
    assert (a * 3).level == a.level
    close((a * -0.7).decrypt(), -0.7 * x, tol)    # a real constant: one level
    close((a + p).decrypt(), x + p, tol)
    close((a - list(p)).decrypt(), x - p, tol)
    close((p - a).decrypt(), p - x, tol)
    close((a * p).decrypt(), x * p, tol)
    close((p * a).decrypt(), x * p, tol)
    close(a.square().decrypt(), x * x, tol)
    close((a ** 1).decrypt(), x, tol)
    close((a ** 3).decrypt(), x ** 3, ckks_tol(ckks, 8))
    close((a ** 4).decrypt(), x ** 4, ckks_tol(ckks, 16))
    close(a.sum().decrypt(), [x.sum()], ckks_tol(ckks, 4 * n))
    close(a.dot(b).decrypt(), [x @ y], ckks_tol(ckks, 4 * n))
    close(a.dot(p).decrypt(), [x @ p], ckks_tol(ckks, 4 * n))
    # a product's level is one below, and additions align levels and scales themselves
    ab = a * b
    assert ab.level == a.level - 1
    close((ab + a).decrypt(), x * y + x, tol)
    close((a - ab * b).decrypt(), x - x * y * y, ckks_tol(ckks, 8))


@pytest.mark.parametrize("seed", range(6))
def test_ckks_random_circuits(ckks, ckks30, seed):
    """Property-style: random sizes, magnitudes, scales and operation sequences against numpy."""
    rng = np.random.default_rng(100 + seed)
    ctx = ckks30 if seed % 3 == 2 else ckks
    n = int(rng.integers(1, ctx.slots + 1))
    mag = float(10.0 ** rng.uniform(-2, 0.7))
    x, y = rng.uniform(-mag, mag, n), rng.uniform(-mag, mag, n)
    a, b = veil.CKKSVector(ctx, x), veil.CKKSVector(ctx, y)
    c = float(rng.uniform(-3, 3))
    got = (a * b + c * a - b) * (a + c)
    want = (x * y + c * x - y) * (x + c)
    close(got.decrypt(), want, ckks_tol(ctx, max(1.0, np.max(np.abs(want)), mag ** 3)))
    s = int(rng.integers(-n, n + 1))
    close(a.rotate(s).decrypt(), np.roll(x, -s), ckks_tol(ctx, mag))
    close((a - b).sum().decrypt(), [np.sum(x - y)], ckks_tol(ctx, mag * n))


@pytest.mark.parametrize("n", [1, 2, 5, 8, 13, 64, 1000, 1024])
def test_ckks_rotations_both_directions(ckks, n):
    rng = np.random.default_rng(n)
    x = rng.uniform(-1, 1, n)
    a = veil.CKKSVector(ckks, x)
    for s in {1, -1, 3, -3, n // 2, -(n // 2), n - 1, n, 2 * n + 1, int(rng.integers(-5 * n, 5 * n))}:
        close(a.rotate(s).decrypt(), np.roll(x, -s), ckks_tol(ckks))
    close((a << 2).decrypt(), np.roll(x, -2), ckks_tol(ckks))
    close((a >> 2).decrypt(), np.roll(x, 2), ckks_tol(ckks))
    # a rotated vector still sums and multiplies as its values say (the padding stays zero)
    r = a.rotate(1)
    close(r.sum().decrypt(), [x.sum()], ckks_tol(ckks, n))
    close((r * r + 1).decrypt(), np.roll(x, -1) ** 2 + 1, ckks_tol(ckks))


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (5, 3), (16, 16), (37, 8), (7, 100), (200, 33)])
def test_ckks_matmul(ckks, shape):
    rng = np.random.default_rng(sum(shape))
    m = rng.uniform(-1, 1, shape)
    x = rng.uniform(-1, 1, shape[0])
    a = veil.CKKSVector(ckks, x)
    y = a @ m
    assert y.size == shape[1] and y.level == a.level - 1
    want = x @ m
    close(y.decrypt(), want, ckks_tol(ckks, shape[0]))
    # the result is a vector like any other: its sum and a second product agree with numpy
    close(y.sum().decrypt(), [want.sum()], ckks_tol(ckks, shape[0] * shape[1]))
    m2 = rng.uniform(-1, 1, (shape[1], 4))
    close(y.matmul(m2).decrypt(), want @ m2, ckks_tol(ckks, shape[0] * shape[1]))
    with pytest.raises(ValueError):
        a @ rng.uniform(-1, 1, (shape[0] + 1, 2))


@pytest.mark.parametrize("seed", range(4))
def test_ckks_matmul_random_shapes(ckks, seed):
    rng = np.random.default_rng(300 + seed)
    rows, cols = int(rng.integers(1, 300)), int(rng.integers(1, 300))
    mag = float(10.0 ** rng.uniform(-1, 1))
    m, x = rng.uniform(-mag, mag, (rows, cols)), rng.uniform(-1, 1, rows)
    close((veil.CKKSVector(ckks, x) @ m).decrypt(), x @ m, ckks_tol(ckks, mag * rows))


def test_threads_share_a_context(ckks, bgv):
    """A context is read-only: threads computing with it at once get the results they would alone."""
    rng = np.random.default_rng(9)
    xs = [rng.uniform(-1, 1, 50) for _ in range(4)]
    ints = [rng.integers(-100, 100, 50) for _ in range(4)]
    out, errors = [None] * 8, []

    def work(i):
        try:
            if i < 4:
                v = veil.CKKSVector(ckks, xs[i])
                out[i] = ((v * v).rotate(i + 1) + v).sum().decrypt()
            else:
                v = veil.BGVVector(bgv, ints[i - 4])
                out[i] = (v * v - v).rotate(-i).decrypt()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    for i in range(4):
        close(out[i], [np.sum(xs[i] ** 2 + xs[i])], ckks_tol(ckks, 100))
        want = ints[i] * ints[i] - ints[i]
        assert np.array_equal(out[4 + i], np.roll(want, 4 + i))


def test_ckks_matmul_sparse_and_zero(ckks):
    x = np.arange(1.0, 9.0) / 8
    a = veil.CKKSVector(ckks, x)
    eye = np.eye(8)
    close((a @ eye).decrypt(), x, ckks_tol(ckks))
    close((a @ np.zeros((8, 3))).decrypt(), np.zeros(3), ckks_tol(ckks))
    perm = np.roll(np.eye(8), 3, axis=1)
    close((a @ perm).decrypt(), x @ perm, ckks_tol(ckks))


@pytest.mark.parametrize("coeffs", [[0.5], [1, -2], [0.25, -1, 0.5], [1, 2, 3, 0.5], [0, 1, 0, -1 / 6, 0, 1 / 120],
                                    [0.1, -0.3, 0.2, 0.05, -0.1, 0.3, 0.02]])
def test_ckks_polyval(ckks, coeffs):
    rng = np.random.default_rng(len(coeffs))
    n = 29
    x = rng.uniform(-1, 1, n)
    a = veil.CKKSVector(ckks, x)
    got = a.polyval(coeffs)
    want = np.polyval(list(reversed(coeffs)), x)  # numpy.polyval: highest degree first
    close(got.decrypt(), want, ckks_tol(ckks, 10 * np.sum(np.abs(coeffs))))
    # the padding holds zeros: the sum is the values' sum
    close(got.sum().decrypt(), [want.sum()], ckks_tol(ckks, 10 * n * np.sum(np.abs(coeffs))))


def test_ckks_polyval_domain(ckks):
    x = np.linspace(2, 6, 50)
    a = veil.CKKSVector(ckks, x)
    coeffs = [1, -0.5, 0.25, -0.01]
    close(a.polyval(coeffs, domain=(2, 6)).decrypt(), np.polyval(coeffs[::-1], x), ckks_tol(ckks, 10))
    with pytest.raises(ValueError):
        a.polyval(coeffs, domain=(1, 1))


def test_ckks_depth_exhaustion_raises(ckks):
    """Never a silently wrong value: past the last level every product is refused by the C library."""
    x = np.array([0.5, -0.25, 0.75])
    a = veil.CKKSVector(ckks, x)
    b = a
    for _ in range(ckks.depth):
        b = b * a
    assert b.level == 0
    close(b.decrypt(), x ** (ckks.depth + 1), ckks_tol(ckks))
    for op in (lambda: b * a, lambda: b * b, lambda: b * 0.5, lambda: b * x, lambda: b.square(),
               lambda: b.polyval([0, 1, 1]), lambda: b.rotate(1), lambda: b @ np.ones((3, 2))):
        with pytest.raises(veil.VeilError):
            op()
    with pytest.raises(veil.VeilError):
        a.polyval(np.ones(64))  # Chebyshev degree 63 needs more levels than 4
    close((b + b).decrypt(), 2 * x ** (ckks.depth + 1), ckks_tol(ckks))  # additions still work


def test_ckks_input_checks(ckks):
    with pytest.raises(ValueError):
        veil.CKKSVector(ckks, np.zeros(ckks.slots + 1))
    with pytest.raises(ValueError):
        veil.CKKSVector(ckks, [])
    with pytest.raises(ValueError):
        veil.CKKSVector(ckks, [1.0, float("nan")])
    with pytest.raises(TypeError):
        veil.CKKSVector(ckks, [1j])
    a, b = veil.CKKSVector(ckks, [1.0, 2.0]), veil.CKKSVector(ckks, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        a + b
    with pytest.raises(ValueError):
        a * [1.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        a ** 0
    with pytest.raises(TypeError):
        a + "x"


# ---- BGV against numpy ------------------------------------------------------------------------------------


def test_bgv_operations(bgv):
    rng = np.random.default_rng(7)
    n = 23
    x, y, p = rng.integers(-150, 150, n), rng.integers(-150, 150, n), rng.integers(-150, 150, n)
    a, b = veil.BGVVector(bgv, x), veil.BGVVector(bgv, y)
    t = bgv.t

    def mod(v):
        r = np.mod(v, t)
        return np.where(r > t // 2, r - t, r)

    out = a.decrypt()
    assert out.dtype == np.int64 and np.array_equal(out, x)
    assert np.array_equal((a + b).decrypt(), x + y)
    assert np.array_equal((a - b).decrypt(), x - y)
    assert np.array_equal((a * b).decrypt(), x * y)
    assert np.array_equal((-a).decrypt(), -x)
    assert np.array_equal((a + 7).decrypt(), x + 7)
    assert np.array_equal((7 - a).decrypt(), 7 - x)
    assert np.array_equal((a * -3).decrypt(), -3 * x)
    assert np.array_equal((a + p).decrypt(), x + p)
    assert np.array_equal((a * p).decrypt(), x * p)
    assert np.array_equal((p - a).decrypt(), p - x)
    assert np.array_equal(a.square().decrypt(), mod(x * x))
    assert np.array_equal((a ** 3).decrypt(), mod(x ** 3))
    assert np.array_equal(a.sum().decrypt(), [x.sum()])
    assert np.array_equal(a.dot(b).decrypt(), [mod(x @ y)])
    assert np.array_equal(a.polyval([3, -2, 1]).decrypt(), mod(3 - 2 * x + x * x))
    for s in (1, -1, 5, -7, n, 3 * n - 2):
        assert np.array_equal(a.rotate(s).decrypt(), np.roll(x, -s))
    m = rng.integers(-20, 20, (n, 9))
    assert np.array_equal((a @ m).decrypt(), mod(x @ m))
    # exact arithmetic mod t: large values wrap to their centered representatives
    big = veil.BGVVector(bgv, [t - 1, t // 2, -(t // 2), 2 * t + 5])
    assert np.array_equal(big.decrypt(), [-1, t // 2, -(t // 2), 5])
    assert np.array_equal((big * big).decrypt(), mod(np.array([-1, t // 2, -(t // 2), 5]) ** 2))
    with pytest.raises(TypeError):
        veil.BGVVector(bgv, [1.5])
    with pytest.raises(TypeError):
        a * 0.5


@pytest.mark.parametrize("seed", range(4))
def test_bgv_random_circuits(bgv, seed):
    rng = np.random.default_rng(200 + seed)
    t = bgv.t
    n = int(rng.integers(1, bgv.slots + 1))
    x, y = rng.integers(-t // 2, t // 2, n), rng.integers(-t // 2, t // 2, n)
    a, b = veil.BGVVector(bgv, x), veil.BGVVector(bgv, y)
    c = int(rng.integers(-1000, 1000))

    def mod(v):
        v = np.array([int(e) % t for e in v], dtype=np.int64)
        return np.where(v > t // 2, v - t, v)

    xo, yo = x.astype(object), y.astype(object)
    want = mod((xo * yo + c * xo - yo) * (xo + c))
    assert np.array_equal(((a * b + c * a - b) * (a + c)).decrypt(), want)
    s = int(rng.integers(-n, n + 1))
    assert np.array_equal(a.rotate(s).decrypt(), np.roll(x, -s))
    assert np.array_equal((a - b).sum().decrypt(), mod([int(np.sum(xo - yo))]))


def test_bgv_noise_budget_and_exhaustion(bgv):
    a = veil.BGVVector(bgv, [3, -4, 5])
    fresh, est = a.noise_budget(), a.noise_budget_estimate()
    assert fresh > 0 and 0 < est <= fresh + 1
    b = a * a
    assert b.noise_budget() < fresh
    with pytest.raises(veil.VeilError):
        veil.BGVVector(bgv.public(), [1]).noise_budget()
    # squaring until the budget is gone: a VeilError (NoiseError at decryption, or a refused product), never
    # a wrong value
    v, want = a, np.array([3, -4, 5], dtype=object)
    with pytest.raises(veil.VeilError):
        for _ in range(30):
            v, want = v * v, want * want
            got = v.decrypt()
            r = np.array([int(w) % bgv.t for w in want])
            assert np.array_equal(got, np.where(r > bgv.t // 2, r - bgv.t, r))


# ---- public contexts, bytes, pickling ---------------------------------------------------------------------


def test_public_context(ckks, bgv):
    pub = ckks.public()
    assert not pub.has_secret_key and pub.key_id == ckks.key_id
    x = np.array([1.0, -2.0, 0.5])
    enc = veil.CKKSVector(pub, x)  # the public key's encryption
    with pytest.raises(veil.VeilError, match="secret key"):
        enc.decrypt()
    with pytest.raises(veil.VeilError):
        pub.to_bytes(secret=True)
    # the server computes with the public context; the owner decrypts (its context, or vectors moved to it)
    mine = veil.CKKSVector(ckks, x)
    out = (enc * mine + 1).sum()
    close(out.decrypt(ckks), [np.sum(x * x + 1)], ckks_tol(ckks, 10))
    close(out.with_context(ckks).decrypt(), [np.sum(x * x + 1)], ckks_tol(ckks, 10))
    with pytest.raises(veil.VeilError):
        veil.BGVVector(bgv.public(), [1, 2]).decrypt()


def test_context_bytes_round_trip(ckks):
    x = np.array([0.25, -1.5, 3.0, 0.0, 1.0])
    v = veil.CKKSVector(ckks, x)
    pub = veil.Context.from_bytes(ckks.to_bytes())
    assert not pub.has_secret_key and pub.key_id == ckks.key_id and pub.rotation_steps == ckks.rotation_steps
    sec = veil.Context.from_bytes(ckks.to_bytes(secret=True))
    assert sec.has_secret_key and sec.n == ckks.n and sec.depth == ckks.depth and sec.scale_bits == 40
    # a vector moves between copies of one key set through its bytes (or directly: re-read under the copy)
    w = veil.CKKSVector.from_bytes(pub, v.to_bytes())
    r = (w * w).rotate(2)
    close(veil.CKKSVector.from_bytes(sec, r.to_bytes()).decrypt(), np.roll(x * x, -2), ckks_tol(ckks, 9))
    close(r.decrypt(ckks), np.roll(x * x, -2), ckks_tol(ckks, 9))
    close((v + w).decrypt(), 2 * x, ckks_tol(ckks))  # copies of the same keys combine
    # encryption under a loaded public context decrypts with the original secret key
    close(veil.CKKSVector(pub, x).decrypt(ckks), x, ckks_tol(ckks))


def test_pickle(ckks, bgv):
    x = np.array([1.0, 2.0, -3.0])
    a, b = veil.CKKSVector(ckks, x), veil.CKKSVector(ckks, 2 * x)
    a2, b2 = pickle.loads(pickle.dumps([a, b]))
    assert a2.context is b2.context  # one context per pickle, shared by its vectors
    assert a2.context.has_secret_key  # a context with a secret key pickles with it
    close((a2 + b2).decrypt(), 3 * x, ckks_tol(ckks))
    pub = pickle.loads(pickle.dumps(ckks.public()))
    assert not pub.has_secret_key
    server_side = pickle.loads(pickle.dumps(a.with_context(ckks.public())))
    assert not server_side.context.has_secret_key
    close(server_side.square().decrypt(ckks), x * x, ckks_tol(ckks, 9))
    i = veil.BGVVector(bgv, [5, -6, 7])
    i2 = pickle.loads(pickle.dumps(i))
    assert np.array_equal((i2 * i2).decrypt(), [25, 36, 49])
    assert np.array_equal(veil.BGVVector.from_bytes(bgv, i.to_bytes()).decrypt(), [5, -6, 7])


def _flipped_positions(length, count=40):
    rng = np.random.default_rng(length)
    head = list(range(0, 64, 3))  # the header's fields
    return sorted(set(head + [length - 1, length - 33] + list(rng.integers(0, length, count))))


def test_damaged_bytes_raise_format_error(ckks, bgv):
    v = veil.CKKSVector(ckks, [1.0, 2.0, 3.0])
    data = v.to_bytes()
    for i in _flipped_positions(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0x41
        with pytest.raises(veil.FormatError):
            veil.CKKSVector.from_bytes(ckks, bytes(bad))
    for n in (0, 1, 63, 64, 100, len(data) // 2, len(data) - 32, len(data) - 1):
        with pytest.raises(veil.FormatError):
            veil.CKKSVector.from_bytes(ckks, data[:n])
    with pytest.raises(veil.FormatError):
        veil.CKKSVector.from_bytes(ckks, data + b"\0")
    ctx_bytes = ckks.to_bytes()
    for i in _flipped_positions(len(ctx_bytes), 20):
        bad = bytearray(ctx_bytes)
        bad[i] ^= 0x08
        with pytest.raises(veil.FormatError):
            veil.Context.from_bytes(bytes(bad))
    for n in (0, 10, 64, len(ctx_bytes) // 3, len(ctx_bytes) - 1):
        with pytest.raises(veil.FormatError):
            veil.Context.from_bytes(ctx_bytes[:n])
    # foreign data: another kind of Veil object, a vector of the other scheme, random bytes
    with pytest.raises(veil.FormatError):
        veil.Context.from_bytes(data)
    with pytest.raises(veil.FormatError):
        veil.CKKSVector.from_bytes(ckks, ctx_bytes)
    with pytest.raises(veil.FormatError):
        veil.CKKSVector.from_bytes(bgv, veil.BGVVector(bgv, [1]).to_bytes())
    with pytest.raises(veil.FormatError):
        veil.CKKSVector.from_bytes(ckks, np.random.default_rng(0).bytes(5000))
    with pytest.raises(TypeError):
        veil.CKKSVector.from_bytes(ckks, "not bytes")
    with pytest.raises(veil.FormatError):
        veil.Context.from_bytes(b"VEIL" + bytes(200))


def test_contexts_do_not_mix(ckks, bgv):
    other = veil.Context.ckks(n=2048, depth=4, security="none", rotations=None)
    a, b = veil.CKKSVector(ckks, [1.0, 2.0]), veil.CKKSVector(other, [1.0, 2.0])
    with pytest.raises(veil.MismatchError):
        a + b
    with pytest.raises(veil.MismatchError):
        b * a
    with pytest.raises(veil.MismatchError):
        veil.CKKSVector.from_bytes(other, a.to_bytes())  # same parameters, other keys
    with pytest.raises(veil.MismatchError):
        a.decrypt(other)
    bigger = veil.Context.ckks(n=4096, depth=2, security="none", rotations=None)
    with pytest.raises(veil.MismatchError):
        veil.CKKSVector.from_bytes(bigger, a.to_bytes())  # other parameters
    with pytest.raises(TypeError):
        a + veil.BGVVector(bgv, [1, 2])
    with pytest.raises(TypeError):
        veil.CKKSVector(bgv, [1.0])
    with pytest.raises(veil.VeilError):
        b.rotate(1)  # no rotation keys in that context: a clear error


# ---- the GIL ----------------------------------------------------------------------------------------------


def test_gil_released_during_long_calls():
    """A degree-127 polynomial at N = 16384 is one C call of about a second: another Python thread must keep
    running meanwhile (cffi releases the GIL), so that its longest pause is far below the call's length."""
    ctx = veil.Context.ckks(n=16384, depth=9, security="none", rotations=None)
    x = np.random.default_rng(3).uniform(-1, 1, ctx.slots)
    a = veil.CKKSVector(ctx, x)
    coeffs = np.random.default_rng(4).uniform(-1, 1, 128) / 64
    stop = threading.Event()
    state = {"count": 0, "gap": 0.0}

    def spin():
        last = time.perf_counter()
        while not stop.is_set():
            state["count"] += 1
            now = time.perf_counter()
            state["gap"] = max(state["gap"], now - last)
            last = now

    th = threading.Thread(target=spin)
    th.start()
    try:
        time.sleep(0.05)
        state["gap"], before = 0.0, state["count"]
        t0 = time.perf_counter()
        y = a.polyval(coeffs)
        elapsed = time.perf_counter() - t0
        advanced, gap = state["count"] - before, state["gap"]
    finally:
        stop.set()
        th.join()
    assert advanced > 1000, advanced
    assert gap < max(0.5 * elapsed, 0.05), (gap, elapsed)
    close(y.decrypt(), np.polynomial.polynomial.polyval(x, coeffs), ckks_tol(ctx, 10))
