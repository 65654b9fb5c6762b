"""Telling secrets apart, so that no output, error message or saved file shows one."""

from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from controller.config.schema import AppConfig

SECRET_WORDS = ("key", "token", "secret", "password")


def is_secret_name(name: str) -> bool:
    """True for names that hold credentials (api_key, GITHUB_TOKEN, DB_PASSWORD...)."""
    lowered = name.lower()
    if lowered.endswith(("_tokens", "per_token")):  # token counts and prices, not secrets
        return False
    return any(word in lowered for word in SECRET_WORDS)


def mask_secret(value: str) -> str:
    """Show at most the last 4 characters, and only of a long secret."""
    if not value:
        return "(empty)"
    return "****" + value[-4:] if len(value) >= 12 else "(set)"


def strip_userinfo(url: str | None) -> str | None:
    """Remove `user:password@` from a URL: a base_url may carry credentials."""
    if not url or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def secrets_of(config: "AppConfig") -> list[str]:
    """The secret values a configuration holds (the model keys): never written anywhere."""
    keys = [config.llm.api_key] + [c.api_key for c in config.llm_configs.values()]
    return [k for k in keys if k]
