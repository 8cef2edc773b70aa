"""examples/distributed_train.py: on one process, and on two ranks started by mlx.launch itself,
including a rank whose weights were changed on purpose, which the example must report (mlx.launch
itself exits 0 when a rank fails)."""

from __future__ import annotations

import os
import pathlib
import re
import socket
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "distributed_train.py"
LAUNCH = pathlib.Path(sys.executable).with_name("mlx.launch")
SMOKE = ["--epochs", "1", "--subset", "64"]
PNG = b"\x89PNG\r\n\x1a\n"

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")


def _consecutive_free_ports(n: int) -> int:
    """A port p such that p .. p+n-1 are free now (mlx.launch's ring uses one per rank)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            start = s.getsockname()[1]
        socks = []
        try:
            for p in range(start, start + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return start
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports found")


def _launch(tmp_path, *extra):
    if not LAUNCH.exists():
        pytest.skip("mlx.launch is not installed next to this python")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLX_")}
    env["PYTHONPATH"] = str(ROOT)
    # "--" ends mlx.launch's own flags: without it, it would take the example's --backend
    cmd = [str(LAUNCH), "-n", "2", "--starting-port", str(_consecutive_free_ports(2)),
           "--python", sys.executable, "--",
           str(EXAMPLE), "--backend", "mlx", "--out", str(tmp_path), *SMOKE, *extra]
    res = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=240,
                         stdin=subprocess.DEVNULL)
    return res.returncode, res.stdout + res.stderr


@pytest.mark.parametrize("flags", [[], ["--no-compile"]], ids=["compiled", "eager"])
def test_one_process(backend, flags, tmp_path, capsys, monkeypatch):
    from lucid import distributed
    monkeypatch.setattr(distributed, "_group", None)       # the example's init() stays here
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        import distributed_train
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    result = distributed_train.main(["--backend", backend, "--out", str(tmp_path), *SMOKE,
                                     *flags])
    out = capsys.readouterr().out
    assert result["ranks_agree"] and "all 1 rank(s) hold identical parameters" in out
    assert f"test accuracy: {result['accuracy']:.3f}" in out
    assert os.path.isfile(result["checkpoint"]) and len(result["history"]["loss"]) == 1
    for path in result["figures"]:
        with open(path, "rb") as f:
            assert f.read(8) == PNG, path


def test_two_ranks_under_mlx_launch(mlx_only, tmp_path):
    rc, out = _launch(tmp_path)
    assert rc == 0, out
    assert "all 2 rank(s) hold identical parameters" in out, out
    assert "exited with code" not in out and "Traceback" not in out, out
    # only rank 0 prints and writes
    assert out.count("backend mlx (from --backend)") == 1, out
    assert out.count("2 rank(s), 16 of each batch of 32") == 1, out
    assert out.count("test accuracy:") == 1, out
    assert sorted(os.listdir(tmp_path)) == ["confusion.png", "curves.png", "filters.png",
                                            "model.safetensors"]


def test_a_rank_that_disagrees_is_reported_and_exits_1(mlx_only, tmp_path):
    _, out = _launch(tmp_path, "--perturb-rank", "1")
    assert "FAILED: 1 of 2 ranks hold parameters that differ from rank 0's" in out, out
    assert "rank 1: parameters differ from rank 0's" in out, out
    # mlx.launch's own warning names the first rank to exit (both exit 1; the launcher then
    # stops the other, code -15), and which one is first is a race between the two processes
    assert re.search(r"Node with rank [01] exited with code 1\b", out), out
