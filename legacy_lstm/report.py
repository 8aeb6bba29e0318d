"""Results of a reproduction: the results document (JSON), its plot, and the generated results table.

An app says how it is reproduced (``Reproduction``: its default preset and the curve columns plotted, its
``reproduce`` function trains and evaluates); this module owns everything after that: the comparison with the
published numbers (``legacy_lstm.published``), ``results/<name>.json`` and ``.png``, and ``results/README.md``
(``write_summary``), generated from the JSON files and checked by tests/test_results.py. scripts/reproduce.py is
the command line over it.
"""

import dataclasses
import json
import os
import pathlib
import re
import statistics
import time

from legacy_lstm import published, runs
from legacy_lstm.compat import versions

reference = published.reference
check_targets = published.check_targets


@dataclasses.dataclass(frozen=True)
class Reproduction:
    """What an app declares about its reproduction: its published preset (the default), the curve columns
    plotted, as (column, title), and the app flags that run what the reproduction runs where the app's defaults
    differ (its ``app_command``)."""
    default_preset: str
    columns: tuple
    app_flags: str = ""


def sitting(run_dir, app, train=None):
    """One sitting: ``train()`` (resumable) unless it is None (report only); then the run dir's (manifest,
    curve): the rows up to its newest epoch checkpoint (a row whose checkpoint was never written, by a kill or a full
    disk at the end of an epoch, is retrained on resume and not reported). A run dir of another app is refused by
    name."""
    if train is not None:
        start = time.time()
        result = train()
        print(f"sitting: {time.time() - start:.0f} s, {len(result['curve'])} epochs done", flush=True)
    manifest = runs.read_manifest(run_dir)
    if manifest is not None and manifest.get("app", app) != app:
        raise runs.ManifestMismatchError(
            f"{run_dir} holds a run of legacy_lstm.{manifest['app']}, not of legacy_lstm.{app}: use "
            f"`reproduce.py {manifest['app'].replace('ptb_thomas', 'ptb')}` or another --run_dir")
    if manifest is None:
        return None, []
    return manifest, runs.read_curve(run_dir, last=max(runs.epoch_checkpoints(run_dir), default=0))


# config keys of the apps whose curve unit is a block of iterations: (iterations, iterations per curve row)
ITERATION_KEYS = (("training_iters", "display_step"), ("num_iterations", "log_every"))


def iterations(config):
    """(iterations in all, per curve row) for fables (displays) and essentials (log blocks), else None."""
    return next(((config[a], config[b]) for a, b in ITERATION_KEYS if a in config and b in config), None)


def epochs_total(manifest):
    """Curve rows of a complete run: epochs, or blocks of iterations (fables' displays, essentials' log blocks;
    essentials' --single_step is one row)."""
    config = manifest["config"]
    if "epochs" in config:
        return config["epochs"]
    total, per_row = iterations(config)
    if (manifest.get("quirks") or {}).get("single_step"):
        return 1
    return total // per_row


def pyplot(missing_message, log=print):
    """matplotlib.pyplot with the Agg backend, or None (``missing_message`` logged) when matplotlib, an optional
    extra, is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log(missing_message)
        return None
    return plt


def save_figure(plt, fig, path, title):
    """Title ``fig``, write it to ``path`` as a PNG and close it."""
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot(path, curve, ref, title, columns, xlabel="epoch"):
    plt = pyplot("matplotlib is not installed: no plot (pip install matplotlib)")
    if plt is None:
        return False
    columns = [(col, label) for col, label in columns if any(col in r for r in curve)] or list(columns[:1])
    fig, axes = plt.subplots(1, len(columns), figsize=(5.5 * len(columns), 4), squeeze=False)
    for ax, (col, label) in zip(axes[0], columns):
        published_rows = [r for r in ref["curve"] if col in r]
        if published_rows:
            ax.plot([r["epoch"] for r in published_rows], [r[col] for r in published_rows], "k--", label="published")
        final_value = ref.get("final", {}).get(col)
        if not published_rows and final_value is not None:  # only a final number was published (ptb)
            ax.axhline(final_value, color="k", ls="--", lw=1, label=f"published final {final_value}")
        ours = [r for r in curve if col in r]
        ax.plot([r["epoch"] for r in ours], [r[col] for r in ours], "C0-o", ms=3, label="legacy_lstm")
        band = ref["bands"].get("curve", {}).get(col)
        if band and published_rows:
            e = [r["epoch"] for r in published_rows]
            v = [r[col] for r in published_rows]
            ax.fill_between(e, [x - band for x in v], [x + band for x in v], color="0.85", label=f"band ±{band}")
        for quote in (q for q in ref.get("quoted", []) if q["column"] == col):  # the author's words, one epoch
            if "about" in quote:
                ax.plot([quote["epoch"]], [quote["about"]], "kx", ms=8, label=f"quoted: about {quote['about']}")
            elif "min" in quote and "max" in quote:
                ax.vlines(quote["epoch"], quote["min"], quote["max"], colors="k", lw=3,
                          label=f"quoted: {quote['min']}-{quote['max']}")
            else:  # one-sided
                value = quote.get("min", quote.get("max"))
                ax.plot([quote["epoch"]], [value], "k^" if "min" in quote else "kv", ms=8,
                        label=f"quoted: {'at least' if 'min' in quote else 'at most'} {value}")
        ax.set_xlabel(xlabel)
        ax.set_title(label)
        ax.legend()
    save_figure(plt, fig, path, title)
    return True


SUMMARY = "README.md"
SEEDS = "seeds"  # results/seeds/: the extra seeds of a seed spread (scripts/reproduce.py --seed=<not 2017>)
SUMMARY_HEAD = """# Results

Generated from the JSON files in this folder by `python scripts/reproduce.py summary` (also rewritten after every
reproduction); each run's plot is the `.png` of the same name. Do not edit by hand: `tests/test_results.py`
checks that this file is what the JSON files say.
"""


# a partial run's projection: the median wall seconds of its last few curve rows (a sitting's first row, or one
# that shared the machine, moves a median less than a mean)
PROJECTION_ROWS = runs.RECENT_ROWS


def projection(curve, total):
    """What a partial run still needs: ``{"rows_left", "seconds_per_row", "seconds_left", "basis"}`` from the median
    ``seconds`` of its last ``PROJECTION_ROWS`` curve rows (epochs, or blocks of iterations) times the rows left;
    None when no row is left or none was timed. The rate is the one the run had on its own machine and path."""
    left = total - len(curve)
    timed = runs.recent_seconds(curve)
    if left <= 0 or not timed:
        return None
    per_row = statistics.median(timed)
    first = len(curve) - len(curve[-PROJECTION_ROWS:]) + 1
    rows = f"row {first}" if first == len(curve) else f"rows {first}-{len(curve)}"
    return {"rows_left": left, "seconds_per_row": round(per_row, 1), "seconds_left": round(per_row * left),
            "basis": f"median of the seconds of curve {rows}"}


def _num(x):
    if x is None:
        return "pending"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.2f}" if abs(x) >= 10 else f"{x:.3f}"


def _progress(doc):
    if "iterations_done" in doc:
        done = f"{doc['iterations_done']:,}/{doc['iterations_total']:,} iterations"
    else:
        done = f"{doc['epochs_done']}/{doc['epochs_total']} epochs"
    left = doc.get("projection")
    return done if not left else f"{done}, about {left['seconds_left'] / 3600:.1f} h of training left"


def summary_rows(name, doc):
    """Markdown rows (run, progress, metric, published, band, ours, verdict) of one results document."""
    cmp, rows = doc.get("comparison") or {}, []
    ref = reference(doc["app"], doc["preset"])
    for col, within in (cmp.get("curve_within_bands") or {}).items():
        band = f"± {ref['bands']['curve'][col]}"
        if col not in (cmp.get("max_deviation") or {}):  # no epoch to compare yet
            rows.append((f"{col}, every epoch", "(curve)", band, "pending", "pending"))
            continue
        epoch, diff = cmp["max_deviation"][col]
        done = doc.get("epochs_done") == doc.get("epochs_total")
        rows.append((f"{col}, every epoch", "(curve)", band, f"largest deviation {diff:+.3f} (epoch {epoch})",
                     ("within" if done else "within so far") if within else "OUTSIDE"))
    for metric, f in (cmp.get("final") or {}).items():
        verdict = "pending" if f["ours"] is None else ("within" if f["within"] else "OUTSIDE")
        rows.append((metric, _num(f["published"]), f"± {f['band']}", _num(f["ours"]), verdict))
    for metric, t in (doc.get("targets") or {}).items():
        bound = " and ".join(f"{'≥' if k == 'min' else '≤'} {t[k]}" for k in ("min", "max") if t[k] is not None)
        verdict = "pending" if t["met"] is None else ("met" if t["met"] else "NOT met")
        rows.append((f"{metric} (target)", bound, "", _num(t["ours"]), verdict))
    for q in doc.get("quoted") or []:
        said = (f"≈ {q['about']}" if "about" in q else f"{q['min']}–{q['max']}" if "min" in q and "max" in q
                else f"≥ {q['min']}" if "min" in q else f"≤ {q['max']}")
        rows.append((f"{q['column']}, epoch {q['epoch']} (quoted)", said, "", _num(q["ours"]), q["verdict"]))
    if not rows:  # nothing published to compare with: the test metrics as measured (else every final one)
        finals = {m: v for m, v in (doc.get("final") or {}).items() if v is None or isinstance(v, (int, float))}
        shown = {m: v for m, v in finals.items() if m.startswith("test_")} or finals
        rows = [(metric, "", "", _num(value), "") for metric, value in shown.items()] or [("(none)", "", "", "", "")]
    return [f"| {name if i == 0 else ''} | {_progress(doc) if i == 0 else ''} | " + " | ".join(row) + " |"
            for i, row in enumerate(rows)]


def _provenance_row(name, doc):
    seeds = ", ".join(f"{k.replace('_seed', '')} {doc[k]}" for k in ("seed", "split_seed", "offset_seed")
                      if doc.get(k) is not None)
    walls = " / ".join("–" if doc.get(k) is None else f"{doc[k]:,.0f} s"
                       for k in ("train_wall_seconds", "test_wall_seconds"))
    # the commit the run started at, then each sitting's ("+dirty": tracked files differed from it)
    commits = [(doc.get("git_commit"), doc.get("git_dirty"))] + [(s.get("git_commit"), s.get("git_dirty"))
                                                                  for s in doc.get("sittings") or []]
    commits = list(dict.fromkeys(c[:7] + ("+dirty" if dirty else "") for c, dirty in commits if c))
    cpus = list(dict.fromkeys(cpu_label(s["machine"]) for s in doc.get("sittings") or [] if s.get("machine")))
    return (f"| {name} | `{doc['command']}` | {seeds} | {doc['versions']['tensorflow']} | {walls} | "
            f"{', '.join(commits) or 'not recorded'} | {'; '.join(cpus) or 'not recorded'} |")


def cpu_label(machine):
    """A short name of the CPU a sitting ran on (its ``machine`` record, legacy_lstm/compat.py): the model without
    trademarks, and its widest vector unit, which decides how fast the GEMMs are (docs/cells.md), e.g.
    ``AMD EPYC (AVX-512, BF16)`` or ``Intel Xeon @ 2.00GHz (AVX-512)``."""
    model = " ".join(re.sub(r"\((R|TM)\)|\bProcessor\b|\bCPU\b", "", machine.get("cpu_model") or "").split())
    model = model or "unknown CPU"
    features = set(machine.get("vector_features") or ())
    units = ["AMX"] if "amx_tile" in features else []
    if not units:
        units = ["AVX-512"] if "avx512f" in features else ["AVX2"] if "avx2" in features else []
        units += ["BF16"] if "avx512_bf16" in features else []
    return f"{model} ({', '.join(units)})" if units else model


def write_summary(results_dir):
    """Rewrite ``results_dir/README.md`` from the results documents there (nothing else is written)."""
    results_dir = pathlib.Path(results_dir)
    text = summary_text(results_dir)
    (results_dir / SUMMARY).write_text(text)
    return text


STOCKTWITS_HEADING = "## StockTwits, the faithful run (the main job)"
STOCKTWITS_EPOCHS = (1, 10, 20, 30, 40, 50)


def stocktwits_block(doc):
    """The table of the faithful StockTwits run (``results/stocktwits.json``) against the published numbers."""
    ref, cmp = reference("stocktwits", doc["preset"]), doc["comparison"]
    ours = {row["epoch"]: row["val_acc"] for row in doc["curve"]}
    published_val = {row["epoch"]: row["val_acc"] for row in ref["curve"]}
    done, total = doc["epochs_done"], doc["epochs_total"]
    so_far = "" if done == total else f"; {done} of {total} epochs so far"
    within = sum(published.within_band(r["val_acc_diff"], ref["bands"]["curve"]["val_acc"]) for r in cmp["per_epoch"])
    epoch, diff = cmp["max_deviation"].get("val_acc", (None, None))
    largest = "" if epoch is None else f" (largest deviation {diff:+.3f}, epoch {epoch})"
    sittings = len(doc.get("sittings") or [])
    rows = [
        f"| metric | published | band | ours (seed {doc['seed']}, split seed {doc['split_seed']}{so_far}) |",
        "| --- | --- | --- | --- |",
        f"| val accuracy, epoch {' / '.join(map(str, STOCKTWITS_EPOCHS))} | "
        f"{' / '.join(_num(published_val.get(e)) for e in STOCKTWITS_EPOCHS)} | "
        f"± {ref['bands']['curve']['val_acc']} | {' / '.join(_num(ours.get(e)) for e in STOCKTWITS_EPOCHS)} |",
        f"| every epoch's val accuracy | (curve) | ± {ref['bands']['curve']['val_acc']} | "
        f"{within} of {cmp['epochs_compared']} within{largest} |",
    ]
    for metric, label in (("val_acc", f"val accuracy, epoch {total}"), ("test_acc", "test accuracy")):
        final = cmp["final"][metric]
        verdict = "" if final["ours"] is None else (" (within)" if final["within"] else " (OUTSIDE)")
        rows.append(f"| {label} | {_num(final['published'])} | ± {final['band']} | {_num(final['ours'])}{verdict} |")
    recorded = f" ({sittings} sitting{'' if sittings == 1 else 's'} recorded)" if sittings else ""
    rows.append(f"| training wall time | | | {doc['train_wall_seconds']:,.0f} s over {done} epochs{recorded} |")
    return "\n".join(rows)


def stocktwits_section(doc):
    """The section of results/README.md on the faithful StockTwits run: how it was made, then its table."""
    return [STOCKTWITS_HEADING, "",
            f"`{doc['command']}`; curve and plot: [`stocktwits.json`](stocktwits.json), "
            "[`stocktwits.png`](stocktwits.png); the published curve, epoch by epoch: "
            "[`legacy_lstm/published/stocktwits.json`](../legacy_lstm/published/stocktwits.json).", "",
            stocktwits_block(doc), ""]


def summary_text(results_dir):
    """The results table (markdown) of the results documents (``*.json`` with a comparison) in ``results_dir``."""
    results_dir = pathlib.Path(results_dir)
    found = []
    for path in sorted(results_dir.glob("*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and "comparison" in doc and "command" in doc:
            found.append((path.stem, doc))
    order = ["stocktwits", "ptb", "fables", "essentials", "imdb"]  # the main job first, then the other apps
    found.sort(key=lambda item: (order.index(item[1]["app"]) if item[1]["app"] in order else len(order), item[0]))
    docs = dict(found)
    lines = [SUMMARY_HEAD]
    if "stocktwits" in docs:  # the faithful run of the published preset (scripts/reproduce.py stocktwits)
        lines += stocktwits_section(docs["stocktwits"])
    lines += ["## Against the published numbers", "",
             "| run | progress | metric | published | band | ours | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, doc in docs.items():
        lines += summary_rows(name, doc)
    lines += ["", "## How each was made", "", f"Machine: {next(iter(docs.values()))['machine']}; the CPU of each "
              "training sitting where it was recorded (the wall times are that CPU's)."
              if docs else "", "",
              "| run | command | seeds | TF | train / test wall | git commit(s) | CPU |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [_provenance_row(name, doc) for name, doc in docs.items()]
    lines += seed_spread_section(results_dir, docs)
    return "\n".join(lines) + "\n"


# IMDB with the tutorial's unmasked post padding: a run either stalls near chance (it ends at 0.50-0.52 when the
# LSTM never gets a gradient through the padding), takes off late (0.69-0.79) or learns (0.80 or more).
LEARNED_ACCURACY = 0.80
CHANCE_ACCURACY = 0.60


def _same_training(a, b):
    """Whether two results documents' runs trained the same config and quirks, each completed for the fields the
    other records and it predates (``runs.with_app_defaults``)."""
    a = dict(a, config=a.get("config") or {}, quirks=a.get("quirks") or {})
    b = dict(b, config=b.get("config") or {}, quirks=b.get("quirks") or {})
    full_a, full_b = runs.with_app_defaults(a, b), runs.with_app_defaults(b, a)
    return (full_a["config"], full_a["quirks"]) == (full_b["config"], full_b["quirks"])


def seed_groups(results_dir, docs):
    """{name: [doc of each seed]} for every results document with extra seeds in ``results_dir/seeds`` (the
    document's own seed first, then the others by seed); only complete runs count."""
    groups = {}
    for path in sorted((pathlib.Path(results_dir) / SEEDS).glob("*.json")):
        extra = json.loads(path.read_text())
        main = docs.get(extra.get("seed_of"))
        if main is None or not _same_training(main, extra):
            continue  # a seed of a configuration that has no committed main run (or another config): not counted
        groups.setdefault(extra["seed_of"], [main]).append(extra)
    return {name: [g[0]] + sorted(g[1:], key=lambda d: d["seed"]) for name, g in groups.items()}


def _spread_metrics(doc):
    """(metric, published, band, kind) of a document: its compared finals, else its targets, else its test_*."""
    cmp = doc.get("comparison") or {}
    out = [(m, f["published"], f["band"], "band") for m, f in (cmp.get("final") or {}).items()]
    out += [(m, t, None, "target") for m, t in (doc.get("targets") or {}).items() if not any(m == o[0] for o in out)]
    if not out:
        out = [(m, None, None, "") for m, v in (doc.get("final") or {}).items()
               if m.startswith("test_") and isinstance(v, (int, float))]
    return out


def seed_spread_rows(name, group):
    complete = [d for d in group if d.get("complete")]
    rows = []
    for metric, published_, band, kind in _spread_metrics(group[0]):
        values = [d["final"][metric] for d in complete if isinstance((d.get("final") or {}).get(metric), (int, float))]
        if len(values) < 2:
            continue
        mean = sum(values) / len(values)
        sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
        if kind == "band":
            inside = "yes" if min(values) <= published_ <= max(values) else "no"
            count = sum(abs(v - published_) <= band for v in values)
            ref = f"{_num(published_)} ± {band}"
            verdict = f"published in our range: {inside}; {count}/{len(values)} in band"
        elif kind == "target":
            bound = " and ".join(f"{'≥' if k == 'min' else '≤'} {published_[k]}" for k in ("min", "max")
                                 if published_[k] is not None)
            met = sum((published_["min"] is None or v >= published_["min"]) and
                      (published_["max"] is None or v <= published_["max"]) for v in values)
            ref, verdict = f"target {bound}", f"{met}/{len(values)} meet it"
        else:
            ref, verdict = "none published", ""
        if group[0]["app"] == "imdb" and metric in ("test_acc", "test_accuracy"):
            stalled = sum(v < CHANCE_ACCURACY for v in values)
            learned = sum(v >= LEARNED_ACCURACY for v in values)
            verdict = "; ".join(x for x in (verdict, f"{stalled}/{len(values)} stalled near chance "
                                                     f"(< {CHANCE_ACCURACY}), {learned}/{len(values)} learned "
                                                     f"(≥ {LEARNED_ACCURACY})") if x)
        rows.append((metric, len(values), f"{_num(mean)} ± {_num(sd)}", f"{_num(min(values))} – {_num(max(values))}",
                     ref, verdict))
    if group[0]["app"] == "fables":
        words = [d["final"].get("verbatim_words") for d in complete if d["final"].get("verbatim_words") is not None]
        if len(words) >= 2:
            rows.append(("verbatim words after 'had a general'", len(words), f"{sum(words) / len(words):.1f} of 32",
                         f"{min(words)} – {max(words)}", "32 (the post)",
                         f"{sum(w == 32 for w in words)}/{len(words)} verbatim"))
    seeds = ", ".join(str(d["seed"]) for d in complete)
    return [f"| {name if i == 0 else ''} | {seeds if i == 0 else ''} | " + " | ".join(str(c) for c in row) + " |"
            for i, row in enumerate(rows)]


def seed_spread_section(results_dir, docs):
    groups = seed_groups(results_dir, docs)
    if not groups:
        return []
    lines = ["", "## Seed spread", "",
             "The same configuration trained with other seeds (`python scripts/reproduce.py <app> ... --seed=<k>`, "
             f"written to `{SEEDS}/`): mean ± standard deviation over the complete seeds, their range, and how the "
             "published number relates to them. Only complete runs count.", "",
             "| run | seeds | metric | n | mean ± sd | min – max | published | verdict |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, group in groups.items():
        lines += seed_spread_rows(name, group)
    return lines


def cell_ranges(curve, run_cell):
    """[{"cell", "first_epoch", "last_epoch"}, ...]: the LSTM path of each run of consecutive epochs (a row
    without a ``cell`` ran on the run's own, ``run_cell``)."""
    ranges = []
    for row in curve:
        cell = row.get("cell", run_cell)
        if ranges and ranges[-1]["cell"] == cell:
            ranges[-1]["last_epoch"] = row["epoch"]
        else:
            ranges.append({"cell": cell, "first_epoch": row["epoch"], "last_epoch": row["epoch"]})
    return ranges


def write_result(results_dir, app, variant, manifest, curve, final, test_seconds, run_dir, reproduction,
                 variant_quirks=None, variant_cell="basic", extra_seed=False):
    """Compare a run with its published numbers; write ``results/<name>.json`` (curve, finals, comparison, command,
    seeds, versions, sittings, wall seconds), ``<name>.png`` and the results table; print the comparison. Returns
    the document. ``<name>`` is ``<app>-<preset>[-<variant>]`` (``stocktwits[-<variant>]`` for its published
    preset); ``variant_quirks``/``variant_cell`` are the app flags the variant sets (for the app's command).
    ``extra_seed``: a run of another seed than the reproduction's default, one of a seed spread: written as
    ``results/seeds/<name>-seed<seed>.json`` (no plot), and counted in the summary's seed-spread table."""
    variant_quirks = variant_quirks or {}
    default_preset = reproduction.default_preset
    ref = reference(app, manifest["preset"])
    cmp = published.compare(curve, final, ref)
    targets = check_targets(final, ref)
    results = pathlib.Path(results_dir)
    results.mkdir(parents=True, exist_ok=True)
    train_seconds = sum(r.get("seconds", 0) for r in curve)
    app_flags = "".join(f" {f}" for f in reproduction.app_flags.split())
    app_flags += "".join(f" --{k}={v}" for k, v in variant_quirks.items())
    # a narrow precision (ptb's --precision) runs on the cell its variant names, which need not be the app's default
    precision = (manifest.get("config") or {}).get("precision", "float32")
    narrow = precision != "float32"
    app_flags += f" --cell={variant_cell}" if variant_cell != "basic" or narrow else ""
    app_flags += f" --precision={precision}" if narrow else ""
    seed_flags = "".join(f" --{k}={manifest[k]}" for k in ("seed", "split_seed") if manifest.get(k) is not None)
    doc = {
        "app": app, "preset": manifest["preset"], "variant": variant,
        "command": f"python scripts/reproduce.py {app} --preset={manifest['preset']} --variant={variant}"
                   f"{seed_flags}",
        # The app's equivalent, except that the app's --seed also turns on deterministic mode
        # (parallel_iterations=1), which the reproduction does not use, and its run dir is checkpoints/.
        "app_command": f"python -m legacy_lstm.{manifest.get('app', app)} --preset={manifest['preset']}"
                       f"{app_flags}{seed_flags}",
        "seed": manifest["seed"], "split_seed": manifest["split_seed"], "quirks": manifest["quirks"],
        "config": manifest["config"], "cell": manifest.get("cell"),
        # which path trained which epochs (ptb: a run may resume on another path with the same variables)
        "cells": cell_ranges(curve, manifest.get("cell")),
        "deterministic": manifest.get("deterministic", False),
        # the versions the run was trained with (its manifest), and those of this report
        "versions": manifest.get("versions") or versions(), "report_versions": versions(),
        # the commit the run started at, each training sitting's commit (a run resumed across commits), and
        # the commit of this report
        "git_commit": manifest.get("git_commit"), "git_dirty": manifest.get("git_dirty"),
        "sittings": runs.read_sittings(run_dir),
        "report_git": runs.git_state(),
        "machine": f"{os.cpu_count()} CPU cores, no GPU",
        "epochs_done": len(curve), "epochs_total": epochs_total(manifest),
        # every final metric measured (stocktwits: val_acc and test_acc; ptb: also the test evaluation)
        "complete": all(v is not None for v in final.values()),
        "train_wall_seconds": round(train_seconds, 1),
        # a partial run: the training time still to go at its recent rate (None once every epoch ran)
        "projection": projection(curve, epochs_total(manifest)),
        "test_wall_seconds": None if test_seconds is None else round(test_seconds, 1),
        "curve": curve, "final": final,
        "comparison": {"epochs_compared": cmp.epochs_compared, "max_deviation": cmp.max_deviation,
                       "curve_within_bands": cmp.curve_within, "final": cmp.final,
                       # None when the document has no band at all (nothing was compared, e.g. imdb)
                       "passed": cmp.passed if (cmp.final or cmp.curve_within) else None,
                       "per_epoch": cmp.per_epoch},
        "targets": targets,
        # figures the author states in words for one epoch (Thomas: cost and accuracy after ~38 epochs)
        "quoted": published.check_quoted(curve, ref),
        "references": ref.get("references", []),
    }
    iterations_ = iterations(manifest["config"])
    if iterations_:  # fables, essentials: the curve unit is a block of iterations; say it in iterations too
        single = (manifest.get("quirks") or {}).get("single_step")  # essentials as shipped: one step
        doc.update(iterations_done=curve[-1]["iteration"] if curve else 0,
                   iterations_total=1 if single else iterations_[0])
        if manifest.get("offset_seed") is not None:
            doc["offset_seed"] = manifest["offset_seed"]
    preset = manifest["preset"]  # the run's own (a --report_only of another run dir must not take this name)
    name = app if app == "stocktwits" and preset == default_preset else f"{app}-{preset}"
    name = name if variant == "faithful" else f"{name}-{variant}"
    summary_dir = results
    if extra_seed:
        doc["seed_of"] = name  # the results document whose configuration this seed repeats
        results, name = results / SEEDS, f"{name}-seed{manifest['seed']}"
        results.mkdir(exist_ok=True)
    out = results / f"{name}.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    seeds = "".join(f", {k.replace('_', ' ')} {manifest[k]}" for k in ("seed", "split_seed")
                    if manifest.get(k) is not None)
    title = (f"{name}: {len(curve)}/{epochs_total(manifest)} {'blocks' if iterations_ else 'epochs'}"
             f"{seeds}, "
             f"TF {doc['versions']['tensorflow']}")
    if not extra_seed:
        plot(results / f"{name}.png", curve, ref, title, reproduction.columns,
             f"blocks of {iterations_[1]:,} iterations" if iterations_ else "epoch")
    print("\n".join(cmp.summary_lines()))
    for q in doc["quoted"]:
        print(f"quoted {q['column']} at epoch {q['epoch']} ({q['text']}): ours {q['ours']}: {q['verdict']}")
    for name, t in targets.items():
        bound = " and ".join(f"{k} {t[k]}" for k in ("min", "max") if t[k] is not None)
        verdict = "not measured yet" if t["met"] is None else ("met" if t["met"] else "NOT met")
        print(f"target {name} ({bound}): ours {t['ours']}: {verdict}")
    write_summary(summary_dir)
    print(f"wrote {out} and {summary_dir / SUMMARY}")
    return doc
