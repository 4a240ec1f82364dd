"""Tests for the user towers, their fused forms and the item tower."""

import re

import numpy as np
import tensorflow as tf
from absl.testing import parameterized

from mtmi_tfrs import towers

_TOWERS = [
  dict(testcase_name="mean_pool", tower_fn=lambda: towers.MeanPoolTower((16,), 8)),
  dict(
    testcase_name="mean_pool_identity",
    tower_fn=lambda: towers.MeanPoolTower((), output_dim=None),
  ),
  dict(
    testcase_name="mean_pool_residual",
    tower_fn=lambda: towers.MeanPoolTower((16,), 8, residual=True),
  ),
  dict(testcase_name="gru", tower_fn=lambda: towers.GRUTower(12, 8)),
  dict(
    testcase_name="attention_pool",
    tower_fn=lambda: towers.AttentionPoolTower(max_len=6, hidden_units=10, output_dim=8),
  ),
  dict(
    testcase_name="self_attention",
    tower_fn=lambda: towers.SelfAttentionTower(max_len=6, output_dim=8, dropout=0.0),
  ),
  dict(
    testcase_name="recent_window",
    tower_fn=lambda: towers.RecentWindow(towers.GRUTower(12, 8), window=3),
  ),
]


def _history(batch=4, length=6, seed=0):
  rng = np.random.default_rng(seed)
  embeddings = rng.normal(size=(batch, length, 8)).astype(np.float32)
  mask = np.ones((batch, length), bool)
  mask[0, :4] = False
  mask[1, :1] = False
  return embeddings, mask


class UserTowerTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.named_parameters(*_TOWERS)
  def test_left_padding_does_not_change_the_output(self, tower_fn):
    tower = tower_fn()
    embeddings, mask = _history()
    full = tower(embeddings, mask=mask)
    self.assertEqual(full.shape, (4, 8))
    # Row 0 holds 2 valid items; the same 2 items without padding give the same vector.
    short = tower(embeddings[:1, 4:], mask=mask[:1, 4:])
    self.assertAllClose(full[:1], short, atol=1e-5)
    # Garbage in the padded positions is ignored too.
    noisy = embeddings.copy()
    noisy[0, :4] = 100.0
    self.assertAllClose(tower(noisy, mask=mask)[0], full[0], atol=1e-5)

  @parameterized.named_parameters(*_TOWERS)
  def test_config_round_trip_and_weights(self, tower_fn):
    tower = tower_fn()
    embeddings, mask = _history()
    expected = tower(embeddings, mask=mask)
    restored = type(tower).from_config(tower.get_config())
    restored(embeddings, mask=mask)
    restored.set_weights(tower.get_weights())
    self.assertAllClose(restored(embeddings, mask=mask), expected, atol=1e-6)

  @parameterized.named_parameters(*_TOWERS)
  def test_works_in_a_functional_model_and_tf_function(self, tower_fn):
    tower = tower_fn()
    embeddings, mask = _history()
    inputs = tf.keras.Input((6, 8))
    masks = tf.keras.Input((6,), dtype=tf.bool)
    model = tf.keras.Model([inputs, masks], tower(inputs, mask=masks))
    self.assertAllClose(model([embeddings, mask]), tower(embeddings, mask=mask), atol=1e-5)
    compiled = tf.function(lambda x, m: tower(x, mask=m))
    self.assertAllClose(compiled(embeddings, mask), tower(embeddings, mask=mask), atol=1e-5)

  def test_identity_mean_pool_is_the_centroid_of_the_valid_items(self):
    embeddings, mask = _history()
    # Row 0: the mean of its 2 valid items; row 1: of its 5 valid items.
    expected = np.stack(
      [embeddings[0, 4:].mean(0), embeddings[1, 1:].mean(0), *embeddings[2:].mean(1)]
    )
    tower = towers.MeanPoolTower((), output_dim=None)
    self.assertAllClose(tower(embeddings, mask=mask), expected, atol=1e-6)
    self.assertEmpty(tower.trainable_weights)

  def test_residual_mean_pool_adds_the_centroid_to_the_mlp(self):
    embeddings, mask = _history()
    tower = towers.MeanPoolTower((16,), 8, residual=True)
    centroid = towers.MeanPoolTower((), output_dim=None)(embeddings, mask=mask)
    hidden, output = tower._dense_layers
    expected = centroid + output(hidden(centroid))
    self.assertAllClose(tower(embeddings, mask=mask), expected, atol=1e-6)
    with self.assertRaisesRegex(ValueError, "residual=True needs an MLP"):
      towers.MeanPoolTower((), output_dim=None, residual=True)
    for wrong_width in (
      towers.MeanPoolTower((16,), 4, residual=True),
      towers.FusedMeanPoolTowers(2, (16,), 4, residual=True),
    ):
      with self.assertRaisesRegex(
        ValueError, re.escape("output_dim=4 must equal the embedding size")
      ):
        wrong_width(embeddings, mask=mask)

  def test_identity_mean_pool_rejects_hidden_layers(self):
    with self.assertRaisesRegex(ValueError, re.escape("takes no hidden_units, got [16]")):
      towers.MeanPoolTower((16,), output_dim=None)
    with self.assertRaisesRegex(ValueError, re.escape("takes no hidden_units, got [16]")):
      towers.FusedMeanPoolTowers(2, (16,), output_dim=None)

  def test_self_attention_rejects_long_history(self):
    tower = towers.SelfAttentionTower(max_len=4)
    with self.assertRaisesRegex(ValueError, re.escape("[batch, <= max_len=4, dim]")):
      tower(np.zeros((2, 6, 8), np.float32))


class RecentWindowTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.named_parameters(
    dict(testcase_name="k1", num_towers=1, max_len=20, expected=(20,)),
    # round(20 ** (k / 3)) for k = 0..3.
    dict(testcase_name="k4", num_towers=4, max_len=20, expected=(1, 3, 7, 20)),
    # round(20 ** (k / 4)) = 1, 2, 4, 9, 20.
    dict(testcase_name="k5", num_towers=5, max_len=20, expected=(1, 2, 4, 9, 20)),
    # round(20 ** (k / 7)) = 1, 2, 2, 4, 6, 8, 13, 20: the repeated 2 is raised to 3.
    dict(testcase_name="k8", num_towers=8, max_len=20, expected=(1, 2, 3, 4, 6, 8, 13, 20)),
    dict(testcase_name="k_equals_max_len", num_towers=4, max_len=4, expected=(1, 2, 3, 4)),
  )
  def test_geometric_windows(self, num_towers, max_len, expected):
    self.assertEqual(towers.geometric_windows(num_towers, max_len), expected)

  def test_geometric_windows_reject_impossible_requests(self):
    with self.assertRaisesRegex(ValueError, "max_len=3 cannot hold 4"):
      towers.geometric_windows(4, 3)
    with self.assertRaisesRegex(ValueError, "num_towers must be >= 1"):
      towers.geometric_windows(0, 3)

  def test_window_of_one_is_the_last_item(self):
    # An identity attention pool over one item returns that item's embedding.
    tower = towers.RecentWindow(towers.AttentionPoolTower(max_len=6, output_dim=None), 1)
    embeddings, mask = _history()
    self.assertAllClose(tower(embeddings, mask=mask), embeddings[:, -1], atol=1e-6)

  def test_window_sees_only_the_most_recent_items(self):
    inner = towers.AttentionPoolTower(max_len=6, hidden_units=10, output_dim=8)
    tower = towers.RecentWindow(inner, window=3)
    embeddings, mask = _history()
    expected = inner(embeddings[:, -3:], mask=mask[:, -3:])
    self.assertAllClose(tower(embeddings, mask=mask), expected, atol=1e-5)
    # Row 0 has 2 valid items: a window of 3 keeps both, exactly as the plain tower does.
    self.assertAllClose(tower(embeddings, mask=mask)[0], inner(embeddings, mask=mask)[0], atol=1e-5)
    self.assertEqual(tower.window, 3)

  def test_rejects_a_window_below_one(self):
    with self.assertRaisesRegex(ValueError, "window must be >= 1, got 0"):
      towers.RecentWindow(towers.GRUTower(4, 4), window=0)


class FusedTowersTest(tf.test.TestCase, parameterized.TestCase):
  @parameterized.named_parameters(
    dict(testcase_name="mean_pool", spec=towers.MeanPoolTower((16, 12), 8)),
    dict(testcase_name="mean_pool_identity", spec=towers.MeanPoolTower((), None)),
    dict(testcase_name="mean_pool_residual", spec=towers.MeanPoolTower((16,), 8, residual=True)),
    dict(testcase_name="gru", spec=towers.GRUTower(12, 8)),
    dict(testcase_name="attention_pool", spec=towers.AttentionPoolTower(6, 10, 8)),
    dict(testcase_name="attention_pool_identity", spec=towers.AttentionPoolTower(6, 10, None)),
  )
  def test_fused_equals_separate_towers_with_the_same_weights(self, spec):
    embeddings, mask = _history()
    separate = [type(spec).from_config(spec.get_config()) for _ in range(3)]
    expected = tf.stack([t(embeddings, mask=mask) for t in separate], axis=1)
    fused = towers.fuse(spec, 3)
    fused(embeddings, mask=mask)
    fused.load_from_towers(separate)
    self.assertAllClose(fused(embeddings, mask=mask), expected, atol=1e-5)
    restored = type(fused).from_config(fused.get_config())
    restored(embeddings, mask=mask)
    restored.set_weights(fused.get_weights())
    self.assertAllClose(restored(embeddings, mask=mask), expected, atol=1e-5)

  def test_self_attention_does_not_fuse(self):
    self.assertTrue(towers.can_fuse(towers.GRUTower()))
    self.assertFalse(towers.can_fuse(towers.SelfAttentionTower()))


class ItemTowerTest(tf.test.TestCase):
  def test_identity_of_the_shared_embedding_when_plain(self):
    embedding = tf.keras.layers.Embedding(10, 4)
    tower = towers.ItemTower(embedding, normalize=False)
    self.assertAllClose(tower(tf.range(10)), embedding(tf.range(10)))
    normalized = towers.ItemTower(embedding)(tf.range(10))
    self.assertAllClose(tf.norm(normalized, axis=-1), tf.ones(10))

  def test_features_add_a_projection_of_their_masked_mean(self):
    embedding = tf.keras.layers.Embedding(4, 3)
    table = np.array([[0, 0], [1, 0], [1, 2], [2, 1]])
    tower = towers.ItemTower(embedding, feature_table=table, feature_vocab_size=3, normalize=False)
    vectors = tower(tf.range(4)).numpy()
    features = tower.feature_embedding.embeddings.numpy()
    projection = tower.feature_projection.kernel.numpy()
    ids = embedding.embeddings.numpy()
    self.assertAllClose(vectors[0], ids[0])  # no features
    self.assertAllClose(vectors[1], ids[1] + features[1] @ projection, atol=1e-6)
    self.assertAllClose(
      vectors[2], ids[2] + (features[1] + features[2]) / 2 @ projection, atol=1e-6
    )
    self.assertAllClose(vectors[2] - ids[2], vectors[3] - ids[3], atol=1e-6)  # order-free

  def test_feature_table_survives_config_and_weights(self):
    embedding = tf.keras.layers.Embedding(4, 3)
    table = np.array([[0, 0], [1, 0], [1, 2], [2, 1]])
    tower = towers.ItemTower(embedding, feature_table=table, feature_vocab_size=3)
    expected = tower(tf.range(4))
    restored = towers.ItemTower(embedding, **tower.get_config())
    restored(tf.range(4))
    restored.set_weights(tower.get_weights())
    self.assertAllClose(restored(tf.range(4)), expected)

  def test_bad_feature_table(self):
    embedding = tf.keras.layers.Embedding(4, 3)
    with self.assertRaisesRegex(ValueError, re.escape("[num_items, max_features]")):
      towers.ItemTower(embedding, feature_table=np.zeros(4, int), feature_vocab_size=3)
    with self.assertRaisesRegex(ValueError, "feature_vocab_size=3"):
      towers.ItemTower(embedding, feature_table=np.full((4, 1), 5), feature_vocab_size=3)


if __name__ == "__main__":
  tf.test.main()
