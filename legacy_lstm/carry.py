"""Carrying a run directory to another machine (``scripts/carry_run.py`` is the command line).

``pack_run`` copies a run directory's newest epoch checkpoint and its small files into a folder (big files split
into parts, every file's size and sha256 listed in ``carried.json``; a file with the same bytes as one already
packed is stored once and listed with ``same_as``, e.g. Thomas's kept test checkpoint written at the newest
epoch; what the run's app says a resume does not need is left out and listed under ``left_out``, e.g. Thomas's
test checkpoint of an older epoch once its test is recorded), which can be committed or copied;
``unpack_run`` checks and reassembles it into a new run directory that resumes where the packed one stopped.

A pack is data from elsewhere (a commit, a copy): before anything is read or written, every member name in
``carried.json`` must be a plain relative path that stays inside the folder (no ``..``, no absolute path, no
backslash or empty part), every part name a plain file name, and no file of the pack may be reached through a
symbolic link; a pack that breaks this is refused whole (``UnsafePackError``).
"""

import hashlib
import json
import os
import pathlib
import re
import shutil
import time

from legacy_lstm import runs

CARRIED = "carried.json"
PART_BYTES = 40 * 2**20  # under the 50 MB above which git hosts warn about a file


class UnsafePackError(ValueError):
    """A pack's ``carried.json`` names a file outside the pack or the run directory (``..``, an absolute path),
    or a file of the pack is a symbolic link."""


def pack_run(run_dir, out_dir, part_bytes=PART_BYTES, replace=False):
    """Copy what ``run_dir`` needs to resume -- its newest epoch checkpoint (read whole first: CorruptCheckpointError
    if it cannot be), the final checkpoint if written, and every other file but older checkpoints and the lock --
    into the new folder ``out_dir``; files over
    ``part_bytes`` are split into ``<name>.partNNN``. ``carried.json`` lists each file's size, sha256 and parts.
    ``replace``: ``out_dir`` may hold an earlier pack (of an older epoch), which the new one replaces once it is
    complete. Returns the packed epoch."""
    run_dir, out_dir = pathlib.Path(run_dir).resolve(), pathlib.Path(out_dir)
    if part_bytes < 1:
        raise ValueError(f"part size {part_bytes} bytes: it must be at least 1")
    epochs = runs.epoch_checkpoints(run_dir)
    if not epochs:
        raise FileNotFoundError(f"{run_dir} holds no epoch checkpoint to pack.")
    last = max(epochs)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not replace:
            raise FileExistsError(f"{out_dir} is not empty; pack into a new folder (or replace an earlier pack).")
        if not (out_dir / CARRIED).exists():
            raise FileExistsError(f"{out_dir} is not a packed run ({CARRIED} is missing); refusing to replace it.")
        problems = runs.diff_manifests(runs.read_json(out_dir, runs.MANIFEST), runs.read_json(run_dir, runs.MANIFEST),
                                  runs.CHECKED_FIELDS + ("seed",))
        if problems:
            raise runs.ManifestMismatchError(f"{out_dir} holds another run than {run_dir}; not replaced:\n  " +
                                        "\n  ".join(problems))
        earlier = runs.read_json(out_dir, CARRIED)["epoch"]
        if earlier > last:
            raise ValueError(f"{out_dir} holds epoch {earlier}, newer than {run_dir}'s epoch {last}; not replaced.")
    keep = pathlib.Path(epochs[last]).name
    # a checkpoint torn by a hard stop would be carried faithfully, sha256 and all, with nothing to fall back on
    runs.check_checkpoint_readable(epochs[last])
    left_out, why = _app_skip(run_dir, keep)
    staging = out_dir.with_name(f".{out_dir.name}.packing-{os.getpid()}")
    files, stored = {}, {}  # stored: (size, sha256) -> the member whose bytes the pack holds
    try:
        for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(run_dir).as_posix()
            if rel in (runs.LOCK, runs.STOP, "checkpoint", CARRIED) or ".tmp" in path.name or (
                    rel.startswith(f"{runs.EPOCH_PREFIX}-") and not rel.startswith(f"{keep}.")) or rel in left_out:
                continue  # older checkpoints; the atomic writers' and TF's temporary files; what the app leaves out
            # hashed as copied: a file the training rewrites meanwhile (curve, events) is recorded as it was read
            blocks, digest, size = [], hashlib.sha256(), 0
            try:
                with open(path, "rb") as src:
                    for block in iter(lambda: src.read(part_bytes), b""):
                        digest.update(block)
                        size += len(block)
                        blocks.append(block)
            except FileNotFoundError:
                if rel.startswith(f"{keep}."):
                    raise
                continue  # gone since it was listed (e.g. a temporary file of the training)
            same = stored.get((size, digest.hexdigest()))
            if same is not None:  # the same bytes are in the pack already: listed, not stored twice
                files[rel] = {"size": size, "sha256": digest.hexdigest(), "parts": [], "same_as": same}
                continue
            stored[(size, digest.hexdigest())] = rel
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            parts = [f"{target.name}.part{index:03d}" for index in range(len(blocks))] if len(blocks) > 1 else []
            for name, block in zip(parts or [target.name], blocks or [b""]):
                target.with_name(name).write_bytes(block)
            files[rel] = {"size": size, "sha256": digest.hexdigest(), "parts": parts}
        record = {"source": str(run_dir), "packed": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "epoch": last,
                  "checkpoint": keep, "files": files}
        if left_out:
            record["left_out"] = {"files": sorted(left_out), "why": why}
        runs.atomic_write_text(staging / CARRIED, json.dumps(record, indent=1, sort_keys=True))
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        old = out_dir.with_name(f".{out_dir.name}.replaced-{os.getpid()}")
        if out_dir.exists():
            out_dir.rename(old)  # the earlier pack stays whole until the new one is in place
        staging.rename(out_dir)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return last


def _app_skip(run_dir, keep):
    """(set of run-dir file names, reason): what the run's app says a resume does not need beside the newest
    checkpoint ``keep`` (its module's ``carry_skip(run_dir, keep)``, e.g. ptb_thomas: his test checkpoint once its
    test is recorded)."""
    manifest = runs.read_manifest(run_dir) or {}
    module = runs.app_module(manifest.get("app")) if manifest.get("app") else None
    skip = getattr(module, "carry_skip", None)
    if skip is None:
        return set(), None
    names, why = skip(run_dir, keep)
    return set(names), why


_EPOCH_CHECKPOINT = re.compile(rf"{re.escape(runs.EPOCH_PREFIX)}-\d+")


def _check_member(packed_dir, rel, what="member"):
    """Refuse a member name that is not a plain relative POSIX path inside the pack (UnsafePackError)."""
    parts = rel.split("/") if isinstance(rel, str) else None
    if (not parts or rel.startswith("/") or "\\" in rel or "\0" in rel or re.match(r"^[A-Za-z]:", rel)
            or any(part in ("", ".", "..") for part in parts)):
        raise UnsafePackError(f"{packed_dir / CARRIED} names the {what} {rel!r}, which is not a plain relative path "
                              "inside the pack (no '..', no absolute path); the whole pack is refused.")


def _check_record(packed_dir, record):
    """Every name in a pack's record, checked before anything is read or written (see the module docstring)."""
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or not isinstance(record.get("epoch"), int):
        raise UnsafePackError(f"{packed_dir / CARRIED} is not a pack record (no files or epoch); the pack is refused.")
    for rel, entry in files.items():
        _check_member(packed_dir, rel)
        parts = entry.get("parts") if isinstance(entry, dict) else None
        if not isinstance(parts, list):
            raise UnsafePackError(f"{packed_dir / CARRIED}: the entry of {rel!r} has no list of parts; the pack is "
                                  "refused.")
        if not isinstance(entry.get("size"), int) or not isinstance(entry.get("sha256"), str):
            raise UnsafePackError(f"{packed_dir / CARRIED}: the entry of {rel!r} has no size or sha256 to check it "
                                  "by; the pack is refused.")
        if "same_as" in entry:
            same = entry["same_as"]
            source = files.get(same) if isinstance(same, str) else None
            if not isinstance(source, dict) or "same_as" in source or parts:
                raise UnsafePackError(f"{packed_dir / CARRIED}: {rel!r} is the same as {same!r}, which is not a "
                                      "stored member of the pack; the pack is refused.")
        for part in parts:
            _check_member(packed_dir, part, "part")
            if "/" in part:
                raise UnsafePackError(f"{packed_dir / CARRIED} names the part {part!r} of {rel!r}, which is not a "
                                      "plain file name; the whole pack is refused.")
    checkpoint = record.get("checkpoint")
    if not isinstance(checkpoint, str) or not _EPOCH_CHECKPOINT.fullmatch(checkpoint):
        raise UnsafePackError(f"{packed_dir / CARRIED} names the checkpoint {checkpoint!r}, not a "
                              f"{runs.EPOCH_PREFIX}-<epoch> of the pack; the whole pack is refused.")
    for rel, entry in files.items():
        if "same_as" in entry:
            continue  # nothing of its own in the pack (its source is checked as itself)
        for name in entry["parts"] or [rel.split("/")[-1]]:
            _check_not_linked(packed_dir, pathlib.PurePosixPath(rel).with_name(name))


def _check_not_linked(packed_dir, rel):
    """Refuse a file of the pack reached through a symbolic link (the file or a folder above it in the pack)."""
    path = packed_dir
    for part in rel.parts:
        path = path / part
        if path.is_symlink():
            raise UnsafePackError(f"{path} is a symbolic link: a pack holds plain files only; the whole pack is "
                                  "refused.")


def _read_pack_record(packed_dir):
    """The checked ``carried.json`` of ``packed_dir`` (FileNotFoundError when it has none)."""
    packed_dir = pathlib.Path(packed_dir)
    if not (packed_dir / CARRIED).exists():
        raise FileNotFoundError(f"{packed_dir} is not a packed run: it has no {CARRIED} (see scripts/carry_run.py).")
    if (packed_dir / CARRIED).is_symlink():
        raise UnsafePackError(f"{packed_dir / CARRIED} is a symbolic link: a pack holds plain files only; the "
                              "pack is refused.")
    record = runs.read_json(packed_dir, CARRIED)
    _check_record(packed_dir, record)
    return record


def packed_files(packed_dir):
    """Yield (relative path, bytes) of each file of a pack written by ``pack_run``, parts joined, after checking
    its size and sha256 against ``carried.json``: a missing part is FileNotFoundError, a damaged file
    CorruptCheckpointError, each naming the file."""
    packed_dir = pathlib.Path(packed_dir)
    record = _read_pack_record(packed_dir)
    for rel, entry in sorted(record["files"].items()):
        held = entry.get("same_as", rel)  # the member whose stored bytes these are
        held_entry = record["files"][held]
        sources = [packed_dir / pathlib.PurePosixPath(held).with_name(part) for part in held_entry["parts"]]
        chunks = []
        for source in sources or [packed_dir / held]:
            try:
                chunks.append(source.read_bytes())
            except FileNotFoundError as err:
                raise FileNotFoundError(f"{source} is missing: the packed run is incomplete.") from err
        data = b"".join(chunks)
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise runs.CorruptCheckpointError(f"{packed_dir / rel} does not match its size and sha256 in "
                                              f"{packed_dir / CARRIED}: the packed run is damaged.")
        yield rel, data


def unpack_run(packed_dir, run_dir):
    """Rebuild a run directory from a folder written by ``pack_run``, checking every file's size and sha256;
    ``run_dir`` must not exist yet (nothing is overwritten) and is only created once everything checked out.
    A pack whose record names a file outside it, or holds a symbolic link, is refused before anything is written
    (UnsafePackError). Returns the epoch the run resumes after."""
    packed_dir, run_dir = pathlib.Path(packed_dir), pathlib.Path(run_dir)
    record = _read_pack_record(packed_dir)
    if run_dir.is_symlink():  # e.g. ~/.cache/.../runs/<name> -> a bigger disk: fill the folder it points to
        run_dir = run_dir.resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(f"{run_dir} already holds a run; refusing to overwrite it. Move it away or unpack "
                              "into another folder.")
    staging = run_dir.with_name(f".{run_dir.name}.unpacking-{os.getpid()}")
    if staging.is_symlink():
        staging.unlink()
    elif staging.exists():  # left by a killed unpack of a process with this pid
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        for rel, data in packed_files(packed_dir):
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        state = f'"{record["checkpoint"]}"'
        (staging / "checkpoint").write_text(f"model_checkpoint_path: {state}\nall_model_checkpoint_paths: {state}\n")
        if run_dir.exists():
            run_dir.rmdir()  # empty (checked above)
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(run_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return record["epoch"]
