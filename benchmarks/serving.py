"""Serving latency of exported SavedModels: brute force vs ScaNN, and ScaNN recall.

    python benchmarks/serving.py --catalogues 100000,1000000

For each catalogue size: a MultiTowerModel (K = 4, dim 64) with a clustered
synthetic item table, exported twice (brute force, ScaNN) with k = 100; then
single-user requests through `serving_default` of the loaded SavedModel:
queries/s, p50 and p99 latency, and ScaNN's recall@100 against brute force.
"""

import os
import tempfile
import time

import numpy as np
import scann  # noqa: F401  (registers the ScaNN ops for loading)
import tensorflow as tf  # noqa: I001
from absl import app
from absl import flags
from common import RESULTS
from common import machine
from common import markdown_table
from common import write_results

import mtmi_tfrs  # noqa: F401
from mtmi_tfrs import data
from mtmi_tfrs import export
from mtmi_tfrs import models
from mtmi_tfrs import towers

FLAGS = flags.FLAGS
flags.DEFINE_list("catalogues", ["100000", "1000000"], "Catalogue sizes.")
flags.DEFINE_integer("requests", 300, "Timed single-user requests per export.")
flags.DEFINE_integer("k", 100, "Results per request.")
flags.DEFINE_string("output", os.path.join(RESULTS, "serving.json"), "JSON output path.")

DIM, K, MAX_LEN = 64, 4, 20


def _model(num_items, seed=0):
  """A K = 4 model whose item table is clustered like trained embeddings."""
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(1000, DIM))
  table = centers[rng.integers(0, 1000, num_items)] + 0.5 * rng.normal(size=(num_items, DIM))
  # Weights are set after building: a Constant initializer would copy the whole
  # table into the layer config that the SavedModel stores as JSON.
  embedding = tf.keras.layers.Embedding(num_items, DIM)
  model = models.MultiTowerModel(
    embedding, towers.AttentionPoolTower(max_len=MAX_LEN, output_dim=None), num_towers=K
  )
  model(tf.zeros([1, MAX_LEN], tf.int32))
  embedding.set_weights([table.astype("float32")])
  return model


def _time_requests(signature, histories):
  signature(history=tf.constant(histories[:1], tf.int64))  # warm-up
  latencies, results = [], []
  for history in histories:
    start = time.perf_counter()
    out = signature(history=tf.constant(history[np.newaxis], tf.int64))
    latencies.append(time.perf_counter() - start)
    results.append(out["item_ids"].numpy()[0])
  latencies = np.array(latencies) * 1000
  return {
    "queries_per_s": len(histories) / (latencies.sum() / 1000),
    "p50_ms": float(np.percentile(latencies, 50)),
    "p99_ms": float(np.percentile(latencies, 99)),
  }, results


def main(argv):
  del argv
  rows = []
  rng = np.random.default_rng(1)
  for num_items in (int(c) for c in FLAGS.catalogues):
    vocab = data.Vocabulary(np.arange(1, num_items - 1, dtype=np.int64))
    model = _model(vocab.size)
    histories = rng.integers(1, num_items - 1, size=(FLAGS.requests, MAX_LEN)).astype(np.int64)
    exact = None
    with tempfile.TemporaryDirectory() as directory:
      for index in ("brute_force", "scann"):
        start = time.perf_counter()
        path = export.export_saved_model(
          model, vocab, os.path.join(directory, index), MAX_LEN, k=FLAGS.k, index=index
        )
        export_seconds = time.perf_counter() - start
        signature = tf.saved_model.load(path).signatures["serving_default"]
        timing, results = _time_requests(signature, histories)
        row = {"catalogue": num_items, "index": index, "export_seconds": export_seconds, **timing}
        if index == "brute_force":
          exact = results
        else:
          row["recall_vs_brute_force"] = float(
            np.mean([len(set(a) & set(b)) / FLAGS.k for a, b in zip(exact, results)])
          )
        print(row, flush=True)
        rows.append(row)
  for row in rows:
    baseline = next(
      r for r in rows if r["catalogue"] == row["catalogue"] and r["index"] == "brute_force"
    )
    row["speedup_vs_brute_force"] = row["queries_per_s"] / baseline["queries_per_s"]
  columns = [
    "catalogue",
    "index",
    "queries_per_s",
    "p50_ms",
    "p99_ms",
    "speedup_vs_brute_force",
    "recall_vs_brute_force",
    "export_seconds",
  ]
  table = markdown_table(rows, columns)
  print(table)
  write_results(
    FLAGS.output,
    {
      "benchmark": "serving",
      "machine": machine(),
      "k": FLAGS.k,
      "num_towers": K,
      "dim": DIM,
      "rows": rows,
    },
    table,
  )


if __name__ == "__main__":
  app.run(main)
