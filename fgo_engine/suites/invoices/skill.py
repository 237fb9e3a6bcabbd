"""Reading a document back (for the simulated LLM) and the simulated skill of the suite."""

import functools
import random
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from fgo_engine.llm.sim.skills import BaseSkill, register_skill
from fgo_engine.suites.invoices.knowledge import _PLACEMENT_WHERE, ADJECTIVE, KNOWLEDGE
from fgo_engine.suites.invoices.languages import (
    _LANGS,
    _NOTE_LABELS,
    _NS,
    _PRODUCTS,
    _TRANSPORT_DOC_CODES,
    _TRANSPORT_DOC_TYPES,
    NS_INVOICE,
)
from fgo_engine.types import Knowledge, normalize_space

# ---------------------------------------------------------------------------
# Reading a document (used by the simulated LLM's skill)
# ---------------------------------------------------------------------------

_DOC_RE = re.compile(r"<Invoice\b.*?</Invoice>", re.DOTALL)


@dataclass(frozen=True)
class ReadDocument:
    """What a careful reader who knows every placement finds in one invoice."""

    language: str
    placement: str | None
    reference: str | None
    distractors: tuple[tuple[str, str], ...]  # (what, value), most tempting first


def _language_of(root: ET.Element) -> str:
    for note in root.findall("cbc:Note", _NS):
        code = note.get("languageID")
        if code in _LANGS:
            return code
    country = root.findtext(
        "cac:AccountingSupplierParty/cac:Party/cac:PostalAddress/cac:Country/"
        "cbc:IdentificationCode", default="", namespaces=_NS)
    by_country = {lang.country: lang.code for lang in _LANGS.values()}
    return by_country.get(country.strip(), "en")


def _locate(root: ET.Element) -> tuple[str, str] | None:
    """(placement, reference) in a fixed reading order; ``None`` when nothing is found."""
    for note in root.findall("cbc:Note", _NS):
        text = note.text or ""
        for label in _NOTE_LABELS.values():
            m = re.search(re.escape(label) + r"\s*([^;]+?)\s*(?:;|$)", text)
            if m:
                return "note", normalize_space(m.group(1))
    for doc in root.findall("cac:AdditionalDocumentReference", _NS):
        code = (doc.findtext("cbc:DocumentTypeCode", default="", namespaces=_NS)).strip()
        kind = (doc.findtext("cbc:DocumentType", default="", namespaces=_NS)).strip().casefold()
        if code in _TRANSPORT_DOC_CODES or kind in _TRANSPORT_DOC_TYPES:
            value = doc.findtext("cbc:ID", default="", namespaces=_NS)
            if value.strip():
                return "docref", normalize_space(value)
    paths = (
        ("tracking", "cac:Delivery/cbc:TrackingID"),
        ("consignment", "cac:Delivery/cac:Shipment/cac:Consignment/cbc:ID"),
        ("despatch", "cac:DespatchDocumentReference/cbc:ID"),
        ("shipment", "cac:Delivery/cac:Shipment/cbc:ID"),
    )
    for placement, path in paths:
        value = normalize_space(root.findtext(path, default="", namespaces=_NS))
        if placement == "shipment" and len(value) <= 3:
            continue  # a placeholder such as "1"
        if value:
            return placement, value
    return None


def _distractors(root: ET.Element, reference: str | None) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []

    def add(what: str, path: str) -> None:
        for el in root.findall(path, _NS):
            value = normalize_space(el.text or "")
            if value and value != reference and (what, value) not in found:
                found.append((what, value))

    add("order reference", "cac:OrderReference/cbc:ID")
    add("invoice number", "cbc:ID")
    add("contract reference", "cac:ContractDocumentReference/cbc:ID")
    add("vehicle plate", "cac:Delivery/cac:Shipment/cac:ShipmentStage/cac:TransportMeans/"
        "cac:RoadTransport/cbc:LicensePlateID")
    add("trailer plate", "cac:Delivery/cac:Shipment/cac:TransportHandlingUnit/"
        "cac:TransportEquipment/cbc:ID")
    add("document reference", "cac:AdditionalDocumentReference/cbc:ID")
    add("UUID", "cbc:UUID")
    add("buyer reference", "cbc:BuyerReference")
    return tuple(found)


@functools.lru_cache(maxsize=512)
def read_document(text: str) -> ReadDocument | None:
    """Parse the invoice found in ``text`` (framing around it is fine); ``None`` when
    there is no parsable invoice."""
    m = _DOC_RE.search(text)
    if m is None:
        return None
    try:
        root = ET.fromstring(m.group(0))
    except ET.ParseError:
        return None
    if root.tag != f"{{{NS_INVOICE}}}Invoice":
        return None
    located = _locate(root)
    placement, reference = located if located else (None, None)
    return ReadDocument(language=_language_of(root), placement=placement, reference=reference,
                        distractors=_distractors(root, reference))


def knowledge_for(doc: ReadDocument) -> list[Knowledge]:
    items = [KNOWLEDGE["invoices.distractors"]]
    if doc.placement is None:
        return items
    items.append(KNOWLEDGE[f"invoices.{doc.placement}"])
    if doc.placement in ("note", "docref"):
        items.append(KNOWLEDGE[f"invoices.lang.{doc.language}"])
    if doc.reference and (" " in doc.reference or "-" in doc.reference):
        items.append(KNOWLEDGE["invoices.format"])
    return items


def _break_format(ref: str, rng: random.Random) -> str:
    """What a reader who ignores formatting writes: separators dropped or swapped."""
    if rng.random() < 0.5 or "-" not in ref:
        return re.sub(r"[\s-]+", "", ref)
    return ref.replace("-", " ")


SCOPE_LABELS = {code: f"{adj} invoices" for code, adj in ADJECTIVE.items()}


def _fine_items() -> dict[str, Knowledge]:
    """The fine-grained space (the knowledge-space mechanism): distractor labels, note
    labels and transport-document types per language, separators per kind."""
    items = [KNOWLEDGE[f"invoices.{p}"] for p in _PLACEMENT_WHERE]
    for code, adj in ADJECTIVE.items():
        lang = _LANGS[code]
        t0, t1 = lang.transport_doc_types[:2]
        items += [
            Knowledge(f"invoices.distractors:{code}", ("invoice number", "order", lang.labels["order"].lower()),
                      f"In {adj} invoices '{lang.labels['order']}' labels the order reference and "
                      f"'{lang.labels['plate']}' a vehicle plate: never answer with the invoice number, the order "
                      "or contract reference, the UUID or a plate."),
            Knowledge(f"invoices.lang.{code}:note", (lang.note_label.lower(),),
                      f"For {adj} invoices, the transport reference in a note follows the label "
                      f"'{lang.note_label}'.", scope=code,
                      general=f"The transport reference in a note follows the label '{lang.note_label}'."),
            Knowledge(f"invoices.lang.{code}:docref", (t0.lower(),),
                      f"For {adj} invoices, transport documents are typed '{t0}' or '{t1}'.", scope=code,
                      general=f"Transport documents are typed '{t0}' or '{t1}'; other types are not transport "
                              "documents."),
        ]
    items += [
        Knowledge("invoices.format:spaces", ("keep", "inner spaces"),
                  "Copy a reference with inner spaces exactly as printed: keep the inner spaces."),
        Knowledge("invoices.format:dashes", ("keep", "dashes"),
                  "Copy a reference with dashes exactly as printed: keep every dash."),
    ]
    return {k.key: k for k in items}


FINE = _fine_items()
_PRODUCT_LANGUAGE = {p[i]: code for p in _PRODUCTS for i, code in enumerate(("tr", "en", "es", "it"))}


class InvoicesSkill(BaseSkill):
    """How the simulated LLM reads these invoices."""

    name = "invoices"

    def category(self, task_text: str) -> str | None:
        """The language; from a shortened document (an optimizer prompt may cut the middle)
        by its Note's languageID or the product names a reader sees at either end."""
        doc = read_document(task_text)
        if doc is not None:
            return doc.language
        m = re.search(r'languageID="(tr|en|es|it)"', task_text)
        if m:
            return m.group(1)
        for name in re.findall(r"<cbc:Name>([^<]+)</cbc:Name>", task_text):
            if name in _PRODUCT_LANGUAGE:
                return _PRODUCT_LANGUAGE[name]
        return None

    def scope_labels(self) -> dict[str, str]:
        return SCOPE_LABELS

    def space(self, fine: bool) -> list[Knowledge]:
        return list((FINE if fine else KNOWLEDGE).values())

    def refine(self, task_text: str, items: list[Knowledge]) -> list[Knowledge]:
        doc = read_document(task_text)
        if doc is None:
            return items
        out = []
        for k in items:
            if k.key == "invoices.distractors":
                out.append(FINE[f"invoices.distractors:{doc.language}"])
            elif k.key.startswith("invoices.lang."):
                out.append(FINE[f"{k.key}:{doc.placement}"])
            elif k.key == "invoices.format":
                ref = doc.reference or ""
                out += [FINE[f"invoices.format:{w}"] for w, c in (("spaces", " "), ("dashes", "-")) if c in ref]
            else:
                out.append(k)
        return out

    def recognizes(self, task_text: str) -> bool:
        return NS_INVOICE in task_text and "</Invoice>" in task_text

    def needs(self, task_text: str) -> list[Knowledge]:
        doc = read_document(task_text)
        if doc is None:
            return [KNOWLEDGE["invoices.distractors"]]
        return knowledge_for(doc)

    def act(
        self,
        messages: list[dict[str, Any]],
        task_text: str,
        *,
        competent: bool,
        missing: list[Knowledge],
        rng: random.Random,
    ) -> str:
        doc = None
        for msg in messages:
            content = msg.get("content")
            if isinstance(content, str) and "</Invoice>" in content:
                doc = read_document(content)
                if doc is not None:
                    break
        if doc is None:
            doc = read_document(task_text)
        if doc is None or doc.reference is None:
            return "I could not find a transport reference in this document.\nAnswer: none"
        if competent:
            where = _PLACEMENT_WHERE[doc.placement or "despatch"]
            return f"The transport reference is {where}.\nAnswer: {doc.reference}"
        missing_keys = {k.key.split(":")[0] for k in missing}  # a fine-grained item stands for its base
        if missing_keys == {"invoices.format"}:
            return (f"The transport reference is {_PLACEMENT_WHERE[doc.placement or 'despatch']}."
                    f"\nAnswer: {_break_format(doc.reference, rng)}")
        pool = [d for d in doc.distractors if d[0] != "UUID"] or list(doc.distractors)
        # The order reference and the invoice number tempt most, so they weigh double.
        weighted = pool + [d for d in pool if d[0] in ("order reference", "invoice number")]
        if not weighted:
            return "Answer: none"
        what, value = rng.choice(weighted)
        return f"The {what} looks like the transport reference.\nAnswer: {value}"


register_skill(InvoicesSkill())
