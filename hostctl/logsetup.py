"""Logging for people, configured by the app callback when a command runs (never
for ``hostctl --help``, which loads no logging): warnings and errors as sentences
through :mod:`hostctl.cmdutil`'s console lines, every record with ``-v``."""

from __future__ import annotations

import logging

from hostctl.cmdutil import error_line, warning_line


class SentenceHandler(logging.Handler):
    """Log records for people: ``warning: <message>`` on stderr, one line, escaped;
    no time, level name or logger name (those are for ``-v``)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record must never take the command down
            message = str(record.msg)
        line = " ".join(message.split())  # one line, whatever a device sent
        if record.levelno >= logging.ERROR:
            error_line(line)
        else:
            warning_line(line)


def configure_logging(verbose: bool) -> None:
    """Warnings as sentences; with ``verbose``, every record with time and origin."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_edgeprof", False):
            root.removeHandler(old)
    handler: logging.Handler
    if verbose:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.setLevel(logging.DEBUG)
    else:
        handler = SentenceHandler(logging.WARNING)
        root.setLevel(logging.WARNING)
    setattr(handler, "_edgeprof", True)  # noqa: B010 - marks the handler ours to replace
    root.addHandler(handler)
