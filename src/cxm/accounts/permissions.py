"""Who may do what: the one permission matrix every entry point consults (pure, no I/O).

A *principal* is whoever is asking: a web user (by role), an API key (by scope) or the local
operator at the command line. Each has one entry in :data:`MATRIX`, which lists the permissions
it grants; :func:`allows` answers every question of the form "may this principal do that?".
Entry points never test roles, scopes or ``is_staff`` themselves:

- Django views: ``cxm.web.access.requires("profile.read")``,
- the REST API: ``cxm.accounts.api_auth.needs("profile.read")`` (bearer keys),
- the ingest API: ``cxm.ingest.http`` asks ``allows(key_principal, "events.ingest")``,
- the CLI: ``cxm.accounts.principals.local_operator()``, which is an admin.

How to add a permission: add it to :data:`PERMISSIONS` with one line saying what it guards,
grant it in :data:`MATRIX`, check it where the work is done, list the new URL or API operation
in ``tests/accounts/test_permissions.py`` and update the table in ``docs/security.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

# Every permission, with what it guards. ``allows`` refuses names not listed here, so a typo
# in a check fails loudly instead of quietly denying (or granting) everything.
PERMISSIONS: dict[str, str] = {
    "profile.read": "search customers, open profiles and timelines (personal fields masked)",
    "profile.read_personal": "see personal fields unmasked: name, email, phone, personal traits",
    "profile.merge": "merge profiles and undo merges",
    "consent.edit": "change a customer's consent",
    "journeys.manage": "design and run journeys and segments",
    "surveys.read": "see surveys, their results, themes and drivers (aggregates, no personal "
                    "data)",
    "surveys.manage": "create and change surveys, invite customers, set the contact policy, "
                      "edit and merge themes",
    "feedback.verbatims": "read what customers wrote in open-text answers",
    "events.ingest": "send events to the ingest API (/v1/...)",
    "keys.manage": "create, list and revoke API keys",
    "users.manage": "create users, change their role, deactivate them",
    "audit.read": "read the audit log",
    "settings.manage": "change platform settings",
    "privacy.export": "export everything held about a customer (subject access)",
    "privacy.erase": "erase a customer",
}

ROLES: tuple[str, ...] = ("admin", "analyst", "agent", "marketer", "viewer")
ROLE_LABELS: dict[str, str] = {
    "admin": "everything, including users, keys, merges, audit and privacy requests",
    "analyst": "reads customers with their personal data; runs surveys and text analytics",
    "agent": "reads customers with their personal data and edits consent",
    "marketer": "reads customers (personal fields masked), runs journeys and surveys",
    "viewer": "reads customers and totals, personal fields masked",
}
KEY_SCOPES: tuple[str, ...] = ("ingest", "read", "admin")

_EVERYTHING = frozenset(PERMISSIONS)
_READ = frozenset({"profile.read", "surveys.read"})
_READ_PERSONAL = _READ | {"profile.read_personal", "feedback.verbatims"}

# The matrix. Roles by name; API key scopes as ``key:<scope>``.
MATRIX: dict[str, frozenset[str]] = {
    "admin": _EVERYTHING,
    "analyst": _READ_PERSONAL | {"surveys.manage"},
    "agent": _READ_PERSONAL | {"consent.edit"},
    "marketer": _READ | {"journeys.manage", "surveys.manage"},
    "viewer": _READ,
    "key:ingest": frozenset({"events.ingest"}),
    "key:read": _READ_PERSONAL,
    "key:admin": _EVERYTHING,
}


@dataclass(frozen=True)
class Principal:
    """Whoever is asking. ``entry`` is a key of :data:`MATRIX` (``None``: grants nothing);
    ``label`` is what the audit log records (``user:<id>``, ``key:<prefix>``, ``cli:<user>``)."""

    entry: str | None
    label: str

    @property
    def grants(self) -> frozenset[str]:
        return MATRIX.get(self.entry or "", frozenset())


ANONYMOUS = Principal(None, "anonymous")


def role_principal(role: str | None, label: str) -> Principal:
    return Principal(role if role in ROLES else None, label)


def key_principal(scope: str, label: str) -> Principal:
    return Principal(f"key:{scope}" if scope in KEY_SCOPES else None, label)


def local_operator(os_user: str) -> Principal:
    """The CLI runs on the server as its operator, who could read the database anyway."""
    return Principal("admin", f"cli:{os_user or 'unknown'}")


def allows(principal: Principal | None, permission: str) -> bool:
    """Whether ``principal`` holds ``permission``. Unknown permission names raise KeyError."""
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}; add it to PERMISSIONS")
    return principal is not None and permission in principal.grants


def allows_all(principal: Principal | None, permissions: tuple[str, ...]) -> bool:
    return all(allows(principal, p) for p in permissions)


def check_matrix() -> None:
    """The matrix names only known permissions and covers every role and scope."""
    for entry, granted in MATRIX.items():
        unknown = granted - _EVERYTHING
        if unknown:
            raise ValueError(f"{entry} grants unknown permissions {sorted(unknown)}")
    expected = set(ROLES) | {f"key:{s}" for s in KEY_SCOPES}
    if set(MATRIX) != expected:
        raise ValueError(f"MATRIX entries {sorted(MATRIX)} != roles and scopes {sorted(expected)}")


check_matrix()
