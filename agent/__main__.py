"""``python -m agent`` runs the device daemon (same as ``edgeprof-agent``)."""

from agent.cli import main

if __name__ == "__main__":
    main()
