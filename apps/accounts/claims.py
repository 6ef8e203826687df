"""Group mapping from OpenID Connect claims: pure functions, no Django imports.

Settings parse OIDC_GROUP_MAP with ``parse_group_map`` at start-up, before apps load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def parse_group_map(raw: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``["idp-value=Django group", ...]`` → {idp value: (group, ...)}.

    One claim value may map to several groups (repeat it); a group name may contain
    spaces but not ``=`` or ``,``.
    """
    mapping: dict[str, list[str]] = {}
    for item in raw:
        value, sep, group = item.partition("=")
        if not sep or not value.strip() or not group.strip():
            raise ValueError(f"{item!r} is not claim-value=Group name")
        mapping.setdefault(value.strip(), []).append(group.strip())
    return {value: tuple(groups) for value, groups in mapping.items()}


def groups_from_claims(
    claims: Mapping[str, Any], *, claim: str, group_map: Mapping[str, Iterable[str]]
) -> set[str]:
    """The Django group names the claims grant, through the mapping only.

    The claim may be a list of strings or one string (some providers send a single
    group as a string, others a space- or comma-separated list). Values the mapping does
    not name grant nothing; a missing or malformed claim grants nothing.
    """
    raw = claims.get(claim)
    if isinstance(raw, str):
        values = [v for part in raw.split(",") for v in part.split()]
    elif isinstance(raw, list | tuple):
        values = [v for v in raw if isinstance(v, str)]
    else:
        values = []
    granted: set[str] = set()
    for value in values:
        granted.update(group_map.get(value.strip(), ()))
    return granted


def managed_groups(group_map: Mapping[str, Iterable[str]]) -> set[str]:
    return {group for groups in group_map.values() for group in groups}
