"""Scorers for single-answer tasks, and the helper that pulls the final answer out of a reply.

A scorer maps ``(answer, expected)`` to a float in 0..1. Scorers are small objects so
that a task file can be checked up front: a scorer may offer ``check(expected)``, which
returns a problem description (or ``None``) for an expected value it could never match,
such as a regex that does not compile or a number that does not parse.

This module never imports litellm: the ``llm_judge`` scorer takes its judge as a callable.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from fgo_engine.errors import ConfigError
from fgo_engine.types import normalize_space


@runtime_checkable
class Scorer(Protocol):
    def __call__(self, answer: str, expected: str) -> float: ...


Judge = Callable[[str, str], float]

# Characters peeled off both ends by ``normalized``: quotes, sentence punctuation,
# brackets and markdown emphasis. Dashes, signs, ``#``, ``$`` and ``%`` stay, since
# they often carry meaning ("-5", "#12", "50%").
_EDGE_PUNCT = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb.,;:!?()[]{}<>*_ \t\r\n"


def normalize_text(s: str) -> str:
    """Casefold, collapse whitespace, strip surrounding punctuation and quotes."""
    return normalize_space(s).casefold().strip(_EDGE_PUNCT)


class ExactScorer:
    """Equal after trimming and collapsing whitespace; case and punctuation count."""

    name = "exact"

    def __call__(self, answer: str, expected: str) -> float:
        return 1.0 if normalize_space(answer) == normalize_space(expected) else 0.0


class NormalizedScorer:
    """Equal after :func:`normalize_text`."""

    name = "normalized"

    def __call__(self, answer: str, expected: str) -> float:
        return 1.0 if normalize_text(answer) == normalize_text(expected) else 0.0


# Whole tokens: an option label such as "(B)", else a run of letters and digits that may
# hold inner separators ("1,234.50", "12/25/1937", "o'clock", "e-mail").
_TOKEN_RE = re.compile(r"\(\s*[^\W\d_]\s*\)|[^\W_]+(?:['\u2019.,/-][^\W_]+)*")
# Answers that form a closed set: naming two of one set is no answer at all.
_CLOSED_SETS: tuple[frozenset[str], ...] = (
    frozenset({"yes", "no"}),
    frozenset({"true", "false"}),
    frozenset({"valid", "invalid"}),
)
_OPTION_RE = re.compile(r"^\(([^\W\d_])\)$")


def tokens(text: str) -> list[str]:
    """The casefolded whole tokens of ``text``; option labels become ``(b)``."""
    return [re.sub(r"\s+", "", t) for t in _TOKEN_RE.findall(text.casefold())]


def _closed_set(token: str) -> frozenset[str] | None:
    """The closed answer set a lone expected token belongs to (option labels form one)."""
    if _OPTION_RE.match(token):
        return None  # options are checked by pattern, see _rivals
    return next((cs for cs in _CLOSED_SETS if token in cs), None)


def _rivals(expected: str, answer_tokens: list[str]) -> set[str]:
    """The other values of ``expected``'s closed set that the answer also names."""
    if _OPTION_RE.match(expected):
        return {t for t in answer_tokens if _OPTION_RE.match(t) and t != expected}
    cs = _closed_set(expected)
    return {t for t in answer_tokens if t in cs and t != expected} if cs else set()


class ContainsScorer:
    """The expected text occurs in the answer as whole tokens, in order.

    Tokens are casefolded runs of letters and digits (see :func:`tokens`), so "No" does
    not match "not" and "(E)" does not match "The answer is (C).". An expected option
    label also matches an answer that is only that letter ("E", "E)"). The lone-value
    rule: when the expected value is one token of a closed answer set — yes/no,
    true/false, valid/invalid, or an option label like (B) — the answer must not name
    another value of that set as well, so "False and True" does not count as "False".
    """

    name = "contains"

    def __call__(self, answer: str, expected: str) -> float:
        exp = tokens(expected)
        ans = tokens(answer)
        if not exp:
            return 1.0 if not ans else 0.0
        if len(exp) == 1 and _OPTION_RE.match(exp[0]) and ans == [exp[0][1:-1]]:
            return 1.0  # "E" for "(E)"
        n = len(exp)
        if not any(ans[i:i + n] == exp for i in range(len(ans) - n + 1)):
            return 0.0
        if n == 1 and _rivals(exp[0], ans):
            return 0.0
        return 1.0


# A line that states its conclusion last: "… is False.", "… evaluates to True", "… = No".
# A person reads the value after the final "is"; the values named before it are the question.
_CONCLUSION_RE = re.compile(r"(?:\bis|\bequals|\bevaluates to|\bgives|=)\s+([^\W\d_]+)[\s.!\"'*)]*$",
                            re.IGNORECASE)
# "B", "B.", "B)" or "B:" opening the final answer, as in "B) 12/25/1937".
_LEADING_LETTER_RE = re.compile(r"^([^\W\d_])(?:[).:]|\s*$)(?:\s|$)")


class FinalAnswerScorer:
    """Exact match on the final answer, for multiple-choice, yes/no and short answers.

    The final answer is taken from the reply with :func:`extract_answer` (the last
    ``Answer:`` label, else the last non-empty line), then compared by the kind of the
    expected value:

    - an option label ``(B)``: the final answer must name exactly one option — a label
      ``(B)`` anywhere in it, or a letter opening it ("B", "B) …"); two labels score 0;
    - one value of a closed set (yes/no, true/false, valid/invalid): the final answer must
      hold that value as a whole word and no other value of the set ("not" is not "no");
    - a number: the last number in the final answer equals it;
    - anything else: equal after :func:`normalize_text` (case, spacing, edge punctuation);
      an expected value made only of punctuation ("] ] >") must match up to spacing.
    """

    name = "final_answer"

    def __call__(self, answer: str, expected: str) -> float:
        final = extract_answer(answer)
        exp = tokens(expected)
        if len(exp) == 1 and _OPTION_RE.match(exp[0]):
            labels = {t for t in tokens(final) if _OPTION_RE.match(t)}
            if not labels:
                m = _LEADING_LETTER_RE.match(final.strip().casefold())
                labels = {f"({m.group(1)})"} if m else set()
            return 1.0 if labels == {exp[0]} else 0.0
        closed = _closed_set(exp[0]) if len(exp) == 1 else None
        if closed is not None:
            named = {t for t in tokens(final) if t in closed}
            if len(named) > 1:  # "False and not True … is False.": the value the line ends on
                m = _CONCLUSION_RE.search(final)
                named = {m.group(1).casefold()} if m else named
            return 1.0 if named == {exp[0]} else 0.0
        if not normalize_text(expected):  # all punctuation, as a Dyck sequence "] ] >"
            return 1.0 if normalize_space(final) == normalize_space(expected) else 0.0
        if normalize_text(final) == normalize_text(expected):
            return 1.0
        want = parse_number(expected)
        if want is not None and _NUMBER_RE.fullmatch(expected.strip()):
            found = list(_NUMBER_RE.finditer(final))
            return 1.0 if found and parse_number(found[-1].group(0)) == want else 0.0
        return 0.0


class RegexScorer:
    """``expected`` is a pattern that must match the whole stripped answer."""

    name = "regex"

    def __init__(self, ignorecase: bool = False):
        self.flags = re.DOTALL | (re.IGNORECASE if ignorecase else 0)
        self._cache: dict[str, re.Pattern[str]] = {}

    def _compile(self, pattern: str) -> re.Pattern[str]:
        compiled = self._cache.get(pattern)
        if compiled is None:
            try:
                compiled = re.compile(pattern, self.flags)
            except re.error as exc:
                raise ConfigError(f"regex scorer: invalid pattern {pattern!r}: {exc}") from None
            self._cache[pattern] = compiled
        return compiled

    def check(self, expected: str) -> str | None:
        try:
            self._compile(expected)
        except ConfigError as exc:
            return str(exc)
        return None

    def __call__(self, answer: str, expected: str) -> float:
        return 1.0 if self._compile(expected).fullmatch(answer.strip()) else 0.0


# A number: optional sign, digits with optional group/decimal separators, optional
# exponent. Separators only count when a digit follows, so "42." ends at "42".
_NUMBER_RE = re.compile(
    r"(?P<sign>[-+\u2212]?)(?P<body>\d(?:[\d]|[.,'\u00a0\u202f\u2009](?=\d))*)"
    r"(?P<exp>[eE][-+]?\d+)?"
)
_GROUP_SEPS = "'\u00a0\u202f\u2009"


def _grouped(parts: list[str]) -> bool:
    """True when ``parts`` reads as thousands groups: 1-3 leading digits, then threes."""
    return 1 <= len(parts[0]) <= 3 and all(len(p) == 3 for p in parts[1:])


def _interpret(body: str) -> float | None:
    """Turn digits with separators into a float, guessing the locale sensibly."""
    for sep in _GROUP_SEPS:
        body = body.replace(sep, "")
    has_dot, has_comma = "." in body, "," in body
    if has_dot and has_comma:
        dec = "." if body.rfind(".") > body.rfind(",") else ","
        grp = "," if dec == "." else "."
        whole, _, frac = body.rpartition(dec)
        if dec in whole or not _grouped(whole.split(grp)):
            return _interpret(body.split(grp)[0])  # not a well-formed number; keep its head
        return float(whole.replace(grp, "") + "." + frac)
    for sep in (",", "."):
        if sep not in body:
            continue
        parts = body.split(sep)
        if len(parts) > 2:  # "1,234,567" or "1.234.567": thousands groups
            return float("".join(parts)) if _grouped(parts) else float(parts[0])
        head, tail = parts
        if sep == "," and len(tail) == 3 and _grouped(parts) and head != "0":
            return float(head + tail)  # "1,234" reads as one thousand two hundred …
        return float(head + "." + tail)  # "1,5", "3.14", "1.234" (a single dot is decimal)
    return float(body)


def parse_number(text: str) -> float | None:
    """The first number in ``text``; ``None`` when there is none."""
    m = _NUMBER_RE.search(text)
    if m is None:
        return None
    value = _interpret(m.group("body"))
    if value is None:
        return None
    if m.group("exp"):
        value *= 10.0 ** int(m.group("exp")[1:])
    if m.group("sign") in ("-", "\u2212"):
        value = -value
    return value


class NumericScorer:
    """The first number in the answer is within ``tol`` of the expected number
    (absolute by default, relative to the expected value with ``relative=True``)."""

    name = "numeric"

    def __init__(self, tol: float = 1e-9, relative: bool = False):
        try:
            tol = float(tol)
        except (TypeError, ValueError):
            raise ConfigError(f"numeric scorer: tol must be a number, got {tol!r}") from None
        if not math.isfinite(tol) or tol < 0:
            raise ConfigError(f"numeric scorer: tol must be a finite number ≥ 0, got {tol!r}")
        self.tol = tol
        self.relative = bool(relative)

    def check(self, expected: str) -> str | None:
        if parse_number(expected) is None:
            return f"numeric scorer: expected value {expected!r} holds no number"
        return None

    def __call__(self, answer: str, expected: str) -> float:
        exp = parse_number(expected)
        if exp is None:
            raise ConfigError(f"numeric scorer: expected value {expected!r} holds no number")
        got = parse_number(answer)
        if got is None:
            return 0.0
        limit = self.tol * abs(exp) if self.relative else self.tol
        return 1.0 if abs(got - exp) <= limit + 1e-12 else 0.0


class LLMJudgeScorer:
    """Delegates to an injected ``judge(answer, expected) -> float``; clamps to 0..1."""

    name = "llm_judge"

    def __init__(self, judge: Judge | None = None):
        if judge is None or not callable(judge):
            raise ConfigError("llm_judge scorer needs a judge callable (option 'judge')")
        self.judge = judge

    def __call__(self, answer: str, expected: str) -> float:
        try:
            value = float(self.judge(answer, expected))
        except (TypeError, ValueError):
            return 0.0
        if math.isnan(value):
            return 0.0
        return min(1.0, max(0.0, value))


_FACTORIES: dict[str, Callable[..., Scorer]] = {
    "exact": ExactScorer,
    "normalized": NormalizedScorer,
    "regex": RegexScorer,
    "contains": ContainsScorer,
    "numeric": NumericScorer,
    "final_answer": FinalAnswerScorer,
    "llm_judge": LLMJudgeScorer,
}
_OPTIONS: dict[str, frozenset[str]] = {
    "exact": frozenset(),
    "normalized": frozenset(),
    "regex": frozenset({"ignorecase"}),
    "contains": frozenset(),
    "numeric": frozenset({"tol", "relative"}),
    "final_answer": frozenset(),
    "llm_judge": frozenset({"judge"}),
}
SCORER_NAMES: tuple[str, ...] = tuple(_FACTORIES)

# Module-level instances for callers that just want the default behaviour.
exact = ExactScorer()
normalized = NormalizedScorer()
contains = ContainsScorer()
regex = RegexScorer()
numeric = NumericScorer()
final_answer = FinalAnswerScorer()


def llm_judge(judge: Judge) -> Scorer:
    return LLMJudgeScorer(judge)


def parse_spec(spec: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, options)`` of a scorer spec: a name (``"numeric"``), a dict (``{"name":
    "numeric", "tol": 0.01}``) or that dict as a JSON string. The name is not checked."""
    if isinstance(spec, str) and spec.strip().startswith("{"):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"scorer spec is not valid JSON: {exc}") from None
    if isinstance(spec, str):
        name, options = spec.strip(), {}
    elif isinstance(spec, dict):
        options = dict(spec)
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError("scorer spec needs a 'name' field, e.g. {\"name\": \"numeric\"}")
    else:
        raise ConfigError(f"scorer spec must be a name or a dict, got {type(spec).__name__}")
    return name, options


def get_scorer(spec: str | dict[str, Any], **extra: Any) -> Scorer:
    """Build a scorer from a spec (see :func:`parse_spec`); ``extra`` adds options, e.g.
    ``judge=…``. Unknown names and options raise :class:`ConfigError`."""
    name, options = parse_spec(spec)
    options.update({k: v for k, v in extra.items() if v is not None})
    if name not in _FACTORIES:
        raise ConfigError(f"unknown scorer {name!r}; choose one of: {', '.join(SCORER_NAMES)}")
    unknown = sorted(set(options) - _OPTIONS[name])
    if unknown:
        allowed = ", ".join(sorted(_OPTIONS[name])) or "none"
        raise ConfigError(f"scorer {name!r} has no option {unknown[0]!r} (options: {allowed})")
    return _FACTORIES[name](**options)


# "Answer:", "ANSWER:", "Final answer:", also "**Answer:**" and "**Final Answer**:".
_LABEL_RE = re.compile(
    r"(?:\*\*|__)?\b(?:final\s+answer|answer)\b\s*(?:\*\*|__)?\s*[:\uff1a]\s*(?:\*\*|__)?",
    re.IGNORECASE,
)
_WRAPPERS = "\"'`\u201c\u201d\u2018\u2019*"


def _clean(line: str) -> str:
    stripped = line.strip()
    if stripped.startswith("```") and (stripped == "```" or not stripped.endswith("```")):
        return ""  # a code-fence line, possibly with a language tag
    while True:  # peel markdown emphasis and surrounding quotes/backticks, layer by layer
        peeled = stripped.strip("*").strip()
        if len(peeled) >= 2 and peeled[0] in _WRAPPERS and peeled[-1] in _WRAPPERS:
            peeled = peeled[1:-1].strip()
        if peeled == stripped:
            return stripped
        stripped = peeled


def extract_answer(text: str) -> str:
    """The final answer in an LLM reply: what follows the last ``Answer:`` label (its
    first non-empty line), else the last non-empty line; quotes and backticks removed."""
    if not text:
        return ""
    labels = list(_LABEL_RE.finditer(text))
    if labels:
        rest = text[labels[-1].end():]
        for line in rest.splitlines():
            cleaned = _clean(line)
            if cleaned:
                return cleaned
        return ""
    for line in reversed(text.splitlines()):
        cleaned = _clean(line)
        if cleaned:
            return cleaned
    return ""
