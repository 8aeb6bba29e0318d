"""Tiny seeded trainings of every app, 4 epochs each, on data written here: the SIGKILL test of the resume
contract (tests/test_reliability.py) runs them in killed subprocesses and in-process.

``TICKS_BETWEEN_KILL_POINTS``: how many batches pass between two of the mid-epoch places to die (about two an
epoch)."""

import dataclasses
import json

from legacy_lstm import essentials, fables, imdb, ptb, ptb_thomas, stocktwits

APPS = ("essentials", "fables", "stocktwits", "ptb", "ptb_thomas", "imdb")
TICKS_BETWEEN_KILL_POINTS = {"essentials": 25, "fables": 100, "stocktwits": 12, "ptb": 60, "ptb_thomas": 60,
                             "imdb": 3}
FABLE = ("long ago , the mice had a general council to consider what measures they could take to outwit their "
         "common enemy , the cat . some said this , and some said that . \n")


def _quiet(*args, **kwargs):
    pass


def prepare(app, data_dir):
    """Write the app's tiny data into ``data_dir`` (a no-op when it is there); return what ``train`` reads."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if app == "fables":
        path = data_dir / "fable.txt"
        path.exists() or path.write_text(FABLE)
        return path
    if app == "stocktwits":
        from stocktwits_fixtures import write_messages
        path = data_dir / "messages.csv.gz"
        path.exists() or write_messages(path)
        return path
    if app in ("ptb", "ptb_thomas"):
        from test_ptb import write_corpus
        if not (data_dir / "ptb.train.txt").exists():
            return write_corpus(data_dir, (300, 60, 120))
        return tuple(data_dir / f"ptb.{name}.txt" for name in ("train", "valid", "test"))
    if app == "imdb":
        from test_imdb import WORD_INDEX, write_tar
        tar, index = data_dir / "aclImdb_labeled.tar.gz", data_dir / "imdb_word_index.json"
        tar.exists() or write_tar(tar, extra_members=False)
        index.exists() or index.write_text(json.dumps(WORD_INDEX))
        return imdb.Paths(word_index=str(index), tar=str(tar))
    return None


def train(app, data, run_dir, max_epochs=None):
    """Train ``app`` on ``data`` (from ``prepare``) in ``run_dir``: seed 8, 4 epochs, resuming."""
    if app == "essentials":
        return essentials.train(run_dir, "test", essentials.LOOP, seed=8, max_epochs=max_epochs, log=_quiet)
    if app == "fables":
        return fables.train(data, run_dir, fables.Config(n_hidden=32, training_iters=800, display_step=200), seed=8,
                            max_epochs=max_epochs, log=_quiet)
    if app == "stocktwits":
        from stocktwits_fixtures import QUICK, SMALL
        return stocktwits.train(data, run_dir, dataclasses.replace(SMALL, epochs=4), QUICK, split_seed=3, seed=8,
                                max_epochs=max_epochs, log=_quiet)
    if app == "ptb":
        config = dataclasses.replace(ptb.PRESETS["small"], hidden_size=8, num_steps=5, batch_size=4, epochs=4,
                                     vocab_size=50)
        return ptb.train(data, run_dir, config, seed=8, max_epochs=max_epochs, log=_quiet)
    if app == "ptb_thomas":
        config = dataclasses.replace(ptb_thomas.PRESETS["test"], hidden_size=8, num_steps=5, batch_size=4, epochs=4,
                                     vocab_size=50, test_epoch=2, print_iter=20)
        return ptb_thomas.train(data, run_dir, config, seed=8, max_epochs=max_epochs, log=_quiet, data_prints=False)
    if app == "imdb":
        from test_imdb import SMALL
        return imdb.train(data, run_dir, dataclasses.replace(SMALL, epochs=4), seed=8, max_epochs=max_epochs,
                          export=False, cache_dir=run_dir.parent / "imdb-cache", log=_quiet)
    raise ValueError(app)
