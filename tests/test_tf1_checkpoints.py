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


# --- Hoffman-style checkpoints of other sizes from the command line ------------------------------------------
TF16_FLAGS = {"lstm_sizes": "512", "embed_size": 300, "vocab_size": 10963, "optimizer": "adam"}


def test_a_tf16_index_matches_the_graph_main_builds_from_the_size_flags(data_dir, tmp_path):
    """The flags' values go through the config resolution ``main`` uses; the graph built as training builds it
    (embedding rows from the config, the config's optimiser) has the TF 1.6 checkpoint's names and shapes, slots
    included; a --config file with the same fields gives the same config; the preset alone does not fit."""
    real_file(data_dir, TF16 + ".index")
    stored = {name: list(shape) for name, shape in tf1.train.list_variables(str(data_dir / TF16))}
    name, config = stocktwits.resolve_config("hoffman", stocktwits.config_overrides(**TF16_FLAGS))
    assert name == "custom" and (config.lstm_sizes, config.embed_size, config.vocab_size, config.optimizer) == (
        (512,), 300, 10963, "adam")
    assert (config.batch_size, config.learning_rate) == (256, 0.1)  # the rest is the preset's
    with tf.Graph().as_default():
        stocktwits.build_graph(stocktwits.embedding_rows(config, {"spy": 1, "calls": 2}), config,
                               optimizer=config.optimizer)
        assert {v.op.name: v.shape.as_list() for v in tf1.global_variables()} == stored
    path = tmp_path / "tf16.json"
    path.write_text('{"lstm_sizes": [512], "embed_size": 300, "vocab_size": 10963, "optimizer": "adam"}')
    assert stocktwits.resolve_config("hoffman", stocktwits.config_overrides(config_file=str(path)))[1] == config
    with tf.Graph().as_default():
        default = stocktwits.PRESETS["hoffman"]
        stocktwits.build_graph(stocktwits.embedding_rows(default, {"spy": 1}), default)
        assert {v.op.name: v.shape.as_list() for v in tf1.global_variables()} != stored


@pytest.mark.parametrize("kwargs,message", [
    ({"lstm_sizes": "512,x"}, "--lstm_sizes=512,x: expected a comma list"),
    ({"lstm_sizes": "0"}, "lstm_sizes must be one or more sizes >= 1"),
    ({"embed_size": 0}, "embed_size must be a whole number >= 1"),
    ({"optimizer": "sgd"}, "optimizer must be one of adadelta, adam"),
])
def test_bad_size_flags_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        stocktwits.config_overrides(**kwargs)


def test_a_config_file_with_an_unknown_field_is_refused(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"lstm_size": [512]}')
    with pytest.raises(ValueError, match="not one: lstm_size"):
        stocktwits.config_overrides(config_file=str(path))
    with pytest.raises(ValueError, match=r"vocab_size=5 is smaller than the vocabulary needs \(ids up to 7 \+ the "
                                         r"padding id 0 = 8 rows\)"):
        stocktwits.embedding_rows(stocktwits.Config(vocab_size=5), {w: i for i, w in enumerate("abcdefg", 1)})


@pytest.fixture
def small_messages(tmp_path, monkeypatch):
    """A small StockTwits-format file that main finds as the data (download.locate patched)."""
    from stocktwits_fixtures import write_messages
    path = write_messages(tmp_path / "st.csv.gz")
    monkeypatch.setattr(stocktwits.download, "locate", lambda *args, **kwargs: path)
    return path


def test_main_tests_a_tf16_checkpoint_only_with_its_sizes(data_dir, small_messages, tmp_path, parsed_flags):
    """Through main: with the checkpoint's sizes the shape check passes and the restore then stops at its missing
    values (only its .index is kept); with the preset's sizes the error names the first variable that differs."""
    real_file(data_dir, TF16 + ".index")
    from legacy_lstm import runs
    parsed_flags.mode, parsed_flags.checkpoint, parsed_flags.split_seed = "test", str(data_dir / TF16), 1
    parsed_flags.run_dir = str(tmp_path / "tf16")
    with pytest.raises(runs.ManifestMismatchError, match=r"basic_lstm_cell/kernel: checkpoint has shape \[812, 2048\]"):
        stocktwits.main(["prog"])
    for flag, value in TF16_FLAGS.items():
        setattr(parsed_flags, flag, value)
    with pytest.raises(runs.CorruptCheckpointError, match="cannot be read"):
        stocktwits.main(["prog"])


def test_sizes_and_optimizer_are_recorded_refused_when_changed_and_a_foreign_checkpoint_predicts(
        small_messages, tmp_path, parsed_flags, capsys):
    from legacy_lstm import compare, runs
    quirks = stocktwits.Quirks(seq_len=12)
    overrides = stocktwits.config_overrides(lstm_sizes="12", embed_size=8, optimizer="adam")
    _, config = stocktwits.resolve_config("test", overrides)
    lines = []
    run_dir = tmp_path / "run"
    stocktwits.train(small_messages, run_dir, config, quirks, split_seed=2, seed=1, max_epochs=1,
                     log=lines.append)
    saved = runs.read_manifest(run_dir)
    assert saved["config"]["lstm_sizes"] == [12] and saved["config"]["embed_size"] == 8
    assert saved["config"]["optimizer"] == "adam" and saved["config"]["vocab_size"] is None
    stored = dict(tf1.train.list_variables(str(run_dir / "model.ckpt-1")))
    assert "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel/Adam" in stored
    assert stored["Variable"] == [saved["vocab_size"], 8]
    # the log line: the notebook's spelling, which compare reads as our curve
    assert "... Train Accruacy: " in lines[0]
    parsed = compare.parse_log(lines[0] + "\n")
    assert parsed.app == "stocktwits" and parsed.rows[1]["train_acc"] == pytest.approx(
        runs.read_json(run_dir, "curve.json")[0]["train_acc"], abs=5e-4)
    # a resume with another optimiser is refused by name
    other = dataclasses.replace(config, optimizer="adadelta")
    with pytest.raises(runs.ManifestMismatchError, match="config.optimizer: saved 'adam', now 'adadelta'"):
        stocktwits.train(small_messages, run_dir, other, quirks, max_epochs=2, log=lines.append)
    # test mode with flags that contradict the run: refused, naming them
    parsed_flags.mode, parsed_flags.run_dir = "test", str(run_dir)
    parsed_flags.optimizer, parsed_flags.lstm_sizes = "adadelta", "12"
    with pytest.raises(runs.ManifestMismatchError, match=r"optimizer=adadelta \(the run's: adam\)") as err:
        stocktwits.main(["prog"])
    assert "lstm_sizes" not in str(err.value)  # given with the run's own value: fine
    # the checkpoint alone, as from elsewhere: test with its sizes records them, and predict then works
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    for f in run_dir.glob("model.ckpt-1.*"):
        (foreign / f.name.replace("model.ckpt-1", "sentiment.ckpt")).write_bytes(f.read_bytes())
    parsed_flags.run_dir, parsed_flags.checkpoint = str(tmp_path / "new"), str(foreign / "sentiment.ckpt")
    parsed_flags.optimizer, parsed_flags.embed_size, parsed_flags.split_seed, parsed_flags.seq_len = "adam", 8, 2, "12"
    parsed_flags.preset = "test"
    capsys.readouterr()
    stocktwits.main(["prog"])
    assert "Test Accuracy: " in capsys.readouterr().out
    assert runs.read_manifest(tmp_path / "new")["config"] == saved["config"]
    ours = stocktwits.predict(run_dir, ["calls moon rally", "puts crash dump"])
    theirs = stocktwits.predict(tmp_path / "new", ["calls moon rally", "puts crash dump"],
                                checkpoint=str(foreign / "sentiment.ckpt"))
    assert [r["probability"] for r in theirs] == pytest.approx([r["probability"] for r in ours], abs=1e-6)


def test_the_articles_spelling_behind_a_flag(small_messages, tmp_path):
    lines = []
    config = dataclasses.replace(stocktwits.PRESETS["test"], lstm_sizes=(4,), embed_size=4, epochs=1)
    stocktwits.train(small_messages, tmp_path, config, stocktwits.Quirks(seq_len=8), split_seed=2, seed=1,
                     log=lines.append, accruacy=False)
    assert "... Train Accuracy: " in lines[0] and "Accruacy" not in lines[0]


def test_a_foreign_checkpoint_with_its_own_vocabulary_tests_and_predicts_as_the_model_it_was(
        small_messages, tmp_path, parsed_flags, capsys):
    """A checkpoint whose embedding rows follow another vocabulary (this data's ids reversed, the rows moved with
    them: what a notebook with another tie order or data writes). With --vocab_file (JSON or one word per line)
    test mode gives the model's own accuracy and predict its own probabilities; without it, the words are read
    as other words."""
    import json

    from legacy_lstm import convert, runs, training
    quirks = stocktwits.Quirks(seq_len=12)
    run_dir = tmp_path / "run"
    stocktwits.train(small_messages, run_dir, "test", quirks, split_seed=2, seed=1, max_epochs=1, log=_quiet)
    texts = ["calls moon rally", "puts crash dump", "$SPY flat today"]
    ours = stocktwits.predict(run_dir, texts)
    vocab = training.open_run(run_dir, stocktwits.APP).vocab
    n = len(vocab)
    theirs = {w: n + 1 - i for w, i in vocab.items()}
    values = convert.read_checkpoint(str(run_dir / "model.ckpt-1"))
    embedding = values["Variable"]
    moved = embedding.copy()
    for i in range(1, n + 1):
        moved[n + 1 - i] = embedding[i]
    assert not np.array_equal(moved, embedding)
    foreign = convert.write_checkpoint(dict(values, Variable=moved), str(tmp_path / "foreign" / "sentiment.ckpt"))
    (tmp_path / "vocab_to_int.json").write_text(json.dumps(theirs))
    (tmp_path / "words.txt").write_text("".join(f"{w}\n" for w in sorted(theirs, key=theirs.get)))
    assert stocktwits.read_vocab_file(tmp_path / "words.txt") == theirs
    parsed_flags.mode, parsed_flags.checkpoint, parsed_flags.split_seed = "test", foreign, 2
    parsed_flags.seq_len, parsed_flags.preset = "12", "test"
    expected = f"Test Accuracy: {stocktwits.test(small_messages, run_dir, log=_quiet):.3f}"
    for name, vocab_file in (("json", "vocab_to_int.json"), ("text", "words.txt")):
        parsed_flags.run_dir, parsed_flags.vocab_file = str(tmp_path / name), str(tmp_path / vocab_file)
        capsys.readouterr()
        assert stocktwits.main(["prog"]) == 0
        assert expected in capsys.readouterr().out
        assert training.open_run(tmp_path / name, stocktwits.APP).vocab == theirs
        got = stocktwits.predict(tmp_path / name, texts, checkpoint=foreign)
        assert [r["probability"] for r in got] == pytest.approx([r["probability"] for r in ours], abs=1e-6)
        again = stocktwits.test(small_messages, tmp_path / name, checkpoint=foreign, log=_quiet)  # its own vocab
        assert f"Test Accuracy: {again:.3f}" == expected
    parsed_flags.run_dir, parsed_flags.vocab_file = str(tmp_path / "data-vocab"), None
    assert stocktwits.main(["prog"]) == 0  # the data's own vocabulary: the moved rows mean other words
    wrong = stocktwits.predict(tmp_path / "data-vocab", texts, checkpoint=foreign)
    assert max(abs(a["probability"] - b["probability"]) for a, b in zip(wrong, ours)) > 1e-4
    # a run dir that holds a run keeps its own vocabulary; train and predict take no file
    parsed_flags.run_dir, parsed_flags.vocab_file = str(tmp_path / "json"), str(tmp_path / "words.txt")
    with pytest.raises(ValueError, match="holds a run, which uses its own vocabulary"):
        stocktwits.main(["prog"])
    parsed_flags.mode = "train"
    with pytest.raises(ValueError, match="--vocab_file is for --mode=test"):
        stocktwits.main(["prog"])
    assert runs.read_manifest(tmp_path / "json")["vocab_sha256"] == runs.vocab_sha256(theirs)


@pytest.mark.parametrize("name, content, message", [
    ("v.txt", '{"a": 1, "b": 1}', "two words share an id"), ("v.txt", '{"a": 0}', "the id of 'a' is not a whole"),
    ("v.txt", '{"a": "1"}', "the id of 'a' is not"), ("v.txt", '{"a": 1', "not a JSON object of word to id"),
    ("v.json", "[1, 2]", "expected a JSON object"), ("v.txt", "a\nb\na\n", "a word is listed twice"),
    ("v.txt", "\n\n", "no words")])
def test_a_bad_vocab_file_is_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        stocktwits.read_vocab_file(path)
    with pytest.raises(ValueError, match="cannot be read"):
        stocktwits.read_vocab_file(tmp_path / "missing.json")


def _quiet(*args, **kwargs):
    pass
