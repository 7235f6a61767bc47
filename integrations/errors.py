"""Every error Interchange raises, in one place for callers to import.

    TransportError                 (adapters) a broker did not do it: may succeed later
    ├── BackendUnavailable         unreachable; nothing was stored
    │   └── BrokersUnreachable     ``interchange run``: no answer within --wait-for-brokers
    ├── PublishRejected            reached, but it refused or could not route the message
    └── RequestTimeout             no reply in time
    ConfigurationError             a wrong setting (also a ValueError): retrying cannot help
    ├── UnknownBackend             a URL scheme no adapter serves
    ├── InvalidURL                 an option a backend does not know, or a bad value (a port
    │                              that is not 1-65535, a Redis db that is not a number)
    ├── AccessRefused              a broker answered and refused the credentials or the
    │                              virtual host (wrong password, missing vhost): not retried
    ├── InvalidRoute               a route its contract cannot work with (a partition key
    │                              the contract lacks)
    ├── OutboxNotMigrated          an outbox of an older version without commit order, and a
    │                              relay whose role may not add it (run ``outbox init``)
    ├── ConfigFileNotFound         the configuration file named does not exist (also a
    │                              FileNotFoundError)
    └── InvalidSettings            the configuration (file, dict, INTERCHANGE_* variables)
                                   does not validate; ``problems`` lists each field's problem
    ContractError                  (contracts)
    ├── DuplicateContract          a second model claims a (name, version) already taken
    └── DecodeError                bytes + headers could not become a contract
        ├── MalformedMessage
        ├── UnknownContract
        ├── SchemaViolation
        └── NoConverter            no chain of converters between two versions
    DuplicateHandler               (a ValueError) a second handler for a channel and group
                                   one Bus already consumes
    Reject, RetryLater             raised by a handler: dead-letter now, or retry after a delay
    ServiceError                   ``interchange run``: the service's own module or factory
                                   raised while loading (its traceback is the cause)
    PollerError                    (a RuntimeError) a table poller's round failed; retried
    └── UnseenTransactions         it cannot see every transaction of its database
    ConfigurationWarning           (a UserWarning, warned, not raised) configuration that is
                                   probably a mistake: an INTERCHANGE_* variable no setting
                                   reads, a route for a contract never declared

The three roots are apart on purpose: ``except TransportError`` around a retry loop catches
what a broker coming back can fix, never a typo in a URL or a contract that cannot decode.
"""

from __future__ import annotations

from interchange.adapters.errors import (
    AccessRefused,
    BackendUnavailable,
    ConfigurationError,
    InvalidURL,
    PublishRejected,
    RequestTimeout,
    TransportError,
    UnknownBackend,
)
from interchange.config import ConfigFileNotFound, InvalidSettings
from interchange.contracts.errors import (
    ContractError,
    DecodeError,
    DuplicateContract,
    MalformedMessage,
    SchemaViolation,
    UnknownContract,
)
from interchange.contracts.versions import NoConverter
from interchange.dispatch import Reject, RetryLater
from interchange.environment import ConfigurationWarning
from interchange.registrations import DuplicateHandler, InvalidRoute
from interchange.runtime import BrokersUnreachable, ServiceError


class PollerError(RuntimeError):
    """A table poller's round failed: its database did not answer, or refused a statement.
    Nothing was marked; the round is tried again."""


class OutboxNotMigrated(ConfigurationError):
    """An outbox created by an older version has no commit order, and this role may not add
    it. Running ``interchange outbox init`` as a role that may (the table's owner) fixes it;
    a relay tries again on its next round."""


class UnseenTransactions(PollerError):
    """The poller cannot see every transaction of its database (a session of another role
    without ``pg_read_all_stats``, or ``track_activities`` off): it reads nothing rather than
    risk passing a row such a transaction commits later."""


__all__ = [
    "AccessRefused",
    "BackendUnavailable",
    "BrokersUnreachable",
    "ConfigFileNotFound",
    "ConfigurationError",
    "ConfigurationWarning",
    "ContractError",
    "DecodeError",
    "DuplicateContract",
    "DuplicateHandler",
    "InvalidRoute",
    "InvalidSettings",
    "InvalidURL",
    "MalformedMessage",
    "NoConverter",
    "OutboxNotMigrated",
    "PollerError",
    "PublishRejected",
    "Reject",
    "RequestTimeout",
    "RetryLater",
    "SchemaViolation",
    "ServiceError",
    "TransportError",
    "UnknownBackend",
    "UnknownContract",
    "UnseenTransactions",
]
