"""Retrieval models: MTMI and the baselines it is measured against."""

from mtmi_tfrs.models.baselines import TOWERS
from mtmi_tfrs.models.baselines import CapsuleExtractor
from mtmi_tfrs.models.baselines import RoutedRetrieval
from mtmi_tfrs.models.baselines import SelfAttentiveExtractor
from mtmi_tfrs.models.baselines import build_model
from mtmi_tfrs.models.multi_tower import HISTORY_ENCODERS
from mtmi_tfrs.models.multi_tower import MultiTowerModel

__all__ = [
  "HISTORY_ENCODERS",
  "TOWERS",
  "CapsuleExtractor",
  "MultiTowerModel",
  "RoutedRetrieval",
  "SelfAttentiveExtractor",
  "build_model",
]
