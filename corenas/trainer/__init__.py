"""Trainers: train what a space built and return metrics."""

from corenas.trainer.base import Trainer, TrialContext, TrialStopped

__all__ = ["Trainer", "TrialContext", "TrialStopped"]
