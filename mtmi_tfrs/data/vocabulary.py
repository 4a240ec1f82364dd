"""Raw id <-> contiguous index mapping with reserved padding and OOV slots."""

import json
import os
from typing import Sequence
from typing import Union

import numpy as np
import pandas as pd

PAD = 0
OOV = 1
NUM_RESERVED = 2


class Vocabulary:
  """Maps raw ids (strings or integers) to indices `2..size-1`.

  Index 0 is padding and index 1 is out-of-vocabulary, so `size` is the
  number of known ids plus 2 and an embedding table of `size` rows covers
  every index. Integer ids stay integers (`dtype == "int64"`), everything
  else is a string id (`dtype == "string"`), so that serving can take the ids
  in their original form.
  """

  def __init__(self, tokens: Union[Sequence, np.ndarray]) -> None:
    """Initializes the vocabulary.

    Args:
      tokens: The known ids, in index order (token `t` gets index `2 + t`).

    Raises:
      ValueError: if an id appears twice.
    """
    tokens = np.asarray(tokens)
    if np.issubdtype(tokens.dtype, np.integer):
      tokens = tokens.astype(np.int64)
      self.dtype = "int64"
    else:
      tokens = tokens.astype(str).astype(object)
      self.dtype = "string"
    self._index = pd.Index(tokens)
    if not self._index.is_unique:
      duplicated = self._index[self._index.duplicated()][0]
      raise ValueError(f"Vocabulary ids must be unique; {duplicated!r} appears twice.")
    self.tokens = tokens

  @classmethod
  def from_ids(cls, ids: Union[Sequence, np.ndarray, pd.Series]) -> "Vocabulary":
    """A vocabulary of the distinct ids, sorted."""
    return cls(np.sort(pd.unique(np.asarray(ids))))

  @property
  def size(self) -> int:
    """Number of indices, padding and OOV included."""
    return len(self.tokens) + NUM_RESERVED

  def lookup(self, ids: Union[Sequence, np.ndarray, pd.Series]) -> np.ndarray:
    """Indices of raw ids; unknown ids map to `OOV` (1)."""
    ids = np.asarray(ids)
    if self.dtype == "string":
      ids = ids.astype(str)
    positions = self._index.get_indexer(ids)
    return np.where(positions < 0, OOV, positions + NUM_RESERVED).astype(np.int64)

  def ids(self, indices: Union[Sequence, np.ndarray]) -> np.ndarray:
    """Raw ids of indices; padding and OOV map to None."""
    indices = np.asarray(indices)
    known = indices >= NUM_RESERVED
    result = np.full(indices.shape, None, dtype=object)
    result[known] = self.tokens[indices[known] - NUM_RESERVED]
    return result

  def to_json(self) -> dict:
    return {"dtype": self.dtype, "tokens": self.tokens.tolist()}

  @classmethod
  def from_json(cls, payload: dict) -> "Vocabulary":
    dtype = np.int64 if payload["dtype"] == "int64" else object
    return cls(np.asarray(payload["tokens"], dtype=dtype))

  def save(self, path: str) -> None:
    """Writes the vocabulary as JSON (atomically: a temporary file, then rename)."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
      json.dump(self.to_json(), handle)
    os.replace(temporary, path)

  @classmethod
  def load(cls, path: str) -> "Vocabulary":
    with open(path, encoding="utf-8") as handle:
      return cls.from_json(json.load(handle))

  def __len__(self) -> int:
    return self.size

  def __eq__(self, other) -> bool:
    return (
      isinstance(other, Vocabulary)
      and self.dtype == other.dtype
      and np.array_equal(self.tokens, other.tokens)
    )
