"""Published numbers and logged curves of the original tutorials, as data, and the comparison with a run.

Each ``<app>.json`` holds ``curve`` (rows keyed by ``epoch``), ``final`` (metric -> published value) and
``bands``: ``final`` (metric -> allowed absolute deviation) and ``curve`` (column -> allowed absolute
deviation at every published epoch).
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


def compare(curve, final, published):
    """Compare a run's per-epoch ``curve`` (list of dicts with ``epoch``) and ``final`` metrics (dict) with a
    published document (see ``load``). Epochs the run has not reached are not compared; final metrics the
    run does not have count as outside the band."""
    ours_by_epoch = {int(row["epoch"]): row for row in curve}
    per_epoch, max_dev, within = [], {}, {}
    for column, band in published["bands"].get("curve", {}).items():
        within[column] = True
    for ref in published["curve"]:
        row = ours_by_epoch.get(int(ref["epoch"]))
        if row is None:
            continue
        entry = {"epoch": ref["epoch"]}
        for column in ref:
            if column == "epoch" or column not in row:
                continue
            diff = float(row[column]) - float(ref[column])
            entry.update({column: row[column], f"{column}_published": ref[column], f"{column}_diff": diff})
            if column not in max_dev or abs(diff) > abs(max_dev[column][1]):
                max_dev[column] = (ref["epoch"], diff)
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
