"""Item tower: shared id embedding plus optional item features."""

from typing import Optional

import numpy as np
import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class ItemTower(tf.keras.layers.Layer):
  """Maps item indices to item vectors.

  The vector of item `i` is its row of the item embedding table shared with
  the user towers, plus (when a feature table is given) a linear projection of
  the masked mean of its feature embeddings, and is L2-normalised when
  `normalize=True`. The feature table `[num_items, max_features]` holds, for
  every item index, the indices of its categorical and multi-valued features
  (brand, categories, ...) in one feature vocabulary, 0 being padding; it is a
  non-trainable weight, so it is saved and restored with the model and only
  item indices flow through the pipelines.

  Example:

  ```python
  embedding = tf.keras.layers.Embedding(num_items, 64)
  tower = mtmi_tfrs.towers.ItemTower(embedding, feature_table=attributes,
                                     feature_vocab_size=638)
  item_vectors = tower(tf.range(num_items))  # [num_items, 64]
  ```
  """

  def __init__(
    self,
    item_embedding: tf.keras.layers.Embedding,
    feature_table: Optional[np.ndarray] = None,
    feature_vocab_size: int = 0,
    normalize: bool = True,
    name: Optional[str] = None,
    **kwargs,
  ) -> None:
    """Initializes the tower.

    Args:
      item_embedding: The item id embedding layer shared with the user side.
      feature_table: Optional `[num_items, max_features]` int array of feature
        indices per item (0 = padding).
      feature_vocab_size: Size of the feature vocabulary (required with a
        feature table; every index must be below it).
      normalize: Whether item vectors are L2-normalised.

    Raises:
      ValueError: if the feature table is malformed.
    """
    table_shape = kwargs.pop("feature_table_shape", None)
    super().__init__(name=name, **kwargs)
    self.item_embedding = item_embedding
    self._normalize = normalize
    self._feature_vocab_size = feature_vocab_size
    if feature_table is not None:
      feature_table = np.asarray(feature_table)
      if feature_table.ndim != 2 or not np.issubdtype(feature_table.dtype, np.integer):
        raise ValueError(
          "feature_table must be an integer array [num_items, max_features], got "
          f"dtype {feature_table.dtype} and shape {list(feature_table.shape)}."
        )
      if feature_table.size and (
        feature_table.min() < 0 or feature_table.max() >= feature_vocab_size
      ):
        raise ValueError(
          f"feature_table values must lie in [0, feature_vocab_size={feature_vocab_size}), "
          f"got range [{feature_table.min()}, {feature_table.max()}]."
        )
      table_shape = list(feature_table.shape)
    self._feature_table_shape = table_shape
    self._initial_feature_table = feature_table

  def build(self, input_shape):
    if self._feature_table_shape is not None:
      initial = self._initial_feature_table
      self.feature_table = self.add_weight(
        name="feature_table",
        shape=self._feature_table_shape,
        dtype=tf.int32,
        initializer=(
          tf.keras.initializers.Constant(initial.astype(np.int32))
          if initial is not None
          else "zeros"
        ),
        trainable=False,
      )
      self._initial_feature_table = None
      dim = self.item_embedding.output_dim
      self.feature_embedding = tf.keras.layers.Embedding(self._feature_vocab_size, dim)
      self.feature_projection = tf.keras.layers.Dense(dim, use_bias=False)
    super().build(input_shape)

  def call(self, item_ids: tf.Tensor) -> tf.Tensor:
    """Computes item vectors.

    Args:
      item_ids: `[num]` item indices.

    Returns:
      `[num, dim]` item vectors.
    """
    vectors = self.item_embedding(item_ids)
    if self._feature_table_shape is not None:
      features = tf.gather(self.feature_table, item_ids)
      embedded = self.feature_embedding(features)
      weights = tf.cast(features > 0, vectors.dtype)[..., tf.newaxis]
      pooled = tf.reduce_sum(embedded * weights, axis=-2) / tf.maximum(
        tf.reduce_sum(weights, axis=-2), 1.0
      )
      vectors += self.feature_projection(pooled)
    if self._normalize:
      vectors = tf.math.l2_normalize(vectors, axis=-1)
    return vectors

  def get_config(self):
    """The configuration without the shared embedding (the model supplies it)."""
    config = super().get_config()
    config.update(
      {
        "feature_vocab_size": self._feature_vocab_size,
        "normalize": self._normalize,
        "feature_table_shape": self._feature_table_shape,
      }
    )
    return config
