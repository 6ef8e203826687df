"""Request types for views behind @login_required (django-stubs' recommended pattern)."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest


class AuthenticatedHttpRequest(HttpRequest):
    """An HttpRequest whose user is signed in: what a view behind login_required gets.

    Only for type checking: no view builds one; Django hands the view its usual request.
    """

    user: User
