"""Datasets: what trainers train on (plugin kind ``data``)."""

from corenas.data.base import DataInfo, Dataset, DataSplit

__all__ = ["DataInfo", "DataSplit", "Dataset"]
