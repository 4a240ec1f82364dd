"""The `mtmi-tfrs` command: quickstart, train, evaluate, export, recommend.

Usage:
  mtmi-tfrs quickstart [--run_dir=runs/mtmi]   (3 epochs unless --epochs is given)
  mtmi-tfrs train --data=PATH --format=movielens|amazon|table|synthetic [flags]
  mtmi-tfrs evaluate --run_dir=RUN
  mtmi-tfrs export --run_dir=RUN [--index=brute_force|scann]
  mtmi-tfrs recommend --saved_model=EXPORT/1 --history="id1 id2 id3"

Every flag can also come from --config (a JSON or YAML file of flag names and
values); flags given on the command line win. Each run writes the resolved
settings to RUN/config.json, so `mtmi-tfrs train --config=RUN/config.json`
repeats it.
"""

import json
import os
import sys
import time
from typing import Dict
from typing import Optional

# TensorFlow's C++ start-up chatter hides the command's own output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: I001
import tensorflow as tf
from absl import app
from absl import flags
from absl import logging

import mtmi_tfrs  # noqa: F401  (chooses Keras 2 before TensorFlow loads)
from mtmi_tfrs import data
from mtmi_tfrs import evaluation
from mtmi_tfrs import export as export_lib
from mtmi_tfrs import layers
from mtmi_tfrs import models
from mtmi_tfrs import plots
from mtmi_tfrs import tasks
from mtmi_tfrs.tasks import idw_retrieval

COMMANDS = ("quickstart", "train", "evaluate", "export", "recommend")
FORMATS = ("synthetic", "movielens", "amazon", "table")
QUICKSTART_EPOCHS = 3
KINDS = ("mtmi", "single", "maxsim", "comirec_sa", "comirec_dr", "remi")

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "JSON or YAML file with flag values (command line wins).")
flags.DEFINE_string(
  "run_dir", "runs/mtmi", "Directory for data, checkpoints, logs, plots, exports."
)
# Data.
flags.DEFINE_string("data", "synthetic", "Interaction file or directory, or 'synthetic'.")
flags.DEFINE_enum("format", "synthetic", FORMATS, "Layout of --data.")
flags.DEFINE_string(
  "item_features", None, "Item feature table (CSV/TSV/Parquet) for the item tower."
)
flags.DEFINE_string(
  "amazon_metadata", None, "Amazon item metadata (JSON lines) for --format=amazon."
)
flags.DEFINE_string("user_column", "user_id", "User column of a --format=table file.")
flags.DEFINE_string("item_column", "item_id", "Item column of a --format=table file.")
flags.DEFINE_string("timestamp_column", "timestamp", "Timestamp column of a --format=table file.")
flags.DEFINE_integer("min_count", 5, "k of the k-core filter.")
flags.DEFINE_integer("synthetic_users", 6000, "Users of the synthetic data.")
flags.DEFINE_integer("synthetic_items", 3000, "Items of the synthetic data.")
flags.DEFINE_integer("synthetic_categories", 30, "Categories of the synthetic data.")
flags.DEFINE_integer("seed", 0, "Seed of the split, initialisation and shuffling.")
# Model.
flags.DEFINE_enum("model", "mtmi", KINDS, "Model to train (mtmi or a baseline).")
flags.DEFINE_enum("tower", "mean_pool_residual", list(models.TOWERS), "User tower type.")
flags.DEFINE_bool("mixed_towers", False, "Cycle tower types across the K towers.")
flags.DEFINE_integer("num_interests", 4, "K, user towers (interests) per user.")
flags.DEFINE_string(
  "windows",
  "geometric",
  "Recency windows of the K towers: geometric (last 1 item ... whole history), none "
  "(every tower reads the whole history), or K comma-separated lengths.",
)
flags.DEFINE_enum(
  "history_encoder",
  "item_tower",
  list(models.HISTORY_ENCODERS),
  "Encoder of history items: the item tower (with item features) or the id embedding.",
)
flags.DEFINE_integer("dim", 64, "Embedding and user/item vector size.")
flags.DEFINE_integer("max_len", 20, "History length.")
flags.DEFINE_float("alpha", 5.0, "IDW distance scaling (inverse temperature).")
flags.DEFINE_float("beta", 8.0, "IDW divergence (inf: nearest tower only).")
flags.DEFINE_enum("loss", "softmax", list(idw_retrieval.LOSSES), "IDW per-tower loss.")
flags.DEFINE_enum("negatives", "per_tower", list(idw_retrieval.NEGATIVES), "IDW negative scoring.")
flags.DEFINE_float("repel_weight", 0.1, "Repel regulariser weight (0 disables it).")
flags.DEFINE_float("repel_margin", 0.5, "Repel regulariser margin.")
# Training.
flags.DEFINE_integer("epochs", 10, "Maximum epochs.")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_integer("patience", 2, "Early-stopping patience on validation Recall@50.")
flags.DEFINE_integer("verbose", 1, "Keras progress: 0 silent, 1 progress bar, 2 one line/epoch.")
# Serving.
flags.DEFINE_enum("index", "brute_force", list(export_lib.INDEXES), "Index of the export.")
flags.DEFINE_integer("k", 10, "Recommendations per user.")
flags.DEFINE_string("export_dir", None, "Export base directory (default RUN/export).")
flags.DEFINE_string("saved_model", None, "Exported version directory for `recommend`.")
flags.DEFINE_multi_string("history", [], "A user's item ids, oldest first, space/comma separated.")
flags.DEFINE_string("history_file", None, "File with one history per line for `recommend`.")

SETTINGS = [
  "data", "format", "item_features", "amazon_metadata", "user_column", "item_column",
  "timestamp_column", "min_count", "synthetic_users", "synthetic_items",
  "synthetic_categories", "seed", "model", "tower", "mixed_towers", "num_interests",
  "windows", "history_encoder", "dim", "max_len", "alpha", "beta", "loss", "negatives",
  "repel_weight", "repel_margin", "epochs", "batch_size", "learning_rate", "patience", "index", "k",
]  # fmt: skip


class CommandError(Exception):
  """A user-facing error: printed as one line, exit status 2."""


def _apply_config_file() -> None:
  if not FLAGS.config:
    return
  if not os.path.exists(FLAGS.config):
    raise CommandError(f"--config {FLAGS.config}: file not found.")
  with open(FLAGS.config, encoding="utf-8") as handle:
    if FLAGS.config.endswith((".yaml", ".yml")):
      import yaml  # pylint: disable=g-import-not-at-top

      values = yaml.safe_load(handle) or {}
    else:
      values = json.load(handle)
  for name, value in values.items():
    if name not in FLAGS:
      raise CommandError(f"--config {FLAGS.config}: unknown setting {name!r}.")
    if not FLAGS[name].present:
      FLAGS[name].value = value


def _settings() -> Dict:
  return {name: FLAGS[name].value for name in SETTINGS}


def _write_json(path: str, payload) -> None:
  temporary = path + ".tmp"
  with open(temporary, "w", encoding="utf-8") as handle:
    json.dump(payload, handle, indent=2, default=float)
  os.replace(temporary, path)


def _load_log(settings: Dict):
  """The interaction log named by the settings, and synthetic ground truth."""
  fmt, path = settings["format"], settings["data"]
  if fmt == "synthetic" or path == "synthetic":
    return data.make_synthetic(
      num_users=settings["synthetic_users"],
      num_items=settings["synthetic_items"],
      num_categories=settings["synthetic_categories"],
      seed=settings["seed"],
    )
  if not os.path.exists(path):
    raise CommandError(f"--data {path}: no such file or directory.")
  if fmt == "movielens":
    log = data.load_movielens(path)
  elif fmt == "amazon":
    log = data.load_amazon(path, settings["amazon_metadata"])
  else:
    log = data.load_table(
      path, settings["user_column"], settings["item_column"], settings["timestamp_column"]
    )
  if settings["item_features"]:
    log.item_features = data.load_item_features(settings["item_features"])
  return log, None


def _windows(setting: str, num_interests: int, max_len: int):
  if setting == "none":
    return None
  if setting == "geometric":
    if num_interests > max_len:
      raise CommandError(
        f"--windows=geometric needs --max_len >= --num_interests, got {max_len} < {num_interests}."
      )
    return setting
  try:
    windows = [int(w) for w in setting.split(",")]
  except ValueError:
    windows = []
  if len(windows) != num_interests or min(windows) < 1:
    raise CommandError(
      f"--windows={setting}: expected geometric, none, or {num_interests} positive "
      "comma-separated lengths (one per tower)."
    )
  return windows


def _build(settings: Dict, prepared: data.SequenceData, kind: Optional[str] = None):
  kind = kind or settings["model"]
  num_interests = 1 if kind == "single" else settings["num_interests"]
  task = repel = None
  if kind == "mtmi":
    task = tasks.IDWRetrieval(
      alpha=settings["alpha"],
      beta=settings["beta"],
      loss=settings["loss"],
      negatives=settings["negatives"],
      num_towers=num_interests,
    )
    if settings["repel_weight"] > 0:
      repel = layers.UserRepel(settings["repel_margin"], settings["repel_weight"])
  features = prepared.feature_table
  return models.build_model(
    kind,
    prepared.num_items,
    dim=settings["dim"],
    num_interests=num_interests,
    max_len=settings["max_len"],
    tower=settings["tower"],
    item_features=features,
    feature_vocab_size=prepared.feature_vocab.size if features is not None else 0,
    task=task,
    repel=repel,
    mixed_towers=settings["mixed_towers"],
    windows=_windows(settings["windows"], num_interests, settings["max_len"]),
    history_encoder=settings["history_encoder"],
    temperature=1.0 / (2.0 * settings["alpha"]),
  )


def _item_categories(prepared: data.SequenceData, truth) -> Optional[np.ndarray]:
  """A category per real item: the synthetic truth, else the first item feature."""
  if truth is not None:
    return truth.item_category[prepared.item_vocab.tokens.astype(int)]
  if prepared.feature_table is not None:
    return prepared.feature_table[2:, 0].astype(int) - 1
  return None


def _train(
  settings: Dict, prepared, truth, run_dir: str, kind: Optional[str] = None, verbose: int = 1
):
  """Trains one model with checkpoints, TensorBoard and early stopping; returns results."""
  os.makedirs(run_dir, exist_ok=True)
  tf.keras.utils.set_random_seed(settings["seed"])
  model = _build(settings, prepared, kind)
  model.compile(optimizer=tf.keras.optimizers.Adam(settings["learning_rate"]))
  train = data.training_dataset(
    prepared, settings["batch_size"], settings["max_len"], seed=settings["seed"]
  )
  valid = data.evaluation_arrays(prepared, "valid", settings["max_len"])
  checkpoint = os.path.join(run_dir, "checkpoints", "best")
  callbacks = [
    evaluation.RetrievalEvaluation(valid, prepared.num_items, ks=(20, 50)),
    tf.keras.callbacks.EarlyStopping(
      "val_recall@50", mode="max", patience=settings["patience"], restore_best_weights=True
    ),
    tf.keras.callbacks.ModelCheckpoint(
      checkpoint, monitor="val_recall@50", mode="max", save_best_only=True, save_weights_only=True
    ),
    tf.keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")),
  ]
  start = time.perf_counter()
  history = model.fit(train, epochs=settings["epochs"], callbacks=callbacks, verbose=verbose)
  seconds = time.perf_counter() - start
  test = data.evaluation_arrays(prepared, "test", settings["max_len"])
  metrics = evaluation.evaluate_model(model, test, prepared.num_items, ks=(20, 50))
  metrics["train_seconds"] = seconds
  history_values = {k: [float(v) for v in vs] for k, vs in history.history.items()}
  _write_json(os.path.join(run_dir, "history.json"), history_values)
  _write_json(os.path.join(run_dir, "metrics.json"), metrics)
  plots.plot_training_curves(history_values, os.path.join(run_dir, "training_curves.png"))
  categories = _item_categories(prepared, truth)
  if categories is not None and model.num_towers > 1:
    shares = plots.tower_category_shares(
      model(test["history"][:500], training=False).numpy(),
      model.item_tower(tf.range(2, prepared.num_items)).numpy(),
      categories,
    )
    plots.plot_tower_categories(shares, os.path.join(run_dir, "tower_categories.png"))
  return model, metrics


def _prepare(settings: Dict, run_dir: str):
  log, truth = _load_log(settings)
  prepared = data.prepare(log, min_count=settings["min_count"], seed=settings["seed"])
  prepared.save(os.path.join(run_dir, "data"))
  return prepared, truth


def _print_metrics_table(rows: Dict[str, Dict]) -> None:
  keys = [
    "recall@20",
    "recall@50",
    "ndcg@20",
    "ndcg@50",
    "hit_rate@20",
    "hit_rate@50",
    "train_seconds",
  ]
  print(f"{'model':14s}" + "".join(f"{k:>14s}" for k in keys))
  for name, metrics in rows.items():
    print(f"{name:14s}" + "".join(f"{metrics[k]:14.4f}" for k in keys))


def command_train() -> None:
  settings = _settings()
  run_dir = FLAGS.run_dir
  os.makedirs(run_dir, exist_ok=True)
  _write_json(os.path.join(run_dir, "config.json"), settings)
  prepared, truth = _prepare(settings, run_dir)
  print(f"data: {prepared.statistics()}")
  _, metrics = _train(settings, prepared, truth, run_dir, verbose=FLAGS.verbose)
  _print_metrics_table({settings["model"]: metrics})
  print(f"run directory: {run_dir} (config.json, checkpoints/, logs/, metrics.json, plots)")


def _load_run(run_dir: str):
  config_path = os.path.join(run_dir, "config.json")
  if not os.path.exists(config_path):
    raise CommandError(f"--run_dir {run_dir}: not a training run (no config.json).")
  with open(config_path, encoding="utf-8") as handle:
    settings = json.load(handle)
  prepared = data.SequenceData.load(os.path.join(run_dir, "data"))
  model = _build(settings, prepared)
  model(tf.zeros([1, settings["max_len"]], tf.int32))
  model.item_tower(tf.range(2))
  model.load_weights(os.path.join(run_dir, "checkpoints", "best")).expect_partial()
  return settings, prepared, model


def command_evaluate() -> None:
  settings, prepared, model = _load_run(FLAGS.run_dir)
  test = data.evaluation_arrays(prepared, "test", settings["max_len"])
  metrics = evaluation.evaluate_model(model, test, prepared.num_items, ks=(20, 50))
  for name, value in metrics.items():
    print(f"{name:12s} {value:.4f}" if isinstance(value, float) else f"{name:12s} {value}")


def command_export() -> None:
  settings, prepared, model = _load_run(FLAGS.run_dir)
  base = FLAGS.export_dir or os.path.join(FLAGS.run_dir, "export")
  path = export_lib.export_saved_model(
    model, prepared.item_vocab, base, settings["max_len"], k=FLAGS.k, index=FLAGS.index
  )
  print(f"exported {FLAGS.index} SavedModel to {path}")


def _parse_histories():
  lines = list(FLAGS.history)
  if FLAGS.history_file:
    if not os.path.exists(FLAGS.history_file):
      raise CommandError(f"--history_file {FLAGS.history_file}: file not found.")
    with open(FLAGS.history_file, encoding="utf-8") as handle:
      lines += [line for line in handle if line.strip()]
  if not lines:
    raise CommandError("recommend needs --history or --history_file.")
  return [line.replace(",", " ").split() for line in lines]


def recommend(saved_model: str, histories, k: int):
  """Runs an exported SavedModel on raw-id histories; returns its outputs."""
  info_path = os.path.join(saved_model, "assets.extra", "export.json")
  if not os.path.exists(info_path):
    raise CommandError(f"--saved_model {saved_model}: not an mtmi-tfrs export.")
  with open(info_path, encoding="utf-8") as handle:
    info = json.load(handle)
  if info["index"] == "scann":
    import scann  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  width = max(len(h) for h in histories)
  if info["id_dtype"] == "int64":
    try:
      padded = [[int(i) for i in h] + [-1] * (width - len(h)) for h in histories]
    except ValueError as error:
      raise CommandError(f"this export takes integer item ids: {error}") from None
    history = tf.constant(padded, tf.int64)
  else:
    history = tf.constant([h + [""] * (width - len(h)) for h in histories])
  loaded = tf.saved_model.load(saved_model)
  outputs = loaded.signatures["serving_k"](history=history, k=tf.constant(k, tf.int32))
  return {name: value.numpy() for name, value in outputs.items()}


def _print_recommendations(histories, outputs, categories=None) -> None:
  for row, history in enumerate(histories):
    print(f"history: {' '.join(map(str, history))}")
    for rank, (item, score, interest) in enumerate(
      zip(outputs["item_ids"][row], outputs["scores"][row], outputs["interests"][row]), 1
    ):
      if interest < 0:
        print("  (no recommendation: no known item in the history)")
        break
      item = item.decode() if isinstance(item, bytes) else int(item)
      extra = f"  category {categories[item]}" if categories is not None else ""
      print(f"  {rank:2d}. item {item}  score {score:.3f}  interest {interest}{extra}")


def command_recommend() -> None:
  if not FLAGS.saved_model:
    raise CommandError("recommend needs --saved_model (an exported version directory).")
  histories = _parse_histories()
  _print_recommendations(histories, recommend(FLAGS.saved_model, histories, FLAGS.k))


def command_quickstart() -> None:
  settings = _settings()
  run_dir = FLAGS.run_dir
  os.makedirs(run_dir, exist_ok=True)
  settings.update(format="synthetic", data="synthetic")
  if not FLAGS["epochs"].present and FLAGS.epochs == FLAGS["epochs"].default:
    # A quick start: three passes over the data train both models in about two minutes.
    settings["epochs"] = QUICKSTART_EPOCHS
  _write_json(os.path.join(run_dir, "config.json"), settings)
  prepared, truth = _prepare(settings, run_dir)
  print(f"synthetic data: {prepared.statistics()}")
  results = {}
  for kind in ("single", "mtmi"):
    print(f"training {kind} (K={1 if kind == 'single' else settings['num_interests']}) ...")
    model, results[kind] = _train(
      settings, prepared, truth, os.path.join(run_dir, kind), kind, verbose=FLAGS.verbose
    )
  _print_metrics_table(results)
  path = export_lib.export_saved_model(
    model,
    prepared.item_vocab,
    os.path.join(run_dir, "export"),
    settings["max_len"],
    k=settings["k"],
  )
  print(f"exported MTMI SavedModel to {path}")
  test = data.evaluation_arrays(prepared, "test", settings["max_len"])
  histories = [list(prepared.item_vocab.ids(h[h > 0])) for h in test["history"][:2]]
  categories = dict(
    zip(
      prepared.item_vocab.tokens.tolist(),
      truth.item_category[prepared.item_vocab.tokens.astype(int)].tolist(),
    )
  )
  print("recommendations for two test users (category = ground-truth interest):")
  for history in histories:
    print(f"  history categories: {[categories[i] for i in history]}")
  _print_recommendations(histories, recommend(path, histories, settings["k"]), categories)
  print(f"plots: {run_dir}/mtmi/training_curves.png, {run_dir}/mtmi/tower_categories.png")


def main(argv) -> None:
  if len(argv) != 2 or argv[1] not in COMMANDS:
    given = " ".join(argv[1:]) or "nothing"
    print(
      f"mtmi-tfrs: expected one command of {', '.join(COMMANDS)}, got {given}. "
      "See mtmi-tfrs --help.",
      file=sys.stderr,
    )
    sys.exit(2)
  command = argv[1]
  logging.set_verbosity(logging.WARNING)
  try:
    _apply_config_file()
    globals()[f"command_{command}"]()
  except (CommandError, data.DataError, FileExistsError, FileNotFoundError, ValueError) as error:
    print(f"mtmi-tfrs {command}: error: {error}", file=sys.stderr)
    sys.exit(2)


def run() -> None:
  """Console-script entry point."""
  if any(arg in ("-h", "--help", "--helpshort", "--helpfull") for arg in sys.argv[1:]):
    print(__doc__)
    print(FLAGS.module_help(sys.modules[__name__]))
    sys.exit(0)
  app.run(main)


if __name__ == "__main__":
  run()
