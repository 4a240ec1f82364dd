"""Train and evaluate MTMI on MovieLens (100K, 1M or a newer CSV release).

    python examples/movielens.py --data ../shared/data/ml-100k [--epochs 10]

MovieLens is research-licensed and not shipped: download it from GroupLens
and point --data at the directory that holds u.data, ratings.dat or
ratings.csv. Genres feed the item tower.
"""

import argparse
import os
import sys

import tensorflow as tf  # noqa: I001

import mtmi_tfrs  # noqa: F401  (makes tf.keras Keras 2, as TFRS needs)
from mtmi_tfrs import data
from mtmi_tfrs import evaluation
from mtmi_tfrs import layers
from mtmi_tfrs import models
from mtmi_tfrs import tasks

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument(
  "--data", default=os.path.join(os.path.dirname(__file__), "../../shared/data/ml-100k")
)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--tower", default="mean_pool_residual")
args = parser.parse_args()
if not os.path.exists(args.data):
  sys.exit(f"{args.data} not found: download MovieLens from GroupLens and pass --data DIR.")

prepared = data.prepare(data.load_movielens(args.data), seed=0)
print(prepared.statistics())
train = data.training_dataset(prepared, batch_size=256, max_len=20, seed=0)
valid = data.evaluation_arrays(prepared, "valid", max_len=20)
test = data.evaluation_arrays(prepared, "test", max_len=20)

results = {}
for kind in ("single", "mtmi"):
  tf.keras.utils.set_random_seed(0)
  model = models.build_model(
    kind,
    prepared.num_items,
    tower=args.tower,
    max_len=20,
    item_features=prepared.feature_table,
    feature_vocab_size=prepared.feature_vocab.size,
    task=tasks.IDWRetrieval(),
    repel=layers.UserRepel(),
  )
  model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
  model.fit(
    train,
    epochs=args.epochs,
    verbose=2,
    callbacks=[
      evaluation.RetrievalEvaluation(valid, prepared.num_items),
      tf.keras.callbacks.EarlyStopping(
        "val_recall@50", mode="max", patience=2, restore_best_weights=True
      ),
    ],
  )
  results[kind] = evaluation.evaluate_model(model, test, prepared.num_items)
for kind, metrics in results.items():
  print(kind, {k: round(v, 4) for k, v in metrics.items()})
