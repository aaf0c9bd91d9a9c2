"""``corenas estimate``: the managed service's cost arithmetic."""

from __future__ import annotations

import argparse
import json

from corenas.estimate import estimate_cost, format_estimate


def run(args: argparse.Namespace) -> int:
    estimate = estimate_cost(
        trials=args.trials,
        hours_per_trial=args.hours_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        parallel=args.parallel,
        price_per_gpu_hour=args.price_per_gpu_hour,
        stage2_models=args.stage2_models,
        stage2_hours=args.stage2_hours,
        stage2_gpus=args.stage2_gpus,
    )
    if args.format == "json":
        print(json.dumps(estimate.to_json(), indent=2))
    else:
        print(format_estimate(estimate))
    return 0
