"""The help screen (``?``): what FGO does and every key, per screen."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# FGO Studio

FGO (*divide, optimize, merge*) splits the training tasks into **N subsets**, optimizes the
agent's module (its instruction or toolbox) on each subset in parallel for a few **epochs**
(explore → critique → rewrite), then **merges** the subset modules bottom-up. Every merge is
**backtested** on the union of its subsets' tasks — and, with review policy *ask*, you approve,
edit or roll back each merge before its backtest. Everything is saved in one SQLite file per
session, so any run can be resumed; finished work is served from the response cache.

`fgo-sim/…` models are a **simulated LLM**: a test bed, not evidence of real-model quality.

## Everywhere
| key | |
|---|---|
| `?` | this help |
| `ctrl+p` | command palette (screens and actions) |
| `ctrl+q` | quit; during a run it asks, then stops the run (resumable) and prints `fgo resume …` |
| `tab` / `shift+tab` | move between panes; the mouse works too |

## Sessions
| key | |
|---|---|
| `enter` | open the selected session on its dashboard |
| `r` | resume the selected session (continue its run) |
| `n` | start a new session |
| `d` | delete the selected session (asks first) |
| `space` | mark / unmark the selected session for a comparison |
| `c` | compare the marked sessions (two or more) side by side |
| `f5` | refresh the list |

## New session
Fill the form; the projection (calls: a hard bound and the expected number; tokens; cost
from litellm's price map) updates as you type, and each field's problem is shown under it.
Numbers take `5k` / `1.2M`; "same for every role" sets all four models. `ctrl+s` starts
the run, `escape` goes back.

## Run dashboard
| key | |
|---|---|
| `1` `2` `3` | subsets · merge tree · events |
| `p` / `r` | pause / resume (resume also continues a stopped session) |
| `c` | cancel the run (it stays resumable) |
| `v` | open the pending merge review |
| `u` | auto-approve merges on/off |
| `a` | audit the module of the selected subset or tree node |
| `f` | failures: every attempt at each task, its critique and its score |
| `x` | export a Markdown report into the sessions folder |
| `escape` | back to the sessions list (a run keeps going) |

A session that another process is running (`fgo run --headless`, a script) opens as a live
view: the bar says "following a run elsewhere", the view updates as that process writes, and
the reviews it asks for open here (approve, edit, roll back: sent to it). Once that process
stops, `r` resumes the run here.

## Merge review
| key | |
|---|---|
| `a` | approve: backtest the merged module as proposed |
| `e` | edit the merged module; `ctrl+s` backtests your text, `escape` leaves the editor |
| `r` | roll back: keep the best child's module (first says what the roll back throws away) |
| `u` | auto-approve on (this and later merges) / off |
| `escape` | decide later (the run waits; `v` on the dashboard brings it back) |

## Audit
Pick any module version on the left: why it changed (the critiques and trajectories the
optimizer saw, or the merge and its review), the diff to its parent, and where each rule
came from. `p` goes to the parent, `b` exports the provenance (Markdown and JSON), `x`
exports the session report, `f` opens the failures.

## Failures
Every task with its split, category, runs, failed runs and its score with the final module;
the highlighted task's whole story on the right: each epoch's trajectory, the critique it got
and its score, the backtests and the test run. Filter by category, and with `f` (or the box)
show only the tasks the final module failed.

## Compare
The marked sessions side by side: method, subsets × epochs, status, train and test scores,
tokens, cost and time; scores per category (the best in bold); the highlighted session's
final module as a diff against the first one's. `f` opens the highlighted session's failures.
A warning says when the sessions did not run the same tasks.
"""

SCREEN_SECTIONS = {"SessionsScreen": "Sessions", "NewSessionScreen": "New session", "DashboardScreen": "Run dashboard",
                   "ReviewScreen": "Merge review", "AuditScreen": "Audit", "FailuresScreen": "Failures",
                   "CompareScreen": "Compare"}


def help_for(screen_name: str | None) -> str:
    """The help with the current screen's keys first."""
    head, *sections = HELP.split("\n## ")
    title = SCREEN_SECTIONS.get(screen_name or "")
    first = [sec for sec in sections if sec.split("\n", 1)[0].strip() == title]
    if not first:
        return HELP
    rest = [sec for sec in sections if sec not in first]
    return "\n## ".join([f"# Keys here: {first[0]}\n\n{head}", *rest])


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 100; max-width: 100%; height: 90%; border: thick $primary 60%; background: $surface;
        padding: 0 1;
    }
    HelpScreen #help-scroll { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, screen_name: str | None = None):
        super().__init__()
        self.text = help_for(screen_name)

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll(id="help-scroll"):
                yield Markdown(self.text, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
