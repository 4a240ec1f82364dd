"""Tests for MultiTowerModel: training, K = 1 reduction, fusion, save/restore."""

import re

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
from absl.testing import parameterized

from mtmi_tfrs import data
from mtmi_tfrs import layers
from mtmi_tfrs import models
from mtmi_tfrs import tasks
from mtmi_tfrs import towers


def _small_data():
  log, _ = data.make_synthetic(
    num_users=300, num_items=120, num_categories=6, min_length=8, max_length=16, seed=3
  )
  return data.prepare(log, seed=0)


def _without_build(config):
  """A config minus Keras's `build_config`, which records the last input shape."""
  if isinstance(config, dict):
    return {k: _without_build(v) for k, v in config.items() if k != "build_config"}
  return config


def _model(num_items, num_towers=3, spec=None, **kwargs):
  embedding = tf.keras.layers.Embedding(num_items, 16)
  return models.MultiTowerModel(
    embedding, spec or towers.GRUTower(16, 16), num_towers=num_towers, **kwargs
  )


class MultiTowerModelTest(tf.test.TestCase, parameterized.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.data = _small_data()
    cls.history = data.evaluation_arrays(cls.data, "valid", max_len=8)["history"][:16]

  def _train(self, model, epochs=3):
    dataset = data.training_dataset(self.data, batch_size=64, max_len=8, seed=0)
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01))
    return model.fit(dataset, epochs=epochs, verbose=0).history["loss"]

  @parameterized.named_parameters(
    dict(testcase_name="fused_gru", spec=towers.GRUTower(16, 16), fuse=True),
    dict(testcase_name="mean_pool", spec=towers.MeanPoolTower((16,), 16)),
    dict(testcase_name="self_attention", spec=towers.SelfAttentionTower(8, output_dim=16)),
  )
  def test_fit_decreases_the_loss_and_separates_the_towers(self, spec, fuse="auto"):
    tf.keras.utils.set_random_seed(0)
    model = _model(self.data.num_items, spec=spec, repel=layers.UserRepel(0.5, 1.0), fuse=fuse)
    losses = self._train(model)
    self.assertTrue(np.all(np.isfinite(losses)))
    self.assertLess(losses[-1], losses[0])
    vectors = model({"history": self.history}).numpy()
    self.assertEqual(vectors.shape, (16, 3, 16))
    self.assertAllClose(np.linalg.norm(vectors, axis=-1), np.ones((16, 3)), atol=1e-5)
    pairwise = np.linalg.norm(vectors[:, :, None] - vectors[:, None, :], axis=-1)
    off_diagonal = pairwise[:, ~np.eye(3, dtype=bool)]
    self.assertGreater(off_diagonal.min(), 0.05)

  def test_item_tower_gives_one_vector_per_item(self):
    model = _model(self.data.num_items)
    vectors = model.item_tower(tf.range(self.data.num_items))
    self.assertEqual(vectors.shape, (self.data.num_items, 16))

  def test_single_tower_is_a_tfrs_two_tower_model(self):
    # K = 1, softmax: the loss equals tfrs.tasks.Retrieval on the same vectors.
    model = _model(self.data.num_items, num_towers=1, task=tasks.IDWRetrieval(alpha=5.0))
    batch = next(iter(data.training_dataset(self.data, batch_size=32, max_len=8, seed=1)))
    users = model(batch)
    self.assertEqual(users.shape, (32, 1, 16))
    expected = tfrs.tasks.Retrieval(temperature=0.1)(
      users[:, 0], model.item_tower(batch["item_id"])
    )
    self.assertAllClose(model.compute_loss(batch), expected, rtol=1e-5)

  def test_fused_towers_equal_separate_towers_with_the_same_weights(self):
    fused = _model(self.data.num_items, fuse=True)
    separate = _model(self.data.num_items, fuse=False)
    fused({"history": self.history})
    separate({"history": self.history})
    separate.item_embedding.set_weights(fused.item_embedding.get_weights())
    fused.user_towers[0].load_from_towers(separate.user_towers)
    self.assertAllClose(
      fused({"history": self.history}), separate({"history": self.history}), atol=1e-5
    )

  def test_saved_weights_restore_identical_outputs(self):
    model = _model(self.data.num_items, repel=layers.UserRepel())
    self._train(model, epochs=1)
    expected = model({"history": self.history})
    items = model.item_tower(tf.range(10))
    path = self.get_temp_dir() + "/weights"
    model.save_weights(path)
    restored = models.MultiTowerModel.from_config(model.get_config())
    restored({"history": self.history})
    restored.item_tower(tf.range(10))
    restored.load_weights(path)
    self.assertAllClose(restored({"history": self.history}), expected)
    self.assertAllClose(restored.item_tower(tf.range(10)), items)
    self.assertEqual(_without_build(restored.get_config()), _without_build(model.get_config()))

  def _featured_item_tower(self, embedding):
    """An item tower with one feature per item: its index modulo 6."""
    return towers.ItemTower(
      embedding,
      feature_table=np.arange(self.data.num_items)[:, None] % 6,
      feature_vocab_size=6,
    )

  def test_item_features_flow_through_the_item_tower(self):
    embedding = tf.keras.layers.Embedding(self.data.num_items, 16)
    item_tower = self._featured_item_tower(embedding)
    model = models.MultiTowerModel(
      embedding, towers.GRUTower(16, 16), num_towers=2, item_tower=item_tower
    )
    losses = self._train(model, epochs=2)
    self.assertLess(losses[-1], losses[0])
    restored = models.MultiTowerModel.from_config(model.get_config())
    self.assertEqual(
      restored.item_tower.get_config()["feature_table_shape"], [self.data.num_items, 1]
    )

  @parameterized.named_parameters(
    dict(testcase_name="item_tower", history_encoder="item_tower"),
    dict(testcase_name="item_embedding", history_encoder="item_embedding"),
  )
  def test_windows_give_each_replica_its_recent_items(self, history_encoder):
    embedding = tf.keras.layers.Embedding(self.data.num_items, 16)
    item_tower = self._featured_item_tower(embedding)
    model = models.MultiTowerModel(
      embedding,
      towers.AttentionPoolTower(max_len=8, output_dim=None),
      num_towers=3,
      item_tower=item_tower,
      windows=(1, 3, 8),
      history_encoder=history_encoder,
    )
    vectors = model({"history": self.history})
    self.assertEqual([t.window for t in model.user_towers], [1, 3, 8])
    # The window-1 tower pools the last item alone: its (normalised) encoding.
    encode = item_tower if history_encoder == "item_tower" else embedding
    last_item = tf.math.l2_normalize(encode(self.history[:, -1]), axis=-1)
    self.assertAllClose(vectors[:, 0], last_item, atol=1e-5)
    self.assertNotAllClose(vectors[:, 0], vectors[:, 2])
    restored = models.MultiTowerModel.from_config(model.get_config())
    restored({"history": self.history})
    restored.set_weights(model.get_weights())
    self.assertAllClose(restored({"history": self.history}), vectors, atol=1e-6)
    self.assertEqual(restored.get_config()["windows"], [1, 3, 8])

  def test_windowed_towers_train(self):
    tf.keras.utils.set_random_seed(0)
    model = _model(
      self.data.num_items,
      spec=towers.AttentionPoolTower(max_len=8, output_dim=None),
      windows=towers.geometric_windows(3, 8),
      repel=layers.UserRepel(),
    )
    losses = self._train(model, epochs=2)
    self.assertTrue(np.all(np.isfinite(losses)))
    self.assertLess(losses[-1], losses[0])

  def test_bad_windows_and_history_encoder_are_named(self):
    embedding = tf.keras.layers.Embedding(10, 4)
    with self.assertRaisesRegex(ValueError, re.escape("windows must be 2 positive history")):
      models.MultiTowerModel(embedding, towers.GRUTower(4, 4), num_towers=2, windows=[1, 2, 3])
    with self.assertRaisesRegex(ValueError, "fuse=True cannot be combined with windows"):
      models.MultiTowerModel(
        embedding, towers.GRUTower(4, 4), num_towers=2, windows=[1, 2], fuse=True
      )
    with self.assertRaisesRegex(ValueError, "wrap the towers of a list in"):
      models.MultiTowerModel(
        embedding, [towers.GRUTower(4, 4), towers.GRUTower(4, 4)], windows=[1, 2]
      )
    with self.assertRaisesRegex(ValueError, "history_encoder must be one of"):
      models.MultiTowerModel(embedding, towers.GRUTower(4, 4), history_encoder="user")

  def test_trains_under_mirrored_strategy(self):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
      model = _model(self.data.num_items, repel=layers.UserRepel())
    losses = self._train(model, epochs=2)
    self.assertTrue(np.all(np.isfinite(losses)))

  def test_bad_history_shape_is_named(self):
    model = _model(self.data.num_items)
    with self.assertRaisesRegex(ValueError, re.escape("history must be [batch, max_len]")):
      model(tf.zeros([4], tf.int32))

  def test_tower_count_mismatch_is_named(self):
    embedding = tf.keras.layers.Embedding(10, 4)
    with self.assertRaisesRegex(ValueError, "num_towers=3 disagrees with the 2 user_towers"):
      models.MultiTowerModel(
        embedding, [towers.GRUTower(4, 4), towers.GRUTower(4, 4)], num_towers=3
      )
    model = models.MultiTowerModel(
      embedding, towers.GRUTower(4, 4), num_towers=2, task=tasks.IDWRetrieval(num_towers=3)
    )
    batch = {"history": tf.ones([2, 3], tf.int32), "item_id": tf.constant([1, 2])}
    with self.assertRaisesRegex(ValueError, re.escape("[batch, K=3, dim]")):
      model.compute_loss(batch)


if __name__ == "__main__":
  tf.test.main()
