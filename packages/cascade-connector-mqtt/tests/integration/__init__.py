"""Integration tests of the MQTT connector against real brokers."""
