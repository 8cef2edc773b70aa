"""Loading PyTorch checkpoints into lucid models with the same state-dict keys."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lucid.nn.module import Module
from lucid.serialization import load
from lucid.tensor import Tensor


def _host_array(key: str, value: Any) -> Any:
    """A torch tensor (read without importing torch), a lucid Tensor or an array -> an array or
    Tensor that ``Module.load_state_dict`` takes."""
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu"):          # a torch.Tensor
        if str(value.dtype) == "torch.bfloat16":
            # NumPy cannot take torch's bfloat16; float32 holds it exactly, and
            # load_state_dict casts to the model's dtype
            value = value.float()
        try:
            return value.detach().cpu().numpy()
        except (TypeError, RuntimeError) as e:    # e.g. a complex or quantised dtype
            raise TypeError(f"state dict entry {key!r} ({value.dtype}) cannot be converted: "
                            f"{e}. Convert it to float32 first (t.float())") from e
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    raise TypeError(f"state dict entry {key!r} must be a tensor or an array, got "
                    f"{type(value).__name__}")


def load_torch_state_dict(model: Module, state_dict: Any, strict: bool = True) -> Module:
    """Load a PyTorch state dict into ``model`` (a lucid Module with the same keys, such as
    ``lucid.models.EEGNet`` for a braindecode ``EEGNet``), on the model's backend and dtypes.

    ``state_dict``: a mapping of names to torch tensors (or arrays / lucid Tensors), or the path
    (str or ``os.PathLike``) of a safetensors file (``safetensors.torch.save_file``). With
    ``strict`` missing or unexpected keys are a ValueError naming them; a shape mismatch is
    always one. Everything is checked and converted before anything is written, so a failed
    load leaves the model as it was. Returns ``model``."""
    if not isinstance(model, Module):
        raise TypeError(f"load_torch_state_dict needs a lucid Module, got {type(model).__name__}")
    if isinstance(state_dict, (str, os.PathLike)):
        loaded = load(state_dict)
        if not isinstance(loaded, Mapping):
            raise TypeError(f"{os.fspath(state_dict)!r} does not hold a flat state dict")
        state_dict = loaded
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"state_dict must be a mapping or a safetensors path, got "
                        f"{type(state_dict).__name__}")
    converted = {k: _host_array(k, v) for k, v in state_dict.items()}
    model.load_state_dict(converted, strict=strict)
    return model
