"""Baselines: single two-tower, TFRS maxsim, ComiRec-SA, ComiRec-DR / MIND, REMI.

Every baseline is a `MultiTowerModel` built from the same item embedding and
item tower as MTMI and evaluated through the same merged index, so the
comparison changes only what the baseline changes: the user encoder and the
training objective. Single-tower multi-interest models (ComiRec, MIND, REMI)
are one extractor layer producing K vectors, trained as their papers do on
the interest closest to the target (`RoutedRetrieval`).
"""

import tensorflow as tf
import tensorflow_recommenders as tfrs

from mtmi_tfrs import towers as towers_lib
from mtmi_tfrs.models.multi_tower import MultiTowerModel
from mtmi_tfrs.towers.item import ItemTower

_NEG_INF = -1e9
TOWERS = (
  "attention_pool_identity",
  "attention_pool",
  "gru",
  "mean_pool",
  "mean_pool_identity",
  "mean_pool_residual",
  "self_attention",
)
# The cycle of tower types of `mixed_towers=True`.
MIXED_TOWERS = ("attention_pool_identity", "gru", "mean_pool", "self_attention")


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class SelfAttentiveExtractor(tf.keras.layers.Layer):
  """ComiRec-SA's multi-interest extractor.

  `A = softmax_L(W2 tanh(W1 (H + P)^T))` over the valid positions,
  interests `V = A H`: `[batch, max_len, dim]` -> `[batch, K, dim]`. When
  `routing_regularization > 0` it adds REMI's routing regulariser
  `lambda * sum_b ||diag(C_b)||^2`, `C_b = (A_b - mean) (A_b - mean)^T / dim`,
  as a layer loss.
  """

  def __init__(
    self, num_interests: int = 4, max_len: int = 50, routing_regularization: float = 0.0, **kwargs
  ) -> None:
    super().__init__(**kwargs)
    self.num_interests = num_interests
    self._max_len = max_len
    self._routing_regularization = routing_regularization

  def build(self, input_shape):
    dim = int(input_shape[-1])
    self.position_embedding = self.add_weight(
      name="position_embedding",
      shape=[self._max_len, dim],
      initializer=tf.keras.initializers.RandomNormal(stddev=0.02),
    )
    self.hidden = tf.keras.layers.Dense(4 * dim, activation="tanh")
    self.heads = tf.keras.layers.Dense(self.num_interests)
    super().build(input_shape)

  def call(self, history_embeddings, mask=None):
    length = tf.shape(history_embeddings)[1]
    positioned = history_embeddings + self.position_embedding[self._max_len - length :]
    logits = tf.transpose(self.heads(self.hidden(positioned)), [0, 2, 1])  # [batch, K, L]
    if mask is not None:
      logits = tf.where(mask[:, tf.newaxis, :], logits, _NEG_INF)
    attention = tf.nn.softmax(logits, axis=-1)
    if self._routing_regularization > 0:
      centered = attention - tf.reduce_mean(attention, axis=-1, keepdims=True)
      covariance = tf.matmul(centered, centered, transpose_b=True) / tf.cast(
        tf.shape(history_embeddings)[-1], attention.dtype
      )
      self.add_loss(
        self._routing_regularization * tf.reduce_sum(tf.square(tf.linalg.diag_part(covariance)))
      )
    return tf.matmul(attention, history_embeddings)

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(
      {
        "num_interests": self.num_interests,
        "max_len": self._max_len,
        "routing_regularization": self._routing_regularization,
      }
    )
    return config


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class CapsuleExtractor(tf.keras.layers.Layer):
  """ComiRec-DR / MIND behaviour-to-interest dynamic routing.

  Each history item is mapped to K interest-specific votes by a shared
  bilinear map; `iterations` rounds of routing (routing logits detached, as
  in ComiRec-DR) aggregate the votes into K squashed capsules:
  `[batch, max_len, dim]` -> `[batch, K, dim]`.
  """

  def __init__(self, num_interests: int = 4, iterations: int = 3, **kwargs) -> None:
    super().__init__(**kwargs)
    self.num_interests = num_interests
    self._iterations = iterations

  def build(self, input_shape):
    dim = int(input_shape[-1])
    self.votes = tf.keras.layers.Dense(self.num_interests * dim, use_bias=False)
    super().build(input_shape)

  def call(self, history_embeddings, mask=None):
    batch_size, length = tf.shape(history_embeddings)[0], tf.shape(history_embeddings)[1]
    dim = history_embeddings.shape[-1]
    votes = tf.reshape(
      self.votes(history_embeddings), [batch_size, length, self.num_interests, dim]
    )
    votes = tf.transpose(votes, [0, 2, 1, 3])  # [batch, K, L, dim]
    valid = (tf.ones([batch_size, length], tf.bool) if mask is None else mask)[:, tf.newaxis, :]
    routing = tf.zeros([batch_size, self.num_interests, length])
    frozen_votes = tf.stop_gradient(votes)
    for iteration in range(self._iterations):
      weights = tf.where(valid, tf.nn.softmax(routing, axis=1), 0.0)
      last = iteration == self._iterations - 1
      capsules = tf.einsum("bkl,bkld->bkd", weights, votes if last else frozen_votes)
      squared = tf.reduce_sum(tf.square(capsules), axis=-1, keepdims=True)
      capsules *= squared / (1.0 + squared) / tf.sqrt(squared + 1e-9)
      if not last:
        routing += tf.einsum("bkld,bkd->bkl", frozen_votes, capsules)
    return capsules

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update({"num_interests": self.num_interests, "iterations": self._iterations})
    return config


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class RoutedRetrieval(tf.keras.layers.Layer, tfrs.tasks.base.Task):
  """ComiRec/MIND training: softmax of the interest closest to the target.

  For each example the interest with the highest score on the positive
  (`argmax_k <u_k, v+>`, no gradient through the choice) is scored against
  all candidates with `<u, v> / temperature`. With `hard_negative_beta > 0`
  the negatives are re-weighted by `exp(beta * s_j) / mean_j exp(beta * s_j)`
  (REMI's interest-aware hard negative mining, weights held constant).
  Accidental hits and log-Q correction are not applied, as in ComiRec's code.
  """

  def __init__(self, temperature: float = 0.1, hard_negative_beta: float = 0.0, **kwargs) -> None:
    super().__init__(**kwargs)
    self._temperature = temperature
    self._hard_negative_beta = hard_negative_beta

  def call(
    self,
    user_embeddings,
    item_embeddings,
    sample_weight=None,
    candidate_sampling_probability=None,
    candidate_ids=None,
    compute_metrics=True,
  ):
    del candidate_sampling_probability, candidate_ids, compute_metrics
    batch_size = tf.shape(user_embeddings)[0]
    positives = item_embeddings[:batch_size]
    chosen = tf.argmax(tf.einsum("bkd,bd->bk", user_embeddings, positives), axis=1)
    readout = tf.gather(user_embeddings, chosen, batch_dims=1)
    scores = tf.matmul(readout, item_embeddings, transpose_b=True)
    labels = tf.eye(batch_size, tf.shape(item_embeddings)[0])
    logits = scores / self._temperature
    if self._hard_negative_beta > 0:
      importance = tf.stop_gradient(self._hard_negative_beta * scores)
      importance -= tf.reduce_logsumexp(importance, axis=1, keepdims=True)
      importance += tf.math.log(tf.cast(tf.shape(scores)[1], scores.dtype))
      logits += (1.0 - labels) * importance
    losses = tf.nn.softmax_cross_entropy_with_logits(labels, logits)
    if sample_weight is not None:
      losses *= tf.cast(sample_weight, losses.dtype)
    return tf.reduce_sum(losses)

  def get_config(self):
    config = super().get_config()
    config.update(
      {"temperature": self._temperature, "hard_negative_beta": self._hard_negative_beta}
    )
    return config


def build_model(
  kind: str,
  num_items: int,
  dim: int = 64,
  num_interests: int = 4,
  max_len: int = 20,
  tower: str = "gru",
  temperature: float = 0.1,
  item_features=None,
  feature_vocab_size: int = 0,
  task=None,
  repel=None,
  mixed_towers: bool = False,
  windows="geometric",
  history_encoder: str = "item_tower",
):
  """Builds MTMI or a baseline on one shared item embedding and item tower.

  Args:
    kind: `"mtmi"`, `"single"` (one tower, TFRS softmax), `"maxsim"` (K
      towers, `tfrs.tasks.Retrieval` on `[batch, K, dim]`), `"comirec_sa"`,
      `"comirec_dr"` (also MIND's routing) or `"remi"`.
    num_items: Rows of the item embedding table.
    dim: Embedding and user vector size.
    num_interests: K.
    max_len: History length.
    tower: User tower of `single`, `maxsim` and `mtmi`: `"gru"`,
      `"mean_pool"` (YouTube DNN), `"mean_pool_identity"` (the history centroid
      in the item space), `"mean_pool_residual"` (the centroid plus a learned
      MLP correction), `"attention_pool"` (projected), `"attention_pool_identity"`
      (user vectors in the item embedding space) or `"self_attention"`.
    temperature: Softmax temperature of the TFRS-style and routed tasks.
    item_features, feature_vocab_size: Optional item feature table.
    task, repel: MTMI's IDW task and repel regulariser (`kind="mtmi"`).
    mixed_towers: For `mtmi`/`maxsim`, cycle through `MIXED_TOWERS`
      instead of K replicas of `tower`.
    windows: Recency windows of the K replicated towers of `mtmi`/`maxsim`:
      `"geometric"` (`towers.geometric_windows(K, max_len)`, MTMI's default),
      a list of K lengths, or None (every tower reads the whole history).
    history_encoder: How every model encodes history items (see
      `MultiTowerModel`).

  Returns:
    A compiled-ready `MultiTowerModel`.
  """

  def make_tower(name):
    if name == "gru":
      return towers_lib.GRUTower(dim, dim)
    if name == "mean_pool":
      return towers_lib.MeanPoolTower((2 * dim,), dim)
    if name == "mean_pool_identity":
      return towers_lib.MeanPoolTower((), output_dim=None)
    if name == "mean_pool_residual":
      return towers_lib.MeanPoolTower((2 * dim,), dim, residual=True)
    if name == "attention_pool":
      return towers_lib.AttentionPoolTower(max_len=max_len, hidden_units=2 * dim, output_dim=dim)
    if name == "attention_pool_identity":
      return towers_lib.AttentionPoolTower(max_len=max_len, hidden_units=2 * dim, output_dim=None)
    if name == "self_attention":
      return towers_lib.SelfAttentionTower(max_len=max_len, output_dim=dim)
    raise ValueError(f"tower must be one of {TOWERS}, got {name!r}.")

  embedding = tf.keras.layers.Embedding(num_items, dim)
  item_tower = ItemTower(
    embedding, feature_table=item_features, feature_vocab_size=feature_vocab_size
  )
  kinds = ("mtmi", "single", "maxsim", "comirec_sa", "comirec_dr", "remi")
  if kind not in kinds:
    raise ValueError(f"kind must be one of {kinds}, got {kind!r}.")
  if kind in ("mtmi", "maxsim"):
    if mixed_towers:
      user_towers = [make_tower(MIXED_TOWERS[i % len(MIXED_TOWERS)]) for i in range(num_interests)]
      windows = None
    else:
      user_towers = make_tower(tower)
    if windows == "geometric":
      windows = towers_lib.geometric_windows(num_interests, max_len)
    if kind == "maxsim":
      task = tfrs.tasks.Retrieval(temperature=temperature)
    return MultiTowerModel(
      embedding,
      user_towers,
      num_towers=num_interests,
      item_tower=item_tower,
      task=task,
      repel=repel if kind == "mtmi" else None,
      windows=windows,
      history_encoder=history_encoder,
    )
  if kind == "single":
    return MultiTowerModel(
      embedding,
      make_tower(tower),
      num_towers=1,
      item_tower=item_tower,
      task=tfrs.tasks.Retrieval(temperature=temperature),
      history_encoder=history_encoder,
    )
  if kind == "comirec_dr":
    extractor = CapsuleExtractor(num_interests)
  else:
    extractor = SelfAttentiveExtractor(
      num_interests, max_len, routing_regularization=100.0 if kind == "remi" else 0.0
    )
  routed = RoutedRetrieval(
    temperature, hard_negative_beta=1.0 / temperature if kind == "remi" else 0.0
  )
  return MultiTowerModel(
    embedding, extractor, item_tower=item_tower, task=routed, history_encoder=history_encoder
  )
