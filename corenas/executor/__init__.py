"""Executors: where and how trials run (in the driver, in worker processes, on a cluster)."""

from corenas.executor.base import Event, Executor, Finished, Report

__all__ = ["Event", "Executor", "Finished", "Report"]
