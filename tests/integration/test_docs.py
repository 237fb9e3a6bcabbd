"""The README stays a user's page (at most 300 lines) and every link in it, and between the
pages of docs/, leads somewhere: the file exists and, for `page.md#anchor`, so does a heading."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _local_links(page: Path) -> list[tuple[Path, str]]:
    """(target file, anchor or '') for every relative link of a Markdown page."""
    out = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        out.append(((page.parent / path).resolve() if path else page, anchor))
    return out


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # no headings in code
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def test_the_readme_is_at_most_300_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines; move depth into docs/"


def test_the_readme_links_every_docs_page_it_names_and_each_exists():
    docs = {p for p, _ in _local_links(README) if p.parent == ROOT / "docs"}
    assert docs, "the README links no page of docs/"
    missing = sorted(str(p.relative_to(ROOT)) for p in docs if not p.is_file())
    assert not missing, f"README.md links missing pages: {missing}"


def test_every_relative_link_in_the_readme_and_docs_resolves():
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target, anchor in _local_links(page):
            where = f"{page.relative_to(ROOT)} → {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}"
            if not target.exists():
                broken.append(f"{where}: no such file")
            elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
                broken.append(f"{where}#{anchor}: no such heading")
    assert not broken, "\n".join(broken)


def test_the_slug_rule_matches_githubs_for_the_headings_we_link():
    assert _slug("Running `fgo bench`") == "running-fgo-bench"
    assert _slug("Your own tasks (JSONL)") == "your-own-tasks-jsonl"
    assert _slug("Optimize — Algorithm 1 (`optimize.py`)") == "optimize--algorithm-1-optimizepy"
