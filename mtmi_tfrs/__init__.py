"""Multi-tower multi-interest (MTMI) retrieval for TensorFlow Recommenders.

Importing this package makes Keras 2 (`tf-keras`) the active `tf.keras`, as
TensorFlow Recommenders requires: when TensorFlow has not been imported yet,
`TF_USE_LEGACY_KERAS=1` is set before it is (also when TensorFlow is imported
but `tf.keras` not yet used). When `tf.keras` is already Keras 3, the import
fails with an `ImportError` that says how to fix it, instead of failing later
with an obscure Keras error.
"""

import os
import sys

_KERAS_2_HINT = (
  "mtmi_tfrs needs Keras 2 (tf-keras) as tf.keras, but tf.keras is already "
  "Keras {version}. Either import mtmi_tfrs before "
  "tensorflow, or set the environment variable TF_USE_LEGACY_KERAS=1 before "
  "Python starts (in Colab: `import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'` "
  "in the first cell, then restart the runtime). Install tf-keras with "
  "`pip install 'tf-keras==2.20.*'` if it is missing."
)


def _keras_not_chosen_yet() -> bool:
  """Whether TensorFlow has not yet decided which Keras `tf.keras` is."""
  tensorflow = sys.modules.get("tensorflow")
  if tensorflow is None:
    return True
  # TensorFlow resolves `tf.keras` lazily, on first use, from the variable.
  return not getattr(tensorflow.keras, "_tfll_initialized", True)


def _activate_keras_2():
  if _keras_not_chosen_yet():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  version_fn = getattr(tf.keras, "version", None)
  version = version_fn() if version_fn else "2"
  if not version.startswith("2"):
    raise ImportError(_KERAS_2_HINT.format(version=version))


_activate_keras_2()

# pylint: disable=g-import-not-at-top,wrong-import-position
from mtmi_tfrs import data  # noqa: E402
from mtmi_tfrs import evaluation  # noqa: E402
from mtmi_tfrs import layers  # noqa: E402
from mtmi_tfrs import models  # noqa: E402
from mtmi_tfrs import tasks  # noqa: E402
from mtmi_tfrs import towers  # noqa: E402

__version__ = "0.1.0"

__all__ = ["data", "evaluation", "layers", "models", "tasks", "towers"]
