"""Multi-interest top-k retrieval: one index, K queries per user, merged lists."""

import abc
from typing import Optional
from typing import Tuple
from typing import Union

import tensorflow as tf
import tensorflow_recommenders as tfrs


def merge_interest_lists(
  scores: tf.Tensor, positions: tf.Tensor, k: int, excluded: Optional[tf.Tensor] = None
) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Pools K per-interest top lists, keeps each item once with its best score.

  Missing entries (NaN scores, negative positions) and `excluded` entries are
  dropped. The result is sorted by score; equal scores are ordered by
  candidate position, and an item found by several interests is attributed to
  the lowest interest index among those that gave its best score.

  Args:
    scores: `[batch, K, n]` per-interest scores.
    positions: `[batch, K, n]` int candidate positions of those scores.
    k: Results to keep.
    excluded: Optional `[batch, K, n]` bool, True for entries to drop.

  Returns:
    `(scores [batch, k], positions [batch, k], interests [batch, k])`; slots
    without a result have score `-inf`, position -1 and interest -1.
  """
  batch_size = tf.shape(scores)[0]
  num_interests = tf.shape(scores)[1]
  interests = tf.broadcast_to(
    tf.range(num_interests, dtype=tf.int32)[tf.newaxis, :, tf.newaxis], tf.shape(scores)
  )
  pooled_scores = tf.reshape(scores, [batch_size, -1])
  pooled_positions = tf.reshape(tf.cast(positions, tf.int32), [batch_size, -1])
  pooled_interests = tf.reshape(interests, [batch_size, -1])
  missing = tf.math.is_nan(pooled_scores) | (pooled_positions < 0)
  if excluded is not None:
    missing |= tf.reshape(excluded, [batch_size, -1])
  neg_inf = tf.constant(float("-inf"), pooled_scores.dtype)
  pooled_scores = tf.where(missing, neg_inf, pooled_scores)
  pooled_positions = tf.where(missing, -1, pooled_positions)

  def reorder(order, *tensors):
    return [tf.gather(t, order, batch_dims=1) for t in tensors]

  # Best score first within each position, then group equal positions together.
  by_score = tf.argsort(pooled_scores, axis=1, direction="DESCENDING", stable=True)
  pooled = reorder(by_score, pooled_scores, pooled_positions, pooled_interests)
  by_position = tf.argsort(pooled[1], axis=1, stable=True)
  pooled_scores, pooled_positions, pooled_interests = reorder(by_position, *pooled)
  first = tf.concat(
    [
      tf.ones([batch_size, 1], tf.bool),
      pooled_positions[:, 1:] != pooled_positions[:, :-1],
    ],
    axis=1,
  )
  pooled_scores = tf.where(first, pooled_scores, neg_inf)
  # Missing entries at the end keep the output k wide when the pool is smaller.
  padding = tf.fill([batch_size, k], neg_inf)
  pooled_scores = tf.concat([pooled_scores, padding], axis=1)
  no_item = tf.fill([batch_size, k], -1)
  pooled_positions = tf.concat([pooled_positions, no_item], axis=1)
  pooled_interests = tf.concat([pooled_interests, no_item], axis=1)
  top_scores, top = tf.math.top_k(pooled_scores, k=k)
  found = top_scores > neg_inf
  top_positions = tf.where(found, tf.gather(pooled_positions, top, batch_dims=1), -1)
  top_interests = tf.where(found, tf.gather(pooled_interests, top, batch_dims=1), -1)
  return top_scores, top_positions, top_interests


class MultiInterestTopK(tfrs.layers.factorized_top_k.TopK, abc.ABC):
  """Base of the multi-interest indexes: search K queries per user, merge.

  Queries are `[batch, K, dim]` (or `[batch, dim]` for K = 1). Each interest
  fetches its own top `k + num_exclusions` candidates from one index, the
  lists are pooled, each item is kept once with its best score, exclusions
  are removed, and the result is sorted and cut to `k`: exactly the
  deployment score `max_k <u_k, v>`. Subclasses provide `_search`.
  """

  def __init__(self, k: int = 10, name: Optional[str] = None) -> None:
    super().__init__(k=k, name=name)
    self._identifiers = None
    self._num_candidates = None

  @abc.abstractmethod
  def _build_searcher(self, candidates: tf.Tensor) -> None:
    """Indexes the `[n, dim]` candidates, addressed by position."""

  @abc.abstractmethod
  def _search(self, queries: tf.Tensor, k: int) -> Tuple[tf.Tensor, tf.Tensor]:
    """Top-k `(scores, positions)` `[num_queries, k]` of `[num_queries, dim]` queries."""

  def index(
    self, candidates: tf.Tensor, identifiers: Optional[tf.Tensor] = None
  ) -> "MultiInterestTopK":
    """Builds the index.

    Args:
      candidates: `[num_candidates, dim]` item vectors.
      identifiers: Optional `[num_candidates]` identifiers (int or string)
        returned for results; defaults to positions.

    Returns:
      Self.

    Raises:
      ValueError: if the shapes disagree.
    """
    candidates = tf.convert_to_tensor(candidates)
    if candidates.shape.rank != 2:
      raise ValueError(
        f"candidates must be [num_candidates, dim], got shape {candidates.shape.as_list()}."
      )
    num_candidates = int(candidates.shape[0])
    if identifiers is None:
      identifiers = tf.range(num_candidates)
    identifiers = tf.convert_to_tensor(identifiers)
    if identifiers.shape.as_list() != [num_candidates]:
      raise ValueError(
        f"identifiers must be [num_candidates={num_candidates}], got shape "
        f"{identifiers.shape.as_list()}."
      )
    self._num_candidates = num_candidates
    self._identifiers = self.add_weight(
      name="identifiers",
      dtype=identifiers.dtype,
      shape=identifiers.shape,
      initializer=tf.keras.initializers.Constant(tf.zeros((), identifiers.dtype)),
      trainable=False,
    )
    self._identifiers.assign(identifiers)
    self._build_searcher(candidates)
    self._reset_tf_function_cache()
    return self

  def _missing_identifier(self):
    return tf.constant("" if self._identifiers.dtype == tf.string else -1, self._identifiers.dtype)

  def call(
    self,
    queries: tf.Tensor,
    k: Optional[int] = None,
    exclusions: Optional[tf.Tensor] = None,
    return_interests: bool = False,
  ) -> Union[Tuple[tf.Tensor, tf.Tensor], Tuple[tf.Tensor, tf.Tensor, tf.Tensor]]:
    """Retrieves the merged top k of every user's K queries.

    Args:
      queries: `[batch, K, dim]` user vectors, or `[batch, dim]`.
      k: Results per user (an int or a scalar int32 tensor); defaults to the
        constructor's `k`.
      exclusions: Optional `[batch, num_exclusions]` identifiers never to
        return (e.g. the history), padded with an identifier not in the index.
      return_interests: Whether to also return, for each result, the index of
        the interest (tower) that retrieved it with its best score.

    Returns:
      `(scores [batch, k], identifiers [batch, k])`, plus `interests
      [batch, k]` when asked. Slots without a result (fewer than k candidates
      left) hold score `-inf`, identifier `""` or -1, and interest -1.

    Raises:
      ValueError: if the index is not built or the queries have a bad shape.
    """
    if self._identifiers is None:
      raise ValueError("The `index` method must be called first to create the retrieval index.")
    k = self._k if k is None else k
    queries = tf.convert_to_tensor(queries)
    if queries.shape.rank == 2:
      queries = queries[:, tf.newaxis, :]
    if queries.shape.rank != 3:
      raise ValueError(
        "queries must be [batch, K, dim] or [batch, dim], got shape "
        f"{queries.shape.as_list() if queries.shape.rank is not None else None}."
      )
    batch_size, num_interests = tf.shape(queries)[0], tf.shape(queries)[1]
    num_exclusions = 0 if exclusions is None else tf.shape(exclusions)[1]
    fetch = tf.minimum(k + num_exclusions, self._num_candidates)
    scores, positions = self._search(tf.reshape(queries, [-1, queries.shape[-1]]), fetch)
    shape = [batch_size, num_interests, -1]
    scores, positions = tf.reshape(scores, shape), tf.reshape(positions, shape)
    excluded = None
    if exclusions is not None:
      exclusions = tf.convert_to_tensor(exclusions, dtype=self._identifiers.dtype)
      found = tf.gather(self._identifiers, tf.maximum(tf.cast(positions, tf.int32), 0))
      excluded = tf.reduce_any(
        found[:, :, :, tf.newaxis] == exclusions[:, tf.newaxis, tf.newaxis, :], axis=-1
      )
    top_scores, top_positions, interests = merge_interest_lists(scores, positions, k, excluded)
    identifiers = tf.where(
      top_positions >= 0,
      tf.gather(self._identifiers, tf.maximum(top_positions, 0)),
      self._missing_identifier(),
    )
    if return_interests:
      return top_scores, identifiers, interests
    return top_scores, identifiers

  @tf.function
  def query_with_exclusions(self, queries, exclusions, k=None):
    """`call` with exclusions, under TFRS's name for it."""
    return self.call(queries, k=k, exclusions=exclusions)


class MultiInterestBruteForce(MultiInterestTopK):
  """Exact multi-interest retrieval: every query scores every candidate.

  Uses stock TensorFlow ops only, so a SavedModel built on it runs in a stock
  TF Serving binary.

  Example:

  ```python
  index = mtmi_tfrs.layers.MultiInterestBruteForce(k=100)
  index.index(item_vectors, item_ids)
  scores, ids, interests = index(user_vectors, return_interests=True)
  ```
  """

  def _build_searcher(self, candidates):
    self._candidates = self.add_weight(
      name="candidates",
      dtype=candidates.dtype,
      shape=candidates.shape,
      initializer=tf.keras.initializers.Zeros(),
      trainable=False,
    )
    self._candidates.assign(candidates)

  def _search(self, queries, k):
    scores = tf.matmul(queries, self._candidates, transpose_b=True)
    return tf.math.top_k(scores, k=k)

  def is_exact(self) -> bool:
    return True

  def get_config(self):
    return {"k": self._k, "name": self.name}


class MultiInterestScaNN(MultiInterestTopK):
  """Approximate multi-interest retrieval with a ScaNN index.

  The index is TFRS's `ScaNN` layer over candidate positions (dot-product
  similarity, tree partitioning, asymmetric hashing, exact re-scoring of the
  best `num_reordering_candidates`). The defaults scale the tree with the
  catalogue: `sqrt(n)` leaves, of which a tenth are searched. A SavedModel
  built on it needs the ScaNN ops: a Python process that imported `scann`, or
  a TF Serving build with the ScaNN ops linked in.

  Example:

  ```python
  index = mtmi_tfrs.layers.MultiInterestScaNN(k=100)
  index.index(item_vectors, item_ids)
  scores, ids = index(user_vectors)
  ```
  """

  def __init__(
    self,
    k: int = 10,
    num_leaves: Optional[int] = None,
    num_leaves_to_search: Optional[int] = None,
    dimensions_per_block: int = 2,
    num_reordering_candidates: Optional[int] = 500,
    training_iterations: int = 12,
    name: Optional[str] = None,
  ) -> None:
    """Initializes the layer.

    Args:
      k: Default number of results.
      num_leaves: Tree leaves; defaults to `sqrt(num_candidates)`.
      num_leaves_to_search: Leaves searched per query; defaults to a tenth of
        the leaves (at least 1).
      dimensions_per_block: Asymmetric hashing block size.
      num_reordering_candidates: Candidates re-scored exactly (None: none).
      training_iterations: k-means iterations of the tree.
      name: Layer name.
    """
    super().__init__(k=k, name=name)
    self._num_leaves = num_leaves
    self._num_leaves_to_search = num_leaves_to_search
    self._dimensions_per_block = dimensions_per_block
    self._num_reordering_candidates = num_reordering_candidates
    self._training_iterations = training_iterations
    self._scann = None

  def _build_searcher(self, candidates):
    num_candidates = int(candidates.shape[0])
    num_leaves = self._num_leaves or max(int(num_candidates**0.5), 1)
    num_leaves = min(num_leaves, num_candidates)
    to_search = self._num_leaves_to_search or max(num_leaves // 10, 1)
    self._scann = tfrs.layers.factorized_top_k.ScaNN(
      k=self._k,
      num_leaves=num_leaves,
      num_leaves_to_search=min(to_search, num_leaves),
      dimensions_per_block=self._dimensions_per_block,
      num_reordering_candidates=self._num_reordering_candidates,
      training_iterations=self._training_iterations,
    )
    self._scann.index(candidates)

  def _search(self, queries, k):
    return self._scann(queries, k=k)

  def is_exact(self) -> bool:
    return False

  def get_config(self):
    return {
      "k": self._k,
      "num_leaves": self._num_leaves,
      "num_leaves_to_search": self._num_leaves_to_search,
      "dimensions_per_block": self._dimensions_per_block,
      "num_reordering_candidates": self._num_reordering_candidates,
      "training_iterations": self._training_iterations,
      "name": self.name,
    }
