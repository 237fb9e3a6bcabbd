"""Language tables for the invoices suite: UBL namespaces, cities, labels, products per language."""

from dataclasses import dataclass

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
