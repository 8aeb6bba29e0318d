"""Penn Treebank (Mikolov's simple-examples) for the PTB language models: the TF tutorial's reader.py.

Reader (tensorflow/models ``tutorials/rnn/ptb/reader.py``; Andy Thomas's ``lstm_tutorial.py`` copies it verbatim)::

    words = read_words(path)                    # newline -> "<eos>", then split on whitespace
    word_to_id = build_vocab(train_path)        # train only, sorted by (-count, word): ids 0..9999 on PTB
    ids = file_to_word_ids(path, word_to_id)    # words outside the vocabulary are dropped (never on PTB)
    train, valid, test, word_to_id = load_raw(train_path, valid_path, test_path)

Producer (``ptb_producer``), a queue as in the originals::

    x, y, epoch_size = batch_producer(ids, batch_size, num_steps)

``ids`` is truncated to ``batch_size * batch_len`` (``batch_len = len // batch_size``) and reshaped to
[batch_size, batch_len]; ``epoch_size = (batch_len - 1) // num_steps``; a ``range_input_producer`` cycles
``i`` over 0..epoch_size-1 for ever, and x = data[:, i*num_steps:(i+1)*num_steps], y the same window one
column later, both int32 [batch_size, num_steps]. Each ``session.run`` that evaluates x or y takes the next
``i``. The queue must be fed by its runner threads: run the session inside ``queue_runners(sess)``, which
starts them under a Coordinator and always stops and joins them, also when a step raises.

PTB: vocabulary 10,000; 929,589 / 73,760 / 82,430 tokens; epoch sizes 2,323 (batch 20, 20 steps),
1,327 (20, 35), 82,429 (1, 1).
"""

import collections
import contextlib

import numpy as np

from legacy_lstm.compat import tf, tf1
from legacy_lstm.data import download

EOS = "<eos>"
UNK = "<unk>"
FILES = (download.PTB_TRAIN, download.PTB_VALID, download.PTB_TEST)


def read_words(path):
    """The tokens of ``path``: newlines become ``<eos>`` (no space is added), then a whitespace split."""
    with open(path, "rb") as f:
        return f.read().decode("utf-8").replace("\n", EOS).split()


def build_vocab(path):
    """{word: id} over the words of ``path``, ids in order of decreasing count, ties alphabetical."""
    counter = collections.Counter(read_words(path))
    pairs = sorted(counter.items(), key=lambda x: (-x[1], x[0]))
    return {word: i for i, (word, _) in enumerate(pairs)}


def file_to_word_ids(path, word_to_id):
    return [word_to_id[word] for word in read_words(path) if word in word_to_id]


def load_raw(train_path, valid_path, test_path):
    """(train ids, valid ids, test ids, word_to_id): the reader's ``ptb_raw_data`` with its vocabulary."""
    word_to_id = build_vocab(train_path)
    if not word_to_id:
        raise ValueError(f"{train_path} holds no words")
    return (file_to_word_ids(train_path, word_to_id), file_to_word_ids(valid_path, word_to_id),
            file_to_word_ids(test_path, word_to_id), word_to_id)


def locate(data_dir=None):
    """The three PTB files (train, valid, test), found or fetched and checked by ``download.locate``."""
    return tuple(download.locate(spec, data_dir) for spec in FILES)


def epoch_size(num_ids, batch_size, num_steps):
    """Windows per pass: ``((num_ids // batch_size) - 1) // num_steps``."""
    return ((num_ids // batch_size) - 1) // num_steps


def batch_producer(raw_data, batch_size, num_steps, name=None):
    """(x, y, epoch_size): int32 [batch_size, num_steps] tensors fed by a queue, and the windows per pass.

    Raises ValueError when the data cannot give a single window (the reader's ``epoch_size == 0`` assertion,
    checked here when the graph is built, since every size is known then).
    """
    size = epoch_size(len(raw_data), batch_size, num_steps)
    if size <= 0:
        raise ValueError(f"epoch_size == 0, decrease batch_size or num_steps: {len(raw_data)} words cannot give "
                         f"one window of batch_size={batch_size} x num_steps={num_steps} (+1 for the targets)")
    with tf1.name_scope(name, "PTBProducer"):
        batch_len = len(raw_data) // batch_size
        raw_data = tf.convert_to_tensor(np.asarray(raw_data, dtype=np.int32), name="raw_data", dtype=tf.int32)
        data = tf.reshape(raw_data[0:batch_size * batch_len], [batch_size, batch_len])
        i = tf1.train.range_input_producer(size, shuffle=False).dequeue()
        x = tf.strided_slice(data, [0, i * num_steps], [batch_size, (i + 1) * num_steps])
        x.set_shape([batch_size, num_steps])
        y = tf.strided_slice(data, [0, i * num_steps + 1], [batch_size, (i + 1) * num_steps + 1])
        y.set_shape([batch_size, num_steps])
        return x, y, size


@contextlib.contextmanager
def queue_runners(sess, stop_grace_period_secs=10):
    """Start the graph's queue runners under a Coordinator; on exit (normal or by an exception) stop them and
    join their threads. An exception of the body propagates unchanged; one raised by a runner thread is
    re-raised by the join when the body itself succeeded."""
    coord = tf1.train.Coordinator()
    threads = tf1.train.start_queue_runners(sess=sess, coord=coord)
    failed = False
    try:
        yield coord
    except BaseException:
        failed = True
        raise
    finally:
        coord.request_stop()
        try:
            coord.join(threads, stop_grace_period_secs=stop_grace_period_secs)
        except Exception:
            if not failed:
                raise
