"""The seed spread: which seeds each configuration still needs, and running them one after another.

    python scripts/seed_spread.py plan               # per configuration: the seeds done, the ones missing, the time
    python scripts/seed_spread.py run [--hours=H]    # run the missing seeds, the quickest configuration first
    python scripts/seed_spread.py run --only=fables-improved,fables-blog-hashed   # these configurations only

Each configuration of ``CONFIGS`` needs ``n`` complete seeds, its committed main run (seed 2017,
``results/<name>.json``) counted as one: 5 for every configuration that trains in under about 10 minutes here
(fables blog, improved and hashed, essentials, every IMDB preset and variant), 3 for StockTwits ``--variant=fast``
and PTB small. A seed counts when ``results/seeds/<name>-seed<k>.json`` says ``complete`` and trained the same
config and quirks as the main run (``report.seed_groups``, the rule of the results' seed-spread table). The extra
seeds are 1, 2, 3, ... in that order, the first ones not counted yet. A main run that is missing, incomplete or of
another configuration than today's preset (an IMDB run from before the tutorial's heads) gets seed 2017 first: it has
to be rerun before its seeds count (move its old run dir away first, or reproduce.py resumes it and refuses the
changed config by name).

Each seed is ``python scripts/reproduce.py <app> --preset=<p> --variant=<v> --seed=<k>`` in a subprocess, in its own
run dir, resumable: ``run`` may be stopped at any time (Ctrl-C, the end of a session) and started again; the seed
it was training resumes from its last epoch. The estimated time of a seed is its main run's training and test wall
seconds (``results/<name>.json``, measured on the machine that made it), times this machine's pace once a seed of
that configuration has run (its wall time over that estimate: per configuration, since the main runs were timed on
different machines, some loaded). ``--hours`` stops before a seed that would not fit into what is left (default: no
limit). Run it alone on the machine (a seed is a training).

A StockTwits seed is given no ``--split_seed``: it draws its own train/validation/test split (printed, and recorded
in its results file's command, which repeats it), as the unseeded notebook did, so the StockTwits spread is that of
the initial weights and the split together.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from legacy_lstm import report  # noqa: E402

RESULTS = REPO / "results"
DEFAULT_SEED = 2017
# (app, preset, variant, complete seeds needed, the main run included)
CONFIGS = [("essentials", "book", "faithful", 5), ("fables", "blog", "faithful", 5),
           ("fables", "blog", "hashed", 5), ("fables", "improved", "faithful", 5),
           ("imdb", "lstm", "faithful", 5), ("imdb", "lstm", "pre", 5), ("imdb", "lstm", "mask", 5),
           ("imdb", "stacked", "faithful", 5), ("imdb", "stacked", "pre", 5), ("imdb", "stacked", "mask", 5),
           ("imdb", "bidirectional", "faithful", 5), ("imdb", "attention", "faithful", 5),
           ("imdb", "l2", "faithful", 5), ("stocktwits", "hoffman", "fast", 3), ("ptb", "small", "faithful", 3)]
PUBLISHED_PRESET = {"stocktwits": "hoffman"}  # the preset whose results name is the app's alone


def result_name(app, preset, variant):
    """``results/<name>.json`` of a configuration (report.write_result's naming)."""
    name = app if PUBLISHED_PRESET.get(app) == preset else f"{app}-{preset}"
    return name if variant == "faithful" else f"{name}-{variant}"


def _current(app, preset, doc):
    """Whether the committed main run ``doc`` trained the preset as it is today (fields added since at their
    defaults): a main run of an older form of the preset cannot be the first seed of today's."""
    import dataclasses

    from legacy_lstm import runs
    module = runs.app_module(app)
    preset_config = json.loads(json.dumps(dataclasses.asdict(module.PRESETS[preset])))
    preset_config.pop("layout", None)  # ptb: not part of a manifest
    trained = runs.with_app_defaults(dict(doc, config=doc.get("config") or {}), {"config": preset_config})
    return trained["config"] == preset_config


def plan(results_dir=RESULTS):
    """[{name, command stem, needed, done seeds, missing seeds, main: ok | missing | incomplete | outdated,
    seconds per seed}] in CONFIGS order."""
    docs = {p.stem: json.loads(p.read_text()) for p in pathlib.Path(results_dir).glob("*.json")}
    groups = report.seed_groups(results_dir, docs)
    out = []
    for app, preset, variant, needed in CONFIGS:
        name = result_name(app, preset, variant)
        main = docs.get(name)
        if main is None:
            state = "missing"
        elif not main.get("complete"):
            state = "incomplete"
        elif not _current(app, preset, main):
            state = "outdated"
        else:
            state = "ok"
        # an outdated or unfinished main run starts the seeds over: none of them is today's configuration
        done = [d["seed"] for d in groups.get(name, [main]) if d.get("complete")] if state == "ok" else []
        missing, k = [], 1
        while len(done) + len(missing) < needed:
            if k not in done:
                missing.append(k)
            k += 1
        if state != "ok":
            missing = [DEFAULT_SEED] + missing[:needed - 1]
        seconds = None
        if main is not None and main.get("train_wall_seconds") is not None:
            seconds = main["train_wall_seconds"] + (main.get("test_wall_seconds") or 0)
        out.append({"name": name, "app": app, "preset": preset, "variant": variant, "needed": needed, "done": done,
                    "missing": missing, "main": state, "seconds_per_seed": seconds})
    return out


def command(row, seed):
    return [sys.executable, str(REPO / "scripts" / "reproduce.py"), row["app"], f"--preset={row['preset']}",
            f"--variant={row['variant']}", f"--seed={seed}"]


def _print_plan(rows):
    total = 0.0
    print("| configuration | needed | main run | seeds done | seeds to run | about |")
    print("| --- | ---: | --- | --- | --- | ---: |")
    for row in rows:
        cost = (row["seconds_per_seed"] or 0) * len(row["missing"])
        total += cost
        print(f"| {row['name']} | {row['needed']} | {row['main']} | {', '.join(map(str, row['done'])) or '-'} | "
              f"{', '.join(map(str, row['missing'])) or '-'} | "
              f"{cost / 60:.0f} min{'' if row['seconds_per_seed'] else ' (unknown)'} |")
    print(f"\nabout {total / 3600:.1f} h of training for every missing seed (the main runs' wall times)")


def _whole_sitting(results_dir, row, seed):
    """True when the seed's results document says one sitting trained it from its first epoch (a resumed seed's
    wall time is not a whole seed's)."""
    path = pathlib.Path(results_dir) / report.SEEDS / f"{row['name']}-seed{seed}.json"
    try:
        sittings = json.loads(path.read_text()).get("sittings") or []
    except (OSError, ValueError):
        return False
    return len(sittings) == 1 and sittings[0].get("after_epoch") == 0


def run(todo, deadline=None, call=None, clock=time.time, log=print, results_dir=RESULTS):
    """Run ``todo`` [(plan row, seed)] one after another; with a ``deadline`` (UNIX time) stop before a seed that
    would not end by then. A seed's length is its main run's wall seconds times this machine's pace for that
    configuration: the median, over its seeds this call trained whole (one sitting from the start), of their wall
    seconds over that estimate (1 before its first), so a slower machine than the main run's does not overrun. The
    pace is per configuration because each main run was timed on its own machine, some of them loaded (here the
    IMDB seeds ran at 0.22-0.44x, fables at 0.95-1.00x). Returns the paces, in the order measured."""
    call = call or (lambda cmd: subprocess.call(cmd, cwd=REPO))
    paces, own = [], {}  # own: configuration name -> its paces
    for row, seed in todo:
        estimate = row["seconds_per_seed"] or 0
        pace = statistics.median(own[row["name"]]) if own.get(row["name"]) else 1.0
        if deadline is not None and clock() + estimate * pace > deadline:
            log(f"stopping: {row['name']} seed {seed} (about {estimate * pace / 60:.0f} min at this machine's pace "
                f"{pace:.2f}) does not fit into --hours")
            break
        log(f"{row['name']} seed {seed}: {' '.join(command(row, seed)[1:])}")
        start = clock()
        code = call(command(row, seed))
        if code != 0:
            log(f"{row['name']} seed {seed} failed (status {code}); going on with the next")
        elif estimate and _whole_sitting(results_dir, row, seed):
            paces.append((clock() - start) / estimate)
            own.setdefault(row["name"], []).append(paces[-1])
            log(f"{row['name']} seed {seed}: {clock() - start:.0f} s, {paces[-1]:.2f} x its main run's")
        elif estimate:
            log(f"{row['name']} seed {seed}: {clock() - start:.0f} s, resumed (not a whole seed: no pace)")
    return paces


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["plan", "run"])
    parser.add_argument("--hours", type=float, default=None, help="run: stop before a seed that would not fit")
    parser.add_argument("--only", default=None, help="run: these configurations only (comma list of names)")
    parser.add_argument("--results_dir", default=str(RESULTS))
    args = parser.parse_args(argv)
    rows = plan(args.results_dir)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(names) - {row["name"] for row in rows})
        if unknown:
            parser.error(f"--only: no configuration {', '.join(unknown)} (plan lists them)")
        rows = [row for row in rows if row["name"] in names]
    if args.what == "plan":
        _print_plan(rows)
        return 0
    deadline = None if args.hours is None else time.time() + args.hours * 3600
    todo = [(row, seed) for row in rows for seed in row["missing"]]
    todo.sort(key=lambda item: item[0]["seconds_per_seed"] or float("inf"))  # the quickest first (stable)
    run(todo, deadline, log=lambda line: print(line, flush=True), results_dir=args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
