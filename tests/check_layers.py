#!/usr/bin/env python3
"""Checks Veil's layering (docs/design.md, "Layers"): run as `check_layers.py SOURCE_DIR BUILD_DIR`.

1. Includes: a file of src/<layer>/ or tools/ includes public headers of its own or lower layers only, and
   private headers of its own folder or the one internal header (<layer>/<layer>_internal.h) of a layer
   it builds on (ALLOWED below).
2. Calls: from the object files (nm), an edge A -> B when A.o uses a symbol that B.o defines. No edge may
   point to a higher layer (or sideways, between CKKS and BGV), and the files of one folder form no cycle.
Exits 1 listing every violation.
"""
import collections
import os
import re
import subprocess
import sys

RANK = {"core": 0, "ring": 1, "rlwe": 2, "ckks": 3, "bgv": 3, "circuits": 4, "serial": 5, "ml": 6,
        "net": 7, "tools": 8}
# The internal headers each layer may include besides its own folder's (the layers it builds on).
ALLOWED = {
    "core": set(),
    "ring": {"core"},
    "rlwe": {"core", "ring"},
    "ckks": {"core", "rlwe"},
    "bgv": {"core", "rlwe"},
    "circuits": {"core", "ckks", "bgv"},
    "serial": {"core", "rlwe", "ckks", "bgv", "circuits"},  # circuits: the bootstrapping keys it writes
    "ml": {"core", "serial"},
    "net": {"core"},
    "tools": set(),
}
PUBLIC = {"core.h": "core", "ring.h": "ring", "params.h": "rlwe", "rlwe.h": "rlwe", "party.h": "rlwe", "ckks.h": "ckks",
          "bgv.h": "bgv", "circuits.h": "circuits", "serial.h": "serial", "ml.h": "ml", "train.h": "ml",
          "net.h": "net", "veil.h": "tools"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def source_files(root):
    for top in ("src", "tools"):
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if name.endswith((".c", ".h")):
                    path = os.path.join(dirpath, name)
                    rel = os.path.relpath(path, root)
                    parts = rel.split(os.sep)
                    layer = "tools" if parts[0] == "tools" else parts[1]
                    yield rel, layer, path


def check_includes(root):
    bad = []
    for rel, layer, path in source_files(root):
        if layer not in RANK:
            bad.append(f"{rel}: folder '{layer}' is not a known layer")
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            parts = inc.split("/")
            if len(parts) == 1:
                continue  # a header of the same folder
            folder, name = parts[0], parts[-1]
            if folder == "veil":
                target = PUBLIC.get(name)
                if target is None:
                    bad.append(f"{rel}: includes unknown public header {inc}")
                elif RANK[target] > RANK[layer] or (RANK[target] == RANK[layer] and target != layer):
                    bad.append(f"{rel}: includes {inc} of the higher layer '{target}'")
            elif folder == layer:
                continue
            elif folder in RANK:
                if name != f"{folder}_internal.h":
                    bad.append(f"{rel}: includes {inc}, a private header of '{folder}' that is not its internal header")
                elif folder not in ALLOWED[layer]:
                    bad.append(f"{rel}: includes {inc}: '{layer}' may include the internal headers of "
                               f"{sorted(ALLOWED[layer]) or 'no other layer'} only")
            # other paths (generated code such as onnx.pb-c.h) are not layers
    return bad


def nm(path):
    out = subprocess.run(["nm", "--format=posix", path], capture_output=True, text=True, check=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        name, kind = fields[0], fields[1]
        if kind == "U":
            used.add(name)
        elif kind in "TDBRCVW":
            defined.add(name)
    return defined, used


def object_files(build, root=None):
    """The library's and the CLI's object files whose source still exists (a stale build keeps others)."""
    for target, top in (("veil_static.dir", "src"), ("veil.dir", "tools")):
        base = os.path.join(build, "CMakeFiles", target, top)
        for dirpath, _, names in os.walk(base):
            for name in sorted(names):
                if name.endswith(".c.o"):
                    path = os.path.join(dirpath, name)
                    rel = os.path.join(top, os.path.relpath(path, base))[: -len(".o")]
                    if root is not None and not os.path.exists(os.path.join(root, rel)):
                        continue
                    parts = rel.split(os.sep)
                    yield rel, ("tools" if top == "tools" else parts[1]), path


def cycles(nodes, edges):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def check_calls(build, root=None):
    files = list(object_files(build, root))
    if not files:
        return [f"no object files under {build}/CMakeFiles/veil_static.dir: build first"]
    owner, layer_of, uses = {}, {}, {}
    for rel, layer, path in files:
        defined, used = nm(path)
        layer_of[rel] = layer
        uses[rel] = used
        for sym in defined:
            owner.setdefault(sym, rel)
    bad = []
    edges = collections.defaultdict(set)
    why = {}
    for rel, used in uses.items():
        for sym in used:
            dst = owner.get(sym)
            if dst is None or dst == rel:
                continue
            a, b = layer_of[rel], layer_of[dst]
            if RANK.get(b, 99) > RANK.get(a, 99) or (RANK.get(a) == RANK.get(b) and a != b):
                bad.append(f"{rel} calls {sym} of the higher layer file {dst}")
            if a == b:
                edges[rel].add(dst)
                why.setdefault((rel, dst), sym)
    for layer in sorted(set(layer_of.values())):
        nodes = [f for f, l in layer_of.items() if l == layer]
        for comp in cycles(nodes, edges):
            detail = ", ".join(f"{a} -> {b} ({why[(a, b)]})" for a in comp for b in sorted(edges[a]) if b in comp)
            bad.append(f"cycle among {layer} files: {detail}")
    return bad


def self_test():
    """The checker on a small tree with one violation of each kind: it must find all three."""
    import tempfile
    files = {
        "src/ml/a.c": '#include "ring/ring_internal.h"\nint veil_b(void);\nint veil_a(void) { return veil_b(); }\n',
        "src/ring/ring_internal.h": "/* empty */\n",
        "src/ml/b.c": 'int veil_a(void);\nint veil_b(void) { return veil_a() + 1; }\n',
        "src/ring/r.c": 'int veil_a(void);\nint veil_r(void) { return veil_a(); }\n',
    }
    with tempfile.TemporaryDirectory() as tmp:
        root, build = os.path.join(tmp, "src_tree"), os.path.join(tmp, "build")
        for rel, text in files.items():
            path = os.path.join(root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        for rel in (r for r in files if r.endswith(".c")):
            obj = os.path.join(build, "CMakeFiles", "veil_static.dir", rel + ".o")
            os.makedirs(os.path.dirname(obj), exist_ok=True)
            subprocess.run(["cc", "-I", os.path.join(root, "src"), "-c", os.path.join(root, rel), "-o", obj],
                           check=True)
        found = check_includes(root) + check_calls(build)
    expect = ["includes ring/ring_internal.h", "calls veil_a of the higher layer", "cycle among ml files"]
    missing = [e for e in expect if not any(e in line for line in found)]
    if missing or len(found) != len(expect):
        print("self-test failed: expected one violation each of", expect, "found", found)
        sys.exit(1)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_layers.py SOURCE_DIR BUILD_DIR")
    self_test()
    root, build = sys.argv[1], sys.argv[2]
    bad = check_includes(root) + check_calls(build, root)
    for line in bad:
        print(line)
    if bad:
        print(f"{len(bad)} layering violation(s)")
        sys.exit(1)
    print("layers: includes point downward, no upward call, no cycle among the files of a folder")


if __name__ == "__main__":
    main()
