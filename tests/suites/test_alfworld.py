"""The alfworld suite: real ALFWorld games in worker processes (needs the alfworld extra,
which `make test` installs, and the public games under FGO_DATA_DIR)."""
from __future__ import annotations

import collections

import pytest
from conftest import run_session, shared_data

from fgo_engine.config import RunConfig
from fgo_engine.errors import ConfigError
from fgo_engine.suites.alfworld import (
    ACTION_GUIDE,
    TYPES,
    AlfworldEnv,
    AlfworldSuite,
    WorkerPool,
    command,
    find_games,
    walkthrough,
)
from fgo_engine.types import Completion, Task


@pytest.fixture(scope="module")
def games_dir():
    return shared_data("alfworld") / "json_2.1.1"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    # Opening observations are cached; a test run keeps its own cache.
    monkeypatch.setenv("FGO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "fgo-cache"))


class Script:
    """An agent that replies from a list, then repeats its last line."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.calls = []

    def __call__(self, messages, *, tools=None):
        self.calls.append(messages)
        i = min(len(self.calls), len(self.replies)) - 1
        return Completion(text=self.replies[i])


def test_games_split_like_the_paper(games_dir):
    assert len(find_games(games_dir, "test")) == 134
    assert len(find_games(games_dir, "train")) == 120
    suite = AlfworldSuite(data=str(games_dir))
    train, test = suite.games("train"), suite.games("test")
    assert collections.Counter(g.category for g in train) == {c: 10 for c in TYPES.values()}
    assert len(test) == 134 and len({g.path for g in test}) == 134
    small = AlfworldSuite(data=str(games_dir), n_train=12, n_test=12, seed=1)
    assert collections.Counter(g.category for g in small.games("train")) == {c: 2 for c in TYPES.values()}
    assert len(small.games("test")) == 12
    again = AlfworldSuite(data=str(games_dir), n_train=12, n_test=12, seed=1)
    assert [g.id for g in again.games("train")] == [g.id for g in small.games("train")]
    other = AlfworldSuite(data=str(games_dir), n_train=12, n_test=12, seed=2)
    assert [g.id for g in other.games("train")] != [g.id for g in small.games("train")]


def test_bad_options_are_config_errors(tmp_path, games_dir):
    with pytest.raises(ConfigError, match="data=DIR.*json_2.1.1.*alfworld"):
        AlfworldSuite()
    with pytest.raises(ConfigError, match="not found"):
        AlfworldSuite(data=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match="no train/ or valid_unseen/"):
        AlfworldSuite(data=str(tmp_path))
    with pytest.raises(ConfigError, match="120 games, fewer than n_train = 121"):
        AlfworldSuite(data=str(games_dir), n_train=121)
    with pytest.raises(ConfigError, match="unknown option 'steps'"):
        AlfworldSuite(data=str(games_dir), steps=3)


@pytest.mark.parametrize("reply, cmd", [
    ("put mug 1 in/on shelf 2", "move mug 1 to shelf 2"),
    ("Action: put the mug 1 on shelf 2.", "move mug 1 to shelf 2"),
    ("> move mug 1 to shelf 2", "move mug 1 to shelf 2"),
    ("**go to fridge 1**\nthen I will open it", "go to fridge 1"),
    ("take apple 1 from countertop 2", "take apple 1 from countertop 2"),
    ("think: the mug is probably in a cabinet", "think: the mug is probably in a cabinet"),
    ("Dance wildly", "dance wildly"),
])
def test_replies_become_game_commands(reply, cmd):
    assert command(reply) == cmd
    assert "move <object> to <receptacle>" in ACTION_GUIDE and "put <object>" not in ACTION_GUIDE


def _task(game):
    return Task(id=game.id, input="", expected="", category=game.category, meta={"game": game.path})


def test_replaying_the_stored_walkthrough_wins(games_dir):
    # One game of three types, through the suite's ReAct loop; the agent says "put … in/on …"
    # as ALFWorld's ReAct prompts do, and thinks once, which costs no game step.
    suite = AlfworldSuite(data=str(games_dir), n_train=0, n_test=1)
    games = find_games(games_dir, "test")
    picked = [next(g for g in games if g.category == c) for c in ("pick", "heat", "pick_two")]
    for game in picked:
        plan = walkthrough(game.path)
        replies = ["think: I follow the plan."] + [
            p.replace("move ", "put ", 1).replace(" to ", " in/on ", 1) if p.startswith("move ") else p
            for p in plan]
        traj = suite.run_agent(_task(game), suite.initial_module(), Script(replies))
        assert traj.success, (game.id, traj.error, traj.steps[-1])
        assert traj.score == 1.0 and traj.error is None
        assert sum(s.kind == "action" for s in traj.steps) == len(plan) + 1


def test_a_wandering_agent_stops_at_the_step_limit(games_dir):
    suite = AlfworldSuite(data=str(games_dir), n_train=0, n_test=1, step_limit=3)
    game = suite.games("test")[0]
    llm = Script(["look"])
    traj = suite.run_agent(_task(game), suite.initial_module(), llm)
    assert not traj.success and traj.error == "step limit reached (3 actions)"
    assert len(llm.calls) == 3
    first = llm.calls[0][1]["content"]
    assert first.startswith("You are in the middle of a room.") and "Your task is to:" in first


def test_workers_retire_after_max_games(games_dir):
    pool = WorkerPool(max_games=1, keep=1)
    game = find_games(games_dir, "test")[0].path
    try:
        env = AlfworldEnv(game, workers=pool)
        env.reset()
        first = env.worker.proc.pid
        env.close()
        env.reset()  # the idle worker has played its one game: a fresh process takes over
        assert env.worker.proc.pid != first
        assert env.step("look").startswith("You are in the middle of a room")
        env.close()
    finally:
        pool.close()


def test_session_on_the_simulator_runs_end_to_end(tmp_path, games_dir):
    cfg = RunConfig.from_dict({
        "suite": "alfworld", "model": "fgo-sim/medium", "subsets": 1, "epochs": 1,
        "suite_options": {"data": str(games_dir), "n_train": 1, "n_test": 1, "step_limit": 2}})
    res, (tasks,) = run_session(tmp_path / "alf.db", cfg, "tasks")
    assert res.status == "done", res.message
    assert res.test_score == 0.0  # the simulator knows nothing of real ALFWorld: plumbing only
    assert len(tasks) == 2
    assert all(t["input"].startswith("You are in the middle of a room") for t in tasks)
    assert [t["category"] for t in tasks if t["split"] == "train"] == ["pick"]
