"""Data: raw logs -> per-user sequences -> tf.data, the ComiRec protocol."""

from mtmi_tfrs.data.loaders import DataError
from mtmi_tfrs.data.loaders import InteractionLog
from mtmi_tfrs.data.loaders import load_amazon
from mtmi_tfrs.data.loaders import load_item_features
from mtmi_tfrs.data.loaders import load_movielens
from mtmi_tfrs.data.loaders import load_table
from mtmi_tfrs.data.pipelines import evaluation_arrays
from mtmi_tfrs.data.pipelines import evaluation_dataset
from mtmi_tfrs.data.pipelines import training_dataset
from mtmi_tfrs.data.preprocessing import SequenceData
from mtmi_tfrs.data.preprocessing import k_core
from mtmi_tfrs.data.preprocessing import prepare
from mtmi_tfrs.data.preprocessing import split_users
from mtmi_tfrs.data.synthetic import SyntheticTruth
from mtmi_tfrs.data.synthetic import make_synthetic
from mtmi_tfrs.data.vocabulary import OOV
from mtmi_tfrs.data.vocabulary import PAD
from mtmi_tfrs.data.vocabulary import Vocabulary

__all__ = [
  "DataError",
  "InteractionLog",
  "OOV",
  "PAD",
  "SequenceData",
  "SyntheticTruth",
  "Vocabulary",
  "evaluation_arrays",
  "evaluation_dataset",
  "k_core",
  "load_amazon",
  "load_item_features",
  "load_movielens",
  "load_table",
  "make_synthetic",
  "prepare",
  "split_users",
  "training_dataset",
]
