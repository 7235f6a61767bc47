"""Legacy systems over files in folders.

- ``inbox``: drop folder in — complete files claimed by atomic rename, each record sent once
  (ids from the content hash), rejects next to the archived file.
- ``writer``: drop folder out — events appended to rolling CSV or JSON Lines files, renamed
  into place when rolled, so a reader never sees half a file.
- ``formats``: CSV, JSON Lines, fixed width and XML record readers.
"""

from interchange.connectors.folders.inbox import DropFolder, write_atomically
from interchange.connectors.folders.writer import FileSink

__all__ = ["DropFolder", "FileSink", "write_atomically"]
