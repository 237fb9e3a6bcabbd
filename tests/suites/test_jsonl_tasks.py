"""Scorers, answer extraction and user tasks from JSONL files."""
from __future__ import annotations

import json
import re

import pytest

import fgo_engine  # noqa: F401
from fgo_engine.errors import ConfigError, TaskFileError
from fgo_engine.suites.base import load_suite
from fgo_engine.suites.jsonl_tasks import JsonlSuite, read_task_file
from fgo_engine.suites.scoring import (
    SCORER_NAMES,
    extract_answer,
    get_scorer,
    parse_number,
)
from fgo_engine.types import Completion, Module


class FakeLLM:
    def __init__(self, reply: str):
        self.reply = reply
        self.calls: list[list[dict]] = []

    def __call__(self, messages, *, tools=None):
        self.calls.append(messages)
        return Completion(text=self.reply)


def write_lines(tmp_path, lines, name="tasks.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(l if isinstance(l, str) else json.dumps(l) for l in lines) + "\n",
                    encoding="utf-8")
    return path


def row(i, **extra):
    return {"id": f"t{i}", "input": f"question {i}", "expected": f"answer {i}", **extra}


# --- scorers ----------------------------------------------------------------------------


def test_exact_trims_and_collapses_whitespace_but_keeps_case():
    s = get_scorer("exact")
    assert s(" TR 12  34\n", "TR 12 34") == 1.0
    assert s("tr 12 34", "TR 12 34") == 0.0
    assert s("TR1234", "TR 12 34") == 0.0


def test_normalized_ignores_case_space_and_surrounding_punctuation():
    s = get_scorer("normalized")
    assert s('  "Paris."  ', "paris") == 1.0
    assert s("**New   York**", "new york") == 1.0
    assert s("The Paris", "paris") == 0.0
    assert s("-5", "5") == 0.0  # a sign is not decoration


def test_contains():
    s = get_scorer("contains")
    assert s("I think it is Paris, France.", "paris") == 1.0
    assert s("London", "Paris") == 0.0


@pytest.mark.parametrize("answer, expected", [
    ("The answer is (C).", "(E)"),   # "(E)" used to normalize to "e", found in "answer"
    ("He does not tell the truth.", "No"),   # "no" inside "not"
    ("False and True", "False"),    # a lone value, but the answer names its rival too
    ("(A) or (B)", "(A)"),
    ("Yes and no", "Yes"),
    ("Paristown", "Paris"),
])
def test_contains_false_positives_from_real_models(answer, expected):
    assert get_scorer("contains")(answer, expected) == 0.0


@pytest.mark.parametrize("answer, expected", [
    ("The answer is (E).", "(E)"),
    ("E", "(E)"),
    ("No, he does not.", "No"),
    ("It is False.", "False"),
    ("the total is 1,234.50 EUR", "1,234.50"),
    ("She said: New York City", "new york"),
])
def test_contains_matches_whole_tokens(answer, expected):
    assert get_scorer("contains")(answer, expected) == 1.0


@pytest.mark.parametrize("reply, expected, score", [
    # the false positives
    ("The answer is (C).", "(E)", 0.0),
    ("Answer: not sure", "No", 0.0),
    ("False and True", "False", 0.0),
    # options: a label anywhere in the final answer, or a letter opening it
    ("Let me think.\nThe answer is (C).", "(C)", 1.0),
    ("Answer: (B)\nBecause the date is 12/25.", "(B)", 1.0),
    ("Answer: B) 12/25/1937", "(B)", 1.0),
    ("Answer: B", "(B)", 1.0),
    ("Answer: (A) or (B)", "(A)", 0.0),
    ("A cat is on the mat.", "(A)", 0.0),
    ("Answer: (A)\nActually no.\nAnswer: (D)", "(A)", 0.0),   # the last label decides
    # closed sets: whole words, one value only
    ("So the answer is No, he does not.", "No", 1.0),
    ("Answer: yes", "Yes", 1.0),
    ("Answer: invalid", "valid", 0.0),
    ("Answer: valid", "valid", 1.0),
    ("Answer: Yes. Or no.", "Yes", 0.0),
    # numbers: the last number in the final answer
    ("Answer: 24", "24", 1.0),
    ("(3 + 4) * 2 = 14", "14", 1.0),
    ("Answer: -50", "50", 0.0),
    # other text: normalized equality; punctuation-only targets up to spacing
    ("Answer: syndrome therefrom", "syndrome therefrom", 1.0),
    ("Answer: therefrom syndrome", "syndrome therefrom", 0.0),
    ("Answer: ] ] >", "] ] >", 1.0),
    ("Answer: )", "] ]", 0.0),
    ("", "(A)", 0.0),
])
def test_final_answer_scorer(reply, expected, score):
    assert get_scorer("final_answer")(reply, expected) == score


def test_regex_full_match_on_stripped_answer():
    s = get_scorer("regex")
    assert s("  42  ", r"\d+") == 1.0
    assert s("42 apples", r"\d+") == 0.0
    assert s("YES", "yes") == 0.0
    assert get_scorer({"name": "regex", "ignorecase": True})("YES", "yes") == 1.0
    assert s.check("(") is not None and s.check(r"\d+") is None
    with pytest.raises(ConfigError, match="invalid pattern"):
        s("x", "(")


@pytest.mark.parametrize("text, value", [
    ("42", 42.0), ("The total is 1,234.50 EUR", 1234.5), ("1.234,50", 1234.5),
    ("3,14", 3.14), ("1,234", 1234.0), ("1.234.567", 1234567.0), ("-7.5", -7.5),
    ("1e3", 1000.0), ("about 12 or 13", 12.0), ("42.", 42.0), ("none", None),
])
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_numeric_tolerance_absolute_and_relative():
    default = get_scorer("numeric")
    assert default("Answer is 12", "12.0") == 1.0
    assert default("12.001", "12") == 0.0
    assert default("no number", "12") == 0.0
    absolute = get_scorer({"name": "numeric", "tol": 0.01})
    assert absolute("3.149", "3.14") == 1.0 and absolute("3.16", "3.14") == 0.0
    relative = get_scorer('{"name": "numeric", "tol": 0.01, "relative": true}')
    assert relative("1,005", "1000") == 1.0 and relative("1011", "1000") == 0.0
    assert default.check("n/a") is not None and default.check("12") is None
    with pytest.raises(ConfigError, match="tol"):
        get_scorer({"name": "numeric", "tol": -1})


def test_llm_judge_uses_the_injected_judge_and_clamps():
    seen = []

    def judge(answer, expected):
        seen.append((answer, expected))
        return 1.7 if answer == expected else -0.2

    s = get_scorer("llm_judge", judge=judge)
    assert s("a", "a") == 1.0 and s("a", "b") == 0.0
    assert seen == [("a", "a"), ("a", "b")]
    assert get_scorer("llm_judge", judge=lambda a, e: "0.5")("x", "y") == 0.5
    with pytest.raises(ConfigError, match="judge"):
        get_scorer("llm_judge")


def test_scoring_module_does_not_import_litellm():
    import fgo_engine.suites.scoring as scoring

    source = open(scoring.__file__, encoding="utf-8").read()
    assert not re.search(r"^\s*(import|from)\s+litellm", source, re.MULTILINE)


def test_unknown_scorer_and_option_are_config_errors():
    with pytest.raises(ConfigError) as err:
        get_scorer("fuzzy")
    for name in SCORER_NAMES:
        assert name in str(err.value)
    with pytest.raises(ConfigError, match="no option 'tol'"):
        get_scorer({"name": "exact", "tol": 1})
    with pytest.raises(ConfigError, match="name"):
        get_scorer({"tol": 1})


# --- extract_answer ---------------------------------------------------------------------


@pytest.mark.parametrize("reply, answer", [
    ("Answer: 42", "42"),
    ("Reasoning...\nANSWER: Paris", "Paris"),
    ("Final answer: `TR-12 34`", "TR-12 34"),
    ("**Final Answer:** \"blue\"", "blue"),
    ("Answer: first\nthen I changed my mind.\nAnswer: second\nbecause ...", "second"),
    ("Answer:\n```\nABC-1\n```", "ABC-1"),
    ("no label here\n\n  'last line'  \n\n", "last line"),
    ("", ""),
    ("Answer:", ""),
])
def test_extract_answer(reply, answer):
    assert extract_answer(reply) == answer


# --- task files -------------------------------------------------------------------------


def test_valid_file_loads_with_defaults(tmp_path):
    path = write_lines(tmp_path, [
        row(1, category="geo", meta={"source": "atlas"}),
        "",
        "   ",
        row(2),
    ])
    suite = JsonlSuite(path)
    tasks = suite.train_tasks()
    assert [t.id for t in tasks] == ["t1", "t2"]
    assert tasks[0].category == "geo" and tasks[0].meta == {"source": "atlas"}
    assert tasks[1].category == "default" and tasks[1].meta == {}
    assert suite.test_tasks() == tasks  # no splits, test_fraction 0: test = train
    assert suite.name == "jsonl" and suite.module_kind == "instruction"
    assert [r.line for r in read_task_file(path)] == [1, 4]


MALFORMED = [
    ('{"id": "x", "input": "q", "expected": "a"', "invalid JSON"),
    ('["id", "input"]', "JSON object"),
    ('{"input": "q", "expected": "a"}', "missing field 'id'"),
    ('{"id": "x", "expected": "a"}', "missing field 'input'"),
    ('{"id": "x", "input": "q"}', "missing field 'expected'"),
    ('{"id": "", "input": "q", "expected": "a"}', "field 'id' is empty"),
    ('{"id": "x", "input": "  ", "expected": "a"}', "field 'input' is empty"),
    ('{"id": 3, "input": "q", "expected": "a"}', "'id' must be a string"),
    ('{"id": "x", "input": "q", "expected": 42}', "'expected' must be a string"),
    ('{"id": "t1", "input": "q", "expected": "a"}', "duplicate id 't1' (first on line 1)"),
    ('{"id": "x", "input": "q", "expected": "a", "split": "dev"}', "unknown split 'dev'"),
    ('{"id": "x", "input": "q", "expected": "a", "meta": [1]}', "'meta' must be an object"),
    ('{"id": "x", "input": "q", "expected": "a", "category": 7}', "'category'"),
]


@pytest.mark.parametrize("bad, problem", MALFORMED)
def test_malformed_line_names_file_and_line(tmp_path, bad, problem):
    # Line 1 valid, line 2 blank, line 3 valid, line 4 bad, line 5 valid.
    path = write_lines(tmp_path, [row(1), "", row(2), bad, row(5)])
    with pytest.raises(TaskFileError) as err:
        JsonlSuite(path)
    message = str(err.value)
    assert str(path) in message and "line 4" in message and problem in message
    assert err.value.line == 4


def test_bad_expected_for_the_chosen_scorer_is_a_file_error(tmp_path):
    path = write_lines(tmp_path, [row(1, expected="12"), row(2, expected="twelve")])
    with pytest.raises(TaskFileError, match="line 2.*no number"):
        JsonlSuite(path, scorer="numeric")
    path = write_lines(tmp_path, [row(1, expected="a+"), row(2, expected="(")], "re.jsonl")
    with pytest.raises(TaskFileError, match="line 2.*invalid pattern"):
        JsonlSuite(path, scorer="regex")


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bin.jsonl"
    path.write_bytes(json.dumps(row(1)).encode() + b"\n\xff\xfe\n")
    with pytest.raises(TaskFileError, match="line 2"):
        JsonlSuite(path)


@pytest.mark.parametrize("content", ["", "\n\n   \n"])
def test_empty_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TaskFileError, match="no tasks"):
        JsonlSuite(path)


def test_missing_file_and_missing_path(tmp_path):
    with pytest.raises(TaskFileError, match="not found"):
        JsonlSuite(tmp_path / "nope.jsonl")
    with pytest.raises(TaskFileError, match="directory"):
        JsonlSuite(tmp_path)
    with pytest.raises(ConfigError, match="path"):
        JsonlSuite()


def test_bom_and_crlf_are_tolerated(tmp_path):
    path = tmp_path / "win.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(row(1)).encode() + b"\r\n"
                     + json.dumps(row(2)).encode() + b"\r\n")
    assert [t.id for t in JsonlSuite(path).train_tasks()] == ["t1", "t2"]


# --- splits -----------------------------------------------------------------------------


def test_split_field_decides(tmp_path):
    path = write_lines(tmp_path, [row(1, split="train"), row(2, split="test"), row(3),
                                  row(4, split="test")])
    suite = JsonlSuite(path)
    assert [t.id for t in suite.train_tasks()] == ["t1", "t3"]
    assert [t.id for t in suite.test_tasks()] == ["t2", "t4"]
    with pytest.raises(ConfigError, match="split"):
        JsonlSuite(path, test_fraction=0.5)


def test_split_field_without_test_tasks_tests_on_train(tmp_path):
    path = write_lines(tmp_path, [row(1, split="train"), row(2)])
    suite = JsonlSuite(path)
    assert suite.test_tasks() == suite.train_tasks()


def test_all_test_split_is_an_error(tmp_path):
    path = write_lines(tmp_path, [row(1, split="test"), row(2, split="test")])
    with pytest.raises(TaskFileError, match="train"):
        JsonlSuite(path)


def test_seeded_test_fraction(tmp_path):
    path = write_lines(tmp_path, [row(i) for i in range(20)])
    a = JsonlSuite(path, seed=1, test_fraction=0.25)
    b = JsonlSuite(path, seed=1, test_fraction=0.25)
    c = JsonlSuite(path, seed=2, test_fraction=0.25)
    ids = lambda ts: [t.id for t in ts]  # noqa: E731
    assert len(a.test_tasks()) == 5 and len(a.train_tasks()) == 15
    assert ids(a.test_tasks()) == ids(b.test_tasks())
    assert ids(a.test_tasks()) != ids(c.test_tasks())
    assert set(ids(a.train_tasks())).isdisjoint(ids(a.test_tasks()))
    assert sorted(ids(a.train_tasks()) + ids(a.test_tasks())) == sorted(f"t{i}" for i in range(20))
    for bad in (-0.1, 1.0, "half"):
        with pytest.raises(ConfigError, match="test_fraction"):
            JsonlSuite(path, test_fraction=bad)


# --- the agent run ----------------------------------------------------------------------


def test_run_agent_single_call_and_scoring(tmp_path):
    path = write_lines(tmp_path, [{"id": "q", "input": "What is 6*7?", "expected": "42"}])
    suite = JsonlSuite(path, scorer="numeric", instruction="Do arithmetic.\n- Be exact.")
    module = suite.initial_module()
    assert module == Module("instruction", "Do arithmetic.\n- Be exact.")
    task = suite.train_tasks()[0]
    llm = FakeLLM("6*7 is 42.\nAnswer: 42")
    traj = suite.run_agent(task, module, llm)
    assert traj.success and traj.score == 1.0 and traj.answer == "42"
    assert [s.kind for s in traj.steps] == ["answer"]
    system, user = llm.calls[0]
    assert system == {"role": "system", "content": module.text}
    assert user["content"].startswith("What is 6*7?")
    assert user["content"].endswith("Reply with: Answer: <answer>")
    bad = suite.run_agent(task, module, FakeLLM("no idea"))
    assert not bad.success and bad.score == 0.0


def test_generic_initial_module(tmp_path):
    suite = JsonlSuite(write_lines(tmp_path, [row(1)]))
    module = suite.initial_module()
    assert module.kind == "instruction" and module.rule_lines()
    assert "jsonl" in suite.describe() or "tasks.jsonl" in suite.describe()


def test_llm_judge_scorer_takes_an_injected_judge(tmp_path):
    path = write_lines(tmp_path, [row(1)])
    suite = JsonlSuite(path, scorer="llm_judge", judge=lambda a, e: 0.8)
    traj = suite.run_agent(suite.train_tasks()[0], suite.initial_module(), FakeLLM("Answer: x"))
    assert traj.score == 0.8 and traj.success
    late = JsonlSuite(path, scorer="llm_judge")
    llm = FakeLLM("Answer: x")
    with pytest.raises(ConfigError, match="judge"):
        late.run_agent(late.train_tasks()[0], late.initial_module(), llm)
    assert llm.calls == []  # no call is spent before the missing judge is reported
    late.set_judge(lambda a, e: 0.0)
    assert late.run_agent(late.train_tasks()[0], late.initial_module(), llm).score == 0.0
    # A judge handed to a suite with another scorer is ignored.
    assert JsonlSuite(path, scorer="exact", judge=lambda a, e: 1.0).scorer("a", "b") == 0.0


def test_load_suite_and_unknown_scorer(tmp_path):
    path = write_lines(tmp_path, [row(1)])
    suite = load_suite("jsonl", path=str(path), scorer={"name": "contains"})
    assert suite.train_tasks()[0].id == "t1"
    with pytest.raises(ConfigError, match="unknown scorer 'fuzzy'.*normalized"):
        JsonlSuite(path, scorer="fuzzy")
    with pytest.raises(ConfigError, match="unknown option"):
        JsonlSuite(path, colour="red")
