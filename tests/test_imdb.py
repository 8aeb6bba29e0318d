"""The IMDB app: Keras encoding from a tiny tar, npz refusal, graph vs tf_keras LSTM, presets, early stopping,
resume, SavedModel on raw text vs the Python path, predict and the command line."""

import dataclasses
import importlib.util
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from legacy_lstm import convert, imdb, runs
from legacy_lstm.compat import seed_everything, tf, tf1
from legacy_lstm.data import download
from legacy_lstm.data import imdb as imdb_data

from conftest import real_file

REPO = pathlib.Path(__file__).resolve().parents[1]

WORD_INDEX = {"the": 1, "movie": 2, "good": 3, "great": 4, "bad": 5, "awful": 6, "br": 7, "it's": 8, "café": 9,
              "fun": 10, "dull": 11}
POS = ["The movie is good, great fun!", "Great GREAT good movie<br />it's fun", "good good great the movie fun",
       "It's great; the movie is good.", "fun fun great", "a good and great movie"]
NEG = ["The movie is bad, awful and dull.", "Awful awful bad movie<br />it's dull", "bad bad dull the movie",
       "It's awful; the movie is bad.", "dull dull awful", "a bad and awful movie"]
# num_words 12: ids 4..11 (ranks 1..8) keep their id; "café" (rank 9 -> id 12), fun, dull are OOV (2).
SMALL = imdb.Config(num_words=12, maxlen=12, embed_size=8, lstm_sizes=(8,), dense_size=8, epochs=2,
                    batch_size=8, learning_rate=0.01)
ODD_TEXTS = ["", "zzz qqq xyzzy", "Ünïcödé CAFÉ café ΟΔΟΣ İstanbul naïve", " ".join(["great"] * 500),
             "<br /><br />GOOD!!!", "!!!...???", "good\tbad\nawful  movie", "it's the movie's \x96 end"]


def _review_name(split, label, i):
    return f"aclImdb/{split}/{label}/{i}_{8 if label == 'pos' else 2}.txt"


def write_tar(path, copies=4, extra_members=True):
    """A tiny aclImdb-shaped tar.gz: ``copies`` x 6 reviews per split and label, plus members to be ignored."""
    def add(tar, name, data, **kwargs):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        for key, value in kwargs.items():
            setattr(info, key, value)
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:gz") as tar:
        for split in ("test", "train"):  # not in sorted order on purpose
            for label, texts in (("pos", POS), ("neg", NEG)):
                for i in range(copies * len(texts)):
                    add(tar, _review_name(split, label, i), texts[i % len(texts)].encode())
        if extra_members:
            add(tar, "aclImdb/README", b"readme")
            add(tar, "aclImdb/train/urls_pos.txt", b"http://x")
            add(tar, "../evil.txt", b"escape")
            add(tar, "/tmp/abs_evil.txt", b"escape")
            add(tar, "aclImdb/train/pos/../../../evil2_1.txt", b"escape")
            add(tar, "aclImdb/train/pos/999_9.txt", b"", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("imdb")
    write_tar(root / "aclImdb_labeled.tar.gz")
    (root / "imdb_word_index.json").write_text(json.dumps(WORD_INDEX))
    return imdb.Paths(word_index=str(root / "imdb_word_index.json"), tar=str(root / "aclImdb_labeled.tar.gz"))


def _quiet(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    result = imdb.train(tiny, run_dir, SMALL, seed=3, log=_quiet)
    return run_dir, result


# --- encoding ---------------------------------------------------------------------------------------------
def test_tokenize_is_keras_text_to_word_sequence():
    assert imdb_data.tokenize("It's <br />GREAT!! café—x\tok\n(fine)") == ["it's", "br", "great", "café—x", "ok",
                                                                          "fine"]
    assert imdb_data.tokenize("") == [] and imdb_data.tokenize(" .,!? ") == []


def test_read_tar_sorted_names_labels_and_only_review_members(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    corpus = imdb_data.read_tar(tiny.tar, WORD_INDEX)
    assert corpus.num_train == 48 and len(corpus.ranks) == 96  # the symlink and the traversal names are skipped
    assert list(corpus.labels[:24]) == [0] * 24 and list(corpus.labels[24:48]) == [1] * 24  # neg before pos
    # sorted names: 0_2, 10_2, 11_2, ..., 1_2, 20_2, ...: the third negative review is file 11 (NEG[11 % 6])
    np.testing.assert_array_equal(corpus.ranks[2], [0, 5, 0, 6, 2])
    np.testing.assert_array_equal(corpus.ranks[0], [1, 2, 0, 5, 6, 0, 11])  # "is", "and" are not in the index
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "evil.txt").exists()


def test_keras_encode_shuffle_start_index_from_and_num_words(tiny):
    corpus = imdb_data.read_tar(tiny.tar, WORD_INDEX)
    (x_train, y_train), (x_test, y_test) = imdb_data.keras_encode(corpus, num_words=12)
    rng = np.random.RandomState(113)  # load_data: one RNG shuffles train, then test
    train_order, test_order = rng.permutation(48), rng.permutation(48)
    assert list(y_train) == list(corpus.labels[train_order]) and list(y_test) == list(corpus.labels[48 + test_order])
    first = x_train[0]
    raw = corpus.ranks[train_order[0]]
    assert first[0] == 1 and len(first) == len(raw) + 1
    expected = [2 if r == 0 or r + 3 >= 12 else r + 3 for r in raw]
    np.testing.assert_array_equal(first[1:], expected)
    all_ids = np.concatenate(x_train + x_test)
    assert all_ids.min() >= 1 and all_ids.max() <= 11 and (all_ids == 2).any()
    # "café" (rank 9) becomes OOV under num_words 12, keeps id 12 under 13
    ids13 = imdb_data.encode_texts(["café"], WORD_INDEX, num_words=13)[0]
    assert list(imdb_data.encode_texts(["café"], WORD_INDEX, num_words=12)[0]) == [1, 2] and list(ids13) == [1, 12]


def test_pad_sequences_post_and_pre():
    seqs = [np.array([1, 5, 6, 7]), np.array([1]), np.array([], np.int32)]
    post = imdb_data.pad_sequences(seqs, 3)
    np.testing.assert_array_equal(post, [[1, 5, 6], [1, 0, 0], [0, 0, 0]])
    pre = imdb_data.pad_sequences(seqs, 3, padding="pre", truncating="pre")
    np.testing.assert_array_equal(pre, [[5, 6, 7], [0, 0, 1], [0, 0, 0]])
    with pytest.raises(ValueError, match="padding"):
        imdb_data.pad_sequences(seqs, 3, padding="middle")


def test_load_data_validation_is_the_last_fifth_and_cache_is_used(tiny, tmp_path, monkeypatch):
    data = imdb.load_data(tiny, SMALL, imdb.FAITHFUL, cache_dir=tmp_path)
    assert (len(data.train.x), len(data.val.x), len(data.test.x)) == (38, 10, 48)  # floor(48 * 0.8) = 38
    (x_train, y_train), _ = imdb_data.keras_encode(imdb_data.read_tar(tiny.tar, WORD_INDEX), 12)
    np.testing.assert_array_equal(data.val.x, imdb_data.pad_sequences(x_train[38:], 12))
    np.testing.assert_array_equal(data.val.y, y_train[38:])
    assert data.train.x.shape == (38, 12) and (data.train.x[:, 0] == 1).all()
    assert len(list(tmp_path.glob("imdb-encoded-*.npz"))) == 1
    monkeypatch.setattr(imdb_data, "read_tar", lambda *a: pytest.fail("the cache was not used"))
    again = imdb.load_data(tiny, SMALL, imdb.FAITHFUL, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.test.x, data.test.x)


def test_unverified_npz_is_refused_unopened(tmp_path, monkeypatch):
    path = tmp_path / "imdb.npz"
    lists = np.empty(2, dtype=object)
    lists[0], lists[1] = [3, 4, 20000], [5]
    np.savez(path, x_train=lists, y_train=np.array([1, 0]), x_test=lists, y_test=np.array([0, 1]))
    real_load = np.load
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load ran on an unverified file"))
    with pytest.raises(download.DataNotFoundError, match="pickle"):
        imdb_data.load_keras_npz(path)
    monkeypatch.setattr(np, "load", real_load)
    # A file whose checksum is the expected one loads, with load_data's conventions.
    (x_train, y_train), (x_test, _) = imdb_data.load_keras_npz(path, num_words=100,
                                                               expected_sha256=download.sha256_of(path))
    assert sorted(map(list, x_train)) == [[1, 6, 7, 2], [1, 8]] and len(x_test) == 2


def test_npz_in_data_dir_with_wrong_checksum_gives_one_clear_error(tmp_path):
    (tmp_path / "imdb").mkdir()
    (tmp_path / "imdb" / "imdb.npz").write_bytes(b"not the npz")
    with pytest.raises(download.DataNotFoundError, match="corrupt or not the original.*only the published file"):
        imdb._locate_npz(tmp_path)


# --- the LSTM layer vs tf_keras ---------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["basic", "block", "cudnn_compatible"])
def test_lstm_layer_matches_tf_keras_lstm(cell):
    forget_bias = convert.DEFAULT_FORGET_BIAS[cell]
    rng = np.random.RandomState(0)
    x = rng.normal(size=(3, 7, 5)).astype(np.float32)
    with tf.Graph().as_default():
        inputs = tf1.placeholder(tf.float32, [None, 7, 5])
        with tf1.variable_scope(imdb.LSTM_SCOPE):
            outputs, state = tf1.nn.dynamic_rnn(imdb._lstm_cell(cell, 4), inputs, dtype=tf.float32)
        ours_init = imdb._keras_init_op(cell)
        layer = tf.keras.layers.LSTM(4, return_sequences=True)
        keras_out = layer(inputs)
        (kernel, bias), = imdb.lstm_weights()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run(ours_init)
            # Keras's starting point: its effective bias has 1 in the forget slice and 0 elsewhere
            _, recurrent, keras_bias = convert.tf_to_keras(*sess.run([kernel, bias]), forget_bias=forget_bias)
            np.testing.assert_allclose(keras_bias, np.r_[np.zeros(4), np.ones(4), np.zeros(8)], atol=1e-7)
            np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(4), atol=1e-5)  # orthogonal rows
            # random weights, mapped into the Keras layer
            sess.run([kernel.assign(rng.normal(size=kernel.shape).astype(np.float32) * 0.5),
                      bias.assign(rng.normal(size=bias.shape).astype(np.float32) * 0.5)])
            layer.set_weights(convert.tf_to_keras(*sess.run([kernel, bias]), forget_bias=forget_bias))
            ours, theirs, h = sess.run([outputs, keras_out, state.h], {inputs: x})
    np.testing.assert_allclose(ours, theirs, atol=2e-6)
    np.testing.assert_allclose(h, theirs[:, -1], atol=2e-6)


def test_self_attention_pooling_matches_tf_keras_attention_and_pooling():
    rng = np.random.RandomState(1)
    x = rng.normal(size=(3, 6, 4)).astype(np.float32)
    lengths = np.array([6, 2, 4])
    mask = np.arange(6)[None, :] < lengths[:, None]
    x *= mask[:, :, None]  # dynamic_rnn with sequence_length gives zero outputs past each length, as Keras does
    with tf.Graph().as_default(), tf1.Session() as sess:
        inputs = tf1.placeholder(tf.float32, [None, 6, 4])
        keras_mask = tf.constant(mask)
        plain = imdb._self_attention_pooled(inputs, None, 6)
        masked = imdb._self_attention_pooled(inputs, tf.constant(lengths, tf.int32), 6)
        keras_plain = tf.keras.layers.GlobalAveragePooling1D()(tf.keras.layers.Attention()([inputs, inputs]))
        attended = tf.keras.layers.Attention()([inputs, inputs], mask=[keras_mask, keras_mask])
        keras_masked = tf.keras.layers.GlobalAveragePooling1D()(attended, mask=keras_mask)
        ours, theirs, ours_m, theirs_m = sess.run([plain, keras_plain, masked, keras_masked], {inputs: x})
    np.testing.assert_allclose(ours, theirs, atol=1e-6)
    np.testing.assert_allclose(ours_m, theirs_m, atol=1e-6)
    assert np.abs(ours - ours_m).max() > 1e-3


# --- presets and training ---------------------------------------------------------------------------------
PRESET_VARIABLES = {
    "lstm": {"lstm/rnn/basic_lstm_cell/kernel": [192, 256]},
    "l2": {"lstm/rnn/basic_lstm_cell/kernel": [192, 256]},
    "stacked": {"lstm/rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel": [192, 256],
                "lstm/rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel": [96, 128]},
    "bidirectional": {"lstm/bidirectional_rnn/fw/basic_lstm_cell/kernel": [192, 256],
                      "lstm/bidirectional_rnn/bw/basic_lstm_cell/kernel": [192, 256]},
    "attention": {"lstm/rnn/basic_lstm_cell/kernel": [192, 256]},
}


# The tutorial's head per preset: the variables after the recurrent part and the number of dropouts
PRESET_HEADS = {"lstm": ({"dense/weights": ["features", 32], "dense/biases": [32], "output/weights": [32, 1]}, 2),
                "stacked": ({"output/weights": ["features", 1]}, 1),
                "bidirectional": ({"output/weights": ["features", 1]}, 1),
                "l2": ({"output/weights": ["features", 1]}, 1),
                "attention": ({"dense/weights": ["features", 32], "dense/biases": [32], "output/weights": [32, 1]},
                              0)}


def _dropouts(graph):
    """How many dropouts the forward graph applies (the gradients repeat their names under gradients/)."""
    return len({op.name.split("/")[0] for op in graph.get_operations() if op.name.startswith("stateless_dropout")})


@pytest.mark.parametrize("preset", sorted(PRESET_VARIABLES))
def test_each_published_preset_builds_with_the_tutorial_shapes(preset):
    config = imdb.PRESETS[preset]
    with tf.Graph().as_default() as graph:
        imdb.build_graph(config)
        shapes = {v.op.name: v.shape.as_list() for v in tf1.trainable_variables()}
        dropouts = _dropouts(graph)
    features = 128 if preset == "bidirectional" else config.lstm_sizes[-1]
    head, expected_dropouts = PRESET_HEADS[preset]
    expected = {"embedding": [10000, 128], "output/biases": [1]}
    expected.update({name: [features if d == "features" else d for d in shape] for name, shape in head.items()})
    for name, shape in PRESET_VARIABLES[preset].items():
        expected[name] = shape
        expected[name[:-len("kernel")] + "bias"] = [shape[1]]
    assert shapes == expected
    assert dropouts == expected_dropouts
    assert config.maxlen == 200 and config.batch_size == 64 and config.learning_rate == 1e-3
    assert config.epochs == (10 if preset == "l2" else 5)
    assert (config.l2, config.patience) == ((0.01, 2) if preset == "l2" else (0.0, None))


def _keras_model(preset):
    """The tutorial's Keras model of each preset, written out as the tutorial does (tf_keras)."""
    layers = tf.keras.layers
    if preset == "attention":
        inputs = tf.keras.Input((200,))
        x = layers.LSTM(64, return_sequences=True)(layers.Embedding(10000, 128)(inputs))
        x = layers.GlobalAveragePooling1D()(layers.Attention()([x, x]))
        x = layers.Dense(32, activation="relu")(x)
        return tf.keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x))
    recurrent = {"lstm": lambda: [layers.LSTM(64)],  # built on demand: Keras numbers the layers it creates
                 "l2": lambda: [layers.LSTM(64, kernel_regularizer=tf.keras.regularizers.l2(0.01))],
                 "stacked": lambda: [layers.LSTM(64, return_sequences=True), layers.LSTM(32)],
                 "bidirectional": lambda: [layers.Bidirectional(layers.LSTM(64))]}[preset]()
    head = [layers.Dropout(0.5), layers.Dense(32, activation="relu"), layers.Dropout(0.5)] if preset == "lstm" else [
        layers.Dropout(0.5)]
    return tf.keras.Sequential([layers.Embedding(10000, 128, input_length=200), *recurrent, *head,
                                layers.Dense(1, activation="sigmoid")])


@pytest.mark.parametrize("preset", sorted(PRESET_VARIABLES))
def test_layer_table_is_the_tutorial_keras_models_summary(preset):
    tf.keras.backend.clear_session()  # Keras's layer names start again at "dense"
    with tf.Graph().as_default():
        keras_rows = [(layer.name, type(layer).__name__, str(layer.output_shape), layer.count_params())
                      for layer in _keras_model(preset).layers]
    with tf.Graph().as_default():
        imdb.build_graph(imdb.PRESETS[preset])
        ours = imdb.layer_table(imdb.PRESETS[preset])
        text = imdb.model_summary(imdb.PRESETS[preset])
    assert ours == keras_rows
    total = sum(row[3] for row in keras_rows)
    assert f"Total params: {total} (" in text and f"Trainable params: {total} (" in text
    for name, kind, shape, params in keras_rows:
        assert re.search(rf"^ {name} \({kind}\) +{re.escape(shape)} +{params}$", text, re.M), (name, text)


def test_uniform_head_gives_every_preset_the_lstm_head_and_differs_from_the_tutorial():
    for preset in ("stacked", "bidirectional", "attention", "l2"):
        _, faithful = imdb.resolve_config(preset)
        _, uniform = imdb.resolve_config(preset, uniform_head=True)
        assert faithful.head != imdb.UNIFORM_HEAD and uniform.head == imdb.UNIFORM_HEAD
        assert dataclasses.replace(uniform, head=faithful.head) == faithful  # nothing else changes
        with tf.Graph().as_default() as graph:
            imdb.build_graph(uniform)
            names = {v.op.name for v in tf1.trainable_variables()}
            assert {"dense/weights", "output/weights"} <= names and _dropouts(graph) == 2
    assert imdb.resolve_config("lstm", uniform_head=True)[1] == imdb.PRESETS["lstm"]
    with pytest.raises(ValueError, match="head must be one of"):
        imdb.Config(head="dense-dense")


@pytest.mark.parametrize("arch,head,dropped", [("lstm", "dropout-dense-dropout", True),
                                               ("stacked", "dropout", True), ("attention", "dense", False)])
def test_training_dropout_acts_only_where_the_head_has_one(arch, head, dropped):
    config = dataclasses.replace(SMALL, arch=arch, head=head, lstm_sizes=(8, 4) if arch == "stacked" else (8,))
    x = np.random.RandomState(0).randint(1, 12, size=[6, config.maxlen])
    with tf.Graph().as_default():
        seed_everything(3)  # the tf_keras cells draw their seeds from Python random
        model = imdb.build_graph(config)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            inference = sess.run(model.logits, {model.inputs: x})
            training = sess.run(model.logits, {model.inputs: x, model.keep_prob: 0.5, model.dropout_seed: [5, 6]})
    assert (np.abs(training - inference).max() > 1e-4) == dropped


@pytest.mark.parametrize("arch,quirks,clipnorm", [
    ("lstm", imdb.FAITHFUL, None), ("stacked", imdb.FAITHFUL, None), ("bidirectional", imdb.FAITHFUL, None),
    ("attention", imdb.FAITHFUL, None), ("lstm", imdb.Quirks(mask=True), 1.0),
    ("attention", imdb.Quirks(mask=True), None), ("lstm", imdb.Quirks(padding="pre", truncating="pre"), None)])
def test_short_run_lowers_the_loss(tiny, arch, quirks, clipnorm):
    config = dataclasses.replace(SMALL, arch=arch, lstm_sizes=(8, 4) if arch == "stacked" else (8,), l2=0.01,
                                 clipnorm=clipnorm)
    data = imdb.load_data(tiny, config, quirks)
    with tf.Graph().as_default():
        seed_everything(1)  # the tf_keras cells draw their seeds from Python random
        model = imdb.build_graph(config, quirks)
        feed = {model.inputs: data.train.x, model.labels: data.train.y, model.keep_prob: 1.0}
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run(model.keras_init)
            before = sess.run(model.loss, feed)
            for _ in range(25):
                sess.run(model.train_op, feed)
            after = sess.run(model.loss, feed)
    assert after < 0.8 * before, (before, after)


def _probabilities(config, quirks, values, texts):
    with tf.Graph().as_default():
        model = imdb.build_graph(config, quirks)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for var in tf1.trainable_variables():
                var.load(values[var.op.name], sess)
            x, _ = imdb.encode_for_prediction(texts, imdb_data.vocabulary(WORD_INDEX, config.num_words), config,
                                              quirks)
            return sess.run(model.probability, {model.inputs: x})


@pytest.mark.parametrize("arch", ["lstm", "attention", "bidirectional"])
def test_mask_makes_the_prediction_independent_of_the_pad_length(arch):
    short, long = dataclasses.replace(SMALL, arch=arch), dataclasses.replace(SMALL, arch=arch, maxlen=30)
    with tf.Graph().as_default():
        # all of Python's, NumPy's and the graph's seeds: the tf_keras cells draw their initializers' seeds from
        # Python's random, so the graph seed alone left the weights (and the size of the effect below) to the
        # tests that ran before
        seed_everything(2)
        imdb.build_graph(short)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            values = {v.op.name: sess.run(v) for v in tf1.trainable_variables()}
    texts = ["good movie", "bad awful movie the end"]
    masked = [_probabilities(c, imdb.Quirks(mask=True), values, texts) for c in (short, long)]
    np.testing.assert_allclose(masked[0], masked[1], atol=1e-6)
    unmasked = [_probabilities(c, imdb.FAITHFUL, values, texts) for c in (short, long)]
    assert np.abs(unmasked[0] - unmasked[1]).max() > 1e-4  # the faithful model does see the pad steps


def test_keras_early_stopping_replay():
    def curve(losses):
        return [{"epoch": i + 1, "val_loss": v} for i, v in enumerate(losses)]
    assert imdb.early_stopping(curve([0.5, 0.4, 0.45, 0.41]), 2) == (2, 4)
    assert imdb.early_stopping(curve([0.5, 0.4, 0.45]), 2) == (2, None)
    assert imdb.early_stopping(curve([0.5, 0.5, 0.5]), 2) == (1, 3)  # equal is no improvement
    assert imdb.early_stopping(curve([0.5, 0.6, 0.3, 0.7, 0.2]), 2) == (5, None)
    assert imdb.early_stopping(curve([0.5, 0.6]), 1) == (1, 2)


def test_early_stopping_restores_the_best_weights(tiny, tmp_path, monkeypatch):
    config = dataclasses.replace(SMALL, l2=0.01, patience=2, epochs=10)
    scripted = iter([0.6, 0.5, 0.55, 0.52, 0.4, 0.3])  # val_loss per epoch: best 2, stop after 4
    real_evaluate, real_run_epoch = imdb.evaluate, imdb.run_epoch
    weights = {}  # epoch -> {variable: value} at the end of that epoch

    def fake_evaluate(sess, model, split, batch_size=imdb.EVAL_BATCH):
        loss, acc = real_evaluate(sess, model, split, batch_size)
        return next(scripted), acc

    def spy_run_epoch(sess, model, data, config, epoch, *args, **kwargs):
        row = real_run_epoch(sess, model, data, config, epoch, *args, **kwargs)
        weights[epoch] = {v.op.name: sess.run(v) for v in tf1.trainable_variables()}
        return row
    monkeypatch.setattr(imdb, "evaluate", fake_evaluate)
    monkeypatch.setattr(imdb, "run_epoch", spy_run_epoch)
    result = imdb.train(tiny, tmp_path, config, seed=1, export=False, log=_quiet)
    assert [r["epoch"] for r in result["curve"]] == [1, 2, 3, 4] and sorted(weights) == [1, 2, 3, 4]
    assert result["finished"] and result["stopped_early"] == 4 and result["best_epoch"] == 2
    prefix = str(tmp_path / imdb.FINAL_CHECKPOINT)
    assert sorted(weights[2]) == sorted(n for n, _ in tf1.train.list_variables(prefix) if n in weights[2])
    for name, value in weights[2].items():
        np.testing.assert_array_equal(tf1.train.load_variable(prefix, name), value)
    assert any(not np.array_equal(weights[2][n], weights[4][n]) for n in weights[2])
    # A rerun does not train on: the curve says it stopped.
    again = imdb.train(tiny, tmp_path, config, log=_quiet, export=False)
    assert len(again["curve"]) == 4 and again["stopped_early"] == 4 and len(weights) == 4


def test_resumed_run_equals_an_uninterrupted_one(tiny, tmp_path, trained):
    imdb.train(tiny, tmp_path, SMALL, seed=3, max_epochs=1, log=_quiet)
    assert [r["epoch"] for r in runs.read_json(tmp_path, runs.CURVE_JSON)] == [1]
    assert not (tmp_path / imdb.SAVED_MODEL).exists()
    lines = []
    result = imdb.train(tiny, tmp_path, SMALL, log=lines.append)  # the seeds come from the manifest
    assert lines[0].startswith("Resuming") and result["seed"] == 3
    for ours, ref in zip(result["curve"], trained[1]["curve"]):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert ours[key] == pytest.approx(ref[key], abs=1e-5), key


def test_run_dir_outputs_and_manifest_checks(tiny, trained):
    run_dir, result = trained
    assert result["finished"] and [r["epoch"] for r in result["curve"]] == [1, 2]
    for name in ("curve.csv", "curve.json", "manifest.json", "vocab.json", "imdb_lstm.ckpt.index",
                 "saved_model/saved_model.pb"):
        assert (run_dir / name).exists(), name
    # the plot needs the optional matplotlib (not in the test extra): present exactly when it can be drawn
    assert (run_dir / "curves.png").exists() == (importlib.util.find_spec("matplotlib") is not None)
    manifest = runs.read_manifest(run_dir)
    assert manifest["quirks"] == {"padding": "post", "truncating": "post", "mask": False, "source": "raw"}
    assert manifest["config"]["num_words"] == 12 and manifest["cell"] == "basic"
    with pytest.raises(runs.ManifestMismatchError, match="quirks.padding"):
        imdb.train(tiny, run_dir, SMALL, imdb.Quirks(padding="pre"), log=_quiet)
    result = imdb.test(tiny, run_dir, log=_quiet)
    # Recomputed independently: the final checkpoint's probabilities on the whole test split, in one batch,
    # scored with NumPy (Keras's binary accuracy and cross-entropy).
    config, quirks, saved, _ = imdb._setup_from_run_dir(run_dir)
    data = imdb.load_data(tiny, config, quirks)
    with tf.Graph().as_default():
        model = imdb.build_graph(config, quirks, saved["cell"])
        with tf1.Session() as sess:
            tf1.train.Saver(tf1.trainable_variables()).restore(sess, str(run_dir / imdb.FINAL_CHECKPOINT))
            p = sess.run(model.probability, {model.inputs: data.test.x})
    y = data.test.y.astype(np.float64)
    p = np.clip(p.astype(np.float64), 1e-12, 1 - 1e-12)
    assert result["test_acc"] == pytest.approx(np.mean((p > 0.5) == (y == 1)), abs=1e-9)
    assert result["test_loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel=1e-4)


# --- raw text: predict, in-graph tokeniser, SavedModel ------------------------------------------------------
@pytest.mark.parametrize("quirks", [imdb.FAITHFUL, imdb.Quirks(padding="pre", truncating="pre")])
def test_in_graph_tokeniser_equals_the_python_encoder(quirks):
    vocab = imdb_data.vocabulary(WORD_INDEX, SMALL.num_words)
    expected, _ = imdb.encode_for_prediction(ODD_TEXTS + POS + NEG, vocab, SMALL, quirks)
    with tf.Graph().as_default():
        texts = tf1.placeholder(tf.string, [None])
        ids = imdb.tokenize_in_graph(texts, vocab, SMALL, quirks)
        with tf1.Session() as sess:
            sess.run(tf1.tables_initializer())
            got = sess.run(ids, {texts: ODD_TEXTS + POS + NEG})
    np.testing.assert_array_equal(got, expected)


def test_saved_model_on_raw_text_equals_the_python_path(trained):
    run_dir, _ = trained
    texts = ODD_TEXTS + POS[:2] + NEG[:2]
    python_path = imdb.predict(run_dir, texts)
    manifest = runs.read_manifest(run_dir)
    x, _ = imdb.encode_for_prediction(texts, runs.read_json(run_dir, "vocab.json"), SMALL, imdb.FAITHFUL)
    with tf.Graph().as_default():
        with tf1.Session() as sess:
            meta = tf1.saved_model.loader.load(sess, ["serve"], str(run_dir / imdb.SAVED_MODEL))
            sig = meta.signature_def["serving_default"]
            fetch = {k: sig.outputs[k].name for k in ("probability", "ids")}
            out = sess.run(fetch, {sig.inputs["text"].name: texts})
    np.testing.assert_array_equal(out["ids"], x)
    np.testing.assert_allclose(out["probability"], [r["probability"] for r in python_path], atol=1e-6)
    assert manifest["preset"] == "custom"
    assert python_path[0]["known"] == 0 and python_path[3]["truncated"] and not python_path[4]["truncated"]
    assert {r["label"] for r in python_path} <= {"positive", "negative"}


def test_saved_model_export_uses_the_final_weights(trained, tmp_path):
    run_dir, _ = trained
    path = imdb.export_saved_model(run_dir, tmp_path / "sm", checkpoint=str(run_dir / "model.ckpt-1"), log=_quiet)
    with tf.Graph().as_default(), tf1.Session() as sess:
        meta = tf1.saved_model.loader.load(sess, ["serve"], path)
        sig = meta.signature_def["serving_default"]
        from_epoch1 = sess.run(sig.outputs["probability"].name, {sig.inputs["text"].name: POS})
    final = [r["probability"] for r in imdb.predict(run_dir, POS)]
    epoch1 = [r["probability"] for r in imdb.predict(run_dir, POS, checkpoint=str(run_dir / "model.ckpt-1"))]
    np.testing.assert_allclose(from_epoch1, epoch1, atol=1e-6)
    assert np.abs(np.array(final) - np.array(epoch1)).max() > 1e-6


def test_quirks_are_validated():
    with pytest.raises(ValueError, match="--mask needs --padding=post"):
        imdb.Quirks(padding="pre", mask=True)
    with pytest.raises(ValueError, match="arch"):
        imdb.Config(arch="gru")


# --- command line -------------------------------------------------------------------------------------------
def _cli(*args, stdin=None):
    env = dict(os.environ, PYTHONPATH=str(REPO), LEGACY_LSTM_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "legacy_lstm.imdb", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, input=stdin, timeout=300)


def test_cli_predict_answers_every_text_and_errors_are_one_line(trained, tmp_path):
    run_dir, _ = trained
    out = _cli("--mode=predict", f"--run_dir={run_dir}", "", "great good fun", "Ünïcödé ΟΔΟΣ")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip("\n").split("\n")
    assert len(lines) == 3 and "(no known words)" in lines[0] and "(no known words)" in lines[2]
    assert all(line.split("\t")[1].split(" ")[0] in ("positive", "negative") for line in lines)
    missing = _cli("--mode=test", f"--data_dir={tmp_path}", f"--run_dir={run_dir}")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1].startswith("error: Data file imdb/imdb_word_index.json not found")
    no_run = _cli("--mode=test", f"--data_dir={tmp_path}", f"--run_dir={tmp_path / 'none'}")
    assert no_run.returncode == 1 and "Traceback" not in no_run.stderr
    assert no_run.stderr.strip().splitlines()[-1].startswith("error: ")


def test_uniform_head_flag_contradicting_the_run_is_refused_in_test_mode(trained, tmp_path):
    run_dir = tmp_path / "stacked"
    shutil.copytree(trained[0], run_dir)
    manifest = json.loads((run_dir / runs.MANIFEST).read_text())
    manifest.update(preset="stacked", config=dict(manifest["config"], head="dropout"))  # as a stacked run's
    (run_dir / runs.MANIFEST).write_text(json.dumps(manifest))
    refused = _cli("--mode=test", f"--run_dir={run_dir}", f"--data_dir={tmp_path}", "--uniform_head")
    assert refused.returncode == 1
    assert "--uniform_head (the run's head: dropout)" in refused.stderr.strip().splitlines()[-1]
    # the run's own head: no objection (it then stops at the missing data, naming the file)
    agreed = _cli("--mode=test", f"--run_dir={run_dir}", f"--data_dir={tmp_path}", "--nouniform_head")
    assert agreed.returncode == 1 and "imdb_word_index.json not found" in agreed.stderr


def test_test_mode_uses_the_data_source_the_run_was_trained_with(trained, tiny, tmp_path, monkeypatch,
                                                                  parsed_flags):
    """Test mode evaluates with the run's own quirks: without --source it locates the files of the run's own
    source, and a --source that contradicts the run is an error naming it (nothing is located); load_data itself
    refuses paths without its source's file."""
    run_dir, _ = trained
    located = []

    def locate(data_dir, source="raw"):
        located.append(source)
        raise FileNotFoundError("located")
    monkeypatch.setattr(imdb, "locate_data", locate)
    parsed_flags.mode, parsed_flags.run_dir, parsed_flags.source = "test", str(run_dir), "npz"
    with pytest.raises(runs.ManifestMismatchError, match=r"--source=npz \(the run's: raw\)"):
        imdb.main(["imdb"])
    assert located == []
    npz_run = tmp_path / "npz-run"  # a run recorded as trained from the npz files; no --source given
    shutil.copytree(run_dir, npz_run)
    manifest = json.loads((npz_run / runs.MANIFEST).read_text())
    manifest["quirks"]["source"] = "npz"
    (npz_run / runs.MANIFEST).write_text(json.dumps(manifest))
    parsed_flags.run_dir = str(npz_run)
    parsed_flags["source"].unparse()
    with pytest.raises(FileNotFoundError, match="located"):
        imdb.main(["imdb"])
    assert located == ["npz"]
    config, quirks, _, _ = imdb._setup_from_run_dir(run_dir)
    with pytest.raises(ValueError, match="--source=raw .* the raw tar file was not located"):
        imdb.load_data(imdb.Paths(word_index=tiny.word_index), config, quirks)


def test_real_data_statistics_match_keras(data_dir, tmp_path):
    tar = real_file(data_dir, "imdb/aclImdb_labeled.tar.gz")
    index = real_file(data_dir, "imdb/imdb_word_index.json")
    paths = imdb.locate_data(data_dir)
    assert paths.tar == str(tar) and paths.word_index == str(index)
    corpus = imdb_data.load_corpus(tar, index, cache_dir=download.cache_dir() / "imdb")
    (x_train, y_train), (x_test, y_test) = imdb_data.keras_encode(corpus, 10000)
    lengths = np.array([len(x) for x in x_train])
    assert (len(x_train), len(x_test), int(y_train.sum()), int(y_test.sum())) == (25000, 25000, 12500, 12500)
    # Keras's imdb.npz: mean 238.71, median 178 ids per training review (start token included)
    assert lengths.mean() == pytest.approx(238.71, abs=0.5) and np.median(lengths) == pytest.approx(178, abs=2)
    assert max(x.max() for x in x_train) == 9999 and min(x.min() for x in x_train) == 1


# --- scripts/reproduce.py imdb ------------------------------------------------------------------------------
def test_reproduce_imdb_resumes_then_tests_and_writes_results(tiny, tmp_path, monkeypatch, capsys,
                                                              reproduce_script):
    reproduce = reproduce_script
    monkeypatch.setattr(imdb, "locate_data", lambda data_dir, source="raw": tiny)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # keep the tiny tar's encoding out of the user cache
    run_dir, results = tmp_path / "run", tmp_path / "results"
    argv = ["reproduce.py", "imdb", "--preset=test", f"--run_dir={run_dir}", f"--results_dir={results}", "--seed=2017"]
    monkeypatch.setattr(sys, "argv", argv + ["--max_epochs=1"])
    reproduce.main()
    partial = json.loads((results / "imdb-test.json").read_text())
    assert partial["epochs_done"] == 1 and not partial["complete"] and partial["final"]["test_acc"] is None
    monkeypatch.setattr(sys, "argv", argv[:-1] + ["--seed=9"])  # resuming: the run dir's seed is kept
    reproduce.main()
    doc = json.loads((results / "imdb-test.json").read_text())
    assert doc["complete"] and doc["epochs_done"] == 2 and doc["seed"] == 2017
    assert doc["curve"][0] == partial["curve"][0]
    assert doc["command"] == "python scripts/reproduce.py imdb --preset=test --variant=faithful --seed=2017"
    assert doc["final"]["val_accuracy"] == doc["curve"][-1]["val_accuracy"]
    assert doc["final"]["test_acc"] == pytest.approx(imdb.test(tiny, run_dir, log=_quiet)["test_acc"])
    assert doc["comparison"]["passed"] is None  # nothing published to compare with
    out = capsys.readouterr().out  # model.summary()'s table before the first epoch, the tutorial's test line last
    assert f"Test accuracy: {doc['final']['test_acc']:.4f}\n" in out
    assert out.index('Model: "sequential"') < out.index(" lstm (LSTM) ") < out.index("Epoch 1/2")
    assert "Total params: 160881 (628.44 KB)" in out  # the test preset: Embedding 16 x 10,000, LSTM 8, Dense 8
    from legacy_lstm import compare  # the log, summary table and all, reads as a Keras log with its test accuracy
    parsed = compare.parse_log(out, app="imdb")
    assert parsed.final["test_acc"] == pytest.approx(doc["final"]["test_acc"], abs=5e-5) and len(parsed.rows) == 2
    assert len(list((tmp_path / "cache" / "legacy_lstm" / "imdb").glob("imdb-encoded-*.npz"))) == 1
    if importlib.util.find_spec("matplotlib") is not None:  # an optional extra
        assert (results / "imdb-test.png").exists()


def test_published_imdb_target_is_one_sided_and_checked():
    from legacy_lstm import published, report
    ref = published.load("imdb")["presets"]["lstm"]
    assert ref["targets"]["test_acc"]["min"] == 0.85 and ref["final"] == {}
    assert report.check_targets({"test_acc": 0.86}, ref)["test_acc"]["met"] is True
    assert report.check_targets({"test_acc": 0.5}, ref)["test_acc"]["met"] is False
    assert report.check_targets({"test_acc": None}, ref)["test_acc"]["met"] is None
    assert set(published.load("imdb")["presets"]) == set(imdb.PRESETS)


def test_best_weights_after_a_resume_deleted_best_ckpt(tmp_path):
    """Early stopping's best weights: best.ckpt, else the best epoch's own checkpoint, else a clear error."""
    with tf.Graph().as_default():
        tf1.get_variable("w", shape=[2], initializer=tf1.zeros_initializer())
        run = runs.Run(tmp_path, {"app": "imdb", "preset": "l2"})
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for epoch in (1, 2, 3):
                run.save_epoch(sess, epoch)
            best = str(tmp_path / imdb.BEST_CHECKPOINT)
            assert imdb._best_weights(run, best, 2) == str(tmp_path / "model.ckpt-2")
            run.saver.save(sess, best, write_meta_graph=False, write_state=False)
            assert imdb._best_weights(run, best, 2) == best
            run.delete_checkpoint(imdb.BEST_CHECKPOINT)
            assert not run.has_checkpoint(imdb.BEST_CHECKPOINT)
            with pytest.raises(runs.CorruptCheckpointError, match="epoch 7"):
                imdb._best_weights(run, best, 7)


def test_a_corrupt_encoded_cache_is_rebuilt_and_a_failed_write_leaves_no_tmp(tiny, tmp_path, monkeypatch):
    """The encoded cache is optional: an unreadable one (e.g. a zip cut short) is rebuilt with a warning, and a
    write that fails (a full disk) is a warning that leaves no ``.tmp`` behind."""
    data = imdb.load_data(tiny, SMALL, imdb.FAITHFUL, cache_dir=tmp_path)
    cache = next(tmp_path.glob("imdb-encoded-*.npz"))
    cache.write_bytes(cache.read_bytes()[:100])  # zipfile.BadZipFile when read
    with pytest.warns(UserWarning, match="cannot be read .*rebuilding it"):
        again = imdb.load_data(tiny, SMALL, imdb.FAITHFUL, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.train.x, data.train.x)
    with np.load(cache) as f:  # rewritten whole
        assert "flat" in f
    cache.unlink()
    real_write = pathlib.Path.write_bytes

    def full_disk(self, payload):
        if self.name.endswith(".tmp"):
            real_write(self, payload[:10])
            raise OSError(28, "No space left on device", str(self))
        return real_write(self, payload)

    monkeypatch.setattr(pathlib.Path, "write_bytes", full_disk)
    with pytest.warns(UserWarning, match="cannot write the encoded IMDB cache .*No space left"):
        third = imdb.load_data(tiny, SMALL, imdb.FAITHFUL, cache_dir=tmp_path)
    np.testing.assert_array_equal(third.test.x, data.test.x)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
