"""Fixtures of the bridge tests. They live in bridgekit.py, a module name no other test folder uses, so
test modules import helpers from ``bridgekit`` and never from a ``conftest`` another folder also has."""

from bridgekit import *  # noqa: F403  (fixtures are registered by their presence in this namespace)
