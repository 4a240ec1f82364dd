"""Tests for the multi-interest indexes: merge semantics, ScaNN recall, SavedModel."""

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from mtmi_tfrs import layers


def _reference(queries, candidates, identifiers, k, exclusions=None):
  """Numpy reference: per-interest top (k + E) with ties to the lower position,
  pooled, each item once with its best score (lowest interest on ties),
  exclusions dropped, sorted by (-score, position), cut to k."""
  if queries.ndim == 2:
    queries = queries[:, None, :]
  scores = np.einsum("bkd,nd->bkn", queries, candidates)
  fetch = min(k + (0 if exclusions is None else exclusions.shape[1]), len(candidates))
  results = []
  for b in range(len(queries)):
    best = {}
    for interest in range(queries.shape[1]):
      row = scores[b, interest]
      order = np.lexsort((np.arange(len(row)), -row))[:fetch]
      for position in order:
        if exclusions is not None and identifiers[position] in set(exclusions[b]):
          continue
        if position not in best or row[position] > best[position][0]:
          best[position] = (row[position], interest)
    ranked = sorted(best.items(), key=lambda item: (-item[1][0], item[0]))[:k]
    results.append(
      (
        [score for _, (score, _) in ranked],
        [identifiers[position] for position, _ in ranked],
        [interest for _, (_, interest) in ranked],
      )
    )
  return results


class MergeTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.named_parameters(
    dict(testcase_name="k4", num_interests=4, exclusions=False, ties=False),
    dict(testcase_name="k1_rank2", num_interests=0, exclusions=False, ties=False),
    dict(testcase_name="ties", num_interests=3, exclusions=False, ties=True),
    dict(testcase_name="exclusions", num_interests=3, exclusions=True, ties=False),
    dict(testcase_name="ties_and_exclusions", num_interests=2, exclusions=True, ties=True),
  )
  def test_merge_equals_numpy_reference(self, num_interests, exclusions, ties):
    rng = np.random.default_rng(num_interests + 10 * exclusions + 100 * ties)
    num_candidates, dim, k = 40, 3, 7
    if ties:
      # Few distinct small-integer vectors: many equal scores within and across interests.
      candidates = rng.integers(-1, 2, size=(num_candidates, dim)).astype(np.float32)
      shape = (6, num_interests, dim) if num_interests else (6, dim)
      queries = rng.integers(-1, 2, size=shape).astype(np.float32)
    else:
      candidates = rng.normal(size=(num_candidates, dim)).astype(np.float32)
      shape = (6, num_interests, dim) if num_interests else (6, dim)
      queries = rng.normal(size=shape).astype(np.float32)
    if num_interests:
      queries[:, -1] = queries[:, 0]  # duplicate interests retrieve the same items
    identifiers = np.array([f"item{i}" for i in range(num_candidates)])
    excluded = None
    if exclusions:
      excluded = np.array([rng.choice(identifiers, 5, replace=False) for _ in range(6)])
    index = layers.MultiInterestBruteForce(k=k).index(candidates, identifiers)
    scores, ids, interests = index(queries, exclusions=excluded, return_interests=True)
    for b, (ref_scores, ref_ids, ref_interests) in enumerate(
      _reference(queries, candidates, identifiers, k, excluded)
    ):
      self.assertAllClose(scores[b], ref_scores, atol=1e-5)
      self.assertAllEqual([i.decode() for i in ids[b].numpy()], ref_ids)
      self.assertAllEqual(interests[b], ref_interests)
    if exclusions:
      returned = ids.numpy().astype(str)
      for b in range(6):
        self.assertEmpty(set(returned[b]) & set(excluded[b]))

  def test_missing_entries_are_dropped_and_padded(self):
    # Interest 0 finds items 5 and 3; interest 1 finds item 5 (better) and a NaN pad.
    scores = tf.constant([[[0.9, 0.5], [1.2, float("nan")]]])
    positions = tf.constant([[[5, 3], [5, 0]]])
    top_scores, top_positions, interests = layers.merge_interest_lists(scores, positions, 4)
    self.assertAllClose(top_scores, [[1.2, 0.5, -np.inf, -np.inf]])
    self.assertAllEqual(top_positions, [[5, 3, -1, -1]])
    self.assertAllEqual(interests, [[1, 0, -1, -1]])

  def test_small_catalogue_pads_with_missing_identifier(self):
    index = layers.MultiInterestBruteForce(k=5).index(np.eye(3, dtype=np.float32))
    scores, ids = index(np.ones((1, 2, 3), np.float32))
    self.assertAllEqual(ids, [[0, 1, 2, -1, -1]])
    self.assertAllEqual(scores[0, 3:], [-np.inf, -np.inf])

  def test_index_from_dataset_with_identifiers(self):
    candidates = np.random.default_rng(3).normal(size=(30, 4)).astype(np.float32)
    identifiers = np.array([f"id{i}" for i in range(30)])
    dataset = tf.data.Dataset.from_tensor_slices((identifiers, candidates)).batch(7)
    from_dataset = layers.MultiInterestBruteForce(k=5).index_from_dataset(dataset)
    from_tensors = layers.MultiInterestBruteForce(k=5).index(candidates, identifiers)
    queries = np.random.default_rng(4).normal(size=(3, 2, 4)).astype(np.float32)
    self.assertAllEqual(from_dataset(queries)[1], from_tensors(queries)[1])

  def test_bad_query_shape_is_named(self):
    index = layers.MultiInterestBruteForce().index(np.eye(3, dtype=np.float32))
    with self.assertRaisesRegex(ValueError, r"queries must be \[batch, K, dim\] or \[batch, dim\]"):
      index(np.ones((1, 2, 3, 3), np.float32))
    with self.assertRaisesRegex(ValueError, "must be called first"):
      layers.MultiInterestBruteForce()(np.ones((1, 3), np.float32))
    with self.assertRaisesRegex(ValueError, r"identifiers must be \[num_candidates=3\]"):
      layers.MultiInterestBruteForce().index(np.eye(3, dtype=np.float32), np.arange(4))


def _clustered_catalogue(num_items, dim=32, num_clusters=200, seed=0):
  rng = np.random.default_rng(seed)
  centers = rng.normal(size=(num_clusters, dim))
  items = centers[rng.integers(0, num_clusters, num_items)] + 0.5 * rng.normal(
    size=(num_items, dim)
  )
  return (items / np.linalg.norm(items, axis=1, keepdims=True)).astype(np.float32)


class ScaNNTest(tf.test.TestCase):
  def test_recall_against_brute_force_on_100k_items(self):
    candidates = _clustered_catalogue(100_000)
    queries = np.random.default_rng(1).normal(size=(50, 4, 32)).astype(np.float32)
    _, exact = layers.MultiInterestBruteForce(k=100).index(candidates)(queries)
    _, approximate = layers.MultiInterestScaNN(k=100).index(candidates)(queries)
    recall = np.mean(
      [len(set(a) & set(b)) / 100 for a, b in zip(exact.numpy(), approximate.numpy())]
    )
    self.assertGreaterEqual(recall, 0.95)


class SavedModelTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.named_parameters(
    dict(testcase_name="brute_force", index_cls=layers.MultiInterestBruteForce),
    dict(testcase_name="scann", index_cls=layers.MultiInterestScaNN),
  )
  def test_saved_model_round_trip(self, index_cls):
    candidates = _clustered_catalogue(2000, dim=8)
    identifiers = np.array([f"item{i}" for i in range(2000)])
    index = index_cls(k=10).index(candidates, identifiers)
    queries = np.random.default_rng(2).normal(size=(3, 4, 8)).astype(np.float32)
    expected_scores, expected_ids = index(queries)
    path = self.get_temp_dir() + "/index"
    tf.saved_model.save(
      index, path, options=tf.saved_model.SaveOptions(namespace_whitelist=["Scann"])
    )
    loaded = tf.saved_model.load(path)
    scores, ids = loaded(queries)
    self.assertAllClose(scores, expected_scores)
    self.assertAllEqual(ids, expected_ids)

  def test_config_round_trip(self):
    index = layers.MultiInterestScaNN(k=7, num_leaves=10, num_reordering_candidates=None)
    self.assertEqual(
      layers.MultiInterestScaNN(**index.get_config()).get_config(), index.get_config()
    )


if __name__ == "__main__":
  tf.test.main()
