"""Tabular NAS benchmarks: search spaces whose every architecture has a measured result, and
trainers that look results up instead of training (see docs/nb201.md)."""
