r"""Checkpoint interchange between LSTM parameter layouts.

Layouts (U units, I input depth, gates named i input, c candidate, f forget, o output):

    basic             TF1 BasicLSTMCell: ``.../basic_lstm_cell/kernel`` [I+U, 4U], ``bias`` [4U], gate columns
                      ICFO; ``forget_bias`` (default 1.0) is added to the f pre-activation at run time.
    block             TF1 LSTMBlockCell: ``.../lstm_cell/{kernel,bias}``, same layout and run-time forget_bias.
    cudnn_compatible  TF1 CudnnCompatibleLSTMCell: ``.../cudnn_compatible_lstm_cell/{kernel,bias}``, same layout,
                      forget_bias 0 (the forget bias lives in the bias vector). This is also the layout in
                      which TF 1.x ``CudnnLSTM`` saved its canonical weights (``<scope>/rnn/multi_rnn_cell/cell_k/
                      cudnn_compatible_lstm_cell/...``; strip ``<scope>/`` with ``--strip_prefix``).
    cudnn_canonical   cuDNN's parameters per layer, gate order IFCO: input weights W_g [U, I], recurrent
                      weights R_g [U, U], and two biases per gate b_W_g, b_R_g [U]. Only their sum matters;
                      exporting splits the TF bias into halves, as TF 1.x's CudnnLSTM saveable did.
                      Stored as .npz: ``cell_<k>/W_i`` ... ``cell_<k>/b_R_o``.
    keras             Keras ``LSTM`` weights per layer: ``kernel`` [I, 4U], ``recurrent_kernel`` [U, 4U],
                      ``bias`` [4U], gate order IFCO, no run-time forget bias (unit_forget_bias only
                      initialises). Stored as .npz: ``cell_<k>/kernel`` ...; load them into a Keras layer with
                      ``layer.set_weights([kernel, recurrent_kernel, bias])``.

All conversions are exact (a permutation of entries, a split into halves, or an exact add of the forget bias
constant), so round trips reproduce the input to the last bit except where a forget bias of 1.0 is added and
removed again (float32 ``(b + 1) - 1``, exact for |b| >= 0.5 and within 6e-8 below).

Command line::

    python -m legacy_lstm.convert --src=checkpoints/stocktwits/hoffman --dst=/tmp/st-cudnn --to=cudnn_compatible
    python -m legacy_lstm.convert --src=/tmp/st-cudnn --dst=/tmp/st-basic --to=basic
    python -m legacy_lstm.convert --src=checkpoints/stocktwits/hoffman --dst=/tmp/weights.npz --to=keras
    python -m legacy_lstm.convert --src=/tmp/weights.npz --from=keras --to=basic --dst=/tmp/st-back/model.ckpt \
        --base=checkpoints/stocktwits/hoffman/sentiment.ckpt   # .npz -> checkpoint; --base supplies the rest

``--src`` is a run directory (its manifest names the cell; the converted run directory gets a manifest with
the new cell, the vocabulary, and the newest checkpoint, so ``--mode=test --run_dir=<dst>`` works) or a
checkpoint prefix (then ``--from`` names its cell). Optimizer slots of the LSTM variables are renamed along
with them; the accumulators of a shifted bias are kept as they are. Checkpoints of TF <= 1.1, whose cells named
their variables ``weights`` and ``biases``, are read too (``--from=basic --to=basic`` renames them to ``kernel``
and ``bias``). A TF 1.0/1.1 ``LSTMCell`` (``.../lstm_cell/weights``, ``biases``; no peepholes or projection)
has the block layout: ``--from=block``.
"""

import json
import pathlib
import re
import shutil
import sys

import numpy as np
from absl import app, flags

from legacy_lstm import runs
from legacy_lstm.compat import tf, tf1

TF_CELLS = {"basic": "basic_lstm_cell", "block": "lstm_cell", "cudnn_compatible": "cudnn_compatible_lstm_cell"}
DEFAULT_FORGET_BIAS = {"basic": 1.0, "block": 1.0, "cudnn_compatible": 0.0}
FORMATS = tuple(TF_CELLS) + ("cudnn_canonical", "keras")
_ICFO = "icfo"
_IFCO = "ifco"
_CELL_VAR = re.compile(r"^(?P<head>.*?)(?P<cell>basic_lstm_cell|cudnn_compatible_lstm_cell|lstm_cell)/"
                       r"(?P<kind>kernel|bias|weights|biases)(?P<slot>/.*)?$")
# TF <= 1.1 named an LSTM cell's variables weights and biases (the same layout); they are read under either name
# and always written as kernel and bias, the names TF >= 1.2 and this package use.
_KIND = {"kernel": "kernel", "bias": "bias", "weights": "kernel", "biases": "bias"}
_LSTMCELL_EXTRA = re.compile(r"lstm_cell/(w_[ifo]_diag|projection/)")  # TF1 LSTMCell peepholes, num_proj
# lstm_cell is the scope of TF1's LSTMCell (e.g. TF 1.0/1.1 ``lstm_cell/weights``) as well as LSTMBlockCell's:
# without peepholes or a projection both are ICFO with a run-time forget bias of 1.0, which --from=block reads.
_FROM_HINT = {c: f": give --from={f}" for f, c in TF_CELLS.items()}
_FROM_HINT["lstm_cell"] = (": give --from=block (lstm_cell is the scope of TF1's LSTMCell and LSTMBlockCell, "
                           "one layout: ICFO with a run-time forget bias of 1.0)")


# ---------------------------------------------------------------------------------------------------------
# Layout maths (NumPy only)
# ---------------------------------------------------------------------------------------------------------
def _gates(array, order, axis=-1):
    return dict(zip(order, np.split(np.asarray(array), 4, axis=axis)))


def shift_forget_bias(bias, delta):
    """Add ``delta`` to the f-gate slice of an ICFO bias vector (a copy)."""
    bias = np.array(bias, copy=True)
    units = bias.shape[-1] // 4
    bias[..., 2 * units:3 * units] += np.asarray(delta, bias.dtype)
    return bias


def _split_tf(kernel, bias, forget_bias):
    """(input size, {gate: kernel columns}, {gate: bias with the forget bias folded in}) of a TF ICFO cell."""
    kernel = np.asarray(kernel)
    input_size = kernel.shape[0] - kernel.shape[1] // 4
    return input_size, _gates(kernel, _ICFO, axis=1), _gates(shift_forget_bias(bias, forget_bias), _ICFO)


def tf_to_canonical(kernel, bias, forget_bias=0.0):
    """TF kernel [I+U, 4U] / bias [4U] (ICFO) -> cuDNN canonical dict (IFCO, W_g [U,I], R_g [U,U], b_W_g, b_R_g)."""
    input_size, gates, biases = _split_tf(kernel, bias, forget_bias)
    canon = {}
    for g in _IFCO:
        canon[f"W_{g}"] = gates[g][:input_size].T.copy()
        canon[f"R_{g}"] = gates[g][input_size:].T.copy()
        canon[f"b_W_{g}"] = biases[g] * np.asarray(0.5, biases[g].dtype)
        canon[f"b_R_{g}"] = biases[g] - canon[f"b_W_{g}"]
    return canon


def canonical_to_tf(canon, forget_bias=0.0):
    """cuDNN canonical dict -> TF kernel [I+U, 4U], bias [4U] (ICFO) for a cell with run-time ``forget_bias``."""
    kernel = np.concatenate([np.concatenate([canon[f"W_{g}"], canon[f"R_{g}"]], axis=1).T for g in _ICFO], axis=1)
    bias = np.concatenate([canon[f"b_W_{g}"] + canon[f"b_R_{g}"] for g in _ICFO])
    return kernel, shift_forget_bias(bias, -forget_bias)


def tf_to_keras(kernel, bias, forget_bias=0.0):
    """TF kernel/bias (ICFO, run-time ``forget_bias``) -> Keras (kernel [I,4U], recurrent_kernel [U,4U], bias), IFCO."""
    input_size, gates, biases = _split_tf(kernel, bias, forget_bias)
    reordered = np.concatenate([gates[g] for g in _IFCO], axis=1)
    return (reordered[:input_size].copy(), reordered[input_size:].copy(),
            np.concatenate([biases[g] for g in _IFCO]))


def keras_to_tf(kernel, recurrent_kernel, bias, forget_bias=0.0):
    """Keras LSTM weights (IFCO) -> TF kernel/bias (ICFO) for a cell with run-time ``forget_bias``."""
    full = np.concatenate([np.asarray(kernel), np.asarray(recurrent_kernel)], axis=0)
    gates = _gates(full, _IFCO, axis=1)
    biases = _gates(bias, _IFCO)
    return (np.concatenate([gates[g] for g in _ICFO], axis=1),
            shift_forget_bias(np.concatenate([biases[g] for g in _ICFO]), -forget_bias))


# ---------------------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------------------
def read_checkpoint(prefix):
    """{name: ndarray} of every variable in a TF checkpoint."""
    reader = tf1.train.NewCheckpointReader(str(prefix))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def write_checkpoint(values, prefix):
    """Write {name: ndarray} as a TF (V2) checkpoint at ``prefix``; returns the prefix."""
    pathlib.Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    with tf.Graph().as_default():
        variables = {name: tf1.Variable(value, name=f"v{i}", trainable=False)
                     for i, (name, value) in enumerate(sorted(values.items()))}
        saver = tf1.train.Saver(var_list=variables, save_relative_paths=True)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            return saver.save(sess, str(prefix), write_meta_graph=False, write_state=False)


def lstm_layers(values):
    """{head: {"cell": name, "kernel": name, "bias": name}} of the LSTM kernels/biases in a checkpoint."""
    layers = {}
    for name in values:
        match = _CELL_VAR.match(name)
        if match and not match.group("slot"):
            layer = layers.setdefault(match.group("head"), {"cell": match.group("cell")})
            layer[_KIND[match.group("kind")]] = name
    return dict(sorted(layers.items()))


def convert_values(values, from_cell, to_cell, from_forget_bias=None, to_forget_bias=None, strip_prefix=""):
    """Rename the LSTM variables (and their optimizer slots) of ``values`` from one TF cell layout to another,
    moving the forget bias into or out of the bias vector. Other variables pass through unchanged; TF 1.x
    CudnnLSTM ``opaque_kernel`` variables are dropped (their canonical copy is what is converted)."""
    from_fb = DEFAULT_FORGET_BIAS[from_cell] if from_forget_bias is None else from_forget_bias
    to_fb = DEFAULT_FORGET_BIAS[to_cell] if to_forget_bias is None else to_forget_bias
    extra = sorted(n for n in values if _LSTMCELL_EXTRA.search(n))
    if extra:  # they would pass through unconverted and be ignored by the target graph: another model, silently
        raise ValueError(f"{extra[0]}: an LSTMCell with peepholes or a projection; no layout here has them, so it "
                         "cannot be converted")
    out = {}
    for name, value in values.items():
        if "opaque_kernel" in name:
            continue
        new_name = name[len(strip_prefix):] if strip_prefix and name.startswith(strip_prefix) else name
        match = _CELL_VAR.match(new_name)
        if match:
            if match.group("cell") != TF_CELLS[from_cell]:
                hint = _FROM_HINT.get(match.group("cell"), "")
                raise ValueError(f"{name} is a {match.group('cell')} variable, but the source was declared "
                                 f"{from_cell} ({TF_CELLS[from_cell]}){hint}")
            kind = _KIND[match.group("kind")]
            new_name = f"{match.group('head')}{TF_CELLS[to_cell]}/{kind}{match.group('slot') or ''}"
            if kind == "bias" and not match.group("slot") and from_fb != to_fb:
                value = shift_forget_bias(value, from_fb - to_fb)
        out[new_name] = value
    if not lstm_layers(out):
        raise ValueError("no LSTM kernel/bias variables found (expected names ending in "
                         f"{'|'.join(TF_CELLS.values())}/kernel and /bias)")
    return out


def export_arrays(values, from_cell, to_format, from_forget_bias=None):
    """{ "cell_<k>/<name>": ndarray } for ``to_format`` cudnn_canonical or keras, one entry per LSTM layer."""
    fb = DEFAULT_FORGET_BIAS[from_cell] if from_forget_bias is None else from_forget_bias
    arrays = {}
    for k, (head, layer) in enumerate(lstm_layers(values).items()):
        kernel, bias = values[layer["kernel"]], values[layer["bias"]]
        if to_format == "cudnn_canonical":
            parts = tf_to_canonical(kernel, bias, fb)
        elif to_format == "keras":
            parts = dict(zip(("kernel", "recurrent_kernel", "bias"), tf_to_keras(kernel, bias, fb)))
        else:
            raise ValueError(f"unknown array format {to_format!r}")
        arrays.update({f"cell_{k}/{key}": value for key, value in parts.items()})
        arrays[f"cell_{k}/scope"] = np.asarray(head)
    return arrays


def import_arrays(arrays, from_format, to_cell, to_forget_bias=None, base_values=None,
                  scope="rnn/multi_rnn_cell/"):
    """Inverse of ``export_arrays``: TF variables of ``to_cell`` (merged into ``base_values`` if given)."""
    fb = DEFAULT_FORGET_BIAS[to_cell] if to_forget_bias is None else to_forget_bias
    out = dict(base_values or {})
    layer_ids = sorted({int(key.split("/")[0][5:]) for key in arrays if key.startswith("cell_")})
    for k in layer_ids:
        def get(name, k=k):
            return np.asarray(arrays[f"cell_{k}/{name}"])
        head = str(get("scope")) if f"cell_{k}/scope" in arrays else f"{scope}cell_{k}/"
        if from_format == "cudnn_canonical":
            kernel, bias = canonical_to_tf({key.split("/", 1)[1]: np.asarray(v) for key, v in arrays.items()
                                            if key.startswith(f"cell_{k}/") and not key.endswith("/scope")}, fb)
        elif from_format == "keras":
            kernel, bias = keras_to_tf(get("kernel"), get("recurrent_kernel"), get("bias"), fb)
        else:
            raise ValueError(f"unknown array format {from_format!r}")
        for name in [n for n in out if n.startswith(head) and _CELL_VAR.match(n)]:
            del out[name]  # the base's LSTM variables of this layer (any cell) are replaced
        out[f"{head}{TF_CELLS[to_cell]}/kernel"] = kernel
        out[f"{head}{TF_CELLS[to_cell]}/bias"] = bias
    return out


def convert_run_dir(src, dst, to_cell):
    """Convert a run directory's newest checkpoint to ``to_cell`` into a new run directory ``dst`` (manifest with
    the new cell, vocabulary, curve), so that test/predict modes work on ``dst``. Returns the new prefix."""
    src, dst = pathlib.Path(src), pathlib.Path(dst).resolve()  # the state file is written relative to dst
    manifest = runs.read_manifest(src)
    if manifest is None:
        raise FileNotFoundError(f"{src} has no {runs.MANIFEST}; give a checkpoint prefix and --from instead")
    prefix = tf1.train.latest_checkpoint(str(src))
    if prefix is None:
        raise FileNotFoundError(f"no checkpoint in {src}")
    from_cell = manifest.get("cell", "basic")
    config = dict(manifest.get("config") or {})
    if "rnn_mode" in config:  # the app builds its cell from the config (ptb): the two must stay in step
        if config.get("style") == "thomas":
            raise ValueError(f"{src} is a Thomas-style run (LSTMCell, named lstm_cell whatever its rnn_mode): its "
                             "run directory cannot be converted; convert its checkpoint prefix with --from/--to.")
        if to_cell not in ("basic", "block"):
            raise ValueError(f"{src}: {manifest.get('app')} builds only basic or block cells (config.rnn_mode), "
                             f"so a {to_cell} run directory could not be tested; convert the checkpoint prefix "
                             "instead.")
        config["rnn_mode"] = to_cell
    # A config's own forget bias (ptb official: 0) is the run-time forget bias of its basic/block cells; the
    # cudnn_compatible cell has none by definition.
    fb = config.get("forget_bias")
    from_fb = None if fb is None or from_cell == "cudnn_compatible" else fb
    to_fb = None if fb is None or to_cell == "cudnn_compatible" else fb
    values = convert_values(read_checkpoint(prefix), from_cell, to_cell, from_fb, to_fb)
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"{dst} exists and is not empty; choose a new --dst")
    dst.mkdir(parents=True, exist_ok=True)
    new_prefix = write_checkpoint(values, dst / pathlib.Path(prefix).name)
    tf1.train.update_checkpoint_state(str(dst), pathlib.Path(new_prefix).name)
    for name in ("vocab.json", runs.CURVE_JSON, runs.CURVE_CSV):
        if (src / name).exists():
            shutil.copy2(src / name, dst / name)
    manifest = dict(manifest, cell=to_cell, converted_from={"run_dir": str(src), "checkpoint": prefix,
                                                            "cell": from_cell})
    if "config" in manifest:
        manifest["config"] = config
    runs.atomic_write_text(dst / runs.MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
    return new_prefix


# ---------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------
SRC = flags.DEFINE_string("src", None, "Run directory, checkpoint prefix, or .npz (cudnn_canonical/keras).")
DST = flags.DEFINE_string("dst", None, "New run directory, checkpoint prefix, or .npz path.")
TO = flags.DEFINE_enum("to", None, list(FORMATS), "Target layout.")
FROM = flags.DEFINE_enum("from", None, list(FORMATS), "Source layout (default: the run directory's cell).")
BASE = flags.DEFINE_string("base", None, "When importing an .npz: a checkpoint whose other variables "
                           "(embedding, output layer, ...) complete the new checkpoint.")
STRIP_PREFIX = flags.DEFINE_string("strip_prefix", "", "Remove this prefix from variable names (e.g. "
                                   "'cudnn_lstm/' for a TF 1.x CudnnLSTM checkpoint).")


def main(argv):
    try:
        return _main(argv)
    except (ValueError, FileExistsError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if not (SRC.value and DST.value and TO.value):
        raise app.UsageError("--src, --dst and --to are required")
    src, to = pathlib.Path(SRC.value), TO.value
    if src.is_dir() and to in TF_CELLS and FROM.value is None:
        print(f"wrote {convert_run_dir(src, DST.value, to)}")
        return 0
    if src.suffix == ".npz":
        if FROM.value not in ("cudnn_canonical", "keras") or to not in TF_CELLS:
            raise app.UsageError("an .npz source needs --from=cudnn_canonical|keras and a TF cell as --to")
        base = read_checkpoint(BASE.value) if BASE.value else None
        with np.load(src) as arrays:
            values = import_arrays(dict(arrays), FROM.value, to, base_values=base)
        print(f"wrote {write_checkpoint(values, DST.value)}")
        return 0
    prefix = tf1.train.latest_checkpoint(str(src)) if src.is_dir() else str(src)
    if prefix is None or not tf1.train.checkpoint_exists(prefix):
        raise FileNotFoundError(f"no checkpoint at {src}")
    from_cell = FROM.value or ((runs.read_manifest(src) or {}).get("cell") if src.is_dir() else None)
    if from_cell not in TF_CELLS:
        raise app.UsageError("give --from=basic|block|cudnn_compatible for a checkpoint without a manifest")
    values = read_checkpoint(prefix)
    if to in TF_CELLS:
        converted = convert_values(values, from_cell, to, strip_prefix=STRIP_PREFIX.value)
        print(f"wrote {write_checkpoint(converted, DST.value)}")
    else:
        if STRIP_PREFIX.value:
            values = {k[len(STRIP_PREFIX.value):] if k.startswith(STRIP_PREFIX.value) else k: v
                      for k, v in values.items()}
        np.savez(DST.value, **export_arrays(values, from_cell, to))
        print(f"wrote {DST.value}")
    return 0


if __name__ == "__main__":
    from legacy_lstm import cli
    cli.run(main)
