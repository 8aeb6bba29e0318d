"""The command-line contract every app follows (absl flags defined once, here).

Flag names are process-global in absl, so the flags all apps share live in this module; each app adopts
them as key flags (``--helpshort`` lists them) and defines only its own quirk flags. Flags are read only in
an app's ``main``; everything below ``main`` takes plain arguments.
"""

import functools
import os
import secrets
import sys

from absl import app, flags, logging

from legacy_lstm.data.download import DataNotFoundError, default_data_dir

PRESET = flags.DEFINE_string("preset", None, "Hyperparameter preset: the published config by default, or "
                             "`test` (tiny, for CI). Each app lists its presets in its docstring.")
MODE = flags.DEFINE_enum("mode", "train", ["train", "test", "predict", "generate", "interactive"],
                         "train (resumes from the run dir), test (evaluate the latest checkpoint), predict; "
                         "generate/interactive for the language-model apps. Each app says which it supports.")
DATA_DIR = flags.DEFINE_string("data_dir", None, "Folder with the data files (default: $LEGACY_LSTM_DATA, "
                               "else the per-user cache dir ~/.cache/legacy_lstm).")
RUN_DIR = flags.DEFINE_string("run_dir", None, "Run directory: checkpoints, manifest, curve, TensorBoard "
                              "events (default: checkpoints/<app>/<preset>).")
SEED = flags.DEFINE_integer("seed", None, "Seed for Python, NumPy and the TF graph; also makes the RNN loop "
                            "deterministic (parallel_iterations=1). Default: unseeded, as the originals.")
MAX_EPOCHS = flags.DEFINE_integer("max_epochs", None, "Stop training after this many epochs in total, at most "
                                  "the preset's (a later run with a larger value resumes; fables and essentials "
                                  "count their logged blocks of iterations).", lower_bound=1)
CELL = flags.DEFINE_enum("cell", "basic", ["basic", "block", "cudnn_compatible", "fused"],
                         "LSTM cell: basic (BasicLSTMCell, the originals'), block (the raw LSTMBlockCell op, faster "
                         "on CPU), cudnn_compatible (LSTMBlockCell with forget_bias 0, TF1's "
                         "CudnnCompatibleLSTMCell) or fused (basic's variables and maths, run over the whole "
                         "sequence by legacy_lstm.fast_lstm; stocktwits, ptb and ptb_thomas). Recorded in the "
                         "manifest; `python -m legacy_lstm.convert` converts checkpoints between them.")
NATIVE_LSTM = flags.DEFINE_boolean("native_lstm", False, "With --cell=fused (ptb: or --rnn_mode=fused): run each "
                                   "layer's per-step recurrence in two compiled ops of our own "
                                   "(legacy_lstm/csrc/lstm_seq.cc, built with $CXX or g++ on first use and cached) "
                                   "instead of TF while loops: the same model within float32 rounding, faster where "
                                   "measured (docs/cells.md). The command line is recorded in sittings.jsonl.")
PROMPT = flags.DEFINE_string("prompt", None, "--mode=generate (language-model apps): the words to continue, "
                             "e.g. \"had a general\" (fables: exactly its 3 input words).")
NUM_WORDS = flags.DEFINE_integer("num_words", 32, "generate/interactive: how many words to generate after the "
                                 "prompt (fables' original: 32).", lower_bound=1)
PROGRESS = flags.DEFINE_boolean("progress", True, "Training: show the progress of each epoch on stderr (batch i/N, "
                                "batches/s, ETA of the epoch and of the run); the original's log lines stay on "
                                "stdout. --noprogress turns it off.")
CHECKPOINT = flags.DEFINE_string("checkpoint", None, "test/predict: checkpoint prefix to restore (default: the "
                                 "newest in --run_dir). May be a checkpoint written by the original TF 1.x code.")

# Distributed training on TensorFlow's runtime (legacy_lstm/distributed.py), with the names of TF1's distributed
# examples; every app's main reads them with resolve_cluster.
PS_HOSTS = flags.DEFINE_list("ps_hosts", [], "Distributed training: comma-separated host:port list of the "
                             "parameter server (ps) tasks, the same on every task.")
WORKER_HOSTS = flags.DEFINE_list("worker_hosts", [], "Distributed training: comma-separated host:port list of the "
                                 "worker tasks (the first is the chief, which writes the run directory).")
JOB_NAME = flags.DEFINE_enum("job_name", None, ["ps", "worker"], "Distributed training: this task's job.")
TASK_INDEX = flags.DEFINE_integer("task_index", 0, "Distributed training: this task's index in its job's host "
                                  "list (worker 0 is the chief).", lower_bound=0)
SYNC_REPLICAS = flags.DEFINE_boolean("sync_replicas", True, "Distributed training: synchronous updates "
                                     "(SyncReplicasOptimizer: the gradients of --replicas_to_aggregate workers "
                                     "averaged per step); --nosync_replicas: asynchronous.")
REPLICAS_TO_AGGREGATE = flags.DEFINE_integer("replicas_to_aggregate", None, "Distributed training, sync: gradients "
                                             "averaged per update (default: the number of workers).", lower_bound=1)
CLUSTER_FLAGS = ("ps_hosts", "worker_hosts", "job_name", "task_index", "sync_replicas", "replicas_to_aggregate")


def _cluster_flags_given():
    return [name for name in CLUSTER_FLAGS if name in flags.FLAGS and not flags.FLAGS[name].using_default_value]


def resolve_cluster(mode):
    """The ``legacy_lstm.distributed.Cluster`` of the distributed flags, or None when none is given (one process).
    They train only: with another --mode they are a usage error."""
    given = _cluster_flags_given()
    if not given:
        return None
    if mode != "train":
        raise app.UsageError(f"--{' --'.join(given)}: the cluster flags are for --mode=train; test, predict and "
                             "generate run in one process on the chief's run directory")
    from legacy_lstm import distributed
    try:
        return distributed.from_flags(PS_HOSTS.value, WORKER_HOSTS.value, JOB_NAME.value, TASK_INDEX.value,
                                      SYNC_REPLICAS.value, REPLICAS_TO_AGGREGATE.value)
    except ValueError as err:
        raise app.UsageError(str(err)) from None


def resolve_common(app_name, presets, default_preset, modes, argv, positional_modes=(), positional_hint=""):
    """The preamble of every app's ``main``: (preset name, mode, run dir), with usage errors for an unknown
    preset, an unsupported mode, or positional arguments outside ``positional_modes``. Every app trains on a
    cluster too: its main reads the distributed flags with ``resolve_cluster``."""
    preset, _ = resolve_preset(presets, default_preset)
    mode = resolve_mode(modes)
    if len(argv) > 1 and mode not in positional_modes:
        raise app.UsageError(f"Unexpected arguments {argv[1:]}{f' ({positional_hint})' if positional_hint else ''}")
    resolve_native_lstm(mode)
    return preset, mode, resolve_run_dir(app_name, preset)


def resolve_native_lstm(mode="train"):
    """--native_lstm: the fused path's native ops, built and loaded now (a usage error saying why if they cannot be,
    or when training without the fused path; other modes take the cell from the run, where it matters if fused)."""
    if not NATIVE_LSTM.value:
        return
    fused = CELL.value == "fused" or ("rnn_mode" in flags.FLAGS and flags.FLAGS["rnn_mode"].value == "fused")
    if mode == "train" and not fused:
        raise app.UsageError("--native_lstm runs the fused path's recurrence: it needs --cell=fused")
    from legacy_lstm import fast_lstm, native_ops
    try:
        native_ops.load()
    except native_ops.NativeOpsUnavailable as e:
        raise app.UsageError(f"--native_lstm: {e}") from None
    fast_lstm.OPTIONS["native"] = True


def refuse_cell(allowed, reason):
    """1, after an error line on stderr saying ``reason``, when --cell is not one of ``allowed``; else None. Apps
    call it before reading any data."""
    if CELL.value in allowed:
        return None
    print(f"error: --cell={CELL.value} is not available here: {reason}", file=sys.stderr)
    return 1


def resolve_preset(presets, default):
    """Return (name, config) of --preset, with a usage error that lists the valid names."""
    name = PRESET.value or default
    if name not in presets:
        raise app.UsageError(f"--preset={name!r} is not one of {', '.join(sorted(presets))}")
    return name, presets[name]


def preset_config(presets, preset):
    """(name, config) for ``preset``, a preset name or a config object (the Python API). A config equal to a
    named preset is recorded under that name, so its run dir restores under ``--preset``; any other config is
    "custom". Plain arguments: no flag is read here."""
    if isinstance(preset, str):
        if preset not in presets:
            raise ValueError(f"preset {preset!r} is not one of {', '.join(sorted(presets))}")
        return preset, presets[preset]
    name = next((name for name, config in presets.items() if config == preset), "custom")
    return name, preset


def resolve_mode(supported):
    """Return --mode, with a usage error when the app does not support it."""
    if MODE.value not in supported:
        raise app.UsageError(f"--mode={MODE.value} is not supported here; use one of {', '.join(supported)}")
    return MODE.value


def resolve_run_dir(app_name, preset_name):
    return RUN_DIR.value or os.path.join("checkpoints", app_name, preset_name)


def resolve_data_dir():
    return DATA_DIR.value or str(default_data_dir())


def draw_seed(name, given, log=None):
    """Return ``given``, or draw a fresh seed and say so (through ``log``, e.g. the app's print, else absl's
    INFO log) so the run can be repeated."""
    if given is not None:
        return given
    seed = secrets.randbelow(2**31 - 1) + 1
    message = f"{name} not given: drew {seed} (pass --{name}={seed} to repeat it)"
    if log is None:
        logging.info(message)
    else:
        log(message)
    return seed


def epochs_to_run(total, max_epochs, unit="epochs"):
    """How many of the preset's ``total`` epochs (or blocks) to train: all, or ``max_epochs`` of them. More than
    the preset has is a ValueError (the count is part of the config a run is checked against)."""
    if max_epochs is None:
        return total
    if max_epochs > total:
        raise ValueError(f"--max_epochs={max_epochs} is more than the preset's {total} {unit}; it can only stop "
                         "training earlier.")
    return max_epochs


def check_given_flags(run_dir, skip=(), aliases=None):
    """Modes other than train take the config and quirks from the run's manifest. A flag given explicitly with
    another value than the run's -- ``--preset``, ``--cell``, ``--split_seed``, each quirk flag (named as the
    manifest's quirks), and each of ``aliases`` ({flag: manifest field it sets}) -- is a ManifestMismatchError
    naming each, instead of being silently ignored. Nothing to check without a manifest (e.g. an original TF 1.x
    checkpoint); ``skip``: flags not to compare."""
    from legacy_lstm.runs import ManifestMismatchError, read_manifest
    saved = read_manifest(run_dir)
    if saved is None:
        return
    expected = {"preset": saved.get("preset"), "cell": saved.get("cell"), "split_seed": saved.get("split_seed"),
                **(saved.get("quirks") or {})}
    expected.update({flag: saved.get(field) for flag, field in (aliases or {}).items()})
    problems = []
    for name, value in expected.items():
        if name in skip or name not in flags.FLAGS or value is None:
            continue
        flag = flags.FLAGS[name]
        if not flag.using_default_value and str(flag.value) != str(value):
            problems.append(f"--{name}={flag.value} (the run's: {value})")
    if problems:
        raise ManifestMismatchError(f"{run_dir} was trained with other settings than given: {'; '.join(problems)}. "
                                    "Its own are used when the flags are left out.")


def read_messages(argv, stdin=None):
    """The texts of a predict mode: the positional arguments, else one per line of standard input.

    Bytes that are not UTF-8 (in a line of input or an argument) become U+FFFD, so one bad line neither stops
    the others nor fails when printed back; no message at all is a ValueError (reported as one line)."""
    if len(argv) > 1:
        return [arg.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for arg in argv[1:]]
    stdin = sys.stdin if stdin is None else stdin
    if stdin.isatty():
        print("Reading messages from standard input, one per line (end with Ctrl-D).", file=sys.stderr)
    raw = getattr(stdin, "buffer", None)
    text = raw.read().decode("utf-8", "replace") if raw is not None else stdin.read()
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")
    if not text:
        raise ValueError("No messages: pass them as arguments or one per line on standard input.")
    return lines


def run(main):
    """``app.run(main)``, with the package's expected errors reported as one clear line instead of a traceback."""
    app.run(guard(main))


def guard(main):
    """``main`` with the package's expected errors -- and any OSError (a file or folder that cannot be read or
    written, named in its message) or TensorFlow file error -- printed as one ``error:`` line, returning 1."""
    from legacy_lstm.runs import ManifestMismatchError, NonFiniteLossError, RunDirBusyError

    @functools.wraps(main)
    def guarded(argv):
        try:
            return main(argv)
        except (DataNotFoundError, ManifestMismatchError, NonFiniteLossError, RunDirBusyError, OSError,
                ValueError) as err:
            print(f"error: {_one_line(err)}", file=sys.stderr)
            return 1
        except Exception as err:  # TensorFlow's file errors (tf.errors.OpError) name the file in their first line
            if not _is_tf_error(err):
                raise
            print(f"error: {_one_line(err)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("interrupted: rerun the same command to resume from the last finished epoch", file=sys.stderr)
            return 130

    return guarded


def _is_tf_error(err):
    from legacy_lstm.compat import tf
    return isinstance(err, tf.errors.OpError)


def _one_line(err):
    """The error's message; an OSError's with its file name (``[Errno 20] Not a directory: 'x'``); a TensorFlow
    error's first line only (its message goes on with the op's traceback)."""
    message = getattr(err, "message", None) if _is_tf_error(err) else None
    text = str(message if message is not None else err).strip()
    return (text.splitlines()[0] if _is_tf_error(err) and text else text) or type(err).__name__
