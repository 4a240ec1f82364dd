"""The user-representation repel regulariser."""

from typing import Optional

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class UserRepel(tf.keras.layers.Layer):
  """Pushes apart a user's K representations that are closer than a margin.

  For user vectors `u_1..u_K` of each user,

      R = mean_batch mean_{k<l} max(0, margin - ||u_k - u_l||)^2

  and the layer returns `weight * R`. It is zero when every pair is at least
  `margin` apart, so it only acts on towers that collapse onto each other.
  With K = 1 there are no pairs and the term is zero.

  Example:

  ```python
  repel = mtmi_tfrs.layers.UserRepel(margin=0.5, weight=0.1)
  penalty = repel(user_embeddings)  # [batch, K, dim] -> scalar
  ```
  """

  def __init__(
    self, margin: float = 0.5, weight: float = 0.1, name: Optional[str] = None, **kwargs
  ) -> None:
    """Initializes the layer.

    Args:
      margin: Distance below which a pair of a user's vectors is penalised;
        must be positive.
      weight: Multiplier `lambda_repel` of the term; must be >= 0.

    Raises:
      ValueError: if an argument is out of its range.
    """
    super().__init__(name=name, **kwargs)
    if not margin > 0:
      raise ValueError(f"margin must be > 0, got {margin}.")
    if not weight >= 0:
      raise ValueError(f"weight must be >= 0, got {weight}.")
    self._margin = float(margin)
    self._weight = float(weight)

  def call(self, user_embeddings: tf.Tensor) -> tf.Tensor:
    """Computes `weight * R`.

    Args:
      user_embeddings: `[batch, K, dim]` user vectors.

    Returns:
      The scalar penalty.

    Raises:
      ValueError: if `user_embeddings` is not of rank 3.
    """
    user_embeddings = tf.convert_to_tensor(user_embeddings)
    if user_embeddings.shape.rank != 3:
      raise ValueError(
        "user_embeddings must be [batch, K, dim], got shape "
        f"{user_embeddings.shape.as_list() if user_embeddings.shape.rank else None}."
      )
    num_towers = user_embeddings.shape[1]
    if num_towers is not None and num_towers < 2:
      return tf.zeros([], dtype=user_embeddings.dtype)
    differences = user_embeddings[:, :, tf.newaxis, :] - user_embeddings[:, tf.newaxis, :, :]
    # The epsilon keeps the gradient of the square root finite for equal vectors.
    distances = tf.sqrt(tf.reduce_sum(tf.square(differences), axis=-1) + 1e-12)
    penalties = tf.square(tf.nn.relu(self._margin - distances))
    k = tf.shape(user_embeddings)[1]
    upper = tf.linalg.band_part(tf.ones([k, k], dtype=penalties.dtype), 0, -1) - tf.eye(
      k, dtype=penalties.dtype
    )
    num_pairs = tf.reduce_sum(upper)
    per_user = tf.reduce_sum(penalties * upper, axis=[1, 2]) / num_pairs
    return self._weight * tf.reduce_mean(per_user)

  def get_config(self):
    config = super().get_config()
    config.update({"margin": self._margin, "weight": self._weight})
    return config
