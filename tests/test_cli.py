"""End-to-end tests of the `mtmi-tfrs` command on tiny settings."""

import json
import os
import subprocess
import sys

import tensorflow as tf

from mtmi_tfrs import data

TINY = [
  "--synthetic_users=240", "--synthetic_items=96", "--synthetic_categories=6",
  "--epochs=1", "--dim=16", "--max_len=8", "--batch_size=64", "--verbose=0", "--k=5",
]  # fmt: skip


def _cli(*args, check=True):
  env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
  completed = subprocess.run(
    [sys.executable, "-m", "mtmi_tfrs.cli", *args],
    capture_output=True,
    text=True,
    env=env,
    check=False,
  )
  if check and completed.returncode:
    raise AssertionError(f"exit {completed.returncode}\n{completed.stderr[-3000:]}")
  return completed


class CliTest(tf.test.TestCase):
  def test_quickstart_trains_compares_exports_and_recommends(self):
    run_dir = self.create_tempdir().full_path
    out = _cli("quickstart", f"--run_dir={run_dir}", *TINY).stdout
    self.assertIn("single", out)
    self.assertIn("mtmi", out)
    self.assertIn("recall@50", out)
    self.assertIn("interest", out)
    for name in (
      "config.json",
      "mtmi/metrics.json",
      "mtmi/training_curves.png",
      "mtmi/tower_categories.png",
      "single/metrics.json",
      "export/1/saved_model.pb",
    ):
      self.assertTrue(os.path.exists(os.path.join(run_dir, name)), name)
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as handle:
      self.assertEqual(json.load(handle)["synthetic_users"], 240)

  def test_train_evaluate_export_recommend_on_a_fixture_file(self):
    directory = self.create_tempdir().full_path
    log, _ = data.make_synthetic(num_users=200, num_items=60, num_categories=6, seed=1)
    frame = log.interactions.rename(columns={"user_id": "who", "item_id": "what"})
    frame["what"] = "sku" + frame["what"].astype(str)
    path = os.path.join(directory, "events.csv")
    frame.to_csv(path, index=False)
    config = os.path.join(directory, "config.json")
    with open(config, "w", encoding="utf-8") as handle:
      json.dump(
        {"user_column": "who", "item_column": "what", "model": "mtmi", "num_interests": 2}, handle
      )
    run_dir = os.path.join(directory, "run")
    out = _cli(
      "train",
      f"--data={path}",
      "--format=table",
      f"--config={config}",
      f"--run_dir={run_dir}",
      *TINY,
    ).stdout
    self.assertIn("recall@50", out)
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as handle:
      resolved = json.load(handle)
    self.assertEqual((resolved["item_column"], resolved["num_interests"]), ("what", 2))
    for name in (
      "checkpoints/best.index",
      "metrics.json",
      "history.json",
      "logs",
      "training_curves.png",
      "data/item_vocab.json",
    ):
      self.assertTrue(os.path.exists(os.path.join(run_dir, name)), name)

    evaluated = _cli("evaluate", f"--run_dir={run_dir}").stdout
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as handle:
      trained = json.load(handle)
    self.assertIn(f"recall@50    {trained['recall@50']:.4f}", evaluated)

    exported = _cli("export", f"--run_dir={run_dir}", "--k=5").stdout
    self.assertIn(os.path.join(run_dir, "export", "1"), exported)
    histories = os.path.join(directory, "histories.txt")
    with open(histories, "w", encoding="utf-8") as handle:
      handle.write("sku1 sku2 sku3\nnot-an-item\n")
    shown = _cli(
      "recommend", f"--saved_model={run_dir}/export/1", f"--history_file={histories}", "--k=3"
    ).stdout
    self.assertEqual(shown.count("score"), 3)
    self.assertIn("no recommendation", shown)
    self.assertNotIn("item sku1 ", shown)  # the history is not recommended back

  def test_bad_flags_and_paths_exit_with_one_line(self):
    missing = _cli("train", "--data=/nonexistent/log.csv", "--format=table", check=False)
    self.assertEqual(missing.returncode, 2)
    self.assertIn("--data /nonexistent/log.csv: no such file or directory", missing.stderr)
    self.assertNotIn("Traceback", missing.stderr)
    unknown = _cli("fly", check=False)
    self.assertEqual(unknown.returncode, 2)
    self.assertIn("expected one command of quickstart", unknown.stderr)
    bad_enum = _cli("train", "--model=bert", check=False)
    self.assertNotEqual(bad_enum.returncode, 0)
    self.assertIn("--model", bad_enum.stderr)
    self.assertNotIn("Traceback", bad_enum.stderr)
    not_a_run = _cli("evaluate", f"--run_dir={self.create_tempdir().full_path}", check=False)
    self.assertEqual(not_a_run.returncode, 2)
    self.assertIn("not a training run", not_a_run.stderr)

  def test_malformed_data_is_reported_not_traced(self):
    path = self.create_tempfile("bad.csv", "user_id,item_id,timestamp\n1,2,soon\n").full_path
    result = _cli("train", f"--data={path}", "--format=table", check=False)
    self.assertEqual(result.returncode, 2)
    self.assertIn("bad.csv: line 2: column 'timestamp'", result.stderr)
    self.assertNotIn("Traceback", result.stderr)

  def test_help_lists_every_flag_with_its_default(self):
    shown = _cli("--help").stdout
    for flag in ("--num_interests", "--beta", "--repel_weight", "--index", "--config"):
      self.assertIn(flag, shown)
    self.assertIn("(default: '4')", shown)
    self.assertIn("mtmi-tfrs quickstart", shown)


if __name__ == "__main__":
  tf.test.main()
