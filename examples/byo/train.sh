#!/usr/bin/env bash
# A shell trainer for `trainer=command` (docs/bring-your-own-trainer.md):
#   corenas search ... trainer=command trainer.command="bash examples/byo/train.sh --epochs 3"
# corenas appends `--arch PATH` (the architecture's JSON file, also in $CORENAS_ARCH_FILE);
# metrics are JSON lines appended to "$CORENAS_METRICS_FILE". Replace the loop with your training.
set -euo pipefail
epochs=3
while [ $# -gt 0 ]; do
  case "$1" in
    --epochs) epochs="$2"; shift 2 ;;
    --arch) arch="$2"; shift 2 ;;
    *) echo "train.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
echo "trial $CORENAS_TRIAL_ID trains $(tr -d ' \n' < "$arch") for $epochs epochs"
for epoch in $(seq 1 "$epochs"); do
  accuracy=$(awk -v e="$epoch" 'BEGIN { print 1 - 0.5 / (e + 1) }')
  echo "{\"step\": $epoch, \"accuracy\": $accuracy}" >> "$CORENAS_METRICS_FILE"
done
