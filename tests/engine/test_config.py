"""Config settings that were retired stay readable in files written before."""
from __future__ import annotations

import pytest

from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError
from fgo_engine.persistence import writes
from fgo_engine.run.session import Session


def test_batch_size_is_retired_but_old_files_still_load():
    cfg = RunConfig.from_dict({"suite": "toy", "batch_size": 8})
    assert "batch_size" not in cfg.to_dict()
    with pytest.raises(ConfigError, match="unknown config setting 'batch_sise'"):
        RunConfig.from_dict({"suite": "toy", "batch_sise": 8})


def test_a_session_stored_with_batch_size_opens_and_runs(tmp_path, toy_config):
    s = Session.create(tmp_path / "old.db", toy_config(method="vanilla"))
    config = {**s.config.to_dict(), "batch_size": 4}  # what a session file of an earlier version holds
    writes.session_config(s.store, config)
    s.close()
    again = Session.open(tmp_path / "old.db")
    try:
        assert again.run().status == "done"
    finally:
        again.close()
