"""Self-attention user tower (SASRec-style)."""

from typing import Optional

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class SelfAttentionTower(tf.keras.layers.Layer):
  """SASRec-style user tower: causal self-attention blocks over the history.

  Learned positional embeddings are aligned to the right end of the
  left-padded history, so the most recent item always has the last position.
  Padding positions are masked as keys; the output is the last position's
  state, projected.

  Example:

  ```python
  tower = mtmi_tfrs.towers.SelfAttentionTower(max_len=20, output_dim=64)
  user_vector = tower(history_embeddings, mask=history != 0)  # [batch, 64]
  ```
  """

  def __init__(
    self,
    max_len: int = 50,
    num_heads: int = 2,
    num_blocks: int = 2,
    output_dim: int = 64,
    dropout: float = 0.1,
    name: Optional[str] = None,
    **kwargs,
  ) -> None:
    """Initializes the tower.

    Args:
      max_len: Longest history the positional embeddings cover.
      num_heads: Attention heads per block.
      num_blocks: Number of attention + feed-forward blocks.
      output_dim: Size of the user vector.
      dropout: Dropout rate inside the blocks during training.
    """
    super().__init__(name=name, **kwargs)
    self._max_len = max_len
    self._num_heads = num_heads
    self._num_blocks = num_blocks
    self._output_dim = output_dim
    self._dropout = dropout

  def build(self, input_shape):
    dim = int(input_shape[-1])
    self.position_embedding = self.add_weight(
      name="position_embedding",
      shape=[self._max_len, dim],
      initializer=tf.keras.initializers.RandomNormal(stddev=0.02),
    )
    self.blocks = []
    for _ in range(self._num_blocks):
      self.blocks.append(
        {
          "attention_norm": tf.keras.layers.LayerNormalization(),
          "attention": tf.keras.layers.MultiHeadAttention(
            self._num_heads, max(dim // self._num_heads, 1), dropout=self._dropout
          ),
          "ffn_norm": tf.keras.layers.LayerNormalization(),
          "ffn": tf.keras.Sequential(
            [
              tf.keras.layers.Dense(dim, activation="relu"),
              tf.keras.layers.Dropout(self._dropout),
              tf.keras.layers.Dense(dim),
            ]
          ),
        }
      )
    self.final_norm = tf.keras.layers.LayerNormalization()
    self.projection = tf.keras.layers.Dense(self._output_dim)
    super().build(input_shape)

  def call(
    self, history_embeddings: tf.Tensor, mask: Optional[tf.Tensor] = None, training=None
  ) -> tf.Tensor:
    """Encodes a history.

    Args:
      history_embeddings: `[batch, max_len, dim]` embedded, left-padded history
        (at most `max_len` positions).
      mask: `[batch, max_len]` boolean mask of the valid positions.

    Returns:
      `[batch, output_dim]` user vectors.

    Raises:
      ValueError: if the history is longer than `max_len`.
    """
    length = history_embeddings.shape[1]
    if length is not None and length > self._max_len:
      raise ValueError(
        f"history_embeddings must be [batch, <= max_len={self._max_len}, dim], "
        f"got shape {history_embeddings.shape.as_list()}."
      )
    length = tf.shape(history_embeddings)[1]
    x = history_embeddings + self.position_embedding[self._max_len - length :]
    if mask is None:
      mask = tf.ones(tf.shape(history_embeddings)[:2], dtype=tf.bool)
    causal = tf.linalg.band_part(tf.ones([length, length], dtype=tf.bool), -1, 0)
    # A query row whose keys are all padding would attend to nothing; letting
    # every position attend to itself keeps the softmax defined.
    attention_mask = tf.logical_or(
      tf.logical_and(causal[tf.newaxis], mask[:, tf.newaxis, :]),
      tf.eye(length, dtype=tf.bool)[tf.newaxis],
    )
    for block in self.blocks:
      y = block["attention_norm"](x)
      x += block["attention"](y, y, attention_mask=attention_mask, training=training)
      x += block["ffn"](block["ffn_norm"](x), training=training)
    return self.projection(self.final_norm(x[:, -1, :]))

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(
      {
        "max_len": self._max_len,
        "num_heads": self._num_heads,
        "num_blocks": self._num_blocks,
        "output_dim": self._output_dim,
        "dropout": self._dropout,
      }
    )
    return config
