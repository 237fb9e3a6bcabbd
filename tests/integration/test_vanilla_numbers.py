"""Vanilla runs no training: it reports no train score, and says so, on the console and in the export."""
from __future__ import annotations

import io

from fgo_engine.report.export import session_report, to_markdown
from fgo_engine.run.console import ConsolePrinter
from fgo_engine.run.session import Session


def test_vanilla_reports_no_train_score(tmp_path, toy_config):
    out = io.StringIO()
    s = Session.create(tmp_path / "v.db", toy_config(method="vanilla", subsets=4),
                       sinks=[ConsolePrinter(out, heartbeat=0)])
    try:
        res = s.run()
        s.store.flush()
        md = to_markdown(session_report(s.store))
    finally:
        s.close()
    text = out.getvalue()
    assert res.status == "done" and res.train_score is None and res.test_score is not None
    assert "train 0.000" not in text and "4 subsets" not in text, text
    assert "no training" in text and "test " in text, text
    assert "best train score: 0.000" not in md and "no training" in md, md
