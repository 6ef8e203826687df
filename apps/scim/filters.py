"""The part of SCIM's filter grammar identity providers send when they provision:
`<attribute> eq "<value>"` (RFC 7644 §3.4.2.2), on the attributes Enclave can look up.
Anything else is a 400 `invalidFilter` that names what is supported."""

from __future__ import annotations

import json
import re

from apps.scim.errors import invalid

_EQ = re.compile(r'^\s*([A-Za-z][\w.]*)\s+(eq)\s+("(?:[^"\\]|\\.)*")\s*$', re.IGNORECASE)


def parse_eq_filter(raw: str, *, attributes: dict[str, str]) -> tuple[str, str]:
    """(`attributes`' lookup for the filtered attribute, the value); attribute names are
    case-insensitive, as SCIM says."""
    match = _EQ.match(raw)
    if match is None:
        raise invalid(
            f"Filter {raw[:100]!r} is not supported: use "
            + " or ".join(f'{a} eq "value"' for a in attributes)
            + ".",
            "invalidFilter",
        )
    name, _, quoted = match.groups()
    lookup = {k.lower(): v for k, v in attributes.items()}.get(name.lower())
    if lookup is None:
        raise invalid(
            f"Filtering on {name[:40]!r} is not supported; use one of {', '.join(attributes)}.",
            "invalidFilter",
        )
    return lookup, json.loads(quoted)
