#!/usr/bin/python3
"""The exported surface of libveil.so is the documented API.

usage: test_exports.py LIBVEIL.so INCLUDE_DIR

Compares the functions and variables libveil.so exports (nm -D --defined-only) with those declared in the
public headers INCLUDE_DIR/*.h, parsed now (a declaration added to a header later is expected at once):
at file level, outside macros, typedefs and struct, union and enum bodies, a name veil_* followed by "("
is a function, the name an "extern" declaration without parentheses declares a variable. Fails listing
the names exported but not declared (internals that leak) and declared but not exported (a missing
VEIL_API_BEGIN/END pair, or a declaration without a definition).
"""
import glob
import os
import re
import subprocess
import sys


def strip_comments(text):
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise ValueError("unterminated comment")
            out.append(" ")
            i = j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text[i] in "\"'":
            q, j = text[i], i + 1
            while j < n and text[j] != q:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def strip_preprocessor(text):
    """Drops directives (with their continuation lines) and what C++ compilers alone see."""
    lines, out, skip, depth = text.split("\n"), [], 0, 0
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = line.strip().startswith("#")
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + lines[i]
        i += 1
        if not directive:
            if not skip:
                out.append(line)
            continue
        words = line.strip()[1:].split()
        word = words[0] if words else ""
        if word in ("if", "ifdef", "ifndef"):
            depth += 1
            if not skip and word == "ifdef" and len(words) > 1 and words[1] == "__cplusplus":
                skip = depth
        elif word == "endif":
            if skip == depth:
                skip = 0
            depth -= 1
        elif word in ("else", "elif") and skip == depth:
            skip = 0
    return "\n".join(out)


def strip_braces(text):
    """Removes the bodies of structs, unions and enums (their members are no declarations of the API)."""
    out, depth = [], 0
    for c in text:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced braces")
        elif depth == 0:
            out.append(c)
    return "".join(out)


def strip_attributes(text):
    out, i = [], 0
    for m in re.finditer(r"__attribute__\s*\(", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        j, depth = m.end(), 1
        while depth:
            depth += {"(": 1, ")": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def declared(header_dir):
    names = {}
    for path in sorted(glob.glob(os.path.join(header_dir, "*.h"))):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        text = strip_attributes(strip_braces(strip_preprocessor(strip_comments(text))))
        text = re.sub(r"\bVEIL_(API_BEGIN|API_END|EXPORT)\b", " ", text)
        for statement in text.split(";"):
            statement = " ".join(statement.split())
            if not statement or re.match(r"typedef\b", statement):
                continue
            # the first name followed by "(" outside parentheses: a function
            depth, found = 0, None
            for m in re.finditer(r"[()]|\b(veil_\w+)\s*(?=\()", statement):
                if m.group(0) == "(":
                    depth += 1
                elif m.group(0) == ")":
                    depth -= 1
                elif depth == 0:
                    found = m.group(1)
                    break
            if found is None and "(" not in statement and re.match(r"extern\b", statement):
                m = re.search(r"\b(veil_\w+)\s*(\[[^\]]*\]\s*)*$", statement)
                found = m.group(1) if m else None
            if found:
                names.setdefault(found, os.path.basename(path))
    return names


def exported(library):
    out = subprocess.run(["nm", "-D", "--defined-only", "-P", library], check=True, capture_output=True,
                         text=True).stdout
    names = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[1] in ("A", "a", "N", "n", "U", "w", "v"):
            continue
        names.add(fields[0].split("@")[0])
    return names


def main():
    if len(sys.argv) != 3:
        print(__doc__.strip().split("\n")[2], file=sys.stderr)
        return 2
    library, header_dir = sys.argv[1], sys.argv[2]
    decl, expo = declared(header_dir), exported(library)
    if len(decl) < 100:
        print(f"exports: only {len(decl)} declarations parsed in {header_dir}: the parser is broken")
        return 1
    leaked = sorted(expo - set(decl))
    missing = sorted(set(decl) - expo)
    for name in leaked:
        print(f"exported but not declared in a public header: {name}")
    for name in missing:
        print(f"declared in veil/{decl[name]} but not exported by {os.path.basename(library)}: {name}")
    if leaked or missing:
        print(f"exports: {len(leaked)} leaked, {len(missing)} missing ({len(expo)} exported, {len(decl)} declared)")
        return 1
    print(f"exports: ok ({len(expo)} symbols, each declared in a public header)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
