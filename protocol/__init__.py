"""The wire contract shared by the agent and hostctl: topics, typed messages,
manifest signing. Standard library + PyNaCl only; imports nothing of ours."""

from protocol.errors import ProtocolError, SignatureError

PROTOCOL_VERSION = 1

__all__ = ["PROTOCOL_VERSION", "ProtocolError", "SignatureError"]
