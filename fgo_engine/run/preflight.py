"""Checks before a run starts: model names that litellm (or the simulator) knows, and the API
keys those providers need. Every problem at once, one line each, never a traceback."""
from __future__ import annotations

import os

from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError
from fgo_engine.types import is_simulated


def model_problem(model: str, *, api_base: str | None = None) -> str | None:
    """Why a model string will not work, or None."""
    model = (model or "").strip()
    if not model:
        return "give a model name"
    if is_simulated(model):
        from fgo_engine.llm.sim.profiles import parse_model

        try:
            parse_model(model)
        except ConfigError as exc:
            return str(exc)
        return None
    if "/" not in model and not api_base:
        return f"write a litellm name with its provider, like 'openai/{model}', or 'fgo-sim/medium'"
    from fgo_engine.llm.gateway import get_litellm

    try:
        get_litellm().get_llm_provider(model, api_base=api_base)
    except Exception:  # litellm raises several types for an unknown provider
        return f"litellm does not know the provider of {model!r} (e.g. openai/…, anthropic/…, ollama/…)"
    return None


def missing_key(model: str, *, api_key_env: str | None = None, api_base: str | None = None) -> str | None:
    """The environment variable a model's provider needs and that is not set, or None."""
    if is_simulated(model):
        return None
    if api_key_env:
        return None if os.environ.get(api_key_env) else api_key_env
    if api_base:
        return None  # a local server: a placeholder key is sent
    from fgo_engine.llm.gateway import get_litellm

    try:
        env = get_litellm().validate_environment(model=model)
    except Exception:  # unknown to litellm: model_problem says so
        return None
    missing = env.get("missing_keys") or []
    return missing[0] if missing and not env.get("keys_in_environment") else None


def missing_keys(config: RunConfig) -> list[str]:
    """One line per model whose provider needs an API key that is not set (naming its roles)."""
    roles: dict[tuple[str, str], list[str]] = {}
    for role, rc in config.roles.items():
        if rc.api_key or "mock_response" in rc.params or model_problem(rc.model, api_base=rc.api_base):
            continue
        var = missing_key(rc.model, api_key_env=rc.api_key_env, api_base=rc.api_base)
        if var:
            roles.setdefault((rc.model, var), []).append(role)
    return [f"{', '.join(rs)} model {model!r}: the environment variable {var} is not set"
            for (model, var), rs in roles.items()]


def check_models(config: RunConfig, *, keys: bool = True) -> None:
    """Raise one ConfigError listing every role whose model or key is a problem."""
    problems = []
    for role, rc in config.roles.items():
        p = model_problem(rc.model, api_base=rc.api_base)
        if p:
            problems.append(f"unknown model {rc.model!r} for role {role}: {p}")
    if keys:
        problems += missing_keys(config)
    if problems:
        raise ConfigError("; ".join(dict.fromkeys(problems)))
