"""The form's starting module: a file path (read into the config) or pasted text, as the
kind the chosen suite optimizes."""
from __future__ import annotations

from .conftest import SIZE, wait_for
from .test_form import open_form


async def test_starting_module_from_a_path_or_pasted_text(make_app, tmp_path):
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("You sort toys.\n- Look at the colour first.\n", encoding="utf-8")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        form = await open_form(pilot, app)
        form.query_one("#f-suite").value = "toy"
        form.query_one("#f-start").value = str(prompt)
        # the projection is recomputed in a worker: wait for the one of this starting module
        await wait_for(pilot, lambda: not form.error and form.projection is not None
                       and any("starting instruction: yours" in n for n in form.projection.notes),
                       what="the projection of the starting module")
        cfg = form.build_config()
        assert cfg.instruction == "You sort toys.\n- Look at the colour first." and cfg.toolbox is None
        form.query_one("#f-start").value = "Answer in one word."
        await wait_for(pilot, lambda: form.build_config().instruction == "Answer in one word.", what="pasted")
        form.query_one("#f-suite").value = "tools"
        await wait_for(pilot, lambda: "not a toolbox" in form.error or "cannot be used" in form.error,
                       timeout=60, what="a sentence is no toolbox")
