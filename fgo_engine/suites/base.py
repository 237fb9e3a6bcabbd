"""The suite adapter protocol and the suite registry.

A suite owns its tasks, the starting module, how a real LLM agent runs a task
(single call, ReAct loop, function-calling loop) and how a result is scored.
The engine only sees this protocol.
"""
from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError, FGOError
from fgo_engine.hooks import with_defaults
from fgo_engine.llm.sim import skills as sim_skills
from fgo_engine.types import Completion, Module, ModuleKind, Task, Trajectory


class AgentLLM(Protocol):
    """The agent role, already bound to a scope (subset / merge node / phase)."""

    def __call__(
        self, messages: list[dict[str, Any]], *, tools: list[dict[str, Any]] | None = None
    ) -> Completion: ...


@runtime_checkable
class Suite(Protocol):
    name: str
    module_kind: ModuleKind

    def train_tasks(self) -> list[Task]: ...

    def test_tasks(self) -> list[Task]: ...

    def initial_module(self) -> Module: ...

    def describe(self) -> str:
        """One or two sentences for optimizer/merger prompts: what the agent does here."""
        ...

    def run_agent(self, task: Task, module: Module, llm: AgentLLM) -> Trajectory:
        """Run the agent on one task with this module; never raises for agent mistakes
        (an LLMError from the gateway may propagate)."""
        ...

    # -- optional hooks (defaults in SuiteBase) ---------------------------------------
    @property
    def calls_per_task(self) -> int:
        """Typical agent LLM calls per task, for the cost projection."""
        ...

    def validate_module(self, text: str) -> None:
        """Raise MalformedOutputError for an LLM-written module the agent cannot use."""
        ...

    def similarity_text(self, module: Module) -> str:
        """The text the merge tree clusters modules by."""
        ...

    def sandbox_status(self) -> tuple[str, str]:
        """(what LLM-written code runs under, a warning when the sandbox fell back)."""
        ...

    def set_log(self, log: Any) -> None:
        """The session's log (a ``logging.LoggerAdapter``), given when a session takes the suite:
        a suite running the user's code writes the user's tracebacks there."""
        ...


class SuiteBase:
    """Defaults of the optional :class:`Suite` hooks; a suite inherits it and overrides some."""

    calls_per_task: int = 1

    def validate_module(self, text: str) -> None:
        return None  # any non-empty text is a usable module

    def similarity_text(self, module: Module) -> str:
        return module.text

    def sandbox_status(self) -> tuple[str, str]:
        """A suite that runs LLM-written code: (what that code runs under, for the session
        record; a warning the run shows when the sandbox fell back, or ``""``)."""
        return "", ""

    def set_log(self, log: Any) -> None:
        return None


def with_suite_defaults(suite: Any) -> Suite:
    """A suite with every optional hook (a plugin suite may not inherit SuiteBase)."""
    return with_defaults(suite, SuiteBase)


def check_data_options(suite: str, where: str, data: Any, unknown: dict[str, Any], allowed: str,
                       **counts: Any) -> None:
    """The option checks every data-backed suite makes: no unknown option, a ``data``
    folder given (the error says where to get the files), whole counts ≥ 0."""
    if unknown:
        raise ConfigError(f"{suite}: unknown option {sorted(unknown)[0]!r}; options are {allowed}")
    if data is None or str(data).strip() == "":
        raise ConfigError(f"{suite} needs its data: --option data=DIR, a folder with {where}")
    for key, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{suite}: {key} must be a whole number ≥ 0, got {value!r}")


SuiteFactory = Callable[..., Suite]
_REGISTRY: dict[str, SuiteFactory] = {}
_RUNS_TOOLS: set[str] = set()
_UNLISTED: set[str] = set()
ENTRY_POINTS = "fgo.suites"  # the entry-point group of plugin packages
_BROKEN: dict[str, str] = {}  # plugin suite name -> why its entry point did not load
_PLUGINS: dict[str, str] = {}  # plugin suite name -> the package it came from
_plugins_loaded = False
_plugins_lock = threading.RLock()
_log = logging.getLogger("fgo.suites")


def register_suite(name: str, factory: SuiteFactory, *, runs_tools: bool = False, listed: bool = True) -> None:
    """``runs_tools``: the suite executes LLM-written code, so its factory takes the
    run's ``sandbox`` setting (``strict`` / ``auto`` / ``in-process``). ``listed=False``: loadable
    by name but not offered in suite lists (the user-agent suite needs the user's code)."""
    _REGISTRY[name] = factory
    _BROKEN.pop(name, None)
    if runs_tools:
        _RUNS_TOOLS.add(name)
    else:
        _RUNS_TOOLS.discard(name)
    if listed:
        _UNLISTED.discard(name)
    else:
        _UNLISTED.add(name)


def _load_entry_points() -> None:
    """Suites of installed plugin packages: each entry point of the ``fgo.suites`` group names a
    suite factory (``name = "pkg.module:Factory"``, registered under the entry point's name) or a
    module that registers its suites itself. One that fails to import is remembered with its
    reason (a warning in the log; an error when that suite is asked for), the others still load."""
    global _plugins_loaded
    with _plugins_lock:
        if _plugins_loaded:
            return
        _plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINTS):
            package = ep.dist.name if ep.dist is not None else "?"
            try:
                obj = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
                why = (f"suite {ep.name!r} from plugin package {package} ({ENTRY_POINTS} entry point "
                       f"{ep.value}) cannot be imported: {type(exc).__name__}: {exc}")
                _BROKEN[ep.name] = " ".join(why.split())
                _log.warning("%s", _BROKEN[ep.name])
                continue
            if inspect.ismodule(obj):
                _PLUGINS[ep.name] = package
                continue  # it registered its suites on import
            if not callable(obj):
                _BROKEN[ep.name] = (f"suite {ep.name!r} from plugin package {package}: the {ENTRY_POINTS} entry "
                                    f"point {ep.value} is not a suite factory (got {type(obj).__name__})")
                _log.warning("%s", _BROKEN[ep.name])
                continue
            register_suite(ep.name, obj, runs_tools=bool(getattr(obj, "runs_tools", False)))
            _PLUGINS[ep.name] = package


def plugin_suites() -> dict[str, str]:
    """Entry points of installed plugin packages that loaded: entry point name -> package."""
    _load_builtins()
    return dict(_PLUGINS)


def broken_plugins() -> dict[str, str]:
    """Plugin suites whose entry point failed to load: name -> one line saying why."""
    _load_builtins()
    return dict(_BROKEN)


def module_kind_of(name: str) -> ModuleKind:
    """What a registered suite optimizes, without building it (a factory that is a class says;
    else an instruction)."""
    _load_builtins()
    kind = getattr(_REGISTRY.get(name), "module_kind", "instruction")
    return "toolbox" if kind == "toolbox" else "instruction"


def suite_names() -> list[str]:
    """The suites to offer: built-in, ``FGO_PLUGINS`` modules and installed plugin packages."""
    _load_builtins()
    return sorted(n for n in _REGISTRY if n not in _UNLISTED)


def _load_builtins() -> None:
    # Imported here so that importing one suite never pays for the others.
    import importlib

    from fgo_engine import _env

    for plugin in _env.plugins():
        try:
            importlib.import_module(plugin)  # a module that calls register_suite / register_skill
        except ImportError as exc:
            raise ConfigError(f"{_env.PLUGINS}: cannot import {plugin!r}: {exc}") from None

    for mod in ("household", "invoices", "jsonl_tasks", "tools", "bbh", "alfworld", "user_agent"):
        try:
            importlib.import_module(f"fgo_engine.suites.{mod}")
        except ModuleNotFoundError as exc:  # a suite still being built
            if exc.name != f"fgo_engine.suites.{mod}":
                raise
    _load_entry_points()



sim_skills.add_loader(_load_builtins)  # the simulator asks for the suites' skills through this

def load_suite(name: str, *, seed: int = 0, sandbox: str | None = None, **options: Any) -> Suite:
    """Build a suite by name (``household``, ``invoices``, ``tools``) or from a JSONL
    path (``jsonl`` with ``path=…``)."""
    _load_builtins()
    if name not in _REGISTRY:
        if name in _BROKEN:
            raise ConfigError(_BROKEN[name])
        raise ConfigError(f"unknown suite {name!r}; choose one of: {', '.join(suite_names())}")
    if sandbox is not None and name in _RUNS_TOOLS:
        options = {"sandbox": sandbox, **options}
    check_option_types(name, _REGISTRY[name], options)
    return with_suite_defaults(_REGISTRY[name](seed=seed, **options))


_KINDS = {bool: "true or false", int: "a whole number", float: "a number"}


def check_option_types(name: str, factory: Any, options: dict[str, Any]) -> None:
    """An option whose default is a number or a flag must be one (``n_train=abc`` is named
    in one line, before the suite's own code compares it with a number)."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    for key, value in options.items():
        p = params.get(key)
        if p is None or type(p.default) not in _KINDS:
            continue
        want = type(p.default)
        if want is bool:
            ok = isinstance(value, bool)
        elif want is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok:
            raise ConfigError(f"{name}: option {key} must be {_KINDS[want]} (got {value!r})")


def build_suite(config: RunConfig) -> Suite:
    suite = load_suite(config.suite, seed=config.seed, sandbox=config.sandbox, **config.suite_options)
    return with_starting_module(suite, config)


class _StartedSuite:
    """A suite whose starting module is the operator's (``--instruction`` / ``--toolbox``)."""

    def __init__(self, inner: Suite, module: Module):
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_module", module)

    def initial_module(self) -> Module:
        return self._module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)

    def __repr__(self) -> str:
        return f"{self._inner!r} (starting from the configured {self._module.kind})"


def with_starting_module(suite: Suite, config: RunConfig) -> Suite:
    """``suite`` starting from ``config.instruction`` or ``config.toolbox`` when one is set;
    a module of the other kind than the suite optimizes, or a toolbox the suite cannot use,
    is a :class:`ConfigError`."""
    kinds: tuple[ModuleKind, ...] = ("instruction", "toolbox")
    for kind in kinds:
        text = getattr(config, kind, None)
        if text is None:
            continue
        if suite.module_kind != kind:
            other = "--toolbox" if suite.module_kind == "toolbox" else "--instruction"
            raise ConfigError(f"suite {config.suite!r} optimizes a{'n' if suite.module_kind[0] in 'i' else ''} "
                              f"{suite.module_kind}, not a{'n' if kind[0] == 'i' else ''} {kind}: "
                              f"give {other} FILE")
        try:
            suite.validate_module(text)
        except FGOError as exc:
            raise ConfigError(f"the starting {kind} cannot be used: {exc}") from None
        return with_suite_defaults(_StartedSuite(suite, Module(kind, text)))
    return suite
