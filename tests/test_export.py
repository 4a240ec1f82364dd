"""Tests for the TF Serving export: fresh-process loading, signatures, REST forms."""

import json
import os
import subprocess
import sys

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from mtmi_tfrs import data
from mtmi_tfrs import export
from mtmi_tfrs import layers
from mtmi_tfrs import models
from mtmi_tfrs import towers

# The README's REST request bodies (TF Serving's row and columnar forms).
REST_ROW = '{"signature_name": "serving_default", "instances": [{"history": ["i3", "i5", "i7"]}, {"history": ["i4", "nope", ""]}]}'  # noqa: E501
REST_COLUMNAR = (
  '{"signature_name": "serving_k", "inputs": {"history": [["i3", "i5", "i7"]], "k": 3}}'  # noqa: E501
)

_LOAD_AND_RUN = """
import json, sys
{imports}
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
histories = json.loads(sys.argv[2])
out = loaded.signatures["serving_default"](history=tf.constant(histories, {dtype}))
print(json.dumps({{
    "item_ids": [[x.decode() if isinstance(x, bytes) else int(x) for x in row]
                 for row in out["item_ids"].numpy()],
    "scores": out["scores"].numpy().tolist(),
    "interests": out["interests"].numpy().tolist(),
    "modules": sorted(m for m in ("mtmi_tfrs", "scann") if m in sys.modules),
}}))
"""


def _model_and_vocab(string_ids):
  log, _ = data.make_synthetic(num_users=150, num_items=60, num_categories=4, seed=2)
  if string_ids:
    log.interactions["item_id"] = "i" + log.interactions["item_id"].astype(str)
  prepared = data.prepare(log)
  tf.keras.utils.set_random_seed(0)
  model = models.MultiTowerModel(
    tf.keras.layers.Embedding(prepared.num_items, 8), towers.GRUTower(8, 8), num_towers=3
  )
  model(tf.zeros([1, 6], tf.int32))
  return model, prepared.item_vocab


def _in_memory(model, vocab, histories, k):
  """Expected results: the model plus a brute-force index, histories mapped by hand."""
  index = layers.MultiInterestBruteForce(k=k).index(
    model.item_tower(tf.range(2, vocab.size)), tf.constant(vocab.tokens.tolist())
  )
  results = []
  for history in histories:
    known = [i for i in vocab.lookup(np.array(history, dtype=object)) if i >= 2][-6:]
    padded = np.array([[0] * (6 - len(known)) + known])
    excluded = tf.constant([list(vocab.ids(np.array(known)))], index._identifiers.dtype)
    scores, ids = index(model(padded), k=k, exclusions=excluded)
    results.append((scores.numpy()[0], ids.numpy()[0]))
  return results


def _fresh_process(path, histories, dtype, imports=""):
  code = _LOAD_AND_RUN.format(imports=imports, dtype=dtype)
  env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "3"
  completed = subprocess.run(
    [sys.executable, "-c", code, path, json.dumps(histories)],
    capture_output=True,
    text=True,
    env=env,
    cwd="/",
    check=False,
  )
  if completed.returncode:
    raise AssertionError(completed.stderr[-3000:])
  return json.loads(completed.stdout.strip().splitlines()[-1])


class ExportTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.named_parameters(
    dict(testcase_name="brute_force_int_ids", index="brute_force", string_ids=False),
    dict(testcase_name="scann_string_ids", index="scann", string_ids=True),
  )
  def test_fresh_process_returns_the_in_memory_top_k(self, index, string_ids):
    model, vocab = _model_and_vocab(string_ids)
    tokens = vocab.tokens.tolist()
    if string_ids:
      histories = [[tokens[3], tokens[5], "unknown", tokens[9]], ["", "", "", ""]]
      dtype, imports = "tf.string", "import scann"
    else:
      histories = [[tokens[3], tokens[5], -5, tokens[9]], [-1, -1, -1, -1]]
      dtype, imports = "tf.int64", ""
    # ScaNN searching every leaf with exact re-scoring is exact, so both agree.
    index_layer = layers.MultiInterestScaNN(k=10, num_leaves=4, num_leaves_to_search=4)
    path = export.export_saved_model(
      model,
      vocab,
      self.get_temp_dir() + f"/{index}",
      max_len=6,
      k=10,
      index=index,
      index_layer=index_layer if index == "scann" else None,
    )
    self.assertEqual(os.path.basename(path), "1")
    served = _fresh_process(path, histories, dtype, imports)
    self.assertEqual(served["modules"], ["scann"] if index == "scann" else [])
    expected = _in_memory(model, vocab, histories[:1], 10)[0]
    served_ids = served["item_ids"][0]
    self.assertAllEqual(served_ids, [x.decode() if string_ids else x for x in expected[1]])
    self.assertAllClose(served["scores"][0], expected[0], atol=1e-5)
    self.assertNotIn(tokens[3], served_ids)  # the history is excluded
    # An empty (all unknown) history gets the documented empty result.
    self.assertAllEqual(served["interests"][1], [-1] * 10)
    self.assertAllEqual(served["item_ids"][1], ["" if string_ids else -1] * 10)

  def test_rest_request_bodies_run_through_the_signatures(self):
    model, vocab = _model_and_vocab(True)
    path = export.export_saved_model(model, vocab, self.get_temp_dir() + "/rest", 6, k=5)
    loaded = tf.saved_model.load(path)
    row = json.loads(REST_ROW)
    signature = loaded.signatures[row["signature_name"]]
    out = signature(history=tf.constant([inst["history"] for inst in row["instances"]]))
    self.assertEqual(out["item_ids"].shape, (2, 5))
    self.assertEqual(out["scores"].dtype, tf.float32)
    columnar = json.loads(REST_COLUMNAR)
    signature = loaded.signatures[columnar["signature_name"]]
    out = signature(
      history=tf.constant(columnar["inputs"]["history"]), k=tf.constant(columnar["inputs"]["k"])
    )
    self.assertEqual(out["item_ids"].shape, (1, 3))
    self.assertEqual(out["interests"].shape, (1, 3))

  def test_saved_model_cli_lists_the_signatures(self):
    model, vocab = _model_and_vocab(False)
    path = export.export_saved_model(model, vocab, self.get_temp_dir() + "/cli", 6, k=5)
    shown = subprocess.run(
      [
        sys.executable,
        "-m",
        "tensorflow.python.tools.saved_model_cli",
        "show",
        "--dir",
        path,
        "--all",
      ],
      capture_output=True,
      text=True,
      check=True,
      env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    ).stdout
    for needle in (
      "signature_def['serving_default']",
      "signature_def['serving_k']",
      "inputs['history']",
      "outputs['item_ids']",
      "outputs['scores']",
      "outputs['interests']",
      "inputs['k']",
    ):
      self.assertIn(needle, shown)

  def test_versions_are_numbered_and_never_overwritten(self):
    model, vocab = _model_and_vocab(False)
    base = self.get_temp_dir() + "/versions"
    first = export.export_saved_model(model, vocab, base, 6, k=5)
    second = export.export_saved_model(model, vocab, base, 6, k=5)
    self.assertEqual([os.path.basename(first), os.path.basename(second)], ["1", "2"])
    with self.assertRaisesRegex(FileExistsError, "never overwritten"):
      export.export_saved_model(model, vocab, base, 6, k=5, version=2)
    self.assertEqual(sorted(os.listdir(base)), ["1", "2"])  # no leftover staging directory

  def test_failed_export_leaves_nothing_behind(self):
    model, vocab = _model_and_vocab(False)
    base = self.get_temp_dir() + "/failed"

    class Broken(layers.MultiInterestBruteForce):
      def call(self, *args, **kwargs):
        raise RuntimeError("index exploded")

    with self.assertRaisesRegex(Exception, "index exploded"):
      export.export_saved_model(model, vocab, base, 6, k=5, index_layer=Broken(k=5))
    self.assertEqual(os.listdir(base), [])

  def test_unknown_index_is_named(self):
    model, vocab = _model_and_vocab(False)
    with self.assertRaisesRegex(ValueError, "index must be one of"):
      export.export_saved_model(model, vocab, self.get_temp_dir() + "/x", 6, index="faiss")


if __name__ == "__main__":
  tf.test.main()
