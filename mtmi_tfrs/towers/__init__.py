"""User and item towers."""

from mtmi_tfrs.towers.attention_pool import AttentionPoolTower
from mtmi_tfrs.towers.fused import FusedAttentionPoolTowers
from mtmi_tfrs.towers.fused import FusedGRUTowers
from mtmi_tfrs.towers.fused import FusedMeanPoolTowers
from mtmi_tfrs.towers.fused import can_fuse
from mtmi_tfrs.towers.fused import fuse
from mtmi_tfrs.towers.gru import GRUTower
from mtmi_tfrs.towers.item import ItemTower
from mtmi_tfrs.towers.mean_pool import MeanPoolTower
from mtmi_tfrs.towers.recent_window import RecentWindow
from mtmi_tfrs.towers.recent_window import geometric_windows
from mtmi_tfrs.towers.self_attention import SelfAttentionTower

__all__ = [
  "AttentionPoolTower",
  "FusedAttentionPoolTowers",
  "FusedGRUTowers",
  "FusedMeanPoolTowers",
  "GRUTower",
  "ItemTower",
  "MeanPoolTower",
  "RecentWindow",
  "SelfAttentionTower",
  "can_fuse",
  "fuse",
  "geometric_windows",
]
