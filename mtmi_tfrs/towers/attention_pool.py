"""Attentive-pooling user tower (one self-attentive head, as in ComiRec-SA)."""

from typing import Optional

import tensorflow as tf

_NEG_INF = -1e9


def attentive_pool(history_embeddings, mask, positions, hidden_kernel, hidden_bias, score_kernel):
  """Pools a history with additive attention, for one tower or K at once.

  `a_t = softmax_t(w^T tanh(W (x_t + p_t) + b))`, result `sum_t a_t x_t`.
  Weights carry an optional leading K axis (`positions [K, L, dim]`,
  `hidden_kernel [K, dim, hidden]`, `hidden_bias [K, hidden]`,
  `score_kernel [K, hidden]`); without it, pass K = 1 weights.

  Returns:
    `[batch, K, dim]` pooled histories.
  """
  length = tf.shape(history_embeddings)[1]
  num_towers, dim, hidden_units = hidden_kernel.shape
  # One [batch * L, dim] x [dim, K * hidden] matmul for all towers, and
  # W (x_t + p_t) = W x_t + W p_t so that positions are projected once per tower.
  all_kernels = tf.reshape(tf.transpose(hidden_kernel, [1, 0, 2]), [dim, -1])
  projected = tf.reshape(
    tf.matmul(tf.reshape(history_embeddings, [-1, dim]), all_kernels),
    [tf.shape(history_embeddings)[0], length, num_towers, hidden_units],
  )
  positions_projected = tf.einsum("kld,kdh->lkh", positions[:, -length:], hidden_kernel)
  hidden = tf.tanh(
    projected + positions_projected[tf.newaxis] + hidden_bias[tf.newaxis, tf.newaxis]
  )
  logits = tf.einsum("blkh,kh->bkl", hidden, score_kernel)
  if mask is not None:
    logits = tf.where(mask[:, tf.newaxis, :], logits, _NEG_INF)
  attention = tf.nn.softmax(logits, axis=-1)
  return tf.einsum("bkl,bld->bkd", attention, history_embeddings)


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class AttentionPoolTower(tf.keras.layers.Layer):
  """A user tower that pools the history with one learned attention head.

  Position-aware additive attention (`softmax_t(w^T tanh(W (x_t + p_t)))`,
  padding masked) weights the history items; the weighted sum is projected to
  the user vector. It is the single-head form of ComiRec-SA's extractor, as an
  independent tower, and cheap enough to replicate K times.

  Example:

  ```python
  tower = mtmi_tfrs.towers.AttentionPoolTower(max_len=20, output_dim=64)
  user_vector = tower(history_embeddings, mask=history != 0)  # [batch, 64]
  ```
  """

  def __init__(
    self,
    max_len: int = 50,
    hidden_units: int = 128,
    output_dim: int = 64,
    name: Optional[str] = None,
    **kwargs,
  ) -> None:
    """Initializes the tower.

    Args:
      max_len: Longest history the positional embeddings cover.
      hidden_units: Width of the attention's hidden layer.
      output_dim: Size of the user vector; None returns the pooled history
        embedding itself (the user vector then lies in the item embedding
        space, as ComiRec-SA's interests do).
    """
    super().__init__(name=name, **kwargs)
    self._max_len = max_len
    self._hidden_units = hidden_units
    self._output_dim = output_dim

  def build(self, input_shape):
    dim = int(input_shape[-1])
    self.positions = self.add_weight(
      name="positions",
      shape=[1, self._max_len, dim],
      initializer=tf.keras.initializers.RandomNormal(stddev=0.02),
    )
    self.hidden_kernel = self.add_weight(
      name="hidden_kernel",
      shape=[1, dim, self._hidden_units],
      initializer=tf.keras.initializers.GlorotUniform(),
    )
    self.hidden_bias = self.add_weight(
      name="hidden_bias", shape=[1, self._hidden_units], initializer="zeros"
    )
    self.score_kernel = self.add_weight(
      name="score_kernel",
      shape=[1, self._hidden_units],
      initializer=tf.keras.initializers.GlorotUniform(),
    )
    self.projection = tf.keras.layers.Dense(self._output_dim) if self._output_dim else None
    super().build(input_shape)

  def call(self, history_embeddings: tf.Tensor, mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Encodes a history.

    Args:
      history_embeddings: `[batch, max_len, dim]` embedded, left-padded history.
      mask: `[batch, max_len]` boolean mask of the valid positions.

    Returns:
      `[batch, output_dim]` (or `[batch, dim]`) user vectors.
    """
    pooled = attentive_pool(
      history_embeddings,
      mask,
      self.positions,
      self.hidden_kernel,
      self.hidden_bias,
      self.score_kernel,
    )
    return self.projection(pooled[:, 0]) if self.projection is not None else pooled[:, 0]

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(
      {"max_len": self._max_len, "hidden_units": self._hidden_units, "output_dim": self._output_dim}
    )
    return config
