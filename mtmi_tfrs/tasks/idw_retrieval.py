"""The Inverse Distance Weighting (IDW) multi-interest retrieval task."""

import math
from typing import List
from typing import Optional

import numpy as np
import tensorflow as tf
from tensorflow_recommenders.tasks import base

# The same masking constant as `tfrs.tasks.Retrieval`, so that accidental-hit
# removal changes the loss exactly as TFRS's does.
MIN_FLOAT = np.finfo(np.float32).min / 100.0

LOSSES = ("softmax", "triplet")
NEGATIVES = ("per_tower", "merged", "interpolated")
REDUCTIONS = ("sum", "mean")


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class IDWRetrieval(tf.keras.layers.Layer, base.Task):
  """Retrieval task for K user vectors per user, weighted by inverse distance.

  Each of a user's K vectors `u_k` is scored against every candidate with the
  logit `z_kj = -alpha * ||u_k - v_j||^2`. Tower k's loss `l_k` is the loss of
  the positive (row b of the candidates for user b) against the other
  candidates, either as a softmax cross-entropy (`loss="softmax"`) or as a mean
  triplet hinge (`loss="triplet"`):

      l_k = -log softmax(z_k)[+]                               (softmax)
      l_k = mean_j max(0, margin + z_kj - z_k+)                (triplet)

  With `negatives="per_tower"` every tower scores the negatives itself; with
  `negatives="merged"` tower k keeps its own positive logit but every negative
  is scored with the deployment score `max_l z_lj`, so that each tower is
  trained against the competitors it meets when the K retrieval lists are
  merged at serving time. `negatives="interpolated"` scores every negative
  with the inverse-distance interpolation of the K towers' logits,
  `sum_l w_lj z_lj` with `w_lj` the IDW weights of the towers for item j
  (the same `beta` and `eps`): a smooth form of the deployment max that
  reaches it at `beta = inf` and also pushes the towers near a negative that
  are not the nearest.

  The towers share the example through inverse-distance weights

      w_k = (d_k + eps)^(-beta) / sum_l (d_l + eps)^(-beta),   d_k = ||u_k - v+||

  (no gradient flows through `w` unless `stop_weight_gradient=False`), and the
  per-example loss is `sum_k w_k * l_k`. `beta = 0` weights all towers equally;
  `beta = inf` gives the whole example to the nearest tower.

  Log-Q correction (`candidate_sampling_probability`) and accidental-hit removal
  (`remove_accidental_hits=True` with `candidate_ids`) act on the logits exactly
  as in `tfrs.tasks.Retrieval`. With K = 1, L2-normalised inputs and the softmax
  form this task equals `tfrs.tasks.Retrieval(temperature=1 / (2 * alpha))`.

  Example:

  ```python
  task = mtmi_tfrs.tasks.IDWRetrieval(alpha=5.0, beta=8.0)
  loss = task(user_embeddings,   # [batch, K, dim]
              item_embeddings)   # [batch, dim]
  ```
  """

  def __init__(
    self,
    alpha: float = 5.0,
    beta: float = 8.0,
    loss: str = "softmax",
    negatives: str = "per_tower",
    margin: float = 0.5,
    eps: float = 1e-6,
    stop_weight_gradient: bool = True,
    remove_accidental_hits: bool = False,
    reduction: str = "sum",
    num_towers: Optional[int] = None,
    batch_metrics: Optional[List[tf.keras.metrics.Metric]] = None,
    loss_metrics: Optional[List[tf.keras.metrics.Metric]] = None,
    name: Optional[str] = None,
    **kwargs,
  ) -> None:
    """Initializes the task.

    Args:
      alpha: Distance scaling (inverse temperature) of the logits
        `-alpha * d^2`; must be positive.
      beta: IDW divergence, `>= 0`; `float("inf")` routes every example to the
        nearest tower only.
      loss: `"softmax"` (cross-entropy) or `"triplet"` (mean hinge).
      negatives: `"per_tower"`, `"merged"` or `"interpolated"` scoring of the
        negatives.
      margin: Margin of the triplet hinge, in logit units.
      eps: Added to the distances before inversion; must be positive.
      stop_weight_gradient: Whether the IDW weights are constants for the
        gradient (the default) or differentiated through.
      remove_accidental_hits: Whether negatives with the positive's id are
        masked; requires `candidate_ids` in `call`.
      reduction: `"sum"` over the batch (TFRS's default) or `"mean"`.
      num_towers: If given, the expected K; `call` checks it.
      batch_metrics: Keras metrics updated with the one-hot labels and the
        merged (deployment) logits `[batch, num_candidates]`.
      loss_metrics: Keras metrics updated with the loss value.
      name: Optional task name.
      **kwargs: Passed to `tf.keras.layers.Layer`.

    Raises:
      ValueError: if an argument is out of its range.
    """
    super().__init__(name=name, **kwargs)
    if not alpha > 0:
      raise ValueError(f"alpha must be > 0, got {alpha}.")
    if not beta >= 0:
      raise ValueError(f"beta must be >= 0 (or inf), got {beta}.")
    if loss not in LOSSES:
      raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
    if negatives not in NEGATIVES:
      raise ValueError(f"negatives must be one of {NEGATIVES}, got {negatives!r}.")
    if not eps > 0:
      raise ValueError(f"eps must be > 0, got {eps}.")
    if margin < 0:
      raise ValueError(f"margin must be >= 0, got {margin}.")
    if reduction not in REDUCTIONS:
      raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}.")
    if num_towers is not None and num_towers < 1:
      raise ValueError(f"num_towers must be >= 1, got {num_towers}.")
    self._alpha = float(alpha)
    self._beta = float(beta)
    self._loss_name = loss
    self._negatives = negatives
    self._margin = float(margin)
    self._eps = float(eps)
    self._stop_weight_gradient = stop_weight_gradient
    self._remove_accidental_hits = remove_accidental_hits
    self._reduction = reduction
    self._num_towers = num_towers
    self._batch_metrics = batch_metrics or []
    self._loss_metrics = loss_metrics or []

  def _check_shapes(self, user_embeddings, item_embeddings):
    if user_embeddings.shape.rank != 3:
      raise ValueError(
        "user_embeddings must be [batch, K, dim], got shape "
        f"{user_embeddings.shape.as_list() if user_embeddings.shape.rank else None}."
      )
    if item_embeddings.shape.rank != 2:
      raise ValueError(
        "item_embeddings must be [batch + extra, dim], got shape "
        f"{item_embeddings.shape.as_list() if item_embeddings.shape.rank else None}."
      )
    num_towers = user_embeddings.shape[1]
    if self._num_towers is not None and num_towers != self._num_towers:
      raise ValueError(
        f"user_embeddings must be [batch, K={self._num_towers}, dim] "
        f"(num_towers={self._num_towers}), got shape {user_embeddings.shape.as_list()}."
      )
    user_dim, item_dim = user_embeddings.shape[-1], item_embeddings.shape[-1]
    if user_dim is not None and item_dim is not None and user_dim != item_dim:
      raise ValueError(
        "user_embeddings [batch, K, dim] and item_embeddings [batch + extra, dim] "
        f"must share dim, got {user_embeddings.shape.as_list()} and "
        f"{item_embeddings.shape.as_list()}."
      )

  def squared_distances(self, user_embeddings, item_embeddings):
    """Squared distances `||u_k - v_j||^2`.

    Args:
      user_embeddings: `[batch, K, dim]` user vectors.
      item_embeddings: `[num_candidates, dim]` item vectors.

    Returns:
      `[batch, K, num_candidates]` non-negative squared distances.
    """
    dots = tf.einsum("bkd,nd->bkn", user_embeddings, item_embeddings)
    user_sq = tf.reduce_sum(tf.square(user_embeddings), axis=-1, keepdims=True)
    item_sq = tf.reduce_sum(tf.square(item_embeddings), axis=-1)
    return tf.maximum(user_sq + item_sq[tf.newaxis, tf.newaxis, :] - 2.0 * dots, 0.0)

  def interest_weights(self, positive_squared_distances):
    """IDW weights of the towers for each example.

    Args:
      positive_squared_distances: `[batch, K, ...]` squared distances between
        each tower's user vector and the positive item (or any item).

    Returns:
      Weights of the same shape, summing to 1 over the K axis.
    """
    distances = tf.sqrt(positive_squared_distances + 1e-12)
    if math.isinf(self._beta):
      num_towers = tf.shape(distances)[1]
      weights = tf.one_hot(tf.argmin(distances, axis=1), num_towers, axis=1, dtype=distances.dtype)
    else:
      weights = tf.nn.softmax(-self._beta * tf.math.log(distances + self._eps), axis=1)
    if self._stop_weight_gradient:
      weights = tf.stop_gradient(weights)
    return weights

  def call(
    self,
    user_embeddings: tf.Tensor,
    item_embeddings: tf.Tensor,
    sample_weight: Optional[tf.Tensor] = None,
    candidate_sampling_probability: Optional[tf.Tensor] = None,
    candidate_ids: Optional[tf.Tensor] = None,
    compute_metrics: bool = True,
    compute_batch_metrics: bool = True,
  ) -> tf.Tensor:
    """Computes the IDW loss.

    Args:
      user_embeddings: `[batch, K, dim]` user vectors (not normalised here).
      item_embeddings: `[batch + extra, dim]` item vectors; row b of the first
        `batch` rows is user b's positive, every other row is a negative for
        user b (extra rows are extra negatives for everyone).
      sample_weight: Optional `[batch]` example weights.
      candidate_sampling_probability: Optional `[batch + extra]` sampling
        probabilities of the candidates, for the log-Q correction.
      candidate_ids: Optional `[batch + extra]` candidate ids, required when
        `remove_accidental_hits=True`.
      compute_metrics: Unused; kept for `tfrs.tasks.Retrieval` compatibility.
      compute_batch_metrics: Whether to update the batch metrics.

    Returns:
      The scalar loss.

    Raises:
      ValueError: if a shape is wrong, or candidate ids are missing while
        accidental-hit removal is on.
    """
    del compute_metrics
    user_embeddings = tf.convert_to_tensor(user_embeddings)
    item_embeddings = tf.convert_to_tensor(item_embeddings, dtype=user_embeddings.dtype)
    self._check_shapes(user_embeddings, item_embeddings)
    batch_size = tf.shape(user_embeddings)[0]
    num_candidates = tf.shape(item_embeddings)[0]
    tf.debugging.assert_greater_equal(
      num_candidates,
      batch_size,
      message="item_embeddings must have at least batch rows (one positive per user)",
    )
    squared = self.squared_distances(user_embeddings, item_embeddings)
    labels = tf.eye(batch_size, num_candidates, dtype=squared.dtype)
    positive_squared = tf.einsum("bkn,bn->bk", squared, labels)
    weights = self.interest_weights(positive_squared)

    logits = -self._alpha * squared
    if candidate_sampling_probability is not None:
      probability = tf.cast(candidate_sampling_probability, logits.dtype)
      logits -= tf.math.log(tf.clip_by_value(probability, 1e-6, 1.0))
    valid_negatives = 1.0 - labels
    if self._remove_accidental_hits:
      if candidate_ids is None:
        raise ValueError("When accidental hit removal is enabled, candidate_ids must be supplied.")
      candidate_ids = tf.convert_to_tensor(candidate_ids)
      positive_ids = candidate_ids[:batch_size]
      duplicate = (
        tf.cast(tf.equal(positive_ids[:, tf.newaxis], candidate_ids[tf.newaxis, :]), labels.dtype)
        - labels
      )
      logits += duplicate[:, tf.newaxis, :] * MIN_FLOAT
      valid_negatives -= duplicate

    merged_logits = tf.reduce_max(logits, axis=1)
    if self._negatives != "per_tower":
      negative_logits = merged_logits
      if self._negatives == "interpolated":
        negative_logits = tf.reduce_sum(self.interest_weights(squared) * logits, axis=1)
      logits = tf.where(
        tf.cast(labels, tf.bool)[:, tf.newaxis, :], logits, negative_logits[:, tf.newaxis, :]
      )
    positive_logits = tf.einsum("bkn,bn->bk", logits, labels)
    if self._loss_name == "softmax":
      tower_losses = tf.reduce_logsumexp(logits, axis=-1) - positive_logits
    else:
      hinge = tf.nn.relu(self._margin + logits - positive_logits[:, :, tf.newaxis])
      hinge *= valid_negatives[:, tf.newaxis, :]
      num_negatives = tf.maximum(tf.reduce_sum(valid_negatives, axis=-1), 1.0)
      tower_losses = tf.reduce_sum(hinge, axis=-1) / num_negatives[:, tf.newaxis]

    example_losses = tf.reduce_sum(weights * tower_losses, axis=1)
    if sample_weight is not None:
      example_losses *= tf.cast(tf.reshape(sample_weight, [-1]), example_losses.dtype)
    loss = tf.reduce_sum(example_losses)
    if self._reduction == "mean":
      loss /= tf.cast(batch_size, loss.dtype)

    update_ops = [metric.update_state(loss) for metric in self._loss_metrics]
    if compute_batch_metrics:
      update_ops += [
        metric.update_state(labels, merged_logits, sample_weight=sample_weight)
        for metric in self._batch_metrics
      ]
    with tf.control_dependencies(update_ops):
      return tf.identity(loss)

  def get_config(self):
    config = super().get_config()
    config.update(
      {
        "alpha": self._alpha,
        "beta": self._beta,
        "loss": self._loss_name,
        "negatives": self._negatives,
        "margin": self._margin,
        "eps": self._eps,
        "stop_weight_gradient": self._stop_weight_gradient,
        "remove_accidental_hits": self._remove_accidental_hits,
        "reduction": self._reduction,
        "num_towers": self._num_towers,
      }
    )
    return config
