"""Tests for the IDW retrieval task against closed-form numpy computations."""

import re

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
from absl.testing import parameterized

from mtmi_tfrs.tasks import IDWRetrieval
from mtmi_tfrs.tasks.idw_retrieval import MIN_FLOAT


def _normalized(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _reference_tower_losses(u, v, alpha, loss, negatives, beta=None, margin=0.5, q=None, ids=None):
  """Per-tower losses l_bk of DESIGN §2, written directly in numpy.

  z_bkj = -alpha * ||u_bk - v_j||^2 (minus log q_j), accidental hits masked;
  "merged" replaces every negative logit by max_k z_bkj, "interpolated" by
  sum_k w_bkj z_bkj with w_bkj the IDW weights (divergence beta) of d(u_bk, v_j);
  softmax: logsumexp_j z_bkj - z_bkb; triplet: mean over valid negatives of
  max(0, margin + z_bkj - z_bkb).
  """
  batch, num_candidates = u.shape[0], v.shape[0]
  squared = ((u[:, :, None, :] - v[None, None, :, :]) ** 2).sum(-1)
  logits = -alpha * squared
  if q is not None:
    logits = logits - np.log(np.clip(q, 1e-6, 1.0))
  positive = np.eye(batch, num_candidates, dtype=bool)
  valid = ~positive
  if ids is not None:
    duplicate = (ids[:batch, None] == ids[None, :]) & ~positive
    logits = logits + duplicate[:, None, :] * MIN_FLOAT
    valid &= ~duplicate
  if negatives == "interpolated" and not np.isinf(beta):
    scored = (_reference_weights(squared, beta) * logits).sum(axis=1)
    logits = np.where(positive[:, None, :], logits, scored[:, None, :])
  elif negatives != "per_tower":
    logits = np.where(positive[:, None, :], logits, logits.max(axis=1)[:, None, :])
  rows = np.arange(batch)
  positive_logits = logits[rows, :, rows]
  if loss == "softmax":
    top = logits.max(-1, keepdims=True)
    lse = np.log(np.exp(logits - top).sum(-1)) + top[..., 0]
    return lse - positive_logits, squared[rows, :, rows]
  hinge = np.maximum(0.0, margin + logits - positive_logits[..., None]) * valid[:, None, :]
  return hinge.sum(-1) / valid.sum(-1)[:, None], squared[rows, :, rows]


def _reference_weights(positive_squared, beta, eps=1e-6):
  # Distances over axis 1 (the towers); a shift in log space keeps large
  # beta finite, as the softmax form of the weights does.
  log_inverse = -beta * np.log(np.sqrt(positive_squared) + eps)
  inverse = np.exp(log_inverse - log_inverse.max(axis=1, keepdims=True))
  return inverse / inverse.sum(axis=1, keepdims=True)


_FORMS = [
  dict(testcase_name=f"{loss}_{negatives}", loss=loss, negatives=negatives)
  for loss in ("softmax", "triplet")
  for negatives in ("per_tower", "merged", "interpolated")
]


class IDWRetrievalTest(tf.test.TestCase, parameterized.TestCase):
  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.users = _normalized(rng.normal(size=(5, 3, 4))).astype(np.float32)
    self.items = _normalized(rng.normal(size=(7, 4))).astype(np.float32)

  @parameterized.named_parameters(*_FORMS)
  def test_beta_zero_is_unweighted_mean_over_towers(self, loss, negatives):
    # beta = 0: w_k = 1 / K, so the loss is sum_b mean_k l_bk.
    task = IDWRetrieval(alpha=3.0, beta=0.0, loss=loss, negatives=negatives)
    tower_losses, _ = _reference_tower_losses(self.users, self.items, 3.0, loss, negatives, 0.0)
    self.assertAllClose(task(self.users, self.items), tower_losses.mean(1).sum(), rtol=1e-5)

  @parameterized.named_parameters(*_FORMS)
  def test_large_beta_is_nearest_tower_loss(self, loss, negatives):
    # beta -> inf: the whole example goes to argmin_k d(u_k, v+).
    tower_losses, positive_squared = _reference_tower_losses(
      self.users, self.items, 3.0, loss, negatives, float("inf")
    )
    nearest = tower_losses[np.arange(5), positive_squared.argmin(1)].sum()
    for beta in (200.0, float("inf")):
      task = IDWRetrieval(alpha=3.0, beta=beta, loss=loss, negatives=negatives)
      self.assertAllClose(task(self.users, self.items), nearest, rtol=1e-4)

  @parameterized.named_parameters(*_FORMS)
  def test_intermediate_beta_matches_reference(self, loss, negatives):
    tower_losses, positive_squared = _reference_tower_losses(
      self.users, self.items, 2.0, loss, negatives, 2.5, margin=0.3
    )
    weights = _reference_weights(positive_squared, 2.5)
    task = IDWRetrieval(alpha=2.0, beta=2.5, loss=loss, negatives=negatives, margin=0.3)
    self.assertAllClose(task(self.users, self.items), (weights * tower_losses).sum(), rtol=1e-5)

  def test_weights_sum_to_one_and_follow_inverse_distance(self):
    task = IDWRetrieval(beta=3.0)
    positive_squared = np.array([[0.25, 1.0, 4.0], [1.0, 1.0, 1.0]], np.float32)
    weights = task.interest_weights(positive_squared).numpy()
    self.assertAllClose(weights.sum(axis=1), [1.0, 1.0])
    # d = (0.5, 1, 2): w ∝ (8, 1, 1/8); equal distances share equally.
    self.assertAllClose(weights[0], np.array([8.0, 1.0, 0.125]) / 9.125, rtol=1e-5)
    self.assertAllClose(weights[1], [1 / 3] * 3)

  def test_weights_are_constant_for_the_gradient(self):
    task = IDWRetrieval(alpha=2.0, beta=2.0, negatives="per_tower")
    users = tf.constant(self.users)
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(users)
      loss = task(users, self.items)
      squared = task.squared_distances(users, self.items)
      positive_squared = tf.stack([squared[b, :, b] for b in range(5)])
      frozen = tf.constant(task.interest_weights(positive_squared))
      logits = -2.0 * squared
      tower_losses = tf.stack(
        [tf.reduce_logsumexp(logits[b], -1) - logits[b, :, b] for b in range(5)]
      )
      frozen_loss = tf.reduce_sum(frozen * tower_losses)
    frozen_gradient = tape.gradient(frozen_loss, users)
    self.assertAllClose(tape.gradient(loss, users), frozen_gradient, atol=1e-5)

    live = IDWRetrieval(alpha=2.0, beta=2.0, negatives="per_tower", stop_weight_gradient=False)
    with tf.GradientTape() as live_tape:
      live_tape.watch(users)
      live_loss = live(users, self.items)
    self.assertAllClose(live_loss, loss)
    self.assertNotAllClose(live_tape.gradient(live_loss, users), frozen_gradient)

  @parameterized.named_parameters(*_FORMS)
  def test_sample_weight_scales_each_example(self, loss, negatives):
    sample_weight = np.array([0.0, 1.0, 2.0, 0.5, 3.0], np.float32)
    tower_losses, positive_squared = _reference_tower_losses(
      self.users, self.items, 3.0, loss, negatives, 4.0
    )
    per_example = (_reference_weights(positive_squared, 4.0) * tower_losses).sum(1)
    task = IDWRetrieval(alpha=3.0, beta=4.0, loss=loss, negatives=negatives)
    self.assertAllClose(
      task(self.users, self.items, sample_weight=sample_weight),
      (sample_weight * per_example).sum(),
      rtol=1e-5,
    )
    mean_task = IDWRetrieval(alpha=3.0, beta=4.0, loss=loss, negatives=negatives, reduction="mean")
    self.assertAllClose(
      mean_task(self.users, self.items, sample_weight=sample_weight),
      (sample_weight * per_example).sum() / 5,
      rtol=1e-5,
    )

  @parameterized.named_parameters(*_FORMS)
  def test_log_q_and_accidental_hits_match_reference(self, loss, negatives):
    probability = np.array([0.1, 0.5, 0.01, 0.2, 1e-8, 0.3, 0.05], np.float32)
    ids = np.array([3, 1, 3, 2, 1, 3, 9])
    tower_losses, positive_squared = _reference_tower_losses(
      self.users, self.items, 3.0, loss, negatives, 4.0, q=probability, ids=ids
    )
    expected = (_reference_weights(positive_squared, 4.0) * tower_losses).sum()
    task = IDWRetrieval(
      alpha=3.0, beta=4.0, loss=loss, negatives=negatives, remove_accidental_hits=True
    )
    actual = task(
      self.users, self.items, candidate_sampling_probability=probability, candidate_ids=ids
    )
    self.assertAllClose(actual, expected, rtol=1e-5)

  @parameterized.named_parameters(
    dict(testcase_name="plain"),
    dict(testcase_name="sample_weight", sample_weight=True),
    dict(testcase_name="log_q", log_q=True),
    dict(testcase_name="accidental_hits", hits=True),
  )
  def test_single_tower_equals_tfrs_retrieval(self, sample_weight=False, log_q=False, hits=False):
    # -alpha * ||u - v||^2 = 2 alpha <u, v> - 2 alpha on unit vectors, and the
    # softmax ignores the constant: temperature 1 / (2 alpha).
    users, items = self.users[:, :1, :], self.items
    kwargs = {}
    if sample_weight:
      kwargs["sample_weight"] = np.array([1.0, 0.0, 2.0, 0.5, 1.0], np.float32)
    if log_q:
      kwargs["candidate_sampling_probability"] = np.linspace(0.05, 0.9, 7).astype(np.float32)
    if hits:
      kwargs["candidate_ids"] = np.array([4, 2, 4, 7, 2, 0, 4])
    ours = IDWRetrieval(alpha=5.0, beta=8.0, remove_accidental_hits=hits)
    theirs = tfrs.tasks.Retrieval(temperature=0.1, remove_accidental_hits=hits)
    self.assertAllClose(
      ours(users, items, **kwargs), theirs(users[:, 0], items, **kwargs), atol=1e-5, rtol=1e-5
    )

  def test_merged_negatives_with_infinite_beta_equal_tfrs_maxsim(self):
    # The nearest tower has the largest logit, so with every negative scored by
    # the max over towers the loss is the softmax of max_k <u_k, v> / (1 / (2 alpha)).
    ours = IDWRetrieval(alpha=5.0, beta=float("inf"), negatives="merged")
    theirs = tfrs.tasks.Retrieval(temperature=0.1)
    self.assertAllClose(
      ours(self.users, self.items), theirs(self.users, self.items), atol=1e-5, rtol=1e-5
    )

  def test_batch_metrics_see_merged_scores(self):
    metric = tf.keras.metrics.TopKCategoricalAccuracy(k=1)
    task = IDWRetrieval(batch_metrics=[metric])
    users = np.tile(self.items[:5, None, :], (1, 2, 1))
    task(users, self.items)
    self.assertAllClose(metric.result(), 1.0)

  @parameterized.named_parameters(
    dict(testcase_name="rank2_users", users=(5, 4), items=(7, 4), match="[batch, K, dim]"),
    dict(
      testcase_name="rank3_items",
      users=(5, 3, 4),
      items=(7, 1, 4),
      match="item_embeddings must be [batch + extra, dim]",
    ),
    dict(testcase_name="dim_mismatch", users=(5, 3, 4), items=(7, 5), match="must share dim"),
    dict(testcase_name="k_mismatch", users=(5, 2, 4), items=(7, 4), match="K=3"),
  )
  def test_bad_shapes_name_the_argument(self, users, items, match):
    task = IDWRetrieval(num_towers=3)
    with self.assertRaisesRegex(ValueError, re.escape(match)):
      task(np.zeros(users, np.float32), np.zeros(items, np.float32))

  def test_fewer_candidates_than_users_fails(self):
    with self.assertRaisesRegex(tf.errors.InvalidArgumentError, "at least batch rows"):
      IDWRetrieval()(self.users, self.items[:3])

  @parameterized.named_parameters(
    dict(testcase_name="negative_beta", kwargs=dict(beta=-1.0), match="beta must be >= 0"),
    dict(testcase_name="zero_alpha", kwargs=dict(alpha=0.0), match="alpha must be > 0"),
    dict(testcase_name="unknown_loss", kwargs=dict(loss="hinge"), match="loss must be one of"),
    dict(
      testcase_name="unknown_negatives",
      kwargs=dict(negatives="all"),
      match="negatives must be one of",
    ),
    dict(testcase_name="zero_eps", kwargs=dict(eps=0.0), match="eps must be > 0"),
    dict(testcase_name="reduction", kwargs=dict(reduction="max"), match="reduction must be"),
  )
  def test_bad_arguments_name_the_argument(self, kwargs, match):
    with self.assertRaisesRegex(ValueError, match):
      IDWRetrieval(**kwargs)

  def test_accidental_hits_need_ids(self):
    with self.assertRaisesRegex(ValueError, "candidate_ids must be supplied"):
      IDWRetrieval(remove_accidental_hits=True)(self.users, self.items)

  def test_config_round_trip(self):
    task = IDWRetrieval(
      alpha=4.0,
      beta=float("inf"),
      loss="triplet",
      negatives="per_tower",
      margin=0.2,
      num_towers=3,
      name="idw",
    )
    restored = IDWRetrieval.from_config(task.get_config())
    self.assertEqual(restored.get_config(), task.get_config())
    self.assertAllClose(restored(self.users, self.items), task(self.users, self.items))

  def test_works_in_tf_function(self):
    task = IDWRetrieval()
    compiled = tf.function(task)
    self.assertAllClose(compiled(self.users, self.items), task(self.users, self.items))


if __name__ == "__main__":
  tf.test.main()
