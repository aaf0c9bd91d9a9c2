"""A Python trainer for `trainer=command` (docs/bring-your-own-trainer.md).

    corenas search space=tabular_mlp trainer=command \
        trainer.command="python examples/byo/train.py --epochs 3" ...

corenas appends `--arch PATH`: a JSON file mapping each decision of the search space to its
value for this trial. The made-up "training" below stands in for yours; keep the
`corenas.report` calls. Run on its own (`--arch` of a JSON file), it prints the reports.
"""

import argparse
import json

import corenas

parser = argparse.ArgumentParser()
parser.add_argument("--arch", required=True, help="the architecture's JSON file")
parser.add_argument("--epochs", type=int, default=3)
args = parser.parse_args()
with open(args.arch) as handle:
    arch = json.load(handle)  # space=tabular_mlp: {"layers": 2, "layers.0.width": 64, ...}

width = sum(arch[f"layers.{i}.width"] for i in range(arch["layers"]))
for epoch in range(1, args.epochs + 1):
    accuracy = 1 - 1 / (2 + epoch * width / 64)  # your training and evaluation here
    corenas.report(step=epoch, accuracy=accuracy, loss=1 - accuracy)
