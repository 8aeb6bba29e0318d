"""The one training driver of every app, and the one way to open a trained run.

``train(loop, run_dir, manifest, ...)`` does what every app's training has in common, in this order:

1. the seed: a resume keeps the run's own seed (``resolve_seed``; another ``--seed`` than the run's is refused
   by name, like any other manifest field), and each sitting seeds Python, NumPy and the graph with
   ``runs.sitting_seed`` (the seed plus the finished epochs, so a resumed sitting does not replay the first
   sitting's dropout masks);
2. a fresh graph, in which the app's ``Loop.build`` builds its model;
3. the run directory: ``runs.Run`` takes the writer lock, checks the manifest and restores the newest
   per-epoch checkpoint (resume), or writes the manifest and vocabulary (a new run);
4. the epoch loop (an "epoch" is whatever the app checkpoints after: an epoch, fables' display of
   ``display_step`` iterations, essentials' block of ``log_every`` iterations): the app's ``Loop.epoch`` trains
   one and returns its curve row, the driver records the row (curve CSV/JSON, TensorBoard) and checkpoints it;
5. the final checkpoint under the original's name, once the run is complete.

A file named ``STOP`` in the run directory (``touch <run dir>/STOP``) ends a sitting cleanly at the next epoch
boundary: the epoch in progress finishes and is checkpointed, the file is removed, and the same command later
resumes after that epoch (one process; not on a cluster). Long reproductions use it to stop before a machine's
time runs out without losing a partial epoch. A STOP file that holds a time (UNIX seconds, or ISO 8601 such as
``2026-12-02T02:00:00+00:00``; ``date -d '+2 hours' +%s > <run dir>/STOP``) is a deadline instead: the sitting
trains on and stops at the first epoch boundary from which one more epoch would end after that time (an epoch's
length: the median wall time of this sitting's epochs, else of the curve's last recorded ones), or at once when
the time has passed. It may be written before the sitting starts or while it runs.

The app plugs in through a ``Loop`` subclass; ``Sitting`` is what its hooks get. Inside an epoch the app calls
``check_finite`` on every loss (the NaN guard: it stops before the epoch is checkpointed, so the last good
checkpoint is kept) and ``sitting.tick()`` after every batch (the progress display, on stderr; the original's
log lines stay on stdout as they were).

``open_run(run_dir, app)`` opens a trained run for test/predict/generate: its manifest and vocabulary, with
the vocabulary checked against the manifest's sha256.
"""

import contextlib
import dataclasses
import datetime
import math
import pathlib
import statistics
import sys
import time

import numpy as np

from legacy_lstm import runs
from legacy_lstm.compat import seed_everything, tf, tf1


# ---------------------------------------------------------------------------------------------------------
# Seeds
# ---------------------------------------------------------------------------------------------------------
def resolve_seed(saved, seed):
    """The seed of a sitting: the run's own when resuming (``saved`` is its manifest, None for a new run).

    ``seed=None`` on a resume takes the run's seed; a seed that differs from the run's (a seeded run resumed
    with another ``--seed``, or an unseeded one resumed with a seed) is a ManifestMismatchError naming it: the
    seed is part of what a run is, and mixing two would make the run repeatable by neither."""
    if saved is None:
        return seed
    if seed is not None and saved.get("seed") != seed:
        raise runs.ManifestMismatchError(
            f"--seed={seed} differs from the seed of the run being resumed (seed: {saved.get('seed')}). Leave "
            "--seed out to resume with the run's own, or use another --run_dir for a new run.")
    return saved.get("seed")


def check_finite(loss, where):
    """The NaN guard: a NonFiniteLossError, before anything of the epoch is saved, when ``loss`` is NaN or inf."""
    if not np.isfinite(loss):
        raise runs.NonFiniteLossError(f"loss is {loss} at {where}; stopped without saving this epoch. {_AFTER_NAN}")


_AFTER_NAN = ("The last finished epoch's checkpoint is intact and the same command resumes from it; if the NaN comes "
              "back, check the data, or train with another learning rate in a new --run_dir (a run keeps its "
              "config).")


def check_finite_weights(sess, var_list, epoch):
    """The NaN guard for what a loss cannot show: the update of an epoch's last step (its loss was computed before
    it). A NonFiniteLossError naming the variables, before the epoch is saved, when a float variable holds a NaN
    or inf. Reads every variable once an epoch; adds no op to the graph."""
    bad = [v.op.name for v, x in zip(var_list, sess.run(var_list)) if not _all_finite(np.asarray(x))]
    if bad:
        raise runs.NonFiniteLossError(f"after epoch {epoch} the weights hold NaN or inf ({', '.join(bad[:5])}"
                                      f"{', ...' if len(bad) > 5 else ''}); stopped without saving this epoch. "
                                      f"{_AFTER_NAN}")


def _all_finite(x):
    """False when a float array (bfloat16 too: its dtype kind is not "f") holds a NaN or inf; True for the rest."""
    if x.dtype.kind not in "fc" and "float" not in x.dtype.name:
        return True
    return bool(np.isfinite(x).all())


# ---------------------------------------------------------------------------------------------------------
# Progress
# ---------------------------------------------------------------------------------------------------------
class _Lines:
    """A file for tqdm when stderr is not a terminal (a nohup log): each redraw becomes one plain line."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        text = text.replace("\r", "").rstrip()
        if text:
            self._stream.write(text + "\n")

    def flush(self):
        self._stream.flush()


PLAIN_LINE_SECONDS = 60.0  # when stderr is not a terminal: a progress line this often (none for shorter epochs)


class Progress:
    """Batch i/N, batches/s and the ETA of the epoch and of the run, on stderr.

    Redrawn in place on a terminal; a plain line every ``plain_seconds`` (default ``PLAIN_LINE_SECONDS``) when
    stderr is not one (nohup logs). ``enabled=False`` shows nothing."""

    def __init__(self, enabled, unit="epoch", stream=None, plain_seconds=None):
        self.enabled = enabled
        self.unit = unit
        self._stream = stream if stream is not None else sys.stderr
        self._plain_seconds = PLAIN_LINE_SECONDS if plain_seconds is None else plain_seconds
        self._bar = None
        self._epoch_starts = []  # when each epoch of this sitting started
        self._remaining = 0
        self._started = 0.0
        self._last_postfix = 0.0
        self._terminal = False

    @contextlib.contextmanager
    def epoch(self, epoch, total_epochs, batches):
        """Show the progress of one epoch of ``batches`` batches (None: unknown) while the block runs."""
        if not self.enabled:
            yield
            return
        from tqdm import tqdm
        terminal = self._terminal = hasattr(self._stream, "isatty") and self._stream.isatty()
        self._remaining = total_epochs - epoch
        self._started = time.time()
        self._epoch_starts.append(self._started)
        # Off a terminal: miniters=1 keeps tqdm's monitor thread from forcing extra redraws, so mininterval alone
        # spaces the lines; delay keeps an epoch shorter than that silent.
        self._bar = tqdm(total=batches, desc=f"{self.unit} {epoch}/{total_epochs}", unit="batch", leave=False,
                         file=self._stream if terminal else _Lines(self._stream), dynamic_ncols=terminal,
                         mininterval=0.5 if terminal else self._plain_seconds, ascii=not terminal,
                         delay=0 if terminal else self._plain_seconds, miniters=None if terminal else 1)
        try:
            yield
        finally:
            self._bar.close()
            self._bar = None

    def wrap(self, log):
        """``log`` that clears the bar on a terminal before a line is printed and redraws it after."""
        def wrapped(*args, **kwargs):
            bar = self._bar
            if bar is None or not self._terminal:
                return log(*args, **kwargs)
            bar.clear()
            try:
                return log(*args, **kwargs)
            finally:
                bar.refresh()
        return wrapped

    def tick(self, n=1):
        if self._bar is None:
            return
        self._bar.update(n)
        now = time.time()
        if now - self._last_postfix >= 1.0:
            self._last_postfix = now
            eta = self._run_eta(now)
            if eta is not None:
                self._bar.set_postfix_str(f"run ETA {_clock(eta)}", refresh=False)

    def _run_eta(self, now):
        """Seconds until the run's last epoch ends: this epoch's rest plus the remaining epochs at this sitting's
        mean time from one epoch's start to the next (its evaluation and checkpoint included); before one epoch
        has finished, the current epoch's projected batch time."""
        done, total = self._bar.n, self._bar.total
        if not done or not total:
            return None
        elapsed = now - self._started
        this_epoch = elapsed * total / done
        starts = self._epoch_starts
        per_epoch = (starts[-1] - starts[0]) / (len(starts) - 1) if len(starts) > 1 else this_epoch
        return this_epoch - elapsed + self._remaining * per_epoch


def _clock(seconds):
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# ---------------------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Sitting:
    """What the driver hands the app's hooks: one sitting of training in one session."""
    sess: object
    graph: object
    run: runs.Run
    model: object
    done: int            # epochs finished before this sitting
    num_epochs: int      # train up to this epoch in this call (<= total_epochs)
    total_epochs: int    # the config's count: the run is complete at this many
    run_dir: str
    log: object
    progress: Progress
    epoch: int = 0       # the epoch being trained
    replica: object = None  # on a cluster: this worker task's legacy_lstm.distributed.Replica

    def batches(self, n):
        """Context of one epoch of ``n`` batches (the progress display); call ``tick`` after each batch."""
        return self.progress.epoch(self.epoch, self.total_epochs, n)

    @property
    def is_chief(self):
        """True in one process and on a cluster's chief: the process that writes the run directory."""
        return self.replica is None or self.replica.cluster.is_chief

    def share(self, n, items, split=True):
        """(count, iterable): the batches of this epoch this process trains, of the epoch's ``n`` batches
        ``items``. In one process all of them, unchanged; on a cluster this worker's share (round-robin when
        ``split``; ``split=False`` when the app gave each worker its own data), as legacy_lstm/distributed.py
        describes."""
        if self.replica is None:
            return n, items
        return self.replica.share(self.epoch, n, items, split)

    def tick(self, n=1):
        self.progress.tick(n)


class Loop:
    """What an app plugs into ``train``. Override ``build`` and ``epoch``; the rest has the common defaults."""

    unit = "epoch"            # what one checkpoint is: epoch | display | block
    final_name = None         # the original's final checkpoint name (saved once the run is complete)
    session_config = None     # a tf1.ConfigProto for the session
    stops_early = False       # should_stop can end the run early (on a cluster the workers then follow the chief)

    def build(self):
        """Build the model in the (default) graph; return it. Called after seeding."""
        raise NotImplementedError

    def var_list(self):
        """The variables the run's Saver covers (None: every global variable)."""
        return None

    def resumed(self, sitting):
        """The line logged when a sitting resumes."""
        return f"Resuming {sitting.run_dir} after {self.unit} {sitting.done}."

    def fresh(self, sitting):
        """A new run, after the manifest is written: write what else the run dir holds, run extra init ops."""

    def start(self, sitting):
        """After initialisation and resume, before the graph is finalized: make callables, extra Savers."""

    def context(self, sitting):
        """A context around the epoch loop (e.g. the queue runners)."""
        return contextlib.nullcontext()

    def should_stop(self, sitting):
        """Checked before each epoch: True ends the loop (e.g. early stopping)."""
        return False

    def epoch(self, sitting, epoch):
        """Train epoch ``epoch`` (1-based) and return its curve row (with an ``"epoch"`` key)."""
        raise NotImplementedError

    def summaries(self, row):
        """{subdir: {tag: value}} for TensorBoard."""
        return {}

    def after_epoch(self, sitting, row):
        """After the epoch's checkpoint."""

    def finished(self, sitting):
        return len(sitting.run.curve) == sitting.total_epochs

    def finish(self, sitting, finished):
        """The end of the loop, in the session: the final checkpoint once the run is complete (also after a crash
        between the last epoch and this save)."""
        if finished and self.final_name and not sitting.run.has_checkpoint(self.final_name):
            sitting.run.save_final(sitting.sess)


def train(loop, run_dir, manifest, total_epochs, max_epochs=None, seed=None, vocab=None, log=print,
          progress=False, unit_label=None, cluster=None):
    """Train ``loop`` in ``run_dir`` (resuming an unfinished run of the same config) up to ``max_epochs``
    epochs in total (default: all ``total_epochs``).

    ``manifest``: the run's resolved config (checked against a saved one on resume); ``seed``: already resolved
    (``resolve_seed``); ``vocab``: saved as vocab.json with a new run. ``progress``: show the progress display.
    ``cluster``: a worker task's ``legacy_lstm.distributed.Cluster`` (None: one process): the model is built for
    the ps tasks, the chief alone writes the run directory, and each worker trains its share of every epoch
    (``Sitting.share``); the manifest gets a ``cluster`` field (not checked on restore).
    Returns {"curve", "run_dir", "seed", "finished", "seconds", "done_before"}."""
    from legacy_lstm import cli
    num_epochs = cli.epochs_to_run(total_epochs, max_epochs, unit_label or f"{loop.unit}s")
    start = time.time()
    replica = None
    if cluster is not None:
        from legacy_lstm import distributed
        replica = distributed.Replica(cluster, log)
        manifest = dict(manifest, cluster=cluster.describe())
    graph = tf.Graph()
    with graph.as_default():
        sitting_seed = runs.sitting_seed(seed, run_dir)  # seed + finished epochs when resuming
        seed_everything(replica.seed(sitting_seed) if replica else sitting_seed)
        model = replica.build(loop.build) if replica else loop.build()
        if replica:
            run = replica.make_run(run_dir, manifest, loop.final_name, replica.var_list(loop.var_list()))
        else:
            run = runs.Run(run_dir, manifest, final_name=loop.final_name, var_list=loop.var_list())
        session_config = replica.session_config(loop.session_config) if replica else loop.session_config
        with tf1.Session(replica.target if replica else "", graph=graph, config=session_config) as sess:
            bar = Progress(progress, loop.unit)
            sitting = Sitting(sess, graph, run, model, 0, num_epochs, total_epochs, str(run_dir), bar.wrap(log), bar,
                              replica=replica)
            try:
                if replica:
                    sitting.done = replica.start(sess, run, vocab, loop, sitting)
                else:
                    sess.run(tf1.global_variables_initializer())
                    sitting.done = run.resume(sess)
                    if not sitting.done:
                        run.write_manifest(vocab=vocab)
                        loop.fresh(sitting)
                if sitting.done:
                    log(loop.resumed(sitting))
                loop.start(sitting)
                graph.finalize()  # nothing below may add ops: the graph does not grow during training
                with loop.context(sitting):
                    timed = []  # wall seconds of this sitting's epochs, checkpoint included (a STOP deadline's basis)
                    stopped = False  # by the STOP file (which is then gone)
                    for epoch in range(sitting.done + 1, num_epochs + 1):
                        if _should_stop(loop, sitting, epoch):
                            break
                        if replica is None and _stop_file(run_dir, epoch, log, timed or runs.recent_seconds(run.curve)):
                            stopped = True
                            break
                        sitting.epoch = epoch
                        began = time.time()
                        row = loop.epoch(sitting, epoch)
                        if getattr(run, "var_list", None):  # a cluster's non-chief workers save nothing
                            check_finite_weights(sess, run.var_list, epoch)
                        run.finish_epoch(sess, row, loop.summaries(row))
                        loop.after_epoch(sitting, row)
                        timed.append(time.time() - began)
                    # the sitting ran its epochs or the app stopped it (early stopping): a STOP file made meanwhile,
                    # or a deadline not reached, has nothing left to stop
                    if not stopped and replica is None and _take_stop_file(run_dir):
                        log(f"{pathlib.Path(run_dir) / runs.STOP} found after the sitting's last epoch: the "
                            "sitting ended anyway; removed.")
                    finished = loop.finished(sitting)
                    loop.finish(sitting, finished)
            finally:
                run.close()
                if replica:
                    replica.finish()
    return {"curve": run.curve, "run_dir": str(run_dir), "seed": seed, "finished": finished,
            "seconds": time.time() - start, "done_before": sitting.done}


def _take_stop_file(run_dir):
    """True (and the file removed) when the run directory holds a ``STOP`` file."""
    path = pathlib.Path(run_dir) / runs.STOP
    if not path.exists():
        return False
    path.unlink(missing_ok=True)
    return True


def read_deadline(text):
    """The UNIX time a STOP file's ``text`` names (UNIX seconds, or ISO 8601; without a zone: local time);
    None for an empty file (stop at the next boundary). ValueError for anything else."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is not None:
        if not math.isfinite(value) or not 0 <= value < 1e11:  # before year 5138: what fromtimestamp can show
            raise ValueError(f"{text!r} is not a time in UNIX seconds")
        return value
    try:  # Python < 3.11 reads no trailing Z (UTC), which `date -u +%FT%TZ` writes
        return datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text).timestamp()
    except ValueError:
        raise ValueError(f"{text!r} is neither empty, UNIX seconds nor an ISO 8601 time") from None


def _stop_file(run_dir, epoch, log, seconds=()):
    """True (and the file removed) when the run directory's ``STOP`` file ends the sitting before ``epoch``: an
    empty (or unreadable) one at once, one holding a deadline when an epoch of the median of ``seconds`` would end
    after it (at once when it has passed; no estimate yet: only then)."""
    path = pathlib.Path(run_dir) / runs.STOP
    try:
        text = path.read_text()
    except FileNotFoundError:
        return False
    why = ""
    try:
        deadline = read_deadline(text)
    except ValueError as e:
        deadline, why = None, f" ({e}: read as a stop request)"
    if deadline is not None:
        now = time.time()
        need = statistics.median(seconds) if seconds else 0.0
        if now + need <= deadline:
            return False  # the file stays: it is checked again before the next epoch
        when = datetime.datetime.fromtimestamp(deadline).astimezone().isoformat(timespec="seconds")
        why = (f" (deadline {when}: passed)" if now >= deadline else
               f" (deadline {when}: an epoch of about {need:.0f} s would end {now + need - deadline:.0f} s after it)")
    path.unlink(missing_ok=True)
    log(f"{path} found{why}: stopped before epoch {epoch}; the same command resumes the run after epoch {epoch - 1}.")
    return True


def _should_stop(loop, sitting, epoch):
    """``loop.should_stop`` before ``epoch``; on a cluster, for a loop that ``stops_early``, the chief's verdict
    (published on the ps; the other workers wait for it), so that no worker trains an epoch the chief will not."""
    if sitting.replica is None or not loop.stops_early:
        return loop.should_stop(sitting)
    return sitting.replica.agree_to_stop(epoch, lambda: loop.should_stop(sitting))


# ---------------------------------------------------------------------------------------------------------
# Opening a trained run (test / predict / generate)
# ---------------------------------------------------------------------------------------------------------
def check_app(manifest, run_dir, app):
    """A ManifestMismatchError saying whose run ``run_dir`` is when its manifest is another app's (a manifest
    without an app, from before it was recorded, passes)."""
    if isinstance(manifest, dict) and manifest.get("app", app) != app:
        raise runs.ManifestMismatchError(f"{run_dir} holds a run of legacy_lstm.{manifest['app']}, not of "
                                         f"legacy_lstm.{app}: point --run_dir at a run of this app.")


@dataclasses.dataclass
class Opened:
    manifest: dict
    vocab: object  # the saved vocabulary (None for a run without one)


def open_run(run_dir, app):
    """The manifest and vocabulary of the trained run in ``run_dir``, checked: a missing manifest or vocabulary
    file, a run of another app, or a vocabulary that does not match the manifest's sha256 is one clear error."""
    manifest = runs.read_manifest(run_dir)
    if manifest is None:
        raise FileNotFoundError(f"{run_dir} has no {runs.MANIFEST}: train a model there first "
                                f"(python -m legacy_lstm.{app} --mode=train).")
    check_app(manifest, run_dir, app)
    vocab = None
    # a run written before the manifest named its vocabulary file has it as vocab.json
    name = manifest.get("vocab_file") or ("vocab.json" if (pathlib.Path(run_dir) / "vocab.json").exists() else None)
    if name:
        vocab = runs.read_json(run_dir, name)
        if runs.vocab_sha256(vocab) != manifest.get("vocab_sha256"):
            raise runs.ManifestMismatchError(
                f"{run_dir}/{name} does not match the manifest's vocab_sha256: the vocabulary was replaced or "
                "damaged; the model's outputs would be meaningless.")
    return Opened(manifest, vocab)
