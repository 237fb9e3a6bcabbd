"""Review decisions handed to the process that runs a session, by another process (the app).

One process writes a session file (it holds the session lock); another may follow it read-only
and answer the reviews it asks for. The answer cannot go into the session file (it has one
writer), so it goes into a small side file beside it, one per merge node:

    <session>.db.decision-<node>.json   {"node_id", "decision", "text", "by", "proposal", "written_at"}

The protocol, and why nothing is decided twice or lost when either side is killed:

1. The runner records the node as ``pending_review`` in the session and waits.
2. The follower sees it, shows the review and writes its decision with :func:`post`: written to a
   temporary file, then hard-linked into place. A link never replaces a file, so the first
   decision posted wins and a second (another app, a second press) is refused: decided once.
3. The runner's gate reads the file with :func:`take`, checks that it answers this node's proposal
   (``proposal`` is a hash of the proposed text), and applies it like a decision typed on its own
   console. The review row it writes to the session is the record of the decision.
4. The file is removed only when the session no longer needs it: :func:`clear` at the end of a run,
   for the nodes whose review rows the session holds by then. A runner killed between 3 and its review row
   being committed asks again on resume and finds the same file: the decision is not lost, and it
   is applied once (no review row existed). A follower killed before step 2 decided nothing; after
   it, the file is there for the runner.
A decision for a proposal that changed (a stale file) is refused by :func:`take` and left for
:func:`clear`.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from fgo_engine import redaction
from fgo_engine.timeutil import now
from fgo_engine.types import OPERATOR, ReviewDecision

_MARK = ".decision-"


def _real(session: str | Path) -> Path:
    return Path(os.path.realpath(session))


def proposal_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def decision_path(session: str | Path, node_id: str) -> Path:
    if not node_id or any(c in node_id for c in "/\\\0") or node_id.startswith("."):
        raise ValueError(f"not a merge node id: {node_id!r}")
    p = _real(session)
    return p.with_name(f"{p.name}{_MARK}{node_id}.json")


def post(session: str | Path, node_id: str, decision: ReviewDecision, proposed_text: str) -> bool:
    """Hand a decision to the runner. False when a decision for this node is already posted."""
    target = decision_path(session, node_id)
    text = redaction.scrub(decision.text) if decision.text is not None else None
    body = {"node_id": node_id, "decision": decision.decision, "text": text, "by": decision.by or OPERATOR,
            "proposal": proposal_hash(proposed_text), "written_at": now()}
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def take(session: str | Path, node_id: str, proposed_text: str) -> ReviewDecision | None:
    """The posted decision for this node's current proposal, or None (none yet, or a stale one)."""
    try:
        raw = decision_path(session, node_id).read_text(encoding="utf-8")
        body = json.loads(raw)
    except (OSError, ValueError):
        return None
    if not isinstance(body, dict) or body.get("node_id") != node_id:
        return None
    if body.get("proposal") != proposal_hash(proposed_text):
        return None
    try:
        return ReviewDecision(str(body.get("decision")), body.get("text"), by=str(body.get("by") or OPERATOR))
    except ValueError:
        return None


def posted(session: str | Path) -> list[str]:
    """Node ids with a decision waiting beside the session."""
    p = _real(session)
    head = p.name + _MARK
    out = []
    for f in p.parent.glob(f"{p.name}{_MARK}*.json"):
        out.append(f.name[len(head):-len(".json")])
    return sorted(out)


def clear(session: str | Path, decided: set[str] | None = None) -> None:
    """Remove the decision files of nodes whose decision the session has recorded (``decided``;
    None: all of them). A file for a node still undecided stays for the next run."""
    for node_id in posted(session):
        if decided is None or node_id in decided:
            decision_path(session, node_id).unlink(missing_ok=True)
