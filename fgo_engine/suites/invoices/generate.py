"""Deterministic generation of invoice tasks from a seed."""

import functools
import random
import uuid
from datetime import date, timedelta
from typing import Any

from fgo_engine.suites.invoices.identifiers import (
    _CONTRACT_PREFIX,
    _digits,
    _invoice_number,
    _letters,
    _make_reference,
    _order_reference,
    _plate,
    _slug,
)
from fgo_engine.suites.invoices.languages import (
    _LANG_COLUMN,
    _LANGS,
    _PRODUCTS,
    _TRANSPORT_DOC_CODES,
    LANGUAGES,
    PLACEMENTS,
    TOKEN_RANGE,
    _Lang,
)
from fgo_engine.suites.invoices.ubl import _Invoice, _Line, _Party, _render, _render_line
from fgo_engine.types import Task, normalize_space

# ---------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _encoder() -> Any:
    import tiktoken  # imported lazily; the package sets TIKTOKEN_CACHE_DIR for offline use

    return tiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    """cl100k_base tokens, the measure the suite's size range is stated in."""
    return len(_encoder().encode(text, disallowed_special=()))


def _make_party(rng: random.Random, lang: _Lang, name: str) -> _Party:
    city = rng.choice(lang.cities)
    first, last = rng.choice(lang.first_names), rng.choice(lang.last_names)
    slug = _slug(name)
    if lang.code == "tr":
        tax_id, extra = _digits(rng, 10), "0" + _digits(rng, 15)
        vat = tax_id
    elif lang.code == "en":
        tax_id, extra = _digits(rng, 8), "SC" + _digits(rng, 6)
        vat = "GB" + _digits(rng, 9)
    elif lang.code == "es":
        tax_id = rng.choice("AB") + _digits(rng, 8)
        extra, vat = "RM-" + _digits(rng, 6), "ES" + tax_id
    else:
        tax_id = "0" + _digits(rng, 10)
        extra, vat = "REA " + city.district + "-" + _digits(rng, 6), "IT" + tax_id
    phone = lang.phone.format(a=_digits(rng, 3), b=_digits(rng, 3), c=_digits(rng, 2),
                              d=_digits(rng, 2))
    return _Party(
        name=name, city=city, street=rng.choice(lang.streets), building=str(rng.randint(1, 240)),
        tax_id=tax_id, vat_id=vat, extra_id=extra, contact=f"{first} {last}", phone=phone,
        email=f"{_slug(first)}.{_slug(last)}@{slug}.{lang.web_tld}",
        website=f"https://www.{slug}.{lang.web_tld}", detailed=rng.random() < 0.4,
    )


def _make_line(rng: random.Random, inv: _Invoice, order_line: int) -> _Line:
    lang = inv.lang
    product = rng.choice(_PRODUCTS)
    name = str(product[_LANG_COLUMN[lang.code]])
    lo, hi = product[5] * lang.price_factor, product[6] * lang.price_factor
    price = max(1, int(round(rng.uniform(lo, hi) * 100)))
    qty = rng.choice([1, 2, 4, 5, 6, 10, 12, 20, 24, 25, 40, 50, 60, 100, 120, 200, 250, 500])
    rate = lang.rates[1] if product[7] else lang.rates[0]
    lot = None
    if rng.random() < 0.35:
        lot = rng.choice(["L", "B", "P"]) + str(inv.issue.year)[2:] + _digits(rng, 5)
    return _Line(product=product, name=name, qty=qty, price=price,
                 discount_pct=rng.choice([0, 0, 0, 0, 3, 5, 10]), rate=rate,
                 sku=f"{_letters(rng, 3)}-{_digits(rng, 5)}", lot=lot, order_line=order_line)


def _build(rng: random.Random, lang_code: str, placement: str) -> tuple[str, _Invoice, int]:
    lang = _LANGS[lang_code]
    year = rng.choice([2023, 2024, 2025])
    issue = date(year, 1, 1) + timedelta(days=rng.randint(0, 360))
    reference, ref_format = _make_reference(rng, lang_code, year)
    supplier_name = rng.choice(lang.suppliers)
    customer_name = rng.choice(lang.customers)
    order_ref = _order_reference(rng, lang_code, year)
    contract_ref = f"{_CONTRACT_PREFIX[lang_code]}-{year - rng.randint(0, 2)}/{_digits(rng, 3)}"
    plate = _plate(rng, lang_code)
    first, last = rng.choice(lang.first_names), rng.choice(lang.last_names)
    nat_id = _digits(rng, 11) if lang_code == "tr" else _letters(rng, 2) + _digits(rng, 7)
    other_docs = [
        (f"{_letters(rng, 3)}-{year}-{_digits(rng, 4)}", code, wording)
        for code, wording in rng.sample(list(lang.other_doc_types), rng.randint(1, 2))
    ]
    transport_doc = None
    if placement == "docref":
        transport_doc = (rng.choice(sorted(_TRANSPORT_DOC_CODES)),
                         rng.choice(lang.transport_doc_types))
    delivery_city = rng.choice(lang.cities)
    inv = _Invoice(
        lang=lang, placement=placement, reference=reference, ref_format=ref_format,
        number=_invoice_number(rng, lang_code, year),
        uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()
        if lang_code == "tr" else str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        issue=issue,
        profile=rng.choice(["TICARIFATURA", "TEMELFATURA"]) if lang_code == "tr"
        else "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0",
        notes=[], order_ref=order_ref, order_date=issue - timedelta(days=rng.randint(5, 40)),
        contract_ref=contract_ref, other_docs=other_docs, transport_doc=transport_doc,
        supplier=_make_party(rng, lang, supplier_name),
        customer=_make_party(rng, lang, customer_name),
        carrier_name=rng.choice(lang.carriers),
        carrier_id=_digits(rng, 10) if lang_code == "tr" else lang.country + _digits(rng, 9),
        delivery_city=delivery_city, delivery_street=rng.choice(lang.streets),
        delivery_date=issue - timedelta(days=rng.randint(0, 3)),
        despatch_date=issue - timedelta(days=rng.randint(3, 6)),
        plate=plate, trailer_plate=_plate(rng, lang_code), driver=(first, last, nat_id),
        gross_weight=f"{rng.randint(80, 18000)}.{rng.randint(0, 9)}",
        payment_days=rng.choice([15, 30, 45, 60, 90]),
        iban=_iban(rng, lang_code), buyer_reference=f"CC-{_digits(rng, 4)}",
        customer_number=_digits(rng, 6),
        optional=frozenset(
            name for name, p in (("issue_time", 0.5), ("buyer_reference", 0.5),
                                 ("delivery_address", 0.6), ("driver", 0.5), ("trailer", 0.5),
                                 ("payment_terms", 0.6))
            if rng.random() < p),
    )

    # Notes: generic ones, one or two labelled distractors, and the reference when placed there.
    notes = [n.replace("{x}", str(rng.choice([1, 2, 3])))
             for n in rng.sample(list(lang.notes), rng.randint(1, 2))]
    distractor_labels = [("order", order_ref), ("plate", plate), ("contract", contract_ref),
                         ("customer", inv.customer_number)]
    for key, value in rng.sample(distractor_labels, rng.randint(1, 2)):
        notes.append(f"{lang.labels[key]} {value}")
    rng.shuffle(notes)
    if placement == "note":
        before, after = rng.choice(lang.note_wrappers)
        text = f"{before} {lang.note_label} {reference}; {after}".strip()
        notes.insert(rng.randint(0, len(notes)), text)
    inv.notes = notes

    # Lines until the document reaches a target size in tokens.
    target = rng.randint(TOKEN_RANGE[0] + 200, TOKEN_RANGE[1] - 200)
    base = count_tokens(_render(inv, []))
    line_xml: list[str] = []
    total = base
    while total < target or len(inv.lines) < 2:
        line = _make_line(rng, inv, len(inv.lines) + 1)
        inv.lines.append(line)
        xml_line = _render_line(inv, len(inv.lines), line)
        line_xml.append(xml_line)
        total += count_tokens(xml_line) + 1
    xml = _render(inv, line_xml)
    tokens = count_tokens(xml)
    while tokens > TOKEN_RANGE[1] - 50 and len(inv.lines) > 2:
        inv.lines.pop()
        line_xml.pop()
        xml = _render(inv, line_xml)
        tokens = count_tokens(xml)
    return xml, inv, tokens


def _iban(rng: random.Random, lang: str) -> str:
    if lang == "tr":
        return "TR" + _digits(rng, 2) + "000" + _digits(rng, 19)
    if lang == "en":
        return "GB" + _digits(rng, 2) + _letters(rng, 4) + _digits(rng, 14)
    if lang == "es":
        return "ES" + _digits(rng, 22)
    return "IT" + _digits(rng, 2) + _letters(rng, 1) + _digits(rng, 22)


def _make_task(seed: int, index: int, lang: str, placement: str, split: str) -> Task:
    rng = random.Random(f"invoices/{seed}/{index}")
    for _attempt in range(20):
        xml, inv, tokens = _build(rng, lang, placement)
        # The reference must be printed exactly once, so the task has one right answer.
        if xml.count(inv.reference) == 1:
            break
    else:  # pragma: no cover - vanishingly unlikely with random identifiers
        raise RuntimeError(f"could not generate a clean invoice for {seed}/{index}")
    distractors = {
        "invoice_number": inv.number,
        "order_reference": inv.order_ref,
        "uuid": inv.uuid,
        "contract_reference": inv.contract_ref,
        "plates": [inv.plate] + ([inv.trailer_plate] if "trailer" in inv.optional else []),
        "other_documents": [d[0] for d in inv.other_docs],
    }
    return Task(
        id=f"inv-{index:04d}",
        input=xml,
        expected=normalize_space(inv.reference),
        category=lang,
        meta={"language": lang, "placement": placement, "format": inv.ref_format,
              "split": split, "tokens": tokens, "lines": len(inv.lines),
              "distractors": distractors},
    )


@functools.lru_cache(maxsize=8)
def _generate(seed: int, n_train: int, n_test: int) -> tuple[tuple[Task, ...], tuple[Task, ...]]:
    combos = [(lang, pl) for lang in LANGUAGES for pl in PLACEMENTS]
    out: dict[str, list[Task]] = {}
    start = 0
    for split, count in (("train", n_train), ("test", n_test)):
        order = list(combos)
        random.Random(f"invoices/{seed}/{split}").shuffle(order)
        assigned = [order[i % len(order)] for i in range(count)]
        random.Random(f"invoices/{seed}/{split}/shuffle").shuffle(assigned)
        out[split] = [_make_task(seed, start + i, lang, pl, split)
                      for i, (lang, pl) in enumerate(assigned)]
        start += count
    return tuple(out["train"]), tuple(out["test"])
