#!/usr/bin/env python3
"""Weight-only int8 storage for an ONNX sentence encoder, laid out for tract (the in-filter runtime):

- a float initializer used as the *table* of a Gather (word embeddings): int8 + one scale per row, and the
  Gather is rewritten Gather(q) -> Cast -> Mul(Gather(scale)) so the table stays int8 in memory at run time;
- a 2-D float initializer used as the B input of a MatMul: int8 + one scale per output column, dequantised by
  Cast -> Mul on constants (tract folds them to f32 when it loads the model: the file and the .wasm shrink,
  the compute stays f32).
Everything else is unchanged. Symmetric quantisation, no calibration data.

usage: quantize_onnx.py IN_DIR OUT_DIR [--name NAME]   (copies tokenizer.json, writes meta.json)
"""
import argparse
import json
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def q8(arr: np.ndarray, axis: int):
    amax = np.max(np.abs(arr), axis=axis, keepdims=True)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    return np.clip(np.round(arr / scale), -127, 127).astype(np.int8), scale


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("out")
    ap.add_argument("--name")
    ap.add_argument("--min-size", type=int, default=4096, help="leave smaller tensors in f32")
    a = ap.parse_args()
    m = onnx.load(os.path.join(a.src, "model.onnx"))
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    gather_tables = {n.input[0] for n in g.node if n.op_type == "Gather" and n.input[0] in inits}
    matmul_b = {n.input[1] for n in g.node if n.op_type == "MatMul" and len(n.input) > 1 and n.input[1] in inits}
    new_nodes, done = [], {}
    for n in g.node:
        if n.op_type == "Gather" and n.input[0] in gather_tables:
            t = numpy_helper.to_array(inits[n.input[0]])
            if t.dtype == np.float32 and t.ndim == 2 and t.size >= a.min_size:
                name = n.input[0]
                if name not in done:
                    q, s = q8(t, axis=1)
                    g.initializer.append(numpy_helper.from_array(q, name + "_q8"))
                    g.initializer.append(numpy_helper.from_array(s, name + "_q8scale"))
                    done[name] = True
                out = n.output[0]
                axis = next((x.i for x in n.attribute if x.name == "axis"), 0)
                new_nodes += [
                    helper.make_node("Gather", [name + "_q8", n.input[1]], [out + "_q8rows"], axis=axis),
                    helper.make_node("Cast", [out + "_q8rows"], [out + "_q8f"], to=TensorProto.FLOAT),
                    helper.make_node("Gather", [name + "_q8scale", n.input[1]], [out + "_q8s"], axis=axis),
                    helper.make_node("Mul", [out + "_q8f", out + "_q8s"], [out]),
                ]
                continue
        if n.op_type == "MatMul" and len(n.input) > 1 and n.input[1] in matmul_b:
            name = n.input[1]
            t = numpy_helper.to_array(inits[name])
            if t.dtype == np.float32 and t.ndim == 2 and t.size >= a.min_size:
                if name not in done:
                    q, s = q8(t, axis=0)
                    g.initializer.append(numpy_helper.from_array(q, name + "_q8"))
                    g.initializer.append(numpy_helper.from_array(s, name + "_q8scale"))
                    new_nodes += [
                        helper.make_node("Cast", [name + "_q8"], [name + "_q8f"], to=TensorProto.FLOAT),
                        helper.make_node("Mul", [name + "_q8f", name + "_q8scale"], [name + "_deq"]),
                    ]
                    done[name] = True
                n.input[1] = name + "_deq"
        new_nodes.append(n)
    # drop the replaced float initializers
    keep = [i for i in g.initializer if i.name not in done]
    del g.initializer[:]
    g.initializer.extend(keep)
    del g.node[:]
    g.node.extend(new_nodes)
    # node order: dequant nodes were appended before their first user, Gathers in place -> still topological
    onnx.checker.check_model(m)
    os.makedirs(a.out, exist_ok=True)
    onnx.save(m, os.path.join(a.out, "model.onnx"))
    shutil.copyfile(os.path.join(a.src, "tokenizer.json"), os.path.join(a.out, "tokenizer.json"))
    meta = {}
    if os.path.exists(os.path.join(a.src, "meta.json")):
        with open(os.path.join(a.src, "meta.json")) as f:
            meta = json.load(f)
    meta = {k: v for k, v in meta.items() if k not in ("files",)}
    meta["name"] = a.name or os.path.basename(os.path.normpath(a.out))
    meta["quantized"] = "int8 weight-only (quantize_onnx.py): tables per row, MatMul weights per column"
    with open(os.path.join(a.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"wrote {a.out}/model.onnx ({os.path.getsize(os.path.join(a.out, 'model.onnx')) / 1e6:.1f} MB), "
          f"{len(done)} tensors int8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
