"""Layers: the repel regulariser and the multi-interest top-k indexes."""

from mtmi_tfrs.layers.multi_interest_top_k import MultiInterestBruteForce
from mtmi_tfrs.layers.multi_interest_top_k import MultiInterestScaNN
from mtmi_tfrs.layers.multi_interest_top_k import MultiInterestTopK
from mtmi_tfrs.layers.multi_interest_top_k import merge_interest_lists
from mtmi_tfrs.layers.repel import UserRepel

__all__ = [
  "MultiInterestBruteForce",
  "MultiInterestScaNN",
  "MultiInterestTopK",
  "UserRepel",
  "merge_interest_lists",
]
