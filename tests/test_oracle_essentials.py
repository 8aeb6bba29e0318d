"""legacy_lstm/essentials.py against real TensorFlow 1.15 (fixture from scripts/tf1_oracle/essentials.py).

The case restores TF 1.15's initial variables (the dead ``Variable``, weight, bias, the float64 LSTM kernel and
bias, Adam's slots and beta powers) into ``essentials.build_graph`` by name, runs the same 4 Adam steps on the
same batches with dropout off (keep_prob 1.0; the oracle built the book's DropoutWrapper with 1.0) and compares the
per-step losses, logits and accuracies, every variable after the steps, and the logits after training.

Tolerances, by dtype: the LSTM runs in float64, the weight, bias and their Adam slots are float32 variables (the
book's ``tf.Variable(truncated_normal(...))`` cast to float64 in the graph). Float64 values (losses, logits, LSTM
variables and slots) must agree within 1e-9: they pick up float32 rounding only through the float32 weight and
bias. Float32 variables must agree within 1e-6 (a few ulps).
"""

import dataclasses

import numpy as np
import pytest

from legacy_lstm import essentials
from legacy_lstm.compat import tf, tf1

import oracle

ATOL64 = 1e-12
ATOL32 = 1e-6


@pytest.fixture(scope="module")
def run():
    """Restore TF 1.15's init checkpoint into our graph, take the 4 steps; return what they produced."""
    case = oracle.Case("essentials")
    config = dataclasses.replace(essentials.PRESETS["book"], **{k: v for k, v in case.meta["config"].items()
                                                                if k != "output_keep_prob"})
    graph = tf.Graph()
    with graph.as_default():
        model = essentials.build_graph(case["word_vectors"], config)
        with tf1.Session(graph=graph) as sess:
            oracle.restore_by_name(sess, case.prefix(oracle.INIT))
            fetches = [model.optimizer, model.loss, model.accuracy, model.prediction]
            steps = [sess.run(fetches, {model.raw_data: x, model.labels: y, model.keep_prob: 1.0})[1:]
                     for x, y in zip(case["x"], case["y"])]
            final = [sess.run([model.prediction, model.loss], {model.raw_data: x, model.labels: y,
                                                                model.keep_prob: 1.0})
                     for x, y in zip(case["x"], case["y"])]
            values = sess.run({v.op.name: v for v in tf1.global_variables()})
    out = {"losses": np.array([s[0] for s in steps]), "accuracies": np.array([s[1] for s in steps]),
           "logits": np.stack([s[2] for s in steps]), "final_logits": np.stack([f[0] for f in final]),
           "final_losses": np.array([f[1] for f in final]), "values": values}
    return case, out


def test_graph_is_float64_where_the_book_is(run):
    _, out = run
    assert out["logits"].dtype == np.float64 and out["losses"].dtype == np.float64
    assert out["values"]["rnn/basic_lstm_cell/kernel"].dtype == np.float64
    assert out["values"]["Variable_1"].dtype == np.float32


def test_same_losses_logits_and_accuracies_at_each_step(run):
    case, out = run
    np.testing.assert_allclose(out["losses"], case["losses"], rtol=0, atol=ATOL64)
    np.testing.assert_allclose(out["logits"], case["logits"], rtol=0, atol=ATOL64)
    np.testing.assert_array_equal(np.argmax(out["logits"], -1), case["predictions"])
    np.testing.assert_array_equal(out["accuracies"], case["accuracies"])


def test_same_variables_and_adam_slots_after_the_steps(run):
    case, out = run
    expected = case.checkpoint_values(oracle.TRAINED)
    assert set(out["values"]) == set(expected)
    bad = []
    for name, value in sorted(out["values"].items()):
        want = expected[name]
        assert value.dtype == want.dtype, name
        atol = ATOL64 if want.dtype == np.float64 else ATOL32
        err = float(np.abs(np.asarray(value, np.float64) - want).max())
        if err > atol:
            bad.append(f"{name}: {err:.3g} > {atol}")
    assert not bad, bad


def test_same_logits_and_losses_after_training(run):
    case, out = run
    np.testing.assert_allclose(out["final_logits"], case["final_logits"], rtol=0, atol=ATOL64)
    np.testing.assert_array_equal(np.argmax(out["final_logits"], -1), case["final_predictions"])
    np.testing.assert_allclose(out["final_losses"], case["final_losses"], rtol=0, atol=ATOL64)


def test_the_steps_moved_the_variables(run):
    """The comparison means something: every trained variable and slot moved well beyond its tolerance."""
    case, _ = run
    init, trained = case.checkpoint_values(oracle.INIT), case.checkpoint_values(oracle.TRAINED)
    for name in init:
        if name == "Variable":  # the book's dead code: no gradient reaches it
            np.testing.assert_array_equal(trained[name], init[name])
            continue
        atol = ATOL64 if init[name].dtype == np.float64 else ATOL32
        assert np.abs(trained[name] - init[name]).max() > 2 * atol, name
