"""The short seeded runs behind the curve regression tests (tests/test_curves.py) and their golden files.

One ``Spec`` per app: which configuration runs, on which slice of the real data, for how many epochs (an epoch is
what the app checkpoints after: fables' display of 1,000 iterations, essentials' block of 100). ``run(spec,
data_dir, work_dir)`` trains it in a fresh run directory and returns the curve rows and the lines the app logged.
``scripts/make_golden.py`` writes ``tests/golden/<name>.json`` from the same function, so the golden curve and the
test cannot drift apart, and measures how far the curve moves when only the arithmetic changes (see ``PERTURBATIONS``).

Which configuration, and why:

    stocktwits   the ``test`` preset (LSTM 16-8, embed 16, batch 32, 2,000 messages), 2 epochs. Reduced: one epoch of
                 the published configuration (T=244, 303 batches of 256) takes ~400 s here.
    ptb          the published ``small`` configuration on the first 6,400 words of ptb.train.txt (15 steps per
                 epoch; valid: the first 2,000 of ptb.valid.txt), 2 epochs. Reduced data: one epoch of the 929k words
                 takes ~190 s; and short on purpose: with SGD at learning rate 1, a change in the last bits of the
                 arithmetic grows fast. Measured: 40,000 words (99 steps per epoch) run with one thread instead of
                 two ended epoch 1 at train perplexity 1306.3 instead of 1312.3 and valid 627 instead of 725, so a
                 longer run could not tell a changed hyperparameter from another machine.
    ptb_thomas   Thomas's published configuration (2 tied layers of 650, 35 steps, batch 20, dropout 0.5) on the first
                 8,000 words of ptb.train.txt: 11 steps, 1 epoch (accuracy is fetched at step 0 only, as his
                 print_iter of 50 does). Reduced data: one epoch of the corpus takes ~20 min.
    fables       the published ``blog`` configuration, its first 2 displays (2,000 of 50,000 iterations). The
                 original's log is published for displays 49 and 50 only, so there is no early part to compare with.
    essentials   the ``book`` configuration with the 1,000 iterations its code declares (``essentials.LOOP``, as
                 scripts/reproduce.py runs it; the shipped code runs one step), all of it: 10 blocks.
    imdb         the published ``lstm`` model (embedding 128, LSTM 64, batch 64, Adam 1e-3, post padding) on the first
                 2,000 training / 1,000 test reviews, 2 epochs. Reduced data: one epoch of the 20,000 reviews takes
                 ~40 s, beyond this suite's budget.
"""

import dataclasses
import pathlib

from legacy_lstm import essentials, fables, imdb, ptb, ptb_thomas, stocktwits
from legacy_lstm.data import download
from legacy_lstm.data import ptb as ptb_data

GOLDEN_DIR = pathlib.Path(__file__).resolve().parent / "golden"
SEED = 1

# Ways to change only the arithmetic of a run (kernels, reduction orders), each an environment for a subprocess.
# The spread they cause on one machine sizes the tests' tolerances; see scripts/make_golden.py.
PERTURBATIONS = {
    "repeat": {},                                          # the same run again: run-to-run variation proper
    "onednn_off": {"TF_ENABLE_ONEDNN_OPTS": "0"},         # Eigen's kernels instead of oneDNN's
    "one_thread": {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"},  # other reduction splits
}


@dataclasses.dataclass(frozen=True)
class Spec:
    name: str               # golden file tests/golden/<name>.json
    app: str
    preset: str             # the preset whose configuration it runs (reduced as ``note`` says)
    columns: tuple          # the curve columns compared
    note: str               # what is reduced, in one line (recorded in the golden file)


SPECS = {s.name: s for s in (
    Spec("stocktwits_test_preset", "stocktwits", "test", ("train_loss", "epoch_train_loss", "train_acc", "val_acc"),
         "test preset, 2 epochs (one published epoch takes ~400 s)"),
    Spec("ptb_small_prefix", "ptb", "small", ("train_perplexity", "valid_perplexity"),
         "small config on the first 6,400 train / 2,000 valid words (15 steps per epoch), 2 epochs"),
    Spec("ptb_thomas_prefix", "ptb_thomas", "thomas", ("cost", "train_accuracy"),
         "Thomas's config on the first 8,000 train words (11 steps), 1 epoch"),
    Spec("fables_blog", "fables", "blog", ("average_loss", "average_accuracy"),
         "blog config, first 2 displays of 1,000 iterations"),
    Spec("essentials_book", "essentials", "book", ("loss", "accuracy"), "book config, all 1,000 iterations"),
    Spec("imdb_lstm_subset", "imdb", "lstm", ("loss", "accuracy", "val_loss", "val_accuracy"),
         "lstm config on the first 2,000 train / 1,000 test reviews, 2 epochs"),
)}

PTB_SMALL_WORDS = (6_400, 2_000)
PTB_THOMAS_WORDS = (8_000, 2_000)
FABLES_DISPLAYS = 2
IMDB_REVIEWS = (2_000, 1_000)


def _quiet(*_args, **_kwargs):
    pass


def _ptb_prefix(data_dir, work_dir, words):
    """The first ``words`` (train, valid) words of PTB, written as whole lines; test is a copy of the valid slice."""
    paths = ptb_data.locate(data_dir)
    out = []
    for path, limit in zip(paths[:2], words):
        kept, count = [], 0
        for line in pathlib.Path(path).read_text().splitlines(keepends=True):
            if count >= limit:
                break
            kept.append(line)
            count += len(line.split()) + 1  # the reader adds <eos> per line
        target = pathlib.Path(work_dir) / pathlib.Path(path).name
        target.write_text("".join(kept))
        out.append(str(target))
    return out[0], out[1], out[1]


def run(spec, data_dir, work_dir):
    """Train ``spec`` on the real data in ``data_dir``; returns {"curve": rows without timings,
    "log": the lines it logged, "run_dir"}."""
    work_dir = pathlib.Path(work_dir)
    run_dir = work_dir / "run"
    lines = []
    log = lines.append
    if spec.app == "stocktwits":
        path = download.locate(download.STOCKTWITS, data_dir, download=False)
        result = stocktwits.train(path, run_dir, "test", split_seed=SEED, seed=SEED, log=log)
    elif spec.app == "ptb":
        paths = _ptb_prefix(data_dir, work_dir, PTB_SMALL_WORDS)
        config = dataclasses.replace(ptb.PRESETS["small"], epochs=2)
        result = ptb.train(paths, run_dir, config, seed=SEED, log=log)
    elif spec.app == "ptb_thomas":
        paths = _ptb_prefix(data_dir, work_dir, PTB_THOMAS_WORDS)
        config = dataclasses.replace(ptb_thomas.PRESETS["thomas"], epochs=1, test_epoch=1)
        result = ptb_thomas.train(paths, run_dir, config, seed=SEED, log=log)
    elif spec.app == "fables":
        path = download.locate(download.FABLE, data_dir, download=False)
        result = fables.train(path, run_dir, "blog", seed=SEED, max_epochs=FABLES_DISPLAYS, log=log)
    elif spec.app == "essentials":
        result = essentials.train(run_dir, "book", essentials.LOOP, seed=SEED, log=log)
    elif spec.app == "imdb":
        config = dataclasses.replace(imdb.PRESETS["lstm"], epochs=2, max_train=IMDB_REVIEWS[0],
                                     max_test=IMDB_REVIEWS[1])
        result = imdb.train(imdb.locate_data(data_dir), run_dir, config, seed=SEED, cache_dir=work_dir / "cache",
                            export=False, log=log)
    else:
        raise ValueError(f"no curve spec for app {spec.app!r}")
    curve = [{k: v for k, v in row.items() if k in spec.columns or k == "epoch"} for row in result["curve"]]
    return {"curve": curve, "log": [str(line) for line in lines], "run_dir": run_dir}
