"""What the two PTB apps share: the official ``ptb_word_lm`` (legacy_lstm/ptb.py) and Andy Thomas's tutorial
(legacy_lstm/ptb_thomas.py), which was written from it.

The hyperparameter ``Config`` (one dataclass for both graphs, so their manifests read alike), the cell stack of
either graph, the placeholder input used for generation, loading the three files, the manifest, the session
settings, and generation (prompt encoding, sampling). The reader and the queue producer are in
legacy_lstm/data/ptb.py.
"""

import dataclasses
import json
import os
import pathlib
import sys
import time

import numpy as np
from absl import flags

from legacy_lstm import cells
from legacy_lstm import cli
from legacy_lstm import runs
from legacy_lstm.compat import tf, tf1
from legacy_lstm.data import download
from legacy_lstm.data import ptb as ptb_data

# No per-operation timeout in the sessions: range_input_producer's runner enqueues a whole epoch with one
# enqueue_many that blocks (queue capacity 32) until the epoch is nearly consumed, i.e. for a whole epoch (17 min
# for medium here). A session-wide operation_timeout_in_ms killed that op and closed the queue mid-epoch. Hangs are
# prevented by queue_runners instead: a dying runner closes its queue (the consumer gets OutOfRangeError), and on
# exit the coordinator stops and joins every runner.
SESSION_CONFIG = tf1.ConfigProto(operation_timeout_in_ms=0)


def session(graph):
    return tf1.Session(graph=graph, config=SESSION_CONFIG)


# ---------------------------------------------------------------------------------------------------------
# Hyperparameters
# ---------------------------------------------------------------------------------------------------------
# The rnn_modes that compute one function of one variable layout -- kernel [input + units, 4 * units] with the
# gates in i, j, f, o order, bias [4 * units], the forget bias added in the cell, no peepholes (tests/test_cells.py
# and tests/test_fast_lstm.py check block and fused against basic, outputs and gradients) -- and differ only in the
# name of the cell's variable scope (``cell_scope_name``). A run made on one may resume on another: the new path
# takes the run's variable names, the manifest keeps the run's rnn_mode, and each curve row records the path that
# trained its epoch (``"cell"``).
SWITCHABLE = ("basic", "block", "fused")


def cell_scope_name(rnn_mode, style):
    """The variable scope of one layer's cell: ``lstm_cell`` (LSTMBlockCell; Thomas's LSTMCell) or
    ``basic_lstm_cell`` (the official graph's BasicLSTMCell, which ``fused`` runs)."""
    return "lstm_cell" if rnn_mode == "block" or style == "thomas" else "basic_lstm_cell"


def resume_on(config, saved):
    """``config`` for a sitting that trains the run whose manifest is ``saved`` (None: a new run): when the run
    was made with another rnn_mode of SWITCHABLE than ``config.rnn_mode``, ``layout`` is set to the run's, so that
    the variables take its names and the manifest check compares the run's own config. Anything else that differs
    is left for the manifest check to refuse."""
    run_mode = ((saved or {}).get("config") or {}).get("rnn_mode")
    if run_mode != config.rnn_mode and run_mode in SWITCHABLE and config.rnn_mode in SWITCHABLE:
        return dataclasses.replace(config, layout=run_mode)
    return config


PRECISIONS = ("float32", "float16", "bfloat16")


@dataclasses.dataclass(frozen=True)
class Config:
    style: str = "official"        # official (ptb_word_lm) | thomas (lstm_tutorial.py)
    init_scale: float = 0.1
    learning_rate: float = 1.0
    max_grad_norm: float = 5.0
    num_layers: int = 2
    num_steps: int = 20
    hidden_size: int = 200
    epochs_at_initial_lr: int = 4  # the original's max_epoch
    epochs: int = 13               # the original's max_max_epoch
    keep_prob: float = 1.0
    lr_decay: float = 0.5
    batch_size: int = 20
    vocab_size: int = 10000
    forget_bias: float = 0.0
    rnn_mode: str = "block"        # basic | block | fused (basic's cells run by legacy_lstm.fast_lstm)
    tie_layers: bool = False       # one cell object in every layer (shared weights)
    # official: the dtype of the variables and of the whole computation, as ptb_word_lm's data_type():
    # float32, float16 (its --use_fp16) or bfloat16 (ours); no loss scaling and no float32 master weights
    precision: str = "float32"
    test_epoch: int = None         # thomas: the test restores the checkpoint after this many epochs
    print_iter: int = 50           # thomas: a log line every print_iter steps
    # Not part of the manifest: set when a run dir made on another path of SWITCHABLE is resumed on this one
    # (``resume_on``): the rnn_mode whose variable names the run's checkpoints have.
    layout: str = None

    def __post_init__(self):
        if self.style not in ("official", "thomas"):
            raise ValueError(f"style must be official or thomas, got {self.style!r}")
        if self.rnn_mode not in ("basic", "block", "fused"):
            raise ValueError(f"rnn_mode must be basic, block or fused, got {self.rnn_mode!r}")
        if self.layout not in (None, *SWITCHABLE):
            raise ValueError(f"layout must be None or one of {SWITCHABLE}, got {self.layout!r}")
        if self.style == "thomas" and self.num_layers < 2:
            raise ValueError("the thomas graph needs num_layers >= 2 (the original breaks with 1 layer)")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.precision != "float32":
            if self.style == "thomas":
                raise ValueError("Thomas's tutorial trains in float32 only (it has no --use_fp16)")
            if self.rnn_mode == "fused":
                raise ValueError(f"--precision={self.precision}: the fused path is float32 only; use --cell=basic"
                                 f"{' or block' if self.precision == 'float16' else ''}")
            if self.rnn_mode == "block" and self.precision == "bfloat16":
                raise ValueError("--precision=bfloat16: the LSTMBlockCell op has float16 and float32 kernels only; "
                                 "use --cell=basic")

    @property
    def dtype(self):
        """The TF dtype of the variables and the computation (ptb_word_lm's ``data_type()``)."""
        return tf.as_dtype(self.precision)

    def learning_rate_at(self, epoch_index):
        return self.learning_rate * self.lr_decay ** max(epoch_index + 1 - self.epochs_at_initial_lr, 0.0)


def resolve_config(presets, preset, **overrides):
    """(name, Config) of a preset name or Config, with the overrides that are not None applied."""
    name, config = cli.preset_config(presets, preset)
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return name, dataclasses.replace(config, **overrides) if overrides else config


# ---------------------------------------------------------------------------------------------------------
# Cells and inputs
# ---------------------------------------------------------------------------------------------------------
def make_multi_cell(config, is_training):
    """The MultiRNNCell of either graph: per-layer cells (or one shared cell with ``tie_layers``), each
    wrapped in DropoutWrapper(output_keep_prob) when training with keep_prob < 1."""
    # resumed on another path than the run's: the variables keep the run's names
    named = {} if config.layout is None else {"name": cell_scope_name(config.layout, config.style)}
    if config.precision != "float32":  # float32 cells are built as before: their dtype comes from the inputs
        named["dtype"] = config.dtype

    def one_cell():
        if config.rnn_mode == "block":
            # official: the kernel takes the scope's uniform initializer, as TF1's LSTMBlockCell did;
            # thomas has no scope initializer, so its (Glorot) default is kept.
            init = None if config.style == "official" else "glorot_uniform"
            cell = cells.LSTMBlockCell(config.hidden_size, forget_bias=config.forget_bias, kernel_initializer=init,
                                       **named)
        elif config.style == "thomas":
            cell = tf1.nn.rnn_cell.LSTMCell(config.hidden_size, forget_bias=config.forget_bias, **named)
        else:
            # no reuse= here: the Valid model inherits reuse from its scope, and the Test/generation models are
            # built alone in a fresh graph
            cell = tf1.nn.rnn_cell.BasicLSTMCell(config.hidden_size, forget_bias=config.forget_bias,
                                                 state_is_tuple=True, **named)
        if is_training and config.keep_prob < 1:
            cell = tf1.nn.rnn_cell.DropoutWrapper(cell, output_keep_prob=config.keep_prob)
        return cell
    if config.tie_layers:
        cell = one_cell()
        layers = [cell for _ in range(config.num_layers)]  # the same object: one weight set (TF >= 1.2)
    else:
        layers = [one_cell() for _ in range(config.num_layers)]
    return tf1.nn.rnn_cell.MultiRNNCell(layers, state_is_tuple=True)


def flat_state(state):
    return [t for layer in state for t in (layer.c, layer.h)]


class FeedInput:
    """Placeholders in place of the queue producer (generation and the fast test evaluation)."""

    def __init__(self, batch_size, num_steps, name="FeedInput"):
        self.batch_size, self.num_steps, self.epoch_size = batch_size, num_steps, None
        with tf1.name_scope(name):
            self.input_data = tf1.placeholder(tf.int32, [batch_size, num_steps], name="input_data")
            self.targets = tf1.placeholder(tf.int32, [batch_size, num_steps], name="targets")
            self.weights = tf1.placeholder(tf.float32, [batch_size, num_steps], name="weights")


# ---------------------------------------------------------------------------------------------------------
# Data and the run directory
# ---------------------------------------------------------------------------------------------------------
def load(paths, config):
    """(train, valid, test ids, word_to_id) of the three files; a vocabulary larger than the config's is an
    error."""
    train_data, valid_data, test_data, word_to_id = ptb_data.load_raw(*paths)
    if len(word_to_id) > config.vocab_size:
        raise ValueError(f"the training text has {len(word_to_id)} distinct words, more than vocab_size "
                         f"{config.vocab_size}")
    return train_data, valid_data, test_data, word_to_id


def make_manifest(app, preset, config, word_to_id, seed, num_tokens):
    """The run's manifest; a config resumed on another path (``layout`` set) gives the run's own rnn_mode."""
    saved_config = dataclasses.asdict(config)
    rnn_mode = saved_config.pop("layout") or config.rnn_mode
    saved_config["rnn_mode"] = rnn_mode
    return {"app": app, "preset": preset, "config": saved_config,
            "quirks": {"tie_layers": config.tie_layers}, "split_seed": None, "seed": seed,
            # seeded runs are repeatable: static unroll (official), parallel_iterations=1 (thomas)
            "deterministic": seed is not None,
            "cell": rnn_mode, "vocab_size": len(word_to_id), "vocab_sha256": runs.vocab_sha256(word_to_id),
            "num_tokens": num_tokens}


def check_vocab(data_vocab, word_to_id, run_dir):
    if data_vocab != word_to_id:
        raise runs.ManifestMismatchError(f"the data gives another vocabulary than the one {run_dir} was trained "
                                         "with; use the data files of that run.")


REPORT = "report.json"


def write_report(report, app, manifest, run_dir, start):
    """Complete a test report (app, preset, run dir, test seconds since ``start``), write it to
    ``run_dir/report.json`` and return it."""
    report.update({"app": app, "preset": manifest["preset"], "run_dir": str(run_dir),
                   "test_seconds": round(time.time() - start, 1)})
    runs.atomic_write_text(os.path.join(run_dir, REPORT), json.dumps(report, indent=1, default=str) + "\n")
    return report


def checkpoint_files(prefix):
    """{file name: sha256} of the files of checkpoint ``prefix`` (its index and data shards)."""
    prefix = pathlib.Path(prefix)
    return {path.name: download.sha256_of(path) for path in sorted(prefix.parent.glob(prefix.name + ".*"))
            if path.name.endswith(".index") or ".data-" in path.name}


def recorded_test(run_dir, protocol):
    """The run dir's test report (``report.json``) when it is a ``protocol`` test of the run's newest epoch
    checkpoint as it is now (the sha256 of its files that the test recorded in ``checkpoint_sha256``); else None,
    and the test must run. A report of another checkpoint, protocol or bytes, or a damaged one, is not reused."""
    try:
        report = json.loads((pathlib.Path(run_dir) / REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    epochs = runs.epoch_checkpoints(run_dir)
    if not isinstance(report, dict) or not epochs or report.get("protocol") != protocol:
        return None
    recorded = report.get("checkpoint_sha256")  # keyed by file name: another checkpoint's names never match
    return report if recorded and recorded == checkpoint_files(epochs[max(epochs)]) else None


# ---------------------------------------------------------------------------------------------------------
# Generation (not in the originals)
# ---------------------------------------------------------------------------------------------------------
def prompt_ids(text, word_to_id, notice=print):
    """Ids of the prompt's words (lower-cased); unknown words become ``<unk>``, with a notice."""
    words = text.lower().split()
    if not words:
        raise ValueError("the prompt is empty: give at least one word, e.g. --prompt \"the stock market\"")
    unknown = [w for w in words if w not in word_to_id]
    if unknown:
        notice(f"notice: not in the vocabulary, read as {ptb_data.UNK}: {', '.join(unknown)}")
    unk = word_to_id.get(ptb_data.UNK)
    if unknown and unk is None:
        raise ValueError(f"the vocabulary has no {ptb_data.UNK} to stand for {', '.join(unknown)}")
    return [word_to_id.get(w, unk) for w in words]


class Generator(runs.HoldsSession):
    """A trained model with batch 1 and 1 step, state carried; use as a context manager. An app's subclass builds
    the graph, restores the session and sets ``self._step(x, state) -> (logits, state)`` and ``self._zero``."""

    def generate(self, ids, num_words, decode="sample", temperature=1.0, rng=None):
        """Ids of ``num_words`` words following ``ids``: greedy argmax or sampling from softmax(logits / T)."""
        rng = rng or np.random.default_rng()
        state = self._zero
        logits = None
        for i in ids:
            logits, state = self._step(np.array([[i]], np.int32), state)
        out = []
        for _ in range(num_words):
            z = logits.reshape(-1).astype(np.float64)
            if decode == "greedy":
                nxt = int(np.argmax(z))
            else:
                z = z / max(temperature, 1e-6)
                p = np.exp(z - z.max())
                nxt = int(rng.choice(len(p), p=p / p.sum()))
            out.append(nxt)
            logits, state = self._step(np.array([[nxt]], np.int32), state)
        return out

    def text(self, prompt, num_words=32, decode="sample", temperature=1.0, rng=None, notice=print):
        ids = prompt_ids(prompt, self.word_to_id, notice)
        words = [self.reverse.get(i, "?") for i in ids + self.generate(ids, num_words, decode, temperature, rng)]
        return " ".join(words).replace(f" {ptb_data.EOS} ", "\n").replace(ptb_data.EOS, "\n")


# ---------------------------------------------------------------------------------------------------------
# Flags both apps read (each app's main reads them)
# ---------------------------------------------------------------------------------------------------------
RNN_MODE = flags.DEFINE_enum("rnn_mode", None, ["basic", "block", "fused"], "The LSTM implementation (the "
                             "original's flag): block (default of the official presets; the raw LSTMBlockCell op), "
                             "basic (BasicLSTMCell; thomas: LSTMCell, its default) or fused (basic's variables and "
                             "maths over the whole sequence, legacy_lstm.fast_lstm). Default: the preset's.")
TIE_LAYERS = flags.DEFINE_boolean("tie_layers", None, "One cell object in every layer, so the layers share one "
                                  "weight set (Thomas's quirk). Default: the preset's (on for thomas only).")
DECODE = flags.DEFINE_enum("decode", "sample", ["sample", "greedy"], "--mode=generate: sample from the softmax or "
                           "take the most likely word.")
TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "--mode=generate with --decode=sample: softmax temperature.",
                                 lower_bound=0.0)


def run_mode(mode, run_dir, train_fn, test_fn, generator_class):
    """The modes of either app's ``main``: train (then test once the run is complete), test, generate.
    ``train_fn(paths)`` returns the train result; ``test_fn(paths, checkpoint)`` evaluates. Returns the exit
    status."""
    if mode == "train":
        paths = ptb_data.locate(cli.resolve_data_dir())
        result = train_fn(paths)
        print(f"Run directory: {run_dir} ({len(result['curve'])}/{result['config'].epochs} epochs done)")
        if result["finished"]:
            test_fn(paths, None)
        return 0
    # the run's own settings are used: a flag given with another value is an error
    cli.check_given_flags(run_dir, aliases={"rnn_mode": "cell"})
    if mode == "test":
        test_fn(ptb_data.locate(cli.resolve_data_dir()), cli.CHECKPOINT.value)
        return 0
    return generate_mode(generator_class, run_dir)


def generate_mode(generator_class, run_dir):
    """``--mode=generate`` of either app: continue --prompt with --num_words words (exit status)."""
    if cli.PROMPT.value is None:
        print('error: --mode=generate needs --prompt, e.g. --prompt "the stock market"', file=sys.stderr)
        return 1
    with generator_class(run_dir, cli.CHECKPOINT.value) as generator:
        print(generator.text(cli.PROMPT.value, cli.NUM_WORDS.value, DECODE.value, TEMPERATURE.value,
                             np.random.default_rng(cli.SEED.value), notice=lambda s: print(s, file=sys.stderr)))
    return 0


def rnn_mode_flag():
    """--rnn_mode, else --cell when given (basic, block or fused), else None (the preset's)."""
    rnn_mode = RNN_MODE.value or (None if flags.FLAGS["cell"].using_default_value else cli.CELL.value)
    if rnn_mode not in (None, "basic", "block", "fused"):
        raise ValueError(f"--cell={rnn_mode}: the PTB apps support basic, block and fused (--rnn_mode)")
    return rnn_mode
