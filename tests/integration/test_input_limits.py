"""Input that reaches Python's own limits, and settings of the wrong type, get one clear line
and exit code 2 from the CLI (issue 23 items 11 and 12); a config file and the command line
agree on a local server's defaults (item 13)."""
from __future__ import annotations

import json

import pytest

from fgo_cli.main import _parser, config_from_args, main
from fgo_engine.config import LOOPBACK_DEFAULTS, REMOTE_DEFAULTS, ROLES, RunConfig
from fgo_engine.errors import ConfigError

DIGITS = "9" * 5000  # beyond the 4300 digits Python converts between text and a whole number


def fails(capsys, *argv):
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fgo: error: "), err
    assert "Traceback" not in err[0]
    return err[0]


def run_args(tmp_path, *extra):
    return ["run", *extra, "--headless", "--session", str(tmp_path / "s.db")]


def nothing_written(tmp_path):
    return not list(tmp_path.glob("s.*"))


# -- item 11: Python's own limits -----------------------------------------------------------
@pytest.mark.parametrize("line,needle", [
    ('{"id": "a", "input": "x", "expected": ' + DIGITS + '}', "more than 4300 digits"),
    ('{"id": "a", "input": "x", "expected": "y", "weight": ' + DIGITS + '}', "more than 4300 digits"),
    ('{"id": "a", "input": "x", "expected": 1e999}', "'expected' must be a string"),
    ('{"id": "a", "input": "x", "expected": "y", "meta": ' + "[" * 50_000 + "]" * 50_000 + '}',
     "nested too deeply"),
])
def test_a_task_line_beyond_pythons_limits_is_named(tmp_path, capsys, line, needle):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text('{"id": "ok", "input": "x", "expected": "y"}\n' + line + "\n")
    msg = fails(capsys, *run_args(tmp_path, "--tasks", str(tasks)))
    assert "t.jsonl" in msg and "line 2" in msg and needle in msg
    assert nothing_written(tmp_path)


@pytest.mark.parametrize("name,content,needle", [
    ("c.toml", f'suite = "toy"\nsubsets = {DIGITS}\n', "more than 4300 digits"),
    ("c.toml", f'suite = "toy"\n[suite_options]\nn_train = {DIGITS}\n', "more than 4300 digits"),
    ("c.json", f'{{"suite": "toy", "seed": {DIGITS}}}', "more than 4300 digits"),
    ("c.json", '{"suite": "toy", "roles": {"agent": {"timeout": 1e999}}}', "roles.agent.timeout must be"),
    ("c.json", '{"suite": "toy", "budget_cost": 1e999}', "budget_cost must be a positive number"),
    ("c.json", '{"suite": "toy", "x": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested too deeply"),
])
def test_a_config_file_beyond_pythons_limits_is_named(tmp_path, capsys, name, content, needle):
    cfg = tmp_path / name
    cfg.write_text(content)
    msg = fails(capsys, *run_args(tmp_path, "--config", str(cfg)))
    assert needle in msg
    assert nothing_written(tmp_path)


def test_a_limit_reached_anywhere_else_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    import fgo_cli.main as cli

    def deep(_args):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(cli, "cmd_sessions", deep)
    msg = fails(capsys, "sessions")
    assert msg == "fgo: error: the input goes beyond Python's limits (nested too deeply)"


def test_any_other_value_error_is_still_a_bug_with_its_traceback(monkeypatch):
    import fgo_cli.main as cli

    def bug(_args):
        raise ValueError("a bug")

    monkeypatch.setattr(cli, "cmd_sessions", bug)
    with pytest.raises(ValueError, match="a bug"):
        main(["sessions"])


# -- item 12: every setting checked when the file is read -----------------------------------
@pytest.mark.parametrize("content,needle", [
    ('[roles.agent]\napi_base = 5\n', "roles.agent.api_base must be a server's address"),
    ('[roles.agent]\napi_base = ""\n', "roles.agent.api_base must be a server's address"),
    ('[roles.agent]\nparams = {extra_headers = "x"}\n', "roles.agent.params.extra_headers must be a table"),
    ('[roles.agent]\nparams = {extra_headers = {X-Trace = 5}}\n', "roles.agent.params.extra_headers"),
    ('[roles.agent]\napi_key_env = 5\n', "roles.agent.api_key_env must name an environment variable"),
    ('[roles.agent]\napi_key_env = "MY KEY"\n', "roles.agent.api_key_env must name an environment variable"),
    ('[roles.agent]\ntimeout = inf\n', "roles.agent.timeout must be a number of seconds"),
    ('[roles.agent]\ntimeout = nan\n', "roles.agent.timeout must be a number of seconds"),
    ('[roles.agent]\ntimeout = true\n', "roles.agent.timeout must be a number of seconds"),
    ('[roles.agent]\ntemperature = true\n', "roles.agent.temperature must be between 0 and 2"),
    ('evaluate_test = "no"\n', "evaluate_test must be true or false"),
    ('embedding_model = 5\n', "embedding_model must be a model name"),
    ('max_retry_after = inf\n', "max_retry_after must be a number of seconds"),
])
def test_a_setting_of_the_wrong_type_is_named_when_the_file_is_read(tmp_path, capsys, content, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text('suite = "toy"\n' + content)
    msg = fails(capsys, *run_args(tmp_path, "--config", str(cfg)))
    assert needle in msg, msg
    assert nothing_written(tmp_path)
    with pytest.raises(ConfigError, match="must"):  # the Python API says the same
        RunConfig.load(cfg)


# -- item 13: a config file and --api-base on loopback --------------------------------------
def resolved(tmp_path, *argv):
    return config_from_args(_parser().parse_args(["run", *argv, "--headless"]))


@pytest.mark.parametrize("content", [
    'suite = "toy"\nmodel = "openai/fake"\n',
    'suite = "toy"\n[roles]\nagent = "openai/fake"\nevaluator = "openai/fake"\noptimizer = "openai/fake"\n'
    'merger = "openai/fake"\n',
    'suite = "toy"\n[roles.agent]\nmodel = "openai/fake"\ntemperature = 0.5\n',
])
def test_a_config_file_with_api_base_on_the_command_line_gets_the_local_server_defaults(tmp_path, content):
    cfg = tmp_path / "c.toml"
    cfg.write_text(content)
    base = "http://127.0.0.1:8765/v1"
    with_file = resolved(tmp_path, "--config", str(cfg), "--api-base", base)
    without = resolved(tmp_path, "--suite", "toy", "--model", "openai/fake", "--api-base", base)
    for role in ROLES:
        rc = with_file.roles[role]
        assert rc.api_base == base
        assert {k: getattr(rc, k) for k in LOOPBACK_DEFAULTS} == LOOPBACK_DEFAULTS, role
        assert {k: getattr(without.roles[role], k) for k in LOOPBACK_DEFAULTS} == LOOPBACK_DEFAULTS
    assert with_file.roles["agent"].model == "openai/fake"
    if "temperature" in content:
        assert with_file.roles["agent"].temperature == 0.5


def test_settings_the_file_gives_win_over_the_kind_of_server(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-000000")
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"suite": "toy", "model": "openai/fake",
                               "roles": {"agent": {"timeout": 30, "max_concurrency": 4}}}))
    c = resolved(tmp_path, "--config", str(cfg), "--api-base", "http://localhost:8080/v1")
    assert (c.roles["agent"].timeout, c.roles["agent"].max_concurrency) == (30, 4)
    assert c.roles["agent"].retry_timeouts is False
    assert c.roles["merger"].timeout == LOOPBACK_DEFAULTS["timeout"]
    remote = resolved(tmp_path, "--config", str(cfg))  # no --api-base: a remote provider's defaults
    assert remote.roles["merger"].timeout == REMOTE_DEFAULTS["timeout"]
