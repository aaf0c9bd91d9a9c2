"""Tabular NAS benchmarks: search spaces whose every architecture has a measured result, and
trainers that look results up instead of training. ``nb201`` (with its torch network in
``nb201_model``) ships NAS-Bench-201, ``table`` reads any CSV described by a YAML file, and
``runner`` runs controllers on them for ``corenas benchmark`` (see docs/nb201.md and
docs/benchmarking.md)."""
