"""Test support: a real Mosquitto broker per test session, free ports."""
