"""Regenerate the tabular datasets shipped in corenas/data/ from scikit-learn's bundled copies.

    python scripts/make_datasets.py [--out corenas/data]

Writes ``breast_cancer.npz``, ``wine.npz`` and ``diabetes.npz``: compressed, pickle-free
arrays ``x`` (float32 features, rows in scikit-learn's order), ``y`` (int64 class indices, or
float32 regression targets), ``feature_names``, ``target_names`` (class names; the target's
name for regression) and ``source`` (the scikit-learn call and version they came from).
Diabetes is stored unscaled (``load_diabetes(scaled=False)``): corenas standardises features
with training-split statistics itself. Provenance and licences: docs/data.md. Needs
scikit-learn (not a corenas dependency); the shipped files came from scikit-learn 1.9.1.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tables() -> dict[str, tuple[str, Callable[[], Any], bool]]:
    """name -> (call text, loader, classification)."""
    from sklearn import datasets

    return {
        "breast_cancer": ("load_breast_cancer()", datasets.load_breast_cancer, True),
        "wine": ("load_wine()", datasets.load_wine, True),
        "diabetes": (
            "load_diabetes(scaled=False)",
            lambda: datasets.load_diabetes(scaled=False),
            False,
        ),
    }


def arrays(call: str, bunch: Any, classification: bool, version: str) -> dict[str, np.ndarray]:
    """The arrays one shipped file holds."""
    x = np.asarray(bunch.data, dtype=np.float32)
    if classification:
        y = np.asarray(bunch.target, dtype=np.int64)
        target_names = [str(name) for name in bunch.target_names]
    else:
        y = np.asarray(bunch.target, dtype=np.float32)
        target_names = ["disease_progression"]
    return {
        "x": x,
        "y": y,
        "feature_names": np.asarray([str(n) for n in bunch.feature_names], dtype=np.str_),
        "target_names": np.asarray(target_names, dtype=np.str_),
        "source": np.asarray(f"sklearn.datasets.{call}, scikit-learn {version}", dtype=np.str_),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(REPO, "corenas", "data"))
    args = parser.parse_args(argv)
    import sklearn

    for name, (call, load, classification) in tables().items():
        path = os.path.join(args.out, f"{name}.npz")
        data = arrays(call, load(), classification, sklearn.__version__)
        np.savez_compressed(path, **data)  # type: ignore[arg-type]
        print(f"{path}: x {data['x'].shape}, y {data['y'].shape} ({os.path.getsize(path):,} B)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
