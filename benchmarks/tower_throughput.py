"""Training throughput of K = 1 vs K = 4 user towers, fused and separate.

Trains MultiTowerModel on the synthetic default data: after a warm-up, each
configuration trains `steps` steps per round, round-robin over several rounds,
and the median time gives examples/s and the time ratio against K = 1. Prints a
table and writes JSON.

A step is the model's compiled `train_step` (forward, loss, backward, Adam
update) on batches materialised in memory, so neither the input pipeline nor
`model.fit`'s bookkeeping is timed: on the 2-core machine `fit` rounds
measured in steps of about 1.27 s whatever the model, which hid the towers'
cost.

    python benchmarks/tower_throughput.py --steps 100 --rounds 5
"""

import os
import time

import numpy as np
import tensorflow as tf  # noqa: I001
from absl import app
from absl import flags
from common import RESULTS
from common import machine
from common import markdown_table
from common import write_results

import mtmi_tfrs  # noqa: F401  (chooses Keras 2 before TensorFlow loads)
from mtmi_tfrs import data
from mtmi_tfrs import models
from mtmi_tfrs import towers

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 100, "Timed training steps per configuration and round.")
flags.DEFINE_integer("rounds", 5, "Round-robin rounds over the configurations (median).")
flags.DEFINE_integer("warmup", 20, "Untimed steps first (tracing, allocation).")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_integer("dim", 64, "Embedding and tower size.")
flags.DEFINE_integer("max_len", 20, "History length.")
flags.DEFINE_list(
  "towers",
  ["mean_pool_identity", "attention_pool_identity", "gru", "mean_pool"],
  "Tower types to measure.",
)
flags.DEFINE_string("output", os.path.join(RESULTS, "tower_throughput.json"), "JSON output path.")


def _spec(kind, dim):
  if kind == "attention_pool_identity":
    return towers.AttentionPoolTower(FLAGS.max_len, 2 * dim, output_dim=None)
  if kind == "gru":
    return towers.GRUTower(dim, dim)
  if kind == "mean_pool":
    return towers.MeanPoolTower((2 * dim,), dim)
  if kind == "mean_pool_identity":
    return towers.MeanPoolTower((), output_dim=None)
  raise ValueError(f"unknown tower {kind!r}")


def _compiled_model(prepared, kind, num_towers, fuse):
  tf.keras.utils.set_random_seed(0)
  model = models.MultiTowerModel(
    tf.keras.layers.Embedding(prepared.num_items, FLAGS.dim),
    _spec(kind, FLAGS.dim),
    num_towers=num_towers,
    fuse=fuse,
  )
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
  return model


def _seconds(train_step, batches):
  start = time.perf_counter()
  for batch in batches:
    logs = train_step(batch)
  logs["loss"].numpy()  # Waits for the last step.
  return time.perf_counter() - start


def main(argv):
  del argv
  log, _ = data.make_synthetic(seed=0)
  prepared = data.prepare(log, seed=0)
  dataset = data.training_dataset(
    prepared, batch_size=FLAGS.batch_size, max_len=FLAGS.max_len, seed=0
  ).repeat()
  batches = list(dataset.take(FLAGS.warmup + FLAGS.steps))
  rows = []
  for kind in FLAGS.towers:
    configs = [(1, True, "single"), (4, True, "fused"), (4, False, "separate")]
    train_steps = [
      tf.function(_compiled_model(prepared, kind, k, fuse).train_step) for k, fuse, _ in configs
    ]
    for train_step in train_steps:
      _seconds(train_step, batches[: FLAGS.warmup])
    # Round-robin rounds, median per configuration: background load hits all alike.
    times = [[] for _ in configs]
    for _ in range(FLAGS.rounds):
      for index, train_step in enumerate(train_steps):
        times[index].append(_seconds(train_step, batches[FLAGS.warmup :]))
    medians = [float(np.median(t)) for t in times]
    for (k, _, form), seconds in zip(configs, medians):
      rows.append(
        {
          "tower": kind,
          "K": k,
          "form": form,
          "step_ms": 1000.0 * seconds / FLAGS.steps,
          "examples_per_s": FLAGS.steps * FLAGS.batch_size / seconds,
          "time_vs_k1": seconds / medians[0],
        }
      )
  table = markdown_table(rows, ["tower", "K", "form", "step_ms", "examples_per_s", "time_vs_k1"])
  print(table)
  write_results(
    FLAGS.output,
    {
      "benchmark": "tower_throughput",
      "data": "synthetic default (6,000 users, 3,000 items), train split, all cut points",
      "batch_size": FLAGS.batch_size,
      "dim": FLAGS.dim,
      "max_len": FLAGS.max_len,
      "steps": FLAGS.steps,
      "machine": machine(),
      "rows": rows,
    },
    table,
  )


if __name__ == "__main__":
  app.run(main)
