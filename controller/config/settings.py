"""Each setting: its type and bounds, its environment variable, its default, and turning a
raw value (TOML, environment text, flag) into a valid one or a one-line ConfigError."""

import ast
import json
import types
from typing import Annotated, Any, Literal, NamedTuple, Union, get_args, get_origin

import msgspec

from controller.config.openhands_keys import ZERO_MEANS_UNSET
from controller.config.schema import SECTIONS, ConfigError
from controller.config.secret_names import SECRET_WORDS, is_secret_name


class Field(NamedTuple):
    base: Any  # the type without `| None` and without Annotated bounds
    metas: tuple[msgspec.Meta, ...]
    optional: bool = False


class Setting(NamedTuple):
    """An effective value and a human description of where it came from."""

    value: object
    source: str


def _unwrap(tp: Any) -> Field:
    """Split `Annotated[T, Meta(...)] | None` into T, its bounds and whether None is allowed."""
    optional = get_origin(tp) in (Union, types.UnionType)
    if optional:
        tp = next(arg for arg in get_args(tp) if arg is not type(None))
    if get_origin(tp) is Annotated:
        base, *metas = get_args(tp)
        return Field(base, tuple(m for m in metas if isinstance(m, msgspec.Meta)), optional)
    return Field(tp, (), optional)


_ENV_PREFIXES = {
    "core": "",
    "llm": "LLM_",
    "agent": "AGENT_",
    "sandbox": "SANDBOX_",
    "condenser": "CONDENSER_",
}

FIELDS: dict[str, dict[str, Field]] = {
    section: {f.name: _unwrap(f.type) for f in msgspec.structs.fields(cls)}
    for section, cls in SECTIONS.items()
}
ENV_NAMES: dict[str, str] = {
    _ENV_PREFIXES[section] + key.upper(): f"{section}.{key}"
    for section, fields in FIELDS.items()
    for key in fields
}


def defaults() -> dict[str, Setting]:
    values: dict[str, Setting] = {}
    for section, cls in SECTIONS.items():
        instance = cls()
        for key in FIELDS[section]:
            values[f"{section}.{key}"] = Setting(getattr(instance, key), "default")
    return values


# ---- describing what a setting accepts ----------------------------------------------------


def describe(field: Field, *, text: bool = False) -> str:
    """Say in words what a field accepts, e.g. 'an integer >= 1'."""
    base = field.base
    if get_origin(base) is Literal:
        return "one of " + ", ".join(repr(arg) for arg in get_args(base))
    if get_origin(base) is dict or base is dict:
        return "a JSON or Python object of strings" if text else "a table of strings"
    if get_origin(base) is list:
        return "a JSON or Python list, or comma-separated names" if text else "a list of strings"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return " ".join([names.get(base, str(base)), *_bound_words(field.metas)])


def _bound_words(metas: tuple[msgspec.Meta, ...]) -> list[str]:
    words = []
    for meta in metas:
        for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            bound = getattr(meta, attr)
            if bound is not None:
                words.append(f"{op} {bound}")
    return [" and ".join(words)] if words else []


# ---- converting a raw value ---------------------------------------------------------------


def _check_bounds(value: Any, metas: tuple[msgspec.Meta, ...]) -> bool:
    return all(
        (meta.ge is None or value >= meta.ge)
        and (meta.gt is None or value > meta.gt)
        and (meta.le is None or value <= meta.le)
        and (meta.lt is None or value < meta.lt)
        for meta in metas
    )


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _parse_text(raw: str, base: Any) -> object:
    """Turn an environment string into what msgspec can convert; ValueError if impossible."""
    if base is str:
        return raw
    text = raw.strip()
    if base is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise ValueError(raw)
    if get_origin(base) is dict or base is dict:
        return _literal(text, dict)
    if get_origin(base) is list:
        if text.startswith("["):
            return _literal(text, list)
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def _literal(text: str, kind: type) -> object:
    """JSON, or a Python literal as OpenHands writes them (utils.py: load_from_env parses
    dict and list variables with ast.literal_eval, e.g. "{'A': '1'}"). literal_eval only
    builds literals, never calls anything; ValueError if it is neither or not a `kind`."""
    try:
        return json.loads(text)  # JSONDecodeError is a ValueError
    except ValueError:
        pass
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        raise ValueError(text) from None
    if not isinstance(value, kind):
        raise ValueError(text)
    return value


def convert(dotted: str, value: object, where: str, *, text: bool) -> object:
    """Validate one value for the setting `dotted`; `where` names it in errors."""
    section, key = dotted.split(".", 1)
    field = FIELDS[section][key]
    try:
        raw = _parse_text(value, field.base) if text and isinstance(value, str) else value
        result = msgspec.convert(raw, field.base, strict=not text)
    except (ValueError, msgspec.ValidationError):
        expected = describe(Field(field.base, ()), text=text)
        raise ConfigError(f"{where}: expected {expected}, got {shown(key, value)}") from None
    if not _check_bounds(result, field.metas):
        raise ConfigError(f"{where}: expected {describe(field)}, got {shown(key, value)}")
    # OpenHands' template writes `api_key = ""` and 0 for "no limit": both mean unset.
    if (field.optional and result == "") or (dotted in ZERO_MEANS_UNSET and result == 0):
        return None
    return result


def shown(key: str, value: object) -> str:
    """The rejected value for an error message, without echoing anything that may be secret."""
    if is_secret_name(key):
        return "(hidden)"
    if isinstance(value, dict):
        return repr({k: "****" if is_secret_name(str(k)) else v for k, v in value.items()})
    if isinstance(value, str) and any(word in value.lower() for word in SECRET_WORDS):
        return "(hidden: it may hold a secret)"  # e.g. a JSON object of tokens that did not parse
    return repr(value)
