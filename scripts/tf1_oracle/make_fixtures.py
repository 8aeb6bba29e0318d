"""Regenerate the TF 1.15 oracle fixtures (tests/tf1_oracle/) of every app, or of the apps named.

Run with Python 3.7 + TensorFlow 1.15.5 (see tests/tf1_oracle/README.md for making that venv)::

    /path/to/py37-tf1.15/bin/python scripts/tf1_oracle/make_fixtures.py             # every app
    /path/to/py37-tf1.15/bin/python scripts/tf1_oracle/make_fixtures.py stocktwits  # only these

Each app's maker is the module ``scripts/tf1_oracle/<app>.py``; its ``make()`` writes all of that app's cases.
Every maker builds its cases in fresh graphs with their own seeds, so running them together in one process gives
the same fixtures as running each alone.
"""

import importlib
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# Every app with an oracle maker, in the order they are regenerated.
APPS = ("stocktwits", "ptb", "fables", "essentials")


def available():
    """The apps of APPS whose maker module exists."""
    return [app for app in APPS if os.path.isfile(os.path.join(HERE, app + ".py"))]


def main(argv):
    import tensorflow as tf
    if not tf.__version__.startswith("1.15"):
        sys.exit("this needs TensorFlow 1.15 (the oracle), got %s from %s" % (tf.__version__, sys.executable))
    tf.logging.set_verbosity(tf.logging.ERROR)
    apps = argv or available()
    unknown = [app for app in apps if app not in APPS]
    missing = [app for app in apps if app in APPS and app not in available()]
    if unknown or missing:
        sys.exit("unknown app(s) %s, missing maker(s) %s; the apps with a maker: %s"
                 % (unknown, missing, ", ".join(available())))
    for app in apps:
        start = time.time()
        importlib.import_module(app).make()
        print("%s: fixtures written (%.1f s)" % (app, time.time() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
