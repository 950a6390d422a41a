"""What of a person or a thing a viewer gets to see, graded by ``permissions.may`` (DESIGN §1, §7).

Every disclosure here follows a relation: exact coordinates only to those who may see the exact location,
a ~100 m cell (or the named place) to everyone else who may see the thing; an owner's contacts only while
a relation allows it; readings in full, as a derived yes/no state, or not at all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

from hub.domain.events import Value
from hub.domain.model import Action, Contact, Location, Relation, RelationKind, Resident, Thing
from hub.domain.permissions import active_relations, may
from hub.domain.vocabulary import BOOLEAN

#: What an erased resident is shown as, wherever history still mentions them.
FORMER_NEIGHBOR: Final = "former neighbor"

#: Metres per degree of latitude (mean Earth radius 6 371 008.8 m).
_M_PER_DEG_LAT: Final = 2 * math.pi * 6_371_008.8 / 360
#: Decimal places of a coarse coordinate: ~1 m, far below the cell size, so no false precision.
_DIGITS: Final = 5
#: Beyond this latitude a metre grid in longitude degenerates; cells there span the whole circle's slice.
_MIN_COS: Final = 1e-6


def coarse_location(location: Location | None, grid_m: float = 100.0) -> Location | None:
    """The centre of the ``grid_m`` × ``grid_m`` cell holding the location, or its named place.

    The cell is measured in metres (its longitude width follows the latitude), so every point in a cell
    gives the same answer and the exact point cannot be recovered. A named place wins and drops the
    coordinates; a location with neither gives None.
    """
    if grid_m <= 0:
        raise ValueError(f"grid_m must be positive, got {grid_m}")
    if location is None:
        return None
    if location.place:
        return Location(place=location.place)
    if location.lat is None or location.lon is None:
        return None
    lat_step = grid_m / _M_PER_DEG_LAT
    lat = _cell_centre(location.lat, lat_step)
    # The row's centre latitude (not the point's) sets the longitude width, so one row shares one width.
    lon_step = grid_m / (_M_PER_DEG_LAT * max(math.cos(math.radians(lat)), _MIN_COS))
    lon = _cell_centre(location.lon, lon_step)
    lat = min(max(lat, -90.0), 90.0)
    lon = (lon + 180.0) % 360.0 - 180.0
    return Location(lat=round(lat, _DIGITS), lon=round(lon, _DIGITS))


def location_for(
    viewer: Resident | None, thing: Thing, relations: Sequence[Relation], now: float
) -> Location | None:
    """The thing's location as this viewer may see it: exact, coarse, or None."""
    if may(viewer, Action.SEE_EXACT_LOCATION, thing, relations, now):
        return thing.location
    if may(viewer, Action.SEE, thing, relations, now):
        return coarse_location(thing.location)
    return None


def contact_for(
    viewer: Resident | None,
    owner: Resident,
    thing: Thing,
    relations: Sequence[Relation],
    now: float,
) -> tuple[Contact, ...]:
    """``owner``'s contact channels for this viewer: all of them while a relation allows, else none.

    ``owner`` must be an active owner, steward or lender of the thing (the person a borrower deals with);
    any other resident's contacts are never disclosed through a thing.
    """
    if owner.erased or not may(viewer, Action.SEE_OWNER_CONTACT, thing, relations, now):
        return ()
    keepers = {RelationKind.OWNS, RelationKind.STEWARDS, RelationKind.LENDS}
    if not any(r.resident == owner.id and r.kind in keepers for r in active_relations(thing, relations, now)):
        return ()
    return owner.contacts


def public_pseudonym(resident: Resident) -> str:
    """The name others see: the pseudonym, or a stable placeholder once the resident was erased."""
    return FORMER_NEIGHBOR if resident.erased else resident.pseudonym


def derived_state(thing: Thing, values: Mapping[str, Value]) -> dict[str, bool]:
    """The yes/no state a DERIVED share shows: the boolean values named in ``thing.derived_from``.

    With no ``derived_from``, every boolean canonical measurement present; numbers never pass.
    """
    names = thing.derived_from or tuple(sorted(BOOLEAN))
    return {name: value for name in names if isinstance(value := values.get(name), bool)}


def visible_values(
    viewer: Resident | None,
    thing: Thing,
    relations: Sequence[Relation],
    now: float,
    values: Mapping[str, Value],
) -> dict[str, Value] | None:
    """The reading values this viewer may see: all, the derived state only, or None."""
    if may(viewer, Action.SEE_READINGS, thing, relations, now):
        return dict(values)
    if may(viewer, Action.SEE_DERIVED, thing, relations, now):
        return dict(derived_state(thing, values))
    return None


def _cell_centre(value: float, step: float) -> float:
    return (math.floor(value / step) + 0.5) * step
