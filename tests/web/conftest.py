"""Fixtures of the web tests. They live in webkit.py, a module name no other test folder uses, so test
modules import helpers from ``webkit`` and never from a ``conftest`` that another folder also has."""

from webkit import *  # noqa: F403  (fixtures are registered by their presence in this namespace)
