"""Seeded tiny runs of every app, recorded so that a refactor can be proved not to change a number.

    python scripts/seeded_runs.py record before.json        # on the commit before the change
    python scripts/seeded_runs.py record after.json         # on the change
    python scripts/seeded_runs.py compare before.json after.json

``record`` trains each app's tiny configuration with a fixed seed (deterministic RNN loops), once straight
through and once interrupted after the first epoch and resumed, and writes for each: the curve rows (without
wall-clock fields), the log lines (with speeds and times masked) and the sha256 of every variable of the newest
checkpoint. ``compare`` exits 1 and names what differs unless the two records are identical. Both records must
come from one machine (floating-point results may differ between CPUs). StockTwits and IMDB use the real data
(``$LEGACY_LSTM_DATA``, else the cache); they are left out, with a note, when it is absent. PTB and fables write
their own tiny corpus.
"""

import argparse
import dataclasses
import hashlib
import json
import pathlib
import re
import sys
import tempfile

import numpy as np

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from legacy_lstm.compat import tf1  # noqa: E402
from legacy_lstm import runs  # noqa: E402
from legacy_lstm.data import download  # noqa: E402

SEED = 7
# what changes from run to run on one machine: speeds, times, paths
MASKS = [(re.compile(r"speed: [\d.]+ wps"), "speed: * wps"), (re.compile(r"Seconds per step: [\d.]+"),
                                                               "Seconds per step: *"),
         (re.compile(r"Elapsed time: .*"), "Elapsed time: *"), (re.compile(r"\d+ examples/s"), "* examples/s"),
         (re.compile(r" - \d+s - "), " - *s - "), (re.compile(r"/tmp/\S+"), "<tmp>"),
         (re.compile(r"sitting: \d+ s"), "sitting: * s")]
# left out of the record: wall-clock fields and paths, and the driver's bookkeeping (how many epochs a sitting found
# done), which is not a number of the model
IGNORED = {"seconds", "seconds_per_train_step", "train_seconds", "test_seconds", "run_dir", "checkpoint", "done_before"}


def _mask(line):
    for pattern, repl in MASKS:
        line = pattern.sub(repl, line)
    return line


def _weights(run_dir):
    path = tf1.train.latest_checkpoint(str(run_dir))
    reader = tf1.train.NewCheckpointReader(path)
    return {name: hashlib.sha256(np.ascontiguousarray(reader.get_tensor(name)).tobytes()).hexdigest()
            for name in sorted(reader.get_variable_to_shape_map())}


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k not in IGNORED}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return repr(value)  # every bit
    if isinstance(value, (np.floating, np.integer)):
        return repr(value.item())
    return value


def _record(train, run_dir, resume_after=None):
    """Train (straight, or ``resume_after`` epochs then the rest in a second sitting); curve, log, weights."""
    lines = []
    log = lambda *args: lines.append(_mask(" ".join(str(a) for a in args)))  # noqa: E731
    if resume_after is not None:
        train(run_dir, log, max_epochs=resume_after)
    result = train(run_dir, log, max_epochs=None)
    curve = runs.read_json(run_dir, runs.CURVE_JSON)
    return {"curve": _clean(curve), "log": lines, "weights": _weights(run_dir),
            "result": _clean({k: v for k, v in result.items() if k not in ("curve", "config")})}


def _ptb_corpus(folder):
    rng = np.random.default_rng(0)
    words = "the cat sat on mat a dog ran in park N <unk> and".split()
    paths = []
    for name, lines in (("train", 300), ("valid", 60), ("test", 120)):
        path = folder / f"ptb.{name}.txt"
        with open(path, "w") as f:
            for _ in range(lines):
                f.write(" " + " ".join(rng.choice(words, size=rng.integers(3, 9))) + " \n")
        paths.append(path)
    return tuple(paths)


def apps(tmp):
    """{name: train(run_dir, log, max_epochs)} for every app whose data is here."""
    from legacy_lstm import essentials, fables, imdb, ptb, ptb_thomas, stocktwits
    found, notes = {}, []
    data_dir = download.default_data_dir()
    try:
        st_path = download.locate(download.STOCKTWITS, data_dir)
        found["stocktwits"] = lambda d, log, max_epochs: stocktwits.train(
            st_path, d, "test", split_seed=3, seed=SEED, max_epochs=max_epochs, log=log)
        found["stocktwits_block"] = lambda d, log, max_epochs: stocktwits.train(
            st_path, d, "test", split_seed=3, seed=SEED, max_epochs=max_epochs, cell="block", log=log)
    except (FileNotFoundError, OSError) as err:
        notes.append(f"stocktwits left out: {err}")
    corpus = _ptb_corpus(tmp)
    tiny = dataclasses.replace(ptb.PRESETS["small"], hidden_size=8, num_steps=5, batch_size=4, epochs=2,
                               vocab_size=50)
    found["ptb"] = lambda d, log, max_epochs: ptb.train(corpus, d, tiny, seed=SEED, max_epochs=max_epochs, log=log)
    thomas = dataclasses.replace(ptb_thomas.PRESETS["thomas"], hidden_size=8, num_steps=5, batch_size=4, epochs=2,
                                 vocab_size=50, test_epoch=1, print_iter=20)
    found["ptb_thomas"] = lambda d, log, max_epochs: ptb_thomas.train(corpus, d, thomas, seed=SEED,
                                                                      max_epochs=max_epochs, log=log)
    text = tmp / "fable.txt"
    text.write_text("the mice held a council , and the old mouse said that a bell round the neck of the cat "
                    "would warn them when she came near . the cat , said the old mouse , is near . \n")
    fables_config = fables.Config(n_hidden=16, training_iters=400, display_step=200)
    found["fables"] = lambda d, log, max_epochs: fables.train(text, d, fables_config, seed=SEED,
                                                              max_epochs=max_epochs, log=log)
    # the loop of num_iterations (the shipped single step would leave nothing to resume)
    loop = getattr(essentials, "LOOP", essentials.Quirks(single_step=False))
    found["essentials"] = lambda d, log, max_epochs: essentials.train(d, "test", loop, seed=SEED,
                                                                      max_epochs=max_epochs, log=log)
    try:
        paths = imdb.locate_data(data_dir, "raw")
        found["imdb"] = lambda d, log, max_epochs: imdb.train(paths, d, "test", seed=SEED, max_epochs=max_epochs,
                                                              export=False, log=log, cache_dir=tmp / "imdb-cache")
    except (FileNotFoundError, OSError) as err:
        notes.append(f"imdb left out: {err}")
    return found, notes


def record(out, only=None):
    doc = {"apps": {}, "notes": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        found, doc["notes"] = apps(tmp)
        for name, train in found.items():
            if only and name not in only:
                continue
            print(f"{name} ...", flush=True)
            doc["apps"][name] = {"straight": _record(train, tmp / f"{name}-straight"),
                                 "resumed": _record(train, tmp / f"{name}-resumed", resume_after=1)}
    pathlib.Path(out).write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {out}: {', '.join(doc['apps'])}" + "".join(f"\nnote: {n}" for n in doc["notes"]))


def compare(a, b):
    a, b = (json.loads(pathlib.Path(p).read_text()) for p in (a, b))
    problems = []
    for name in sorted(set(a["apps"]) | set(b["apps"])):
        if name not in a["apps"] or name not in b["apps"]:
            problems.append(f"{name}: recorded in only one")
            continue
        for how in ("straight", "resumed"):
            for part in ("curve", "log", "weights", "result"):
                x, y = a["apps"][name][how][part], b["apps"][name][how][part]
                if part == "result":  # a record made before a field was ignored may still hold it
                    x, y = ({k: v for k, v in r.items() if k not in IGNORED} for r in (x, y))
                if x != y:
                    problems.append(f"{name} ({how}): {part} differs")
                    if part == "log":
                        diff = [(i, p, q) for i, (p, q) in enumerate(zip(x, y)) if p != q][:3]
                        problems.extend(f"    line {i}: {p!r} -> {q!r}" for i, p, q in diff)
                        if len(x) != len(y):
                            problems.append(f"    {len(x)} lines -> {len(y)} lines")
    for p in problems:
        print(p)
    print("identical" if not problems else f"{len(problems)} difference(s)")
    return 1 if problems else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out")
    rec.add_argument("--only", nargs="*")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("a")
    cmp_.add_argument("b")
    args = parser.parse_args()
    if args.command == "record":
        record(args.out, args.only)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
