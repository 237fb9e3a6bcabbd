"""The *invoices* suite: a LogisticsQA-like task set of UBL 2.1 invoices.

Each task is one generated invoice (Turkish, English, Spanish or Italian) of roughly
2,000–4,000 cl100k tokens; the agent must reply with the transport reference number.
The reference sits in one of six places (see ``PLACEMENTS``) and comes in varied
formats; every document also carries look-alike identifiers (invoice number, order
and contract references, UUID, plates, other document references) as distractors.

Scoring is exact match after trimming and collapsing whitespace: the expected answer
is the reference exactly as printed, so dashes, letters and inner spaces all count.

A task's ``category`` is its language; ``meta`` holds the placement, the format, the
split, the token count and the distractor values.
"""
from __future__ import annotations

import functools
import random
import re
import unicodedata
import uuid
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Iterator
from xml.sax.saxutils import escape, quoteattr

from fgo_engine.errors import ConfigError
from fgo_engine.sim.skills import BaseSkill, register_skill
from fgo_engine.suites.base import AgentLLM, register_suite
from fgo_engine.suites.scoring import exact, extract_answer
from fgo_engine.types import Knowledge, Module, Step, Task, Trajectory, normalize_space

NS_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
NS_CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
NS_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
_NS = {"inv": NS_INVOICE, "cac": NS_CAC, "cbc": NS_CBC}

LANGUAGES = ("tr", "en", "es", "it")
PLACEMENTS = ("despatch", "shipment", "consignment", "tracking", "docref", "note")
FORMATS = ("plain", "alnum", "spaced", "dashed", "prefixed", "slashed")
TOKEN_RANGE = (2000, 4000)  # every document's cl100k length lies inside this range
_SHIPMENT_PLACEHOLDER = "1"

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
    _K("invoices.lang.tr", ("turkish", "taşıma"),
       "Turkish invoices write 'Taşıma Referans No:' in notes and type transport documents "
       "as 'Taşıma Belgesi' or 'CMR Taşıma Senedi'."),
    _K("invoices.lang.en", ("english", "transport ref"),
       "English invoices write 'Transport ref:' in notes and type transport documents as "
       "'Waybill' or 'Bill of lading'."),
    _K("invoices.lang.es", ("spanish", "transporte"),
       "Spanish invoices write 'Ref. de transporte:' in notes and type transport documents "
       "as 'Carta de porte' or 'Documento de transporte'."),
    _K("invoices.lang.it", ("italian", "trasporto"),
       "Italian invoices write 'Rif. trasporto:' in notes and type transport documents as "
       "'Documento di trasporto (DDT)' or 'Lettera di vettura'."),
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

# ---------------------------------------------------------------------------
# Language data
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _City:
    name: str
    district: str  # CitySubdivisionName (district, ilçe) or region for CountrySubentity
    postal: str


@dataclass(frozen=True)
class _Lang:
    code: str
    country: str
    country_name: str
    currency: str
    price_factor: float
    rates: tuple[int, int]  # standard, reduced
    note_label: str
    transport_doc_types: tuple[str, ...]
    other_doc_types: tuple[tuple[str, str], ...]  # (code, wording)
    suppliers: tuple[str, ...]
    customers: tuple[str, ...]
    carriers: tuple[str, ...]
    cities: tuple[_City, ...]
    streets: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    notes: tuple[str, ...]
    labels: dict[str, str]  # distractor note labels: order, plate, contract, customer, lot
    payment_terms: str
    instruction: str
    bank: str
    discount: str
    driver_title: str
    note_wrappers: tuple[tuple[str, str], ...]  # (text before the label, text after "; ")
    phone: str
    web_tld: str


_LANGS: dict[str, _Lang] = {
    "tr": _Lang(
        code="tr", country="TR", country_name="Türkiye", currency="TRY", price_factor=32.0,
        rates=(20, 10), note_label="Taşıma Referans No:",
        transport_doc_types=("Taşıma Belgesi", "CMR Taşıma Senedi"),
        other_doc_types=(("325", "Proforma Fatura"), ("861", "Menşe Şahadetnamesi"),
                         ("231", "Sipariş Onayı"), ("916", "Kalite Sertifikası")),
        suppliers=("Anadolu Lojistik Ticaret A.Ş.", "Ege Ambalaj Sanayi ve Ticaret Ltd. Şti.",
                   "Karadeniz Gıda Pazarlama A.Ş.", "Marmara Yedek Parça Ltd. Şti.",
                   "Toros Tekstil San. ve Tic. A.Ş.", "Kapadokya Makine İmalat Ltd. Şti.",
                   "Boğaziçi Elektrik Malzemeleri A.Ş.", "Çukurova Tarım Ürünleri Ltd. Şti."),
        customers=("Yıldız Market Zinciri A.Ş.", "Deniz İnşaat Taahhüt Ltd. Şti.",
                   "Güneş Otomotiv Servis A.Ş.", "Akdeniz Otelcilik ve Turizm A.Ş.",
                   "Sevgi Ecza Deposu Ltd. Şti.", "Başkent Mobilya Sanayi A.Ş.",
                   "Kuzey Kimya Ltd. Şti.", "Lale Kırtasiye Ticaret Ltd. Şti."),
        carriers=("Hızlı Nakliyat ve Taşımacılık A.Ş.", "Yol Arkadaşı Lojistik Ltd. Şti.",
                  "Demirçelik Nakliye A.Ş."),
        cities=(_City("İstanbul", "Kadıköy", "34710"), _City("Ankara", "Çankaya", "06690"),
                _City("İzmir", "Bornova", "35040"), _City("Bursa", "Nilüfer", "16110"),
                _City("Kocaeli", "Gebze", "41400"), _City("Mersin", "Akdeniz", "33100"),
                _City("Gaziantep", "Şehitkamil", "27090"), _City("Konya", "Selçuklu", "42060"),
                _City("Eskişehir", "Tepebaşı", "26010"), _City("Samsun", "İlkadım", "55030")),
        streets=("Atatürk Caddesi", "Cumhuriyet Bulvarı", "İstiklal Sokak",
                 "Gazi Mustafa Kemal Bulvarı", "Fevzi Çakmak Caddesi",
                 "Organize Sanayi Bölgesi 5. Cadde", "Barbaros Bulvarı", "Mimar Sinan Caddesi"),
        first_names=("Mehmet", "Ayşe", "Mustafa", "Fatma", "Emre", "Zeynep", "Hakan", "Elif",
                     "Burak", "Selin"),
        last_names=("Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Aydın", "Öztürk",
                    "Arslan", "Doğan"),
        notes=("Bu fatura {n} kalem mal teslimini kapsamaktadır.",
               "Malın teslim alınması sırasında ambalaj ve miktar kontrolü yapılmalıdır.",
               "Faturaya 8 gün içinde itiraz edilmediği takdirde içeriği kabul edilmiş sayılır.",
               "Gecikmeli ödemelerde aylık %{x} vade farkı uygulanır.",
               "İade edilecek ürünler orijinal ambalajında gönderilmelidir.",
               "e-Fatura uygulaması kapsamında elektronik ortamda düzenlenmiştir."),
        labels={"order": "Sipariş No:", "plate": "Araç Plakası:", "contract": "Sözleşme No:",
                "customer": "Müşteri No:", "lot": "Parti No:"},
        payment_terms="Ödeme vadesi fatura tarihinden itibaren {d} gündür.",
        instruction="Havale açıklamasına fatura numarasını yazınız.",
        bank="Birlik Bankası {district} Şubesi", discount="İskonto", driver_title="Şoför",
        note_wrappers=(("Sevkiyat bilgisi:", "teslimat saatleri 08:00-17:00 arasıdır."),
                       ("", "yükleme rampası 3 numaralı kapıdır."),
                       ("Lojistik bilgi —", "teslimatta imzalı irsaliye nüshası istenir.")),
        phone="+90 {a} {b} {c} {d}", web_tld="com.tr",
    ),
    "en": _Lang(
        code="en", country="GB", country_name="United Kingdom", currency="GBP",
        price_factor=0.86, rates=(20, 5), note_label="Transport ref:",
        transport_doc_types=("Waybill", "Bill of lading"),
        other_doc_types=(("325", "Proforma invoice"), ("861", "Certificate of origin"),
                         ("231", "Order confirmation"), ("916", "Quality certificate")),
        suppliers=("Albion Packaging Supplies Ltd", "Harbourside Industrial Supplies Ltd",
                   "Meridian Warehouse Equipment Ltd", "Oakfield Safety Products Ltd",
                   "Kestrel Foods Wholesale Ltd", "Thistle Electrical Distribution Ltd",
                   "Brightwater Cleaning Supplies Ltd", "Ironbridge Handling Systems Ltd"),
        customers=("Greenacre Retail Group plc", "Castlegate Builders Ltd",
                   "Riverside Hotels Ltd", "Summit Automotive Services Ltd",
                   "Lakeland Pharmacy Distribution Ltd", "Beacon Furniture Manufacturing Ltd",
                   "Northgate Chemicals Ltd", "Penrose Stationery Ltd"),
        carriers=("Northway Haulage Ltd", "Redline Freight Services Ltd",
                  "Pennine Road Haulage Ltd"),
        cities=(_City("London", "Greater London", "EC1A 4JQ"),
                _City("Manchester", "Greater Manchester", "M1 4BT"),
                _City("Birmingham", "West Midlands", "B2 4QA"),
                _City("Leeds", "West Yorkshire", "LS1 5DL"), _City("Glasgow", "Scotland", "G2 8LB"),
                _City("Bristol", "City of Bristol", "BS1 4DJ"),
                _City("Liverpool", "Merseyside", "L1 8JQ"),
                _City("Sheffield", "South Yorkshire", "S1 2HE")),
        streets=("High Street", "Station Road", "Church Lane", "Victoria Road", "Mill Lane",
                 "Park Road", "Enterprise Way", "Kingsway"),
        first_names=("Oliver", "Amelia", "George", "Isla", "Harry", "Emily", "Jack", "Sophie",
                     "Thomas", "Grace"),
        last_names=("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans",
                    "Walker", "Wright", "Hughes"),
        notes=("This invoice covers the delivery of {n} line items.",
               "Goods remain the property of the seller until paid in full.",
               "Please check quantities and packaging on receipt of the goods.",
               "Queries regarding this invoice must be raised within 8 days.",
               "Late payments may incur interest at {x}% per month.",
               "Returned goods must be sent back in their original packaging."),
        labels={"order": "Order no:", "plate": "Vehicle reg:", "contract": "Contract ref:",
                "customer": "Customer account:", "lot": "Batch:"},
        payment_terms="Payment due within {d} days of the invoice date.",
        instruction="Please quote the invoice number as the payment reference.",
        bank="Northern Counties Bank plc, {district} branch", discount="Discount",
        driver_title="Driver",
        note_wrappers=(("Shipping details:", "deliveries accepted 08:00-17:00."),
                       ("", "unload at dock door 3."),
                       ("Logistics info —", "a signed delivery note is required.")),
        phone="+44 {a} {b} {c}{d}", web_tld="co.uk",
    ),
    "es": _Lang(
        code="es", country="ES", country_name="España", currency="EUR", price_factor=1.0,
        rates=(21, 10), note_label="Ref. de transporte:",
        transport_doc_types=("Carta de porte", "Documento de transporte"),
        other_doc_types=(("325", "Factura proforma"), ("861", "Certificado de origen"),
                         ("231", "Confirmación de pedido"), ("916", "Certificado de calidad")),
        suppliers=("Embalajes del Levante S.L.", "Suministros Industriales Norte S.A.",
                   "Equipamientos Logísticos Ibéricos S.L.", "Seguridad Laboral Castilla S.L.",
                   "Alimentación Mediterránea Distribución S.A.",
                   "Material Eléctrico Cantábrico S.L.", "Limpiezas Industriales del Ebro S.L.",
                   "Manutención y Almacenaje Sur S.A."),
        customers=("Supermercados La Plaza S.A.", "Construcciones Hermanos Vidal S.L.",
                   "Hoteles Costa Blanca S.A.", "Talleres Mecánicos Ronda S.L.",
                   "Distribuciones Farmacéuticas Centro S.A.", "Muebles Artesanos del Norte S.L.",
                   "Química Industrial Tarragona S.A.", "Papelería Cervantes S.L."),
        carriers=("Camiones Rápidos del Sur S.L.", "Logística Ibérica Express S.A.",
                  "Hermanos Ruiz Carga S.L."),
        cities=(_City("Madrid", "Comunidad de Madrid", "28013"),
                _City("Barcelona", "Cataluña", "08007"),
                _City("Valencia", "Comunitat Valenciana", "46002"),
                _City("Sevilla", "Andalucía", "41004"), _City("Zaragoza", "Aragón", "50001"),
                _City("Bilbao", "País Vasco", "48001"), _City("Málaga", "Andalucía", "29005"),
                _City("Murcia", "Región de Murcia", "30004")),
        streets=("Calle Mayor", "Avenida de la Constitución", "Calle de Alcalá",
                 "Polígono Industrial Las Salinas, Calle B", "Calle Real",
                 "Avenida de Andalucía", "Paseo de Gracia", "Calle San Vicente"),
        first_names=("Javier", "Lucía", "Carlos", "María", "Alejandro", "Carmen", "Pablo",
                     "Elena", "Diego", "Laura"),
        last_names=("García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Gómez",
                    "Ruiz", "Díaz", "Moreno"),
        notes=("La presente factura comprende la entrega de {n} artículos.",
               "La mercancía sigue siendo propiedad del vendedor hasta su pago total.",
               "Compruebe cantidades y embalaje en el momento de la recepción.",
               "Las reclamaciones deberán presentarse en un plazo de 8 días.",
               "Los pagos con retraso devengarán un interés del {x}% mensual.",
               "Las devoluciones deben enviarse en su embalaje original."),
        labels={"order": "Pedido n.º:", "plate": "Matrícula:", "contract": "Contrato n.º:",
                "customer": "Cliente n.º:", "lot": "Lote:"},
        payment_terms="Pago a {d} días fecha factura.",
        instruction="Indique el número de factura en el concepto de la transferencia.",
        bank="Banco Meridional, oficina de {district}", discount="Descuento",
        driver_title="Conductor",
        note_wrappers=(("Datos de envío:", "horario de entrega de 08:00 a 17:00."),
                       ("", "descarga en el muelle 3."),
                       ("Información logística —", "se requiere albarán firmado.")),
        phone="+34 {a} {b} {c} {d}", web_tld="es",
    ),
    "it": _Lang(
        code="it", country="IT", country_name="Italia", currency="EUR", price_factor=1.0,
        rates=(22, 10), note_label="Rif. trasporto:",
        transport_doc_types=("Documento di trasporto (DDT)", "Lettera di vettura"),
        other_doc_types=(("325", "Fattura proforma"), ("861", "Certificato di origine"),
                         ("231", "Conferma d'ordine"), ("916", "Certificato di qualità")),
        suppliers=("Imballaggi Padani S.r.l.", "Forniture Industriali Lombarde S.p.A.",
                   "Attrezzature Logistiche Venete S.r.l.", "Sicurezza Lavoro Emilia S.r.l.",
                   "Alimentari del Sud Distribuzione S.p.A.", "Materiale Elettrico Ligure S.r.l.",
                   "Pulizie Industriali Toscane S.r.l.",
                   "Movimentazione e Magazzino Piemonte S.p.A."),
        customers=("Supermercati Il Mercato S.p.A.", "Costruzioni Fratelli Bruno S.r.l.",
                   "Alberghi della Riviera S.p.A.", "Officina Meccanica Serra S.r.l.",
                   "Distribuzione Farmaceutica Centro S.p.A.",
                   "Mobilificio Artigiano Brianza S.r.l.", "Chimica Industriale Ravenna S.p.A.",
                   "Cartoleria Dante S.r.l."),
        carriers=("Autolinee Merci Padana S.r.l.", "Logistica Tirrenica S.p.A.",
                  "Corrieri Veloci Adriatico S.r.l."),
        cities=(_City("Milano", "MI", "20121"), _City("Roma", "RM", "00184"),
                _City("Torino", "TO", "10121"), _City("Napoli", "NA", "80133"),
                _City("Bologna", "BO", "40121"), _City("Firenze", "FI", "50123"),
                _City("Verona", "VR", "37121"), _City("Bari", "BA", "70121")),
        streets=("Via Roma", "Via Garibaldi", "Corso Vittorio Emanuele II", "Via dell'Industria",
                 "Viale Europa", "Via Mazzini", "Via Cavour", "Via Torino"),
        first_names=("Marco", "Giulia", "Luca", "Francesca", "Alessandro", "Chiara", "Matteo",
                     "Sara", "Davide", "Elena"),
        last_names=("Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo",
                    "Ricci", "Marino", "Greco"),
        notes=("La presente fattura comprende la consegna di {n} articoli.",
               "La merce resta di proprietà del venditore fino al saldo completo.",
               "Verificare quantità e imballo al momento del ricevimento.",
               "Eventuali contestazioni vanno presentate entro 8 giorni.",
               "In caso di ritardato pagamento si applicano interessi del {x}% mensile.",
               "I resi devono essere spediti nell'imballo originale."),
        labels={"order": "Ordine n.:", "plate": "Targa:", "contract": "Contratto n.:",
                "customer": "Codice cliente:", "lot": "Lotto:"},
        payment_terms="Pagamento a {d} giorni data fattura.",
        instruction="Indicare il numero di fattura nella causale del bonifico.",
        bank="Banca Popolare del Nord, filiale di {district}", discount="Sconto",
        driver_title="Autista",
        note_wrappers=(("Dati di spedizione:", "consegne dalle 08:00 alle 17:00."),
                       ("", "scarico alla baia 3."),
                       ("Informazioni logistiche —", "è richiesta copia firmata del DDT.")),
        phone="+39 {a} {b} {c}{d}", web_tld="it",
    ),
}

# (tr, en, es, it, unitCode, min price, max price, reduced VAT rate?)
_PRODUCTS: tuple[tuple[str, str, str, str, str, float, float, bool], ...] = (
    ("Euro palet 120x80 cm", "Euro pallet 1200x800 mm", "Palé europeo 1200x800 mm",
     "Bancale EPAL 1200x800 mm", "C62", 8, 25, False),
    ("Çift oluklu mukavva koli 60x40x40", "Double-wall corrugated box 600x400x400 mm",
     "Caja de cartón doble canal 600x400x400 mm", "Scatola in cartone doppia onda 600x400x400 mm",
     "C62", 0.8, 3, False),
    ("Streç film 23 mikron, 50 cm rulo", "Stretch film 23 micron, 500 mm roll",
     "Film estirable 23 micras, bobina 500 mm", "Film estensibile 23 micron, bobina 500 mm",
     "C62", 6, 18, False),
    ("Koli bandı 45 mm şeffaf", "Packing tape 48 mm clear", "Cinta de embalar 48 mm transparente",
     "Nastro da imballo 48 mm trasparente", "C62", 0.5, 2, False),
    ("Manuel transpalet 2,5 ton", "Manual pallet truck 2.5 t", "Transpaleta manual 2,5 t",
     "Transpallet manuale 2,5 t", "C62", 180, 420, False),
    ("Nitril iş eldiveni (100'lü kutu)", "Nitrile work gloves (box of 100)",
     "Guantes de nitrilo (caja de 100)", "Guanti in nitrile (scatola da 100)", "BX", 5, 14, False),
    ("Reflektörlü ikaz yeleği, sarı", "High-visibility vest, yellow",
     "Chaleco reflectante amarillo", "Gilet ad alta visibilità giallo", "C62", 2, 7, False),
    ("Polipropilen çuval 50 kg", "Polypropylene sack 50 kg", "Saco de polipropileno 50 kg",
     "Sacco in polipropilene 50 kg", "C62", 0.2, 0.9, False),
    ("Plastik kasa 60x40 cm", "Plastic crate 600x400 mm", "Caja de plástico 600x400 mm",
     "Cassa in plastica 600x400 mm", "C62", 4, 12, False),
    ("Galvaniz depo rafı, 4 katlı", "Galvanised shelving unit, 4 tiers",
     "Estantería galvanizada de 4 niveles", "Scaffale zincato a 4 ripiani", "C62", 60, 190, False),
    ("Termal barkod etiketi 100x150 mm", "Thermal barcode labels 100x150 mm",
     "Etiquetas térmicas 100x150 mm", "Etichette termiche 100x150 mm", "C62", 3, 9, False),
    ("PET çember 16 mm", "PET strapping 16 mm", "Fleje de PET 16 mm", "Reggia in PET 16 mm",
     "C62", 25, 60, False),
    ("Karton köşe koruyucu 50x50 mm", "Cardboard edge protector 50x50 mm",
     "Cantonera de cartón 50x50 mm", "Angolare in cartone 50x50 mm", "C62", 0.1, 0.6, False),
    ("Hava yastıklı ambalaj rulosu", "Air cushion packaging roll", "Rollo de almohadillas de aire",
     "Rotolo di cuscini d'aria", "C62", 15, 40, False),
    ("Endüstriyel temizlik deterjanı 20 L", "Industrial cleaning detergent 20 L",
     "Detergente industrial 20 L", "Detergente industriale 20 L", "C62", 20, 55, False),
    ("LED projektör 100 W", "LED floodlight 100 W", "Proyector LED 100 W", "Proiettore LED 100 W",
     "C62", 18, 60, False),
    ("Yangın söndürücü 6 kg KKT", "Fire extinguisher 6 kg dry powder", "Extintor de polvo 6 kg",
     "Estintore a polvere 6 kg", "C62", 25, 70, False),
    ("Sızma zeytinyağı 5 L teneke", "Extra virgin olive oil 5 L tin",
     "Aceite de oliva virgen extra 5 L", "Olio extravergine di oliva 5 L", "C62", 25, 60, True),
    ("Kuru kayısı 1. kalite", "Dried apricots, first grade", "Orejones de albaricoque, primera",
     "Albicocche secche, prima scelta", "KGM", 6, 14, True),
    ("Naturel iç fındık", "Hazelnut kernels, natural", "Avellanas naturales peladas",
     "Nocciole sgusciate naturali", "KGM", 8, 18, True),
    ("Pamuklu iş tulumu", "Cotton work overalls", "Mono de trabajo de algodón",
     "Tuta da lavoro in cotone", "C62", 14, 35, False),
    ("S3 çelik burunlu iş ayakkabısı", "S3 steel-toe safety shoes", "Calzado de seguridad S3",
     "Scarpe antinfortunistiche S3", "PR", 30, 80, False),
    ("NYM kablo 3x2,5 mm²", "Cable 3x2.5 mm²", "Cable 3x2,5 mm²", "Cavo 3x2,5 mm²", "MTR",
     0.8, 2.5, False),
    ("Forklift lastiği 6.50-10", "Forklift tyre 6.50-10", "Neumático para carretilla 6.50-10",
     "Pneumatico per carrello 6.50-10", "C62", 80, 200, False),
)
_LANG_COLUMN = {"tr": 0, "en": 1, "es": 2, "it": 3}

_REF_PREFIXES = {"tr": ("TR-", "TSB-", "KRY-"), "en": ("WB-", "TRN-", "HLG-"),
                 "es": ("CP-", "DT-", "TRP-"), "it": ("DDT-", "LV-", "TRS-")}
_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"

# The reader's view of transport document types (all languages) and UNCL 1001 codes.
_TRANSPORT_DOC_TYPES = frozenset(
    t.casefold() for lang in _LANGS.values() for t in lang.transport_doc_types)
_TRANSPORT_DOC_CODES = frozenset({"705", "730"})
_NOTE_LABELS = {lang.code: lang.note_label for lang in _LANGS.values()}

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
        w.leaf("cbc:IssueTime", "%02d:%02d:00" % (8 + inv.issue.day % 9, inv.issue.month * 4))
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
    name = product[_LANG_COLUMN[lang.code]]
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


class InvoicesSkill(BaseSkill):
    """How the simulated LLM reads these invoices."""

    name = "invoices"

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
        missing_keys = {k.key for k in missing}
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

# ---------------------------------------------------------------------------
# The suite
# ---------------------------------------------------------------------------

_PROMPT_HEAD = "Here is an invoice in UBL 2.1 XML.\n\n<document>\n"
_PROMPT_TAIL = (
    "</document>\n\n"
    "What is the transport reference number of the shipment this invoice covers? "
    "Give it exactly as printed in the document.\n"
    "Reply with: Answer: <reference>"
)

_INITIAL_MODULE = (
    "You read UBL 2.1 invoices and report the transport reference number.\n"
    "- The transport reference is often the ID of the DespatchDocumentReference element.\n"
    "- Never answer with the invoice number or the order reference.\n"
    "- Reply with the reference only, on a final line 'Answer: <reference>'."
)


def build_prompt(task: Task) -> str:
    """The agent's user message: a fixed framing around the verbatim XML."""
    xml = task.input if task.input.endswith("\n") else task.input + "\n"
    return _PROMPT_HEAD + xml + _PROMPT_TAIL


class InvoicesSuite:
    """LogisticsQA-like: extract the transport reference from UBL 2.1 invoices."""

    name = "invoices"
    module_kind = "instruction"

    def __init__(self, seed: int = 0, n_train: int = 48, n_test: int = 219, **options: Any):
        if options:
            raise ConfigError(
                f"invoices suite: unknown option {sorted(options)[0]!r} "
                "(options: seed, n_train, n_test)")
        for label, value, low in (("n_train", n_train, 1), ("n_test", n_test, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"invoices suite: {label} must be an integer ≥ {low}, "
                                  f"got {value!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f"invoices suite: seed must be an integer, got {seed!r}")
        self.seed, self.n_train, self.n_test = seed, n_train, n_test

    def train_tasks(self) -> list[Task]:
        return list(_generate(self.seed, self.n_train, self.n_test)[0])

    def test_tasks(self) -> list[Task]:
        return list(_generate(self.seed, self.n_train, self.n_test)[1])

    def initial_module(self) -> Module:
        return Module("instruction", _INITIAL_MODULE)

    def describe(self) -> str:
        return ("The agent reads one UBL 2.1 invoice (Turkish, English, Spanish or Italian) and "
                "replies with the transport reference number exactly as printed; exact match.")

    def knowledge(self) -> list[Knowledge]:
        """Every knowledge item the simulated LLM may ask of these tasks."""
        return list(KNOWLEDGE.values())

    def run_agent(self, task: Task, module: Module, llm: AgentLLM) -> Trajectory:
        messages = [{"role": "system", "content": module.text},
                    {"role": "user", "content": build_prompt(task)}]
        reply = llm(messages).text or ""
        answer = extract_answer(reply)
        score = exact(answer, task.expected)
        return Trajectory(task_id=task.id, steps=[Step("answer", reply)], answer=answer,
                          success=score >= 1.0, score=score)


register_suite("invoices", lambda seed=0, **kw: InvoicesSuite(seed=seed, **kw))
