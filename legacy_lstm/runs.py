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

What else a resume survives: a Saver state file that is missing or damaged (the epoch checkpoints are then found
on disk, with a warning; ``--mode=test`` finds them the same way) -- but a curve that records finished epochs
with no checkpoint left to resume from is refused, not trained over (``DamagedRunDirError``); a missing or
damaged curve.json (the curve is read from curve.csv, with a warning, and both are rewritten whole); a damaged or
incomplete final checkpoint (checked like the epoch ones, its ``.meta`` included, and written again from the
restored epoch); the temporary files of writers that were killed (swept under the writer lock). A checkpoint
that cannot be written (a full disk) is one ``CheckpointWriteError`` naming it, and leaves no temporary file.

Carrying a run to another machine: ``legacy_lstm/carry.py``.

One writer at a time: ``Run.resume`` (the start of every training) takes an exclusive lock on
``<run_dir>/.lock`` (``flock``; the kernel drops it when the process dies, even by ``kill -9``), and a second
training into the same folder stops at once with ``RunDirBusyError`` instead of interleaving checkpoints.
"""

import csv
import dataclasses
import errno
import hashlib
import io
import json
import os
import pathlib
import re
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
STATE_FILE = "checkpoint"  # the Saver's
SITTINGS = "sittings.jsonl"
STOP = "STOP"  # in a run directory: ends the training sitting at the next epoch boundary (or one before a deadline)

# Manifest fields that must match for a checkpoint to be restored into a graph (everything else, such as
# versions or the git commit, only gets a warning when it differs).
CHECKED_FIELDS = ("app", "preset", "config", "quirks", "split_seed", "cell", "vocab_sha256")


class ManifestMismatchError(ValueError):
    """The run directory was made by a run with another configuration."""


class CorruptCheckpointError(ValueError):
    """A checkpoint's files cannot be read back (truncated, damaged, or not written by this graph)."""


class DamagedRunDirError(ValueError):
    """A file of the run directory that a resume needs (the curve) is missing or damaged beyond recovery."""


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, read-only folder); the earlier ones are intact."""


def _try_lock(handle):
    """Take the flock of the open lock file ``handle``: None when taken, else the holder's pid as it wrote it."""
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise
        handle.seek(0)
        return handle.read().strip() or "unknown"
    return None


def writer(run_dir):
    """The pid (as written) of the process holding ``run_dir``'s writer lock, or None when none does (or the
    platform has no flock). The lock is only tried, never kept."""
    path = pathlib.Path(run_dir) / LOCK
    if fcntl is None or not path.exists():
        return None
    with open(path, "a+") as handle:
        holder = _try_lock(handle)
        if holder is None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return holder


class RunDirBusyError(RuntimeError):
    """Another process is training into the same run directory."""


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or Inf loss; the last good checkpoint is kept."""


def atomic_write_text(path, text):
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # e.g. a full disk: no half-written temporary file stays behind
        if tmp.exists():
            tmp.unlink()
        raise


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


def app_module(name):
    """The module of app ``name`` (None if there is none): the running ``__main__`` when it is that app (``python -m
    legacy_lstm.<app>``: importing it again would define its flags twice), else ``legacy_lstm.<name>``."""
    import importlib
    main = sys.modules.get("__main__")
    if isinstance(name, str) and getattr(main, "APP", None) == name:
        return main
    try:
        return importlib.import_module(f"legacy_lstm.{name}")
    except ImportError:
        return None


def _field_defaults(cls):
    """{field: default} of a dataclass, as JSON values (tuples become lists), for the fields that have one."""
    return json.loads(json.dumps({f.name: f.default for f in dataclasses.fields(cls)
                                  if f.default is not dataclasses.MISSING}))


def with_app_defaults(manifest, like):
    """A copy of ``manifest`` (a run's, or a results document) completed for the fields added to its app after it
    was written: each field that ``like`` (the manifest it is compared with) has in its ``config`` or ``quirks`` and
    ``manifest`` lacks, at the default of the app's ``Config`` or ``Quirks`` class. The convention that makes this
    right: a field is added with the behaviour the code had before as its default (a quirk switch defaults to the
    original; IMDB's ``head`` defaults to the head every preset had before presets got their own, so an old
    ``stacked`` run is still told apart from today's ``stacked``; PTB's ``precision`` defaults to float32). Only
    fields ``like`` has: a manifest leaves some fields of its Config out on purpose. The one place this is decided:
    the resume check (``Run.check_manifest``), the results' seed grouping (``report``) and the seed plan
    (scripts/seed_spread.py) use it. An unknown app's manifest is returned as it is."""
    out = dict(manifest)
    app = app_module(manifest.get("app"))
    for key, cls in (("config", getattr(app, "Config", None)), ("quirks", getattr(app, "Quirks", None))):
        theirs = like.get(key)
        if isinstance(out.get(key), dict) and isinstance(theirs, dict) and dataclasses.is_dataclass(cls):
            defaults = _field_defaults(cls)
            out[key] = {**{k: defaults[k] for k in theirs if k in defaults and k not in out[key]}, **out[key]}
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
        problems = diff_manifests(with_app_defaults(saved, self.manifest), self.manifest)
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
        return self._save(sess, f"{EPOCH_PREFIX}-{epoch}", str(self.dir / EPOCH_PREFIX), global_step=epoch,
                          write_meta_graph=False)

    def save_final(self, sess):
        return self._save(sess, self.final_name, str(self.dir / self.final_name), write_meta_graph=True)

    def _save(self, sess, name, prefix, **kwargs):
        """``Saver.save``; a failed write (a full disk, a read-only folder) is one CheckpointWriteError naming
        the checkpoint, and the temporary files of the write are removed (the resume contract keeps the state
        file and the earlier checkpoints as they were)."""
        try:
            return self.saver.save(sess, prefix, **kwargs)
        except (tf.errors.OpError, OSError) as err:
            sweep_temporary_files(self.dir)
            message = getattr(err, "message", None) or str(err)
            raise CheckpointWriteError(
                f"Cannot write the checkpoint {self.dir / name} ({type(err).__name__}: "
                f"{message.strip().splitlines()[0] if message.strip() else ''}). Free space or fix the folder's "
                "permissions, then rerun the same command to resume from the last finished epoch.") from err

    def lock(self):
        """Take the run directory's writer lock (held until ``close``); RunDirBusyError if another holds it (and
        ``writer`` says who, without taking it)."""
        if fcntl is None or self._lock_file is not None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.dir / LOCK, "a+")
        try:
            holder = _try_lock(handle)
        except OSError:
            handle.close()
            raise
        if holder is not None:
            handle.close()
            raise RunDirBusyError(f"{self.dir} is being written by another process (pid {holder}). Wait for it "
                                  "to finish, stop it, or use another --run_dir.")
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
        sweep_temporary_files(self.dir)
        epochs = self.epoch_checkpoints()
        problem = checkpoint_state_problem(self.dir)
        if epochs and problem:
            logging.warning("The Saver state file %s is %s; resuming from the epoch checkpoints found on disk "
                            "(newest: %s)", self.dir / STATE_FILE, problem, epochs[max(epochs)])
        if epochs and saved is None:
            raise DamagedRunDirError(
                f"{self.dir} holds epoch checkpoints (newest: {epochs[max(epochs)]}) but no {MANIFEST}: the run's "
                "config cannot be checked, and starting anew would overwrite its curve; refusing to train over it. "
                f"Restore its {MANIFEST}, or move the run directory away (or use another --run_dir) to start again.")
        if not epochs or saved is None:
            done = _curve_epochs(self.dir)
            if saved is not None and len(done) > 1:  # row n is written before checkpoint n: one row may be ahead
                raise DamagedRunDirError(
                    f"{self.dir} records {len(done)} finished epochs in its curve but holds no epoch checkpoint "
                    f"({EPOCH_PREFIX}-<epoch>.index) to resume from; refusing to train over it. Move the run "
                    "directory away (or use another --run_dir) to start again.")
            self._record_sitting(0)
            return 0
        if self.final_name and self.has_checkpoint(self.final_name):
            self._check_final(sess)
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
        self.curve = read_curve(self.dir, last)
        if failures:  # the files too: a report read before this sitting trains must not show discarded epochs
            write_curve(self.dir, self.curve)
        return last

    def _check_final(self, sess):
        """The final checkpoint is checked like the epoch ones (and its meta graph must be there): a damaged or
        incomplete one is deleted, so that the end of training writes it again from the restored epoch."""
        path = str(self.dir / self.final_name)
        problem = None
        if not pathlib.Path(f"{path}.meta").exists():
            problem = f"{path}.meta is missing (the save was interrupted)"
        else:
            try:
                self._restore_checked(sess, path)  # the epoch checkpoint restored next overwrites every variable
            except (CorruptCheckpointError, ManifestMismatchError) as err:
                problem = str(err)
        if problem:
            logging.warning("The final checkpoint %s is damaged or incomplete (%s); it is written again from the "
                            "newest good epoch checkpoint", path, problem)
            self.delete_checkpoint(self.final_name)

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
        """The newest checkpoint: the Saver state file's, else (that one's files gone, or the state file missing or
        damaged) the newest it lists that exists, else the newest ``model.ckpt-<epoch>`` on disk, with a warning."""
        state, problem = _checkpoint_state(self.dir)
        if state is not None:
            listed = [state.model_checkpoint_path] + list(reversed(state.all_model_checkpoint_paths))
            for path in dict.fromkeys(listed):
                if path and tf1.train.checkpoint_exists(path):
                    if path != listed[0]:
                        logging.warning("The newest checkpoint %s is gone; using %s", listed[0], path)
                    return path
            problem = f"lists no checkpoint that exists ({listed[0]})"
        found = _epochs_on_disk(self.dir)
        if not found:
            return None
        if problem:
            logging.warning("The Saver state file %s is %s; using the newest epoch checkpoint on disk, %s",
                            self.dir / STATE_FILE, problem, found[max(found)])
        return found[max(found)]

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
        if pathlib.Path(path).is_dir():
            newest = tf1.train.latest_checkpoint(path) if checkpoint_state_problem(path) is None else None
            raise FileNotFoundError(f"--checkpoint={path} is a directory, not a checkpoint prefix: pass a prefix "
                                    f"such as {newest or path + '/model.ckpt-<epoch>'} (the files <prefix>.index, "
                                    "<prefix>.data-*), or that folder as --run_dir.")
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
        return read_curve(self.dir)

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


def _checkpoint_state(run_dir):
    """(the Saver state of ``run_dir`` or None, what is wrong with its state file or None)."""
    run_dir = pathlib.Path(run_dir).resolve()
    try:
        state = tf1.train.get_checkpoint_state(str(run_dir))
    except (ValueError, UnicodeDecodeError, tf.errors.OpError) as err:
        return None, f"unreadable ({type(err).__name__}: {str(err).strip().splitlines()[0] if str(err) else ''})"
    if state is None:
        return None, "missing" if not (run_dir / STATE_FILE).exists() else "unreadable (not a checkpoint state)"
    return state, None


def checkpoint_state_problem(run_dir):
    """What is wrong with the Saver state file of ``run_dir`` (None: it reads, or there is none in a new run)."""
    state, problem = _checkpoint_state(run_dir)
    return problem if state is None and _epochs_on_disk(run_dir) else None


def _epochs_on_disk(run_dir):
    """{epoch: prefix} of the ``model.ckpt-<epoch>`` checkpoints whose index is in ``run_dir``."""
    run_dir = pathlib.Path(run_dir).resolve()
    found = {}
    for path in run_dir.glob(f"{EPOCH_PREFIX}-*.index"):
        match = re.fullmatch(rf"{re.escape(EPOCH_PREFIX)}-(\d+)\.index", path.name)
        if match:
            found[int(match.group(1))] = str(run_dir / path.name[:-len(".index")])
    return found


def epoch_checkpoints(run_dir):
    """{epoch: prefix} of the per-epoch checkpoints the Saver state file of ``run_dir`` still lists; when that file
    is missing or cannot be read (deleted, damaged), those found on disk (``Run.resume`` says so)."""
    state, _ = _checkpoint_state(run_dir)
    if state is None:
        return _epochs_on_disk(run_dir)
    found = {}
    for path in state.all_model_checkpoint_paths:  # get_checkpoint_state has joined them with the dir
        match = re.search(rf"{re.escape(EPOCH_PREFIX)}-(\d+)$", path)
        if match and tf1.train.checkpoint_exists(path):
            found[int(match.group(1))] = path
    return found


# What an interrupted writer leaves: TensorFlow's bundle writer (``*.tempstate<n>``), its atomic writes of the
# state file and meta graph (``*.tmp<hex>``), a sharded save's ``*_temp`` folder, this module's ``.<name>.tmp``.
_TEMPORARY = re.compile(r".*(\.tempstate\d*|\.tmp[0-9a-f]*|_temp(_[0-9a-f]+)?)")


def sweep_temporary_files(run_dir):
    """Delete the temporary files interrupted writers left in ``run_dir`` (call with the writer lock held)."""
    run_dir = pathlib.Path(run_dir)
    if not run_dir.is_dir():
        return []
    swept = []
    for path in run_dir.iterdir():
        if path.name == LOCK or not _TEMPORARY.fullmatch(path.name):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                for inner in path.iterdir():
                    inner.unlink()
                path.rmdir()
            else:
                path.unlink()
            swept.append(path.name)
        except OSError as err:
            logging.warning("Cannot remove the temporary file %s: %s", path, err)
    if swept:
        logging.info("Removed temporary files left by an interrupted write in %s: %s", run_dir, ", ".join(swept))
    return swept


def sitting_seed(seed, run_dir):
    """The graph seed of this sitting: ``seed`` for a fresh run, ``seed + finished epochs`` when resuming.

    Stateful random ops (the DropoutWrapper masks, the originals' dropout) restart their streams in every new
    graph; reseeding with the same seed would make each resumed sitting replay the first sitting's masks. A
    resumed seeded run is repeatable (the same interruption points give the same numbers) but not bit-identical
    to an uninterrupted one. None stays None (unseeded, as the originals). The count is of the checkpoints the
    state file lists (those on disk when the state file is lost), so a sitting that falls back past a damaged
    one is seeded as if that one had been read."""
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
    """The manifest of ``run_dir``, or None if it has none; NotADirectoryError when ``run_dir`` is a file."""
    if pathlib.Path(run_dir).exists() and not pathlib.Path(run_dir).is_dir():
        raise NotADirectoryError(f"{run_dir} is a file, not a run directory: point --run_dir at a folder (a new "
                                 "one, or one that holds a run).")
    if not (pathlib.Path(run_dir) / MANIFEST).exists():
        return None
    return _current_names(read_json(run_dir, MANIFEST))


def _current_names(manifest):
    """A manifest as the current package names things: Andy Thomas's PTB tutorial was the ``thomas`` preset of
    app ``ptb`` before it became the app ``ptb_thomas`` (same config, same graph), so such a run dir is read as
    ``ptb_thomas``'s and resumes, tests and generates there."""
    if isinstance(manifest, dict) and manifest.get("app") == "ptb" and \
            (manifest.get("config") or {}).get("style") == "thomas":
        manifest = dict(manifest, app="ptb_thomas")
    return manifest


def _read_curve_csv(path):
    """Rows of a curve.csv written by ``write_curve``: numbers back to int/float (``repr`` round-trips exactly),
    True/False to bool; an empty cell is a column the row did not have."""
    def value(text):
        if text in ("True", "False"):
            return text == "True"
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text
    with open(path, encoding="utf-8", newline="") as f:
        rows = [{k: value(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    if any("epoch" not in row for row in rows):
        raise ValueError("a row has no epoch")
    return rows


def _read_curve_json(path):
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list) or not all(isinstance(row, dict) and "epoch" in row for row in rows):
        raise ValueError("not a list of rows with an epoch")
    return rows


def _curve_epochs(run_dir):
    """The epochs the curve of ``run_dir`` records (either file; [] when neither reads)."""
    for name, reader in ((CURVE_JSON, _read_curve_json), (CURVE_CSV, _read_curve_csv)):
        try:
            return [row["epoch"] for row in reader(pathlib.Path(run_dir) / name)]
        except (OSError, ValueError, TypeError):
            continue
    return []


RECENT_ROWS = 5  # a run's recent pace: its last few curve rows (a sitting's slow first row moves a median little)


def recent_seconds(curve):
    """The recorded wall ``seconds`` of the curve's last RECENT_ROWS rows that have them (the machine and path
    each row ran on: report.projection's rate, a STOP deadline's first estimate)."""
    return [r["seconds"] for r in curve[-RECENT_ROWS:] if r.get("seconds")]


def read_curve(run_dir, last=None):
    """The curve of ``run_dir``: curve.json, or -- when it is missing, damaged or (given ``last``, the epoch a
    resume restored) lacks one of the rows 1..last -- curve.csv, with a warning; then only the rows up to
    ``last``. [] when neither file exists and no row is needed; DamagedRunDirError when neither holds them."""
    run_dir = pathlib.Path(run_dir)
    problems = []
    for name, reader in ((CURVE_JSON, _read_curve_json), (CURVE_CSV, _read_curve_csv)):
        path = run_dir / name
        if not path.exists():
            problems.append(f"{name} is missing")
            continue
        try:
            rows = reader(path)
        except (ValueError, TypeError) as err:  # JSONDecodeError, UnicodeDecodeError, csv.Error are ValueErrors
            problems.append(f"{name} is damaged ({type(err).__name__}: {str(err)[:100]})")
            continue
        if last is not None:
            rows = [row for row in rows if row["epoch"] <= last]
            if [row["epoch"] for row in rows] != list(range(1, last + 1)):
                problems.append(f"{name} lacks rows of epochs 1..{last} (it has {[row['epoch'] for row in rows]})")
                continue
        if problems:
            logging.warning("%s: %s; the curve was read from %s", run_dir, "; ".join(problems), path)
        return rows
    if not last and all(problem.endswith("is missing") for problem in problems):
        return []
    raise DamagedRunDirError(f"The curve of {run_dir} cannot be recovered: {'; '.join(problems)}. Move the run "
                             "directory away (or use another --run_dir) to start again.")


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


def check_checkpoint_readable(path):
    """Read every tensor of the checkpoint ``path`` (TF checks each one's crc32c as it reads); CorruptCheckpointError
    naming the first that cannot be read, e.g. a data file torn by a hard stop whose state file still lists it."""
    try:
        reader = tf1.train.load_checkpoint(str(path))
        for name in sorted(reader.get_variable_to_shape_map()):
            reader.get_tensor(name)
    # TF's reader raises its OpErrors, and for a short read a plain IndexError ("Read less bytes than requested")
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError) as err:
        first_line = (getattr(err, "message", None) or str(err)).strip().splitlines()[0]
        raise CorruptCheckpointError(f"Checkpoint {path} cannot be read ({type(err).__name__}: {first_line})") \
            from err


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
