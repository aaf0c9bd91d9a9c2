"""Controllers: the search algorithms that propose architectures."""

from corenas.controller.base import Controller

__all__ = ["Controller"]
