"""Regenerate the golden short curve the test suite compares against (tests/golden/<app>_test_preset.json).

    python scripts/make_golden.py stocktwits

Runs the app's `test` preset on the real data with a fixed seed and split seed, deterministic
(parallel_iterations=1). Regenerate only when a deliberate change alters the numbers, and say why in the commit.
"""

import argparse
import json
import pathlib
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from legacy_lstm.compat import versions  # noqa: E402
from legacy_lstm.data import download  # noqa: E402

SEED, SPLIT_SEED = 1, 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("app", choices=["stocktwits"])
    parser.add_argument("--data_dir", default=None)
    args = parser.parse_args()
    from legacy_lstm import stocktwits
    path = download.locate(download.STOCKTWITS, args.data_dir)
    start = time.time()
    with tempfile.TemporaryDirectory() as run_dir:
        result = stocktwits.train(path, run_dir, "test", split_seed=SPLIT_SEED, seed=SEED)
    doc = {"app": args.app, "preset": "test", "seed": SEED, "split_seed": SPLIT_SEED, "deterministic": True,
           "command": f"python scripts/make_golden.py {args.app}", "versions": versions(),
           "wall_seconds": round(time.time() - start, 1),
           "curve": [{k: v for k, v in row.items() if k != "seconds"} for row in result["curve"]]}
    out = REPO / "tests" / "golden" / f"{args.app}_test_preset.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
