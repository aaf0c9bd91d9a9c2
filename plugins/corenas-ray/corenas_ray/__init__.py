"""corenas-ray: executor ``ray``, which runs corenas trials on a Ray cluster."""

__version__ = "0.1.0"
