"""A broker's ACL written from a team's roles file (:mod:`cascade.control.access`), so that
the broker refuses the CLI what the roles refuse the dashboard: `cascade acl`."""

from ._acl import AclError
from ._acl_mosquitto import mosquitto_acl
from ._acl_nats import nats_authorization
from ._acl_rabbitmq import rabbitmq_definitions, rabbitmq_definitions_json

__all__ = [
    "AclError",
    "mosquitto_acl",
    "nats_authorization",
    "rabbitmq_definitions",
    "rabbitmq_definitions_json",
]
