"""Plain-argument helpers of the CLI contract."""

import dataclasses

import pytest

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
