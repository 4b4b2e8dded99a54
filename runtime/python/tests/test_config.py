"""Scope 5: the command's configuration from Python, same precedence, same file."""

import pytest

import stormchor as sc


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "stormchor.toml"
    path.write_text('workers = 5\nseed = 9\nduration = 30\n[workload.tpcb]\nscale = 2\n')
    return path


def test_flags_beat_env_beat_file_beat_default(config_file):
    s = sc.settings(config_file, workers=3, env={"STORMCHOR_SEED": "11", "STORMCHOR_WORKERS": "4"})
    assert s.values["workers"] == 3 and s.sources["workers"] == "flag"
    assert s.values["seed"] == 11 and s.sources["seed"] == "env"
    assert s.values["duration"] == 30 and s.sources["duration"] == "file"
    assert s.values["scale"] == 1 and s.sources["scale"] == "default"
    assert s.values["target"] is None and s.sources["target"] == "default"
    assert s.workloads == {"tpcb": {"scale": 2}}
    assert "workers  = 3 (flag)" in s.describe()
    assert s.run_options() == {"workers": 3, "seconds": 30.0, "seed": 11, "target": None}


def test_a_flag_equal_to_the_default_still_wins(config_file):
    s = sc.settings(config_file, workers=2, env={})
    assert s.values["workers"] == 2 and s.sources["workers"] == "flag"


def test_the_process_environment_is_read_by_default(config_file, monkeypatch):
    monkeypatch.setenv("STORMCHOR_DURATION", "7")
    s = sc.settings(config_file)
    assert s.values["duration"] == 7 and s.sources["duration"] == "env"


def test_bad_configuration_has_the_command_s_message(tmp_path, config_file):
    with pytest.raises(sc.ConfigError, match="environment variable STORMCHOR_WORKERS=many: invalid digit"):
        sc.settings(env={"STORMCHOR_WORKERS": "many"})
    bad = tmp_path / "bad.toml"
    bad.write_text("wrokers = 3\n")
    with pytest.raises(sc.ConfigError, match="unknown field `wrokers`"):
        sc.settings(bad, env={})
    with pytest.raises(sc.ConfigError, match="cannot read the config file"):
        sc.settings(tmp_path / "missing.toml", env={})
