"""Legacy connectors: ways for systems that know nothing of Interchange to feed it."""

from interchange.connectors.files import FileRow, RejectedRow, read_csv_commands

__all__ = ["FileRow", "RejectedRow", "read_csv_commands"]
