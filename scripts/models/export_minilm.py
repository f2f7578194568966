#!/usr/bin/env python3
"""Write a BERT-family sentence encoder (all-MiniLM-L6-v2 by default) as a small ONNX graph, from
model.safetensors + config.json, with numpy + onnx + safetensors only (no torch).

Graph: one input `input_ids` int64 [1, S] (no padding, batch 1: the attention mask is all ones and the
token types are all 0, so neither is an input), one output `last_hidden_state` float32 [1, S, H].
Mean pooling and L2 normalisation are done by the caller (src/core/embed/local.rs), exactly as
sentence-transformers does for this model.

Usage: export_minilm.py --src DIR_WITH_SAFETENSORS --out OUT_DIR [--emb-dtype f32|f16]
Copies tokenizer.json next to model.onnx and writes meta.json (name, dims, layers).
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", required=True, help="dir with model.safetensors (+ config.json, tokenizer.json)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--name", default="all-MiniLM-L6-v2")
    ap.add_argument("--emb-dtype", choices=["f32", "f16", "int8"], default="f32",
                    help="storage of the word-embedding table: f16, or int8 with a per-row scale; the Cast (and "
                         "Mul) come after the Gather, so the runtime keeps the table small")
    ap.add_argument("--weights", choices=["f32", "int8"], default="f32",
                    help="storage of the dense layer weights in the file: int8 with a per-column scale "
                         "(Cast+Mul on constants: tract folds them to f32 at load; the file and the .wasm shrink)")
    args = ap.parse_args()

    cfg = {"hidden_size": 384, "num_attention_heads": 12, "num_hidden_layers": 6, "intermediate_size": 1536,
           "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
    cpath = os.path.join(args.src, "config.json")
    if os.path.exists(cpath):
        with open(cpath) as f:
            cfg.update(json.load(f))
    if cfg.get("hidden_act", "gelu") != "gelu":
        print(f"unsupported hidden_act {cfg['hidden_act']}", file=sys.stderr)
        return 2
    H, NH, L = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    HD = H // NH
    eps = float(cfg["layer_norm_eps"])

    w = load_file(os.path.join(args.src, "model.safetensors"))
    # strip a leading "bert." / "model." prefix if present
    def get(name: str) -> np.ndarray:
        for p in ("", "bert.", "model.", "0.auto_model."):
            if p + name in w:
                return w[p + name].astype(np.float32)
        raise KeyError(name)

    inits = []
    nodes = []

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(arr, name))
        return name

    def node(op, ins, outs=None, **attrs):
        node.n += 1
        outs = outs or [f"{op.lower()}_{node.n}"]
        nodes.append(helper.make_node(op, ins, outs, name=f"{op}_{node.n}", **attrs))
        return outs[0]
    node.n = 0

    eps_c = const("eps", np.array(eps, dtype=np.float32))

    def layer_norm(x, prefix):
        g = const(prefix + ".weight", get(prefix + ".weight"))
        b = const(prefix + ".bias", get(prefix + ".bias"))
        mean = node("ReduceMean", [x], axes=[-1], keepdims=1)
        d = node("Sub", [x, mean])
        var = node("ReduceMean", [node("Mul", [d, d])], axes=[-1], keepdims=1)
        std = node("Sqrt", [node("Add", [var, eps_c])])
        return node("Add", [node("Mul", [node("Div", [d, std]), g]), b])

    def q8(name: str, arr: np.ndarray, axis: int):
        """symmetric int8 with one scale per slice along `axis` (kept dims for broadcasting)"""
        amax = np.max(np.abs(arr), axis=axis, keepdims=True)
        scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
        q = np.clip(np.round(arr / scale), -127, 127).astype(np.int8)
        return const(name + "_q", q), const(name + "_scale", scale)

    def linear(x, prefix):
        w_t = np.ascontiguousarray(get(prefix + ".weight").T)  # [in, out]
        if args.weights == "int8":
            q, sc = q8(prefix + ".weight_t", w_t, axis=0)     # one scale per output column
            wt = node("Mul", [node("Cast", [q], to=TensorProto.FLOAT), sc])
        else:
            wt = const(prefix + ".weight_t", w_t)
        b = const(prefix + ".bias", get(prefix + ".bias"))
        return node("Add", [node("MatMul", [x, wt]), b])

    # --- embeddings ---
    wemb = get("embeddings.word_embeddings.weight")
    if args.emb_dtype == "int8":
        q, sc = q8("word_embeddings", wemb, axis=1)           # one scale per token row
        rows = node("Cast", [node("Gather", [q, "input_ids"], axis=0)], to=TensorProto.FLOAT)
        x = node("Mul", [rows, node("Gather", [sc, "input_ids"], axis=0)])
    elif args.emb_dtype == "f16":
        table = const("word_embeddings", wemb.astype(np.float16))
        x = node("Cast", [node("Gather", [table, "input_ids"], axis=0)], to=TensorProto.FLOAT)
    else:
        table = const("word_embeddings", wemb)
        x = node("Gather", [table, "input_ids"], axis=0)  # [1,S,H]
    # position embeddings + token type 0, folded into one table; sliced to S
    pos = get("embeddings.position_embeddings.weight") + get("embeddings.token_type_embeddings.weight")[0]
    pos_c = const("pos_tt", pos.astype(np.float32))
    shape = node("Shape", ["input_ids"])
    seq = node("Slice", [shape, const("one_i", np.array([1], np.int64)), const("two_i", np.array([2], np.int64))])
    pos_s = node("Slice", [pos_c, const("zero_i", np.array([0], np.int64)), seq, const("axis0", np.array([0], np.int64))])
    x = node("Add", [x, pos_s])
    x = layer_norm(x, "embeddings.LayerNorm")

    scale = const("attn_scale", np.array(1.0 / np.sqrt(HD), dtype=np.float32))
    shp_heads = const("shp_heads", np.array([1, -1, NH, HD], dtype=np.int64))
    shp_hidden = const("shp_hidden", np.array([1, -1, H], dtype=np.int64))
    half = const("half", np.array(0.5, np.float32))
    one = const("one", np.array(1.0, np.float32))
    inv_sqrt2 = const("inv_sqrt2", np.array(1.0 / np.sqrt(2.0), np.float32))

    for i in range(L):
        p = f"encoder.layer.{i}"
        q = node("Transpose", [node("Reshape", [linear(x, p + ".attention.self.query"), shp_heads])], perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [linear(x, p + ".attention.self.key"), shp_heads])], perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [linear(x, p + ".attention.self.value"), shp_heads])], perm=[0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [q, k]), scale])           # [1,NH,S,S]
        probs = node("Softmax", [scores], axis=-1)
        ctx = node("MatMul", [probs, v])                                 # [1,NH,S,HD]
        ctx = node("Reshape", [node("Transpose", [ctx], perm=[0, 2, 1, 3]), shp_hidden])
        attn = linear(ctx, p + ".attention.output.dense")
        x = layer_norm(node("Add", [attn, x]), p + ".attention.output.LayerNorm")
        h = linear(x, p + ".intermediate.dense")
        h = node("Mul", [node("Mul", [h, half]), node("Add", [node("Erf", [node("Mul", [h, inv_sqrt2])]), one])])
        o = linear(h, p + ".output.dense")
        x = layer_norm(node("Add", [o, x]), p + ".output.LayerNorm")

    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"], name="out"))
    graph = helper.make_graph(
        nodes, args.name,
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "S"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [1, "S", H])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="semcache-export")
    model.ir_version = 7
    onnx.checker.check_model(model)
    os.makedirs(args.out, exist_ok=True)
    tmp = os.path.join(args.out, "model.onnx.tmp")
    onnx.save(model, tmp)
    os.replace(tmp, os.path.join(args.out, "model.onnx"))
    shutil.copyfile(os.path.join(args.src, "tokenizer.json"), os.path.join(args.out, "tokenizer.json"))
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump({"name": args.name, "dimensions": H, "layers": L, "emb_dtype": args.emb_dtype, "weights": args.weights,
                   "pooling": "mean", "normalize": True}, f)
    print(f"wrote {args.out}/model.onnx ({os.path.getsize(os.path.join(args.out, 'model.onnx')) / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
