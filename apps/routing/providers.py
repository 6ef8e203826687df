"""The external provider, from the environment (EXTERNAL_LLM_*): the gate sends to it, the
chat offers escalation and the policy page shows it only when one is configured."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.routing.llm import Endpoint

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
}


@dataclass(frozen=True)
class Provider:
    kind: str  # openai | anthropic | openai-compatible
    name: str
    base_url: str
    model: str
    price_per_1k: Decimal
    timeout: float
    max_tokens: int
    api_key: str = field(default="", repr=False)

    @property
    def display(self) -> str:
        return f"{self.model} at {self.name} (external)"

    def endpoint(self) -> Endpoint:
        return Endpoint(
            base_url=self.base_url,
            model=self.model,
            where="external",
            display=self.display,
            provider=self.name,
            api_key=self.api_key or "not-set",
            connect_timeout=min(10.0, self.timeout),
            read_timeout=self.timeout,
            protocol="anthropic" if self.kind == "anthropic" else "openai",
        )

    def cost(self, tokens: int) -> Decimal:
        return (self.price_per_1k * tokens / 1000).quantize(Decimal("0.000001"))


def _api_key() -> str:
    if settings.EXTERNAL_LLM_API_KEY_FILE:
        path = Path(settings.EXTERNAL_LLM_API_KEY_FILE)
        try:
            return path.read_text().strip()
        except OSError as err:
            raise ImproperlyConfigured(
                f"EXTERNAL_LLM_API_KEY_FILE: cannot read {path}: {err.strerror}"
            ) from err
    return settings.EXTERNAL_LLM_API_KEY


def answer_tokens(provider: Provider | None) -> int:
    """The tokens an external answer may take: the provider's, or the setting's when the
    provider's configuration could not be read (the prompt is sized all the same)."""
    return provider.max_tokens if provider else settings.EXTERNAL_LLM_MAX_TOKENS


def external_provider() -> Provider | None:
    """The configured provider, or None: then escalation is unavailable."""
    kind = settings.EXTERNAL_LLM_KIND
    if not kind:
        return None
    return Provider(
        kind=kind,
        name=settings.EXTERNAL_LLM_NAME,  # defaults to the kind in settings
        base_url=settings.EXTERNAL_LLM_BASE_URL or DEFAULT_BASE_URLS.get(kind, ""),
        model=settings.EXTERNAL_LLM_MODEL,
        price_per_1k=Decimal(str(settings.EXTERNAL_LLM_PRICE_PER_1K)),
        timeout=settings.EXTERNAL_LLM_TIMEOUT,
        max_tokens=settings.EXTERNAL_LLM_MAX_TOKENS,
        api_key=_api_key(),
    )
