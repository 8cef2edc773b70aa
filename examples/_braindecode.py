"""Importing braindecode's models where its torchaudio dependency cannot load (used by
examples/eeg_finetune.py and, as the oracle, by tests/test_models.py).

braindecode imports torchaudio at package import, but its EEGNet, ShallowFBCSPNet and Deep4Net
never call it. Next to the CPU torch wheel pip picks a torchaudio whose C extension fails to
load, so when ``import torchaudio`` fails, torchaudio is replaced by an empty stand-in (any
attribute is a placeholder class) for the import. ``models()`` returns braindecode.models, or
None when braindecode (or torch) is not installed."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any


class _Placeholder(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name == "torchaudio" or name.startswith("torchaudio."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _Placeholder(spec.name)

    def exec_module(self, module):
        pass


_MODELS: Any = None


def _torchaudio_loads() -> bool:
    try:
        importlib.import_module("torchaudio")
        return True
    except (ImportError, OSError):          # its C extension fails to load: OSError
        for name in [n for n in sys.modules if n == "torchaudio" or n.startswith("torchaudio.")]:
            del sys.modules[name]
        return False


def models() -> Any:
    global _MODELS
    if _MODELS is None:
        try:
            importlib.import_module("torch")
        except ImportError:
            return None
        finder = None if _torchaudio_loads() else _StubFinder()
        if finder is not None:
            sys.meta_path.insert(0, finder)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _MODELS = importlib.import_module("braindecode.models")
        except ImportError:
            return None
        finally:
            if finder is not None:
                sys.meta_path.remove(finder)
    return _MODELS
