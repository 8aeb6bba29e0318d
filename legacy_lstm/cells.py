"""LSTM cells for every app: ``basic`` (tf_keras BasicLSTMCell), ``block`` and ``cudnn_compatible``.

``LSTMBlockCell`` runs one time step with the raw ``LSTMBlockCell`` op (the kernel behind TF 1.x
``tf.contrib.rnn.LSTMBlockCell``). TF 2.x ships the op and its gradient kernel but registers no Python
gradient for it, so this module registers one at import (the maths of TF 1.15's ``_LSTMBlockCellGrad``).
The op's defaults would silently change the model (``forget_bias=1``, ``cell_clip=3``), so both are always
passed explicitly; ``cell_clip=None`` means no clipping.

Gate layout is ICFO, the same as ``BasicLSTMCell``'s i, j, f, o: the kernel [input + units, 4 * units] and
bias [4 * units] of the three cells are interchangeable. With the same ``forget_bias`` the three cells compute
the same function; ``CudnnCompatibleLSTMCell`` is ``LSTMBlockCell`` with forget_bias 0 under the TF 1.x name
``cudnn_compatible_lstm_cell``: a BasicLSTMCell checkpoint maps onto it by adding the forget bias to the
f-gate slice of the bias (``legacy_lstm.convert``).

Variables are created with explicit v1 initializers (Glorot-uniform kernel, zero bias), so the TF graph seed
alone makes them repeatable. Inside ``MultiRNNCell``/``DropoutWrapper`` the variable names equal TF 1.x's:
``rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell/kernel``.

A GPU path (``CudnnRNNV3`` on the same canonical kernel/bias variables, params assembled per call) fits this
design but is not written: no machine available to this project has a GPU with TensorFlow to test it.
"""

from legacy_lstm.compat import LayerRNNCell, tf, tf1

LSTMStateTuple = tf1.nn.rnn_cell.LSTMStateTuple
KINDS = ("basic", "block", "cudnn_compatible")
_SUPPORTED_DTYPES = (tf.float16, tf.float32)


def _lstm_block_cell_grad(op, *grads):
    """Gradient of LSTMBlockCell (outputs i, cs, f, o, ci, co, h) w.r.t. x, cs_prev, h_prev, w, wci, wcf, wco, b."""
    x, cs_prev, h_prev, w, wci, wcf, wco, b = op.inputs
    i, cs, f, o, ci, co, _ = op.outputs
    cs_grad, h_grad = grads[1], grads[6]
    cs_grad = tf.zeros_like(cs) if cs_grad is None else cs_grad
    h_grad = tf.zeros_like(cs) if h_grad is None else h_grad
    cs_prev_grad, dicfo, wci_grad, wcf_grad, wco_grad = tf.raw_ops.LSTMBlockCellGrad(
        x=x, cs_prev=cs_prev, h_prev=h_prev, w=w, wci=wci, wcf=wcf, wco=wco, b=b, i=i, cs=cs, f=f, o=o, ci=ci,
        co=co, cs_grad=cs_grad, h_grad=h_grad, use_peephole=op.get_attr("use_peephole"))
    input_size = tf.shape(x)[1]
    xh_grad = tf.matmul(dicfo, w, transpose_b=True)
    x_grad = xh_grad[:, :input_size]
    h_prev_grad = xh_grad[:, input_size:]
    w_grad = tf.matmul(tf.concat([x, h_prev], 1), dicfo, transpose_a=True)
    b_grad = tf.raw_ops.BiasAddGrad(out_backprop=dicfo)
    return x_grad, cs_prev_grad, h_prev_grad, w_grad, wci_grad, wcf_grad, wco_grad, b_grad


try:
    tf.RegisterGradient("LSTMBlockCell")(_lstm_block_cell_grad)
except KeyError:  # already registered (a second import path, another library, or a future TF)
    pass


class LSTMBlockCell(LayerRNNCell):
    """TF 1.x ``tf.contrib.rnn.LSTMBlockCell`` without peepholes, on the raw op, with our gradient."""

    def __init__(self, num_units, forget_bias=1.0, cell_clip=None, reuse=None, name="lstm_cell", dtype=None,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(_reuse=reuse, name=name, dtype=dtype, **kwargs)
        # The default is an explicit (graph-seeded) v1 Glorot initializer; None leaves the kernel to the enclosing
        # variable scope's initializer, as TF 1.x's LSTMBlockCell did (ptb_word_lm's uniform(+-init_scale)).
        self._kernel_initializer = (tf1.glorot_uniform_initializer() if kernel_initializer == "glorot_uniform"
                                    else kernel_initializer)
        if num_units < 1:
            raise ValueError(f"num_units must be >= 1, got {num_units}")
        self._num_units = int(num_units)
        self._forget_bias = float(forget_bias)
        self._cell_clip = -1.0 if cell_clip is None else float(cell_clip)  # the op clips only when > 0

    @property
    def state_size(self):
        return LSTMStateTuple(self._num_units, self._num_units)

    @property
    def output_size(self):
        return self._num_units

    def build(self, input_shape):
        input_size = tf.TensorShape(input_shape)[-1]
        if input_size is None:
            raise ValueError(f"{self.name}: the input depth must be known statically, got shape {input_shape}")
        self._kernel = self.add_weight("kernel", shape=[int(input_size) + self._num_units, 4 * self._num_units],
                                       initializer=self._kernel_initializer)
        self._bias = self.add_weight("bias", shape=[4 * self._num_units], initializer=tf1.zeros_initializer())
        self.built = True

    def call(self, inputs, state):
        cs_prev, h_prev = state
        inputs = self._validated(inputs, cs_prev, h_prev)
        zeros = tf.zeros([self._num_units], dtype=inputs.dtype)  # no peepholes
        _, cs, _, _, _, _, h = tf.raw_ops.LSTMBlockCell(
            x=inputs, cs_prev=cs_prev, h_prev=h_prev, w=self._kernel, wci=zeros, wcf=zeros, wco=zeros,
            b=self._bias, forget_bias=self._forget_bias, cell_clip=self._cell_clip, use_peephole=False)
        # The op infers its batch from x; keep the (often static) batch of the state for while-loop invariants.
        cs.set_shape(cs_prev.shape)
        h.set_shape(h_prev.shape)
        return h, LSTMStateTuple(cs, h)

    def _validated(self, inputs, cs_prev, h_prev):
        """Check what the raw op would CHECK-abort the whole process on, and raise a Python error instead."""
        if inputs.dtype not in _SUPPORTED_DTYPES:
            raise TypeError(f"{self.name}: the LSTMBlockCell op takes float16 or float32 inputs, got {inputs.dtype}")
        if inputs.shape.rank != 2:
            raise ValueError(f"{self.name}: inputs must be [batch, depth], got shape {inputs.shape}")
        expected_depth = self._kernel.shape[0] - self._num_units
        if inputs.shape[1] is not None and inputs.shape[1] != expected_depth:
            raise ValueError(f"{self.name}: input depth {inputs.shape[1]} does not match the kernel "
                             f"({expected_depth})")
        for label, tensor in (("cell state", cs_prev), ("hidden state", h_prev)):
            if tensor.shape.rank != 2 or (tensor.shape[1] is not None and tensor.shape[1] != self._num_units):
                raise ValueError(f"{self.name}: {label} must be [batch, {self._num_units}], got {tensor.shape}")
            if tensor.dtype != inputs.dtype:
                raise TypeError(f"{self.name}: {label} is {tensor.dtype}, inputs are {inputs.dtype}")
        batches = {t.shape[0] for t in (inputs, cs_prev, h_prev)}
        if 0 in batches:
            raise ValueError(f"{self.name}: empty batch (the raw LSTMBlockCell op aborts on it)")
        if None not in batches:
            if len(batches) > 1:
                raise ValueError(f"{self.name}: inputs and state have different batch sizes {sorted(batches)}")
            return inputs
        # A batch size unknown statically: check at run time, before the op sees the tensors.
        batch = tf.shape(inputs)[0]
        checks = [tf.debugging.assert_positive(batch, message=f"{self.name}: empty batch"),
                  tf.debugging.assert_equal(batch, tf.shape(cs_prev)[0], message=f"{self.name}: inputs and "
                                            "cell state have different batch sizes"),
                  tf.debugging.assert_equal(batch, tf.shape(h_prev)[0], message=f"{self.name}: inputs and "
                                            "hidden state have different batch sizes")]
        with tf.control_dependencies(checks):
            return tf.identity(inputs)


class CudnnCompatibleLSTMCell(LSTMBlockCell):
    """TF 1.x ``tf.contrib.cudnn_rnn.CudnnCompatibleLSTMCell``: LSTMBlockCell, forget_bias 0, no clipping."""

    def __init__(self, num_units, reuse=None, name="cudnn_compatible_lstm_cell", **kwargs):
        super().__init__(num_units, forget_bias=0.0, cell_clip=None, reuse=reuse, name=name, **kwargs)


def make_cell(kind, num_units, forget_bias=1.0):
    """One LSTM cell of ``kind`` (basic | block | cudnn_compatible).

    ``forget_bias`` applies to basic and block; cudnn_compatible always has 0 (its checkpoint carries the
    forget bias inside the bias vector).
    """
    if kind == "basic":
        return tf1.nn.rnn_cell.BasicLSTMCell(num_units, forget_bias=forget_bias)
    if kind == "block":
        return LSTMBlockCell(num_units, forget_bias=forget_bias)
    if kind == "cudnn_compatible":
        return CudnnCompatibleLSTMCell(num_units)
    raise ValueError(f"cell must be one of {', '.join(KINDS)}, got {kind!r}")


def cell_scope_name(kind):
    """The variable-scope name each kind gives its kernel and bias."""
    return {"basic": "basic_lstm_cell", "block": "lstm_cell", "cudnn_compatible": "cudnn_compatible_lstm_cell"}[kind]
