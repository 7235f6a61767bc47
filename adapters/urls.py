"""Backend URLs: where they point, the options in their query, and how to show them safely.

Every URL Interchange prints or logs passes through ``redact``: a password in the userinfo and
the value of every query option whose name says password, secret, token or key are masked.
Each backend's query options are one pydantic model (``Options``): an option it does not know
is an error naming the ones it does, on every backend.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from interchange.adapters.errors import InvalidURL

DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "kafka": 9092, "redis": 6379, "rediss": 6379}
MASK = "***"
_SECRET = re.compile(r"password|secret|token|key", re.IGNORECASE)


def did_you_mean(name: str, known: Iterable[str]) -> str | None:
    """The known name a misspelled ``name`` most likely meant (difflib's closest match), or
    None: the one "did you mean" behind every unknown name Interchange reports."""
    guess = difflib.get_close_matches(name, list(known), n=1)
    return guess[0] if guess else None


def redact(url: str) -> str:
    """The URL with its userinfo password and secret-looking query values replaced by ``***``,
    safe to log or print; each of a list of nodes (``amqp://a//;amqp://b//``) alike."""
    if ";" in url:
        return ";".join(redact(node) for node in url.split(";"))
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secret_password = bool(at) and ":" in userinfo
    secret_options = any(_SECRET.search(name) for name, _ in pairs)
    if not (secret_password or secret_options):
        return url
    netloc = f"{userinfo.split(':', 1)[0]}:{MASK}@{hosts}" if secret_password else parts.netloc
    query = urlencode(
        [(name, MASK if _SECRET.search(name) else value) for name, value in pairs], safe="*"
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def endpoints(url: str) -> list[tuple[str, int]]:
    """(host, port) pairs a URL names; ``kafka://a:9092,b:9092`` and
    ``amqp://a//;amqp://b//`` name several."""
    if ";" in url:
        return [pair for node in url.split(";") for pair in endpoints(node)]
    parts = urlsplit(url)
    default = DEFAULT_PORTS.get(parts.scheme, 0)
    found = []
    for item in parts.netloc.rsplit("@", 1)[-1].split(","):
        if item.startswith("["):  # [::1]:9092
            host, _, port = item[1:].partition("]")
            port = port.lstrip(":")
        else:
            host, _, port = item.partition(":")
        found.append((host, int(port) if port else default))
    return found


def check_ports(url: str) -> None:
    """Raise InvalidURL naming a port of ``url`` that is not a number from 1 to 65535 (a
    driver would take ``:notaport`` as port 0, or fail with a bare ValueError at connect)."""
    if ";" in url:
        for node in url.split(";"):
            check_ports(node)
        return
    for item in urlsplit(url).netloc.rsplit("@", 1)[-1].split(","):
        # [::1]:9092 or host:9092
        text = item.partition("]")[2][1:] if item.startswith("[") else item.partition(":")[2]
        if text and not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
            raise InvalidURL(f"port {text!r} in {redact(url)} is not a number from 1 to 65535")


class Options(BaseModel):
    """Base of each backend's URL options: frozen, and nothing it does not declare."""

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsT = TypeVar("OptionsT", bound=Options)


def split_options(
    url: str, model: type[OptionsT], *, passthrough: Callable[[str], bool] = lambda name: False
) -> tuple[str, OptionsT, dict[str, str]]:
    """(the URL without any query, our options, the options handed to the driver as they are).

    Raises InvalidURL naming the unknown option and the known ones, the value refused, or a
    port that is not one."""
    check_ports(url)
    parts = urlsplit(url)
    ours: dict[str, str] = {}
    driver: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in model.model_fields:
            ours[name] = value
        elif passthrough(name):
            driver[name] = value
        else:
            known = sorted(model.model_fields)
            guess = did_you_mean(name, known)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            raise InvalidURL(
                f"unknown {parts.scheme}:// option {name!r}{hint}; "
                f"known options: {', '.join(known) or 'none'}"
            )
    try:
        options = model.model_validate(ours)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_input=False)
        )
        raise InvalidURL(f"bad {parts.scheme}:// option in {redact(url)}: {problems}") from None
    return urlunsplit(parts._replace(query="")), options, driver


def with_query(url: str, options: dict[str, str]) -> str:
    """The URL with these query options (for a driver that reads its own from the URL)."""
    return urlunsplit(urlsplit(url)._replace(query=urlencode(options)))
