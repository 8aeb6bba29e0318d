"""A sequence-level LSTM stack for graph mode (``--cell=fused``): same variables and maths as ``basic``, faster.

``dynamic_rnn(stack, inputs, initial_state)`` is a drop-in for ``tf1.nn.dynamic_rnn`` on a ``MultiRNNCell`` of
``BasicLSTMCell``/``LSTMCell`` cells (plain, or each in a ``DropoutWrapper`` with ``output_keep_prob`` only).
``static_rnn`` is the same for PTB official's Python unroll (time steps as a list). Neither calls the cells: they
read each cell's settings (units, forget bias, dropout keep probability, which cells are one shared object) and
create exactly the variables the cells would create in that place, ``<scope>/multi_rnn_cell/cell_<k>/<cell
name>/{kernel,bias}`` with the cell's initializers, so a checkpoint moves between ``basic`` and ``fused`` with no
conversion. Layers built from one shared cell object (Thomas's tied layers) share one kernel and bias, as there.

Per layer, over the whole sequence (time-major inside):

* forward: the input part of the gate pre-activations for all time steps is one GEMM ``[T*B, I] x [I, 4U]``
  (bias and forget bias folded in); a while loop does per step only ``h_{t-1} x W_h`` and the gate maths, and
  keeps c_t and the gate activations in TensorArrays that the backward reads without copying;
* backward (``tf.custom_gradient``, nothing is differentiated through the loop): a while loop per step runs
  the element-wise gate gradients (by default in the ``LSTMBlockCellGrad`` kernel, which is element-wise only:
  it gets a zero-width input, so no GEMM happens in it) and ``dz_t x W_h^T`` (on a transposed copy of W_h);
  after it the weight gradient is two GEMMs over all steps (``x^T dZ`` and ``h_{t-1}^T dZ``, stacked into the
  kernel's gradient), the input gradient one GEMM ``dZ x W_x^T`` and the bias gradient one reduction.

``OPTIONS`` holds the measured choices (XLA for the per-step maths, the batch split into two independent
recurrences for large batches, the transposed copy of W_h); scripts/benchmark.py (its ``FUSED_VARIANTS``,
``--paired``) and scripts/fused_ab.py compare them; docs/cells.md has the numbers. float32 only, as the cells
it replaces are used here.

Dropout is DropoutWrapper's: ``tf.nn.dropout(h, rate=1 - keep_prob)`` of each layer's output, a fresh mask per
time step. The masks come from one uniform draw ``[B, U]`` per layer and step, with the same (graph seed, op
seed) pairs and in the same order as the wrapped cells would draw them, so a seeded run draws the same masks
as with ``basic`` (the op seed of an unseeded random op is the count of such ops before it in its graph; the
draws are made in a while loop for ``dynamic_rnn`` and in the outer graph for ``static_rnn``, as the cells do).
The kernels are created in the cells' order too, so a seeded run starts from the same weights.
"""

import contextlib
import numbers

from legacy_lstm import native_ops
from legacy_lstm.compat import tf, tf1

LSTMStateTuple = tf1.nn.rnn_cell.LSTMStateTuple


# ---------------------------------------------------------------------------------------------------------
# Reading the stack
# ---------------------------------------------------------------------------------------------------------
class _Layer:
    """What one layer of the stack needs: the cell object (identity = shared weights), units, forget bias,
    cell name, kernel initializer, output keep probability (None: no dropout op)."""

    def __init__(self, wrapped):
        cell, keep = wrapped, None
        if isinstance(wrapped, tf1.nn.rnn_cell.DropoutWrapper):
            cell = wrapped.wrapped_cell
            for attr in ("_input_keep_prob", "_state_keep_prob"):
                if _draws(getattr(wrapped, attr)):
                    raise ValueError(f"fused LSTM: DropoutWrapper {attr[1:]} is not supported (output_keep_prob "
                                     "only)")
            if wrapped._variational_recurrent or wrapped._seed is not None:
                raise ValueError("fused LSTM: DropoutWrapper with variational_recurrent or seed is not supported")
            keep = wrapped._output_keep_prob if _draws(wrapped._output_keep_prob) else None
        if isinstance(cell, tf1.nn.rnn_cell.LSTMCell):
            if cell._use_peepholes or cell._num_proj is not None or cell._cell_clip is not None:
                raise ValueError("fused LSTM: LSTMCell with peepholes, projection or cell_clip is not supported")
            initializer = cell._initializer
        elif isinstance(cell, tf1.nn.rnn_cell.BasicLSTMCell):
            initializer = None
        else:
            raise ValueError(f"fused LSTM: cells must be BasicLSTMCell or LSTMCell, got {type(cell).__name__}")
        if not cell._state_is_tuple:
            raise ValueError("fused LSTM: state_is_tuple=False is not supported")
        if cell._activation not in (tf.tanh, tf.math.tanh):
            raise ValueError("fused LSTM: only the tanh activation is supported")
        self.wrapper, self.cell, self.keep = wrapped, cell, keep
        self.units, self.forget_bias = int(cell._num_units), float(cell._forget_bias)
        self.name, self.initializer = cell._base_name, initializer  # the scope name the cell would take


def _draws(keep_prob):
    """DropoutWrapper draws a mask when the keep probability is a tensor or a float below 1."""
    return not isinstance(keep_prob, numbers.Real) or keep_prob < 1


def _layers_of(stack):
    cells = stack._cells if isinstance(stack, tf1.nn.rnn_cell.MultiRNNCell) else [stack]
    if isinstance(stack, tf1.nn.rnn_cell.MultiRNNCell) and not stack._state_is_tuple:
        raise ValueError("fused LSTM: MultiRNNCell(state_is_tuple=False) is not supported")
    return [_Layer(c) for c in cells], isinstance(stack, tf1.nn.rnn_cell.MultiRNNCell)


def _variables(layers, k, input_depth, created, multi):
    """kernel, bias of layer k: created (or reused from the scope) as the cell would; shared cells share them."""
    layer = layers[k]
    for j in range(k):
        if layers[j].wrapper is layer.wrapper or layers[j].cell is layer.cell:
            return created[j]
    prefix = ["multi_rnn_cell", f"cell_{k}"] if multi else []
    scopes = [*prefix, layer.name]

    def make(depth):
        if not scopes:
            # As the cells' add_weight: their own initializer, else the scope's, else a fresh Keras Glorot-uniform
            # (its seed drawn from Python's random module when the variable is created).
            initializer = (layer.initializer or tf1.get_variable_scope().initializer
                           or tf.keras.initializers.get("glorot_uniform"))
            return (tf1.get_variable("kernel", [depth + layer.units, 4 * layer.units], initializer=initializer),
                    tf1.get_variable("bias", [4 * layer.units], initializer=tf1.zeros_initializer()))
        with tf1.variable_scope(scopes.pop(0)):
            return make(depth)
    return make(input_depth)


# ---------------------------------------------------------------------------------------------------------
# One layer over the whole sequence, with a hand-written gradient
# ---------------------------------------------------------------------------------------------------------
# How the per-step maths runs (scripts/benchmark.py measures the choices): the backward gate gradients in the
# LSTMBlockCellGrad kernel ("op") or in TF ops ("tf"); with "xla" the forward cell maths (and the "tf" backward) are
# compiled by XLA per step (jit_compile); "chunks" splits the batch into independent recurrences per step, so the
# two cores each run one (inter-op parallelism, as dynamic_rnn gets from running two layers' steps side by side);
# "auto": 2 for a static batch >= 128, else 1; "transposed_wh": the backward's per-step dz_t x W_h^T on a copy of
# W_h transposed once per sequence (oneDNN's small-batch GEMM with transpose_b is about 3x slower: docs/cells.md).
# "native": both loops as two compiled ops of our own (legacy_lstm/csrc/lstm_seq.cc, built on this machine by
# legacy_lstm/native_ops.py): the per-step GEMM and gate maths in C++, no TF loop; the GEMMs over all steps as before.
OPTIONS = {"backward": "op", "xla": False, "chunks": "auto", "transposed_wh": True, "native": False}


@contextlib.contextmanager
def options(**changes):
    """OPTIONS changed for the block, restored after it (also when it raises)."""
    unknown = set(changes) - set(OPTIONS)
    if unknown:
        raise ValueError(f"no such fast_lstm option: {', '.join(sorted(unknown))}")
    saved = dict(OPTIONS)
    OPTIONS.update(changes)
    try:
        yield OPTIONS
    finally:
        OPTIONS.clear()
        OPTIONS.update(saved)


NATIVE_PATH = "fused-native"  # how a curve row names an epoch that the native ops trained


def path_name(cell):
    """The name of the path ``cell`` runs on now, for the record of which path trained which epoch: the cell's
    own, except ``fused`` with the native ops on (NATIVE_PATH). The checkpoint is the same on both."""
    return NATIVE_PATH if cell == "fused" and OPTIONS["native"] else cell


def _cell_forward(z, c):
    i, j, f, o = tf.split(z, 4, axis=1)
    i, ci, f, o = tf.sigmoid(i), tf.tanh(j), tf.sigmoid(f), tf.sigmoid(o)
    c = f * c + i * ci
    return c, o * tf.tanh(c), tf.concat([i, ci, f, o], 1)


def _cell_backward(gates, c, c_prev, dc, dh):
    """(dc_prev, dz) of one step from the saved gates [i, ci, f, o], c_t, c_{t-1} and the incoming dc, dh."""
    i, ci, f, o = tf.split(gates, 4, axis=1)
    co = tf.tanh(c)
    dc = dc + dh * o * (1 - co * co)
    dz = tf.concat([dc * ci * i * (1 - i), dc * i * (1 - ci * ci), dc * c_prev * f * (1 - f),
                    dh * co * o * (1 - o)], 1)
    return dc * f, dz


def _cell_backward_op(gates, c, c_prev, dc, dh, wh, bias):
    """_cell_backward in the LSTMBlockCellGrad kernel (element-wise only: a zero-width input means no GEMM)."""
    units = c.shape[-1]
    i, ci, f, o = tf.split(gates, 4, axis=1)
    no_peep = tf.zeros([units], tf.float32)
    empty = tf.zeros(tf.stack([tf.shape(c)[0], 0]), tf.float32)
    dc_prev, dz, _, _, _ = tf.raw_ops.LSTMBlockCellGrad(
        x=empty, cs_prev=c_prev, h_prev=dh, w=wh, wci=no_peep, wcf=no_peep, wco=no_peep, b=bias, i=i, cs=c, f=f,
        o=o, ci=ci, co=tf.tanh(c), cs_grad=dc, h_grad=dh, use_peephole=False)
    return dc_prev, dz


_cell_forward_xla = tf.function(_cell_forward, jit_compile=True, autograph=False)
_cell_backward_xla = tf.function(_cell_backward, jit_compile=True, autograph=False)


def _num_chunks(batch):
    chunks = OPTIONS["chunks"]
    if chunks == "auto":
        chunks = 2 if batch is not None and batch >= 128 else 1
    return chunks if batch is not None and batch % chunks == 0 else 1


def _split(tensor, chunks):
    return tf.split(tensor, chunks, axis=0) if chunks > 1 else [tensor]


def _join(tensors):
    return tf.concat(tensors, 0) if len(tensors) > 1 else tensors[0]


def _projection(x, wx, bias, units, steps, batch):
    """The input part of every step's gate pre-activations, one GEMM: [T, B, 4U]."""
    return tf.reshape(tf.nn.bias_add(tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), wx), bias),
                      [steps, batch, 4 * units])


def _layer_forward(x, c0, h0, wx, wh, bias, units):
    """x [T, B, I] time-major; returns (hs [T, B, U], c_T, h_T, cs, gates): ``cs`` a TensorArray of c_0..c_T (T + 1
    entries), ``gates`` one of the activations [i, ci, f, o] per step; the backward reads them without copies."""
    steps = tf.shape(x)[0]
    batch = tf.shape(x)[1]
    chunks = _num_chunks(h0.shape[0])
    rows = None if h0.shape[0] is None else h0.shape[0] // chunks
    proj = _projection(x, wx, bias, units, steps, batch)
    hs = tf.TensorArray(tf.float32, size=steps, element_shape=h0.shape)
    cs = tf.TensorArray(tf.float32, size=steps + 1, element_shape=c0.shape).write(0, c0)
    gs = tf.TensorArray(tf.float32, size=steps, element_shape=[h0.shape[0], 4 * units])
    cell = _cell_forward_xla if OPTIONS["xla"] else _cell_forward

    def body(t, c, h, hs, cs, gs):
        outs = [cell(z + tf.matmul(h_k, wh), c_k) for z, c_k, h_k in zip(_split(proj[t], chunks), c, h)]
        c, h, gates = zip(*outs)
        for c_k, h_k in zip(c, h):
            c_k.set_shape([rows, units])
            h_k.set_shape([rows, units])
        return t + 1, c, h, hs.write(t, _join(h)), cs.write(t + 1, _join(c)), gs.write(t, _join(gates))

    _, c, h, hs, cs, gs = tf.while_loop(lambda t, *_: t < steps, body,
                                        (0, tuple(_split(c0, chunks)), tuple(_split(h0, chunks)), hs, cs, gs),
                                        maximum_iterations=steps)
    return hs.stack(), _join(c), _join(h), cs, gs


def _layer_backward(x, c0, h0, wx, wh, bias, hs, cs, gs, dhs, dc_last, dh_last):
    """Gradients of _layer_forward's (hs, c_T, h_T) w.r.t. x, c0, h0, wx, wh, bias."""
    steps = tf.shape(x)[0]
    units = h0.shape[-1]
    chunks = _num_chunks(h0.shape[0])
    rows = None if h0.shape[0] is None else h0.shape[0] // chunks
    dzs = tf.TensorArray(tf.float32, size=steps, element_shape=[h0.shape[0], 4 * units])
    wh_t = tf.transpose(wh) if OPTIONS["transposed_wh"] else None
    if OPTIONS["backward"] == "op":
        cell = lambda *args: _cell_backward_op(*args, wh, bias)
    else:
        cell = _cell_backward_xla if OPTIONS["xla"] else _cell_backward

    def body(t, dc, dh, dzs):
        parts = [_split(v, chunks) for v in (gs.read(t), cs.read(t + 1), cs.read(t), dhs[t])]
        dc_prev, dh_prev, dz = [], [], []
        for (gates, c, c_prev, dh_out), dc_k, dh_k in zip(zip(*parts), dc, dh):
            dc_k, dz_k = cell(gates, c, c_prev, dc_k, dh_k + dh_out)
            dh_k = tf.matmul(dz_k, wh_t) if wh_t is not None else tf.matmul(dz_k, wh, transpose_b=True)
            dc_k.set_shape([rows, units])  # the op infers no static batch
            dh_k.set_shape([rows, units])
            dc_prev.append(dc_k)
            dh_prev.append(dh_k)
            dz.append(dz_k)
        return t - 1, tuple(dc_prev), tuple(dh_prev), dzs.write(t, _join(dz))

    _, dc0, dh0, dzs = tf.while_loop(lambda t, *_: t >= 0, body,
                                     (steps - 1, tuple(_split(dc_last, chunks)), tuple(_split(dh_last, chunks)), dzs),
                                     maximum_iterations=steps)
    dx, dwx, dwh, dz = _over_all_steps(x, h0, wx, hs, dzs.stack())
    return dx, _join(dc0), _join(dh0), dwx, dwh, tf.reduce_sum(dz, 0)


def _over_all_steps(x, h0, wx, hs, dzs):
    """(dx, dwx, dwh, dz [T*B, 4U]) from the pre-activation gradients of every step ``dzs`` [T, B, 4U]: GEMMs over
    all steps at once (the bias gradient is ``reduce_sum(dz, 0)``)."""
    units = h0.shape[-1]
    dz = tf.reshape(dzs, [-1, 4 * units])
    hs_prev = tf.reshape(tf.concat([h0[None], hs[:-1]], 0), [-1, units])
    dwx = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), dz, transpose_a=True)
    dwh = tf.matmul(hs_prev, dz, transpose_a=True)
    dx = tf.reshape(tf.matmul(dz, wx, transpose_b=True), tf.shape(x))
    return dx, dwx, dwh, dz


def lstm_layer(x, c0, h0, kernel, bias):
    """One LSTM layer over time-major x [T, B, I]: (outputs [T, B, U], final c, final h); bias has the forget
    bias folded in. The gradient is hand-written (see the module docstring)."""
    depth = x.shape[-1]
    units = h0.shape[-1]

    native = native_ops.load() if OPTIONS["native"] else None

    @tf.custom_gradient
    def run(x, c0, h0, kernel, bias):
        wx, wh = kernel[:depth], kernel[depth:]
        if native is not None:
            proj = _projection(x, wx, bias, units, tf.shape(x)[0], tf.shape(x)[1])
            hs, cs, gs, h = native.legacy_lstm_seq_forward(proj, wh, c0, h0)
            c = cs[-1]
        else:
            hs, c, h, cs, gs = _layer_forward(x, c0, h0, wx, wh, bias, units)

        def grad(dhs, dc_last, dh_last):
            dhs, dc_last, dh_last = (tf.zeros_like(like) if g is None else g
                                     for g, like in ((dhs, hs), (dc_last, c0), (dh_last, h0)))
            if native is not None:
                dzs, dc0, dh0 = native.legacy_lstm_seq_backward(gs, cs, dhs, dc_last, dh_last, wh)
                dx, dwx, dwh, dz = _over_all_steps(x, h0, wx, hs, dzs)
                db = tf.reduce_sum(dz, 0)
            else:
                dx, dc0, dh0, dwx, dwh, db = _layer_backward(x, c0, h0, wx, wh, bias, hs, cs, gs, dhs, dc_last,
                                                              dh_last)
            return dx, dc0, dh0, tf.concat([dwx, dwh], 0), db
        return (hs, c, h), grad

    return run(x, c0, h0, kernel, bias)


# ---------------------------------------------------------------------------------------------------------
# The stack
# ---------------------------------------------------------------------------------------------------------
def _dropout(h, keep_prob, uniform):
    """tf.nn.dropout(h, rate=1 - keep_prob) with the given uniform draw, op for op as DropoutWrapper does it
    (a Python keep probability scales by a constant, a tensor one divides by 1 - rate)."""
    if isinstance(keep_prob, numbers.Real):
        rate = 1.0 - keep_prob
        return tf.where(uniform >= rate, h * tf.constant(1 / (1 - rate), tf.float32), tf.zeros([], tf.float32))
    rate = 1.0 - tf.cast(keep_prob, tf.float32)
    out = tf.where(uniform >= rate, tf.realdiv(h, 1.0 - rate), tf.zeros([], tf.float32))
    out.set_shape(h.shape)  # a keep_prob placeholder of unknown shape would lose it (tf.nn.dropout sets it too)
    return out


def _uniform(batch, units):
    return tf1.random_uniform(tf.stack([batch, units]) if isinstance(batch, tf.Tensor) else [batch, units])


def _masks_in_loop(layers, steps, batch):
    """The uniform draws [T, B, U] of each layer with dropout, made as dynamic_rnn's loop makes them: one random
    op per layer (in layer order) inside one while loop, one [B, U] draw per step, steps in order."""
    drawing = [k for k, layer in enumerate(layers) if layer.keep is not None]
    if not drawing:
        return {}
    static_batch = batch if isinstance(batch, int) else None
    arrays = tuple(tf.TensorArray(tf.float32, size=steps, element_shape=[static_batch, layers[k].units])
                   for k in drawing)

    def body(t, arrays):
        return t + 1, tuple(ta.write(t, _uniform(batch, layers[k].units)) for ta, k in zip(arrays, drawing))

    _, arrays = tf.while_loop(lambda t, _: t < steps, body, (0, arrays), parallel_iterations=1,
                              maximum_iterations=steps)
    return {k: ta.stack() for k, ta in zip(drawing, arrays)}


def _run_stack(layers, multi, x, initial_state, variables, uniforms):
    """x time-major [T, B, I]; ``variables`` [(kernel, bias)] per layer; ``uniforms`` {layer: [T, B, U]}."""
    states = list(initial_state) if multi else [initial_state]
    if len(states) != len(layers):
        raise ValueError(f"fused LSTM: {len(states)} initial states for {len(layers)} layers")
    finals, out = [], x
    for k, layer in enumerate(layers):
        kernel, bias = variables[k]
        if kernel.shape[0] != out.shape[-1] + layer.units:
            raise ValueError(f"fused LSTM: layer {k} input depth {out.shape[-1]} does not fit its kernel "
                             f"{kernel.shape}")
        c0, h0 = states[k]
        fold = tf.constant([0.0] * (2 * layer.units) + [layer.forget_bias] * layer.units + [0.0] * layer.units,
                           tf.float32)
        hs, c, h = lstm_layer(out, c0, h0, tf.convert_to_tensor(kernel), tf.convert_to_tensor(bias) + fold)
        finals.append(LSTMStateTuple(c, h))
        out = hs if k not in uniforms else _dropout(hs, layer.keep, uniforms[k])
    return out, (tuple(finals) if multi else finals[0])


def _input_depths(layers, depth):
    return [depth] + [layer.units for layer in layers[:-1]]


def _batch_of(initial_state, x, batch_axis):
    batch = tf.nest.flatten(initial_state)[0].shape[0]
    return int(batch) if batch is not None else tf.shape(x)[batch_axis]


def dynamic_rnn(cell, inputs, initial_state, dtype=None, parallel_iterations=None, scope=None, time_major=False):
    """``tf1.nn.dynamic_rnn(cell, inputs, initial_state=...)`` for a stack of BasicLSTMCell/LSTMCell (see the
    module docstring): (outputs, final state) of the same structure, with the same variables and dropout draws.
    ``dtype`` and ``parallel_iterations`` are accepted for the signature; the dropout draws are made in order."""
    del dtype, parallel_iterations
    layers, multi = _layers_of(cell)
    with tf1.variable_scope(scope or "rnn"):
        x = tf.convert_to_tensor(inputs)
        if not time_major:
            x = tf.transpose(x, [1, 0, 2])
        created = []
        for k, depth in enumerate(_input_depths(layers, x.shape[-1])):
            created.append(_variables(layers, k, depth, created, multi))
        uniforms = _masks_in_loop(layers, tf.shape(x)[0], _batch_of(initial_state, x, 1))
        out, final = _run_stack(layers, multi, x, initial_state, created, uniforms)
        if not time_major:
            out = tf.transpose(out, [1, 0, 2])
    return out, final


def unrolled_rnn(cell, inputs, initial_state):
    """PTB official's Python unroll, ``for t: output, state = cell(inputs[:, t, :], state)`` in the current
    variable scope, as one fused stack: (outputs [B, T, U], final state). The dropout draws are one random op
    per step and layer in the outer graph, created in the unroll's order (layer k's kernel just before its first
    draw), so a seeded graph draws what the unroll draws."""
    layers, multi = _layers_of(cell)
    x = tf.convert_to_tensor(inputs)
    steps = x.shape[1]
    if steps is None:
        raise ValueError("fused LSTM: unrolled_rnn needs a static number of time steps")
    batch = _batch_of(initial_state, x, 0)
    created, draws = [], {k: [] for k, layer in enumerate(layers) if layer.keep is not None}
    for t in range(steps):
        for k, depth in enumerate(_input_depths(layers, x.shape[-1])):
            if t == 0:
                created.append(_variables(layers, k, depth, created, multi))
            if k in draws:
                draws[k].append(_uniform(batch, layers[k].units))
    uniforms = {k: tf.stack(d) for k, d in draws.items()}
    out, final = _run_stack(layers, multi, tf.transpose(x, [1, 0, 2]), initial_state, created, uniforms)
    return tf.transpose(out, [1, 0, 2]), final
