"""Trainers: train what a space built and return metrics."""

from corenas.trainer.base import Trainer, TrialContext

__all__ = ["Trainer", "TrialContext"]
