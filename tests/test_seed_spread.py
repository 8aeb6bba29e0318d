"""The seed-spread table of results/README.md: extra seeds of a committed configuration, counted against its band."""

import json
import pathlib

import pytest

from legacy_lstm import report

RESULTS = pathlib.Path(__file__).resolve().parents[1] / "results"


def _with_final(doc, seed, **final):
    return dict(doc, seed=seed, final=dict(doc["final"], **final), seed_of="fables-blog", complete=True)


@pytest.fixture
def fables_results(tmp_path):
    main = json.loads((RESULTS / "fables-blog.json").read_text())
    main = dict(main, final=dict(main["final"], average_accuracy=0.90, verbatim_words=0), complete=True)
    (tmp_path / "fables-blog.json").write_text(json.dumps(main))
    seeds = tmp_path / report.SEEDS
    seeds.mkdir()
    for seed, acc, words in ((3, 0.80, 32), (1, 0.95, 4)):
        (seeds / f"fables-blog-seed{seed}.json").write_text(
            json.dumps(_with_final(main, seed, average_accuracy=acc, verbatim_words=words)))
    # a seed of another configuration is not counted with this one
    other = _with_final(main, 9, average_accuracy=0.1)
    other["config"] = dict(other["config"], n_hidden=7)
    (seeds / "fables-blog-seed9.json").write_text(json.dumps(other))
    return tmp_path


def test_seed_groups_order_and_exclude_other_configs(fables_results):
    docs = {"fables-blog": json.loads((fables_results / "fables-blog.json").read_text())}
    groups = report.seed_groups(fables_results, docs)
    assert [d["seed"] for d in groups["fables-blog"]] == [2017, 1, 3]


def test_spread_rows_give_mean_sd_range_and_band_counts(fables_results):
    text = report.summary_text(fables_results)
    section = text[text.index("## Seed spread"):]
    row = next(line for line in section.splitlines() if "average_accuracy" in line)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "fables-blog" and cells[1] == "2017, 1, 3"
    assert cells[3] == "3"
    assert cells[4] == "0.883 ± 0.076"       # mean of 0.90, 0.95, 0.80; sample sd 0.0764
    assert cells[5] == "0.800 – 0.950"
    # published 0.912 ± 0.05: inside the range; 0.90 and 0.95 within the band, 0.80 not
    assert cells[7] == "published in our range: yes; 2/3 in band"
    words = next(line for line in section.splitlines() if "verbatim words" in line)
    assert "1/3 verbatim" in words and "0 – 32" in words


def test_no_section_without_extra_seeds(tmp_path):
    (tmp_path / "fables-blog.json").write_text((RESULTS / "fables-blog.json").read_text())
    assert "## Seed spread" not in report.summary_text(tmp_path)


def test_cell_ranges_name_the_path_of_each_stretch_of_epochs():
    """A run resumed on another path: rows without a cell ran on the run's own."""
    curve = [{"epoch": 1}, {"epoch": 2}, {"epoch": 3, "cell": "fused"}, {"epoch": 4, "cell": "fused"},
             {"epoch": 5, "cell": "block"}]
    assert report.cell_ranges(curve, "block") == [
        {"cell": "block", "first_epoch": 1, "last_epoch": 2}, {"cell": "fused", "first_epoch": 3, "last_epoch": 4},
        {"cell": "block", "first_epoch": 5, "last_epoch": 5}]
    assert report.cell_ranges([], "basic") == []


def test_a_quirk_added_after_the_main_run_counts_as_its_faithful_default(fables_results):
    """The committed fables-blog run predates the ``inputs`` quirk: a seed with the default (ids) joins it, a seed
    with the other setting does not."""
    docs = {"fables-blog": json.loads((fables_results / "fables-blog.json").read_text())}
    docs["fables-blog"]["quirks"].pop("inputs", None)
    seeds = fables_results / report.SEEDS
    for seed, inputs in ((5, "ids"), (6, "one_hot")):
        doc = _with_final(docs["fables-blog"], seed)
        doc["quirks"] = dict(doc["quirks"], inputs=inputs)
        (seeds / f"fables-blog-seed{seed}.json").write_text(json.dumps(doc))
    assert [d["seed"] for d in report.seed_groups(fables_results, docs)["fables-blog"]] == [2017, 1, 3, 5]


def test_imdb_rows_count_the_seeds_that_stalled(tmp_path):
    """IMDB's target metric is test_acc: the row says how many seeds stalled near chance. The committed main run
    predates the config's ``head`` field; seeds that record the preset's head count with it."""
    from legacy_lstm import imdb
    main = json.loads((RESULTS / "imdb-lstm.json").read_text())
    main["config"].pop("head", None)
    main = dict(main, final=dict(main["final"], test_acc=0.86), complete=True)
    (tmp_path / "imdb-lstm.json").write_text(json.dumps(main))
    (tmp_path / report.SEEDS).mkdir()
    for seed, acc in ((1, 0.50), (2, 0.87)):  # and the main run's 0.86
        doc = dict(main, seed=seed, final=dict(main["final"], test_acc=acc), seed_of="imdb-lstm")
        # the seeds record the head field added after the main run: the lstm preset's, so the same config
        doc["config"] = dict(main["config"], head=imdb.PRESETS["lstm"].head)
        (tmp_path / report.SEEDS / f"imdb-lstm-seed{seed}.json").write_text(json.dumps(doc))
    text = report.summary_text(tmp_path)
    row = next(line for line in text[text.index("## Seed spread"):].splitlines() if "test_acc" in line)
    assert "2/3 meet it" in row and "1/3 stalled near chance (< 0.6), 2/3 learned (≥ 0.8)" in row


def test_seed_plan_counts_each_configurations_seeds_and_reruns_an_outdated_main_run(fables_results):
    """scripts/seed_spread.py plan: fables blog has its main run and seeds 1 and 3 (seed 9 trained another config,
    so it does not count): 2 and 4 are missing; a main run of IMDB stacked from before the preset had the tutorial's
    head (no ``head`` in its config, so the class default: the uniform head) is outdated: seed 2017 comes first; a
    configuration with no main run at all starts from 2017 too; the time per seed is the main run's."""
    import sys
    sys.path.insert(0, str(RESULTS.parent / "scripts"))
    import seed_spread
    stacked = json.loads((RESULTS / "imdb-stacked.json").read_text())
    stacked["config"].pop("head")
    (fables_results / "imdb-stacked.json").write_text(json.dumps(stacked))
    rows = {row["name"]: row for row in seed_spread.plan(fables_results)}
    blog = rows["fables-blog"]
    assert (blog["main"], blog["done"], blog["missing"]) == ("ok", [2017, 1, 3], [2, 4])
    main = json.loads((fables_results / "fables-blog.json").read_text())
    assert blog["seconds_per_seed"] == main["train_wall_seconds"] + main["test_wall_seconds"]
    assert (rows["imdb-stacked"]["main"], rows["imdb-stacked"]["missing"]) == ("outdated", [2017, 1, 2, 3, 4])
    assert (rows["ptb-small"]["main"], rows["ptb-small"]["missing"]) == ("missing", [2017, 1, 2])
    assert seed_spread.command(blog, 2)[2:] == ["fables", "--preset=blog", "--variant=faithful", "--seed=2"]


def test_seed_run_paces_its_estimates_by_this_machines_speed_and_stops_before_the_deadline(tmp_path):
    """scripts/seed_spread.py run: the first seed is estimated at its main run's wall time; once seeds have run, at
    that times the median of their actual over estimated time (here 3x: a machine 3 times slower), so the seed
    that would overrun the deadline is not started."""
    import sys
    sys.path.insert(0, str(RESULTS.parent / "scripts"))
    import seed_spread

    class Clock:
        now = 0.0

        def time(self):
            return self.now

    clock, ran, lines = Clock(), [], []
    results = tmp_path
    (results / report.SEEDS).mkdir()

    def call(cmd, resumed=()):  # every seed takes 3 times its estimate, in one sitting from its first epoch
        ran.append(cmd[-1])
        clock.now += 3 * 100
        seed = int(cmd[-1].split("=")[1])
        sittings = [{"after_epoch": 0}] + ([{"after_epoch": 2}] if seed in resumed else [])
        (results / report.SEEDS / f"fables-blog-seed{seed}.json").write_text(json.dumps({"sittings": sittings}))
        return 0

    row = {"name": "fables-blog", "app": "fables", "preset": "blog", "variant": "faithful", "seconds_per_seed": 100}
    todo = [(row, seed) for seed in (1, 2, 3, 4)]
    # deadline 1000 s: seed 1 (estimated 100 s) runs to 300; seed 2 (now 300 s) to 600, seed 3 to 900; seed 4
    # would end at 1200. Without the pace, seed 4 (100 s) would have looked as if it fit.
    paces = seed_spread.run(todo, deadline=1000, call=call, clock=clock.time, log=lines.append, results_dir=results)
    assert ran == ["--seed=1", "--seed=2", "--seed=3"] and paces == [3.0, 3.0, 3.0]
    assert "stopping: fables-blog seed 4 (about 5 min at this machine's pace 3.00) does not fit into --hours" \
        in lines
    assert "fables-blog seed 1: 300 s, 3.00 x its main run's" in lines
    # a failed seed says so and gives no pace; nor does a resumed one (its wall time is part of a seed)
    assert seed_spread.run([(row, 5)], call=lambda cmd: 2, clock=clock.time, log=lines.append,
                           results_dir=results) == []
    assert "fables-blog seed 5 failed (status 2); going on with the next" in lines
    assert seed_spread.run([(row, 6)], call=lambda cmd: call(cmd, resumed=(6,)), clock=clock.time, log=lines.append,
                           results_dir=results) == []
    assert "fables-blog seed 6: 300 s, resumed (not a whole seed: no pace)" in lines


def test_seed_run_paces_each_configuration_by_its_own_seeds(tmp_path):
    """The main runs were timed on different machines, so one configuration's pace says nothing of another's: a
    configuration whose seeds ran 3x its main run does not make the next configuration's first seed look 3x longer
    (it is estimated at its main run's time), and that one's second seed is paced by its own first."""
    import sys
    sys.path.insert(0, str(RESULTS.parent / "scripts"))
    import seed_spread

    class Clock:
        now = 0.0

        def time(self):
            return self.now

    clock, ran, lines = Clock(), [], []
    (tmp_path / report.SEEDS).mkdir()
    slow = {"name": "imdb-lstm", "app": "imdb", "preset": "lstm", "variant": "faithful", "seconds_per_seed": 100}
    fast = {"name": "fables-blog", "app": "fables", "preset": "blog", "variant": "faithful", "seconds_per_seed": 100}
    factor = {"imdb": 3, "fables": 0.5}  # wall time over the main run's, per configuration

    def call(cmd):
        ran.append((cmd[2], cmd[-1]))
        clock.now += factor[cmd[2]] * 100
        name = "imdb-lstm" if cmd[2] == "imdb" else "fables-blog"
        (tmp_path / report.SEEDS / f"{name}-{cmd[-1][2:].replace('=', '')}.json").write_text(
            json.dumps({"sittings": [{"after_epoch": 0}]}))
        return 0

    # deadline 760 s: imdb seeds 1 and 2 end at 300 and 600; fables seed 1, estimated 100 s (not 300 s at imdb's
    # pace, which would not fit), ends at 650; fables seed 2, estimated 50 s at its own pace, at 700; fables seed 3
    # would end at 750 (fits); imdb seed 3 (300 s at its pace) would not.
    todo = [(slow, 1), (slow, 2), (fast, 1), (fast, 2), (fast, 3), (slow, 3)]
    paces = seed_spread.run(todo, deadline=760, call=call, clock=clock.time, log=lines.append, results_dir=tmp_path)
    assert ran == [("imdb", "--seed=1"), ("imdb", "--seed=2"), ("fables", "--seed=1"), ("fables", "--seed=2"),
                   ("fables", "--seed=3")]
    assert paces == [3.0, 3.0, 0.5, 0.5, 0.5]
    assert "stopping: imdb-lstm seed 3 (about 5 min at this machine's pace 3.00) does not fit into --hours" in lines
