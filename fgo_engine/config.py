"""Run configuration: typed, validated, serialisable without secrets."""
from __future__ import annotations

import ipaddress
import json
import math
import re
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from fgo_engine.errors import ConfigError, python_limit
from fgo_engine.redaction import is_secret_name
from fgo_engine.types import is_simulated

ROLES = ("agent", "evaluator", "optimizer", "merger")
CLUSTERS = ("kmeans", "spectral", "bisect", "none")
PARTITIONS = ("category", "random", "cluster")
REVIEWS = ("auto", "if-not-worse", "ask")
SANDBOX_MODES = ("strict", "auto", "in-process")  # fgo_engine.tools.isolation.MODES
BACKTESTS = ("full", "adaptive")
METHODS = ("fgo", "vanilla", "all-at-once", "batch-wise", "bootstrapping", "no-merge", "gepa")  # gepa: its extra
EXECUTORS = ("threads", "ray")  # fgo_engine.run.executors
DEFAULT_MODEL = "fgo-sim/medium"
# settings that once existed: still accepted in session files and configs written then, and ignored
RETIRED = frozenset({"batch_size"})  # read by nothing; batch-wise and bootstrapping use |train| / subsets
# A reply cap per role, so a model that does not stop cannot run until its context is full
# (seen: 69 s evaluator replies filling a 2,048-token window). Applied when a role's
# max_tokens is not given; an explicit ``max_tokens = null`` (older sessions) means no cap.
DEFAULT_MAX_TOKENS = {"agent": 1024, "evaluator": 512, "optimizer": 4096, "merger": 4096}
# The bench's conditions, one set of defaults for `fgo bench` and `make bench` alike. The
# paper's FGO adopts every merged module (review "auto"): the row called `fgo`.
BENCH_DEFAULTS: dict[str, Any] = {"model": "fgo-sim/medium", "subsets": 4, "epochs": 2, "threshold": 2,
                                  "workers": 4, "review": "auto", "backtest": "full", "window": None}
# `fgo bench`: the methods of its default table, the named variant rows, the keys --vary changes
BENCH_METHODS = ("vanilla", "all-at-once", "batch-wise", "bootstrapping", "fgo")
BENCH_VARIANTS = ("fgo-if-not-worse",)
BENCH_VARY_KEYS = ("cluster", "partition", "subsets", "threshold", "epochs", "backtest", "review")
# Remote APIs serve many requests at once; a local server (llama.cpp, Ollama) serves one at a
# time and keeps generating after a client gives up, so a retried timeout only repeats it.
REMOTE_DEFAULTS = {"max_concurrency": 8, "timeout": 120.0, "retry_timeouts": True}
LOOPBACK_DEFAULTS = {"max_concurrency": 1, "timeout": 600.0, "retry_timeouts": False}


def is_loopback(api_base: str | None) -> bool:
    """True for a server on this machine: localhost, 127.x.x.x or ::1."""
    if not api_base or not isinstance(api_base, str):
        return False  # (a value of the wrong type is named by RunConfig.validate)
    from urllib.parse import urlsplit

    try:
        host = urlsplit(api_base if "//" in api_base else "//" + api_base).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_MODULE_BYTES = 256 << 10  # a starting module file: 256 KiB
MODULE_FILE_KEYS = {"instruction_file": "instruction", "toolbox_file": "toolbox"}


def read_module_file(path: str | Path, what: str = "instruction") -> str:
    """The text of a starting module file (``--instruction FILE``, ``instruction_file = …``),
    or a one-line :class:`ConfigError`."""
    p = Path(path).expanduser()
    try:
        if p.is_dir():
            raise ConfigError(f"{what} file {p} is a directory")
        size = p.stat().st_size
        if size > MAX_MODULE_BYTES:
            raise ConfigError(f"{what} file {p} is {size >> 10} KiB; the limit is {MAX_MODULE_BYTES >> 10} KiB")
        text = p.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {p}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} file {p} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {p} ({exc.strerror})") from None
    if not text.strip():
        raise ConfigError(f"{what} file {p} is empty")
    return text.strip("\n") + "\n" if what == "toolbox" else text.strip()


def read_module_files(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """``instruction_file`` / ``toolbox_file`` keys replaced by the text they point at
    (the session stores the text: it must not change when the file does)."""
    if not any(k in data for k in MODULE_FILE_KEYS):
        return data
    data = dict(data)
    for file_key, key in MODULE_FILE_KEYS.items():
        if file_key not in data:
            continue
        value = data.pop(file_key)
        if not isinstance(value, (str, Path)) or not str(value).strip():
            raise ConfigError(f"{file_key} must be the path of a file (got {value!r})")
        if data.get(key) is not None:
            raise ConfigError(f"give {key} or {file_key}, not both")
        path = Path(value).expanduser()
        data[key] = read_module_file(path if path.is_absolute() else base / path, key)
    return data


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
    """Model and call parameters for one role. ``api_key`` is held in memory only.

    ``timeout`` is a total deadline per call (seconds). ``max_concurrency``, ``timeout`` and
    ``retry_timeouts`` left unset take the defaults for the kind of server: a loopback
    ``api_base`` gets one call at a time, a long deadline and no retry of a timeout.
    """

    model: str = DEFAULT_MODEL
    temperature: float = 0.0
    max_tokens: int | None = None
    timeout: float = None  # type: ignore[assignment]  # resolved in __post_init__
    api_base: str | None = None
    api_key_env: str | None = None
    max_concurrency: int = None  # type: ignore[assignment]
    retry_timeouts: bool = None  # type: ignore[assignment]
    scheduling: str = "fair"  # fair: a free slot goes to the scope holding fewest; fifo: first asked
    params: dict[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        defaults = LOOPBACK_DEFAULTS if is_loopback(self.api_base) else REMOTE_DEFAULTS
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def summary(self) -> str:
        """One line for the run's config dump: the settings that shape every call."""
        cap = "no max_tokens" if self.max_tokens is None else f"max_tokens {self.max_tokens}"
        where = f" at {self.api_base}" if self.api_base else ""
        retry = "timeouts retried" if self.retry_timeouts else "timeouts not retried"
        return (f"{self.model}{where}: temperature {self.temperature:g}, {cap}, timeout {self.timeout:g} s, "
                f"concurrency {self.max_concurrency}, {retry}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("api_key")
        params = {k: v for k, v in self.params.items() if not is_secret_name(k)}
        if isinstance(params.get("extra_headers"), dict):  # Authorization & co. stay in memory
            params["extra_headers"] = {h: v for h, v in params["extra_headers"].items() if not is_secret_name(h)}
        d["params"] = params
        return d


@dataclass
class RunConfig:
    suite: str = "invoices"
    suite_options: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, RoleConfig] = field(
        default_factory=lambda: {r: RoleConfig(max_tokens=DEFAULT_MAX_TOKENS[r]) for r in ROLES})
    method: str = "fgo"
    subsets: int = 4
    epochs: int = 2
    threshold: int = 2
    cluster: str = "kmeans"
    partition: str = "category"
    seed: int = 0
    review: str = "if-not-worse"
    workers: int = 4
    task_workers: int = 8
    budget_tokens: int | None = None
    budget_cost: float | None = None
    role_budgets: dict[str, int] = field(default_factory=dict)
    cache: bool = True
    retries: int = 4
    max_retry_after: float = 60.0  # longest wait a server's Retry-After may ask for (seconds)
    embedding_model: str | None = None
    evaluate_test: bool = True
    # after the run, every subset's module and every merged module on the test split too (reported
    # beside the tree, never read by a decision); the final and the starting module are scored anyway.
    # Off by default: it repeats the test split (N + merges − 1) times, often more than the training
    test_modules: bool = False
    sandbox: str = "auto"  # LLM-written tools: strict (OS isolation required), auto, in-process
    backtest: str = "full"  # full: the whole union; adaptive: a stratified sample grown until decided
    prompt_budget: int | None = None  # optimizer prompt tokens; None: the optimizer's window minus its reply
    executor: str = "threads"  # where rollouts run: threads (this process) or ray (a Ray cluster)
    ray_address: str | None = None  # None: a local Ray instance on loopback; "auto" or "ray://host:port": join one
    instruction: str | None = None  # the starting module's text for an instruction suite (None: the suite's own)
    toolbox: str | None = None  # the starting toolbox (Python source) for a toolbox suite
    track: str | None = None  # experiment tracking: None, or "mlflow" (the track extra; fgo_engine.report.tracking)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        if not isinstance(data, dict):
            raise ConfigError("config must be a mapping of settings")
        if "api_key" in data:
            raise ConfigError("api_key: a key is never read from a config file; put it in an environment variable "
                              "and name that variable with api_key_env (per role)")
        known = {f.name for f in fields(cls)} | {"model"} | set(MODULE_FILE_KEYS)
        unknown = sorted(set(data) - known - RETIRED)
        if unknown:
            raise ConfigError(f"unknown config setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        data = {k: v for k, v in data.items() if k not in RETIRED}
        data = read_module_files(data, Path.cwd())
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
            if "api_key" in spec:
                raise ConfigError(f"roles.{role}: a key is never read from a config file; put it in an environment "
                                  "variable and name that variable with api_key_env")
            bad = sorted(set(spec) - role_fields)
            if bad:
                raise ConfigError(f"roles.{role}: unknown setting {bad[0]!r}")
            spec = dict(spec)
            if model and "model" not in spec:
                spec["model"] = model
            spec.setdefault("max_tokens", DEFAULT_MAX_TOKENS[role])
            roles[role] = RoleConfig(**spec)
        for role in roles_in:
            if role not in ROLES:
                raise ConfigError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        cfg = cls(roles=roles, **data)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(cls.read(path))

    @classmethod
    def settings(cls, path: str | Path) -> dict[str, Any]:
        """A config file's settings, checked, for flags to be laid over: as written (a role's
        unset timeout stays unset, so ``--api-base`` on loopback still brings a local server's
        defaults), each role a table, a top-level ``model`` moved into the roles without one."""
        data = cls.read(path)
        cls.from_dict(data)  # the file's own mistakes named first
        roles_in = data.get("roles") or {}
        model = data.pop("model", None)
        roles = {}
        for role in ROLES:
            spec = roles_in.get(role) or {}
            spec = {"model": spec} if isinstance(spec, str) else dict(spec)
            if model and "model" not in spec:
                spec["model"] = model
            roles[role] = spec
        data["roles"] = roles
        return data

    @staticmethod
    def read(path: str | Path) -> dict[str, Any]:
        """A config file's settings as written (module files read, nothing resolved): the
        command line lays its flags over these, so a flag's consequences (``--api-base`` on
        loopback: a local server's defaults) are the same with a file as without."""
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        if not p.is_file():
            raise ConfigError(f"{p} is not a file: --config takes a TOML or JSON file")
        try:
            text = p.read_text(encoding="utf-8")
            data = tomllib.loads(text) if p.suffix == ".toml" else json.loads(text)
        except OSError as exc:
            raise ConfigError(f"cannot read {p}: {exc.strerror}") from None
        except RecursionError:
            raise ConfigError(f"{p}: nested too deeply") from None
        except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not valid {'TOML' if p.suffix == '.toml' else 'JSON'}: {exc}") from None
        except ValueError as exc:  # Python's own limit on a whole number's digits
            raise ConfigError(f"{p}: {python_limit(exc) or exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: a config file holds a table of settings")
        return read_module_files(data, p.parent)  # a path in the file is relative to the file

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

        def is_num(v: Any) -> bool:  # a finite number (TOML's inf and nan are not settings)
            return is_int(v) or (isinstance(v, float) and math.isfinite(v))

        def is_name(v: Any) -> bool:
            return isinstance(v, str) and bool(v.strip())

        need(isinstance(self.suite, str) and bool(self.suite), "suite must be a name")
        need(isinstance(self.suite_options, dict),
             f"suite_options must be a table of key = value settings (got {self.suite_options!r})")
        need(isinstance(self.cache, bool), f"cache must be true or false (got {self.cache!r})")
        need(is_int(self.retries) and 0 <= self.retries <= 100,
             f"retries must be a whole number 0..100 (got {self.retries!r})")
        need(is_int(self.task_workers) and 1 <= self.task_workers <= 256,
             f"task_workers must be 1..256 (got {self.task_workers!r})")
        need(isinstance(self.role_budgets, dict), "role_budgets must map roles to token budgets")
        need(isinstance(self.roles, dict), "roles must map role names to settings")
        need(self.sandbox in SANDBOX_MODES,
             f"sandbox must be one of {', '.join(SANDBOX_MODES)} (got {self.sandbox!r})")
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
        need(self.budget_cost is None or (is_num(self.budget_cost) and self.budget_cost > 0),
             f"budget_cost must be a positive number (got {self.budget_cost!r})")
        need(self.backtest in BACKTESTS, f"backtest must be one of {', '.join(BACKTESTS)} (got {self.backtest!r})")
        need(self.prompt_budget is None or (is_int(self.prompt_budget) and self.prompt_budget > 0),
             f"prompt_budget must be a positive whole number (got {self.prompt_budget!r})")
        need(self.executor in EXECUTORS, f"executor must be one of {', '.join(EXECUTORS)} (got {self.executor!r})")
        need(self.ray_address is None or (isinstance(self.ray_address, str) and bool(self.ray_address.strip())),
             f"ray_address must be an address like ray://host:10001, host:6379 or auto (got {self.ray_address!r})")
        need(self.ray_address is None or self.executor == "ray",
             "ray_address is only used with executor = ray (--executor ray)")
        for key in ("instruction", "toolbox"):
            text = getattr(self, key)
            need(text is None or (isinstance(text, str) and bool(text.strip())),
                 f"{key} must be the non-empty text of the starting module (got {text!r})")
            need(text is None or len(text.encode("utf-8", "replace")) <= MAX_MODULE_BYTES,
                 f"{key}: the starting module is larger than {MAX_MODULE_BYTES >> 10} KiB")
        need(self.track in (None, "mlflow"), f"track must be mlflow or unset (got {self.track!r})")
        need(self.instruction is None or self.toolbox is None,
             "give a starting instruction or a starting toolbox, not both (a suite optimizes one kind)")
        for role, b in self.role_budgets.items():
            need(role in ROLES, f"role_budgets: unknown role {role!r}")
            need(is_int(b) and b > 0, f"role_budgets.{role} must be a positive whole number")
        for role, rc in self.roles.items():
            need(isinstance(rc.model, str) and bool(rc.model.strip()), f"roles.{role}.model must be a model name")
            need(is_num(rc.temperature) and 0 <= rc.temperature <= 2,
                 f"roles.{role}.temperature must be between 0 and 2")
            need(is_num(rc.timeout) and rc.timeout > 0, f"roles.{role}.timeout must be a number of seconds > 0")
            need(rc.api_base is None or is_name(rc.api_base),
                 f"roles.{role}.api_base must be a server's address, like http://127.0.0.1:8080/v1")
            env = rc.api_key_env
            need(env is None or (isinstance(env, str) and bool(_ENV_NAME.fullmatch(env))),
                 f"roles.{role}.api_key_env must name an environment variable, like OPENAI_API_KEY")
            need(rc.api_key is None or isinstance(rc.api_key, str), f"roles.{role}.api_key must be text")
            need(is_int(rc.max_concurrency) and rc.max_concurrency >= 1,
                 f"roles.{role}.max_concurrency must be ≥ 1")
            need(rc.scheduling in ("fair", "fifo"), f"roles.{role}.scheduling must be fair or fifo")
            need(rc.max_tokens is None or (is_int(rc.max_tokens) and rc.max_tokens > 0),
                 f"roles.{role}.max_tokens must be a positive whole number")
            need(isinstance(rc.params, dict), f"roles.{role}.params must be a table")
            headers = rc.params.get("extra_headers") if isinstance(rc.params, dict) else None
            need(headers is None or (isinstance(headers, dict)
                                     and all(isinstance(v, str) for v in headers.values())),
                 f"roles.{role}.params.extra_headers must be a table of header = \"text\"")
            if is_simulated(rc.model):
                from fgo_engine.llm.sim.profiles import parse_model

                prof = parse_model(rc.model)
                bad = [f for f in ("latency", "noise", "guess", "critic_noise", "drift", "merge_loss", "window",
                                   "attention", "reword") if getattr(prof, f) < 0]
                need(not bad, f"roles.{role}.model: {bad[0] if bad else ''} must not be negative in {rc.model!r}")
            need(isinstance(rc.retry_timeouts, bool), f"roles.{role}.retry_timeouts must be true or false")
        need(isinstance(self.evaluate_test, bool), f"evaluate_test must be true or false (got {self.evaluate_test!r})")
        need(isinstance(self.test_modules, bool), f"test_modules must be true or false (got {self.test_modules!r})")
        need(self.embedding_model is None or is_name(self.embedding_model),
             "embedding_model must be a model name")
        need(is_num(self.max_retry_after) and self.max_retry_after >= 0,
             f"max_retry_after must be a number of seconds ≥ 0 (got {self.max_retry_after!r})")
