"""Tests for the retrieval metrics, the evaluator and its Keras callback."""

import numpy as np
import tensorflow as tf

from mtmi_tfrs import evaluation


def _numpy_metrics(user_vectors, item_vectors, history, targets, n, exclude_history=False):
  """Reference: max-over-interests scores, full sort, then the metric formulas."""
  scores = np.einsum("ukd,nd->ukn", user_vectors, item_vectors).max(axis=1)
  scores[:, :2] = -np.inf  # padding and out-of-vocabulary rows are never indexed
  if exclude_history:
    for row, items in enumerate(history):
      scores[row, items[items > 0]] = -np.inf
  ranked = np.argsort(-scores, axis=1, kind="stable")[:, :n]
  recall, ndcg, hit = [], [], []
  for row, wanted in enumerate(targets):
    wanted = set(wanted[wanted > 0].tolist())
    hits = [item in wanted for item in ranked[row]]
    recall.append(sum(hits) / len(wanted))
    hit.append(float(any(hits)))
    dcg = sum(1 / np.log2(i + 2) for i, h in enumerate(hits) if h)
    ndcg.append(dcg / sum(1 / np.log2(i + 2) for i in range(min(len(wanted), n))))
  return {f"recall@{n}": np.mean(recall), f"ndcg@{n}": np.mean(ndcg), f"hit_rate@{n}": np.mean(hit)}


class RetrievalMetricsTest(tf.test.TestCase):
  def test_closed_form_values(self):
    retrieved = np.array([[5, 7, 9], [4, 6, 8]])
    targets = np.array([[7, 3], [2, 0]])
    sums = evaluation.retrieval_metrics(retrieved, targets, ks=(1, 3))
    # User 0: target 7 at rank 2 of 2 targets; user 1: its only target is missed.
    self.assertEqual(sums["users"], 2)
    self.assertAllClose(sums["recall@1"], 0.0)
    self.assertAllClose(sums["recall@3"], 0.5)
    self.assertAllClose(sums["hit_rate@3"], 1.0)
    # DCG = 1 / log2(3); ideal DCG over min(2, 3) = 2 slots: 1 + 1 / log2(3).
    self.assertAllClose(sums["ndcg@3"], (1 / np.log2(3)) / (1 + 1 / np.log2(3)))

  def test_users_without_targets_are_left_out(self):
    sums = evaluation.retrieval_metrics(np.array([[2, 3], [2, 3]]), np.array([[3], [0]]), (2,))
    self.assertEqual(sums["users"], 1)
    self.assertAllClose(sums["recall@2"], 1.0)

  def test_cut_off_beyond_the_list_is_an_error(self):
    with self.assertRaisesRegex(ValueError, "asks for @5 but only 3 items"):
      evaluation.retrieval_metrics(np.zeros((1, 3), int), np.ones((1, 1), int), (5,))


class EvaluateTest(tf.test.TestCase):
  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.items = rng.normal(size=(40, 6)).astype(np.float32)
    self.users = rng.normal(size=(9, 3, 6)).astype(np.float32)
    self.history = rng.integers(0, 40, size=(9, 5)).astype(np.int32)
    self.history[:, :2] = 0  # left padding
    self.history[:, -1] = np.arange(9)  # the last item names the user's row of vectors
    self.targets = np.zeros((9, 3), np.int32)
    for row in range(9):
      self.targets[row, : 1 + row % 3] = rng.choice(np.arange(2, 40), 1 + row % 3, replace=False)

  def _evaluate(self, users, **kwargs):
    index = evaluation.build_index(tf.constant(self.items), k=10)
    return evaluation.evaluate(
      lambda batch: tf.gather(tf.constant(users), batch[:, -1]),
      index,
      {"history": self.history, "targets": self.targets},
      ks=(10,),
      batch_size=4,
      **kwargs,
    )

  def test_equals_numpy_on_merged_multi_interest_retrieval(self):
    metrics = self._evaluate(self.users)
    expected = _numpy_metrics(self.users, self.items, self.history, self.targets, 10)
    self.assertEqual(metrics["users"], 9)
    for name, value in expected.items():
      self.assertAllClose(metrics[name], value, atol=1e-6, msg=name)

  def test_single_vector_users_and_history_exclusion(self):
    metrics = self._evaluate(self.users[:, 0], exclude_history=True)
    expected = _numpy_metrics(
      self.users[:, :1], self.items, self.history, self.targets, 10, exclude_history=True
    )
    for name, value in expected.items():
      self.assertAllClose(metrics[name], value, atol=1e-6, msg=name)

  def test_mismatched_rows_and_no_targets_are_errors(self):
    index = evaluation.build_index(tf.constant(self.items), k=10)
    with self.assertRaisesRegex(ValueError, "history has 9 rows but targets has 2"):
      evaluation.evaluate(
        tf.identity, index, {"history": self.history, "targets": self.targets[:2]}, ks=(10,)
      )
    with self.assertRaisesRegex(ValueError, "No evaluation user has a target"):
      evaluation.evaluate(
        lambda h: tf.constant(self.users[: len(h)]),
        index,
        {"history": self.history, "targets": np.zeros_like(self.targets)},
        ks=(10,),
      )


class _FixedUsers(tf.keras.Model):
  """A model whose users are fixed vectors, for the callback test."""

  def __init__(self, users, items):
    super().__init__()
    self._user_table = tf.constant(users)
    self.item_table = tf.constant(items)

  def item_tower(self, ids):
    return tf.gather(self.item_table, ids)

  def call(self, history, training=None):
    return tf.gather(self._user_table, history[:, -1])


class RetrievalEvaluationTest(tf.test.TestCase):
  def test_logs_validation_metrics_for_early_stopping(self):
    rng = np.random.default_rng(1)
    items = rng.normal(size=(30, 4)).astype(np.float32)
    users = rng.normal(size=(6, 2, 4)).astype(np.float32)
    # The last history position holds the user's row, so the model can find its vectors.
    history = np.stack([np.zeros(6, np.int32), np.arange(6, dtype=np.int32)], axis=1)
    targets = rng.integers(2, 30, size=(6, 1)).astype(np.int32)
    examples = {"history": history, "targets": targets}
    callback = evaluation.RetrievalEvaluation(examples, num_items=30, ks=(5,))
    callback.set_model(_FixedUsers(users, items))
    callback.set_params({"epochs": 3})
    logs = {}
    callback.on_epoch_end(0, logs)
    expected = _numpy_metrics(users, items, history, targets, 5)
    self.assertAllClose(logs["val_recall@5"], expected["recall@5"], atol=1e-6)
    self.assertAllClose(logs["val_ndcg@5"], expected["ndcg@5"], atol=1e-6)
    self.assertEqual(callback.history[0]["epoch"], 1)
    # every=2 skips epoch 1 but always evaluates the last epoch (3).
    sparse = evaluation.RetrievalEvaluation(examples, num_items=30, ks=(5,), every=2)
    sparse.set_model(callback.model)
    sparse.set_params({"epochs": 3})
    for epoch in range(3):
      sparse.on_epoch_end(epoch, {})
    self.assertEqual([entry["epoch"] for entry in sparse.history], [2, 3])


if __name__ == "__main__":
  tf.test.main()
