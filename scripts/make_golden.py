"""Regenerate the golden short curves of the curve regression tests (tests/golden/<name>.json) and measure the spread
that sizes their tolerances.

    python scripts/make_golden.py all                 # every spec in tests/curves.py (~10 min on 2 cores)
    python scripts/make_golden.py fables_blog         # one
    python scripts/make_golden.py all --spread_only   # re-measure the spread, keep the committed curves

For each spec it trains the seeded run of tests/curves.py in-process (the golden curve), then the same run in a
subprocess under each perturbation of ``curves.PERTURBATIONS`` (the same run again; oneDNN off; one thread): each
changes only the arithmetic (which kernel, which reduction order), not the model. The largest difference per column
over those runs is written as ``spread``; tests/test_curves.py allows ``4 * spread + floor``. Regenerate the curves only
when a deliberate change alters the numbers, and say why in the commit. On another CPU model, rerun with
``--spread_only`` first: a spread much larger than the committed one means the tolerance needs that machine's figure.
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import curves  # noqa: E402
from legacy_lstm.compat import versions  # noqa: E402
from legacy_lstm.data import download  # noqa: E402


def cpu_model():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def train_once(name, data_dir):
    spec = curves.SPECS[name]
    start = time.time()
    with tempfile.TemporaryDirectory() as work:
        result = curves.run(spec, data_dir, work)
    return result["curve"], time.time() - start


def perturbed(name, data_dir, env_extra):
    """The spec's curve from a subprocess whose environment adds ``env_extra`` (TF reads these at start-up)."""
    env = dict(os.environ, **env_extra)
    command = [sys.executable, __file__, name, "--emit"] + ([f"--data_dir={data_dir}"] if data_dir else [])
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"perturbed run of {name} with {env_extra} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread_of(golden_curve, other, columns):
    if len(other) != len(golden_curve):
        raise SystemExit(f"a perturbed run has {len(other)} rows, the golden curve {len(golden_curve)}")
    return {c: max(abs(a[c] - b[c]) for a, b in zip(golden_curve, other)) for c in columns}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", help=f"'all' or any of: {', '.join(curves.SPECS)}")
    parser.add_argument("--data_dir", default=None, help="default: $LEGACY_LSTM_DATA, else the user cache")
    parser.add_argument("--spread_only", action="store_true", help="keep the committed curve, re-measure the spread")
    parser.add_argument("--emit", action="store_true", help=argparse.SUPPRESS)  # subprocess mode: print the curve
    args = parser.parse_args()
    names = list(curves.SPECS) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in curves.SPECS]
    if unknown:
        parser.error(f"unknown spec(s) {', '.join(unknown)}; known: {', '.join(curves.SPECS)}")
    data_dir = args.data_dir or os.environ.get(download.ENV_VAR) or str(download.default_data_dir())
    if args.emit:
        curve, _ = train_once(names[0], data_dir)
        print(json.dumps(curve))
        return
    for name in names:
        spec = curves.SPECS[name]
        out = curves.GOLDEN_DIR / f"{name}.json"
        if args.spread_only:
            doc = json.loads(out.read_text())
            golden = doc["curve"]
        else:
            golden, seconds = train_once(name, data_dir)
            doc = {"name": name, "app": spec.app, "preset": spec.preset, "what": spec.note, "seed": curves.SEED,
                   "deterministic": True, "command": f"python scripts/make_golden.py {name}", "versions": versions(),
                   "wall_seconds": round(seconds, 1), "curve": golden}
        runs = {label: spread_of(golden, perturbed(name, data_dir, env), spec.columns)
                for label, env in curves.PERTURBATIONS.items()}
        doc["spread"] = {"measured_on": f"{cpu_model()}, {os.cpu_count()} cores", "per_perturbation": runs,
                         "max": {c: max(r[c] for r in runs.values()) for c in spec.columns}}
        out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {out}: spread {doc['spread']['max']}", flush=True)


if __name__ == "__main__":
    main()
