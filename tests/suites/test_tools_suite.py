"""The tools suite: generation and task files, scoring, the function-calling agent loop
with sandboxed tools, the simulated LLM's skill (agent, optimizer, merger), and a
headless FGO run that beats the starting toolbox."""
from __future__ import annotations

import json
import os
import random
import re
from collections import Counter
from pathlib import Path

import pytest

import fgo_engine  # noqa: F401  (sets TIKTOKEN_CACHE_DIR before tiktoken loads)
from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError, MalformedOutputError
from fgo_engine.llm.sim.skills import find_skill
from fgo_engine.run.session import Session
from fgo_engine.suites.base import load_suite
from fgo_engine.suites.tools import (
    BUGGY,
    CATEGORIES,
    INITIAL_TOOLBOX,
    KNOWLEDGE,
    TEMPLATES,
    TOOL_NAME,
    TOOL_SOURCE,
    ToolsSkill,
    ToolsSuite,
    ensure_files,
    generate,
    has_known_bug,
    parse_question,
)
from fgo_engine.suites.tools import skill as skill_mod
from fgo_engine.suites.tools.suite import RESULT_CHARS
from fgo_engine.tools import toolbox
from fgo_engine.tools.sandbox import run_tool
from fgo_engine.types import Completion, Module, Task


def full_toolbox(sources: dict[str, str] | None = None) -> str:
    sources = sources or TOOL_SOURCE
    text, _ = toolbox.apply_edits(INITIAL_TOOLBOX, [
        {"op": "add", "name": TOOL_NAME[cap], "source": sources[cap]} for cap in TOOL_NAME])
    return text


class ScriptedLLM:
    """An agent LLM that replays a list of replies: a string, or a list of (name, args)
    tool calls; args may be a dict or a raw (possibly broken) JSON string."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls: list[tuple[list[dict], list | None]] = []

    def __call__(self, messages, *, tools=None):
        self.calls.append(([dict(m) for m in messages], tools))
        reply = self.replies.pop(0)
        if isinstance(reply, str):
            return Completion(text=reply)
        calls = [{"id": f"call_{len(self.calls)}_{i}", "name": name,
                  "arguments": args if isinstance(args, str) else json.dumps(args)}
                 for i, (name, args) in enumerate(reply)]
        return Completion(text="", tool_calls=calls)


class SkillLLM:
    """Drives the simulated skill directly (no gateway): always competent."""

    def __init__(self, skill: ToolsSkill, missing=()):
        self.skill, self.missing, self.n = skill, list(missing), 0

    def __call__(self, messages, *, tools=None):
        self.n += 1
        reply = self.skill.act(messages, messages[1]["content"], competent=True, missing=self.missing,
                               rng=random.Random(0))
        if isinstance(reply, str):
            return Completion(text=reply)
        return Completion(text=reply["content"], tool_calls=[
            {"id": f"c{self.n}_{i}", "name": c["name"], "arguments": json.dumps(c["arguments"])}
            for i, c in enumerate(reply["tool_calls"])])


@pytest.fixture(scope="module")
def files_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tools-files")


@pytest.fixture(scope="module")
def suite(files_root) -> ToolsSuite:
    return ToolsSuite(seed=0, files_root=str(files_root), tool_timeout=1.0)


@pytest.fixture(scope="module")
def one_per_kind(suite) -> dict[str, Task]:
    out: dict[str, Task] = {}
    for t in suite.train_tasks() + suite.test_tasks():
        out.setdefault(t.meta["kind"], t)
    assert set(out) == set(TEMPLATES)
    return out


# --- generation and files --------------------------------------------------------------


def test_default_counts_categories_and_ids(suite):
    train, test = suite.train_tasks(), suite.test_tasks()
    assert (len(train), len(test)) == (36, 60)
    assert len({t.id for t in train + test}) == 96
    for split in (train, test):
        counts = Counter(t.category for t in split)
        assert set(counts) == set(CATEGORIES)
        assert max(counts.values()) - min(counts.values()) <= 1  # balanced for partitioning
    assert Counter(t.category for t in test) == {c: 12 for c in CATEGORIES}
    for t in train + test:
        assert TEMPLATES[t.meta["kind"]][0] == t.category
        assert t.input.startswith(generate(t.meta["kind"], t.meta["task_seed"]).question)
        for name in t.meta["files"]:
            assert name in t.input  # the file names are listed for the agent
        assert t.expected.strip()


def test_options_and_unknown_options():
    s = load_suite("tools", seed=3, n_train=7, n_test=4)
    assert (len(s.train_tasks()), len(s.test_tasks())) == (7, 4)
    with pytest.raises(ConfigError, match="unknown option 'n_tasks'"):
        load_suite("tools", n_tasks=3)
    with pytest.raises(ConfigError, match="n_train"):
        ToolsSuite(n_train=-1)
    with pytest.raises(ConfigError, match="tool_timeout"):
        ToolsSuite(tool_timeout=0)


def test_generation_is_deterministic_and_seeded(files_root):
    a, b = ToolsSuite(seed=0, files_root=str(files_root)), ToolsSuite(seed=0, files_root=str(files_root))
    c = ToolsSuite(seed=1, files_root=str(files_root))
    key = lambda ts: [(t.id, t.input, t.expected, t.category, t.meta) for t in ts]  # noqa: E731
    assert key(a.train_tasks() + a.test_tasks()) == key(b.train_tasks() + b.test_tasks())
    assert key(a.train_tasks()) != key(c.train_tasks())
    for t in a.train_tasks()[:5]:
        assert generate(t.meta["kind"], t.meta["task_seed"]).files == generate(
            t.meta["kind"], t.meta["task_seed"]).files


def test_files_are_rebuilt_from_meta_alone_in_a_fresh_suite(suite, tmp_path):
    task = suite.test_tasks()[5]
    original = {p.name: p.read_text() for p in suite.files_dir(task).iterdir()}
    assert sorted(original) == sorted(task.meta["files"])
    # a task as stored in the session database: a row with its meta as JSON
    row = {"id": task.id, "input": task.input, "expected": task.expected, "category": task.category,
           "meta_json": json.loads(json.dumps(task.meta))}
    stored = Task(row["id"], row["input"], row["expected"], row["category"], row["meta_json"])
    fresh = ToolsSuite(seed=99, files_root=str(tmp_path / "elsewhere"))  # another seed, another cache
    rebuilt = fresh.files_dir(stored)
    assert str(rebuilt).startswith(str(tmp_path / "elsewhere"))
    assert {p.name: p.read_text() for p in rebuilt.iterdir()} == original
    # a damaged cache is noticed and regenerated
    victim = rebuilt / task.meta["files"][0]
    os.chmod(victim, 0o644)
    victim.write_text("tampered")
    import fgo_engine.suites.tools.suite as suite_mod

    suite_mod._verified.discard(str(rebuilt))
    assert (ensure_files(stored.meta, tmp_path / "elsewhere") / victim.name).read_text() == original[victim.name]
    with pytest.raises(ConfigError, match="kind"):
        ensure_files({}, tmp_path)


def test_every_question_is_recognized_with_its_needs(suite):
    skill = ToolsSkill()
    for t in suite.train_tasks() + suite.test_tasks():
        parsed = parse_question(t.input)
        assert parsed is not None and parsed[0] == t.meta["kind"]
        assert skill.recognizes(t.input)
        assert [k.key for k in skill.needs(t.input)] == t.meta["needs"]
        assert isinstance(find_skill(t.input), ToolsSkill)
    assert not skill.recognizes("What is the capital of France?")


def test_knowledge_names_the_tool_to_add():
    assert len(KNOWLEDGE) == len(TOOL_NAME) == 9
    for key, item in KNOWLEDGE.items():
        assert item.key.startswith("tools.")
        assert item.text.startswith(f"Add a tool {TOOL_NAME[key]}(")
        assert skill_mod.capability_named(item.text) == key
        assert toolbox.parse_toolbox(TOOL_SOURCE[key])[0].name == TOOL_NAME[key]
        assert BUGGY[key] != TOOL_SOURCE[key]


# --- scoring -----------------------------------------------------------------------------


def test_scoring_numeric_tolerance_and_normalized(suite):
    task = next(t for t in suite.test_tasks() if t.meta["kind"] == "multi_weight")
    exp = float(task.expected)
    assert task.meta["scorer"] == {"name": "numeric", "tol": 0.051}
    assert suite.score(task, task.expected) == 1.0
    assert suite.score(task, f"{exp + 0.04:.2f} lb") == 1.0  # within tolerance, unit words are fine
    assert suite.score(task, f"{exp + 0.2:.1f}") == 0.0
    assert suite.score(task, "unknown") == 0.0
    count = next(t for t in suite.test_tasks() if t.meta["kind"] == "search_count")
    assert suite.score(count, str(int(count.expected) + 1)) == 0.0
    assert suite.score(count, f"{count.expected} lines") == 1.0
    due = next(t for t in suite.test_tasks() if t.meta["kind"] == "date_due")
    assert suite.score(due, f"{due.expected}.") == 1.0
    assert suite.score(due, "2000-01-01") == 0.0
    top = next(t for t in suite.test_tasks() if t.meta["kind"] == "agg_top")
    assert suite.score(top, top.expected.upper()) == 1.0


# --- the agent loop ---------------------------------------------------------------------


def test_run_agent_calls_a_tool_then_answers(suite, one_per_kind):
    task = one_per_kind["date_due"]
    llm = ScriptedLLM([[("read_file", {"path": "invoices.csv"})], f"It is due then.\nAnswer: {task.expected}"])
    traj = suite.run_agent(task, suite.initial_module(), llm)
    assert traj.success and traj.score == 1.0 and traj.answer == task.expected and traj.error is None
    assert [s.kind for s in traj.steps] == ["tool_call", "tool_result", "answer"]
    assert traj.steps[0].text == 'read_file({"path": "invoices.csv"})'
    assert traj.steps[1].text.startswith("invoice,customer,issued,terms_days,amount")  # real file content
    first_msgs, tools = llm.calls[0]
    assert [m["role"] for m in first_msgs] == ["system", "user"] and first_msgs[1]["content"] == task.input
    assert {t["function"]["name"] for t in tools} == {"read_file", "list_files"}
    second_msgs, _ = llm.calls[1]
    assert [m["role"] for m in second_msgs] == ["system", "user", "assistant", "tool"]
    assert second_msgs[2]["tool_calls"][0]["function"]["name"] == "read_file"
    assert second_msgs[3]["tool_call_id"] == second_msgs[2]["tool_calls"][0]["id"]
    assert second_msgs[3]["content"] == traj.steps[1].text


def test_run_agent_step_limit_and_agent_mistakes(files_root, one_per_kind):
    s = ToolsSuite(files_root=str(files_root), max_steps=3)
    task = one_per_kind["agg_sum"]
    llm = ScriptedLLM([[("no_such_tool", {})], [("read_file", "{not json")], [("read_file", "[1, 2]")]])
    traj = s.run_agent(task, s.initial_module(), llm)
    assert not traj.success and traj.score == 0.0 and "step limit" in traj.error
    results = [st.text for st in traj.steps if st.kind == "tool_result"]
    assert "no tool named 'no_such_tool'" in results[0] and "list_files, read_file" in results[0]
    assert "not valid JSON" in results[1] and "JSON object" in results[2]
    # arguments past Python's own limits (nesting, digits) are the agent's mistake, not a crash
    deep, digits = '{"path": ' + "[" * 100_000 + "]" * 100_000 + "}", '{"path": ' + "9" * 5000 + "}"
    traj = s.run_agent(task, s.initial_module(), ScriptedLLM([[("read_file", deep)], [("read_file", digits)],
                                                                "Answer: 1"]))
    results = [st.text for st in traj.steps if st.kind == "tool_result"]
    assert "nested too deeply" in results[0] and "not valid JSON" in results[1] and traj.answer == "1"
    # an unparsable toolbox: no tools, a note, no exception
    traj = s.run_agent(task, Module("toolbox", "def broken(:\n"), ScriptedLLM(["Answer: 1"]))
    assert traj.steps[0].kind == "note" and "does not parse" in traj.steps[0].text and not traj.success


MISBEHAVING = '''import os
import socket


def spin() -> str:
    """Never returns."""
    while True:
        pass


def hog() -> int:
    """Allocates far too much memory."""
    return len(bytearray(2 * 1024 ** 3))


def phone_home() -> str:
    """Opens a network connection."""
    s = socket.create_connection(("example.com", 80), timeout=1)
    return "connected"


def escape(target: str) -> str:
    """Writes outside its scratch directory."""
    with open(target, "w") as f:
        f.write("pwned")
    return "written"


def flood() -> str:
    """Prints megabytes."""
    for _ in range(20000):
        print("x" * 500)
    return "done"


def crash() -> int:
    """Raises."""
    return 1 // 0


def tamper() -> str:
    """Overwrites a task file."""
    with open(os.path.join(os.environ["TASK_FILES"], "README.txt"), "w") as f:
        f.write("gone")
    return "tampered"
'''


def test_misbehaving_tools_give_short_errors_and_the_run_goes_on(files_root, one_per_kind, tmp_path):
    s = ToolsSuite(files_root=str(files_root), tool_timeout=1.0, max_steps=10)
    task = one_per_kind["search_json"]
    target = tmp_path / "outside.txt"
    readme = s.files_dir(task) / "README.txt"
    before = readme.read_text()
    llm = ScriptedLLM([[("spin", {})], [("hog", {})], [("phone_home", {})], [("escape", {"target": str(target)})],
                       [("flood", {})], [("crash", {})], [("tamper", {})], f"Answer: {task.expected}"])
    traj = s.run_agent(task, Module("toolbox", MISBEHAVING), llm)
    assert traj.success and traj.error is None  # the agent still answered
    results = [st.text for st in traj.steps if st.kind == "tool_result"]
    assert len(results) == 7
    spin, hog, net, esc, flood, crash, tamper = results
    assert spin.startswith("Error: timed out")
    assert hog.startswith("Error:") and "memory" in hog
    assert net.startswith("Error:") and "network" in net.lower()
    assert esc.startswith("Error:") and not target.exists()
    assert flood.startswith("done") and len(flood) <= RESULT_CHARS and ("truncated" in flood or "shortened" in flood)
    assert crash.startswith("Error: ZeroDivisionError")
    assert tamper.startswith("Error:") and readme.read_text() == before
    assert all(len(r) <= RESULT_CHARS for r in results)
    assert all(len(r.splitlines()[0]) < 400 for r in results if r.startswith("Error:"))


def test_tool_results_are_cached_per_source_args_and_files(files_root, one_per_kind):
    s = ToolsSuite(files_root=str(files_root))
    task = one_per_kind["search_count"]
    calls = [("read_file", {"path": "README.txt"})]
    for _ in range(2):
        s.run_agent(task, s.initial_module(), ScriptedLLM([calls, "Answer: 1"]))
    assert s.stats == {"sandbox_calls": 1, "cache_hits": 1}
    s.run_agent(one_per_kind["search_line"], s.initial_module(), ScriptedLLM([calls, "Answer: 1"]))
    assert s.stats["sandbox_calls"] == 2  # other files, another call


# --- the simulated LLM --------------------------------------------------------------------


def test_sim_tools_really_work_in_the_sandbox(suite, one_per_kind):
    """With every tool, the competent sim answers each kind from real tool results."""
    module = Module("toolbox", full_toolbox())
    skill = ToolsSkill()
    for kind, task in one_per_kind.items():
        traj = suite.run_agent(task, module, SkillLLM(skill))
        assert traj.success, (kind, task.expected, traj.answer, [s.text[:120] for s in traj.steps])
        used = [st.text.split("(")[0] for st in traj.steps if st.kind == "tool_call"]
        assert used == [n for n in used if n in TOOL_NAME.values()]  # tools, not read_file
        assert set(used) == {TOOL_NAME[k] for k in task.meta["needs"]}


def test_a_buggy_tool_gives_a_wrong_answer_through_real_execution(suite, one_per_kind):
    task = one_per_kind["date_span"]
    module = Module("toolbox", full_toolbox({**TOOL_SOURCE, "tools.date_diff": BUGGY["tools.date_diff"]}))
    traj = suite.run_agent(task, module, SkillLLM(ToolsSkill()))
    assert not traj.success and traj.answer == str(int(task.expected) + 1)


def test_lucky_agent_without_tools_reads_the_file_and_works_it_out(suite, one_per_kind):
    task = one_per_kind["date_weekday"]
    skill = ToolsSkill()
    traj = suite.run_agent(task, suite.initial_module(), SkillLLM(skill, missing=skill.needs(task.input)))
    assert traj.success
    assert [st.text.split("(")[0] for st in traj.steps if st.kind == "tool_call"] == ["read_file"]


def test_incompetent_agent_reads_then_guesses(one_per_kind):
    skill = ToolsSkill()
    task = one_per_kind["agg_sum"]
    msgs = [{"role": "system", "content": "x"}, {"role": "user", "content": task.input}]
    first = skill.act(msgs, task.input, competent=False, missing=skill.needs(task.input), rng=random.Random(1))
    assert first["tool_calls"] == [{"name": "read_file", "arguments": {"path": "sales.csv"}}]
    msgs += [{"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "sales.csv"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "order_id,revenue\nS1,12.50\n"}]
    second = skill.act(msgs, task.input, competent=False, missing=[], rng=random.Random(1))
    assert isinstance(second, str) and "Answer:" in second


def test_covered_reads_schemas_for_the_agent_and_source_for_the_evaluator():
    skill = ToolsSkill()
    item = KNOWLEDGE["tools.csv_aggregate"]
    good = full_toolbox()
    schemas = json.dumps(toolbox.tool_schemas(toolbox.parse_toolbox(good)), sort_keys=True)
    assert skill.covered("system text\n<tools>\n" + schemas + "\n</tools>", item)
    assert skill.covered(good, item)
    assert not skill.covered(INITIAL_TOOLBOX, item)
    buggy = full_toolbox({**TOOL_SOURCE, "tools.csv_aggregate": BUGGY["tools.csv_aggregate"]})
    assert has_known_bug(buggy, "tools.csv_aggregate")
    assert not skill.covered(buggy, item)  # the evaluator, reading the code, spots the bug


def test_revise_toolbox_adds_named_tools_and_keeps_the_rest(monkeypatch):
    skill = ToolsSkill()
    suggestions = [KNOWLEDGE["tools.date_diff"].text, "Double-check the final answer before replying.",
                   KNOWLEDGE["tools.unit_convert"].text, KNOWLEDGE["tools.date_diff"].text]
    monkeypatch.setattr(skill_mod, "BUG_RATE", 0.0)
    new = skill.revise_toolbox(INITIAL_TOOLBOX, suggestions, random.Random(0))
    names = [t.name for t in toolbox.parse_toolbox(new)]
    assert names == ["list_files", "read_file", "days_between", "convert_units"]
    ToolsSuite().validate_module(new)
    assert run_tool(new, "days_between", {"start": "2024-02-27", "end": "2024-03-02"}).value == "4"
    assert run_tool(new, "convert_units", {"value": 10, "from_unit": "mi", "to_unit": "km"}).value == "16.09344"
    # vague suggestions change nothing
    assert skill.revise_toolbox(new, ["Be systematic and avoid repeating failed steps."], random.Random(0)) == new
    # a buggy version now and then; the evaluator spots it and the next revision fixes it
    monkeypatch.setattr(skill_mod, "BUG_RATE", 1.0)
    buggy = skill.revise_toolbox(new, [KNOWLEDGE["tools.weekday"].text], random.Random(0))
    assert has_known_bug(buggy, "tools.weekday")
    assert run_tool(buggy, "weekday_of", {"date_text": "2024-03-04"}).value == "Sunday"  # really Monday
    monkeypatch.setattr(skill_mod, "BUG_RATE", 0.0)
    fixed = skill.revise_toolbox(buggy, [KNOWLEDGE["tools.weekday"].text], random.Random(0))
    assert not has_known_bug(fixed, "tools.weekday")
    assert run_tool(fixed, "weekday_of", {"date_text": "2024-03-04"}).value == "Monday"
    assert [t.name for t in toolbox.parse_toolbox(fixed)] == names + ["weekday_of"]
    # removal goes through apply_edits too
    removed, notes = toolbox.apply_edits(fixed, [{"op": "remove", "name": "convert_units"}])
    assert "convert_units" not in [t.name for t in toolbox.parse_toolbox(removed)] and notes == ["removed convert_units"]


def test_merge_keeps_one_working_version_per_tool(suite, one_per_kind):
    skill = ToolsSkill()
    a, _ = toolbox.apply_edits(INITIAL_TOOLBOX, [
        {"op": "add", "name": "aggregate_csv", "source": TOOL_SOURCE["tools.csv_aggregate"]}])
    b, _ = toolbox.apply_edits(INITIAL_TOOLBOX, [
        {"op": "add", "name": "aggregate_csv", "source": BUGGY["tools.csv_aggregate"]},
        {"op": "add", "name": "convert_units", "source": TOOL_SOURCE["tools.unit_convert"]}])
    merged = skill.merge_toolboxes([(a, 0.9), (b, 0.5)], random.Random(0))
    names = [t.name for t in toolbox.parse_toolbox(merged)]
    assert sorted(names) == ["aggregate_csv", "convert_units", "list_files", "read_file"]
    assert len(names) == len(set(names))
    assert not has_known_bug(merged, "tools.csv_aggregate")
    assert toolbox.check_merged_toolbox(merged, [(a, 0.9), (b, 0.5)]) == []
    traj = suite.run_agent(one_per_kind["multi_weight"], Module("toolbox", merged), SkillLLM(skill))
    assert traj.success  # aggregate (the working one) then convert, in the sandbox
    # merging many at once may lose tools, but never all of them
    boxes = [(full_toolbox(), 0.5 + i / 100) for i in range(8)]
    sizes = [len(toolbox.parse_toolbox(skill.merge_toolboxes(boxes, random.Random(seed)))) for seed in range(5)]
    assert min(sizes) >= 1 and min(sizes) < 11


def test_validate_module_and_similarity_text(suite):
    suite.validate_module(INITIAL_TOOLBOX)
    suite.validate_module(full_toolbox())
    with pytest.raises(MalformedOutputError, match="syntax error"):
        suite.validate_module("def read_file(path:\n    return 1\n")
    with pytest.raises(MalformedOutputError, match="no public tool"):
        suite.validate_module("import os\n\n\ndef _helper():\n    return 1\n")
    text = suite.similarity_text(Module("toolbox", full_toolbox()))
    assert "aggregate_csv" in text and "csv" in text.split() and "def " not in text
    assert "toolbox" in suite.describe()  # the simulated merger looks for the word


# --- a whole run ---------------------------------------------------------------------------


def _run(tmp_path: Path, method: str) -> tuple[float, str, dict[str, int]]:
    cfg = RunConfig.from_dict({
        "suite": "tools", "suite_options": {"n_train": 20, "n_test": 25, "files_root": str(tmp_path / "files")},
        "model": "fgo-sim/null", "method": method, "subsets": 3, "epochs": 2, "threshold": 2,  # null: the pipeline, not the mechanisms
        "seed": 0, "workers": 3})
    s = Session.create(tmp_path / f"{method}.db", cfg)
    try:
        res = s.run()
        assert res.status == "done", res.message
        return res.test_score, res.final_module.text, s.suite.stats
    finally:
        s.close()


def test_headless_fgo_run_beats_the_starting_toolbox(tmp_path):
    vanilla, start, _ = _run(tmp_path, "vanilla")
    fgo, final, stats = _run(tmp_path, "fgo")
    assert start == INITIAL_TOOLBOX
    assert vanilla <= 0.25
    assert fgo >= vanilla + 0.5, (vanilla, fgo)
    names = re.findall(r"^def (\w+)", final, re.M)
    assert {"read_file", "aggregate_csv", "search_text"} <= set(names)
    assert stats["sandbox_calls"] > 0
