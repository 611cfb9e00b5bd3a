"""MQTT connector for Cascade (see the package README)."""

__all__: list[str] = []
