"""K identical user towers computed as one batched op."""

from typing import List
from typing import Optional
from typing import Sequence

import tensorflow as tf

from mtmi_tfrs.towers.attention_pool import AttentionPoolTower
from mtmi_tfrs.towers.attention_pool import attentive_pool
from mtmi_tfrs.towers.gru import GRUTower
from mtmi_tfrs.towers.mean_pool import MeanPoolTower
from mtmi_tfrs.towers.mean_pool import check_mlp_arguments
from mtmi_tfrs.towers.mean_pool import check_residual_width
from mtmi_tfrs.towers.mean_pool import masked_mean


def _add_fused_dense(layer, name, num_towers, fan_in, fan_out):
  """Adds `[K, fan_in, fan_out]` kernel and `[K, fan_out]` bias weights to `layer`."""
  kernel = layer.add_weight(
    name=f"{name}_kernel",
    shape=[num_towers, fan_in, fan_out],
    initializer=tf.keras.initializers.GlorotUniform(),
  )
  bias = layer.add_weight(name=f"{name}_bias", shape=[num_towers, fan_out], initializer="zeros")
  return kernel, bias


def _load_dense(kernel, bias, dense_layers):
  """Stacks K Keras `Dense` layers' weights into fused `kernel` and `bias`."""
  kernel.assign(tf.stack([d.kernel for d in dense_layers]))
  bias.assign(tf.stack([d.bias for d in dense_layers]))


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class FusedMeanPoolTowers(tf.keras.layers.Layer):
  """K `MeanPoolTower`s with independent weights, as one batched MLP.

  The masked mean of the shared history embeddings is the same for every
  tower, so it is computed once; each dense layer holds `[K, in, out]` weights
  and runs as one einsum for all towers.
  """

  def __init__(
    self,
    num_towers: int,
    hidden_units: Sequence[int] = (128,),
    output_dim: Optional[int] = 64,
    activation: str = "relu",
    residual: bool = False,
    name: Optional[str] = None,
    **kwargs,
  ) -> None:
    """Initializes the layer.

    Args:
      num_towers: K.
      hidden_units, output_dim, activation, residual: As in `MeanPoolTower`.

    Raises:
      ValueError: if `output_dim` is None but hidden layers or `residual` are
        asked for.
    """
    super().__init__(name=name, **kwargs)
    check_mlp_arguments(hidden_units, output_dim, residual)
    self._num_towers = num_towers
    self._hidden_units = list(hidden_units)
    self._output_dim = output_dim
    self._activation = activation
    self._residual = residual

  def build(self, input_shape):
    check_residual_width(self._residual, self._output_dim, input_shape)
    widths = (
      [int(input_shape[-1])] + self._hidden_units + ([self._output_dim] if self._output_dim else [])
    )
    self.kernels, self.biases = [], []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
      kernel, bias = _add_fused_dense(self, f"dense_{i}", self._num_towers, fan_in, fan_out)
      self.kernels.append(kernel)
      self.biases.append(bias)
    super().build(input_shape)

  def call(self, history_embeddings: tf.Tensor, mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Encodes a history with every tower.

    Args:
      history_embeddings: `[batch, max_len, dim]` embedded, left-padded history.
      mask: `[batch, max_len]` boolean mask of the valid positions.

    Returns:
      `[batch, K, output_dim]` user vectors.
    """
    pooled = masked_mean(history_embeddings, mask)
    if not self.kernels:
      return tf.repeat(pooled[:, tf.newaxis], self._num_towers, axis=1)
    x = tf.einsum("bd,kde->bke", pooled, self.kernels[0]) + self.biases[0]
    activation = tf.keras.activations.get(self._activation)
    for kernel, bias in zip(self.kernels[1:], self.biases[1:]):
      x = tf.einsum("bkd,kde->bke", activation(x), kernel) + bias
    return pooled[:, tf.newaxis] + x if self._residual else x

  def load_from_towers(self, towers: List[MeanPoolTower]) -> None:
    """Copies the weights of K built `MeanPoolTower`s into this layer."""
    for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
      _load_dense(kernel, bias, [t._dense_layers[i] for t in towers])

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(
      {
        "num_towers": self._num_towers,
        "hidden_units": self._hidden_units,
        "output_dim": self._output_dim,
        "activation": self._activation,
        "residual": self._residual,
      }
    )
    return config


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class FusedGRUTowers(tf.keras.layers.Layer):
  """K `GRUTower`s with independent weights, as one batched recurrence.

  Weights carry a leading K axis (`kernel [K, dim, 3 * units]`,
  `recurrent_kernel [K, units, 3 * units]`), and each step updates the
  `[K, batch, units]` state of every tower at once with two batched matmuls.
  The gates are Keras's GRU (`reset_after=True`), so loading a `GRUTower`'s
  weights reproduces its output.
  """

  def __init__(
    self,
    num_towers: int,
    units: int = 64,
    output_dim: int = 64,
    name: Optional[str] = None,
    **kwargs,
  ) -> None:
    """Initializes the layer.

    Args:
      num_towers: K.
      units, output_dim: As in `GRUTower`.
    """
    super().__init__(name=name, **kwargs)
    self._num_towers = num_towers
    self._units = units
    self._output_dim = output_dim

  def build(self, input_shape):
    k, units, dim = self._num_towers, self._units, int(input_shape[-1])
    self.kernel = self.add_weight(
      name="kernel", shape=[k, dim, 3 * units], initializer=tf.keras.initializers.GlorotUniform()
    )
    self.recurrent_kernel = self.add_weight(
      name="recurrent_kernel",
      shape=[k, units, 3 * units],
      initializer=tf.keras.initializers.Orthogonal(),
    )
    self.bias = self.add_weight(name="bias", shape=[k, 2, 3 * units], initializer="zeros")
    self.output_kernel, self.output_bias = _add_fused_dense(
      self, "output", k, units, self._output_dim
    )
    super().build(input_shape)

  def call(self, history_embeddings: tf.Tensor, mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Encodes a history with every tower.

    Args:
      history_embeddings: `[batch, max_len, dim]` embedded, left-padded history.
      mask: `[batch, max_len]` boolean mask of the valid positions.

    Returns:
      `[batch, K, output_dim]` user vectors.
    """
    if mask is None:
      mask = tf.ones(tf.shape(history_embeddings)[:2], dtype=tf.bool)
    # Tower-major [K, batch, units] states make both matmuls of a step native
    # batched matmuls with no transposes inside the loop. Each step's input is
    # projected inside the loop, as Keras's GRU does: projecting all steps
    # into one [max_len, K, batch, 3 * units] tensor before the loop trained
    # slower on CPU (benchmarks/tower_throughput.py, see the README).
    steps = tf.transpose(history_embeddings, [1, 0, 2])[:, tf.newaxis]
    steps_mask = tf.transpose(mask)[:, tf.newaxis, :, tf.newaxis]
    batch_size = tf.shape(history_embeddings)[0]
    initial = tf.zeros([self._num_towers, batch_size, self._units], history_embeddings.dtype)
    input_bias = self.bias[:, tf.newaxis, 0]
    recurrent_bias = self.bias[:, tf.newaxis, 1]

    def step(state, step_inputs):
      step_embeddings, valid = step_inputs
      projected = tf.matmul(step_embeddings, self.kernel) + input_bias
      recurrent = tf.matmul(state, self.recurrent_kernel) + recurrent_bias
      # Both gates in one sigmoid: at these sizes each op's fixed cost counts.
      x_gates, x_h = tf.split(projected, [2 * self._units, self._units], axis=-1)
      r_gates, r_h = tf.split(recurrent, [2 * self._units, self._units], axis=-1)
      update, reset = tf.split(tf.sigmoid(x_gates + r_gates), 2, axis=-1)
      candidate = tf.tanh(x_h + reset * r_h)
      new_state = candidate + update * (state - candidate)
      return tf.where(valid, new_state, state)

    state = tf.foldl(step, (steps, steps_mask), initializer=initial)
    return tf.einsum("kbh,kho->bko", state, self.output_kernel) + self.output_bias

  def load_from_towers(self, towers: List[GRUTower]) -> None:
    """Copies the weights of K built `GRUTower`s into this layer."""
    cells = [t.gru.cell for t in towers]
    self.kernel.assign(tf.stack([c.kernel for c in cells]))
    self.recurrent_kernel.assign(tf.stack([c.recurrent_kernel for c in cells]))
    self.bias.assign(tf.stack([c.bias for c in cells]))
    _load_dense(self.output_kernel, self.output_bias, [t.projection for t in towers])

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(
      {
        "num_towers": self._num_towers,
        "units": self._units,
        "output_dim": self._output_dim,
      }
    )
    return config


@tf.keras.utils.register_keras_serializable(package="mtmi_tfrs")
class FusedAttentionPoolTowers(tf.keras.layers.Layer):
  """K `AttentionPoolTower`s with independent weights, as batched einsums."""

  def __init__(
    self,
    num_towers: int,
    max_len: int = 50,
    hidden_units: int = 128,
    output_dim: Optional[int] = 64,
    name: Optional[str] = None,
    **kwargs,
  ) -> None:
    """Initializes the layer.

    Args:
      num_towers: K.
      max_len, hidden_units, output_dim: As in `AttentionPoolTower`.
    """
    super().__init__(name=name, **kwargs)
    self._num_towers = num_towers
    self._max_len = max_len
    self._hidden_units = hidden_units
    self._output_dim = output_dim

  def build(self, input_shape):
    k, dim, hidden = self._num_towers, int(input_shape[-1]), self._hidden_units
    glorot = tf.keras.initializers.GlorotUniform()
    self.positions = self.add_weight(
      name="positions",
      shape=[k, self._max_len, dim],
      initializer=tf.keras.initializers.RandomNormal(stddev=0.02),
    )
    self.hidden_kernel = self.add_weight(
      name="hidden_kernel", shape=[k, dim, hidden], initializer=glorot
    )
    self.hidden_bias = self.add_weight(name="hidden_bias", shape=[k, hidden], initializer="zeros")
    self.score_kernel = self.add_weight(name="score_kernel", shape=[k, hidden], initializer=glorot)
    if self._output_dim:
      self.output_kernel, self.output_bias = _add_fused_dense(
        self, "output", k, dim, self._output_dim
      )
    super().build(input_shape)

  def call(self, history_embeddings: tf.Tensor, mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Encodes a history with every tower.

    Args:
      history_embeddings: `[batch, max_len, dim]` embedded, left-padded history.
      mask: `[batch, max_len]` boolean mask of the valid positions.

    Returns:
      `[batch, K, output_dim]` user vectors.
    """
    pooled = attentive_pool(
      history_embeddings,
      mask,
      self.positions,
      self.hidden_kernel,
      self.hidden_bias,
      self.score_kernel,
    )
    if not self._output_dim:
      return pooled
    return tf.einsum("bkd,kdo->bko", pooled, self.output_kernel) + self.output_bias

  def load_from_towers(self, towers: List[AttentionPoolTower]) -> None:
    """Copies the weights of K built `AttentionPoolTower`s into this layer."""
    for name in ("positions", "hidden_kernel", "hidden_bias", "score_kernel"):
      getattr(self, name).assign(tf.concat([getattr(t, name) for t in towers], axis=0))
    if self._output_dim:
      _load_dense(self.output_kernel, self.output_bias, [t.projection for t in towers])

  def compute_mask(self, inputs, mask=None):
    return None

  def get_config(self):
    config = super().get_config()
    config.update(
      {
        "num_towers": self._num_towers,
        "max_len": self._max_len,
        "hidden_units": self._hidden_units,
        "output_dim": self._output_dim,
      }
    )
    return config


_FUSED_FORMS = {
  MeanPoolTower: FusedMeanPoolTowers,
  GRUTower: FusedGRUTowers,
  AttentionPoolTower: FusedAttentionPoolTowers,
}


def can_fuse(tower: tf.keras.layers.Layer) -> bool:
  """Whether `tower`'s class has a fused K-tower form."""
  return type(tower) in _FUSED_FORMS


def fuse(tower: tf.keras.layers.Layer, num_towers: int) -> tf.keras.layers.Layer:
  """The fused form of `num_towers` replicas of `tower` (fresh weights).

  Args:
    tower: A tower whose class `can_fuse`.
    num_towers: K.

  Returns:
    A layer mapping `[batch, max_len, dim]` to `[batch, K, output_dim]`.
  """
  config = tower.get_config()
  config.pop("name", None)
  config.pop("trainable", None)
  config.pop("dtype", None)
  return _FUSED_FORMS[type(tower)](num_towers=num_towers, **config)
