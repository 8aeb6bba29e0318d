"""Our StockTwits graph (legacy_lstm/stocktwits.py ``build_graph``) against real TensorFlow 1.15.

The fixtures in tests/tf1_oracle/stocktwits_<cell>/ were written by scripts/tf1_oracle/stocktwits.py: the
original's graph built with TF 1.15's own tf.contrib cells (BasicLSTMCell, LSTMBlockCell,
CudnnCompatibleLSTMCell), its initial variables, k Adadelta steps on fixed batches with the LSTM state carried
from step to step, and what each step computed. Each case restores TF 1.15's initial checkpoint into our graph by
name, takes the same steps and must land on TF 1.15's numbers.

Tolerances: every value is float32 computed by the same kernels (Eigen matmul, the LSTMBlockCell op, Adadelta's
apply op), so the results agree to a few float32 ulps; 1e-6 absolute is 5x the largest difference measured
(outputs and weights are O(1)).
"""

import dataclasses

import numpy as np
import pytest

from legacy_lstm import stocktwits
from legacy_lstm.compat import tf, tf1
from oracle import INIT, TRAINED, Case, assert_variables_close, restore_by_name, variable_diffs

CASES = ("stocktwits_basic", "stocktwits_block", "stocktwits_cudnn_compatible")
ATOL = 1e-6


def config_of(case):
    """Our Config at the case's sizes (the graph-shaping fields; the rest keep the published preset's values)."""
    c = case.meta["config"]
    return dataclasses.replace(stocktwits.PRESETS["hoffman"], lstm_sizes=tuple(c["lstm_sizes"]),
                               embed_size=c["embed_size"], batch_size=c["batch_size"],
                               learning_rate=c["learning_rate"], keep_prob=c["keep_prob"])


def state_feed(model, state):
    return dict(zip(tf.nest.flatten(model.initial_state), tf.nest.flatten(state)))


def state_arrays(state):
    """((c0, h0), (c1, h1)) -> {final_state_l<i>: [2, batch, units]}."""
    return {f"final_state_l{i}": np.stack([s.c, s.h]) for i, s in enumerate(state)}


@pytest.fixture(scope="module", params=CASES)
def ours(request):
    """Restore TF 1.15's init checkpoint into our graph, take the case's steps; return what we computed."""
    case = Case(request.param)
    c = case.meta["config"]
    assert (c["rho"], c["epsilon"]) == (0.95, 1e-8), "our graph uses Adadelta's defaults, as the original does"
    graph = tf.Graph()
    with graph.as_default():
        model = stocktwits.build_graph(c["vocab_size"], config_of(case), cell=case.meta["cell"])
        with tf1.Session(graph=graph) as sess:
            restore_by_name(sess, case.prefix(INIT))
            state = stocktwits.zero_state_value(model)
            steps = {"losses": [], "accuracies": [], "predictions": [], "final_state_l0": [], "final_state_l1": []}
            for x, y in zip(case["inputs"], case["labels"]):
                feed = {model.inputs: x, model.labels: y, model.keep_prob: c["keep_prob"],
                        **state_feed(model, state)}
                loss, state, _, acc, pred = sess.run([model.loss, model.final_state, model.train_op, model.accuracy,
                                                      model.predictions], feed)
                for key, value in dict(losses=loss, accuracies=acc, predictions=pred, **state_arrays(state)).items():
                    steps[key].append(value)
            result = {key: np.stack(values) for key, values in steps.items()}
            trained, init = case.checkpoint_values(TRAINED), case.checkpoint_values(INIT)
            result["variable_diffs"] = variable_diffs(sess, trained)
            result["init_to_trained"] = max(np.max(np.abs(trained[k] - v)) for k, v in init.items())
            feed = {model.inputs: case["eval_inputs"], model.labels: case["eval_labels"], model.keep_prob: 1.0,
                    **state_feed(model, stocktwits.zero_state_value(model))}
            result["eval_loss"], result["eval_accuracy"], result["eval_predictions"] = sess.run(
                [model.loss, model.accuracy, model.predictions], feed)
            try:
                assert_variables_close(sess, trained, ATOL)
                result["variables_error"] = None
            except AssertionError as err:
                result["variables_error"] = str(err)
    return case, result


def test_the_case_moves_the_weights_well_beyond_the_tolerance(ours):
    case, result = ours
    assert result["init_to_trained"] > 1000 * ATOL, "the fixture's training barely moved the weights"


def test_trained_weights_and_adadelta_slots_match_tf115(ours):
    case, result = ours
    assert result["variables_error"] is None, result["variables_error"]
    # Adadelta's two accumulators per variable are part of the checkpoint and of the comparison.
    assert sum(name.endswith(("/Adadelta", "/Adadelta_1")) for name in result["variable_diffs"]) == 2 * 7


def test_per_step_losses_match_tf115(ours):
    case, result = ours
    np.testing.assert_allclose(result["losses"], case["losses"], rtol=0, atol=ATOL)


def test_per_step_predictions_and_accuracies_match_tf115(ours):
    case, result = ours
    np.testing.assert_allclose(result["predictions"], case["predictions"], rtol=0, atol=ATOL)
    np.testing.assert_array_equal(result["accuracies"], case["accuracies"])


def test_carried_lstm_state_matches_tf115(ours):
    case, result = ours
    for key in ("final_state_l0", "final_state_l1"):
        np.testing.assert_allclose(result[key], case[key], rtol=0, atol=ATOL, err_msg=key)


def test_evaluation_after_training_matches_tf115(ours):
    case, result = ours
    np.testing.assert_allclose(result["eval_predictions"], case["eval_predictions"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(result["eval_loss"], case["eval_loss"], rtol=0, atol=ATOL)
    assert result["eval_accuracy"] == case["eval_accuracy"]
