"""The fleet session and results store a command works with: shared by `push`,
`results`, `collect` and `demo` (command modules never import each other)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostctl.cmdutil import warning_line
from hostctl.errors import HostctlError

if TYPE_CHECKING:
    from hostctl.cli import GlobalOptions
    from hostctl.fleet import Collected

logger = logging.getLogger(__name__)


def open_store(options: GlobalOptions) -> Any:
    """The results store of --db (or the default)."""
    from hostctl.store import ResultStore

    return ResultStore(options.db)


def fleet_session(options: GlobalOptions, store_path: Path) -> Any:
    """A connected session: the store's persistent one (results are queued for it
    while hostctl is away), or a clean one when another hostctl holds it."""
    from hostctl.fleet import FLEET_SUBSCRIPTIONS
    from hostctl.mqtt import HostSession, SessionLock, ephemeral_client_id, host_client_id

    lock = SessionLock(store_path)
    persistent = lock.acquire()
    if not persistent:
        logger.warning(
            "another hostctl is using the session of %s: results it misses now "
            "are fetched by `hostctl collect`",
            store_path,
        )
    session = HostSession(
        options,
        client_id=host_client_id(store_path) if persistent else ephemeral_client_id(),
        subscriptions=FLEET_SUBSCRIPTIONS,
        persistent=persistent,
    )
    session.lock = lock
    try:
        session.connect()
    except BaseException:
        lock.release()
        raise
    return session


def collect_results(options: GlobalOptions, *, wait: float, require_broker: bool) -> Collected:
    """Send Collect to the fleet, store what arrives (see hostctl.fleet.collect).

    With `require_broker` False an unreachable broker is logged and nothing collected.
    """
    from hostctl.fleet import Collected, collect
    from hostctl.keys import load_key

    key_problem: str | None = None
    try:
        key = load_key(options.key)
    except HostctlError as exc:
        # Still worth connecting: the broker may hold queued results for us.
        key_problem = str(exc)
        key = None
    with open_store(options) as store:
        try:
            session = fleet_session(options, store.path)
        except HostctlError:
            if require_broker:
                raise
            logger.info("broker not reachable: showing stored results only")
            return Collected()
        if key_problem is not None:
            # Said once the broker answered (one error line when it does not).
            if require_broker:
                warning_line(f"results cannot be acknowledged to devices: {key_problem}")
            else:
                logger.info("results cannot be acknowledged to devices: %s", key_problem)
        try:
            return collect(session, store, key, wait=wait)
        finally:
            session.close()
