"""Recency windows: a user tower that reads only the most recent history items."""

from typing import Optional
from typing import Tuple

import tensorflow as tf


def geometric_windows(num_towers: int, max_len: int) -> Tuple[int, ...]:
  """Recency windows from the last item to the whole history, spaced geometrically.

  Window k is `round(max_len ** (k / (K - 1)))`, raised where needed so that
  the windows strictly increase; the first is 1 (the last item), the last is
  `max_len` (the whole history). K = 1 gives `(max_len,)`, the plain tower.
  For K = 4 and `max_len = 20` the windows are `(1, 3, 7, 20)`.

  Args:
    num_towers: K, at least 1.
    max_len: History length, at least K.

  Returns:
    K strictly increasing window lengths.

  Raises:
    ValueError: if K < 1 or K > max_len.
  """
  if num_towers < 1:
    raise ValueError(f"num_towers must be >= 1, got {num_towers}.")
  if max_len < num_towers:
    raise ValueError(
      f"max_len={max_len} cannot hold {num_towers} distinct recency windows; "
      "use max_len >= num_towers."
    )
  if num_towers == 1:
    return (max_len,)
  windows = []
  for k in range(num_towers):
    window = int(round(max_len ** (k / (num_towers - 1))))
    windows.append(max(window, windows[-1] + 1) if windows else window)
  # Raising a window may overshoot max_len near the end: pull the tail back.
  for k in range(num_towers - 1, -1, -1):
    windows[k] = min(windows[k], max_len - (num_towers - 1 - k))
  return tuple(windows)


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class RecentWindow(tf.keras.layers.Layer):
  """Runs a user tower on the last `window` items of the history only.

  The older positions are masked out, so the wrapped tower sees a shorter
  history; the most recent item is always kept. K towers over windows of
  different lengths (see `geometric_windows`) look at the user at different
  time scales, from the last item (short-term intent) to the whole history
  (long-term taste), so they differ by construction instead of having to
  break the symmetry of K identical replicas during training.

  Example:

  ```python
  tower = mtmi_tfrs.towers.RecentWindow(
      mtmi_tfrs.towers.AttentionPoolTower(max_len=20, output_dim=None), window=3)
  user_vector = tower(history_embeddings, mask=history != 0)  # [batch, dim]
  ```
  """

  def __init__(
    self, tower: tf.keras.layers.Layer, window: int, name: Optional[str] = None, **kwargs
  ) -> None:
    """Initializes the layer.

    Args:
      tower: A user tower mapping `[batch, max_len, dim]` embeddings and a
        `[batch, max_len]` mask to `[batch, output_dim]`; a config dict (as
        `get_config` writes it) is deserialised.
      window: How many of the most recent positions the tower sees, >= 1.

    Raises:
      ValueError: if `window < 1`.
    """
    super().__init__(name=name, **kwargs)
    if isinstance(tower, dict):
      tower = tf.keras.layers.deserialize(tower)
    if window < 1:
      raise ValueError(f"window must be >= 1, got {window}.")
    self.tower = tower
    self._window = int(window)

  @property
  def window(self) -> int:
    return self._window

  def call(self, history_embeddings: tf.Tensor, mask: Optional[tf.Tensor] = None, **kwargs):
    """Encodes the most recent part of a history.

    Args:
      history_embeddings: `[batch, max_len, dim]` embedded, left-padded history.
      mask: `[batch, max_len]` boolean mask of the valid positions.
      **kwargs: Passed to the tower (e.g. `training`).

    Returns:
      The tower's `[batch, output_dim]` user vectors.
    """
    length = tf.shape(history_embeddings)[1]
    recent = tf.range(length) >= length - self._window
    if mask is None:
      window_mask = tf.broadcast_to(recent[tf.newaxis, :], tf.shape(history_embeddings)[:2])
    else:
      window_mask = tf.logical_and(mask, recent[tf.newaxis, :])
    return self.tower(history_embeddings, mask=window_mask, **kwargs)

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update({"tower": tf.keras.layers.serialize(self.tower), "window": self._window})
    return config
