"""Data-parallel training across processes, on the backend's collectives.

On MLX this is ``mlx.core.distributed`` (ring over TCP, MPI, JACCL over Thunderbolt RDMA, NCCL on
CUDA builds); processes are started by MLX's own launcher::

    mlx.launch -n 2 --python "$(which python)" train.py            # 2 ranks on this machine
    mlx.launch --hostfile hosts.json --python "$(which python)" train.py

Every rank runs the same script: ``init()`` once, ``broadcast_parameters(model)`` so all ranks
start from rank 0's weights, then per step its own shard of the batch (``DistributedSampler``),
``loss.backward()``, ``all_reduce_gradients(model)``, ``opt.step()``. Started without a launcher
(or on the NumPy backend), the group has size 1 and every collective is a no-op.

The collectives only call backend array primitives (``all_sum``, reshape, concatenate, slicing),
never a host sync, so they stay lazy and can be part of a compiled step. The reduction order of
``all_sum`` is the same on every rank, so all ranks get bitwise identical results.

Lazy means a collective runs when its result is evaluated, and it waits until every rank runs
the same one. So every rank must evaluate the results of its collectives in the same order:
evaluate them all (``optimizer.step()`` evaluates the parameters; read every tensor you compare)
rather than only the ones a rank-dependent condition picks, or the ranks wait on each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lucid import autograd, backends
from lucid.nn.module import Module
from lucid.tensor import Tensor

BACKENDS = ("any", "ring", "mpi", "nccl", "jaccl")
OPS = ("sum", "mean")
# Gradients are concatenated into buckets of about this size, one all-reduce each: large
# messages use the links well, and a few calls per step cost far less latency than one per
# parameter (MLX's average_gradients uses 32 MiB, PyTorch's DDP 25 MB).
BUCKET_BYTES = 32 * 2**20
_ITEMSIZE = {"bool": 1, "float16": 2, "float32": 4, "float64": 8, "int32": 4, "int64": 8}


class Group:
    """The processes taking part in a collective: ``rank()`` in ``0..size()-1``. Made by
    ``init``; wraps the array backend's own group (MLX's ``mx.distributed.Group``)."""

    __slots__ = ("_be", "_handle", "_rank", "_size")

    def __init__(self, be: Any, handle: Any) -> None:
        self._be, self._handle = be, handle
        self._rank, self._size = int(handle.rank()), int(handle.size())

    def rank(self) -> int:
        return self._rank

    def size(self) -> int:
        return self._size

    @property
    def backend(self) -> str:
        """The lucid array backend whose collectives this group uses."""
        return self._be.name

    def __repr__(self) -> str:
        return f"Group(rank={self._rank}, size={self._size}, backend='{self.backend}')"


_group: Group | None = None


def init(backend: str = "any") -> Group:
    """Join the processes started by the launcher and return the global group.

    ``backend`` picks MLX's transport: "any" (the first that initialises, in MLX's order: NCCL,
    ring, MPI, then JACCL), "ring", "mpi", "nccl" or "jaccl". The group uses the lucid array
    backend active now. Without a launcher the group has size 1. Under a launcher that started
    several ranks (``MLX_RANK``/``MLX_HOSTFILE``, ``MLX_IBV_DEVICES``, ``MLX_WORLD_SIZE``,
    ``OMPI_COMM_WORLD_SIZE``, ``PMI_SIZE``) the group must join that world: a transport that
    cannot (e.g. "nccl" on a Mac) raises RuntimeError naming the backend, this rank and the
    world size, never a group of size 1. Later calls return the same group. Launched as several
    processes on the NumPy backend: RuntimeError (multi-process needs the mlx backend)."""
    global _group
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str, got {type(backend).__name__}")
    key = backend.lower()
    if key not in BACKENDS:
        raise ValueError(f"unknown distributed backend {backend!r}; choose one of "
                         f"{', '.join(BACKENDS)}")
    if _group is None:
        be = backends.current()
        _group = Group(be, be.init_distributed(key))
    return _group


def is_initialized() -> bool:
    """Whether ``init`` has been called in this process."""
    return _group is not None


def get_rank(group: Group | None = None) -> int:
    """This process's rank in the group (0 on a single process)."""
    return _resolve(group).rank()


def get_world_size(group: Group | None = None) -> int:
    """The number of processes in the group (1 on a single process)."""
    return _resolve(group).size()


def all_reduce(tensor: Tensor, op: str = "sum", group: Group | None = None) -> Tensor:
    """Sum (or average, op="mean") ``tensor`` over all ranks, in place like PyTorch: every rank's
    tensor then holds the result, and the same tensor is returned. Not differentiable (the
    gradient path is ``all_reduce_gradients``). Same shape and dtype on every rank; "mean" needs a
    floating dtype."""
    op = _check_op(op)
    if not isinstance(tensor, Tensor):
        raise TypeError(f"all_reduce needs a lucid Tensor, got {type(tensor).__name__}")
    if tensor.dtype.name == "bool" or (op == "mean" and not tensor.dtype.is_floating):
        raise TypeError(f"all_reduce(op={op!r}) needs a "
                        f"{'floating' if op == 'mean' else 'numeric'} tensor, got {tensor.dtype}")
    if tensor.requires_grad and tensor.is_leaf and autograd.is_grad_enabled():
        raise RuntimeError("all_reduce writes into its tensor, which is a leaf that requires "
                           "grad; pass tensor.detach() or call it under lucid.no_grad()")
    g = _resolve(group)
    if g.size() == 1:
        return tensor
    _check_backend(g, [tensor])
    return tensor._set_data(_reduce([tensor], g, op == "mean", BUCKET_BYTES)[0])


def broadcast_parameters(module: Module, src: int = 0, group: Group | None = None) -> None:
    """Give every rank ``src``'s parameters and buffers (written in place: the Parameter objects
    an optimizer holds stay the same). Collectives have no broadcast, so src contributes its
    values and the other ranks zeros to a bucketed sum, which is exact."""
    if not isinstance(module, Module):
        raise TypeError(f"broadcast_parameters needs a Module, got {type(module).__name__}")
    g = _resolve(group)
    if not isinstance(src, int) or isinstance(src, bool):
        raise TypeError(f"src must be an int rank, got {src!r}")
    if not 0 <= src < g.size():
        raise ValueError(f"src={src} is not a rank of this group of size {g.size()} "
                         f"(ranks 0..{g.size() - 1})")
    if g.size() == 1:
        return
    tensors = _unique(list(module.parameters()) + list(module.buffers()))
    _check_backend(g, tensors)
    be = g._be
    for bucket in _buckets(tensors, BUCKET_BYTES):
        if g.rank() == src:
            flat = _flatten([tensors[i].data for i in bucket], be)
        else:
            total = sum(_numel(tensors[i].shape) for i in bucket)
            flat = be.full((total,), 0, be.dtype_name(tensors[bucket[0]].data))
        parts = _split(be.all_sum(flat, g._handle), [tensors[i].shape for i in bucket], be)
        for i, part in zip(bucket, parts):
            tensors[i]._set_data(part)


def all_reduce_gradients(module_or_params: Module | Iterable[Tensor], op: str = "mean",
                         group: Group | None = None, *, bucket_bytes: int = BUCKET_BYTES) -> None:
    """Average (op="mean") or sum every ``.grad`` over all ranks, in place, with one all-reduce
    per bucket of about ``bucket_bytes``: the gradients of one dtype are flattened and
    concatenated, reduced together, and split back into their shapes.

    Parameters whose ``.grad`` is None are skipped, so every rank must have gradients for the
    same parameters (as with PyTorch's DDP without ``find_unused_parameters``)."""
    op = _check_op(op)
    params: list[Tensor]
    if isinstance(module_or_params, Module):
        params = list(module_or_params.parameters())
    elif isinstance(module_or_params, Tensor):
        params = [module_or_params]
    elif isinstance(module_or_params, Iterable):
        params = list(module_or_params)
    else:
        raise TypeError(f"all_reduce_gradients needs a Module or an iterable of Tensors, got "
                        f"{type(module_or_params).__name__}")
    bad = [type(p).__name__ for p in params if not isinstance(p, Tensor)]
    if bad:
        raise TypeError(f"all_reduce_gradients needs Tensors, got {', '.join(bad)}")
    if not isinstance(bucket_bytes, int) or isinstance(bucket_bytes, bool) or bucket_bytes <= 0:
        raise ValueError(f"bucket_bytes must be a positive int, got {bucket_bytes!r}")
    g = _resolve(group)
    if g.size() == 1:
        return
    grads = _unique([p.grad for p in _unique(params) if p.grad is not None])
    _check_backend(g, grads)
    for t, reduced in zip(grads, _reduce(grads, g, op == "mean", bucket_bytes)):
        t._set_data(reduced)


# -- helpers ----------------------------------------------------------------------------------
def _resolve(group: Group | None) -> Group:
    if group is None:
        if _group is None:
            raise RuntimeError("lucid.distributed is not initialized: call "
                               "lucid.distributed.init() first (it returns a group of size 1 "
                               "when the script was not started by a launcher)")
        return _group
    if not isinstance(group, Group):
        raise TypeError(f"group must be a lucid.distributed.Group, got {type(group).__name__}")
    return group


def _check_op(op: Any) -> str:
    if op not in OPS:
        raise ValueError(f"unknown reduction op {op!r}; choose one of {', '.join(OPS)}")
    return op


def _check_backend(g: Group, tensors: list[Tensor]) -> None:
    for t in tensors:
        if t._be is not g._be:
            raise RuntimeError(f"a collective of the group on the {g.backend!r} backend got a "
                               f"tensor on the {t.backend!r} backend; move it with .to("
                               f"{g.backend!r})")


def _unique(tensors: list) -> list:
    seen: set[int] = set()
    out = []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _buckets(tensors: list[Tensor], bucket_bytes: int) -> list[list[int]]:
    """Indices of tensors, grouped by dtype (in first-seen order), each dtype's run cut into
    buckets that close once they hold at least bucket_bytes."""
    by_dtype: dict[str, list[list[int]]] = {}
    size: dict[str, int] = {}
    for i, t in enumerate(tensors):
        name = t._be.dtype_name(t.data)
        runs = by_dtype.setdefault(name, [[]])
        if size.get(name, 0) >= bucket_bytes:
            runs.append([])
            size[name] = 0
        runs[-1].append(i)
        size[name] = size.get(name, 0) + _numel(t.shape) * _ITEMSIZE[name]
    return [b for runs in by_dtype.values() for b in runs]


def _flatten(arrays: list, be: Any) -> Any:
    flat = [be.reshape(a, (-1,)) for a in arrays]
    return flat[0] if len(flat) == 1 else be.concatenate(flat, 0)


def _split(flat: Any, shapes: list[tuple[int, ...]], be: Any) -> list:
    if len(shapes) == 1:
        return [be.reshape(flat, shapes[0])]
    out, start = [], 0
    for shape in shapes:
        n = _numel(shape)
        out.append(be.reshape(be.getitem(flat, slice(start, start + n)), shape))
        start += n
    return out


def _reduce(tensors: list[Tensor], g: Group, mean: bool, bucket_bytes: int) -> list:
    """The tensors' arrays all-summed (or averaged) over the group, one all_sum per bucket."""
    be = g._be
    out: list = [None] * len(tensors)
    for bucket in _buckets(tensors, bucket_bytes):
        flat = be.all_sum(_flatten([tensors[i].data for i in bucket], be), g._handle)
        if mean:
            flat = be.divide(flat, be.full((), float(g.size()), be.dtype_name(flat)))
        for i, part in zip(bucket, _split(flat, [tensors[i].shape for i in bucket], be)):
            out[i] = part
    return out
