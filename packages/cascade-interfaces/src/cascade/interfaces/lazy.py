"""A package's public names, written once in its ``if TYPE_CHECKING:`` imports and imported
from their modules when first used (PEP 562): what every package of the family, and this one,
exports its names with. Versioned with the family, as :mod:`cascade.interfaces.wire` is."""

from ._lazy import lazy_exports

__all__ = ["lazy_exports"]
