"""Checkpoints that real TensorFlow 1.x wrote for graphs built from Hoffman's notebook functions restore into our
StockTwits graph by name, and our graph computes what the original graph (imported from its own ``.meta``) does.

The checkpoints are public files kept beside the data (``tf1-sentiment/`` in the data folder; skipped without it):
- ``ruyen-GitProject-e1aa5a7/sentiment.ckpt``: TF 1.10.0, values, Adadelta slots and ``.meta``; its notebook copies
  ``build_lstm_layers`` and ``build_cost_fn_and_opt`` with lstm sizes [16, 8] and batch 7, but feeds 7 float
  features per step straight into the RNN (no embedding);
- ``henriqueluzz-analise-de-sentimento-index/sentiment.ckpt.index``: TF 1.6.0, names and shapes only (one
  BasicLSTMCell of 512, embedding 300 over 10,963 words, Adam).
"""

import dataclasses

import numpy as np
import pytest

from legacy_lstm import stocktwits
from legacy_lstm.compat import tf, tf1

from conftest import real_file

TF110 = "tf1-sentiment/ruyen-GitProject-e1aa5a7/sentiment.ckpt"
TF16 = "tf1-sentiment/henriqueluzz-analise-de-sentimento-index/sentiment.ckpt"
# that notebook's settings (its graph's Adadelta/lr constant is 0.05, checked below)
TF110_CONFIG = dataclasses.replace(stocktwits.PRESETS["hoffman"], lstm_sizes=(16, 8), batch_size=7, learning_rate=0.05)


@pytest.fixture(scope="module")
def tf110(data_dir):
    real_file(data_dir, TF110 + ".meta")
    return str(data_dir / TF110)


def _batch(seed, steps=9):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(7, steps, 7)).astype(np.float32)
    y = rng.integers(0, 2, size=(7, 1)).astype(np.int32)
    return x, y


def _original(prefix, x, y, train_steps):
    """The TF 1.10 graph itself (import_meta_graph), restored: predictions, then after ``train_steps`` Adadelta
    steps on (x, y) the variables and the predictions again."""
    graph = tf.Graph()
    with graph.as_default():
        saver = tf1.train.import_meta_graph(prefix + ".meta", clear_devices=True)
        train_op = graph.get_operation_by_name("Adadelta")
        lr = graph.get_operation_by_name("Adadelta/lr").get_attr("value").float_val[0]
        assert lr == pytest.approx(TF110_CONFIG.learning_rate)
        feed = {"inputs:0": x, "labels:0": y, "keep_prob:0": 1.0}
        with tf1.Session(graph=graph) as sess:
            saver.restore(sess, prefix)
            before = sess.run("fully_connected/Sigmoid:0", feed)
            for _ in range(train_steps):
                sess.run(train_op, feed)
            after = sess.run("fully_connected/Sigmoid:0", feed)
            values = sess.run({v.op.name: v for v in tf1.global_variables()})
    return before, after, values


def _ours(prefix, x, y, train_steps, cell="basic"):
    graph = tf.Graph()
    with graph.as_default():
        model = stocktwits.build_graph(None, TF110_CONFIG, cell=cell, input_features=7)
        names = {v.op.name: v.shape.as_list() for v in tf1.global_variables()}
        stored = dict(tf1.train.list_variables(prefix))
        assert names == {k: list(v) for k, v in stored.items()}  # the same names and shapes, slots included
        zero = stocktwits.zero_state_value(model)
        feed = {model.inputs: x, model.labels: y, model.keep_prob: 1.0, **stocktwits._state_feed(model, zero)}
        with tf1.Session(graph=graph) as sess:
            tf1.train.Saver().restore(sess, prefix)  # by name: no renaming map
            before = sess.run(model.predictions, feed)
            for _ in range(train_steps):
                sess.run(model.train_op, feed)
            after = sess.run(model.predictions, feed)
            values = sess.run({v.op.name: v for v in tf1.global_variables()})
    return before, after, values


def test_a_tf110_checkpoint_restores_by_name_and_predicts_as_its_own_graph(tf110):
    x, y = _batch(0)
    theirs, _, _ = _original(tf110, x, y, 0)
    ours, _, _ = _ours(tf110, x, y, 0)
    assert theirs.shape == ours.shape == (7, 1)
    assert np.ptp(theirs) > 1e-3  # the trained weights give different outputs per example: a real comparison
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_training_from_a_tf110_checkpoint_takes_the_original_graphs_adadelta_steps(tf110):
    """Three Adadelta steps (that notebook's lr 0.05, its slots restored) in both graphs: the same weights, slots
    and predictions after them."""
    x, y = _batch(1)
    _, theirs_after, theirs = _original(tf110, x, y, 3)
    _, ours_after, ours = _ours(tf110, x, y, 3)
    assert set(ours) == set(theirs)
    moved = max(float(np.max(np.abs(ours[k] - v))) for k, v in _original(tf110, x, y, 0)[2].items())
    assert moved > 1e-6  # the steps changed something beyond the tolerance
    for name, value in theirs.items():
        np.testing.assert_allclose(ours[name], value, rtol=0, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(ours_after, theirs_after, rtol=0, atol=1e-6)


def test_a_tf110_basic_checkpoint_computes_the_same_in_the_block_cell_after_conversion(tf110):
    """The same checkpoint in the raw LSTMBlockCell (forget_bias 1, the basic cell's): the kernels and biases are
    interchangeable, so only the variable scope name differs (legacy_lstm.convert renames it)."""
    from legacy_lstm import convert
    x, y = _batch(2)
    theirs, _, _ = _original(tf110, x, y, 0)
    reader = tf1.train.NewCheckpointReader(tf110)
    values = {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}
    converted = convert.convert_values(values, "basic", "block")
    graph = tf.Graph()
    with graph.as_default():
        model = stocktwits.build_graph(None, TF110_CONFIG, cell="block", input_features=7)
        zero = stocktwits.zero_state_value(model)
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            for v in tf1.global_variables():
                v.load(converted[v.op.name], sess)
            ours = sess.run(model.predictions, {model.inputs: x, model.keep_prob: 1.0,
                                                **stocktwits._state_feed(model, zero)})
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_a_tf16_index_has_our_graphs_names_and_shapes(data_dir):
    real_file(data_dir, TF16 + ".index")
    stored = {name: list(shape) for name, shape in tf1.train.list_variables(str(data_dir / TF16))}
    config = dataclasses.replace(stocktwits.PRESETS["hoffman"], lstm_sizes=(512,), embed_size=300)
    with tf.Graph().as_default():
        stocktwits.build_graph(10963, config, optimizer="adam")
        ours = {v.op.name: v.shape.as_list() for v in tf1.global_variables()}
    assert ours == stored
    with tf.Graph().as_default():  # the original's optimiser gives other slot names: not that checkpoint's graph
        stocktwits.build_graph(10963, config)
        assert {v.op.name for v in tf1.global_variables()} != set(stored)


def test_unknown_optimizer_is_a_clear_error():
    with tf.Graph().as_default(), pytest.raises(ValueError, match="optimizer must be one of adadelta, adam"):
        stocktwits.build_graph(10, stocktwits.PRESETS["test"], optimizer="sgd")
