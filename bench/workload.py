"""A deterministic, realistic stream of Segment messages.

People browse anonymously on one or two devices, sign up (identify with email, often phone),
log in on their second device (identify with userId + that device's anonymousId, which merges
the device's anonymous profile into theirs), and keep sending track/page/screen events with
both ids afterwards. The mix is ~60% track, 20% page, 10% identify, 5% screen, 3% group,
2% alias; activity per person is skewed (a few people send many events).
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

TYPES = ("track", "page", "identify", "screen", "group", "alias")
TYPE_WEIGHTS = (60, 20, 10, 5, 3, 2)
_CUM_TYPES = list(itertools.accumulate(TYPE_WEIGHTS))

EVENTS = ("Product Viewed", "Product Added", "Cart Viewed", "Checkout Started",
          "Order Completed", "Products Searched", "Coupon Applied", "Email Opened",
          "Email Link Clicked", "Ticket Created", "Chat Started", "Video Played",
          "Signed In", "Signed Up", "Product Reviewed", "Wishlist Product Added")
PAGES = (("Home", "/"), ("Category", "/c/shoes"), ("Product", "/p/sku-1042"),
         ("Cart", "/cart"), ("Checkout", "/checkout"), ("Search", "/search"),
         ("Blog", "/blog/summer-sale"), ("Account", "/account"), ("Help", "/help/returns"))
SCREENS = ("Home", "Product", "Cart", "Orders", "Settings", "Search")
FIRST = ("Ada", "Ben", "Chloé", "Dev", "Eva", "Farid", "Grace", "Hiro", "Ines", "Jon",
         "Kasia", "Liam", "Mei", "Noor", "Olu", "Pia", "Quinn", "Rosa", "Sami", "Tara")
LAST = ("Okafor", "Nguyen", "Müller", "Silva", "Kowalski", "Haddad", "Tanaka", "Rossi",
        "Johansson", "García", "Patel", "Kim", "Dubois", "Novak", "Murphy", "Cohen")
AREAS = ("212", "415", "312", "617", "206", "303", "512", "404", "213", "646")
AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
)


@dataclass
class Device:
    anonymous_id: str
    mobile_app: bool
    identified: bool = False


@dataclass
class Person:
    index: int
    user_id: str
    email: str
    phone: str | None
    first: str
    last: str
    devices: list[Device] = field(default_factory=list)
    signed_up: bool = False


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Workload:
    """``people`` people; :meth:`messages` yields the next ``n`` messages of their story."""

    def __init__(self, people: int = 20_000, seed: int = 7, skew: float = 1.1):
        self.rng = random.Random(seed)
        rng = self.rng
        self.people: list[Person] = []
        for i in range(people):
            area = AREAS[i % len(AREAS)]
            line = i // len(AREAS)
            phone = f"+1{area}{200 + line // 10000}{line % 10000:04d}" if rng.random() < 0.6 \
                else None
            person = Person(
                index=i, user_id=f"user-{i:07d}", email=f"person{i}@example.com", phone=phone,
                first=FIRST[i % len(FIRST)], last=LAST[(i * 7) % len(LAST)],
            )
            for d in range(2 if rng.random() < 0.35 else 1):
                person.devices.append(Device(
                    anonymous_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    mobile_app=d == 1 and rng.random() < 0.6,
                ))
            self.people.append(person)
        # Zipf-like activity: weight 1/(rank+1)^s over a shuffled order of people.
        order = list(range(people))
        rng.shuffle(order)
        weights = [0.0] * people
        for rank, who in enumerate(order):
            weights[who] = 1.0 / (rank + 20) ** skew
        self._cum = list(itertools.accumulate(weights))

    def _person(self) -> Person:
        x = self.rng.random() * self._cum[-1]
        return self.people[min(bisect.bisect_left(self._cum, x), len(self.people) - 1)]

    def messages(self, n: int, *, start: datetime, step: timedelta) -> Iterator[dict[str, Any]]:
        """``n`` messages with timestamps from ``start``, ``step`` apart on average."""
        rng = self.rng
        when = start
        jitter = step.total_seconds() * 2
        for _ in range(n):
            when = when + timedelta(seconds=rng.random() * jitter)
            person = self._person()
            device = rng.choice(person.devices)
            kind = TYPES[bisect.bisect_left(_CUM_TYPES, rng.random() * _CUM_TYPES[-1])]
            yield self._message(kind, person, device, when)

    def _context(self, person: Person, device: Device) -> dict[str, Any]:
        rng = self.rng
        if device.mobile_app:
            return {
                "library": {"name": "analytics-ios", "version": "4.1.8"},
                "app": {"name": "Shop", "version": "7.3.1", "build": "7310"},
                "os": {"name": "iOS", "version": "17.5"},
                "device": {"manufacturer": "Apple", "model": "iPhone15,2", "type": "ios"},
                "ip": f"198.51.100.{person.index % 250 + 1}",
                "locale": "en-US", "timezone": "America/New_York",
            }
        return {
            "library": {"name": "analytics.js", "version": "next-1.70.0"},
            "userAgent": AGENTS[person.index % len(AGENTS)],
            "ip": f"203.0.113.{person.index % 250 + 1}",
            "locale": "en-US",
            "campaign": {"source": "newsletter", "medium": "email", "name": "spring"}
            if rng.random() < 0.1 else {},
        }

    def _message(self, kind: str, person: Person, device: Device, when: datetime
                 ) -> dict[str, Any]:
        rng = self.rng
        message: dict[str, Any] = {
            "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "timestamp": _iso(when),
            "anonymousId": device.anonymous_id,
            "context": self._context(person, device),
            "integrations": {},
        }
        if kind == "identify":
            traits: dict[str, Any] = {"email": person.email, "firstName": person.first,
                                      "lastName": person.last}
            if person.phone:
                traits["phone"] = person.phone
            if not person.signed_up and rng.random() < 0.3:
                # a newsletter sign-up: email only, no user id yet
                message.update(type="identify", traits=traits)
                return message
            traits.update({"plan": rng.choice(("free", "plus", "pro")),
                           "preferences": {"newsletter": rng.random() < 0.7}})
            if rng.random() < 0.2:
                traits["consent"] = {"email": {"marketing": rng.random() < 0.8}}
            person.signed_up = True
            device.identified = True
            message.update(type="identify", userId=person.user_id, traits=traits)
            return message
        if kind == "alias":
            if device.identified:
                kind = "track"
            else:
                device.identified = True
                person.signed_up = True
                message.update(type="alias", previousId=device.anonymous_id,
                               userId=person.user_id)
                return message
        if device.identified:
            message["userId"] = person.user_id
        if kind == "group":
            message.update(type="group", groupId=f"acct-{person.index % 997}",
                           traits={"name": f"Account {person.index % 997}", "industry": "retail",
                                   "employees": 10 + person.index % 500})
        elif kind == "screen" or (kind == "page" and device.mobile_app):
            message.update(type="screen", name=rng.choice(SCREENS),
                           properties={"variant": rng.choice(("a", "b"))})
        elif kind == "page":
            name, path = rng.choice(PAGES)
            message.update(type="page", name=name, properties={
                "path": path, "url": f"https://shop.example.com{path}",
                "title": f"{name} | Example Shop", "referrer": "https://www.google.com/",
                "search": "", "category": rng.choice(("shoes", "bags", "outdoor", "")),
            })
            message["context"]["page"] = dict(message["properties"])
        else:
            event = rng.choice(EVENTS)
            message.update(type="track", event=event, properties={
                "product_id": f"sku-{rng.randrange(1, 5000)}",
                "sku": f"SKU-{rng.randrange(10000, 99999)}",
                "category": rng.choice(("shoes", "bags", "outdoor", "kids")),
                "name": rng.choice(("Trail Runner", "Canvas Tote", "Rain Shell", "Wool Socks")),
                "price": round(rng.uniform(5, 250), 2), "quantity": rng.randrange(1, 4),
                "currency": "USD", "value": round(rng.uniform(5, 500), 2),
            })
        return message


# --- rows for the raw-insert baseline -----------------------------------------------------------


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class ProfileIds:
    """A stable fake profile id per identifier, for baseline rows."""

    def __init__(self) -> None:
        self.ids: dict[str, uuid.UUID] = {}

    def of(self, key: str) -> uuid.UUID:
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = uuid.uuid4()
        return found


def event_rows(messages: list[dict[str, Any]], kind: str, received_at: datetime,
               profiles: ProfileIds, source: str = "key:bench") -> list[dict[str, Any]]:
    """The rows ingest would store for these messages, keyed by column, in the DB's own
    parameter types (SQLite: text datetimes and hex UUIDs like Django's; PostgreSQL: datetime
    and UUID). Keys that are not columns of the table at hand are left out when inserting."""
    rows: list[dict[str, Any]] = []
    sqlite = kind == "sqlite"
    received = _sqlite_dt(received_at) if sqlite else received_at
    for position, m in enumerate(messages):
        ts = _parse(m.get("timestamp")) or received_at
        user = m.get("userId") or ""
        anon = m.get("anonymousId") or ""
        pid = profiles.of(user or anon or "?")
        when = _sqlite_dt(ts) if sqlite else ts
        rows.append({
            "message_id": m["messageId"], "type": m["type"],
            "name": m.get("event") or m.get("name") or "",
            "channel": "app" if "app" in m.get("context", {}) else "web",
            "profile_id": pid.hex if sqlite else pid, "identity_id": position,
            "user_id": user, "anonymous_id": anon,
            "timestamp": when, "received_at": received, "sent_at": None,
            "original_timestamp": when, "source": source,
            "payload": orjson.dumps(m).decode(),
        })
    return rows


def _sqlite_dt(value: datetime) -> str:
    """Django's SQLite storage form of an aware datetime (naive UTC text)."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
