"""Carry a run directory to another machine, e.g. a long reproduction that spans several machines' sittings.

    python scripts/carry_run.py pack ~/.cache/legacy_lstm/runs/stocktwits-hoffman \
        checkpoints/carried/stocktwits-hoffman      # on the old machine (--replace: over an earlier pack); commit
    python scripts/reproduce.py stocktwits          # on the new one: unpacks it into the absent run dir, resumes
    python scripts/carry_run.py unpack checkpoints/carried/stocktwits-hoffman <run dir>   # or by hand

``pack`` copies the newest epoch checkpoint and every small file of the run (manifest, vocab, curve, sittings,
TensorBoard events; not older checkpoints or the lock) into a new folder, splitting files over ``--part_mb``
into parts and listing every file's size and sha256 in ``carried.json``. ``unpack`` checks them, reassembles the
run directory (which must not exist yet) and writes its checkpoint state file; then the usual command (e.g.
``scripts/reproduce.py stocktwits``) resumes the run after the packed epoch.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from legacy_lstm import carry  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    pack = sub.add_parser("pack", help="run dir -> new folder of parts")
    pack.add_argument("run_dir")
    pack.add_argument("out_dir")
    pack.add_argument("--part_mb", type=float, default=carry.PART_BYTES / 2**20, help="largest part, MiB")
    pack.add_argument("--replace", action="store_true", help="out_dir holds an earlier pack of this run: replace it")
    unpack = sub.add_parser("unpack", help="folder of parts -> new run dir")
    unpack.add_argument("packed_dir")
    unpack.add_argument("run_dir")
    args = parser.parse_args(argv)
    run_dir = pathlib.Path(args.run_dir).expanduser()
    try:
        if args.command == "pack":
            epoch = carry.pack_run(run_dir, args.out_dir, part_bytes=int(args.part_mb * 2**20), replace=args.replace)
            print(f"packed {run_dir} at epoch {epoch} into {args.out_dir}")
        else:
            epoch = carry.unpack_run(args.packed_dir, run_dir)
            print(f"unpacked {args.packed_dir} into {run_dir}; training resumes after epoch {epoch}")
    except (OSError, ValueError) as err:  # the runs/carry errors are ValueErrors (damaged, unsafe, another run)
        sys.exit(f"error: {err}")  # one line, nothing half-written (pack and unpack stage their output)


if __name__ == "__main__":
    main()
