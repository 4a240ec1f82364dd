"""Layers: the repel regulariser and the multi-interest top-k indexes."""

from mtmi_tfrs.layers.repel import UserRepel

__all__ = ["UserRepel"]
