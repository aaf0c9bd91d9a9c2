"""Which GPUs this machine has, and machine-wide leases on them shared by every corenas job.

A lease is an exclusive ``fcntl.flock`` on a lock file per GPU (``HOST-gpu-ID.lock``) in
``lock_dir()``: ``$CORENAS_GPU_LOCK_DIR``, else ``~/.cache/corenas/gpu-locks``. The kernel
drops the lock when the last process holding it exits, however it exits (``kill -9``
included), so a dead job never keeps a GPU. Two jobs that share a lock directory never hold
the same GPU at once; jobs of several users share GPUs only when they share a directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from corenas.errors import ConfigError

LOCK_DIR_ENV = "CORENAS_GPU_LOCK_DIR"
"""Environment variable naming the directory of the GPU lock files."""

FAKE_GPUS_ENV = "CORENAS_FAKE_GPUS"
"""Testing only: pretend this machine has that many GPUs (ids 0..N-1) without asking CUDA."""

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def lock_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The directory of the GPU lock files (not created here)."""
    configured = env.get(LOCK_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "corenas" / "gpu-locks"


def _from_cuda_visible(value: str) -> list[str]:
    """The entries of a CUDA_VISIBLE_DEVICES value, as CUDA reads it: up to the first invalid
    one (``-1`` hides every GPU)."""
    ids: list[str] = []
    for part in value.split(","):
        entry = part.strip()
        if not entry or entry.startswith("-"):
            break
        ids.append(entry)
    return ids


def _count_nvidia_smi() -> int | None:
    """How many GPUs ``nvidia-smi -L`` lists (MIG instances not counted), None without it."""
    program = shutil.which("nvidia-smi")
    if program is None:
        return None
    try:
        listing = subprocess.run(
            [program, "-L"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def visible_gpus(env: Mapping[str, str] = os.environ, ask_torch: bool = True) -> list[str]:
    """The ids of the GPUs this process may use, in CUDA's numbering: ``$CORENAS_FAKE_GPUS``
    (testing), else the entries of ``$CUDA_VISIBLE_DEVICES`` when it is set, else
    ``nvidia-smi -L``, else (with ``ask_torch``) ``torch.cuda.device_count()``, which imports
    torch but does not create a CUDA context. Position ``i`` of the list is ``cuda:i`` here."""
    fake = env.get(FAKE_GPUS_ENV)
    if fake is not None:
        if not fake.strip().isdigit():
            raise ConfigError(f"{FAKE_GPUS_ENV} must be a whole number of fake GPUs, got {fake!r}")
        return [str(i) for i in range(int(fake))]
    if "CUDA_VISIBLE_DEVICES" in env:
        return _from_cuda_visible(env["CUDA_VISIBLE_DEVICES"])
    count = _count_nvidia_smi()
    if count is None and ask_torch:
        try:
            import torch
        except ImportError:
            count = 0
        else:
            count = int(torch.cuda.device_count())
    return [str(i) for i in range(count or 0)]


@dataclass
class Lease:
    """This process's exclusive hold on one GPU; ``fd`` keeps the lock (children that
    inherit it hold the lease too, until the last copy is closed)."""

    gpu: str
    fd: int


def _lock_path(directory: Path, gpu: str) -> Path:
    return directory / f"{_SAFE.sub('_', socket.gethostname())}-gpu-{_SAFE.sub('_', gpu)}.lock"


def try_lease(gpu: str, directory: Path, owner: str) -> Lease | None:
    """Take the machine-wide lease on ``gpu`` without waiting; None when another holder
    (another job, or another lease of this process) has it. ``owner`` is written into the
    lock file for ``lease_holder``. Raises ``ConfigError`` when the lock file cannot be
    created."""
    import fcntl

    path = _lock_path(directory, gpu)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise ConfigError(
            f"cannot use the GPU lock file {path}: {exc.strerror or exc}; set "
            f"{LOCK_DIR_ENV} to a directory this user can write"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    with contextlib.suppress(OSError):  # the owner note is for messages only
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{owner}\n".encode(), 0)
    return Lease(gpu, fd)


def release(lease: Lease) -> None:
    """Give the lease back (for this process; a child that inherited it holds it until it
    exits)."""
    with contextlib.suppress(OSError):
        os.close(lease.fd)


def lease_holder(gpu: str, directory: Path) -> str:
    """Who holds (or last held) ``gpu``, as its holder described itself; "" if unknown."""
    try:
        return _lock_path(directory, gpu).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def describe_owner(job_dir: str) -> str:
    """The owner note of leases taken by this process for the job in ``job_dir``."""
    return f"pid {os.getpid()} on {socket.gethostname()}, job {job_dir}"


def warn(message: str) -> None:
    """One status line on stderr, as the command line writes them."""
    print(f"corenas: {message}", file=sys.stderr, flush=True)
