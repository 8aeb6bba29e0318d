r"""IMDB sentiment with an LSTM: the Keras tutorial (seed 004) ported to TF1 graph mode with placeholders.

Source: the seed blog's Keras code (``imdb.load_data(num_words=10000)``, ``pad_sequences(maxlen=200,
padding='post', truncating='post')``, Embedding 128 -> LSTM 64 -> Dropout 0.5 -> Dense 32 relu -> Dropout 0.5
-> Dense 1 sigmoid, Adam 1e-3, binary cross-entropy, ``fit(epochs=5, batch_size=64, validation_split=0.2)``,
``evaluate``, ``save('imdb_lstm.h5')``) and its variants (stacked, bidirectional, attention, L2, clipnorm).

Reproduction contract
---------------------
Commands (each preset trains to the end, resumable: every epoch is checkpointed, a rerun resumes)::

    python -m legacy_lstm.imdb --preset=lstm                   # = the default preset; then:
    python -m legacy_lstm.imdb --preset=lstm --mode=test       # "Test accuracy: ..."
    python scripts/reproduce.py imdb --preset=lstm             # both; writes results/imdb-lstm.{json,png}
    python scripts/reproduce.py imdb --preset=attention        # likewise stacked, bidirectional, l2

Published numbers: the blog publishes none. The target (``legacy_lstm/published/imdb.json``) is test accuracy
>= 0.85 for ``lstm`` (a run of this model that "takes off" usually ends about 0.80-0.87). References from the
official Keras examples, other configurations, for orientation only:

    ========================================  ===============================================  ========
    example                                   config                                           accuracy
    ========================================  ===============================================  ========
    keras examples/imdb_bidirectional_lstm    maxlen 100, BiLSTM(64), batch 32, 4 epochs       ~0.8146
    keras-io bidirectional_lstm_imdb          2 x BiLSTM(64), maxlen 200, 2 epochs (val=test)  0.8428
    ========================================  ===============================================  ========

Known failure mode (faithful): with 'post' padding and no mask the LSTM's last output comes after up to
~200 - length pad steps, and a run can sit near 0.5 accuracy for an epoch or all five. That is the tutorial's
behaviour and is kept; ``--padding=pre --truncating=pre`` (Keras's defaults) or ``--mask`` are the fixes.

Presets (``--preset``); all: num_words 10,000, maxlen 200, embedding 128, batch 64, Adam 1e-3 (Keras's
epsilon 1e-7), binary cross-entropy, the last 20% of the (shuffled) training set as validation: 20,000 train
(313 steps per epoch, the last one of 32) / 5,000 validation / 25,000 test. Each model ends with the head the
tutorial wrote for it (``Config.head``; the parameter counts are Keras's ``model.summary()`` of that model):

    lstm (default)  LSTM(64) -> Dropout 0.5 -> Dense 32 relu -> Dropout 0.5 -> Dense 1 sigmoid, 5 epochs
                    (1,331,521 parameters).
    stacked         LSTM(64, return_sequences) -> LSTM(32) -> Dropout 0.5 -> Dense 1 sigmoid, 5 epochs
                    (1,341,857).
    bidirectional   Bidirectional(LSTM(64)) (``bidirectional_dynamic_rnn``; forward and backward final
                    outputs concatenated, 128) -> Dropout 0.5 -> Dense 1 sigmoid, 5 epochs (1,378,945).
    attention       LSTM(64, return_sequences) -> dot-product self-attention ``Attention()([x, x])`` (scores
                    x x^T, unscaled, softmax over the keys) -> GlobalAveragePooling1D -> Dense 32 relu ->
                    Dense 1 sigmoid (no dropout), 5 epochs (1,331,521).
    l2              LSTM(64) with L2 0.01 on its input kernel (Keras ``kernel_regularizer``: not the recurrent
                    kernel; the penalty is part of the reported loss and val_loss, as in Keras) -> Dropout 0.5
                    -> Dense 1 sigmoid, 10 epochs, EarlyStopping on val_loss, patience 2,
                    restore_best_weights (tf_keras 2.21 restores the best epoch's weights at the end of
                    training, also when it did not stop early) (1,329,473).
    test            LSTM(8), embedding 16, dense 8, batch 32, 2 epochs on the first 1,000 train / 500 test
                    reviews, lstm's head: a smoke run.

``--uniform_head`` gives every preset the lstm model's head (Dropout 0.5 -> Dense 32 relu -> Dropout 0.5 ->
Dense 1), which is what this project built for every variant before it followed the tutorial's heads; it is
recorded in the manifest as ``config.head``. Those earlier runs (seed 2017, ``python scripts/reproduce.py imdb
--preset=<p> --seed=2017``, basic cell; that model is ``python -m legacy_lstm.imdb --preset=<p> --seed=2017
--uniform_head`` [plus the variant's flags], then ``--mode=test``) gave test accuracy: stacked 0.500 (stalled),
bidirectional 0.822, attention 0.829, l2 0.816 (best epoch 10), stacked ``--mask`` 0.825, stacked
``--padding=pre --truncating=pre`` 0.849. The tutorial publishes no accuracy for any of them. With the
tutorial's heads (the defaults; ``results/imdb-<preset>.json``, whose config records the head), same seed and
commands: stacked 0.816 (still flat at 0.506 validation accuracy for 4 epochs, then it took off), bidirectional
0.823, attention 0.830, l2 0.835 (best epoch 8), stacked ``--mask`` 0.817, stacked ``--padding=pre
--truncating=pre`` 0.855. A results file without ``head`` in its config (the lstm runs) predates the field: its
head is the class default, the uniform one, which is also the lstm preset's.

Gradient clipping, the tutorial's ``Adam(clipnorm=1.0)``: ``--clipnorm=1.0`` on any preset. As in Keras, each
variable's gradient is clipped to that norm on its own (not the global norm). Recorded in the manifest.

The LSTM layer, Keras semantics on TF1 cells. A Keras ``LSTM(u)`` (gates IFCO, ``kernel`` [I, 4u],
``recurrent_kernel`` [u, 4u], sigmoid recurrent activation, tanh activation, ``unit_forget_bias``: forget
bias initialised to 1) computes the same function as a TF1 ``BasicLSTMCell(u, forget_bias=1.0)`` (gates ICFO,
one kernel [I + u, 4u], zero-initialised bias, sigmoid gates, tanh) whose weights are ``convert.keras_to_tf(...,
forget_bias=1.0)``: the run-time forget bias of 1 plays the part of the initial 1 in Keras's bias, and the
trainable bias carries the rest (tested numerically against ``tf.keras.layers.LSTM``). Initial values follow
Keras too: glorot-uniform input kernel, orthogonal recurrent kernel (the top I and bottom u rows of the TF1
kernel), embedding uniform(-0.05, 0.05), Dense glorot-uniform with zero bias. ``--cell`` picks basic (default),
block (the LSTMBlockCell op, same function, faster on CPU) or cudnn_compatible (forget bias 0 at run time, so
its bias starts with 1 in the forget slice: again the same function and start).

Data: ``imdb/aclImdb_labeled.tar.gz`` (the labelled aclImdb, read in place) and ``imdb/imdb_word_index.json``
(Keras's word index) in ``--data_dir`` (default ``$LEGACY_LSTM_DATA``, else ``~/.cache/legacy_lstm``). They are
encoded as ``imdb.load_data`` does (``legacy_lstm.data.imdb``: seed-113 shuffle, start 1, OOV 2, ids = rank + 3,
``num_words`` cut); the encoded arrays are cached in ``~/.cache/legacy_lstm/imdb/`` under the inputs' sha256.
Tokenisation is Keras's ``text_to_word_sequence`` (lowercase, Keras's default punctuation filters -> space,
split on spaces; ``<br />`` becomes "br", which is in the word index at rank 7). Keras's own ``imdb.npz`` came
from an unpublished script: expect the same statistics (mean 238.7, median 178 tokens with the start token)
but not bit-identical examples. ``--source=npz`` reads Keras's ``imdb/imdb.npz`` instead, only after its
published sha256 (69664113...e4676b9f) matched, since loading it needs pickle.

Quirks of the tutorial, reproduced by default, each switchable
    --padding=post       pad after the review (the tutorial's choice; Keras's default is pre).
    --truncating=post    keep the first 200 ids of a longer review (Keras's default, pre, keeps the last).
    --nomask             the LSTM also runs over the pad steps (the tutorial has no ``mask_zero``).
                         ``--mask`` (needs --padding=post) stops each review's LSTM at its length, as
                         ``Embedding(mask_zero=True)`` does; the attention preset then also masks the keys and
                         the pooling.

Deliberate, numerically neutral differences: binary cross-entropy is computed from the logit
(``sigmoid_cross_entropy_with_logits``), which is what tf_keras does for a sigmoid output; validation and
test run in batches of 500 (the mean over examples does not depend on it). The per-epoch shuffle comes from
``np.random.RandomState([shuffle_seed, epoch])`` and the dropout masks from stateless ops seeded with
(shuffle_seed, epoch, step), the shuffle seed stored in the manifest, so a resumed run sees the batches and
masks an uninterrupted one would (and repeats it to float rounding). Beyond the tutorial: a checkpoint every
epoch, automatic resume, a manifest checked on restore, curve.csv/json, TensorBoard events, ``curves.png``
(accuracy and loss; needs matplotlib), a stop with a clear error on a NaN loss; the final weights as the
checkpoint ``imdb_lstm.ckpt`` (the tutorial's ``imdb_lstm.h5``) and a SavedModel in ``<run_dir>/saved_model``
whose ``serving_default`` signature takes raw review text (``text``: string [N]) and returns ``probability`` [N]
and the ``ids`` [N, 200] it fed the model: the tokeniser runs in the graph and gives the same ids as the Python
encoder.

Log (Keras's): training starts with ``model.summary()``'s layer table (``model_summary``: layer names, types,
output shapes and parameter counts as Keras prints them for the tutorial's model, counted from our graph's
variables), then one line per epoch (Keras's columns; loss and accuracy are the means over the epoch's batches,
as Keras prints them)::

    Epoch 1/5 - 313/313 - 95s - loss: 0.6930 - accuracy: 0.5040 - val_loss: 0.6920 - val_accuracy: 0.5100

Test mode ends with ``evaluate``'s closing line and the tutorial's print of the accuracy ``evaluate`` returned::

    50/50 - 11s - loss: 0.3512 - accuracy: 0.8572
    Test accuracy: 0.8572

Predict: ``python -m legacy_lstm.imdb --mode=predict "A wonderful film." "Dull."`` (or one review per line on
stdin) prints the probability of a positive review and the label. Every text gets an answer: an empty text
is the start token alone, unknown words are OOV ids, longer texts are truncated like the training data.

On a cluster (TF1's ps/worker flags; legacy_lstm/distributed.py): each worker trains a round-robin share of every
epoch's batches; the chief writes the run directory, keeps the best epoch's weights and decides early stopping,
which the other workers follow::

    python -m legacy_lstm.cluster -- python -m legacy_lstm.imdb --preset=test --run_dir=runs/imdb-cluster
"""

import collections
import contextlib
import dataclasses
import math
import pathlib
import secrets
import time

import numpy as np
from absl import flags

from legacy_lstm import cells
from legacy_lstm import cli
from legacy_lstm import distributed
from legacy_lstm import report
from legacy_lstm import runs
from legacy_lstm import training
from legacy_lstm.compat import fully_connected, tf, tf1
from legacy_lstm.data import download
from legacy_lstm.data import imdb as imdb_data

APP = "imdb"
FINAL_CHECKPOINT = "imdb_lstm.ckpt"
BEST_CHECKPOINT = "best.ckpt"
SAVED_MODEL = "saved_model"
EVAL_BATCH = 500

# Data files. The tar is a deterministic repack of the labelled aclImdb reviews (no download location);
# the word index is byte-identical to Keras's download.
TAR = download.RemoteFile("imdb", "aclImdb_labeled.tar.gz",
                          "e99e682e7d4ccb878a6b8de079da76db795d9d9a637542b36c8a82d47e343fca", None, 28631031)
WORD_INDEX = download.RemoteFile(
    "imdb", "imdb_word_index.json", "027313fe9a320280f3bf0fac5baf58c4a683cf39a7ed9c3d3d3912bde4284cf6",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb_word_index.json", 1641221)
KERAS_NPZ = download.RemoteFile("imdb", "imdb.npz", imdb_data.KERAS_NPZ_SHA256,
                                "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz", 17464789)


# ---------------------------------------------------------------------------------------------------------
# Presets and quirks
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    arch: str = "lstm"            # lstm | stacked | bidirectional | attention
    num_words: int = 10000
    maxlen: int = 200
    embed_size: int = 128
    lstm_sizes: tuple = (64,)
    dense_size: int = 32
    head: str = "dropout-dense-dropout"  # the layers after the recurrent part (HEADS); the default is lstm's
    dropout: float = 0.5
    learning_rate: float = 1e-3
    epochs: int = 5
    batch_size: int = 64
    validation_split: float = 0.2
    l2: float = 0.0               # L2 on the (input) kernel of the LSTM(s)
    patience: int = None          # EarlyStopping(val_loss, patience, restore_best_weights=True); None: none
    clipnorm: float = None        # Adam(clipnorm=...): per-variable gradient norm clipping
    max_train: int = None         # use only the first N (shuffled) training / test reviews (the test preset)
    max_test: int = None

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")


ARCHS = ("lstm", "stacked", "bidirectional", "attention")
# The head between the recurrent part's features and the Dense(1, sigmoid) output, as the tutorial wrote each
# model: "dropout" is Dropout(dropout), "dense" is Dense(dense_size, relu).
HEADS = {"dropout-dense-dropout": ("dropout", "dense", "dropout"),  # lstm
         "dropout": ("dropout",),                                  # stacked, bidirectional, l2
         "dense": ("dense",)}                                      # attention
UNIFORM_HEAD = "dropout-dense-dropout"  # --uniform_head: lstm's head on every preset (this project's earlier runs)

PRESETS = {
    "lstm": Config(),
    "stacked": Config(arch="stacked", lstm_sizes=(64, 32), head="dropout"),
    "bidirectional": Config(arch="bidirectional", head="dropout"),
    "attention": Config(arch="attention", head="dense"),
    "l2": Config(l2=0.01, patience=2, epochs=10, head="dropout"),
    "test": Config(embed_size=16, lstm_sizes=(8,), dense_size=8, epochs=2, batch_size=32, max_train=1000,
                   max_test=500),
}


@dataclasses.dataclass(frozen=True)
class Quirks:
    """The tutorial's behaviours a user may switch off. Defaults are faithful."""
    padding: str = "post"
    truncating: str = "post"
    mask: bool = False
    source: str = "raw"           # raw (the aclImdb tar + word index) | npz (Keras's imdb.npz, verified)

    def __post_init__(self):
        for name in ("padding", "truncating"):
            if getattr(self, name) not in ("pre", "post"):
                raise ValueError(f"{name} must be 'pre' or 'post', got {getattr(self, name)!r}")
        if self.mask and self.padding != "post":
            raise ValueError("--mask needs --padding=post (the LSTM stops at each review's length)")
        if self.source not in ("raw", "npz"):
            raise ValueError(f"source must be 'raw' or 'npz', got {self.source!r}")


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
    vocab: dict  # {word: id} of the words below the num_words cut


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where the data files are: the tar and word index (raw), or Keras's npz (plus the word index)."""
    word_index: str
    tar: str = None
    npz: str = None


def locate_data(data_dir, source="raw"):
    """Paths of the data files in ``data_dir`` (clear DataNotFoundError when one is missing or corrupt)."""
    word_index = download.locate(WORD_INDEX, data_dir)
    if source == "npz":
        return Paths(str(word_index), npz=str(_locate_npz(data_dir)))
    return Paths(str(word_index), tar=str(download.locate(TAR, data_dir, download=False)))


def _locate_npz(data_dir):
    """Keras's imdb.npz, verified: a file with another sha256 is refused before anything opens it."""
    try:
        return download.locate(KERAS_NPZ, data_dir)
    except download.DataNotFoundError as err:
        raise download.DataNotFoundError(
            f"{err} Keras's imdb.npz is loaded with pickle, so only the published file is accepted; without it, "
            "use --source=raw (the default).") from err


def load_data(paths, config, quirks, cache_dir=None):
    """Encode (or read), shuffle, split off the last ``validation_split`` of train as validation, and pad."""
    missing = {"npz": paths.npz, "raw": paths.tar}.get(quirks.source, "") is None
    if missing:
        raise ValueError(f"this data source is --source={quirks.source} (a trained run keeps its own), but the "
                         f"{'npz' if quirks.source == 'npz' else 'raw tar'} file was not located; locate the data "
                         f"with locate_data(data_dir, {quirks.source!r}).")
    word_index = imdb_data.load_word_index(paths.word_index)
    if quirks.source == "npz":
        (x_train, y_train), (x_test, y_test) = imdb_data.load_keras_npz(paths.npz, config.num_words)
    else:
        corpus = imdb_data.load_corpus(paths.tar, paths.word_index, cache_dir, word_index=word_index)
        (x_train, y_train), (x_test, y_test) = imdb_data.keras_encode(corpus, config.num_words)
    if config.max_train:
        x_train, y_train = x_train[:config.max_train], y_train[:config.max_train]
    if config.max_test:
        x_test, y_test = x_test[:config.max_test], y_test[:config.max_test]
    # Keras validation_split: the *last* fraction, before fit's shuffling, floor for the training part.
    split_at = int(math.floor(len(x_train) * (1.0 - config.validation_split)))
    if split_at < 1 or split_at >= len(x_train):
        raise ValueError(f"validation_split {config.validation_split} leaves no training or no validation data "
                         f"out of {len(x_train)} reviews")

    def pad(seqs):
        return imdb_data.pad_sequences(seqs, config.maxlen, quirks.padding, quirks.truncating)

    return Data(Split(pad(x_train[:split_at]), y_train[:split_at].astype(np.float32)),
                Split(pad(x_train[split_at:]), y_train[split_at:].astype(np.float32)),
                Split(pad(x_test), y_test.astype(np.float32)),
                imdb_data.vocabulary(word_index, config.num_words))


# ---------------------------------------------------------------------------------------------------------
# Graph
# ---------------------------------------------------------------------------------------------------------
Model = collections.namedtuple(
    "Model", "inputs labels keep_prob dropout_seed logits probability data_loss penalty loss correct train_op "
    "keras_init")

LSTM_SCOPE = "lstm"


def _lstm_cell(kind, units):
    # Keras's forget bias of 1 at init: the run-time forget_bias of basic/block, the bias vector otherwise.
    return cells.make_cell(kind, units, forget_bias=1.0)


def build_network(inputs, config, quirks, cell="basic", keep_prob=1.0, parallel_iterations=None,
                  dropout_seed=None):
    """Embedding -> recurrent part (``config.arch``) -> head (``config.head``: Dropout and/or Dense relu, see
    ``HEADS``) -> Dense 1: the logit [N].

    ``dropout_seed`` (int [2] tensor) makes the dropouts stateless: the masks are a function of the fed seed, so a
    resumed run draws the masks an uninterrupted one would. None: no dropout (inference graphs).
    """
    embedding = tf1.get_variable("embedding", [config.num_words, config.embed_size],
                                 initializer=tf1.random_uniform_initializer(-0.05, 0.05))
    embedded = tf.nn.embedding_lookup(embedding, inputs)
    lengths = tf.reduce_sum(tf.cast(tf.not_equal(inputs, imdb_data.PAD), tf.int32), axis=1) if quirks.mask else None
    rnn_kwargs = {"dtype": tf.float32, "sequence_length": lengths, "parallel_iterations": parallel_iterations or 32}
    with tf1.variable_scope(LSTM_SCOPE):
        if config.arch in ("lstm", "stacked", "attention"):
            layers = [_lstm_cell(cell, size) for size in config.lstm_sizes]
            stack = layers[0] if len(layers) == 1 else tf1.nn.rnn_cell.MultiRNNCell(layers)
            outputs, state = tf1.nn.dynamic_rnn(stack, embedded, **rnn_kwargs)
            last_state = state if len(layers) == 1 else state[-1]
            features = last_state.h  # = outputs[:, -1] without a mask; the output at each length with one
        elif config.arch == "bidirectional":
            (fw, bw) = (_lstm_cell(cell, config.lstm_sizes[0]), _lstm_cell(cell, config.lstm_sizes[0]))
            _, (fw_state, bw_state) = tf1.nn.bidirectional_dynamic_rnn(fw, bw, embedded, **rnn_kwargs)
            features = tf.concat([fw_state.h, bw_state.h], axis=1)  # Keras merge_mode="concat": [forward, backward]
    if config.arch == "attention":
        features = _self_attention_pooled(outputs, lengths, config.maxlen)
    hidden, dropouts = features, 0
    for layer in HEADS[config.head]:
        if layer == "dropout":  # the n-th dropout of the head draws its masks from seed + [0, n]
            hidden, dropouts = _dropout(hidden, keep_prob, dropout_seed, dropouts), dropouts + 1
        else:
            hidden = fully_connected(hidden, config.dense_size, activation_fn=tf.nn.relu, scope="dense")
    return tf.squeeze(fully_connected(hidden, 1, activation_fn=None, scope="output"), axis=1)


def _dropout(x, keep_prob, seed, which):
    if seed is None:
        return x
    return tf.nn.experimental.stateless_dropout(x, rate=1.0 - keep_prob, seed=seed + tf.constant([0, which], tf.int64))


def _self_attention_pooled(x, lengths, maxlen):
    """Keras ``Attention()([x, x])`` (dot-product, unscaled) then ``GlobalAveragePooling1D``; masked if lengths."""
    scores = tf.matmul(x, x, transpose_b=True)  # [N, T(query), T(key)]
    if lengths is None:
        return tf.reduce_mean(tf.matmul(tf.nn.softmax(scores), x), axis=1)
    mask = tf.sequence_mask(lengths, maxlen, dtype=tf.float32)  # [N, T]
    scores -= 1e9 * (1.0 - mask[:, None, :])  # Keras: padding keys get a large negative score
    context = tf.matmul(tf.nn.softmax(scores), x) * mask[:, :, None]  # and masked queries give zeros
    return tf.reduce_sum(context, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1, keepdims=True), 1.0)


def lstm_weights(graph=None):
    """[(kernel, bias)] of every LSTM layer, in creation order."""
    variables = (graph or tf1.get_default_graph()).get_collection(tf1.GraphKeys.GLOBAL_VARIABLES, LSTM_SCOPE + "/")
    kernels = [v for v in variables if v.op.name.endswith("/kernel")]
    biases = {v.op.name[:-len("/bias")]: v for v in variables if v.op.name.endswith("/bias")}
    return [(k, biases[k.op.name[:-len("/kernel")]]) for k in kernels]


_KERAS_NAMES = {"Embedding": "embedding", "LSTM": "lstm", "Bidirectional": "bidirectional", "Attention": "attention",
                "GlobalAveragePooling1D": "global_average_pooling1d", "Dropout": "dropout", "Dense": "dense"}


def layer_table(config, graph=None):
    """The model's layers as Keras's ``model.summary()`` lists the tutorial's model: [(name, type, output shape,
    parameters)], Keras's layer names (``dense``, ``dense_1``, ...); the parameters are counted from the variables
    of ``graph`` (default: the default graph), so the table shows the graph that was built."""
    graph = graph or tf1.get_default_graph()
    variables = graph.get_collection(tf1.GraphKeys.TRAINABLE_VARIABLES)

    def size(prefix):
        return sum(int(np.prod(v.shape.as_list())) for v in variables if v.op.name.startswith(prefix))

    lstm_params = [int(np.prod(k.shape.as_list())) + int(np.prod(b.shape.as_list())) for k, b in lstm_weights(graph)]
    rows, seen = [], collections.Counter()

    def add(kind, shape, params=0):
        snake = _KERAS_NAMES[kind]
        rows.append((snake if not seen[snake] else f"{snake}_{seen[snake]}", kind,
                     "(None, " + ", ".join(str(d) for d in shape) + ")", params))
        seen[snake] += 1

    steps, sizes = config.maxlen, config.lstm_sizes
    if config.arch == "attention":  # a functional Model (Attention()([x, x])): its summary lists the Input too
        rows.append(("input_1", "InputLayer", f"[(None, {steps})]", 0))
    add("Embedding", (steps, config.embed_size), size("embedding"))
    if config.arch == "bidirectional":
        add("Bidirectional", (2 * sizes[0],), sum(lstm_params))
        features = 2 * sizes[0]
    else:
        for i, (units, params) in enumerate(zip(sizes, lstm_params)):
            sequences = config.arch == "attention" or i < len(sizes) - 1  # return_sequences
            add("LSTM", (steps, units) if sequences else (units,), params)
        features = sizes[-1]
    if config.arch == "attention":
        add("Attention", (steps, features))
        add("GlobalAveragePooling1D", (features,))
    for layer in HEADS[config.head]:
        if layer == "dropout":
            add("Dropout", (features,))
        else:
            features = config.dense_size
            add("Dense", (features,), size("dense/"))
    add("Dense", (1,), size("output/"))
    return rows


def model_summary(config, graph=None):
    """``model.summary()``'s text for ``layer_table`` (the tutorial prints it after building the model)."""
    def memory(params):
        value, units = params * 4.0, ["Byte", "KB", "MB", "GB"]
        while value >= 1024 and len(units) > 1:
            value, units = value / 1024, units[1:]
        return f"{params} ({value:.2f} {units[0]})"

    rows = layer_table(config, graph)
    total = sum(r[3] for r in rows)
    lines = [f'Model: "{"model" if config.arch == "attention" else "sequential"}"', "_" * 65,
             f" {'Layer (type)':<28}{'Output Shape':<26}Param #", "=" * 65]
    for name, kind, shape, params in rows:
        lines += [f" {name + ' (' + kind + ')':<27} {shape:<25} {params}", ""]
    lines += ["=" * 65, f"Total params: {memory(total)}", f"Trainable params: {memory(total)}",
                  f"Non-trainable params: {memory(0)}", "_" * 65]
    return "\n".join(lines)


def _keras_init_op(cell):
    """Assign Keras's initial values: glorot-uniform input kernel, orthogonal recurrent kernel, forget bias 1."""
    assigns = []
    for kernel, bias in lstm_weights():
        rows, cols = kernel.shape.as_list()
        units = cols // 4
        top = tf1.glorot_uniform_initializer()([rows - units, cols])
        bottom = tf1.orthogonal_initializer()([units, cols])
        assigns.append(tf1.assign(kernel, tf.concat([top, bottom], axis=0)))
        forget = 1.0 - (0.0 if cell == "cudnn_compatible" else 1.0)  # what the run-time forget bias leaves over
        init_bias = np.zeros([cols], np.float32)
        init_bias[2 * units:3 * units] = forget  # ICFO: the f slice
        assigns.append(tf1.assign(bias, init_bias))
    return tf.group(*assigns, name="keras_init")


def build_graph(config, quirks=FAITHFUL, cell="basic", parallel_iterations=None):
    """The training graph in the default graph. Run ``keras_init`` once after the variable initializer."""
    inputs = tf1.placeholder(tf.int32, [None, config.maxlen], name="inputs")
    labels = tf1.placeholder(tf.float32, [None], name="labels")
    keep_prob = tf1.placeholder_with_default(1.0, [], name="keep_prob")
    dropout_seed = tf1.placeholder_with_default(tf.constant([0, 0], tf.int64), [2], name="dropout_seed")
    logits = build_network(inputs, config, quirks, cell, keep_prob, parallel_iterations, dropout_seed)
    probability = tf.sigmoid(logits, name="probability")
    data_loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
    penalty = tf.constant(0.0)
    if config.l2:
        # Keras kernel_regularizer=l2(c): c * sum(kernel ** 2) over the input kernel (the top rows here).
        squares = [tf.reduce_sum(tf.square(k[:k.shape[0] - k.shape[1] // 4])) for k, _ in lstm_weights()]
        penalty = config.l2 * tf.add_n(squares)
    loss = tf.add(data_loss, penalty, name="loss")
    # Keras binary accuracy: prediction > 0.5.
    correct = tf.reduce_sum(tf.cast(tf.equal(tf.cast(probability > 0.5, tf.float32), labels), tf.float32))
    # Keras's Adam epsilon. distributed.optimizer: the optimizer itself in one process; replicated on a cluster.
    optimizer = distributed.optimizer(tf1.train.AdamOptimizer(config.learning_rate, epsilon=1e-7))
    grads_and_vars = optimizer.compute_gradients(loss)
    if config.clipnorm:
        grads_and_vars = [(tf.clip_by_norm(g, config.clipnorm), v) for g, v in grads_and_vars if g is not None]
    train_op = optimizer.apply_gradients(grads_and_vars)
    return Model(inputs, labels, keep_prob, dropout_seed, logits, probability, data_loss, penalty, loss, correct,
                 train_op, _keras_init_op(cell))


# ---------------------------------------------------------------------------------------------------------
# Train / evaluate (plain arguments; no flags below main)
# ---------------------------------------------------------------------------------------------------------
def evaluate(sess, model, split, batch_size=EVAL_BATCH):
    """(loss, accuracy) over ``split`` with dropout off; the loss includes the L2 penalty, as Keras's does."""
    total_loss, total_correct = 0.0, 0.0
    for start in range(0, len(split.x), batch_size):
        x, y = split.x[start:start + batch_size], split.y[start:start + batch_size]
        data_loss, correct = sess.run([model.data_loss, model.correct], {model.inputs: x, model.labels: y})
        total_loss += float(data_loss) * len(x)
        total_correct += float(correct)
    penalty = sess.run(model.penalty)
    return total_loss / len(split.x) + float(penalty), total_correct / len(split.x)


def run_epoch(sess, model, data, config, epoch, shuffle_seed, log=print, sitting=None):
    """One epoch of fit(): shuffled batches (the last one partial); returns the curve row. ``sitting`` (the
    driver's, optional) shows the progress of the batches and, on a cluster, gives this worker its share of them
    (round-robin; each batch keeps its dropout seed)."""
    start = time.time()
    x, y = data.train
    order = np.random.RandomState([shuffle_seed, epoch]).permutation(len(x))
    steps = math.ceil(len(x) / config.batch_size)
    numbers = range(1, steps + 1)  # the batches of the epoch, 1-based
    if sitting:  # one process: all of them; a cluster worker: its share (legacy_lstm/distributed.py)
        steps, numbers = sitting.share(steps, numbers)
    every = max(1, steps // 10)
    total_loss, total_correct, seen, ran = 0.0, 0.0, 0, 0
    fetches = [model.train_op, model.loss, model.correct]
    keep_prob = 1.0 - config.dropout
    with sitting.batches(steps) if sitting else contextlib.nullcontext():
        for step in numbers:
            idx = order[(step - 1) * config.batch_size:step * config.batch_size]
            feed = {model.inputs: x[idx], model.labels: y[idx], model.keep_prob: keep_prob,
                    model.dropout_seed: [shuffle_seed, 2 * (epoch * 1_000_000 + step)]}
            _, loss, correct = sess.run(fetches, feed)
            training.check_finite(loss, f"epoch {epoch}, step {step} (--clipnorm may help)")
            if sitting:
                sitting.tick()
            total_loss += float(loss) * len(idx)
            total_correct += float(correct)
            seen += len(idx)
            ran += 1
            if ran % every == 0 and ran < steps:
                log(f"Epoch {epoch}/{config.epochs} - {ran}/{steps} - loss: {total_loss / seen:.4f} - accuracy: "
                    f"{total_correct / seen:.4f} - {seen / (time.time() - start):.0f} examples/s")
    train_seconds = time.time() - start
    val_loss, val_acc = evaluate(sess, model, data.val)
    seen = seen or float("nan")  # only a cluster worker that joined after the epoch's steps were taken
    row = {"epoch": epoch, "loss": total_loss / seen, "accuracy": total_correct / seen, "val_loss": val_loss,
           "val_accuracy": val_acc, "steps": ran, "train_seconds": round(train_seconds, 3),
           "seconds": round(time.time() - start, 3)}
    log(f"Epoch {epoch}/{config.epochs} - {ran}/{steps} - {row['seconds']:.0f}s - loss: {row['loss']:.4f} - "
        f"accuracy: {row['accuracy']:.4f} - val_loss: {val_loss:.4f} - val_accuracy: {val_acc:.4f}")
    return row


def early_stopping(curve, patience):
    """Keras EarlyStopping(monitor='val_loss', patience, restore_best_weights=True) replayed over ``curve``.

    Returns (best_epoch, stopped_epoch or None). The first epoch is the best one until another improves on it;
    training stops after ``patience`` epochs without a strictly lower val_loss (never at the first epoch).
    """
    best, best_epoch, wait = math.inf, None, 0
    for row in curve:
        if best_epoch is None:
            best_epoch = row["epoch"]
        wait += 1
        if row["val_loss"] < best:
            best, best_epoch, wait = row["val_loss"], row["epoch"], 0
            continue
        if wait >= patience and row["epoch"] > 1:
            return best_epoch, row["epoch"]
    return best_epoch, None


def make_manifest(preset, config, quirks, data, seed, shuffle_seed, cell):
    return {"app": APP, "preset": preset, "config": dataclasses.asdict(config), "quirks": dataclasses.asdict(quirks),
            "split_seed": None, "keras_shuffle_seed": imdb_data.SHUFFLE_SEED, "seed": seed,
            "shuffle_seed": shuffle_seed, "cell": cell, "vocab_size": config.num_words,
            "vocab_sha256": runs.vocab_sha256(data.vocab),
            "examples": {"train": len(data.train.x), "validation": len(data.val.x), "test": len(data.test.x)}}


def resolve_config(preset, clipnorm=None, uniform_head=False):
    """(name, Config) of a preset name or Config, with ``clipnorm`` applied when given and, with
    ``uniform_head``, the lstm model's head instead of the preset's own."""
    name, config = cli.preset_config(PRESETS, preset)
    if uniform_head:
        config = dataclasses.replace(config, head=UNIFORM_HEAD)
    if clipnorm is not None:
        if clipnorm <= 0:
            raise ValueError(f"clipnorm must be > 0, got {clipnorm}")
        config = dataclasses.replace(config, clipnorm=float(clipnorm))
    return name, config


class _Loop(training.Loop):
    final_name = FINAL_CHECKPOINT
    stops_early = True  # EarlyStopping (patience): on a cluster the chief's verdict (legacy_lstm/distributed.py)

    def __init__(self, config, quirks, cell, data, shuffle_seed):
        self.config, self.quirks, self.cell, self.data, self.shuffle_seed = config, quirks, cell, data, shuffle_seed
        self.stopped = self.best_epoch = None

    def build(self):
        return build_graph(self.config, self.quirks, self.cell)

    def fresh(self, sitting):
        sitting.sess.run(sitting.model.keras_init)

    def start(self, sitting):
        sitting.log(model_summary(self.config, sitting.sess.graph))
        if not sitting.is_chief:  # on a cluster the chief keeps the best weights and decides early stopping
            return
        run = sitting.run
        self.best_saver = tf1.train.Saver(tf1.trainable_variables(), max_to_keep=1, save_relative_paths=True)
        self.best_path = str(run.dir / BEST_CHECKPOINT)
        if run.discarded and run.has_checkpoint(BEST_CHECKPOINT):
            run.delete_checkpoint(BEST_CHECKPOINT)  # it may hold a discarded epoch's weights
        if self.config.patience is not None and run.curve:
            self.best_epoch, self.stopped = early_stopping(run.curve, self.config.patience)
            if self.best_epoch == sitting.done:  # its best.ckpt may predate an interruption: the restored state is it
                self._save_best(sitting)

    def _save_best(self, sitting):
        self.best_saver.save(sitting.sess, self.best_path, write_meta_graph=False, write_state=False)

    def should_stop(self, sitting):
        return self.stopped is not None

    def epoch(self, sitting, epoch):
        return run_epoch(sitting.sess, sitting.model, self.data, self.config, epoch, self.shuffle_seed,
                         log=sitting.log, sitting=sitting)

    def summaries(self, row):
        return {"train": {"loss": row["loss"], "accuracy": row["accuracy"]},
                "validation": {"loss": row["val_loss"], "accuracy": row["val_accuracy"]}}

    def after_epoch(self, sitting, row):
        if self.config.patience is None or not sitting.is_chief:
            return
        self.best_epoch, self.stopped = early_stopping(sitting.run.curve, self.config.patience)
        if self.best_epoch == row["epoch"]:
            self._save_best(sitting)
        if self.stopped is not None:
            sitting.log(f"Epoch {self.stopped}: early stopping")

    def finished(self, sitting):
        return self.stopped is not None or len(sitting.run.curve) == self.config.epochs

    def finish(self, sitting, finished):
        if finished and not sitting.run.has_checkpoint(FINAL_CHECKPOINT):
            if self.config.patience is not None:
                sitting.log(f"Restoring model weights from the end of the best epoch: {self.best_epoch}.")
                self.best_saver.restore(sitting.sess, _best_weights(sitting.run, self.best_path, self.best_epoch))
            sitting.run.save_final(sitting.sess)


def train(paths, run_dir, preset="lstm", quirks=FAITHFUL, seed=None, max_epochs=None, cell="basic", clipnorm=None,
          cache_dir=None, export=True, log=print, progress=False, uniform_head=False, cluster=None):
    """Train (resuming from ``run_dir``, with the run's own seeds); at the end write the final checkpoint,
    curves.png and the SavedModel. ``uniform_head``: the lstm model's head on any preset (``resolve_config``).
    ``cluster``: a worker task's ``legacy_lstm.distributed.Cluster`` (None: one process); each worker trains its
    round-robin share of every epoch's batches, the chief writes the run directory and decides early stopping.

    Returns {"curve", "run_dir", "seed", "shuffle_seed", "finished", "stopped_early", "best_epoch", "seconds"}.
    """
    preset_name, config = resolve_config(preset, clipnorm, uniform_head)
    cli.epochs_to_run(config.epochs, max_epochs)  # a usage error before any data is read
    saved = distributed.saved_manifest(run_dir, cluster, log)  # the run dir's; a worker's: the chief's
    seed = training.resolve_seed(saved, seed)
    shuffle_seed = saved.get("shuffle_seed") if saved is not None else None
    if shuffle_seed is None:
        shuffle_seed = seed if seed is not None else secrets.randbelow(2**31 - 1) + 1
        if seed is None:
            log(f"No --seed: initial weights unseeded (as the tutorial); batch order and dropout masks from the "
                f"drawn shuffle seed {shuffle_seed}, stored in the manifest for resuming.")
    data = load_data(paths, config, quirks, cache_dir)
    manifest = make_manifest(preset_name, config, quirks, data, seed, shuffle_seed, cell)
    # The dropout masks are stateless (seeded by the fed shuffle seed), so the sitting's graph seed only draws
    # the initial weights of a new run.
    loop = _Loop(config, quirks, cell, data, shuffle_seed)
    result = training.train(loop, run_dir, manifest, config.epochs, max_epochs, seed, vocab=data.vocab, log=log,
                            progress=progress, cluster=cluster)
    if result["finished"] and (cluster is None or cluster.is_chief):
        plot_curves(result["curve"], pathlib.Path(run_dir).resolve() / "curves.png", f"imdb {preset_name}", log=log)
        if export:
            export_saved_model(run_dir, log=log)
    result.update(shuffle_seed=shuffle_seed, stopped_early=loop.stopped, best_epoch=loop.best_epoch)
    return result


def _best_weights(run, best_path, best_epoch):
    """The checkpoint with the best epoch's weights: best.ckpt, or (when a resume past damaged checkpoints deleted
    it) that epoch's own checkpoint if it is still kept; else a clear error (the weights are gone)."""
    if tf1.train.checkpoint_exists(best_path):
        return best_path
    kept = run.epoch_checkpoints()
    if best_epoch in kept:
        return kept[best_epoch]
    raise runs.CorruptCheckpointError(
        f"The best epoch's weights (epoch {best_epoch}) were lost with damaged checkpoints in {run.dir}, and no "
        "checkpoint of that epoch is kept: train again into another --run_dir.")


def _setup_from_run_dir(run_dir):
    """(config, quirks, manifest, vocabulary) of a trained run directory."""
    opened = training.open_run(run_dir, APP)
    saved = opened.manifest
    config = Config(**dict(saved["config"], lstm_sizes=tuple(saved["config"]["lstm_sizes"])))
    return config, Quirks(**saved["quirks"]), saved, opened.vocab


def _final_or_latest(run, checkpoint):
    if checkpoint is None and run.has_checkpoint(FINAL_CHECKPOINT):
        return str(run.dir / FINAL_CHECKPOINT)
    return checkpoint


def test(paths, run_dir, checkpoint=None, cache_dir=None, log=print):
    """Evaluate the final weights (else the newest checkpoint) on the 25,000 test reviews: {test_loss, test_acc}."""
    config, quirks, saved, _ = _setup_from_run_dir(run_dir)
    data = load_data(paths, config, quirks, cache_dir)
    graph = tf.Graph()
    with graph.as_default():
        model = build_graph(config, quirks, saved["cell"])
        run = runs.Run(run_dir, make_manifest(saved["preset"], config, quirks, data, saved.get("seed"),
                                              saved.get("shuffle_seed"), saved["cell"]),
                       var_list=tf1.trainable_variables())
        with tf1.Session(graph=graph) as sess:
            path = run.restore(sess, _final_or_latest(run, checkpoint))
            log(f"Restored {path}")
            start = time.time()
            loss, acc = evaluate(sess, model, data.test)
    # Keras evaluate()'s closing line, then the tutorial's own print of the accuracy it returned
    batches = math.ceil(len(data.test.x) / EVAL_BATCH)
    log(f"{batches}/{batches} - {time.time() - start:.0f}s - loss: {loss:.4f} - accuracy: {acc:.4f}")
    log(f"Test accuracy: {acc:.4f}")
    return {"test_loss": loss, "test_acc": acc}


# ---------------------------------------------------------------------------------------------------------
# Raw text: the Python encoder, the in-graph tokeniser, predict and the SavedModel
# ---------------------------------------------------------------------------------------------------------
def encode_for_prediction(texts, vocab, config, quirks):
    """Raw texts -> (ids [N, maxlen] int32, info per text), exactly as the training data was encoded."""
    ids = []
    info = []
    for text in texts:
        tokens = imdb_data.tokenize(text)
        row = [imdb_data.START] + [vocab.get(t, imdb_data.OOV) for t in tokens]
        ids.append(np.asarray(row, np.int32))
        info.append({"text": text, "tokens": len(tokens), "known": sum(t in vocab for t in tokens),
                     "truncated": len(row) > config.maxlen})
    return imdb_data.pad_sequences(ids, config.maxlen, quirks.padding, quirks.truncating), info


_FILTER_RE = "[" + "".join({"\t": r"\t", "\n": r"\n"}.get(c, "\\" + c) for c in imdb_data.FILTERS) + "]"


def tokenize_in_graph(texts, vocab, config, quirks):
    """string [N] -> int32 [N, maxlen]: ``encode_for_prediction`` as graph ops (lowercase, filters, split on
    spaces, vocabulary lookup with OOV 2, start token, truncation and padding)."""
    lowered = tf.strings.lower(texts, encoding="utf-8")
    cleaned = tf.strings.regex_replace(lowered, _FILTER_RE, " ")
    tokens = tf.strings.split(cleaned, sep=" ")
    tokens = tf.ragged.boolean_mask(tokens, tf.strings.length(tokens) > 0)
    words = sorted(vocab)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(words), tf.constant([vocab[w] for w in words], tf.int64)),
        default_value=imdb_data.OOV)
    ids = tf.ragged.map_flat_values(table.lookup, tokens)
    start = tf.RaggedTensor.from_tensor(tf.fill([tf.shape(texts)[0], 1], tf.constant(imdb_data.START, tf.int64)))
    ids = tf.concat([start, ids], axis=1)
    maxlen = config.maxlen
    ids = ids[:, :maxlen] if quirks.truncating == "post" else ids[:, -maxlen:]
    dense = ids.to_tensor(default_value=imdb_data.PAD, shape=[None, maxlen])
    if quirks.padding == "pre":  # move each row's ids to the end: reverse its first len ids, then the whole row
        dense = tf.reverse(tf.reverse_sequence(dense, ids.row_lengths(), seq_axis=1, batch_axis=0), axis=[1])
    return tf.cast(dense, tf.int32)


def predict(run_dir, texts, checkpoint=None):
    """Probability of a positive review for each raw text (Python encoder + the trained graph).

    Returns a list of dicts: text, probability, label (positive | negative), tokens, known, truncated.
    """
    config, quirks, saved, vocab = _setup_from_run_dir(run_dir)
    texts = list(texts)
    x, info = encode_for_prediction(texts, vocab, config, quirks)
    graph = tf.Graph()
    with graph.as_default():
        model = build_graph(config, quirks, saved["cell"])
        run = runs.Run(run_dir, saved, var_list=tf1.trainable_variables())
        with tf1.Session(graph=graph) as sess:
            run.restore(sess, _final_or_latest(run, checkpoint))
            probs = [sess.run(model.probability, {model.inputs: x[i:i + EVAL_BATCH]})
                     for i in range(0, len(x), EVAL_BATCH)]
    probs = np.concatenate(probs) if probs else np.zeros([0], np.float32)
    return [dict(item, probability=float(p), label="positive" if p > 0.5 else "negative")
            for item, p in zip(info, probs)]


def export_saved_model(run_dir, export_dir=None, checkpoint=None, log=print):
    """Write a SavedModel (TF1 builder, tag ``serve``) whose ``serving_default`` takes raw text.

    Signature: inputs ``text`` string [N]; outputs ``probability`` float [N] and ``ids`` int32 [N, maxlen].
    Default location ``<run_dir>/saved_model`` (replaced if it exists). Returns the export path.
    """
    import shutil
    config, quirks, saved, vocab = _setup_from_run_dir(run_dir)
    export_dir = pathlib.Path(export_dir or pathlib.Path(run_dir) / SAVED_MODEL)
    graph = tf.Graph()
    with graph.as_default():
        text = tf1.placeholder(tf.string, [None], name="text")
        ids = tokenize_in_graph(text, vocab, config, quirks)
        probability = tf.sigmoid(build_network(ids, config, quirks, saved["cell"]), name="probability")
        run = runs.Run(run_dir, saved, var_list=tf1.trainable_variables())
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.tables_initializer())
            path = run.restore(sess, _final_or_latest(run, checkpoint))
            if export_dir.exists():
                shutil.rmtree(export_dir)
            builder = tf1.saved_model.Builder(str(export_dir))
            signature = tf1.saved_model.predict_signature_def({"text": text},
                                                              {"probability": probability, "ids": ids})
            builder.add_meta_graph_and_variables(
                sess, [tf1.saved_model.tag_constants.SERVING],
                signature_def_map={"serving_default": signature}, main_op=tf1.tables_initializer(),
                strip_default_attrs=True)
            builder.save()
    log(f"SavedModel of {path} written to {export_dir}")
    return str(export_dir)


def plot_curves(curve, path, title, log=print):
    """Accuracy and loss per epoch (train and validation) as a PNG; needs matplotlib (skipped with a message)."""
    plt = report.pyplot("matplotlib is not installed: no curves.png (pip install matplotlib)", log)
    if plt is None:
        return False
    epochs = [r["epoch"] for r in curve]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "loss")):
        ax.plot(epochs, [r[metric] for r in curve], "C0-o", ms=3, label=f"train {metric}")
        ax.plot(epochs, [r[f"val_{metric}"] for r in curve], "C1-o", ms=3, label=f"validation {metric}")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend()
    report.save_figure(plt, fig, path, title)
    return True


# ---------------------------------------------------------------------------------------------------------
# Reproduction (scripts/reproduce.py; results and tables: legacy_lstm/report.py)
# ---------------------------------------------------------------------------------------------------------
REPRODUCTION = report.Reproduction("lstm", (("accuracy", "train accuracy (epoch mean)"),
                                            ("val_accuracy", "validation accuracy"),
                                            ("loss", "train loss (epoch mean)"), ("val_loss", "validation loss")))


def reproduce(run_dir, preset="lstm", seed=None, data_dir=None, max_epochs=None, train_run=True,
              variant_quirks=None, variant_cell="basic", split_seed=None, fast_test=False):
    """The published reproduction (scripts/reproduce.py): train (unless ``train_run`` is False; resumable, the run
    dir's own seed when resuming), then test the final weights (the best epoch's with early stopping) once the run
    is complete. Returns (manifest, curve, final metrics, test wall seconds or None)."""
    if split_seed is not None:
        raise ValueError("imdb has no --split_seed: the split is Keras's fixed seed-113 shuffle and the last 20% of "
                         "train")
    paths = locate_data(data_dir)
    cache = download.cache_dir() / "imdb"
    saved = runs.read_manifest(run_dir)
    seed = saved.get("seed") if saved is not None else seed  # resuming: the run's own seed
    manifest, curve = report.sitting(run_dir, APP, None if not train_run else lambda: train(
        paths, run_dir, preset, Quirks(**(variant_quirks or {})), seed=seed,
        max_epochs=max_epochs, cache_dir=cache))
    final, test_seconds = {"val_accuracy": None, "val_loss": None, "test_acc": None, "test_loss": None}, None
    config = manifest["config"] if manifest else None
    complete = bool(curve) and (len(curve) == config["epochs"] or (
        config["patience"] is not None and early_stopping(curve, config["patience"])[1] is not None))
    if complete:
        best = curve[-1]
        if config["patience"] is not None:  # the final weights are the best epoch's
            best_epoch = early_stopping(curve, config["patience"])[0]
            best = next(r for r in curve if r["epoch"] == best_epoch)
            final["best_epoch"] = best_epoch
        final.update(val_accuracy=best["val_accuracy"], val_loss=best["val_loss"])
        t = time.time()
        final.update(test(paths, run_dir, cache_dir=cache))
        test_seconds = time.time() - t
    return manifest, curve, final, test_seconds


# ---------------------------------------------------------------------------------------------------------
# main: the only reader of flags
# ---------------------------------------------------------------------------------------------------------
PADDING = flags.DEFINE_enum("padding", "post", ["post", "pre"], "Pad after (post, the tutorial's) or before the "
                            "review (pre, Keras's default: the LSTM's last step is the review's last word).")
TRUNCATING = flags.DEFINE_enum("truncating", "post", ["post", "pre"], "Keep the first (post, the tutorial's) or "
                               "the last maxlen ids of a longer review.")
MASK = flags.DEFINE_bool("mask", False, "Stop each review's LSTM at its length (Embedding mask_zero); not in the "
                         "tutorial. Needs --padding=post.")
CLIPNORM = flags.DEFINE_float("clipnorm", None, "Adam(clipnorm=...): clip each gradient to this norm (the "
                              "tutorial's clipping example uses 1.0). Default: no clipping.")
UNIFORM_HEAD_FLAG = flags.DEFINE_bool(
    "uniform_head", False, "Give every preset the lstm model's head (Dropout -> Dense 32 relu -> Dropout -> "
    "Dense 1), as this project's runs before the tutorial's own heads did; default: each preset's head as the "
    "tutorial wrote it.")
SOURCE = flags.DEFINE_enum("source", "raw", ["raw", "npz"], "raw: encode the aclImdb tar with the word index "
                           "(default); npz: Keras's imdb.npz, after its published sha256 matched.")
flags.adopt_module_key_flags(cli)


def main(argv):
    preset, mode, run_dir = cli.resolve_common(APP, PRESETS, "lstm", ("train", "test", "predict"), argv,
                                               ("predict",), "reviews are only taken with --mode=predict")
    cluster = cli.resolve_cluster(mode)
    if cluster is not None and cluster.is_ps:
        return distributed.serve(cluster)
    if cli.refuse_cell(cells.KINDS, "the fused path (legacy_lstm/fast_lstm.py) is built and proven equal for the "
                       "stocktwits and ptb stacks, not for imdb's Keras-style layers (masking, the bidirectional "
                       "wrapper): take basic, block or cudnn_compatible"):
        return 1
    if mode != "train":  # the run's own settings are used: a flag given with another value is an error
        cli.check_given_flags(run_dir)
        saved = runs.read_manifest(run_dir) or {}
        head = (saved.get("config") or {}).get("head")
        if UNIFORM_HEAD_FLAG.present and head is not None and saved.get("preset") in PRESETS and resolve_config(
                saved["preset"], uniform_head=UNIFORM_HEAD_FLAG.value)[1].head != head:
            raise runs.ManifestMismatchError(
                f"{run_dir} was trained with other settings than given: --{'' if UNIFORM_HEAD_FLAG.value else 'no'}"
                f"uniform_head (the run's head: {head}). Its own are used when the flags are left out.")
    if mode == "predict":
        texts = cli.read_messages(argv)
        for r in predict(run_dir, texts, cli.CHECKPOINT.value):
            note = " (no known words)" if r["known"] == 0 else (" (truncated)" if r["truncated"] else "")
            print(f"{r['probability']:.4f}\t{r['label']}{note}\t{r['text']}")
        return 0
    quirks = Quirks(padding=PADDING.value, truncating=TRUNCATING.value, mask=MASK.value, source=SOURCE.value)
    saved = runs.read_manifest(run_dir) if mode == "test" else None
    training.check_app(saved, run_dir, APP)  # another app's run dir: say whose it is
    # test mode evaluates with the run's own quirks, so it needs the data files of the run's own --source
    source = saved["quirks"].get("source", "raw") if saved is not None else quirks.source
    paths = locate_data(cli.resolve_data_dir(), source)
    cache = download.cache_dir() / "imdb"
    if mode == "train":
        result = train(paths, run_dir, preset, quirks, cli.SEED.value, cli.MAX_EPOCHS.value, cli.CELL.value,
                       CLIPNORM.value, cache_dir=cache, progress=cli.PROGRESS.value,
                       uniform_head=UNIFORM_HEAD_FLAG.value, cluster=cluster)
        if cluster is not None and not cluster.is_chief:  # the chief writes the run directory
            return 0
        print(f"Run directory: {run_dir} ({len(result['curve'])} epochs done"
              f"{', finished' if result['finished'] else ''})")
    else:
        test(paths, run_dir, cli.CHECKPOINT.value, cache_dir=cache)
    return 0


if __name__ == "__main__":
    cli.run(main)
