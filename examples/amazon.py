"""Train and evaluate MTMI on Amazon Beauty with item attributes in the item tower.

    python examples/amazon.py --data ../shared/data/amazon-beauty [--epochs 10]

The data set (research licence) is not shipped. --data is a directory with
interactions.csv (user_id,item_id,timestamp) and item_attributes.csv
(item_id,attribute_ids), as used by the S3-Rec papers; for the raw Amazon
files use `mtmi_tfrs.data.load_amazon(reviews, metadata)` instead.
"""

import argparse
import os
import sys

import tensorflow as tf  # noqa: I001

import mtmi_tfrs  # noqa: F401  (makes tf.keras Keras 2, as TFRS needs)
from mtmi_tfrs import data
from mtmi_tfrs import evaluation
from mtmi_tfrs import export
from mtmi_tfrs import layers
from mtmi_tfrs import models
from mtmi_tfrs import tasks

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument(
  "--data", default=os.path.join(os.path.dirname(__file__), "../../shared/data/amazon-beauty")
)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--export_dir", default="/tmp/mtmi_amazon_export")
args = parser.parse_args()
if not os.path.exists(args.data):
  sys.exit(f"{args.data} not found: download Amazon Beauty and pass --data DIR.")

log = data.load_table(os.path.join(args.data, "interactions.csv"))
log.item_features = data.load_item_features(os.path.join(args.data, "item_attributes.csv"))
prepared = data.prepare(log, seed=0)
print(prepared.statistics())

tf.keras.utils.set_random_seed(0)
model = models.build_model(
  "mtmi",
  prepared.num_items,
  tower="mean_pool_residual",
  max_len=20,
  item_features=prepared.feature_table,
  feature_vocab_size=prepared.feature_vocab.size,
  task=tasks.IDWRetrieval(),
  repel=layers.UserRepel(),
)
model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
valid = data.evaluation_arrays(prepared, "valid", max_len=20)
model.fit(
  data.training_dataset(prepared, batch_size=256, max_len=20, seed=0),
  epochs=args.epochs,
  verbose=2,
  callbacks=[
    evaluation.RetrievalEvaluation(valid, prepared.num_items),
    tf.keras.callbacks.EarlyStopping(
      "val_recall@50", mode="max", patience=2, restore_best_weights=True
    ),
  ],
)
test = data.evaluation_arrays(prepared, "test", max_len=20)
print(evaluation.evaluate_model(model, test, prepared.num_items))
print("exported to", export.export_saved_model(model, prepared.item_vocab, args.export_dir, 20))
