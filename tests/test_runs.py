"""The run directory: the writer lock (one training per folder, released on close, on error and on kill -9) and
the seed of a resumed sitting."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from legacy_lstm import runs
from legacy_lstm.compat import tf, tf1

from run_helpers import tiny_run

NEEDS_FLOCK = pytest.mark.skipif(runs.fcntl is None, reason="no flock on this platform")


_run = tiny_run


@NEEDS_FLOCK
def test_second_writer_is_refused_until_the_first_closes(tmp_path):
    first, sess1 = _run(tmp_path)
    assert first.resume(sess1) == 0
    first.write_manifest()
    second, sess2 = _run(tmp_path)
    with pytest.raises(runs.RunDirBusyError, match=rf"pid {os.getpid()}\b.*another --run_dir"):
        second.resume(sess2)
    first.close()
    assert second.resume(sess2) == 0  # free again
    second.close()


@NEEDS_FLOCK
def test_lock_is_released_when_resume_fails(tmp_path):
    first, sess = _run(tmp_path, preset="a")
    first.resume(sess)
    first.write_manifest()
    first.close()
    other, sess2 = _run(tmp_path, preset="b")
    with pytest.raises(runs.ManifestMismatchError, match="preset"):
        other.resume(sess2)
    again, sess3 = _run(tmp_path, preset="a")
    assert again.resume(sess3) == 0  # the failed resume did not keep the lock
    again.close()


@NEEDS_FLOCK
def test_lock_of_a_killed_process_is_free(tmp_path):
    """``kill -9`` of the holder frees the folder: the kernel drops a flock with its process."""
    holder = textwrap.dedent(f"""
        import fcntl, os, sys, time
        f = open({str(tmp_path / runs.LOCK)!r}, "a+")
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        f.write(str(os.getpid())); f.flush()
        print("locked", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        run, sess = _run(tmp_path)
        with pytest.raises(runs.RunDirBusyError, match=rf"pid {proc.pid}\b"):
            run.resume(sess)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.time() + 10
    while True:
        try:
            assert run.resume(sess) == 0
            break
        except runs.RunDirBusyError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    run.close()


def test_sitting_seed_adds_the_finished_epochs(tmp_path):
    assert runs.sitting_seed(None, tmp_path) is None  # unseeded stays unseeded
    assert runs.sitting_seed(7, tmp_path) == 7  # fresh run dir
    run, sess = _run(tmp_path)
    run.resume(sess)
    run.save_epoch(sess, 1)
    run.save_epoch(sess, 2)
    run.close()
    assert runs.sitting_seed(7, tmp_path) == 9


def test_every_sitting_is_recorded_with_its_commit(tmp_path, monkeypatch):
    """A run resumed across commits says which code trained which epochs (sittings.jsonl)."""
    head = {"commit": "a" * 40, "dirty": False}
    monkeypatch.setattr(runs, "git_state", lambda: dict(head))
    run, sess = _run(tmp_path)
    assert run.resume(sess) == 0
    run.write_manifest()
    assert run.manifest["git_commit"] == "a" * 40 and run.manifest["git_dirty"] is False
    run.finish_epoch(sess, {"epoch": 1, "loss": 1.0})
    run.close()
    head.update(commit="b" * 40, dirty=True)  # the code changed between the sittings
    again, sess2 = _run(tmp_path)
    assert again.resume(sess2) == 1
    again.close()
    with open(tmp_path / runs.SITTINGS, "a") as f:
        f.write('{"started": "2026-')  # a line cut short by a crash is skipped, not an error ...
    third, sess3 = _run(tmp_path)
    assert third.resume(sess3) == 1  # ... and does not swallow the next sitting's record
    third.close()
    sittings = runs.read_sittings(tmp_path)
    assert [(s["after_epoch"], s["git_commit"], s["git_dirty"]) for s in sittings] == [
        (0, "a" * 40, False), (1, "b" * 40, True), (1, "b" * 40, True)]
    assert sittings[0]["pid"] == os.getpid() and sittings[0]["argv"] == sys.argv
    assert sittings[0]["versions"]["tensorflow"] == tf.__version__
    assert sittings[0]["machine"]["cpus"] == os.cpu_count()  # epoch times are only comparable on one machine
    assert runs.read_sittings(tmp_path / "none") == []


def test_git_state_of_this_checkout():
    state = runs.git_state()
    if state["commit"] is None:
        pytest.skip("the package is not in a git checkout (installed copy)")
    here = pathlib.Path(runs.__file__).resolve().parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True).stdout.strip()
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                            capture_output=True, text=True).stdout
    changed = [line[3:] for line in status.splitlines() if not line[3:].startswith("results/")]
    assert state == {"commit": head, "dirty": bool(changed)}


def _damage(run_dir, epoch):
    data = run_dir / f"{runs.EPOCH_PREFIX}-{epoch}.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:3])  # cut short, as by a full disk or an interrupted copy


def test_resume_falls_back_past_a_damaged_newest_checkpoint(tmp_path):
    run, sess = _run(tmp_path)
    run.resume(sess)
    run.write_manifest()
    var = run.var_list[0]
    for epoch in (1, 2):
        var.load([float(epoch)] * 2, sess)
        run.finish_epoch(sess, {"epoch": epoch, "loss": 1.0 / epoch})
    run.final_name = "final.ckpt"
    run.save_final(sess)  # a final checkpoint with epoch 2's weights
    run.close()
    _damage(tmp_path, 2)
    again, sess2 = _run(tmp_path)
    again.final_name = "final.ckpt"
    assert again.resume(sess2) == 1  # epoch 2 is trained again, nothing else is lost
    assert again.discarded == [2] and not again.has_checkpoint("final.ckpt")  # it held the discarded epoch
    assert sess2.run(again.var_list[0]).tolist() == [1.0, 1.0]
    assert [row["epoch"] for row in again.curve] == [1]
    # the files say so too, before anything is retrained
    assert [row["epoch"] for row in runs.read_json(tmp_path, runs.CURVE_JSON)] == [1]
    assert [row["epoch"] for row in runs._read_curve_csv(tmp_path / runs.CURVE_CSV)] == [1]
    with pytest.raises(runs.CorruptCheckpointError, match=r"model\.ckpt-2 cannot be read.*--checkpoint"):
        again.restore(sess2, str(tmp_path / f"{runs.EPOCH_PREFIX}-2"))
    with pytest.raises(FileNotFoundError, match=r"No checkpoint .*model\.ckpt-7 .*check the --checkpoint prefix"):
        again.restore(sess2, str(tmp_path / f"{runs.EPOCH_PREFIX}-7"))  # a typo is not "damaged"
    again.close()
    _damage(tmp_path, 1)
    for _ in range(2):  # the failed resume frees the lock: the second attempt fails the same way, not "busy"
        last, sess3 = _run(tmp_path)
        with pytest.raises(runs.CorruptCheckpointError, match=r"No checkpoint in .* can be read:\n.*-2.*\n.*-1"):
            last.resume(sess3)


def _three_epochs(run_dir, final=False):
    run, sess = _run(run_dir)
    run.resume(sess)
    run.write_manifest()
    for epoch in (1, 2, 3):
        run.var_list[0].load([float(epoch)] * 2, sess)
        run.finish_epoch(sess, {"epoch": epoch, "loss": 1.0 / epoch, "note": f"e{epoch}", "ok": epoch > 1})
    if final:
        run.final_name = "final.ckpt"
        run.save_final(sess)
    run.close()


@pytest.mark.parametrize("state", ["missing", "text", "binary", "empty"])
def test_a_lost_checkpoint_state_file_resumes_from_the_checkpoints_on_disk(tmp_path, state, caplog):
    """The Saver state file deleted or damaged: training resumes from the newest model.ckpt-<epoch> on disk (with
    a warning) instead of starting again over the finished epochs, and test mode finds it too."""
    _three_epochs(tmp_path)
    path = tmp_path / runs.STATE_FILE
    if state == "missing":
        path.unlink()
    else:
        path.write_bytes({"text": b"garbage\n", "binary": bytes(range(256)), "empty": b""}[state])
    assert sorted(runs.epoch_checkpoints(tmp_path)) == [1, 2, 3]
    assert runs.sitting_seed(7, tmp_path) == 10
    again, sess = _run(tmp_path)
    assert again.latest_checkpoint() == str(tmp_path / f"{runs.EPOCH_PREFIX}-3")  # test mode
    assert again.restore(sess).endswith(f"{runs.EPOCH_PREFIX}-3")
    caplog.clear()
    assert again.resume(sess) == 3
    assert "state file" in caplog.text and f"{runs.EPOCH_PREFIX}-3" in caplog.text
    assert sess.run(again.var_list[0]).tolist() == [3.0, 3.0]
    assert [row["epoch"] for row in again.curve] == [1, 2, 3]
    again.finish_epoch(sess, {"epoch": 4, "loss": 0.25})  # the Saver writes a good state file again
    again.close()
    assert sorted(runs.epoch_checkpoints(tmp_path)) == [2, 3, 4] and runs.checkpoint_state_problem(tmp_path) is None


def test_a_run_whose_checkpoints_are_all_gone_is_not_trained_over(tmp_path):
    _three_epochs(tmp_path)
    for path in tmp_path.glob(f"{runs.EPOCH_PREFIX}-*"):
        path.unlink()
    (tmp_path / runs.STATE_FILE).unlink()
    curve = (tmp_path / runs.CURVE_CSV).read_bytes()
    again, sess = _run(tmp_path)
    with pytest.raises(runs.DamagedRunDirError, match="records 3 finished epochs .* no epoch checkpoint"):
        again.resume(sess)
    assert (tmp_path / runs.CURVE_CSV).read_bytes() == curve


@pytest.mark.parametrize("damage", ["deleted", "truncated", "not_rows"])
def test_a_lost_curve_json_is_recovered_from_curve_csv(tmp_path, damage, caplog):
    _three_epochs(tmp_path)
    expected = json.loads((tmp_path / runs.CURVE_JSON).read_text())
    csv_before = (tmp_path / runs.CURVE_CSV).read_text()
    path = tmp_path / runs.CURVE_JSON
    if damage == "deleted":
        path.unlink()
    elif damage == "truncated":
        path.write_text(path.read_text()[:40])
    else:
        path.write_text("{}")
    assert runs.read_curve(tmp_path) == expected  # exactly: ints, floats, strings, booleans
    again, sess = _run(tmp_path)
    assert again.resume(sess) == 3
    assert again.curve == expected and "curve.csv" in caplog.text
    again.finish_epoch(sess, {"epoch": 4, "loss": 0.25})
    again.close()
    assert json.loads(path.read_text()) == expected + [{"epoch": 4, "loss": 0.25}]
    csv_after = (tmp_path / runs.CURVE_CSV).read_text()
    assert csv_after.startswith(csv_before) and len(csv_after.splitlines()) == 5  # the intact rows are kept


def test_a_curve_that_cannot_be_recovered_is_refused_clearly(tmp_path):
    _three_epochs(tmp_path)
    (tmp_path / runs.CURVE_JSON).write_text("[{\"epoch\": 1}")
    (tmp_path / runs.CURVE_CSV).write_text("epoch,loss\n1,1.0\n")  # lacks epochs 2 and 3
    again, sess = _run(tmp_path)
    with pytest.raises(runs.DamagedRunDirError, match=r"curve.json is damaged .*curve.csv lacks rows of epochs 1..3"):
        again.resume(sess)
    assert (tmp_path / runs.CURVE_CSV).read_text() == "epoch,loss\n1,1.0\n"  # nothing was overwritten
    with pytest.raises(runs.DamagedRunDirError, match="cannot be recovered"):
        runs.read_curve(tmp_path / "nothing-here", last=2)
    assert runs.read_curve(tmp_path / "nothing-here") == []


def test_a_deleted_final_index_falls_back_to_the_newest_epoch_checkpoint(tmp_path):
    _three_epochs(tmp_path, final=True)
    (tmp_path / "final.ckpt.index").unlink()
    run, sess = _run(tmp_path)
    assert run.restore(sess) == str(tmp_path / f"{runs.EPOCH_PREFIX}-3")  # not "No checkpoint... Train first"
    assert sess.run(run.var_list[0]).tolist() == [3.0, 3.0]


def test_temporary_files_of_killed_writers_are_swept_on_resume(tmp_path):
    _three_epochs(tmp_path)
    stale = ["model.ckpt-4.index.tempstate1234567890", "model.ckpt-4.data-00000-of-00001.tempstate99",
             "checkpoint.tmp0123abcd", "final.ckpt.meta.tmpdeadbeef", ".curve.json.tmp"]
    for name in stale:
        (tmp_path / name).write_text("half")
    (tmp_path / "model.ckpt-4_temp").mkdir()
    (tmp_path / "model.ckpt-4_temp" / "part-00000-of-00001.index").write_text("half")
    run, sess = _run(tmp_path)
    assert run.resume(sess) == 3
    run.close()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert not [name for name in left if "tmp" in name or "temp" in name], left
    assert {"manifest.json", "curve.json", "curve.csv", "model.ckpt-3.index"} <= set(left)


def test_a_failed_checkpoint_write_is_one_clear_error_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    """A disk that fills while a checkpoint is written (ENOSPC injected into the Saver after it has begun
    writing): one CheckpointWriteError naming the checkpoint; no ``*.tempstate*``/``*.tmp*`` stays behind."""
    import errno
    run, sess = _run(tmp_path)
    run.resume(sess)
    run.write_manifest()
    run.finish_epoch(sess, {"epoch": 1})

    def full_disk(self, sess, prefix, **kwargs):
        (tmp_path / "model.ckpt-2.data-00000-of-00001.tempstate1234").write_bytes(b"half")
        (tmp_path / "checkpoint.tmp0123abcd").write_bytes(b"half")
        raise tf.errors.ResourceExhaustedError(None, None, f"{prefix}.tempstate1234; No space left on device\n"
                                               "\t [[node save/SaveV2 (defined at ...)]]\n" + "traceback\n" * 50)

    monkeypatch.setattr(tf1.train.Saver, "save", full_disk)
    with pytest.raises(runs.CheckpointWriteError, match=r"model\.ckpt-2 .*No space left on device\)\. Free"):
        run.finish_epoch(sess, {"epoch": 2})
    monkeypatch.setattr(tf1.train.Saver, "save", lambda *a, **k: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "final.ckpt.meta.tmp00"))))
    run.final_name = "final.ckpt"
    with pytest.raises(runs.CheckpointWriteError, match=r"final\.ckpt .*OSError.*No space left"):
        run.save_final(sess)
    run.close()
    assert not [p.name for p in tmp_path.iterdir() if "tmp" in p.name or "temp" in p.name]
    assert sorted(runs.epoch_checkpoints(tmp_path)) == [1]


def test_a_thomas_run_dir_from_before_the_split_reads_as_the_ptb_thomas_app(tmp_path):
    """Andy Thomas's tutorial was ``ptb --preset=thomas`` (app "ptb", config style "thomas") before it became the
    app ``ptb_thomas``: such a run dir must still resume, test and generate there."""
    (tmp_path / runs.MANIFEST).write_text(json.dumps({"app": "ptb", "preset": "thomas",
                                                      "config": {"style": "thomas", "epochs": 60}}))
    assert runs.read_manifest(tmp_path)["app"] == "ptb_thomas"
    (tmp_path / runs.MANIFEST).write_text(json.dumps({"app": "ptb", "preset": "small",
                                                      "config": {"style": "official"}}))
    assert runs.read_manifest(tmp_path)["app"] == "ptb"


def test_a_report_shows_no_epoch_whose_checkpoint_was_never_written(tmp_path):
    """A kill or a full disk between an epoch's curve row and its checkpoint: the resume retrains that epoch, and a
    report read meanwhile (reproduce.py --report_only) stops at the newest checkpoint instead of claiming it."""
    from legacy_lstm import report
    run, sess = _run(tmp_path)
    run.resume(sess)
    run.write_manifest()
    for epoch in (1, 2):
        run.finish_epoch(sess, {"epoch": epoch, "loss": 1.0 / epoch})
    run.record_epoch({"epoch": 3, "loss": 0.3})  # its checkpoint never written
    run.close()
    assert [row["epoch"] for row in runs.read_json(tmp_path, runs.CURVE_JSON)] == [1, 2, 3]
    manifest, curve = report.sitting(tmp_path, "locktest")
    assert manifest["app"] == "locktest" and [row["epoch"] for row in curve] == [1, 2]
    assert report.sitting(tmp_path / "nothing-here", "locktest") == (None, [])


def test_checkpoints_without_a_manifest_are_not_trained_over(tmp_path):
    """A lost manifest.json beside epoch checkpoints: the resume refuses (DamagedRunDirError, naming the file) instead
    of starting a new run that would overwrite the curve; nothing is changed."""
    run, sess = _run(tmp_path)
    run.resume(sess)
    run.write_manifest()
    run.finish_epoch(sess, {"epoch": 1, "loss": 1.0})
    run.close()
    (tmp_path / runs.MANIFEST).unlink()
    curve = (tmp_path / runs.CURVE_JSON).read_text()
    again, sess2 = _run(tmp_path)
    with pytest.raises(runs.DamagedRunDirError, match=r"holds epoch checkpoints .* but no manifest\.json"):
        again.resume(sess2)
    assert (tmp_path / runs.CURVE_JSON).read_text() == curve and not (tmp_path / runs.MANIFEST).exists()
