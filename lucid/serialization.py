"""Checkpoints as safetensors files: backend-neutral, readable by ``mx.load`` and
``safetensors.torch.load_file``, and never executed (no pickle).

A flat ``{name: Tensor}`` state dict is stored under its own names. Anything else — nested dicts
and lists holding tensors, numbers, strings, bools and None (an optimizer's state dict, a step
count, hyper-parameters) — is stored as tensors under dotted paths plus a JSON skeleton in the
file's metadata (key ``lucid.skeleton``) that rebuilds the structure on load.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from lucid.tensor import Tensor

_SKELETON = "lucid.skeleton"
_ORDER = "lucid.order"          # safetensors sorts names; this keeps the state dict's order


def _flatten(obj: Any, path: str, tensors: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, Tensor):
        key = path or "tensor"
        if key in tensors:
            raise ValueError(f"two tensors would be stored under the same name {key!r}")
        tensors[key] = np.array(obj.numpy(), order="C")
        return {"__tensor__": key}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint dict keys must be str or int, got {k!r}")
            out[str(k)] = _flatten(v, f"{path}.{k}" if path else str(k), tensors)
        return {"__dict__": out, "__intkeys__": [str(k) for k in obj if isinstance(k, int)]}
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{path}.{i}" if path else str(i), tensors) for i, v in enumerate(obj)]
        return {"__list__": items, "__tuple__": isinstance(obj, tuple)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot save a {type(obj).__name__} in a checkpoint; use tensors, numbers, "
                    "strings, bools, None, and dicts/lists of them")


def _rebuild(node: Any, tensors: dict[str, np.ndarray], device: Any) -> Any:
    if isinstance(node, dict):
        if "__tensor__" in node:
            return Tensor(tensors[node["__tensor__"]], dtype=str(tensors[node["__tensor__"]].dtype)
                          if tensors[node["__tensor__"]].dtype != np.bool_ else "bool",
                          device=device)
        if "__dict__" in node:
            ints = set(node.get("__intkeys__", []))
            return {(int(k) if k in ints else k): _rebuild(v, tensors, device)
                    for k, v in node["__dict__"].items()}
        if "__list__" in node:
            items = [_rebuild(v, tensors, device) for v in node["__list__"]]
            return tuple(items) if node.get("__tuple__") else items
        raise ValueError(f"corrupt checkpoint skeleton node {node!r}")
    return node


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` (a state dict, or nested dicts/lists of tensors and plain values) to a
    safetensors file at ``path``. safetensors writes a temporary file beside it and renames it
    into place, so a save that is killed half-way leaves any previous file whole."""
    from safetensors.numpy import save_file
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path!r}: the folder {folder!r} does not exist")
    tensors: dict[str, np.ndarray] = {}
    flat_state_dict = isinstance(obj, dict) and obj and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    if flat_state_dict:
        for k, v in obj.items():
            tensors[k] = np.array(v.numpy(), order="C")
        metadata = {"format": "lucid", _ORDER: json.dumps(list(obj))}
    else:
        skeleton = _flatten(obj, "", tensors)
        metadata = {"format": "lucid", _SKELETON: json.dumps(skeleton)}
    save_file(tensors, path, metadata=metadata)


def load(path: str | os.PathLike, device: Any = None) -> Any:
    """Read a file written by ``save`` (or any safetensors file) onto ``device`` (default: the
    active backend). A missing file raises FileNotFoundError; a truncated, corrupt or
    non-safetensors file raises ValueError."""
    from safetensors import SafetensorError, safe_open
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no checkpoint file at {path!r}")
    try:
        with safe_open(path, framework="numpy") as f:
            metadata = f.metadata() or {}
            names = f.keys()           # safe_open is not iterable itself
            tensors = {k: f.get_tensor(k) for k in names}
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise ValueError(f"{path!r} is not a valid safetensors checkpoint: {e}") from e
    if _SKELETON in metadata:
        try:
            skeleton = json.loads(metadata[_SKELETON])
        except json.JSONDecodeError as e:
            raise ValueError(f"{path!r} has a corrupt lucid skeleton: {e}") from e
        return _rebuild(skeleton, tensors, device)
    order = json.loads(metadata[_ORDER]) if _ORDER in metadata else []
    names = [k for k in order if k in tensors] + sorted(k for k in tensors if k not in order)
    return {k: _rebuild({"__tensor__": k}, tensors, device) for k in names}
