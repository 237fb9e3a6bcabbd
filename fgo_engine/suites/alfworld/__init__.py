"""The ``alfworld`` suite: real ALFWorld games (Shridhar et al., ICLR 2021) from a folder the
user gives, played in worker processes. Needs the optional extra ``alfworld`` (PyPI
``alfworld`` 0.4.2 and ``textworld`` 1.7.0) only when a game is played; importing this
package registers the suite and imports neither."""

from __future__ import annotations

from fgo_engine.suites.alfworld.games import TYPES, Game, find_games, games_root, walkthrough
from fgo_engine.suites.alfworld.suite import ACTION_GUIDE, AlfworldSuite, command
from fgo_engine.suites.alfworld.worker import AlfworldEnv, GameError, WorkerPool
from fgo_engine.suites.base import register_suite

register_suite("alfworld", AlfworldSuite)

__all__ = ["ACTION_GUIDE", "TYPES", "AlfworldEnv", "AlfworldSuite", "Game", "GameError", "WorkerPool",
           "command", "find_games", "games_root", "walkthrough"]
