"""Data preparation: real data set statistics, and a 10-million-interaction scale test.

    python benchmarks/data_preparation.py                  # ml-100k + amazon-beauty + 10M
    python benchmarks/data_preparation.py --scale 10000000 --skip_real

For each data set: load, 5-core filter, order, split, and build one epoch of
training batches plus the evaluation arrays; prints statistics and times, and
the peak resident memory of the process. Writes JSON.
"""

import os
import resource
import tempfile
import time

import numpy as np
import pandas as pd
from absl import app
from absl import flags
from common import RESULTS
from common import load_dataset
from common import machine
from common import markdown_table
from common import write_results

from mtmi_tfrs import data

FLAGS = flags.FLAGS
flags.DEFINE_integer("scale", 10_000_000, "Interactions of the generated scale log (0: skip).")
flags.DEFINE_bool("skip_real", False, "Skip ml-100k and amazon-beauty.")
flags.DEFINE_string("output", os.path.join(RESULTS, "data_preparation.json"), "JSON output path.")


def _peak_rss_gib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _measure(name, load):
  start = time.perf_counter()
  log = load()
  loaded = time.perf_counter()
  prepared = data.prepare(log, seed=0)
  prepared_at = time.perf_counter()
  batches = sum(1 for _ in data.training_dataset(prepared, 1024, 20, shuffle=False))
  valid = data.evaluation_arrays(prepared, "valid")
  test = data.evaluation_arrays(prepared, "test")
  done = time.perf_counter()
  row = {
    "dataset": name,
    **prepared.statistics(),
    "train_batches_of_1024": batches,
    "valid_examples": len(valid["user"]),
    "test_examples": len(test["user"]),
    "load_seconds": loaded - start,
    "prepare_seconds": prepared_at - loaded,
    "pipeline_epoch_seconds": done - prepared_at,
    "total_seconds": done - start,
    "peak_rss_gib": _peak_rss_gib(),
  }
  print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
  return row


def _scale_log(path, size, seed=0):
  """Writes a CSV log of `size` events: 500k users, 200k items, Zipf popularity."""
  rng = np.random.default_rng(seed)
  users = rng.integers(1, 500_001, size)
  items = np.minimum(rng.zipf(1.3, size), 200_000)
  times = rng.integers(1_500_000_000, 1_700_000_000, size)
  pd.DataFrame({"user_id": users, "item_id": items, "timestamp": times}).to_csv(path, index=False)


def main(argv):
  del argv
  rows = []
  if not FLAGS.skip_real:
    for name in ("ml-100k", "amazon-beauty"):
      rows.append(_measure(name, lambda n=name: load_dataset(n)[0]))
  if FLAGS.scale:
    with tempfile.TemporaryDirectory() as directory:
      path = os.path.join(directory, "scale.csv")
      start = time.perf_counter()
      _scale_log(path, FLAGS.scale)
      print(f"generated {FLAGS.scale:,} events in {time.perf_counter() - start:.0f}s", flush=True)
      rows.append(_measure(f"generated {FLAGS.scale:,}", lambda: data.load_table(path)))
  columns = [
    "dataset",
    "users",
    "items",
    "interactions",
    "mean_sequence_length",
    "train_users",
    "valid_users",
    "test_users",
    "prepare_seconds",
    "pipeline_epoch_seconds",
    "total_seconds",
    "peak_rss_gib",
  ]
  table = markdown_table(rows, columns)
  print(table)
  write_results(
    FLAGS.output, {"benchmark": "data_preparation", "machine": machine(), "rows": rows}, table
  )


if __name__ == "__main__":
  app.run(main)
