"""Carrying a run to another machine (legacy_lstm/carry.py, scripts/carry_run.py): pack, unpack, replace, and
the refusal of a pack whose record names files outside it."""

import json
import pathlib
import shutil

import pytest

from legacy_lstm import carry, runs

from run_helpers import tiny_run


_run = tiny_run


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
    (tmp_path / "run" / runs.STOP).touch()  # a stop request of the old machine's sitting is not carried over
    packed = tmp_path / "packed"
    assert carry.pack_run(tmp_path / "run", packed, part_bytes=4) == 3
    names = {p.relative_to(packed).as_posix() for p in packed.rglob("*") if p.is_file()}
    assert not any(n.startswith(("model.ckpt-1", "model.ckpt-2")) for n in names)  # older epochs stay behind
    assert runs.LOCK not in names and runs.STOP not in names and "checkpoint" not in names
    assert any(n.startswith("model.ckpt-3.data-00000-of-00001.part") for n in names)  # split into parts
    assert any(n.startswith("train/events.out.tfevents") for n in names)

    assert carry.unpack_run(packed, tmp_path / "moved") == 3
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
    carry.pack_run(tmp_path / "run", packed, part_bytes=4)
    with pytest.raises(FileExistsError, match="not empty"):
        carry.pack_run(tmp_path / "run", packed)
    with pytest.raises(FileExistsError, match="is not a packed run"):
        carry.pack_run(tmp_path / "run", tmp_path, replace=True)  # a folder that is no pack is never replaced
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "manifest.json").write_text("{}")
    with pytest.raises(FileExistsError, match="already holds a run"):
        carry.unpack_run(packed, occupied)
    assert [p.name for p in occupied.iterdir()] == ["manifest.json"]

    part = sorted(packed.glob("model.ckpt-1.data-*.part*"))[-1]
    part.write_bytes(part.read_bytes()[:-1] + bytes([part.read_bytes()[-1] ^ 1]))  # one flipped bit
    with pytest.raises(runs.CorruptCheckpointError, match=r"model\.ckpt-1\.data-00000-of-00001 does not match"):
        carry.unpack_run(packed, tmp_path / "moved")
    part.unlink()
    with pytest.raises(FileNotFoundError, match=r"\.part\d+ is missing: the packed run is incomplete"):
        carry.unpack_run(packed, tmp_path / "moved")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["occupied", "packed", "run"]  # nothing left behind


def test_unpack_into_a_symlinked_run_dir_fills_the_folder_it_points_to(tmp_path):
    _trained_run(tmp_path / "run", epochs=1)
    carry.pack_run(tmp_path / "run", tmp_path / "packed")
    (tmp_path / "disk" / "empty").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "disk" / "empty")  # an empty run dir on another disk
    (tmp_path / "dangling").symlink_to(tmp_path / "disk" / "not-yet")  # one whose folder is not made yet
    for name, target in (("link", "empty"), ("dangling", "not-yet")):
        assert carry.unpack_run(tmp_path / "packed", tmp_path / name) == 1
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
    carry.pack_run(tmp_path / "run", tmp_path / "packed")
    run.finish_epoch(sess, {"epoch": 2})
    run.close()
    assert carry.pack_run(tmp_path / "run", tmp_path / "packed", replace=True) == 2
    names = {p.name for p in (tmp_path / "packed").iterdir()}
    assert "model.ckpt-2.index" in names and "model.ckpt-1.index" not in names  # the old pack is gone
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    older = tmp_path / "older"
    shutil.copytree(tmp_path / "run", older)
    (older / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-1"\n'
                                      'all_model_checkpoint_paths: "model.ckpt-1"\n')
    with pytest.raises(ValueError, match="holds epoch 2, newer than .*epoch 1; not replaced"):
        carry.pack_run(older, tmp_path / "packed", replace=True)
    assert carry.unpack_run(tmp_path / "packed", tmp_path / "moved") == 2


def test_pack_refuses_a_zero_part_size_another_run_and_skips_temporary_files(tmp_path):
    _trained_run(tmp_path / "run", epochs=1)
    (tmp_path / "run" / ".curve.json.tmp").write_text("being written")
    with pytest.raises(ValueError, match="at least 1"):
        carry.pack_run(tmp_path / "run", tmp_path / "packed", part_bytes=0)
    carry.pack_run(tmp_path / "run", tmp_path / "packed")
    assert ".curve.json.tmp" not in json.loads((tmp_path / "packed" / carry.CARRIED).read_text())["files"]
    other, sess = _run(tmp_path / "other", preset="b")
    other.resume(sess)
    other.write_manifest()
    other.finish_epoch(sess, {"epoch": 1})
    other.finish_epoch(sess, {"epoch": 2})
    other.close()
    with pytest.raises(runs.ManifestMismatchError, match=r"holds another run .*\n  preset"):
        carry.pack_run(tmp_path / "other", tmp_path / "packed", replace=True)
    assert json.loads((tmp_path / "packed" / runs.MANIFEST).read_text())["preset"] == "a"  # kept
    with pytest.raises(FileNotFoundError, match="is not a packed run: it has no carried.json"):
        carry.unpack_run(tmp_path / "run", tmp_path / "moved")


def test_reproduce_takes_a_carried_run_only_for_its_own_app_and_preset(tmp_path, monkeypatch, capsys,
                                                                       reproduce_script):
    import types
    _trained_run(tmp_path / "run", epochs=2)
    monkeypatch.setattr(reproduce_script, "CARRIED_DIR", tmp_path / "carried")
    carry.pack_run(tmp_path / "run", tmp_path / "carried" / "here")
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
    with pytest.raises(SystemExit, match="holds this run at epoch 2, .* only at epoch 1. To continue the carried"):
        reproduce_script._take_carried_run(args)  # not trained behind the pack
    assert runs.epoch_checkpoints(behind).keys() == {1}
    args.run_dir = str(tmp_path / "here")
    reproduce_script._take_carried_run(args)
    assert "resumes after epoch 2" in capsys.readouterr().out
    assert runs.epoch_checkpoints(tmp_path / "here").keys() == {2}


def _tamper(packed, rel, data, parts=(), source=None):
    """Add the member ``rel`` (its bytes ``data``, correctly hashed) to the pack's record; write ``data`` to
    ``source`` (the file the record makes the unpacking read)."""
    import hashlib
    record = json.loads((packed / carry.CARRIED).read_text())
    record["files"][rel] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "parts": list(parts)}
    (packed / carry.CARRIED).write_text(json.dumps(record))
    if source is not None:
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(data)


def _assert_refused_untouched(tmp_path, packed, target, victims):
    before = {victim: victim.read_bytes() if victim.exists() else None for victim in victims}
    with pytest.raises(carry.UnsafePackError, match="refused"):
        carry.unpack_run(packed, target)
    with pytest.raises(carry.UnsafePackError):
        dict(carry.packed_files(packed))
    assert not target.exists()
    assert not [p for p in target.parent.iterdir() if ".unpacking-" in p.name]  # no staging left
    for victim, data in before.items():
        assert (victim.read_bytes() if victim.exists() else None) == data, victim


@pytest.mark.parametrize("kind", ["dotdot", "dotdot_deep", "absolute", "absolute_part", "dot", "backslash"])
def test_unpack_refuses_a_member_name_outside_the_run_dir(tmp_path, kind):
    """A member named ``../x`` (placed beside the pack) or by an absolute path would be written outside the run
    dir (the sha256s come from the same record, so they prove nothing): the whole pack is refused, nothing
    written."""
    _trained_run(tmp_path / "run", epochs=1)
    packed = tmp_path / "packed"
    carry.pack_run(tmp_path / "run", packed)
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_bytes(b"original")
    (tmp_path / "dest").mkdir()
    escaped = tmp_path / "dest" / "ESCAPED.txt"
    if kind == "dotdot":  # read from beside the pack, written beside the target
        _tamper(packed, "../ESCAPED.txt", b"pwned", source=tmp_path / "ESCAPED.txt")
    elif kind == "dotdot_deep":
        _tamper(packed, "train/../../outside/victim.txt", b"pwned", source=tmp_path / "outside" / "victim.txt.src")
    elif kind == "absolute":
        _tamper(packed, str(victim), b"pwned", parts=["payload"], source=outside / "payload")
    elif kind == "absolute_part":
        _tamper(packed, "manifest2.json", b"pwned", parts=[str(outside / "payload")], source=outside / "payload")
    elif kind == "dot":
        _tamper(packed, "./manifest.json", b"pwned", source=packed / "manifest.json.x")
    else:
        _tamper(packed, "..\\ESCAPED.txt", b"pwned", source=packed / "..\\ESCAPED.txt")
    _assert_refused_untouched(tmp_path, packed, tmp_path / "dest" / "moved", [victim, escaped])


def test_unpack_refuses_symlinks_in_the_pack_and_a_checkpoint_name_outside_it(tmp_path):
    _trained_run(tmp_path / "run", epochs=1)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"a file outside the pack")
    for case in ("file", "folder", "checkpoint"):
        packed = tmp_path / f"packed-{case}"
        carry.pack_run(tmp_path / "run", packed)
        if case == "file":  # a member replaced by a link to a file outside (its sha256 fixed up)
            (packed / "manifest.json").unlink()
            (packed / "manifest.json").symlink_to(secret)
            _tamper(packed, "manifest.json", secret.read_bytes())
        elif case == "folder":
            events = next((packed / "train").iterdir())
            shutil.move(str(packed / "train"), str(tmp_path / "elsewhere"))
            (packed / "train").symlink_to(tmp_path / "elsewhere")
            assert (packed / "train" / events.name).exists()
        else:
            record = json.loads((packed / carry.CARRIED).read_text())
            record["checkpoint"] = "../../run/model.ckpt-1"
            (packed / carry.CARRIED).write_text(json.dumps(record))
        _assert_refused_untouched(tmp_path, packed, tmp_path / f"moved-{case}", [secret])


def test_a_pack_entry_without_size_or_sha256_is_refused_before_anything_is_written(tmp_path):
    _trained_run(tmp_path / "run", epochs=1)
    for missing in ("size", "sha256"):
        packed = tmp_path / f"packed-{missing}"
        carry.pack_run(tmp_path / "run", packed)
        record = json.loads((packed / carry.CARRIED).read_text())
        del record["files"]["manifest.json"][missing]
        (packed / carry.CARRIED).write_text(json.dumps(record))
        with pytest.raises(carry.UnsafePackError, match="no size or sha256"):
            carry.unpack_run(packed, tmp_path / f"target-{missing}")
        assert not (tmp_path / f"target-{missing}").exists()


def test_a_file_with_the_same_bytes_as_another_is_packed_once_and_unpacked_twice(tmp_path):
    """A second copy of the newest checkpoint (Thomas's kept test checkpoint, written at that epoch) is listed
    with ``same_as`` and stored once; unpacking writes both, each checked against its own size and sha256."""
    _trained_run(tmp_path / "run")
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(tmp_path / "run" / f"model.ckpt-3{suffix}", tmp_path / "run" / f"kept-2{suffix}")
    (tmp_path / "run" / "empty-a").write_bytes(b"")
    (tmp_path / "run" / "empty-b").write_bytes(b"")
    packed = tmp_path / "packed"
    carry.pack_run(tmp_path / "run", packed, part_bytes=4)
    record = json.loads((packed / carry.CARRIED).read_text())
    for suffix in (".index", ".data-00000-of-00001"):
        pair = (f"kept-2{suffix}", f"model.ckpt-3{suffix}")
        held = [rel for rel in pair if "same_as" not in record["files"][rel]]
        assert len(held) == 1  # one copy stored, the other listed as the same bytes
        listed = next(rel for rel in pair if rel not in held)
        assert record["files"][listed]["same_as"] == held[0] and record["files"][listed]["parts"] == []
        stored = {p.name.split(".part")[0] for p in packed.iterdir()}
        assert held[0] in stored and listed not in stored
    assert record["files"]["empty-b"]["same_as"] == "empty-a" and "same_as" not in record["files"]["empty-a"]
    carry.unpack_run(packed, tmp_path / "moved")
    for name in ("kept-2.index", "kept-2.data-00000-of-00001", "model.ckpt-3.index", "empty-a", "empty-b"):
        assert (tmp_path / "moved" / name).read_bytes() == (tmp_path / "run" / name).read_bytes()


def test_a_same_as_entry_must_name_a_stored_member(tmp_path):
    """``same_as`` pointing at no member, at itself or at another ``same_as`` entry is refused before anything
    is written."""
    _trained_run(tmp_path / "run", epochs=1)
    shutil.copy(tmp_path / "run" / "manifest.json", tmp_path / "run" / "manifest.json.copy")
    for case, target in (("missing", "no-such-file"), ("chained", None), ("not-a-name", 3)):
        packed = tmp_path / f"packed-{case}"
        carry.pack_run(tmp_path / "run", packed)
        record = json.loads((packed / carry.CARRIED).read_text())
        entry = record["files"]["manifest.json.copy"]
        assert entry.get("same_as") == "manifest.json"  # packed in name order: the copy comes second
        if case == "chained":
            record["files"]["other.json"] = dict(entry, same_as="manifest.json.copy")
        else:
            entry["same_as"] = target
        (packed / carry.CARRIED).write_text(json.dumps(record))
        with pytest.raises(carry.UnsafePackError, match="not a stored member"):
            carry.unpack_run(packed, tmp_path / f"moved-{case}")
        assert not (tmp_path / f"moved-{case}").exists()


def test_a_torn_newest_checkpoint_is_not_packed(tmp_path):
    """A data file cut short (a hard stop before it reached the disk) while the state file still lists it: pack
    refuses it, naming the checkpoint, instead of carrying it off with nothing to fall back on; nothing is
    written. The script says so in one line."""
    _trained_run(tmp_path / "run")
    data = tmp_path / "run" / f"{runs.EPOCH_PREFIX}-3.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-2])
    with pytest.raises(runs.CorruptCheckpointError, match=r"model\.ckpt-3 cannot be read"):
        carry.pack_run(tmp_path / "run", tmp_path / "packed")
    assert not (tmp_path / "packed").exists()
    assert not [p for p in tmp_path.iterdir() if ".packing-" in p.name]
    import subprocess
    import sys
    script = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "carry_run.py"
    out = subprocess.run([sys.executable, str(script), "pack", str(tmp_path / "run"), str(tmp_path / "packed")],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: Checkpoint") and "cannot be read" in out.stderr
