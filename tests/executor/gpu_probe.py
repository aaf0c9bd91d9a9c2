"""A trainer that records how its worker process sees the GPUs (the executor tests' probe).

``trainer=function trainer.target=gpu_probe:probe_trainer`` (with this directory on
PYTHONPATH) appends one JSON line per trial to ``budget.probe_log``: the worker's pid, the
trial id, its CUDA_VISIBLE_DEVICES, the devices the trainer was given and when it ran. It
sleeps ``budget.sleep_s`` so trials overlap; with ``budget.torch`` it also returns what torch
sees (``cuda_devices``, and ``on_gpu`` after a step on ``cuda:devices[0]``).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from corenas.records import Genome, Metrics
from corenas.trainer.base import TrialContext


def probe_trainer(genome: Genome, built: Any, context: TrialContext) -> Metrics:
    """Record this worker's GPU view, sleep, return a constant accuracy."""
    start = time.time()
    time.sleep(float(context.budget.get("sleep_s", 0.0)))
    metrics: Metrics = {"accuracy": 0.5}
    if context.budget.get("torch"):
        import torch

        metrics["cuda_devices"] = float(torch.cuda.device_count())
        if context.devices:
            x = torch.ones(256, 256, device=f"cuda:{context.devices[0]}")
            metrics["on_gpu"] = float((x @ x).is_cuda)
    record = {
        "pid": os.getpid(),
        "trial": context.trial_id,
        "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "devices": list(context.devices),
        "start": start,
        "end": time.time(),
    }
    with open(context.budget["probe_log"], "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")
    return metrics
