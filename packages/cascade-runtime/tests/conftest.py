"""Fixtures the runtime's tests share."""

from cascade.testkit import s3_server  # noqa: F401 - the fixture: moto's S3 server on loopback
