"""IMDB reviews encoded as ``keras.datasets.imdb.load_data`` does, rebuilt offline from the raw aclImdb tar.

Pure Python/NumPy (the in-graph twin of ``tokenize`` lives in ``legacy_lstm.imdb``)::

    corpus = read_tar(tar_path, word_index)      # Corpus: word-index ranks of every review, labels, split sizes
    corpus = load_corpus(tar, word_index_path)   # the same, cached as .npz keyed by the inputs' sha256
    (x_train, y_train), (x_test, y_test) = keras_encode(corpus, num_words=10000)
    x = pad_sequences(x_train, 200, padding="post", truncating="post")

Keras conventions (``load_data`` defaults): one ``np.random.RandomState(113)`` shuffles the training reviews,
then the test reviews; every review starts with 1; a word of rank r (1 = most frequent in the word index)
gets id r + 3; ids >= num_words and words missing from the index become 2 (out of vocabulary); 0 pads.

Tokenisation (``tokenize``) is Keras's ``text_to_word_sequence`` with its default filters, which is how the
word index looks to have been made: lowercase, every character of ``!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~`` plus
tab and newline becomes a space, split on single spaces, drop empty tokens. Apostrophes and non-ASCII
characters stay inside words ("don't", "cliché", "\\x96" are all in the index) and ``<br />`` becomes the
word "br" (rank 7, as in Keras's own data). Keras's ``imdb.npz`` was made by a script that is not published,
so the ids here are close to, not bit-identical with, that file: the order of the reviews before the shuffle
(here: sorted file names, neg before pos) and any difference in tokenisation change individual examples.

The tar is read member by member with ``tarfile`` and never extracted; only regular files named
``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` are read, so no member can write anywhere.
"""

import collections
import hashlib
import io
import json
import os
import pathlib
import re
import tarfile
import warnings
import zipfile

import numpy as np

from legacy_lstm.data.download import DataNotFoundError, sha256_of

START, OOV, PAD, INDEX_FROM, SHUFFLE_SEED = 1, 2, 0, 3, 113
FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
TOKENIZER_VERSION = 1  # bump when ``tokenize`` changes: it keys the cache
_FILTER_TABLE = str.maketrans({c: " " for c in FILTERS})
_MEMBER = re.compile(r"^aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
KERAS_NPZ_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"

Corpus = collections.namedtuple("Corpus", "ranks labels num_train")  # ranks: list of int32 arrays


def lower(text):
    """``str.lower``. The in-graph ``tf.strings.lower(encoding="utf-8")`` gives the same result for every code
    point below U+3000 (checked, final sigma and "İ" included) except "Ⱟ" (U+2C2F, a newer Unicode version)."""
    return text.lower()


def tokenize(text):
    """Keras ``text_to_word_sequence`` with the default filters (see the module docstring)."""
    return [t for t in lower(text).translate(_FILTER_TABLE).split(" ") if t]


def load_word_index(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def rank_array(tokens, word_index):
    """Word-index ranks of ``tokens`` (0 for a word the index does not have)."""
    get = word_index.get
    return np.fromiter((get(t, 0) for t in tokens), dtype=np.int32, count=len(tokens))


def read_tar(tar_path, word_index):
    """Read and tokenise the 50,000 labelled reviews of the tar, in sorted name order (neg before pos)."""
    found = {"train": [], "test": []}
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            for member in tar:
                match = _MEMBER.match(member.name)
                if not match or not member.isfile():
                    continue
                split, label = match.group(1), int(match.group(2) == "pos")
                text = tar.extractfile(member).read().decode("utf-8")
                found[split].append((member.name, label, rank_array(tokenize(text), word_index)))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise DataNotFoundError(f"Cannot read {tar_path} as the aclImdb tar: {err}") from err
    for split in found:
        if not found[split]:
            raise DataNotFoundError(f"{tar_path} has no reviews under aclImdb/{split}/{{pos,neg}}/: not the "
                                    "labelled aclImdb tar (see the app's docstring)")
        found[split].sort(key=lambda item: item[0])
    rows = found["train"] + found["test"]
    return Corpus([r[2] for r in rows], np.array([r[1] for r in rows], np.int32), len(found["train"]))


def _cache_key(tar_path, word_index_path):
    digest = hashlib.sha256()
    for part in (sha256_of(tar_path), sha256_of(word_index_path), f"tokenizer-{TOKENIZER_VERSION}"):
        digest.update(part.encode())
    return digest.hexdigest()[:24]


def load_corpus(tar_path, word_index_path, cache_dir=None, word_index=None):
    """``read_tar``, cached in ``cache_dir`` (None: no cache) under the sha256 of both inputs."""
    cache = None
    if cache_dir is not None:
        cache = pathlib.Path(cache_dir) / f"imdb-encoded-{_cache_key(tar_path, word_index_path)}.npz"
        if cache.is_file():
            try:
                with np.load(cache) as f:
                    return Corpus(np.split(f["flat"], f["offsets"][1:-1]), f["labels"], int(f["num_train"]))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
                warnings.warn(f"the encoded IMDB cache {cache} cannot be read ({type(err).__name__}: {err}); "
                              "rebuilding it from the tar", stacklevel=2)
    word_index = word_index if word_index is not None else load_word_index(word_index_path)
    corpus = read_tar(tar_path, word_index)
    if cache is not None:
        _write_cache(cache, corpus)
    return corpus


def _write_cache(cache, corpus):
    """Write the encoded corpus to ``cache`` atomically. The cache is optional: a write that fails (a full disk, a
    read-only folder) is a warning, and leaves no temporary file."""
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in corpus.ranks])]).astype(np.int64)
    buf = io.BytesIO()
    np.savez(buf, flat=np.concatenate(corpus.ranks).astype(np.int32), offsets=offsets, labels=corpus.labels,
             num_train=corpus.num_train)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, cache)
    except OSError as err:
        warnings.warn(f"cannot write the encoded IMDB cache {cache} ({err}); continuing without it", stacklevel=3)
        try:
            tmp.unlink()
        except OSError:
            pass


def keras_encode(corpus, num_words=10000, seed=SHUFFLE_SEED):
    """((x_train, y_train), (x_test, y_test)) as ``imdb.load_data(num_words=num_words)``: lists of int32 arrays."""
    rng = np.random.RandomState(seed)
    n = corpus.num_train
    order_train = np.arange(n)
    rng.shuffle(order_train)
    order_test = np.arange(len(corpus.ranks) - n)
    rng.shuffle(order_test)

    def encode(ranks):
        ids = np.where(ranks > 0, ranks + INDEX_FROM, OOV).astype(np.int32)
        ids[ids >= num_words] = OOV
        return np.concatenate([[START], ids]).astype(np.int32)

    x_train = [encode(corpus.ranks[i]) for i in order_train]
    x_test = [encode(corpus.ranks[n + i]) for i in order_test]
    return (x_train, corpus.labels[order_train]), (x_test, corpus.labels[n + order_test])


def encode_texts(texts, word_index, num_words=10000):
    """Raw texts -> id arrays with the start token, as ``keras_encode`` does for the corpus."""
    out = []
    for text in texts:
        ranks = rank_array(tokenize(text), word_index)
        ids = np.where(ranks > 0, ranks + INDEX_FROM, OOV).astype(np.int32)
        ids[ids >= num_words] = OOV
        out.append(np.concatenate([[START], ids]).astype(np.int32))
    return out


def vocabulary(word_index, num_words=10000):
    """{word: id} of the words that keep their own id under the ``num_words`` cut (id = rank + 3 < num_words)."""
    return {w: r + INDEX_FROM for w, r in word_index.items() if r + INDEX_FROM < num_words}


def pad_sequences(sequences, maxlen, padding="post", truncating="post", value=PAD):
    """Keras ``pad_sequences`` for int sequences: int32 [N, maxlen]."""
    if padding not in ("pre", "post") or truncating not in ("pre", "post"):
        raise ValueError(f"padding and truncating must be 'pre' or 'post', got {padding!r}, {truncating!r}")
    x = np.full((len(sequences), maxlen), value, np.int32)
    for i, seq in enumerate(sequences):
        seq = seq[:maxlen] if truncating == "post" else seq[-maxlen:]
        if len(seq):
            if padding == "post":
                x[i, :len(seq)] = seq
            else:
                x[i, -len(seq):] = seq
    return x


def load_keras_npz(path, num_words=10000, seed=SHUFFLE_SEED, expected_sha256=KERAS_NPZ_SHA256):
    """Keras's own ``imdb.npz``, encoded as ``load_data`` does, after checking its published sha256.

    The file holds object arrays, so loading it runs pickle: an unverified file is refused before it is
    opened (a crafted .npz could run code).
    """
    actual = sha256_of(path)
    if actual != expected_sha256:
        raise DataNotFoundError(
            f"{path} has sha256 {actual}, not the published {expected_sha256} of Keras's imdb.npz. It is refused "
            "unopened: loading it needs pickle, which would run whatever code a modified file carries. Use the "
            "original file, or the raw aclImdb tar (the default --source=raw).")
    with np.load(path, allow_pickle=True) as f:
        x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    ranks = [np.asarray(r, np.int32) for r in list(x_train) + list(x_test)]
    # The npz holds ranks (index_from not yet applied); unknown words cannot occur in it.
    corpus = Corpus(ranks, np.concatenate([y_train, y_test]).astype(np.int32), len(x_train))
    return keras_encode(corpus, num_words, seed)
