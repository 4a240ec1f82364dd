"""A Keras callback that evaluates retrieval metrics during `fit`."""

from typing import Mapping
from typing import Optional
from typing import Sequence

import numpy as np
import tensorflow as tf

from mtmi_tfrs.evaluation.metrics import evaluate_model


class RetrievalEvaluation(tf.keras.callbacks.Callback):
  """Adds `val_recall@N`, `val_ndcg@N`, `val_hit_rate@N` to the epoch logs.

  The metrics come from the same merged full-catalogue retrieval as
  `evaluate_model`, so `tf.keras.callbacks.EarlyStopping(monitor="val_recall@50",
  mode="max")`, `TensorBoard` and `History` see them. Place it before those
  callbacks in the `callbacks` list.
  """

  def __init__(
    self,
    examples: Mapping[str, np.ndarray],
    num_items: int,
    ks: Sequence[int] = (20, 50),
    every: int = 1,
    prefix: str = "val_",
    batch_size: int = 512,
  ) -> None:
    """Initializes the callback.

    Args:
      examples: Validation arrays (`evaluation_arrays(data, "valid")`).
      num_items: Size of the item vocabulary.
      ks: Cut-offs N.
      every: Evaluate every this many epochs (and always at the last one).
      prefix: Prefix of the log keys.
      batch_size: Users per retrieval batch.
    """
    super().__init__()
    self._examples = examples
    self._num_items = num_items
    self._ks = tuple(ks)
    self._every = every
    self._prefix = prefix
    self._batch_size = batch_size
    self.history = []

  def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
    last = self.params.get("epochs") if self.params else None
    if (epoch + 1) % self._every and epoch + 1 != last:
      return
    metrics = evaluate_model(
      self.model, self._examples, self._num_items, self._ks, batch_size=self._batch_size
    )
    metrics.pop("users")
    self.history.append({"epoch": epoch + 1, **metrics})
    if logs is not None:
      logs.update({self._prefix + name: value for name, value in metrics.items()})
