"""The run directory: the writer lock (one training per folder, released on close, on error and on kill -9) and
the seed of a resumed sitting."""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from legacy_lstm import runs
from legacy_lstm.compat import tf, tf1

NEEDS_FLOCK = pytest.mark.skipif(runs.fcntl is None, reason="no flock on this platform")


def _run(run_dir, preset="a"):
    graph = tf.Graph()
    with graph.as_default():
        tf1.get_variable("w", shape=[2], initializer=tf1.zeros_initializer())
        run = runs.Run(run_dir, {"app": "locktest", "preset": preset})
        sess = tf1.Session(graph=graph)
        sess.run(tf1.global_variables_initializer())
    return run, sess


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


def _trained_run(run_dir, epochs=3):
    run, sess = _run(run_dir)
    run.resume(sess)
    run.write_manifest()
    for epoch in range(1, epochs + 1):
        run.var_list[0].load([float(epoch), -float(epoch)], sess)
        run.finish_epoch(sess, {"epoch": epoch, "loss": 1.0 / epoch}, summaries={"train": {"loss": 1.0 / epoch}})
    run.close()
    return run


def test_a_packed_run_unpacks_elsewhere_and_resumes_after_its_newest_epoch(tmp_path):
    _trained_run(tmp_path / "run")
    packed = tmp_path / "packed"
    assert runs.pack_run(tmp_path / "run", packed, part_bytes=4) == 3
    names = {p.relative_to(packed).as_posix() for p in packed.rglob("*") if p.is_file()}
    assert not any(n.startswith(("model.ckpt-1", "model.ckpt-2")) for n in names)  # older epochs stay behind
    assert runs.LOCK not in names and "checkpoint" not in names
    assert any(n.startswith("model.ckpt-3.data-00000-of-00001.part") for n in names)  # split into parts
    assert any(n.startswith("train/events.out.tfevents") for n in names)

    assert runs.unpack_run(packed, tmp_path / "moved") == 3
    for name in ("manifest.json", "curve.json", "curve.csv", "sittings.jsonl", "model.ckpt-3.index",
                 "model.ckpt-3.data-00000-of-00001"):
        assert (tmp_path / "moved" / name).read_bytes() == (tmp_path / "run" / name).read_bytes()
    again, sess = _run(tmp_path / "moved")
    assert again.resume(sess) == 3
    assert sess.run(again.var_list[0]).tolist() == [3.0, -3.0]
    assert [row["epoch"] for row in again.curve] == [1, 2, 3]
    again.close()
    assert len(runs.read_sittings(tmp_path / "moved")) == 2  # the packed run's sitting and this one


def test_unpack_refuses_a_damaged_pack_and_an_occupied_run_dir(tmp_path):
    _trained_run(tmp_path / "run", epochs=1)
    packed = tmp_path / "packed"
    runs.pack_run(tmp_path / "run", packed, part_bytes=4)
    with pytest.raises(FileExistsError, match="not empty"):
        runs.pack_run(tmp_path / "run", packed)
    with pytest.raises(FileExistsError, match="is not a packed run"):
        runs.pack_run(tmp_path / "run", tmp_path, replace=True)  # a folder that is no pack is never replaced
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "manifest.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already holds a run"):
        runs.unpack_run(packed, occupied)
    assert [p.name for p in occupied.iterdir()] == ["manifest.json"]

    part = sorted(packed.glob("model.ckpt-1.data-*.part*"))[-1]
    part.write_bytes(part.read_bytes()[:-1] + bytes([part.read_bytes()[-1] ^ 1]))  # one flipped bit
    with pytest.raises(runs.CorruptCheckpointError, match=r"model\.ckpt-1\.data-00000-of-00001 does not match"):
        runs.unpack_run(packed, tmp_path / "moved")
    part.unlink()
    with pytest.raises(FileNotFoundError, match=r"\.part\d+ is missing: the packed run is incomplete"):
        runs.unpack_run(packed, tmp_path / "moved")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied", "packed", "run"]  # nothing left behind


def test_unpack_into_a_symlinked_run_dir_fills_the_folder_it_points_to(tmp_path):
    _trained_run(tmp_path / "run", epochs=1)
    runs.pack_run(tmp_path / "run", tmp_path / "packed")
    (tmp_path / "disk" / "empty").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "disk" / "empty")  # an empty run dir on another disk
    (tmp_path / "dangling").symlink_to(tmp_path / "disk" / "not-yet")  # one whose folder is not made yet
    for name, target in (("link", "empty"), ("dangling", "not-yet")):
        assert runs.unpack_run(tmp_path / "packed", tmp_path / name) == 1
        assert (tmp_path / name).is_symlink()
        assert (tmp_path / "disk" / target / "manifest.json").read_bytes() == (
            tmp_path / "run" / "manifest.json").read_bytes()
    assert sorted(p.name for p in (tmp_path / "disk").iterdir()) == ["empty", "not-yet"]  # no staging left


def test_carry_run_script_packs_and_unpacks(tmp_path, capsys):
    import importlib.util
    path = pathlib.Path(__file__).resolve().parent.parent / "scripts" / "carry_run.py"
    spec = importlib.util.spec_from_file_location("carry_run", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    _trained_run(tmp_path / "run", epochs=2)
    script.main(["pack", str(tmp_path / "run"), str(tmp_path / "packed")])
    script.main(["unpack", str(tmp_path / "packed"), str(tmp_path / "moved")])
    out = capsys.readouterr().out
    assert "at epoch 2" in out and "resumes after epoch 2" in out
    assert runs.epoch_checkpoints(tmp_path / "moved").keys() == {2}


def test_a_newer_pack_replaces_an_earlier_one_and_never_the_reverse(tmp_path):
    run, sess = _run(tmp_path / "run")
    run.resume(sess)
    run.write_manifest()
    run.finish_epoch(sess, {"epoch": 1})
    runs.pack_run(tmp_path / "run", tmp_path / "packed")
    run.finish_epoch(sess, {"epoch": 2})
    run.close()
    assert runs.pack_run(tmp_path / "run", tmp_path / "packed", replace=True) == 2
    names = {p.name for p in (tmp_path / "packed").iterdir()}
    assert "model.ckpt-2.index" in names and "model.ckpt-1.index" not in names  # the old pack is gone
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    older = tmp_path / "older"
    shutil.copytree(tmp_path / "run", older)
    (older / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1"\n'
                                      'all_model_checkpoint_paths: "model.ckpt-1"\n')
    with pytest.raises(ValueError, match="holds epoch 2, newer than .*epoch 1; not replaced"):
        runs.pack_run(older, tmp_path / "packed", replace=True)
    assert runs.unpack_run(tmp_path / "packed", tmp_path / "moved") == 2


def test_pack_refuses_a_zero_part_size_another_run_and_skips_temporary_files(tmp_path):
    _trained_run(tmp_path / "run", epochs=1)
    (tmp_path / "run" / ".curve.json.tmp").write_text("being written")
    with pytest.raises(ValueError, match="at least 1"):
        runs.pack_run(tmp_path / "run", tmp_path / "packed", part_bytes=0)
    runs.pack_run(tmp_path / "run", tmp_path / "packed")
    assert ".curve.json.tmp" not in json.loads((tmp_path / "packed" / runs.CARRIED).read_text())["files"]
    other, sess = _run(tmp_path / "other", preset="b")
    other.resume(sess)
    other.write_manifest()
    other.finish_epoch(sess, {"epoch": 1})
    other.finish_epoch(sess, {"epoch": 2})
    other.close()
    with pytest.raises(runs.ManifestMismatchError, match=r"holds another run .*\n  preset"):
        runs.pack_run(tmp_path / "other", tmp_path / "packed", replace=True)
    assert json.loads((tmp_path / "packed" / runs.MANIFEST).read_text())["preset"] == "a"  # kept
    with pytest.raises(FileNotFoundError, match="is not a packed run: it has no carried.json"):
        runs.unpack_run(tmp_path / "run", tmp_path / "moved")


def test_reproduce_takes_a_carried_run_only_for_its_own_app_and_preset(tmp_path, monkeypatch, capsys,
                                                                       reproduce_script):
    import types
    _trained_run(tmp_path / "run", epochs=2)
    monkeypatch.setattr(reproduce_script, "CARRIED_DIR", tmp_path / "carried")
    runs.pack_run(tmp_path / "run", tmp_path / "carried" / "here")
    wrong = types.SimpleNamespace(run_dir=str(tmp_path / "here"), app="locktest", preset="b")
    with pytest.raises(SystemExit, match="holds a locktest --preset=a run, not locktest --preset=b"):
        reproduce_script._take_carried_run(wrong)
    assert not (tmp_path / "here").exists()
    behind = tmp_path / "behind" / "here"  # a run dir of the same run, started anew before the pack came
    run, sess = _run(behind)
    run.resume(sess)
    run.write_manifest()
    run.finish_epoch(sess, {"epoch": 1})
    run.close()
    args = types.SimpleNamespace(run_dir=str(behind), app="locktest", preset="a")
    reproduce_script._take_carried_run(args)
    assert "holds this run at epoch 2" in capsys.readouterr().out and runs.epoch_checkpoints(behind).keys() == {1}
    args.run_dir = str(tmp_path / "here")
    reproduce_script._take_carried_run(args)
    assert "resumes after epoch 2" in capsys.readouterr().out
    assert runs.epoch_checkpoints(tmp_path / "here").keys() == {2}
