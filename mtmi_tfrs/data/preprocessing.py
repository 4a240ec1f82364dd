"""From an interaction log to time-ordered per-user sequences and the ComiRec split."""

import dataclasses
import json
import os
import shutil
import tempfile
from typing import Dict
from typing import Optional
from typing import Tuple

import numpy as np
import pandas as pd
from absl import logging

from mtmi_tfrs.data.loaders import DataError
from mtmi_tfrs.data.loaders import InteractionLog
from mtmi_tfrs.data.vocabulary import NUM_RESERVED
from mtmi_tfrs.data.vocabulary import Vocabulary

SPLITS = ("train", "valid", "test")


@dataclasses.dataclass
class SequenceData:
  """Per-user, time-ordered item sequences with vocabularies and a user split.

  User row `u` (its user-vocabulary index is `u + 2`) has the events
  `items[offsets[u]:offsets[u + 1]]`, oldest first. Item values are
  item-vocabulary indices (>= 2).

  Attributes:
    item_vocab: Item id vocabulary (0 = padding, 1 = OOV).
    user_vocab: User id vocabulary.
    items: `[num_interactions]` int32 item indices grouped by user.
    timestamps: `[num_interactions]` int64 timestamps aligned with `items`.
    offsets: `[num_users + 1]` int64 start of each user's events.
    splits: `{"train", "valid", "test"}` -> int64 user rows.
    feature_vocab: Item feature vocabulary, when item features were given.
    feature_table: `[item_vocab.size, max_features]` int32 feature indices
      per item (0 = padding), when item features were given.
    report: Counts of what preprocessing removed or ignored.
  """

  item_vocab: Vocabulary
  user_vocab: Vocabulary
  items: np.ndarray
  timestamps: np.ndarray
  offsets: np.ndarray
  splits: Dict[str, np.ndarray]
  feature_vocab: Optional[Vocabulary] = None
  feature_table: Optional[np.ndarray] = None
  report: Dict[str, int] = dataclasses.field(default_factory=dict)

  @property
  def num_items(self) -> int:
    """Rows of an item embedding table covering every index."""
    return self.item_vocab.size

  @property
  def num_users(self) -> int:
    return len(self.offsets) - 1

  @property
  def lengths(self) -> np.ndarray:
    return np.diff(self.offsets)

  def statistics(self) -> Dict[str, float]:
    """Users, items, interactions, mean sequence length and split sizes."""
    return {
      "users": self.num_users,
      "items": self.num_items - NUM_RESERVED,
      "interactions": int(len(self.items)),
      "mean_sequence_length": float(self.lengths.mean()),
      **{f"{name}_users": int(len(rows)) for name, rows in self.splits.items()},
    }

  def save(self, directory: str) -> None:
    """Writes the data and vocabularies to `directory`, replacing it atomically."""
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".sequence-data-", dir=parent)
    arrays = {
      "items": self.items,
      "timestamps": self.timestamps,
      "offsets": self.offsets,
      **{f"split_{k}": v for k, v in self.splits.items()},
    }
    if self.feature_table is not None:
      arrays["feature_table"] = self.feature_table
    np.savez(os.path.join(staging, "sequences.npz"), **arrays)
    self.item_vocab.save(os.path.join(staging, "item_vocab.json"))
    self.user_vocab.save(os.path.join(staging, "user_vocab.json"))
    if self.feature_vocab is not None:
      self.feature_vocab.save(os.path.join(staging, "feature_vocab.json"))
    with open(os.path.join(staging, "report.json"), "w", encoding="utf-8") as handle:
      json.dump(self.report, handle, indent=2)
    if os.path.exists(directory):
      shutil.rmtree(directory)
    os.replace(staging, directory)

  @classmethod
  def load(cls, directory: str) -> "SequenceData":
    arrays = np.load(os.path.join(directory, "sequences.npz"))
    feature_path = os.path.join(directory, "feature_vocab.json")
    with open(os.path.join(directory, "report.json"), encoding="utf-8") as handle:
      report = json.load(handle)
    return cls(
      item_vocab=Vocabulary.load(os.path.join(directory, "item_vocab.json")),
      user_vocab=Vocabulary.load(os.path.join(directory, "user_vocab.json")),
      items=arrays["items"],
      timestamps=arrays["timestamps"],
      offsets=arrays["offsets"],
      splits={name: arrays[f"split_{name}"] for name in SPLITS},
      feature_vocab=Vocabulary.load(feature_path) if os.path.exists(feature_path) else None,
      feature_table=arrays["feature_table"] if "feature_table" in arrays else None,
      report=report,
    )


def k_core(interactions: pd.DataFrame, min_count: int = 5) -> Tuple[pd.DataFrame, int]:
  """Keeps users and items with at least `min_count` events, iterated until stable.

  Args:
    interactions: Table with `user_id` and `item_id`.
    min_count: The k of the k-core.

  Returns:
    The filtered table (original order) and the number of iterations.
  """
  frame = interactions
  iterations = 0
  while True:
    iterations += 1
    user_counts = frame["user_id"].map(frame["user_id"].value_counts())
    item_counts = frame["item_id"].map(frame["item_id"].value_counts())
    keep = (user_counts >= min_count) & (item_counts >= min_count)
    if keep.all():
      return frame, iterations
    frame = frame[keep.to_numpy()]


def split_users(
  num_users: int, seed: int, fractions: Tuple[float, float, float] = (0.8, 0.1, 0.1)
) -> Dict[str, np.ndarray]:
  """Seeded random user split (ComiRec's 8:1:1 by default).

  Returns:
    `{"train", "valid", "test"}` -> sorted user rows; valid and test get
    `round(fraction * num_users)` users each, train the rest.
  """
  if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
    raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}.")
  permutation = np.random.default_rng(seed).permutation(num_users)
  num_valid = int(round(fractions[1] * num_users))
  num_test = int(round(fractions[2] * num_users))
  num_train = num_users - num_valid - num_test
  return {
    "train": np.sort(permutation[:num_train]),
    "valid": np.sort(permutation[num_train : num_train + num_valid]),
    "test": np.sort(permutation[num_train + num_valid :]),
  }


def _feature_table(
  item_features: pd.DataFrame, item_vocab: Vocabulary, report: Dict[str, int]
) -> Tuple[Vocabulary, np.ndarray]:
  item_index = item_vocab.lookup(item_features["item_id"].to_numpy())
  known = item_index >= NUM_RESERVED
  report["feature_rows_for_unknown_items"] = int((~known).sum())
  if report["feature_rows_for_unknown_items"]:
    logging.warning(
      "%d item feature rows name items that are not in the interactions "
      "(after filtering); they are ignored.",
      report["feature_rows_for_unknown_items"],
    )
  pairs = pd.DataFrame(
    {"item": item_index[known], "features": item_features["features"].to_numpy()[known]}
  )
  pairs = pairs.explode("features").dropna().drop_duplicates()
  feature_vocab = Vocabulary.from_ids(pairs["features"].astype(str).to_numpy())
  if pairs.empty:
    return feature_vocab, np.zeros([item_vocab.size, 1], np.int32)
  pairs["feature"] = feature_vocab.lookup(pairs["features"].to_numpy())
  pairs["slot"] = pairs.groupby("item").cumcount()
  table = np.zeros([item_vocab.size, int(pairs["slot"].max()) + 1], np.int32)
  table[pairs["item"].to_numpy(), pairs["slot"].to_numpy()] = pairs["feature"].to_numpy()
  report["items_without_features"] = int(item_vocab.size - NUM_RESERVED - pairs["item"].nunique())
  return feature_vocab, table


def prepare(
  log: InteractionLog,
  min_count: int = 5,
  seed: int = 0,
  fractions: Tuple[float, float, float] = (0.8, 0.1, 0.1),
) -> SequenceData:
  """k-core filtering, per-user time ordering, vocabularies and the user split.

  Events of a user are ordered by timestamp; ties keep their order in the log
  (a stable sort), so the result is deterministic.

  Args:
    log: The loaded interactions (and optional item features).
    min_count: k of the k-core filter (1 disables it).
    seed: Seed of the user split.
    fractions: Train / validation / test fractions of the users.

  Returns:
    The `SequenceData`.

  Raises:
    DataError: if nothing is left after filtering.
  """
  interactions = log.interactions
  if interactions.empty:
    raise DataError(f"{log.source or 'interaction log'}: no interactions.")
  filtered, iterations = k_core(interactions, min_count)
  report = dict(log.report)
  report.update(
    {
      "interactions_loaded": int(len(interactions)),
      "interactions_removed_by_k_core": int(len(interactions) - len(filtered)),
      "users_removed_by_k_core": int(
        interactions["user_id"].nunique() - filtered["user_id"].nunique()
      ),
      "items_removed_by_k_core": int(
        interactions["item_id"].nunique() - filtered["item_id"].nunique()
      ),
      "k_core_iterations": iterations,
    }
  )
  if filtered.empty:
    raise DataError(
      f"{log.source or 'interaction log'}: nothing left after {min_count}-core filtering "
      f"of {len(interactions)} interactions ({interactions['user_id'].nunique()} users, "
      f"{interactions['item_id'].nunique()} items); lower min_count."
    )
  user_vocab = Vocabulary.from_ids(filtered["user_id"].to_numpy())
  item_vocab = Vocabulary.from_ids(filtered["item_id"].to_numpy())
  user_rows = user_vocab.lookup(filtered["user_id"].to_numpy()) - NUM_RESERVED
  timestamps = filtered["timestamp"].to_numpy()
  order = np.lexsort((np.arange(len(filtered)), timestamps, user_rows))
  offsets = np.concatenate(
    [[0], np.cumsum(np.bincount(user_rows, minlength=len(user_vocab.tokens)))]
  )
  data = SequenceData(
    item_vocab=item_vocab,
    user_vocab=user_vocab,
    items=item_vocab.lookup(filtered["item_id"].to_numpy()[order]).astype(np.int32),
    timestamps=timestamps[order].astype(np.int64),
    offsets=offsets.astype(np.int64),
    splits=split_users(len(user_vocab.tokens), seed, fractions),
    report=report,
  )
  if log.item_features is not None:
    data.feature_vocab, data.feature_table = _feature_table(log.item_features, item_vocab, report)
  return data
