"""PATCH bodies (RFC 7644 §3.5.2) as the changes Enclave makes: the spellings Okta and
Entra ID send included (`Replace` in capitals, a path-less `value` object, `"False"` as
a string, `members[value eq "7"]` paths). Attributes Enclave does not keep (title,
enterprise extension, …) are ignored; an operation it cannot apply is a 400."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from apps.scim.errors import invalid
from apps.scim.resources import PATCH_SCHEMA

# User attributes Enclave keeps, SCIM path (lower case) → field of the change.
_USER_PATHS = {
    "active": "active",
    "username": "username",
    "name.givenname": "first_name",
    "name.familyname": "last_name",
    "emails": "email",
    'emails[type eq "work"].value': "email",
    "emails[primary eq true].value": "email",
}
_MEMBER_FILTER = re.compile(r'^members\[\s*value\s+eq\s+("(?:[^"\\]|\\.)*")\s*\]$', re.IGNORECASE)


def operations(body: Any) -> list[tuple[str, str, Any]]:
    """(op in lower case, path, value) of each operation."""
    if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
        raise invalid("A PATCH body holds 'Operations', a list (schema " + PATCH_SCHEMA + ").")
    ops = []
    for index, op in enumerate(body["Operations"]):
        if not isinstance(op, dict) or str(op.get("op", "")).lower() not in (
            "add", "remove", "replace"
        ):  # fmt: skip
            raise invalid(f"Operations[{index}] must have op 'add', 'remove' or 'replace'.")
        path = op.get("path") or ""
        if not isinstance(path, str):
            raise invalid(f"Operations[{index}].path must be a string.", "invalidPath")
        ops.append((str(op["op"]).lower(), path.strip(), op.get("value")))
    return ops


def boolean_value(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid(f"'active' must be true or false, not {value!r:.40}.")


def email_value(value: Any) -> str:
    if isinstance(value, list):
        primary = [v for v in value if isinstance(v, dict) and v.get("primary")] or value
        value = primary[0].get("value", "") if primary and isinstance(primary[0], dict) else ""
    if not isinstance(value, str):
        raise invalid("An email must be a string.")
    return value.strip()


def user_changes(body: Any) -> dict[str, Any]:
    """The user fields a PATCH sets: active, username, first_name, last_name, email."""
    changes: dict[str, Any] = {}
    for op, path, value in operations(body):
        if op == "remove":
            raise invalid("Enclave does not remove user attributes; replace them instead.")
        items = [(path, value)] if path else list(_object(value).items())
        for attr, item in items:
            target = _USER_PATHS.get(attr.lower())
            if target == "active":
                changes["active"] = boolean_value(item)
            elif target == "email":
                changes["email"] = email_value(item)
            elif attr.lower() == "name":
                name = _object(item)
                changes.update(
                    {k: str(v) for k, v in (("first_name", name.get("givenName")),
                     ("last_name", name.get("familyName"))) if v is not None}
                )  # fmt: skip
            elif target is not None:
                if not isinstance(item, str) or not item.strip():
                    raise invalid(f"{attr} must be a non-empty string.")
                changes[target] = item.strip()
    return changes


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("An operation without a path needs an object as its value.")
    return value


@dataclass
class MemberChanges:
    add: set[int] = field(default_factory=set)
    remove: set[int] = field(default_factory=set)
    replace: set[int] | None = None  # the whole membership, when an op replaced it
    display_name: str | None = None


def member_id_set(value: Any) -> set[int]:
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise invalid('members must be a list of {"value": "<user id>"}.')
    ids = set()
    for member in value:
        raw = member.get("value") if isinstance(member, dict) else None
        if not (isinstance(raw, str | int) and str(raw).isascii() and str(raw).isdigit()):
            raise invalid(f"A member's value must be a user id, not {raw!r:.40}.")
        ids.add(int(raw))
    return ids


def group_changes(body: Any) -> MemberChanges:
    changes = MemberChanges()
    for op, path, value in operations(body):
        lowered = path.lower()
        member = _MEMBER_FILTER.match(path)
        if member is not None and op == "remove":
            changes.remove |= member_id_set([{"value": json.loads(member.group(1))}])
        elif lowered == "members" and op == "add":
            changes.add |= member_id_set(value)
        elif lowered == "members" and op == "remove" and value is None:
            changes.replace, changes.add, changes.remove = set(), set(), set()  # all go
        elif lowered == "members" and op == "remove":
            changes.remove |= member_id_set(value)
        elif lowered == "members" and op == "replace":
            changes.replace, changes.add, changes.remove = member_id_set(value), set(), set()
        elif lowered == "displayname" and op in ("add", "replace"):
            changes.display_name = str(value or "").strip()
        elif not path and op in ("add", "replace"):
            obj = _object(value)
            if "displayName" in obj:
                changes.display_name = str(obj["displayName"] or "").strip()
            if "members" in obj:
                if op == "add":
                    changes.add |= member_id_set(obj["members"])
                else:
                    changes.replace = member_id_set(obj["members"])
        else:
            raise invalid(f"Cannot {op} {path or 'the group'!r:.60} on a group.", "invalidPath")
    return changes
