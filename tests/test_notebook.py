"""Executes the Colab notebook's code cells on small settings, so that it cannot rot."""

import json
import os

import tensorflow as tf

NOTEBOOK = os.path.join(os.path.dirname(__file__), "..", "examples", "mtmi_tfrs_colab.ipynb")
SMALL = {"NUM_USERS": 300, "NUM_ITEMS": 120, "EMBEDDING_DIM": 16, "MAX_LEN": 8, "EPOCHS": 1}


class NotebookTest(tf.test.TestCase):
  def test_code_cells_run_top_to_bottom(self):
    with open(NOTEBOOK, encoding="utf-8") as handle:
      notebook = json.load(handle)
    namespace = {}
    executed = 0
    for cell in notebook["cells"]:
      if cell["cell_type"] != "code":
        continue
      # Shell and magic lines (the install cell) are Colab's, not Python's.
      source = "".join(line for line in cell["source"] if not line.lstrip().startswith(("!", "%")))
      exec(compile(source, f"{NOTEBOOK} cell {executed}", "exec"), namespace)  # noqa: S102
      if source.lstrip().startswith("# settings"):
        namespace.update(SMALL)
      executed += 1
    self.assertGreaterEqual(executed, 9)
    self.assertIn("recall@50", namespace["metrics"])
    self.assertEqual(namespace["result"]["item_ids"].shape, (1, 10))


if __name__ == "__main__":
  tf.test.main()
