"""Engine events reach the UI through a coalescing buffer drained on a timer, so dozens
of subsets streaming from worker threads never flood the app."""
from __future__ import annotations

import threading
import time

from fgo_engine import events as ev
from fgo_tui.messages import RunUpdated
from fgo_tui.model.bridge import EventBuffer
from fgo_tui.model.state import RunView

from .conftest import SIZE, open_first, wait_for


def test_buffer_coalesces_steps_and_tokens():
    buf = EventBuffer(keep_steps=5)
    for i in range(100):
        buf(ev.AgentStep("subset", "1", f"t{i}", "obs", f"act {i}"))
        buf(ev.TokensUsed("agent", "subset", "1", "explore", 10, 2, i % 10 == 0, 1000 + i))
    buf(ev.EpochDone(1, 0, 0.5, 0.5, None, "initial"))
    b = buf.drain()
    assert [s.action for s in b.steps[("subset", "1")]] == [f"act {i}" for i in range(95, 100)]
    assert b.step_counts[("subset", "1")] == 100
    d = b.tokens[("subset", "1")]
    assert (d.calls, d.cache_hits, d.prompt, d.completion) == (100, 10, 900, 180)
    assert b.total_tokens == 1099 and len(b.events) == 1
    assert not buf.drain()  # drained means empty


def test_run_view_applies_batches():
    buf = EventBuffer()
    view = RunView()
    buf(ev.RunStarted("fgo", 2, 8, 8, {"agent": 10}, has_merge_tree=True, max_merge_nodes=1))
    buf(ev.SubsetStarted(0, "subset 0 (a)", 4, ("a",)))
    buf(ev.AgentStep("subset", "0", "t1", "you see a glorp", "Answer: teal"))
    buf(ev.ModuleProposed(0, 1, "s0.e1.x", "rules"))
    buf(ev.EpochDone(0, 0, 0.25, 0.25, None, "initial"))
    buf(ev.EpochDone(0, 1, 0.75, 0.75, True, "s0.e1.x"))
    buf(ev.EpochDone(0, 2, 0.5, 0.75, False, "s0.e1.x"))
    buf(ev.SubsetDone(0, 0.75, "s0.e1.x"))
    buf(ev.TokensUsed("agent", "subset", "0", "explore", 100, 10, False, 110))
    buf(ev.TokensUsed("merger", "node", "n1", "merge", 50, 5, False, 165))
    buf(ev.MergeNodeUpdated("n1", None, ("s0", "s1"), "pending_review", 8, 0.5))
    view.apply(buf.drain())
    s = view.subsets[0]
    assert s.status == "done" and s.module_id == "s0.e1.x" and s.best_score == 0.75
    assert [e.adopted for e in sorted(s.epochs.values(), key=lambda e: e.epoch)] == [None, True, False]
    assert [ln.kind for ln in s.steps] == ["observation", "action"]
    assert (s.prompt_tokens, s.completion_tokens, view.tokens) == (100, 10, 165)
    assert view.pending_review == "n1" and view.nodes["n1"].tokens == 55
    assert view.roots() == ["n1"]
    buf(ev.MergeNodeUpdated("n1", None, ("s0", "s1"), "done", 8, 0.5, 0.625, "edit", "n1.edited.ab"))
    buf(ev.RunFinished("done", 0.625, 0.5, "n1.edited.ab"))
    view.apply(buf.drain())
    n = view.nodes["n1"]
    assert n.display_status == "edited" and n.score_after == 0.625 and view.pending_review is None
    assert view.status == "done" and view.final_module_id == "n1.edited.ab"


async def test_thirty_two_subsets_streaming_stay_responsive(make_app, finished_session):
    updates: list[RunUpdated] = []

    def hook(message):
        if isinstance(message, RunUpdated):
            updates.append(message)

    app = make_app()
    async with app.run_test(size=SIZE, message_hook=hook) as pilot:
        dash = await open_first(pilot, app)
        buf = app.ctl.buffer
        n_subsets, per_subset = 32, 400
        for sid in range(n_subsets):
            buf(ev.SubsetStarted(sid, f"subset {sid}", 3, ("c",)))

        def pump(sids):
            for i in range(per_subset):
                for sid in sids:
                    buf(ev.AgentStep("subset", str(sid), f"t{i}", f"obs {i}", f"act {sid}/{i}"))
                    buf(ev.TokensUsed("agent", "subset", str(sid), "explore", 7, 1, False, 0))

        threads = [threading.Thread(target=pump, args=(range(k, n_subsets, 4),)) for k in range(4)]
        updates.clear()
        ticks_before = app.ticks
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        # the UI answers keys while the stream is flowing
        await pilot.press("2")
        await wait_for(pilot, lambda: dash.tab_of() == "tab-tree", what="tab switch under load")
        await pilot.press("1")
        for t in threads:
            t.join()
        last = per_subset - 1
        view = app.ctl.view
        await wait_for(pilot, lambda: len(view.subsets) >= n_subsets and all(
            view.subsets[sid].steps[-1].text == f"act {sid}/{last}" for sid in range(n_subsets)),
            timeout=30, what="every subset's last step in the view")

        def shows_last(sid):
            panel = dash.panels.get(sid)
            return panel is not None and panel.is_mounted and any(
                ln.endswith(f"act {sid}/{last}") for ln in panel.log_widget.lines)

        await wait_for(pilot, lambda: len(dash.panels) == n_subsets and shows_last(0), what="first panel")
        # off-screen panels may skip the stream; scrolled into view they catch up with its tail
        dash.query_one("#subset-grid").scroll_end(animate=False)
        await wait_for(pilot, lambda: shows_last(n_subsets - 1), what="last panel after scrolling")
        elapsed = time.perf_counter() - t0
        events = n_subsets * per_subset * 2
        assert buf.received >= events
        # one coalesced update per drain tick at most, never one per event
        assert len(updates) <= app.ticks - ticks_before + 2
        assert len(updates) < events / 100
        assert view.subsets[31].prompt_tokens == 7 * per_subset
        # each Log keeps a bounded tail, not the whole stream
        await wait_for(pilot, lambda: all(p.is_mounted for p in dash.panels.values()), what="every panel mounted")
        assert all(p.log_widget.line_count <= 200 for p in dash.panels.values())
        print(f"\n{events} events from 4 threads, {len(updates)} UI updates, {elapsed:.2f}s until all shown")
