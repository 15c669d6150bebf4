"""The roles of API keys and console users: their own module, with no import, so that the
command line can offer them (``--role``) without loading the policy and the store."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    enroller = "enroller"
    operator = "operator"
    reviewer = "reviewer"
    auditor = "auditor"
