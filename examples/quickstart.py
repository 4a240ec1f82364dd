"""MTMI in a few lines of the API: data, towers, task, model, fit, evaluate, serve.

python examples/quickstart.py [--epochs 3] [--export_dir /tmp/mtmi_export]
"""

import argparse

import tensorflow as tf  # noqa: I001

from mtmi_tfrs import data
from mtmi_tfrs import evaluation
from mtmi_tfrs import export
from mtmi_tfrs import layers
from mtmi_tfrs import models
from mtmi_tfrs import tasks
from mtmi_tfrs import towers

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--epochs", type=int, default=3)
parser.add_argument("--users", type=int, default=6000)
parser.add_argument("--export_dir", default="/tmp/mtmi_quickstart_export")
args = parser.parse_args()

# Data: the embedded synthetic multi-interest log, split by the ComiRec protocol.
log, truth = data.make_synthetic(num_users=args.users, seed=0)
prepared = data.prepare(log, seed=0)
train = data.training_dataset(prepared, batch_size=256, max_len=20, seed=0)
valid = data.evaluation_arrays(prepared, "valid", max_len=20)
test = data.evaluation_arrays(prepared, "test", max_len=20)

# Towers, task, model: K = 4 user towers share the item embedding with the item tower.
# Each tower reads the last 1, 3, 7 or 20 history items: their centroid plus a learned
# MLP correction (a YouTube-DNN tower with a residual connection).
embedding = tf.keras.layers.Embedding(prepared.num_items, 64)
model = models.MultiTowerModel(
  item_embedding=embedding,
  user_towers=towers.MeanPoolTower(hidden_units=(128,), output_dim=64, residual=True),
  num_towers=4,
  windows=towers.geometric_windows(4, max_len=20),
  task=tasks.IDWRetrieval(alpha=5.0, beta=8.0, negatives="per_tower"),
  repel=layers.UserRepel(margin=0.5, weight=0.1),
)
model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))

# Fit, with full-catalogue validation recall after each epoch.
model.fit(
  train,
  epochs=args.epochs,
  callbacks=[evaluation.RetrievalEvaluation(valid, prepared.num_items)],
  verbose=2,
)

# Evaluate: merged retrieval of the K user vectors, as served.
print(evaluation.evaluate_model(model, test, prepared.num_items, ks=(20, 50)))

# Serve: a SavedModel that maps raw item-id histories to the top k.
path = export.export_saved_model(model, prepared.item_vocab, args.export_dir, max_len=20, k=10)
served = tf.saved_model.load(path).signatures["serving_default"]
history = prepared.item_vocab.ids(test["history"][0][test["history"][0] > 0])
result = served(history=tf.constant([history.astype("int64")], dtype=tf.int64))
print("history categories:", truth.item_category[history.astype(int)].tolist())
for item, score, interest in zip(
  result["item_ids"][0].numpy(), result["scores"][0].numpy(), result["interests"][0].numpy()
):
  print(f"item {item} (category {truth.item_category[item]}) score {score:.3f} tower {interest}")
