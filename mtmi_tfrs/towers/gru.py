"""GRU user tower (GRU4Rec)."""

from typing import Optional

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class GRUTower(tf.keras.layers.Layer):
  """GRU4Rec user tower: a GRU over the history, last state projected.

  Masked (padding) steps leave the state unchanged, so left padding does not
  affect the result.

  Example:

  ```python
  tower = mtmi_tfrs.towers.GRUTower(units=64, output_dim=64)
  user_vector = tower(history_embeddings, mask=history != 0)  # [batch, 64]
  ```
  """

  def __init__(
    self, units: int = 64, output_dim: int = 64, name: Optional[str] = None, **kwargs
  ) -> None:
    """Initializes the tower.

    Args:
      units: GRU state size.
      output_dim: Size of the user vector.
    """
    super().__init__(name=name, **kwargs)
    self._units = units
    self._output_dim = output_dim
    self.gru = tf.keras.layers.GRU(units)
    self.projection = tf.keras.layers.Dense(output_dim)

  def call(self, history_embeddings: tf.Tensor, mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Encodes a history.

    Args:
      history_embeddings: `[batch, max_len, dim]` embedded, left-padded history.
      mask: `[batch, max_len]` boolean mask of the valid positions.

    Returns:
      `[batch, output_dim]` user vectors.
    """
    return self.projection(self.gru(history_embeddings, mask=mask))

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update({"units": self._units, "output_dim": self._output_dim})
    return config
