"""tf.data pipelines for training and evaluation (the ComiRec protocol)."""

from typing import Dict
from typing import Optional

import numpy as np
import tensorflow as tf

from mtmi_tfrs.data.preprocessing import SequenceData

TRAINING_MODES = ("all", "random")


def _windows(items: tf.Tensor, positions: tf.Tensor, starts: tf.Tensor, max_len: int) -> tf.Tensor:
  """Left-padded histories `items[max(start, p - max_len):p]`, `[batch, max_len]`."""
  offsets = positions[:, tf.newaxis] - max_len + tf.range(max_len, dtype=positions.dtype)
  valid = offsets >= starts[:, tf.newaxis]
  return tf.where(valid, tf.gather(items, tf.maximum(offsets, 0)), tf.zeros([], items.dtype))


def training_dataset(
  data: SequenceData,
  batch_size: int = 256,
  max_len: int = 20,
  mode: str = "all",
  split: str = "train",
  shuffle: bool = True,
  seed: Optional[int] = None,
  include_item_features: bool = False,
  drop_remainder: bool = True,
) -> tf.data.Dataset:
  """Batches of training examples from a split's sequences.

  `mode="all"` makes one example per cut point of every sequence (target =
  the item at the cut, history = up to `max_len` items before it);
  `mode="random"` makes one example per user per pass, at a cut point drawn
  anew each pass (ComiRec's sampling). Histories are built by gathering from
  the flat item array inside the pipeline, so memory stays at the size of the
  sequences, not of the examples.

  Args:
    data: Prepared sequences.
    batch_size: Examples per batch.
    max_len: History length (left-padded with 0).
    mode: `"all"` or `"random"`.
    split: Which users' sequences to use.
    shuffle: Whether examples are shuffled (each pass anew).
    seed: Seed of the shuffling and sampling.
    include_item_features: Whether each example carries `item_features`
      `[max_features]`, the positive item's row of the feature table.
    drop_remainder: Whether the last partial batch is dropped (in-batch
      negatives want full batches).

  Returns:
    Dataset of `{"history": [batch, max_len] int32, "item_id": [batch] int32}`.

  Raises:
    ValueError: for an unknown mode or split, or a split without examples.
  """
  if mode not in TRAINING_MODES:
    raise ValueError(f"mode must be one of {TRAINING_MODES}, got {mode!r}.")
  if split not in data.splits:
    raise ValueError(f"split must be one of {sorted(data.splits)}, got {split!r}.")
  if include_item_features and data.feature_table is None:
    raise ValueError("include_item_features=True but the data has no item features.")
  users = data.splits[split]
  starts = data.offsets[users]
  lengths = data.offsets[users + 1] - starts
  users_with_examples = lengths >= 2
  starts, lengths = starts[users_with_examples], lengths[users_with_examples]
  if not len(starts):
    raise ValueError(f"split {split!r} has no user with at least 2 events.")
  items = tf.constant(data.items, dtype=tf.int32)
  features = tf.constant(data.feature_table) if include_item_features else None

  if mode == "all":
    counts = lengths - 1
    example_starts = np.repeat(starts, counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    dataset = tf.data.Dataset.from_tensor_slices((example_starts + 1 + within, example_starts))
    size = len(example_starts)
  else:
    dataset = tf.data.Dataset.from_tensor_slices((starts, lengths))
    size = len(starts)
  if shuffle:
    dataset = dataset.shuffle(size, seed=seed, reshuffle_each_iteration=True)
  dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
  if mode == "random":
    # One seed per batch from a sequential source, so that the parallel map
    # below draws the same cuts for the same batch whatever its call order.
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip(dataset, batch_seeds)

  def to_examples(first, second):
    if mode == "all":
      positions, example_starts = first, second
    else:
      (example_starts, example_lengths), batch_seed = first, second
      cut = tf.random.stateless_uniform(tf.shape(example_starts), seed=batch_seed, dtype=tf.float32)
      span = tf.cast(example_lengths - 1, tf.float32)
      positions = (
        example_starts
        + 1
        + tf.cast(tf.minimum(tf.floor(cut * span), span - 1), example_starts.dtype)
      )
    example = {
      "history": _windows(items, positions, example_starts, max_len),
      "item_id": tf.gather(items, positions),
    }
    if features is not None:
      example["item_features"] = tf.gather(features, example["item_id"])
    return example

  return dataset.map(to_examples, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def evaluation_arrays(
  data: SequenceData, split: str = "test", max_len: int = 20, history_fraction: float = 0.8
) -> Dict[str, np.ndarray]:
  """Histories and targets of the ComiRec protocol for one split.

  For each user of the split, the first `int(history_fraction * n)` events
  of the time-ordered sequence are the history (its last `max_len` items,
  left-padded) and the remaining events are the targets (distinct items,
  0-padded). Users with an empty history or no target are left out and
  counted in `report["evaluation_users_skipped"]`.

  Returns:
    `{"user": [users] user rows, "history": [users, max_len] int32,
    "targets": [users, max_targets] int32}`.
  """
  if split not in data.splits:
    raise ValueError(f"split must be one of {sorted(data.splits)}, got {split!r}.")
  users = data.splits[split]
  starts = data.offsets[users]
  lengths = data.offsets[users + 1] - starts
  cuts = (lengths * history_fraction).astype(np.int64)
  usable = (cuts >= 1) & (cuts < lengths)
  data.report[f"evaluation_users_skipped_{split}"] = int((~usable).sum())
  users, starts, lengths, cuts = users[usable], starts[usable], lengths[usable], cuts[usable]
  offsets = starts[:, None] + cuts[:, None] - max_len + np.arange(max_len)[None, :]
  history = np.where(offsets >= starts[:, None], data.items[np.maximum(offsets, 0)], 0).astype(
    np.int32
  )
  num_targets = lengths - cuts
  width = int(num_targets.max()) if len(users) else 1
  positions = starts[:, None] + cuts[:, None] + np.arange(width)[None, :]
  in_range = np.arange(width)[None, :] < num_targets[:, None]
  targets = np.where(in_range, data.items[np.minimum(positions, len(data.items) - 1)], 0)
  # Repeated targets count once: sort each row, blank repeats, push blanks right.
  targets = np.sort(targets, axis=1)
  repeated = np.zeros_like(targets, dtype=bool)
  repeated[:, 1:] = targets[:, 1:] == targets[:, :-1]
  targets = np.where(repeated, 0, targets)
  targets = -np.sort(-targets, axis=1)
  return {"user": users, "history": history, "targets": targets.astype(np.int32)}


def evaluation_dataset(
  data: SequenceData, split: str = "test", max_len: int = 20, batch_size: int = 512
) -> tf.data.Dataset:
  """`evaluation_arrays` as a batched dataset of `{"history", "targets"}`."""
  arrays = evaluation_arrays(data, split, max_len)
  return tf.data.Dataset.from_tensor_slices(
    {"history": arrays["history"], "targets": arrays["targets"]}
  ).batch(batch_size)
