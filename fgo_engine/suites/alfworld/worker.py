"""ALFWorld games in worker processes.

TextWorld keeps every registered game environment alive in its process, so playing many
games in one process grows its memory without bound. Each worker process plays one game
at a time over a pipe and exits after ``max_games``; :class:`WorkerPool` hands a worker
to each episode and replaces the retired ones. The parent never imports textworld.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

from fgo_engine.errors import ConfigError, FGOError

INSTALL_HINT = ("the alfworld suite needs the optional extra: pip install 'fgo-studio[alfworld]' "
                "(alfworld 0.4.2, textworld 1.7.0)")
WELCOME = "-= Welcome to TextWorld, ALFRED! =-"


class GameError(FGOError):
    """A game failed to load or step (the worker names the game and the cause)."""


def _serve(max_games: int) -> None:  # pragma: no cover - runs in the child
    """The child's loop: one JSON request a line on stdin, one JSON reply a line out."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # textworld prints; the parent's terminal belongs to the app
    os.dup2(devnull, 2)

    def send(*reply: Any) -> None:
        out.write(json.dumps(reply) + "\n")

    try:
        import textworld
        import textworld.gym
        from alfworld.agents.environment.alfred_tw_env import AlfredDemangler, AlfredInfos
    except ImportError as exc:
        send("missing", f"{INSTALL_HINT} ({exc})")
        return
    send("ready", "")
    env = None
    games = 0
    for line in sys.stdin:
        msg = json.loads(line)
        op = msg[0]
        try:
            if op == "reset":
                if env is not None:
                    env.close()
                    env = None
                if games >= max_games:
                    send("retired", "")
                    break
                games += 1
                infos = textworld.EnvInfos(won=True, admissible_commands=True)
                env_id = textworld.gym.register_games(
                    [msg[1]], infos, batch_size=1, asynchronous=False, max_episode_steps=msg[2],
                    wrappers=[AlfredDemangler(shuffle=False), AlfredInfos])
                env = textworld.gym.make(env_id)
                obs, info = env.reset()
                send("ok", obs[0], False, False, list(info["admissible_commands"][0]))
            elif op == "step":
                if env is None:
                    raise RuntimeError("step before reset")
                obs, _score, done, info = env.step([msg[1]])
                send("ok", obs[0], bool(info["won"][0]), bool(done[0]), list(info["admissible_commands"][0]))
            elif op == "quit":
                break
        except Exception as exc:  # reported to the parent, which names the game
            send("error", f"{type(exc).__name__}: {exc}")
    if env is not None:
        env.close()


class Worker:
    """One child process (``python -m fgo_engine.suites.alfworld.worker``) and its pipes.
    A plain subprocess, not multiprocessing: nothing of the parent is forked or re-imported."""

    def __init__(self, max_games: int):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fgo_engine.suites.alfworld.worker", str(max_games)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, encoding="utf-8", bufsize=1)
        kind, text = self._recv()
        if kind == "missing":
            self.close()
            raise ConfigError(text)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def _recv(self) -> list[Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise GameError(f"the ALFWorld worker process died (exit code {code})")
        return json.loads(line)

    def call(self, *msg: Any) -> list[Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise GameError("the ALFWorld worker process is gone") from None
        reply = self._recv()
        if reply[0] == "error":
            raise GameError(reply[1])
        return reply

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(["quit"]) + "\n")
            self.proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class WorkerPool:
    """Idle workers, reused until each has played ``max_games`` games."""

    def __init__(self, max_games: int = 20, keep: int = 4):
        self.max_games = max_games
        self.keep = keep
        self._idle: list[Worker] = []
        self._lock = threading.Lock()

    def reset(self, game: str, max_steps: int) -> tuple[Worker, list[Any]]:
        """A worker that has just reset ``game``, and the reset's reply."""
        while True:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            reused = worker is not None
            if worker is None:
                worker = Worker(self.max_games)
            try:
                reply = worker.call("reset", game, max_steps)
            except GameError as exc:
                worker.close()
                if reused and not worker.alive():
                    continue  # an idle worker that died: take a fresh one
                raise GameError(f"ALFWorld game {game}: {exc}") from None
            if reply[0] == "retired":
                worker.close()
                continue
            return worker, reply

    def release(self, worker: Worker) -> None:
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(worker)
                return
        worker.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for w in idle:
            w.close()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def pool() -> WorkerPool:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = WorkerPool()
            import atexit

            atexit.register(_POOL.close)
        return _POOL


class AlfworldEnv:
    """One episode, driven from the parent: the interface of the household environment
    (``reset``, ``step(text) -> observation``, ``won``, ``done``) over a worker."""

    def __init__(self, game: str, *, step_limit: int = 50, workers: WorkerPool | None = None):
        self.game = game
        self.step_limit = step_limit
        self.pool = workers or pool()
        self.worker: Worker | None = None
        self.won = False
        self.done = False
        self.steps = 0
        self.admissible: list[str] = []

    def reset(self) -> str:
        self.close()
        # TextWorld's own limit sits above ours, so our count decides when the episode ends.
        self.worker, reply = self.pool.reset(self.game, self.step_limit + 10)
        self.won = self.done = False
        self.steps = 0
        self.admissible = reply[4]
        return intro_text(reply[1])

    def step(self, command: str) -> str:
        if self.worker is None:
            raise GameError("step before reset")
        if self.done:
            return "Nothing happens."
        try:
            _, obs, won, done, self.admissible = self.worker.call("step", command)
        except GameError as exc:
            self.worker.close()
            self.worker = None
            raise GameError(f"ALFWorld game {self.game}: {exc}") from None
        self.steps += 1
        self.won = won
        self.done = won or done or self.steps >= self.step_limit
        if self.done:
            self.close()
        return str(obs).strip()

    def close(self) -> None:
        if self.worker is not None:
            self.pool.release(self.worker)
            self.worker = None


def intro_text(obs: str) -> str:
    """The reset observation without TextWorld's banner: the room, then the task."""
    return obs.replace(WELCOME, "").strip()


if __name__ == "__main__":  # pragma: no cover - the worker process
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
