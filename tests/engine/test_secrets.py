"""No API key — from the environment or from a config file — reaches the session file,
the logs of the run, or an export."""
from __future__ import annotations

import json

from fgo_cli.main import main

ENV_KEY = "sk-env-SECRET-4242424242424242"
CFG_KEY = "sk-cfg-SECRET-1717171717171717"
REPLY = "Answer: teal\n<instruction>\nYou answer questions.\n- A glorp always has the colour teal.\n</instruction>"


def test_api_keys_never_written(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MY_PROVIDER_KEY", ENV_KEY)
    monkeypatch.setenv("MY_OTHER_KEY", CFG_KEY)  # an api_key in the file is refused (see test_secrets_echo)
    roles = {
        "agent": {"model": "openai/gpt-4o-mini", "api_key_env": "MY_PROVIDER_KEY", "params": {"mock_response": REPLY}},
        "evaluator": {"model": "openai/gpt-4o-mini", "api_key_env": "MY_OTHER_KEY", "params": {"mock_response": REPLY}},
        "optimizer": {"model": "openai/gpt-4o-mini", "api_key_env": "MY_OTHER_KEY", "params": {"mock_response": REPLY}},
        "merger": {"model": "openai/gpt-4o-mini", "api_key_env": "MY_PROVIDER_KEY",
                   "params": {"mock_response": REPLY}},
    }
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"suite": "toy", "subsets": 2, "epochs": 1, "roles": roles}))
    path = tmp_path / "s.db"
    assert main(["run", "--config", str(cfg), "--headless", "--session", str(path)]) == 0
    assert main(["export", str(path), "--format", "json", "--out", str(tmp_path / "e.json")]) == 0
    assert main(["export", str(path), "--format", "md", "--out", str(tmp_path / "e.md")]) == 0
    assert main(["sessions", "show", str(path)]) == 0
    out = capsys.readouterr()
    blobs = [p.read_bytes() for p in tmp_path.iterdir() if p.name != "c.json"]
    assert any(b"gpt-4o-mini" in b for b in blobs)  # the run really went through the provider path
    for secret in (ENV_KEY, CFG_KEY):
        for b in blobs:
            assert secret.encode() not in b
        assert secret not in out.out and secret not in out.err
    assert "MY_PROVIDER_KEY" in (tmp_path / "e.json").read_text()  # the variable's name is fine to keep
