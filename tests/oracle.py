"""Reading the TF 1.15 oracle fixtures (tests/tf1_oracle/<case>/, written by scripts/tf1_oracle/) on TF 2.

A case folder holds ``init.ckpt`` and ``trained.ckpt`` (TF1 Saver checkpoints, optimiser slots included),
``case.npz`` (the fixed batches and the outputs TF 1.15 computed) and ``case.json`` (config and provenance).
"""

import json
import pathlib

import numpy as np

from legacy_lstm.compat import tf1

FIXTURES = pathlib.Path(__file__).resolve().parent / "tf1_oracle"
INIT = "init.ckpt"
TRAINED = "trained.ckpt"


class Case:
    def __init__(self, name):
        self.name = name
        self.dir = FIXTURES / name
        if not (self.dir / "case.json").exists():
            raise FileNotFoundError(f"no oracle fixture {self.dir}; regenerate as tests/tf1_oracle/README.md says")
        self.meta = json.loads((self.dir / "case.json").read_text())
        with np.load(self.dir / "case.npz") as npz:
            self.arrays = {k: npz[k] for k in npz.files}

    def __getitem__(self, key):
        return self.arrays[key]

    def prefix(self, which):
        return str(self.dir / which)

    def checkpoint_values(self, which):
        reader = tf1.train.NewCheckpointReader(self.prefix(which))
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def restore_by_name(sess, prefix, graph=None):
    """Restore every global variable of the graph from ``prefix`` by its own name: no renaming, no var_list map.

    Fails (AssertionError) unless the checkpoint holds exactly the graph's variables (optimiser slots included)
    with the same shapes.
    """
    graph = graph or sess.graph
    variables = graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)
    ours = {v.op.name: v.shape.as_list() for v in variables}
    theirs = tf1.train.NewCheckpointReader(prefix).get_variable_to_shape_map()
    assert set(ours) == set(theirs), (f"variables only in our graph: {sorted(set(ours) - set(theirs))}; "
                                      f"only in the TF 1.15 checkpoint: {sorted(set(theirs) - set(ours))}")
    for name, shape in ours.items():
        assert list(theirs[name]) == shape, f"{name}: ours {shape}, TF 1.15's {theirs[name]}"
    with graph.as_default():
        tf1.train.Saver(variables).restore(sess, prefix)


def variable_diffs(sess, expected):
    """{name: max |ours - expected|} over every global variable, against a {name: array} of the checkpoint."""
    variables = sess.graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)
    values = sess.run({v.op.name: v for v in variables})
    assert set(values) == set(expected), sorted(set(values) ^ set(expected))
    return {name: float(np.max(np.abs(np.asarray(values[name], np.float64) - expected[name]), initial=0.0))
            for name in values}


def assert_variables_close(sess, expected, atol, rtol=0.0):
    """Every variable within atol + rtol * |expected| of the checkpoint's value; the message names the worst."""
    variables = sess.graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)
    values = sess.run({v.op.name: v for v in variables})
    assert set(values) == set(expected), sorted(set(values) ^ set(expected))
    bad = []
    for name, value in sorted(values.items()):
        want = np.asarray(expected[name])
        err = np.abs(np.asarray(value, np.float64) - want) - rtol * np.abs(want)
        if want.size and err.max() > atol:
            bad.append(f"{name}: max error {err.max():.3g} > {atol}")
    assert not bad, "after the same steps as TF 1.15: " + "; ".join(bad)
