"""What a run will cost before it starts: calls, tokens and cost per role.

A method describes the shape of its work as a :class:`Plan` (its optimizer loops with
their real batches, the merge tree's backtests, the test) built by the same code that
runs it (``partition``, the baselines' ``batches``); :func:`estimate` turns a plan into
numbers with the loop's own rules (best + candidate explores per pass, two evaluator
samples per failure, three optimizer samples per step and one more per context-overflow
halving, three merger samples per merge).

* ``calls_max`` is a hard upper bound on ledger rows (cache hits included, retries of
  transient errors excluded): every task fails, every step proposes, every sample is
  used, every agent episode runs to its turn limit, the merge tree is as deep as the
  clustering can make it.
* ``calls`` and the token figures are expected values under stated priors (60 % of the
  episodes fail at a loop's first step, 0.6× fewer at each further step; ReAct episodes
  take the suite's typical number of turns); prompt sizes
  are counted with tiktoken on the real starting module and task texts.
* ``cost`` uses litellm's local price map (imported only when a model is not simulated);
  ``None`` when litellm does not know a model's price.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fgo_engine.config import ROLES, RunConfig
from fgo_engine.types import Module, Task, is_simulated

FAIL_RATE = 0.6  # prior share of failed episodes at a loop's first step (the bound assumes all fail)
FAIL_DECAY = 0.6  # ... falling by this factor with every optimizer step on the loop
EVALUATOR_SAMPLES = 2  # evaluate(): a second sample when the first reply is not JSON
OPTIMIZER_SAMPLES = 3  # propose(): up to three samples until one is usable
MERGER_SAMPLES = 3  # MergeTree._propose(): up to three samples
EXPECTED_SAMPLES = {"evaluator": 1.05, "optimizer": 1.2, "merger": 1.1}
COMPLETION = {"agent": 20, "evaluator": 120}  # typical completion tokens per call
SYSTEM_TOKENS = {"agent": 30, "evaluator": 250, "optimizer": 450, "merger": 350}
CRITIQUE_TOKENS = 80
TASK_CHARS, TRAJ_CHARS, EVAL_TRAJ_CHARS = 1200, 1500, 6000  # clip limits of prompts.py
CHARS_PER_TOKEN = 4
MODULE_GROWTH = 1.5  # an optimized module is longer than the starting one
MODULE_GROWTH_HIGH = 4.0


# -- the shape of a run (built by the method objects) ----------------------------------
@dataclass
class Loop:
    """One optimizer loop: a batch per step (FGO: the subset every epoch)."""

    batches: list[list[Task]]

    @property
    def same_batch(self) -> bool:
        return all(b is self.batches[0] or b == self.batches[0] for b in self.batches)


@dataclass
class MergeStep:
    children: int
    tasks: list[Task]


@dataclass
class Plan:
    loops: list[Loop] = field(default_factory=list)
    merges_max: list[MergeStep] = field(default_factory=list)  # a deepest tree
    merges: list[MergeStep] = field(default_factory=list)  # a balanced tree (expected)
    test: list[Task] = field(default_factory=list)
    post_check: bool = False  # if-not-worse: the best child is backtested too


# -- numbers -----------------------------------------------------------------------------
@dataclass
class RoleProjection:
    calls_max: int = 0
    calls: float = 0.0  # expected
    prompt_tokens: float = 0.0  # expected, spent (predicted cache hits excluded)
    completion_tokens: float = 0.0
    tokens_max: float = 0.0  # calls_max at the expected size of a call
    cost: float | None = 0.0  # expected USD; None: price unknown
    cost_max: float | None = 0.0

    @property
    def tokens(self) -> float:
        return self.prompt_tokens + self.completion_tokens


# the role that makes a phase's calls
PHASE_ROLE = {"explore": "agent", "evaluate": "evaluator", "optimize": "optimizer", "merge": "merger",
              "backtest": "agent", "test": "agent"}


@dataclass
class PhaseProjection:
    role: str
    calls: float = 0.0  # expected
    parallel: int = 1  # calls of this phase the run's shape can have under way at once
    episodes: float = 0.0  # expected agent episodes (the agent's phases; 0 for the others)


def phase_parallel(phase: str, config: RunConfig, loops: int) -> int:
    """Calls of a phase the run's shape can have under way at once, before the model's own
    limit: ``loops`` optimizer loops side by side (a merge tree's subsets, up to the workers);
    merges go up the tree one after the other, each backtest (and the test split) as wide as
    the task workers."""
    if phase in ("explore", "evaluate"):
        return loops * config.task_workers  # the tasks of every loop's batch
    if phase == "optimize":
        return loops
    if phase == "merge":
        return 1
    return config.task_workers  # backtest, test: one pass over its tasks at a time


@dataclass
class Projection:
    roles: dict[str, RoleProjection]
    models: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    phases: dict[str, PhaseProjection] = field(default_factory=dict)

    @property
    def calls_max(self) -> int:
        return sum(r.calls_max for r in self.roles.values())

    @property
    def calls(self) -> float:
        return sum(r.calls for r in self.roles.values())

    @property
    def tokens(self) -> float:
        return sum(r.tokens for r in self.roles.values())

    @property
    def tokens_max(self) -> float:
        return sum(r.tokens_max for r in self.roles.values())

    @property
    def cost(self) -> float | None:
        costs = [r.cost for r in self.roles.values()]
        return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)

    @property
    def cost_max(self) -> float | None:
        costs = [r.cost_max for r in self.roles.values()]
        return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)

    def calls_by_role(self) -> dict[str, int]:
        return {r: p.calls_max for r, p in self.roles.items()}

    def budget_warnings(self, config: RunConfig) -> list[str]:
        """Say when a budget will (or may) stop the run before it finishes."""
        out = []

        def check(what: str, budget: float | None, expected: float | None, high: float | None, fmt) -> None:
            if budget is None or expected is None:
                return
            if budget < expected:
                out.append(f"the {what} budget {fmt(budget)} will likely stop the run before it finishes "
                           f"(expected {fmt(expected)}); resume with a larger one to continue")
            elif high is not None and budget < high:
                out.append(f"the {what} budget {fmt(budget)} may stop the run (expected {fmt(expected)}, "
                           f"at most about {fmt(high)})")

        check("token", config.budget_tokens, self.tokens, self.tokens_max, lambda x: f"{fmt_count(x)} tokens")
        check("cost", config.budget_cost, self.cost, self.cost_max, lambda x: f"${x:,.2f}")
        for role, limit in config.role_budgets.items():
            p = self.roles.get(role)
            if p is not None:
                check(role, limit, p.tokens, p.tokens_max, lambda x: f"{fmt_count(x)} tokens")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "roles": {r: {"calls_max": p.calls_max, "calls": round(p.calls), "prompt_tokens": round(p.prompt_tokens),
                          "completion_tokens": round(p.completion_tokens), "tokens_max": round(p.tokens_max),
                          "cost": p.cost, "cost_max": p.cost_max} for r, p in self.roles.items()},
            "total": {"calls_max": self.calls_max, "calls": round(self.calls), "tokens": round(self.tokens),
                      "tokens_max": round(self.tokens_max), "cost": self.cost, "cost_max": self.cost_max},
            "notes": list(self.notes),
            "phases": {k: {"role": v.role, "calls": round(v.calls, 1), "parallel": v.parallel,
                           "episodes": round(v.episodes, 1)}
                       for k, v in self.phases.items()},
        }

    def lines(self) -> list[str]:
        """A small table for the terminal and the form (one line per role, then the total)."""
        out = [f"{'role':<10} {'calls ≤':>9} {'expected':>9} {'tokens ~':>9} {'cost ~':>9}"]
        for r, p in self.roles.items():
            out.append(f"{r:<10} {p.calls_max:>9,} {round(p.calls):>9,} {fmt_count(p.tokens):>9} "
                       f"{fmt_cost(p.cost):>9}")
        out.append(f"{'total':<10} {self.calls_max:>9,} {round(self.calls):>9,} {fmt_count(self.tokens):>9} "
                   f"{fmt_cost(self.cost):>9}")
        out.append(f"at most about {fmt_count(self.tokens_max)} tokens, {fmt_cost(self.cost_max)}")
        return out


def fmt_count(n: float | None) -> str:
    """12 → '12', 12_345 → '12.3k', 2_500_000 → '2.50M': the one count format (app and CLI)."""
    if n is None:
        return "—"
    n = float(n)
    if n < 1000:
        return f"{n:.0f}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.2f}M"


def fmt_cost(c: float | None) -> str:
    if c is None:
        return "price ?"
    if c == 0:
        return "$0"
    return f"${c:,.2f}" if c >= 0.01 else f"${c:.4f}"


# -- the estimate ------------------------------------------------------------------------
def _agent_calls(suite: Any, task: Task) -> tuple[int, float]:
    """(at most, expected) agent calls for one episode: the suite says, else one."""
    hook = getattr(suite, "agent_calls", None)
    if hook is not None:
        hi, exp = hook(task)
        return int(hi), float(exp)
    n = int(getattr(suite, "calls_per_task", 1))
    return n, float(n)


def _count(text: str, model: str) -> int:
    from fgo_engine.llm import tokens

    return tokens.count_text(text, "" if is_simulated(model) else model)


class _Sizes:
    """Expected tokens of one call per role, counted on the real texts."""

    def __init__(self, config: RunConfig, suite: Any, tasks: list[Task], module: Module):
        self.models = {r: config.roles[r].model for r in ROLES}
        m = self.models["agent"]
        self.growth = float(getattr(suite, "module_growth", 1.0) or 1.0)  # toolboxes grow by whole tools
        self.module = _count(module.text, m) * self.growth
        sample = tasks[:: max(1, len(tasks) // 24)][:24]
        self.task = {t.id: _count(t.input, m) for t in sample}
        self.task_mean = sum(self.task.values()) / max(1, len(self.task))
        self.task_max = max(self.task.values(), default=0)
        self.turn = float(getattr(suite, "turn_tokens", 0) or 0)
        self.history = int(getattr(suite, "history_turns", 0) or 0)
        self.suite = suite

    def task_tokens(self, t: Task) -> float:
        return self.task.get(t.id, self.task_mean)

    def _module(self, high: bool) -> float:
        return self.module * (MODULE_GROWTH_HIGH if high else MODULE_GROWTH)

    def agent_prompt(self, t: Task, turns: float, *, high: bool = False) -> float:
        """Mean prompt of an episode's calls: system + task, plus the growing (windowed) history."""
        growth = 0.0
        if self.turn and turns > 1:
            window = self.history or turns
            growth = self.turn * min(turns, window) / (1 if high else 2)
        return SYSTEM_TOKENS["agent"] + self._module(high) + self.task_tokens(t) + growth

    def trajectory(self, turns: float, clip_chars: int) -> float:
        per = self.turn or COMPLETION["agent"]
        return min(turns * per, clip_chars / CHARS_PER_TOKEN)

    def evaluator_prompt(self, turns: float, *, high: bool = False) -> float:
        task = self.task_max if high else self.task_mean
        return SYSTEM_TOKENS["evaluator"] + self._module(high) + task + self.trajectory(turns, EVAL_TRAJ_CHARS)

    def optimizer_prompt(self, examples: float, turns: float, window: int | None, *, high: bool = False) -> float:
        task = self.task_max if high else self.task_mean
        per_example = min(task, TASK_CHARS / CHARS_PER_TOKEN) + self.trajectory(turns, TRAJ_CHARS) + CRITIQUE_TOKENS
        prompt = SYSTEM_TOKENS["optimizer"] + self._module(high) + examples * per_example
        return min(prompt, window) if window else prompt


def estimate(plan: Plan, config: RunConfig, suite: Any, start: Module, *,
             windows: Callable[[str], int | None] | None = None) -> Projection:
    roles = {r: RoleProjection() for r in ROLES}
    all_tasks = [t for lp in plan.loops for b in lp.batches for t in b] + [t for m in plan.merges for t in m.tasks]
    sz = _Sizes(config, suite, all_tasks + plan.test or [Task("x", "", "")], start)
    ag, ev_, op, mg = (roles[r] for r in ROLES)
    window = (windows or model_window)(sz.models["optimizer"])

    phase_calls = {k: 0.0 for k in PHASE_ROLE}
    phase_episodes = {k: 0.0 for k in PHASE_ROLE}

    def episodes(tasks: list[Task], *, paid: float = 1.0, count: float = 1.0, bound: int = 1,
                 phase: str = "explore") -> None:
        """``bound`` and ``count`` episodes per task (max, expected); ``paid`` share not from the cache."""
        for t in tasks:
            hi, exp = _agent_calls(suite, t)
            ag.calls_max += bound * hi
            ag.tokens_max += bound * hi * (sz.agent_prompt(t, hi, high=True) + COMPLETION["agent"])
            ag.calls += count * exp
            phase_calls[phase] += count * exp
            phase_episodes[phase] += count
            ag.prompt_tokens += paid * count * exp * sz.agent_prompt(t, exp)
            ag.completion_tokens += paid * count * exp * COMPLETION["agent"]

    for lp in plan.loops:
        steps = len(lp.batches)
        proposed = 0.0  # chance that the previous step proposed a candidate
        for i, batch in enumerate(lp.batches + [lp.batches[-1]]):
            # the best module: a cache hit when this pass repeats the previous pass's batch
            episodes(batch, paid=0.0 if (i and lp.same_batch) else 1.0)
            if i:  # the candidate proposed at the previous step
                episodes(batch, count=proposed)
            if i == steps:  # the last pass only judges the last candidate
                break
            n = len(batch)
            fail = FAIL_RATE * FAIL_DECAY ** i
            proposed = min(1.0, fail * n)  # the optimizer is called only when something failed
            turns = sum(_agent_calls(suite, t)[1] for t in batch) / max(1, n)
            turns_hi = max((_agent_calls(suite, t)[0] for t in batch), default=1)
            exp_evals = EXPECTED_SAMPLES["evaluator"] * fail * n
            ev_.calls_max += EVALUATOR_SAMPLES * n
            ev_.tokens_max += EVALUATOR_SAMPLES * n * (sz.evaluator_prompt(turns_hi, high=True)
                                                       + COMPLETION["evaluator"])
            ev_.calls += exp_evals
            phase_calls["evaluate"] += exp_evals
            ev_.prompt_tokens += exp_evals * sz.evaluator_prompt(turns)
            ev_.completion_tokens += exp_evals * COMPLETION["evaluator"]
            calls_hi = OPTIMIZER_SAMPLES + max(0, math.ceil(math.log2(n + 2)))  # + one per overflow halving
            op.calls_max += calls_hi
            op.tokens_max += calls_hi * (sz.optimizer_prompt(n + 2, turns_hi, window, high=True)
                                         + sz.module * MODULE_GROWTH_HIGH)
            op.calls += proposed * EXPECTED_SAMPLES["optimizer"]
            phase_calls["optimize"] += proposed * EXPECTED_SAMPLES["optimizer"]
            op.prompt_tokens += proposed * EXPECTED_SAMPLES["optimizer"] * sz.optimizer_prompt(fail * n + 2, turns,
                                                                                                window)
            op.completion_tokens += proposed * EXPECTED_SAMPLES["optimizer"] * sz.module
    for m in plan.merges_max:
        mg.calls_max += MERGER_SAMPLES
        mg.tokens_max += MERGER_SAMPLES * (SYSTEM_TOKENS["merger"] + (m.children + 1) * sz.module * MODULE_GROWTH_HIGH)
        for _ in range(2 if plan.post_check else 1):
            episodes(m.tasks, count=0.0, paid=0.0, phase="backtest")
    for m in plan.merges:
        mg.calls += EXPECTED_SAMPLES["merger"]
        phase_calls["merge"] += EXPECTED_SAMPLES["merger"]
        mg.prompt_tokens += EXPECTED_SAMPLES["merger"] * (SYSTEM_TOKENS["merger"] + m.children * sz.module)
        mg.completion_tokens += EXPECTED_SAMPLES["merger"] * sz.module
        episodes(m.tasks, bound=0, phase="backtest")
        if plan.post_check:  # the best child on the union: its own tasks come from the cache
            episodes(m.tasks, bound=0, paid=1 - 1 / max(1, m.children), phase="backtest")
    episodes(plan.test, phase="test")
    # the starting module on the test split too, beside the result (vanilla's result is the starting module)
    if config.method != "vanilla":
        episodes(plan.test, phase="test")
    # and, with test_modules, every module of the merge tree (each subset's, each merge's) but the result
    if config.test_modules and plan.merges_max:
        episodes(plan.test, count=max(0, len(plan.loops) + len(plan.merges) - 1),
                 bound=len(plan.loops) + 2 * len(plan.merges_max), phase="test")
    loops = max(1, min(config.workers, len(plan.loops)))
    proj = Projection(roles, dict(sz.models),
                      phases={k: PhaseProjection(PHASE_ROLE[k], v, phase_parallel(k, config, loops),
                                                 phase_episodes[k])
                              for k, v in phase_calls.items() if v > 0})
    _price(proj)
    if any(is_simulated(m) for m in sz.models.values()):
        proj.notes.append("simulated LLM: no cost; token figures are the simulator's")
    return proj


def _price(proj: Projection) -> None:
    """Expected and high cost from litellm's local price map; None where a price is unknown."""
    for role, p in proj.roles.items():
        model = proj.models.get(role, "")
        if is_simulated(model):
            p.cost = p.cost_max = 0.0
            continue
        rates = price_per_token(model)
        if rates is None:
            p.cost = p.cost_max = None
            continue
        inp, out = rates
        p.cost = p.prompt_tokens * inp + p.completion_tokens * out
        scale = p.calls_max / p.calls if p.calls else 1.0
        p.cost_max = p.cost * scale
    unknown = sorted({proj.models[r] for r, p in proj.roles.items() if p.cost is None})
    if unknown:
        proj.notes.append(f"no price known for {', '.join(unknown)}: cost not projected")


def model_window(model: str) -> int | None:
    """The context window of a model (the simulator's profile, else litellm's map), or None."""
    if is_simulated(model):
        from fgo_engine.llm.sim.profiles import parse_model

        return parse_model(model).window
    from fgo_engine.llm.gateway import get_litellm

    try:
        info = get_litellm().get_model_info(model)
    except Exception:  # unknown to litellm
        return None
    return info.get("max_input_tokens") or info.get("max_tokens")


def price_per_token(model: str) -> tuple[float, float] | None:
    """(input, output) USD per token from litellm's local price map, or None."""
    from fgo_engine.llm.gateway import get_litellm

    try:
        info = get_litellm().get_model_info(model)
    except Exception:  # litellm raises for a model it does not know
        return None
    inp, out = info.get("input_cost_per_token"), info.get("output_cost_per_token")
    if inp is None and out is None:
        return None
    return float(inp or 0.0), float(out or 0.0)


# -- the merge tree's shape --------------------------------------------------------------
def tree_plan(groups: list[list[Task]], threshold: int, *, deepest: bool) -> list[MergeStep]:
    """The merge nodes progressive merging makes over these subsets: a balanced tree, or the
    deepest one a clustering could produce. ``groups_for`` guarantees only ≥ 2 groups (KMeans
    on duplicate points or spectral clustering may give fewer than k), so the deepest tree
    splits one subset off at every level: a chain, pessimistic with many subsets."""
    from fgo_engine.method.cluster import n_clusters

    out: list[MergeStep] = []

    def merge(items: list[list[Task]]) -> list[Task]:
        if len(items) == 1:
            return items[0]
        if len(items) <= threshold:
            union = [t for it in items for t in it]
            out.append(MergeStep(len(items), union))
            return union
        k = max(2, n_clusters(len(items)))
        if deepest:
            order = sorted(items, key=len, reverse=True)  # the big subsets sink deepest
            parts = [order[:-1], order[-1:]]
        else:
            size = math.ceil(len(items) / k)
            parts = [items[i:i + size] for i in range(0, len(items), size)]
        return merge([merge(p) for p in parts])

    if groups:
        merge(groups)
    return out
