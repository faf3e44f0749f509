"""The four-level chain, unit kinds and roles: the vocabulary shared by definitions and the engine."""

from __future__ import annotations

from enum import StrEnum


class Level(StrEnum):
    """Rungs of the deliberation chain, lowest first; an appeal climbs them one at a time."""

    BUILDING = "building"
    COMMUNITY = "community"
    SUBDISTRICT = "subdistrict"
    DISTRICT = "district"

    @property
    def rank(self) -> int:
        return _LEVEL_ORDER.index(self)

    def above(self) -> Level | None:
        return _LEVEL_ORDER[self.rank + 1] if self.rank + 1 < len(_LEVEL_ORDER) else None

    def below(self) -> Level | None:
        return _LEVEL_ORDER[self.rank - 1] if self.rank > 0 else None


_LEVEL_ORDER = list(Level)


class UnitKind(StrEnum):
    DISTRICT = "district"
    SUBDISTRICT = "subdistrict"
    COMMUNITY = "community"
    BUILDING = "building"
    DEPARTMENT = "department"  # a district functional department, e.g. the administrative approval bureau


# The unit that holds an appeal at each level of the chain.
UNIT_KIND_OF_LEVEL: dict[Level, UnitKind] = {
    Level.BUILDING: UnitKind.BUILDING,
    Level.COMMUNITY: UnitKind.COMMUNITY,
    Level.SUBDISTRICT: UnitKind.SUBDISTRICT,
    Level.DISTRICT: UnitKind.DISTRICT,
}


class Role(StrEnum):
    ENTERPRISE_CONTACT = "enterprise_contact"
    SPECIALIST = "specialist"
    BUILDING_STAFF = "building_staff"
    COMMUNITY_SUPERVISOR = "community_supervisor"
    SUBDISTRICT_SUPERVISOR = "subdistrict_supervisor"
    DISTRICT_SUPERVISOR = "district_supervisor"
    BUREAU_OFFICER = "bureau_officer"
    SYSTEM = "system"  # the engine itself, e.g. the sweeper escalating a breach


# A pseudo-role for definitions: "whoever holds the appeal at its current chain level".
CHAIN = "chain"

ROLES_OF_LEVEL: dict[Level, frozenset[Role]] = {
    Level.BUILDING: frozenset({Role.BUILDING_STAFF, Role.SPECIALIST}),
    Level.COMMUNITY: frozenset({Role.COMMUNITY_SUPERVISOR}),
    Level.SUBDISTRICT: frozenset({Role.SUBDISTRICT_SUPERVISOR}),
    Level.DISTRICT: frozenset({Role.DISTRICT_SUPERVISOR, Role.BUREAU_OFFICER}),
}

# Who is assigned an appeal that arrives at a level.
LEAD_ROLE_OF_LEVEL: dict[Level, Role] = {
    Level.BUILDING: Role.BUILDING_STAFF,
    Level.COMMUNITY: Role.COMMUNITY_SUPERVISOR,
    Level.SUBDISTRICT: Role.SUBDISTRICT_SUPERVISOR,
    Level.DISTRICT: Role.DISTRICT_SUPERVISOR,
}

SUPERVISOR_ROLES = frozenset({Role.COMMUNITY_SUPERVISOR, Role.SUBDISTRICT_SUPERVISOR, Role.DISTRICT_SUPERVISOR})

DEFINITION_ROLES = frozenset({*(r.value for r in Role if r is not Role.SYSTEM), CHAIN})
