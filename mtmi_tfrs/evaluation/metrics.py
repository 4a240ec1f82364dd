"""Recall, NDCG and HitRate at N over merged full-catalogue retrieval."""

from typing import Callable
from typing import Dict
from typing import Mapping
from typing import Optional
from typing import Sequence

import numpy as np
import tensorflow as tf

from mtmi_tfrs.data.vocabulary import NUM_RESERVED
from mtmi_tfrs.layers.multi_interest_top_k import MultiInterestBruteForce
from mtmi_tfrs.layers.multi_interest_top_k import MultiInterestTopK


def retrieval_metrics(retrieved: np.ndarray, targets: np.ndarray, ks: Sequence[int]) -> Dict:
  """Per-user metric sums of ranked lists against target sets.

  For a user with distinct targets T (0 = padding) and ranked list r:
  Recall@N = |r[:N] ∩ T| / |T|; HitRate@N = 1 if r[:N] ∩ T else 0;
  NDCG@N = sum_{i < N, r_i in T} 1 / log2(i + 2), divided by the ideal
  sum_{i < min(|T|, N)} 1 / log2(i + 2).

  Args:
    retrieved: `[users, >= max(ks)]` ranked item indices.
    targets: `[users, max_targets]` distinct target indices, 0-padded.
    ks: Cut-offs N.

  Returns:
    `{"recall@N", "ndcg@N", "hit_rate@N"}` -> sums over the users, and
    `"users"` -> the number of users with at least one target.
  """
  retrieved, targets = np.asarray(retrieved), np.asarray(targets)
  has_targets = (targets > 0).any(axis=1)
  retrieved, targets = retrieved[has_targets], targets[has_targets]
  num_targets = (targets > 0).sum(axis=1)
  hits = ((retrieved[:, :, None] == targets[:, None, :]) & (targets[:, None, :] > 0)).any(-1)
  discounts = 1.0 / np.log2(np.arange(retrieved.shape[1]) + 2.0)
  ideal = np.cumsum(discounts)
  sums = {"users": int(has_targets.sum())}
  for n in ks:
    if n > retrieved.shape[1]:
      raise ValueError(f"ks asks for @{n} but only {retrieved.shape[1]} items were retrieved.")
    top = hits[:, :n]
    sums[f"recall@{n}"] = float((top.sum(1) / num_targets).sum())
    sums[f"hit_rate@{n}"] = float(top.any(1).sum())
    dcg = (top * discounts[:n]).sum(1)
    sums[f"ndcg@{n}"] = float((dcg / ideal[np.minimum(num_targets, n) - 1]).sum())
  return sums


def build_index(
  item_vectors: tf.Tensor, index: Optional[MultiInterestTopK] = None, k: int = 50
) -> MultiInterestTopK:
  """Indexes every real item (indices >= 2; padding and OOV rows are left out).

  Args:
    item_vectors: `[num_items, dim]` vectors of all item indices.
    index: Index layer to fill; defaults to `MultiInterestBruteForce(k)`.
    k: Default k of a new index.

  Returns:
    The index, returning item indices as identifiers.
  """
  index = index if index is not None else MultiInterestBruteForce(k=k)
  num_items = int(item_vectors.shape[0])
  return index.index(item_vectors[NUM_RESERVED:], tf.range(NUM_RESERVED, num_items))


def evaluate(
  user_vectors_fn: Callable[[tf.Tensor], tf.Tensor],
  index: MultiInterestTopK,
  examples: Mapping[str, np.ndarray],
  ks: Sequence[int] = (20, 50),
  batch_size: int = 512,
  exclude_history: bool = False,
) -> Dict[str, float]:
  """Recall/NDCG/HitRate@N of merged retrieval through `index`.

  Args:
    user_vectors_fn: Maps a `[batch, max_len]` history to `[batch, K, dim]`
      or `[batch, dim]` user vectors (a `MultiTowerModel`, a baseline, ...).
    index: Built index over the catalogue, with item indices as identifiers
      (see `build_index`); the same merge as serving.
    examples: `{"history": [users, max_len], "targets": [users, T]}` as from
      `mtmi_tfrs.data.evaluation_arrays`.
    ks: Cut-offs N.
    batch_size: Users per retrieval batch.
    exclude_history: Whether history items are removed from the lists.

  Returns:
    `{"recall@N", "ndcg@N", "hit_rate@N"}` means over users with targets,
    and `"users"`.

  Raises:
    ValueError: on mismatched inputs or no user with targets.
  """
  history, targets = np.asarray(examples["history"]), np.asarray(examples["targets"])
  if len(history) != len(targets):
    raise ValueError(f"history has {len(history)} rows but targets has {len(targets)}.")
  max_k = max(ks)
  totals: Dict[str, float] = {}
  for start in range(0, len(history), batch_size):
    batch = tf.constant(history[start : start + batch_size])
    vectors = user_vectors_fn(batch)
    exclusions = tf.where(batch > 0, batch, -1) if exclude_history else None
    _, retrieved = index(vectors, k=max_k, exclusions=exclusions)
    sums = retrieval_metrics(retrieved.numpy(), targets[start : start + batch_size], ks)
    for name, value in sums.items():
      totals[name] = totals.get(name, 0) + value
  users = totals.pop("users", 0)
  if not users:
    raise ValueError("No evaluation user has a target.")
  return {**{name: value / users for name, value in sorted(totals.items())}, "users": users}


def evaluate_model(
  model: tf.keras.Model,
  examples: Mapping[str, np.ndarray],
  num_items: int,
  ks: Sequence[int] = (20, 50),
  index: Optional[MultiInterestTopK] = None,
  batch_size: int = 512,
  exclude_history: bool = False,
) -> Dict[str, float]:
  """`evaluate` for a model with an `item_tower` that maps indices to vectors.

  Args:
    model: Maps a history to user vectors and has `item_tower`.
    examples: Evaluation arrays.
    num_items: Size of the item vocabulary (rows of the embedding table).
    ks, batch_size, exclude_history: As in `evaluate`.
    index: Index layer to fill; defaults to brute force.

  Returns:
    The metrics dict.
  """
  item_vectors = model.item_tower(tf.range(num_items))
  built = build_index(item_vectors, index, k=max(ks))
  return evaluate(
    lambda h: model(h, training=False), built, examples, ks, batch_size, exclude_history
  )
