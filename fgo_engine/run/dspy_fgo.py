"""An FGO optimizer for DSPy programs, used the way DSPy's optimizers are used:

    from fgo_engine.dspy import FGO
    optimized = FGO(metric=my_metric, model="openai/gpt-4o-mini").compile(program, trainset=train,
                                                                          valset=val)

It optimizes the **instructions of the program's predictors** (their signatures' instructions;
demos are left alone). The scheme: one FGO module holds every predictor's instruction, each
under a ``## predictor: <name>`` header in the order of ``program.named_predictors()``, so the
evaluator and optimizer see the whole program at once and a merge merges whole programs. A
module that loses a header (or adds one) is unusable and the optimizer is asked again.

Each example runs the whole program through FGO's gateway: a DSPy LM whose engine sends every
request to the agent role (ledger, cache, budgets, resume; DSPy's own cache is off). The
metric is ``metric(example, prediction, trace=None)`` → a number or bool (a ``dspy.Prediction``
with a ``score`` is read too). ``trainset`` is divided and optimized; ``valset`` (optional) is
the test split whose score ``last_result.test_score`` reports.

DSPy is an optional extra (``pip install 'fgo-studio[dspy]'``), imported only when used.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fgo_engine.errors import ConfigError
from fgo_engine.run.api import OptimizeResult, optimize

HEADER = "## predictor: "
_HEADER_RE = re.compile(r"^## predictor: (\S.*?)\s*$", re.M)


def _need_dspy() -> Any:
    try:
        import dspy
    except ImportError:
        raise ConfigError("the DSPy optimizer needs DSPy: pip install 'fgo-studio[dspy]'") from None
    return dspy


def render_module(instructions: dict[str, str]) -> str:
    """Every predictor's instruction under its header, in program order."""
    return "\n\n".join(f"{HEADER}{name}\n{text.strip()}" for name, text in instructions.items())


def parse_module(text: str, names: list[str]) -> dict[str, str]:
    """The instruction of each predictor in ``names``; a ``ValueError`` naming what is wrong."""
    found = list(_HEADER_RE.finditer(text))
    got = [m.group(1) for m in found]
    if sorted(got) != sorted(names) or len(set(got)) != len(got):
        missing = [n for n in names if n not in got]
        extra = [n for n in got if n not in names or got.count(n) > 1]
        raise ValueError(f"the module must hold one '{HEADER}<name>' section per predictor "
                         f"({', '.join(names)}); " + (f"missing {missing}" if missing else f"unexpected {extra}"))
    out = {}
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(text)
        body = text[m.end():end].strip()
        if not body:
            raise ValueError(f"the instruction of predictor {m.group(1)} is empty")
        out[m.group(1)] = body
    return out


def _gateway_lm(dspy: Any, llm: Callable[..., Any]) -> Any:
    """A DSPy LM whose engine sends each request through ``llm`` (FGO's agent role)."""
    from dspy.lm15 import Message, Response, TextPart, Usage

    class GatewayEngine:
        def complete(self, request: Any) -> Any:
            messages: list[dict[str, Any]] = []
            if request.system is not None:
                system = request.system if isinstance(request.system, str) else "".join(
                    getattr(p, "text", "") or "" for p in request.system)
                messages.append({"role": "system", "content": system})
            messages.extend({"role": m.role, "content": m.text or ""} for m in request.messages)
            comp = llm(messages)
            reply = Message.assistant([TextPart(comp.text)])
            return Response(id=None, model=comp.model or "fgo-gateway", message=reply,
                            finish_reason=comp.finish_reason or "stop",
                            usage=Usage(input_tokens=comp.prompt_tokens, output_tokens=comp.completion_tokens,
                                        total_tokens=comp.prompt_tokens + comp.completion_tokens))

        def stream(self, request: Any) -> Any:
            from dspy.lm15 import response_to_events

            return response_to_events(self.complete(request))

        def close(self) -> None:
            return None

    return dspy.LM("openai/fgo-gateway", engine=GatewayEngine(), cache=False)


def _example_dict(example: Any) -> dict[str, Any]:
    return {k: v for k, v in example.toDict().items() if not k.startswith("dspy_")}


def _render(fields: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)}"
                     for k, v in fields.items())


@dataclass
class _Program:
    """What the agent and the scorer share: the student, its predictor names, the metric."""

    student: Any
    names: list[str]
    metric: Callable[..., Any]


class FGO:
    """``FGO(metric=..., model=..., subsets=4, epochs=2, ...).compile(program, trainset=, valset=)``.

    Keyword arguments other than ``metric`` go to :func:`fgo_engine.optimize` (``model``,
    ``models``, ``subsets``, ``epochs``, ``review``, ``session``, ``budget_tokens``, ``track``,
    ``api_base``, ...). ``category(example) -> str`` names an example's category for FGO's
    division (default: one category, divided at random). After ``compile``, ``last_result`` is
    the :class:`~fgo_engine.run.api.OptimizeResult` (scores, session path)."""

    def __init__(self, metric: Callable[..., Any], *, category: Callable[[Any], str] | None = None,
                 **optimize_kwargs: Any):
        if not callable(metric):
            raise ConfigError("FGO(metric=...): the metric must be a callable metric(example, prediction, trace=None)")
        for key in ("tasks", "agent", "scorer", "instruction", "validate"):
            if key in optimize_kwargs:
                raise ConfigError(f"FGO: {key!r} is set by compile() from the program and its examples")
        self.metric = metric
        self.category = category
        self.kwargs = optimize_kwargs
        self.last_result: OptimizeResult | None = None

    def compile(self, student: Any, *, trainset: list[Any], valset: list[Any] | None = None,
                teacher: Any = None, **_: Any) -> Any:
        dspy = _need_dspy()
        if not hasattr(student, "named_predictors"):
            raise ConfigError("FGO.compile: the program must be a dspy.Module")
        predictors = list(student.named_predictors())
        if not predictors:
            raise ConfigError("FGO.compile: the program has no predictors to optimize")
        if not trainset:
            raise ConfigError("FGO.compile: trainset is empty")
        names = [name for name, _ in predictors]
        start = render_module({name: p.signature.instructions for name, p in predictors})
        program = _Program(student, names, self.metric)
        tasks = self._tasks(trainset, "train") + self._tasks(valset or [], "test")
        kwargs = dict(self.kwargs)
        settings = dict(kwargs.pop("settings", None) or {})
        if self.category is None:
            settings.setdefault("partition", "random")  # one category: divide at random
        kwargs.setdefault("describe", "A DSPy program of predictors " + ", ".join(names) + "; the module holds "
                          f"each predictor's instruction under a '{HEADER}<name>' line, which must be kept.")
        kwargs.setdefault("calls_per_task", len(names))
        if not valset:
            kwargs.setdefault("test_fraction", 0.0)
        result = optimize(tasks, _agent(dspy, program), _scorer(dspy, program), instruction=start,
                          validate=lambda text: parse_module(text, names), settings=settings, **kwargs)
        self.last_result = result
        return self._with_module(dspy, student, names, result.module or start)

    def _tasks(self, examples: list[Any], split: str) -> list[dict[str, Any]]:
        out = []
        for i, ex in enumerate(examples):
            try:
                inputs = ex.inputs().toDict()
            except (AttributeError, ValueError):  # not an Example, or with_inputs never called
                inputs = {}
            if not inputs:
                raise ConfigError(f"FGO.compile: {split} example {i + 1} has no input fields "
                                  "(call example.with_inputs(...))")
            labels = {k: v for k, v in _example_dict(ex).items() if k not in inputs}
            task = {"id": f"{split}{i}", "input": _render(inputs), "expected": _render(labels) or "(no label)",
                    "split": split, "example": _example_dict(ex), "input_keys": list(inputs)}
            if self.category is not None:
                task["category"] = str(self.category(ex))
            out.append(task)
        return out

    @staticmethod
    def _with_module(dspy: Any, student: Any, names: list[str], module: str) -> Any:
        program = student.deepcopy()
        instructions = parse_module(module, names)
        for name, pred in program.named_predictors():
            pred.signature = pred.signature.with_instructions(instructions[name])
        return program


def _example(dspy: Any, task: dict[str, Any]) -> Any:
    return dspy.Example(**task["example"]).with_inputs(*task["input_keys"])


def _agent(dspy: Any, program: _Program) -> Callable[[str, dict[str, Any], Any], str]:
    def agent(module: str, task: dict[str, Any], llm: Any) -> str:
        runner = FGO._with_module(dspy, program.student, program.names, module)
        example = _example(dspy, task)
        with dspy.context(lm=_gateway_lm(dspy, llm)):
            prediction = runner(**example.inputs())
        return json.dumps(dict(prediction.items()), ensure_ascii=False, default=str)

    return agent


def _scorer(dspy: Any, program: _Program) -> Callable[[str, dict[str, Any]], float]:
    def scorer(answer: str, task: dict[str, Any]) -> float:
        example = _example(dspy, task)
        try:
            fields = json.loads(answer)
        except json.JSONDecodeError:
            fields = {}  # the scorer's first check passes the expected text, not a prediction
        if not isinstance(fields, dict):
            fields = {}
        if not fields:
            fields = {k: v for k, v in task["example"].items() if k not in task["input_keys"]}
        value = program.metric(example, dspy.Prediction(**fields), None)
        score = getattr(value, "score", value)
        return float(score) if isinstance(score, (bool, int, float)) else score

    return scorer


__all__ = ["FGO", "parse_module", "render_module"]
