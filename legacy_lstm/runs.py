"""The run directory: one folder per run, shared by every app.

    <run_dir>/
      manifest.json              resolved config, quirks, seeds, cell, vocab file + sha256, versions, git commit
      vocab.json                 the vocabulary the checkpoint was trained with (apps that have one)
      checkpoint                 Saver state file (relative paths: the folder can be moved)
      model.ckpt-<epoch>.*       one checkpoint per finished epoch (the epoch is the Saver's global_step)
      <final name>.ckpt.*        the original's final checkpoint name (e.g. sentiment.ckpt)
      curve.csv, curve.json      the per-epoch curve, rewritten atomically after each epoch
      sittings.jsonl             one line per training sitting: start time, epoch resumed after, git commit
                                 (+ uncommitted changes?), command line, versions, machine -- a run resumed across
                                 commits says which code trained which epochs
      train/, validation/        TensorBoard event files

Resume contract: an epoch's curve row is written (atomically) before its checkpoint, and the Saver updates its
state file only after the checkpoint data is complete. So after any interruption -- even ``kill -9`` -- the
curve holds at least the rows of every checkpointed epoch; ``Run.resume`` restores the newest
``model.ckpt-<n>`` that reads back and keeps the first ``n`` rows (a row of an epoch whose checkpoint was not
finished is dropped and that epoch is trained again). A damaged newest checkpoint (a disk fault, a copy cut short)
costs its epochs, not the run: resume falls back to the one before it, and the final checkpoint, which may hold
a discarded epoch's weights, is deleted so that the end of training writes it again (``Run.discarded`` lists the
discarded epochs, for apps with checkpoints of their own).

Carrying a run to another machine: ``pack_run`` copies a run directory's newest epoch checkpoint and its small
files into a folder (big files split into parts, every file's sha256 listed in ``carried.json``), which can be
committed or copied; ``unpack_run`` checks and reassembles it into a new run directory that resumes where the
packed one stopped (``scripts/carry_run.py`` is the command line).

One writer at a time: ``Run.resume`` (the start of every training) takes an exclusive lock on
``<run_dir>/.lock`` (``flock``; the kernel drops it when the process dies, even by ``kill -9``), and a second
training into the same folder stops at once with ``RunDirBusyError`` instead of interleaving checkpoints.
"""

import csv
import errno
import hashlib
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

try:
    import fcntl
except ImportError:  # not POSIX: no run-dir lock
    fcntl = None

from absl import logging

from legacy_lstm import __version__
from legacy_lstm.compat import machine, tf, tf1, versions

MANIFEST = "manifest.json"
CURVE_JSON = "curve.json"
CURVE_CSV = "curve.csv"
EPOCH_PREFIX = "model.ckpt"
LOCK = ".lock"
SITTINGS = "sittings.jsonl"
CARRIED = "carried.json"
PART_BYTES = 40 * 2**20  # under the 50 MB above which git hosts warn about a file

# Manifest fields that must match for a checkpoint to be restored into a graph (everything else, such as
# versions or the git commit, only gets a warning when it differs).
CHECKED_FIELDS = ("app", "preset", "config", "quirks", "split_seed", "cell", "vocab_sha256")


class ManifestMismatchError(ValueError):
    """The run directory was made by a run with another configuration."""


class CorruptCheckpointError(ValueError):
    """A checkpoint's files cannot be read back (truncated, damaged, or not written by this graph)."""


class RunDirBusyError(RuntimeError):
    """Another process is training into the same run directory."""


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or Inf loss; the last good checkpoint is kept."""


def atomic_write_text(path, text):
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _git(*args):
    """stdout of ``git <args>`` run in the package's folder, or None (not a git checkout, e.g. an installed copy)."""
    here = pathlib.Path(__file__).resolve().parent
    try:
        # --no-optional-locks: a status running beside a commit must not take (or trip over) .git/index.lock
        out = subprocess.run(["git", "--no-optional-locks", *args], cwd=here, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _git_commit():
    return (_git("rev-parse", "HEAD") or "").strip() or None


def git_state():
    """{"commit": HEAD or None, "dirty": tracked files changed since it (None if unknown)}; the committed
    results/ folder does not count (rewriting results while a run trains does not change the code)."""
    commit = _git_commit()
    status = (_git("status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)results")
              if commit else None)
    return {"commit": commit, "dirty": None if status is None else bool(status.strip())}


def vocab_sha256(vocab):
    if vocab is None:
        return None
    blob = json.dumps(vocab, sort_keys=True, ensure_ascii=True).encode()
    return hashlib.sha256(blob).hexdigest()


def _flatten(prefix, value, out):
    if isinstance(value, dict):
        for key in value:
            _flatten(f"{prefix}.{key}" if prefix else key, value[key], out)
    else:
        out[prefix] = value
    return out


def diff_manifests(saved, current, fields=CHECKED_FIELDS):
    """Return ['field: saved X, now Y', ...] for every checked (nested) field that differs."""
    saved_flat = _flatten("", {k: saved.get(k) for k in fields}, {})
    current_flat = _flatten("", {k: current.get(k) for k in fields}, {})
    return [f"{key}: saved {saved_flat.get(key)!r}, now {current_flat.get(key)!r}"
            for key in sorted(set(saved_flat) | set(current_flat))
            if saved_flat.get(key) != current_flat.get(key)]


class Run:
    """One run directory. Build the graph first, then create the Run (its Saver covers the graph's variables)."""

    def __init__(self, run_dir, manifest, final_name=None, max_to_keep=3, var_list=None):
        # Absolute: TF's checkpoint-state helpers join and relativise paths against the folder they are given.
        self.dir = pathlib.Path(run_dir).resolve()
        # A JSON round trip, so that what is compared is what a saved manifest holds (tuples become lists).
        self.manifest = json.loads(json.dumps(manifest, default=str))
        self.final_name = final_name
        self.var_list = list(var_list) if var_list is not None else tf1.global_variables()
        self.saver = tf1.train.Saver(var_list=self.var_list, max_to_keep=max_to_keep, save_relative_paths=True)
        self._writers = {}
        self.curve = []
        self.discarded = []  # epochs whose damaged checkpoints a resume fell back past
        self._lock_file = None

    # -- manifest ---------------------------------------------------------------------------------------
    def check_manifest(self):
        """Raise ManifestMismatchError naming each differing field, if the run dir holds another run."""
        saved = read_manifest(self.dir)
        if saved is None:
            return None
        problems = diff_manifests(saved, self.manifest)
        now = versions()
        changed = {k: (v, now.get(k)) for k, v in (saved.get("versions") or {}).items() if now.get(k) != v}
        if changed:
            logging.warning("%s was written with other versions (saved, now): %s; numbers may differ slightly",
                            self.dir, changed)
        if problems:
            raise ManifestMismatchError(
                f"The run directory {self.dir} belongs to a run with another configuration; refusing to mix "
                "them. Differences:\n  " + "\n  ".join(problems) +
                "\nUse another --run_dir, or the flags of that run.")
        return saved

    def write_manifest(self, vocab=None):
        self.dir.mkdir(parents=True, exist_ok=True)
        manifest = dict(self.manifest)
        manifest.setdefault("package_version", __version__)
        manifest["versions"] = versions()
        state = git_state()
        manifest["git_commit"], manifest["git_dirty"] = state["commit"], state["dirty"]
        if vocab is not None:
            atomic_write_text(self.dir / "vocab.json", json.dumps(vocab, ensure_ascii=True))
            manifest["vocab_file"] = "vocab.json"
        atomic_write_text(self.dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, default=str))
        self.manifest = manifest

    # -- checkpoints ------------------------------------------------------------------------------------
    def epoch_checkpoints(self):
        """{epoch: prefix} of the per-epoch checkpoints the Saver state file still lists."""
        return epoch_checkpoints(self.dir)

    def finish_epoch(self, sess, row, summaries=None):
        """Record ``row`` (curve + TensorBoard), then checkpoint its epoch: the order the resume contract needs."""
        self.record_epoch(row, summaries)
        return self.save_epoch(sess, row["epoch"])

    def save_epoch(self, sess, epoch):
        self.dir.mkdir(parents=True, exist_ok=True)
        return self.saver.save(sess, str(self.dir / EPOCH_PREFIX), global_step=epoch, write_meta_graph=False)

    def save_final(self, sess):
        return self.saver.save(sess, str(self.dir / self.final_name), write_meta_graph=True)

    def lock(self):
        """Take the run directory's writer lock (held until ``close``); RunDirBusyError if another holds it."""
        if fcntl is None or self._lock_file is not None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.dir / LOCK, "a+")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise RunDirBusyError(f"{self.dir} is being written by another process (pid {holder}). Wait for it "
                                  "to finish, stop it, or use another --run_dir.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def resume(self, sess):
        """Take the writer lock, restore the newest per-epoch checkpoint; return the number of finished epochs
        (0 if none)."""
        self.lock()
        try:
            return self._resume(sess)
        except BaseException:
            self._unlock()
            raise

    def _resume(self, sess):
        saved = self.check_manifest()
        epochs = self.epoch_checkpoints()
        if not epochs or saved is None:
            self._record_sitting(0)
            return 0
        # The newest checkpoint that reads back: a damaged newest one (a disk fault, a copy cut short) costs the
        # epochs since the one before it, not the run.
        failures = []
        for last in sorted(epochs, reverse=True):
            try:
                self._restore_checked(sess, epochs[last])
                break
            except CorruptCheckpointError as err:
                failures.append(str(err))
                logging.warning("%s; trying the checkpoint before it", err)
        else:
            raise CorruptCheckpointError(
                f"No checkpoint in {self.dir} can be read:\n  " + "\n  ".join(failures) +
                "\nMove the run directory away (or use another --run_dir) to start again.")
        if failures:
            logging.warning("Resuming %s from epoch %d: %d newer checkpoint(s) could not be read", self.dir, last,
                            len(failures))
            self.discarded = [e for e in sorted(epochs) if e > last]
            if self.final_name and self.has_checkpoint(self.final_name):  # may hold a discarded epoch's weights
                self.delete_checkpoint(self.final_name)
        self._record_sitting(last)
        # Let this process's Saver rotate (max_to_keep) the checkpoints of earlier sittings too (only the
        # readable ones: a damaged newer one is overwritten when its epoch is trained again).
        self.saver.recover_last_checkpoints([epochs[e] for e in sorted(epochs) if e <= last])
        self.curve = [row for row in self.load_curve() if row["epoch"] <= last]
        return last

    def _restore_checked(self, sess, path):
        """Shape check, then ``Saver.restore``; a checkpoint that cannot be read gives CorruptCheckpointError."""
        try:
            check_checkpoint_shapes(path, self.var_list)
        except FileNotFoundError as err:
            raise CorruptCheckpointError(str(err)) from err
        try:
            self.saver.restore(sess, path)
        except tf.errors.OpError as err:
            first_line = (err.message or str(err)).strip().splitlines()[0]
            raise CorruptCheckpointError(f"Checkpoint {path} cannot be read ({type(err).__name__}: "
                                         f"{first_line})") from err

    def _record_sitting(self, after_epoch):
        state = git_state()
        record = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "after_epoch": after_epoch, "pid": os.getpid(),
                  "git_commit": state["commit"], "git_dirty": state["dirty"], "argv": list(sys.argv),
                  "versions": versions(), "machine": machine()}
        path = self.dir / SITTINGS
        # a line cut short by a crash has no newline: end it, so this record starts a line of its own
        cut = path.exists() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
        with open(path, "a", encoding="utf-8") as f:
            f.write(("\n" if cut else "") + json.dumps(record, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def delete_checkpoint(self, prefix):
        """Remove the files of the checkpoint ``prefix`` in the run directory (its data shards and index)."""
        for path in self.dir.glob(f"{prefix}.*"):
            if path.name.startswith(f"{prefix}.data-") or path.name in (f"{prefix}.index", f"{prefix}.meta"):
                path.unlink()

    def has_checkpoint(self, prefix):
        """Whether the checkpoint ``prefix`` (e.g. ``sentiment.ckpt``) exists in the run directory."""
        return tf1.train.checkpoint_exists(str(self.dir / prefix))

    def latest_checkpoint(self):
        return tf1.train.latest_checkpoint(str(self.dir))

    def restore(self, sess, checkpoint=None, check_manifest=True):
        """Restore ``checkpoint`` (default: the newest in the run dir) after checking the manifest.

        ``check_manifest=False`` is for a checkpoint from outside (e.g. written by the original TF 1.x code),
        whose run directory holds no manifest to compare with; the variable shapes are still checked."""
        if check_manifest:
            self.check_manifest()
        path = checkpoint or self.latest_checkpoint()
        if path is None:
            raise FileNotFoundError(f"No checkpoint in {self.dir}. Train first (--mode=train) with the same "
                                    "--run_dir, or pass --checkpoint.")
        if not tf1.train.checkpoint_exists(path):
            raise FileNotFoundError(f"No checkpoint {path} (no {path}.index): check the --checkpoint prefix.")
        try:
            self._restore_checked(sess, path)
        except CorruptCheckpointError as err:
            raise CorruptCheckpointError(f"{err}. It is damaged or incomplete: pass an older one with "
                                         "--checkpoint, or train again into another --run_dir.") from err
        return path

    # -- curve and TensorBoard --------------------------------------------------------------------------
    def load_curve(self):
        path = self.dir / CURVE_JSON
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []

    def record_epoch(self, row, summaries=None):
        """Append a curve row, rewrite curve.json/csv, and log ``summaries`` {subdir: {tag: value}}."""
        self.curve = [r for r in self.curve if r["epoch"] != row["epoch"]] + [row]
        write_curve(self.dir, self.curve)
        for subdir, values in (summaries or {}).items():
            writer = self._writer(subdir)
            summary = tf1.Summary(value=[tf1.Summary.Value(tag=tag, simple_value=float(v))
                                         for tag, v in values.items()])
            writer.add_summary(summary, global_step=row["epoch"])
            writer.flush()

    def _writer(self, subdir):
        if subdir not in self._writers:
            self._writers[subdir] = tf1.summary.FileWriter(str(self.dir / subdir))
        return self._writers[subdir]

    def close(self):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
        self._unlock()

    def _unlock(self):
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock
            self._lock_file = None


def epoch_checkpoints(run_dir):
    """{epoch: prefix} of the per-epoch checkpoints the Saver state file of ``run_dir`` still lists."""
    state = tf1.train.get_checkpoint_state(str(pathlib.Path(run_dir).resolve()))
    found = {}
    if state is None:
        return found
    for path in state.all_model_checkpoint_paths:  # get_checkpoint_state has joined them with the dir
        match = re.search(rf"{re.escape(EPOCH_PREFIX)}-(\d+)$", path)
        if match and tf1.train.checkpoint_exists(path):
            found[int(match.group(1))] = path
    return found


def sitting_seed(seed, run_dir):
    """The graph seed of this sitting: ``seed`` for a fresh run, ``seed + finished epochs`` when resuming.

    Stateful random ops (the DropoutWrapper masks, the originals' dropout) restart their streams in every new
    graph; reseeding with the same seed would make each resumed sitting replay the first sitting's masks. A
    resumed seeded run is repeatable (the same interruption points give the same numbers) but not bit-identical
    to an uninterrupted one. None stays None (unseeded, as the originals). The count is of the checkpoints the
    state file lists, so a sitting that falls back past a damaged one is seeded as if that one had been read."""
    if seed is None:
        return None
    return seed + max(epoch_checkpoints(run_dir), default=0)


class HoldsSession:
    """``close`` and ``with`` for an object that holds a restored model's ``self.sess`` (the apps' predictors
    and generators)."""

    def close(self):
        self.sess.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_json(run_dir, name):
    """Load ``run_dir/name``; a missing or damaged file gives one clear error."""
    path = pathlib.Path(run_dir) / name
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path} is missing: the run directory is incomplete. Train again into it, "
                                "or point --run_dir at a complete run.") from err
    except json.JSONDecodeError as err:
        raise ManifestMismatchError(f"{path} is not valid JSON ({err}); it was damaged. Move the run "
                                    "directory away or point --run_dir elsewhere.") from err


def read_sittings(run_dir):
    """The training sittings recorded in ``run_dir`` (oldest first); [] for a run made before they were kept.

    A line cut short by a crash while it was written is skipped."""
    path = pathlib.Path(run_dir) / SITTINGS
    if not path.exists():
        return []
    sittings = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            sittings.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return sittings


def read_manifest(run_dir):
    """The manifest of ``run_dir``, or None if it has none."""
    if not (pathlib.Path(run_dir) / MANIFEST).exists():
        return None
    return read_json(run_dir, MANIFEST)


def write_curve(run_dir, curve):
    run_dir = pathlib.Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / CURVE_JSON, json.dumps(curve, indent=1))
    columns = list(dict.fromkeys(key for row in curve for key in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(curve)
    atomic_write_text(run_dir / CURVE_CSV, buf.getvalue())


def check_checkpoint_shapes(path, var_list):
    """Compare the checkpoint's variables with ``var_list``; raise ManifestMismatchError naming the first few
    that are missing or have another shape (instead of TF's long NotFoundError/InvalidArgumentError)."""
    try:
        stored = dict(tf1.train.list_variables(path))
    except (tf.errors.OpError, ValueError) as err:
        raise FileNotFoundError(f"Cannot read checkpoint {path}: {err}") from err
    problems = []
    for var in var_list:
        name, shape = var.op.name, var.shape.as_list()
        if name not in stored:
            problems.append(f"{name} {shape} is missing")
        elif list(stored[name]) != shape:
            problems.append(f"{name}: checkpoint has shape {list(stored[name])}, graph needs {shape}")
    if problems:
        raise ManifestMismatchError(f"Checkpoint {path} does not fit this graph (another config or cell?):\n  "
                                    + "\n  ".join(problems[:10]) +
                                    (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""))


def pack_run(run_dir, out_dir, part_bytes=PART_BYTES, replace=False):
    """Copy what ``run_dir`` needs to resume -- its newest epoch checkpoint, the final checkpoint if written, and
    every other file but older checkpoints and the lock -- into the new folder ``out_dir``; files over
    ``part_bytes`` are split into ``<name>.partNNN``. ``carried.json`` lists each file's size, sha256 and parts.
    ``replace``: ``out_dir`` may hold an earlier pack (of an older epoch), which the new one replaces once it is
    complete. Returns the packed epoch."""
    run_dir, out_dir = pathlib.Path(run_dir).resolve(), pathlib.Path(out_dir)
    if part_bytes < 1:
        raise ValueError(f"part size {part_bytes} bytes: it must be at least 1")
    epochs = epoch_checkpoints(run_dir)
    if not epochs:
        raise FileNotFoundError(f"{run_dir} holds no epoch checkpoint to pack.")
    last = max(epochs)
    if out_dir.exists() and any(out_dir.iterdir()):
        if not replace:
            raise FileExistsError(f"{out_dir} is not empty; pack into a new folder (or replace an earlier pack).")
        if not (out_dir / CARRIED).exists():
            raise FileExistsError(f"{out_dir} is not a packed run ({CARRIED} is missing); refusing to replace it.")
        problems = diff_manifests(read_json(out_dir, MANIFEST), read_json(run_dir, MANIFEST),
                                  CHECKED_FIELDS + ("seed",))
        if problems:
            raise ManifestMismatchError(f"{out_dir} holds another run than {run_dir}; not replaced:\n  " +
                                        "\n  ".join(problems))
        earlier = read_json(out_dir, CARRIED)["epoch"]
        if earlier > last:
            raise ValueError(f"{out_dir} holds epoch {earlier}, newer than {run_dir}'s epoch {last}; not replaced.")
    keep = pathlib.Path(epochs[last]).name
    staging = out_dir.with_name(f".{out_dir.name}.packing-{os.getpid()}")
    files = {}
    try:
        for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(run_dir).as_posix()
            if rel in (LOCK, "checkpoint", CARRIED) or ".tmp" in path.name or (
                    rel.startswith(f"{EPOCH_PREFIX}-") and not rel.startswith(f"{keep}.")):
                continue  # older checkpoints; the atomic writers' and TF's temporary files
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
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            parts = [f"{target.name}.part{index:03d}" for index in range(len(blocks))] if len(blocks) > 1 else []
            for name, block in zip(parts or [target.name], blocks or [b""]):
                target.with_name(name).write_bytes(block)
            files[rel] = {"size": size, "sha256": digest.hexdigest(), "parts": parts}
        record = {"source": str(run_dir), "packed": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "epoch": last,
                  "checkpoint": keep, "files": files}
        atomic_write_text(staging / CARRIED, json.dumps(record, indent=1, sort_keys=True))
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


def _read_pack_record(packed_dir):
    if not (packed_dir / CARRIED).exists():
        raise FileNotFoundError(f"{packed_dir} is not a packed run: it has no {CARRIED} (see scripts/carry_run.py).")
    return read_json(packed_dir, CARRIED)


def packed_files(packed_dir):
    """Yield (relative path, bytes) of each file of a pack written by ``pack_run``, parts joined, after checking
    its size and sha256 against ``carried.json``: a missing part is FileNotFoundError, a damaged file
    CorruptCheckpointError, each naming the file."""
    packed_dir = pathlib.Path(packed_dir)
    record = _read_pack_record(packed_dir)
    for rel, entry in sorted(record["files"].items()):
        sources = [packed_dir / pathlib.PurePosixPath(rel).with_name(part) for part in entry["parts"]]
        chunks = []
        for source in sources or [packed_dir / rel]:
            try:
                chunks.append(source.read_bytes())
            except FileNotFoundError as err:
                raise FileNotFoundError(f"{source} is missing: the packed run is incomplete.") from err
        data = b"".join(chunks)
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise CorruptCheckpointError(f"{packed_dir / rel} does not match its size and sha256 in "
                                         f"{packed_dir / CARRIED}: the packed run is damaged.")
        yield rel, data


def unpack_run(packed_dir, run_dir):
    """Rebuild a run directory from a folder written by ``pack_run``, checking every file's size and sha256;
    ``run_dir`` must not exist yet (nothing is overwritten) and is only created once everything checked out.
    Returns the epoch the run resumes after."""
    packed_dir, run_dir = pathlib.Path(packed_dir), pathlib.Path(run_dir)
    record = _read_pack_record(packed_dir)
    if run_dir.is_symlink():  # e.g. ~/.cache/.../runs/<name> -> a bigger disk: fill the folder it points to
        run_dir = run_dir.resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise FileExistsError(f"{run_dir} already holds a run; refusing to overwrite it. Move it away or unpack "
                              "into another folder.")
    staging = run_dir.with_name(f".{run_dir.name}.unpacking-{os.getpid()}")
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
