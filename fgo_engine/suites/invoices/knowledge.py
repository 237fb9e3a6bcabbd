"""What the simulated LLM must know to read an invoice: each text holds all its cue words."""


from fgo_engine.suites.invoices.languages import _LANGS
from fgo_engine.types import Knowledge

ADJECTIVE = {"tr": "Turkish", "en": "English", "es": "Spanish", "it": "Italian"}


def _lang_item(code: str, adj: str) -> Knowledge:
    """A language's labels: holds for that language only (a category-scoped item)."""
    lang = _LANGS[code]
    t0, t1 = lang.transport_doc_types[:2]
    claim = f"notes write '{lang.note_label}' and transport documents are typed '{t0}' or '{t1}'."
    return Knowledge(f"invoices.lang.{code}", (lang.note_label.lower(),), f"For {adj} invoices, {claim}",
                     scope=code, general=claim[0].upper() + claim[1:])

# ---------------------------------------------------------------------------
# Knowledge the simulated LLM checks for. Each text holds all its cue words.
# ---------------------------------------------------------------------------

_K = Knowledge
KNOWLEDGE: dict[str, Knowledge] = {k.key: k for k in (
    _K("invoices.distractors", ("invoice number", "order"),
       "Never answer with the invoice number, the order or contract reference, the UUID or "
       "a vehicle plate: none of them is the transport reference."),
    _K("invoices.despatch", ("despatch", "reference"),
       "The transport reference is often the ID of the DespatchDocumentReference element."),
    _K("invoices.shipment", ("shipment", "placeholder"),
       "When the Shipment inside Delivery has a real ID rather than a placeholder like 1, "
       "that shipment ID is the transport reference."),
    _K("invoices.consignment", ("consignment", "inside"),
       "A Consignment inside the Shipment carries the transport reference as its ID."),
    _K("invoices.tracking", ("tracking", "delivery"),
       "A TrackingID on the Delivery element is the transport reference."),
    _K("invoices.docref", ("additional", "document type"),
       "An AdditionalDocumentReference whose document type names a transport document "
       "(waybill, CMR, bill of lading) holds the transport reference in its ID."),
    _K("invoices.note", ("note", "label"),
       "The reference can also be free text in a Note, right after a label; copy what "
       "follows the label up to the semicolon."),
    *(_lang_item(code, adj) for code, adj in ADJECTIVE.items()),
    _K("invoices.format", ("spaces", "dashes"),
       "Copy the reference exactly as printed: keep its dashes and inner spaces, only "
       "collapsing runs of whitespace."),
)}

_PLACEMENT_WHERE = {
    "despatch": "the ID of the DespatchDocumentReference",
    "shipment": "the ID of the Delivery's Shipment",
    "consignment": "the ID of the Consignment inside the Shipment",
    "tracking": "the TrackingID of the Delivery",
    "docref": "the ID of the AdditionalDocumentReference typed as a transport document",
    "note": "the labelled reference in a Note",
}
