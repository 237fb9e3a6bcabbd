"""The invoices suite: prompt, initial module, scoring and the Suite object."""

from typing import Any

from fgo_engine.errors import ConfigError
from fgo_engine.suites.base import AgentLLM, SuiteBase, register_suite
from fgo_engine.suites.invoices.generate import _generate
from fgo_engine.suites.invoices.knowledge import KNOWLEDGE
from fgo_engine.suites.scoring import exact, extract_answer
from fgo_engine.types import Knowledge, Module, ModuleKind, Step, Task, Trajectory

# ---------------------------------------------------------------------------
# The suite
# ---------------------------------------------------------------------------

_PROMPT_HEAD = "Here is an invoice in UBL 2.1 XML.\n\n<document>\n"
_PROMPT_TAIL = (
    "</document>\n\n"
    "What is the transport reference number of the shipment this invoice covers? "
    "Give it exactly as printed in the document.\n"
    "Reply with: Answer: <reference>"
)

_INITIAL_MODULE = (
    "You read UBL 2.1 invoices and report the transport reference number.\n"
    "- The transport reference is often the ID of the DespatchDocumentReference element.\n"
    "- Never answer with the invoice number or the order reference.\n"
    "- Reply with the reference only, on a final line 'Answer: <reference>'."
)


def build_prompt(task: Task) -> str:
    """The agent's user message: a fixed framing around the verbatim XML."""
    xml = task.input if task.input.endswith("\n") else task.input + "\n"
    return _PROMPT_HEAD + xml + _PROMPT_TAIL


class InvoicesSuite(SuiteBase):
    """LogisticsQA-like: extract the transport reference from UBL 2.1 invoices."""

    name = "invoices"
    module_kind: ModuleKind = "instruction"

    def __init__(self, seed: int = 0, n_train: int = 48, n_test: int = 219, **options: Any):
        if options:
            raise ConfigError(
                f"invoices suite: unknown option {sorted(options)[0]!r} "
                "(options: seed, n_train, n_test)")
        for label, value, low in (("n_train", n_train, 1), ("n_test", n_test, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"invoices suite: {label} must be an integer ≥ {low}, "
                                  f"got {value!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"invoices suite: seed must be an integer, got {seed!r}")
        self.seed, self.n_train, self.n_test = seed, n_train, n_test

    def train_tasks(self) -> list[Task]:
        return list(_generate(self.seed, self.n_train, self.n_test)[0])

    def test_tasks(self) -> list[Task]:
        return list(_generate(self.seed, self.n_train, self.n_test)[1])

    def initial_module(self) -> Module:
        return Module("instruction", _INITIAL_MODULE)

    def describe(self) -> str:
        return ("The agent reads one UBL 2.1 invoice (Turkish, English, Spanish or Italian) and "
                "replies with the transport reference number exactly as printed; exact match.")

    def knowledge(self) -> list[Knowledge]:
        """Every knowledge item the simulated LLM may ask of these tasks."""
        return list(KNOWLEDGE.values())

    def run_agent(self, task: Task, module: Module, llm: AgentLLM) -> Trajectory:
        messages = [{"role": "system", "content": module.text},
                    {"role": "user", "content": build_prompt(task)}]
        reply = llm(messages).text or ""
        answer = extract_answer(reply)
        score = exact(answer, task.expected)
        return Trajectory(task_id=task.id, steps=[Step("answer", reply)], answer=answer,
                          success=score >= 1.0, score=score)


register_suite("invoices", InvoicesSuite)
