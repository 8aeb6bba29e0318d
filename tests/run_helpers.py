"""A tiny run directory (one variable, a session) for the tests of runs.py and carry.py."""

from legacy_lstm import runs
from legacy_lstm.compat import tf, tf1


def tiny_run(run_dir, preset="a"):
    """(Run, Session) of a graph with one variable ``w`` [2], initialised; the caller closes both."""
    graph = tf.Graph()
    with graph.as_default():
        tf1.get_variable("w", shape=[2], initializer=tf1.zeros_initializer())
        run = runs.Run(run_dir, {"app": "locktest", "preset": preset})
        sess = tf1.Session(graph=graph)
        sess.run(tf1.global_variables_initializer())
    return run, sess
