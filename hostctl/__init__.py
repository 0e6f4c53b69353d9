"""hostctl: the host CLI of edgeprof (profile locally, push to a fleet, store and compare results)."""

__version__ = "0.1.0"
