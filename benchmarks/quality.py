"""The quality benchmark: MTMI against its baselines under the ComiRec protocol.

Every model is trained on the same prepared data (same split, same pipeline,
same item tower, same budget) with validation-based early stopping on
Recall@50, then evaluated on the test users through the same merged
full-catalogue index. Prints one table (mean ± spread over seeds) and writes
JSON and Markdown.

    python benchmarks/quality.py --dataset amazon-beauty --seeds 0,1,2
    python benchmarks/quality.py --dataset synthetic --ablations
"""

import os
import time

import numpy as np
import tensorflow as tf  # noqa: I001
from absl import app
from absl import flags
from common import RESULTS
from common import load_dataset
from common import machine
from common import markdown_table
from common import write_results

import mtmi_tfrs  # noqa: F401
from mtmi_tfrs import data
from mtmi_tfrs import evaluation
from mtmi_tfrs import layers
from mtmi_tfrs import models
from mtmi_tfrs import tasks

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "synthetic", "synthetic, ml-100k, amazon-beauty, or a path.")
flags.DEFINE_string("format", None, "Format of a dataset path: movielens, amazon or table.")
flags.DEFINE_list(
  "models",
  ["single", "maxsim", "comirec_sa", "comirec_dr", "remi", "mtmi", "mtmi merged negatives"],
  "Rows of the main table.",
)
flags.DEFINE_bool("ablations", False, "Also run the MTMI ablations.")
flags.DEFINE_integer("synthetic_users", 6000, "Users of the synthetic data set.")
flags.DEFINE_integer("synthetic_items", 3000, "Items of the synthetic data set.")
flags.DEFINE_list("seeds", ["0"], "Seeds (split, initialisation, shuffling).")
flags.DEFINE_integer("epochs", 10, "Maximum epochs (passes over all training cut points).")
flags.DEFINE_integer("patience", 2, "Early-stopping patience in epochs (validation Recall@50).")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_integer("dim", 64, "Embedding size.")
flags.DEFINE_integer("num_interests", 4, "K.")
flags.DEFINE_integer("max_len", 20, "History length.")
flags.DEFINE_string(
  "tower", "mean_pool_residual", "User tower of single, maxsim and MTMI (see models.TOWERS)."
)
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_string(
  "output", None, "JSON output (default benchmarks/results/quality_<dataset>.json)."
)

INF = float("inf")


def _mtmi(task=None, repel=True, **kwargs):
  """An MTMI variant: IDW task arguments, and repel on (defaults), off, or its arguments."""
  return dict(kind="mtmi", task=task or {}, repel=repel, **kwargs)


VARIANTS = {
  "single": dict(kind="single"),
  "maxsim": dict(kind="maxsim"),
  "comirec_sa": dict(kind="comirec_sa"),
  "comirec_dr": dict(kind="comirec_dr"),
  "remi": dict(kind="remi"),
  "mtmi": _mtmi(),
  "mtmi merged negatives": _mtmi({"negatives": "merged"}),
}
# Variants of the towers and history encoding (the table's second part).
TOWER_VARIANTS = {
  "mtmi replicas": _mtmi(windows=None),
  "maxsim replicas": dict(kind="maxsim", windows=None),
  "maxsim mixed towers": dict(kind="maxsim", mixed_towers=True),
  "mtmi beta=16": _mtmi({"beta": 16.0}),
  "mtmi K=5": _mtmi(num_interests=5),
  "single id-embedding history": dict(kind="single", history_encoder="item_embedding"),
  "mtmi id-embedding history": _mtmi(history_encoder="item_embedding"),
  "mtmi replicas id-embedding history": _mtmi(windows=None, history_encoder="item_embedding"),
}
ABLATIONS = {
  **{
    f"mtmi beta={b}": _mtmi({"beta": b, "negatives": "per_tower"})
    for b in (0.0, 1.0, 2.0, 4.0, INF)
  },
  "mtmi no repel": _mtmi({"negatives": "per_tower"}, repel=False),
  **{f"mtmi K={k}": _mtmi({"negatives": "per_tower"}, num_interests=k) for k in (1, 2, 8)},
  "mtmi triplet": _mtmi({"loss": "triplet", "negatives": "per_tower"}),
  "mtmi merged beta=inf": _mtmi({"beta": INF, "negatives": "merged"}),
  "mtmi strong repel": _mtmi(repel={"margin": 1.0, "weight": 1.0}),
  "mtmi beta=inf strong repel": _mtmi({"beta": INF}, repel={"margin": 1.0, "weight": 1.0}),
  "mtmi merged strong repel": _mtmi({"negatives": "merged"}, repel={"margin": 1.0, "weight": 1.0}),
  "mtmi mixed towers": _mtmi({"negatives": "per_tower"}, mixed_towers=True),
  "mtmi interpolated negatives": _mtmi({"negatives": "interpolated"}),
  **{
    f"mtmi {negatives} beta={b:g}": _mtmi({"beta": b, "negatives": negatives})
    for negatives in ("merged", "interpolated")
    for b in (2.0, 4.0, 32.0)
  },
  **TOWER_VARIANTS,
}
METRICS = [f"{m}@{n}" for n in (20, 50) for m in ("recall", "ndcg", "hit_rate")]


def _build(variant, prepared):
  spec = dict(variant)
  kind = spec.pop("kind")
  num_interests = spec.pop("num_interests", FLAGS.num_interests)
  task = repel = None
  if kind == "mtmi":
    task = tasks.IDWRetrieval(num_towers=num_interests, **spec.pop("task"))
    repel_spec = spec.pop("repel")
    if repel_spec:
      repel = layers.UserRepel(**(repel_spec if isinstance(repel_spec, dict) else {}))
  feature_size = prepared.feature_vocab.size if prepared.feature_vocab is not None else 0
  return models.build_model(
    kind,
    prepared.num_items,
    dim=FLAGS.dim,
    num_interests=num_interests,
    max_len=FLAGS.max_len,
    tower=FLAGS.tower,
    item_features=prepared.feature_table,
    feature_vocab_size=feature_size,
    task=task,
    repel=repel,
    **spec,
  )


def tower_specialization(model, prepared, truth, examples, k=50):
  """How each tower's own top-k spreads over the ground-truth categories.

  Returns the mean share of a tower's retrievals that lie in the user's true
  interests, the mean share in the tower's dominant category (purity), and
  the mean fraction of a user's interests that are some tower's dominant
  category (coverage).
  """
  history = examples["history"][:500]
  vectors = model(history, training=False).numpy()
  items = model.item_tower(tf.range(2, prepared.num_items)).numpy()
  raw_ids = prepared.item_vocab.tokens
  category = truth.item_category[raw_ids.astype(int)]
  users = prepared.user_vocab.tokens[examples["user"][:500]].astype(int)
  in_interest, purity, coverage = [], [], []
  for row, user in enumerate(users):
    interests = set(truth.user_interests[user][truth.user_interests[user] >= 0])
    dominant = set()
    for tower in range(vectors.shape[1]):
      top = np.argsort(-items @ vectors[row, tower])[:k]
      cats = category[top]
      in_interest.append(np.isin(cats, list(interests)).mean())
      values, counts = np.unique(cats, return_counts=True)
      purity.append(counts.max() / k)
      dominant.add(values[counts.argmax()])
    coverage.append(len(dominant & interests) / len(interests))
  return {
    "tower_in_interest": float(np.mean(in_interest)),
    "tower_purity": float(np.mean(purity)),
    "interest_coverage": float(np.mean(coverage)),
  }


def run_one(name, variant, prepared, truth, seed):
  tf.keras.utils.set_random_seed(seed)
  model = _build(variant, prepared)
  model.compile(optimizer=tf.keras.optimizers.Adam(FLAGS.learning_rate))
  train = data.training_dataset(prepared, FLAGS.batch_size, FLAGS.max_len, seed=seed)
  valid = data.evaluation_arrays(prepared, "valid", FLAGS.max_len)
  test = data.evaluation_arrays(prepared, "test", FLAGS.max_len)
  callbacks = [
    evaluation.RetrievalEvaluation(valid, prepared.num_items, ks=(50,)),
    tf.keras.callbacks.EarlyStopping(
      "val_recall@50", mode="max", patience=FLAGS.patience, restore_best_weights=True
    ),
  ]
  start = time.perf_counter()
  history = model.fit(train, epochs=FLAGS.epochs, callbacks=callbacks, verbose=0)
  seconds = time.perf_counter() - start
  metrics = evaluation.evaluate_model(model, test, prepared.num_items, ks=(20, 50))
  row = {
    "model": name,
    "seed": seed,
    "epochs": len(history.history["loss"]),
    "best_val_recall@50": float(max(history.history["val_recall@50"])),
    "train_seconds": seconds,
    **{m: metrics[m] for m in METRICS},
  }
  if truth is not None and model.num_towers > 1:
    row.update(tower_specialization(model, prepared, truth, test))
  print(
    f"  {name:28s} seed {seed}: recall@50 {row['recall@50']:.4f} "
    f"ndcg@50 {row['ndcg@50']:.4f} ({row['epochs']} epochs, {seconds:.0f}s)",
    flush=True,
  )
  return row


def summarise(rows, names):
  summary = []
  for name in names:
    runs = [r for r in rows if r["model"] == name]
    if not runs:
      continue
    entry = {"model": name, "seeds": len(runs)}
    for key in METRICS + [
      "train_seconds",
      "tower_in_interest",
      "tower_purity",
      "interest_coverage",
    ]:
      values = [r[key] for r in runs if key in r]
      if values:
        entry[key] = float(np.mean(values))
        entry[key + "_std"] = float(np.std(values))
    summary.append(entry)
  return summary


def main(argv):
  del argv
  wall = time.perf_counter()
  log, truth = load_dataset(
    FLAGS.dataset, FLAGS.format, num_users=FLAGS.synthetic_users, num_items=FLAGS.synthetic_items
  )
  names = list(FLAGS.models) + (list(ABLATIONS) if FLAGS.ablations else [])
  variants = {**VARIANTS, **ABLATIONS}
  unknown = [n for n in names if n not in variants]
  if unknown:
    raise app.UsageError(f"unknown model(s) {unknown}; choose from {sorted(variants)}")
  rows, statistics = [], None
  dataset_name = os.path.basename(os.path.normpath(FLAGS.dataset))
  output = FLAGS.output or os.path.join(RESULTS, f"quality_{dataset_name}.json")
  for seed in (int(s) for s in FLAGS.seeds):
    prepared = data.prepare(log, seed=seed)
    statistics = prepared.statistics()
    print(f"seed {seed}: {statistics}", flush=True)
    for name in names:
      rows.append(run_one(name, variants[name], prepared, truth, seed))
      summary = summarise(rows, names)
      columns = ["model", "seeds"] + METRICS + ["train_seconds"]
      if truth is not None:
        columns += ["tower_in_interest", "interest_coverage"]
      table = markdown_table(summary, columns)
      payload = {
        "benchmark": "quality",
        "dataset": FLAGS.dataset,
        "statistics": statistics,
        "flags": {
          f: FLAGS[f].value
          for f in (
            "epochs",
            "patience",
            "batch_size",
            "dim",
            "num_interests",
            "max_len",
            "tower",
            "learning_rate",
            "seeds",
          )
        },
        "machine": machine(),
        "wall_seconds": time.perf_counter() - wall,
        "summary": summary,
        "runs": rows,
      }
      write_results(output, payload, table)
  print(table)
  print(f"wall time {time.perf_counter() - wall:.0f}s on {machine()}")


if __name__ == "__main__":
  app.run(main)
