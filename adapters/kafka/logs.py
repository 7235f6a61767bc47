"""librdkafka's own log lines, routed into Python logging and rate-limited.

Left alone, librdkafka prints every connection failure to stderr (``%3|...|FAIL|...``): hundreds
of lines in a short outage. Every client this adapter makes hands librdkafka the logger
``interchange.adapters.kafka.librdkafka`` instead, whose filter (adapters/logs.py) lets one line
of each kind (librdkafka's facility: FAIL, ERROR, ...) through per ``EVERY`` seconds and says
how many of that kind it held back.
"""

from __future__ import annotations

import logging

from interchange.adapters.logs import EVERY, RateLimit

__all__ = ["EVERY", "LOGGER", "RateLimit"]

LOGGER = logging.getLogger("interchange.adapters.kafka.librdkafka")
LOGGER.addFilter(RateLimit())
