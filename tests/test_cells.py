"""LSTMBlockCell / CudnnCompatibleLSTMCell: same maths as BasicLSTMCell, our registered gradient, names, checks."""

import subprocess
import sys

import numpy as np
import pytest

from legacy_lstm import cells
from legacy_lstm.compat import tf, tf1

RNG = np.random.RandomState(0)
X = RNG.randn(5, 7, 3).astype(np.float32)


def _run_stack(kind, forget_bias, values=None, inputs=X, units=(4, 6)):
    """Outputs, final state and all gradients of a 2-layer stack; variables loaded from ``values`` if given."""
    with tf.Graph().as_default():
        tf1.set_random_seed(1)
        x = tf.constant(inputs)
        stack = tf1.nn.rnn_cell.MultiRNNCell([cells.make_cell(kind, u, forget_bias) for u in units])
        out, state = tf1.nn.dynamic_rnn(stack, x, dtype=tf.float32)
        variables = tf1.trainable_variables()
        loss = tf.reduce_sum(out ** 2) + tf.reduce_sum(state[-1].c * 0.3)
        grads = tf.gradients(loss, variables + [x])
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            if values is None:
                values = [RNG.randn(*v.shape.as_list()).astype(np.float32) * 0.4 for v in variables]
            for var, value in zip(variables, values):
                var.load(value, sess)
            return sess.run(out), sess.run(state), sess.run(grads), values, [v.op.name for v in variables]


@pytest.mark.parametrize("kind,forget_bias", [("block", 0.0), ("block", 1.0), ("cudnn_compatible", 0.0)])
def test_same_outputs_and_gradients_as_basic(kind, forget_bias):
    ref_out, ref_state, ref_grads, values, _ = _run_stack("basic", forget_bias)
    out, state, grads, _, _ = _run_stack(kind, forget_bias, values)
    np.testing.assert_allclose(out, ref_out, atol=1e-6)
    for a, b in zip(tf.nest.flatten(state), tf.nest.flatten(ref_state)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    for g, ref in zip(grads, ref_grads):
        np.testing.assert_allclose(g, ref, atol=2e-6, rtol=1e-5)


def test_forget_bias_is_applied():
    """block with forget_bias 1 differs from forget_bias 0 on the same weights (the op's default is not used)."""
    out0, _, _, values, _ = _run_stack("block", 0.0)
    out1, _, _, _, _ = _run_stack("block", 1.0, values)
    assert np.abs(out0 - out1).max() > 1e-3


def test_no_cell_clipping():
    """The raw op clips the cell state at 3 by default; ours does not (large inputs drive |c| above 3)."""
    # A forget gate held open (forget_bias 4) over 40 steps lets |c| grow well past 3.
    long_inputs = np.abs(RNG.randn(5, 40, 3)).astype(np.float32) * 2
    ref_out, ref_state, _, values, _ = _run_stack("basic", 4.0, inputs=long_inputs)
    assert np.abs(ref_state[0].c).max() > 4.0
    _, state, _, _, _ = _run_stack("block", 4.0, values, inputs=long_inputs)
    np.testing.assert_allclose(state[0].c, ref_state[0].c, atol=1e-4)


def test_variable_names_inside_multi_rnn_and_dropout_are_tf1s():
    with tf.Graph().as_default():
        keep = tf1.placeholder_with_default(1.0, [])
        stack = tf1.nn.rnn_cell.MultiRNNCell([tf1.nn.rnn_cell.DropoutWrapper(cells.make_cell("cudnn_compatible", u),
                                                                              output_keep_prob=keep)
                                              for u in (8, 4)])
        tf1.nn.dynamic_rnn(stack, tf.zeros([2, 3, 5]), dtype=tf.float32)
        assert [(v.op.name, v.shape.as_list()) for v in tf1.trainable_variables()] == [
            ("rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell/kernel", [13, 32]),
            ("rnn/multi_rnn_cell/cell_0/cudnn_compatible_lstm_cell/bias", [32]),
            ("rnn/multi_rnn_cell/cell_1/cudnn_compatible_lstm_cell/kernel", [12, 16]),
            ("rnn/multi_rnn_cell/cell_1/cudnn_compatible_lstm_cell/bias", [16])]
    with tf.Graph().as_default():
        tf1.nn.dynamic_rnn(cells.make_cell("block", 3), tf.zeros([2, 3, 5]), dtype=tf.float32)
        assert [v.op.name for v in tf1.trainable_variables()] == ["rnn/lstm_cell/kernel", "rnn/lstm_cell/bias"]


def test_registered_gradient_matches_finite_differences():
    with tf.Graph().as_default():
        rng = np.random.RandomState(3)
        shapes = {"x": [3, 4], "c": [3, 5], "h": [3, 5], "w": [9, 20], "b": [20]}
        inputs = {k: tf.constant(rng.randn(*s).astype(np.float32) * 0.5) for k, s in shapes.items()}
        zeros = tf.zeros([5])
        _, cs, _, _, _, _, h = tf.raw_ops.LSTMBlockCell(
            x=inputs["x"], cs_prev=inputs["c"], h_prev=inputs["h"], w=inputs["w"], wci=zeros, wcf=zeros, wco=zeros,
            b=inputs["b"], forget_bias=1.0, cell_clip=-1.0, use_peephole=False)
        y = tf.concat([h, cs], 1)
        with tf1.Session():
            for name, tensor in inputs.items():
                error = tf1.test.compute_gradient_error(tensor, shapes[name], y, [3, 10], delta=1e-2)
                assert error < 5e-3, (name, error)


def test_clear_errors_instead_of_aborts():
    with tf.Graph().as_default():
        with pytest.raises(TypeError, match="float16 or float32"):
            tf1.nn.dynamic_rnn(cells.make_cell("block", 3), tf.zeros([2, 3, 5], tf.float64), dtype=tf.float64)
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="empty batch"):
            tf1.nn.dynamic_rnn(cells.make_cell("block", 3), tf.zeros([0, 3, 5]), dtype=tf.float32)
    with tf.Graph().as_default():
        cell = cells.make_cell("block", 3)
        with pytest.raises(ValueError, match="input depth must be known"):
            cell(tf1.placeholder(tf.float32, [2, None]), cell.zero_state(2, tf.float32))
    with tf.Graph().as_default():
        cell = cells.make_cell("block", 3)
        cell(tf.zeros([2, 5]), cell.zero_state(2, tf.float32))
        with pytest.raises(ValueError, match=r"input depth 4 does not match the kernel \(5\)"):
            cell(tf.zeros([2, 4]), cell.zero_state(2, tf.float32))
        with pytest.raises(ValueError, match=r"cell state must be \[batch, 3\]"):
            cell(tf.zeros([2, 5]), cells.LSTMStateTuple(tf.zeros([2, 7]), tf.zeros([2, 3])))
    with pytest.raises(ValueError, match="cell must be one of"):
        cells.make_cell("lstm", 3)


def test_empty_batch_at_run_time_is_an_error_not_an_abort():
    """With an unknown batch size the check runs in the graph; the process must survive an empty batch."""
    code = """
import numpy as np
from legacy_lstm import cells
from legacy_lstm.compat import tf, tf1
x = tf1.placeholder(tf.float32, [None, 3, 5])
out, _ = tf1.nn.dynamic_rnn(cells.make_cell("block", 4), x, dtype=tf.float32)
with tf1.Session() as sess:
    sess.run(tf1.global_variables_initializer())
    print("ok", sess.run(out, {x: np.ones([2, 3, 5], np.float32)}).shape)
    try:
        sess.run(out, {x: np.ones([0, 3, 5], np.float32)})
    except tf.errors.InvalidArgumentError as err:
        print("caught", "empty batch" in str(err))
cell = cells.make_cell("block", 4)
y = tf1.placeholder(tf.float32, [None, 3, 5])
out, _ = tf1.nn.dynamic_rnn(cell, y, initial_state=cell.zero_state(2, tf.float32), scope="second")
with tf1.Session() as sess:
    sess.run(tf1.global_variables_initializer())
    print("static state batch", out.shape.as_list())
    try:
        sess.run(out, {y: np.ones([3, 3, 5], np.float32)})
    except tf.errors.InvalidArgumentError as err:
        print("mismatch caught", "different batch sizes" in str(err))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok (2, 3, 4)" in out.stdout and "caught True" in out.stdout
    assert "static state batch [2, 3, 4]" in out.stdout and "mismatch caught True" in out.stdout


def test_initial_values_are_graph_seeded():
    values = []
    for seed in (5, 5, 6):
        with tf.Graph().as_default():
            tf1.set_random_seed(seed)
            cell = cells.make_cell("cudnn_compatible", 4)
            tf1.nn.dynamic_rnn(cell, tf.zeros([1, 2, 3]), dtype=tf.float32)
            with tf1.Session() as sess:
                sess.run(tf1.global_variables_initializer())
                values.append(sess.run(cell.weights))
    np.testing.assert_array_equal(values[0][0], values[1][0])  # the same graph seed: the same kernel
    assert np.abs(values[0][0]).min() > 0 and np.std(values[0][0]) > 0.1  # a random draw, not a constant
    assert not np.array_equal(values[0][0], values[2][0])  # another seed: another kernel
    np.testing.assert_array_equal(values[0][1], 0)
