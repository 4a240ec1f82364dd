"""Test setup: mtmi_tfrs must choose Keras 2 before any test imports TensorFlow."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

import mtmi_tfrs  # noqa: E402,F401

# absltest's temp-dir helpers read flags; pytest never parses them.
flags.FLAGS.mark_as_parsed()
