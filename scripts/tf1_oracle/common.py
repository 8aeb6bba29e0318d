"""Shared helpers of the TF 1.15 oracle scripts (run only under Python 3.7 + TensorFlow 1.15.5).

Every case writes one folder ``tests/tf1_oracle/<case>/`` holding:

    init.ckpt.*     the variables right after initialisation, optimiser slots included (TF1 Saver, V2 format)
    trained.ckpt.*  the same variables after ``steps`` training steps on the batches in case.npz
    case.npz        the fixed batches fed and the outputs that matter (losses, predictions, final states, ...)
    case.json       what produced it (TF and Python versions), the small config and what each array means

This module must stay importable by Python 3.7 and TF 1.15: no f-string '=' specifiers, no walrus, no
legacy_lstm imports (the package needs TF 2).
"""

import json
import os
import platform
import shutil

import numpy as np
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "tests", "tf1_oracle")
INIT = "init.ckpt"
TRAINED = "trained.ckpt"


def case_dir(name, root=FIXTURES):
    """A fresh, empty folder for case ``name`` (an earlier one is replaced)."""
    path = os.path.join(root, name)
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.makedirs(path)
    return path


def saver():
    """A Saver over every global variable (model and optimiser slots), V2 format, no sharding."""
    return tf.train.Saver(tf.global_variables(), write_version=tf.train.SaverDef.V2, sharded=False)


def save(sess, folder, name, saver_=None):
    """Save the session's variables to ``folder/name`` without the 'checkpoint' state file."""
    (saver_ or saver()).save(sess, os.path.join(folder, name), write_meta_graph=False, write_state=False)


def write_case(folder, arrays, meta):
    """Write case.npz (every array as float32/float64/int as given) and case.json (meta + provenance)."""
    np.savez_compressed(os.path.join(folder, "case.npz"), **{k: np.asarray(v) for k, v in arrays.items()})
    meta = dict(meta)
    meta["produced_by"] = {"tensorflow": tf.__version__, "python": platform.python_version(),
                           "numpy": np.__version__}
    meta["arrays"] = sorted(arrays)
    with open(os.path.join(folder, "case.json"), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")


def variable_names():
    return sorted(v.op.name for v in tf.global_variables())
