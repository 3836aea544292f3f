"""veil.Client: the data owner's side of `veil serve` (docs/net.md), with keys kept in memory between calls."""
from __future__ import annotations

import json
import os
import threading
import urllib.parse
from typing import Callable, List, Optional

import numpy as np

from ._errors import NotFoundError, VeilError
from ._lib import call, ffi, lib, new_handle, progress_callback, take_bytes
from .keys import Ciphertexts, KeySet, as_rows
from .model import PlanInfo, _plan_info, classes, keygen_for_plan


class Client:
    """A connection to `veil serve` (one connection: calls from several threads take turns). token: the bearer token sent with every request (default: the VEIL_TOKEN
    environment variable); cafile: a CA bundle (PEM) to trust a server's own certificate for https:// URLs.

        c = veil.Client("http://127.0.0.1:8080")
        keys = c.keygen("hospital")             # keys for the server's plan of that model
        Y = c.predict("hospital", X, keys)      # encrypt, upload the evaluation keys once, predict, decrypt
    """

    def __init__(self, url: str, *, token: Optional[str] = None, cafile: Optional[str] = None,
                 progress: Optional[Callable[[int, int], None]] = None):
        self.url = url
        self._lock = threading.RLock()  # libcurl's handle serves one request at a time
        with _NEW_LOCK:  # curl's global initialization, on the first client, is not thread-safe
            self._h = new_handle("veil_client", lambda out: call(lib.veil_client_new, out, url.encode()),
                                 lib.veil_client_free)
        token = token if token is not None else os.environ.get("VEIL_TOKEN")
        if token:
            call(lib.veil_client_set_token, self._h, token.encode())
        if cafile:
            call(lib.veil_client_set_ca_file, self._h, os.fsencode(cafile))
        self._progress = progress_callback(progress)
        if progress is not None:
            lib.veil_client_set_progress(self._h, self._progress, ffi.NULL)
        self._uploaded = {}

    def _get(self, path: str) -> bytes:
        with self._lock:
            return take_bytes(lambda buf, err: lib.veil_client_get(self._h, path.encode(), buf, err))

    def models(self) -> List[dict]:
        """The models the server hosts: name, input and output widths."""
        doc = json.loads(self._get("/v1/models"))
        return doc.get("models", doc) if isinstance(doc, dict) else doc

    def plan_bytes(self, model: str, packing: str = "throughput") -> bytes:
        if packing not in ("throughput", "latency"):
            raise ValueError(f"packing is 'throughput' or 'latency', not {packing!r}")
        return self._get(f"/v1/models/{urllib.parse.quote(model, safe='')}/plan?packing={packing}")

    def plan(self, model: str, packing: str = "throughput") -> PlanInfo:
        """The server's plan for a model: parameters, sizes and keys."""
        return _plan_info(self._load_plan(self.plan_bytes(model, packing)))

    @staticmethod
    def _load_plan(data: bytes):
        return new_handle("veil_plan", lambda out: call(lib.veil_plan_load, out, data, len(data)), lib.veil_plan_free)

    def keygen(self, model: str, packing: str = "throughput", *, seed: Optional[bytes] = None,
               progress: Optional[Callable[[int, int], None]] = None) -> KeySet:
        """A key set for the server's plan of `model` (as `veil keygen --server`); the secret stays here."""
        return keygen_for_plan(self._load_plan(self.plan_bytes(model, packing)), seed=seed, progress=progress)

    def upload_keys(self, keys: KeySet) -> str:
        """Uploads the evaluation keys unless the server already holds them; their id on the server."""
        with self._lock:
            cached = self._uploaded.get(keys.id)
            if cached is not None:
                return cached
            bundle = keys.eval.to_bytes()
            key_id = ffi.new("char[65]")
            call(lib.veil_client_upload_keys, self._h, bundle, len(bundle), key_id)
            self._uploaded[keys.id] = ffi.string(key_id).decode()
            return self._uploaded[keys.id]

    def run(self, model: str, ct: Ciphertexts, keys: KeySet) -> Ciphertexts:
        """The server evaluates `model` on the ciphertexts: the encrypted outputs."""
        data = ct.to_bytes()
        for attempt in (0, 1):
            key_id = self.upload_keys(keys)
            try:
                with self._lock:
                    out = take_bytes(lambda buf, err: lib.veil_client_predict(self._h, model.encode(), key_id.encode(),
                                                                              data, len(data), buf, err))
                break
            except NotFoundError:
                # the server no longer holds the keys (deleted, or a new store): upload them again, once
                with self._lock:
                    if attempt or not self._uploaded.pop(keys.id, None):
                        raise
        return Ciphertexts.from_bytes(out, keys)

    def predict(self, model: str, X, keys: KeySet, *, argmax: bool = False) -> np.ndarray:
        """Encrypts X (n, features), has the server evaluate `model`, and decrypts: numpy (n, outputs)."""
        x = as_rows(X, keys.input_width, "X")
        y = keys.decrypt(self.run(model, keys.encrypt(x), keys))
        if y.shape[0] != x.shape[0]:
            raise VeilError(f"the server answered {y.shape[0]} rows for {x.shape[0]}")
        return classes(y, keys.final_op) if argmax else y

    def traffic(self):
        """(bytes sent, bytes received) by this client so far."""
        sent, received = ffi.new("uint64_t *"), ffi.new("uint64_t *")
        lib.veil_client_traffic(self._h, sent, received)
        return int(sent[0]), int(received[0])


_NEW_LOCK = threading.Lock()
