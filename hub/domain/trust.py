"""Trust between neighbors from verified events and vouches, never from surveillance (DESIGN §1).

Only what the hub itself witnessed counts:

- a return scanned at a reader (``return_reader`` set) counts as on time when ``returned_at <= due``,
  else as late. A return recorded only from the web neither raises nor lowers trust: nobody but the
  clicker saw the tool come back. A loan still out (even overdue) counts once it is returned or lost;
- a loan with a ``damage`` report counts as damaged; a loan in state LOST counts as lost;
- a vouch counts once per distinct other resident; vouching for oneself counts nothing.

Tiers (what a lending policy's ``min_tier`` compares against) come from one score:

    score = on_time + 2 × min(vouches, 3) − 2 × late − 4 × damaged − 8 × lost

==  ========  ==========================================
0   newcomer  otherwise
1   known     score ≥ 2
2   trusted   score ≥ 8 and at least 3 on-time returns
3   pillar    score ≥ 20
==  ========  ==========================================

Vouches are capped so a circle of friends cannot vouch someone up past "known"; every tier above that
needs on-time returns the hub saw (a pillar at least 14, as vouches add at most 6). One late return
costs two on-time ones, a damage four, a loss eight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from hub.domain.model import Loan, LoanState

TIER_NAMES: Final[tuple[str, ...]] = ("newcomer", "known", "trusted", "pillar")

_MAX_COUNTED_VOUCHES: Final = 3
#: (tier, minimum score, minimum on-time returns), highest first.
_TIERS: Final[tuple[tuple[int, int, int], ...]] = ((3, 20, 0), (2, 8, 3), (1, 2, 0))


@dataclass(frozen=True, slots=True)
class TrustRecord:
    """Counts of a resident's verified loan events and who vouched for them."""

    on_time: int = 0
    late: int = 0
    damaged: int = 0
    lost: int = 0
    vouches: tuple[str, ...] = ()  # resident ids, distinct, never the resident themself


def trust_record(resident_id: str, loans: Sequence[Loan], vouchers: Sequence[str]) -> TrustRecord:
    """Count the verified events of ``resident_id``'s loans (others in ``loans`` are ignored) and vouches."""
    on_time = late = damaged = lost = 0
    for loan in loans:
        if loan.borrower != resident_id:
            continue
        if loan.return_reader and loan.returned_at is not None:
            if loan.returned_at <= loan.due:
                on_time += 1
            else:
                late += 1
        if loan.damage:
            damaged += 1
        if loan.state == LoanState.LOST:
            lost += 1
    vouches = tuple(dict.fromkeys(v for v in vouchers if v and v != resident_id))
    return TrustRecord(on_time=on_time, late=late, damaged=damaged, lost=lost, vouches=vouches)


def score(record: TrustRecord) -> int:
    """The one number the tiers compare against (see the module docstring)."""
    return (
        record.on_time
        + 2 * min(len(record.vouches), _MAX_COUNTED_VOUCHES)
        - 2 * record.late
        - 4 * record.damaged
        - 8 * record.lost
    )


def tier(record: TrustRecord) -> int:
    """0 newcomer, 1 known, 2 trusted, 3 pillar (names in ``TIER_NAMES``)."""
    points = score(record)
    for level, min_score, min_on_time in _TIERS:
        if points >= min_score and record.on_time >= min_on_time:
            return level
    return 0


def explain(record: TrustRecord) -> str:
    """Why a resident has their trust, e.g. "4 on-time returns, 1 late, vouched by 2"."""
    parts: list[str] = []
    if record.on_time:
        parts.append(f"{record.on_time} on-time return{'s' if record.on_time != 1 else ''}")
    if record.late:
        parts.append(f"{record.late} late")
    if record.damaged:
        parts.append(f"{record.damaged} damaged")
    if record.lost:
        parts.append(f"{record.lost} lost")
    if not parts:
        parts.append("no verified loans yet")
    if record.vouches:
        parts.append(f"vouched by {len(record.vouches)}")
    return ", ".join(parts)
