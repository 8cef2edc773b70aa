"""What a distributed launcher told this process: how many ranks it started and which one this
is, read from the environment variables the launchers set. Both backends ask here before
joining a group: the NumPy backend to refuse a multi-rank launch, MLX to join it strictly."""

from __future__ import annotations

import json
import os

# ``mlx.launch`` ring and JACCL write a JSON list with one entry per rank to a file named by
# MLX_HOSTFILE / MLX_IBV_DEVICES and set MLX_RANK; its NCCL launch sets MLX_WORLD_SIZE; mpirun
# sets OMPI_COMM_WORLD_SIZE / _RANK (Open MPI) or PMI_SIZE / PMI_RANK (MPICH).
SIZE_VARS = ("MLX_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
FILE_VARS = ("MLX_HOSTFILE", "MLX_IBV_DEVICES")
RANK_VARS = ("MLX_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


def world_size() -> int:
    """How many ranks the launcher started (1 when there is no launcher)."""
    sizes = [1]
    for var in SIZE_VARS:
        value = os.environ.get(var, "")
        if value.strip().isdigit():
            sizes.append(int(value))
    for var in FILE_VARS:
        path = os.environ.get(var, "")
        try:
            with open(path) as f:
                ranks = json.load(f)
        except (OSError, ValueError):
            continue                       # unset, missing or empty (a single-rank launch)
        if isinstance(ranks, list):
            sizes.append(len(ranks))
    if rank() > 0:
        sizes.append(2)                    # rank 1 or above: there are at least two
    return max(sizes)


def rank() -> int:
    """This process's rank as the launcher gave it (0 without a launcher)."""
    for var in RANK_VARS:
        value = os.environ.get(var, "").strip()
        if value.isdigit():
            return int(value)
    return 0


def described() -> str:
    """The launcher variables set in this process, for error messages."""
    found = [f"{v}={os.environ[v]}" for v in RANK_VARS + SIZE_VARS + FILE_VARS
             if os.environ.get(v, "").strip()]
    return ", ".join(found) if found else "no launcher variables"
