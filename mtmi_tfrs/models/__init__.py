"""Retrieval models."""

from mtmi_tfrs.models.multi_tower import MultiTowerModel

__all__ = ["MultiTowerModel"]
