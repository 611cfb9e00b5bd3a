"""The access audit's writes and the API tokens: the part of :class:`~cascade.history.History`
a team's dashboard keeps who did what with, and who may."""

from __future__ import annotations

import time

from ._access import access_row, count_access, insert_access
from ._history_base import HistoryBase
from ._tokens import (
    ApiToken,
    NewToken,
    find_token,
    insert_token,
    list_tokens,
    revoke_token,
    token_used,
)

__all__ = ["HistoryAccess"]


class HistoryAccess(HistoryBase):
    """The access audit's rows and the API tokens of :class:`~cascade.history.History`."""

    def record_access(
        self,
        *,
        who: str,
        via: str,
        action: str,
        target: str,
        outcome: str,
        reason: str | None = None,
        at: float | None = None,
        claim: str | None = None,
        count: int = 1,
        last_at: float | None = None,
    ) -> int:
        """Add a row to the access audit: a team's dashboard let ``who`` (named by ``via``:
        ``oidc``, ``proxy``, ``api-token``, ``token``; by the ID token's ``claim`` for ``oidc``)
        do ``action`` on ``target`` (``outcome`` ``allowed``), or refused it (``refused``, with
        its ``reason``), at ``at`` (now by default); ``count`` alike, the last at ``last_at``
        (:meth:`count_access` adds more). :meth:`audit` lists the refusals and vouches with the
        rest (see :attr:`AuditEvent.vouched`). The row's id; ``ValueError`` for a ``via`` or
        ``outcome`` it does not know; :class:`HistoryError` when the database cannot be
        written."""
        self._writable()
        row = access_row(
            at=time.time() if at is None else at, who=who, via=via, action=action,
            target=target, outcome=outcome, reason=reason, claim=claim, count=count,
            last_at=last_at,
        )  # fmt: skip
        return self._write(
            lambda c: insert_access(c, row), f"cannot write the access audit to {self.location}"
        )

    def count_access(self, row_id: int, count: int, last_at: float) -> None:
        """Access row ``row_id`` (of :meth:`record_access`) now stands for ``count`` alike, the
        last at ``last_at``."""
        self._writable()
        self._write(
            lambda c: count_access(c, row_id, count, last_at),
            f"cannot write the access audit to {self.location}",
        )

    # -- API tokens --------------------------------------------------------------------------

    def create_token(
        self,
        holder: str,
        *,
        created_by: str,
        note: str | None = None,
        expires_at: float | None = None,
    ) -> NewToken:
        """Make an API token for ``holder`` (a person as the roles file names them: the token
        carries their roles, whatever they are when it is used). The returned
        :attr:`NewToken.secret` is the only copy there is: the history keeps its SHA-256.
        ``expires_at``: epoch seconds (``None``: until revoked). ``ValueError`` for an empty
        or unprintable name, or an expiry in the past."""
        self._writable()
        now = time.time()
        return self._write(
            lambda c: insert_token(
                c, holder, created_by=created_by, note=note, expires_at=expires_at, now=now
            ),
            f"cannot make a token in {self.location}",
        )

    def tokens(self, *, holder: str | None = None) -> list[ApiToken]:
        """The API tokens (of ``holder``), the newest first, revoked and expired ones too;
        never a secret nor its hash."""
        return self._read(lambda c: list_tokens(c, holder=holder))

    def find_token(self, secret: str) -> ApiToken | None:
        """The token whose secret ``secret`` is (check :meth:`ApiToken.state`: a revoked or
        expired one is found too), ``None`` when no token's is."""
        return self._read(lambda c: find_token(c, secret))

    def token_used(self, token_id: int, at: float | None = None) -> None:
        """Note that token ``token_id`` was used (its ``last_used_at``)."""
        when = time.time() if at is None else at
        self._write(
            lambda c: token_used(c, token_id, when), f"cannot note a token's use in {self.location}"
        )

    def revoke_token(self, token_id: int) -> ApiToken | None:
        """Revoke token ``token_id`` now (one revoked already keeps its time); the token as
        revoked, ``None`` when there is no such token. A dashboard stops accepting it within
        its cache's few seconds."""
        now = time.time()
        return self._write(
            lambda c: revoke_token(c, token_id, now),
            f"cannot revoke a token in {self.location}",
        )
