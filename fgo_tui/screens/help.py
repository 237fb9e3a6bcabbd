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
| `ctrl+q` | quit (a running session is cancelled cleanly and stays resumable) |
| `tab` / `shift+tab` | move between panes; the mouse works too |

## Sessions
| key | |
|---|---|
| `enter` | open the selected session on its dashboard |
| `r` | resume the selected session (continue its run) |
| `n` | start a new session |
| `d` | delete the selected session (asks first) |
| `f5` | refresh the list |

## New session
Fill the form; the projected number of LLM calls updates as you type and problems are
explained under the form. `ctrl+s` starts the run, `escape` goes back.

## Run dashboard
| key | |
|---|---|
| `1` `2` `3` | subsets · merge tree · events |
| `p` / `r` | pause / resume (resume also continues a stopped session) |
| `c` | cancel the run (it stays resumable) |
| `v` | open the pending merge review |
| `u` | auto-approve merges on/off |
| `a` | audit the module of the selected subset or tree node |
| `x` | export a Markdown report into the sessions folder |
| `escape` | back to the sessions list (a run keeps going) |

## Merge review
| key | |
|---|---|
| `a` | approve: backtest the merged module as proposed |
| `e` | edit the merged module; `ctrl+s` backtests your text, `escape` leaves the editor |
| `r` | roll back: keep the best child's module |
| `u` | auto-approve on (this and later merges) / off |
| `escape` | decide later (the run waits; `v` on the dashboard brings it back) |

## Audit
Pick any module version on the left: why it changed (the critiques and trajectories the
optimizer saw, or the merge and its review) and the diff to its parent. `x` exports.
"""


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical {
        width: 100; height: 90%; border: thick $primary 60%; background: $surface; padding: 0 1;
    }
    HelpScreen #help-scroll { height: 1fr; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def compose(self) -> ComposeResult:
        with Vertical():
            with VerticalScroll(id="help-scroll"):
                yield Markdown(HELP, id="help-text")

    def action_close(self) -> None:
        self.dismiss(None)
