from django.http import HttpRequest

from apps.core.roles import PERM_MANAGE_KNOWLEDGE, PERM_REVIEW_AUDIT, PERM_USE_ASSISTANT


def roles(request: HttpRequest) -> dict[str, bool]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"can_ask": False, "can_manage": False, "can_audit": False}
    return {
        "can_ask": user.has_perm(PERM_USE_ASSISTANT),
        "can_manage": user.has_perm(PERM_MANAGE_KNOWLEDGE),
        "can_audit": user.has_perm(PERM_REVIEW_AUDIT),
    }
