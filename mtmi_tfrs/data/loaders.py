"""Loaders that turn raw interaction logs into one normalised table.

Every loader returns an `InteractionLog`: a DataFrame with the columns
`user_id`, `item_id`, `timestamp` (int64 seconds) and, when the source has
one, `weight`, plus optional item features (`item_id`, `features`: a list of
feature tokens per item). Raw ids are kept as they are (int64 when every id in
the column is an integer, strings otherwise). Malformed input raises a
`DataError` that names the file, the line or column, and the problem.
"""

import ast
import dataclasses
import os
from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

import numpy as np
import pandas as pd

INTERACTION_COLUMNS = ("user_id", "item_id", "timestamp")


class DataError(ValueError):
  """Raised for malformed or unusable input data."""


@dataclasses.dataclass
class InteractionLog:
  """A normalised interaction table and optional item features.

  Attributes:
    interactions: `user_id`, `item_id`, `timestamp` (int64) and optionally
      `weight` (float64), one row per event, in file order.
    item_features: Optional DataFrame with `item_id` and `features` (list of
      str tokens, e.g. `"brand=Nivea"`).
    report: Counts of everything dropped or ignored while loading.
    source: Where the data came from.
  """

  interactions: pd.DataFrame
  item_features: Optional[pd.DataFrame] = None
  report: Dict[str, int] = dataclasses.field(default_factory=dict)
  source: str = ""


def _read_delimited(
  path: str, sep: str, header: bool, names: Optional[Sequence[str]] = None, encoding: str = "utf-8"
) -> pd.DataFrame:
  if not os.path.exists(path):
    raise DataError(f"{path}: file not found.")
  if os.path.getsize(path) == 0:
    raise DataError(f"{path}: file is empty.")
  try:
    frame = pd.read_csv(
      path,
      sep=sep,
      header=0 if header else None,
      names=names,
      dtype=str,
      keep_default_na=False,
      encoding=encoding,
      engine="python" if len(sep) > 1 else "c",
      skipinitialspace=True,
    )
  except pd.errors.ParserError as error:
    raise DataError(f"{path}: malformed line: {error}") from None
  except pd.errors.EmptyDataError:
    raise DataError(f"{path}: file is empty.") from None
  except UnicodeDecodeError as error:
    raise DataError(f"{path}: not {encoding} text ({error}).") from None
  if frame.empty:
    raise DataError(f"{path}: no data rows.")
  return frame


def _line_number(frame: pd.DataFrame, row: int, header: bool) -> int:
  return int(frame.index[row]) + (2 if header else 1)


def _parse_ids(values: pd.Series, path: str, column: str, header: bool) -> pd.Series:
  values = values.astype(str).str.strip()
  empty = np.flatnonzero((values == "").to_numpy())
  if len(empty):
    line = _line_number(values.to_frame(), empty[0], header)
    raise DataError(
      f"{path}: line {line}: column {column!r} has an empty id ({len(empty)} rows in all)."
    )
  if values.str.fullmatch(r"-?\d{1,18}").all():
    return values.astype(np.int64)
  return values


def _parse_timestamps(values: pd.Series, path: str, column: str, header: bool) -> pd.Series:
  """Unix seconds, or dates/datetimes when no value in the column is a number."""
  numeric = pd.to_numeric(values, errors="coerce")
  if numeric.notna().any():
    parsed, kind = numeric, "unix timestamp"
  else:
    parsed, kind = pd.to_datetime(values, errors="coerce", utc=True, format="mixed"), "date"
  bad = np.flatnonzero(parsed.isna().to_numpy())
  if len(bad):
    line = _line_number(values.to_frame(), bad[0], header)
    raise DataError(
      f"{path}: line {line}: column {column!r}: cannot parse timestamp "
      f"{values.iloc[bad[0]]!r} as a {kind} ({len(bad)} rows in all)."
    )
  if kind == "date":
    epoch = pd.Timestamp(0, tz="UTC")
    return ((parsed - epoch) // pd.Timedelta(seconds=1)).astype(np.int64)
  return parsed.astype(np.int64)


def _parse_weights(values: pd.Series, path: str, column: str, header: bool) -> pd.Series:
  numeric = pd.to_numeric(values, errors="coerce")
  bad = np.flatnonzero((numeric.isna() | ~np.isfinite(numeric)).to_numpy())
  if len(bad):
    line = _line_number(values.to_frame(), bad[0], header)
    raise DataError(
      f"{path}: line {line}: column {column!r}: weight "
      f"{values.iloc[bad[0]]!r} is not a finite number."
    )
  return numeric.astype(np.float64)


def _normalise(
  frame: pd.DataFrame,
  path: str,
  user: str,
  item: str,
  timestamp: str,
  weight: Optional[str],
  header: bool,
) -> pd.DataFrame:
  wanted = [user, item, timestamp] + ([weight] if weight else [])
  missing = [c for c in wanted if c not in frame.columns]
  if missing:
    raise DataError(
      f"{path}: column(s) {missing} not found; the file has columns {list(frame.columns)}."
    )
  result = pd.DataFrame(
    {
      "user_id": _parse_ids(frame[user], path, user, header),
      "item_id": _parse_ids(frame[item], path, item, header),
      "timestamp": _parse_timestamps(frame[timestamp], path, timestamp, header),
    }
  )
  if weight:
    result["weight"] = _parse_weights(frame[weight], path, weight, header)
  return result.reset_index(drop=True)


def load_table(
  path: str,
  user_column: str = "user_id",
  item_column: str = "item_id",
  timestamp_column: str = "timestamp",
  weight_column: Optional[str] = None,
  sep: Optional[str] = None,
  header: bool = True,
  names: Optional[Sequence[str]] = None,
) -> InteractionLog:
  """Loads a generic CSV, TSV or Parquet interaction table.

  Args:
    path: The file; `.parquet` files are read as Parquet, `.tsv` as
      tab-separated, anything else as comma-separated unless `sep` says.
    user_column, item_column, timestamp_column: Source column names.
    weight_column: Optional source column of event weights (e.g. ratings).
    sep: Field separator for text files.
    header: Whether a text file's first line names the columns.
    names: Column names for a text file without a header.

  Returns:
    The `InteractionLog`.

  Raises:
    DataError: if the file is missing, empty or malformed.
  """
  if path.endswith(".parquet"):
    if not os.path.exists(path):
      raise DataError(f"{path}: file not found.")
    frame = pd.read_parquet(path).astype(str)
    header = True
    if frame.empty:
      raise DataError(f"{path}: no data rows.")
  else:
    if sep is None:
      sep = "\t" if path.endswith(".tsv") else ","
    frame = _read_delimited(path, sep, header, names)
  interactions = _normalise(
    frame, path, user_column, item_column, timestamp_column, weight_column, header
  )
  return InteractionLog(interactions, source=path)


def _split_tokens(values: pd.Series) -> pd.Series:
  """Splits multi-valued cells: `"a b"`, `"a|b"`, or a list literal `"['a', 'b']"`."""
  values = values.fillna("").astype(str).str.strip()
  is_list = values.str.startswith("[")
  tokens = values.where(is_list, values.str.replace("|", " ", regex=False)).str.split()
  if is_list.any():
    tokens[is_list] = [[str(t) for t in _flatten(ast.literal_eval(v))] for v in values[is_list]]
  return tokens


def _flatten(value) -> List:
  if isinstance(value, (list, tuple)):
    return [t for v in value for t in _flatten(v)]
  return [value] if value not in (None, "") else []


def load_item_features(
  path: str,
  item_column: str = "item_id",
  feature_columns: Optional[Sequence[str]] = None,
  sep: str = ",",
) -> pd.DataFrame:
  """Loads an item feature table with categorical or multi-valued columns.

  Cells of a multi-valued column hold space- or `|`-separated tokens, or a
  list literal. Each token becomes the feature `"column=token"`.

  Args:
    path: CSV/TSV file (or `.parquet`) with a header.
    item_column: Column of item ids.
    feature_columns: Columns to use; defaults to every other column.
    sep: Field separator.

  Returns:
    DataFrame with `item_id` and `features` (list of str).

  Raises:
    DataError: if the file is missing, empty or lacks a column.
  """
  if path.endswith(".parquet"):
    frame = pd.read_parquet(path).astype(str)
  else:
    frame = _read_delimited(path, "\t" if path.endswith(".tsv") else sep, header=True)
  if item_column not in frame.columns:
    raise DataError(
      f"{path}: item column {item_column!r} not found; the file has columns {list(frame.columns)}."
    )
  feature_columns = list(feature_columns or [c for c in frame.columns if c != item_column])
  missing = [c for c in feature_columns if c not in frame.columns]
  if missing:
    raise DataError(
      f"{path}: feature column(s) {missing} not found; the file has columns {list(frame.columns)}."
    )
  features = pd.Series([[] for _ in range(len(frame))], index=frame.index, dtype=object)
  for column in feature_columns:
    tokens = _split_tokens(frame[column])
    features = features + tokens.map(lambda ts, c=column: [f"{c}={t}" for t in ts])
  return pd.DataFrame(
    {
      "item_id": _parse_ids(frame[item_column], path, item_column, True),
      "features": features.to_numpy(),
    }
  )


def _find(directory: str, names: Sequence[str]) -> Optional[str]:
  for name in names:
    candidate = os.path.join(directory, name)
    if os.path.exists(candidate):
      return candidate
  return None


def load_movielens(path: str) -> InteractionLog:
  """Loads MovieLens in any official layout, with genres as item features.

  Args:
    path: A MovieLens directory (`u.data` + `u.item` for 100K, `ratings.dat`
      + `movies.dat` for 1M/10M, `ratings.csv` + `movies.csv` for the newer
      releases) or one of the rating files.

  Returns:
    The `InteractionLog`; the rating is the `weight`.

  Raises:
    DataError: if no rating file is found or a file is malformed.
  """
  directory = path if os.path.isdir(path) else os.path.dirname(path)
  ratings = (
    path if os.path.isfile(path) else _find(directory, ["u.data", "ratings.dat", "ratings.csv"])
  )
  if ratings is None:
    raise DataError(f"{path}: no MovieLens rating file (u.data, ratings.dat or ratings.csv).")
  name = os.path.basename(ratings)
  columns = ["user", "item", "rating", "timestamp"]
  if name.endswith(".csv"):
    frame = _read_delimited(ratings, ",", header=True)
    log = _normalise(frame, ratings, "userId", "movieId", "timestamp", "rating", True)
  else:
    sep = "::" if name.endswith(".dat") else "\t"
    frame = _read_delimited(ratings, sep, header=False, names=columns)
    log = _normalise(frame, ratings, "user", "item", "timestamp", "rating", False)
  item_features = None
  if name == "u.data" and os.path.exists(os.path.join(directory, "u.item")):
    item_features = _movielens_100k_genres(directory)
  elif name.endswith(".dat") and os.path.exists(os.path.join(directory, "movies.dat")):
    movies = _read_delimited(
      os.path.join(directory, "movies.dat"),
      "::",
      header=False,
      names=["item", "title", "genres"],
      encoding="latin-1",
    )
    item_features = _genre_lists(movies, "item", os.path.join(directory, "movies.dat"), False)
  elif name.endswith(".csv") and os.path.exists(os.path.join(directory, "movies.csv")):
    movies = _read_delimited(os.path.join(directory, "movies.csv"), ",", header=True)
    item_features = _genre_lists(movies, "movieId", os.path.join(directory, "movies.csv"), True)
  return InteractionLog(log, item_features, source=ratings)


def _genre_lists(movies: pd.DataFrame, item_column: str, path: str, header: bool) -> pd.DataFrame:
  genres = movies["genres"].replace("(no genres listed)", "").str.split("|")
  genres = genres.map(lambda gs: [f"genre={g}" for g in gs if g])
  return pd.DataFrame(
    {
      "item_id": _parse_ids(movies[item_column], path, item_column, header),
      "features": genres.to_numpy(),
    }
  )


def _movielens_100k_genres(directory: str) -> pd.DataFrame:
  path = os.path.join(directory, "u.item")
  movies = _read_delimited(path, "|", header=False, encoding="latin-1")
  if movies.shape[1] < 6:
    raise DataError(
      f"{path}: expected the id, 4 text fields and genre flags, got {movies.shape[1]} columns."
    )
  flags = movies.iloc[:, 5:].to_numpy() == "1"
  genre_path = os.path.join(directory, "u.genre")
  names = [str(i) for i in range(flags.shape[1])]
  if os.path.exists(genre_path):
    genre_table = _read_delimited(genre_path, "|", header=False, encoding="latin-1")
    by_index = dict(zip(genre_table[1].astype(int), genre_table[0]))
    names = [by_index.get(i, str(i)) for i in range(flags.shape[1])]
  features = [[f"genre={names[j]}" for j in np.flatnonzero(row)] for row in flags]
  return pd.DataFrame(
    {
      "item_id": _parse_ids(movies[0], path, "movie id", False),
      "features": pd.Series(features, dtype=object).to_numpy(),
    }
  )


def _read_json_lines(path: str) -> pd.DataFrame:
  if not os.path.exists(path):
    raise DataError(f"{path}: file not found.")
  if os.path.getsize(path) == 0:
    raise DataError(f"{path}: file is empty.")
  try:
    return pd.read_json(path, lines=True, dtype=False)
  except ValueError:
    pass
  # Older Amazon metadata dumps are Python literals, one dict per line.
  opener = __import__("gzip").open if path.endswith(".gz") else open
  records = []
  with opener(path, "rt", encoding="utf-8") as handle:
    for number, line in enumerate(handle, start=1):
      if not line.strip():
        continue
      try:
        records.append(ast.literal_eval(line))
      except (ValueError, SyntaxError):
        raise DataError(f"{path}: line {number}: neither JSON nor a Python dict.") from None
  return pd.DataFrame.from_records(records)


def load_amazon(path: str, metadata_path: Optional[str] = None) -> InteractionLog:
  """Loads Amazon reviews, with brand and categories as item features.

  Args:
    path: A ratings-only CSV (`user,item,rating,timestamp`, no header) or a
      5-core review file in JSON lines (`reviewerID`, `asin`,
      `unixReviewTime`, optionally `overall`), optionally gzipped.
    metadata_path: Optional item metadata in JSON lines (or Python-literal
      lines) with `asin`, `brand` and `categories` / `category`.

  Returns:
    The `InteractionLog`.

  Raises:
    DataError: if a file is missing, empty or malformed.
  """
  if ".json" in os.path.basename(path):
    frame = _read_json_lines(path).astype(str)
    weight = "overall" if "overall" in frame.columns else None
    log = _normalise(frame, path, "reviewerID", "asin", "unixReviewTime", weight, True)
  else:
    frame = _read_delimited(path, ",", header=False, names=["user", "item", "rating", "timestamp"])
    log = _normalise(frame, path, "user", "item", "timestamp", "rating", False)
  item_features = None
  if metadata_path is not None:
    metadata = _read_json_lines(metadata_path)
    if "asin" not in metadata.columns:
      raise DataError(
        f"{metadata_path}: column 'asin' not found; the file has columns {list(metadata.columns)}."
      )
    features = pd.Series([[] for _ in range(len(metadata))], dtype=object)
    if "brand" in metadata.columns:
      brands = metadata["brand"].fillna("").astype(str).str.strip()
      features = features + brands.map(lambda b: [f"brand={b}"] if b else [])
    for column in ("categories", "category"):
      if column in metadata.columns:
        features = features + metadata[column].map(
          lambda cs: [f"category={c}" for c in dict.fromkeys(_flatten(cs))]
        )
    item_features = pd.DataFrame(
      {
        "item_id": _parse_ids(metadata["asin"].astype(str), metadata_path, "asin", True),
        "features": features.to_numpy(),
      }
    )
  return InteractionLog(log, item_features, source=path)
