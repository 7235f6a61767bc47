"""Legacy systems over files in folders.

- ``inbox``: drop folder in — complete files claimed by atomic rename, each record sent once
  (ids from the content hash), rejects next to the archived file.
- ``formats``: CSV, JSON Lines, fixed width and XML record readers.
"""

from interchange.connectors.folders.inbox import DropFolder, write_atomically

__all__ = ["DropFolder", "write_atomically"]
