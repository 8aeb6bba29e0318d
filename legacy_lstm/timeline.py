"""Where a training step's time goes: op time from TensorFlow's step stats (the timeline of a traced
``Session.run``), summed per group of ops. Used by scripts/benchmark.py --profile and scripts/ptb_speed.py
--profile; op times are summed over every thread of every core, so they overlap and exceed the wall time."""

import collections
import statistics
import time

from legacy_lstm.compat import tf1


def op_type(node_name, timeline_label):
    """The op type of a step-stats node: ``MatMul`` of the label ``"name = MatMul(a, b)"`` (the node name where
    the label has none)."""
    head = timeline_label.split("(")[0]
    return head.split("=")[-1].strip() or node_name


def step_op_times(run_step, steps, key):
    """Trace ``steps`` calls of ``run_step(options=..., run_metadata=...)`` (one training step each); returns
    ``(ms, walls)``: a Counter of op time in ms per step by ``key(node_name, op_type)``, and each traced call's wall
    seconds (tracing slows a step: the walls are only a cross-check)."""
    ms, walls = collections.Counter(), []
    for _ in range(steps):
        meta = tf1.RunMetadata()
        start = time.perf_counter()
        run_step(options=tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE), run_metadata=meta)
        walls.append(time.perf_counter() - start)
        for dev in meta.step_stats.dev_stats:
            for node in dev.node_stats:
                ms[key(node.node_name, op_type(node.node_name, node.timeline_label))] += \
                    (node.op_end_rel_micros - node.op_start_rel_micros) / 1000 / steps
    return ms, walls


def by_op_and_direction(node_name, op):
    """A key for step_op_times: the op type, backward (under ``gradients``) apart from forward."""
    return f"{op} ({'backward' if 'gradients' in node_name else 'forward'})"


def median_ms(walls):
    return statistics.median(walls) * 1000
