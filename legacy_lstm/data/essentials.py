"""Data of the Deep Learning Essentials LSTM toy: the book's sequences, labelled text files, word vectors.

Pure Python/NumPy (the book's ``cb-lstm.py``, PacktPublishing/Deep-Learning-Essentials@06881b3)::

    x, y = TOY_DATA, TOY_LABELS                     # int32 [4, 4] ids into the word vectors, float64 [4, 2]
    vectors = random_word_vectors(1024, 64, seed)   # float64 uniform [0, 1), as np.random.random([1024, 64])
    words, vectors = load_word_vectors(path, 64)    # word2vec text (with "count dim" header) or GloVe (without)
    texts, names = read_train_file(path)            # "label<TAB>text" lines -> token lists, 2 label names
    vocab, vectors = vocab_and_vectors(texts, ...)  # the rows the model needs, + a zero row for padding/unknown
    x = encode(texts, vocab, 4, pad_id)             # int32 [N, 4]: first 4 tokens, padded with pad_id
    idx = batch_indices(step, N, 4)                 # the examples of one step, cycling through the data
"""

import numpy as np

# The book's toy data: four sequences of four ids into word_vectors, two classes as one-hot rows.
TOY_DATA = np.array([[0, 1, 2, 3], [10, 11, 12, 13], [20, 21, 22, 23], [30, 31, 32, 33]], dtype=np.int32)
TOY_LABELS = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], dtype=np.float64)
PAD = "<pad>"  # the last row of a vocabulary built here: a zero vector for padding and unknown words


class DataFormatError(ValueError):
    """A word-vector or training file that cannot be used; the message names the file, the line and the fix."""


def random_word_vectors(num_words, dim, seed):
    """The book's ``np.random.random([1024, 64])`` (float64, uniform [0, 1)), from a seeded generator."""
    return np.random.RandomState(seed).random_sample([num_words, dim])


def _is_header(fields):
    return len(fields) == 2 and all(f.isdigit() for f in fields)


def read_lines(path, what):
    """The lines of a UTF-8 text file (universal newlines: CRLF and CR end lines too); DataFormatError
    naming the file and ``what`` it must be when it is not UTF-8."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().split("\n")
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path} is not UTF-8 text ({err}); {what}") from err


def load_word_vectors(path, expected_dim):
    """(words, float64 [len(words), dim]) of a word2vec text file ("count dim" header) or a GloVe file.

    Each line is a word and its ``dim`` numbers, separated by spaces. A repeated word keeps its first vector.
    Raises DataFormatError for an empty or undecodable file, a line that is not a word and ``dim`` numbers,
    a header that disagrees with the rows, or vectors whose dimension is not ``expected_dim``.
    """
    lines = read_lines(path, "word vectors must be a word2vec/GloVe *text* file (a binary word2vec file needs "
                             "converting first)")
    numbered = [(i, line.rstrip()) for i, line in enumerate(lines, 1) if line.strip()]
    header = None
    if numbered and _is_header(numbered[0][1].split()):
        header = tuple(int(v) for v in numbered[0][1].split())
        numbered = numbered[1:]
    if not numbered:
        raise DataFormatError(f"{path} holds no word vectors")
    dim = len(numbered[0][1].split(" ")) - 1
    if dim < 1:
        raise DataFormatError(f"{path}, line {numbered[0][0]}: expected a word followed by numbers, "
                              f"got {numbered[0][1][:60]!r}")
    if header is not None and header[1] != dim:
        raise DataFormatError(f"{path}: the header says {header[1]} dimensions but line {numbered[0][0]} has {dim}")
    words, rows, seen = [], [], set()
    for number, line in numbered:
        fields = line.split(" ")
        if len(fields) != dim + 1:
            raise DataFormatError(f"{path}, line {number}: {len(fields) - 1} values where the first vector has "
                                  f"{dim}; each line must be a word and {dim} numbers separated by single spaces")
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError:
            bad = next(v for v in fields[1:] if not _is_float(v))
            raise DataFormatError(f"{path}, line {number}: {bad!r} is not a number") from None
        if not np.all(np.isfinite(values)):
            raise DataFormatError(f"{path}, line {number}: the vector of {fields[0]!r} is not finite")
        if fields[0] in seen:
            continue
        seen.add(fields[0])
        words.append(fields[0])
        rows.append(values)
    if header is not None and header[0] != len(numbered):
        raise DataFormatError(f"{path}: the header says {header[0]} words but the file has {len(numbered)} vectors")
    if dim != expected_dim:
        raise DataFormatError(f"{path} holds {dim}-dimensional vectors, but the model's embedding dimension is "
                              f"{expected_dim} (the book's embedding_dimension); use {expected_dim}-dimensional "
                              "vectors")
    return words, np.array(rows, dtype=np.float64)


def _is_float(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def tokenize(text):
    """Lower-case whitespace tokens (GloVe's and most word2vec vocabularies are lower case)."""
    return text.lower().split()


def read_train_file(path):
    """(token lists, label ids int [N], label names) of a "label<TAB>text" file; blank lines are skipped.

    Exactly two distinct labels (the model has two classes); their sorted names give the class ids.
    """
    texts, labels = [], []
    lines = read_lines(path, "the training file must be UTF-8 'label<TAB>text' lines")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        label, tab, text = line.rstrip("\r\n").partition("\t")
        if not tab or not label.strip():
            raise DataFormatError(f"{path}, line {number}: expected 'label<TAB>text', got {line.strip()[:60]!r}")
        tokens = tokenize(text)
        if not tokens:
            raise DataFormatError(f"{path}, line {number}: the text after the label is empty")
        texts.append(tokens)
        labels.append(label.strip())
    names = sorted(set(labels))
    if len(names) != 2:
        raise DataFormatError(f"{path} has {len(names)} distinct labels ({', '.join(names) or 'none'}); the model "
                              "has 2 classes, so the file needs exactly 2")
    return texts, np.array([names.index(label) for label in labels], dtype=np.int64), names


def one_hot(label_ids, num_classes):
    """float64 [N, num_classes], the book's label rows."""
    y = np.zeros([len(label_ids), num_classes], dtype=np.float64)
    y[np.arange(len(label_ids)), label_ids] = 1.0
    return y


def vocab_and_vectors(texts, dim, seed, words=None, vectors=None):
    """The vocabulary {word: row} and float64 word vectors for ``texts``.

    The texts' words in order of first appearance; with ``words``/``vectors`` (a loaded file) only those the
    file has, each with its row from the file; without, all of them, with random vectors as the book's
    (seeded). Either way a
    last row ``<pad>`` of zeros pads short texts and stands for words the vectors do not have.
    """
    used = list(dict.fromkeys(t for tokens in texts for t in tokens))
    if words is None:
        vocab_words = used
        matrix = random_word_vectors(len(vocab_words), dim, seed)
    else:
        row = {w: i for i, w in enumerate(words)}
        vocab_words = [w for w in used if w in row]
        matrix = vectors[[row[w] for w in vocab_words]].reshape(len(vocab_words), dim)
    vocab = {w: i for i, w in enumerate(vocab_words)}
    vocab[PAD] = len(vocab_words)
    return vocab, np.concatenate([matrix, np.zeros([1, dim])]).astype(np.float64)


def encode(texts, vocab, max_length, pad_id):
    """int32 [N, max_length]: the first ``max_length`` tokens' ids, unknown words and padding as ``pad_id``."""
    x = np.full([len(texts), max_length], pad_id, dtype=np.int32)
    for i, tokens in enumerate(texts):
        ids = [vocab.get(t, pad_id) for t in tokens[:max_length]]
        x[i, :len(ids)] = ids
    return x


def batch_indices(step, num_examples, batch_size):
    """The example indices of training step ``step`` (0-based): consecutive, wrapping around the data."""
    return (np.arange(batch_size) + step * batch_size) % num_examples
