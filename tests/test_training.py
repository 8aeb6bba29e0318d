"""The one training driver (legacy_lstm/training.py): resume, the seed rule, the NaN guard, the final checkpoint,
the progress display and opening a trained run."""

import io
import json
import math

import numpy as np
import pytest

from legacy_lstm import essentials, runs, training
from legacy_lstm.compat import tf, tf1


def _quiet(*args, **kwargs):
    pass


class CountingLoop(training.Loop):
    """A one-variable model: each epoch adds ``epoch`` to it (through a training op) over three batches."""
    final_name = "final.ckpt"

    def __init__(self, nan_at=None, nan_weights_at=None):
        self.nan_at, self.nan_weights_at = nan_at, nan_weights_at
        self.started = []

    def build(self):
        self.w = tf1.get_variable("w", [], initializer=tf1.zeros_initializer())
        self.add = tf1.placeholder(tf.float32, [])
        self.op = tf1.assign_add(self.w, self.add)
        return self.w

    def start(self, sitting):
        self.started.append(sitting.done)

    def epoch(self, sitting, epoch):
        with sitting.batches(3):
            for batch in range(3):
                loss_before = float(sitting.sess.run(self.w))  # as the tutorials' losses: before the update
                poisoned = (epoch, batch) == (self.nan_weights_at, 2)  # the last step's update goes bad
                value = sitting.sess.run(self.op, {self.add: math.nan if poisoned else epoch / 3})
                loss = math.nan if (epoch, batch) == self.nan_at else (loss_before if poisoned else float(value))
                training.check_finite(loss, f"epoch {epoch}, batch {batch}")
                sitting.tick()
        sitting.log(f"epoch {epoch} done")
        return {"epoch": epoch, "w": float(sitting.sess.run(self.w))}


def _train(run_dir, loop=None, **kwargs):
    manifest = {"app": "counting", "preset": "test", "config": {"epochs": 3}, "seed": kwargs.get("seed")}
    return training.train(loop or CountingLoop(), run_dir, manifest, 3, log=kwargs.pop("log", _quiet), **kwargs)


def test_resume_continues_from_the_last_checkpoint_and_writes_the_final_one(tmp_path):
    lines = []
    first = _train(tmp_path, max_epochs=2, log=lines.append)
    assert [r["epoch"] for r in first["curve"]] == [1, 2] and not first["finished"]
    assert not (tmp_path / "final.ckpt.index").exists()
    loop = CountingLoop()
    second = _train(tmp_path, loop, log=lines.append)
    assert loop.started == [2]
    assert second["done_before"] == 2 and second["finished"]
    assert [r["w"] for r in second["curve"]] == pytest.approx([1.0, 3.0, 6.0])  # 1 + 2 + 3: w was restored
    assert f"Resuming {tmp_path} after epoch 2." in lines
    assert (tmp_path / "final.ckpt.index").exists()
    assert json.loads((tmp_path / runs.CURVE_JSON).read_text()) == second["curve"]
    again = _train(tmp_path)  # a complete run trains nothing more
    assert again["done_before"] == 3 and again["curve"] == second["curve"]


def test_a_nan_loss_stops_before_the_epoch_is_saved(tmp_path):
    with pytest.raises(runs.NonFiniteLossError, match="epoch 2, batch 1"):
        _train(tmp_path, CountingLoop(nan_at=(2, 1)))
    assert sorted(runs.epoch_checkpoints(tmp_path)) == [1]
    assert [r["epoch"] for r in runs.read_json(tmp_path, runs.CURVE_JSON)] == [1]
    resumed = _train(tmp_path)  # the interrupted epoch is trained again from the last good checkpoint
    assert resumed["done_before"] == 1 and [r["w"] for r in resumed["curve"]] == pytest.approx([1.0, 3.0, 6.0])


def test_nan_weights_from_an_epochs_last_step_are_not_saved(tmp_path):
    """The last step of epoch 2 turns the weights NaN while its loss (computed before the update) is finite: the
    epoch is not saved, the error names the variable, and the run resumes from epoch 1's checkpoint."""
    with pytest.raises(runs.NonFiniteLossError, match=r"after epoch 2 the weights hold NaN or inf \(w\)"):
        _train(tmp_path, CountingLoop(nan_weights_at=2))
    assert sorted(runs.epoch_checkpoints(tmp_path)) == [1]
    assert [r["epoch"] for r in runs.read_json(tmp_path, runs.CURVE_JSON)] == [1]
    resumed = _train(tmp_path)
    assert resumed["done_before"] == 1 and [r["w"] for r in resumed["curve"]] == pytest.approx([1.0, 3.0, 6.0])


def test_check_finite_weights_reads_every_float_kind_and_skips_integers():
    graph = tf.Graph()
    with graph.as_default():
        ok = tf1.get_variable("ok", initializer=np.ones(3, np.float32))
        half = tf1.get_variable("half", initializer=np.array([1.0, np.inf], np.float16))
        brain = tf1.get_variable("brain", initializer=tf.constant([np.nan, 1.0], tf.bfloat16))
        step = tf1.train.get_or_create_global_step()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            training.check_finite_weights(sess, [ok, step], 1)
            with pytest.raises(runs.NonFiniteLossError, match=r"\(half, brain\)"):
                training.check_finite_weights(sess, [ok, half, brain, step], 1)


class StopFileLoop(CountingLoop):
    """A user touches the run directory's STOP file while epoch ``at`` trains."""

    def __init__(self, run_dir, at):
        super().__init__()
        self.run_dir, self.at = run_dir, at

    def epoch(self, sitting, epoch):
        if epoch == self.at:
            (self.run_dir / runs.STOP).touch()
        return super().epoch(sitting, epoch)


def test_a_stop_file_ends_the_sitting_after_the_epoch_in_progress(tmp_path):
    lines = []
    stopped = _train(tmp_path, StopFileLoop(tmp_path, at=2), log=lines.append)
    assert [r["epoch"] for r in stopped["curve"]] == [1, 2] and not stopped["finished"]
    assert sorted(runs.epoch_checkpoints(tmp_path)) == [1, 2]  # the epoch in progress finished and was saved
    assert not (tmp_path / runs.STOP).exists() and not (tmp_path / "final.ckpt.index").exists()
    assert f"{tmp_path / runs.STOP} found: stopped before epoch 3; the same command resumes the run after epoch 2." \
        in lines
    resumed = _train(tmp_path)  # the file was removed: the same command goes on
    assert resumed["done_before"] == 2 and resumed["finished"]
    assert [r["w"] for r in resumed["curve"]] == pytest.approx([1.0, 3.0, 6.0])


def test_a_stop_file_made_during_a_sittings_last_epoch_does_not_stop_the_next_sitting(tmp_path):
    """The sitting ends after its last epoch anyway (--max_epochs); the file is removed, saying so, so that the
    next sitting trains instead of stopping before its first epoch."""
    lines = []
    first = _train(tmp_path, StopFileLoop(tmp_path, at=2), max_epochs=2, log=lines.append)
    assert [r["epoch"] for r in first["curve"]] == [1, 2] and not (tmp_path / runs.STOP).exists()
    assert f"{tmp_path / runs.STOP} found after the sitting's last epoch: the sitting ended anyway; removed." in lines
    second = _train(tmp_path)
    assert second["done_before"] == 2 and second["finished"] and [r["epoch"] for r in second["curve"]] == [1, 2, 3]


def test_a_stop_file_left_before_a_sitting_trains_nothing_and_is_consumed(tmp_path):
    (tmp_path / runs.STOP).touch()
    first = _train(tmp_path)
    assert first["curve"] == [] and not first["finished"] and not (tmp_path / runs.STOP).exists()
    assert _train(tmp_path)["finished"]


class Clock:
    """training's clock, advanced by hand: an epoch of ``ClockLoop`` takes ``epoch_seconds``."""

    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def time(self):
        return self.now


class ClockLoop(CountingLoop):
    def __init__(self, clock, epoch_seconds):
        super().__init__()
        self.clock, self.epoch_seconds = clock, epoch_seconds

    def epoch(self, sitting, epoch):
        row = super().epoch(sitting, epoch)
        self.clock.now += self.epoch_seconds
        return dict(row, seconds=self.epoch_seconds)


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(training, "time", fake)
    return fake


def test_a_stop_file_with_a_deadline_stops_before_the_first_epoch_that_would_end_after_it(tmp_path, clock):
    (tmp_path / runs.STOP).write_text(f"{clock.now + 1500:.0f}\n")  # written before the sitting starts
    lines = []
    stopped = _train(tmp_path, ClockLoop(clock, 600), log=lines.append)
    # epoch 1 ends at +600, epoch 2 at +1200; epoch 3 would end at +1800, 300 s after the deadline
    assert [r["epoch"] for r in stopped["curve"]] == [1, 2] and not stopped["finished"]
    assert sorted(runs.epoch_checkpoints(tmp_path)) == [1, 2] and not (tmp_path / runs.STOP).exists()
    [line] = [x for x in lines if "STOP" in x]
    assert "an epoch of about 600 s would end 300 s after it): stopped before epoch 3; the same command resumes " \
        "the run after epoch 2." in line
    # the next sitting's first epoch is estimated from the curve's recorded seconds (600): 500 s are too few
    (tmp_path / runs.STOP).write_text(f"{clock.now + 500:.0f}")
    assert _train(tmp_path, ClockLoop(clock, 600))["done_before"] == 2
    assert [r["epoch"] for r in runs.read_json(tmp_path, runs.CURVE_JSON)] == [1, 2]
    (tmp_path / runs.STOP).write_text(f"{clock.now + 700:.0f}")  # and 700 s are enough
    last = _train(tmp_path, ClockLoop(clock, 600))
    assert last["finished"] and [r["w"] for r in last["curve"]] == pytest.approx([1.0, 3.0, 6.0])


def test_a_stop_file_with_an_iso_deadline_that_is_far_lets_the_run_finish(tmp_path, clock):
    import datetime
    far = datetime.datetime.fromtimestamp(clock.now + 10 * 3600, datetime.timezone.utc).isoformat()
    (tmp_path / runs.STOP).write_text(far)
    lines = []
    done = _train(tmp_path, ClockLoop(clock, 600), log=lines.append)
    assert done["finished"] and not (tmp_path / runs.STOP).exists()  # removed once the sitting's epochs ran
    assert f"{tmp_path / runs.STOP} found after the sitting's last epoch: the sitting ended anyway; removed." in lines


def test_a_stop_file_with_a_passed_deadline_or_unreadable_text_trains_nothing(tmp_path, clock):
    (tmp_path / runs.STOP).write_text(f"{clock.now - 1:.0f}")
    lines = []
    assert _train(tmp_path, ClockLoop(clock, 600), log=lines.append)["curve"] == []
    assert any("passed): stopped before epoch 1" in x for x in lines) and not (tmp_path / runs.STOP).exists()
    (tmp_path / runs.STOP).write_text("tomorrow at noon")  # not a time: read as a plain stop request
    lines = []
    assert _train(tmp_path, ClockLoop(clock, 600), log=lines.append)["curve"] == []
    assert any("'tomorrow at noon' is neither empty, UNIX seconds nor an ISO 8601 time: read as a stop request"
               in x for x in lines)


def test_read_deadline():
    assert training.read_deadline("  \n") is None
    assert training.read_deadline("1800000000.5\n") == 1800000000.5
    assert training.read_deadline("2027-01-15T08:00:00+00:00") == 1800000000.0
    assert training.read_deadline("2027-01-15T09:00:00+01:00") == 1800000000.0
    assert training.read_deadline("2027-01-15T08:00:00Z") == 1800000000.0  # `date -u +%FT%TZ`, on Python 3.10 too
    with pytest.raises(ValueError, match="neither empty"):
        training.read_deadline("02:00")
    for bad in ("nan", "inf", "-5", "1e20"):
        with pytest.raises(ValueError, match="not a time in UNIX seconds"):
            training.read_deadline(bad)


class EarlyStopLoop(ClockLoop):
    def should_stop(self, sitting):
        return len(sitting.run.curve) >= 1


def test_a_deadline_not_reached_before_the_app_stops_early_is_removed(tmp_path, clock):
    """An app that stops early (imdb's EarlyStopping) ends the sitting before the deadline: the file goes too."""
    (tmp_path / runs.STOP).write_text(f"{clock.now + 10 * 3600:.0f}")
    lines = []
    done = _train(tmp_path, EarlyStopLoop(clock, 600), log=lines.append)
    assert [r["epoch"] for r in done["curve"]] == [1] and not (tmp_path / runs.STOP).exists()
    assert f"{tmp_path / runs.STOP} found after the sitting's last epoch: the sitting ended anyway; removed." in lines


def test_seed_rule_on_resume():
    assert training.resolve_seed(None, 5) == 5
    assert training.resolve_seed(None, None) is None
    assert training.resolve_seed({"seed": 5}, None) == 5
    assert training.resolve_seed({"seed": 5}, 5) == 5
    with pytest.raises(runs.ManifestMismatchError, match=r"--seed=6 .*seed: 5"):
        training.resolve_seed({"seed": 5}, 6)
    with pytest.raises(runs.ManifestMismatchError, match=r"--seed=3 .*seed: None"):
        training.resolve_seed({"seed": None}, 3)  # an unseeded run stays unseeded


def test_an_app_resumed_with_another_seed_is_refused_and_with_none_keeps_its_own(tmp_path):
    first = essentials.train(tmp_path, "test", essentials.LOOP, seed=4, max_epochs=1, log=_quiet)
    with pytest.raises(runs.ManifestMismatchError, match="--seed=5"):
        essentials.train(tmp_path, "test", essentials.LOOP, seed=5, log=_quiet)
    assert len(runs.read_json(tmp_path, runs.CURVE_JSON)) == 1  # nothing was trained
    second = essentials.train(tmp_path, "test", essentials.LOOP, log=_quiet)
    assert second["seed"] == first["seed"] == 4 and len(second["curve"]) == 4


def test_check_finite():
    training.check_finite(1.5, "here")
    training.check_finite(np.float32(0.0), "here")
    for bad in (math.nan, math.inf, -math.inf, np.float32("nan")):
        with pytest.raises(runs.NonFiniteLossError, match="at iteration 7"):
            training.check_finite(bad, "iteration 7")


def test_progress_as_plain_lines_when_not_a_terminal():
    stream = io.StringIO()
    progress = training.Progress(True, unit="epoch", stream=stream, plain_seconds=0)
    with progress.epoch(2, 5, 4):
        for _ in range(4):
            progress.tick()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines and all(line.startswith("epoch 2/5") for line in lines)
    assert any("4/4" in line for line in lines)
    assert any("batch/s" in line for line in lines)
    assert any("run ETA" in line for line in lines)


def test_no_plain_line_before_the_interval_so_short_epochs_stay_quiet_in_a_log():
    stream = io.StringIO()
    progress = training.Progress(True, stream=stream, plain_seconds=60)
    with progress.epoch(1, 2, 5):
        for _ in range(5):
            progress.tick()
    assert stream.getvalue() == ""


def test_progress_off_writes_nothing_and_ticks_outside_an_epoch_are_ignored():
    stream = io.StringIO()
    progress = training.Progress(False, stream=stream)
    with progress.epoch(1, 1, 3):
        progress.tick()
    training.Progress(True, stream=stream).tick()
    assert stream.getvalue() == ""


def test_app_progress_goes_to_stderr_and_the_log_lines_to_stdout(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(training, "PLAIN_LINE_SECONDS", 0.0)  # a line at every redraw, not one a minute
    essentials.train(tmp_path, "test", essentials.LOOP, seed=1, max_epochs=1, progress=True)
    out, err = capsys.readouterr()
    assert "Iteration 50/200... Loss:" in out and "block 1/4" not in out
    assert "block 1/4" in err and "Iteration" not in err


def test_run_eta_counts_the_remaining_epochs():
    stream = io.StringIO()
    progress = training.Progress(True, stream=stream, plain_seconds=0)
    with progress.epoch(1, 3, 10):
        progress._started -= 10.0  # 10 s into the epoch, half done: 10 s left of it, 2 epochs of 20 s after it
        progress.tick(5)
        assert progress._run_eta(progress._started + 10.0) == pytest.approx(50.0)


def test_run_eta_after_an_epoch_uses_the_time_from_one_epoch_start_to_the_next():
    """The evaluation and checkpoint after an epoch's batches count too: epoch 1 started at 0, epoch 2 at 30."""
    progress = training.Progress(True, stream=io.StringIO(), plain_seconds=0)
    with progress.epoch(1, 3, 10):
        pass
    with progress.epoch(2, 3, 10):
        progress._epoch_starts[:] = [0.0, 30.0]
        progress._started = 30.0
        progress.tick(5)  # half of epoch 2 after 10 s: 10 s left of it, then epoch 3 at 30 s
        assert progress._run_eta(40.0) == pytest.approx(40.0)


def test_open_run_checks_the_manifest_app_and_vocabulary(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no manifest.json: train a model there first"):
        training.open_run(tmp_path, "essentials")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / runs.MANIFEST).write_text(json.dumps({"app": "fables", "vocab_file": "vocab.json",
                                                     "vocab_sha256": runs.vocab_sha256({"a": 0})}))
    (run_dir / "vocab.json").write_text(json.dumps({"a": 0}))
    opened = training.open_run(run_dir, "fables")
    assert opened.vocab == {"a": 0} and opened.manifest["app"] == "fables"
    with pytest.raises(runs.ManifestMismatchError, match="run of legacy_lstm.fables, not of legacy_lstm.ptb"):
        training.open_run(run_dir, "ptb")
    (run_dir / "vocab.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(runs.ManifestMismatchError, match="does not match the manifest's vocab_sha256"):
        training.open_run(run_dir, "fables")
    (run_dir / "vocab.json").unlink()
    with pytest.raises(FileNotFoundError, match="vocab.json is missing"):
        training.open_run(run_dir, "fables")


@pytest.mark.parametrize("damage", ["data_cut", "meta_missing", "index_missing"])
def test_a_damaged_final_checkpoint_is_written_again_from_the_newest_good_epoch(tmp_path, damage):
    """A kill or a full disk between the final checkpoint's .index and .meta, or its data damaged: the rerun checks
    it like the epoch checkpoints and writes it again (before: "the run is done" and test failed)."""
    first = _train(tmp_path)
    assert first["finished"]
    final = tmp_path / "final.ckpt"
    if damage == "data_cut":
        data = tmp_path / "final.ckpt.data-00000-of-00001"
        data.write_bytes(data.read_bytes()[:2])
    elif damage == "meta_missing":
        (tmp_path / "final.ckpt.meta").unlink()
    else:
        (tmp_path / "final.ckpt.index").unlink()
    again = _train(tmp_path)
    assert again["done_before"] == 3 and again["curve"] == first["curve"]
    assert (tmp_path / "final.ckpt.meta").exists()
    with tf.Graph().as_default():
        reader = tf1.train.load_checkpoint(str(final))
        assert reader.get_tensor("w") == pytest.approx(6.0)  # the weights of epoch 3
