"""The engine stays usable without the app, and litellm is imported only when needed."""
from __future__ import annotations

import subprocess
import sys

CODE = """
import pkgutil, importlib, sys
import fgo_engine
assert 'litellm' not in sys.modules, 'importing fgo_engine imported litellm'
for m in pkgutil.walk_packages(fgo_engine.__path__, 'fgo_engine.'):
    if m.name == 'fgo_engine.sim.provider':
        continue  # the litellm custom handler: imported lazily by the gateway
    importlib.import_module(m.name)
bad = sorted(k for k in sys.modules if k == 'textual' or k.startswith('textual.') or k.startswith('fgo_tui'))
print(','.join(bad))
"""


def test_engine_never_imports_textual_or_the_app():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_environment_defaults_set_before_litellm():
    code = ("import os, fgo_engine; print(os.environ['LITELLM_LOCAL_MODEL_COST_MAP']); "
            "print(os.path.isdir(os.environ['TIKTOKEN_CACHE_DIR']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]
