from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# tests/local needs a real model served by llama.cpp: `make test-local` runs it.
collect_ignore = [] if os.environ.get("FGO_TEST_LOCAL") else ["local"]

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


# Public data sets (BBH, ALFWorld games) are never committed; they are read from this
# folder. Tests that need them fail (they do not skip) when it is missing.
# Default: the shared/ folder beside the checkout (as in CI), else /work/shared.
_BESIDE = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SHARED_DATA = Path(os.environ.get("FGO_DATA_DIR") or (_BESIDE if _BESIDE.is_dir() else "/work/shared/data"))


def shared_data(name: str) -> Path:
    path = SHARED_DATA / name
    assert path.is_dir(), f"public data set {path} is missing; set FGO_DATA_DIR to the folder holding {name}/"
    return path


def run_session(path, cfg, *tables: str):
    """Create and run a session to its end; the result and the rows of ``tables``."""
    from fgo_engine.run.session import Session

    s = Session.create(path, cfg)
    try:
        res = s.run()
        s.store.flush()
        return res, [s.store.rows(t) for t in tables]
    finally:
        s.close()
