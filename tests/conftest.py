"""Test setup: mtmi_tfrs must choose Keras 2 before any test imports TensorFlow."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import mtmi_tfrs  # noqa: E402,F401
