"""The invoice document model and its UBL 2.1 XML writer."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from fgo_engine.suites.invoices.identifiers import _money
from fgo_engine.suites.invoices.languages import (
    _SHIPMENT_PLACEHOLDER,
    NS_CAC,
    NS_CBC,
    NS_INVOICE,
    _City,
    _Lang,
)

# ---------------------------------------------------------------------------
# Document model and rendering
# ---------------------------------------------------------------------------


@dataclass
class _Party:
    name: str
    city: _City
    street: str
    building: str
    tax_id: str
    vat_id: str
    extra_id: str  # MERSIS number (tr) or company registration number
    contact: str
    phone: str
    email: str
    website: str
    detailed: bool  # optional blocks (website, legal entity, full contact) are present


@dataclass
class _Line:
    product: tuple[str, str, str, str, str, float, float, bool]
    name: str
    qty: int
    price: int  # cents per unit
    discount_pct: int
    rate: int
    sku: str
    lot: str | None
    order_line: int

    @property
    def gross(self) -> int:
        return self.qty * self.price

    @property
    def discount(self) -> int:
        return (self.gross * self.discount_pct + 50) // 100

    @property
    def net(self) -> int:
        return self.gross - self.discount

    @property
    def tax(self) -> int:
        return (self.net * self.rate + 50) // 100


@dataclass
class _Invoice:
    lang: _Lang
    placement: str
    reference: str
    ref_format: str
    number: str
    uuid: str
    issue: date
    profile: str
    notes: list[str]
    order_ref: str
    order_date: date
    contract_ref: str
    other_docs: list[tuple[str, str, str]]  # (id, code, wording)
    transport_doc: tuple[str, str] | None  # (code, wording) when placement == docref
    supplier: _Party
    customer: _Party
    carrier_name: str
    carrier_id: str
    delivery_city: _City
    delivery_street: str
    delivery_date: date
    despatch_date: date
    plate: str
    trailer_plate: str
    driver: tuple[str, str, str]  # first, last, national id
    gross_weight: str
    payment_days: int
    iban: str
    buyer_reference: str
    customer_number: str
    optional: frozenset[str] = frozenset()  # optional blocks this document carries
    lines: list[_Line] = field(default_factory=list)


class _Writer:
    """Indented XML text, written by hand so the layout (and token count) is stable."""

    def __init__(self, depth: int = 1):
        self.parts: list[str] = []
        self.depth = depth

    def leaf(self, tag: str, text: Any, **attrs: Any) -> None:
        a = "".join(f" {k}={quoteattr(str(v))}" for k, v in attrs.items())
        self.parts.append(f"{'  ' * self.depth}<{tag}{a}>{escape(str(text))}</{tag}>")

    @contextmanager
    def block(self, tag: str, **attrs: Any) -> Iterator[None]:
        a = "".join(f" {k}={quoteattr(str(v))}" for k, v in attrs.items())
        self.parts.append(f"{'  ' * self.depth}<{tag}{a}>")
        self.depth += 1
        yield
        self.depth -= 1
        self.parts.append(f"{'  ' * self.depth}</{tag}>")

    def text(self) -> str:
        return "\n".join(self.parts)


def _address(w: _Writer, lang: _Lang, street: str, building: str, city: _City) -> None:
    w.leaf("cbc:StreetName", street)
    w.leaf("cbc:BuildingNumber", building)
    if lang.code == "tr":
        w.leaf("cbc:CitySubdivisionName", city.district)
    w.leaf("cbc:CityName", city.name)
    w.leaf("cbc:PostalZone", city.postal)
    if lang.code != "tr":
        w.leaf("cbc:CountrySubentity", city.district)
    with w.block("cac:Country"):
        w.leaf("cbc:IdentificationCode", lang.country)
        w.leaf("cbc:Name", lang.country_name)


def _party(w: _Writer, inv: _Invoice, role: str, p: _Party) -> None:
    lang = inv.lang
    with w.block(role), w.block("cac:Party"):
        if p.detailed:
            w.leaf("cbc:WebsiteURI", p.website)
        if lang.code == "tr":
            with w.block("cac:PartyIdentification"):
                w.leaf("cbc:ID", p.tax_id, schemeID="VKN")
            if p.detailed:
                with w.block("cac:PartyIdentification"):
                    w.leaf("cbc:ID", p.extra_id, schemeID="MERSISNO")
        else:
            with w.block("cac:PartyIdentification"):
                w.leaf("cbc:ID", p.extra_id)
        with w.block("cac:PartyName"):
            w.leaf("cbc:Name", p.name)
        with w.block("cac:PostalAddress"):
            _address(w, lang, p.street, p.building, p.city)
        with w.block("cac:PartyTaxScheme"):
            if lang.code == "tr":
                with w.block("cac:TaxScheme"):
                    w.leaf("cbc:Name", p.city.district)
            else:
                w.leaf("cbc:CompanyID", p.vat_id)
                with w.block("cac:TaxScheme"):
                    w.leaf("cbc:ID", "VAT")
        if p.detailed:
            with w.block("cac:PartyLegalEntity"):
                w.leaf("cbc:RegistrationName", p.name)
                w.leaf("cbc:CompanyID", p.tax_id)
        with w.block("cac:Contact"):
            if p.detailed:
                w.leaf("cbc:Name", p.contact)
                w.leaf("cbc:Telephone", p.phone)
            w.leaf("cbc:ElectronicMail", p.email)


def _tax_category(w: _Writer, lang: _Lang, rate: int) -> None:
    with w.block("cac:TaxCategory"):
        if lang.code == "tr":
            with w.block("cac:TaxScheme"):
                w.leaf("cbc:Name", "KDV")
                w.leaf("cbc:TaxTypeCode", "0015")
        else:
            w.leaf("cbc:ID", "S")
            w.leaf("cbc:Percent", rate)
            with w.block("cac:TaxScheme"):
                w.leaf("cbc:ID", "VAT")


def _render_line(inv: _Invoice, idx: int, line: _Line) -> str:
    lang, cur = inv.lang, inv.lang.currency
    w = _Writer()
    with w.block("cac:InvoiceLine"):
        w.leaf("cbc:ID", idx)
        if line.lot:
            w.leaf("cbc:Note", f"{lang.labels['lot']} {line.lot}")
        w.leaf("cbc:InvoicedQuantity", line.qty, unitCode=line.product[4])
        w.leaf("cbc:LineExtensionAmount", _money(line.net), currencyID=cur)
        if line.lot is None:
            with w.block("cac:OrderLineReference"):
                w.leaf("cbc:LineID", line.order_line)
        if line.discount_pct:
            with w.block("cac:AllowanceCharge"):
                w.leaf("cbc:ChargeIndicator", "false")
                w.leaf("cbc:AllowanceChargeReason", lang.discount)
                w.leaf("cbc:MultiplierFactorNumeric", f"{line.discount_pct / 100:.2f}")
                w.leaf("cbc:Amount", _money(line.discount), currencyID=cur)
                w.leaf("cbc:BaseAmount", _money(line.gross), currencyID=cur)
        if lang.code == "tr":
            with w.block("cac:TaxTotal"):
                w.leaf("cbc:TaxAmount", _money(line.tax), currencyID=cur)
                with w.block("cac:TaxSubtotal"):
                    w.leaf("cbc:TaxableAmount", _money(line.net), currencyID=cur)
                    w.leaf("cbc:TaxAmount", _money(line.tax), currencyID=cur)
                    w.leaf("cbc:Percent", line.rate)
                    _tax_category(w, lang, line.rate)
        with w.block("cac:Item"):
            w.leaf("cbc:Name", line.name)
            with w.block("cac:SellersItemIdentification"):
                w.leaf("cbc:ID", line.sku)
            if lang.code != "tr":
                with w.block("cac:ClassifiedTaxCategory"):
                    w.leaf("cbc:ID", "S")
                    w.leaf("cbc:Percent", line.rate)
                    with w.block("cac:TaxScheme"):
                        w.leaf("cbc:ID", "VAT")
        with w.block("cac:Price"):
            w.leaf("cbc:PriceAmount", _money(line.price), currencyID=cur)
    return w.text()


def _delivery(w: _Writer, inv: _Invoice) -> None:
    """The delivery block: its carrier, shipment, vehicle and driver (where the reference may hide)."""
    lang, ref = inv.lang, inv.reference
    with w.block("cac:Delivery"):
        w.leaf("cbc:ActualDeliveryDate", inv.delivery_date.isoformat())
        if inv.placement == "tracking":
            w.leaf("cbc:TrackingID", ref)
        if "delivery_address" in inv.optional:
            with w.block("cac:DeliveryAddress"):
                _address(w, lang, inv.delivery_street, "1", inv.delivery_city)
        with w.block("cac:CarrierParty"):
            with w.block("cac:PartyIdentification"):
                w.leaf("cbc:ID", inv.carrier_id, schemeID="VKN" if lang.code == "tr" else "VAT")
            with w.block("cac:PartyName"):
                w.leaf("cbc:Name", inv.carrier_name)
        with w.block("cac:Shipment"):
            w.leaf("cbc:ID", ref if inv.placement == "shipment" else _SHIPMENT_PLACEHOLDER)
            w.leaf("cbc:GrossWeightMeasure", inv.gross_weight, unitCode="KGM")
            if inv.placement == "consignment":
                with w.block("cac:Consignment"):
                    w.leaf("cbc:ID", ref)
            with w.block("cac:ShipmentStage"):
                with w.block("cac:TransportMeans"), w.block("cac:RoadTransport"):
                    w.leaf("cbc:LicensePlateID", inv.plate,
                           schemeID="PLAKA" if lang.code == "tr" else "REG")
                first, last, nat_id = inv.driver
                if "driver" in inv.optional:
                    with w.block("cac:DriverPerson"):
                        w.leaf("cbc:FirstName", first)
                        w.leaf("cbc:FamilyName", last)
                        w.leaf("cbc:Title", lang.driver_title)
                        w.leaf("cbc:NationalityID", nat_id)
            if "trailer" in inv.optional:
                with w.block("cac:TransportHandlingUnit"), w.block("cac:TransportEquipment"):
                    w.leaf("cbc:ID", inv.trailer_plate,
                           schemeID="DORSEPLAKA" if lang.code == "tr" else "TRAILER")


def _render_head(inv: _Invoice) -> str:
    lang, cur, ref = inv.lang, inv.lang.currency, inv.reference
    w = _Writer()
    w.leaf("cbc:UBLVersionID", "2.1")
    if lang.code == "tr":
        w.leaf("cbc:CustomizationID", "TR1.2")
    else:
        w.leaf("cbc:CustomizationID", "urn:cen.eu:en16931:2017")
    w.leaf("cbc:ProfileID", inv.profile)
    w.leaf("cbc:ID", inv.number)
    if lang.code == "tr":
        w.leaf("cbc:CopyIndicator", "false")
    w.leaf("cbc:UUID", inv.uuid)
    w.leaf("cbc:IssueDate", inv.issue.isoformat())
    if "issue_time" in inv.optional:
        w.leaf("cbc:IssueTime", f"{8 + inv.issue.day % 9:02d}:{inv.issue.month * 4:02d}:00")
    if lang.code != "tr":
        w.leaf("cbc:DueDate", (inv.issue + timedelta(days=inv.payment_days)).isoformat())
    w.leaf("cbc:InvoiceTypeCode", "SATIS" if lang.code == "tr" else "380")
    for note in inv.notes:  # "{n}" in a generic note stands for the line count
        w.leaf("cbc:Note", note.replace("{n}", str(len(inv.lines))), languageID=lang.code)
    w.leaf("cbc:DocumentCurrencyCode", cur)
    w.leaf("cbc:LineCountNumeric", len(inv.lines))
    if lang.code != "tr" and "buyer_reference" in inv.optional:
        w.leaf("cbc:BuyerReference", inv.buyer_reference)
    with w.block("cac:OrderReference"):
        w.leaf("cbc:ID", inv.order_ref)
        w.leaf("cbc:IssueDate", inv.order_date.isoformat())
    if inv.placement == "despatch":
        with w.block("cac:DespatchDocumentReference"):
            w.leaf("cbc:ID", ref)
            w.leaf("cbc:IssueDate", inv.despatch_date.isoformat())
    with w.block("cac:ContractDocumentReference"):
        w.leaf("cbc:ID", inv.contract_ref)
    docs: list[tuple[str, str, str]] = list(inv.other_docs)
    if inv.transport_doc is not None:
        code, wording = inv.transport_doc
        docs.insert(inv.issue.day % (len(docs) + 1), (ref, code, wording))
    for doc_id, code, wording in docs:
        with w.block("cac:AdditionalDocumentReference"):
            w.leaf("cbc:ID", doc_id)
            w.leaf("cbc:IssueDate", inv.issue.isoformat())
            w.leaf("cbc:DocumentTypeCode", code)
            w.leaf("cbc:DocumentType", wording)
    _party(w, inv, "cac:AccountingSupplierParty", inv.supplier)
    _party(w, inv, "cac:AccountingCustomerParty", inv.customer)
    _delivery(w, inv)
    with w.block("cac:PaymentMeans"):
        w.leaf("cbc:PaymentMeansCode", "42")
        w.leaf("cbc:PaymentDueDate", (inv.issue + timedelta(days=inv.payment_days)).isoformat())
        w.leaf("cbc:InstructionNote", lang.instruction)
        with w.block("cac:PayeeFinancialAccount"):
            w.leaf("cbc:ID", inv.iban)
            w.leaf("cbc:CurrencyCode", cur)
            with w.block("cac:FinancialInstitutionBranch"):
                branch = inv.supplier.city
                w.leaf("cbc:Name", lang.bank.format(
                    district=branch.district if lang.code == "tr" else branch.name))
    if "payment_terms" in inv.optional:
        with w.block("cac:PaymentTerms"):
            w.leaf("cbc:Note", lang.payment_terms.format(d=inv.payment_days))
            w.leaf("cbc:PaymentDueDate",
                   (inv.issue + timedelta(days=inv.payment_days)).isoformat())
    by_rate: dict[int, tuple[int, int]] = {}
    for line in inv.lines:
        base, tax = by_rate.get(line.rate, (0, 0))
        by_rate[line.rate] = (base + line.net, tax + line.tax)
    net = sum(line.net for line in inv.lines)
    tax_total = sum(t for _, t in by_rate.values())
    discounts = sum(line.discount for line in inv.lines)
    with w.block("cac:TaxTotal"):
        w.leaf("cbc:TaxAmount", _money(tax_total), currencyID=cur)
        for rate in sorted(by_rate, reverse=True):
            base, tax = by_rate[rate]
            with w.block("cac:TaxSubtotal"):
                w.leaf("cbc:TaxableAmount", _money(base), currencyID=cur)
                w.leaf("cbc:TaxAmount", _money(tax), currencyID=cur)
                w.leaf("cbc:Percent", rate)
                _tax_category(w, lang, rate)
    with w.block("cac:LegalMonetaryTotal"):
        w.leaf("cbc:LineExtensionAmount", _money(net), currencyID=cur)
        w.leaf("cbc:TaxExclusiveAmount", _money(net), currencyID=cur)
        w.leaf("cbc:TaxInclusiveAmount", _money(net + tax_total), currencyID=cur)
        w.leaf("cbc:AllowanceTotalAmount", _money(discounts), currencyID=cur)
        w.leaf("cbc:PayableAmount", _money(net + tax_total), currencyID=cur)
    return w.text()


_OPEN = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    f'<Invoice xmlns="{NS_INVOICE}"\n'
    f'         xmlns:cac="{NS_CAC}"\n'
    f'         xmlns:cbc="{NS_CBC}">'
)


def _render(inv: _Invoice, line_xml: list[str]) -> str:
    return "\n".join([_OPEN, _render_head(inv), *line_xml, "</Invoice>"]) + "\n"
