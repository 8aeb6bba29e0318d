"""legacy_lstm/fables.py against real TensorFlow 1.15 (fixtures from scripts/tf1_oracle/fables.py).

Each case restores TF 1.15's initial variables into ``fables.build_graph`` by name, runs the same training steps
(``[train_op, accuracy, cost, pred]`` on the same windows, as the original's loop) and compares the per-step
outputs, the variables (RMSProp slots included) after the last step, and the logits on every window of the text.

Cases: ``fables`` (1 layer, 6 steps of one window), ``fables_improved`` (2 layers, 5 steps of two windows, so the
mean over the batch matters) and ``fables_long`` (1 layer, 300 steps of one window with the original's offsets: by
then RMSProp's mean square, which TF1 starts at 1, has decayed towards the squared gradients and its epsilon 1e-10
matters; after 6 steps an epsilon of 1e-7 would change nothing visible).

Tolerances (float32 throughout). Short cases: within 1e-6 + 1e-6 * |TF 1.15's value|, a few float32 ulps (under
1e-5 for every value below 9); measured: losses 2.4e-7, logits 4.8e-7, variables 1.9e-6 (an RMSProp slot of
value 7.1: 4 ulps). Long case: 1e-5 absolute; ulp-level differences accumulate over 300 steps, measured: losses
and logits 9.5e-7, variables 4.1e-6 (the LSTM kernel's RMSProp slot, values up to 11; the inputs are raw ids up to
19, so its squared gradients are large).
"""

import dataclasses

import numpy as np
import pytest

from legacy_lstm import fables
from legacy_lstm.compat import tf, tf1

import oracle

CASES = {"fables": "blog", "fables_improved": "improved", "fables_long": "blog"}
# (atol, rtol) per case; see the module docstring.
TOLERANCES = {"fables": (1e-6, 1e-6), "fables_improved": (1e-6, 1e-6), "fables_long": (1e-5, 0.0)}


def config_of(case):
    """The app's own preset, shrunk to the fixture's sizes."""
    cfg = case.meta["config"]
    config = dataclasses.replace(fables.PRESETS[CASES[case.name]], n_hidden=cfg["n_hidden"], n_input=cfg["n_input"])
    assert (config.n_layers, config.learning_rate) == (cfg["n_layers"], cfg["learning_rate"])
    return config, cfg["vocab_size"]


@pytest.fixture(scope="module", params=sorted(CASES))
def run(request):
    """Restore TF 1.15's init checkpoint into our graph, take the case's steps; return what they produced."""
    case = oracle.Case(request.param)
    config, vocab_size = config_of(case)
    graph = tf.Graph()
    with graph.as_default():
        model = fables.build_graph(vocab_size, config)
        with tf1.Session(graph=graph) as sess:
            oracle.restore_by_name(sess, case.prefix(oracle.INIT))
            steps = [sess.run([model.train_op, model.accuracy, model.cost, model.pred], {model.x: x, model.y: y})[1:]
                     for x, y in zip(case["x"], case["y"])]
            out = {"accuracies": np.array([s[0] for s in steps]), "losses": np.array([s[1] for s in steps]),
                   "logits": np.stack([s[2] for s in steps]),
                   "final_logits": sess.run(model.pred, {model.x: case["text_x"]}),
                   "values": sess.run({v.op.name: v for v in tf1.global_variables()})}
    return case, out


def test_same_losses_accuracies_and_predictions_at_each_step(run):
    case, out = run
    atol, rtol = TOLERANCES[case.name]
    np.testing.assert_allclose(out["losses"], case["losses"], rtol=rtol, atol=atol)
    np.testing.assert_array_equal(out["accuracies"], case["accuracies"])
    np.testing.assert_allclose(out["logits"], case["logits"], rtol=rtol, atol=atol)
    np.testing.assert_array_equal(np.argmax(out["logits"], -1), case["predictions"])


def test_same_variables_and_rmsprop_slots_after_the_steps(run):
    case, out = run
    atol, rtol = TOLERANCES[case.name]
    expected = case.checkpoint_values(oracle.TRAINED)
    assert set(out["values"]) == set(expected)
    bad = []
    for name, value in sorted(out["values"].items()):
        err = np.abs(np.asarray(value, np.float64) - expected[name]) - rtol * np.abs(expected[name])
        if err.max() > atol:
            bad.append(f"{name}: {err.max():.3g} beyond {atol} + {rtol} * |expected|")
    assert not bad, bad


def test_same_logits_on_every_window_after_training(run):
    case, out = run
    atol, rtol = TOLERANCES[case.name]
    np.testing.assert_allclose(out["final_logits"], case["final_logits"], rtol=rtol, atol=atol)
    np.testing.assert_array_equal(np.argmax(out["final_logits"], 1), case["final_predictions"])


def test_the_steps_moved_the_variables(run):
    """The comparison means something: the steps moved every variable and slot well beyond the tolerance."""
    case, _ = run
    init, trained = case.checkpoint_values(oracle.INIT), case.checkpoint_values(oracle.TRAINED)
    moved = {name: float(np.abs(trained[name] - init[name]).max()) for name in init}
    assert min(moved.values()) > 50 * TOLERANCES[case.name][0], moved
