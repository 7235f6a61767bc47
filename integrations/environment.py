"""``INTERCHANGE_*`` environment variables that no setting reads, warned about when settings load.

pydantic-settings ignores an environment variable that matches no field, so a misspelled
override (``BACKEND__EVENTS`` after the prefix, for ``BACKENDS__EVENTS``) used to leave the
default in place without a word. A nested key under a known field is already an error
(every settings model forbids extra keys); what is left is the first name after the prefix.
"""

from __future__ import annotations

import json
import re
import sys
import types
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pydantic
from pydantic import BaseModel

from interchange.adapters.urls import did_you_mean

PREFIX = "INTERCHANGE_"

OTHER_VARIABLES = frozenset(
    PREFIX + name
    for name in (
        "CONFIG_FILE",  # the file load_settings reads (interchange run --config)
        "REQUIRE_BROKERS",  # the pytest plugin: a broker test fails instead of skipping
        "NATIVE_BROKERS",
        "POSTGRES_URL",
        "TOXIPROXY_URL",
        "KAFKA_CLUSTER_URL",
        "AMQP_CLUSTER_URL",
        "STATE_DIR",
        "CACHE_DIR",
        "REDIS_APPENDFSYNC",
        "FAULT_REPORT",
        "KILL_SEED",
    )
)
"""Variables Interchange's own tools read that are not settings: the pytest plugin and test
fixtures, the broker scripts in ``compose/native``, the fault-test reports."""

_PORT = re.compile(rf"^{PREFIX}(?:[A-Z0-9]+_)+PORT$")  # compose/native's INTERCHANGE_AMQP_PORT...


class ConfigurationWarning(UserWarning):
    """Configuration that is probably a mistake but may be meant: an ``INTERCHANGE_*`` variable
    no setting reads, a route for a contract this process never declared. Silence it with
    ``warnings.filterwarnings("ignore", category=ConfigurationWarning)``."""


def warn_unknown_variables(model: type[BaseModel], environ: Mapping[str, str]) -> None:
    """A ConfigurationWarning, with a did-you-mean, for every ``INTERCHANGE_*`` variable in
    ``environ`` that names no field of ``model`` (the Settings) and none of Interchange's other
    variables. Names are compared without case, as pydantic-settings reads them."""
    fields = {name.upper() for name in model.model_fields}
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(PREFIX) or upper in OTHER_VARIABLES or _PORT.match(upper):
            continue
        if upper[len(PREFIX) :].split("__", 1)[0] in fields:
            continue
        # compared without the prefix they all share, which would make any two look alike
        known = sorted(name[len(PREFIX) :] for name in {*_known(model, PREFIX), *OTHER_VARIABLES})
        guess = did_you_mean(upper[len(PREFIX) :], known)
        hint = f"; did you mean {PREFIX}{guess}?" if guess else ""
        warnings.warn(
            f"the environment variable {variable} sets no setting and is ignored{hint} "
            f"(settings are {PREFIX}<KEY>, nested keys joined by __)",
            ConfigurationWarning,
            stacklevel=_callers_level(),
        )


def _callers_level() -> int:
    """The ``stacklevel`` that points a warning at the first line outside Interchange and
    pydantic (the caller's ``Bus.from_config()``), rather than at the settings code."""
    ours = (str(Path(__file__).parent), str(Path(pydantic.__file__).parent))
    frame, level = sys._getframe(2), 2  # 1: warn_unknown_variables, 2: its caller
    while frame is not None and (
        frame.f_code.co_filename.startswith(ours) or "pydantic_settings" in frame.f_code.co_filename
    ):
        frame, level = frame.f_back, level + 1  # type: ignore[assignment]
    return level


def _known(model: type[BaseModel], prefix: str) -> Iterator[str]:
    """Every variable that sets a field of ``model``, nested models' fields included."""
    for name, field in model.model_fields.items():
        variable = prefix + name.upper()
        yield variable
        arms: tuple[Any, ...] = (field.annotation,)
        if get_origin(field.annotation) in (Union, types.UnionType):  # HttpConnector | None
            arms = get_args(field.annotation)
        for arm in arms:
            if isinstance(arm, type) and issubclass(arm, BaseModel):
                yield from _known(arm, variable + "__")


def not_json(error: str, model: type[BaseModel], environ: Mapping[str, str]) -> list[str]:
    """The variables behind pydantic-settings' 'error parsing value for field "x"' (which names
    a field, not the variable): those of that field whose value is not JSON. Never their
    values: they may be secrets."""
    field = re.search(r'field "([^"]+)"', error)
    name = f"{PREFIX}{field.group(1) if field else ''}".upper()
    found = []
    for variable in sorted(environ):
        upper = variable.upper()
        if upper != name and not upper.startswith(name + "__"):
            continue
        if not _structured(model, upper[len(PREFIX) :].lower().split("__")):
            continue  # a plain value (a string, a number) is never parsed as JSON
        try:
            json.loads(environ[variable])
        except ValueError:
            found.append(variable)
    return [f"{variable}: must be JSON (a list or table of values)" for variable in found] or [
        f"{name}: a variable of this setting must be JSON (a list or table of values)"
    ]


def _structured(model: type[BaseModel], path: list[str]) -> bool:
    """Whether the setting at ``path`` (a variable's name split at ``__``) holds a list, a
    table or a model: what pydantic-settings reads from a variable as JSON."""
    annotation: Any = model
    for part in path:
        annotation = _unwrapped(annotation)
        if get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]  # routes.<name>: the table's value
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(part)
            if field is None:
                return False
            annotation = field.annotation
        else:
            return False
    annotation = _unwrapped(annotation)
    origin = get_origin(annotation) or annotation
    return origin in (list, dict, set, tuple, frozenset) or (
        isinstance(origin, type) and issubclass(origin, BaseModel)
    )


def _unwrapped(annotation: Any) -> Any:
    """``X`` of ``X | None`` and of ``Annotated[X, ...]``."""
    while get_origin(annotation) in (Union, types.UnionType, Annotated):
        arms = [arm for arm in get_args(annotation) if arm is not type(None)]
        annotation = arms[0]
    return annotation
