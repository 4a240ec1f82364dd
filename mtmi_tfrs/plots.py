"""Training plots: loss and validation curves, and how towers spread over categories."""

from typing import Dict
from typing import List
from typing import Optional
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def plot_training_curves(history: Dict[str, List[float]], path: str) -> str:
  """Writes a PNG with the training loss and the validation metrics per epoch.

  Args:
    history: Keras `History.history` (`loss`, optional `val_recall@N`, ...).
    path: Output PNG path.

  Returns:
    The path.
  """
  validation = sorted(k for k in history if k.startswith("val_"))
  figure, axes = plt.subplots(1, 2 if validation else 1, figsize=(10 if validation else 5, 3.6))
  axes = np.atleast_1d(axes)
  epochs = np.arange(1, len(history["loss"]) + 1)
  axes[0].plot(epochs, history["loss"], marker="o")
  axes[0].set(title="Training loss", xlabel="epoch", ylabel="loss")
  for key in validation:
    axes[1].plot(epochs[: len(history[key])], history[key], marker="o", label=key[4:])
  if validation:
    axes[1].set(title="Validation retrieval", xlabel="epoch")
    axes[1].legend()
  for axis in axes:
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  plt.close(figure)
  return path


def tower_category_shares(
  user_vectors: np.ndarray, item_vectors: np.ndarray, item_category: np.ndarray, k: int = 50
) -> np.ndarray:
  """Share of each tower's own top-k retrievals falling in each category.

  Args:
    user_vectors: `[users, K, dim]`.
    item_vectors: `[items, dim]`.
    item_category: `[items]` int category of each item (-1: none).
    k: Retrievals per tower and user.

  Returns:
    `[K, num_categories]` shares (rows sum to the share of categorised items).
  """
  num_categories = int(item_category.max()) + 1
  scores = np.einsum("ukd,nd->ukn", user_vectors, item_vectors)
  top = np.argpartition(-scores, k, axis=-1)[..., :k]
  categories = item_category[top]  # [users, K, k]
  shares = np.zeros([user_vectors.shape[1], num_categories])
  for tower in range(user_vectors.shape[1]):
    valid = categories[:, tower][categories[:, tower] >= 0]
    shares[tower] = np.bincount(valid, minlength=num_categories) / categories[:, tower].size
  return shares


def plot_tower_categories(
  shares: np.ndarray,
  path: str,
  category_names: Optional[Sequence[str]] = None,
  max_categories: int = 20,
) -> str:
  """Writes a heat map of `tower_category_shares` (the most retrieved categories).

  Towers that specialise show as rows with a few bright cells in different
  columns; collapsed towers show as identical rows.
  """
  order = np.argsort(-shares.sum(axis=0))[:max_categories]
  figure, axis = plt.subplots(figsize=(min(1 + 0.45 * len(order), 12), 1 + 0.5 * len(shares)))
  image = axis.imshow(shares[:, order], aspect="auto", cmap="viridis")
  names = [str(category_names[i]) if category_names is not None else str(i) for i in order]
  axis.set_xticks(range(len(order)), names, rotation=60, ha="right", fontsize=8)
  axis.set_yticks(range(len(shares)), [f"tower {k}" for k in range(len(shares))])
  axis.set_title("Share of each tower's top retrievals per item category")
  figure.colorbar(image, ax=axis, fraction=0.03)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  plt.close(figure)
  return path
