"""Hostile but realistic use, through the apps' command lines and the one training driver: another app's run
dir, files and folders in the wrong place, bad flags, a seed that is not the run's, and training killed with
SIGKILL at random moments (legacy_lstm/training.py, legacy_lstm/runs.py, legacy_lstm/cli.py)."""

import concurrent.futures
import json
import os
import pathlib
import random
import signal
import subprocess
import sys

import pytest
from absl.testing import flagsaver

from legacy_lstm import cli, essentials, fables, imdb, ptb, runs, stocktwits

import kill_apps

REPO = pathlib.Path(__file__).resolve().parents[1]


def _quiet(*args, **kwargs):
    pass


@pytest.fixture(scope="module")
def essentials_run(tmp_path_factory):
    """A seeded essentials run of the test preset, one block trained (another app's run for the others)."""
    run_dir = tmp_path_factory.mktemp("essentials") / "run"
    essentials.train(run_dir, "test", essentials.LOOP, seed=3, max_epochs=1, log=_quiet)
    return run_dir


def _cli(parsed_flags, capsys, main, argv=("prog",), **values):
    """Run ``main`` as ``cli.run`` does (errors as one line) with the flags ``values``; (exit code, stderr)."""
    capsys.readouterr()
    with flagsaver.flagsaver(**values):
        code = cli.guard(main)(list(argv))
    return code, capsys.readouterr().err


def _one_error_line(err):
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- another app's run dir -----------------------------------------------------------------------------------
def test_test_modes_on_another_apps_run_dir_say_whose_it_is(essentials_run, tmp_path):
    message = r"holds a run of legacy_lstm\.essentials, not of legacy_lstm\.{}"
    with pytest.raises(runs.ManifestMismatchError, match=message.format("stocktwits")):
        stocktwits.test(tmp_path / "no-data.gz", essentials_run, log=_quiet)  # before: KeyError 'lstm_sizes'
    with pytest.raises(runs.ManifestMismatchError, match=message.format("imdb")):
        imdb.test(imdb.Paths(word_index="none", tar="none"), essentials_run, log=_quiet)
    with pytest.raises(runs.ManifestMismatchError, match=message.format("ptb")):
        ptb.test(None, essentials_run, log=_quiet)
    with pytest.raises(runs.ManifestMismatchError, match=message.format("fables")):
        fables.test(tmp_path / "no-fable.txt", essentials_run, log=_quiet)
    fables_run = tmp_path / "fables-run"
    fables_run.mkdir()
    (fables_run / runs.MANIFEST).write_text(json.dumps({"app": "fables", "config": {"n_input": 3}}))
    with pytest.raises(runs.ManifestMismatchError, match=r"legacy_lstm\.fables, not of legacy_lstm\.essentials"):
        essentials.test(fables_run, log=_quiet)


def test_imdb_test_mode_on_another_apps_run_dir_from_the_command_line(essentials_run, parsed_flags, capsys):
    code, err = _cli(parsed_flags, capsys, imdb.main, mode="test", run_dir=str(essentials_run))
    assert code == 1 and "holds a run of legacy_lstm.essentials, not of legacy_lstm.imdb" in _one_error_line(err)


def test_reproduce_report_of_another_apps_run_dir(essentials_run, tmp_path, monkeypatch, reproduce_script):
    monkeypatch.setattr(sys, "argv", ["reproduce.py", "stocktwits", "--report_only", f"--run_dir={essentials_run}",
                                      f"--results_dir={tmp_path / 'results'}"])
    with pytest.raises(SystemExit, match=r"holds a run of legacy_lstm\.essentials, not of legacy_lstm\.stocktwits"):
        reproduce_script.main()  # before: KeyError 'epochs'
    assert not (tmp_path / "results").exists()


def test_reproduce_unknown_preset_is_one_line(tmp_path, monkeypatch, reproduce_script):
    monkeypatch.setattr(sys, "argv", ["reproduce.py", "essentials", "--preset=nope", f"--run_dir={tmp_path / 'r'}",
                                      f"--results_dir={tmp_path / 'results'}"])
    with pytest.raises(SystemExit, match=r"^error: preset 'nope' is not one of book, test$"):
        reproduce_script.main()


# --- files and folders in the wrong place; bad flags ------------------------------------------------------------
def test_os_errors_are_one_line_naming_the_path(parsed_flags, capsys, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    a_dir = tmp_path / "a-dir"
    a_dir.mkdir()
    common = dict(preset="test", max_epochs=1, progress=False)
    for values, expected in (
            (dict(run_dir=str(a_file)), f"{a_file} is a file, not a run directory"),
            (dict(run_dir=str(a_file / "run")), f"Not a directory: '{a_file / 'run'}'"),
            (dict(run_dir=str(tmp_path / "r1"), train_file=str(a_dir)), f"Is a directory: '{a_dir}'"),
            (dict(run_dir=str(tmp_path / "r2"), word_vectors=str(a_dir)), f"Is a directory: '{a_dir}'")):
        code, err = _cli(parsed_flags, capsys, essentials.main, **common, **values)
        assert code == 1 and expected in _one_error_line(err), (values, err)
    assert a_file.read_text() == "not a folder"


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody may create anything in: a chmod 500 one, or for root (whom modes do not stop, e.g. in CI)
    sysfs, which refuses root too (skipped where it does not)."""
    if os.geteuid() != 0:
        read_only = tmp_path / "ro"
        read_only.mkdir()
        read_only.chmod(0o500)
        yield read_only
        read_only.chmod(0o700)
        return
    read_only = pathlib.Path("/sys/fs")
    try:
        (read_only / "legacy-lstm-probe").mkdir()
    except PermissionError:
        yield read_only
        return
    except OSError:
        pass
    else:
        (read_only / "legacy-lstm-probe").rmdir()
    pytest.skip("no folder here refuses root")


def test_a_read_only_run_dir_is_one_line(parsed_flags, capsys, essentials_run, read_only_dir):
    code, err = _cli(parsed_flags, capsys, essentials.main, run_dir=str(read_only_dir / "run"), preset="test",
                     max_epochs=1, progress=False)
    assert code == 1 and str(read_only_dir) in _one_error_line(err)
    assert not (read_only_dir / "run").exists()


def test_messages_name_the_right_thing(parsed_flags, capsys, essentials_run, tmp_path):
    code, err = _cli(parsed_flags, capsys, stocktwits.main, mode="test", run_dir=str(tmp_path / "none"))
    assert code == 1 and "holds no trained run (no manifest.json): train one first" in _one_error_line(err)
    code, err = _cli(parsed_flags, capsys, stocktwits.main, seq_len="abc", run_dir=str(tmp_path / "none"))
    assert code == 1 and "--seq_len=abc: expected a whole number" in _one_error_line(err)
    code, err = _cli(parsed_flags, capsys, essentials.main, mode="test", run_dir=str(essentials_run),
                     checkpoint=str(essentials_run))
    assert code == 1 and f"--checkpoint={essentials_run} is a directory" in _one_error_line(err)
    assert "model.ckpt-1" in err and "damaged" not in err
    state = essentials_run / runs.STATE_FILE
    saved = state.read_bytes()
    try:
        state.write_bytes(bytes(range(256)))  # a binary state file: test mode uses the epoch checkpoint on disk
        code, err = _cli(parsed_flags, capsys, essentials.main, mode="test", run_dir=str(essentials_run))
        assert code == 0 and "codec" not in err
    finally:
        state.write_bytes(saved)


def test_another_seed_on_resume_is_refused_by_name_from_the_command_line(parsed_flags, capsys, essentials_run):
    before = (essentials_run / runs.CURVE_JSON).read_bytes()
    code, err = _cli(parsed_flags, capsys, essentials.main, run_dir=str(essentials_run), preset="test", seed=4,
                     progress=False)
    assert code == 1 and "--seed=4 differs from the seed of the run being resumed (seed: 3)" in _one_error_line(err)
    assert (essentials_run / runs.CURVE_JSON).read_bytes() == before


def test_a_full_disk_while_a_checkpoint_is_written_is_one_line(parsed_flags, capsys, tmp_path, monkeypatch):
    """ENOSPC injected while the second block's checkpoint is written (after TF began its temporary file)."""
    from legacy_lstm.compat import tf, tf1
    real_save = tf1.train.Saver.save

    def save(self, sess, prefix, global_step=None, **kwargs):
        if global_step == 2:
            pathlib.Path(f"{prefix}-2.data-00000-of-00001.tempstate8141").write_bytes(b"half")
            raise tf.errors.ResourceExhaustedError(None, None, f"{prefix}-2.data-00000-of-00001.tempstate8141; "
                                                   "No space left on device\n" + "op traceback\n" * 100)
        return real_save(self, sess, prefix, global_step=global_step, **kwargs)

    monkeypatch.setattr(tf1.train.Saver, "save", save)
    run_dir = tmp_path / "run"
    code, err = _cli(parsed_flags, capsys, essentials.main, run_dir=str(run_dir), preset="test", seed=2,
                     progress=False, single_step=False)  # the loop of blocks (the shipped single step has one)
    line = _one_error_line(err)
    assert code == 1 and f"Cannot write the checkpoint {run_dir.resolve() / 'model.ckpt-2'}" in line
    assert "No space left on device" in line and "op traceback" not in err
    assert not [p.name for p in run_dir.iterdir() if "tmp" in p.name or "temp" in p.name]
    assert sorted(runs.epoch_checkpoints(run_dir)) == [1]


# --- the resume contract under SIGKILL --------------------------------------------------------------------------
_KILLED_SITTING = r"""
import os, pathlib, signal, sys
sys.path.insert(0, "tests")
import kill_apps
from legacy_lstm import runs, training
from legacy_lstm.compat import tf1
from tensorflow.python.lib.io import file_io

app, kill_at = sys.argv[1], int(sys.argv[4])
data_dir, run_dir = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
count = [0]

def event():
    count[0] += 1
    if count[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

def before(owner, name, every=1):
    real = getattr(owner, name)
    calls = [0]
    def hooked(*args, **kwargs):
        calls[0] += 1
        if calls[0] % every == 0:
            event()
        return real(*args, **kwargs)
    setattr(owner, name, hooked)

data = kill_apps.prepare(app, data_dir)
# the writes of a sitting, each a place to die: a curve or manifest file written but not yet renamed into place
# (os.fsync, os.replace), a checkpoint about to be written (Saver.save), written but the Saver's state file not
# updated, or that file's temporary written but not renamed (file_io), and twice in every epoch
for owner, name in ((os, "fsync"), (os, "replace"), (tf1.train.Saver, "save"),
                    (file_io, "atomic_write_string_to_file"), (file_io, "rename")):
    before(owner, name)
before(training.Sitting, "tick", every=kill_apps.TICKS_BETWEEN_KILL_POINTS[app])
kill_apps.train(app, data, run_dir)
print("completed", flush=True)
"""


WALL_CLOCK = {"seconds", "train_seconds", "seconds_per_train_step"}  # the curve columns that measure time


def _without_seconds(curve):
    return [{k: v for k, v in row.items() if k not in WALL_CLOCK} for row in curve]


def _killed_sittings(app, data_dir, run_dir):
    """The 3 killed sittings of ``app`` into ``run_dir``, one subprocess each (a fixed random.Random, so the places
    it dies are repeatable); returns [(kill_at, exit status, stderr tail)]."""
    rng = random.Random(19)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    outcomes = []
    for _ in range(3):
        kill_at = rng.randint(1, 14)
        proc = subprocess.run([sys.executable, "-c", _KILLED_SITTING, app, str(data_dir), str(run_dir),
                               str(kill_at)], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
        outcomes.append((kill_at, proc.returncode, proc.stderr[-3000:]))
    return outcomes


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory):
    """{app: (data, run dir, outcomes)}: every app's killed sittings, two apps at a time. The sittings of one app
    follow each other (each resumes the last one's run dir); different apps' are independent, and a sitting's
    time is mostly Python and TensorFlow starting up, so two run side by side on the 2 cores. Where each dies is
    counted in events, not timed, so running them side by side changes nothing but the wall time."""
    root = tmp_path_factory.mktemp("killed")
    prepared = {app: kill_apps.prepare(app, root / app / "data") for app in kill_apps.APPS}
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {app: pool.submit(_killed_sittings, app, root / app / "data", root / app / "run")
                   for app in kill_apps.APPS}
        return {app: (prepared[app], root / app / "run", futures[app].result()) for app in kill_apps.APPS}


@pytest.mark.parametrize("app", kill_apps.APPS)
def test_training_killed_at_random_moments_then_completed_equals_a_run_stopped_at_the_same_epochs(app, tmp_path,
                                                                                                  killed_runs):
    """The resume contract, through the one training driver, for every app: a seeded training of 4 epochs
    (essentials' blocks, fables' displays; tests/kill_apps.py) is killed with SIGKILL at random moments -- in the
    middle of an epoch, while a curve file is written, before a checkpoint, between a checkpoint and its state
    file, inside the state file's write -- 3 times (a fixed random.Random, so the test is repeatable; the killed
    sittings of all apps run in the ``killed_runs`` fixture), then completed by an unkilled sitting.

    The finished curve must hold rows 1..4 once each, curve.csv the same rows, no temporary file may be left, and
    each row must equal an in-process reference run interrupted at the same epoch boundaries. Not an uninterrupted
    run: ``runs.sitting_seed`` seeds a resumed sitting with seed + finished epochs (so it does not replay the first
    sitting's random streams), which makes a resumed run repeatable for the same interruption points but not
    bit-identical to an uninterrupted one. The boundaries are the ``after_epoch`` of each recorded sitting
    (``sittings.jsonl``); a killed sitting that finished no epoch leaves nothing behind and the reference skips it.
    """
    data, run_dir, killed = killed_runs[app]
    for _, code, stderr in killed:
        assert code in (-signal.SIGKILL, 0), stderr
    outcomes = [(kill_at, code) for kill_at, code, _ in killed]
    done = kill_apps.train(app, data, run_dir)  # the last sitting, not killed
    assert done["finished"]
    curve = runs.read_json(run_dir, runs.CURVE_JSON)
    assert [row["epoch"] for row in curve] == [1, 2, 3, 4]  # no duplicate or missing row
    assert runs.read_curve(run_dir) == curve
    import csv
    with open(run_dir / runs.CURVE_CSV) as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [1, 2, 3, 4]
    assert not [p.name for p in run_dir.iterdir() if "tmp" in p.name or "tempstate" in p.name]

    boundaries = sorted({s["after_epoch"] for s in runs.read_sittings(run_dir)} - {0})
    reference = tmp_path / "reference"
    for stop in boundaries:
        kill_apps.train(app, data, reference, max_epochs=stop)
    expected = kill_apps.train(app, data, reference)
    assert _without_seconds(curve) == _without_seconds(expected["curve"]), (outcomes, boundaries)
    assert boundaries and any(code == -signal.SIGKILL for _, code in outcomes), (outcomes, boundaries)
