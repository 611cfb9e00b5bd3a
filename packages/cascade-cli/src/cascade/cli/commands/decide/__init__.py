"""`cascade retry|skip|complete|fail`: a decision on a held task, one or every match (`--held`)."""

from ._command import complete, fail, retry, skip

__all__ = ["complete", "fail", "retry", "skip"]
