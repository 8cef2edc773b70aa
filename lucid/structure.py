"""The structure version: how ``lucid.compile`` knows, without walking anything, that no state's
layout changed since its last call.

A state's *layout* is what a compiled trace depends on besides the values: which parameters,
buffers and submodules a Module holds, its train/eval mode, an Optimizer's param groups, their
hyper-parameters (all but the ones passed as inputs, like ``lr``) and the names of its state
entries, and every tensor's shape and dtype. Each mutation path of those bumps the version of
the object it changes (``Module._version``, ``Optimizer._version``) and this process-wide
counter. ``lucid.compile`` resolves its state once per counter value and reuses the result
while the counter stays put: a call then costs no walk over modules, groups or shapes.

The counter only ever grows; a bump that changed nothing costs one re-resolve, never a wrong
result. Writes that bypass the mutation paths (``t.data = a`` instead of ``t._set_data(a)``,
assigning into ``optimizer.state[p]`` directly) are not seen: go through the public API.

It imports nothing of lucid, so every layer may use it (tensor.py bumps it)."""

from __future__ import annotations

_version = 0


def bump() -> None:
    """Record that some state's layout changed (cheap: one integer add)."""
    global _version
    _version += 1


def version() -> int:
    """The current process-wide structure version."""
    return _version
