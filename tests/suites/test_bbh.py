"""The bbh suite: BIG-Bench Hard task files from a folder the user gives."""
from __future__ import annotations

import json

import pytest
from conftest import run_session, shared_data

from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError
from fgo_engine.suites.base import load_suite
from fgo_engine.suites.bbh import TASKS, BBHSuite
from suites.test_jsonl_tasks import FakeLLM


@pytest.fixture(scope="module")
def bbh_dir():
    return shared_data("bbh")


def write_task(folder, name, examples, canary="CANARY"):
    (folder / f"{name}.json").write_text(json.dumps({"canary": canary, "examples": examples}))


def test_all_27_tasks_load_by_default(bbh_dir):
    suite = BBHSuite(data=bbh_dir, n_train=1, n_test=2)
    assert suite.names == list(TASKS) and len(TASKS) == 27
    assert len(suite.train_tasks()) == 27 and len(suite.test_tasks()) == 54
    assert {t.category for t in suite.train_tasks()} == set(TASKS)
    assert all(t.meta["canary"].startswith("BENCHMARK DATA SHOULD NEVER") for t in suite.train_tasks())


def test_split_is_seeded_disjoint_and_per_task(bbh_dir):
    opts = dict(data=str(bbh_dir), tasks="web_of_lies,boolean_expressions", n_train=12, n_test=12)
    a, b, c = (load_suite("bbh", seed=s, **opts) for s in (0, 0, 1))
    for split in ("train_tasks", "test_tasks"):
        tasks = getattr(a, split)()
        assert len(tasks) == 24
        assert sorted({t.category for t in tasks}) == ["boolean_expressions", "web_of_lies"]
        assert [t.id for t in tasks] == [t.id for t in getattr(b, split)()]
    assert not {t.id for t in a.train_tasks()} & {t.id for t in a.test_tasks()}
    assert [t.id for t in a.train_tasks()] != [t.id for t in c.train_tasks()]
    assert all(t.expected in ("Yes", "No", "True", "False") for t in a.train_tasks())


def test_missing_data_says_where_to_get_it(tmp_path):
    with pytest.raises(ConfigError, match="data=DIR.*github.com/suzgunmirac/BIG-Bench-Hard"):
        load_suite("bbh")
    with pytest.raises(ConfigError, match="not found"):
        BBHSuite(data=tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"web_of_lies\.json not found.*BIG-Bench-Hard"):
        BBHSuite(data=tmp_path, tasks="web_of_lies")


def test_bad_options_and_files_are_config_errors(tmp_path):
    write_task(tmp_path, "navigate", [{"input": "q", "target": "Yes"}] * 3)
    (tmp_path / "snarks.json").write_text("{not json")
    write_task(tmp_path, "hyperbaton", [{"input": "q"}])
    with pytest.raises(ConfigError, match="unknown task 'navigat'"):
        BBHSuite(data=tmp_path, tasks="navigat")
    with pytest.raises(ConfigError, match="3 examples, fewer than n_train \\+ n_test = 4"):
        BBHSuite(data=tmp_path, tasks="navigate", n_train=2, n_test=2)
    with pytest.raises(ConfigError, match="snarks.json is not valid JSON"):
        BBHSuite(data=tmp_path, tasks="snarks")
    with pytest.raises(ConfigError, match="example 0: needs string fields"):
        BBHSuite(data=tmp_path, tasks="hyperbaton")
    with pytest.raises(ConfigError, match="n_train must be"):
        BBHSuite(data=tmp_path, tasks="navigate", n_train=-1)
    with pytest.raises(ConfigError, match="unknown option 'shots'"):
        BBHSuite(data=tmp_path, tasks="navigate", shots=3)


@pytest.mark.parametrize("reply, success", [
    ("Sherrie tells the truth, so ... Answer: No", True),
    ("Answer: not sure", False),          # "not" is not "No"
    ("Yes or No", False),
])
def test_agent_scores_the_extracted_final_answer(tmp_path, reply, success):
    write_task(tmp_path, "web_of_lies", [{"input": "Does Elanor tell the truth?", "target": "No"}] * 2)
    suite = BBHSuite(data=tmp_path, tasks="web_of_lies", n_train=1, n_test=1)
    task = suite.train_tasks()[0]
    llm = FakeLLM(reply)
    traj = suite.run_agent(task, suite.initial_module(), llm)
    assert traj.success is success and traj.score == (1.0 if success else 0.0)
    system, user = llm.calls[0]
    assert system["content"] == suite.initial_module().text
    assert user["content"].startswith("Does Elanor tell the truth?")
    assert "Answer with Yes or No" in user["content"]


def test_option_tasks_ask_for_the_letter(bbh_dir):
    suite = BBHSuite(data=bbh_dir, tasks="date_understanding", n_train=1, n_test=0)
    task = suite.train_tasks()[0]
    llm = FakeLLM(f"Let me count the days.\nAnswer: {task.expected}")
    assert suite.run_agent(task, suite.initial_module(), llm).success
    assert "letter of the correct option" in llm.calls[0][1]["content"]
    wrong = "(A)" if task.expected != "(A)" else "(B)"
    assert not suite.run_agent(task, suite.initial_module(), FakeLLM(f"The answer is {wrong}.")).success


def test_session_on_the_simulator_gives_one_subset_per_task(tmp_path, bbh_dir):
    cfg = RunConfig.from_dict({
        "suite": "bbh", "model": "fgo-sim/medium", "subsets": 2, "epochs": 1, "partition": "category",
        "suite_options": {"data": str(bbh_dir), "tasks": "web_of_lies,boolean_expressions",
                          "n_train": 4, "n_test": 4}})
    res, (subsets,) = run_session(tmp_path / "bbh.db", cfg, "subsets")
    assert res.status == "done"
    groups = sorted({tid.rsplit("-", 1)[0] for tid in r["task_ids_json"]} for r in subsets)
    assert groups == [{"bbh-boolean_expressions"}, {"bbh-web_of_lies"}]
    assert res.test_score == 0.0  # the simulator has no BBH skill: plumbing only
