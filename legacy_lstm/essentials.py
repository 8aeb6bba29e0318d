r"""The LSTM sentiment excerpt of *Deep Learning Essentials* (Packt; Wei Di, Anurag Bhardwaj, Jianing Wei).

Source: PacktPublishing/Deep-Learning-Essentials@06881b3 ``Chapter06/chapter-6/codeblock/cb-lstm.py`` (the
book's text prints the same function with the casts misplaced and float32 labels, which would not run).
Its structure is that of Adit Deshpande's O'Reilly sentiment LSTM,
shrunk to a toy.

Reproduction contract
---------------------
There are **no published numbers**: the original builds the graph and runs one optimiser step on four toy
sequences, without logging anything, and that is what this app does by default. What it checks beyond that is
our own sanity claim: the graph as the book writes it, trained for the 1,000 iterations its code declares
(``--nosingle_step``), fits the toy data to 100% accuracy (``scripts/reproduce.py essentials`` runs that)::

    python -m legacy_lstm.essentials --seed=1                  # as shipped: one Adam step on the toy data
    python -m legacy_lstm.essentials --nosingle_step --seed=1 --run_dir=checkpoints/essentials/loop  # 1,000 steps
    python -m legacy_lstm.essentials --mode=test --run_dir=checkpoints/essentials/loop  # Accuracy ...: 1.000
    python scripts/reproduce.py essentials                     # the 1,000 steps, then the accuracy

    ==================================  ========  ============
    config                              steps     expected
    ==================================  ========  ============
    book, toy data (default)            1         nothing to compare (the original printed nothing)
    book, ``--nosingle_step``           1,000     accuracy 1.0 on the 4 sequences (ours, not published)
    ==================================  ========  ============

Why one step is the default: the shipped file (the book's code, cb-lstm.py) sets ``num_iterations = 1000`` but
never uses it; its function ends with the variable initialiser and a single ``sess.run(optimizer, ...)``, with no
loop, no accuracy and no output; the book's printed excerpt is the same function (with the casts misplaced).
The 1,000 exist only as that unused constant, so the original's behaviour is the one step and running the 1,000
iterations is this project's extension.

The graph, as the book's code builds it
    - Placeholders of fixed batch size: ``labels`` float64 [4, 2], ``raw_data`` int32 [4, 4].
    - ``data = tf.Variable(tf.zeros([4, 4, 64]))``, dead code (overwritten on the next line), is kept: it is
      the checkpoint's ``Variable`` (float32), so the names of the book's graph stay as TF 1.x gave them.
    - ``embedding_lookup`` into the word vectors, a float64 numpy array, hence a float64 constant (not trained).
    - ``weight`` = truncated_normal [16, 2] (stddev 1), ``bias`` = 0.1, both float32 variables cast to float64.
    - ``BasicLSTMCell(16)`` in ``DropoutWrapper(output_keep_prob=0.8)``, ``dynamic_rnn(dtype=float64)``: the
      LSTM runs in float64. Last output by transpose to time-major + ``gather(T - 1)``.
    - Softmax cross-entropy (mean), ``AdamOptimizer()`` (learning rate 0.001).

Presets (``--preset``)
    book (default)  batch 4, 16 LSTM units, 2 classes, max length 4, embedding 64, 1,000 iterations,
                    output keep probability 0.8, random word vectors [1024, 64].
    test            the same model, 200 iterations (a CI smoke run).

Quirks of the original
    --single_step   run one optimiser step, as the shipped code does (it declares ``num_iterations = 1000``
                    and never uses it). On by default; ``--nosingle_step`` runs the 1,000 iterations (the
                    preset's ``num_iterations``), which training on a ``--train_file`` needs.
    word vectors    random uniform [0, 1) as the original's ``np.random.random([1024, 64])``, which is unseeded;
                    here they come from ``--seed`` (or a drawn seed stored in the manifest).

Beyond the original
    --word_vectors=PATH   word2vec (text, "count dim" header) or GloVe vectors instead of random ones; they
                          must be 64-dimensional (the book's embedding_dimension). With the toy data, the ids
                          index the file's rows, as the book's comment describes ("a trained word embedding
                          model with 1024 words").
    --train_file=PATH     one "label<TAB>text" example per line, exactly two labels, instead of the toy data:
                          texts are lower-cased, split on whitespace and cut or padded to 4 tokens (padding and
                          words without a vector use a zero row). Batches of 4 cycle through the examples.
    A training-time accuracy op (argmax), the output keep probability as a ``placeholder_with_default(0.8)``
    so that evaluation runs without dropout, a log line and a checkpoint every 100 iterations (the curve unit
    of the run directory; ``--max_epochs`` counts these blocks), resume (a resumed run continues with fresh
    dropout draws: TF1's random ops restart their sequence in a new session), a manifest, and the word vectors
    saved in the run directory (``word_vectors.npy``) so that test and predict use the very same embedding.

Predict (runs trained with ``--train_file``)::

    python -m legacy_lstm.essentials --train_file=reviews.tsv --nosingle_step --seed=1 \
        --run_dir=checkpoints/essentials/reviews
    python -m legacy_lstm.essentials --mode=predict --run_dir=checkpoints/essentials/reviews "a great film" "dull"

(Each run directory holds one configuration: a run with other quirks or data is refused in the same folder, so
give each its own ``--run_dir``.)
"""

import collections
import dataclasses
import hashlib
import pathlib
import sys
import time

import numpy as np
from absl import flags

from legacy_lstm import cli
from legacy_lstm import distributed
from legacy_lstm import report
from legacy_lstm import runs
from legacy_lstm import training
from legacy_lstm.compat import tf, tf1
from legacy_lstm.data import essentials as ess_data

APP = "essentials"
WORD_VECTORS_FILE = "word_vectors.npy"
DataFormatError = ess_data.DataFormatError


# ---------------------------------------------------------------------------------------------------------
# Presets and quirks
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    batch_size: int = 4
    lstm_units: int = 16
    num_classes: int = 2
    max_sequence_length: int = 4
    embedding_dimension: int = 64
    num_iterations: int = 1000
    output_keep_prob: float = 0.8
    num_random_words: int = 1024   # rows of the random word vectors of the toy run
    log_every: int = 100           # iterations per log line and checkpoint (not in the original)


PRESETS = {
    "book": Config(),
    "test": Config(num_iterations=200, log_every=50),
}


@dataclasses.dataclass(frozen=True)
class Quirks:
    single_step: bool = True  # one optimiser step, as the shipped code; False: num_iterations steps


FAITHFUL = Quirks()
LOOP = Quirks(single_step=False)  # the declared num_iterations (our extension; scripts/reproduce.py runs it)


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Data:
    x: np.ndarray             # int32 [N, max_sequence_length]
    y: np.ndarray             # float64 [N, num_classes], one-hot
    word_vectors: np.ndarray  # float64 [rows, embedding_dimension]
    vocab: dict               # {word: row}, None for the toy data
    labels: list              # class names (the toy data: ["0", "1"])
    description: dict         # what the data and vectors are, for the manifest


def _sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def load_data(config, seed, train_file=None, word_vectors=None):
    """The training examples and the word vectors (random from ``seed`` unless a ``word_vectors`` file is given)."""
    words = vectors = None
    if word_vectors is not None:
        words, vectors = ess_data.load_word_vectors(word_vectors, config.embedding_dimension)
    vectors_desc = ({"source": "random", "seed": seed} if word_vectors is None else
                    {"source": str(word_vectors), "sha256": _sha256(word_vectors), "rows": len(words)})
    if train_file is None:
        if vectors is None:
            vectors = ess_data.random_word_vectors(config.num_random_words, config.embedding_dimension, seed)
        needed = int(ess_data.TOY_DATA.max()) + 1
        if len(vectors) < needed:
            raise DataFormatError(f"{word_vectors} has {len(vectors)} vectors; the toy data uses ids up to "
                                  f"{needed - 1}, so it needs at least {needed}")
        return Data(ess_data.TOY_DATA.copy(), ess_data.TOY_LABELS.copy(), vectors, None, ["0", "1"],
                    {"train": "toy", "word_vectors": vectors_desc})
    texts, label_ids, names = ess_data.read_train_file(train_file)
    vocab, matrix = ess_data.vocab_and_vectors(texts, config.embedding_dimension, seed, words, vectors)
    x = ess_data.encode(texts, vocab, config.max_sequence_length, vocab[ess_data.PAD])
    return Data(x, ess_data.one_hot(label_ids, config.num_classes), matrix, vocab, names,
                {"train": str(train_file), "train_sha256": _sha256(train_file), "examples": len(texts),
                 "word_vectors": vectors_desc})


# ---------------------------------------------------------------------------------------------------------
# Graph (lstm_model, in its order)
# ---------------------------------------------------------------------------------------------------------
Model = collections.namedtuple("Model", "raw_data labels keep_prob prediction loss optimizer accuracy")


def build_graph(word_vectors, config, parallel_iterations=None):
    """Build ``lstm_model``'s graph in the default graph. Variables: ``Variable`` (the dead float32 data
    variable), ``Variable_1`` (weight), ``Variable_2`` (bias), ``rnn/basic_lstm_cell/{kernel,bias}`` (float64).

    ``parallel_iterations=1`` makes the dropout inside the RNN loop draw in a fixed order (repeatable runs).
    """
    labels = tf1.placeholder(tf.float64, [config.batch_size, config.num_classes], name="labels")
    raw_data = tf1.placeholder(tf.int32, [config.batch_size, config.max_sequence_length], name="raw_data")
    # Dead code in the book (overwritten on the next line); the variable stays in the graph and the checkpoint.
    data = tf.Variable(tf.zeros([config.batch_size, config.max_sequence_length, config.embedding_dimension]),
                       dtype=tf.float32)
    data = tf.nn.embedding_lookup(np.asarray(word_vectors, dtype=np.float64), raw_data)
    weight = tf.Variable(tf1.truncated_normal([config.lstm_units, config.num_classes]))
    bias = tf.Variable(tf.constant(0.1, shape=[config.num_classes]))
    lstm_cell = tf1.nn.rnn_cell.BasicLSTMCell(config.lstm_units)
    # The book's constant 0.8, as a default the evaluation can override with 1.0 (same numbers in training).
    keep_prob = tf1.placeholder_with_default(tf.constant(config.output_keep_prob, tf.float64), [], name="keep_prob")
    wrapped = tf1.nn.rnn_cell.DropoutWrapper(cell=lstm_cell, output_keep_prob=keep_prob)
    output, _ = tf1.nn.dynamic_rnn(wrapped, data, dtype=tf.float64, parallel_iterations=parallel_iterations or 32)
    output = tf.transpose(output, [1, 0, 2])
    last = tf.gather(output, int(output.get_shape()[0]) - 1)
    weight = tf.cast(weight, tf.float64)
    last = tf.cast(last, tf.float64)
    bias = tf.cast(bias, tf.float64)
    prediction = tf.matmul(last, weight) + bias
    loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(logits=prediction, labels=labels))
    # distributed.optimizer: the optimizer itself in one process; on a cluster, replicated (legacy_lstm/distributed.py)
    optimizer = distributed.optimizer(tf1.train.AdamOptimizer()).minimize(loss)
    correct = tf.equal(tf.argmax(prediction, 1), tf.argmax(labels, 1))
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float64))
    return Model(raw_data, labels, keep_prob, prediction, loss, optimizer, accuracy)


# ---------------------------------------------------------------------------------------------------------
# Train / evaluate / predict (plain arguments; no flags below main)
# ---------------------------------------------------------------------------------------------------------
def predict_logits(sess, model, x, batch_size):
    """Logits of every row of ``x`` with dropout off; the last partial batch is padded (fixed batch size)."""
    out = []
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        batch = np.zeros([batch_size, x.shape[1]], dtype=np.int32)
        batch[:len(chunk)] = chunk
        logits = sess.run(model.prediction, {model.raw_data: batch, model.keep_prob: 1.0})
        out.append(logits[:len(chunk)])
    return np.concatenate(out) if out else np.zeros([0, model.prediction.shape[-1]], np.float64)


def evaluate(sess, model, data, batch_size):
    """Accuracy over every example of ``data``, dropout off."""
    logits = predict_logits(sess, model, data.x, batch_size)
    return float(np.mean(np.argmax(logits, 1) == np.argmax(data.y, 1)))


def num_steps(config, quirks):
    return 1 if quirks.single_step else config.num_iterations


def block_size(config, quirks):
    steps = num_steps(config, quirks)
    size = min(config.log_every, steps)
    if steps % size:
        raise ValueError(f"num_iterations ({steps}) must be a multiple of log_every ({size})")
    return size


def make_manifest(preset, config, quirks, data, seed):
    return {"app": APP, "preset": preset, "config": dataclasses.asdict(config), "quirks": dataclasses.asdict(quirks),
            "split_seed": None, "seed": seed, "cell": "basic", "data": data.description, "labels": data.labels,
            "vocab_sha256": runs.vocab_sha256(data.vocab),
            "word_vectors_sha256": hashlib.sha256(np.ascontiguousarray(data.word_vectors).tobytes()).hexdigest(),
            "curve_unit": "one block of log_every iterations (epoch k = iteration k * log_every)"}


def _check_word_vectors(saved, manifest):
    if saved is not None and saved.get("word_vectors_sha256") != manifest["word_vectors_sha256"]:
        raise runs.ManifestMismatchError(
            f"the word vectors differ from those the run was trained with ({saved.get('data')}); use the same "
            "--word_vectors and --seed, or another --run_dir")


class _Loop(training.Loop):
    unit = "block"

    def __init__(self, config, data, steps, block):
        self.config, self.data, self.steps, self.block = config, data, steps, block

    def build(self):
        # parallel_iterations=1: the dropout in the 4-step loop draws in a fixed order, so a seeded run repeats.
        return build_graph(self.data.word_vectors, self.config, parallel_iterations=1)

    def resumed(self, sitting):
        return f"Resuming {sitting.run_dir} after iteration {sitting.done * self.block}."

    def fresh(self, sitting):
        np.save(pathlib.Path(sitting.run_dir) / WORD_VECTORS_FILE, self.data.word_vectors)

    def epoch(self, sitting, index):
        model, data, block = sitting.model, self.data, self.block
        t0 = time.time()
        losses, accs = [], []
        # one process: every iteration of the block; a cluster worker: its share (legacy_lstm/distributed.py)
        count, steps = sitting.share(block, list(range((index - 1) * block, index * block)))
        with sitting.batches(count):
            for step in steps:
                rows = ess_data.batch_indices(step, len(data.x), self.config.batch_size)
                _, loss, acc = sitting.sess.run([model.optimizer, model.loss, model.accuracy],
                                                {model.raw_data: data.x[rows], model.labels: data.y[rows]})
                training.check_finite(loss, f"iteration {step + 1}")
                sitting.tick()
                losses.append(loss)
                accs.append(acc)
        accuracy = evaluate(sitting.sess, model, data, self.config.batch_size)
        # (a cluster worker that joined after the block's steps were taken has no losses: NaN means)
        row = {"epoch": index, "iteration": index * block, "loss": float(np.mean(losses)) if losses else float("nan"),
               "train_accuracy": float(np.mean(accs)) if accs else float("nan"), "accuracy": accuracy,
               "seconds": round(time.time() - t0, 3)}
        sitting.log(f"Iteration {row['iteration']}/{self.steps}... Loss: {row['loss']:.4f}... "
                    f"Train Accuracy: {row['train_accuracy']:.3f}... Accuracy: {accuracy:.3f}")
        return row

    def summaries(self, row):
        return {"train": {"loss": row["loss"], "accuracy": row["train_accuracy"]},
                "validation": {"accuracy": row["accuracy"]}}


def train(run_dir, preset="book", quirks=FAITHFUL, seed=None, train_file=None, word_vectors=None,
          max_epochs=None, log=print, progress=False, cluster=None):
    """Train (resuming an unfinished run in ``run_dir``, with the run's own seed). Returns {"curve", "run_dir",
    "seed", "finished", "accuracy", "seconds"}; ``max_epochs`` counts blocks of ``log_every`` iterations.
    ``cluster``: a worker task's ``legacy_lstm.distributed.Cluster`` (None: one process); the workers share each
    block's iterations round-robin (each draws the same word vectors from the chief's seed), the chief writes the
    run directory."""
    preset_name, config = cli.preset_config(PRESETS, preset)
    steps, block = num_steps(config, quirks), block_size(config, quirks)
    cli.epochs_to_run(steps // block, max_epochs, f"blocks of {block:,} iterations")  # before any data is read
    saved = distributed.saved_manifest(run_dir, cluster, log)  # the run dir's; a worker's: the chief's
    seed = training.resolve_seed(saved, seed)
    seed = cli.draw_seed("seed", seed, log)  # the word vectors need one; the original's were unseeded
    data = load_data(config, seed, train_file, word_vectors)
    manifest = make_manifest(preset_name, config, quirks, data, seed)
    _check_word_vectors(saved, manifest)
    result = training.train(_Loop(config, data, steps, block), run_dir, manifest, steps // block, max_epochs, seed,
                            vocab=data.vocab, log=log, progress=progress,
                            unit_label=f"blocks of {block:,} iterations", cluster=cluster)
    if result["curve"]:
        log(f"final train accuracy: {result['curve'][-1]['accuracy']:.4f}")
    result["accuracy"] = result["curve"][-1]["accuracy"] if result["curve"] else None
    return result


class Trained(runs.HoldsSession):
    """A run restored from its directory (config, vocabulary, saved word vectors). Context manager."""

    def __init__(self, run_dir, checkpoint=None):
        opened = training.open_run(run_dir, APP)
        self.manifest, self.vocab = opened.manifest, opened.vocab
        self.config = Config(**self.manifest["config"])
        path = pathlib.Path(run_dir) / WORD_VECTORS_FILE
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: the run directory is incomplete. Train again into it.")
        self.word_vectors = np.load(path)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.model = build_graph(self.word_vectors, self.config)
            self.sess = tf1.Session(graph=self.graph)
            self.checkpoint = runs.Run(run_dir, self.manifest).restore(self.sess, checkpoint)
        self.graph.finalize()


def test(run_dir, checkpoint=None, train_file=None, word_vectors=None, log=print):
    """Accuracy of a checkpoint on the data it was trained on (there is no held-out data), or on another
    ``train_file`` encoded with the run's vocabulary."""
    with Trained(run_dir, checkpoint) as trained:
        log(f"Restored {trained.checkpoint}")
        if train_file is None:
            desc = trained.manifest["data"]
            if desc["train"] == "toy":
                data = Data(ess_data.TOY_DATA, ess_data.TOY_LABELS, None, None, ["0", "1"], desc)
            else:
                train_file = desc["train"]
        if train_file is not None:
            data = encode_labelled_file(train_file, trained)
        acc = evaluate(trained.sess, trained.model, data, trained.config.batch_size)
    log(f"Accuracy on the {len(data.x)} {'toy sequences' if train_file is None else 'examples of ' + str(train_file)}:"
        f" {acc:.3f}")
    return acc


def encode_labelled_file(path, trained):
    if trained.vocab is None:
        raise DataFormatError("this run was trained on the toy id sequences and has no vocabulary; a labelled "
                              "file can only be evaluated by a run trained with --train_file")
    texts, label_ids, names = ess_data.read_train_file(path)
    if names != trained.manifest["labels"]:
        raise DataFormatError(f"{path} has the labels {names}, the run was trained with {trained.manifest['labels']}")
    x = ess_data.encode(texts, trained.vocab, trained.config.max_sequence_length, trained.vocab[ess_data.PAD])
    return Data(x, ess_data.one_hot(label_ids, trained.config.num_classes), None, trained.vocab, names, {})


def predict(run_dir, texts, checkpoint=None):
    """[(label name, probability of that label, known words)] for raw texts, with a run trained on a file."""
    with Trained(run_dir, checkpoint) as trained:
        if trained.vocab is None:
            raise DataFormatError("this run was trained on the toy id sequences and has no vocabulary: train with "
                                  "--train_file to predict texts")
        tokens = [ess_data.tokenize(t) for t in texts]
        x = ess_data.encode(tokens, trained.vocab, trained.config.max_sequence_length, trained.vocab[ess_data.PAD])
        logits = predict_logits(trained.sess, trained.model, x, trained.config.batch_size)
        labels = trained.manifest["labels"]
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    known = [sum(t in trained.vocab for t in toks[:trained.config.max_sequence_length]) for toks in tokens]
    return [(labels[int(np.argmax(p))], float(p.max()), k) for p, k in zip(probs, known)]


# ---------------------------------------------------------------------------------------------------------
# Reproduction (scripts/reproduce.py; results and tables: legacy_lstm/report.py)
# ---------------------------------------------------------------------------------------------------------
# one curve row per block of 100 iterations
REPRODUCTION = report.Reproduction("book", (("accuracy", "accuracy on the 4 toy sequences"),
                                            ("loss", "train loss (100-step mean)")), app_flags="--nosingle_step")


def reproduce(run_dir, preset="book", seed=None, data_dir=None, max_epochs=None, train_run=True,
              variant_quirks=None, variant_cell="basic", split_seed=None, fast_test=False):
    """Essentials: the 1,000 iterations the book's code declares (``LOOP``, not the shipped single step) on its
    four toy sequences (the run's own seed when resuming), then the accuracy on them (the target: 1.0; there is no
    published number)."""
    if split_seed is not None:
        raise ValueError("essentials has no --split_seed: there is no split (four toy sequences)")
    saved = runs.read_manifest(run_dir)
    seed = saved.get("seed") if saved is not None else seed
    manifest, curve = report.sitting(run_dir, APP, None if not train_run else lambda: train(
        run_dir, preset, dataclasses.replace(LOOP, **(variant_quirks or {})), seed=seed, max_epochs=max_epochs))
    final, test_seconds = {"accuracy": None}, None
    if curve and len(curve) == report.epochs_total(manifest):
        t = time.time()
        final["accuracy"] = test(run_dir)
        test_seconds = time.time() - t
    return manifest, curve, final, test_seconds


# ---------------------------------------------------------------------------------------------------------
# main: the only reader of flags
# ---------------------------------------------------------------------------------------------------------
SINGLE_STEP = flags.DEFINE_bool("single_step", True, "Quirk of the shipped code (default): run one optimiser "
                                "step (it declares 1,000 iterations and never uses them). --nosingle_step runs "
                                "the preset's num_iterations (1,000).")
WORD_VECTORS = flags.DEFINE_string("word_vectors", None, "word2vec (text) or GloVe file of 64-dimensional "
                                   "vectors, instead of the book's random ones.")
TRAIN_FILE = flags.DEFINE_string("train_file", None, "Training data: one 'label<TAB>text' per line, two labels. "
                                 "Default: the book's four toy sequences. With --mode=test: data to evaluate.")
flags.adopt_module_key_flags(cli)


def main(argv):
    preset, mode, run_dir = cli.resolve_common(APP, PRESETS, "book", ("train", "test", "predict"), argv,
                                               ("predict",), "texts are only taken with --mode=predict")
    cluster = cli.resolve_cluster(mode)
    if cluster is not None and cluster.is_ps:
        return distributed.serve(cluster)
    if cli.refuse_cell(("basic",), "the book's LSTM runs in float64, which only --cell=basic (BasicLSTMCell) "
                       "supports"):
        return 1
    if mode != "train":  # the run's own settings are used: a flag given with another value is an error
        cli.check_given_flags(run_dir)
    try:
        if mode == "train":
            train(run_dir, preset, Quirks(single_step=SINGLE_STEP.value), cli.SEED.value, TRAIN_FILE.value,
                  WORD_VECTORS.value, cli.MAX_EPOCHS.value, progress=cli.PROGRESS.value, cluster=cluster)
        elif mode == "test":
            test(run_dir, cli.CHECKPOINT.value, TRAIN_FILE.value)
        else:
            texts = cli.read_messages(argv)
            for (label, prob, known), text in zip(predict(run_dir, texts, cli.CHECKPOINT.value), texts):
                note = "" if known else " (no known words)"
                print(f"{prob:.4f}\t{label}{note}\t{text}")
    except DataFormatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    cli.run(main)
