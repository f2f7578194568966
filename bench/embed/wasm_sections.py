#!/usr/bin/env python3
"""Print the size of a .wasm file's code and data sections (V8 compiles the code section before Envoy's listener
opens; the data section is copied into each VM's memory). Usage: wasm_sections.py FILE.wasm [...]"""
import json
import sys


def leb(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


def sections(path):
    b = open(path, "rb").read()
    assert b[:4] == b"\0asm", path
    i, out = 8, {"total": len(b), "code": 0, "data": 0, "other": 0}
    while i < len(b):
        sid, i = b[i], i + 1
        n, i = leb(b, i)
        out["code" if sid == 10 else "data" if sid == 11 else "other"] += n
        i += n
    return out


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(json.dumps({"file": p, **sections(p)}))
