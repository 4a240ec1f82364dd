"""Tests for the repel regulariser."""

import re

import numpy as np
import tensorflow as tf

from mtmi_tfrs.layers import UserRepel


class UserRepelTest(tf.test.TestCase):
  def test_zero_when_all_pairs_are_beyond_the_margin(self):
    users = np.array([[[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]], np.float32)  # distances >= 1.41
    self.assertAllClose(UserRepel(margin=1.0, weight=1.0)(users), 0.0)

  def test_closed_form_value(self):
    # User 0: d(u1,u2) = 0.6, d(u1,u3) = 0.8, d(u2,u3) = 1.0 with margin 0.9:
    #   R0 = ((0.9-0.6)^2 + (0.9-0.8)^2 + 0) / 3 = 0.1 / 3.
    # User 1: identical vectors, d = 0: R1 = 0.81.
    users = np.array(
      [
        [[0.0, 0.0], [0.6, 0.0], [0.0, 0.8]],
        [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]],
      ],
      np.float32,
    )
    expected = 2.0 * (0.1 / 3 + 0.81) / 2
    self.assertAllClose(UserRepel(margin=0.9, weight=2.0)(users), expected, rtol=1e-5)

  def test_single_tower_has_no_pairs(self):
    self.assertAllClose(UserRepel()(np.ones((4, 1, 3), np.float32)), 0.0)

  def test_gradient_pushes_a_close_pair_apart(self):
    users = tf.Variable([[[0.0, 0.0], [0.1, 0.0]]])
    repel = UserRepel(margin=1.0, weight=1.0)
    before = np.linalg.norm(users[0, 0] - users[0, 1])
    optimizer = tf.keras.optimizers.SGD(0.1)
    for _ in range(5):
      with tf.GradientTape() as tape:
        penalty = repel(users)
      optimizer.apply_gradients([(tape.gradient(penalty, users), users)])
    self.assertGreater(np.linalg.norm(users[0, 0] - users[0, 1]), before + 0.1)

  def test_rank_two_input_names_the_shape(self):
    with self.assertRaisesRegex(ValueError, re.escape("[batch, K, dim], got shape [32, 64]")):
      UserRepel()(np.zeros((32, 64), np.float32))

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "margin must be > 0"):
      UserRepel(margin=0.0)
    with self.assertRaisesRegex(ValueError, "weight must be >= 0"):
      UserRepel(weight=-1.0)

  def test_config_round_trip_and_functional_use(self):
    repel = UserRepel(margin=0.7, weight=0.3, name="repel")
    restored = UserRepel.from_config(repel.get_config())
    self.assertEqual(restored.get_config(), repel.get_config())
    inputs = tf.keras.Input(shape=(3, 4))
    model = tf.keras.Model(inputs, restored(inputs))
    users = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32) * 0.1
    self.assertAllClose(model(users), repel(users))


if __name__ == "__main__":
  tf.test.main()
