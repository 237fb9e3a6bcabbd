"""Light widgets for text that changes on every drain tick.

``Static.update`` asks for a new layout of the whole screen each time; with dozens of
subset panels that is what makes a dashboard sluggish. These widgets keep a fixed
height (from CSS) and only repaint themselves.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget


class TextBox(Widget):
    """A ``rich.text.Text`` shown as is (never parsed as markup); repaint-only updates."""

    DEFAULT_CSS = """
    TextBox { height: 1; }
    """

    def __init__(self, text: Text | str = "", *, crop: bool = False, **kw):
        """``crop``: one row per line, cut with an ellipsis at the width (a bar whose height is its
        line count must not wrap: a wrapped line pushes the last one out of view)."""
        super().__init__(**kw)
        self._text = text if isinstance(text, Text) else Text(text)
        self.crop = crop

    @property
    def plain(self) -> str:
        return self._text.plain

    def set(self, text: Text) -> None:
        if text.plain == self._text.plain and text.spans == self._text.spans:
            return
        self._text = text
        self.refresh()

    def render(self) -> Text:
        width = self.content_size.width
        if not self.crop or width <= 0 or all(cell_len(ln) <= width for ln in self._text.plain.split("\n")):
            return self._text
        lines = self._text.split("\n", allow_blank=True)
        for ln in lines:
            ln.truncate(width, overflow="ellipsis")
        return Text("\n").join(lines)


class StreamTail(Widget):
    """The last lines of a stream (trajectory steps), newest at the bottom, cropped to the
    width. Lines are plain strings shown literally."""

    DEFAULT_CSS = """
    StreamTail { height: 1fr; }
    """

    def __init__(self, keep: int = 200, **kw):
        super().__init__(**kw)
        self._lines: deque[str] = deque(maxlen=keep)
        self.written = 0  # lines ever written (for tests)

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    @property
    def line_count(self) -> int:
        return len(self._lines)

    def write_lines(self, lines: Iterable[str]) -> None:
        n = len(self._lines)
        for ln in lines:
            self._lines.append(" ".join(ln.splitlines()))
            self.written += 1
        if len(self._lines) != n or self.written:
            self.refresh()

    def write_line(self, line: str) -> None:
        self.write_lines([line])

    def render(self) -> Text:
        height, width = max(1, self.size.height), max(1, self.size.width)
        out = Text()
        for i, ln in enumerate(list(self._lines)[-height:]):
            task, sep, rest = ln.partition(" ")
            line = Text()
            line.append(task, style="dim")
            line.append(sep)
            line.append(rest, style="grey62" if rest[:1] == "◂" else "")
            line.truncate(width, overflow="ellipsis")  # one row per step: the tail stays in view
            if i:
                out.append("\n")
            out.append_text(line)
        return out
