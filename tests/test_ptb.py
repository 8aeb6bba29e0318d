"""The PTB app: reader, queue producer, both graphs, training and resume, state feeding, test protocols,
generation, CLI errors. Hermetic tests write a tiny corpus; real-data tests only count and shape things."""

import dataclasses
import json
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from legacy_lstm import carry, fast_lstm, ptb, ptb_common, ptb_thomas, published, report, runs, training
from legacy_lstm.compat import seed_everything, tf, tf1
from legacy_lstm.data import download
from legacy_lstm.data import ptb as ptb_data

from conftest import need_native_ops, real_file

REPO = pathlib.Path(__file__).resolve().parents[1]
WORDS = "the cat sat on mat a dog ran in park N <unk> and".split()
# Small enough to train in a second, big enough to give the thomas protocol its 30 test batches.
TINY = dataclasses.replace(ptb.PRESETS["small"], hidden_size=16, num_steps=5, batch_size=4, epochs=2, vocab_size=50)
TINY_THOMAS = dataclasses.replace(ptb_thomas.PRESETS["thomas"], hidden_size=16, num_steps=5, batch_size=4, epochs=3,
                                  vocab_size=50, test_epoch=1, print_iter=20)


def _quiet(*args, **kwargs):
    pass


def unigram_perplexity():
    """Perplexity of the best context-free model of the ``corpus`` text (words uniform, lines of 3-8 words, each
    ending in <eos>): a trained model should come near it; an untrained one is near vocab_size."""
    p_eos = 1 / (np.arange(3, 9).mean() + 1)
    p_word = (1 - p_eos) / len(WORDS)
    return float(np.exp(-(p_eos * np.log(p_eos) + len(WORDS) * p_word * np.log(p_word))))


def write_corpus(folder, lines=(400, 80, 160)):
    """(train, valid, test) files in the PTB format (a leading space, space-separated tokens, ' \\n' endings) of
    ``lines`` random lines of 3-8 ``WORDS`` each, seeded."""
    rng = np.random.default_rng(0)
    paths = []
    for name, count in zip(("train", "valid", "test"), lines):
        path = folder / f"ptb.{name}.txt"
        with open(path, "w") as f:
            for _ in range(count):
                f.write(" " + " ".join(rng.choice(WORDS, size=rng.integers(3, 9))) + " \n")
        paths.append(path)
    return tuple(paths)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("ptb"))


@pytest.fixture(scope="module")
def ptb_paths(data_dir):
    return tuple(real_file(data_dir, f"ptb/ptb.{s}.txt") for s in ("train", "valid", "test"))


def _dequeue(x, y, n):
    with tf1.Session() as sess, ptb_data.queue_runners(sess):
        return [sess.run([x, y]) for _ in range(n)]


# --- reader ------------------------------------------------------------------------------------------------
def test_reader_vocab_and_ids_on_a_tiny_corpus(tmp_path):
    train = tmp_path / "train.txt"
    train.write_text(" b a c a\n a b z\n")
    valid = tmp_path / "valid.txt"
    valid.write_text(" a q b \n")
    assert ptb_data.read_words(train) == ["b", "a", "c", "a<eos>", "a", "b", "z<eos>"]  # the reader's quirk
    train.write_text(" b a c a \n a b z \n")  # PTB lines end in " \n", so <eos> is a token of its own
    assert ptb_data.read_words(train) == ["b", "a", "c", "a", "<eos>", "a", "b", "z", "<eos>"]
    # counts: a 3, b 2, <eos> 2, c 1, z 1 -> by (-count, word)
    vocab = ptb_data.build_vocab(train)
    assert vocab == {"a": 0, "<eos>": 1, "b": 2, "c": 3, "z": 4}
    tr, va, te, word_to_id = ptb_data.load_raw(train, valid, valid)
    assert word_to_id == vocab
    assert tr == [2, 0, 3, 0, 1, 0, 2, 4, 1]
    assert va == te == [0, 2, 1]  # "q" is not in the vocabulary: dropped


def test_real_data_counts_and_vocabulary(ptb_paths):
    train, valid, test, word_to_id = ptb_data.load_raw(*ptb_paths)
    assert len(word_to_id) == 10000 and sorted(word_to_id.values()) == list(range(10000))
    assert (len(train), len(valid), len(test)) == (929589, 73760, 82430)
    assert word_to_id["the"] == 0 and word_to_id["<unk>"] == 1 and word_to_id["<eos>"] == 2
    assert train[:5] == [9970, 9971, 9972, 9974, 9975]  # the seed's printed train_data[:5]
    first, vocab_dict, size, words = ptb_thomas.thomas_data_lines(train, word_to_id)  # what Thomas's load_data printed
    assert first == "[9970, 9971, 9972, 9974, 9975]" and size == "10000"
    assert vocab_dict.startswith("{'the': 0, '<unk>': 1, '<eos>': 2, ") and len(words.split()) == 10
    presets = {**ptb.PRESETS, "thomas": ptb_thomas.PRESETS["thomas"]}
    sizes = {name: ptb_data.epoch_size(len(train), c.batch_size, c.num_steps) for name, c in presets.items()}
    assert sizes == {"small": 2323, "medium": 1327, "large": 1327, "thomas": 1327, "test": 23239}
    assert ptb_data.epoch_size(len(valid), 20, 20) == 184 and ptb_data.epoch_size(len(valid), 20, 35) == 105
    assert ptb_data.epoch_size(len(test), 1, 1) == 82429 and ptb_data.epoch_size(len(test), 20, 35) == 117
    assert [download.sha256_of(p) for p in ptb_paths] == [f.sha256 for f in ptb_data.FILES]
    assert [p.stat().st_size for p in ptb_paths] == [f.size for f in ptb_data.FILES]


# --- producer ----------------------------------------------------------------------------------------------
def test_producer_against_hand_computed_batches():
    raw = [4, 3, 2, 1, 0, 5, 6, 1, 1, 1, 1, 0, 3, 4, 1, 9]  # the 16th id is cut off: batch_len = 16 // 3 = 5
    with tf.Graph().as_default():
        x, y, size = ptb_data.batch_producer(raw, batch_size=3, num_steps=2)
        assert size == 2 and x.shape.as_list() == y.shape.as_list() == [3, 2]
        got = _dequeue(x, y, 5)
    # rows: [4 3 2 1 0], [5 6 1 1 1], [1 0 3 4 1]
    first = ([[4, 3], [5, 6], [1, 0]], [[3, 2], [6, 1], [0, 3]])
    second = ([[2, 1], [1, 1], [3, 4]], [[1, 0], [1, 1], [4, 1]])
    for (xv, yv), (ex, ey) in zip(got, [first, second, first, second, first]):  # wraps around after 2
        np.testing.assert_array_equal(xv, ex)
        np.testing.assert_array_equal(yv, ey)


def test_producer_with_no_window_is_a_clear_error():
    with tf.Graph().as_default():
        with pytest.raises(ValueError, match="epoch_size == 0, decrease batch_size or num_steps"):
            ptb_data.batch_producer(list(range(40)), batch_size=20, num_steps=2)  # batch_len 2: (2-1)//2 = 0
        assert ptb_data.batch_producer(list(range(60)), batch_size=20, num_steps=2)[2] == 1


@pytest.mark.parametrize("failure", ["python", "tensorflow"])
def test_queue_runners_are_stopped_and_joined_when_a_step_raises(failure):
    before = threading.active_count()
    with tf.Graph().as_default():
        x, y, _ = ptb_data.batch_producer(list(range(100)), batch_size=2, num_steps=3)
        bad = tf1.placeholder(tf.float32, [2])
        start = time.time()
        with tf1.Session() as sess:
            with pytest.raises((RuntimeError, tf.errors.InvalidArgumentError)):
                with ptb_data.queue_runners(sess) as coord:
                    sess.run(x)
                    assert threading.active_count() > before  # the runner threads are running
                    if failure == "python":
                        raise RuntimeError("a step failed")
                    sess.run(bad * 2)  # not fed: InvalidArgumentError from TF
            assert coord.should_stop()
    assert time.time() - start < 30
    assert threading.active_count() == before


# --- graphs ------------------------------------------------------------------------------------------------
def _lstm_kernels():
    return {v.op.name: v.shape.as_list() for v in tf1.global_variables() if v.op.name.endswith("/kernel")}


def test_thomas_graph_ties_the_layers_into_one_kernel():
    for rnn_mode in ("basic", "block"):
        with tf.Graph().as_default():
            config = dataclasses.replace(TINY_THOMAS, rnn_mode=rnn_mode)
            ptb_thomas.Model(ptb_thomas.Input(4, 5, list(range(50)) * 4), True, config)
            assert _lstm_kernels() == {"rnn/multi_rnn_cell/cell_0/lstm_cell/kernel": [32, 64]}
            names = {v.op.name: v.shape.as_list() for v in tf1.global_variables()}
            assert names["Variable"] == [50, 16] and names["Variable_1"] == [16, 50] and names["Variable_2"] == [50]
            assert names["Variable_3"] == [] and "global_step" in names
    with tf.Graph().as_default():
        untied = dataclasses.replace(TINY_THOMAS, tie_layers=False)
        ptb_thomas.Model(ptb_thomas.Input(4, 5, list(range(50)) * 4), True, untied)
        assert _lstm_kernels() == {f"rnn/multi_rnn_cell/cell_{k}/lstm_cell/kernel": [32, 64] for k in (0, 1)}


@pytest.mark.parametrize("rnn_mode,scope", [("block", "lstm_cell"), ("basic", "basic_lstm_cell")])
def test_official_graph_has_one_kernel_per_layer_tf1_names_and_uniform_init(rnn_mode, scope):
    config = dataclasses.replace(TINY, rnn_mode=rnn_mode, init_scale=0.03)
    with tf.Graph().as_default():
        ptb.official_graph(config, list(range(50)) * 4, list(range(50)) * 2)
        assert _lstm_kernels() == {f"Model/RNN/multi_rnn_cell/cell_{k}/{scope}/kernel": [32, 64] for k in (0, 1)}
        trainable = {v.op.name for v in tf1.trainable_variables()}
        assert trainable == {"Model/embedding", "Model/softmax_w", "Model/softmax_b"} | {
            f"Model/RNN/multi_rnn_cell/cell_{k}/{scope}/{w}" for k in (0, 1) for w in ("kernel", "bias")}
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            for v in tf1.trainable_variables():
                value = sess.run(v)
                if v.op.name.endswith("/bias"):
                    assert not value.any()
                else:  # every other variable takes the scope's uniform(+-init_scale)
                    assert 0.02 < np.abs(value).max() <= 0.03, v.op.name


# --- state feeding -----------------------------------------------------------------------------------------
def test_official_run_epoch_feeds_each_final_state_into_the_next_step():
    with tf.Graph().as_default():
        m, _ = ptb.official_graph(TINY, list(range(50)) * 4, list(range(50)) * 2)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            inner = m.stepper(sess)
            fed, returned = [], []

            def step(*state):
                fed.append([np.array(s) for s in state])
                cost, final = inner(*state)
                returned.append([np.array(s) for s in final])
                return cost, final
            step.zero_state = inner.zero_state
            with ptb_data.queue_runners(sess):
                ppl = ptb.run_epoch(step, m.input.epoch_size, m.num_steps)
    assert np.isfinite(ppl) and len(fed) == m.input.epoch_size == 9
    assert len(fed[0]) == 4 and not any(s.any() for s in fed[0])  # 2 layers x (c, h), zeros first
    for k in range(1, len(fed)):
        for a, b in zip(fed[k], returned[k - 1]):
            np.testing.assert_array_equal(a, b)
    assert any(s.any() for s in fed[1])


def test_thomas_epoch_feeds_each_final_state_into_the_next_batch():
    fed, returned = [], []
    rng = np.random.default_rng(0)

    def step(state):
        fed.append(state)
        new = rng.normal(size=state.shape).astype(np.float32)
        returned.append(new)
        return 3.0, None, new

    def step_print(state):
        return step(state) + (0.25,)
    zero = np.zeros((2, 2, 4, 16), np.float32)
    lines = []
    row = ptb_thomas.thomas_epoch(step, step_print, zero, 45, epoch=7, config=TINY_THOMAS, log=lines.append)
    assert fed[0] is zero and all(fed[k] is returned[k - 1] for k in range(1, 45))
    assert [line.split(", cost")[0] for line in lines] == ["Epoch 7, Step 0", "Epoch 7, Step 20", "Epoch 7, Step 40"]
    assert row["epoch"] == 8 and row["cost"] == 3.0 and row["train_accuracy"] == 0.25
    assert row["train_perplexity"] == pytest.approx(np.exp(3.0 / 5))


@pytest.mark.parametrize("exact, shown", [(False, ["0.000", "2.350", "2.100"]), (True, ["0.010", "2.385", "2.105"])])
def test_thomas_seconds_per_step_are_the_originals_whole_seconds(monkeypatch, exact, shown):
    """The original printed timedelta.seconds (whole seconds since the last print) / 50; --exact_step_seconds
    prints the measured value."""
    clock = iter([100.0, 100.2, 147.9, 190.0, 200.0, 200.0])  # start, the prints at steps 0/20/40, the end
    monkeypatch.setattr(ptb_thomas.time, "time", lambda: next(clock))
    zero = np.zeros((2, 2, 4, 16), np.float32)
    lines = []
    ptb_thomas.thomas_epoch(lambda st: (3.0, None, st), lambda st: (3.0, None, st, 0.25), zero, 45, epoch=0,
                            config=TINY_THOMAS, log=lines.append, exact_step_seconds=exact)
    assert TINY_THOMAS.print_iter == 20
    assert [line.rsplit("Seconds per step: ", 1)[1] for line in lines] == shown


def test_fast_test_evaluation_equals_the_faithful_one_and_the_state_matters(corpus):
    _, _, test_data, _ = ptb_data.load_raw(*corpus)
    # Large random weights, so that the carried state changes the outputs; seeded, because how much it changes
    # them depends on the draw (unseeded, one CI run saw only 0.1%; with seed 0 it is ~15%).
    config = dataclasses.replace(TINY, init_scale=1.0)
    eval_config = dataclasses.replace(config, batch_size=1, num_steps=1)
    with tf.Graph().as_default():  # three models sharing one set of variables
        seed_everything(0)
        faithful = ptb.eval_model(eval_config, lambda: ptb.PTBInput(eval_config, test_data))
        no_state = ptb.eval_model(eval_config, lambda: ptb.PTBInput(eval_config, test_data), "NoState", reuse=True)
        fast = ptb.eval_model(config, lambda: ptb.FeedInput(1, 7), "Fast", reuse=True)
        assert len(tf1.global_variables()) == 7
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            fast_ppl = ptb.evaluate_official(sess, fast, ptb._fast_stepper(sess, fast), test_data, fast=True)
            with ptb_data.queue_runners(sess):
                faithful_ppl = ptb.run_epoch(faithful.stepper(sess), faithful.input.epoch_size, 1)
                no_state_ppl = ptb.run_epoch(no_state.stepper(sess), no_state.input.epoch_size, 1,
                                             carry_state=False)
    assert faithful.input.epoch_size == len(test_data) - 1 and (len(test_data) - 1) % 7 != 0  # last window padded
    assert fast_ppl == pytest.approx(faithful_ppl, rel=1e-5)
    assert abs(no_state_ppl - faithful_ppl) > 1e-2 * faithful_ppl


def test_fast_test_windows_cover_every_prediction_once():
    x, y, w = ptb.fast_test_windows(np.arange(10), 4)
    assert x.shape == y.shape == w.shape == (3, 1, 4)
    assert x.reshape(-1)[:9].tolist() == list(range(9)) and y.reshape(-1)[:9].tolist() == list(range(1, 10))
    assert w.reshape(-1).tolist() == [1.0] * 9 + [0.0] * 3  # 9 predictions in 3 windows of 4


# --- checkpoint conversion of a PTB run directory ---------------------------------------------------------------
def test_official_run_dir_converts_block_to_basic_with_its_forget_bias_of_zero(corpus, tmp_path):
    """The official configs' forget_bias 0 (not the cells' default 1) is kept, and config.rnn_mode follows the
    cell, so the converted run tests to the same perplexity."""
    from legacy_lstm import convert
    config = dataclasses.replace(TINY, epochs=1, rnn_mode="block")
    assert config.forget_bias == 0.0
    ptb.train(corpus, tmp_path / "block", config, seed=3, log=_quiet)
    before = ptb.test(corpus, tmp_path / "block", fast=True, log=_quiet)["test_perplexity"]
    convert.convert_run_dir(tmp_path / "block", tmp_path / "basic", "basic")
    manifest = runs.read_manifest(tmp_path / "basic")
    assert manifest["cell"] == manifest["config"]["rnn_mode"] == "basic"
    after = ptb.test(corpus, tmp_path / "basic", fast=True, log=_quiet)["test_perplexity"]
    assert after == pytest.approx(before, rel=1e-5)
    with pytest.raises(ValueError, match="builds only basic or block cells"):
        convert.convert_run_dir(tmp_path / "block", tmp_path / "cudnn", "cudnn_compatible")
    thomas = tmp_path / "thomas"  # Thomas's LSTMCell is lstm_cell whatever its rnn_mode: refused by style
    shutil.copytree(tmp_path / "block", thomas)
    manifest = runs.read_manifest(thomas)
    manifest["config"].update(style="thomas", tie_layers=False)
    (thomas / runs.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="Thomas-style run"):
        convert.convert_run_dir(thomas, tmp_path / "thomas-basic", "basic")


# --- training ----------------------------------------------------------------------------------------------
def test_test_preset_training_lowers_perplexity_and_resumes(corpus, tmp_path):
    config = dataclasses.replace(ptb.PRESETS["test"], epochs=3)
    lines = []
    first = ptb.train(corpus, tmp_path, config, seed=5, max_epochs=2, log=lines.append)
    assert len(first["curve"]) == 2 and not first["finished"]
    assert "Epoch: 1 Learning rate: 1.000" in lines and "Epoch: 2 Learning rate: 0.500" in lines
    assert any(line.startswith("Epoch: 2 Valid Perplexity: ") for line in lines)
    lines.clear()
    result = ptb.train(corpus, tmp_path, config, seed=5, log=lines.append)
    assert lines[0] == f"Resuming {tmp_path} after epoch 2." and result["finished"]
    curve = json.loads((tmp_path / "curve.json").read_text())
    assert [r["epoch"] for r in curve] == [1, 2, 3]
    train_ppl = [r["train_perplexity"] for r in curve]
    valid_ppl = [r["valid_perplexity"] for r in curve]
    assert train_ppl[0] > train_ppl[1] > train_ppl[2] and valid_ppl[0] > valid_ppl[1] > valid_ppl[2]
    assert valid_ppl[-1] < 1.2 * unigram_perplexity()  # ~13.5; ~10,000 (uniform over the vocabulary) untrained
    report = ptb.test(corpus, tmp_path, fast=True, log=_quiet)
    assert report["test_perplexity"] < valid_ppl[0]
    lines.clear()
    faithful = ptb.test(corpus, tmp_path, log=lines.append)  # restores the same checkpoint
    assert faithful["test_perplexity"] == pytest.approx(report["test_perplexity"], rel=1e-5)
    assert lines[-1] == "Test Perplexity: %.3f" % faithful["test_perplexity"]
    with pytest.raises(runs.ManifestMismatchError, match="tie_layers"):
        ptb.train(corpus, tmp_path, config, tie_layers=True, log=_quiet)


def test_thomas_run_keeps_its_test_checkpoint_and_runs_the_original_protocol(corpus, tmp_path):
    config = dataclasses.replace(TINY_THOMAS, epochs=5, test_epoch=2)
    train_lines = []
    result = ptb_thomas.train(corpus, tmp_path, config, seed=1, log=train_lines.append)
    train_data, _, _, word_to_id = ptb_data.load_raw(*corpus)
    assert train_lines[:4] == ptb_thomas.thomas_data_lines(train_data, word_to_id)  # the original's load_data() prints
    assert train_lines[1].startswith("{") and train_lines[4].startswith("Epoch 0, Step 0, cost: ")
    assert result["finished"] and [r["learning_rate"] for r in result["curve"]] == [1.0] * 5
    assert not tf1.train.checkpoint_exists(str(tmp_path / "model.ckpt-2"))  # rotated away (max_to_keep 3)
    assert tf1.train.checkpoint_exists(str(tmp_path / f"{ptb_thomas.THOMAS_NAME}-1"))  # the original's epoch index
    assert tf1.train.checkpoint_exists(str(tmp_path / f"{ptb_thomas.THOMAS_NAME}-final"))
    lines = []
    report = ptb_thomas.test(corpus, tmp_path, log=lines.append)
    assert report["checkpoint"].endswith(f"{ptb_thomas.THOMAS_NAME}-1")
    assert report["test_batches"] >= 30 and report["thomas_accuracy"] > 0.12  # chance 1/14; <eos> alone 0.15
    assert "Average accuracy: {:.3f}".format(report["thomas_accuracy"]) in lines
    true_line = lines[lines.index("True values (1st line) vs predicted values (2nd line):") + 1]
    assert len(true_line.split()) == 5 and set(true_line.split()) <= set(WORDS) | {"<eos>"}
    assert 1 < report["test_perplexity"] < 1.2 * unigram_perplexity()  # untrained: ~50 (vocab_size)


def test_thomas_reproduction_reports_his_checkpoint_and_the_last_epochs_with_the_decoded_row(corpus, tmp_path,
                                                                                                  monkeypatch):
    """scripts/reproduce.py ptb --preset=thomas: his protocol on the checkpoint of epoch index test_epoch - 1 as
    soon as it exists (with the decoded batch-25 row), and, once every epoch ran, on the last epoch's weights."""
    monkeypatch.setitem(ptb_thomas.PRESETS, "thomas", dataclasses.replace(TINY_THOMAS, epochs=3, test_epoch=2))
    monkeypatch.setattr(ptb.ptb_data, "locate", lambda data_dir=None: corpus)
    manifest, curve, final, seconds = ptb.reproduce(tmp_path, "thomas", seed=1, max_epochs=2)
    assert manifest["app"] == "ptb_thomas" and len(curve) == 2 and seconds > 0
    assert final["test_checkpoint"] == f"{ptb_thomas.THOMAS_NAME}-1" and final["last_epoch"] is None
    assert 0 < final["test_accuracy"] < 1 and final["full_test_perplexity"] > 1
    assert len(final["sample"]["true"].split()) == len(final["sample"]["predicted"].split()) == 5
    _, curve, done, _ = ptb.reproduce(tmp_path, "thomas", seed=1)
    assert len(curve) == 3 and done["test_checkpoint"] == final["test_checkpoint"]
    assert done["test_accuracy"] == final["test_accuracy"] and done["sample"] == final["sample"]  # the same weights
    last = done["last_epoch"]
    assert last["epoch"] == 3 and last["test_checkpoint"] != final["test_checkpoint"]
    assert last["full_test_perplexity"] != final["full_test_perplexity"]  # epoch 3's weights, not epoch 2's
    assert tf1.train.checkpoint_exists(str(tmp_path / last["test_checkpoint"])) and last["test_wall_seconds"] > 0
    # the run dir's report (what `compare` reads as the run's test result) is his checkpoint's, tested last
    assert runs.read_json(tmp_path, "report.json")["thomas_accuracy"] == done["test_accuracy"]
    # the results document keeps them, and its comparison reads his number beside them
    doc = report.write_result(tmp_path / "results", "ptb", "faithful", manifest, curve, done, 1.0, tmp_path,
                              ptb.REPRODUCTION)
    assert doc["final"] == json.loads((tmp_path / "results" / "ptb-thomas.json").read_text())["final"]
    assert doc["comparison"]["final"]["test_accuracy"]["ours"] == done["test_accuracy"] and doc["complete"]
    partial = report.write_result(tmp_path / "partial", "ptb", "faithful", manifest, curve[:2], final, 1.0, tmp_path,
                                  ptb.REPRODUCTION)
    assert not partial["complete"]  # his number is there, the last epoch's is not yet


def test_thomas_protocol_averages_batches_5_to_29_and_prints_row_0_of_batch_25():
    config = dataclasses.replace(TINY_THOMAS, num_steps=3, batch_size=2)
    reverse = {i: f"w{i}" for i in range(50)}
    calls = []

    def fetch(state):
        b = len(calls)
        calls.append(state)
        targets = np.array([[b, b + 1, b + 2], [7, 7, 7]])
        pred = np.array([b + 3, b + 4, b + 5, 9, 9, 9])
        return 3.0, b / 100, state + 1, pred, targets
    lines = []
    out = ptb_thomas.thomas_test_pass(fetch, np.zeros(1), 40, config, reverse, log=lines.append)
    assert out["thomas_accuracy"] == pytest.approx(np.mean(np.arange(5, 30) / 100))
    assert out["test_accuracy"] == pytest.approx(np.mean(np.arange(40) / 100))
    assert out["test_perplexity"] == pytest.approx(np.exp(3.0 / 3))
    assert out["sample"] == {"true": "w25 w26 w27", "predicted": "w28 w29 w30"}
    assert [float(c[0]) for c in calls] == list(range(40))  # state carried
    assert lines.index("Average accuracy: 0.170") > lines.index("w28 w29 w30")


def test_a_producer_epoch_may_block_its_enqueue_for_the_whole_epoch():
    """The runner's enqueue_many of an epoch blocks until the epoch is almost consumed (capacity 32), so the app's
    sessions must not time operations out: a 10-minute timeout once closed medium's queue mid-epoch."""
    assert ptb_common.SESSION_CONFIG.operation_timeout_in_ms == 0
    with tf.Graph().as_default() as graph:
        x, _, size = ptb_data.batch_producer(list(range(2000)), 2, 5)
        assert size == 199  # far more than the queue's 32
        with ptb_common.session(graph) as sess, ptb_data.queue_runners(sess):
            firsts = [int(sess.run(x)[0, 0]) for _ in range(size + 3)]
    assert firsts == [5 * (i % size) for i in range(size + 3)]  # the whole epoch, then the wrap-around


# --- presets, schedule, basic mode ----------------------------------------------------------------------------
# ptb_word_lm's configs (init_scale, max_grad_norm, layers, num_steps, hidden, max_epoch, max_max_epoch, keep_prob,
# lr_decay), written out here so that a typo in ptb.PRESETS cannot pass.
TABLE_3_2 = {
    "small": (0.1, 5, 2, 20, 200, 4, 13, 1.0, 0.5),
    "medium": (0.05, 5, 2, 35, 650, 6, 39, 0.5, 0.8),
    "large": (0.04, 10, 2, 35, 1500, 14, 55, 0.35, 1 / 1.15),
    "test": (0.1, 1, 1, 2, 2, 1, 1, 1.0, 0.5),
}


@pytest.mark.parametrize("name", sorted(TABLE_3_2))
def test_official_presets_are_the_published_table(name):
    c = ptb.PRESETS[name]
    assert (c.init_scale, c.max_grad_norm, c.num_layers, c.num_steps, c.hidden_size, c.epochs_at_initial_lr,
            c.epochs, c.keep_prob, c.lr_decay) == pytest.approx(TABLE_3_2[name])
    assert (c.style, c.learning_rate, c.batch_size, c.vocab_size, c.forget_bias, c.rnn_mode, c.tie_layers) == (
        "official", 1.0, 20, 10000, 0.0, "block", False)


def test_thomas_preset_and_learning_rate_schedules():
    t = ptb_thomas.PRESETS["thomas"]
    assert (t.hidden_size, t.num_steps, t.batch_size, t.num_layers, t.keep_prob, t.init_scale, t.forget_bias,
            t.tie_layers, t.epochs, t.test_epoch) == (650, 35, 20, 2, 0.5, 0.05, 1.0, True, 60, 39)
    # lr 1.0 for epoch indices 0..9, then * 0.93 per epoch; the published test checkpoint is index 38
    assert [t.learning_rate_at(i) for i in (0, 9, 10, 11)] == pytest.approx([1.0, 1.0, 0.93, 0.93 ** 2])
    assert t.learning_rate_at(38) == pytest.approx(0.93 ** 29)
    small, medium = ptb.PRESETS["small"], ptb.PRESETS["medium"]
    # ptb_word_lm: lr_decay ** max(i + 1 - max_epoch, 0)
    assert [small.learning_rate_at(i) for i in (0, 3, 4, 5, 12)] == pytest.approx([1, 1, 0.5, 0.25, 0.5 ** 9])
    assert [medium.learning_rate_at(i) for i in (5, 6, 38)] == pytest.approx([1, 0.8, 0.8 ** 33])


def test_official_basic_mode_trains_tests_and_generates(corpus, tmp_path):
    """--rnn_mode=basic: the Test and generation graphs are built alone in a fresh graph (no reuse there)."""
    config = dataclasses.replace(TINY, epochs=1, rnn_mode="basic")
    ptb.train(corpus, tmp_path, config, seed=3, log=_quiet)
    fast = ptb.test(corpus, tmp_path, fast=True, log=_quiet)
    faithful = ptb.test(corpus, tmp_path, log=_quiet)
    assert faithful["test_perplexity"] == pytest.approx(fast["test_perplexity"], rel=1e-5)
    assert 1 < faithful["test_perplexity"] < 1.2 * unigram_perplexity()  # untrained: ~50 (vocab_size)
    with ptb.Generator(tmp_path) as gen:
        assert len(gen.generate([0], 4, decode="greedy")) == 4


def test_resumed_sittings_are_reseeded_with_the_finished_epochs(corpus, tmp_path, monkeypatch):
    """A resumed sitting must not replay the first sitting's dropout masks: seed + finished epochs."""
    seeds = []
    real = training.seed_everything
    monkeypatch.setattr(training, "seed_everything", lambda s: (seeds.append(s), real(s)))
    config = dataclasses.replace(TINY, epochs=3, keep_prob=0.5)
    ptb.train(corpus, tmp_path, config, seed=11, max_epochs=2, log=_quiet)
    ptb.train(corpus, tmp_path, config, seed=11, log=_quiet)
    assert seeds == [11, 13]
    assert json.loads((tmp_path / "manifest.json").read_text())["seed"] == 11


# --- generation and CLI ------------------------------------------------------------------------------------
def test_generation_maps_unknown_words_to_unk_and_is_greedy_deterministic(corpus, tmp_path):
    ptb.train(corpus, tmp_path, dataclasses.replace(TINY, epochs=1), seed=2, log=_quiet)
    notices = []
    word_to_id = json.loads((tmp_path / "vocab.json").read_text())
    assert ptb_common.prompt_ids("The zebra cat", word_to_id, notices.append) == [
        word_to_id["the"], word_to_id["<unk>"], word_to_id["cat"]]
    assert notices == ["notice: not in the vocabulary, read as <unk>: zebra"]
    with ptb.Generator(tmp_path) as gen:
        ids = gen.generate([word_to_id["the"]], 12, decode="greedy")
        assert ids == gen.generate([word_to_id["the"]], 12, decode="greedy") and len(ids) == 12
        logits, state = gen._step(np.array([[word_to_id["the"]]], np.int32), gen._zero)  # greedy by hand:
        expected = []  # the argmax of each step's logits, fed back with the carried state
        for _ in range(12):
            expected.append(int(np.argmax(logits)))
            logits, state = gen._step(np.array([[expected[-1]]], np.int32), state)
        assert ids == expected
        sampled = gen.generate([word_to_id["the"]], 12, rng=np.random.default_rng(0))
        assert sampled == gen.generate([word_to_id["the"]], 12, rng=np.random.default_rng(0))
        assert all(0 <= i < len(word_to_id) for i in ids + sampled)
        assert gen.text("the cat", 5, decode="greedy", notice=_quiet).startswith("the cat")


def _cli(*args, env_extra=None, tmp_path=None):
    env = dict(os.environ, LEGACY_LSTM_OFFLINE="1", XDG_CACHE_HOME=str(tmp_path / "cache"), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "legacy_lstm.ptb", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_errors_are_one_clear_line(tmp_path, parsed_flags):
    out = _cli("--preset=test", f"--data_dir={tmp_path}", f"--run_dir={tmp_path / 'run'}", tmp_path=tmp_path)
    assert out.returncode == 1
    assert "error: Data file ptb/ptb.train.txt not found" in out.stderr and "Traceback" not in out.stderr
    out = _cli("--mode=generate", "--prompt=the", f"--run_dir={tmp_path / 'none'}", tmp_path=tmp_path)
    assert out.returncode == 1 and "has no manifest.json: train a model there first" in out.stderr
    from absl import app
    from absl.testing import flagsaver
    with flagsaver.flagsaver(use_fp16=True, precision="bfloat16"):  # the original's flag against ours: a usage error
        with pytest.raises(app.UsageError, match="--use_fp16 is --precision=float16; it contradicts --precision=b"):
            ptb.precision_flag()
    with flagsaver.flagsaver(use_fp16=True):
        assert ptb.precision_flag() == "float16"


def test_half_precisions_train_in_their_dtype_and_a_run_keeps_its_own(corpus, tmp_path):
    """--use_fp16 (ptb_word_lm's data_type(): float16 variables and computation, on the basic and block cells)
    and our bfloat16 (basic): the checkpoints hold that dtype, the run tracks the float32 one closely on this tiny
    corpus, test mode and generation run in it, and a resume with another precision is refused by name. The
    paths that cannot (fused: float32 only; block in bfloat16: no op kernel) are clear errors. A run made before
    the precision field existed resumes as the float32 run it was."""
    config = dataclasses.replace(TINY, epochs=2)
    reference = ptb.train(corpus, tmp_path / "float32", config, seed=3, log=_quiet)["curve"]
    for precision, cell in (("float16", "block"), ("bfloat16", "basic")):
        run_dir = tmp_path / precision
        curve = ptb.train(corpus, run_dir, config, seed=3, rnn_mode=cell, precision=precision, log=_quiet)["curve"]
        prefix = str(run_dir / "model.ckpt-2")
        dtypes = {n: tf1.train.load_variable(prefix, n).dtype.name for n, _ in tf1.train.list_variables(prefix)
                  if n.startswith("Model/") and "global_step" not in n}
        assert len(dtypes) == 7 and set(dtypes.values()) == {precision}, dtypes  # 2 layers, embedding, softmax
        for ours, ref in zip(curve, reference):
            assert ours["valid_perplexity"] == pytest.approx(ref["valid_perplexity"], rel=0.02), (precision, curve)
        assert curve[-1]["train_perplexity"] < curve[0]["train_perplexity"]
        assert np.isfinite(ptb.test(corpus, run_dir, log=_quiet)["test_perplexity"])
        with ptb.Generator(run_dir) as generator:
            assert len(generator.text("the cat", 4, "sample", 1.0, np.random.default_rng(1)).split()) == 6
        with pytest.raises(runs.ManifestMismatchError, match="precision"):
            ptb.train(corpus, run_dir, config, rnn_mode=cell, log=_quiet)
    with pytest.raises(ValueError, match="float16 and float32 kernels only"):
        ptb.train(corpus, tmp_path / "x", config, rnn_mode="block", precision="bfloat16", log=_quiet)
    with pytest.raises(ValueError, match="the fused path is float32 only"):
        ptb.train(corpus, tmp_path / "y", config, rnn_mode="fused", precision="float16", log=_quiet)
    ptb.train(corpus, tmp_path / "old", config, seed=3, max_epochs=1, log=_quiet)
    manifest = runs.read_manifest(tmp_path / "old")
    del manifest["config"]["precision"]  # as written before the field existed
    (tmp_path / "old" / runs.MANIFEST).write_text(json.dumps(manifest))
    resumed = ptb.train(corpus, tmp_path / "old", config, log=_quiet)
    assert resumed["finished"] and [row["epoch"] for row in resumed["curve"]] == [1, 2]


def test_published_numbers_and_reproduce_registry():
    doc = published.load("ptb")
    small = doc["presets"]["small"]
    assert small["final"] == {"train_perplexity": 37.99, "valid_perplexity": 121.39, "test_perplexity": 115.91}
    assert small["bands"]["final"] == {"valid_perplexity": 4, "test_perplexity": 4}
    assert doc["presets"]["medium"]["final"]["test_perplexity"] == 82.07
    assert doc["presets"]["medium"]["bands"]["final"]["test_perplexity"] == 3
    assert doc["presets"]["thomas"]["final"] == {"test_accuracy": 0.283}
    assert doc["presets"]["thomas"]["bands"]["final"] == {"test_accuracy": 0.02}
    ours = {"train_perplexity": 40.0, "valid_perplexity": 124.0, "test_perplexity": 112.5}  # within 115.91 +- 4
    assert published.compare([], ours, small).passed
    assert not published.compare([], dict(ours, test_perplexity=120.5), small).passed
    sys.path.insert(0, str(REPO / "scripts"))
    import reproduce
    assert "ptb" in reproduce.APPS and ptb.REPRODUCTION.default_preset == "small"


def test_each_app_refuses_the_other_tutorials_graph(corpus, tmp_path):
    with pytest.raises(ValueError, match="Thomas's tutorial is legacy_lstm.ptb_thomas"):
        ptb.train(corpus, tmp_path / "a", TINY_THOMAS, log=_quiet)
    with pytest.raises(ValueError, match="the official presets are legacy_lstm.ptb's"):
        ptb_thomas.train(corpus, tmp_path / "b", TINY, log=_quiet)
    assert "thomas" not in ptb.PRESETS and set(ptb_thomas.PRESETS) == {"thomas", "test"}


def test_preset_thomas_on_the_ptb_app_says_where_it_moved_and_runs_it(tmp_path):
    out = _cli("--preset=thomas", "--mode=generate", f"--run_dir={tmp_path / 'none'}", tmp_path=tmp_path)
    assert "Andy Thomas's tutorial is the app legacy_lstm.ptb_thomas now" in out.stderr
    assert out.returncode == 1 and "needs --prompt" in out.stderr  # ptb_thomas's main answered


def test_a_run_of_one_ptb_app_is_refused_by_the_other_by_name(corpus, tmp_path):
    ptb.train(corpus, tmp_path, dataclasses.replace(TINY, epochs=1), seed=2, log=_quiet)
    with pytest.raises(runs.ManifestMismatchError, match="run of legacy_lstm.ptb, not of legacy_lstm.ptb_thomas"):
        ptb_thomas.test(corpus, tmp_path, log=_quiet)


def test_preset_thomas_keeps_using_the_run_dir_it_used_before_the_split(parsed_flags, tmp_path, monkeypatch):
    """``python -m legacy_lstm.ptb --preset=thomas`` kept its run in checkpoints/ptb/thomas; rerunning it after
    the split must continue that run (read as ptb_thomas's), not start a new one in checkpoints/ptb_thomas."""
    monkeypatch.chdir(tmp_path)
    old = tmp_path / "checkpoints" / "ptb" / "thomas"
    old.mkdir(parents=True)
    (old / runs.MANIFEST).write_text(json.dumps({"app": "ptb", "preset": "thomas", "config": {"style": "thomas"}}))
    parsed_flags.preset, parsed_flags.mode = "thomas", "generate"  # no --prompt: ptb_thomas's main answers 1
    assert ptb.main(["prog"]) == 1
    assert parsed_flags.run_dir == os.path.join("checkpoints", "ptb", "thomas")
    parsed_flags.run_dir = None
    (old / runs.MANIFEST).unlink()  # no earlier run: the new app's own default
    assert ptb.main(["prog"]) == 1 and parsed_flags.run_dir is None


# --- switching the path of a run (block / basic / fused share one checkpoint layout) ---------------------------
def test_a_run_resumes_on_another_path_with_its_own_variables_and_the_same_numbers(corpus, tmp_path):
    """A block run resumed on fused for epoch 2, then on block again for epoch 3: every epoch's numbers equal
    those of the run trained on block throughout (TINY has no dropout, so no random op differs between the
    graphs), the checkpoints keep the run's variable names, the manifest keeps the run's cell, each curve row names
    the path that trained it, and the run tests as before."""
    config = dataclasses.replace(TINY, rnn_mode="block", epochs=3)
    assert config.keep_prob == 1.0
    ptb.train(corpus, tmp_path / "same", config, seed=4, max_epochs=1, log=_quiet)
    shutil.copytree(tmp_path / "same", tmp_path / "switched")
    names_before = sorted(name for name, _ in tf1.train.list_variables(str(tmp_path / "same" / "model.ckpt-1")))
    same = ptb.train(corpus, tmp_path / "same", config, seed=4, log=_quiet)
    ptb.train(corpus, tmp_path / "switched", config, seed=4, max_epochs=2, rnn_mode="fused", log=_quiet)
    switched = ptb.train(corpus, tmp_path / "switched", config, seed=4, rnn_mode="block", log=_quiet)
    assert switched["finished"] and switched["config"].layout is None  # block again: the run's own path
    for epoch in (1, 2):
        for key in ("train_perplexity", "valid_perplexity"):
            assert switched["curve"][epoch][key] == pytest.approx(same["curve"][epoch][key], rel=1e-5)
    assert [row["cell"] for row in switched["curve"]] == ["block", "fused", "block"]
    manifest = runs.read_manifest(tmp_path / "switched")
    assert manifest["cell"] == manifest["config"]["rnn_mode"] == "block" and "layout" not in manifest["config"]
    for epoch in (2, 3):
        names = sorted(name for name, _ in tf1.train.list_variables(str(tmp_path / "switched" / f"model.ckpt-{epoch}")))
        assert names == names_before
    assert any(f"/{ptb_common.cell_scope_name('block', 'official')}/kernel" in name for name in names_before)
    assert ptb_common.cell_scope_name("fused", "official") == "basic_lstm_cell"  # what fused names on its own
    tested = ptb.test(corpus, tmp_path / "switched", fast=True, log=_quiet)["test_perplexity"]
    assert tested == pytest.approx(ptb.test(corpus, tmp_path / "same", fast=True, log=_quiet)["test_perplexity"],
                                   rel=1e-5)


def test_native_ops_are_an_option_of_the_fused_path_only(tmp_path, monkeypatch, capsys):
    """reproduce's native option (scripts/reproduce.py --native_lstm) runs fused's recurrence: on another path it is
    refused before anything is read or trained, by ptb.reproduce and by the script's parser."""
    monkeypatch.setitem(fast_lstm.OPTIONS, "native", False)
    for cell in (None, "basic", "block"):
        with pytest.raises(ValueError, match="they need cell=fused"):
            ptb.reproduce(tmp_path / "run", "test", seed=1, data_dir=tmp_path / "no-data", cell=cell, native=True)
    assert not fast_lstm.OPTIONS["native"] and not (tmp_path / "run").exists()
    sys.path.insert(0, str(REPO / "scripts"))
    import reproduce
    for argv in (["ptb", "--native_lstm"], ["ptb", "--cell=basic", "--native_lstm"], ["imdb", "--native_lstm"]):
        with pytest.raises(SystemExit) as exit_:
            reproduce.main(argv + [f"--run_dir={tmp_path / 'run'}"])
        assert exit_.value.code == 2 and "--native_lstm is for ptb with --cell=fused" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_a_reproduction_resumed_on_the_native_ops_records_them_and_restores_the_option(corpus, tmp_path,
                                                                                       monkeypatch):
    """reproduce(native=True) trains the fused path on the native ops for that call only: the epochs it trained are
    recorded as fused-native (the results' path ranges), the checkpoint and manifest stay fused's, and the option
    is off again afterwards."""
    need_native_ops()
    monkeypatch.setitem(fast_lstm.OPTIONS, "native", False)
    monkeypatch.setitem(ptb.PRESETS, "small", dataclasses.replace(TINY, epochs=2))
    monkeypatch.setattr(ptb.ptb_data, "locate", lambda data_dir=None: corpus)
    ptb.reproduce(tmp_path, "small", seed=1, max_epochs=1, cell="fused")
    manifest, curve, final, _ = ptb.reproduce(tmp_path, "small", seed=1, cell="fused", native=True)
    assert not fast_lstm.OPTIONS["native"]
    assert [row["cell"] for row in curve] == ["fused", fast_lstm.NATIVE_PATH] and manifest["cell"] == "fused"
    assert report.cell_ranges(curve, manifest["cell"]) == [
        {"cell": "fused", "first_epoch": 1, "last_epoch": 1},
        {"cell": fast_lstm.NATIVE_PATH, "first_epoch": 2, "last_epoch": 2}]
    assert final["test_perplexity"] > 1


def test_reporting_a_complete_run_again_reuses_its_recorded_test_of_the_same_checkpoint_bytes(corpus, tmp_path,
                                                                                            monkeypatch):
    """reproduce.py --report_only on a complete run reports the test that report.json records, with that test's own
    time, when it is a test of the same protocol on the newest checkpoint's exact bytes (sha256); another protocol,
    or other weights under the same checkpoint name, are tested again."""
    monkeypatch.setitem(ptb.PRESETS, "small", dataclasses.replace(TINY, epochs=1))
    monkeypatch.setattr(ptb.ptb_data, "locate", lambda data_dir=None: corpus)
    _, _, first, _ = ptb.reproduce(tmp_path / "run", "small", seed=1)
    recorded = runs.read_json(tmp_path / "run", ptb_common.REPORT)
    assert recorded["checkpoint_sha256"] == ptb_common.checkpoint_files(recorded["checkpoint"]) != {}
    tested, real_test = [], ptb.test
    monkeypatch.setattr(ptb, "test", lambda *a, **k: tested.append(k.get("fast")) or real_test(*a, **k))
    _, _, again, seconds = ptb.reproduce(tmp_path / "run", "small", seed=1, train_run=False)
    assert tested == [] and again == first and seconds == recorded["test_seconds"]
    _, _, fast, _ = ptb.reproduce(tmp_path / "run", "small", seed=1, train_run=False, fast_test=True)
    assert tested == [True] and fast["test_perplexity"] == pytest.approx(first["test_perplexity"], rel=1e-5)
    ptb.reproduce(tmp_path / "run", "small", seed=1, train_run=False)  # the fast test's report is not the original's
    assert tested == [True, False]
    # another run's weights copied in under the same checkpoint name: tested again, and its number reported
    _, _, other, _ = ptb.reproduce(tmp_path / "other", "small", seed=2)
    for path in (tmp_path / "other").glob("model.ckpt-1.*"):
        shutil.copyfile(path, tmp_path / "run" / path.name)
    del tested[:]
    _, _, swapped, _ = ptb.reproduce(tmp_path / "run", "small", seed=1, train_run=False)
    assert tested == [False] and swapped["test_perplexity"] == other["test_perplexity"]
    assert swapped["test_perplexity"] != first["test_perplexity"]
    (tmp_path / "run" / ptb_common.REPORT).write_text("{ damaged")  # a damaged report is not reused either
    ptb.reproduce(tmp_path / "run", "small", seed=1, train_run=False)
    assert tested == [False, False]


def test_a_thomas_run_carried_after_his_test_epoch_keeps_his_checkpoint(corpus, tmp_path):
    """Carried to another machine after his test epoch, a Thomas run still holds the checkpoint his test restores
    (stored once: at that epoch it has the newest checkpoint's bytes), resumes there, and his test gives the same
    numbers from it as on the machine that wrote it, before and after the resumed epochs."""
    config = dataclasses.replace(TINY_THOMAS, epochs=3, test_epoch=1)
    ptb_thomas.train(corpus, tmp_path / "run", config, seed=1, max_epochs=1, log=_quiet)
    here = ptb_thomas.test(corpus, tmp_path / "run", log=_quiet)
    assert here["checkpoint"].endswith(f"{ptb_thomas.THOMAS_NAME}-0")
    assert carry.pack_run(tmp_path / "run", tmp_path / "packed") == 1
    record = json.loads((tmp_path / "packed" / carry.CARRIED).read_text())
    kept = f"{ptb_thomas.THOMAS_NAME}-0.data-00000-of-00001"
    assert record["files"][kept]["same_as"] == "model.ckpt-1.data-00000-of-00001"  # stored once
    assert ptb_thomas.THOMAS_STATE_FILE in record["files"]
    carry.unpack_run(tmp_path / "packed", tmp_path / "moved")
    shutil.rmtree(tmp_path / "run")  # the first machine is gone
    there = ptb_thomas.test(corpus, tmp_path / "moved", log=_quiet)
    assert there["checkpoint"] == str(tmp_path / "moved" / f"{ptb_thomas.THOMAS_NAME}-0")
    for key in ("thomas_accuracy", "test_perplexity", "test_accuracy", "sample"):
        assert there[key] == here[key], key
    resumed = ptb_thomas.train(corpus, tmp_path / "moved", config, seed=1, log=_quiet)
    assert [row["epoch"] for row in resumed["curve"]] == [1, 2, 3]
    after = ptb_thomas.test(corpus, tmp_path / "moved", log=_quiet)
    assert after["thomas_accuracy"] == here["thomas_accuracy"] and after["sample"] == here["sample"]


def test_a_thomas_run_carried_past_his_test_epoch_leaves_his_tested_checkpoint_out(corpus, tmp_path, monkeypatch,
                                                                                    capsys):
    """Past his test epoch his checkpoint and the newest one differ, so a pack holding both would be twice the size.
    Once his test is recorded (thomas_test.json, with the checkpoint's sha256), the pack leaves his checkpoint out
    and says so; on the next machine the run resumes, and the reproduction reports his recorded test, the same
    numbers as before the move, beside the last epoch's."""
    monkeypatch.setitem(ptb_thomas.PRESETS, "thomas", dataclasses.replace(TINY_THOMAS, epochs=4, test_epoch=1))
    monkeypatch.setattr(ptb.ptb_data, "locate", lambda data_dir=None: corpus)
    run = tmp_path / "run"
    _, _, before, _ = ptb.reproduce(run, "thomas", seed=1, max_epochs=2)  # his test at epoch index 0, recorded
    his = f"{ptb_thomas.THOMAS_NAME}-0"
    assert before["test_checkpoint"] == his and (run / ptb_thomas.HIS_TEST).exists()
    assert carry.pack_run(run, tmp_path / "packed") == 2
    record = json.loads((tmp_path / "packed" / carry.CARRIED).read_text())
    assert record["left_out"]["files"] == sorted([f"{his}.data-00000-of-00001", f"{his}.index",
                                                  ptb_thomas.THOMAS_STATE_FILE])
    assert his in record["left_out"]["why"] and not any(name.startswith(his) for name in record["files"])
    assert ptb_thomas.HIS_TEST in record["files"]
    carry.unpack_run(tmp_path / "packed", tmp_path / "moved")
    shutil.rmtree(run)  # the first machine is gone
    capsys.readouterr()
    recorded_seconds = json.loads((tmp_path / "moved" / ptb_thomas.HIS_TEST).read_text())["report"]["test_seconds"]
    _, curve, done, seconds = ptb.reproduce(tmp_path / "moved", "thomas", seed=1)
    out = capsys.readouterr().out
    assert seconds == recorded_seconds  # his test's own wall time, not the lookup's
    assert len(curve) == 4 and done["last_epoch"]["epoch"] == 4
    for key in ("test_accuracy", "full_test_perplexity", "full_test_accuracy", "sample", "test_checkpoint"):
        assert done[key] == before[key], key
    assert done["last_epoch"]["test_checkpoint"] != his
    assert runs.read_json(tmp_path / "moved", "report.json")["thomas_accuracy"] == before["test_accuracy"]
    assert f"{his} was not carried here: its test recorded in {tmp_path / 'moved' / ptb_thomas.HIS_TEST} is used" \
        in out
    # a record that does not match the checkpoint on disk leaves nothing out
    other = tmp_path / "other"
    ptb_thomas.train(corpus, other, dataclasses.replace(TINY_THOMAS, epochs=4, test_epoch=1), seed=1, max_epochs=2,
                     log=_quiet)
    ptb_thomas.test(corpus, other, log=_quiet)
    recorded = json.loads((other / ptb_thomas.HIS_TEST).read_text())
    recorded["sha256"][f"{his}.index"] = "0" * 64
    (other / ptb_thomas.HIS_TEST).write_text(json.dumps(recorded))
    carry.pack_run(other, tmp_path / "packed-other")
    assert "left_out" not in json.loads((tmp_path / "packed-other" / carry.CARRIED).read_text())
    # nor a run whose newest checkpoint is not yet past his epoch (a resume would write his checkpoint again)
    early = tmp_path / "early"
    ptb_thomas.train(corpus, early, dataclasses.replace(TINY_THOMAS, epochs=4, test_epoch=2), seed=1, max_epochs=2,
                     log=_quiet)
    ptb_thomas.test(corpus, early, log=_quiet)
    for f in early.glob("model.ckpt-2.*"):
        f.unlink()  # killed between his checkpoint's save and the epoch's
    assert ptb_thomas.carry_skip(early, "model.ckpt-1") == ([], None)


def test_his_test_without_his_checkpoint_or_its_record_is_a_clear_error(corpus, tmp_path):
    ptb_thomas.train(corpus, tmp_path, dataclasses.replace(TINY_THOMAS, epochs=4, test_epoch=3), seed=1,
                     max_epochs=1, log=_quiet)
    with pytest.raises(FileNotFoundError, match="holds neither his test checkpoint .* nor a recorded test of it"):
        ptb_thomas.his_test(corpus, tmp_path, log=_quiet)


def test_a_path_switch_changes_nothing_else_of_the_config(corpus, tmp_path):
    """Only the rnn_mode may differ: another hidden size on resume is still refused by name."""
    ptb.train(corpus, tmp_path, dataclasses.replace(TINY, rnn_mode="block"), seed=4, max_epochs=1, log=_quiet)
    other = dataclasses.replace(TINY, rnn_mode="fused", hidden_size=8)
    with pytest.raises(runs.ManifestMismatchError, match="hidden_size"):
        ptb.train(corpus, tmp_path, other, seed=4, log=_quiet)
    assert ptb_common.resume_on(other, None) is other  # a new run: nothing to switch
    with pytest.raises(ValueError, match="layout"):
        dataclasses.replace(TINY, layout="cudnn")


def test_ptb_speed_profile_sums_the_traced_op_time_by_op_type(corpus):
    """scripts/ptb_speed.py --profile: the traced steps' op time by op type, forward and backward apart (what
    docs/cells.md's bfloat16 analysis reads); a step's GEMMs appear in both parts and the parts sum to the total."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("ptb_speed", REPO / "scripts" / "ptb_speed.py")
    ptb_speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ptb_speed)
    train, valid, _, _ = ptb_data.load_raw(*corpus)
    seconds, profile = ptb_speed.time_training(TINY, train, valid, steps=2, warmup=1, profile=2)
    assert seconds > 0 and profile["traced_steps"] == 2
    # every op type (at this tiny size the forward GEMMs need not be among the top 15: on an Intel Xeon they were not)
    ops = profile["ops_ms"]
    assert any(k.endswith("(forward)") and "MatMul" in k for k in ops), ops
    assert any(k.endswith("(backward)") and "MatMul" in k for k in ops), ops
    assert all(v >= 0 for v in ops.values())
    assert sum(ops.values()) == pytest.approx(profile["op_time_total_ms"], abs=0.05 + 0.0005 * len(ops))
    top = profile["top_ops_ms"]
    assert len(top) == min(15, len(ops)) and list(top) == list(ops)[:len(top)]  # the largest, largest first
    assert ptb_speed.time_training(TINY, train, valid, steps=2, warmup=1)[1] is None  # no tracing unless asked
