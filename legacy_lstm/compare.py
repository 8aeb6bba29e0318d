r"""Compare a training run or log with a reference: the published numbers, a committed result, or another run.

Regression testing against logged curves, in one command: does this run (ours, yours, a port of the original
TF1 code) still follow the reference? Nothing here imports TensorFlow; the rule is the one every result of this
project is judged by, ``legacy_lstm.published.compare`` / ``within_band``.

Usage::

    python -m legacy_lstm.compare checkpoints/stocktwits/hoffman          # a run directory vs the published curve
    python -m legacy_lstm.compare results/ptb-small.json                  # a committed result vs the published numbers
    python -m legacy_lstm.compare train.log --app=stocktwits              # a raw log (the app is recognised anyway)
    python -m legacy_lstm.compare published:stocktwits                    # the notebook's own 50 epoch lines
    python -m legacy_lstm.compare my_run/ --against=results/stocktwits.json
    python -m legacy_lstm.compare new.log --against=old.log --tolerance=val_acc=0.01,test_acc=0.02
    python -m legacy_lstm.stocktwits --preset=test | python -m legacy_lstm.compare - --format=json

Input (ours), one of
    - a run directory (``manifest.json`` + ``curve.json``/``curve.csv``; test metrics from ``report.json``
      where the app writes one: ptb, ptb_thomas, fables);
    - a curve file as the apps write them (``curve.csv``, ``curve.json``; the manifest beside it, if any, names
      the app), a results document (``results/<name>.json``) or a golden curve (``tests/golden/*.json``);
    - a raw log (a file, or ``-`` for standard input) in the original tutorial's own format, which our apps
      print too: Hoffman's ``Epoch: 1/50... Batch: 303/303... Train Loss: ... Train Accuracy: ... Val
      Accuracy: ...`` (also the notebook's "Train Accruacy") and ``Test Accuracy: ...``; the official PTB's
      ``Epoch: 1 Learning rate: ...``, ``Epoch: 1 Train Perplexity: ...``, ``Epoch: 1 Valid Perplexity: ...``,
      ``Test Perplexity: ...``; Thomas's ``Epoch 0, Step 50, cost: ..., accuracy: ...`` and ``Average accuracy:
      ...``; Atienza's ``Iter= 1000, Average Loss= ..., Average Accuracy= ...%``; Keras ``fit``/``evaluate``
      (``Epoch 1/5``, then ``... - loss: ... - accuracy: ... - val_loss: ... - val_accuracy: ...``, progress
      bars and all; ``Test accuracy: ...``) and essentials' ``Iteration 100/1000... Loss: ...`` lines;
    - ``published:<app>[/<preset>]``: the original's own printed lines shipped in ``legacy_lstm/published/``
      (``published.log_lines``; StockTwits' 50 epochs, Atienza's Listing 8, Thomas's logged lines).

The app and preset come from ``--app``/``--preset``, else from the manifest or results document, else from the
log: its format names the app, and a count it prints (``Epoch: 1/50``, ``Epoch 1/10``, ``Iteration 100/200``),
PTB's learning-rate schedule or a complete log's length names the preset; when nothing does, the app's default
preset is assumed and the output says so. A log in which no line has a known format is an error (exit 2); lines
that start like a known line but do not parse (a log cut off mid-line, garbled text) are skipped with a warning.

Reference (``--against``)
    ``published`` (default): the published curve and final numbers with their bands, and one-sided targets
    (``legacy_lstm/published/<app>.json``); a committed result (``results/<name>.json``), another run directory,
    curve or log: its curve and final numbers, each column within ``--tolerance`` (``col=value,...``; ``*=value``
    for every other column), else within the published band of that column, else shown but not judged.

Rows are matched on ``epoch`` (fables and essentials: ``iteration``; Thomas's step lines: ``display``,
``<0-based epoch>:<step>``). Output: per compared column a table (ours, reference, difference, within or
OUTSIDE its band), the largest deviation per column, the final numbers and targets, and a verdict:

    ================  ===========  =============================================================
    verdict           exit status  meaning
    ================  ===========  =============================================================
    within            0            every judged value within its band, nothing pending
    within so far     0            as within, but the reference has rows or final numbers ours has
                                   not reached yet (a partial run, a short regression run)
    outside           1            some judged value outside its band, or a target not met
    nothing compared  1            no value had a band to be judged by: not a pass
    (unreadable)      2            the input or reference cannot be read, or no format matched
    ================  ===========  =============================================================

``--format=json`` prints the same as one JSON document (``to_dict``).

For pytest users: ``assert_within`` has the same semantics, raising AssertionError with the text report::

    from legacy_lstm.compare import assert_within

    def test_my_port_follows_hoffman(tmp_path):
        log = tmp_path / "train.log"
        log.write_text(run_my_port())                       # prints "Epoch: 1/50... Val Accuracy: ..." lines
        assert_within(log, app="stocktwits")                # vs the published curve (val_acc ± 0.03)
        assert_within(log, against="results/stocktwits.json", tolerance={"val_acc": 0.02})
"""

import csv
import dataclasses
import json
import os
import math
import pathlib
import re
import sys

from absl import app as absl_app
from absl import flags

from legacy_lstm import cli, published

APPS = ("stocktwits", "ptb", "ptb_thomas", "fables", "essentials", "imdb")
DEFAULT_PRESET = {"stocktwits": "hoffman", "ptb": "small", "ptb_thomas": "thomas", "fables": "blog",
                  "essentials": "book", "imdb": "lstm"}
# the count a preset runs to (epochs; fables and essentials: iterations) -> preset, to recognise it from a log;
# tests/test_compare.py checks these against the apps' PRESETS
TOTALS = {"stocktwits": {50: "hoffman", 2: "test"}, "imdb": {5: "lstm", 10: "l2", 2: "test"},
          "ptb": {13: "small", 39: "medium", 55: "large", 1: "test"}, "ptb_thomas": {60: "thomas", 2: "test"},
          "fables": {50000: "blog", 2000: "test"}, "essentials": {1000: "book", 200: "test"}}
# the official PTB presets' first decayed epoch (1-based) and its learning rate
PTB_DECAY = {"small": (5, 0.5), "medium": (7, 0.8), "large": (15, 1 / 1.15)}
ITERATION_APPS = ("fables", "essentials")
# columns that are bookkeeping, not metrics: never compared
NOT_METRICS = frozenset({"epoch", "iteration", "display", "epoch0based", "step", "steps", "seconds",
                         "train_seconds", "seconds_per_train_step", "eval_after_batch", "best_epoch"})
# final metrics read from a complete curve's last row (the test metrics need the app's test mode)
FINAL_FROM_CURVE = {"stocktwits": ("val_acc",), "ptb": ("train_perplexity", "valid_perplexity"),
                    "fables": ("average_accuracy",), "imdb": ("val_accuracy", "val_loss"),
                    "essentials": ("accuracy",), "ptb_thomas": ()}
EXIT = {"within": 0, "within so far": 0, "outside": 1, "nothing compared": 1}

APP = flags.DEFINE_enum("app", None, list(APPS), "The app the input is a run or log of (default: recognised from "
                        "the manifest, results document or log).")
AGAINST = flags.DEFINE_string("against", "published", "Reference: `published` (the published numbers and bands), "
                              "`published:<app>[/<preset>]`, or a results JSON, run directory, curve file or log.")
TOLERANCE = flags.DEFINE_string("tolerance", None, "Allowed absolute difference per column or final metric, "
                                "`col=value,...` (`*=value`: every other column); default: the published band.")
FORMAT = flags.DEFINE_enum("format", "text", ["text", "json"], "Output: a text report or one JSON document.")
flags.declare_key_flag("preset")


class UnreadableError(ValueError):
    """The input or reference cannot be read, or no line of a log has a known format (exit status 2)."""


# ---------------------------------------------------------------------------------------------------------
# What is compared: a curve and final numbers, with where they came from
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Source:
    label: str                 # the path, "-", or published:<app>/<preset>
    kind: str                  # run directory | curve | results | log | published log
    app: str
    preset: str
    preset_from: str           # how the preset was found
    curve: list                # rows with the key column and numeric metrics
    final: dict                # metric -> number
    key: str = "epoch"
    complete: bool = None      # the run reached its preset's end (None: unknown)
    log_format: str = None
    warnings: list = dataclasses.field(default_factory=list)
    lines: list = dataclasses.field(default_factory=list)  # a published log's lines

    def describe(self):
        done = "" if self.complete is None else (", complete" if self.complete else ", not complete")
        fmt = f", {self.log_format} format" if self.log_format else ""
        return (f"{self.label} ({self.kind}{fmt}; {self.app}, preset {self.preset} ({self.preset_from}); "
                f"{len(self.curve)} rows{done})")


_NUM = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf))"


def _num(text):
    return float(text)


def _numeric_rows(rows, key):
    """Rows keeping the key and the numeric metric columns only (bools and text such as fables' samples out)."""
    out = []
    for row in rows:
        if key not in row:
            continue
        kept = {key: row[key]}
        for col, value in row.items():
            if col not in NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
                kept[col] = value
        out.append(kept)
    return out


# ---------------------------------------------------------------------------------------------------------
# Log formats: one parser per original; each returns a _Parsed or None when no line matched
# ---------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Parsed:
    app: str
    fmt: str
    rows: dict                 # key -> row
    final: dict
    matched: int
    warnings: list
    total: int = None          # the count the log prints (epochs, iterations)
    finished: bool = False     # an end-of-training marker (a test line, "Optimization Finished!")
    key: str = "epoch"


class _Collector:
    def __init__(self, app, fmt, key="epoch"):
        self.parsed = _Parsed(app, fmt, {}, {}, 0, [], key=key)

    def row(self, number, key_value, values):
        rows = self.parsed.rows
        if key_value in rows and any(rows[key_value].get(k) != v for k, v in values.items() if k in rows[key_value]):
            self.parsed.warnings.append(f"line {number}: {self.parsed.key} {key_value} appears again with other "
                                        "numbers; the later line is used")
        rows.setdefault(key_value, {self.parsed.key: key_value}).update(values)
        self.parsed.matched += 1

    def final(self, name, value):
        self.parsed.final[name] = value
        self.parsed.matched += 1

    def garbled(self, number, line):
        shown = line if len(line) <= 100 else line[:97] + "..."
        self.parsed.warnings.append(f"line {number}: starts like a {self.parsed.fmt} line but does not parse "
                                    f"(cut off or garbled), skipped: {shown!r}")

    def result(self):
        return self.parsed if self.parsed.matched else None


_HOFFMAN = re.compile(r"Epoch:\s*(\d+)/(\d+)\.\.\.\s*Batch:\s*(\d+)/(\d+)\.\.\.\s*Train Loss:\s*" + _NUM +
                      r"\.\.\.\s*Train Acc(?:uracy|ruacy):\s*" + _NUM + r"\.\.\.\s*Val Accuracy:\s*" + _NUM +
                      r"(?:\s|$)", re.I)
_HOFFMAN_START = re.compile(r"Epoch:\s*\d+/\d+\.\.\.", re.I)
_HOFFMAN_TEST = re.compile(r"^\s*Test Accuracy:\s*" + _NUM + r"\s*$", re.I)


def parse_hoffman(lines):
    """Hoffman's StockTwits notebook (and legacy_lstm.stocktwits): one line per epoch, then the test."""
    c = _Collector("stocktwits", "Hoffman (StockTwits)")
    for number, line in lines:
        m = _HOFFMAN.search(line)
        if m:
            c.parsed.total = int(m.group(2))
            c.row(number, int(m.group(1)), {"train_loss": _num(m.group(5)), "train_acc": _num(m.group(6)),
                                            "val_acc": _num(m.group(7))})
        elif _HOFFMAN_START.search(line):
            c.garbled(number, line)
        elif m := _HOFFMAN_TEST.search(line):
            c.final("test_acc", _num(m.group(1)))
            c.parsed.finished = True
    return c.result()


_PTB = re.compile(r"Epoch:\s*(\d+)\s+(Learning rate|Train Perplexity|Valid Perplexity):\s*" + _NUM + r"\s*$", re.I)
_PTB_START = re.compile(r"Epoch:\s*\d+\s+(Learning|Train|Valid)\b", re.I)
_PTB_TEST = re.compile(r"^\s*Test Perplexity:\s*" + _NUM + r"\s*$", re.I)
_PTB_COLUMNS = {"learning rate": "learning_rate", "train perplexity": "train_perplexity",
                "valid perplexity": "valid_perplexity"}


def parse_ptb(lines):
    """The official ptb_word_lm (and legacy_lstm.ptb): three lines per epoch, then the test perplexity."""
    c = _Collector("ptb", "official PTB")
    for number, line in lines:
        m = _PTB.search(line)
        if m:
            c.row(number, int(m.group(1)), {_PTB_COLUMNS[m.group(2).lower()]: _num(m.group(3))})
        elif _PTB_START.search(line):
            c.garbled(number, line)
        elif m := _PTB_TEST.search(line):
            c.final("test_perplexity", _num(m.group(1)))
            c.parsed.finished = True
    return c.result()


_THOMAS = re.compile(r"Epoch\s+(\d+),\s*Step\s+(\d+),\s*cost:\s*" + _NUM + r",\s*accuracy:\s*" + _NUM +
                     r"(?:,|\s*$)", re.I)
_THOMAS_START = re.compile(r"Epoch\s+\d+,\s*Step\b", re.I)
_THOMAS_TEST = re.compile(r"^\s*Average accuracy:\s*" + _NUM + r"\s*$", re.I)


def parse_thomas(lines):
    """Andy Thomas's lstm_tutorial.py (and legacy_lstm.ptb_thomas): a line every 50 steps, then the test's
    "Average accuracy". Rows are displays, keyed ``<0-based epoch>:<step>``."""
    c = _Collector("ptb_thomas", "Thomas (PTB)", key="display")
    for number, line in lines:
        m = _THOMAS.search(line)
        if m:
            epoch0, step = int(m.group(1)), int(m.group(2))
            c.row(number, f"{epoch0}:{step}", {"epoch0based": epoch0, "step": step, "cost": _num(m.group(3)),
                                               "accuracy": _num(m.group(4))})
            c.parsed.total = None
        elif _THOMAS_START.search(line):
            c.garbled(number, line)
        elif m := _THOMAS_TEST.search(line):
            c.final("test_accuracy", _num(m.group(1)))
            c.parsed.finished = True
    return c.result()


_ATIENZA = re.compile(r"Iter=\s*(\d+),\s*Average Loss=\s*" + _NUM + r",\s*Average Accuracy=\s*" + _NUM + r"%", re.I)
_ATIENZA_START = re.compile(r"Iter=\s*\d", re.I)


def parse_atienza(lines):
    """Atienza's rnn_words.py (and legacy_lstm.fables): a line per display of iterations (accuracy in percent,
    kept here as a fraction), the sample line after it, "Optimization Finished!" at the end."""
    c = _Collector("fables", "Atienza (fables)", key="iteration")
    for number, line in lines:
        m = _ATIENZA.search(line)
        if m:
            c.row(number, int(m.group(1)), {"average_loss": _num(m.group(2)),
                                            "average_accuracy": _num(m.group(3)) / 100})
        elif _ATIENZA_START.search(line):
            c.garbled(number, line)
        elif "Optimization Finished!" in line and c.parsed.rows:
            c.parsed.finished = True
    return c.result()


_ESSENTIALS = re.compile(r"Iteration\s+(\d+)/(\d+)\.\.\.\s*Loss:\s*" + _NUM + r"\.\.\.\s*Train Accuracy:\s*" + _NUM +
                         r"\.\.\.\s*Accuracy:\s*" + _NUM + r"\s*$", re.I)
_ESSENTIALS_START = re.compile(r"Iteration\s+\d+/\d+\.\.\.", re.I)
_ESSENTIALS_TEST = re.compile(r"^\s*Accuracy on the \d+ [^:]*:\s*" + _NUM + r"\s*$", re.I)


def parse_essentials(lines):
    """legacy_lstm.essentials (the book printed nothing): a line per block of iterations, then the accuracy."""
    c = _Collector("essentials", "essentials", key="iteration")
    for number, line in lines:
        m = _ESSENTIALS.search(line)
        if m:
            c.parsed.total = int(m.group(2))
            c.row(number, int(m.group(1)), {"loss": _num(m.group(3)), "train_accuracy": _num(m.group(4)),
                                            "accuracy": _num(m.group(5))})
        elif _ESSENTIALS_START.search(line):
            c.garbled(number, line)
        elif m := _ESSENTIALS_TEST.search(line):
            c.final("accuracy", _num(m.group(1)))
            c.parsed.finished = True
    return c.result()


_KERAS_EPOCH = re.compile(r"(?:^|\s)Epoch\s+(\d+)/(\d+)\b")
_KERAS_METRIC = re.compile(r"\b(val_)?(loss|accuracy|acc):\s*" + _NUM)
_KERAS_COUNTER = re.compile(r"(\d+)/(\d+)")
_KERAS_TEST = re.compile(r"\btest[ _](loss|accuracy|acc)\s*[:=]\s*" + _NUM, re.I)


def parse_keras(lines):
    """Keras ``fit`` (``Epoch 1/5`` then the progress bar's lines, the last one with val_ metrics) and
    ``evaluate``, with the tutorial's ``Test accuracy:`` print; legacy_lstm.imdb prints both on one line."""
    c = _Collector("imdb", "Keras")
    epoch, done = None, set()
    for number, line in lines:
        m = _KERAS_EPOCH.search(line)
        rest = line
        if m:
            epoch, c.parsed.total = int(m.group(1)), int(m.group(2))
            rest = line[m.end():]
        if m_test := _KERAS_TEST.search(line):
            name = "test_loss" if m_test.group(1).lower() == "loss" else "test_acc"
            c.final(name, _num(m_test.group(2)))
            c.parsed.finished = True
            continue
        metrics = _KERAS_METRIC.findall(rest)
        if epoch is None or epoch in done or not any(name == "loss" for _, name, _ in metrics):
            if m and not metrics and rest.strip(" -") and "loss" in rest:
                c.garbled(number, line)
            continue
        before = rest[:rest.find("loss")]
        counter = _KERAS_COUNTER.search(before)
        if counter and counter.group(1) != counter.group(2):
            continue  # a progress line inside the epoch
        values = {("val_" if val else "") + ("accuracy" if name == "acc" else name): _num(v)
                  for val, name, v in metrics}
        c.row(number, epoch, values)
        if any(k.startswith("val_") for k in values):
            done.add(epoch)  # later lines before the next epoch are evaluate()'s
    return c.result()


PARSERS = (parse_hoffman, parse_ptb, parse_thomas, parse_atienza, parse_essentials, parse_keras)


def _split_lines(text):
    """(1-based line number, line) of a log; a progress bar's \r and \b redraws count as separate lines."""
    out = []
    for number, line in enumerate(text.split("\n"), 1):
        for part in re.split(r"[\r\x08]+", line):
            if part.strip():
                out.append((number, part))
    return out


def parse_log(text, app=None):
    """The ``_Parsed`` of the known format with the most matching lines (of ``app``'s formats when given);
    UnreadableError when no line matches."""
    if "\x00" in text:
        raise UnreadableError("not a text log (it holds NUL bytes)")
    lines = _split_lines(text)
    candidates = [p for p in (parser(lines) for parser in PARSERS) if p is not None and (app is None or p.app == app)]
    if not candidates:
        expected = "any known format" if app is None else f"the format of {app}"
        raise UnreadableError(
            f"no line matches {expected} (looked for Hoffman's 'Epoch: 1/50... Batch: ...', PTB's 'Epoch: 1 "
            "Train Perplexity: ...', Thomas's 'Epoch 0, Step 50, cost: ...', Atienza's 'Iter= 1000, Average "
            "Loss= ...', Keras's 'Epoch 1/5' + '- loss: ...', essentials' 'Iteration 100/1000... Loss: ...')")
    best = max(candidates, key=lambda p: p.matched)
    if not best.rows and not best.final:
        raise UnreadableError(f"no complete {best.fmt} line")
    return best


# ---------------------------------------------------------------------------------------------------------
# Reading an input
# ---------------------------------------------------------------------------------------------------------
def _preset_from_log(parsed, preset):
    """(preset, how it was found) of a parsed log."""
    if preset:
        return preset, "--preset"
    totals = TOTALS.get(parsed.app, {})
    keys = sorted(parsed.rows)
    if parsed.total in totals:
        return totals[parsed.total], f"the log's count of {parsed.total}"
    if parsed.app == "ptb":
        for name, (epoch, lr) in PTB_DECAY.items():
            row = parsed.rows.get(epoch, {})
            if "learning_rate" in row and abs(row["learning_rate"] - lr) < 5e-4 and \
                    all(parsed.rows.get(e, {}).get("learning_rate", 1.0) == 1.0 for e in range(1, epoch)):
                return name, f"the learning rate {lr:.3f} from epoch {epoch}"
        if parsed.finished and keys and keys[-1] in totals:
            return totals[keys[-1]], f"a complete log of {keys[-1]} epochs"
    if parsed.app == "fables" and len(keys) >= 2 and keys[1] - keys[0] == 200:
        return "test", "displays every 200 iterations"
    return DEFAULT_PRESET[parsed.app], "assumed: the app's default; pass --preset"


def _log_complete(parsed, preset):
    if parsed.app == "ptb":
        return parsed.finished
    totals = {p: t for t, p in TOTALS.get(parsed.app, {}).items()}
    if parsed.app == "fables" and preset == "improved":
        totals["improved"] = 50000
    if parsed.app == "ptb_thomas":
        return parsed.finished
    keys = sorted(parsed.rows)
    if not keys or preset not in totals:
        return parsed.finished or None
    return keys[-1] == totals[preset]


def source_from_log(text, label, app=None, preset=None, kind="log"):
    parsed = parse_log(text, app)
    preset, preset_from = _preset_from_log(parsed, preset)
    rows = [parsed.rows[k] for k in sorted(parsed.rows, key=_display_order)]
    complete = _log_complete(parsed, preset)
    final = dict(parsed.final)
    if complete and rows:
        final.update({m: rows[-1][m] for m in FINAL_FROM_CURVE[parsed.app] if m in rows[-1] and m not in final})
    return Source(label, kind, parsed.app, preset, preset_from, _numeric_rows(rows, parsed.key), final,
                  key=parsed.key, complete=complete, log_format=parsed.fmt, warnings=parsed.warnings)


def _display_order(key):
    if isinstance(key, str) and ":" in key:
        return tuple(int(x) for x in key.split(":"))
    return (key,) if isinstance(key, int) else (0, key)


def _app_of(app, preset):
    """The module app of a document's (app, preset): ptb's preset thomas is the app ptb_thomas."""
    return "ptb_thomas" if (app, preset) == ("ptb", "thomas") else app


def _app_from_columns(columns):
    for app, needed in (("ptb", {"train_perplexity", "valid_perplexity"}), ("ptb_thomas", {"cost"}),
                        ("stocktwits", {"train_loss", "train_acc", "val_acc"}),
                        ("fables", {"average_loss", "average_accuracy"}), ("imdb", {"loss", "val_loss"}),
                        ("essentials", {"iteration", "loss", "train_accuracy", "accuracy"})):
        if needed <= columns:
            return app
    return None


def _rows_total(manifest):
    """Curve rows of a complete run, from a manifest's config (None: unknown)."""
    config = manifest.get("config") or {}
    if (manifest.get("quirks") or {}).get("single_step"):
        return 1
    if "epochs" in config:
        return config["epochs"]
    for total, per in (("training_iters", "display_step"), ("num_iterations", "log_every")):
        if total in config and per in config:
            return config[total] // config[per]
    return None


def _read_json(path):
    try:
        return json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UnreadableError(f"cannot read {path}: {err}") from err


def _read_curve_csv(path):
    def value(text):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return {"True": True, "False": False}.get(text, text)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [{k: value(v) for k, v in row.items() if k and v not in ("", None)} for row in csv.DictReader(f)]
    except (OSError, ValueError, csv.Error) as err:
        raise UnreadableError(f"cannot read {path}: {err}") from err
    if not rows or any("epoch" not in row for row in rows):
        raise UnreadableError(f"{path} is not a curve (a CSV with an epoch column, as the apps write)")
    return rows


def _from_curve(label, kind, rows, manifest, app, preset, final=None, preset_from=None):
    columns = {k for row in rows for k in row}
    found = _app_of(manifest.get("app"), manifest.get("preset")) if manifest.get("app") else None
    found = found or _app_from_columns(columns)
    if app and found and app != found:
        raise UnreadableError(f"{label} holds a run of {found}, not of {app}")
    app = app or found
    if app is None:
        raise UnreadableError(f"{label}: cannot tell which app its columns ({', '.join(sorted(columns))}) are "
                              "of; pass --app")
    if preset and manifest.get("preset") and _app_of(manifest.get("app"), preset) == app \
            and preset != manifest["preset"] and not (app == "ptb_thomas" and preset == "thomas"):
        raise UnreadableError(f"{label} is a run of preset {manifest['preset']}, not {preset}")
    if preset:
        preset_from = preset_from or "--preset"
    elif manifest.get("preset"):
        preset, preset_from = manifest["preset"], preset_from or "the manifest"
    else:
        preset, preset_from = DEFAULT_PRESET[app], "assumed: the app's default; pass --preset"
    key = "iteration" if app in ITERATION_APPS else "epoch"
    total = _rows_total(manifest) if manifest else None
    complete = None if total is None else len(rows) == total
    final = {k: v for k, v in (final or {}).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)} if final is not None else {}
    if complete and rows:
        final.update({m: rows[-1][m] for m in FINAL_FROM_CURVE[app] if m in rows[-1] and m not in final})
    return Source(label, kind, app, preset, preset_from, _numeric_rows(rows, key), final, key=key,
                  complete=complete)


def _report_finals(app, report):
    """Test metrics of a run directory's report.json (ptb, ptb_thomas, fables write one in test mode)."""
    if app == "ptb_thomas":
        return {"test_accuracy": report.get("thomas_accuracy")}
    if app == "ptb":
        return {"test_perplexity": report.get("test_perplexity")}
    if app == "fables":
        return {"text_accuracy": report.get("text_accuracy")}
    return {}


def load(path, app=None, preset=None):
    """The ``Source`` of an input (see the module docstring): a run directory, a curve or results file, a log
    file, ``-`` (standard input) or ``published:<app>[/<preset>]``. UnreadableError when it cannot be read."""
    label = str(path)
    if label.startswith("published:"):
        return load_published_log(label, app, preset)
    if label == "-":
        return source_from_log(sys.stdin.read(), "-", app, preset)
    path = pathlib.Path(path)
    if path.is_dir():
        manifest_path = path / "manifest.json"
        if not manifest_path.exists():
            raise UnreadableError(f"{path} is not a run directory (no manifest.json)")
        manifest = _read_json(manifest_path)
        if (path / "curve.json").exists():
            rows = _read_json(path / "curve.json")
        elif (path / "curve.csv").exists():
            rows = _read_curve_csv(path / "curve.csv")
        else:
            raise UnreadableError(f"{path} has no curve.json or curve.csv: no epoch finished yet")
        found = _app_of(manifest.get("app"), manifest.get("preset"))
        report = _read_json(path / "report.json") if (path / "report.json").exists() else {}
        finals = {k: v for k, v in _report_finals(found, report).items() if v is not None}
        return _from_curve(label, "run directory", rows, manifest, app, preset, finals)
    if not path.is_file():
        raise UnreadableError(f"{path}: no such file or directory")
    beside = path.parent / "manifest.json"
    if path.suffix == ".csv":
        return _from_curve(label, "curve", _read_curve_csv(path), _read_json(beside) if beside.exists() else {},
                           app, preset)
    if path.suffix == ".json":
        doc = _read_json(path)
        if isinstance(doc, list):
            if not all(isinstance(r, dict) and "epoch" in r for r in doc):
                raise UnreadableError(f"{path} is not a curve (a list of rows with an epoch)")
            return _from_curve(label, "curve", doc, _read_json(beside) if beside.exists() else {}, app, preset)
        if isinstance(doc, dict) and isinstance(doc.get("curve"), list):
            meta = {"app": doc.get("app"), "preset": doc.get("preset"), "config": doc.get("config") or {}}
            src = _from_curve(label, "results" if "final" in doc else "curve", doc["curve"], meta, app, preset,
                              doc.get("final"), None if preset else "the document")
            if "complete" in doc:
                src.complete = bool(doc["complete"])
            return src
        raise UnreadableError(f"{path} is neither a curve nor a results document (no 'curve' list)")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UnreadableError(f"cannot read {path}: {err}") from err
    return source_from_log(data.decode("utf-8", "replace"), label, app, preset)


def _published_target(label, app, preset):
    spec = label.split(":", 1)[1]
    name, _, given = spec.partition("/")
    if name not in APPS:
        raise UnreadableError(f"{label}: {name!r} is not one of {', '.join(APPS)}")
    if app and app != name:
        raise UnreadableError(f"{label} is of {name}, not of --app={app}")
    return name, given or preset or DEFAULT_PRESET[name]


def load_published_log(label, app=None, preset=None):
    """The original's own printed log shipped in legacy_lstm/published/, parsed like any log."""
    name, preset = _published_target(label, app, preset)
    lines = published.log_lines(published.reference(name, preset))
    if not lines:
        raise UnreadableError(f"legacy_lstm/published/ holds no printed log of {name} preset {preset} (published "
                              "logs: stocktwits, fables/blog, ptb_thomas)")
    src = source_from_log("\n".join(lines) + "\n", f"published:{name}/{preset}", name, preset, "published log")
    src.preset_from, src.lines = "given", lines
    return src


# ---------------------------------------------------------------------------------------------------------
# The comparison
# ---------------------------------------------------------------------------------------------------------
def parse_tolerance(text):
    """``"val_acc=0.01,*=0.02"`` -> {"val_acc": 0.01, "*": 0.02}; a dict passes through. ValueError if garbled."""
    if text is None or isinstance(text, dict):
        return dict(text or {})
    out = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        col, sep, value = item.partition("=")
        try:
            out[col.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not col.strip() or out[col.strip()] < 0:
            raise ValueError(f"--tolerance: {item!r} is not column=value (a number >= 0)")
    return out


@dataclasses.dataclass
class Result:
    ours: Source
    against: str               # description of the reference
    reference: dict            # the document compared with (curve, final, bands)
    comparison: published.Comparison
    targets: dict
    verdict: str
    notes: list

    @property
    def exit_status(self):
        return EXIT[self.verdict]

    @property
    def within(self):
        return self.exit_status == 0

    def to_dict(self):
        cmp, key = self.comparison, self.ours.key
        bands = self.reference["bands"]
        columns = {}
        for col, (at, diff) in cmp.max_deviation.items():
            band = bands["curve"].get(col)
            rows = [{key: e["epoch"], "ours": e[col], "reference": e[f"{col}_published"], "diff": e[f"{col}_diff"],
                     "within": None if band is None else published.within_band(e[f"{col}_diff"], band)}
                    for e in cmp.per_epoch if col in e]
            columns[col] = {"band": band, "within": None if band is None else cmp.curve_within.get(col),
                            "largest_deviation": {key: at, "diff": diff}, "rows": rows}
        return {"ours": {"input": self.ours.label, "kind": self.ours.kind, "app": self.ours.app,
                         "preset": self.ours.preset, "preset_from": self.ours.preset_from,
                         "log_format": self.ours.log_format, "rows": len(self.ours.curve),
                         "complete": self.ours.complete},
                "against": self.against, "key": key, "rows_compared": cmp.epochs_compared,
                "rows_in_reference": cmp.epochs_published, "columns": columns, "final": cmp.final,
                "targets": self.targets, "warnings": self.ours.warnings, "notes": self.notes,
                "verdict": self.verdict, "exit_status": self.exit_status}

    def report(self):
        """The text report: per compared column a table, the largest deviations, finals, targets, verdict."""
        cmp, key = self.comparison, self.ours.key
        out = [f"ours:      {self.ours.describe()}", f"reference: {self.against}"]
        if self.ours.lines:
            out += ["", "the original's printed log (legacy_lstm/published/):"] + [f"  {x}" for x in self.ours.lines]
        bands = self.reference["bands"]
        for col in sorted(cmp.max_deviation, key=lambda c: bands["curve"].get(c) is None):  # judged ones first
            band = bands["curve"].get(col)
            out += ["", f"{col} ({'band ± ' + _fmt(band) if band is not None else 'no band: shown, not judged'})",
                    f"  {key:>10} {'ours':>11} {'reference':>11} {'diff':>11}"]
            for e in (e for e in cmp.per_epoch if col in e):
                diff = e[f"{col}_diff"]
                verdict = "" if band is None else ("within" if published.within_band(diff, band) else "OUTSIDE")
                out.append(f"  {e['epoch']!s:>10} {_fmt(e[col]):>11} {_fmt(e[f'{col}_published']):>11} "
                           f"{_fmt(diff, sign=True):>11}  {verdict}")
        if cmp.max_deviation:
            out += ["", "largest deviation per column:"]
            for col, (at, diff) in cmp.max_deviation.items():
                within = cmp.curve_within.get(col) if bands["curve"].get(col) is not None else None
                judged = {None: "not judged", True: "all within the band", False: "NOT all within the band"}[within]
                out.append(f"  {col}: {_fmt(diff, sign=True)} at {key} {at}; {judged}")
        if cmp.final:
            out += ["", "final:"]
            for name, f in cmp.final.items():
                if f["ours"] is None:
                    out.append(f"  {name}: ours not measured yet; reference {_fmt(f['published'])} ± {_fmt(f['band'])}")
                    continue
                out.append(f"  {name}: ours {_fmt(f['ours'])}, reference {_fmt(f['published'])}, diff "
                           f"{_fmt(f['diff'], sign=True)}, band ± {_fmt(f['band'])}: "
                           f"{'within' if f['within'] else 'OUTSIDE'}")
        if self.targets:
            out += ["", "targets (one-sided):"]
            for name, t in self.targets.items():
                bound = " and ".join(f"{'>=' if k == 'min' else '<='} {t[k]}" for k in ("min", "max")
                                     if t[k] is not None)
                state = "not measured yet" if t["met"] is None else ("met" if t["met"] else "NOT met")
                ours = "" if t["ours"] is None else f": ours {_fmt(t['ours'])}"
                out.append(f"  {name} {bound}{ours}: {state}")
        for warning in self.ours.warnings:
            out.append(f"warning: {warning}")
        out += [""] + [f"note: {n}" for n in self.notes]
        measured = sum(f["ours"] is not None for f in cmp.final.values())
        out.append(f"verdict: {self.verdict} ({cmp.epochs_compared} of {cmp.epochs_published} reference rows, "
                   f"{measured} of {len(cmp.final)} final numbers compared)")
        return "\n".join(out)


def _fmt(x, sign=False):
    if x is None:
        return "-"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    text = f"{x:+.4f}" if sign else f"{x:.4f}"
    return text if abs(x) < 1e5 else f"{x:.4g}"


def _reference_doc(curve, final, bands_curve, bands_final, key):
    """A document for ``published.compare``: numeric rows of ``curve`` that have ``key``, ``final`` numbers."""
    numbers = {k: v for k, v in (final or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"curve": _numeric_rows(curve, key), "final": numbers,
            "bands": {"curve": bands_curve, "final": bands_final}}


def _banded(columns, tolerance, published_bands):
    out = {}
    for col in columns:
        band = tolerance.get(col, tolerance.get("*", published_bands.get(col)))
        if band is not None:
            out[col] = band
    return out


def compare_sources(ours, against="published", tolerance=None):
    """Compare the ``Source`` ``ours`` with ``against`` (``published``, ``published:<app>[/<preset>]``, or a
    path ``load`` reads); a ``Result``."""
    tolerance = parse_tolerance(tolerance)
    notes = []
    against = "published" if against in (None, "") else str(against)
    if against == "published" or against.startswith("published:"):
        app, preset = (ours.app, ours.preset) if against == "published" else \
            _published_target(against, ours.app, ours.preset)
        ref = published.reference(app, preset)
        file = "ptb" if app == "ptb_thomas" else app
        label = f"published: legacy_lstm/published/{file}.json ({app}, preset {preset})"
        bands = ref.get("bands", {})
        curve_bands = dict(bands.get("curve", {}))
        final_bands = dict(bands.get("final", {}))
        for col, value in tolerance.items():  # --tolerance overrides a published band
            target = final_bands if col in ref.get("final", {}) else curve_bands
            if col != "*":
                target[col] = value
        doc = _reference_doc(ref.get("curve", []), ref.get("final", {}), curve_bands, final_bands, ours.key)
        targets = published.check_targets(ours.final, ref)
        if not doc["curve"] and not doc["final"] and not targets:
            notes.append(f"nothing is published for {app} preset {preset}: compare with a committed result or "
                         "another run (--against) and a --tolerance")
    else:
        other = load(against, ours.app, None)
        if other.app != ours.app:
            raise UnreadableError(f"cannot compare a run of {ours.app} with one of {other.app} ({against})")
        ref = published.reference(other.app, other.preset)
        bands = ref.get("bands", {})
        columns = {c for r in other.curve for c in r if c != other.key}
        doc = _reference_doc(other.curve, other.final,
                             _banded(columns, tolerance, bands.get("curve", {})),
                             _banded(other.final, tolerance, bands.get("final", {})), ours.key)
        label = f"{other.describe()}; tolerance: " + (", ".join(f"{k}={v}" for k, v in tolerance.items())
                                                       or "the published bands")
        targets = {}
        if other.key != ours.key:
            notes.append(f"ours is keyed on {ours.key}, the reference on {other.key}: only final numbers compare")
        if other.warnings:
            notes += [f"reference: {w}" for w in other.warnings]
    cmp = published.compare(ours.curve, ours.final, doc, key=ours.key)
    verdict = _verdict(cmp, doc, targets)
    if verdict == "nothing compared" and (cmp.final or targets):
        notes.append("the reference's final numbers are not measured in ours yet (a partial run?)")
    elif verdict == "nothing compared" and cmp.max_deviation:
        notes.append("no compared column has a band: give --tolerance=col=value (or *=value)")
    return Result(ours, label, doc, cmp, targets, verdict, notes)


def _verdict(cmp, doc, targets):
    judged = {col: cmp.curve_within[col] for col in cmp.max_deviation if doc["bands"]["curve"].get(col) is not None}
    measured = [f for f in cmp.final.values() if f["ours"] is not None]
    met = [t["met"] for t in targets.values() if t["met"] is not None]
    if not all(judged.values()) or any(not f["within"] for f in measured) or not all(met):
        return "outside"
    if not judged and not measured and not met:
        return "nothing compared"
    pending = (len(measured) < len(cmp.final) or len(met) < len(targets) or
               (judged and cmp.epochs_compared < cmp.epochs_published))
    return "within so far" if pending else "within"


def check(run_or_log, against="published", tolerance=None, app=None, preset=None):
    """``load`` + ``compare_sources``: the ``Result`` of the command line's comparison."""
    return compare_sources(load(run_or_log, app, preset), against, tolerance)


def assert_within(run_or_log, against=None, tolerance=None, app=None, preset=None):
    """Raise AssertionError (with the text report) unless ``run_or_log`` is within ``against`` (default: the
    published numbers): the command line's exit status 0 ("within" or "within so far"). ``tolerance``: a dict
    or ``"col=value,..."``. Returns the ``Result``. Unreadable input raises UnreadableError."""
    result = check(run_or_log, against or "published", tolerance, app, preset)
    if not result.within:
        raise AssertionError(f"{run_or_log}: {result.verdict}\n{result.report()}")
    return result


def main(argv):
    if len(argv) != 2:
        raise absl_app.UsageError("give one input: a run directory, curve or results file, log file, - (standard "
                                  "input) or published:<app>[/<preset>]", exitcode=2)
    try:
        result = check(argv[1], AGAINST.value, TOLERANCE.value, APP.value, cli.PRESET.value)
    except (UnreadableError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = json.dumps(result.to_dict(), indent=1, default=_json_default) if FORMAT.value == "json" else result.report()
    try:
        print(text, flush=True)
    except BrokenPipeError:  # the reader (e.g. ``| head``) closed the pipe: the verdict still decides the status
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return result.exit_status


def _json_default(value):
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def run():
    absl_app.run(main)


if __name__ == "__main__":
    run()
