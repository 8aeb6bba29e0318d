"""Published numbers and logged curves of the original tutorials, as data, and the comparison with a run.

Each ``<app>.json`` holds ``curve`` (rows keyed by ``epoch``), ``final`` (metric -> published value) and
``bands``: ``final`` (metric -> allowed absolute deviation) and ``curve`` (column -> allowed absolute
deviation at every published epoch); apps with several configurations hold one such section per preset under
``presets`` (``reference`` picks it). Optional: ``targets`` (one-sided: {metric: {"min"/"max": x}},
``check_targets``), ``quoted`` (figures the author states in words for one epoch of the training curve, a range
``min``-``max`` or an ``about`` value with no band: [{"column", "epoch", "min"/"max" or "about", "text"}],
``check_quoted``) and ``log``, the original's own printed lines (``log_lines``): given verbatim as ``lines``,
or rendered from the published curve with the original's format string (``line``, one per curve row, then
``final_lines``) where the published numbers are those lines' numbers.
"""

import dataclasses
import json
import pathlib

_HERE = pathlib.Path(__file__).resolve().parent


def load(app):
    path = _HERE / f"{app}.json"
    if not path.exists():
        raise FileNotFoundError(f"No published numbers for {app!r} (looked for {path})")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclasses.dataclass
class Comparison:
    """Result of comparing a run with the published numbers."""
    per_epoch: list        # [{"epoch", "<col>": ours, "<col>_published", "<col>_diff"}, ...] on shared epochs
    max_deviation: dict    # column -> (epoch, signed difference) of the largest |difference|
    curve_within: dict     # column -> every shared epoch within its band
    final: dict            # metric -> {"ours", "published", "diff", "band", "within"}
    epochs_compared: int
    epochs_published: int

    @property
    def complete(self):
        return self.epochs_compared == self.epochs_published

    @property
    def passed(self):
        """All compared epochs within their bands and every final value present and within its band."""
        return (all(self.curve_within.values()) and
                all(f["within"] for f in self.final.values()))

    def summary_lines(self):
        lines = [f"epochs compared: {self.epochs_compared}/{self.epochs_published}"]
        for col, (epoch, diff) in self.max_deviation.items():
            verdict = {True: "all within the band", False: "NOT all within the band",
                       None: "no band"}[self.curve_within.get(col)]
            lines.append(f"{col}: largest deviation {diff:+.4f} at epoch {epoch}; {verdict}")
        for name, f in self.final.items():
            if f["ours"] is None:
                lines.append(f"final {name}: not measured yet, published {f['published']:.4f} +- {f['band']}")
                continue
            lines.append(f"final {name}: ours {f['ours']:.4f}, published {f['published']:.4f} +- {f['band']}: "
                         f"{'within' if f['within'] else 'OUTSIDE'}")
        return lines


def within_band(diff, band):
    """Whether a difference from the published value is inside ``band`` (inclusive, up to rounding)."""
    return abs(diff) <= band + 1e-12


def _row_key(value):
    """A curve row's key as compared: numbers as int (1 and 1.0 are the same epoch), anything else as it is."""
    return int(value) if isinstance(value, (int, float)) else value


def compare(curve, final, published, key="epoch"):
    """Compare a run's per-epoch ``curve`` (list of dicts with ``epoch``) and ``final`` metrics (dict) with a
    published document (see ``load``). Epochs the run has not reached are not compared; final metrics the
    run does not have count as outside the band. ``key``: the column rows are matched on (``epoch``; fables'
    and essentials' logs count ``iteration``s); ``per_epoch`` and ``max_deviation`` still name it "epoch"."""
    ours_by_epoch = {_row_key(row[key]): row for row in curve if key in row}
    per_epoch, max_dev, within = [], {}, {}
    for column in published["bands"].get("curve", {}):
        within[column] = True
    for ref in published["curve"]:
        row = ours_by_epoch.get(_row_key(ref[key])) if key in ref else None
        if row is None:
            continue
        entry = {"epoch": ref[key]}
        for column in ref:
            if column in ("epoch", key) or column not in row:
                continue
            diff = float(row[column]) - float(ref[column])
            entry.update({column: row[column], f"{column}_published": ref[column], f"{column}_diff": diff})
            if column not in max_dev or abs(diff) > abs(max_dev[column][1]):
                max_dev[column] = (ref[key], diff)
            band = published["bands"].get("curve", {}).get(column)
            if band is not None and not within_band(diff, band):
                within[column] = False
        per_epoch.append(entry)
    finals = {}
    for name, value in published.get("final", {}).items():
        band = published["bands"].get("final", {}).get(name)
        if band is None:
            continue
        ours = final.get(name) if final else None
        diff = None if ours is None else float(ours) - float(value)
        finals[name] = {"ours": ours, "published": value, "diff": diff, "band": band,
                        "within": diff is not None and within_band(diff, band)}
    return Comparison(per_epoch, max_dev, within, finals, len(per_epoch), len(published["curve"]))


def reference(app, preset=None):
    """The published section of ``app`` (a module name: ``ptb_thomas`` is ptb.json's preset ``thomas``) for
    ``preset`` (apps with one section per preset: fables, ptb, essentials, imdb); a preset with nothing
    published gets an empty section, so ``compare`` judges nothing."""
    if app == "ptb_thomas":
        app, preset = "ptb", "thomas" if preset in (None, "thomas") else preset
    doc = load(app)
    if "presets" not in doc:
        return doc
    return doc["presets"].get(preset, {"curve": [], "final": {}, "bands": {"final": {}, "curve": {}}})


def check_targets(final, ref):
    """The one-sided ``targets`` of a published section ({metric: {"min"/"max": x}}) against ``final``:
    {metric: {"ours", "min", "max", "met"}}; ``met`` is None while the metric is not measured."""
    checked = {}
    for name, target in ref.get("targets", {}).items():
        ours = (final or {}).get(name)
        low, high = target.get("min", -float("inf")), target.get("max", float("inf"))
        met = None if ours is None else bool(low <= ours <= high)
        checked[name] = {"ours": ours, "min": target.get("min"), "max": target.get("max"), "met": met}
    return checked


def check_quoted(curve, ref):
    """Our curve beside the ``quoted`` figures of a published section: one dict per figure, with ``ours`` (the
    column at that epoch; None until the run has it) and ``verdict``: "in the quoted range" / "outside the quoted
    range" for a range, "beside it" for an ``about`` value (no band to judge by), "pending" without ours."""
    rows = {row.get("epoch"): row for row in curve}
    checked = []
    for quote in ref.get("quoted", []):
        row = rows.get(quote["epoch"])
        ours = None if row is None or row.get(quote["column"]) is None else float(row[quote["column"]])
        if ours is None:
            verdict = "pending"
        elif "about" in quote:
            verdict = "beside it"
        else:
            inside = quote.get("min", -float("inf")) <= ours <= quote.get("max", float("inf"))
            verdict = "in the quoted range" if inside else "outside the quoted range"
        checked.append(dict(quote, ours=ours, verdict=verdict))
    return checked


def log_lines(ref):
    """The original's printed log of a published section (see the module docstring), as a list of lines; []
    when none is published."""
    log = ref.get("log")
    if not log:
        return []
    if "lines" in log:
        return list(log["lines"])
    return [log["line"].format(**row) for row in ref["curve"]] + list(log.get("final_lines", []))
