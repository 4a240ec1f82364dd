"""Tests for loaders, preprocessing, the ComiRec split and the tf.data pipelines."""

import gzip
import json

import numpy as np
import pandas as pd
import tensorflow as tf
from absl.testing import parameterized

from mtmi_tfrs import data

# user, item, rating, timestamp; user 3 has a tie at t=30 (file order decides).
EVENTS = [
  (1, 10, 5, 40), (1, 11, 3, 10), (1, 12, 4, 20), (2, 10, 2, 10), (2, 13, 5, 5),
  (3, 11, 1, 30), (3, 10, 4, 30), (3, 12, 2, 10),
]  # fmt: skip


def _write(path, text, mode="w"):
  with open(path, mode, encoding=None if "b" in mode else "utf-8") as handle:
    handle.write(text)
  return path


class LoaderTest(tf.test.TestCase, parameterized.TestCase):
  def _check(self, log, string_ids=False):
    frame = log.interactions
    self.assertLen(frame, len(EVENTS))
    self.assertEqual(list(frame.columns[:3]), ["user_id", "item_id", "timestamp"])
    users = [str(e[0]) if string_ids else e[0] for e in EVENTS]
    self.assertEqual(frame["user_id"].tolist(), users)
    self.assertEqual(frame["timestamp"].tolist(), [e[3] for e in EVENTS])

  def test_movielens_100k_layout_with_genres(self):
    directory = self.create_tempdir().full_path
    _write(f"{directory}/u.data", "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in EVENTS))
    _write(f"{directory}/u.genre", "unknown|0\nAction|1\nComedy|2\n\n")
    _write(f"{directory}/u.item", "10|A (1995)|01-Jan-1995||http://x|0|1|1\n11|B|||x|0|0|1\n")
    log = data.load_movielens(directory)
    self._check(log)
    self.assertEqual(log.interactions["weight"].tolist(), [e[2] for e in EVENTS])
    features = dict(zip(log.item_features["item_id"], log.item_features["features"]))
    self.assertEqual(features, {10: ["genre=Action", "genre=Comedy"], 11: ["genre=Comedy"]})

  def test_movielens_1m_layout(self):
    directory = self.create_tempdir().full_path
    _write(f"{directory}/ratings.dat", "".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in EVENTS))
    _write(f"{directory}/movies.dat", "10::A (1995)::Action|Drama\n11::B::Comedy\n")
    log = data.load_movielens(directory)
    self._check(log)
    self.assertEqual(log.item_features["features"].tolist()[0], ["genre=Action", "genre=Drama"])

  def test_movielens_csv_layout(self):
    directory = self.create_tempdir().full_path
    rows = "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in EVENTS)
    _write(f"{directory}/ratings.csv", "userId,movieId,rating,timestamp\n" + rows)
    _write(
      f"{directory}/movies.csv",
      'movieId,title,genres\n10,"A, The",Action\n11,B,(no genres listed)\n',
    )
    log = data.load_movielens(directory)
    self._check(log)
    self.assertEqual(log.item_features["features"].tolist(), [["genre=Action"], []])

  def test_amazon_ratings_csv(self):
    path = self.create_tempfile("ratings.csv").full_path
    _write(path, "".join(f"A{u},B{i},{r},{t}\n" for u, i, r, t in EVENTS))
    log = data.load_amazon(path)
    self.assertEqual(log.interactions["user_id"].tolist(), [f"A{e[0]}" for e in EVENTS])
    self.assertEqual(log.interactions["item_id"].iloc[0], "B10")

  def test_amazon_json_lines_with_metadata(self):
    directory = self.create_tempdir().full_path
    reviews = [
      {"reviewerID": f"A{u}", "asin": f"B{i}", "overall": r, "unixReviewTime": t}
      for u, i, r, t in EVENTS
    ]
    path = f"{directory}/reviews.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
      handle.write("".join(json.dumps(r) + "\n" for r in reviews))
    meta = f"{directory}/meta.json"
    _write(
      meta,
      "{'asin': 'B10', 'brand': 'Nivea', 'categories': [['Beauty', 'Skin']]}\n"
      "{'asin': 'B11', 'categories': [['Beauty']]}\n",
    )
    log = data.load_amazon(path, meta)
    self.assertLen(log.interactions, len(EVENTS))
    self.assertEqual(log.interactions["weight"].tolist(), [float(e[2]) for e in EVENTS])
    self.assertEqual(
      log.item_features["features"].tolist(),
      [["brand=Nivea", "category=Beauty", "category=Skin"], ["category=Beauty"]],
    )

  @parameterized.named_parameters(
    dict(testcase_name="csv", suffix=".csv", sep=","),
    dict(testcase_name="tsv", suffix=".tsv", sep="\t"),
    dict(testcase_name="parquet", suffix=".parquet", sep=None),
  )
  def test_generic_table_with_column_mapping(self, suffix, sep):
    path = self.create_tempfile("log" + suffix).full_path
    frame = pd.DataFrame(EVENTS, columns=["who", "what", "stars", "when"])
    if sep is None:
      frame.to_parquet(path)
    else:
      frame.to_csv(path, sep=sep, index=False)
    log = data.load_table(path, "who", "what", "when", weight_column="stars")
    self._check(log)

  def test_iso_timestamps_are_parsed(self):
    path = _write(
      self.create_tempfile("t.csv").full_path,
      "user_id,item_id,timestamp\n1,2,2020-01-01T00:00:10Z\n1,3,2020-01-01\n",
    )
    log = data.load_table(path)
    self.assertEqual(log.interactions["timestamp"].tolist(), [1577836810, 1577836800])

  def test_item_feature_table_formats(self):
    path = _write(
      self.create_tempfile("f.csv").full_path,
      'item_id,attrs,brand\n1,173 1 162,x\n2,"[4, 5]",y\n3,7|8,\n',
    )
    features = data.load_item_features(path)
    self.assertEqual(features["features"].tolist(), [
      ["attrs=173", "attrs=1", "attrs=162", "brand=x"], ["attrs=4", "attrs=5", "brand=y"],
      ["attrs=7", "attrs=8"]])  # fmt: skip

  @parameterized.named_parameters(
    dict(
      testcase_name="missing_column",
      text="user,item_id,timestamp\n1,2,3\n",
      match=r"column\(s\) \['user_id'\] not found",
    ),
    dict(
      testcase_name="bad_timestamp",
      text="user_id,item_id,timestamp\n1,2,3\n1,2,yesterday\n",
      match="line 3: column 'timestamp': cannot parse timestamp 'yesterday'",
    ),
    dict(
      testcase_name="empty_id",
      text="user_id,item_id,timestamp\n1,,3\n",
      match="line 2: column 'item_id' has an empty id",
    ),
    dict(testcase_name="empty_file", text="", match="file is empty"),
    dict(testcase_name="header_only", text="user_id,item_id,timestamp\n", match="no data rows"),
    dict(
      testcase_name="extra_field",
      text="user_id,item_id,timestamp\n1,2,3\n1,2,3,4\n",
      match="malformed line.*line 3",
    ),
  )
  def test_bad_input_names_file_line_and_problem(self, text, match):
    path = _write(self.create_tempfile("bad.csv").full_path, text)
    with self.assertRaisesRegex(data.DataError, "bad.csv: " + match):
      data.load_table(path)

  def test_missing_file_and_directory(self):
    with self.assertRaisesRegex(data.DataError, "nope.csv: file not found"):
      data.load_table("/tmp/nope.csv")
    with self.assertRaisesRegex(data.DataError, "no MovieLens rating file"):
      data.load_movielens(self.create_tempdir().full_path)


def _log(events, features=None):
  frame = pd.DataFrame(events, columns=["user_id", "item_id", "timestamp"])
  return data.InteractionLog(frame, features, source="fixture")


class PreprocessingTest(tf.test.TestCase):
  def test_k_core_iterates_until_stable(self):
    # 2-core: item 9 (1 event) goes; then user 3 has 1 event and goes; then
    # item 8 drops to 1 event and goes; users 1, 2 with items 5, 6 remain.
    events = [(1, 5, 0), (1, 6, 1), (2, 5, 2), (2, 6, 3), (3, 8, 4), (3, 9, 5), (4, 8, 6)]
    filtered, iterations = data.k_core(_log(events).interactions, 2)
    self.assertEqual(sorted(filtered["user_id"].unique()), [1, 2])
    self.assertEqual(sorted(filtered["item_id"].unique()), [5, 6])
    self.assertGreaterEqual(iterations, 2)
    prepared = data.prepare(_log(events), min_count=2)
    self.assertEqual(prepared.report["interactions_removed_by_k_core"], 3)
    self.assertEqual(prepared.report["users_removed_by_k_core"], 2)

  def test_nothing_left_is_a_clear_error(self):
    with self.assertRaisesRegex(data.DataError, "nothing left after 5-core filtering of 2"):
      data.prepare(_log([(1, 1, 0), (2, 2, 0)]))

  def test_ordering_ids_and_stable_ties(self):
    events = [(u, i, t) for u, i, _, t in EVENTS]
    prepared = data.prepare(_log(events), min_count=1)
    self.assertEqual(prepared.item_vocab.tokens.tolist(), [10, 11, 12, 13])
    self.assertEqual(prepared.offsets.tolist(), [0, 3, 5, 8])
    raw = prepared.item_vocab.ids(prepared.items).tolist()
    # user 1 by time: 11 (10), 12 (20), 10 (40); user 3's tie at 30 keeps file order 11, 10.
    self.assertEqual(raw, [11, 12, 10, 13, 10, 12, 11, 10])
    self.assertEqual(prepared.item_vocab.lookup([10, 99]).tolist(), [2, data.OOV])

  def test_split_proportions_and_determinism(self):
    splits = data.split_users(1000, seed=7)
    self.assertEqual([len(splits[s]) for s in ("train", "valid", "test")], [800, 100, 100])
    everyone = np.concatenate(list(splits.values()))
    self.assertLen(np.unique(everyone), 1000)
    again = data.split_users(1000, seed=7)
    other = data.split_users(1000, seed=8)
    self.assertAllEqual(splits["test"], again["test"])
    self.assertNotAllEqual(splits["test"], other["test"])

  def test_unknown_feature_items_are_counted_not_fatal(self):
    events = [(u, i, t) for u, i, _, t in EVENTS]
    features = pd.DataFrame({"item_id": [10, 11, 77], "features": [["a", "b"], ["b"], ["c"]]})
    prepared = data.prepare(_log(events, features), min_count=1)
    self.assertEqual(prepared.report["feature_rows_for_unknown_items"], 1)
    self.assertEqual(prepared.report["items_without_features"], 2)
    table = prepared.feature_table
    self.assertEqual(table.shape, (6, 2))
    self.assertEqual(prepared.feature_vocab.ids(table[2]).tolist(), ["a", "b"])
    self.assertAllEqual(table[4], [0, 0])

  def test_save_and_load_round_trip(self):
    log, _ = data.make_synthetic(num_users=50, num_items=40, num_categories=4, seed=1)
    prepared = data.prepare(log)
    directory = self.create_tempdir().full_path + "/prepared"
    prepared.save(directory)
    restored = data.SequenceData.load(directory)
    self.assertEqual(restored.item_vocab, prepared.item_vocab)
    self.assertAllEqual(restored.items, prepared.items)
    self.assertAllEqual(restored.feature_table, prepared.feature_table)
    self.assertAllEqual(restored.splits["test"], prepared.splits["test"])


class PipelineTest(tf.test.TestCase, parameterized.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    log, cls.truth = data.make_synthetic(num_users=200, num_items=90, num_categories=6, seed=5)
    cls.data = data.prepare(log, seed=1)

  def test_all_cut_points_are_exact(self):
    split = self.data.splits["train"]
    lengths = self.data.lengths[split]
    dataset = data.training_dataset(
      self.data, batch_size=64, max_len=4, shuffle=False, drop_remainder=False
    )
    batches = list(dataset)
    targets = np.concatenate([b["item_id"].numpy() for b in batches])
    histories = np.concatenate([b["history"].numpy() for b in batches])
    self.assertLen(targets, int((lengths - 1).sum()))
    first = self.data.items[self.data.offsets[split[0]] : self.data.offsets[split[0] + 1]]
    self.assertEqual(targets[0], first[1])
    self.assertAllEqual(histories[0], [0, 0, 0, first[0]])
    self.assertAllEqual(histories[4], first[1:5])  # target first[5]: the 4 items before it
    self.assertEqual(targets[4], first[5])

  def test_random_mode_samples_valid_cuts_deterministically(self):
    def make():
      return data.training_dataset(self.data, batch_size=50, max_len=5, mode="random", seed=3)

    first, second = next(iter(make())), next(iter(make()))
    self.assertAllEqual(first["item_id"], second["item_id"])
    self.assertEqual(first["history"].shape, (50, 5))
    self.assertTrue(np.all(first["history"].numpy()[:, -1] > 0))  # every history is non-empty

  def test_random_mode_draws_new_cuts_each_pass(self):
    dataset = data.training_dataset(
      self.data, batch_size=50, max_len=5, mode="random", shuffle=False, seed=3
    )
    first_pass, second_pass = next(iter(dataset)), next(iter(dataset))
    # Same users in the same order (no shuffling), but the cut points move.
    self.assertNotAllEqual(first_pass["item_id"], second_pass["item_id"])

  def test_item_features_joined_per_example(self):
    batch = next(iter(data.training_dataset(self.data, batch_size=8, include_item_features=True)))
    expected = self.data.feature_table[batch["item_id"].numpy()]
    self.assertAllEqual(batch["item_features"], expected)

  def test_evaluation_protocol(self):
    arrays = data.evaluation_arrays(self.data, "test", max_len=6)
    self.assertLen(arrays["user"], len(self.data.splits["test"]))
    self.assertEmpty(set(arrays["user"]) & set(self.data.splits["train"]))
    for row, user in enumerate(arrays["user"][:20]):
      sequence = self.data.items[self.data.offsets[user] : self.data.offsets[user + 1]]
      cut = int(len(sequence) * 0.8)
      history = arrays["history"][row]
      self.assertAllEqual(history[history > 0], sequence[:cut][-6:])
      targets = arrays["targets"][row]
      self.assertEqual(set(targets[targets > 0]), set(sequence[cut:]))

  def test_evaluation_targets_never_come_from_the_history_window(self):
    # Each synthetic user's evaluation targets are later events than the history.
    arrays = data.evaluation_arrays(self.data, "valid", max_len=50)
    for row, user in enumerate(arrays["user"]):
      start, end = self.data.offsets[user], self.data.offsets[user + 1]
      cut = start + int((end - start) * 0.8)
      later = set(self.data.items[cut:end])
      targets = set(arrays["targets"][row][arrays["targets"][row] > 0])
      self.assertEqual(targets, later)
      history_positions = np.arange(start, cut)
      self.assertTrue(np.all(history_positions < cut))

  def test_bad_pipeline_arguments(self):
    with self.assertRaisesRegex(ValueError, "mode must be one of"):
      data.training_dataset(self.data, mode="every")
    with self.assertRaisesRegex(ValueError, "split must be one of"):
      data.evaluation_arrays(self.data, "holdout")


class SyntheticTest(tf.test.TestCase):
  def test_deterministic_and_interests_drive_the_sequences(self):
    log, truth = data.make_synthetic(num_users=300, num_items=300, num_categories=10, seed=4)
    again, _ = data.make_synthetic(num_users=300, num_items=300, num_categories=10, seed=4)
    pd.testing.assert_frame_equal(log.interactions, again.interactions)
    frame = log.interactions
    categories = truth.item_category[frame["item_id"].to_numpy()]
    interests = truth.user_interests[frame["user_id"].to_numpy()]
    self.assertTrue(np.all((interests == categories[:, None]).any(axis=1)))
    counts = (truth.user_interests[1:] >= 0).sum(axis=1)
    self.assertEqual((counts.min(), counts.max()), (2, 4))

  def test_bad_sizes(self):
    with self.assertRaisesRegex(ValueError, "max_interests"):
      data.make_synthetic(num_categories=3, max_interests=4, min_interests=2)


if __name__ == "__main__":
  tf.test.main()
