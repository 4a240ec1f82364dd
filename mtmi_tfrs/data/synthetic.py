"""The embedded default data set: synthetic multi-interest interaction logs."""

import dataclasses

import numpy as np
import pandas as pd

from mtmi_tfrs.data.loaders import InteractionLog


@dataclasses.dataclass
class SyntheticTruth:
  """What generated the synthetic log.

  Attributes:
    item_category: `[num_items + 1]` category of raw item id `i` (entry 0 unused).
    user_interests: `[num_users + 1, max_interests]` categories of raw user id
      `u`, -1 padded (row 0 unused).
  """

  item_category: np.ndarray
  user_interests: np.ndarray


def make_synthetic(
  num_users: int = 6000,
  num_items: int = 3000,
  num_categories: int = 30,
  min_interests: int = 2,
  max_interests: int = 4,
  min_length: int = 10,
  max_length: int = 40,
  switch_probability: float = 0.3,
  popularity_exponent: float = 1.0,
  seed: int = 0,
):
  """Generates a multi-interest interaction log with known interests.

  Items are split evenly into categories (the item feature `category=c`).
  Each user has between `min_interests` and `max_interests` interests
  (distinct categories, more popular categories more likely). A user's
  sequence is cut into runs: each event starts a new run with probability
  `switch_probability`, and each run draws one of the user's interests; within
  a category, items are drawn with Zipf popularity `1 / rank^exponent`.
  Everything is vectorised and deterministic given `seed`.

  Args:
    num_users, num_items, num_categories: Sizes (raw ids start at 1).
    min_interests, max_interests: Interests per user, drawn uniformly.
    min_length, max_length: Sequence length range, drawn uniformly.
    switch_probability: Chance that an event switches (redraws) the interest.
    popularity_exponent: Zipf exponent of item and category popularity.
    seed: Random seed.

  Returns:
    `(InteractionLog, SyntheticTruth)`.

  Raises:
    ValueError: if the sizes are inconsistent.
  """
  if not 1 <= min_interests <= max_interests <= num_categories:
    raise ValueError(
      "need 1 <= min_interests <= max_interests <= num_categories, got "
      f"{min_interests}, {max_interests}, {num_categories}."
    )
  if num_items < num_categories:
    raise ValueError(f"num_items ({num_items}) must be >= num_categories ({num_categories}).")
  if not 1 <= min_length <= max_length:
    raise ValueError(f"need 1 <= min_length <= max_length, got {min_length}, {max_length}.")
  rng = np.random.default_rng(seed)
  per_category = num_items // num_categories

  category_weights = 1.0 / np.arange(1, num_categories + 1) ** (popularity_exponent / 2)
  gumbel = -np.log(-np.log(rng.random((num_users, num_categories))))
  ranked = np.argsort(-(np.log(category_weights)[None, :] + gumbel), axis=1)
  num_interests = rng.integers(min_interests, max_interests + 1, size=num_users)
  slots = np.arange(max_interests)[None, :]
  interests = np.where(slots < num_interests[:, None], ranked[:, :max_interests], -1)

  lengths = rng.integers(min_length, max_length + 1, size=num_users)
  user_of_event = np.repeat(np.arange(num_users), lengths)
  starts = np.cumsum(lengths) - lengths
  switches = rng.random(len(user_of_event)) < switch_probability
  switches[starts] = True
  run = np.cumsum(switches) - 1
  run_user = user_of_event[switches]
  run_slot = (rng.random(len(run_user)) * num_interests[run_user]).astype(np.int64)
  category = interests[run_user, run_slot][run]

  item_weights = 1.0 / np.arange(1, per_category + 1) ** popularity_exponent
  cdf = np.cumsum(item_weights) / item_weights.sum()
  rank = np.minimum(np.searchsorted(cdf, rng.random(len(category))), per_category - 1)
  item = category * per_category + rank + 1
  step = np.arange(len(user_of_event)) - np.repeat(starts, lengths)

  interactions = pd.DataFrame(
    {
      "user_id": user_of_event + 1,
      "item_id": item,
      "timestamp": 1_600_000_000 + step * 3600 + rng.integers(0, 600, size=len(step)),
    }
  )
  item_ids = np.arange(1, num_categories * per_category + 1)
  item_category = np.concatenate([[-1], (item_ids - 1) // per_category])
  item_features = pd.DataFrame(
    {
      "item_id": item_ids,
      "features": [[f"category={c}"] for c in item_category[1:]],
    }
  )
  truth = SyntheticTruth(
    item_category=item_category,
    user_interests=np.concatenate([np.full((1, max_interests), -1), interests]),
  )
  log = InteractionLog(interactions, item_features, source="synthetic")
  return log, truth
