"""Request types for views behind @login_required (django-stubs' recommended pattern)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest


class AuthenticatedHttpRequest(HttpRequest):
    """An HttpRequest whose user is signed in: what a view behind login_required gets.

    Only for type checking: no view builds one; Django hands the view its usual request.
    """

    user: User


# The largest value of a PostgreSQL bigint, the type of every primary key here.
_MAX_ID = 2**63 - 1


def id_param(value: object) -> int | None:
    """A query or form value as a row id: ASCII digits of a bigint, else None. (str.isdigit
    alone admits "²", which int() refuses.)"""
    text = str(value or "")
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= _MAX_ID else None
