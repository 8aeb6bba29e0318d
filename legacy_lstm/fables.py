r"""Next-word LSTM on Aesop's "Belling the cat": Rowel Atienza, "LSTM by Example using Tensorflow" (2017).

Source: the article (Towards Data Science, March 2017) and roatienza/Deep-Learning-Experiments
``Experiments/Tensorflow/RNN/rnn_words.py`` (2e6d822 is the blog-era code) with ``belling_the_cat.txt``.

Reproduction contract
---------------------
Commands (published configs, 50,000 iterations each; every 1,000 iterations are checkpointed, so a rerun of
the same command resumes)::

    python -m legacy_lstm.fables --preset=blog --seed=2017            # = the default preset
    python -m legacy_lstm.fables --preset=blog --mode=test            # report: band, whole text, "had a general"
    python -m legacy_lstm.fables --preset=improved --seed=2017
    python -m legacy_lstm.fables --preset=improved --mode=test

Published numbers (``legacy_lstm/published/fables.json``) and the bands a reproduction must meet. The metric
is the original's "Average Accuracy": the mean online training accuracy of the 1,000 single-example steps
before the display, each step's prediction taken before its update:

    ==========  ===================================  =========  ======
    preset      metric                               published  band
    ==========  ===================================  =========  ======
    blog        Average Accuracy, iterations 49-50k  91.20%     ± 5
    blog        (code comment, 1-layer at 50k)       90.60%     --
    improved    Average Accuracy at 50k (comment)    95.20%     ± 5
    ==========  ===================================  =========  ======

The published log (blog, Listing 8) ends with::

    Iter= 49000, Average Loss= 0.528684, Average Accuracy= 88.50%
    ['could', 'easily', 'retire'] - [while] vs [while]
    Iter= 50000, Average Loss= 0.415811, Average Accuracy= 91.20%
    ['this', 'means', 'we'] - [should] vs [should]

and "had a general" continued the fable verbatim for 32 words ("council to consider what measures ... a
young mouse got"). ``--mode=test`` checks both: the last display's average against the band, and whether the
trained model continues "had a general" verbatim (and how many words match), and writes all of it, with the
curve, to ``<run_dir>/report.json`` (commit it as ``results/fables-<preset>.json``). Runs vary: the original is
unseeded (initial weights, window offsets); ``--seed`` makes a run repeatable here.

Presets (``--preset``)
    blog (default)  1 layer BasicLSTMCell(512), the article's Listing 3 and the model of its published log.
    improved        2 layers: MultiRNNCell of two fresh BasicLSTMCell(512), Listing 10 and the code
                    of that time (the comments' 95.20%).
    test            1 layer of 64 units, 2,000 iterations, a display every 200: a CI smoke run.
    All: 3 input words, learning rate 0.001 (RMSProp, TF1 defaults decay 0.9, momentum 0, epsilon 1e-10),
    batch 1, 50,000 iterations, a display every 1,000.

Data: ``belling_the_cat/belling_the_cat.txt`` (979 bytes, sha256 925f399e...cfe617; 204 tokens, 112 symbols)
in ``--data_dir`` (default ``$LEGACY_LSTM_DATA``, else ``~/.cache/legacy_lstm``); downloaded from the original
commit e50cb0f when missing and reachable.

Quirks of the original, reproduced by default; the two that shape what the model sees can be switched
(recorded in the manifest; test and generation take them from there)
    - ``--inputs`` (default ``ids``): no embedding: each input word is its dictionary id fed as one float
      feature ([1, 3, 1]), so the model sees "council" (39) as close to "long" (37). ``--inputs=one_hot``
      feeds a one-hot vector per word instead (the same feed, turned one-hot in the graph; the LSTM kernel
      gets 112 + 512 rows).
    - ``--window_stride`` (default 4 = n_input + 1): windows: a random start in 0..4, then steps of 4
      (non-overlapping windows of 3 words + label), a new random start in 0..4 whenever fewer than 4 tokens
      are left; ``--window_stride=1`` moves one word per step, so each pass sees every window.
    - ``--tie_order`` (default ``first_seen``): the dictionary is in ``Counter.most_common()`` order, so
      words of equal count (the 84 words seen once, ...) are in the order the dict gives them: first
      appearance on Python 3.7+ ("council" 39, and the passage after "had a general" gets consecutive ids:
      council 39, consider 40, what 41, measures 42, they 43), which is what the original's code gives on any
      current Python. The blog ran on Python 3.5, where that order followed the per-process string hashes:
      every run had its own dictionary (the blog shows "council" as 37; its note 5 says to expect a different
      dictionary per run). ``--tie_order=hashed`` emulates that: ties in a per-run order drawn from the
      offset seed. Stored in the run directory as vocab.json either way.
    - Kept as they are (they are the model, not a switchable behaviour): the three steps go through
      ``static_rnn``; logits = last output x W + b with W and b ``random_normal`` stddev 1; softmax
      cross-entropy on a one-hot label, batch 1; the displayed accuracy and loss are averages of online
      training steps, not an evaluation.

Cells (``--cell``, recorded in the manifest; test/generate take it from there): ``basic`` (default, the
original's BasicLSTMCell), ``block`` (the raw LSTMBlockCell op, the same function, faster on CPU) or
``cudnn_compatible`` (see legacy_lstm.cells). Only ``basic`` is the original graph.

Deliberate differences
    - The prediction is read with numpy argmax; the original added a ``tf.argmax`` op to the graph at every
      display and every generated word (the graph grew without limit). Every op here is built once and the
      graph is finalized before training or generation.
    - The window offsets come from their own ``random.Random``, seeded by ``--seed`` (or a drawn seed stored in
      the manifest), so a resumed run sees the same windows as an uninterrupted one.
    - Beyond the original (which saved nothing): a checkpoint at every display (``model.ckpt-<k>`` after k x
      1,000 iterations: the curve unit of the run directory is one display, and ``--max_epochs`` counts
      displays), resume, a manifest with the dictionary, curve.csv/json (one row per display, with the sample
      line) and TensorBoard scalars in ``train/``, and a stop with a clear error on a NaN loss.
    - TensorBoard graph: as the original (``writer.add_graph(session.graph)`` once its session starts), a new
      run writes the session's graph to TensorBoard, but into the run directory's ``train/`` beside the scalars
      instead of the original's hard-coded temp folder (``logs_path = '/tmp/tensorflow/rnn_words'``);
      ``--logs_path=/tmp/tensorflow/rnn_words`` writes it where the original did. After training it prints the
      original's closing lines: "Optimization Finished!", "Elapsed time: ...", "Run on command line.",
      ``\ttensorboard --logdir=<run dir, or --logs_path>`` and "Point your web browser to:
      http://localhost:6006/".
    - Prompts are split on any whitespace (the original split on single spaces, so a double space made a
      wrong word count); a wrong count or an unknown word gets a message instead of a silent re-prompt or the
      bare "Word not in dictionary". End of input (Ctrl-D) ends interactive mode cleanly (the original died
      with EOFError).

Generation::

    python -m legacy_lstm.fables --mode=generate --prompt "had a general" --num_words 32
    python -m legacy_lstm.fables --mode=interactive      # "3 words: " prompts until end of input (Ctrl-D)
"""

import collections
import contextlib
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
from legacy_lstm import distributed
from legacy_lstm import published
from legacy_lstm import report
from legacy_lstm import runs
from legacy_lstm import training
from legacy_lstm.compat import tf, tf1
from legacy_lstm.data import download
from legacy_lstm.data import fables as fable_data

APP = "fables"
REPORT = "report.json"


# ---------------------------------------------------------------------------------------------------------
# Presets
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    n_layers: int = 1
    n_hidden: int = 512
    n_input: int = 3
    learning_rate: float = 0.001
    training_iters: int = 50000
    display_step: int = 1000

    def __post_init__(self):
        if self.training_iters % self.display_step:
            raise ValueError(f"training_iters ({self.training_iters}) must be a multiple of display_step "
                             f"({self.display_step}): one display is one checkpoint")

    @property
    def num_displays(self):
        return self.training_iters // self.display_step


PRESETS = {
    "blog": Config(),
    "improved": Config(n_layers=2),
    "test": Config(n_hidden=64, training_iters=2000, display_step=200),
}


@dataclasses.dataclass(frozen=True)
class Quirks:
    """The original's input and window quirks; the defaults are the original. Recorded in the manifest."""
    inputs: str = "ids"            # ids: each word's dictionary id as one float feature | one_hot
    window_stride: int = None      # None: n_input + 1 (non-overlapping windows) | k >= 1
    tie_order: str = "first_seen"  # dictionary ties: first_seen (Python >= 3.7) | hashed (Python < 3.6: per run)

    def __post_init__(self):
        if self.inputs not in ("ids", "one_hot"):
            raise ValueError(f"inputs must be 'ids' or 'one_hot', got {self.inputs!r}")
        if self.tie_order not in ("first_seen", "hashed"):
            raise ValueError(f"tie_order must be 'first_seen' or 'hashed', got {self.tie_order!r}")
        if self.window_stride is not None and self.window_stride < 1:
            raise ValueError(f"window_stride must be >= 1, got {self.window_stride}")


FAITHFUL = Quirks()


def published_numbers(preset):
    """The published document of ``preset`` (blog | improved) in the form ``published.compare`` takes."""
    return published.load(APP)["presets"][preset]


# ---------------------------------------------------------------------------------------------------------
# Graph (rnn_words.py, in its order)
# ---------------------------------------------------------------------------------------------------------
Model = collections.namedtuple("Model", "x y pred cost train_op accuracy")


def build_graph(vocab_size, config, cell="basic", quirks=FAITHFUL):
    """Build rnn_words.py's graph in the default graph. Variable names are those TF 1.x gave it: ``Variable``
    (out weights), ``Variable_1`` (out biases), ``rnn/basic_lstm_cell/...`` (1 layer) or
    ``rnn/multi_rnn_cell/cell_<i>/basic_lstm_cell/...`` (2 layers), RMSProp slots ``<var>/RMSProp[_1]``.
    ``cell`` is basic (the original's BasicLSTMCell), block or cudnn_compatible (legacy_lstm.cells).
    ``quirks.inputs="one_hot"`` turns the fed ids into one-hot vectors in the graph (the same feed; the first
    LSTM kernel then has vocab_size + n_hidden rows instead of 1 + n_hidden)."""
    x = tf1.placeholder(tf.float32, [None, config.n_input, 1], name="x")
    y = tf1.placeholder(tf.float32, [None, vocab_size], name="y")
    weights_out = tf.Variable(tf1.random_normal([config.n_hidden, vocab_size]))
    biases_out = tf.Variable(tf1.random_normal([vocab_size]))
    if quirks.inputs == "one_hot":  # [batch, n_input, 1] ids -> n_input tensors of [batch, vocab_size]
        one_hot = tf.one_hot(tf.cast(tf.reshape(x, [-1, config.n_input]), tf.int32), vocab_size)
        steps = tf.unstack(one_hot, config.n_input, axis=1)
    else:  # RNN(): [batch, n_input, 1] -> n_input tensors of [batch, 1], one per time step
        steps = tf.split(tf.reshape(x, [-1, config.n_input]), config.n_input, 1)
    layers = [cells.make_cell(cell, config.n_hidden) for _ in range(config.n_layers)]
    # The 1-layer model of Listing 3 is the bare cell (its variables are not under multi_rnn_cell/).
    rnn_cell = layers[0] if config.n_layers == 1 else tf1.nn.rnn_cell.MultiRNNCell(layers)
    outputs, _ = tf1.nn.static_rnn(rnn_cell, steps, dtype=tf.float32)
    pred = tf.matmul(outputs[-1], weights_out) + biases_out
    cost = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=pred, labels=y))
    # distributed.optimizer: the optimizer itself in one process; on a cluster, replicated (legacy_lstm/distributed.py)
    train_op = distributed.optimizer(tf1.train.RMSPropOptimizer(learning_rate=config.learning_rate)).minimize(cost)
    correct = tf.equal(tf.argmax(pred, 1), tf.argmax(y, 1))
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    return Model(x, y, pred, cost, train_op, accuracy)


# ---------------------------------------------------------------------------------------------------------
# Training (plain arguments; no flags below main)
# ---------------------------------------------------------------------------------------------------------
def display_lines(iteration, loss_total, acc_total, display_step, window_words, label_word, pred_word):
    """The original's two lines at a display: the averages, then ``['w1', 'w2', 'w3'] - [label] vs [pred]``."""
    head = (f"Iter= {iteration}, Average Loss= {loss_total / display_step:.6f}, "
            f"Average Accuracy= {100 * acc_total / display_step:.2f}%")
    sample = "%s - [%s] vs [%s]" % ([str(w) for w in window_words], label_word, pred_word)
    return head, sample


def train_display(step_fn, ids, reverse, offsets, config, display, log=print, sitting=None):
    """Run the ``display_step`` training steps of display number ``display`` (1-based); return its curve row.

    ``step_fn(x, y)`` runs one step and returns (accuracy, loss, logits), the original's
    ``session.run([optimizer, accuracy, cost, pred])`` without the optimizer's None. ``sitting`` (the
    driver's, optional) shows the progress of the iterations and, on a cluster, gives this worker its share of the
    display's windows (round-robin: worker k trains windows k, k + N, ...; the display's ``display_step`` windows
    are drawn in full either way, so the next display starts where one process's would). The averages are over
    the steps this process ran.
    """
    start = time.time()
    vocab_size = len(reverse)
    loss_total = acc_total = 0.0
    windows = [next(offsets) for _ in range(config.display_step)]
    steps, mine = sitting.share(len(windows), windows) if sitting else (len(windows), windows)
    ran, offset = 0, None
    with sitting.batches(steps) if sitting else contextlib.nullcontext():
        for offset in mine:
            x, label = fable_data.window(ids, offset, config.n_input)
            acc, loss, logits = step_fn(x, fable_data.one_hot(label, vocab_size))
            training.check_finite(loss, f"iteration {(display - 1) * config.display_step + ran + 1}")
            if sitting:
                sitting.tick()
            loss_total += float(loss)
            acc_total += float(acc)
            ran += 1
    if offset is None:  # a cluster worker that joined after the display's steps were taken: no log line
        return {"epoch": display, "iteration": display * config.display_step, "average_loss": float("nan"),
                "average_accuracy": float("nan"), "sample": "", "seconds": round(time.time() - start, 3)}
    iteration = display * config.display_step
    window_words = [reverse[int(i)] for i in ids[offset:offset + config.n_input]]
    head, sample = display_lines(iteration, loss_total, acc_total, ran, window_words,
                                 reverse[label], reverse[int(np.argmax(logits[0]))])
    log(head)
    log(sample)
    return {"epoch": display, "iteration": iteration, "average_loss": loss_total / ran,
            "average_accuracy": acc_total / ran, "sample": sample,
            "seconds": round(time.time() - start, 3)}


def make_manifest(preset, config, dictionary, seed, offset_seed, num_tokens, cell="basic", quirks=FAITHFUL):
    return {"app": APP, "preset": preset, "config": dataclasses.asdict(config), "quirks": dataclasses.asdict(quirks),
            "split_seed": None, "seed": seed, "offset_seed": offset_seed, "cell": cell,
            "vocab_size": len(dictionary), "vocab_sha256": runs.vocab_sha256(dictionary), "num_tokens": num_tokens,
            "curve_unit": "one display of display_step iterations (epoch k = iteration k * display_step)"}


def elapsed(seconds):
    """The original's "Elapsed time" wording: sec, min or hr."""
    if seconds < 60:
        return f"{seconds:.1f} sec"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} hr"


class _Loop(training.Loop):
    unit = "display"

    def __init__(self, config, cell, quirks, ids, dictionary, reverse, offset_seed, logs_path=None):
        self.config, self.cell, self.quirks = config, cell, quirks
        self.ids, self.dictionary, self.reverse, self.offset_seed = ids, dictionary, reverse, offset_seed
        self.logs_path = logs_path

    def fresh(self, sitting):
        # the original's writer.add_graph(session.graph), once per run (a resumed run has it already)
        # its own file name: the scalars' writer may open an events file of the same second in the same folder
        writer = tf1.summary.FileWriter(str(graph_dir(sitting.run.dir, self.logs_path)), filename_suffix=".graph")
        writer.add_graph(sitting.sess.graph)
        writer.close()

    def build(self):
        return build_graph(len(self.dictionary), self.config, self.cell, self.quirks)

    def resumed(self, sitting):
        return (f"Resuming {sitting.run_dir} after iteration {sitting.done * self.config.display_step} "
                f"(offset_seed={self.offset_seed}).")

    def start(self, sitting):
        model = sitting.model
        self.step = sitting.sess.make_callable([model.train_op, model.accuracy, model.cost, model.pred],
                                               feed_list=[model.x, model.y])
        self.offsets = fable_data.make_offsets(len(self.ids), self.config.n_input, self.offset_seed,
                                               self.quirks.window_stride).skip(sitting.done * self.config.display_step)

    def epoch(self, sitting, display):
        return train_display(lambda x, y: self.step(x, y)[1:], self.ids, self.reverse, self.offsets, self.config,
                             display, sitting.log, sitting)

    def summaries(self, row):
        return {"train": {"average_loss": row["average_loss"], "average_accuracy": row["average_accuracy"]}}


def graph_dir(run_dir, logs_path=None):
    """Where the TensorBoard graph goes: ``logs_path`` (the original's was /tmp/tensorflow/rnn_words), else the
    run directory's ``train/`` (beside the scalars)."""
    return pathlib.Path(logs_path) if logs_path else pathlib.Path(run_dir) / "train"


def train(data_path, run_dir, preset="blog", seed=None, max_epochs=None, cell="basic", quirks=FAITHFUL, log=print,
          progress=False, logs_path=None, cluster=None):
    """Train (resuming from ``run_dir`` when it holds an unfinished run of the same config).

    ``max_epochs`` counts displays (checkpoints) in total, not iterations. A resume keeps the run's seed and
    offset seed. A new run writes its graph for TensorBoard to ``graph_dir(run_dir, logs_path)``.
    ``cluster``: a worker task's ``legacy_lstm.distributed.Cluster`` (None: one process); each worker trains its
    share of every display's windows (``train_display``), the chief writes the run directory.
    Returns {"curve", "run_dir", "seed", "offset_seed", "finished", "seconds"}.
    """
    preset_name, config = cli.preset_config(PRESETS, preset)
    unit = f"displays of {config.display_step:,} iterations"
    cli.epochs_to_run(config.num_displays, max_epochs, unit)  # a usage error before any data is read
    saved = distributed.saved_manifest(run_dir, cluster, log)  # the run dir's; a worker's: the chief's
    seed = training.resolve_seed(saved, seed)
    if saved is not None and saved.get("offset_seed") is not None:
        offset_seed = saved["offset_seed"]  # the windows continue the saved run's sequence
    else:
        offset_seed = seed if seed is not None else cli.draw_seed("offset_seed", None, log)
    words, ids, dictionary, reverse = fable_data.load_raw(data_path, tie_seed(quirks, offset_seed))
    manifest = make_manifest(preset_name, config, dictionary, seed, offset_seed, len(words), cell, quirks)
    loop = _Loop(config, cell, quirks, ids, dictionary, reverse, offset_seed, logs_path)
    result = training.train(loop, run_dir, manifest, config.num_displays, max_epochs, seed, vocab=dictionary, log=log,
                            progress=progress, unit_label=unit, cluster=cluster)
    if result["done_before"] < len(result["curve"]):
        if result["finished"]:
            log("Optimization Finished!")
        log(f"Elapsed time: {elapsed(result['seconds'])}")
        log("Run on command line.")
        log(f"\ttensorboard --logdir={logs_path or run_dir}")
        log("Point your web browser to: http://localhost:6006/")
    result["offset_seed"] = offset_seed
    return result


# ---------------------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------------------
class PromptError(ValueError):
    """A prompt with the wrong number of words or a word outside the dictionary."""


def parse_prompt(text, dictionary, n_input):
    """Ids of the ``n_input`` words of ``text``; PromptError with a clear message otherwise."""
    words = text.split()
    if len(words) != n_input:
        raise PromptError(f"expected {n_input} words, got {len(words)}: {text.strip()!r}")
    unknown = [w for w in words if w not in dictionary]
    if unknown:
        hints = [f"{w!r} (did you mean {w.lower()!r}?)" if w.lower() in dictionary else repr(w) for w in unknown]
        raise PromptError(f"word not in dictionary: {', '.join(hints)}. The dictionary is the {len(dictionary)} "
                          "lower-case tokens of the fable; punctuation is a separate token (e.g. 'cat .').")
    return [dictionary[w] for w in words]


def generate_ids(predict_fn, ids, num_words, n_input):
    """The original's story loop: predict the next id from the last ``n_input`` ids, append it, slide."""
    keys = list(ids)
    out = []
    for _ in range(num_words):
        logits = predict_fn(np.asarray(keys, dtype=np.float32).reshape(1, n_input, 1))
        index = int(np.argmax(logits[0]))
        out.append(index)
        keys = keys[1:] + [index]
    return out


def tie_seed(quirks, offset_seed):
    """The seed of the dictionary's tie order: None (first appearance) unless ``tie_order`` is hashed, whose
    per-run order is drawn from the run's offset seed (``quirks``: a Quirks or the manifest's dict)."""
    order = quirks.get("tie_order") if isinstance(quirks, dict) else quirks.tie_order
    return offset_seed if order == "hashed" else None


def load_vocab(run_dir):
    """(dictionary, reverse_dictionary, manifest) saved with the run in ``run_dir``."""
    opened = training.open_run(run_dir, APP)
    return opened.vocab, {int(i): w for w, i in opened.vocab.items()}, opened.manifest


class Generator(runs.HoldsSession):
    """A trained model restored from a run directory, ready to continue prompts. The graph is built once and
    finalized: generating any number of words adds no op. Use as a context manager (closes the session)."""

    def __init__(self, run_dir, checkpoint=None):
        self.dictionary, self.reverse, manifest = load_vocab(run_dir)
        self.config = Config(**manifest["config"])
        self.quirks = Quirks(**(manifest.get("quirks") or {}))  # {}: a run recorded before the quirk switches
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.model = build_graph(len(self.dictionary), self.config, manifest.get("cell", "basic"), self.quirks)
            run = runs.Run(run_dir, manifest)
            self.sess = tf1.Session(graph=self.graph)
            self.checkpoint = run.restore(self.sess, checkpoint)
            self._predict = self.sess.make_callable(self.model.pred, feed_list=[self.model.x])
        self.graph.finalize()

    def continue_prompt(self, text, num_words=32):
        """The ``num_words`` words that follow the prompt ``text`` (PromptError for a bad prompt)."""
        ids = parse_prompt(text, self.dictionary, self.config.n_input)
        return [self.reverse[i] for i in generate_ids(self._predict, ids, num_words, self.config.n_input)]

    def story(self, text, num_words=32):
        """The original's printed sentence: the prompt's words, then the generated ones."""
        return " ".join(text.split() + self.continue_prompt(text, num_words))


def interactive(generator, num_words=32, read=input, write=print):
    """The original's "3 words: " loop until end of input. A bad prompt gets a message and a new prompt;
    blank lines are ignored. Returns the number of stories written."""
    stories = 0
    prompt = f"{generator.config.n_input} words: "
    while True:
        try:
            line = read(prompt)
        except EOFError:
            write("")
            return stories
        if not line.strip():
            continue
        try:
            write(generator.story(line, num_words))
            stories += 1
        except PromptError as err:
            write(str(err))


# ---------------------------------------------------------------------------------------------------------
# Test mode: how the run compares with the published numbers
# ---------------------------------------------------------------------------------------------------------
def verbatim_words(words, prompt, generated):
    """How many generated words continue the text verbatim after the prompt (best over its occurrences)."""
    prompt = prompt.split()
    best = 0
    for i in range(len(words) - len(prompt) + 1):
        if words[i:i + len(prompt)] == prompt:
            follow = words[i + len(prompt):]
            n = 0
            while n < min(len(follow), len(generated)) and follow[n] == generated[n]:
                n += 1
            best = max(best, n)
    return best


def window_hits(generator, ids):
    """Teacher forced, for every window of the text (stride 1; 201 for the fable): whether the model predicts the
    word after it (bool [len(ids) - n_input]; window j predicts word j + n_input)."""
    x, y = fable_data.all_windows(ids, generator.config.n_input)
    return np.argmax(generator._predict(x), 1) == y


def passage_hits(hits, words, prompt, num_words):
    """Of the ``num_words`` words after the first occurrence of ``prompt`` (n_input words) in the text, how many
    the model predicts from the true words before each (``hits`` of ``window_hits``): a verbatim continuation
    needs all of them; None when the prompt is not in the text."""
    prompt = prompt.split()
    for i in range(len(words) - len(prompt) + 1):
        if words[i:i + len(prompt)] == prompt:
            return int(np.sum(hits[i:i + num_words]))
    return None


def test(data_path, run_dir, checkpoint=None, log=print):
    """Report on a trained run: the last display against the published band, whole-text accuracy, and the
    "had a general" continuation. Writes ``run_dir/report.json`` and returns the report."""
    saved_dictionary, _, manifest = load_vocab(run_dir)  # first: a run dir of another app is named as such
    words, ids, dictionary, _ = fable_data.load_raw(data_path, tie_seed(manifest.get("quirks") or {},
                                                                       manifest.get("offset_seed")))
    if saved_dictionary != dictionary:
        raise runs.ManifestMismatchError(f"{data_path} gives another dictionary than the one {run_dir} was "
                                         "trained with; use the data file of that run.")
    doc = published.load(APP)
    gen_ref = doc["generation"]
    curve = runs.read_curve(run_dir)  # curve.json, else (deleted or damaged) curve.csv
    config = Config(**manifest["config"])
    with Generator(run_dir, checkpoint) as generator:
        log(f"Restored {generator.checkpoint}")
        hits = window_hits(generator, ids)
        text_acc, n_windows = float(np.mean(hits)), len(hits)
        passage = passage_hits(hits, words, gen_ref["prompt"], gen_ref["num_words"])
        try:
            continuation = generator.continue_prompt(gen_ref["prompt"], gen_ref["num_words"])
        except PromptError:  # another text (a user's own file) need not hold the published prompt's words
            continuation = None
    matched = None if continuation is None else verbatim_words(words, gen_ref["prompt"], continuation)
    report = {"app": APP, "preset": manifest["preset"], "run_dir": str(run_dir), "seed": manifest.get("seed"),
              "offset_seed": manifest.get("offset_seed"), "checkpoint": str(generator.checkpoint),
              "iterations_done": len(curve) * config.display_step, "iterations_total": config.training_iters,
              "complete": len(curve) == config.num_displays,
              "command": f"python -m legacy_lstm.{APP} --preset={manifest['preset']} --seed={manifest.get('seed')}"
                         f"{'' if manifest.get('cell', 'basic') == 'basic' else ' --cell=' + manifest['cell']}"
                         + "".join(f" --{k}={v}" for k, v in (manifest.get("quirks") or {}).items()
                                   if v != getattr(FAITHFUL, k)),
              "cell": manifest.get("cell", "basic"), "quirks": dataclasses.asdict(generator.quirks),
              "versions": manifest.get("versions"),
              "machine": f"{os.cpu_count()} CPU cores, no GPU",
              "train_wall_seconds": round(sum(r.get("seconds", 0) for r in curve), 1),
              "text_accuracy": text_acc, "text_windows": n_windows,
              "generation": {"prompt": gen_ref["prompt"],
                             "words": None if continuation is None else " ".join(continuation),
                             "verbatim_words": matched,
                             # teacher forced: of the words after the prompt, how many it predicts from the
                             # true words before each (a verbatim continuation needs every one)
                             "passage_hits": passage,
                             "verbatim": None if matched is None else matched == gen_ref["num_words"]},
              "curve": curve}
    log(f"Whole-text next-word accuracy ({n_windows} windows, teacher forced): {text_acc:.4f}")
    if continuation is None:
        log(f"{gen_ref['prompt']!r} is not in this text's dictionary: no continuation check")
    else:
        log(f"{gen_ref['prompt']} -> {' '.join(continuation)}")
        log(f"verbatim continuation of the fable: {matched}/{gen_ref['num_words']} words (teacher forced, "
            f"{passage}/{gen_ref['num_words']} of those words predicted from the true words before them)")
    if manifest["preset"] in doc["presets"] and curve:
        ref = doc["presets"][manifest["preset"]]
        final = {"average_accuracy": curve[-1]["average_accuracy"]} if report["complete"] else {}
        cmp = published.compare(curve, final, ref)
        report["comparison"] = {"final": cmp.final, "per_epoch": cmp.per_epoch, "passed": cmp.passed}
        for line in cmp.summary_lines():
            log(line)
        if not report["complete"]:
            log(f"run incomplete ({report['iterations_done']}/{config.training_iters} iterations): "
                "the 50k number is pending")
    if curve:
        log(f"final train average_accuracy: {curve[-1]['average_accuracy']:.4f}")
    runs.atomic_write_text(pathlib.Path(run_dir) / REPORT, json.dumps(report, indent=1, default=str) + "\n")
    return report


# ---------------------------------------------------------------------------------------------------------
# Reproduction (scripts/reproduce.py; results and tables: legacy_lstm/report.py)
# ---------------------------------------------------------------------------------------------------------
# one curve row per display of 1,000 iterations (epoch k = iteration k * 1,000)
REPRODUCTION = report.Reproduction("blog", (("average_accuracy", "Average Accuracy (1,000 online steps)"),
                                            ("average_loss", "Average Loss")))


def reproduce(run_dir, preset="blog", seed=None, data_dir=None, max_epochs=None, train_run=True,
              variant_quirks=None, variant_cell="basic", split_seed=None, fast_test=False):
    """Fables: train the preset (the run's own seed when resuming), then its test mode (whole-text accuracy and the
    "had a general" continuation, written to the run dir's report.json). One curve row = one display of 1,000
    iterations; the published number is the last display's Average Accuracy."""
    if split_seed is not None:
        raise ValueError("fables has no --split_seed: the windows follow --seed (offset_seed)")
    data_path = download.locate(download.FABLE, data_dir)
    saved = runs.read_manifest(run_dir)
    seed = saved.get("seed") if saved is not None else seed
    quirks = Quirks(**(variant_quirks or {}))
    manifest, curve = report.sitting(run_dir, APP, None if not train_run else lambda: train(
        data_path, run_dir, preset, seed=seed, max_epochs=max_epochs, cell=variant_cell, quirks=quirks))
    total = report.epochs_total(manifest) if manifest else None
    final = {"average_accuracy": None, "text_accuracy": None, "verbatim_words": None,
             "passage_hits": None}
    test_seconds = None
    if curve and len(curve) == total:
        t = time.time()
        result = test(data_path, run_dir)
        test_seconds = time.time() - t
        final = {"average_accuracy": curve[-1]["average_accuracy"], "text_accuracy": result["text_accuracy"],
                 "verbatim_words": result["generation"]["verbatim_words"],
                 "passage_hits": result["generation"]["passage_hits"]}
    return manifest, curve, final, test_seconds


# ---------------------------------------------------------------------------------------------------------
# main: the only reader of flags
# ---------------------------------------------------------------------------------------------------------
# --prompt and --num_words are shared with the PTB app, so they live in cli (absl flags are global).
PROMPT = cli.PROMPT
NUM_WORDS = cli.NUM_WORDS
INPUTS = flags.DEFINE_enum("inputs", "ids", ["ids", "one_hot"], "Quirk: ids (the original: each word's "
                           "dictionary id fed as one float number) or one_hot (a one-hot vector per word).")
WINDOW_STRIDE = flags.DEFINE_integer("window_stride", None, "Quirk: how far the training window moves per "
                                     "step. Default: n_input + 1 = 4, the original's non-overlapping windows; "
                                     "1 visits every window.", lower_bound=1)
TIE_ORDER = flags.DEFINE_enum("tie_order", "first_seen", ["first_seen", "hashed"], "Quirk: the dictionary's "
                              "order of words with equal counts: first_seen (Python >= 3.7, the original's code "
                              "today) or hashed (a per-run order, as the blog's Python 3.5 gave).")
LOGS_PATH = flags.DEFINE_string("logs_path", None, "Folder for the TensorBoard graph of a new run. Default: the "
                                 "run directory's train/ (beside the scalars); the original's was "
                                 "/tmp/tensorflow/rnn_words.")
flags.adopt_module_key_flags(cli)


def main(argv):
    preset, mode, run_dir = cli.resolve_common(APP, PRESETS, "blog", ("train", "test", "generate", "interactive"),
                                               argv, (), "give the seed words with --prompt")
    cluster = cli.resolve_cluster(mode)
    if cluster is not None and cluster.is_ps:
        return distributed.serve(cluster)
    if cli.refuse_cell(cells.KINDS, "the fused path (legacy_lstm/fast_lstm.py) runs a dynamic_rnn stack over a "
                       "sequence; fables' static_rnn unrolls only its 3 input words: take basic, block or "
                       "cudnn_compatible"):
        return 1
    if mode == "train":
        data_path = download.locate(download.FABLE, cli.resolve_data_dir())
        result = train(data_path, run_dir, preset, cli.SEED.value, cli.MAX_EPOCHS.value, cli.CELL.value,
                       Quirks(inputs=INPUTS.value, window_stride=WINDOW_STRIDE.value, tie_order=TIE_ORDER.value),
                       progress=cli.PROGRESS.value,
                       logs_path=LOGS_PATH.value, cluster=cluster)
        print(f"Run directory: {run_dir} ({len(result['curve']) * PRESETS[preset].display_step} iterations done, "
              f"offset_seed={result['offset_seed']})")
        if result["curve"]:
            print(f"final train average_accuracy: {result['curve'][-1]['average_accuracy']:.4f}")
        return 0
    cli.check_given_flags(run_dir)  # the run's own settings are used: a flag given with another value is an error
    if mode == "test":
        test(download.locate(download.FABLE, cli.resolve_data_dir()), run_dir, cli.CHECKPOINT.value)
        return 0
    if mode == "generate" and PROMPT.value is None:
        print('error: --mode=generate needs --prompt, e.g. --prompt "had a general"', file=sys.stderr)
        return 1
    with Generator(run_dir, cli.CHECKPOINT.value) as generator:
        if mode == "interactive":
            try:
                interactive(generator, NUM_WORDS.value)
            except KeyboardInterrupt:
                print()
            return 0
        try:
            print(generator.story(PROMPT.value, NUM_WORDS.value))
        except PromptError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    cli.run(main)
