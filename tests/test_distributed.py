"""lucid.distributed: a single process on both backends, argument errors, bucketing (on a
simulated two-rank group), the NumPy backend refusing a multi-process launch, and two real ranks
on localhost over MLX's ring backend training a CNN exactly like one process on the joined
batch."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import lucid
from lucid import backends, nn
from lucid import distributed as dist

ROOT = pathlib.Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
WORKER = TESTS / "_dist_worker.py"
TIMEOUT = 45                     # seconds for both ranks together; they need about 3


@pytest.fixture(autouse=True)
def fresh_group(monkeypatch):
    """Each test starts uninitialised (init() in one test must not leak into the next)."""
    monkeypatch.setattr(dist, "_group", None)


def _model():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


# -- one process --------------------------------------------------------------------------------
def test_single_process_group_and_no_op_collectives(backend):
    assert not dist.is_initialized()
    g = dist.init()
    assert dist.is_initialized() and dist.init() is g
    assert (g.rank(), g.size(), dist.get_rank(), dist.get_world_size()) == (0, 1, 0, 1)
    assert g.backend == backend and "size=1" in repr(g)
    t = lucid.tensor([1.0, -2.0, 3.5])
    before = t.data
    assert dist.all_reduce(t) is t and dist.all_reduce(t, op="mean") is t
    assert t.data is before
    model = _model()
    x = lucid.random.randn(4, 1, 4, 4)
    model(x).sum().backward()
    grads = {n: p.grad.data for n, p in model.named_parameters()}
    weights = {n: p.data for n, p in model.named_parameters()}
    dist.all_reduce_gradients(model)
    dist.broadcast_parameters(model, src=0)
    for n, p in model.named_parameters():
        assert p.grad.data is grads[n] and p.data is weights[n]


def test_collectives_need_init(backend):
    for call in (dist.get_rank, dist.get_world_size, lambda: dist.all_reduce(lucid.ones(2)),
                 lambda: dist.broadcast_parameters(_model()),
                 lambda: dist.all_reduce_gradients(_model())):
        with pytest.raises(RuntimeError, match=r"distributed.init\(\)"):
            call()


def test_argument_errors(backend):
    with pytest.raises(ValueError, match="'gloo'.*any, ring, mpi, nccl, jaccl"):
        dist.init("gloo")
    with pytest.raises(TypeError, match="backend must be a str"):
        dist.init(1)
    assert not dist.is_initialized()                 # a bad call changed nothing
    dist.init()
    t = lucid.ones(3)
    with pytest.raises(ValueError, match="'max'.*sum, mean"):
        dist.all_reduce(t, op="max")
    with pytest.raises(ValueError, match="'avg'"):
        dist.all_reduce_gradients(_model(), op="avg")
    with pytest.raises(TypeError, match="lucid Tensor"):
        dist.all_reduce([1.0, 2.0])
    with pytest.raises(TypeError, match="floating"):
        dist.all_reduce(lucid.tensor([1, 2]), op="mean")
    with pytest.raises(TypeError, match="numeric"):
        dist.all_reduce(lucid.tensor([True]))
    with pytest.raises(RuntimeError, match="leaf that requires grad"):
        dist.all_reduce(lucid.ones(2, requires_grad=True))
    for src in (1, -1):
        with pytest.raises(ValueError, match=f"src={src} is not a rank.*size 1"):
            dist.broadcast_parameters(_model(), src=src)
    with pytest.raises(TypeError, match="src must be an int"):
        dist.broadcast_parameters(_model(), src=0.0)
    with pytest.raises(TypeError, match="needs a Module"):
        dist.broadcast_parameters([lucid.ones(2)])
    with pytest.raises(TypeError, match="Module or an iterable"):
        dist.all_reduce_gradients(3)
    with pytest.raises(TypeError, match="needs Tensors, got str"):
        dist.all_reduce_gradients([lucid.ones(2), "w"])
    with pytest.raises(ValueError, match="bucket_bytes"):
        dist.all_reduce_gradients(_model(), bucket_bytes=0)
    with pytest.raises(TypeError, match="Group"):
        dist.get_rank(group="world")


# -- bucketing, on a simulated group of two identical ranks -------------------------------------
class _Loopback:
    """A group handle of size 2 whose other rank holds the same values, so the backend's
    all_sum (patched by ``loopback``) doubles its input. Records every call's shape and dtype."""

    def __init__(self, be):
        self.be, self.calls = be, []

    def all_sum(self, x, group):
        assert group is self
        self.calls.append((tuple(x.shape), self.be.dtype_name(x)))
        return self.be.multiply(x, self.be.asarray(2, self.be.dtype_name(x)))

    def rank(self):
        return 0

    def size(self):
        return 2


@pytest.fixture
def loopback(backend, monkeypatch):
    """(group, handle): a simulated two-rank group on the active backend."""
    be = backends.current()
    handle = _Loopback(be)
    monkeypatch.setattr(be, "all_sum", handle.all_sum)
    return dist.Group(be, handle), handle


def test_gradients_are_reduced_in_few_buckets_and_split_back(loopback):
    g, handle = loopback
    params = [nn.Parameter(lucid.random.randn(*s)) for s in [(3, 4), (5,), (2, 2, 2), ()]]
    params.append(nn.Parameter(lucid.random.randn(6).astype("float16")))
    params.append(nn.Parameter(lucid.random.randn(2)))                 # no gradient
    for p in params[:5]:
        p.grad = lucid.random.randn(*p.shape).astype(p.dtype)
    expected = [p.grad.numpy() for p in params[:5]]
    dist.all_reduce_gradients(params + params[:2], op="sum", group=g)  # duplicates count once
    # one call per dtype: the float32 gradients (12 + 5 + 8 + 1 values) travel together
    assert handle.calls == [((26,), "float32"), ((6,), "float16")]
    for p, e in zip(params, expected):
        assert p.grad.dtype.name == e.dtype.name and p.grad.shape == e.shape
        np.testing.assert_allclose(p.grad.numpy(), 2 * e, rtol=1e-3)
    assert params[5].grad is None
    handle.calls.clear()
    dist.all_reduce_gradients(params, group=g)                          # mean of two equal ranks
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p.grad.numpy(), 2 * e, rtol=1e-3)


def test_buckets_close_at_the_size_limit(loopback):
    g, handle = loopback
    params = [nn.Parameter(lucid.zeros(n)) for n in (10, 10, 30, 1, 1)]
    for i, p in enumerate(params):
        p.grad = lucid.full((p.shape[0],), float(i))
    dist.all_reduce_gradients(params, group=g, bucket_bytes=80)        # 80 bytes = 20 floats
    assert [c[0] for c in handle.calls] == [(20,), (30,), (2,)]
    for i, p in enumerate(params):
        np.testing.assert_array_equal(p.grad.numpy(), np.full(p.shape, float(i)))


def test_all_reduce_sums_in_place(loopback):
    g, handle = loopback
    t = lucid.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert dist.all_reduce(t, op="sum", group=g) is t
    np.testing.assert_array_equal(t.numpy(), [[2.0, 4.0], [6.0, 8.0]])
    i = lucid.tensor([1, 2, 3], dtype="int32")
    np.testing.assert_array_equal(dist.all_reduce(i, group=g).numpy(), [2, 4, 6])
    assert i.dtype == lucid.int32
    m = dist.all_reduce(lucid.tensor([1.0, 3.0]), op="mean", group=g)
    np.testing.assert_array_equal(m.numpy(), [1.0, 3.0])
    assert handle.calls == [((4,), "float32"), ((3,), "int32"), ((2,), "float32")]


def test_broadcast_sends_src_values_or_zeros(loopback):
    model = _model()
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    g, handle = loopback                       # rank 0 of 2, src 0: own values, doubled here
    dist.broadcast_parameters(model, src=0, group=g)
    # 51 parameters and 4 BatchNorm statistics in float32, the batch counter in int64
    assert handle.calls == [((55,), "float32"), ((1,), "int64")]
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), 2 * state[k])
    handle.calls.clear()
    dist.broadcast_parameters(model, src=1, group=g)   # rank 0 is not src: contributes zeros
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), np.zeros_like(state[k]))


def test_tensor_on_another_backend_is_refused(loopback):
    g, _ = loopback
    other = "numpy" if g.backend == "mlx" else "mlx"
    if other not in backends.available():
        pytest.skip("needs both backends")
    t = lucid.ones(2, device=other)
    with pytest.raises(RuntimeError, match=f"'{g.backend}' backend got a tensor on the '{other}'"):
        dist.all_reduce(t, group=g)


# -- the NumPy backend under a launcher ---------------------------------------------------------
def _write_hostfile(path, ports):
    """MLX's ring hostfile: one list of "ip:port" per rank (mlx.launch -n 1 writes it empty)."""
    path.write_text(json.dumps([[f"127.0.0.1:{p}"] for p in ports]) if len(ports) > 1 else "\n")
    return path


def _launched_env(hostfile, rank, backend):
    """This environment as a launcher would pass it to rank ``rank``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLX_", "OMPI_", "PMI_"))}
    env.update(MLX_RANK=str(rank), MLX_HOSTFILE=str(hostfile), LUCID_BACKEND=backend,
               PYTHONPATH=str(ROOT))
    return env


INIT = ("import lucid\ntry:\n    g = lucid.distributed.init()\n    print('size', g.size())\n"
        "except RuntimeError as e:\n    print('RuntimeError:', e)\n")


@pytest.mark.parametrize("ranks, rank", [(2, 0), (2, 1), (3, 2)])
def test_numpy_backend_refuses_several_processes(tmp_path, ranks, rank):
    hostfile = _write_hostfile(tmp_path / "hosts.json", range(40000, 40000 + ranks))
    out = subprocess.run([sys.executable, "-c", INIT], env=_launched_env(hostfile, rank, "numpy"),
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.startswith("RuntimeError:"), out
    assert f"one of {ranks} ranks" in out and "requires the mlx backend" in out


def test_numpy_backend_runs_a_single_rank_launch(tmp_path):
    hostfile = _write_hostfile(tmp_path / "hosts.json", [40000])
    out = subprocess.run([sys.executable, "-c", INIT], env=_launched_env(hostfile, 0, "numpy"),
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "size 1"


# -- MLX under a launcher: strict --------------------------------------------------------------
STRICT = ("import lucid\ntry:\n    g = lucid.distributed.init({backend!r})\n"
          "    print('size', g.size())\nexcept RuntimeError as e:\n    print('RuntimeError:', e)\n")


@pytest.mark.parametrize("backend", ["nccl", "mpi"])
@pytest.mark.parametrize("ranks, rank", [(2, 1), (3, 0)])
def test_mlx_transport_that_cannot_join_the_launch_is_an_error(mlx_only, tmp_path, backend,
                                                               ranks, rank):
    """A transport the launcher did not set up (NCCL, MPI here) must not give each rank a
    silent group of one: the error names the backend, the rank and the world size."""
    hostfile = _write_hostfile(tmp_path / "hosts.json", range(40000, 40000 + ranks))
    out = subprocess.run([sys.executable, "-c", STRICT.format(backend=backend)],
                         env=_launched_env(hostfile, rank, "mlx"), capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert out.startswith("RuntimeError:"), out
    assert f"{backend!r} distributed backend" in out, out
    assert f"rank {rank} of a world of size {ranks}" in out and "MLX_HOSTFILE=" in out, out


def test_mlx_without_a_launcher_is_a_group_of_one(tmp_path):
    env = _launched_env(_write_hostfile(tmp_path / "h.json", [40000]), 0, "mlx")
    del env["MLX_RANK"], env["MLX_HOSTFILE"]
    if "mlx" not in lucid.backends.available():
        pytest.skip("mlx not installed")
    out = subprocess.run([sys.executable, "-c", STRICT.format(backend="nccl")], env=env,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "size 1"


# -- two real ranks on localhost ----------------------------------------------------------------
def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _run_ranks(tmp_path, n, mode):
    """Start n ranks of the worker with MLX_RANK / MLX_HOSTFILE set as mlx.launch sets them;
    wait until all have exited, one has failed, or TIMEOUT has passed; then kill every child
    still running. Returns [(exit code, output)] per rank (a killed child's code is negative)."""
    hostfile = _write_hostfile(tmp_path / "hosts.json", _free_ports(n))
    logs = [tmp_path / f"rank{rank}.log" for rank in range(n)]
    procs = []
    try:
        for rank, log in enumerate(logs):
            with open(log, "w") as f:
                procs.append(subprocess.Popen([sys.executable, str(WORKER), str(tmp_path), mode],
                                              env=_launched_env(hostfile, rank, "mlx"),
                                              stdout=f, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            codes = [p.poll() for p in procs]
            if None not in codes or any(c not in (None, 0) for c in codes):
                break
            time.sleep(0.05)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    return [(p.returncode, log.read_text()) for p, log in zip(procs, logs)]


def test_a_failing_rank_gets_the_others_killed(mlx_only, tmp_path):
    """Rank 1 raises after its first step. Rank 0, in its next all-reduce, then either fails
    itself (the ring reports the lost peer) or waits; either way the harness must see rank 1's
    failure, kill rank 0 if it still runs, and not wait for the timeout."""
    start = time.monotonic()
    (rc0, out0), (rc1, out1) = _run_ranks(tmp_path, 2, "crash")
    assert rc1 == 1 and "rank 1 fails on purpose" in out1, out1
    assert rc0 != 0 and "rank 0 of 2: step 1" in out0 and "done" not in out0, out0
    assert rc0 < 0 or "connection to a peer was lost" in out0, out0
    assert time.monotonic() - start < TIMEOUT / 2


@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_two_ranks_train_like_one_process_on_the_joined_batch(mlx_only, tmp_path, mode):
    sys.path.insert(0, str(TESTS))
    try:
        import _dist_worker as worker
    finally:
        sys.path.remove(str(TESTS))
    for rank, (rc, out) in enumerate(_run_ranks(tmp_path, 2, mode)):
        assert rc == 0, f"rank {rank} exited with {rc}:\n{out}"
        lines = out.splitlines()
        assert lines[-1] == f"rank {rank} of 2: done", out
        assert len([x for x in lines if x.startswith(f"rank {rank} of 2: step")]) == worker.STEPS
    r0, r1 = (np.load(tmp_path / f"rank{r}.npz") for r in (0, 1))
    # the ranks hold bitwise identical parameters and buffers after the broadcast and every step
    assert sorted(r0.files) == sorted(r1.files)
    for key in r0.files:
        if key != "all_sum_calls":
            np.testing.assert_array_equal(r0[key], r1[key], err_msg=key)
    # the broadcast gave rank 1 rank 0's weights and BatchNorm statistics
    own = {k: v.numpy() for k, v in worker.build_model(worker.SEED + 1).state_dict().items()}
    assert not np.array_equal(own["0.weight"], r1["0/0.weight"])
    assert int(r1["0/1.num_batches_tracked"]) == 7 + worker.SEED
    # one process training on each step's joined batch of 16 takes the same steps
    dist.init()
    reference = worker.train(2 * worker.BATCH, compiled=mode == "compiled")
    for key, ref in reference.items():
        if key != "all_sum_calls":
            np.testing.assert_allclose(r0[key], ref, rtol=1e-5, atol=1e-6, err_msg=key)
    assert not np.allclose(r0["5/0.weight"], r0["0/0.weight"])              # it did train
    if mode == "eager":
        # one all_sum per dtype for the broadcast (float32, int64), then per step one for all
        # gradients and one for the loss; a single process needs none
        np.testing.assert_array_equal(r0["all_sum_calls"], [2] + [2] * worker.STEPS)
        np.testing.assert_array_equal(reference["all_sum_calls"], [0] * (worker.STEPS + 1))
        base = [np.arange(6.0).reshape(3, 2), np.arange(5.0), np.zeros(())]
        for i, b in enumerate(base):
            np.testing.assert_allclose(r0[f"traced/{i}"], 1.5 * b + 1, rtol=1e-3)
        assert r0["traced/2"].dtype == np.float16
        np.testing.assert_array_equal(r0["traced/3"], [3, 6, 9])
