"""Mean-pooling user tower (YouTube DNN)."""

from typing import Optional
from typing import Sequence

import tensorflow as tf


def masked_mean(history_embeddings: tf.Tensor, mask: Optional[tf.Tensor]) -> tf.Tensor:
  """Mean over the valid positions of a history.

  Args:
    history_embeddings: `[batch, max_len, dim]` embedded history.
    mask: `[batch, max_len]` boolean mask of the valid positions, or None.

  Returns:
    `[batch, dim]` means; zeros for an empty history.
  """
  if mask is None:
    return tf.reduce_mean(history_embeddings, axis=1)
  weights = tf.cast(mask, history_embeddings.dtype)[:, :, tf.newaxis]
  total = tf.reduce_sum(history_embeddings * weights, axis=1)
  return total / tf.maximum(tf.reduce_sum(weights, axis=1), 1.0)


def check_mlp_arguments(
  hidden_units: Sequence[int], output_dim: Optional[int], residual: bool
) -> None:
  """Raises a ValueError for an MLP configuration `MeanPoolTower` cannot build."""
  if output_dim is None and hidden_units:
    raise ValueError(
      f"output_dim=None (the plain mean) takes no hidden_units, got {list(hidden_units)}."
    )
  if output_dim is None and residual:
    raise ValueError("residual=True needs an MLP to add to the mean; output_dim is None.")


def check_residual_width(residual: bool, output_dim: Optional[int], input_shape) -> None:
  """Raises a ValueError when a residual MLP's output cannot be added to the mean."""
  if residual and output_dim != input_shape[-1]:
    raise ValueError(
      f"residual=True adds the mean to the MLP's output, so output_dim={output_dim} must "
      f"equal the embedding size of the history [batch, max_len, {input_shape[-1]}]."
    )


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class MeanPoolTower(tf.keras.layers.Layer):
  """YouTube-DNN user tower: masked mean of the history, then an MLP.

  With `hidden_units=()` and `output_dim=None` the tower is the masked mean
  itself: the user vector stays in the item embedding space (the centroid of
  the history items), like `AttentionPoolTower(output_dim=None)`. With
  `residual=True` the MLP's output is added to the mean, so the MLP learns a
  correction to the centroid instead of replacing it.

  Example:

  ```python
  tower = mtmi_tfrs.towers.MeanPoolTower(hidden_units=(128,), output_dim=64)
  user_vector = tower(history_embeddings, mask=history != 0)  # [batch, 64]
  ```
  """

  def __init__(
    self,
    hidden_units: Sequence[int] = (128,),
    output_dim: Optional[int] = 64,
    activation: str = "relu",
    residual: bool = False,
    name: Optional[str] = None,
    **kwargs,
  ) -> None:
    """Initializes the tower.

    Args:
      hidden_units: Widths of the hidden ReLU layers.
      output_dim: Size of the user vector; None (with no hidden layers)
        returns the masked mean itself.
      activation: Activation of the hidden layers.
      residual: Whether the masked mean is added to the MLP's output; then
        `output_dim` must equal the embedding size.

    Raises:
      ValueError: if `output_dim` is None but hidden layers or `residual` are
        asked for.
    """
    super().__init__(name=name, **kwargs)
    check_mlp_arguments(hidden_units, output_dim, residual)
    self._hidden_units = list(hidden_units)
    self._output_dim = output_dim
    self._activation = activation
    self._residual = residual
    self._dense_layers = [
      tf.keras.layers.Dense(units, activation=activation) for units in self._hidden_units
    ] + ([tf.keras.layers.Dense(output_dim)] if output_dim else [])

  def build(self, input_shape):
    check_residual_width(self._residual, self._output_dim, input_shape)
    super().build(input_shape)

  def call(self, history_embeddings: tf.Tensor, mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Encodes a history.

    Args:
      history_embeddings: `[batch, max_len, dim]` embedded, left-padded history.
      mask: `[batch, max_len]` boolean mask of the valid positions.

    Returns:
      `[batch, output_dim]` (or `[batch, dim]`) user vectors.
    """
    pooled = masked_mean(history_embeddings, mask)
    x = pooled
    for layer in self._dense_layers:
      x = layer(x)
    return pooled + x if self._residual else x

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(
      {
        "hidden_units": self._hidden_units,
        "output_dim": self._output_dim,
        "activation": self._activation,
        "residual": self._residual,
      }
    )
    return config
