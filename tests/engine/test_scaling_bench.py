"""benchmarks/scaling.py's own pieces: the growth-exponent fit, the PNG it writes without a
plotting library, and its tables (the grid itself runs in `make bench`)."""
from __future__ import annotations

import importlib.util
import struct
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def scaling():
    spec = importlib.util.spec_from_file_location("bench_scaling", ROOT / "benchmarks" / "scaling.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _result():
    rows = {"all-at-once": [{"n_train": n, "prompt_tokens": 1000 * n ** 1.5, "optimizer_prompt_tokens": 10 * n,
                             "train_wall_seconds": n / 10, "train_critical_path_seconds": n / 20,
                             "overflowed": n > 50, "test_score": 0.5} for n in (24, 48, 96)],
            "vanilla": [{"n_train": n, "prompt_tokens": 0, "optimizer_prompt_tokens": 0, "train_wall_seconds": 0.1,
                         "train_critical_path_seconds": 0.0, "overflowed": False, "test_score": None}
                        for n in (24, 48, 96)]}
    return {"suite": "toy", "subsets": 4, "rows": rows, "exponents": {
        k: {"prompt_tokens": None, "optimizer_prompt_tokens": None, "train_wall_seconds": None} for k in rows}}


def test_growth_exponent_of_a_power_law(scaling):
    assert scaling.fit_exponent([24, 48, 96, 192], [3 * n ** 1.5 for n in (24, 48, 96, 192)]) == pytest.approx(1.5)
    assert scaling.fit_exponent([24, 48], [100, 100]) == pytest.approx(0.0)
    assert scaling.fit_exponent([24, 48], [0, 0]) is None  # no optimization tokens: nothing to fit


def test_the_chart_is_a_png_of_its_stated_size(scaling):
    data = scaling.png_chart(_result())
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    w, h = struct.unpack(">II", data[16:24])
    assert kind == b"IHDR" and (w, h) == (760, 460)
    idat = data.index(b"IDAT")
    size = struct.unpack(">I", data[idat - 4:idat])[0]
    raw = zlib.decompress(data[idat + 4:idat + 4 + size])
    assert len(raw) == h * (1 + 3 * w)
    assert raw.count(b"\xff") < len(raw)  # something was drawn


def test_the_table_flags_overflow_and_prints_the_exponents(scaling):
    md = scaling.to_markdown(_result())
    assert "| all-at-once | 96 | 940,604 |" in md and "| yes |" in md
    assert "| vanilla | — | — | — |" in md
    assert scaling.terminal_chart(_result())  # plotext renders without a terminal
