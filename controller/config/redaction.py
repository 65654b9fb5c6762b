"""Telling secrets apart, so that no output, error message or saved file shows one."""

import os
import re
from collections.abc import Iterator, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from controller.config.loading import read_dotenv
from controller.config.schema import LLM_SECRET_FIELDS, AppConfig, LLMConfig
from controller.config.secret_names import is_secret_name
from controller.config.settings import ENV_NAMES
from state_store.files import REDACTED

# Values passed to the sandbox on purpose (OpenHands' prefix): masked in every output.
SANDBOX_ENV_PREFIX = "SANDBOX_ENV_"
# Query parameters that carry credentials though their names do not say so (Azure SAS `sig`).
_SECRET_PARAMS = {"sig", "signature", "auth", "code", "pass", "pwd"}
# A value found around runhands (environment, .env, passed variables) counts as a credential
# only from this length and when it is not a plain word or number: "true", "8080" or
# "production" would hide ordinary output, and could even match the store's own JSON.
_MIN_FOUND_LEN = 8
_PLAIN = re.compile(r"[a-z_]+|[\d\W_]+")


def mask_secret(value: str) -> str:
    """Show at most the last 4 characters, and only of a long secret."""
    if not value:
        return "(empty)"
    return REDACTED + value[-4:] if len(value) >= 12 else "(set)"


def public_url(url: str | None, *, mask: bool = False) -> str | None:
    """A URL without its credentials: `user:password@` removed, and the values of
    secret-named query parameters (`?key=`, `api_key=`, `token=`, `sig=`...) removed or,
    with `mask` (for display), shown as `****`."""
    if not url or ("@" not in url and "?" not in url):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a bad IPv6 host: not a URL, nothing to take apart
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = [
        (name, REDACTED) if mask and _secret_param(name) else (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if mask or not _secret_param(name)
    ]
    if netloc == parts.netloc and query == parse_qsl(parts.query, keep_blank_values=True):
        return url  # nothing to hide: the URL as written
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*")))


def url_credentials(url: str | None) -> list[str]:
    """The credentials a URL carries: user, password, secret query values."""
    if not url or "://" not in url:
        return []
    try:
        parts = urlsplit(url)
        found = [parts.username, parts.password]
    except ValueError:  # e.g. a bad port: not a URL we can read
        return []
    found += [v for n, v in parse_qsl(parts.query, keep_blank_values=True) if _secret_param(n)]
    return [value for value in found if value]


def secrets_of(
    config: AppConfig, environ: Mapping[str, str] | None = None, cwd: str | None = None
) -> list[str]:
    """Every credential runhands knows of, never written or printed: the model keys and the
    credentials in the model URLs, then those found around runhands (see `_found`)."""
    llms = [config.llm, *config.llm_configs.values()]
    keys = [value for llm in llms for key in LLM_SECRET_FIELDS if (value := getattr(llm, key))]
    mcp = config.mcp
    keys += [s.api_key for s in [*mcp.sse_servers, *mcp.shttp_servers] if s.api_key]
    keys += [v for s in mcp.stdio_servers for k, v in s.env.items() if is_secret_name(k) and v]
    env = os.environ if environ is None else environ
    found = [*_url_secrets(llms), *_found(config, env, cwd or os.getcwd())]
    return keys + [value for value in found if _looks_like_credential(value)]


def _url_secrets(llms: list[LLMConfig]) -> Iterator[str]:
    for llm in llms:
        yield from url_credentials(llm.base_url)


def _found(config: AppConfig, environ: Mapping[str, str], cwd: str) -> Iterator[str]:
    """The provider keys litellm reads (it has no list of them: all are named *_API_KEY,
    *_TOKEN, *_SECRET_ACCESS_KEY..., so every variable whose name looks secret), the
    credentials in URL values, every `SANDBOX_ENV_*` value; every value of `./.env` but
    runhands' own settings (shown by `runhands config`); secret-named sandbox variables."""
    for name, value in environ.items():
        if is_secret_name(name) or name.startswith(SANDBOX_ENV_PREFIX):
            yield value
        yield from url_credentials(value)
    for name, value in read_dotenv(cwd).items():
        if is_secret_name(name) or name not in ENV_NAMES:
            yield value
        yield from url_credentials(value)
    passed = config.sandbox.runtime_startup_env_vars
    yield from (value for name, value in passed.items() if is_secret_name(name))


def _looks_like_credential(value: str) -> bool:
    return len(value) >= _MIN_FOUND_LEN and not _PLAIN.fullmatch(value)


def _secret_param(name: str) -> bool:
    return is_secret_name(name) or name.lower() in _SECRET_PARAMS
