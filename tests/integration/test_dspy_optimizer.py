"""FGO as a DSPy optimizer: ``FGO(metric=...).compile(program, trainset=, valset=)`` optimizes
the instructions of a two-predictor program offline, every role served by a loopback
OpenAI-style server that plays the model."""
from __future__ import annotations

import json
import re
import sqlite3

import dspy
import pytest
from fake_openai import ok

from fgo_engine.dspy import FGO, parse_module, render_module
from fgo_engine.errors import ConfigError

CAPITALS = {"France": "Paris", "Italy": "Rome", "Spain": "Madrid", "Peru": "Lima", "Chile": "Santiago",
            "Kenya": "Nairobi", "Japan": "Tokyo", "Egypt": "Cairo", "Cuba": "Havana", "Mali": "Bamako"}
RULE = "Write the answer in UPPERCASE letters."


class CapitalQA(dspy.Module):
    def __init__(self):
        super().__init__()
        self.rewrite = dspy.Predict("question -> query")
        self.answer = dspy.Predict("query -> answer")

    def forward(self, question):
        return self.answer(query=self.rewrite(question=question).query)


def examples(countries):
    return [dspy.Example(question=f"What is the capital of {c}?", answer=CAPITALS[c].upper()).with_inputs("question")
            for c in countries]


def exact(example, prediction, trace=None):
    return example.answer == prediction.answer


def model(body):
    """The loopback server's model: DSPy's two predictors, the evaluator, the optimizer, the merger."""
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    if system.startswith("You are the evaluator"):
        return ok(json.dumps({"correct": False, "failure": "the answer is not in uppercase", "pattern": "case",
                              "suggestion": "answer in uppercase"}))
    if system.startswith("You are the optimizer"):
        current = re.search(r"<instruction>\n(.*?)\n</instruction>", user, re.S).group(1)
        if RULE not in current:
            current = current.replace("## predictor: answer\n", f"## predictor: answer\n{RULE}\n")
        return ok(f"<instruction>\n{current}\n</instruction>")
    if system.startswith("You merge"):
        first = re.search(r'<module index="1"[^>]*>\n(.*?)\n</module>', user, re.S).group(1)
        return ok(f"<instruction>\n{first}\n</instruction>")
    if "`query` (str):\nAll interactions" in system:  # the rewrite predictor
        country = re.search(r"capital of (\w+)\?", user).group(1)
        return ok(f"[[ ## query ## ]]\ncapital city of {country}\n\n[[ ## completed ## ]]")
    country = re.search(r"capital city of (\w+)", user).group(1)
    answer = CAPITALS[country].upper() if RULE in system else CAPITALS[country]
    return ok(f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]")


def test_fgo_compiles_a_two_predictor_program_offline(tmp_path, fake_openai):
    fake_openai.responder = model
    program = CapitalQA()
    before = [p.signature.instructions for _, p in program.named_predictors()]
    fgo = FGO(metric=exact, model="openai/scripted", api_base=fake_openai.url, subsets=2, epochs=1,
              session=tmp_path / "dspy.db")
    countries = list(CAPITALS)
    optimized = fgo.compile(program, trainset=examples(countries[:6]), valset=examples(countries[6:]))
    after = {n: p.signature.instructions for n, p in optimized.named_predictors()}
    assert after["rewrite"] == before[0]  # the optimizer left it alone
    assert RULE in after["answer"] and before[1] in after["answer"]
    assert [p.signature.instructions for _, p in program.named_predictors()] == before  # the student is untouched
    res = fgo.last_result
    assert res is not None and res.status == "done" and res.test_score == 1.0
    # the program's calls went through the gateway: two agent calls per example and epoch, in the ledger
    con = sqlite3.connect(res.session)
    per_task = con.execute("select task_id, count(*) from ledger where role = 'agent' and phase = 'explore' "
                           "and epoch = 0 group by task_id").fetchall()
    con.close()
    assert len(per_task) == 6 and {n for _, n in per_task} == {2}
    # and the optimized program works outside FGO too
    with dspy.context(lm=dspy.utils.DummyLM({"capital of Peru": {"query": "capital city of Peru"}})):
        assert optimized.rewrite(question="What is the capital of Peru?").query == "capital city of Peru"


def test_the_module_scheme_round_trips_and_refuses_lost_sections():
    text = render_module({"rewrite": "Rewrite it.", "answer": "Answer it.\n- Briefly."})
    assert text == "## predictor: rewrite\nRewrite it.\n\n## predictor: answer\nAnswer it.\n- Briefly."
    assert parse_module(text, ["rewrite", "answer"]) == {"rewrite": "Rewrite it.", "answer": "Answer it.\n- Briefly."}
    with pytest.raises(ValueError, match=r"missing \['answer'\]"):
        parse_module("## predictor: rewrite\nRewrite it.", ["rewrite", "answer"])
    with pytest.raises(ValueError, match="instruction of predictor answer is empty"):
        parse_module("## predictor: rewrite\nx\n## predictor: answer\n", ["rewrite", "answer"])


def test_bad_use_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="metric must be a callable"):
        FGO(metric="exact")
    with pytest.raises(ConfigError, match="no input fields"):
        FGO(metric=exact, model="fgo-sim/medium", session=tmp_path / "s.db").compile(
            CapitalQA(), trainset=[dspy.Example(question="q", answer="a")])
    with pytest.raises(ConfigError, match="trainset is empty"):
        FGO(metric=exact).compile(CapitalQA(), trainset=[])
    assert list(tmp_path.iterdir()) == []
