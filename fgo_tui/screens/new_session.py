"""The new-session form: suite or task file, models per role, FGO settings, review
policy, budget. Shows the projected LLM calls before anything starts and explains bad
values next to the form (the engine's own ConfigError messages, never a traceback)."""
from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Button, Footer, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from fgo_engine.types import is_simulated
from fgo_tui.base import StudioApp
from fgo_tui.messages import StartSession
from fgo_tui.numbers import parse_number

if TYPE_CHECKING:
    from fgo_engine.suites.base import Suite
    from fgo_engine.types import Task

DEFAULT_MODEL = "fgo-sim/medium"
ROLES = ("agent", "evaluator", "optimizer", "merger")
SCORERS = ("normalized", "exact", "contains", "regex", "numeric", "llm_judge")
JSONL = "jsonl"
NO_TASK_FILE = "give the path of a task file (JSONL: one JSON object per line; CSV or TSV: a header row)"


NUMBER_FIELDS = {"f-subsets": "subsets", "f-epochs": "epochs", "f-threshold": "threshold",
                 "f-budget": "budget_tokens", "f-budget-cost": "budget_cost", "f-seed": "seed",
                 "f-workers": "workers"}
# the form's own words for the engine's settings, in the messages shown beside the fields
FIELD_WORDS = {"subsets": "Subsets N", "epochs": "Epochs", "threshold": "Merge threshold t",
               "budget_tokens": "Token budget", "budget_cost": "Cost budget", "seed": "Seed",
               "workers": "Parallel subsets"}
REQUIRED = ("f-subsets", "f-epochs", "f-threshold")  # blank is not "the default": it is refused


def in_form_words(key: str, message: str) -> str:
    """'budget_tokens must be …' → 'Token budget must be …'."""
    word = FIELD_WORDS.get(key)
    return re.sub(rf"\b{re.escape(key)}\b", word, message, count=1) if word else message


def parse_options(raw: str) -> dict[str, Any]:
    """'n_train=24 n_test=24' or 'n_train=24, n_test=24' → {'n_train': 24, 'n_test': 24}."""
    from fgo_engine.config import parse_key_values

    return parse_key_values([p for p in re.split(r"[,\s]+", raw.strip()) if p], "suite options")


def starting_module(suite: str, value: str) -> dict[str, str]:
    """The form's starting module: a path to a file (read now: the session keeps the text) or
    the text itself, as the setting the suite takes (``instruction`` or ``toolbox``)."""
    from fgo_engine.config import read_module_file
    from fgo_engine.suites.base import module_kind_of

    kind = module_kind_of(suite)
    looks_like_path = "\n" not in value and len(value) < 4096
    if looks_like_path and Path(value).expanduser().is_file():
        return {kind: read_module_file(value, kind)}
    return {kind: value}


def projection_text(proj: Any, n_train: int, n_test: int, warnings: list[str], wall: Any = None) -> Text:
    """The projection as the form shows it: calls (bound, expected), tokens and cost per role."""
    from fgo_engine.method.projection import fmt_cost, fmt_count

    t = Text()
    t.append(f"{n_train} training / {n_test} test tasks\n", style="dim")
    def cost(c: float | None) -> str:
        return "?" if c is None else fmt_cost(c)

    # 36 columns: fits the side panel at 100 columns
    t.append(f"{'':<9}{'calls≤':>7}{'~':>6}{'tok~':>7}{'cost~':>7}\n", style="dim")
    for role, p in proj.roles.items():
        t.append(f"{role[:9]:<9}", style="dim")
        t.append(f"{fmt_count(p.calls_max):>7}{fmt_count(p.calls):>6}{fmt_count(p.tokens):>7}"
                 f"{cost(p.cost):>7}\n")
    t.append(f"{'total':<9}{fmt_count(proj.calls_max):>7}{fmt_count(proj.calls):>6}{fmt_count(proj.tokens):>7}"
             f"{cost(proj.cost):>7}\n", style="bold")
    t.append(f"at most about {fmt_count(proj.tokens_max)} tokens · {fmt_cost(proj.cost_max)}\n", style="dim")
    if wall is not None:
        for i, line in enumerate(wall.lines()):
            t.append(line.strip() + "\n", style="" if i == 0 else "dim")
    for w in warnings:
        t.append(f"⚠ {w}\n", style="yellow")
    for n in proj.notes:
        t.append(f"{n}\n", style="dim italic")
    t.append("calls ≤ is a hard bound (every task fails, every episode runs to its limit); ~ are expected "
             "values. A resumed run never pays twice for a call.", style="dim")
    return t


class NewSessionScreen(Screen):
    app = getters.app(StudioApp)  # self.app is typed: see fgo_tui/base.py

    BINDINGS = [
        Binding("ctrl+s", "start", "Start run", priority=True),
        Binding("escape", "back", "Back"),
    ]

    def __init__(self, sessions_dir: Path, suites: list[str]):
        super().__init__()
        self.sessions_dir = Path(sessions_dir)
        self.suites = [s for s in suites if s != JSONL]
        self.error = ""  # the message shown next to the form ('' when the form is valid)
        self.projection: Any = None  # the latest Projection
        self._suite_cache: dict[str, tuple[list[Task], list[Task], Suite]] = {}
        self._debounce: Timer | None = None
        self._labels: dict[str, str] = {}  # field id → its label (the words errors use)
        self.busy: str | None = None  # the one-run-at-a-time line shown above the form ('' when none)
        self._refused = False  # ctrl+s was refused while another run was in progress

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(Text("New session", style="bold"), classes="screen-title")
        yield Static("", id="form-busy")
        with Horizontal(id="new-body"):
            with VerticalScroll(id="new-form"):
                yield Static(Text("What to optimize", style="bold"), classes="form-section")
                default = "household" if "household" in self.suites else (self.suites[0] if self.suites else JSONL)
                opts = [(s, s) for s in self.suites] + [("Task file (JSONL or CSV)…", JSONL)]
                yield from self._field("Suite", Select(opts, value=default, allow_blank=False, id="f-suite",
                                                         compact=True))
                yield from self._field("Task file (.jsonl, .csv)",
                                       Input(placeholder="path/to/tasks.jsonl (or .csv, .tsv)", id="f-tasks",
                                             compact=True),
                                       classes="jsonl-only")
                yield from self._field("Scorer", Select([(s, s) for s in SCORERS], value="normalized",
                                                         allow_blank=False, id="f-scorer", compact=True),
                                       classes="jsonl-only")
                yield from self._field("Suite options",
                                       Input(placeholder="e.g. n_train=24 n_test=24", id="f-options", compact=True))
                yield from self._field("Starting module",
                                       Input(placeholder="the suite's own (or a file path, or pasted text)",
                                             id="f-start", compact=True))
                yield Static(Text("Models per role", style="bold"), classes="form-section")
                yield from self._field("same for every role", Input(placeholder="type a model to set all four",
                                                                     id="f-model-all", compact=True))
                for role in ROLES:
                    yield from self._field(f"{role}", Input(DEFAULT_MODEL, id=f"f-model-{role}", compact=True))
                yield Static(Text("fgo-sim/small|medium|large[:latency=0.02] is the simulated LLM (a test bed). "
                                  "Any litellm name works too, e.g. openai/gpt-4o-mini, with its API key in "
                                  "the environment.", style="dim"), classes="form-note")
                yield Static(Text("FGO: divide, optimize, merge", style="bold"), classes="form-section")
                yield from self._field("Subsets N", Input("4", id="f-subsets", compact=True))
                yield from self._field("Epochs", Input("2", id="f-epochs", compact=True))
                yield from self._field("Merge threshold t", Input("2", id="f-threshold", compact=True))
                from fgo_engine.config import BACKTESTS, CLUSTERS, METHODS, PARTITIONS, REVIEWS, RunConfig

                yield from self._field("Clustering", Select([(c, c) for c in CLUSTERS], value="kmeans",
                                                             allow_blank=False, id="f-cluster", compact=True))
                yield from self._field("Partition", Select([(p, p) for p in PARTITIONS], value="category",
                                                            allow_blank=False, id="f-partition", compact=True))
                yield from self._field("Review merges", Select([(r, r) for r in REVIEWS], value="ask",
                                                                allow_blank=False, id="f-review", compact=True))
                yield Static(Text(f"ask: you review each merge here (fgo run defaults to {RunConfig.review}). "
                                  "if-not-worse keeps a merge only if its backtest is not below its best "
                                  "child; auto approves every merge.", style="dim"), classes="form-note")
                yield from self._field("Backtest", Select([(b, b) for b in BACKTESTS], value=RunConfig.backtest,
                                                           allow_blank=False, id="f-backtest", compact=True))
                yield Static(Text("full: every task under the merge; adaptive: a sample per subset, grown "
                                  "until the merge is clearly better or worse (cheaper on large trees).",
                                  style="dim"), classes="form-note")
                yield from self._field("Test every module", Select(
                    [("no: the result and the starting module", "no"), ("yes: every module of the tree too", "yes")],
                    value="no", allow_blank=False, id="f-test-modules", compact=True))
                yield Static(Text("After the run, on the test split; reported only, never read by a decision. "
                                  "Yes repeats the test split once per subset and merge (see the projection).",
                                  style="dim"), classes="form-note")
                yield Static(Text("Run", style="bold"), classes="form-section")
                yield from self._field("Token budget", Input(placeholder="none (e.g. 500k, 1.2M)", id="f-budget",
                                                             compact=True))
                yield from self._field("Cost budget (USD)", Input(placeholder="none (e.g. 2.50)", id="f-budget-cost",
                                                                  compact=True))
                yield from self._field("Method", Select([(m, m) for m in METHODS], value="fgo", allow_blank=False,
                                                         id="f-method", compact=True))
                yield from self._field("Parallel subsets", Input("4", id="f-workers", compact=True))
                yield from self._field("Seed", Input("0", id="f-seed", compact=True))
                yield from self._field("Session name",
                                       Input(placeholder="<suite>-<date>-<time>", id="f-name", compact=True))
                from fgo_engine.config import EXECUTORS

                yield from self._field("Executor", Select([(x, x) for x in EXECUTORS], value="threads",
                                                           allow_blank=False, id="f-executor", compact=True))
                yield from self._field("Ray address", Input(placeholder="local instance (or ray://host:10001, auto)",
                                                            id="f-ray-address", compact=True))
            with Vertical(id="new-side"):
                yield Static(Text("Projected LLM use", style="bold"), classes="side-title")
                yield Static(Text("…", style="dim"), id="projection")
                yield Static("", id="form-error")
                with Horizontal(id="new-buttons"):
                    yield Button("Back (esc)", id="back")
                    yield Button("Start run (ctrl+s)", id="start", variant="success")
        yield Footer()

    def _field(self, label: str, widget: Any, classes: str = "") -> ComposeResult:
        self._labels[widget.id] = label
        with Horizontal(classes=f"field {classes}".strip()):
            yield Label(label, classes="field-label")
            yield widget
        yield Static("", id=f"err-{widget.id}", classes=f"field-error {classes}".strip())

    def on_mount(self) -> None:
        blink = self.app.cursor_blink
        for w in self.query(Input):
            w.cursor_blink = blink
        self._toggle_jsonl()
        self._schedule()
        self._show_busy()
        self.set_interval(0.5, self._show_busy)  # the line goes once that run ends
        self.query_one("#f-suite", Select).focus()

    # -- form → config ------------------------------------------------------------------
    def value(self, wid: str) -> Any:
        w = self.query_one(f"#{wid}")
        assert isinstance(w, (Input, Select)), wid
        return w.value

    def form_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        suite = self.value("f-suite")
        options = parse_options(self.value("f-options"))
        if suite == JSONL:
            path = self.value("f-tasks").strip()
            if not path:
                from fgo_engine.errors import ConfigError

                raise ConfigError(NO_TASK_FILE)
            options["path"] = str(Path(path).expanduser().resolve())
            options["scorer"] = self.value("f-scorer")
        data["suite"] = suite
        if options:
            data["suite_options"] = options
        if start := self.value("f-start").strip():
            data.update(starting_module(suite, start))
        for wid, key in NUMBER_FIELDS.items():
            v = parse_number(self.value(wid), real=key == "budget_cost")
            if v is not None:
                data[key] = v
        for key, wid in (("cluster", "f-cluster"), ("partition", "f-partition"), ("review", "f-review"),
                         ("backtest", "f-backtest"), ("method", "f-method"), ("executor", "f-executor")):
            data[key] = self.value(wid)
        data["test_modules"] = self.value("f-test-modules") == "yes"
        if address := self.value("f-ray-address").strip():
            data["executor"], data["ray_address"] = "ray", address
        data["roles"] = {r: {"model": self.value(f"f-model-{r}").strip() or DEFAULT_MODEL} for r in ROLES}
        return data

    def field_errors(self) -> dict[str, str]:
        """Every field's problem at once, in the engine's words (no litellm import: that is the worker's)."""
        from fgo_engine.config import RunConfig
        from fgo_engine.errors import ConfigError

        errors: dict[str, str] = {}
        for wid, key in NUMBER_FIELDS.items():
            v = parse_number(self.value(wid), real=key == "budget_cost")
            if v is None:
                if wid in REQUIRED:
                    errors[wid] = f"{FIELD_WORDS[key]} is needed: give a whole number"
                continue
            try:
                RunConfig.from_dict({key: v})
            except ConfigError as exc:
                errors[wid] = in_form_words(key, str(exc))
        try:
            parse_options(self.value("f-options"))
        except ConfigError as exc:
            errors["f-options"] = str(exc)
        if self.value("f-suite") == JSONL and not self.value("f-tasks").strip():
            errors["f-tasks"] = NO_TASK_FILE
        errors.update(self._model_errors())
        return errors

    def _model_errors(self) -> dict[str, str]:
        """An unknown model once, beside the first role that names it (with every role that does)."""
        from fgo_engine.run.preflight import model_problem

        roles_of: dict[str, list[str]] = {}
        for role in ROLES:
            model = self.value(f"f-model-{role}").strip() or DEFAULT_MODEL
            if is_simulated(model) or "/" not in model:
                roles_of.setdefault(model, []).append(role)
        errors = {}
        for model, roles in roles_of.items():
            problem = model_problem(model)
            if problem:
                which = "every role" if len(roles) == len(ROLES) else ", ".join(roles)
                errors[f"f-model-{roles[0]}"] = f"unknown model {model!r} ({which}): {problem}"
        return errors

    def show_field_errors(self, errors: dict[str, str]) -> None:
        for box in self.query(".field-error").results(Static):
            wid = (box.id or "")[4:]
            msg = errors.get(wid, "")
            box.update(Text("✖ " + msg, style="red") if msg else "")
            box.set_class(bool(msg), "-shown")

    def build_config(self) -> Any:
        """The validated RunConfig, or ConfigError naming every field's problem."""
        from fgo_engine.config import RunConfig
        from fgo_engine.errors import ConfigError

        errors = self.field_errors()
        self.show_field_errors(errors)
        if errors:
            # each message is beside its field: here only which fields, once
            names = [self._label_of(wid) for wid in errors]
            raise ConfigError(f"fix {'this field' if len(names) == 1 else f'these {len(names)} fields'} "
                              f"(✖ beside each): {', '.join(names)}")
        return RunConfig.from_dict(self.form_data())

    def _label_of(self, wid: str) -> str:
        label = self._labels.get(wid, wid.removeprefix("f-"))
        return f"{label} model" if wid.startswith("f-model-") and label in ROLES else label

    # -- live validation and projection -------------------------------------------------
    @on(Input.Changed)
    @on(Select.Changed)
    def _changed(self, event: Any) -> None:
        control = getattr(event, "control", None)
        if control is not None and control.id == "f-suite":
            self._toggle_jsonl()
        if control is not None and control.id == "f-model-all" and control.value.strip():
            for role in ROLES:  # "same model for every role"
                self.query_one(f"#f-model-{role}", Input).value = control.value.strip()
        self._schedule()

    def _toggle_jsonl(self) -> None:
        is_jsonl = self.value("f-suite") == JSONL
        for w in self.query(".jsonl-only"):
            w.display = is_jsonl

    def _schedule(self) -> None:
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.25, self._validate)

    def _validate(self) -> None:
        from fgo_engine.errors import ConfigError

        try:
            cfg = self.build_config()
        except ConfigError as exc:
            self.show_error(str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - whatever it is, say it in one line
            self.show_error(f"{type(exc).__name__}: {exc}")
            return
        self._project(cfg)

    @work(thread=True, exclusive=True, group="projection", exit_on_error=False)
    def _project(self, cfg: Any) -> tuple[Any, int, int, list[str], list[str], Any]:
        from fgo_engine.method.methods import project
        from fgo_engine.suites.base import build_suite

        key = json.dumps([cfg.suite, cfg.suite_options, cfg.seed, cfg.instruction, cfg.toolbox], sort_keys=True,
                         default=str)
        if key not in self._suite_cache:
            suite = build_suite(cfg)
            self._suite_cache[key] = (suite.train_tasks(), suite.test_tasks(), suite)
        train, test, suite = self._suite_cache[key]
        if not train:
            from fgo_engine.errors import ConfigError

            raise ConfigError(f"suite {cfg.suite!r} has no training tasks")
        from fgo_engine.method.walltime import wall_time
        from fgo_engine.run.preflight import check_models, missing_keys

        check_models(cfg, keys=False)  # litellm knows the models; a missing key hides no projection
        proj = project(cfg, suite, train, test)
        return proj, len(train), len(test), proj.budget_warnings(cfg), missing_keys(cfg), wall_time(proj, cfg)

    @on(Worker.StateChanged)
    def _projected(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "projection":
            return
        if event.state == WorkerState.SUCCESS and event.worker.result is not None:
            proj, n_train, n_test, warnings, keys, wall = event.worker.result
            self.projection = proj
            self.show_error("; ".join(keys), keep_projection=True)  # needed to run, not to project
            self.query_one("#projection", Static).update(projection_text(proj, n_train, n_test, warnings, wall))
        elif event.state == WorkerState.ERROR:
            err = event.worker.error
            from fgo_engine.errors import FGOError

            self.show_error(str(err) if isinstance(err, FGOError) else f"{type(err).__name__}: {err}")

    def show_error(self, message: str, *, keep_projection: bool = False) -> None:
        if not message and self._refused and self.busy:
            message = self.busy.removeprefix("⚠ ")  # why ctrl+s did nothing, until that run ends
            keep_projection = True
        self.error = message
        box = self.query_one("#form-error", Static)
        if message:
            box.update(Text.assemble(("✖ ", "bold red"), (message, "red")))
            if not keep_projection:
                self.query_one("#projection", Static).update(Text("(fix the form to see the projection)",
                                                                  style="dim"))
        else:
            box.update("")
        box.set_class(bool(message), "-error")

    def busy_text(self) -> str:
        """Before the form is filled: another run is in progress here, and the app runs one at a time."""
        name = self.app.busy_with()
        if name is None:
            return ""
        return (f"⚠ One run at a time: {name} is running. You can fill this in; ctrl+s starts it once that run "
                "finishes or is cancelled (c on its dashboard).")

    def _show_busy(self) -> None:
        text = self.busy_text()
        if text != self.busy:
            self.busy = text
            if not text and self._refused:
                self._refused = False
                self.show_error("", keep_projection=True)
            box = self.query_one("#form-busy", Static)
            box.update(Text(text, style="bold yellow"))
            box.display = bool(text)

    # -- actions ------------------------------------------------------------------------
    def action_start(self) -> None:
        from fgo_engine.errors import ConfigError

        if self.busy_text():
            self._refused = True
            self._show_busy()
            self.show_error("")
            return
        try:
            cfg = self.build_config()
        except ConfigError as exc:
            self.show_error(str(exc))
            return
        except Exception as exc:  # noqa: BLE001
            self.show_error(f"{type(exc).__name__}: {exc}")
            return
        name = self.value("f-name").strip() or f"{cfg.suite}-{time.strftime('%Y%m%d-%H%M%S')}"
        if not re.fullmatch(r"[\w.\-]+", name):
            self.show_error("session name: letters, digits, '.', '-' and '_' only")
            return
        path = self.sessions_dir / (name if name.endswith(".db") else f"{name}.db")
        if path.exists():
            self.show_error(f"{path} already exists; choose another session name")
            return
        self.show_error("")
        self.query_one("#start", Button).disabled = True
        self.post_message(StartSession(cfg, path))

    def start_failed(self, message: str) -> None:
        """The app could not create the session: say why, next to the form."""
        self.query_one("#start", Button).disabled = False
        self.show_error(message)

    def action_back(self) -> None:
        self.app.pop_screen()

    @on(Button.Pressed, "#start")
    def _start_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_start()

    @on(Button.Pressed, "#back")
    def _back_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_back()
