"""Random identifiers for generated invoices: references in six formats and their look-alikes."""

import random
import re
import unicodedata

from fgo_engine.suites.invoices.languages import _LETTERS, _REF_PREFIXES, FORMATS

# ---------------------------------------------------------------------------
# Random value helpers
# ---------------------------------------------------------------------------


def _digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))


def _letters(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_LETTERS) for _ in range(n))


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def _slug(name: str) -> str:
    word = name.split()[0].replace("ı", "i").replace("İ", "I")
    ascii_word = unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", ascii_word.lower()) or "firma"


def _make_reference(rng: random.Random, lang: str, year: int) -> tuple[str, str]:
    """A transport reference and its format kind."""
    kind = rng.choice(FORMATS)
    yy = str(year)
    if kind == "plain":
        ref = _digits(rng, rng.randint(10, 12))
    elif kind == "alnum":
        ref = rng.choice([
            _letters(rng, 2) + _digits(rng, 7),
            _digits(rng, 1) + _letters(rng, 1) + _digits(rng, 1) + _letters(rng, 2)
            + _digits(rng, 5),
            _letters(rng, 3) + yy[2:] + _digits(rng, 6) + _letters(rng, 1),
        ])
    elif kind == "spaced":
        ref = rng.choice([
            f"{_digits(rng, 4)} {_digits(rng, 4)} {_digits(rng, 4)}",
            f"{_letters(rng, 3)} {yy} {_digits(rng, 5)}",
            f"{_letters(rng, 2)} {_digits(rng, 3)} {_digits(rng, 3)} {_digits(rng, 2)}",
        ])
    elif kind == "dashed":
        ref = rng.choice([
            f"{_letters(rng, 3)}-{yy}-{_digits(rng, 6)}",
            f"{_digits(rng, 2)}-{_digits(rng, 4)}-{_digits(rng, 4)}",
            f"{_letters(rng, 2)}{_digits(rng, 2)}-{_digits(rng, 5)}-{_letters(rng, 1)}",
        ])
    elif kind == "prefixed":
        ref = rng.choice(_REF_PREFIXES[lang]) + _digits(rng, rng.randint(7, 9))
    else:  # slashed
        ref = f"{_letters(rng, 3)}/{yy[2:]}/{_digits(rng, 5)}"
    return ref, kind


def _plate(rng: random.Random, lang: str) -> str:
    if lang == "tr":
        letters = _letters(rng, rng.randint(1, 3))
        return f"{rng.randint(1, 81):02d} {letters} {_digits(rng, rng.choice([3, 4]))}"
    if lang == "en":
        return f"{_letters(rng, 2)}{rng.randint(10, 74)} {_letters(rng, 3)}"
    if lang == "es":
        return f"{_digits(rng, 4)} {_letters(rng, 3)}"
    return f"{_letters(rng, 2)} {_digits(rng, 3)} {_letters(rng, 2)}"


def _invoice_number(rng: random.Random, lang: str, year: int) -> str:
    if lang == "tr":
        return f"{_letters(rng, 3)}{year}{rng.randint(1, 99999):09d}"
    if lang == "en":
        return f"INV-{year}-{rng.randint(1, 99999):05d}"
    if lang == "es":
        return rng.choice([f"FAC-{year}-{rng.randint(1, 9999):05d}",
                           f"{year}/A/{rng.randint(1, 9999):04d}"])
    return rng.choice([f"FT-{year}-{rng.randint(1, 9999):04d}", f"{rng.randint(1, 999)}/{year}"])


_ORDER_PREFIX = {"tr": "SIP", "en": "PO", "es": "PED", "it": "ORD"}
_CONTRACT_PREFIX = {"tr": "SZL", "en": "CTR", "es": "CTO", "it": "CTR"}


def _order_reference(rng: random.Random, lang: str, year: int) -> str:
    p = _ORDER_PREFIX[lang]
    return rng.choice([f"{p}-{year}-{_digits(rng, 6)}", f"{p}{_digits(rng, 8)}",
                       f"{p}-{_digits(rng, 3)} {_digits(rng, 4)}", _digits(rng, 10)])
