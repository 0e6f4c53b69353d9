"""``python -m tests.support.heartbeat_agent ARGS``: the real agent (``agent.cli``),
re-announcing its info every second instead of every minute, so a test can watch
heartbeats without waiting minutes for them."""

import agent.daemon
from agent.cli import main

HEARTBEAT_S = 1.0

if __name__ == "__main__":
    agent.daemon.HEARTBEAT_EVERY_S = HEARTBEAT_S
    main()
