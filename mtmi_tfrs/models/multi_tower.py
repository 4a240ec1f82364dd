"""The multi-tower multi-interest (MTMI) retrieval model."""

from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence
from typing import Tuple
from typing import Union

import tensorflow as tf
import tensorflow_recommenders as tfrs

from mtmi_tfrs import towers as towers_lib
from mtmi_tfrs.layers.repel import UserRepel
from mtmi_tfrs.tasks.idw_retrieval import IDWRetrieval

HISTORY_ENCODERS = ("item_tower", "item_embedding")


def _fresh_copy(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
  config = layer.get_config()
  config.pop("name", None)
  return type(layer).from_config(config)


def _check_windows(windows: Sequence[int], num_towers: int) -> Tuple[int, ...]:
  windows = tuple(int(w) for w in windows)
  if len(windows) != num_towers or min(windows) < 1:
    raise ValueError(
      f"windows must be {num_towers} positive history lengths (one per tower), got {list(windows)}."
    )
  return windows


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class MultiTowerModel(tfrs.Model):
  """K user towers and one item tower sharing the item embedding table.

  Every user tower reads the same history and produces one user vector; the
  model returns the K L2-normalised vectors `[batch, K, dim]`. The history
  items are encoded by the item tower itself (`history_encoder="item_tower"`,
  so a user vector pooled from them lies in the space of the item vectors it
  is scored against, item features included) or by the shared id embedding
  alone (`"item_embedding"`). Training minimises
  `task(user_vectors, item_vectors) + repel(user_vectors)`; with K = 1 and the
  softmax task it is an ordinary TFRS two-tower model.

  `windows` gives replica k only the last `windows[k]` history items (see
  `mtmi_tfrs.towers.geometric_windows`): the towers then look at the user at
  different time scales and differ by construction, where K identical
  replicas under soft IDW weights tend to collapse onto one vector.

  When the user towers are given as one tower replicated K times and the tower
  type has a fused form (`MeanPoolTower`, `GRUTower`, `AttentionPoolTower`), the
  K towers can run as one batched op with a leading K axis on their weights.
  `fuse="auto"` (the default) fuses when TensorFlow sees a GPU: on CPU,
  `benchmarks/tower_throughput.py` measured K separate towers to be faster.

  Example:

  ```python
  embedding = tf.keras.layers.Embedding(num_items, 64)
  model = mtmi_tfrs.models.MultiTowerModel(
      item_embedding=embedding,
      user_towers=mtmi_tfrs.towers.AttentionPoolTower(max_len=20, output_dim=None),
      num_towers=4,
      windows=mtmi_tfrs.towers.geometric_windows(4, max_len=20),  # (1, 3, 7, 20)
      task=mtmi_tfrs.tasks.IDWRetrieval(),
      repel=mtmi_tfrs.layers.UserRepel())
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
  model.fit(dataset)  # elements {"history": [batch, max_len], "item_id": [batch]}
  user_vectors = model({"history": history})   # [batch, 4, 64]
  item_vectors = model.item_tower(item_ids)      # [n, 64]
  ```
  """

  def __init__(
    self,
    item_embedding: tf.keras.layers.Embedding,
    user_towers: Union[tf.keras.layers.Layer, Sequence[tf.keras.layers.Layer]],
    num_towers: Optional[int] = None,
    item_tower: Optional[towers_lib.ItemTower] = None,
    task: Optional[tf.keras.layers.Layer] = None,
    repel: Optional[UserRepel] = None,
    fuse: Union[bool, str] = "auto",
    windows: Optional[Sequence[int]] = None,
    history_encoder: str = "item_tower",
    normalize: bool = True,
    history_key: str = "history",
    item_key: str = "item_id",
    name: Optional[str] = None,
    **kwargs,
  ) -> None:
    """Initializes the model.

    Args:
      item_embedding: Item id embedding layer shared by all towers; index 0
        is padding.
      user_towers: One tower layer to replicate `num_towers` times (with
        independent weights), or a list of K tower layers. A tower maps
        `[batch, max_len, dim]` embeddings and a `[batch, max_len]` mask to
        `[batch, dim]`. A layer with a `num_interests` attribute is a
        single-tower multi-interest extractor mapping them to
        `[batch, K, dim]` (the baselines' ComiRec and MIND extractors).
      num_towers: K when `user_towers` is a single layer (default 1); must
        equal the list length when it is a list.
      item_tower: Item tower; defaults to `ItemTower(item_embedding)`.
      task: The retrieval task; defaults to `IDWRetrieval(num_towers=K)`.
      repel: Optional `UserRepel` regulariser added to the loss.
      fuse: Whether replicated towers use their fused form when one exists:
        True, False, or `"auto"` (fused when a GPU is visible). Towers with
        `windows` are never fused.
      windows: Optional K recency windows for a replicated tower: replica k
        sees only the last `windows[k]` history items.
      history_encoder: `"item_tower"` (history items encoded like the
        candidates, features included) or `"item_embedding"` (the id
        embedding only).
      normalize: Whether user vectors are L2-normalised.
      history_key: Feature name of the `[batch, max_len]` history (0 = pad).
      item_key: Feature name of the `[batch]` positive item index.
      name: Model name.

    Raises:
      ValueError: if `num_towers` disagrees with the towers, or `windows` or
        `history_encoder` is invalid.
    """
    super().__init__(name=name, **kwargs)
    if history_encoder not in HISTORY_ENCODERS:
      raise ValueError(
        f"history_encoder must be one of {HISTORY_ENCODERS}, got {history_encoder!r}."
      )
    replicated = isinstance(user_towers, tf.keras.layers.Layer) and not hasattr(
      user_towers, "num_interests"
    )
    if windows is not None and not replicated:
      raise ValueError(
        "windows apply to one replicated tower; wrap the towers of a list in "
        "mtmi_tfrs.towers.RecentWindow instead."
      )
    if isinstance(user_towers, tf.keras.layers.Layer) and hasattr(user_towers, "num_interests"):
      # A single-tower multi-interest extractor (ComiRec, MIND): one layer, K vectors.
      if num_towers is not None and num_towers != user_towers.num_interests:
        raise ValueError(
          f"num_towers={num_towers} disagrees with the extractor's "
          f"num_interests={user_towers.num_interests}."
        )
      num_towers = user_towers.num_interests
      self._tower_spec_config = tf.keras.layers.serialize(user_towers)
      self._multi_vector = True
      self.user_towers = [user_towers]
    elif isinstance(user_towers, tf.keras.layers.Layer):
      num_towers = 1 if num_towers is None else num_towers
      if num_towers < 1:
        raise ValueError(f"num_towers must be >= 1, got {num_towers}.")
      # The spec is kept as a config: when fused, the layer itself is unused.
      self._tower_spec_config = tf.keras.layers.serialize(user_towers)
      if fuse not in (True, False, "auto"):
        raise ValueError(f"fuse must be True, False or 'auto', got {fuse!r}.")
      if fuse == "auto":
        fuse_now = bool(tf.config.list_physical_devices("GPU")) and windows is None
      elif fuse and windows is not None:
        raise ValueError("fuse=True cannot be combined with windows.")
      else:
        fuse_now = fuse
      self._multi_vector = fuse_now and num_towers > 1 and towers_lib.can_fuse(user_towers)
      if self._multi_vector:
        self.user_towers = [towers_lib.fuse(user_towers, num_towers)]
      else:
        self.user_towers = [user_towers] + [_fresh_copy(user_towers) for _ in range(num_towers - 1)]
      if windows is not None:
        windows = _check_windows(windows, num_towers)
        self.user_towers = [
          towers_lib.RecentWindow(tower, window) for tower, window in zip(self.user_towers, windows)
        ]
    else:
      user_towers = list(user_towers)
      if not user_towers:
        raise ValueError("user_towers must be a layer or a non-empty list of layers.")
      if num_towers is not None and num_towers != len(user_towers):
        raise ValueError(
          f"num_towers={num_towers} disagrees with the {len(user_towers)} user_towers given."
        )
      num_towers = len(user_towers)
      self._tower_spec_config = None
      self._multi_vector = False
      self.user_towers = user_towers
    self._num_towers = num_towers
    self._fuse = fuse
    self._windows = windows
    self._history_encoder = history_encoder
    self.item_embedding = item_embedding
    self.item_tower = item_tower if item_tower is not None else towers_lib.ItemTower(item_embedding)
    self.task = task if task is not None else IDWRetrieval(num_towers=num_towers)
    self.repel = repel
    self._normalize = normalize
    self._history_key = history_key
    self._item_key = item_key

  @property
  def num_towers(self) -> int:
    """K, the number of user vectors per user."""
    return self._num_towers

  def call(self, inputs: Union[tf.Tensor, Dict[str, tf.Tensor]], training=None) -> tf.Tensor:
    """Computes the K user vectors.

    Args:
      inputs: `[batch, max_len]` item-index history (left-padded with 0), or a
        dict holding it under `history_key`.

    Returns:
      `[batch, K, dim]` user vectors.

    Raises:
      ValueError: if the history is not of rank 2.
    """
    history = inputs[self._history_key] if isinstance(inputs, dict) else inputs
    if history.shape.rank != 2:
      raise ValueError(
        f"{self._history_key} must be [batch, max_len] item indices, got shape "
        f"{history.shape.as_list() if history.shape.rank else None}."
      )
    mask = tf.not_equal(history, 0)
    if self._history_encoder == "item_tower":
      embedded = self.item_tower(history)
    else:
      embedded = self.item_embedding(history)
    if self._multi_vector:
      vectors = self.user_towers[0](embedded, mask=mask, training=training)
    else:
      vectors = tf.stack(
        [tower(embedded, mask=mask, training=training) for tower in self.user_towers], axis=1
      )
    if self._normalize:
      vectors = tf.math.l2_normalize(vectors, axis=-1)
    return vectors

  def compute_loss(self, features: Dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
    """The task loss plus the repel penalty for one batch.

    Args:
      features: Dict with `history_key` `[batch, max_len]`, `item_key`
        `[batch]`, and optionally `sample_weight` `[batch]` and
        `candidate_sampling_probability` `[batch]`.

    Returns:
      The scalar loss.
    """
    user_vectors = self(features, training=training)
    item_ids = features[self._item_key]
    item_vectors = self.item_tower(item_ids)
    loss = self.task(
      user_vectors,
      item_vectors,
      sample_weight=features.get("sample_weight"),
      candidate_sampling_probability=features.get("candidate_sampling_probability"),
      candidate_ids=item_ids,
      compute_metrics=not training,
    )
    if self.repel is not None:
      loss += self.repel(user_vectors)
    return loss

  def get_config(self) -> Dict:
    serialize = tf.keras.layers.serialize
    if self._tower_spec_config is not None:
      towers_config = self._tower_spec_config
    else:
      towers_config = [serialize(tower) for tower in self.user_towers]
    return {
      "name": self.name,
      "item_embedding": serialize(self.item_embedding),
      "user_towers": towers_config,
      "num_towers": self._num_towers,
      "item_tower": self.item_tower.get_config(),
      "task": serialize(self.task),
      "repel": serialize(self.repel) if self.repel is not None else None,
      "fuse": self._fuse,
      "windows": list(self._windows) if self._windows is not None else None,
      "history_encoder": self._history_encoder,
      "normalize": self._normalize,
      "history_key": self._history_key,
      "item_key": self._item_key,
    }

  @classmethod
  def from_config(cls, config: Dict, custom_objects=None) -> "MultiTowerModel":
    config = dict(config)
    deserialize = lambda c: tf.keras.layers.deserialize(c, custom_objects=custom_objects)  # noqa: E731
    item_embedding = deserialize(config.pop("item_embedding"))
    towers_config = config.pop("user_towers")
    user_towers: Union[tf.keras.layers.Layer, List[tf.keras.layers.Layer]] = (
      [deserialize(c) for c in towers_config]
      if isinstance(towers_config, list)
      else deserialize(towers_config)
    )
    item_tower = towers_lib.ItemTower(item_embedding, **config.pop("item_tower"))
    repel = config.pop("repel")
    return cls(
      item_embedding=item_embedding,
      user_towers=user_towers,
      item_tower=item_tower,
      task=deserialize(config.pop("task")),
      repel=deserialize(repel) if repel is not None else None,
      **config,
    )
