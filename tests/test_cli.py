"""Plain-argument helpers of the CLI contract."""

import dataclasses
import io
import json
import os

import pytest
from absl import app

from legacy_lstm import cli, stocktwits


def test_preset_config_by_name_and_by_value():
    assert cli.preset_config(stocktwits.PRESETS, "test") == ("test", stocktwits.PRESETS["test"])
    # A config object equal to a named preset is that preset (its run dir restores under --preset=test) ...
    same = dataclasses.replace(stocktwits.PRESETS["test"])
    assert same is not stocktwits.PRESETS["test"]
    assert cli.preset_config(stocktwits.PRESETS, same) == ("test", same)
    # ... and any other config is "custom".
    other = dataclasses.replace(stocktwits.PRESETS["test"], batch_size=stocktwits.PRESETS["test"].batch_size + 1)
    assert cli.preset_config(stocktwits.PRESETS, other) == ("custom", other)


def test_unknown_preset_name_lists_the_choices():
    with pytest.raises(ValueError, match="'nope' is not one of hoffman, test"):
        cli.preset_config(stocktwits.PRESETS, "nope")


def test_run_dir_and_data_dir_defaults_and_overrides(parsed_flags, monkeypatch, tmp_path):
    monkeypatch.setenv("LEGACY_LSTM_DATA", str(tmp_path / "data"))
    preset, mode, run_dir = cli.resolve_common("stocktwits", stocktwits.PRESETS, "hoffman",
                                               ("train", "test", "predict"), ["prog"])
    assert (preset, mode, run_dir) == ("hoffman", "train", os.path.join("checkpoints", "stocktwits", "hoffman"))
    assert cli.resolve_data_dir() == str(tmp_path / "data")  # $LEGACY_LSTM_DATA
    monkeypatch.delenv("LEGACY_LSTM_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cli.resolve_data_dir() == str(tmp_path / "cache" / "legacy_lstm")  # else the per-user cache dir
    parsed_flags.preset, parsed_flags.run_dir, parsed_flags.data_dir = "test", str(tmp_path / "r"), "/d"
    assert cli.resolve_common("stocktwits", stocktwits.PRESETS, "hoffman", ("train",), ["prog"])[2] == \
        str(tmp_path / "r")
    assert cli.resolve_data_dir() == "/d"


def test_cli_usage_errors(parsed_flags):
    parsed_flags.mode = "generate"
    with pytest.raises(app.UsageError, match="--mode=generate is not supported here; use one of train, test"):
        cli.resolve_common("stocktwits", stocktwits.PRESETS, "hoffman", ("train", "test"), ["prog"])
    parsed_flags.mode = "train"
    with pytest.raises(app.UsageError, match=r"Unexpected arguments \['SPY up'\] \(only with predict\)"):
        cli.resolve_common("stocktwits", stocktwits.PRESETS, "hoffman", ("train", "predict"), ["prog", "SPY up"],
                           ("predict",), "only with predict")
    parsed_flags.preset = "nope"
    with pytest.raises(app.UsageError, match="--preset='nope' is not one of hoffman, test"):
        cli.resolve_common("stocktwits", stocktwits.PRESETS, "hoffman", ("train",), ["prog"])


class _Stdin:
    def __init__(self, data, tty=False):
        self.buffer, self._tty = io.BytesIO(data), tty

    def isatty(self):
        return self._tty


def test_read_messages_takes_arguments_else_lines_of_stdin(capsys):
    assert cli.read_messages(["prog", "SPY up", ""]) == ["SPY up", ""]
    bad_arg = b"caf\xe9".decode("utf-8", "surrogateescape")  # how Python passes a Latin-1 argument
    assert cli.read_messages(["prog", bad_arg]) == ["caf\ufffd"]
    assert cli.read_messages(["prog"], _Stdin(b"a\n\nb \xff\nlast without newline")) == \
        ["a", "", "b \ufffd", "last without newline"]
    assert cli.read_messages(["prog"], _Stdin("one\u2028two\n".encode())) == ["one\u2028two"]  # only \n splits
    assert cli.read_messages(["prog"], _Stdin(b"\n")) == [""]  # one empty message: answered, not an error
    with pytest.raises(ValueError, match="No messages"):
        cli.read_messages(["prog"], _Stdin(b""))
    assert capsys.readouterr().err == ""
    cli.read_messages(["prog"], _Stdin(b"x\n", tty=True))
    assert "one per line" in capsys.readouterr().err  # a terminal gets told what is expected


def test_max_epochs_can_only_stop_training_earlier():
    assert cli.epochs_to_run(50, None) == 50 and cli.epochs_to_run(50, 7) == 7 and cli.epochs_to_run(50, 50) == 50
    with pytest.raises(ValueError, match=r"--max_epochs=51 is more than the preset's 50 epochs"):
        cli.epochs_to_run(50, 51)


def test_an_app_refuses_more_epochs_than_its_preset(tmp_path):
    """Before any data is read or anything is written (a longer run would not match its config)."""
    with pytest.raises(ValueError, match=r"--max_epochs=3 is more than the preset's 2 epochs"):
        stocktwits.train(tmp_path / "no-data.csv.gz", tmp_path / "run", "test", max_epochs=3)
    assert not (tmp_path / "run").exists()


def test_flags_that_contradict_the_run_are_named(parsed_flags, tmp_path):
    """The check every app's test/predict/generate modes make against the run's manifest."""
    from legacy_lstm import ptb_common, runs
    cli.check_given_flags(tmp_path)  # no manifest (an original checkpoint): nothing to compare
    (tmp_path / runs.MANIFEST).write_text(json.dumps({
        "preset": "hoffman", "cell": "block", "split_seed": 4, "quirks": {"carry_state": True, "seq_len": 39}}))
    cli.check_given_flags(tmp_path)  # nothing given
    parsed_flags.preset, parsed_flags.cell, parsed_flags.carry_state = "hoffman", "block", True
    cli.check_given_flags(tmp_path)  # given, with the run's own values
    parsed_flags.cell, parsed_flags.split_seed, parsed_flags.carry_state = "basic", 5, False
    parsed_flags.seq_len = "auto"
    with pytest.raises(runs.ManifestMismatchError) as err:
        cli.check_given_flags(tmp_path, skip=("seq_len",))
    assert str(err.value).startswith(f"{tmp_path} was trained with other settings than given: --cell=basic (the "
                                     "run's: block); --split_seed=5 (the run's: 4); --carry_state=False (the "
                                     "run's: True).")
    parsed_flags.cell, parsed_flags.split_seed, parsed_flags.carry_state = "block", 4, True
    with pytest.raises(runs.ManifestMismatchError, match=r"--seq_len=auto \(the run's: 39\)"):
        cli.check_given_flags(tmp_path)
    parsed_flags.seq_len = "39"
    cli.check_given_flags(tmp_path)  # compared as text: the flag's "39" is the manifest's 39
    setattr(parsed_flags, ptb_common.RNN_MODE.name, "basic")  # PTB's flag for the manifest's cell
    with pytest.raises(runs.ManifestMismatchError, match=r"--rnn_mode=basic \(the run's: block\)"):
        cli.check_given_flags(tmp_path, aliases={"rnn_mode": "cell"})


def test_native_lstm_flag_needs_the_fused_path_and_switches_it_to_the_native_ops(parsed_flags, monkeypatch):
    from legacy_lstm import fast_lstm, native_ops
    monkeypatch.setitem(fast_lstm.OPTIONS, "native", False)
    parsed_flags.native_lstm = True
    with pytest.raises(app.UsageError, match="needs --cell=fused"):
        cli.resolve_common("stocktwits", stocktwits.PRESETS, "hoffman", ("train",), ["prog"])
    assert fast_lstm.OPTIONS["native"] is False
    parsed_flags.cell = "fused"
    if not native_ops.available():  # no compiler here: a usage error that says so, and the loops stay
        with pytest.raises(app.UsageError, match="--native_lstm: "):
            cli.resolve_common("stocktwits", stocktwits.PRESETS, "hoffman", ("train",), ["prog"])
        assert fast_lstm.OPTIONS["native"] is False
        return
    cli.resolve_common("stocktwits", stocktwits.PRESETS, "hoffman", ("train",), ["prog"])
    assert fast_lstm.OPTIONS["native"] is True


@pytest.mark.parametrize("app_name, why", [("fables", "fables' static_rnn unrolls only its 3 input words"),
                                           ("imdb", "not for imdb's Keras-style layers")])
def test_apps_without_a_fused_path_refuse_it_before_reading_data(tmp_path, app_name, why):
    """--cell=fused is a flag every app shares; fables and imdb say why it is not theirs, with no traceback and
    before any data is looked for (the data dir here is empty) or any run dir written."""
    import subprocess
    import sys
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", LEGACY_LSTM_DATA=str(tmp_path / "no-data"))
    out = subprocess.run([sys.executable, "-m", f"legacy_lstm.{app_name}", "--cell=fused", "--preset=test",
                          f"--run_dir={tmp_path / 'run'}"], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "error: --cell=fused is not available here: the fused path (legacy_lstm/fast_lstm.py)" in out.stderr
    assert why in out.stderr and "take basic, block or cudnn_compatible" in out.stderr
    assert not (tmp_path / "run").exists()
