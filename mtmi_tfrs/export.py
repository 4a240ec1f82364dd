"""SavedModel export for TF Serving: raw item-id histories in, merged top-k out."""

import json
import os
import re
import shutil
import tempfile
from typing import Optional

import numpy as np
import tensorflow as tf

from mtmi_tfrs.data.vocabulary import NUM_RESERVED
from mtmi_tfrs.data.vocabulary import Vocabulary
from mtmi_tfrs.layers.multi_interest_top_k import MultiInterestBruteForce
from mtmi_tfrs.layers.multi_interest_top_k import MultiInterestScaNN
from mtmi_tfrs.layers.multi_interest_top_k import MultiInterestTopK

INDEXES = ("brute_force", "scann")


class Recommender(tf.Module):
  """Serving module: raw history -> K user vectors -> merged top k.

  Signatures:
    `serving_default(history)` and `serving_k(history, k)`: `history` is
    `[batch, length]` raw item ids (string or int64 like the vocabulary),
    oldest first, padded at the end with any id that is not in the
    vocabulary (`""` or -1). Unknown ids are ignored; the last `max_len`
    known items are used. Outputs `item_ids [batch, k]`, `scores [batch, k]`
    and `interests [batch, k]` (the tower that retrieved each item). A user
    with no known item gets an empty result: ids `""` / -1, scores `-inf`,
    interests -1. Items of the history are not recommended again when
    `exclude_history` was set at export.
  """

  def __init__(
    self,
    model: tf.keras.Model,
    item_vocab: Vocabulary,
    index: MultiInterestTopK,
    max_len: int,
    k: int,
    exclude_history: bool,
  ) -> None:
    super().__init__()
    self.model = model
    self.index = index
    self._max_len = max_len
    self._k = k
    self._exclude_history = exclude_history
    self._dtype = tf.string if item_vocab.dtype == "string" else tf.int64
    self._missing = "" if self._dtype == tf.string else -1
    self.item_table = tf.lookup.StaticHashTable(
      tf.lookup.KeyValueTensorInitializer(
        tf.constant(item_vocab.tokens.tolist(), self._dtype),
        tf.range(NUM_RESERVED, item_vocab.size, dtype=tf.int64),
      ),
      default_value=0,
    )
    spec = tf.TensorSpec([None, None], self._dtype, name="history")
    self.serving_default = tf.function(self._serve, input_signature=[spec])
    self.serving_k = tf.function(
      self._recommend, input_signature=[spec, tf.TensorSpec([], tf.int32, name="k")]
    )

  def _serve(self, history):
    return self._recommend(history, tf.constant(self._k, tf.int32))

  def _recommend(self, history, k):
    tf.debugging.assert_positive(k, message="k must be positive")
    indices = tf.cast(self.item_table.lookup(history), tf.int32)
    known = indices > 0
    # Move the known items to the right end, in order, as the towers were trained.
    length = tf.shape(indices)[1]
    steps = tf.range(length)[tf.newaxis, :]
    order = tf.argsort(tf.where(known, steps + length, steps), axis=1, stable=True)
    aligned = tf.gather(indices, order, batch_dims=1)
    padding = tf.zeros([tf.shape(indices)[0], self._max_len], tf.int32)
    aligned = tf.concat([padding, aligned], axis=1)[:, -self._max_len :]
    vectors = self.model(aligned, training=False)
    exclusions = tf.where(known, history, self._missing) if self._exclude_history else None
    scores, item_ids, interests = self.index(
      vectors, k=k, exclusions=exclusions, return_interests=True
    )
    empty = ~tf.reduce_any(known, axis=1, keepdims=True)
    return {
      "item_ids": tf.where(empty, tf.constant(self._missing, self._dtype), item_ids),
      "scores": tf.where(empty, tf.constant(float("-inf")), scores),
      "interests": tf.where(empty, -1, interests),
    }


def _next_version(export_base: str) -> int:
  versions = [int(n) for n in os.listdir(export_base) if re.fullmatch(r"\d+", n)]
  return max(versions, default=0) + 1


def export_saved_model(
  model: tf.keras.Model,
  item_vocab: Vocabulary,
  export_base: str,
  max_len: int,
  k: int = 100,
  index: str = "brute_force",
  version: Optional[int] = None,
  exclude_history: bool = True,
  index_layer: Optional[MultiInterestTopK] = None,
) -> str:
  """Writes a TF Serving SavedModel to `export_base/<version>`, atomically.

  The SavedModel is written to a temporary directory beside the target and
  renamed into place only when complete, so a crash never leaves a
  half-written version, and an existing version is never overwritten.

  Args:
    model: Maps `[batch, max_len]` item indices to `[batch, K, dim]` user
      vectors and has `item_tower`.
    item_vocab: The item vocabulary of the training data.
    export_base: Directory of numbered versions (created if needed).
    max_len: History length the model was trained with.
    k: Results of `serving_default`.
    index: `"brute_force"` (stock TF ops) or `"scann"` (needs the ScaNN ops).
    version: Version number; defaults to one more than the highest present.
    exclude_history: Whether the history's items are excluded from results.
    index_layer: An index layer to use instead of the default of `index`.

  Returns:
    The path of the new version directory.

  Raises:
    ValueError: for an unknown index.
    FileExistsError: if the version already exists.
  """
  if index not in INDEXES:
    raise ValueError(f"index must be one of {INDEXES}, got {index!r}.")
  os.makedirs(export_base, exist_ok=True)
  version = _next_version(export_base) if version is None else int(version)
  target = os.path.join(export_base, str(version))
  if os.path.exists(target):
    raise FileExistsError(f"{target} already exists; export versions are never overwritten.")
  if index_layer is None:
    index_layer = (
      MultiInterestBruteForce(k=k) if index == "brute_force" else MultiInterestScaNN(k=k)
    )
  item_vectors = model.item_tower(tf.range(NUM_RESERVED, item_vocab.size))
  identifiers = tf.constant(
    item_vocab.tokens.tolist(), tf.string if item_vocab.dtype == "string" else tf.int64
  )
  index_layer.index(item_vectors, identifiers)
  recommender = Recommender(model, item_vocab, index_layer, max_len, k, exclude_history)
  staging = tempfile.mkdtemp(prefix=f".{version}.incomplete-", dir=export_base)
  try:
    tf.saved_model.save(
      recommender,
      staging,
      signatures={
        "serving_default": recommender.serving_default,
        "serving_k": recommender.serving_k,
      },
      options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"]),
    )
    extra = os.path.join(staging, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    item_vocab.save(os.path.join(extra, "item_vocab.json"))
    with open(os.path.join(extra, "export.json"), "w", encoding="utf-8") as handle:
      json.dump(
        {
          "index": index,
          "k": k,
          "max_len": max_len,
          "exclude_history": exclude_history,
          "id_dtype": item_vocab.dtype,
          "num_towers": int(np.shape(model(tf.zeros([1, max_len], tf.int32)))[1]),
        },
        handle,
        indent=2,
      )
    os.rename(staging, target)
  except BaseException:
    shutil.rmtree(staging, ignore_errors=True)
    raise
  return target
