"""Teams: a roles file of grants (viewer, operator, admin over scopes) and what each
identity may see and do under it.

The dashboard asks it for every read and control of a signed-in person; `cascade acl`
writes a broker's ACL from it, so the broker refuses the same for the CLI.
"""

from ._access import Access, Among
from ._identity import Identity, Via
from ._roles import BrokerLogins, Grant, Role, Roles, RolesError
from ._scopes import GrantScope, ScopeError, glob_within, parse_scope

__all__ = [
    "Access",
    "Among",
    "BrokerLogins",
    "Grant",
    "GrantScope",
    "Identity",
    "Role",
    "Roles",
    "RolesError",
    "ScopeError",
    "Via",
    "glob_within",
    "parse_scope",
]
