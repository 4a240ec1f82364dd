"""Shared benchmark helpers: data sets by name, machine description, table output."""

import json
import os
import platform
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

import tensorflow as tf  # noqa: I001

import mtmi_tfrs  # noqa: F401  (chooses Keras 2 before TensorFlow loads)
from mtmi_tfrs import data

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
SHARED_DATA = os.environ.get(
  "MTMI_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
)


def load_dataset(name: str, data_format: Optional[str] = None, **synthetic_sizes):
  """Loads a benchmark data set by name or path.

  Args:
    name: `synthetic`, `ml-100k`, `amazon-beauty` (read from `$MTMI_DATA_DIR`
      or `../shared/data`), or a path to a file or directory.
    data_format: For paths: `movielens`, `amazon` or `table`.
    **synthetic_sizes: Arguments of `make_synthetic` for `synthetic`.

  Returns:
    `(InteractionLog, SyntheticTruth or None)`.

  Raises:
    FileNotFoundError: with instructions, when a named real data set is absent.
  """
  if name == "synthetic":
    return data.make_synthetic(seed=0, **synthetic_sizes)
  if name in ("ml-100k", "amazon-beauty"):
    directory = os.path.join(SHARED_DATA, name)
    if not os.path.isdir(directory):
      raise FileNotFoundError(
        f"{directory} not found. Download the data set (research licence) and set "
        "MTMI_DATA_DIR to the folder that holds ml-100k/ and amazon-beauty/."
      )
    if name == "ml-100k":
      return data.load_movielens(directory), None
    log = data.load_table(os.path.join(directory, "interactions.csv"))
    log.item_features = data.load_item_features(os.path.join(directory, "item_attributes.csv"))
    return log, None
  if data_format == "movielens":
    return data.load_movielens(name), None
  if data_format == "amazon":
    return data.load_amazon(name), None
  return data.load_table(name), None


def machine() -> str:
  return (
    f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}, "
    f"TensorFlow {tf.__version__}"
  )


def markdown_table(rows: List[Dict], columns: Sequence[str]) -> str:
  def cell(value):
    return f"{value:.4f}" if isinstance(value, float) else str(value)

  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
  return "\n".join(lines)


def write_results(path: str, payload: Dict, markdown: Optional[str] = None) -> None:
  """Writes JSON (and Markdown beside it), atomically."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  temporary = path + ".tmp"
  with open(temporary, "w", encoding="utf-8") as handle:
    json.dump(payload, handle, indent=2)
  os.replace(temporary, path)
  if markdown is not None:
    with open(os.path.splitext(path)[0] + ".md", "w", encoding="utf-8") as handle:
      handle.write(markdown + "\n")
