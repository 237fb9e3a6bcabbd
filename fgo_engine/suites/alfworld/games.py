"""Finding ALFWorld games on disk, and their opening observations.

A game is a ``game.tw-pddl`` file (JSON: PDDL domain and problem, grammar, ``solvable``,
``walkthrough``) in ``<split>/<task folder>/<trial folder>/``; the task folder's name starts
with the ALFWorld task type. The opening observation (the room and the task) needs a real
environment reset, so it is computed once per game in the worker processes and cached
under ``$FGO_CACHE_DIR`` (default ``~/.cache/fgo-studio``), keyed by the file's path, size
and modification time.
"""
from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from fgo_engine.errors import ConfigError

# ALFWorld's task types and the short category names the household suite also uses.
TYPES = {
    "pick_and_place_simple": "pick",
    "pick_clean_then_place_in_recep": "clean",
    "pick_heat_then_place_in_recep": "heat",
    "pick_cool_then_place_in_recep": "cool",
    "look_at_obj_in_light": "look",
    "pick_two_obj_and_place": "pick_two",
}
SPLITS = {"train": "train", "test": "valid_unseen"}
WHERE = ("the ALFWorld json_2.1.1 games (train/ and valid_unseen/, one game.tw-pddl per trial; "
         "`alfworld-download` from https://github.com/alfworld/alfworld fetches them)")


@dataclass(frozen=True)
class Game:
    path: str  # absolute path of game.tw-pddl
    split: str  # train | test
    task_type: str  # ALFWorld's name, e.g. pick_clean_then_place_in_recep
    folder: str  # the task folder, e.g. pick_clean_then_place_in_recep-Bowl-None-Cabinet-10
    trial: str  # the trial folder

    @property
    def category(self) -> str:
        return TYPES[self.task_type]

    @property
    def id(self) -> str:
        return f"alfworld-{self.split}-{self.folder}-{self.trial.removeprefix('trial_')}"


def games_root(data: str | Path) -> Path:
    """The folder holding ``train/`` and ``valid_unseen/`` (``data`` or its ``json_2.1.1``)."""
    root = Path(data).expanduser()
    for cand in (root, root / "json_2.1.1"):
        if (cand / "valid_unseen").is_dir() or (cand / "train").is_dir():
            return cand.resolve()
    if not root.exists():
        raise ConfigError(f"alfworld: data folder {root} not found; it should hold {WHERE}")
    raise ConfigError(f"alfworld: {root} has no train/ or valid_unseen/ folder; expected {WHERE}")


def find_games(root: Path, split: str) -> list[Game]:
    """Every game of a split, sorted by path; unsolvable games are left out, as ALFWorld does."""
    folder = root / SPLITS[split]
    if not folder.is_dir():
        raise ConfigError(f"alfworld: {folder} not found; expected {WHERE}")
    games = []
    for path in sorted(folder.glob("*/*/game.tw-pddl")):
        task_folder, trial = path.parent.parent.name, path.parent.name
        task_type = task_folder.split("-", 1)[0]
        if task_type not in TYPES or "movable" in task_folder or "Sliced" in task_folder:
            continue
        games.append(Game(str(path.resolve()), split, task_type, task_folder, trial))
    if not games:
        raise ConfigError(f"alfworld: no game.tw-pddl files under {folder}; expected {WHERE}")
    return games


def read_game(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"alfworld: cannot read the game {path}: {exc}") from None


def walkthrough(path: str) -> list[str]:
    """The expert's command sequence stored with the game."""
    return list(read_game(path).get("walkthrough") or [])


# -- opening observations ---------------------------------------------------------------
_CACHE_LOCK = threading.Lock()


def cache_file() -> Path:
    from fgo_engine import _env

    return _env.cache_dir() / "alfworld-intros.json"


def _key(path: str) -> str:
    st = os.stat(path)
    return f"{path}|{st.st_size}|{st.st_mtime_ns}"


def _load_cache() -> dict[str, str]:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_cache(entries: dict[str, str]) -> None:
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**_load_cache(), **entries}
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(merged, indent=0, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # a cache that cannot be written only costs time next run


def intros(games: list[Game], *, parallel: int = 2) -> dict[str, str]:
    """The opening observation of each game (path → text), from the cache or a reset."""
    from fgo_engine.suites.alfworld.worker import AlfworldEnv

    with _CACHE_LOCK:
        cache = _load_cache()
        keys = {g.path: _key(g.path) for g in games}
        out = {g.path: cache[keys[g.path]] for g in games if keys[g.path] in cache}
        missing = [g for g in games if g.path not in out]
        if missing:
            def opening(game: Game) -> str:
                env = AlfworldEnv(game.path)
                try:
                    return env.reset()
                finally:
                    env.close()

            with ThreadPoolExecutor(max_workers=max(1, parallel)) as ex:
                for game, text in zip(missing, ex.map(opening, missing)):
                    out[game.path] = text
            _save_cache({keys[g.path]: out[g.path] for g in missing})
    return out
