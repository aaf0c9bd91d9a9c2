"""Helpers for scripts run by the ``command`` trainer (docs/bring-your-own-trainer.md).

Only the standard library is imported here: ``import corenas`` stays cheap in a training
script, and this file can be copied next to a script whose environment lacks corenas.
"""

from __future__ import annotations

import json
import math
import operator
import os
import sys
from typing import Any

METRICS_FILE_VAR = "CORENAS_METRICS_FILE"
ARCH_FILE_VAR = "CORENAS_ARCH_FILE"


def report(step: int | None = None, **metrics: float) -> None:
    """Append ``{"step": step, **metrics}`` as one JSON line to ``$CORENAS_METRICS_FILE``.

    With ``step`` the line is an intermediate report (early stopping judges it); without, it
    only counts towards the final metrics (the last value of each metric over all lines).
    Values must be finite numbers (numpy and 0-d torch scalars are converted); a bad one
    raises ``TypeError``/``ValueError`` here, in the script. Outside a corenas trial (the
    variable unset) the line is printed to stderr instead, so the script runs on its own.
    """
    if not metrics:
        raise ValueError("report() needs at least one metric, e.g. report(step=1, accuracy=0.9)")
    line: dict[str, Any] = {}
    if step is not None:
        line["step"] = operator.index(step)
    for name, value in metrics.items():
        line[name] = _number(name, value)
    text = json.dumps(line, allow_nan=False) + "\n"
    path = os.environ.get(METRICS_FILE_VAR)
    if not path:
        sys.stderr.write(f"corenas.report (not in a corenas trial): {text}")
        return
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def architecture() -> Any:
    """The trial's architecture: the decision -> value map in ``$CORENAS_ARCH_FILE``.

    Raises ``RuntimeError`` outside a corenas trial (the variable unset).
    """
    path = os.environ.get(ARCH_FILE_VAR)
    if not path:
        raise RuntimeError(
            f"${ARCH_FILE_VAR} is not set: corenas.architecture() works only in a script run "
            "by the command trainer (trainer=command)"
        )
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _number(name: str, value: Any) -> float:
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"metric '{name}' must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"metric '{name}' must be a number, got {value!r}") from exc
    if not math.isfinite(number):
        raise ValueError(f"metric '{name}' must be finite, got {number}")
    return number
