"""A deterministic year of customer data for a fictional home & kitchen retailer.

"Juniper & Oak" sells cookware, small appliances, bedding and a smart sous-vide cooker online,
in an iOS/Android app and in four physical stores. :func:`generate` plays a year of its customers'
lives and yields the Segment tracking-spec messages (exactly what an SDK would put in a
``/v1/batch`` payload) that the website, the apps, the email service, the helpdesk/CRM, the
survey tool, the point-of-sale system, the social-listening tool and the smart device would send.

The data is built to exercise the platform rather than to look pretty:

* identity resolution: anonymous web visitors who later identify, app installs with a fresh
  ``anonymousId`` that identify with the same ``userId``, second browsers, ``alias`` calls,
  a CRM that only knows an email (in inconsistent case/whitespace) and a ``crm_id`` external id,
  store receipts identified by email alone, phone numbers in local and international formats;
* the eight journey stages (:data:`STAGE_EVENTS`) as Segment e-commerce spec events;
* all ten channels (:data:`CHANNELS`), surveys whose scores follow the customer's experience,
  seasonality, a heavy-tailed activity distribution and customers who churn after problems.

Pure on purpose: only the standard library, no Django, no clock and no I/O (except
:func:`write_jsonl`, when asked). Every random choice comes from :class:`random.Random` seeded
with strings (hashed with SHA-512, so independent of ``PYTHONHASHSEED``), which makes the output
byte-identical for the same :class:`DemoConfig`. Each customer has their own generator, so
customer *n* behaves the same whatever the population size.
"""

from __future__ import annotations

import bisect
import gc
import hashlib
import json
import random
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from os import PathLike
from typing import Any, Final, TypedDict

__all__ = [
    "CHANNELS",
    "DEFAULT_START",
    "STAGE_EVENTS",
    "DemoConfig",
    "Message",
    "Summary",
    "channel_of",
    "generate",
    "stage_of",
    "summary",
    "write_jsonl",
]

Message = dict[str, Any]
"""One Segment message as JSON-ready Python data (strings, numbers, bools, lists, dicts)."""

DEFAULT_START: Final = datetime(2025, 11, 1, tzinfo=UTC)

CHANNELS: Final = (
    "web", "app", "email", "chat", "phone", "social", "store", "iot", "survey", "support",
)

STAGE_EVENTS: Final[dict[str, frozenset[str]]] = {
    "discovery": frozenset({"Products Searched", "Promotion Viewed"}),
    "consideration": frozenset({
        "Product Viewed", "Product List Viewed", "Product Added", "Product Removed",
        "Cart Viewed", "Checkout Started",
    }),
    "purchase": frozenset({"Payment Info Entered", "Order Completed"}),
    "onboarding": frozenset({
        "Signed Up", "Onboarding Step Completed", "Account Verified", "Application Installed",
    }),
    "service": frozenset({
        "Order Shipped", "Order Delivered", "Order Refunded", "Application Opened",
        "Device Paired", "Cooking Session Completed", "Firmware Updated", "Device Error",
    }),
    "support": frozenset({"Ticket Created", "Ticket Resolved", "Chat Started", "Call Completed"}),
    "loyalty": frozenset({
        "Loyalty Points Earned", "Loyalty Tier Upgraded", "Subscription Started",
        "Subscription Renewed", "Subscription Cancelled",
    }),
    "advocacy": frozenset({"Review Submitted", "Referral Sent", "Social Mention"}),
}
"""Track event names by customer-journey stage (email and survey events span stages)."""

_STAGE_OF: Final = {event: stage for stage, events in STAGE_EVENTS.items() for event in events}

_DAY: Final = 86_400_000
_HOUR: Final = 3_600_000
_MIN: Final = 60_000
_SEC: Final = 1_000
_EPOCH: Final = datetime(1970, 1, 1)  # naive on purpose: isoformat() then has no "+00:00"
_NS: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://cxm.example/demo/juniper-and-oak")
_NS_BYTES: Final = _NS.bytes

COMPANY: Final = "Juniper & Oak"
SITE: Final = "https://www.juniperoak.example"
_SUFFIX: Final = " | Juniper & Oak"


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoConfig:
    """How big a company to simulate, from which date, and with which seed."""

    customers: int = 5000
    seed: int = 42
    start: datetime = DEFAULT_START
    days: int = 365

    def __post_init__(self) -> None:
        if self.customers < 0:
            raise ValueError("customers must be zero or more")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        # Frozen, so normalise through object.__setattr__: everything downstream assumes UTC.
        object.__setattr__(self, "start", self.start.astimezone(UTC))

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


def generate(config: DemoConfig) -> Iterator[Message]:
    """Yield the simulated messages in timestamp order.

    Customers are simulated first into compact tuples (the full dicts of ~400k messages would
    need several hundred MB); the dicts are built one at a time as the caller iterates.
    """
    world = _World(config)
    records: list[_Record] = []
    # The simulation allocates millions of small, acyclic containers that the cyclic GC would
    # otherwise rescan over and over (~40% of the run). No caller code runs until the first
    # yield, so pausing the collector here cannot affect anything else.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for persona in _personas(config, world):
            journey = _Journey(world, persona)
            journey.run()
            records.extend(journey.out)
    finally:
        if collecting:
            gc.enable()
    records.sort()  # (ms, customer, seq) is unique, so the sort never compares further fields
    seed = config.seed
    start_ms = world.start_ms
    for record in records:
        yield _render(record, seed, start_ms)


def channel_of(message: Message) -> str:
    """The customer-experience channel of a message.

    Server-side sources name it in ``context.channel``; the browser and mobile SDKs do not,
    so a ``context.app`` means the app and anything else the website.
    """
    context = message.get("context") or {}
    channel = context.get("channel")
    if isinstance(channel, str):
        return channel
    return "app" if "app" in context else "web"


def stage_of(event: str) -> str | None:
    """The journey stage of a track event name, ``None`` for cross-stage events."""
    return _STAGE_OF.get(event)


class Summary(TypedDict):
    messages: int
    users: int
    anonymous_ids: int
    by_type: dict[str, int]
    by_channel: dict[str, int]
    by_stage: dict[str, int]
    by_event: dict[str, int]


def summary(messages: Iterable[Message]) -> Summary:
    """Counts per message type, channel, journey stage and track event (largest first)."""
    types: Counter[str] = Counter()
    channels: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    events: Counter[str] = Counter()
    users: set[str] = set()
    anonymous: set[str] = set()
    total = 0
    for message in messages:
        total += 1
        kind = message["type"]
        types[kind] += 1
        channels[channel_of(message)] += 1
        if kind == "track":
            event = message["event"]
            events[event] += 1
            stage = _STAGE_OF.get(event)
            if stage:
                stages[stage] += 1
        if "userId" in message:
            users.add(message["userId"])
        if "anonymousId" in message:
            anonymous.add(message["anonymousId"])

    def ordered(counter: Counter[str]) -> dict[str, int]:
        return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))

    return Summary(
        messages=total, users=len(users), anonymous_ids=len(anonymous), by_type=ordered(types),
        by_channel=ordered(channels), by_stage=ordered(stages), by_event=ordered(events),
    )


def write_jsonl(messages: Iterable[Message], path: str | PathLike[str]) -> int:
    """Write one compact JSON message per line; returns how many were written."""
    count = 0
    with open(path, "w", encoding="utf-8") as handle:
        for message in messages:
            handle.write(json.dumps(message, ensure_ascii=False, separators=(",", ":")))
            handle.write("\n")
            count += 1
    return count


# --------------------------------------------------------------------------------------------
# Reference data
# --------------------------------------------------------------------------------------------

_FIRST_NAMES: Final = (
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Mia", "James", "Charlotte", "Amelia",
    "Oliver", "Isla", "Jack", "Harry", "Sophie", "Thomas", "Grace", "Chloe", "Ella", "Ruby",
    "Leo", "Max", "Alexander", "Daniel", "Sarah", "Emily", "Michael", "David", "Jessica",
    "Laura", "Matthew", "Andrew", "Rachel", "Rebecca", "Nathan", "Hannah", "Benjamin", "Samuel",
    "Lucas", "Zoë", "Renée", "José", "Mateo", "Lucía", "Sofía", "Valentina", "Diego", "Camila",
    "Gabriela", "Rafael", "Isabela", "João", "Ana", "Luca", "Giulia", "Marco", "Francesca",
    "Lukas", "Jonas", "Lena", "Léa", "Hugo", "Manon", "Louis", "Camille", "Jules", "Inès",
    "Chloé", "Anouk", "Daan", "Sanne", "Bram", "Fleur", "Astrid", "Erik", "Ingrid", "Lars",
    "Freya", "Nils", "Søren", "Björn", "Siobhán", "Cian", "Aoife", "Niamh", "Declan", "Aisha",
    "Kwame", "Amara", "Ngozi", "Oluwaseun", "Tariq", "Zara", "Fatima", "Omar", "Layla",
    "Youssef", "Yara", "Arjun", "Ananya", "Rohan", "Kavya", "Vikram", "Meera", "Priya", "Aarav",
    "Ravi", "Sanjay", "Deepa", "Wei", "Mei", "Jun", "Xiaoling", "Hiroshi", "Yuki", "Sakura",
    "Kenji", "Haruto", "Aiko", "Min-jun", "Ji-woo", "Seo-yeon", "Hye-jin", "Linh", "Minh",
    "Thanh", "Nadia", "Dmitri", "Olga", "Ivan", "Katarzyna", "Piotr", "Agnieszka", "Tomasz",
    "Łukasz", "Eleni", "Nikos", "Maya", "Noor", "Elif", "Emre", "Carmen", "Pablo", "Marta",
    "Javier", "Ines", "Tiago", "Kofi", "Adaeze", "Sipho", "Thandiwe", "Malia", "Kai", "Aroha",
)

_LAST_NAMES: Final = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Taylor",
    "Anderson", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White", "Harris", "Clark",
    "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott", "Green", "Baker", "Adams",
    "Nelson", "Hill", "Campbell", "Mitchell", "Roberts", "Carter", "Evans", "Turner", "Parker",
    "Collins", "Edwards", "Stewart", "Murphy", "O'Brien", "Kelly", "Byrne", "Ryan", "Walsh",
    "McCarthy", "García", "Martínez", "Rodríguez", "López", "Hernández", "González", "Pérez",
    "Sánchez", "Ramírez", "Torres", "Flores", "Silva", "Santos", "Oliveira", "Costa", "Rossi",
    "Russo", "Bianchi", "Romano", "Ferrari", "Müller", "Schmidt", "Schneider", "Fischer",
    "Weber", "Wagner", "Becker", "Hoffmann", "Dubois", "Moreau", "Laurent", "Lefèvre",
    "Fontaine", "Girard", "de Vries", "Jansen", "van Dijk", "Bakker", "Visser", "Smit",
    "Johansson", "Andersson", "Nilsson", "Larsen", "Hansen", "Jensen", "Nielsen", "Kowalski",
    "Nowak", "Wiśniewska", "Novak", "Ivanova", "Petrov", "Papadopoulos", "Yilmaz", "Kaya",
    "Haddad", "Khalil", "Hassan", "Rahman", "Khan", "Ahmed", "Patel", "Sharma", "Singh",
    "Gupta", "Iyer", "Reddy", "Nair", "Chen", "Wang", "Li", "Zhang", "Liu", "Huang", "Wong",
    "Tanaka", "Suzuki", "Sato", "Takahashi", "Watanabe", "Yamamoto", "Kim", "Park", "Lee",
    "Choi", "Nguyen", "Tran", "Pham", "Okafor", "Adeyemi", "Mensah", "Boateng", "Dlamini",
    "Ndlovu", "Mwangi", "Otieno", "Cohen", "Levi", "Friedman", "Novotná", "Horvat", "Kovács",
    "Ali", "Begum", "Ortiz", "Cruz", "Reyes", "Morales", "Ngata", "Tupou",
)

# Reserved for documentation (RFC 2606 / RFC 6761): a demo loaded next to a real email
# integration can never mail a stranger.
_EMAIL_DOMAINS: Final = (
    "example.com", "example.net", "example.org", "mail.example", "postbox.example",
    "inbox.example", "webmail.example",
)
_EMAIL_DOMAIN_WEIGHTS: Final = (30, 15, 10, 15, 10, 10, 10)

_B2B_COMPANIES: Final = (
    ("Blue Fern Café", "bluefern.example", "Hospitality", 14),
    ("Harbour Street Bistro", "harbourstreet.example", "Restaurants", 32),
    ("Copperleaf Bakery", "copperleaf.example", "Food & Beverage", 9),
    ("Northwind Offices", "northwind.example", "Professional Services", 220),
    ("Tidewater Hotels", "tidewater.example", "Hospitality", 640),
    ("Maple & Rye Kitchen", "maplerye.example", "Restaurants", 45),
    ("Brightside Co-working", "brightside.example", "Real Estate", 60),
    ("Little Acorn Nursery", "littleacorn.example", "Education", 25),
    ("Saltmarsh Catering", "saltmarsh.example", "Catering", 75),
    ("Greenhouse Studios", "greenhouse.example", "Media", 120),
    ("Orchard Lane B&B", "orchardlane.example", "Hospitality", 6),
    ("Ironbridge Cookery School", "ironbridge.example", "Education", 18),
    ("Pinecrest Senior Living", "pinecrest.example", "Healthcare", 310),
    ("Fable & Fork", "fablefork.example", "Restaurants", 28),
    ("Lumen Labs", "lumenlabs.example", "Technology", 150),
    ("Kettle & Crumb Tearoom", "kettlecrumb.example", "Food & Beverage", 11),
)


@dataclass(frozen=True, slots=True)
class _City:
    name: str
    region: str
    tz: str
    offset: float  # standard-time UTC offset in hours; DST is ignored
    postcode: str
    phones: tuple[str, ...]  # national prefixes of *fictional* phone ranges, see _phone()


@dataclass(frozen=True, slots=True)
class _Country:
    code: str
    weight: int
    locale: str
    currency: str
    rate: float  # price multiplier from the USD list price
    streets: tuple[str, ...]
    cities: tuple[_City, ...]


_COUNTRIES: Final = (
    _Country("US", 40, "en-US", "USD", 1.0, (
        "Maple Avenue", "Oak Street", "Pine Street", "Cedar Lane", "Elm Street", "Park Avenue",
        "Lakeview Drive", "Sunset Boulevard", "Washington Street", "Highland Avenue",
    ), (
        _City("New York", "NY", "America/New_York", -5, "100", ("212", "646", "332", "347",
                                                                 "718", "917")),
        _City("San Francisco", "CA", "America/Los_Angeles", -8, "941", ("415", "628")),
        _City("Los Angeles", "CA", "America/Los_Angeles", -8, "900", ("213", "310", "323",
                                                                      "424")),
        _City("Chicago", "IL", "America/Chicago", -6, "606", ("312", "773", "872")),
        _City("Austin", "TX", "America/Chicago", -6, "787", ("512", "737")),
        _City("Seattle", "WA", "America/Los_Angeles", -8, "981", ("206",)),
        _City("Boston", "MA", "America/New_York", -5, "021", ("617", "857")),
        _City("Denver", "CO", "America/Denver", -7, "802", ("303", "720")),
        _City("Atlanta", "GA", "America/New_York", -5, "303", ("404", "470", "678")),
        _City("Portland", "OR", "America/Los_Angeles", -8, "972", ("503", "971")),
        _City("Miami", "FL", "America/New_York", -5, "331", ("305", "786")),
    )),
    _Country("CA", 8, "en-CA", "CAD", 1.37, (
        "King Street West", "Queen Street", "Granville Street", "Rue Saint-Denis", "Bloor Street",
    ), (
        _City("Toronto", "ON", "America/Toronto", -5, "M5V", ("416", "647", "437")),
        _City("Vancouver", "BC", "America/Vancouver", -8, "V6B", ("604", "778")),
        _City("Montreal", "QC", "America/Toronto", -5, "H2X", ("514", "438")),
    )),
    _Country("GB", 16, "en-GB", "GBP", 0.79, (
        "High Street", "Church Road", "Station Road", "Victoria Road", "Mill Lane",
        "Green Lane", "Park Road", "Queens Road",
    ), (
        _City("London", "England", "Europe/London", 0, "EC1", ("20 7946 0",)),
        _City("Manchester", "England", "Europe/London", 0, "M1", ("161 496 0",)),
        _City("Leeds", "England", "Europe/London", 0, "LS1", ("113 496 0",)),
        _City("Bristol", "England", "Europe/London", 0, "BS1", ("117 496 0",)),
        _City("Edinburgh", "Scotland", "Europe/London", 0, "EH1", ("131 496 0",)),
    )),
    _Country("AU", 6, "en-AU", "AUD", 1.52, (
        "George Street", "Collins Street", "Queen Street", "Hay Street", "Beach Road",
    ), (
        _City("Sydney", "NSW", "Australia/Sydney", 10, "2000", ("2 5550",)),
        _City("Melbourne", "VIC", "Australia/Melbourne", 10, "3000", ("3 5550",)),
        _City("Brisbane", "QLD", "Australia/Brisbane", 10, "4000", ("7 5550",)),
        _City("Perth", "WA", "Australia/Perth", 8, "6000", ("8 5550",)),
    )),
    _Country("FR", 6, "fr-FR", "EUR", 0.92, (
        "Rue de la Paix", "Avenue Victor Hugo", "Rue du Moulin", "Boulevard Voltaire",
    ), (
        _City("Paris", "Île-de-France", "Europe/Paris", 1, "750", ("1 99 00",)),
        _City("Lyon", "Auvergne-Rhône-Alpes", "Europe/Paris", 1, "690", ("4 65 71",)),
        _City("Bordeaux", "Nouvelle-Aquitaine", "Europe/Paris", 1, "330", ("5 36 49",)),
        _City("Lille", "Hauts-de-France", "Europe/Paris", 1, "590", ("3 53 01",)),
    )),
    _Country("DE", 7, "de-DE", "EUR", 0.92, (
        "Hauptstraße", "Bahnhofstraße", "Gartenstraße", "Schillerstraße", "Lindenweg",
    ), (
        _City("Berlin", "Berlin", "Europe/Berlin", 1, "101", ()),
        _City("Munich", "Bavaria", "Europe/Berlin", 1, "803", ()),
        _City("Hamburg", "Hamburg", "Europe/Berlin", 1, "203", ()),
        _City("Cologne", "North Rhine-Westphalia", "Europe/Berlin", 1, "506", ()),
    )),
    _Country("NL", 4, "nl-NL", "EUR", 0.92, ("Kerkstraat", "Dorpsstraat", "Prinsengracht"), (
        _City("Amsterdam", "North Holland", "Europe/Amsterdam", 1, "1015", ()),
        _City("Rotterdam", "South Holland", "Europe/Amsterdam", 1, "3011", ()),
        _City("Utrecht", "Utrecht", "Europe/Amsterdam", 1, "3511", ()),
    )),
    _Country("ES", 3, "es-ES", "EUR", 0.92, ("Calle Mayor", "Gran Vía", "Calle de Alcalá"), (
        _City("Madrid", "Madrid", "Europe/Madrid", 1, "280", ()),
        _City("Barcelona", "Catalonia", "Europe/Madrid", 1, "080", ()),
        _City("Valencia", "Valencia", "Europe/Madrid", 1, "460", ()),
    )),
    _Country("IE", 3, "en-IE", "EUR", 0.92, ("Main Street", "Grafton Street", "Patrick Street"), (
        _City("Dublin", "Leinster", "Europe/Dublin", 0, "D02", ()),
        _City("Cork", "Munster", "Europe/Dublin", 0, "T12", ()),
    )),
    _Country("SE", 2, "sv-SE", "SEK", 10.5, ("Storgatan", "Drottninggatan", "Kungsgatan"), (
        _City("Stockholm", "Stockholm", "Europe/Stockholm", 1, "111", ()),
        _City("Gothenburg", "Västra Götaland", "Europe/Stockholm", 1, "411", ()),
    )),
    _Country("JP", 2, "ja-JP", "JPY", 150.0, ("Chuo-dori", "Omotesando", "Midosuji"), (
        _City("Tokyo", "Tokyo", "Asia/Tokyo", 9, "150", ()),
        _City("Osaka", "Osaka", "Asia/Tokyo", 9, "530", ()),
    )),
)
_COUNTRY_CUM: Final = tuple(
    sum(c.weight for c in _COUNTRIES[: i + 1]) for i in range(len(_COUNTRIES))
)


@dataclass(frozen=True, slots=True)
class _Store:
    store_id: str
    name: str
    city: str


_STORES: Final = (
    _Store("ST-NYC-01", "New York SoHo", "New York"),
    _Store("ST-SFO-01", "San Francisco Hayes Valley", "San Francisco"),
    _Store("ST-LDN-01", "London Covent Garden", "London"),
    _Store("ST-TOR-01", "Toronto Queen West", "Toronto"),
)
_STORE_BY_CITY: Final = {store.city: store for store in _STORES}
_STORE_COUNTRY: Final = {"ST-NYC-01": "US", "ST-SFO-01": "US", "ST-LDN-01": "GB", "ST-TOR-01": "CA"}


@dataclass(frozen=True, slots=True)
class _Product:
    product_id: str
    sku: str
    name: str
    category: str
    price: float  # USD list price
    slug: str
    weight: float  # relative popularity
    smart: bool


_CATALOG_SOURCE: Final = (
    ("Cookware", "CKW", (
        ("Cast Iron Skillet 26cm", 59), ("Enamelled Dutch Oven 5.5qt", 189),
        ("Stainless Saucepan Set (3 pc)", 149), ("Nonstick Frying Pan 28cm", 45),
        ("Carbon Steel Wok 32cm", 69), ("Copper Sauté Pan 24cm", 229), ("Stockpot 8qt", 89),
    )),
    ("Bakeware", "BKW", (
        ("Aluminium Sheet Pan Set", 39), ("Springform Cake Tin 23cm", 24),
        ("Sourdough Proofing Basket", 22), ("Ceramic Pie Dish", 29),
        ("Silicone Baking Mats (2 pack)", 19), ("Heavy Loaf Tin", 18),
    )),
    ("Knives", "KNF", (
        ("Chef's Knife 20cm", 129), ("Santoku Knife 18cm", 99), ("Serrated Bread Knife", 69),
        ("Paring Knife 9cm", 29), ("Seven-Piece Knife Block", 249), ("Whetstone 1000/6000", 49),
    )),
    ("Small Appliances", "APL", (
        ("Stand Mixer 5L", 399), ("High-Speed Blender", 179), ("Espresso Machine Duo", 549),
        ("Electric Kettle 1.7L", 79), ("Air Fryer 5.8L", 129), ("Two-Slice Toaster", 69),
        ("Food Processor 3L", 199),
    )),
    ("Smart Kitchen", "SMK", (
        ("SmartSous Precision Cooker", 199), ("Smart Kitchen Scale", 59),
    )),
    ("Coffee & Tea", "CAT", (
        ("Gooseneck Pour-Over Kettle", 65), ("Conical Burr Grinder", 149),
        ("French Press 1L", 39), ("Ceramic Teapot", 45), ("House Blend Coffee Beans 1kg", 32),
        ("Matcha Whisk Set", 28),
    )),
    ("Tableware", "TBL", (
        ("Stoneware Dinner Set (12 pc)", 129), ("Linen Napkins (set of 4)", 35),
        ("Glass Tumblers (set of 6)", 42), ("Oak Serving Board", 55), ("Olive Wood Salad Bowl", 49),
    )),
    ("Storage", "STR", (
        ("Glass Meal-Prep Containers (10 pc)", 45), ("Pantry Jar Set", 59),
        ("Bamboo Bread Bin", 49), ("Magnetic Spice Rack", 39),
    )),
    ("Bedding", "BED", (
        ("Down-Alternative Pillow", 49), ("Memory Foam Pillow", 69),
        ("Percale Sheet Set (Queen)", 139), ("Linen Duvet Cover", 199), ("Weighted Blanket", 159),
        ("Merino Wool Throw", 119),
    )),
    ("Bath", "BTH", (
        ("Waffle Towel Set", 79), ("Cotton Bath Mat", 35), ("Waffle Bathrobe", 89),
    )),
)


def _slugify(text: str) -> str:
    out = []
    for ch in _ascii(text.lower()):
        if ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


def _build_catalog() -> tuple[_Product, ...]:
    products = []
    number = 1001
    for category, code, items in _CATALOG_SOURCE:
        for position, (name, price) in enumerate(items):
            products.append(_Product(
                product_id=f"prod_{number}", sku=f"JO-{code}-{position + 1:03d}", name=name,
                category=category, price=float(price), slug=_slugify(name),
                # A few best-sellers per category, then a long tail.
                weight=round(1.0 / (position + 1.5) ** 0.9, 4), smart=category == "Smart Kitchen",
            ))
            number += 1
    return tuple(products)


_ASCII_FOLD: Final = str.maketrans({"ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "ß": "ss",
                                    "æ": "ae", "đ": "d"})


def _ascii(text: str) -> str:
    """``"Łukasz Müller"`` -> ``"Lukasz Muller"``: letters without their accents."""
    folded = unicodedata.normalize("NFKD", text.translate(_ASCII_FOLD))
    return "".join(ch for ch in folded if ch.isascii() and not unicodedata.combining(ch))


def _handle(name: str) -> str:
    """A name as it appears in an email address or social handle: ``"O'Brien"`` -> ``"obrien"``."""
    return "".join(ch for ch in _ascii(name).lower() if ch.isalnum())


_CATALOG: Final = _build_catalog()
_CATEGORIES: Final = tuple(category for category, _, _ in _CATALOG_SOURCE)
_BY_CATEGORY: Final = {c: tuple(p for p in _CATALOG if p.category == c) for c in _CATEGORIES}
_SMART: Final = tuple(p for p in _CATALOG if p.smart and "Cooker" in p.name)

_SEARCHES: Final = {
    "Cookware": ("cast iron", "dutch oven", "non stick pan", "wok", "induction pans"),
    "Bakeware": ("sourdough basket", "cake tin", "baking mat", "sheet pan"),
    "Knives": ("chef knife", "knife set", "santoku", "knife sharpener"),
    "Small Appliances": ("air fryer", "espresso machine", "stand mixer", "blender", "kettle"),
    "Smart Kitchen": ("sous vide", "smart scale", "precision cooker"),
    "Coffee & Tea": ("coffee grinder", "pour over", "french press", "coffee beans"),
    "Tableware": ("dinner set", "serving board", "napkins", "glasses"),
    "Storage": ("meal prep containers", "pantry jars", "bread bin"),
    "Bedding": ("firm pillow", "linen sheets", "weighted blanket", "duvet cover"),
    "Bath": ("waffle towels", "bath robe", "bath mat"),
}
_GENERIC_SEARCHES: Final = ("gift ideas", "wedding gift", "sale", "gift card", "black friday")

_JOURNAL: Final = (
    ("/journal/how-to-season-cast-iron", "How to season cast iron"),
    ("/journal/sous-vide-steak-guide", "The perfect sous-vide steak"),
    ("/journal/choosing-a-pillow", "Firm, medium or soft? Choosing a pillow"),
    ("/journal/sourdough-for-beginners", "Sourdough for beginners"),
    ("/journal/holiday-gift-guide", "The holiday gift guide"),
    ("/journal/knife-care-101", "Knife care 101"),
)

# (key, weight, referrer, utm source, utm medium)
_SOURCES: Final = (
    ("google", 25, "https://www.google.com/", "", ""),
    ("google_ads", 14, "https://www.google.com/", "google", "cpc"),
    ("instagram", 12, "https://l.instagram.com/", "instagram", "paid_social"),
    ("facebook", 6, "https://m.facebook.com/", "facebook", "paid_social"),
    ("tiktok", 6, "https://www.tiktok.com/", "tiktok", "paid_social"),
    ("pinterest", 6, "https://www.pinterest.com/", "pinterest", "social"),
    ("direct", 18, "", "", ""),
    ("bing", 4, "https://www.bing.com/", "", ""),
    ("affiliate", 5, "https://www.kitchenreviews.example/best-dutch-ovens", "kitchenreviews",
     "affiliate"),
    ("referral", 2, "", "referral", "referral"),
)
_SOURCE_CUM: Final = tuple(sum(s[1] for s in _SOURCES[: i + 1]) for i in range(len(_SOURCES)))

_WEB_BROWSERS: Final = (
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36", 1920, 1080, 1),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/18.1 Safari/605.1.15", 1512, 982, 2),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36", 1440, 900, 2),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 393, 852, 3),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36", 412, 915, 2.625),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
     1536, 864, 1.25),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", 1366, 768, 1),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Mobile Safari/537.36", 384, 854, 3),
)
_WEB_BROWSER_WEIGHTS: Final = (22, 14, 10, 26, 8, 5, 5, 10)
_WEB_LIBRARY: Final = {"name": "analytics.js", "version": "npm:next-1.72.0"}

# (os, os version, manufacturer, model, user agent fmt, library, width, height, density)
_PHONES: Final = (
    ("iOS", "18.1", "Apple", "iPhone15,2", "iPhone", "analytics-swift", "1.6.1", 393, 852, 3.0),
    ("iOS", "17.6", "Apple", "iPhone14,5", "iPhone", "analytics-swift", "1.6.1", 390, 844, 3.0),
    ("iOS", "18.1", "Apple", "iPhone16,1", "iPhone", "analytics-swift", "1.6.1", 393, 852, 3.0),
    ("Android", "14", "Google", "Pixel 8", "Pixel 8", "analytics-kotlin", "1.16.3",
     412, 915, 2.625),
    ("Android", "14", "samsung", "SM-S918B", "SM-S918B", "analytics-kotlin", "1.16.3",
     384, 854, 3.0),
    ("Android", "13", "samsung", "SM-A536B", "SM-A536B", "analytics-kotlin", "1.16.3",
     360, 800, 3.0),
)
_PHONE_WEIGHTS: Final = (25, 15, 15, 15, 18, 12)
_APP_VERSION: Final = ("5.3.0", "530")

_AGENTS: Final = ("Priya", "Tom", "Sofia", "Marcus", "Aiko", "Jordan", "Fatou", "Liam")

_PREFERENCE_CHOICES: Final = {
    "pillow": ("firm", "medium", "soft"),
    "cooktop": ("induction", "gas", "electric", "ceramic"),
    "diet": ("none", "vegetarian", "vegan", "gluten_free", "pescatarian"),
}

# Marketing calendar: (month, day or None for a computed date, subject, landing path, key)
_PROMOS: Final = (
    (11, -7, "Black Friday early access starts now", "/collections/sale", "bf_early_access"),
    (11, 0, "Black Friday: up to 40% off cookware", "/collections/sale", "black_friday"),
    (12, -1, "Cyber Monday: last chance for 40% off", "/collections/sale", "cyber_monday"),
    (12, 5, "The holiday gift guide is here", "/journal/holiday-gift-guide", "gift_guide"),
    (12, 16, "Last order date for holiday delivery", "/collections/gifts", "last_order_date"),
    (12, 26, "Boxing Day sale: extra 20% off", "/collections/sale", "boxing_day"),
    (1, 6, "January sale: kitchen refresh", "/collections/sale", "january_sale"),
    (2, 6, "The Valentine's brunch edit", "/collections/tableware", "valentines"),
    (3, 12, "Spring kitchen refresh", "/collections/storage", "spring_refresh"),
    (5, 1, "Mother's Day gifts she'll use every day", "/collections/gifts", "mothers_day"),
    (6, 12, "Summer grilling essentials", "/collections/cookware", "summer_grilling"),
    (7, 10, "Mid-summer sale starts today", "/collections/sale", "summer_sale"),
    (8, 20, "Back to school: the dorm kitchen", "/collections/small-appliances", "back_to_school"),
    (9, 18, "Autumn baking season", "/collections/bakeware", "autumn_baking"),
    (10, 16, "Cosy bedding week", "/collections/bedding", "bedding_week"),
)
_NEWSLETTER_SUBJECTS: Final = (
    "Kitchen Notes: one-pan dinners for busy weeks", "Kitchen Notes: the secret to crispy skin",
    "Kitchen Notes: meet our new Dutch oven colours", "Kitchen Notes: 5 ways with leftover bread",
    "Kitchen Notes: how our pillows are made", "Kitchen Notes: coffee at home, but better",
    "Kitchen Notes: seasonal produce guide", "Kitchen Notes: knife skills in ten minutes",
    "Kitchen Notes: customer favourites this month", "Kitchen Notes: sous vide for beginners",
)
_NEWSLETTER_PATHS: Final = (
    "/journal/how-to-season-cast-iron", "/journal/sous-vide-steak-guide",
    "/collections/cookware", "/journal/sourdough-for-beginners", "/journal/choosing-a-pillow",
    "/collections/coffee-tea", "/collections/new-in", "/journal/knife-care-101",
)


# --------------------------------------------------------------------------------------------
# Free text: survey comments, reviews, support transcripts, social posts
# --------------------------------------------------------------------------------------------

_COMMENT_PHRASES: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "delivery": {
        "pos": ("delivery was faster than promised", "it arrived a day early and really well "
                "packed", "the courier updates were spot on", "next-day delivery actually "
                "arrived the next day"),
        "neu": ("delivery took about as long as expected", "the parcel arrived fine, though "
                "the tracking was a bit vague", "delivery was OK but the time slot was huge"),
        "neg": ("my order arrived {late} days late", "the delivery was late and tracking never "
                "updated", "I had to chase the courier twice to get my parcel", "the parcel was "
                "left outside in the rain"),
    },
    "price": {
        "pos": ("great value for the quality", "the sale prices were genuinely good",
                "fair prices compared to other shops"),
        "neu": ("prices are a bit high but mostly fair", "OK value, I waited for the sale",
                "shipping costs add up on small orders"),
        "neg": ("way too expensive for what you get", "the shipping cost was ridiculous",
                "the discount code didn't work so I paid full price"),
    },
    "quality": {
        "pos": ("the {product} feels really solid", "beautiful finish on the {product}",
                "the {product} is the best thing in my kitchen", "you can tell the {product} "
                "is built to last"),
        "neu": ("the {product} is fine, nothing special", "decent quality, a little lighter "
                "than I expected", "the {product} does the job"),
        "neg": ("the {product} scratched after one week", "the {product} arrived with a dent",
                "quality isn't what it used to be", "the handle on the {product} came loose"),
    },
    "support": {
        "pos": ("the support agent sorted it out in minutes", "customer service was friendly "
                "and quick", "{agent} on chat was brilliant"),
        "neu": ("support got there in the end", "it took a couple of messages but it was "
                "resolved", "support was polite but slow"),
        "neg": ("nobody from support got back to me", "I explained the problem three times and "
                "it's still not fixed", "I waited 40 minutes on the phone"),
    },
    "app": {
        "pos": ("the app makes reordering super easy", "I love the recipes in the app",
                "checkout in the app is quick"),
        "neu": ("the app works but could be faster", "the app is OK, search could be better"),
        "neg": ("the app keeps logging me out", "the app crashed at checkout",
                "I couldn't find my order in the app"),
    },
    "checkout": {
        "pos": ("checkout was quick and simple", "paying with Apple Pay took seconds",
                "checkout was painless"),
        "neu": ("checkout was fine but it asked for my address twice",
                "checkout was OK, a few too many steps"),
        "neg": ("checkout kept rejecting my card", "there are far too many steps at checkout",
                "I had to create an account just to pay"),
    },
}
_OPENERS: Final = {
    "pos": ("", "", "Really happy - ", "Great experience: ", "Love it! "),
    "neu": ("", "", "Overall ", "Mixed feelings: "),
    "neg": ("", "", "Disappointed. ", "Not great - ", "Honestly, "),
}
_CLOSERS: Final = {
    "pos": ("", "", " Will definitely order again.", " Thanks!", " Already recommended you "
            "to friends."),
    "neu": ("", "", " Could be better.", " Might order again."),
    "neg": ("", "", " Won't be ordering again.", " Please fix this.", " Very frustrating."),
}
_REVIEW_TITLES: Final = {
    5: ("Absolutely love it", "Worth every penny", "Best purchase this year", "Five stars"),
    4: ("Really good", "Very happy overall", "Great, with one small niggle"),
    3: ("It's fine", "Does the job", "Average"),
    2: ("Disappointing", "Not as described", "Expected better"),
    1: ("Avoid", "Broke quickly", "Very poor"),
}

# reason -> (subjects, transcript excerpts, category, priority)
_SUPPORT: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...], str, str]]] = {
    "late_delivery": (
        ("Where is my order {order}?", "Order {order} still not delivered",
         "Delivery delayed - order {order}"),
        ("Customer: My order {order} was due days ago and the tracking hasn't moved. Agent "
         "{agent}: I'm sorry about that, I've opened a trace with the carrier.",
         "Customer: Still no sign of my parcel. Agent {agent}: I can see it's stuck at the depot, "
         "I'll send a replacement if it hasn't arrived by Friday.",
         "Customer: I needed this for the weekend. Agent {agent}: I understand, let me check "
         "with the courier and get back to you today."),
        "delivery", "normal",
    ),
    "damaged": (
        ("{product} arrived damaged", "Damaged item in order {order}",
         "Broken {product} - need a replacement"),
        ("Customer: The {product} arrived with a cracked lid. Agent {agent}: That's not "
         "right, I'll send a replacement straight away.",
         "Customer: The box was crushed and the {product} is dented. Agent {agent}: Could you "
         "send a photo? I'll arrange a refund or a new one.",
         "Customer: Opened the parcel and the {product} is broken. Agent {agent}: I'm so sorry, "
         "a courier will collect it tomorrow."),
        "product_quality", "high",
    ),
    "promo": (
        ("Discount code not working", "Promo code rejected at checkout"),
        ("Customer: The code from your email says it's invalid. Agent {agent}: It excludes sale "
         "items, but I've applied it manually to your order.",
         "Customer: I was charged full price even though I used a code. Agent {agent}: I've "
         "refunded the difference."),
        "billing", "low",
    ),
    "app_login": (
        ("Can't log in to the app", "App keeps logging me out"),
        ("Customer: The app says my password is wrong but it works on the website. Agent "
         "{agent}: Please update to the latest version, we fixed a login bug last week.",
         "Customer: I get logged out every time I open the app. Agent {agent}: Thanks, I've "
         "passed this to our app team and reset your session."),
        "app", "normal",
    ),
    "device": (
        ("SmartSous won't connect to Wi-Fi", "Precision cooker shows error E42"),
        ("Customer: The cooker won't pair with my phone. Agent {agent}: Hold the power button "
         "for ten seconds to reset it, then try pairing again.",
         "Customer: It shows E42 halfway through cooking. Agent {agent}: E42 means the water "
         "level is low, but if it happens when full we'll replace the unit."),
        "device", "normal",
    ),
    "presales": (
        ("Question about the {product}", "Is the {product} induction compatible?",
         "Bulk order enquiry"),
        ("Customer: Does the {product} work on induction? Agent {agent}: Yes, every pan in "
         "that range is induction ready.",
         "Customer: What's the warranty on the {product}? Agent {agent}: It's covered for five "
         "years, and for life against manufacturing defects."),
        "pre_sales", "low",
    ),
    "billing": (
        ("Charged twice for order {order}", "Refund not received for {order}"),
        ("Customer: I see two charges on my card for the same order. Agent {agent}: One is a "
         "pre-authorisation that drops off within three days.",
         "Customer: I returned the item two weeks ago and have no refund yet. Agent {agent}: "
         "I've chased our returns team and issued it now."),
        "billing", "high",
    ),
}

_SOCIAL_POSITIVE: Final = (
    "Obsessed with my new {product} from @juniperandoak",
    "Sunday roast sorted with the {product} @juniperandoak",
    "Honestly the best customer service, thanks @juniperandoak",
    "Gifted my sister the {product} and now she wants one of everything @juniperandoak",
    "The @juniperandoak {product} is worth the hype",
)
_SOCIAL_NEGATIVE: Final = (
    "@juniperandoak my order is a week late and nobody is answering. Not impressed.",
    "Third email to @juniperandoak support and still no reply about my broken {product}.",
    "@juniperandoak why does your app log me out every single time?",
    "Paid for next-day delivery from @juniperandoak, still waiting five days later.",
)
_SOCIAL_PLATFORMS: Final = ("instagram", "x", "tiktok", "facebook", "reddit")


# --------------------------------------------------------------------------------------------
# Time: seasonality and time of day
# --------------------------------------------------------------------------------------------

_MONTH_WEIGHT: Final = {
    1: 0.9, 2: 0.75, 3: 0.85, 4: 0.85, 5: 0.9, 6: 0.85, 7: 0.95, 8: 0.85, 9: 0.9, 10: 1.0,
    11: 1.45, 12: 1.6,
}
_WEEKDAY_WEIGHT: Final = (0.95, 0.95, 0.95, 1.0, 1.0, 1.1, 1.15)  # Monday first
# Local-time activity by hour: lunchtime bump, evening peak.
_HOUR_WEIGHT: Final = (
    0.3, 0.15, 0.08, 0.05, 0.05, 0.1, 0.3, 0.6, 0.9, 1.0, 1.0, 1.1, 1.3, 1.2, 1.0, 1.0, 1.1,
    1.2, 1.4, 1.7, 1.9, 1.8, 1.3, 0.7,
)
_HOUR_CUM: Final = tuple(sum(_HOUR_WEIGHT[: i + 1]) for i in range(24))


def _black_friday(year: int) -> date:
    """The day after the fourth Thursday of November."""
    first = date(year, 11, 1)
    first_thursday = first + timedelta(days=(3 - first.weekday()) % 7)
    return first_thursday + timedelta(days=22)


def _day_weight(day: date) -> float:
    weight = _MONTH_WEIGHT[day.month] * _WEEKDAY_WEIGHT[day.weekday()]
    black_friday = _black_friday(day.year)
    offset = (day - black_friday).days
    if offset in (0, 3):  # Black Friday and Cyber Monday
        weight *= 3.0
    elif -7 <= offset <= 4:
        weight *= 1.6
    if day.month == 12:
        if day.day <= 18:
            weight *= 1.25
        elif day.day in (24, 25):
            weight *= 0.5
        elif day.day == 26:
            weight *= 1.6
    if day.month == 1 and day.day <= 10:
        weight *= 1.2
    return weight


def _message_id(name: str) -> str:
    """``str(uuid.uuid5(_NS, name))`` without building a UUID object (3x faster; this runs
    for every one of ~450k messages)."""
    digest = bytearray(hashlib.sha1(_NS_BYTES + name.encode(), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _iso(ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds") + "Z"


# --------------------------------------------------------------------------------------------
# World (shared, read-only) and personas
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Campaign:
    ms: int
    campaign_id: str
    name: str
    subject: str
    path: str
    newsletter: bool
    first_of_month: bool  # monthly-digest subscribers only get these newsletters


class _World:
    """Everything shared by all customers: calendar weights, prices, campaigns."""

    def __init__(self, config: DemoConfig) -> None:
        self.seed = config.seed
        self.days = config.days
        self.end = config.days * _DAY
        self.start_ms = int(config.start.timestamp() * 1000)
        # Day i of the simulation starts at the start instant, not at midnight UTC; local
        # hours of day must be measured from midnight.
        self.start_of_day = self.start_ms % _DAY
        first_day = config.start.date()
        # Fractional first day: treat the start instant as the beginning of day 0.
        self.day_cum: list[float] = []
        total = 0.0
        for i in range(config.days):
            total += _day_weight(first_day + timedelta(days=i))
            self.day_cum.append(total)
        self.prices: dict[str, dict[str, float]] = {
            country.currency: {p.product_id: _local_price(p.price, country) for p in _CATALOG}
            for country in _COUNTRIES
        }
        self.campaigns = self._campaigns(config)
        self.campaign_ms = [c.ms for c in self.campaigns]
        rng = random.Random(f"cxm-demo:{config.seed}:firmware")
        self.firmware: list[tuple[int, str]] = []
        version = 14
        t = rng.randrange(20 * _DAY, 60 * _DAY)
        while t < self.end:
            self.firmware.append((t, f"2.{version}.0"))
            version += 1
            t += rng.randrange(45 * _DAY, 80 * _DAY)

    def _campaigns(self, config: DemoConfig) -> list[_Campaign]:
        campaigns: list[_Campaign] = []
        start_day = config.start.date()
        end_day = start_day + timedelta(days=config.days)
        # Weekly newsletter, Thursdays 14:00 UTC.
        day = start_day + timedelta(days=(3 - start_day.weekday()) % 7)
        issue = 1
        seen_months: set[tuple[int, int]] = set()
        while day < end_day:
            ms = self._ms(day, 14)
            if ms >= 0:
                first = (day.year, day.month) not in seen_months
                seen_months.add((day.year, day.month))
                subject = _NEWSLETTER_SUBJECTS[(issue - 1) % len(_NEWSLETTER_SUBJECTS)]
                campaigns.append(_Campaign(
                    ms, f"cmp_{day:%Y%m%d}_newsletter", f"Kitchen Notes #{issue}", subject,
                    _NEWSLETTER_PATHS[(issue - 1) % len(_NEWSLETTER_PATHS)], True, first,
                ))
                issue += 1
            day += timedelta(days=7)
        for year in range(start_day.year, end_day.year + 1):
            black_friday = _black_friday(year)
            for month, day_of_month, subject, path, key in _PROMOS:
                if month == 11 and day_of_month <= 0:
                    send = black_friday + timedelta(days=day_of_month)
                elif month == 12 and day_of_month < 0:
                    send = black_friday + timedelta(days=3)
                else:
                    send = date(year, month, day_of_month)
                if not start_day <= send < end_day:
                    continue
                ms = self._ms(send, 9)
                name = key.replace("_", " ").title() + f" {send.year}"
                campaigns.append(_Campaign(ms, f"cmp_{send:%Y%m%d}_{key}", name, subject, path,
                                           False, False))
        campaigns.sort(key=lambda c: c.ms)
        return campaigns

    def _ms(self, day: date, hour: int) -> int:
        moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        return int(moment.timestamp() * 1000) - self.start_ms

    def mass(self, lo: int, hi: int) -> float:
        """The share of the year's seasonal weight between two instants (ms from start)."""
        lo = max(lo, 0)
        hi = min(hi, self.end)
        if hi <= lo:
            return 0.0
        cum = self.day_cum
        lo_day = lo // _DAY
        below = cum[lo_day - 1] if lo_day else 0.0
        return (cum[(hi - 1) // _DAY] - below) / cum[-1] * (self.days / 365)

    def when(self, rng: random.Random, lo: int, hi: int, offset: float) -> int | None:
        """A seasonal, local-time-of-day weighted instant in ``[lo, hi)`` (ms from start)."""
        lo = max(lo, 0)
        hi = min(hi, self.end)
        if hi - lo < _MIN:
            return None
        cum = self.day_cum
        lo_day = lo // _DAY
        hi_day = (hi - 1) // _DAY
        base = cum[lo_day - 1] if lo_day else 0.0
        point = base + rng.random() * (cum[hi_day] - base)
        day = min(max(bisect.bisect_left(cum, point), lo_day), hi_day)
        hour = bisect.bisect_left(_HOUR_CUM, rng.random() * _HOUR_CUM[-1])
        t = day * _DAY - self.start_of_day + int((hour - offset) * _HOUR) + rng.randrange(_HOUR)
        if not lo <= t < hi:
            t = lo + rng.randrange(hi - lo)
        return t


def _local_price(usd: float, country: _Country) -> float:
    """Charm pricing in local currency (JPY in whole hundreds)."""
    value = usd * country.rate
    if country.currency == "JPY":
        return float(round(value / 100) * 100)
    if value < 10:
        return round(value, 2)
    return float(int(value)) + 0.99 - (1.0 if value - int(value) < 0.5 else 0.0)


@dataclass(frozen=True, slots=True)
class _Persona:
    index: int
    first_name: str
    last_name: str
    email: str
    crm_email: str  # how the CRM stored it: sometimes different case or stray whitespace
    phone: str | None
    country: _Country
    city: _City
    street: str
    postal_code: str
    user_id: str
    segment: str  # visitor, lead, one_time, repeat, loyal
    existing: bool  # customer since before the simulated year
    signup_ms: int
    first_seen_ms: int
    crm_id: str | None
    company: int | None  # index into _B2B_COMPANIES
    favourites: tuple[str, ...]
    preferences: tuple[tuple[str, str], ...]
    browser: int
    handset: int


_SEGMENTS: Final = ("visitor", "lead", "one_time", "repeat", "loyal")
_SEGMENT_CUM: Final = (0.28, 0.42, 0.72, 0.92, 1.0)
# Share of each segment already a customer before the simulated year: a retailer's revenue is
# mostly returning customers, and that base is what makes the holiday peak visible.
_EXISTING_P: Final = {"visitor": 0.0, "lead": 0.15, "one_time": 0.2, "repeat": 0.5, "loyal": 0.75}


def _phone(rng: random.Random, country: _Country, city: _City) -> tuple[str, str] | None:
    """A number in a range reserved for fiction (NANP 555-01xx, Ofcom drama numbers, ACMA and
    ARCEP fiction ranges) so the demo never holds a real person's number, written the many ways
    people type phone numbers. Returns (as typed, digits key for uniqueness)."""
    if not city.phones:
        return None
    prefix = rng.choice(city.phones)
    roll = rng.random()
    if country.code in ("US", "CA"):
        line = f"01{rng.randrange(100):02d}"
        key = f"1{prefix}555{line}"
        if roll < 0.35:
            return f"({prefix}) 555-{line}", key
        if roll < 0.5:
            return f"{prefix}-555-{line}", key
        if roll < 0.7:
            return f"+1{prefix}555{line}", key
        if roll < 0.85:
            return f"+1 {prefix} 555 {line}", key
        if roll < 0.95:
            return f"{prefix}.555.{line}", key
        return f"+1 ({prefix}) 555-{line}", key
    calling = {"GB": "44", "AU": "61", "FR": "33"}[country.code]
    if country.code == "GB":
        national = f"{prefix}{rng.randrange(1000):03d}"
    elif country.code == "AU":
        national = f"{prefix} {rng.randrange(10000):04d}"
    else:
        rest = rng.randrange(10000)
        national = f"{prefix} {rest // 100:02d} {rest % 100:02d}"
    compact = national.replace(" ", "")
    key = calling + compact
    if roll < 0.5:
        return f"+{calling} {national}", key
    if roll < 0.75:
        return f"+{calling}{compact}", key
    first, _, remainder = national.partition(" ")
    return f"+{calling} (0){first} {remainder}", key


def _email_local(rng: random.Random, first: str, last: str) -> str:
    f = _handle(first)
    s = _handle(last)
    roll = rng.random()
    if roll < 0.35:
        return f"{f}.{s}"
    if roll < 0.5:
        return f"{f}{s}"
    if roll < 0.62:
        return f"{f[0]}{s}"
    if roll < 0.7:
        return f"{f}_{s}"
    if roll < 0.82:
        return f"{f}.{s}{rng.randint(1, 99)}"
    if roll < 0.9:
        return f"{f}{rng.choice(range(60, 106)) % 100:02d}"
    if roll < 0.95:
        return f"{s}.{f}"
    return f"{f}.{s[0]}"


def _crm_email(rng: random.Random, email: str, first: str, last: str) -> str:
    local, _, domain = email.partition("@")
    roll = rng.random()
    if roll < 0.45:
        return email
    if roll < 0.7:
        pretty = local.replace(_handle(first), _handle(first).capitalize(), 1)
        pretty = pretty.replace(_handle(last), _handle(last).capitalize(), 1)
        return f"{pretty}@{domain}"
    if roll < 0.8:
        return email.upper()
    if roll < 0.9:
        return f"{local}@{domain.capitalize()}"
    return f" {email} " if rng.random() < 0.5 else f"{email} "


def _personas(config: DemoConfig, world: _World) -> Iterator[_Persona]:
    """One global pass so emails and phone numbers are unique across the population (distinct
    people sharing an identifier would be merged by identity resolution)."""
    rng = random.Random(f"cxm-demo:{config.seed}:personas")
    world_end = config.days * _DAY
    used_emails: set[str] = set()
    used_phones: set[str] = set()
    company_members = [0] * len(_B2B_COMPANIES)
    for index in range(config.customers):
        first = rng.choice(_FIRST_NAMES)
        last = rng.choice(_LAST_NAMES)
        country = _COUNTRIES[bisect.bisect_right(_COUNTRY_CUM, rng.randrange(_COUNTRY_CUM[-1]))]
        city = rng.choice(country.cities)
        segment = _SEGMENTS[bisect.bisect_right(_SEGMENT_CUM, rng.random())]
        company: int | None = None
        if segment in ("one_time", "repeat", "loyal") and rng.random() < 0.06:
            company = rng.randrange(len(_B2B_COMPANIES))
            company_members[company] += 1
        domain = (
            _B2B_COMPANIES[company][1] if company is not None
            else rng.choices(_EMAIL_DOMAINS, _EMAIL_DOMAIN_WEIGHTS)[0]
        )
        local = _email_local(rng, first, last)
        email = f"{local}@{domain}"
        while email in used_emails:
            email = f"{local}{rng.randint(2, 999)}@{domain}"
        used_emails.add(email)
        phone: str | None = None
        if rng.random() < 0.78:
            for _ in range(8):
                typed = _phone(rng, country, city)
                if typed is None:
                    break
                if typed[1] not in used_phones:
                    used_phones.add(typed[1])
                    phone = typed[0]
                    break
        existing = rng.random() < _EXISTING_P[segment]
        if existing:
            # Regulars show up within weeks; occasional customers whenever they need something.
            signup = -rng.randrange(30, 1100) * _DAY - rng.randrange(_DAY)
            horizon = 7 * _DAY if segment in ("repeat", "loyal") else world_end
            first_seen = world.when(rng, 0, horizon, city.offset) or 0
        else:
            # Acquisition follows the shopping calendar (Black Friday, holidays, sales).
            signup = world.when(rng, 0, world_end, city.offset) or 0
            first_seen = signup
        postal = city.postcode + (
            f"{rng.randrange(100):02d}" if city.postcode.isdigit() else f" {rng.randrange(10)}"
            f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
        )
        yield _Persona(
            index=index, first_name=first, last_name=last, email=email,
            crm_email=_crm_email(rng, email, first, last), phone=phone, country=country,
            city=city, street=f"{rng.randint(1, 240)} {rng.choice(country.streets)}",
            postal_code=postal, user_id=f"usr_{rng.getrandbits(48):012x}", segment=segment,
            existing=existing, signup_ms=signup, first_seen_ms=first_seen,
            crm_id=(
                f"CRM-{index + 1:06d}" if segment != "visitor" and rng.random() < 0.21 else None
            ),
            company=company, favourites=tuple(rng.sample(_CATEGORIES, 3)),
            preferences=tuple((k, rng.choice(v)) for k, v in _PREFERENCE_CHOICES.items()),
            browser=rng.choices(range(len(_WEB_BROWSERS)), _WEB_BROWSER_WEIGHTS)[0],
            handset=rng.choices(range(len(_PHONES)), _PHONE_WEIGHTS)[0],
        )


# --------------------------------------------------------------------------------------------
# Surfaces (where a message is sent from) and records
# --------------------------------------------------------------------------------------------


class _Surface:
    """A context template for one source: a browser, a phone, or a server-side system.

    Rendering copies the template (and its nested dicts) so callers may mutate what
    :func:`generate` yields without corrupting later messages.
    """

    __slots__ = ("template",)

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template

    def render(self) -> dict[str, Any]:
        return {k: (v.copy() if type(v) is dict else v) for k, v in self.template.items()}


def _server(channel: str, library: str, version: str, integration: str = "") -> _Surface:
    template: dict[str, Any] = {"library": {"name": library, "version": version},
                                "channel": channel}
    if integration:
        template["integration"] = {"name": integration, "version": "1.0.0"}
    return _Surface(template)


_SERVER: Final = {
    "web": _server("web", "analytics-python", "2.3.4"),
    "app": _server("app", "analytics-python", "2.3.4"),
    "store": _server("store", "analytics-java", "3.5.1", "tillpoint-pos"),
    "email": _server("email", "analytics-node", "6.2.0", "mailsmith"),
    "support": _server("support", "analytics-node", "6.2.0", "helpdeskly"),
    "chat": _server("chat", "analytics-node", "6.2.0", "helpdeskly"),
    "phone": _server("phone", "analytics-node", "6.2.0", "helpdeskly"),
    "survey": _server("survey", "analytics-python", "2.3.4", "pulsepoll"),
    "social": _server("social", "analytics-node", "6.2.0", "socialscope"),
}

# (ms, customer, seq, type, name, userId, anonymousId, body, surface, page, top-level extras,
#  context extras). Page is (path, search, title, referrer).
_Page = tuple[str, str, str, str]
_Record = tuple[
    int, int, int, str, str, str | None, str | None, dict[str, Any] | None, _Surface,
    _Page | None, dict[str, Any] | None, dict[str, Any] | None,
]


def _render(record: _Record, seed: int, start_ms: int) -> Message:
    ms, customer, seq, kind, name, user_id, anonymous_id, body, surface, page, top, extra = record
    message: Message = {
        "type": kind,
        "messageId": _message_id(f"{seed}:{customer}:{seq}"),
        "timestamp": _iso(start_ms + ms),
    }
    if user_id is not None:
        message["userId"] = user_id
    if anonymous_id is not None:
        message["anonymousId"] = anonymous_id
    context = surface.render()
    if page is not None:
        path, search, title, referrer = page
        page_fields = {"path": path, "referrer": referrer, "search": search, "title": title,
                       "url": SITE + path + search}
        context["page"] = page_fields
    if kind == "track":
        message["event"] = name
        message["properties"] = body if body is not None else {}
    elif kind == "page":
        message["name"] = name
        props = {"name": name, **context["page"]} if page is not None else {"name": name}
        if body:
            props.update(body)
        message["properties"] = props
    elif kind == "screen":
        message["name"] = name
        message["properties"] = body if body is not None else {}
    elif kind in ("identify", "group"):
        message["traits"] = body if body is not None else {}
    if top:
        message.update(top)
    if extra:
        context.update(extra)
    message["context"] = context
    return message


class _Device:
    """A browser or app install: its own anonymousId, and whether someone has logged in."""

    __slots__ = ("anon", "app", "logged_in", "page", "surface", "url")

    def __init__(self, surface: _Surface, anon: str, app: bool) -> None:
        self.surface = surface
        self.anon = anon
        self.app = app
        self.logged_in = False
        self.page: _Page | None = None
        self.url = ""


@dataclass(slots=True)
class _Order:
    order_id: str
    items: list[tuple[_Product, int]]
    channel: str
    coupon: str | None = None


# --------------------------------------------------------------------------------------------
# One customer's year
# --------------------------------------------------------------------------------------------


class _Journey:
    """Plays one persona's year into compact records (see :data:`_Record`)."""

    def __init__(self, world: _World, persona: _Persona) -> None:
        self.w = world
        self.p = persona
        self.rng = random.Random(f"cxm-demo:{world.seed}:journey:{persona.index}")
        self.out: list[_Record] = []
        self.seq = 0
        self.end = world.end
        self.offset = persona.city.offset
        self.currency = persona.country.currency
        self.prices = world.prices[self.currency]
        rng = self.rng
        segment = persona.segment
        self.satisfaction = max(-0.2, min(1.0, rng.gauss(0.45, 0.25)))
        self.churned_at: int | None = None
        self.app_user = rng.random() < {"lead": 0.05, "one_time": 0.12, "repeat": 0.35,
                                        "loyal": 0.7}.get(segment, 0.0)
        self.iot = rng.random() < {"one_time": 0.02, "repeat": 0.05, "loyal": 0.15}.get(
            segment, 0.0)
        self.app_user = self.app_user or self.iot  # the cooker is paired through the app
        self.loyalty = rng.random() < {"lead": 0.2, "one_time": 0.3, "repeat": 0.6,
                                       "loyal": 1.0}.get(segment, 0.0)
        self.subscriber = rng.random() < {"repeat": 0.1, "loyal": 0.4}.get(segment, 0.0)
        self.second_browser = rng.random() < {"repeat": 0.25, "loyal": 0.5}.get(segment, 0.0)
        self.marketing = rng.random() < 0.6
        self.sms = persona.phone is not None and rng.random() < 0.3
        self.frequency = "weekly" if rng.random() < 0.35 else "monthly"
        self.engagement = rng.betavariate(2, 4)  # email open propensity
        self.points = 0
        self.tier = "bronze"
        self.tickets = 0
        self.crm_contacts = 0
        self.orders_done = 0
        self.unsubscribed_at: int | None = None
        self.devices: list[_Device] = []
        self.app: _Device | None = None
        self.app_installed_at: int | None = None
        # Locals shop in their store often; others now and then, when in a city with one.
        local = _STORE_BY_CITY.get(persona.city.name)
        visiting = tuple(s for s in _STORES if _STORE_COUNTRY[s.store_id] == persona.country.code)
        self.store: _Store | None = local or (rng.choice(visiting) if visiting else None)
        self.store_p = 0.4 if local else 0.06
        self.last_order_ms = 0

    # -- plumbing --------------------------------------------------------------------------

    def emit(
        self, t: int, kind: str, name: str, user_id: str | None, anonymous_id: str | None,
        body: dict[str, Any] | None, surface: _Surface, page: _Page | None = None,
        top: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
    ) -> None:
        if 0 <= t < self.end:
            self.out.append((t, self.p.index, self.seq, kind, name, user_id, anonymous_id,
                             body, surface, page, top, extra))
            self.seq += 1

    def step(self, t: int, lo: int = 4, hi: int = 70) -> int:
        """Think time between two actions in a session."""
        return t + self.rng.randint(lo, hi) * _SEC + self.rng.randrange(_SEC)

    def uid(self, device: _Device) -> str | None:
        return self.p.user_id if device.logged_in else None

    def uuid4(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def short_id(self, prefix: str) -> str:
        return f"{prefix}_{self.rng.getrandbits(48):012x}"

    def active(self, t: int) -> bool:
        return self.churned_at is None or t < self.churned_at

    def cutoff(self) -> int:
        return self.end if self.churned_at is None else self.churned_at

    def money(self, value: float) -> float:
        return float(round(value)) if self.currency == "JPY" else round(value, 2)

    def new_web(self, browser: int) -> _Device:
        agent, width, height, density = _WEB_BROWSERS[browser]
        surface = _Surface({
            "library": dict(_WEB_LIBRARY), "userAgent": agent, "locale": self.p.country.locale,
            "timezone": self.p.city.tz,
            "screen": {"width": width, "height": height, "density": density},
        })
        device = _Device(surface, self.uuid4(), app=False)
        self.devices.append(device)
        return device

    def new_app(self) -> _Device:
        os_name, os_version, maker, model, ua_model, library, version, width, height, density = (
            _PHONES[self.p.handset]
        )
        device_id = self.uuid4()
        if os_name == "iOS":
            device_id = device_id.upper()
            agent = (f"JuniperOak/{_APP_VERSION[0]} ({ua_model}; iOS {os_version}; "
                     f"Scale/{density:.2f})")
        else:
            device_id = device_id.replace("-", "")[:16]
            agent = f"Dalvik/2.1.0 (Linux; U; Android {os_version}; {ua_model} Build/AP2A.240805)"
        surface = _Surface({
            "library": {"name": library, "version": version},
            "app": {"name": COMPANY, "version": _APP_VERSION[0], "build": _APP_VERSION[1],
                    "namespace": "example.juniperoak.app"},
            "device": {"id": device_id, "manufacturer": maker, "model": model,
                       "type": os_name.lower()},
            "os": {"name": os_name, "version": os_version},
            "screen": {"width": width, "height": height, "density": density},
            "network": {"wifi": self.rng.random() < 0.7, "cellular": True},
            "locale": self.p.country.locale, "timezone": self.p.city.tz, "userAgent": agent,
        })
        return _Device(surface, self.uuid4(), app=True)

    # -- primitive actions ---------------------------------------------------------------

    def view(
        self, t: int, device: _Device, name: str, path: str, title: str, search: str = "",
        referrer: str | None = None, props: dict[str, Any] | None = None,
    ) -> None:
        if device.app:
            self.emit(t, "screen", name, self.uid(device), device.anon, props or {},
                      device.surface)
            return
        page = (path, search, title + _SUFFIX, device.url if referrer is None else referrer)
        device.page = page
        device.url = SITE + path + search
        self.emit(t, "page", name, self.uid(device), device.anon, props, device.surface, page)

    def track(self, t: int, device: _Device, event: str, props: dict[str, Any],
              extra: dict[str, Any] | None = None) -> None:
        self.emit(t, "track", event, self.uid(device), device.anon, props, device.surface,
                  None if device.app else device.page, None, extra)

    def server(self, t: int, channel: str, event: str, props: dict[str, Any],
               email_trait: bool = True) -> None:
        """A back-office event about a known customer (userId, sometimes their email)."""
        extra = {"traits": {"email": self.p.email}} if email_trait else None
        self.emit(t, "track", event, self.p.user_id, None, props, _SERVER[channel], None, None,
                  extra)

    def product_props(self, product: _Product, **more: Any) -> dict[str, Any]:
        props: dict[str, Any] = {
            "product_id": product.product_id, "sku": product.sku, "name": product.name,
            "category": product.category, "brand": COMPANY,
            "price": self.prices[product.product_id], "currency": self.currency,
        }
        props.update(more)
        return props

    def line_items(self, items: Sequence[tuple[_Product, int]]) -> list[dict[str, Any]]:
        return [
            {"product_id": p.product_id, "sku": p.sku, "name": p.name, "category": p.category,
             "price": self.prices[p.product_id], "quantity": q, "position": i + 1}
            for i, (p, q) in enumerate(items)
        ]

    def pick_product(self, category: str | None = None) -> _Product:
        rng = self.rng
        if category is None:
            category = (rng.choice(self.p.favourites) if rng.random() < 0.6
                        else rng.choice(_CATEGORIES))
        choices = _BY_CATEGORY[category]
        return rng.choices(choices, [p.weight for p in choices])[0]

    # -- web and app sessions ------------------------------------------------------------

    def landing(self, t: int, device: _Device, source: str | None = None,
                target: str = "") -> int:
        """The first page of a web session (or an app open); returns the time after it."""
        rng = self.rng
        if device.app:
            self.track(t, device, "Application Opened",
                       {"from_background": rng.random() < 0.4, "version": _APP_VERSION[0],
                        "build": _APP_VERSION[1]})
            t = self.step(t, 1, 5)
            self.view(t, device, "Home", "", "")
            return self.step(t)
        if source is None:
            index = bisect.bisect_right(_SOURCE_CUM, rng.randrange(_SOURCE_CUM[-1]))
            key, _, referrer, utm_source, medium = _SOURCES[index]
        else:
            key, referrer, utm_source, medium = source, "", source, "email"
        search = ""
        extra: dict[str, Any] | None = None
        if utm_source:
            campaign = self.campaign_name(t, medium)
            search = f"?utm_source={utm_source}&utm_medium={medium}&utm_campaign={campaign}"
            extra = {"campaign": {"name": campaign, "source": utm_source, "medium": medium}}
            if medium in ("paid_social", "cpc"):
                content = f"{medium}_{rng.choice(('video', 'carousel', 'static', 'text'))}"
                extra["campaign"]["content"] = content
                search += f"&utm_content={content}"
        roll = rng.random()
        if target:
            path, title, name = target, _title_for(target), "Landing"
        elif key in ("google", "bing", "pinterest") and roll < 0.45:
            path, title = rng.choice(_JOURNAL)
            name = "Journal Article"
        elif roll < 0.55:
            product = self.pick_product()
            path, title, name = f"/products/{product.slug}", product.name, "Product"
        elif roll < 0.75:
            category = rng.choice(self.p.favourites)
            path, title, name = f"/collections/{_slugify(category)}", category, "Collection"
        else:
            path, title, name = "/", "Home & kitchen essentials", "Home"
        page = (path, search, title + _SUFFIX, referrer)
        device.page = page
        device.url = SITE + path + search
        self.emit(t, "page", name, self.uid(device), device.anon, None, device.surface, page,
                  None, extra)
        if name == "Home" and rng.random() < 0.3:
            self.track(self.step(t, 2, 8), device, "Promotion Viewed", {
                "promotion_id": "hero_" + self.campaign_name(t, "site"), "creative": "hero_banner",
                "name": "Homepage hero", "position": "home_top",
            })
        return self.step(t)

    def campaign_name(self, t: int, medium: str) -> str:
        moment = _EPOCH + timedelta(milliseconds=self.w.start_ms + t)
        if moment.month in (11, 12):
            season = "holiday"
        elif moment.month in (1, 2):
            season = "new_year"
        elif moment.month in (3, 4, 5):
            season = "spring"
        elif moment.month in (6, 7, 8):
            season = "summer"
        else:
            season = "autumn"
        kind = {"cpc": "search", "paid_social": "prospecting", "email": "crm"}.get(
            medium, "always_on")
        return f"{season}_{moment.year}_{kind}"

    def browse(self, t: int, device: _Device, products: int) -> tuple[int, list[_Product]]:
        """Search or a collection, then a few product pages."""
        rng = self.rng
        category = rng.choice(self.p.favourites) if rng.random() < 0.7 else rng.choice(
            _CATEGORIES)
        if rng.random() < 0.35:
            query = (rng.choice(_SEARCHES[category]) if rng.random() < 0.85
                     else rng.choice(_GENERIC_SEARCHES))
            self.track(t, device, "Products Searched", {"query": query})
            t = self.step(t, 1, 4)
            self.view(t, device, "Search Results", "/search", f'Search: "{query}"',
                      search="?q=" + query.replace(" ", "+"))
            list_id = "search_results"
        else:
            self.view(t, device, "Collection", f"/collections/{_slugify(category)}", category)
            list_id = _slugify(category)
        t = self.step(t, 1, 3)
        shown = _BY_CATEGORY[category][:6]
        self.track(t, device, "Product List Viewed", {
            "list_id": list_id, "category": category,
            "products": [{"product_id": p.product_id, "sku": p.sku, "name": p.name,
                          "price": self.prices[p.product_id], "position": i + 1}
                         for i, p in enumerate(shown)],
        })
        viewed: list[_Product] = []
        for _ in range(products):
            t = self.step(t, 5, 60)
            product = self.pick_product(category if rng.random() < 0.7 else None)
            self.view(t, device, "Product", f"/products/{product.slug}", product.name)
            self.track(t + rng.randrange(200, 1500), device, "Product Viewed",
                       self.product_props(product, url=SITE + f"/products/{product.slug}"))
            viewed.append(product)
        return self.step(t, 10, 120), viewed

    def cart(self, t: int, device: _Device, viewed: list[_Product],
             order: _Order | None, reach_checkout: bool) -> int:
        """Add to cart, view the cart, maybe start checkout, maybe complete the order."""
        rng = self.rng
        cart_id = self.short_id("cart")
        items = order.items if order is not None else self.basket(viewed)
        for product, quantity in items:
            self.track(t, device, "Product Added",
                       self.product_props(product, cart_id=cart_id, quantity=quantity))
            t = self.step(t, 5, 90)
        if len(items) == 1 and order is None and rng.random() < 0.1:
            product = items[0][0]
            self.track(t, device, "Product Removed",
                       self.product_props(product, cart_id=cart_id, quantity=items[0][1]))
            return self.step(t)
        self.view(t, device, "Cart", "/cart", "Your cart")
        self.track(self.step(t, 1, 3), device, "Cart Viewed",
                   {"cart_id": cart_id, "products": self.line_items(items)})
        t = self.step(t, 10, 90)
        if not reach_checkout:
            return t
        subtotal = sum(self.prices[p.product_id] * q for p, q in items)
        order_id = order.order_id if order is not None else self.order_number()
        self.view(t, device, "Checkout", "/checkout", "Checkout")
        self.track(self.step(t, 1, 3), device, "Checkout Started", {
            "order_id": order_id, "value": self.money(subtotal), "revenue": self.money(subtotal),
            "currency": self.currency, "products": self.line_items(items),
        })
        t = self.step(t, 30, 240)
        if order is None:
            return t
        method = rng.choice(("card", "card", "card", "apple_pay", "paypal", "google_pay"))
        self.track(t, device, "Payment Info Entered",
                   {"checkout_id": cart_id, "order_id": order_id, "payment_method": method})
        t = self.step(t, 5, 40)
        self.view(t, device, "Order Confirmation", "/checkout/thank-you", "Thank you")
        self.track(self.step(t, 1, 2), device, "Order Completed",
                   self.order_props(order, cart_id, "iOS/Android app" if device.app
                                    else "Online Store"))
        return self.step(t)

    def basket(self, viewed: list[_Product]) -> list[tuple[_Product, int]]:
        rng = self.rng
        pool = list(dict.fromkeys(viewed)) or [self.pick_product()]
        count = min(len(pool), 1 if rng.random() < 0.6 else rng.randint(2, 3))
        chosen = rng.sample(pool, count)
        b2b = self.p.company is not None
        return [(p, rng.randint(4, 12) if b2b else (1 if rng.random() < 0.85 else 2))
                for p in chosen]

    def order_number(self) -> str:
        self.orders_done += 1
        return f"JO-{self.p.index + 1:05d}-{self.orders_done:03d}"

    def order_props(self, order: _Order, checkout_id: str, affiliation: str) -> dict[str, Any]:
        rng = self.rng
        subtotal = sum(self.prices[p.product_id] * q for p, q in order.items)
        discount = 0.0
        if order.coupon:
            discount = subtotal * (0.1 if order.coupon.startswith("WELCOME") else 0.2)
        revenue = subtotal - discount
        rate = self.p.country.rate
        shipping = 0.0 if order.channel == "store" or revenue >= 75 * rate else 6.95 * rate
        if self.p.country.code in ("US", "CA"):
            tax = revenue * (0.0825 if self.p.country.code == "US" else 0.13)
            total = revenue + shipping + tax
        else:  # prices include VAT
            tax = revenue - revenue / 1.2
            total = revenue + shipping
        props: dict[str, Any] = {
            "checkout_id": checkout_id, "order_id": order.order_id, "affiliation": affiliation,
            "total": self.money(total), "subtotal": self.money(subtotal),
            "revenue": self.money(revenue), "shipping": self.money(shipping),
            "tax": self.money(tax), "discount": self.money(discount), "currency": self.currency,
            "products": self.line_items(order.items),
        }
        if order.coupon:
            props["coupon"] = order.coupon
        if rng.random() < 0.02:
            props["gift_wrap"] = True
        return props

    # -- the year ------------------------------------------------------------------------

    def run(self) -> None:
        p = self.p
        rng = self.rng
        web = self.new_web(p.browser)
        if p.segment == "visitor":
            self.visitor(web)
            return
        if p.existing:
            t = self.landing(p.first_seen_ms, web)
            t = self.login(t, web, full=True)
        else:
            t = self.discover_then_sign_up(web)
        if p.company is not None:
            self.group(self.step(t), web)
        first_active = max(t, 0)
        if self.app_user:
            installed = self.w.when(rng, first_active + _HOUR, first_active + 90 * _DAY,
                                    self.offset)
            if installed is not None:
                self.install_app(installed)
        self.orders(first_active, web)
        if self.subscriber:  # after orders: renewals stop when the customer churns
            self.subscription(first_active)
        if p.crm_id is not None and self.crm_contacts == 0:
            when = self.w.when(rng, first_active, self.cutoff(), self.offset)
            if when is not None:
                self.support_case(when, "presales", None, self.pick_product())
        if self.app is not None and self.app_installed_at is not None:
            self.app_usage(self.app, self.app_installed_at)
        self.marketing_emails(max(p.signup_ms, 0) + 2 * _DAY)
        self.advocacy(first_active)

    def visitor(self, web: _Device) -> None:
        rng = self.rng
        t = self.w.when(rng, 0, self.end, self.offset)
        if t is None:
            return
        for _ in range(1 if rng.random() < 0.65 else rng.randint(2, 3)):
            t = self.landing(t, web)
            if rng.random() < 0.6:
                t, viewed = self.browse(t, web, rng.randint(0, 3))
                if viewed and rng.random() < 0.2:
                    t = self.cart(t, web, viewed, None, rng.random() < 0.3)
            elif rng.random() < 0.5:
                path, title = rng.choice(_JOURNAL)
                self.view(t, web, "Journal Article", path, title)
            t += int(rng.expovariate(1 / (6 * _DAY)))

    def discover_then_sign_up(self, web: _Device) -> int:
        p = self.p
        rng = self.rng
        signup = p.signup_ms
        if rng.random() < 0.7:
            first = signup - int(rng.expovariate(1 / (4 * _DAY))) - _HOUR
            for _ in range(1 if rng.random() < 0.6 else 2):
                if first >= signup - 30 * _MIN:
                    break
                t = self.landing(first, web)
                t, viewed = self.browse(t, web, rng.randint(1, 4))
                if viewed and rng.random() < 0.25:
                    self.cart(t, web, viewed, None, False)
                first = first + int((signup - first) * rng.uniform(0.3, 0.9))
        t = self.landing(signup, web)
        self.view(t, web, "Create Account", "/account/register", "Create your account")
        t = self.step(t, 30, 120)
        web.logged_in = True
        consent_banner = p.country.code not in ("US", "CA", "AU", "JP") or rng.random() < 0.5
        extra = {"consent": {"categoryPreferences": {
            "necessary": True, "analytics": rng.random() < 0.85, "marketing": self.marketing,
            "advertising": self.marketing and rng.random() < 0.7,
        }}} if consent_banner else None
        self.emit(t, "identify", "", p.user_id, web.anon, self.full_traits(signup), web.surface,
                  web.page, None, extra)
        if rng.random() < 0.08:  # legacy alias() calls still in the signup flow
            self.emit(self.step(t, 0, 1), "alias", "", p.user_id, web.anon, None, web.surface,
                      web.page, {"previousId": web.anon})
        t = self.step(t, 1, 3)
        self.track(t, web, "Signed Up", {
            "method": rng.choice(("email", "email", "email", "google", "apple")),
            "source": rng.choice(("header", "checkout", "newsletter_popup", "account_page")),
        })
        for number, step_name in enumerate(("Set delivery address", "Choose your interests",
                                            "Join Oak Rewards")[: rng.randint(0, 3)]):
            t = self.step(t, 10, 60)
            self.track(t, web, "Onboarding Step Completed",
                       {"step": number + 1, "step_name": step_name})
        # Welcome email and verification.
        clicked = self.email(self.step(t, 30, 120), "Welcome to Juniper & Oak - please verify "
                             "your email", "Welcome series", "cmp_welcome_verify",
                             "transactional", 0.8, 0.75, "/account/verify")
        if clicked is not None:
            self.view(clicked + 2 * _SEC, web, "Verify Email", "/account/verify",
                      "Email verified", referrer="")
            self.track(clicked + 3 * _SEC, web, "Account Verified", {"method": "email_link"})
        return t

    def full_traits(self, signup: int) -> dict[str, Any]:
        p = self.p
        rng = self.rng
        traits: dict[str, Any] = {
            "email": p.email, "firstName": p.first_name, "lastName": p.last_name,
            "address": {"street": p.street, "city": p.city.name, "state": p.city.region,
                        "postalCode": p.postal_code, "country": p.country.code},
            "createdAt": _iso(self.w.start_ms + signup),
            "preferences": dict(p.preferences) | {
                "newsletter_frequency": self.frequency if self.marketing else "never",
                "favourite_category": p.favourites[0],
            },
            # research = may be surveyed (feedback.policy); from traits already drawn, so the
            # random stream (and every other generated value) stays as it was
            "consent": {"email": {"marketing": self.marketing, "service": True,
                                  "research": self.marketing or self.engagement > 0.35},
                        "sms": {"marketing": self.sms}},
            "plan": "business" if p.company is not None else "standard",
        }
        if p.phone is not None and rng.random() < 0.85:
            traits["phone"] = p.phone
        if self.loyalty:
            traits["loyalty_tier"] = self.tier
        if p.company is not None:
            name = _B2B_COMPANIES[p.company][0]
            traits["company"] = {"id": f"acct_{p.company + 1:04d}", "name": name}
        return traits

    def login(self, t: int, device: _Device, full: bool = False) -> int:
        """An existing customer signs in on a browser or app install not yet identified."""
        p = self.p
        self.view(t, device, "Sign In", "/account/login", "Sign in")
        t = self.step(t, 10, 40)
        device.logged_in = True
        traits: dict[str, Any] = {"email": p.email}
        if full:
            traits = self.full_traits(p.signup_ms)
            traits.pop("consent")
            if self.rng.random() < 0.5:
                traits.pop("preferences")
        elif self.rng.random() < 0.5:
            traits.update(firstName=p.first_name, lastName=p.last_name)
        self.emit(t, "identify", "", p.user_id, device.anon, traits, device.surface,
                  None if device.app else device.page)
        return self.step(t)

    def group(self, t: int, device: _Device) -> None:
        company = self.p.company
        assert company is not None
        name, domain, industry, employees = _B2B_COMPANIES[company]
        self.emit(t, "group", "", self.p.user_id, device.anon, {
            "name": name, "industry": industry, "employees": employees, "plan": "business",
            "website": f"https://www.{domain}",
        }, device.surface, device.page, {"groupId": f"acct_{company + 1:04d}"})

    def install_app(self, t: int) -> None:
        rng = self.rng
        app = self.new_app()
        self.track(t, app, "Application Installed",
                   {"version": _APP_VERSION[0], "build": _APP_VERSION[1]})
        t = self.step(t, 1, 5)
        self.track(t, app, "Application Opened",
                   {"from_background": False, "version": _APP_VERSION[0],
                    "build": _APP_VERSION[1]})
        self.view(self.step(t, 1, 4), app, "Welcome", "", "")
        t = self.step(t, 10, 60)
        if rng.random() < 0.25:  # browses before bothering to sign in
            t, _ = self.browse(t, app, rng.randint(1, 3))
        t = self.login(t, app)
        self.view(t, app, "Home", "", "")
        if self.p.phone is not None and rng.random() < 0.4:
            # Profile completed later, phone typed differently than on the website.
            typed = self.p.phone.replace("(0)", "")
            digits = "".join(ch for ch in typed if ch.isdigit() or ch == "+")
            phone = digits if digits.startswith("+") else "+1" + digits
            self.emit(self.step(t, 20, 90), "identify", "", self.p.user_id, app.anon,
                      {"phone": phone, "sms_opt_in": self.sms}, app.surface)
        self.app = app
        self.app_installed_at = t

    # -- orders and what follows them ----------------------------------------------------

    def order_times(self, first_active: int) -> list[int]:
        p = self.p
        rng = self.rng
        segment = p.segment
        if segment == "lead":
            return []
        per_year = 0.0
        if segment == "repeat":
            per_year = rng.uniform(1.5, 4.0)
        else:  # heavy tail: most of the loyal core order every month or two, a few every week
            per_year = min(40.0, 4.0 + rng.paretovariate(1.6) * 2.0)
        if not p.existing and rng.random() < 0.5:
            first = p.signup_ms + rng.randint(3, 25) * _MIN  # signed up at checkout
        else:
            first_when = self.w.when(rng, first_active + _HOUR,
                                     first_active + (30 if segment == "one_time" else 45) * _DAY,
                                     self.offset)
            if first_when is None:
                return []
            first = first_when
        times = [first]
        if segment == "one_time":
            return times
        # Orders arrive in proportion to the seasonal weight of the time left, so the holiday
        # peak shows and customers who join late in the year order less.
        expected = per_year * self.w.mass(first + 3 * _DAY, self.end)
        count = int(expected) + (rng.random() < expected - int(expected))
        for _ in range(count):
            when = self.w.when(rng, first + 3 * _DAY, self.end, self.offset)
            if when is not None:
                times.append(when)
        return sorted(times)

    def orders(self, first_active: int, web: _Device) -> None:
        rng = self.rng
        times = self.order_times(first_active)
        if not times:
            # Leads: a few more browsing sessions and abandoned carts.
            for _ in range(rng.randint(0, 3)):
                when = self.w.when(rng, first_active + _DAY, self.end, self.offset)
                if when is None:
                    break
                self.web_session(when, self.pick_device(web, when), cart=rng.random() < 0.4)
            return
        previous = first_active
        for number, when in enumerate(times):
            if not self.active(when):
                break
            device = self.pick_device(web, when)
            self.place_order(when, device, previous, first=number == 0)
            previous = when
            self.last_order_ms = when

    def pick_device(self, web: _Device, t: int) -> _Device:
        rng = self.rng
        if (self.app is not None and self.app_installed_at is not None
                and t > self.app_installed_at and rng.random() < 0.55):
            return self.app
        if self.second_browser and rng.random() < 0.35:
            if len(self.devices) < 2:
                mobile_browser = 3 if self.p.handset < 3 else 4
                other = self.new_web(mobile_browser if self.p.browser != mobile_browser else 0)
                return other
            return self.devices[1]
        return web

    def web_session(self, t: int, device: _Device, cart: bool) -> int:
        rng = self.rng
        t = self.landing(t, device)
        if not device.logged_in:
            t = self.login(t, device)
        t, viewed = self.browse(t, device, rng.randint(1, 2))
        if cart and viewed:
            t = self.cart(t, device, viewed, None, rng.random() < 0.45)
            if self.marketing and rng.random() < 0.5:
                self.email(t + rng.randint(1, 20) * _HOUR, "You left something in your cart",
                           "Abandoned cart", "cmp_abandoned_cart", "marketing", 0.5, 0.25,
                           "/cart")
        return t

    def place_order(self, when: int, device: _Device, previous: int, first: bool) -> None:
        rng = self.rng
        # Abandoned carts before the one that converts: ~65% of carts are never bought.
        abandoned = 0
        while abandoned < 5 and rng.random() < 0.7:
            abandoned += 1
        for _ in range(abandoned):
            t_cart = self.w.when(rng, max(previous + _HOUR, when - 14 * _DAY), when - _HOUR,
                                 self.offset)
            if t_cart is not None:
                self.web_session(t_cart, self.pick_device(device, t_cart), cart=True)
        items = self.basket([self.pick_product() for _ in range(rng.randint(1, 3))])
        if first and self.iot:
            items = [(rng.choice(_SMART), 1), *items[:1]]
        coupon = None
        if first and rng.random() < 0.3:
            coupon = "WELCOME10"
        elif rng.random() < 0.12:
            coupon = rng.choice(("OAK20", "FRIENDS20", "SEASON20"))
        in_store = (self.store is not None and not (first and self.iot)
                    and rng.random() < self.store_p)
        channel = "store" if in_store else ("app" if device.app else "web")
        order = _Order(self.order_number(), items, channel, coupon)
        if in_store:
            self.store_order(when, order)
            end_of_purchase = when
        else:
            t = self.landing(when, device)
            if not device.logged_in:
                t = self.login(t, device)
            t, _ = self.browse(t, device, rng.randint(0, 2))
            end_of_purchase = self.cart(t, device, [], order, True)
            if rng.random() < 0.12:
                self.survey(end_of_purchase + rng.randint(1, 10) * _MIN, "ces",
                            "Checkout CES", {"order_id": order.order_id},
                            theme="app" if device.app else "checkout", delta=0.15)
        self.email(end_of_purchase + rng.randint(1, 5) * _MIN,
                   f"Thanks for your order {order.order_id}", "Order confirmation",
                   "cmp_order_confirmation", "transactional", 0.65, 0.05, None)
        self.earn_points(end_of_purchase + 5 * _MIN, order, channel)
        if in_store:
            self.after_experience(end_of_purchase, order, late_days=0, channel=channel)
            return
        self.fulfil(end_of_purchase, order, channel)

    def store_order(self, when: int, order: _Order) -> None:
        """Point-of-sale: the loyalty card gives a userId; otherwise only the e-receipt email."""
        store = self.store
        assert store is not None
        props = self.order_props(order, self.short_id("pos"), f"Store: {store.name}")
        props.update(store_id=store.store_id, store_name=store.name,
                     payment_method=self.rng.choice(("card", "contactless", "cash")))
        if self.loyalty or self.rng.random() < 0.4:
            self.server(when, "store", "Order Completed", props, email_trait=False)
        else:
            self.emit(when, "track", "Order Completed", None, None, props, _SERVER["store"],
                      None, None, {"traits": {"email": self.p.email}})

    def fulfil(self, t: int, order: _Order, channel: str) -> None:
        rng = self.rng
        carrier = rng.choice(("UPS", "FedEx", "DHL", "Royal Mail", "DPD", "Canada Post"))
        shipped = t + rng.randint(4, 40) * _HOUR
        promised = shipped + rng.randint(2, 4) * _DAY
        tracking = f"1Z{rng.getrandbits(40):010X}"
        self.server(shipped, channel, "Order Shipped", {
            "order_id": order.order_id, "carrier": carrier, "tracking_number": tracking,
            "shipping_method": "standard", "estimated_delivery": _iso(self.w.start_ms
                                                                      + promised)[:10],
        })
        self.email(shipped + rng.randint(1, 10) * _MIN, f"Your order {order.order_id} is on its "
                   "way", "Shipping notification", "cmp_shipping", "transactional", 0.7, 0.3,
                   None)
        # Peak season stretches the carriers.
        day = (self.w.start_ms + shipped) // _DAY
        month = (_EPOCH + timedelta(days=day)).month
        late_p = 0.22 if month in (11, 12) else 0.1
        late_days = rng.randint(2, 9) if rng.random() < late_p else 0
        delivered = promised - rng.randint(0, 1) * _DAY + late_days * _DAY + rng.randrange(
            8 * _HOUR)
        if late_days and rng.random() < 0.55:  # "where is my order?" before it turns up
            latest = max(promised + 7 * _HOUR, delivered - _HOUR)
            self.support_case(rng.randint(promised + 6 * _HOUR, latest), "late_delivery", order,
                              order.items[0][0])
        self.server(delivered, channel, "Order Delivered", {
            "order_id": order.order_id, "carrier": carrier, "tracking_number": tracking,
            "on_time": late_days == 0, "days_late": late_days,
        })
        self.after_experience(delivered, order, late_days, channel)

    def after_experience(self, t: int, order: _Order, late_days: int, channel: str) -> None:
        rng = self.rng
        product = order.items[0][0]
        if late_days:
            self.adjust(t, -0.35)
        else:
            self.adjust(t, 0.05)
        if rng.random() < 0.04:
            self.adjust(t, -0.3)
            self.support_case(t + rng.randint(1, 30) * _HOUR, "damaged", order, product,
                              refund=True)
        elif rng.random() < 0.03:
            self.support_case(t + rng.randint(2, 10) * _DAY, rng.choice(("promo", "billing")),
                              order, product)
        if rng.random() < 0.3:
            invite = t + rng.randint(2, 4) * _DAY
            clicked = self.email(invite, "How did we do? 1 question, 10 seconds",
                                 "Post-purchase NPS invite", "cmp_nps_invite", "transactional",
                                 0.55, 0.45, "/survey/nps")
            if clicked is not None:
                self.survey(clicked + rng.randint(20, 120) * _SEC, "nps", "Post-purchase NPS",
                            {"order_id": order.order_id},
                            theme="delivery" if late_days or rng.random() < 0.3 else None,
                            product=product, late=late_days)
        if self.iot and product.smart and self.app is not None:
            self.smart_device(t + rng.randint(2, 48) * _HOUR, product)
        review_p = 0.08 + (0.12 if self.p.segment == "loyal" else 0.0)
        if rng.random() < review_p:
            self.review(t + rng.randint(3, 20) * _DAY, order, product)

    def adjust(self, t: int, delta: float) -> None:
        """Move satisfaction; bad experiences can make a customer walk away for good."""
        self.satisfaction = max(-1.0, min(1.0, self.satisfaction + delta))
        if (delta < 0 and self.churned_at is None and self.satisfaction < -0.1
                and self.rng.random() < 0.6):
            self.churned_at = t + self.rng.randint(1, 10) * _DAY
            if self.rng.random() < 0.35:
                self.social_post(self.churned_at - _DAY, positive=False)

    def earn_points(self, t: int, order: _Order, channel: str) -> None:
        if not self.loyalty:
            return
        revenue = sum(self.prices[p.product_id] * q for p, q in order.items)
        points = max(5, int(revenue / self.p.country.rate))
        self.points += points
        surface_channel = "store" if channel == "store" else channel
        self.server(t, surface_channel, "Loyalty Points Earned", {
            "points": points, "balance": self.points, "reason": "order",
            "order_id": order.order_id,
        }, email_trait=False)
        for threshold, tier in ((4000, "platinum"), (1500, "gold"), (500, "silver")):
            if self.points >= threshold:
                if tier != self.tier and _TIER_RANK[tier] > _TIER_RANK[self.tier]:
                    previous, self.tier = self.tier, tier
                    self.server(t + _SEC, surface_channel, "Loyalty Tier Upgraded",
                                {"from_tier": previous, "to_tier": tier,
                                 "balance": self.points}, email_trait=False)
                    self.emit(t + 2 * _SEC, "identify", "", self.p.user_id, None,
                              {"loyalty_tier": tier, "loyalty_points": self.points},
                              _SERVER[surface_channel])
                break

    # -- support, surveys, reviews -------------------------------------------------------

    def support_case(self, t: int, reason: str, order: _Order | None, product: _Product,
                     refund: bool = False) -> None:
        """A ticket, a chat or call about it, maybe a resolution, maybe a CSAT response.

        Customers known to the CRM are sent by it without a userId: only the ``crm_id``
        external id and the email as the CRM stored it.
        """
        p = self.p
        rng = self.rng
        if t >= self.end:
            return
        self.tickets += 1
        subjects, transcripts, category, priority = _SUPPORT[reason]
        values = {"order": order.order_id if order else "", "product": product.name,
                  "agent": rng.choice(_AGENTS)}
        subject = rng.choice(subjects).format(**values)
        ticket_id = f"TCK-{p.index + 1:05d}{self.tickets:02d}"
        base = {"ticket_id": ticket_id, "subject": subject}
        if order is not None:
            base["order_id"] = order.order_id

        def send(at: int, channel: str, event: str, props: dict[str, Any]) -> None:
            if p.crm_id is not None:
                self.crm_contacts += 1
                self.emit(at, "track", event, None, None, props, _SERVER[channel], None, None, {
                    "externalIds": [{"id": p.crm_id, "type": "crm_id", "collection": "users",
                                     "encoding": "none"}],
                    "traits": {"email": p.crm_email},
                })
            else:
                self.server(at, channel, event, props)

        how = rng.random()
        send(t, "support", "Ticket Created", base | {
            "category": category, "priority": priority,
            "via": "chat" if how < 0.4 else ("phone" if how < 0.7 else "web_form"),
        })
        t = self.step(t, 20, 300)
        excerpt = rng.choice(transcripts).format(**values)
        if how < 0.4:
            send(t, "chat", "Chat Started", base | {
                "conversation_id": self.short_id("conv"), "transcript_excerpt": excerpt,
                "wait_seconds": rng.randint(5, 600), "agent": values["agent"],
            })
        elif how < 0.7:
            send(t, "phone", "Call Completed", base | {
                "call_id": self.short_id("call"), "direction": "inbound",
                "duration_seconds": rng.randint(90, 1500), "transcript_excerpt": excerpt,
                "agent": values["agent"],
            })
        hard = reason in ("late_delivery", "damaged", "billing", "device")
        resolved = rng.random() < (0.75 if hard else 0.9)
        hours = rng.randint(1, 6) if reason == "presales" else rng.randint(2, 96)
        closed = t + hours * _HOUR
        if resolved:
            send(closed, "support", "Ticket Resolved", base | {
                "resolution": "refunded" if refund else rng.choice(
                    ("answered", "replacement_sent", "fixed", "answered")),
                "time_to_resolve_hours": hours,
            })
            if refund and order is not None:
                total = sum(self.prices[p_.product_id] * q for p_, q in order.items[:1])
                self.server(closed + _HOUR, order.channel, "Order Refunded", {
                    "order_id": order.order_id, "total": self.money(total),
                    "currency": self.currency, "reason": "damaged",
                })
            self.adjust(closed, 0.2 if hours < 24 else 0.05)
        else:
            self.adjust(closed + 5 * _DAY, -0.45)
        if rng.random() < 0.4:
            self.survey(closed + rng.randint(1, 24) * _HOUR, "csat", "Support CSAT",
                        {"ticket_id": ticket_id}, theme="support",
                        delta=(0.3 if resolved and hours < 24 else (-0.1 if resolved else -0.8)),
                        agent=values["agent"])

    def survey(self, t: int, kind: str, name: str, refs: dict[str, Any], theme: str | None,
               delta: float = 0.0, product: _Product | None = None, late: int = 0,
               agent: str = "") -> None:
        rng = self.rng
        s = max(-1.0, min(1.0, self.satisfaction + delta))
        if kind == "nps":
            score = round(6.8 + 3.4 * s + rng.gauss(0, 1.2))
            low, high = 0, 10
        elif kind == "csat":
            score = round(3.4 + 1.8 * s + rng.gauss(0, 0.6))
            low, high = 1, 5
        else:
            score = round(5.0 + 1.8 * s + rng.gauss(0, 0.9))
            low, high = 1, 7
        score = max(low, min(high, score))
        questions = {
            "nps": "How likely are you to recommend Juniper & Oak to a friend?",
            "csat": "How satisfied were you with the help you received?",
            "ces": "Juniper & Oak made it easy to complete my purchase.",
        }
        props: dict[str, Any] = {
            "survey_id": f"srv_{kind}_2025", "survey_name": name, "kind": kind, "score": score,
            "scale_min": low, "scale_max": high, "question": questions[kind],
            "response_id": self.short_id("resp"),
        }
        props.update(refs)
        if rng.random() < 0.4:
            ratio = (score - low) / (high - low)
            sentiment = "pos" if ratio >= 0.7 else ("neg" if ratio <= 0.45 else "neu")
            chosen = theme or rng.choice(("delivery", "price", "quality", "quality", "app"))
            also = {"nps": ("delivery", "price", "quality", "app"),
                    "ces": ("price",)}.get(kind, ())
            props["comment"] = self.comment(chosen, sentiment, product, late, agent, also)
        self.server(t, "survey", "Survey Responded", props)

    def comment(self, theme: str, sentiment: str, product: _Product | None, late: int,
                agent: str, also: tuple[str, ...] = ()) -> str:
        """Templated free text; ``also`` lists themes a second sentence may touch on."""
        rng = self.rng
        product = product or self.pick_product()
        values = {"product": product.name.lower(), "late": max(late, 2),
                  "agent": agent or rng.choice(_AGENTS)}
        phrases = [rng.choice(_COMMENT_PHRASES[theme][sentiment]).format(**values)]
        others = [k for k in also if k != theme]
        if others and rng.random() < 0.35:
            other = rng.choice(others)
            phrases.append(rng.choice(_COMMENT_PHRASES[other][sentiment]).format(**values))
        body = ". ".join(phrase[0].upper() + phrase[1:] for phrase in phrases) + "."
        opener = rng.choice(_OPENERS[sentiment])
        if opener and not opener.endswith((". ", "! ", ": ")):
            body = body[0].lower() + body[1:]
        return (opener + body + rng.choice(_CLOSERS[sentiment])).strip()

    def review(self, t: int, order: _Order, product: _Product) -> None:
        rng = self.rng
        if not self.active(t):
            return
        rating = max(1, min(5, round(3.6 + 1.6 * self.satisfaction + rng.gauss(0, 0.7))))
        sentiment = "pos" if rating >= 4 else ("neg" if rating <= 2 else "neu")
        device = self.app if self.app is not None and rng.random() < 0.4 else self.devices[0]
        if not device.logged_in:
            return
        if not device.app:
            self.view(t - 20 * _SEC, device, "Write a Review",
                      f"/account/orders/{order.order_id}/review", "Write a review", referrer="")
        self.track(t, device, "Review Submitted", {
            "review_id": self.short_id("rev"), "product_id": product.product_id,
            "product_name": product.name, "order_id": order.order_id, "rating": rating,
            "title": rng.choice(_REVIEW_TITLES[rating]),
            "text": self.comment("quality", sentiment, product, 0, "", ("price", "delivery")),
        })
        self.earn_bonus(t + _MIN, 50, "review")

    def earn_bonus(self, t: int, points: int, reason: str) -> None:
        if self.loyalty:
            self.points += points
            self.server(t, "web", "Loyalty Points Earned",
                        {"points": points, "balance": self.points, "reason": reason},
                        email_trait=False)

    # -- other streams -------------------------------------------------------------------

    def email(self, t: int, subject: str, campaign: str, campaign_id: str, kind: str,
              open_p: float, click_p: float, link: str | None) -> int | None:
        """Delivered, maybe opened, maybe clicked; returns the click time if clicked."""
        rng = self.rng
        if t >= self.end:
            return None
        email_id = f"em_{self.p.index + 1:05d}_{self.seq:05d}"
        props = {"email_id": email_id, "email_subject": subject, "campaign_id": campaign_id,
                 "campaign_name": campaign, "email_type": kind}
        self.server(t, "email", "Email Delivered", props)
        engaged = open_p * (0.5 + self.engagement)
        if not self.active(t):
            engaged *= 0.1
        if rng.random() >= engaged:
            return None
        opened = t + int(rng.expovariate(1 / (3 * _HOUR))) + rng.randint(10, 600) * _SEC
        self.server(opened, "email", "Email Opened", dict(props))
        if link is None or rng.random() >= click_p:
            return None
        clicked = opened + rng.randint(5, 180) * _SEC
        self.server(clicked, "email", "Email Link Clicked",
                    props | {"link_url": SITE + link + "?utm_source=mailsmith&utm_medium=email"})
        return clicked

    def marketing_emails(self, since: int) -> None:
        rng = self.rng
        if not self.marketing:
            return
        w = self.w
        web = self.devices[0]
        for index in range(bisect.bisect_left(w.campaign_ms, since), len(w.campaigns)):
            campaign = w.campaigns[index]
            if self.unsubscribed_at is not None and campaign.ms >= self.unsubscribed_at:
                return
            if campaign.newsletter and self.frequency == "monthly" and not campaign.first_of_month:
                continue
            send = campaign.ms + rng.randrange(20 * _MIN)
            clicked = self.email(send, campaign.subject, campaign.name, campaign.campaign_id,
                                 "marketing", 0.4, 0.15, campaign.path)
            if clicked is not None and self.active(clicked) and rng.random() < 0.6:
                t = self.landing(clicked + 2 * _SEC, web, "mailsmith", campaign.path)
                if rng.random() < 0.5:
                    self.browse(t, web, rng.randint(1, 3))
            churned = not self.active(send)
            if rng.random() < (0.15 if churned else 0.004):
                self.unsubscribed_at = send + rng.randint(1, 48) * _HOUR
                self.server(self.unsubscribed_at, "email", "Email Unsubscribed",
                            {"campaign_id": campaign.campaign_id,
                             "campaign_name": campaign.name, "reason": "too_many_emails"
                             if not churned else "no_longer_interested"})

    def app_usage(self, app: _Device, since: int) -> None:
        rng = self.rng
        rate = {"loyal": 0.4, "repeat": 0.15}.get(self.p.segment, 0.06)  # sessions per week
        weeks = (self.cutoff() - since) / (7 * _DAY)
        for _ in range(int(weeks * rate * rng.uniform(0.5, 1.5))):
            t = self.w.when(rng, since + _HOUR, self.cutoff(), self.offset)
            if t is None:
                return
            t = self.landing(t, app)
            for _ in range(rng.randint(1, 4)):
                roll = rng.random()
                if roll < 0.35:
                    recipe = rng.choice(_JOURNAL)[1]
                    self.view(t, app, "Recipe", "", "", props={"recipe": recipe})
                elif roll < 0.6:
                    product = self.pick_product()
                    self.view(t, app, "Product", "", "", props={"product_id": product.product_id})
                    self.track(self.step(t, 1, 3), app, "Product Viewed",
                               self.product_props(product))
                elif roll < 0.8:
                    self.view(t, app, "Orders", "", "")
                else:
                    self.view(t, app, "Oak Rewards", "", "", props={"balance": self.points})
                t = self.step(t, 8, 90)

    def smart_device(self, t: int, product: _Product) -> None:
        """The SmartSous reports through the vendor cloud: channel iot, linked to the user."""
        rng = self.rng
        device_id = f"sv1-{rng.getrandbits(32):08x}"
        surface = _Surface({
            "library": {"name": "analytics-go", "version": "3.3.0"}, "channel": "iot",
            "integration": {"name": "oakhome-cloud", "version": "1.0.0"},
            "device": {"id": device_id, "manufacturer": COMPANY, "model": "SmartSous SV-1",
                       "type": "iot"},
        })
        firmware = "2.13.0"

        def send(at: int, event: str, props: dict[str, Any]) -> None:
            self.emit(at, "track", event, self.p.user_id, None,
                      {"device_id": device_id} | props, surface)

        send(t, "Device Paired", {"model": "SmartSous SV-1", "firmware": firmware,
                                  "product_id": product.product_id})
        weekly = rng.uniform(0.3, 2.0)
        stop = self.cutoff()
        count = int((stop - t) / (7 * _DAY) * weekly)
        updates = iter(u for u in self.w.firmware if u[0] > t)
        next_update = next(updates, None)
        programs = (("Steak medium-rare", 56.5, 90), ("Salmon", 50.0, 40),
                    ("Soft-boiled eggs", 63.0, 45), ("Chicken breast", 64.0, 120),
                    ("Pork chops", 60.0, 75), ("Vegetables", 85.0, 60))
        for when in sorted(self.w.when(rng, t + _HOUR, stop, self.offset) or stop
                           for _ in range(count)):
            if when >= stop:
                continue
            while next_update is not None and next_update[0] < when:
                send(next_update[0] + rng.randrange(3 * _DAY), "Firmware Updated",
                     {"from_version": firmware, "to_version": next_update[1]})
                firmware = next_update[1]
                next_update = next(updates, None)
            program, temperature, minutes = rng.choice(programs)
            if rng.random() < 0.03:
                send(when, "Device Error", {"error_code": "E42", "message": "Low water level",
                                            "firmware": firmware})
                if rng.random() < 0.3:
                    self.support_case(when + rng.randint(1, 12) * _HOUR, "device", None,
                                      product)
                continue
            send(when, "Cooking Session Completed", {
                "program": program, "target_temp_c": temperature,
                "duration_minutes": minutes + rng.randint(-10, 30), "firmware": firmware,
            })

    def subscription(self, since: int) -> None:
        rng = self.rng
        plan, months, usd = rng.choice((("Coffee Club Monthly", 1, 24.0),
                                        ("Filter Refills Quarterly", 3, 18.0),
                                        ("Oak Rewards+ Monthly", 1, 6.0)))
        amount = self.money(usd * self.p.country.rate)
        subscription_id = self.short_id("sub")
        props = {"subscription_id": subscription_id, "plan": plan, "amount": amount,
                 "currency": self.currency, "period_months": months}
        t = since + rng.randint(1, 30) * _DAY if not self.p.existing else (
            since - rng.randint(0, 27) * _DAY)
        channel = "web"
        if t >= since:
            self.server(t, channel, "Subscription Started", dict(props))
        renewal = 0
        while True:
            t += months * 30 * _DAY
            if t >= self.end:
                return
            if not self.active(t) or rng.random() < 0.03:
                self.server(min(t, self.cutoff()), channel, "Subscription Cancelled",
                            props | {"reason": "churned" if not self.active(t)
                                     else rng.choice(("too_expensive", "have_enough",
                                                      "moving"))})
                return
            renewal += 1
            self.server(t, channel, "Subscription Renewed", props | {"renewal_number": renewal})

    def advocacy(self, since: int) -> None:
        rng = self.rng
        happy = self.satisfaction > 0.4
        segment = self.p.segment
        if happy and rng.random() < {"loyal": 0.45, "repeat": 0.15, "one_time": 0.04}.get(
                segment, 0.0):
            for _ in range(rng.randint(1, 3)):
                when = self.w.when(rng, since + 7 * _DAY, self.cutoff(), self.offset)
                if when is None or not self.devices[0].logged_in:
                    break
                device = self.devices[0]
                self.view(when, device, "Refer a Friend", "/account/refer", "Give 20, get 20")
                self.track(when + 15 * _SEC, device, "Referral Sent", {
                    "referral_code": f"FRIENDS-{self.p.user_id[-6:].upper()}",
                    "share_method": rng.choice(("email", "whatsapp", "copy_link", "sms")),
                })
                self.earn_bonus(when + _MIN, 100, "referral")
        if happy and rng.random() < {"loyal": 0.2, "repeat": 0.05}.get(segment, 0.0):
            when = self.w.when(rng, since + 7 * _DAY, self.cutoff(), self.offset)
            if when is not None:
                self.social_post(when, positive=True)

    def social_post(self, t: int, positive: bool) -> None:
        rng = self.rng
        product = self.pick_product()
        platform = rng.choice(_SOCIAL_PLATFORMS)
        text = rng.choice(_SOCIAL_POSITIVE if positive else _SOCIAL_NEGATIVE).format(
            product=product.name)
        handle = "@" + _handle(self.p.first_name) + "_" + _handle(self.p.last_name)
        self.server(t, "social", "Social Mention", {
            "platform": platform, "handle": handle[:30], "text": text,
            "sentiment": "positive" if positive else "negative",
            "post_url": f"https://{platform}.example/p/{rng.getrandbits(40):x}",
            "followers": int(rng.paretovariate(1.2) * 120), "likes": int(rng.expovariate(0.05)),
        }, email_trait=False)


_TIER_RANK: Final = {"bronze": 0, "silver": 1, "gold": 2, "platinum": 3}


def _title_for(path: str) -> str:
    """A page title for a marketing landing path such as ``/collections/small-appliances``."""
    for journal_path, title in _JOURNAL:
        if journal_path == path:
            return title
    return path.rstrip("/").rsplit("/", 1)[-1].replace("-", " ").capitalize()
