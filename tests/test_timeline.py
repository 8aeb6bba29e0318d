"""legacy_lstm.timeline: op time of traced steps grouped by a key (scripts/benchmark.py and ptb_speed.py --profile)."""

import pathlib
import sys

import numpy as np
import pytest

from legacy_lstm import timeline
from legacy_lstm.compat import tf, tf1

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("label, op", [
    ("dense/MatMul = MatMul(x, dense/kernel)", "MatMul"),
    ("gradients/a/b_grad/Sum = Sum(t, axes=[0])", "Sum"),  # an "=" inside the arguments
    ("_SOURCE", "_SOURCE"),
    ("", "node/name"),  # no label: the node's name
])
def test_op_type_of_a_timeline_label(label, op):
    assert timeline.op_type("node/name", label) == op


def _step():
    """A step of a tiny model trained with SGD: a forward MatMul, its gradients' MatMuls, an update."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, [512, 512])  # big enough that every op takes whole microseconds
        w = tf1.get_variable("w", [512, 512])
        loss = tf.reduce_sum(tf.tanh(tf.matmul(x, w)))
        train_op = tf1.train.GradientDescentOptimizer(0.1).minimize(loss)
        sess = tf1.Session(graph=graph)
        sess.run(tf1.global_variables_initializer())
    feed = {x: np.ones([512, 512], np.float32)}
    return sess, lambda **trace: sess.run([loss, train_op], feed_dict=feed, **trace)


def test_step_op_times_is_op_time_in_ms_per_traced_step():
    """The sums are milliseconds per step: a fake step whose trace holds a 2,000 us MatMul and a 500 us Tanh (and,
    in its second call only, a 1,000 us backward MatMul) gives 2.0, 0.5 and 0.5 ms per step over 2 steps."""
    calls = []

    def run_step(options, run_metadata):
        assert options.trace_level == tf1.RunOptions.FULL_TRACE
        calls.append(1)
        dev = run_metadata.step_stats.dev_stats.add()
        nodes = [("a/MatMul", "a/MatMul = MatMul(x, w)", 2000), ("a/Tanh", "a/Tanh = Tanh(a/MatMul)", 500)]
        if len(calls) == 2:
            nodes.append(("gradients/a/MatMul_grad/MatMul", "gradients/a/MatMul_grad/MatMul = MatMul(g, w)", 1000))
        for name, label, micros in nodes:
            dev.node_stats.add(node_name=name, timeline_label=label, op_start_rel_micros=10,
                               op_end_rel_micros=10 + micros)
    by_op, walls = timeline.step_op_times(run_step, 2, timeline.by_op_and_direction)
    assert dict(by_op) == {"MatMul (forward)": 2.0, "Tanh (forward)": 0.5, "MatMul (backward)": 0.5}
    assert len(calls) == len(walls) == 2


def test_step_op_times_sums_each_key_per_step():
    """Per traced step, by op type and direction: the forward MatMul and the backward's (oneDNN's _MklMatMul where
    TF rewrote them); one wall per step."""
    sess, run_step = _step()
    with sess:
        by_op, walls = timeline.step_op_times(run_step, 3, timeline.by_op_and_direction)
        counts, _ = timeline.step_op_times(run_step, 3, lambda name, op: op)
    assert len(walls) == 3 and all(w > 0 for w in walls)
    for direction in ("forward", "backward"):
        assert sum(v for k, v in by_op.items() if "MatMul" in k and k.endswith(f"({direction})")) > 0, by_op
    assert "Tanh (forward)" in by_op and "TanhGrad (backward)" in by_op
    assert all(v >= 0 for v in by_op.values())
    assert {"Tanh", "TanhGrad"} <= set(counts) and any("MatMul" in k for k in counts)


def test_benchmark_profile_groups_ops_into_its_categories():
    """scripts/benchmark.py's groups, keyed by node name and op type."""
    sys.path.insert(0, str(REPO / "scripts"))
    import benchmark
    assert benchmark._categorise("gradients/rnn/MatMul_grad/MatMul", "MatMul") == "LSTM GEMMs backward"
    assert benchmark._categorise("rnn/MatMul", "_MklMatMul") == "LSTM GEMMs forward"
    assert benchmark._categorise("Adadelta/update_w/ApplyAdadelta", "ApplyAdadelta") == "optimizer update"
    assert benchmark._categorise("rnn/while/Enter", "Enter") == "while-loop / tensor-array / plumbing"
    assert benchmark._categorise("x", "Mystery") == "other (Mystery)"
    sess, run_step = _step()
    with sess:
        groups, _ = timeline.step_op_times(run_step, 2, benchmark._categorise)
    assert groups["LSTM GEMMs forward"] > 0 and groups["LSTM GEMMs backward"] > 0
