"""The StockTwits app: graph, training, checkpoints, resume, manifest, predict, quirks."""

import dataclasses
import json
import os
import pathlib
import signal
import subprocess
import sys

import numpy as np
import pytest

from legacy_lstm import carry, runs, stocktwits
from legacy_lstm.compat import tf, tf1

from stocktwits_fixtures import QUICK, SMALL, write_messages

REPO = pathlib.Path(__file__).resolve().parents[1]


def _quiet(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    return write_messages(tmp_path_factory.mktemp("st") / "StockTwits_SPY_Sentiment_2017.gz")


@pytest.fixture(scope="module")
def trained(small_data, tmp_path_factory):
    """One seeded 3-epoch run on the small data, shared by the tests that only read it."""
    run_dir = tmp_path_factory.mktemp("run")
    result = stocktwits.train(small_data, run_dir, SMALL, QUICK, split_seed=3, seed=7, log=_quiet)
    return run_dir, result


# --- the app's data path (load_data: what train/test/the quirk flags use) ----------------------------------
def test_load_data_on_the_real_data_gives_the_published_shapes(stocktwits_path):
    data = stocktwits.load_data(stocktwits_path, stocktwits.PRESETS["hoffman"], stocktwits.FAITHFUL, split_seed=1)
    assert data.num_records == 96967 and len(data.vocab) + 1 == 31981 and data.seq_len == 244
    assert [s.x.shape for s in (data.train, data.val, data.test)] == [(77572, 244), (9697, 244), (9697, 244)]
    assert [len(s.y) for s in (data.train, data.val, data.test)] == [77572, 9697, 9697]
    auto = stocktwits.load_data(stocktwits_path, stocktwits.PRESETS["hoffman"],
                                stocktwits.Quirks(seq_len="auto", vocab_from="train"), split_seed=1)
    assert auto.seq_len == 39 and auto.train.x.shape == (77572, 39)
    assert 0 < len(auto.vocab) < len(data.vocab)  # words seen only in validation/test are left out
    # the same split: the auto rows are the 244 rows without their 205 leading zero columns (ids differ by vocab)
    assert ((data.train.x[:, -39:] > 0) == (auto.train.x > 0)).all() and (data.train.y == auto.train.y).all()


def test_vocab_from_train_holds_exactly_the_training_words(tmp_path):
    from legacy_lstm.data import stocktwits as st_data
    path = write_messages(tmp_path / "st.gz", n=200, unique_words=True)
    texts = [st_data.preprocess(m) for m in st_data.read_records(path)[0]]
    quirks = stocktwits.Quirks(seq_len=20, vocab_from="train")  # 20: no message is cut
    data = stocktwits.load_data(path, SMALL, quirks, split_seed=3)
    reverse = {i: w for w, i in data.vocab.items()}
    train_words = {reverse[i] for row in data.train.x for i in row if i}
    assert train_words == set(data.vocab)  # every vocab word occurs in the training split, and only those
    held_out = {w for w in " ".join(texts).split() if w.startswith("only")} - train_words
    assert len(held_out) == 40  # the 10% + 10% messages' own words
    everything = stocktwits.load_data(path, SMALL, dataclasses.replace(quirks, vocab_from="all"), split_seed=3)
    assert set(everything.vocab) == set(" ".join(texts).split()) == set(data.vocab) | held_out
    # unknown words are dropped when encoding: a held-out message keeps only its shared words
    assert (data.val.x > 0).sum() == (everything.val.x > 0).sum() - 20
    with pytest.raises(ValueError, match="vocab_from must be 'all' or 'train'"):
        stocktwits.load_data(path, SMALL, dataclasses.replace(quirks, vocab_from="val"), split_seed=3)


# --- graph ------------------------------------------------------------------------------------------------
PUBLISHED_VARIABLES = [
    ("Variable", [31981, 300]),
    ("rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel", [428, 512]),
    ("rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias", [512]),
    ("rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel", [192, 256]),
    ("rnn/multi_rnn_cell/cell_1/basic_lstm_cell/bias", [256]),
    ("fully_connected/weights", [64, 1]),
    ("fully_connected/biases", [1]),
]


def test_published_graph_variable_names_and_shapes():
    with tf.Graph().as_default() as graph:
        model = stocktwits.build_graph(31981, stocktwits.PRESETS["hoffman"])
        names = [(v.op.name, v.shape.as_list()) for v in tf1.global_variables()]
        trainable = [(v.op.name, v.shape.as_list()) for v in tf1.trainable_variables()]
        assert trainable == PUBLISHED_VARIABLES
        slots = [(f"{n}/Adadelta{s}", shape) for n, shape in PUBLISHED_VARIABLES for s in ("", "_1")]
        assert sorted(names) == sorted(PUBLISHED_VARIABLES + slots)
        for name in ("inputs", "labels", "keep_prob"):
            assert graph.get_tensor_by_name(f"{name}:0").op.type == "Placeholder"
        assert model.inputs.dtype == tf.int32 and model.labels.dtype == tf.int32
        # zero_state(256) bakes the batch size into the graph, as in the notebook
        assert [s.c.shape.as_list() for s in model.initial_state] == [[256, 128], [256, 64]]


# --- training -----------------------------------------------------------------------------------------------
def test_short_training_lowers_the_loss_and_learns(trained):
    _, result = trained
    curve = result["curve"]
    assert [row["epoch"] for row in curve] == [1, 2, 3]
    assert curve[-1]["epoch_train_loss"] < curve[0]["epoch_train_loss"] - 0.02
    assert curve[-1]["val_acc"] > 0.8  # the small data is separable by its sentiment words


def test_seeded_training_is_repeatable(small_data, tmp_path, trained):
    _, first = trained
    again = stocktwits.train(small_data, tmp_path, SMALL, QUICK, split_seed=3, seed=7, log=_quiet)
    assert len(first["curve"]) == len(again["curve"]) == 3
    for a, b in zip(first["curve"], again["curve"]):
        for key in ("train_loss", "train_acc", "val_acc", "epoch_train_loss"):
            assert a[key] == pytest.approx(b[key], abs=1e-6), key


def test_eval_off_by_one_quirk(small_data, tmp_path):
    """Faithful: validation after batch n-1 (printed as n/n); switched off: after batch n."""
    lines = []
    cfg = dataclasses.replace(SMALL, epochs=1)
    faithful = stocktwits.train(small_data, tmp_path / "a", cfg, QUICK, split_seed=3, seed=1, log=lines.append)
    n = int(480 * 0.8) // 16
    assert faithful["curve"][0]["eval_after_batch"] == n - 1
    assert f"Batch: {n}/{n}..." in lines[0]
    fixed = stocktwits.train(small_data, tmp_path / "b", cfg, dataclasses.replace(QUICK, eval_off_by_one=False),
                             split_seed=3, seed=1, log=_quiet)
    assert fixed["curve"][0]["eval_after_batch"] == n


def test_log_line_format(small_data, tmp_path):
    lines = []
    cfg = dataclasses.replace(SMALL, epochs=1)
    stocktwits.train(small_data, tmp_path, cfg, QUICK, split_seed=3, seed=1, log=lines.append)
    import re
    assert re.fullmatch(r"Epoch: 1/1\.\.\. Batch: 24/24\.\.\. Train Loss: \d\.\d{3}\.\.\. "
                        r"Train Accruacy: \d\.\d{3}\.\.\. Val Accuracy: \d\.\d{3}", lines[0]), lines[0]
    # --noaccruacy: the article's spelling
    lines = []
    stocktwits.train(small_data, tmp_path / "article", cfg, QUICK, split_seed=3, seed=1, log=lines.append,
                     accruacy=False)
    assert "... Train Accuracy: " in lines[0] and "Accruacy" not in lines[0], lines[0]


def test_carry_state_changes_what_the_next_batch_sees(trained, small_data):
    """With --carry_state the second batch starts from the first batch's final state, not from zeros."""
    run_dir, _ = trained
    manifest = runs.read_manifest(run_dir)
    data = stocktwits.load_data(small_data, SMALL, QUICK, manifest["split_seed"])
    with tf.Graph().as_default():
        model = stocktwits.build_graph(len(data.vocab) + 1, SMALL)
        run = runs.Run(run_dir, manifest)
        with tf1.Session() as sess:
            run.restore(sess)
            carried = stocktwits.evaluate(sess, model, data.val, SMALL.batch_size, carry_state=True)
            reset = stocktwits.evaluate(sess, model, data.val, SMALL.batch_size, carry_state=False)
            x0, x1 = data.val.x[:16], data.val.x[16:32]
            feed = {model.inputs: x0, model.keep_prob: 1.0}
            state = sess.run(model.final_state, feed)
            p_zero = sess.run(model.predictions, {model.inputs: x1, model.keep_prob: 1.0})
            p_carry = sess.run(model.predictions, {model.inputs: x1, model.keep_prob: 1.0,
                                                   **stocktwits._state_feed(model, state)})

            def by_hand(carry):  # rounded predictions against the labels, batch by batch, numpy scoring
                accs, state = [], None
                for start in range(0, len(data.val.x) // 16 * 16, 16):
                    feed = {model.inputs: data.val.x[start:start + 16], model.keep_prob: 1.0}
                    if carry and state is not None:
                        feed.update(stocktwits._state_feed(model, state))
                    probs, state = sess.run([model.predictions, model.final_state], feed)
                    accs.append(np.mean(np.round(probs[:, 0]) == data.val.y[start:start + 16]))
                return float(np.mean(accs))
            hand_carried, hand_reset = by_hand(True), by_hand(False)
    assert np.abs(p_zero - p_carry).max() > 1e-4
    assert carried == pytest.approx(hand_carried, abs=1e-6) and reset == pytest.approx(hand_reset, abs=1e-6)


# --- run directory --------------------------------------------------------------------------------------
def test_run_directory_contents(trained):
    run_dir, result = trained
    run_dir = pathlib.Path(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["split_seed"] == 3 and manifest["seed"] == 7 and manifest["cell"] == "basic"
    assert manifest["quirks"] == {"seq_len": 12, "carry_state": True, "vocab_from": "all", "eval_off_by_one": True}
    assert set(manifest["versions"]) == {"python", "tensorflow", "tf_keras", "numpy"}
    vocab = json.loads((run_dir / "vocab.json").read_text())
    assert runs.vocab_sha256(vocab) == manifest["vocab_sha256"]
    state = (run_dir / "checkpoint").read_text()
    assert str(run_dir) not in state, "checkpoint paths must be relative"
    assert 'model_checkpoint_path: "sentiment.ckpt"' in state
    assert (run_dir / "model.ckpt-3.index").exists() and (run_dir / "sentiment.ckpt.index").exists()
    assert json.loads((run_dir / "curve.json").read_text()) == result["curve"]
    csv_lines = (run_dir / "curve.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,train_loss,train_acc,val_acc") and len(csv_lines) == 4
    for sub in ("train", "validation"):
        assert list((run_dir / sub).glob("events.out.tfevents.*")), sub


def test_save_restore_gives_identical_predictions(small_data, tmp_path):
    data = stocktwits.load_data(small_data, SMALL, QUICK, 3)
    x = data.val.x[:16]
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        model = stocktwits.build_graph(len(data.vocab) + 1, SMALL)
        run = runs.Run(tmp_path, {"app": "t"})
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            sess.run(model.train_op, {model.inputs: data.train.x[:16], model.labels: data.train.y[:16, None],
                                      model.keep_prob: 1.0})
            before = sess.run(model.predictions, {model.inputs: x, model.keep_prob: 1.0})
            run.save_epoch(sess, 1)
    with tf.Graph().as_default():
        tf1.set_random_seed(99)  # different initial values: only the restore can make them equal
        model = stocktwits.build_graph(len(data.vocab) + 1, SMALL)
        run = runs.Run(tmp_path, {"app": "t"})
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            fresh = sess.run(model.predictions, {model.inputs: x, model.keep_prob: 1.0})
            run.restore(sess)
            after = sess.run(model.predictions, {model.inputs: x, model.keep_prob: 1.0})
    np.testing.assert_array_equal(before, after)
    assert np.abs(fresh - before).max() > 0


def test_resume_continues_from_last_finished_epoch(small_data, tmp_path, trained):
    lines = []
    first = stocktwits.train(small_data, tmp_path, SMALL, QUICK, split_seed=3, seed=7, max_epochs=1, log=_quiet)
    assert [r["epoch"] for r in first["curve"]] == [1] and not first["finished"]
    assert not (tmp_path / "sentiment.ckpt.index").exists()
    second = stocktwits.train(small_data, tmp_path, SMALL, QUICK, seed=7, log=lines.append)
    assert lines[0].startswith("Resuming") and "after epoch 1" in lines[0]
    assert [r["epoch"] for r in second["curve"]] == [1, 2, 3] and second["finished"]
    assert second["split_seed"] == 3  # taken from the manifest when not given
    assert second["curve"][0] == first["curve"][0]
    assert (tmp_path / "sentiment.ckpt.index").exists()


def test_a_run_dir_from_before_the_optimizer_and_vocab_size_fields_resumes_and_is_checked(small_data, tmp_path):
    """The manifest records the whole Config; one written before `optimizer` and `vocab_size` existed lacks them and
    ran with their defaults (runs.with_app_defaults): it resumes, and a flag contradicting the default is refused."""
    stocktwits.train(small_data, tmp_path, SMALL, QUICK, split_seed=3, seed=7, max_epochs=1, log=_quiet)
    manifest = runs.read_manifest(tmp_path)
    assert manifest["config"]["optimizer"] == "adadelta" and manifest["config"]["vocab_size"] is None
    del manifest["config"]["optimizer"], manifest["config"]["vocab_size"]
    (tmp_path / runs.MANIFEST).write_text(json.dumps(manifest))
    lines = []
    second = stocktwits.train(small_data, tmp_path, SMALL, QUICK, seed=7, max_epochs=2, log=lines.append)
    assert "after epoch 1" in lines[0] and [r["epoch"] for r in second["curve"]] == [1, 2]
    [prediction] = stocktwits.predict(tmp_path, ["calls moon rally"])  # predict (and test) build its Config
    assert 0 <= prediction["probability"] <= 1
    stocktwits._check_config_flags(tmp_path, {"optimizer": "adadelta"})  # the default it ran with: fine
    with pytest.raises(runs.ManifestMismatchError, match=r"optimizer=adam \(the run's: adadelta\)"):
        stocktwits._check_config_flags(tmp_path, {"optimizer": "adam"})
    with pytest.raises(runs.ManifestMismatchError, match="config.optimizer: saved 'adadelta', now 'adam'"):
        stocktwits.train(small_data, tmp_path, dataclasses.replace(SMALL, optimizer="adam"), QUICK, seed=7,
                         max_epochs=3, log=_quiet)


def test_resume_keeps_the_runs_seed_and_mode_when_only_the_split_seed_is_given(small_data, tmp_path):
    stocktwits.train(small_data, tmp_path, SMALL, QUICK, split_seed=3, seed=7, max_epochs=1, log=_quiet)
    assert runs.read_manifest(tmp_path)["deterministic"] is True  # seeded: parallel_iterations=1
    lines = []
    second = stocktwits.train(small_data, tmp_path, SMALL, QUICK, split_seed=3, max_epochs=2, log=lines.append)
    assert second["seed"] == 7 and "after epoch 1" in lines[0]  # not an unseeded second sitting
    assert [s["after_epoch"] for s in runs.read_sittings(tmp_path)] == [0, 1]
    fresh = stocktwits.train(small_data, tmp_path / "fast", SMALL, QUICK, split_seed=3, seed=7, max_epochs=1,
                             deterministic=False, log=_quiet)
    assert fresh["seed"] == 7 and runs.read_manifest(tmp_path / "fast")["deterministic"] is False


def test_resume_after_kill_9(small_data, tmp_path):
    """A training killed with SIGKILL resumes from its last checkpointed epoch, not from scratch. The child kills
    itself in the worst place: epoch 3's curve row is written, its checkpoint is not."""
    run_dir = tmp_path / "run"
    data_dir = small_data.parent
    (data_dir / "stocktwits_spy").mkdir(exist_ok=True)
    cmd = [sys.executable, "-c", _KILL_SCRIPT, str(small_data), str(run_dir)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == -signal.SIGKILL, output[-2000:]
    rows_before = json.loads((run_dir / "curve.json").read_text())
    assert [r["epoch"] for r in rows_before] == [1, 2, 3]
    assert not (run_dir / "model.ckpt-3.index").exists()
    lines = []
    result = stocktwits.train(small_data, run_dir, _KILL_CONFIG, QUICK, log=lines.append)
    assert lines[0].startswith(f"Resuming {run_dir} after epoch 2")
    assert [r["epoch"] for r in result["curve"]] == list(range(1, 7))
    assert result["curve"][:2] == rows_before[:2]
    assert result["finished"] and (run_dir / "sentiment.ckpt.index").exists()


_KILL_CONFIG = dataclasses.replace(SMALL, epochs=6)
_KILL_SCRIPT = """
import dataclasses, os, signal, sys
sys.path.insert(0, "tests")
from legacy_lstm import runs, stocktwits
from stocktwits_fixtures import QUICK, SMALL
save_epoch = runs.Run.save_epoch
def save_or_die(self, sess, epoch):
    if epoch == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return save_epoch(self, sess, epoch)
runs.Run.save_epoch = save_or_die
cfg = dataclasses.replace(SMALL, epochs=6)
stocktwits.train(sys.argv[1], sys.argv[2], cfg, QUICK, split_seed=3, seed=5)
"""


def test_manifest_mismatch_names_the_field(small_data, trained):
    run_dir, _ = trained
    with pytest.raises(runs.ManifestMismatchError) as err:
        stocktwits.train(small_data, run_dir, SMALL, stocktwits.Quirks(seq_len=12, carry_state=False),
                         log=_quiet)
    assert "quirks.carry_state: saved True, now False" in str(err.value)
    bigger = dataclasses.replace(SMALL, lstm_sizes=(32, 8))
    with pytest.raises(runs.ManifestMismatchError, match=r"config.lstm_sizes: saved \[16, 8\], now \[32, 8\]"):
        stocktwits.train(small_data, run_dir, bigger, QUICK, log=_quiet)


def test_checkpoint_of_another_shape_is_refused_clearly(small_data, trained, tmp_path):
    run_dir, _ = trained
    with tf.Graph().as_default():
        stocktwits.build_graph(50, dataclasses.replace(SMALL, embed_size=8))
        run = runs.Run(tmp_path, {"app": "other"})
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            with pytest.raises(runs.ManifestMismatchError, match=r"Variable: checkpoint has shape \[\d+, 16\], "
                                                                   r"graph needs \[50, 8\]"):
                run.restore(sess, str(pathlib.Path(run_dir) / "sentiment.ckpt"))


def test_nan_loss_stops_without_saving(small_data, tmp_path):
    bad = dataclasses.replace(SMALL, learning_rate=float("nan"))
    with pytest.raises(runs.NonFiniteLossError, match="epoch 1, batch 2"):
        stocktwits.train(small_data, tmp_path, bad, QUICK, split_seed=3, seed=1, log=_quiet)
    assert not list(tmp_path.glob("model.ckpt-*"))


def test_original_style_checkpoint_restores_for_test(small_data, tmp_path, trained):
    """A checkpoint written by plain TF1-style code (absolute paths, no manifest) evaluates in test mode."""
    run_dir, _ = trained
    manifest = runs.read_manifest(run_dir)
    data = stocktwits.load_data(small_data, SMALL, QUICK, 3)
    with tf.Graph().as_default():
        stocktwits.build_graph(len(data.vocab) + 1, SMALL)
        with tf1.Session() as sess:
            tf1.train.Saver().restore(sess, str(pathlib.Path(run_dir) / "sentiment.ckpt"))
            path = tf1.train.Saver().save(sess, str(tmp_path / "orig" / "sentiment.ckpt"))
    expected = stocktwits.test(small_data, run_dir, log=_quiet)
    got = stocktwits.test(small_data, tmp_path / "no_manifest", checkpoint=path, preset=SMALL, quirks=QUICK,
                          split_seed=manifest["split_seed"], log=_quiet)
    assert got == expected


# --- predict ------------------------------------------------------------------------------------------------
def test_predict_odd_inputs_get_defined_answers(trained):
    run_dir, _ = trained
    texts = ["moon calls buy rally", "puts crash sell dump", "", "zzz qqq xyzzy", "🚀🚀 $SPY ￥",
             "   \t  ", " ".join(["moon"] * 10000)]
    results = stocktwits.predict(run_dir, texts)
    assert [r["text"] for r in results] == texts
    bull, bear, empty, unknown, non_ascii, blank, long = results
    assert bull["label"] == "bullish" and bull["probability"] > 0.5
    assert bear["label"] == "bearish" and bear["probability"] < 0.5
    for r in (empty, unknown, blank):
        assert r["probability"] is None and r["label"] == "unknown"
    # "$SPY" becomes <TICKER>, a known word; the emoji and the yen sign are dropped
    assert non_ascii["known"] == 1 and non_ascii["probability"] is not None
    assert long["truncated"] and long["tokens"] == 10000 and long["label"] == "bullish"


def test_test_mode_refuses_flags_that_contradict_the_run(trained, parsed_flags):
    """Test mode evaluates with the run's own config and quirks; a flag given with another value is an error
    naming it (not silently ignored), a flag given with the run's own value is fine."""
    run_dir, _ = trained
    saved = runs.read_manifest(run_dir)
    parsed_flags.mode, parsed_flags.run_dir = "test", str(run_dir)
    parsed_flags.split_seed, parsed_flags.carry_state = saved["split_seed"] + 1, False
    parsed_flags.data_dir = str(run_dir / "no-data-here")  # the error comes before any data is looked for
    with pytest.raises(runs.ManifestMismatchError) as err:
        stocktwits.main(["prog"])
    assert f"--split_seed={saved['split_seed'] + 1} (the run's: {saved['split_seed']})" in str(err.value)
    assert "--carry_state=False (the run's: True)" in str(err.value) and "--cell" not in str(err.value)
    parsed_flags.split_seed, parsed_flags.carry_state, parsed_flags.cell = saved["split_seed"], True, "basic"
    stocktwits.cli.check_given_flags(run_dir)  # given, with the run's own values: fine


def test_predict_cli_reads_stdin(trained):
    """One message per line, an empty line included; a line that is not UTF-8 (Latin-1 here) is answered too."""
    run_dir, _ = trained
    command = [sys.executable, "-m", "legacy_lstm.stocktwits", "--mode=predict", f"--run_dir={run_dir}"]
    out = subprocess.run(command, input="moon calls buy\n\nputs crash\ncaf\xe9 moon\n".encode("latin-1"),
                         capture_output=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr.decode()
    lines = out.stdout.decode("utf-8").strip("\n").split("\n")
    assert len(lines) == 4
    assert lines[0].split("\t")[1] == "bullish" and "no known words" in lines[1]
    assert lines[2].split("\t")[1] == "bearish"
    assert lines[3].split("\t")[2] == "caf\ufffd moon" and lines[3].split("\t")[1] == "bullish"
    empty = subprocess.run(command, input=b"", capture_output=True, cwd=REPO, timeout=300)
    assert empty.returncode == 1 and empty.stdout == b""
    assert empty.stderr.decode().strip().splitlines()[-1] == \
        "error: No messages: pass them as arguments or one per line on standard input."


def test_predict_cli_messages_after_double_dash_may_start_with_a_dash(trained):
    """``--`` ends the flags (documented), so "-5% puts crash" is a message, not an unknown flag."""
    run_dir, _ = trained
    out = subprocess.run([sys.executable, "-m", "legacy_lstm.stocktwits", "--mode=predict", f"--run_dir={run_dir}",
                          "--", "-5% puts crash", "moon calls buy"], capture_output=True, text=True, cwd=REPO,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip("\n").split("\n")
    assert [line.split("\t")[2] for line in lines] == ["-5% puts crash", "moon calls buy"]
    assert lines[0].split("\t")[1] in ("bullish", "bearish") and lines[1].split("\t")[1] == "bullish"


def test_missing_data_gives_one_clear_error(tmp_path):
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), LEGACY_LSTM_DATA=str(tmp_path / "none"),
               LEGACY_LSTM_OFFLINE="1")  # on a machine with internet the file would otherwise be downloaded
    out = subprocess.run([sys.executable, "-m", "legacy_lstm.stocktwits", "--preset=test",
                          f"--run_dir={tmp_path / 'run'}"], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=300)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "error: Data file stocktwits_spy/StockTwits_SPY_Sentiment_2017.gz not found" in out.stderr
    assert "2764ef980af1af85d2c4d180ced1ce54cf20186b7a07c301304dbd72a5a4eeef" in out.stderr
    assert "downloads are off ($LEGACY_LSTM_OFFLINE is set)" in out.stderr
    assert not (tmp_path / "run").exists()


class _SpySession:
    """Delegates to a real session and records, per run, the values fed for the initial state."""

    def __init__(self, sess, model):
        self.sess, self.fed, self.returned = sess, [], []
        self.state_tensors = tf.nest.flatten(model.initial_state)
        self.final_state = model.final_state

    def run(self, fetches, feed_dict=None, **kwargs):
        self.fed.append([np.copy(feed_dict[t]) for t in self.state_tensors])
        out = self.sess.run(fetches, feed_dict, **kwargs)
        position = next(i for i, f in enumerate(fetches) if f is self.final_state)
        self.returned.append([np.copy(a) for a in tf.nest.flatten(out[position])])
        return out


@pytest.mark.parametrize("carry", [True, False])
def test_training_and_evaluation_loops_feed_the_state_back(small_data, tmp_path, carry):
    quirks = dataclasses.replace(QUICK, carry_state=carry)
    data = stocktwits.load_data(small_data, SMALL, quirks, 3)
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        model = stocktwits.build_graph(len(data.vocab) + 1, SMALL)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            spy = _SpySession(sess, model)
            stocktwits.run_epoch(spy, model, data, SMALL, quirks, 1, 1, log=_quiet)
    n_train = len(data.train.x) // SMALL.batch_size
    n_val = len(data.val.x) // SMALL.batch_size
    train_runs = list(range(n_train - 1)) + [n_train - 1 + n_val]  # validation runs after batch n-1
    # the first batch of the epoch and of the validation pass start from zeros
    for index in (0, n_train - 1):
        assert all(not a.any() for a in spy.fed[index])
    for runs_ in (train_runs, list(range(n_train - 1, n_train - 1 + n_val))):
        for prev, nxt in zip(runs_, runs_[1:]):
            fed, returned = spy.fed[nxt], spy.returned[prev]
            if carry:
                assert all(np.array_equal(f, r) for f, r in zip(fed, returned))
            else:
                assert all(not f.any() for f in fed)


def test_resume_with_a_relative_run_dir(small_data, tmp_path, monkeypatch):
    """The CLI's default run dir is relative (checkpoints/<app>/<preset>): resume must work with it."""
    monkeypatch.chdir(tmp_path)
    first = stocktwits.train(small_data, "checkpoints/st/small", SMALL, QUICK, split_seed=3, seed=7, max_epochs=2,
                             log=_quiet)
    lines = []
    second = stocktwits.train(small_data, "checkpoints/st/small", SMALL, QUICK, seed=7, log=lines.append)
    assert lines[0].startswith("Resuming") and "after epoch 2" in lines[0]
    assert second["curve"][:2] == first["curve"] and len(second["curve"]) == 3
    state = (tmp_path / "checkpoints/st/small/checkpoint").read_text()
    assert str(tmp_path) not in state and 'model_checkpoint_path: "sentiment.ckpt"' in state


def test_rerun_of_a_finished_run_writes_a_missing_final_checkpoint(small_data, trained, tmp_path):
    import shutil
    run_dir, result = trained
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for f in copy.glob("sentiment.ckpt.*"):
        f.unlink()
    lines = []
    again = stocktwits.train(small_data, copy, SMALL, QUICK, seed=7, log=lines.append)
    assert "after epoch 3" in lines[0] and len(lines) == 1  # nothing retrained
    assert again["curve"] == result["curve"]
    assert (copy / "sentiment.ckpt.index").exists()


def test_reproduce_script_resumes_with_the_runs_seed_and_names_other_presets(small_data, tmp_path, monkeypatch,
                                                                             reproduce_script, capsys):
    """scripts/reproduce.py stocktwits --preset=test: results named stocktwits-test (never over the committed
    stocktwits.json), a resumed sitting keeps the run's seed (also on another machine, the run carried there),
    every sitting is recorded, the test runs at the end."""
    from legacy_lstm.data import download
    monkeypatch.setattr(download, "locate", lambda spec, data_dir=None: small_data)
    run_dir, results = tmp_path / "run", tmp_path / "results"
    argv = ["reproduce.py", "stocktwits", "--preset=test", f"--run_dir={run_dir}", f"--results_dir={results}"]
    monkeypatch.setattr(sys, "argv", argv + ["--seed=2017", "--split_seed=3", "--max_epochs=1"])
    reproduce_script.main()
    assert not (results / "stocktwits.json").exists()
    partial = json.loads((results / "stocktwits-test.json").read_text())
    assert partial["epochs_done"] == 1 and not partial["complete"] and partial["final"]["test_acc"] is None
    # a report of that run dir without --preset is still named by the run's own preset
    monkeypatch.setattr(sys, "argv", ["reproduce.py", "stocktwits", "--report_only", f"--run_dir={run_dir}",
                                      f"--results_dir={results}"])
    reproduce_script.main()
    assert not (results / "stocktwits.json").exists()
    # the second sitting is on "another machine": the run was carried there (packed into the carried folder,
    # which the same command unpacks into its absent run dir); the run dir's seed (2017) wins when resuming
    monkeypatch.setattr(reproduce_script, "CARRIED_DIR", tmp_path / "carried")
    carry.pack_run(run_dir, tmp_path / "carried" / "run")
    moved = tmp_path / "elsewhere" / "run"
    monkeypatch.setattr(sys, "argv", [a.replace(str(run_dir), str(moved)) for a in argv] + ["--seed=9"])
    capsys.readouterr()
    reproduce_script.main()
    assert f"unpacked the carried run {tmp_path / 'carried' / 'run'} into {moved} (resumes after epoch 1)" \
        in capsys.readouterr().out
    doc = json.loads((results / "stocktwits-test.json").read_text())
    assert doc["seed"] == 2017 and doc["split_seed"] == 3 and doc["complete"] and doc["epochs_done"] == 2
    assert 0.0 <= doc["final"]["test_acc"] <= 1.0 and doc["test_wall_seconds"] is not None
    assert doc["final"]["test_acc"] == pytest.approx(stocktwits.test(small_data, moved, log=_quiet))
    assert [s["after_epoch"] for s in doc["sittings"]] == [0, 1]
    assert "| stocktwits-test | 2/2 epochs |" in (results / "README.md").read_text()
