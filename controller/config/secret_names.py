"""Which names hold credentials: the rule every caller shares (settings' error messages,
display masking, the secrets runhands redacts). Nothing else of the package below it."""

SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "credential")


def is_secret_name(name: str) -> bool:
    """True for names that hold credentials (api_key, GITHUB_TOKEN, DB_PASSWORD...)."""
    lowered = name.lower()
    if lowered.endswith(("_tokens", "per_token")):  # token counts and prices, not secrets
        return False
    return any(word in lowered for word in SECRET_WORDS)
