"""Run configuration: typed, validated, serialisable without secrets."""
from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fgo_engine.errors import ConfigError

ROLES = ("agent", "evaluator", "optimizer", "merger")
CLUSTERS = ("kmeans", "spectral", "bisect", "none")
PARTITIONS = ("category", "random", "cluster")
REVIEWS = ("auto", "if-not-worse", "ask")
METHODS = ("fgo", "vanilla", "all-at-once", "batch-wise", "bootstrapping", "no-merge")
DEFAULT_MODEL = "fgo-sim/medium"
# settings that once existed: still accepted in session files and configs written then, and ignored
RETIRED = frozenset({"batch_size"})  # read by nothing; batch-wise and bootstrapping use |train| / subsets


def parse_key_values(pairs: list[str], what: str = "--option") -> dict[str, Any]:
    """``["n_train=24", "scorer=exact"]`` → ``{"n_train": 24, "scorer": "exact"}``; numbers and
    true/false are converted. Shared by the command line and the app's form."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what}: write key=value pairs (got {pair!r})")
        for conv in (int, float):
            try:
                out[key] = conv(value)
                break
            except ValueError:
                continue
        else:
            out[key] = {"true": True, "false": False}.get(value.lower(), value)
    return out


@dataclass
class RoleConfig:
    """Model and call parameters for one role. ``api_key`` is held in memory only."""

    model: str = DEFAULT_MODEL
    temperature: float = 0.0
    max_tokens: int | None = None
    timeout: float = 120.0
    api_base: str | None = None
    api_key_env: str | None = None
    max_concurrency: int = 8
    params: dict[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("api_key")
        d["params"] = {k: v for k, v in self.params.items() if "key" not in k.lower()}
        return d


@dataclass
class RunConfig:
    suite: str = "invoices"
    suite_options: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, RoleConfig] = field(default_factory=lambda: {r: RoleConfig() for r in ROLES})
    method: str = "fgo"
    subsets: int = 4
    epochs: int = 2
    threshold: int = 2
    cluster: str = "kmeans"
    partition: str = "category"
    seed: int = 0
    review: str = "auto"
    workers: int = 4
    task_workers: int = 8
    budget_tokens: int | None = None
    budget_cost: float | None = None
    role_budgets: dict[str, int] = field(default_factory=dict)
    cache: bool = True
    retries: int = 4
    embedding_model: str | None = None
    evaluate_test: bool = True

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        if not isinstance(data, dict):
            raise ConfigError("config must be a mapping of settings")
        known = {f.name for f in fields(cls)} | {"model"}
        unknown = sorted(set(data) - known - RETIRED)
        if unknown:
            raise ConfigError(f"unknown config setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        data = {k: v for k, v in data.items() if k not in RETIRED}
        model = data.pop("model", None)
        roles_in = data.pop("roles", {}) or {}
        if not isinstance(roles_in, dict):
            raise ConfigError("'roles' must map role names to settings")
        roles: dict[str, RoleConfig] = {}
        role_fields = {f.name for f in fields(RoleConfig)}
        for role in ROLES:
            spec = roles_in.get(role, {})
            if isinstance(spec, str):
                spec = {"model": spec}
            if isinstance(spec, RoleConfig):
                roles[role] = spec
                continue
            if not isinstance(spec, dict):
                raise ConfigError(f"roles.{role} must be a model name or a mapping")
            bad = sorted(set(spec) - role_fields)
            if bad:
                raise ConfigError(f"roles.{role}: unknown setting {bad[0]!r}")
            spec = dict(spec)
            if model and "model" not in spec:
                spec["model"] = model
            roles[role] = RoleConfig(**spec)
        for role in roles_in:
            if role not in ROLES:
                raise ConfigError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        cfg = cls(roles=roles, **data)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        try:
            text = p.read_text(encoding="utf-8")
            data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: {exc}") from None
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["roles"] = {r: rc.to_dict() for r, rc in self.roles.items()}
        d["suite_options"] = {k: v for k, v in self.suite_options.items() if not callable(v)}
        return d

    # -- checks -----------------------------------------------------------------------
    def validate(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        def is_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        need(isinstance(self.suite, str) and bool(self.suite), "suite must be a name")
        need(self.method in METHODS, f"method must be one of {', '.join(METHODS)} (got {self.method!r})")
        need(is_int(self.subsets) and self.subsets >= 1, f"subsets must be a whole number ≥ 1 (got {self.subsets!r})")
        need(is_int(self.epochs) and self.epochs >= 1, f"epochs must be a whole number ≥ 1 (got {self.epochs!r})")
        need(is_int(self.threshold) and self.threshold >= 2,
             f"threshold must be a whole number ≥ 2 (got {self.threshold!r})")
        need(self.cluster in CLUSTERS, f"cluster must be one of {', '.join(CLUSTERS)} (got {self.cluster!r})")
        need(self.partition in PARTITIONS, f"partition must be one of {', '.join(PARTITIONS)} (got {self.partition!r})")
        need(self.review in REVIEWS, f"review must be one of {', '.join(REVIEWS)} (got {self.review!r})")
        need(is_int(self.seed), f"seed must be a whole number (got {self.seed!r})")
        need(is_int(self.workers) and 1 <= self.workers <= 256, f"workers must be 1..256 (got {self.workers!r})")
        need(self.budget_tokens is None or (is_int(self.budget_tokens) and self.budget_tokens > 0),
             f"budget_tokens must be a positive whole number (got {self.budget_tokens!r})")
        need(self.budget_cost is None or (isinstance(self.budget_cost, (int, float)) and self.budget_cost > 0),
             f"budget_cost must be a positive number (got {self.budget_cost!r})")
        for role, b in self.role_budgets.items():
            need(role in ROLES, f"role_budgets: unknown role {role!r}")
            need(is_int(b) and b > 0, f"role_budgets.{role} must be a positive whole number")
        for role, rc in self.roles.items():
            need(isinstance(rc.model, str) and bool(rc.model.strip()), f"roles.{role}.model must be a model name")
            need(isinstance(rc.temperature, (int, float)) and 0 <= rc.temperature <= 2,
                 f"roles.{role}.temperature must be between 0 and 2")
            need(isinstance(rc.timeout, (int, float)) and rc.timeout > 0, f"roles.{role}.timeout must be > 0")
            need(is_int(rc.max_concurrency) and rc.max_concurrency >= 1,
                 f"roles.{role}.max_concurrency must be ≥ 1")
            need(rc.max_tokens is None or (is_int(rc.max_tokens) and rc.max_tokens > 0),
                 f"roles.{role}.max_tokens must be a positive whole number")

    def with_model(self, model: str) -> RunConfig:
        for rc in self.roles.values():
            rc.model = model
        return self
