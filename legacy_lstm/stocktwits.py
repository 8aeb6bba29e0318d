r"""StockTwits $SPY sentiment with a 2-layer LSTM: Garrett Hoffman, "Introduction to LSTMs with TensorFlow".

Source: O'Reilly article and its repository GarrettHoffman/lstm-oreilly@907bc5a (utils.py and the notebook
"Stock Market Sentiment with LSTMs and TensorFlow.ipynb", which holds the published outputs).

Reproduction contract
---------------------
Command (published config, faithful quirks, on the real data)::

    python -m legacy_lstm.stocktwits                      # = --preset=hoffman --mode=train, then:
    python -m legacy_lstm.stocktwits --mode=test
    python scripts/reproduce.py stocktwits                # both, resumable, writes results/stocktwits.{json,png}

Published numbers (notebook output, 50 epochs; the full curve is ``legacy_lstm/published/stocktwits.json``)
and the bands a reproduction must meet:

    ======================  =========  ======
    metric                  published  band
    ======================  =========  ======
    val accuracy, epoch 1   0.578      ± 0.03
    val accuracy, epoch 10  0.659      ± 0.03
    val accuracy, epoch 50  0.718      ± 0.015
    every epoch's val acc   (curve)    ± 0.03
    test accuracy           0.717      ± 0.015
    ======================  =========  ======

The split is unseeded in the original, so the published split cannot be rebuilt; expect run-to-run spread.

Presets (``--preset``)
    hoffman (default)  lstm_sizes [128, 64], embed 300, batch 256, Adadelta lr 0.1, keep_prob 0.5, 50 epochs,
                       80/10/10 split. Train 77,572 / val 9,697 / test 9,697; 303 / 37 / 37 batches.
    test               [16, 8], embed 16, batch 32, 2 epochs on the first 2,000 records: a CI smoke run.

Data: ``stocktwits_spy/StockTwits_SPY_Sentiment_2017.gz`` (sha256 2764ef98...a4eeef) in ``--data_dir``
(default ``$LEGACY_LSTM_DATA``, else ``~/.cache/legacy_lstm``); downloaded from the original repository
when missing and reachable.

Quirks of the original, reproduced by default, each switchable
    --seq_len=244          every message is left-padded to 244 *tokens*; 244 is the notebook's maximum length in
                           *characters* (the true maximum is 39 tokens). ``--seq_len=auto`` uses the longest
                           message in tokens (39); an integer sets it.
    --carry_state          the final LSTM state of batch k is the initial state of batch k+1 within an epoch, in
                           training and in validation/test (messages are independent). ``--nocarry_state`` starts
                           every batch from zeros.
    --vocab_from=all       the vocabulary is built over all messages before the split. ``train`` builds it on the
                           training split only (val/test words outside it are dropped).
    --eval_off_by_one      validation and the log line happen after batch 302 of 303 (``(ii + 1) % n == 0`` with
                           ii from 1); the line still says "Batch: 303/303", and the 303rd batch trains afterwards.
                           ``--noeval_off_by_one`` evaluates after the last batch.
    --split_seed           the original split is unseeded: by default a seed is drawn, logged and stored in the
                           manifest, so the run can be repeated with ``--split_seed=<n>``.

Cells (``--cell``, recorded in the manifest): ``basic`` (default, the original's BasicLSTMCell), ``block`` (the
raw LSTMBlockCell op with forget_bias 1: the same model, faster on CPU) and ``cudnn_compatible`` (TF1's
CudnnCompatibleLSTMCell, forget_bias 0, the layout cuDNN checkpoints use; the forget-gate bias starts at 0
instead of an added 1, so it trains a slightly different model). ``python -m legacy_lstm.convert`` converts a
run directory between them exactly.

Deliberate, numerically neutral differences: the original rebuilds ``zero_state`` inside the epoch loop (the
graph grows each epoch); here it is built once. Beyond the original: a checkpoint every epoch
(``model.ckpt-<epoch>``), automatic resume after an interruption (even ``kill -9``) from the last finished
epoch, a manifest checked on restore, TensorBoard events and the per-epoch curve in the run directory, and a
stop with a clear error on a NaN loss (the last good checkpoint is kept). The original's final checkpoint name
``sentiment.ckpt`` is kept; a ``sentiment.ckpt`` written by the original code under TF 1.x restores into this
graph (same variable names) with ``--mode=test --checkpoint=path/to/sentiment.ckpt --split_seed=<n>
--run_dir=<a new folder>``; as that run's split is unknown, the accuracy on any split is optimistic. That test
records the config and vocabulary in the new run dir, so ``--mode=predict --run_dir=<it>
--checkpoint=path/to/sentiment.ckpt`` then works too.

Hoffman-style checkpoints of other sizes (notebooks that copied his functions with their own settings): the
preset's sizes are overridden by ``--lstm_sizes=512`` (a comma list), ``--embed_size=300``, ``--vocab_size=10963``
(rows of the embedding, when the checkpoint's vocabulary was larger than this data's) and ``--optimizer=adam``
(adadelta, the original's, or adam: whose slots the graph holds, which matters when training on from such a
checkpoint), or by ``--config=<file.json>`` holding any Config fields (``{"lstm_sizes": [512], "embed_size": 300,
"optimizer": "adam"}``; the flags win over it). They are recorded in the manifest's config (a run dir written
before a field existed ran with its default: ``runs.with_app_defaults``), so a resume, test or predict with other
values is refused, naming the field. E.g. a TF 1.6 notebook's one BasicLSTMCell 512,
embedding 300 over 10,963 words, Adam (tests/test_tf1_checkpoints.py checks its names and shapes)::

    python -m legacy_lstm.stocktwits --mode=test --checkpoint=path/to/sentiment.ckpt --split_seed=1 \
        --run_dir=<a new folder> --lstm_sizes=512 --embed_size=300 --vocab_size=10963 --optimizer=adam \
        --vocab_file=vocab_to_int.json

A checkpoint trained on other data (or on this data with another tie order) indexes its embedding with its own
vocabulary: ``--vocab_file`` gives it, as JSON word -> id (the notebook's ``vocab_to_int``: ``json.dump(vocab_to_int,
open("vocab_to_int.json", "w"))``) or one word per line (ids from 1). Test mode encodes this data with it (words it
lacks are dropped) and records it in the new run dir, so ``--mode=predict`` reads messages as that model did.
Without it the vocabulary is the one this data builds, the original's only for a checkpoint trained on it.

Log line (the notebook's spelling, which printed the published numbers; ``--noaccruacy`` prints the article's
"Train Accuracy"; ``python -m legacy_lstm.compare`` reads both)::

    Epoch: 1/50... Batch: 303/303... Train Loss: 0.247... Train Accruacy: 0.562... Val Accuracy: 0.578

Predict: ``python -m legacy_lstm.stocktwits --mode=predict "SPY to the moon" 'puts on $SPY'`` (or one message
per line on stdin) prints the probability of bullish and the label per message, with the vocabulary saved
in the run directory. Words outside the vocabulary are dropped; a message with no known word gets
"unknown"; messages longer than seq_len keep their first seq_len tokens (as the original's padding does).
A message that starts with ``-`` (``-5% today``) would be read as a flag: put ``--`` before the messages
(``--mode=predict -- "-5% today"``) or give them on stdin. Bytes that are not UTF-8 become U+FFFD (the message is
still answered); no message at all is an error. Test and predict modes use the run's own config, quirks, split
seed and cell from its manifest; a flag given with another value (``--mode=test --nocarry_state`` on a
faithful run) is refused, naming it.
"""

import collections
import contextlib
import dataclasses
import json
import pathlib
import time

import numpy as np
from absl import flags

from legacy_lstm import cells
from legacy_lstm import cli
from legacy_lstm import distributed
from legacy_lstm import fast_lstm
from legacy_lstm import report
from legacy_lstm import runs
from legacy_lstm import training
from legacy_lstm.compat import fully_connected, tf, tf1
from legacy_lstm.data import download
from legacy_lstm.data import stocktwits as st_data

APP = "stocktwits"
FINAL_CHECKPOINT = "sentiment.ckpt"


# ---------------------------------------------------------------------------------------------------------
# Presets and quirks
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    lstm_sizes: tuple = (128, 64)
    embed_size: int = 300
    batch_size: int = 256
    learning_rate: float = 0.1
    keep_prob: float = 0.5
    epochs: int = 50
    split_frac: float = 0.8
    max_records: int = None  # use only the first N records of the file (the `test` preset)
    # For Hoffman-style checkpoints written by other notebooks (--optimizer, --vocab_size; resolve_config):
    optimizer: str = "adadelta"  # adadelta (the original's) | adam: whose slots the graph (and a checkpoint) holds
    vocab_size: int = None       # rows of the embedding; None: the data's vocabulary + 1 (the original's)


PRESETS = {
    "hoffman": Config(),
    "test": Config(lstm_sizes=(16, 8), embed_size=16, batch_size=32, epochs=2, max_records=2000),
}


@dataclasses.dataclass(frozen=True)
class Quirks:
    """The original's behaviours that a user may switch off. Defaults are faithful."""
    seq_len: object = 244          # int, or "auto" (resolved to the longest message in tokens)
    carry_state: bool = True
    vocab_from: str = "all"        # all | train
    eval_off_by_one: bool = True


FAITHFUL = Quirks()


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------
Split = collections.namedtuple("Split", "x y")


@dataclasses.dataclass
class Data:
    train: Split
    val: Split
    test: Split
    vocab: dict
    seq_len: int
    num_records: int


def load_data(path, config, quirks, split_seed, vocab=None):
    """Read, preprocess, build the vocabulary, drop the empty message, encode, pad and split, as the notebook.
    ``vocab``: a given {word: id} instead (a checkpoint's own, ``read_vocab_file``; its missing words dropped)."""
    messages, labels = st_data.read_records(path)
    if config.max_records:
        messages, labels = messages[:config.max_records], labels[:config.max_records]
    texts = [st_data.preprocess(m) for m in messages]
    kept_texts, kept_labels = st_data.drop_empty(texts, labels)
    index = np.arange(len(kept_texts))
    (train_idx, _), _, _ = st_data.split(index, index, config.split_frac, split_seed)
    if vocab is not None:
        pass
    elif quirks.vocab_from == "all":
        vocab = st_data.build_vocab(texts)
    elif quirks.vocab_from == "train":
        vocab = st_data.build_vocab([kept_texts[i] for i in sorted(train_idx)])
    else:
        raise ValueError(f"vocab_from must be 'all' or 'train', got {quirks.vocab_from!r}")
    ids = st_data.encode(kept_texts, vocab)
    seq_len = resolve_seq_len(quirks.seq_len, kept_texts)
    x = st_data.left_pad(ids, seq_len)
    train, val, test = st_data.split(x, kept_labels, config.split_frac, split_seed)
    return Data(Split(*train), Split(*val), Split(*test), vocab, seq_len, len(messages))


def read_vocab_file(path):
    """{word: id} from a checkpoint's own vocabulary file: a JSON object of word to id (the notebook's
    ``vocab_to_int``, e.g. saved with ``json.dump(vocab_to_int, f)``), or text with one word per line, ids from 1 in
    that order (0 is the padding). Ids must be whole numbers >= 1, each used once."""
    path = pathlib.Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"--vocab_file={path}: cannot be read ({err})") from None
    if path.suffix == ".json" or text.lstrip().startswith("{"):
        try:
            vocab = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"--vocab_file={path}: not a JSON object of word to id ({err})") from None
        if not isinstance(vocab, dict):
            raise ValueError(f"--vocab_file={path}: expected a JSON object of word to id")
    else:
        words = [w.strip() for w in text.splitlines() if w.strip()]
        vocab = {w: i for i, w in enumerate(words, 1)}
        if len(vocab) != len(words):
            raise ValueError(f"--vocab_file={path}: a word is listed twice")
    bad = [w for w, i in vocab.items() if isinstance(i, bool) or not isinstance(i, int) or i < 1]
    if bad or not vocab:
        raise ValueError(f"--vocab_file={path}: " + (f"the id of {bad[0]!r} is not a whole number >= 1 (0 is the "
                                                     "padding)" if bad else "no words"))
    if len(set(vocab.values())) != len(vocab):
        raise ValueError(f"--vocab_file={path}: two words share an id")
    return vocab


def resolve_seq_len(seq_len, texts):
    if seq_len == "auto":
        return max(len(t.split()) for t in texts)
    seq_len = int(seq_len)
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1 or 'auto', got {seq_len}")
    return seq_len


# ---------------------------------------------------------------------------------------------------------
# Graph (the notebook's functions, in its order)
# ---------------------------------------------------------------------------------------------------------
Model = collections.namedtuple(
    "Model", "inputs labels keep_prob initial_state final_state predictions loss train_op accuracy")


OPTIMIZERS = {"adadelta": tf1.train.AdadeltaOptimizer, "adam": tf1.train.AdamOptimizer}


def build_graph(vocab_size, config, parallel_iterations=None, cell="basic", input_features=None,
                optimizer="adadelta"):
    """Build the notebook's graph in the default graph; variable names are those TF 1.x gave it.

    ``cell`` is basic (the original's BasicLSTMCell), block or cudnn_compatible (see legacy_lstm.cells), or fused
    (basic's variables and maths over the whole sequence, see legacy_lstm.fast_lstm).

    ``parallel_iterations=1`` makes the dropout inside the RNN loop draw in a fixed order (deterministic runs,
    ~6-10% slower); None keeps dynamic_rnn's default of 32.

    For checkpoints of graphs written from the notebook's functions (tests/test_tf1_checkpoints.py): an integer
    ``input_features`` feeds float features ``inputs`` [batch, time, input_features] straight into the RNN (no
    embedding ``Variable``, as some copies of the notebook did), and ``optimizer`` (adadelta | adam) chooses whose
    slots the graph holds. The defaults are the original's.
    """
    # model_inputs
    if input_features is None:
        inputs = tf1.placeholder(tf.int32, [None, None], name="inputs")
    else:
        inputs = tf1.placeholder(tf.float32, [None, None, input_features], name="inputs")
    labels = tf1.placeholder(tf.int32, [None, None], name="labels")
    keep_prob = tf1.placeholder(tf.float32, name="keep_prob")
    if input_features is None:
        # build_embedding_layer: a plain tf.Variable, so its checkpoint name is "Variable"
        embedding = tf.Variable(tf1.random_uniform((vocab_size, config.embed_size), -1, 1))
        embed = tf.nn.embedding_lookup(embedding, inputs)
    else:
        embed = inputs
    # build_lstm_layers: one fresh cell per layer, output dropout only
    # (fused: the same BasicLSTMCell stack, run by legacy_lstm.fast_lstm with the same variables and draws)
    layers = [tf1.nn.rnn_cell.DropoutWrapper(cells.make_cell("basic" if cell == "fused" else cell, size),
                                             output_keep_prob=keep_prob)
              for size in config.lstm_sizes]
    stack = tf1.nn.rnn_cell.MultiRNNCell(layers)
    # The batch size is baked into the zero state: partial batches are dropped everywhere.
    initial_state = stack.zero_state(config.batch_size, tf.float32)
    rnn = fast_lstm.dynamic_rnn if cell == "fused" else tf1.nn.dynamic_rnn
    outputs, final_state = rnn(stack, embed, initial_state=initial_state,
                               parallel_iterations=parallel_iterations or 32)
    # build_cost_fn_and_opt: sigmoid unit on the last step, MSE, Adadelta
    predictions = fully_connected(outputs[:, -1], 1, activation_fn=tf.sigmoid)
    loss = tf1.losses.mean_squared_error(labels, predictions)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    # distributed.optimizer: the optimizer itself in one process; on a cluster, replicated (legacy_lstm/distributed.py)
    train_op = distributed.optimizer(OPTIMIZERS[optimizer](config.learning_rate)).minimize(loss)
    # build_accuracy
    correct = tf.equal(tf.cast(tf.round(predictions), tf.int32), labels)
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    return Model(inputs, labels, keep_prob, initial_state, final_state, predictions, loss, train_op, accuracy)


def zero_state_value(model):
    return tf.nest.map_structure(lambda t: np.zeros(t.shape.as_list(), np.float32), model.initial_state)


def _state_feed(model, state):
    return dict(zip(tf.nest.flatten(model.initial_state), tf.nest.flatten(state)))


# ---------------------------------------------------------------------------------------------------------
# Train / evaluate / predict (plain arguments; no flags below main)
# ---------------------------------------------------------------------------------------------------------
def evaluate(sess, model, split, batch_size, carry_state=True):
    """Mean per-batch accuracy over the full batches of ``split`` with keep_prob 1 (state carried if asked)."""
    if st_data.num_batches(len(split.x), batch_size) == 0:
        raise ValueError(f"{len(split.x)} examples do not fill one batch of {batch_size}")
    state, accs = zero_state_value(model), []
    for x, y in st_data.get_batches(split.x, split.y, batch_size):
        feed = {model.inputs: x, model.labels: y[:, None], model.keep_prob: 1.0, **_state_feed(model, state)}
        acc, new_state = sess.run([model.accuracy, model.final_state], feed)
        accs.append(acc)
        if carry_state:
            state = new_state
    return float(np.mean(accs))


def run_epoch(sess, model, data, config, quirks, epoch, num_epochs, log=print, sitting=None, accruacy=True):
    """One training epoch as ``build_and_train_network``; returns the curve row of the epoch.

    ``sitting`` (the driver's, optional) shows the progress of the batches; ``accruacy``: the log line's
    "Train Accruacy", as the notebook printed it (False: the article's "Train Accuracy")."""
    start = time.time()
    n_batches = st_data.num_batches(len(data.train.x), config.batch_size)
    if n_batches == 0:
        raise ValueError(f"{len(data.train.x)} training examples do not fill one batch of {config.batch_size}")
    batches = st_data.get_batches(data.train.x, data.train.y, config.batch_size)
    if sitting:  # one process: all of them; a cluster worker: its share (legacy_lstm/distributed.py)
        n_batches, batches = sitting.share(n_batches, batches)
    with sitting.batches(n_batches) if sitting else contextlib.nullcontext():
        row = _train_batches(sess, model, data, config, quirks, epoch, num_epochs, n_batches, log, sitting,
                             accruacy, batches)
    row["seconds"] = round(time.time() - start, 3)
    return row


def _train_batches(sess, model, data, config, quirks, epoch, num_epochs, n_batches, log, sitting, accruacy=True,
                   batches=None):
    state, train_acc, train_loss, row = zero_state_value(model), [], [], None
    if batches is None:
        batches = st_data.get_batches(data.train.x, data.train.y, config.batch_size)
    for ii, (x, y) in enumerate(batches, 1):
        feed = {model.inputs: x, model.labels: y[:, None], model.keep_prob: config.keep_prob,
                **_state_feed(model, state)}
        loss, new_state, _, acc = sess.run([model.loss, model.final_state, model.train_op, model.accuracy], feed)
        training.check_finite(loss, f"epoch {epoch}, batch {ii}")
        if sitting:
            sitting.tick()
        train_acc.append(acc)
        train_loss.append(loss)
        if quirks.carry_state:
            state = new_state
        at_eval = (ii + 1) % n_batches == 0 if quirks.eval_off_by_one else ii == n_batches
        if at_eval and row is None:
            val_acc = evaluate(sess, model, data.val, config.batch_size, quirks.carry_state)
            shown = ii + 1 if quirks.eval_off_by_one else ii
            log(f"Epoch: {epoch}/{num_epochs}... Batch: {shown}/{n_batches}... Train Loss: {loss:.3f}... "
                f"Train {'Accruacy' if accruacy else 'Accuracy'}: {np.mean(train_acc):.3f}... "
                f"Val Accuracy: {val_acc:.3f}")
            row = {"epoch": epoch, "train_loss": float(loss), "train_acc": float(np.mean(train_acc)),
                   "val_acc": val_acc, "eval_after_batch": ii}
    if row is None:  # only a cluster worker that joined mid-epoch: fewer batches than its share; no log line
        row = {"epoch": epoch, "train_loss": float(train_loss[-1]) if train_loss else float("nan"),
               "train_acc": float(np.mean(train_acc)) if train_acc else float("nan"), "val_acc": float("nan"),
               "eval_after_batch": len(train_loss)}
        train_loss, train_acc = train_loss or [float("nan")], train_acc or [float("nan")]
    # Beyond the original's columns: means over every batch of the epoch (the logged ones are partial).
    row["epoch_train_loss"] = float(np.mean(train_loss))
    row["epoch_train_acc"] = float(np.mean(train_acc))
    return row


def embedding_rows(config, vocab):
    """Rows of the embedding: ``config.vocab_size``, else the vocabulary's words + 1 (id 0 is the padding); a
    vocabulary with ids beyond a given vocab_size is a clear error."""
    needed = max(vocab.values(), default=0) + 1
    if config.vocab_size is None:
        return needed
    if config.vocab_size < needed:
        raise ValueError(f"--vocab_size={config.vocab_size} is smaller than the vocabulary needs (ids up to "
                         f"{needed - 1} + the padding id 0 = {needed} rows): the checkpoint's embedding and this "
                         "vocabulary (this data's, or --vocab_file's) do not belong together")
    return config.vocab_size


def make_manifest(preset, config, quirks, data, split_seed, seed, cell):
    return {"app": APP, "preset": preset, "config": dataclasses.asdict(config),
            "quirks": dict(dataclasses.asdict(quirks), seq_len=data.seq_len), "split_seed": split_seed,
            "seed": seed, "cell": cell, "vocab_size": embedding_rows(config, data.vocab),
            "vocab_sha256": runs.vocab_sha256(data.vocab), "num_records": data.num_records}


class _Loop(training.Loop):
    final_name = FINAL_CHECKPOINT

    def __init__(self, data, config, quirks, cell, deterministic, split_seed, accruacy=True):
        self.data, self.config, self.quirks, self.cell = data, config, quirks, cell
        self.deterministic, self.split_seed, self.accruacy = deterministic, split_seed, accruacy

    def build(self):
        return build_graph(embedding_rows(self.config, self.data.vocab), self.config,
                           parallel_iterations=1 if self.deterministic else None, cell=self.cell,
                           optimizer=self.config.optimizer)

    def resumed(self, sitting):
        return f"Resuming {sitting.run_dir} after epoch {sitting.done} (split_seed={self.split_seed})."

    def epoch(self, sitting, epoch):
        return run_epoch(sitting.sess, sitting.model, self.data, self.config, self.quirks, epoch, self.config.epochs,
                         log=sitting.log, sitting=sitting, accruacy=self.accruacy)

    def summaries(self, row):
        return {"train": {"loss": row["train_loss"], "accuracy": row["train_acc"]},
                "validation": {"accuracy": row["val_acc"]}}


def train(data_path, run_dir, preset="hoffman", quirks=FAITHFUL, split_seed=None, seed=None, max_epochs=None,
          deterministic=None, cell="basic", log=print, progress=False, accruacy=True, cluster=None):
    """Train (resuming from ``run_dir`` when it holds an unfinished run of the same config).

    ``deterministic`` (default: whether a seed is given) runs the RNN loop with parallel_iterations=1 so that
    dropout draws in a fixed order; with a seed, the run is then repeatable bit for bit on one machine.
    A resume keeps the run's seed and split seed (another ``seed`` is refused: ``training.resolve_seed``).

    ``cluster``: a worker task's ``legacy_lstm.distributed.Cluster`` (None: one process); a worker other than
    the chief takes the seed and split seed of the chief's run when they are not given.

    Returns {"curve": [...], "run_dir", "split_seed", "seed", "finished": bool, "seconds"}.
    """
    preset_name, config = cli.preset_config(PRESETS, preset)
    cli.epochs_to_run(config.epochs, max_epochs)  # a usage error before any data is read
    saved = distributed.saved_manifest(run_dir, cluster, log)  # the run dir's; a worker's: the chief's
    seed = training.resolve_seed(saved, seed)
    if saved is not None:  # resuming: what was not given is the run's own (an unseeded run's drawn split seed)
        split_seed = saved.get("split_seed") if split_seed is None else split_seed
        deterministic = saved.get("deterministic") if deterministic is None else deterministic
    split_seed = cli.draw_seed("split_seed", split_seed, log)
    if deterministic is None:
        deterministic = seed is not None
    data = load_data(data_path, config, quirks, split_seed)
    manifest = make_manifest(preset_name, config, quirks, data, split_seed, seed, cell)
    manifest["deterministic"] = deterministic  # recorded, not checked: a resume may change it (numbers differ)
    result = training.train(_Loop(data, config, quirks, cell, deterministic, split_seed, accruacy), run_dir, manifest,
                            config.epochs, max_epochs, seed, vocab=data.vocab, log=log, progress=progress,
                            cluster=cluster)
    result["split_seed"] = split_seed
    return result


def test(data_path, run_dir, checkpoint=None, preset="hoffman", quirks=FAITHFUL, split_seed=None, cell="basic",
         log=print, vocab=None):
    """Evaluate a checkpoint on the test split (37 batches for the published config); returns the accuracy.

    Config, quirks, split seed and cell come from the run directory's manifest; the arguments are used only for
    a checkpoint without one (e.g. written by the original TF 1.x code), and so is ``vocab``: that checkpoint's
    own {word: id} (None: the one this data builds, the original's when it was trained on this data).
    """
    config, quirks, split_seed, manifest, data, from_run_dir = _eval_setup(data_path, run_dir, preset, quirks,
                                                                           split_seed, cell, checkpoint, vocab)
    graph = tf.Graph()
    with graph.as_default():
        model = build_graph(embedding_rows(config, data.vocab), config, cell=manifest["cell"],
                            optimizer=config.optimizer)
        # Evaluation needs only the model's weights (not the optimizer slots an imported checkpoint may lack).
        run = runs.Run(run_dir, manifest, var_list=tf1.trainable_variables())
        with tf1.Session(graph=graph) as sess:
            path = run.restore(sess, checkpoint, check_manifest=from_run_dir or checkpoint is None)
            log(f"Restored {path}")
            if not from_run_dir:  # a checkpoint from elsewhere: its config and vocabulary, for --mode=predict
                run.write_manifest(data.vocab)
            acc = evaluate(sess, model, data.test, config.batch_size, quirks.carry_state)
    log(f"Test Accuracy: {acc:.3f}")
    return acc


def _eval_setup(data_path, run_dir, preset, quirks, split_seed, cell, checkpoint=None, vocab=None):
    """Config, quirks, split seed, manifest and data for test mode: from the run's manifest when there is one
    (last item: whether there was one)."""
    saved = runs.read_manifest(run_dir)
    training.check_app(saved, run_dir, APP)
    if vocab is not None and saved is not None:
        raise ValueError(f"--vocab_file: {run_dir} holds a run, which uses its own vocabulary; the file is for a "
                         "--checkpoint from elsewhere tested into a new --run_dir")
    if saved is None and checkpoint is None:
        raise FileNotFoundError(f"{run_dir} holds no trained run (no {runs.MANIFEST}): train one first "
                                "(--mode=train with this --run_dir), or pass --checkpoint (with --split_seed) to "
                                "test a checkpoint from elsewhere.")
    if saved is not None:
        config = Config(**dict(saved["config"], lstm_sizes=tuple(saved["config"]["lstm_sizes"])))
        quirks = Quirks(**saved["quirks"])
        split_seed = saved["split_seed"]
        preset = saved["preset"]
        cell = saved.get("cell", "basic")
        # the run's own vocabulary (checked against the manifest): the data's as the run built it, or the one a
        # checkpoint from elsewhere came with (--vocab_file)
        vocab = training.open_run(run_dir, APP).vocab
    else:
        preset, config = cli.preset_config(PRESETS, preset)
        if split_seed is None:
            raise ValueError(f"{run_dir} has no manifest, so the split of the checkpoint's run is unknown: pass "
                             "--split_seed. An original TF 1.x run was unseeded, so its split cannot be rebuilt: "
                             "any seed's test split holds mostly messages that run trained on, and the accuracy "
                             "it gives is optimistic.")
    data = load_data(data_path, config, quirks, split_seed, vocab=vocab)
    manifest = make_manifest(preset, config, quirks, data, split_seed, saved.get("seed") if saved else None, cell)
    return config, quirks, split_seed, manifest, data, saved is not None


def encode_for_prediction(texts, vocab, seq_len):
    """Preprocess and encode raw messages. Returns (x [N, seq_len], info per message)."""
    ids, info = [], []
    for text in texts:
        tokens = st_data.preprocess(text).split()
        known = [vocab[t] for t in tokens if t in vocab]
        ids.append(known[:seq_len])
        info.append({"text": text, "tokens": len(tokens), "known": len(known),
                     "truncated": len(known) > seq_len})
    return st_data.left_pad(ids, seq_len), info


def predict(run_dir, texts, checkpoint=None):
    """Probability of bullish for each raw message, with the vocabulary and config saved in ``run_dir``.

    Returns a list of dicts: text, probability (None when no word is known), label (bullish | bearish |
    unknown), tokens, known, truncated.
    """
    opened = training.open_run(run_dir, APP)
    run_probe, vocab = opened.manifest, opened.vocab
    config = Config(**dict(run_probe["config"], lstm_sizes=tuple(run_probe["config"]["lstm_sizes"])))
    seq_len = run_probe["quirks"]["seq_len"]
    x, info = encode_for_prediction(list(texts), vocab, seq_len)
    results = [dict(i, probability=None, label="unknown") for i in info]
    rows = [i for i, item in enumerate(info) if item["known"] > 0]
    if not rows:
        return results
    graph = tf.Graph()
    with graph.as_default():
        model = build_graph(embedding_rows(config, vocab), config, cell=run_probe.get("cell", "basic"),
                            optimizer=config.optimizer)
        run = runs.Run(run_dir, run_probe, var_list=tf1.trainable_variables())
        with tf1.Session(graph=graph) as sess:
            run.restore(sess, checkpoint)
            bs = config.batch_size
            for start in range(0, len(rows), bs):
                chunk = rows[start:start + bs]
                batch = np.zeros((bs, seq_len), np.int32)  # the zero state fixes the batch size: pad it
                batch[:len(chunk)] = x[chunk]
                probs = sess.run(model.predictions, {model.inputs: batch, model.keep_prob: 1.0})[:len(chunk), 0]
                for i, p in zip(chunk, probs):
                    # p = 0.5 is bearish, as the graph's tf.round counts it
                    results[i].update(probability=float(p), label="bullish" if p > 0.5 else "bearish")
    return results


# ---------------------------------------------------------------------------------------------------------
# Reproduction (scripts/reproduce.py; results and tables: legacy_lstm/report.py)
# ---------------------------------------------------------------------------------------------------------
REPRODUCTION = report.Reproduction("hoffman", (("val_acc", "validation accuracy"),
                                               ("train_loss", "train loss (1 batch)")))


def reproduce(run_dir, preset="hoffman", seed=None, data_dir=None, max_epochs=None, train_run=True,
              variant_quirks=None, variant_cell="basic", split_seed=None, fast_test=False):
    """The published reproduction (scripts/reproduce.py): train (unless ``train_run`` is False; resumable, the run
    dir's own seed when resuming), then test once the run is complete. Returns (manifest, curve, final metrics,
    test wall seconds or None)."""
    data_path = download.locate(download.STOCKTWITS, data_dir)
    test_acc = None
    quirks = Quirks(**(variant_quirks or {}))
    saved = runs.read_manifest(run_dir)
    seed = saved.get("seed") if saved is not None else seed  # resuming: the run's own seed
    manifest, curve = report.sitting(run_dir, APP, None if not train_run else lambda: train(
        data_path, run_dir, preset, quirks, split_seed=split_seed, seed=seed,
        max_epochs=max_epochs, deterministic=False, cell=variant_cell))
    epochs = manifest["config"]["epochs"] if manifest else None
    test_seconds = None
    if curve and len(curve) == epochs:
        t = time.time()
        test_acc = test(data_path, run_dir)
        test_seconds = time.time() - t
    final = {"val_acc": curve[-1]["val_acc"] if curve and len(curve) == epochs else None, "test_acc": test_acc}
    return manifest, curve, final, test_seconds


# ---------------------------------------------------------------------------------------------------------
# main: the only reader of flags
# ---------------------------------------------------------------------------------------------------------
SEQ_LEN = flags.DEFINE_string("seq_len", "244", "Pad/truncate length in tokens: 244 (faithful), `auto` (the "
                              "longest message, 39) or an integer.")
CARRY_STATE = flags.DEFINE_bool("carry_state", True, "Carry the LSTM state from batch to batch within an epoch "
                                "(faithful). --nocarry_state starts each batch from zeros.")
VOCAB_FROM = flags.DEFINE_enum("vocab_from", "all", ["all", "train"], "Build the vocabulary over all messages "
                               "(faithful) or the training split only.")
EVAL_OFF_BY_ONE = flags.DEFINE_bool("eval_off_by_one", True, "Validate and log after batch 302 of 303 "
                                    "(faithful); --noeval_off_by_one validates after the last batch.")
SPLIT_SEED = flags.DEFINE_integer("split_seed", None, "Seed of the 80/10/10 split. Default: drawn, logged and "
                                  "stored in the manifest (the original is unseeded).")
# The sizes of a Hoffman-style graph written by another notebook (e.g. one BasicLSTMCell 512 and Adam): override the
# preset; recorded in the manifest (config), so a resume or test with other values is refused, naming the field.
LSTM_SIZES = flags.DEFINE_string("lstm_sizes", None, "Comma list of LSTM layer sizes, e.g. 128,64 (the preset's) "
                                 "or 512.")
EMBED_SIZE = flags.DEFINE_integer("embed_size", None, "Embedding width (the preset's: 300).")
VOCAB_SIZE = flags.DEFINE_integer("vocab_size", None, "Rows of the embedding (default: this data's vocabulary + 1); "
                                  "for a checkpoint trained with a larger vocabulary.")
OPTIMIZER = flags.DEFINE_enum("optimizer", None, list(OPTIMIZERS), "adadelta (the original's) or adam: whose "
                              "slots the graph and its checkpoints hold (default: the preset's, adadelta).")
CONFIG_FILE = flags.DEFINE_string("config", None, "A JSON file of Config fields over the preset, e.g. "
                                  '{"lstm_sizes": [512], "embed_size": 300, "optimizer": "adam"}; the flags above '
                                  "override it.")
VOCAB_FILE = flags.DEFINE_string("vocab_file", None, "--mode=test --checkpoint=<from elsewhere> into a new "
                                 "--run_dir: that checkpoint's own vocabulary (JSON word -> id, the notebook's "
                                 "vocab_to_int; or one word per line, ids from 1), recorded in the run dir for "
                                 "predict. Default: the vocabulary this data builds.")
ACCRUACY = flags.DEFINE_bool("accruacy", True, "Log the notebook's misspelt 'Train Accruacy' (faithful); "
                             "--noaccruacy prints the article's 'Train Accuracy'.")
flags.adopt_module_key_flags(cli)


def config_overrides(lstm_sizes=None, embed_size=None, vocab_size=None, optimizer=None, config_file=None):
    """{Config field: value}: a JSON file's fields (``config_file``), then the flags' values over them
    (``lstm_sizes`` as a comma list); unknown fields and bad values are a ValueError naming them."""
    known = {f.name for f in dataclasses.fields(Config)}
    overrides = {}
    if config_file is not None:
        try:
            overrides = json.loads(pathlib.Path(config_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ValueError(f"--config={config_file}: cannot read a JSON object of Config fields ({err})") from err
        unknown = sorted(set(overrides) - known) if isinstance(overrides, dict) else [repr(overrides)]
        if unknown:
            raise ValueError(f"--config={config_file}: expected a JSON object of Config fields "
                             f"({', '.join(sorted(known))}); not one: {', '.join(unknown)}")
    if lstm_sizes is not None:
        try:
            overrides["lstm_sizes"] = [int(size) for size in str(lstm_sizes).split(",")]
        except ValueError:
            raise ValueError(f"--lstm_sizes={lstm_sizes}: expected a comma list of whole numbers, e.g. "
                             "128,64") from None
    overrides.update({k: v for k, v in (("embed_size", embed_size), ("vocab_size", vocab_size),
                                        ("optimizer", optimizer)) if v is not None})
    if "lstm_sizes" in overrides:
        overrides["lstm_sizes"] = tuple(overrides["lstm_sizes"])
        if not overrides["lstm_sizes"] or min(overrides["lstm_sizes"]) < 1:
            raise ValueError(f"lstm_sizes must be one or more sizes >= 1, got {list(overrides['lstm_sizes'])}")
    for name in ("embed_size", "vocab_size"):
        if name in overrides and (not isinstance(overrides[name], int) or overrides[name] < 1):
            raise ValueError(f"{name} must be a whole number >= 1, got {overrides[name]!r}")
    if overrides.get("optimizer", "adadelta") not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {overrides['optimizer']!r}")
    return overrides


def resolve_config(preset, overrides=None):
    """(name, Config): the preset's config with ``overrides`` (``config_overrides``) applied; a config that is no
    preset's is named "custom" in the manifest, as any Config given to ``train``."""
    _, config = cli.preset_config(PRESETS, preset)
    return cli.preset_config(PRESETS, dataclasses.replace(config, **(overrides or {})))


def _check_config_flags(run_dir, overrides):
    """Test/predict use the run's own config: an override given with another value than the run's is an error."""
    saved = runs.read_manifest(run_dir)
    if saved is None or not overrides:
        return
    # A run dir written before a field existed ran with that field's default (runs.with_app_defaults)
    config = runs.with_app_defaults(saved, {"config": overrides}).get("config") or {}

    def shown(value):
        return list(value) if isinstance(value, (list, tuple)) else value

    ran = {field: shown(config.get(field)) for field in overrides}
    problems = [f"{field}={shown(value)} (the run's: {ran[field]})" for field, value in overrides.items()
                if shown(value) != ran[field]]
    if problems:
        raise runs.ManifestMismatchError(f"{run_dir} was trained with another config than given: "
                                         f"{'; '.join(problems)}. Its own is used when the flags are left out.")


def main(argv):
    preset, mode, run_dir = cli.resolve_common(APP, PRESETS, "hoffman", ("train", "test", "predict"), argv,
                                               ("predict",), "messages are only taken with --mode=predict")
    cluster = cli.resolve_cluster(mode)
    if cluster is not None and cluster.is_ps:
        return distributed.serve(cluster)
    overrides = config_overrides(LSTM_SIZES.value, EMBED_SIZE.value, VOCAB_SIZE.value, OPTIMIZER.value,
                                 CONFIG_FILE.value)
    if mode != "train":  # the run's own settings are used: a flag given with another value is an error
        cli.check_given_flags(run_dir, skip=("seq_len",) if SEQ_LEN.value == "auto" else ())  # auto: resolved
        _check_config_flags(run_dir, overrides)
    if overrides:  # the preset with the given sizes/optimiser (a Config is recorded as "custom")
        preset = resolve_config(preset, overrides)[1]
    if VOCAB_FILE.value and mode != "test":
        raise ValueError("--vocab_file is for --mode=test with a --checkpoint from elsewhere (it records the "
                         "vocabulary in the new run dir, which predict then uses)")
    if mode == "predict":
        texts = cli.read_messages(argv)
        for r in predict(run_dir, texts, cli.CHECKPOINT.value):
            prob = "   n/a" if r["probability"] is None else f"{r['probability']:.4f}"
            note = " (no known words)" if r["probability"] is None else \
                (" (truncated)" if r["truncated"] else "")
            print(f"{prob}\t{r['label']}{note}\t{r['text']}")
        return 0
    data_path = download.locate(download.STOCKTWITS, cli.resolve_data_dir())
    if SEQ_LEN.value != "auto" and not SEQ_LEN.value.strip().isdigit():
        raise ValueError(f"--seq_len={SEQ_LEN.value}: expected a whole number of tokens or `auto`")
    quirks = Quirks(seq_len=SEQ_LEN.value if SEQ_LEN.value == "auto" else int(SEQ_LEN.value),
                    carry_state=CARRY_STATE.value, vocab_from=VOCAB_FROM.value,
                    eval_off_by_one=EVAL_OFF_BY_ONE.value)
    if mode == "train":
        result = train(data_path, run_dir, preset, quirks, SPLIT_SEED.value, cli.SEED.value, cli.MAX_EPOCHS.value,
                       cell=cli.CELL.value, progress=cli.PROGRESS.value, accruacy=ACCRUACY.value, cluster=cluster)
        print(f"Run directory: {run_dir} ({len(result['curve'])} epochs done, split_seed={result['split_seed']})")
    else:
        vocab = read_vocab_file(VOCAB_FILE.value) if VOCAB_FILE.value else None
        test(data_path, run_dir, cli.CHECKPOINT.value, preset, quirks, SPLIT_SEED.value, cli.CELL.value, vocab=vocab)
    return 0


if __name__ == "__main__":
    cli.run(main)
