from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import toy_suite  # noqa: E402,F401  (registers the "toy" suite and its sim skill)

import fgo_engine  # noqa: E402,F401  (environment defaults before anything imports litellm)


@pytest.fixture
def toy_config():
    from fgo_engine.config import RunConfig

    def make(**kw):
        base = {"suite": "toy", "model": "fgo-sim/medium", "subsets": 3, "epochs": 2, "threshold": 2,
                "seed": 0, "workers": 3}
        base.update(kw)
        return RunConfig.from_dict(base)

    return make


@pytest.fixture
def fake_openai():
    """A scripted OpenAI-compatible server on 127.0.0.1 (port 0) for the gateway's HTTP path."""
    from fake_openai import FakeOpenAI

    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()
