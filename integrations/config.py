"""Configuration: ``interchange.toml`` (or YAML, or a dict) overridden by ``INTERCHANGE_*``
environment variables, validated by pydantic-settings.

Nested keys use a double underscore in the environment:
``INTERCHANGE_BACKENDS__COMMANDS=amqp://guest:guest@127.0.0.1:5672//``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from interchange.adapters.errors import ConfigurationError
from interchange.adapters.urls import did_you_mean
from interchange.environment import PREFIX as ENV_PREFIX
from interchange.environment import not_json, warn_unknown_variables

DEFAULT_FILE = "interchange.toml"
CONFIG_FILE_VARIABLE = "INTERCHANGE_CONFIG_FILE"
"""Names the file ``load_settings()`` reads when given none (``interchange run --config`` sets
it for the service it imports); otherwise ``./interchange.toml`` when present."""


class InvalidSettings(ConfigurationError):
    """The settings do not validate. The message lists every problem on one line as
    ``field.path: what is wrong`` (input values are never echoed: they may be secrets)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration: " + "; ".join(problems))
        self.problems = problems

    @classmethod
    def from_validation(cls, error: ValidationError) -> InvalidSettings:
        return cls(
            [
                f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                for e in error.errors(include_input=False, include_url=False)
            ]
        )


class ConfigFileNotFound(FileNotFoundError, ConfigurationError):
    """The configuration file named does not exist (also a FileNotFoundError)."""

    def __str__(self) -> str:
        return f"no such file: {self.filename}"


class Backends(BaseModel):
    """Which backend carries which traffic, as URLs (memory://, amqp://, kafka://, redis://)."""

    model_config = ConfigDict(extra="forbid")
    commands: str = "memory://"
    events: str = "memory://"
    fallback: str | None = None
    """A ``redis://`` URL: where publishes park while a primary is unreachable."""
    fallback_timeout: PositiveFloat = 5.0
    """Seconds the fallback may take to answer before a publish fails with both named; also
    how long a publish waits for a primary that does not answer (no connection, no
    acknowledgement) before the fallback takes it. A primary that refuses connections or has
    closed them is given up at once."""
    cool_down: PositiveFloat = 2.0
    """Seconds an open circuit waits before probing its primary again."""
    drain_interval: PositiveFloat = 0.5
    """Seconds between the drainer's looks at the spool."""


class RetryPolicy(BaseModel):
    """How a failing handler is retried before its message is dead-lettered."""

    model_config = ConfigDict(extra="forbid")
    max_attempts: PositiveInt = 3
    """Handler calls in all, the first included; after the last failure: dead letter."""
    max_deliveries: PositiveInt = 20
    """Deliveries in all, consumer crashes included, before a message is dead-lettered as
    poison without another handler call. A consumer that dies holding prefetched messages
    counts a delivery against each of them though it handled only one, so this bound is
    looser than ``max_attempts`` (RabbitMQ 4's quorum queues default to 20 too)."""
    initial_delay: float = Field(0.5, ge=0)
    multiplier: float = Field(2.0, ge=1)
    max_delay: float = Field(30.0, ge=0)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before delivery ``attempt + 1``."""
        return float(min(self.max_delay, self.initial_delay * self.multiplier ** (attempt - 1)))


class Route(BaseModel):
    """Where one contract travels, keyed by contract name in ``[routes."<name>"]``.

    Commands use ``queue`` (point-to-point) and ``exchange`` (broadcast); events use ``topic``
    and ``partition_key``. Every name defaults to the contract name.
    """

    model_config = ConfigDict(extra="forbid")
    queue: str | None = None
    exchange: str | None = None
    groups: list[str] = Field(default_factory=list)
    """Broadcast groups whose queues are declared at start, so broadcasts sent before their
    consumers run are kept."""
    topic: str | None = None
    partition_key: str | None = None
    """Name of the contract field whose value is the partition key (per-key order)."""
    bare_json: bool = False
    """Accept header-less JSON from legacy producers on this route, read as this contract."""
    versions: list[PositiveInt] | None = None
    """Event versions one publish writes (dual publishing), derived by registered converters."""
    layout: Literal["shared", "per-version"] = "shared"
    """Versions share one topic (the version travels in headers) or get ``<topic>.v<N>`` each."""
    retry: RetryPolicy | None = None


_DEFAULT_ROUTE = Route()


class HttpConnector(BaseModel):
    """``[connectors.http]``: the HTTP gateway ``interchange bridge`` serves."""

    model_config = ConfigDict(extra="forbid")
    expose: list[str]
    """Contract names that get routes; nothing else is reachable."""
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_keys: dict[str, str] = Field(default_factory=dict)
    """Caller name -> API key. Better set from the environment than written in a file:
    ``INTERCHANGE_CONNECTORS__HTTP__API_KEYS='{"shop": "..."}'``."""
    webhook_secrets: list[str] = Field(default_factory=list)
    """Standard Webhooks secrets (``whsec_...``); several during a rotation."""
    max_body_bytes: PositiveInt = 1 << 20


class WebhookEndpoint(BaseModel):
    """``[[connectors.webhooks]]``: events delivered to a receiver's URL by HTTP POST."""

    model_config = ConfigDict(extra="forbid")
    name: str
    """The endpoint's consumer group is ``webhook.<name>``: it reads every event at its pace."""
    url: str
    events: list[str]
    """Event contract names delivered to this endpoint."""
    secrets: list[str] = Field(default_factory=list)
    """Standard Webhooks secrets (``whsec_...``): each delivery carries a signature per secret,
    so a receiver rotating its secret accepts either."""
    timeout: PositiveFloat = 10.0
    concurrency: PositiveInt = 4
    """Deliveries in flight at once, in order per partition key: an event waiting out its
    backoff holds only its own key. With 1, deliveries go one at a time and a backoff holds
    the endpoint."""
    retry: RetryPolicy = Field(
        default_factory=lambda: RetryPolicy(max_attempts=8, initial_delay=1.0, max_delay=60.0)
    )
    max_retry_after: PositiveFloat = 300.0
    """The longest wait a receiver's Retry-After may ask for."""
    allow_private: bool = False
    """Deliver to loopback or private addresses (refused otherwise: a webhook URL must not
    reach into this service's own network unless meant to)."""
    start: str = "latest"
    """Where the endpoint's group begins the first time it runs (a group that committed
    resumes where it stopped): ``latest``, the events published from the moment the endpoint
    is attached (registered) on; ``earliest``, every event the log still holds."""

    @field_validator("start")
    @classmethod
    def _known_start(cls, value: str) -> str:
        if value not in WEBHOOK_STARTS:
            guess = did_you_mean(value, WEBHOOK_STARTS)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            raise ValueError(
                f"start {value!r} is not one of {', '.join(map(repr, WEBHOOK_STARTS))}{hint}"
            )
        return value


WEBHOOK_STARTS = ("latest", "earliest")


SqlName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
"""A table name the SQL connectors put into DDL: a plain identifier, nothing to escape."""


class OutboxConnector(BaseModel):
    """``[connectors.outbox]``: the relay of a transactional outbox table to the Bus."""

    model_config = ConfigDict(extra="forbid")
    url: str
    """The database: ``postgresql://user:pass@host/db`` or ``sqlite:///path.db``."""
    table: SqlName = "interchange_outbox"
    batch: PositiveInt = 500
    """Rows read, published and marked per transaction."""
    poll_interval: PositiveFloat = 1.0
    """Seconds between reads when no NOTIFY wakes the relay (PostgreSQL) or on SQLite."""
    max_attempts: PositiveInt = 10
    """A row the broker refuses this often goes to ``<table>_dead_letters``."""
    retention_hours: NonNegativeFloat = 24.0
    """Sent rows older than this are deleted (every 5 minutes, ``batch`` rows per
    transaction); 0 keeps them. Dead letters are kept."""


class SqlSinkConnector(BaseModel):
    """``[[connectors.sql_sinks]]``: a contract's messages upserted into a legacy table, each
    effect once (the message id is recorded in ``interchange_processed`` in the same
    transaction)."""

    model_config = ConfigDict(extra="forbid")
    name: str
    """Names the sink in ``interchange_processed`` (and its group: ``sql.<name>``)."""
    url: str
    contract: str
    """A command (a competing consumer of its queue) or an event (group ``sql.<name>``)."""
    group: str | None = None
    table: SqlName
    keys: list[str] = Field(min_length=1)
    """The table's columns under a unique constraint: the upsert's conflict target."""
    columns: dict[str, str] = Field(min_length=1)
    """Table column -> contract field (``customer.id`` reaches into a nested model)."""
    version_column: str | None = None
    """A mapped column that only grows: an older message never overwrites a newer row."""


class TablePollerConnector(BaseModel):
    """``[[connectors.pollers]]``: a legacy table's new (or updated) rows published as events,
    the high-water mark kept in ``interchange_poller_state`` in the same database."""

    model_config = ConfigDict(extra="forbid")
    name: str
    url: str
    table: SqlName
    contract: str
    """The event each row becomes."""
    mode: Literal["incrementing", "timestamp+incrementing"] = "incrementing"
    id_column: str = "id"
    """Strictly increasing (incrementing), or the tie-breaker among rows of one time."""
    timestamp_column: str | None = None
    """The modification time, for ``timestamp+incrementing``."""
    key_column: str | None = None
    """The partition key (default: the id column)."""
    columns: dict[str, str] = Field(min_length=1)
    """Table column -> contract field."""
    batch: PositiveInt = 500
    poll_interval: PositiveFloat = 1.0


class FixedColumn(BaseModel):
    """One column of a fixed-width file: its name, first character (1-based) and width."""

    model_config = ConfigDict(extra="forbid")
    name: str
    start: PositiveInt
    width: PositiveInt


class DropFolderConnector(BaseModel):
    """``[[connectors.drop_folders]]``: files dropped into a directory, each record sent as a
    command or published as an event; finished files move to ``archive/``."""

    model_config = ConfigDict(extra="forbid")
    name: str
    path: Path
    contract: str
    format: Literal["csv", "jsonl", "fixed", "xml"] = "csv"
    pattern: str = "*"
    """Which dropped files to take (a glob: ``*.csv``)."""
    encoding: str = "utf-8"
    columns: dict[str, str] = Field(default_factory=dict)
    """File field -> contract field; empty: the file's names are the contract's."""
    fixed: list[FixedColumn] = Field(default_factory=list)
    """The columns of a fixed-width file."""
    record: str = "record"
    """The XML element that is one record."""
    key: str | None = None
    """The contract field that is an event's partition key."""
    complete: Literal["stable", "marker"] = "stable"
    """A file is whole when its size and time held for ``stable_checks`` polls, or once
    ``FILE.done`` exists."""
    stable_checks: PositiveInt = 3
    poll_interval: PositiveFloat = 1.0
    batch: PositiveInt = 500
    ledger_days: PositiveFloat = 30.0
    """How long a finished file's content hash is remembered in ``archive/.finished``: an
    identical file dropped again within it sends nothing; older entries are forgotten."""


class FileSinkConnector(BaseModel):
    """``[[connectors.file_sinks]]``: an event contract written to rolling files in a folder."""

    model_config = ConfigDict(extra="forbid")
    name: str
    path: Path
    contract: str
    group: str | None = None
    """The consumer group (default ``files.<name>``)."""
    format: Literal["jsonl", "csv"] = "jsonl"
    prefix: str | None = None
    """Finished files are ``<prefix>-<UTC time>-<n>.<ext>`` (default: the name)."""
    roll_bytes: PositiveInt = 10 << 20
    roll_seconds: PositiveFloat = 60.0


class Connectors(BaseModel):
    """``[connectors]``: the legacy doors ``interchange bridge`` runs in one process.

    A section lacking a required field (e.g. only ``INTERCHANGE_CONNECTORS__HTTP__API_KEYS``
    exported, for a service whose file has no ``[connectors.http]``) does not invalidate the
    settings of commands that never use connectors: it is left out (None, or an empty list)
    and ``check_complete()``, called by what runs connectors, reports it. Unknown keys and
    invalid values still fail at once."""

    model_config = ConfigDict(extra="forbid")
    _incomplete: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _defer_incomplete(cls, data: Any, handler: ModelWrapValidatorHandler[Connectors]) -> Any:
        try:
            return handler(data)
        except ValidationError as error:
            problems = error.errors(include_input=False, include_url=False)
            if not isinstance(data, dict) or any(p["type"] != "missing" for p in problems):
                raise
            sections = {p["loc"][0] for p in problems}
            complete = handler({k: v for k, v in data.items() if k not in sections})
            complete._incomplete = [
                f"connectors.{'.'.join(map(str, p['loc']))}: {p['msg']}" for p in problems
            ]
            return complete

    def check_complete(self) -> None:
        """Raise InvalidSettings naming every required field a connector section lacks."""
        if self._incomplete:
            raise InvalidSettings(self._incomplete)

    http: HttpConnector | None = None
    webhooks: list[WebhookEndpoint] = Field(default_factory=list)
    outbox: OutboxConnector | None = None
    sql_sinks: list[SqlSinkConnector] = Field(default_factory=list)
    pollers: list[TablePollerConnector] = Field(default_factory=list)
    drop_folders: list[DropFolderConnector] = Field(default_factory=list)
    file_sinks: list[FileSinkConnector] = Field(default_factory=list)


class Settings(BaseSettings):
    """Everything a Bus is configured with: backends, routes, retries, timeouts, dedupe.

    Read from ``interchange.toml`` (or YAML, or a dict) by ``load_settings``; every key can be
    overridden by an ``INTERCHANGE_*`` environment variable (``__`` between nested keys). Unknown
    keys are errors.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid"
    )

    source: str = "interchange"
    """CloudEvents ``source`` stamped on everything this service sends."""
    backends: Backends = Field(default_factory=Backends)
    routes: dict[str, Route] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    channel_prefix: str = ""
    """Prepended to every queue, exchange and topic name (tests use it for isolation)."""
    request_timeout: PositiveFloat = 5.0
    concurrency: PositiveInt = 1
    """Consumer threads per handler, unless the handler says otherwise."""
    max_body_bytes: PositiveInt = 1 << 20
    dedupe_ttl: PositiveFloat = 3600.0
    """Seconds a handled message id is remembered, to drop redelivered duplicates."""
    contract_modules: list[str] = Field(default_factory=list)
    """Modules that declare this service's contracts, for ``contracts`` and ``asyncapi``."""
    dedupe: str | None = None
    """Where handled ids are kept: this process (None, ``memory://``) or a ``redis://`` URL
    shared by every consumer process, so a replacement for a killed one skips its work."""
    connectors: Connectors = Field(default_factory=Connectors)
    """Legacy connectors that ``interchange bridge`` runs."""
    tracing: bool = True
    """OpenTelemetry spans and trace context on every message, once the application set a
    tracer provider (needs the ``otel`` extra; off: not even the check)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init values; the environment must override them.
        warn_unknown_variables(settings_cls, os.environ)  # one no setting reads: misspelled?
        return env_settings, init_settings

    def route(self, name: str) -> Route:
        return self.routes.get(name) or _DEFAULT_ROUTE

    @classmethod
    def without_environment(cls, **values: Any) -> Settings:
        """Settings from ``values`` alone: no ``INTERCHANGE_*`` variable overrides them (what a
        test wants, whatever the shell it runs in exported)."""
        return _Explicit(**values)


class _Explicit(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def load_settings(config: str | Path | Mapping[str, Any] | Settings | None = None) -> Settings:
    """Settings from a file path, a mapping, or (None) the file ``INTERCHANGE_CONFIG_FILE``
    names, else ``./interchange.toml`` when present."""
    if isinstance(config, Settings):
        return config
    if config is None:
        named = os.environ.get(CONFIG_FILE_VARIABLE)
        config = named or (DEFAULT_FILE if Path(DEFAULT_FILE).exists() else {})
    if isinstance(config, Mapping):
        return _validated(dict(config))
    path = Path(config)
    if not path.exists():
        raise ConfigFileNotFound(2, "No such file", str(path))
    if path.is_dir():
        raise ConfigurationError(f"configuration file {path} is a directory")
    text = path.read_text(encoding="utf-8")  # a pipe or /dev/null reads too
    if not text.strip():
        return _validated({})  # an empty file: every setting at its default
    if path.suffix == ".toml":
        data: Any = tomllib.loads(text)
    elif path.suffix in (".yaml", ".yml"):
        data = yaml.safe_load(text) or {}
    else:
        raise ConfigurationError(f"config file {path} must end in .toml, .yaml or .yml")
    if not isinstance(data, dict):
        raise ConfigurationError(f"config file {path} must hold a table of settings")
    return _validated(data)


def _validated(data: dict[str, Any]) -> Settings:
    try:
        return Settings(**data)
    except ValidationError as error:
        raise InvalidSettings.from_validation(error) from None
    except SettingsError as error:  # a structured variable that is not JSON
        raise InvalidSettings(not_json(str(error), Settings, os.environ)) from None
