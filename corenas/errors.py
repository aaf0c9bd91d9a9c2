"""Errors a user can act on.

Every ``CorenasError`` is printed by the CLI as one line (what is wrong, where, what to do) with a
non-zero exit; tracebacks appear only with ``--debug``.
"""

from __future__ import annotations


class CorenasError(Exception):
    """An error caused by input a user can fix; its message is one self-contained line."""

    exit_code = 2


class ConfigError(CorenasError):
    """The composed configuration is invalid (unknown name, wrong type, missing key)."""


class UnknownNameError(ConfigError):
    """A plugin-kind registry has no entry of the requested name."""

    def __init__(self, kind: str, name: str, available: list[str], hint: str = "") -> None:
        choices = ", ".join(sorted(available)) or "(none registered)"
        extra = f" {hint}" if hint else ""
        super().__init__(f"unknown {kind} '{name}'; available: {choices}{extra}")
        self.kind = kind
        self.name = name
        self.available = available


class InvalidGenomeError(CorenasError):
    """A genome does not belong to its search space (unknown, missing or out-of-range decision)."""


class PluginError(CorenasError):
    """A plugin failed to load, register, or implements a hook that does not exist."""


class StoreError(CorenasError):
    """The trial store cannot be opened, is locked by another driver, or is not a corenas job."""


class TrialError(Exception):
    """A trial failed; the message is stored as the trial's error text and the search goes on."""
