"""Creating and changing a link from a checked request body: one path for the JSON API and
the pages, so a form can do nothing the API refuses and the API nothing a form could not.

What the schemas cannot check alone lives here: each target (the link's and its rules') is
checked like the API's `url`, `valid_from` must come before `expires_at`, a password is
stored only as its hash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from starlette.requests import Request

from app.kernel.problems import Problem, invalid_fields
from app.modules.shortener.limits import CreationLimits
from app.modules.shortener.passwords import LinkPasswords
from app.modules.shortener.rules import RedirectRule
from app.modules.shortener.schemas import CreateLink, UpdateLink
from app.modules.shortener.service import ClosedWindow, Link, Links

Checked = Callable[[Request, str, str], str]

# PATCH's fields that the table names otherwise.
_COLUMNS = {"url": "target_url"}


def closed_window(moved: str = "valid_from") -> Problem:
    return invalid_fields([{"field": moved, "message": "valid_from must be before expires_at."}])


@dataclass(frozen=True)
class LinkEditor:
    links: Links
    passwords: LinkPasswords
    checked: Checked
    limits: CreationLimits | None = None  # links created per user and client

    def checked_rules(
        self, request: Request, rules: list[RedirectRule] | None
    ) -> list[dict[str, Any]]:
        return self.checked_rules_with(self.checked, request, rules)

    @staticmethod
    def checked_rules_with(
        checked: Checked, request: Request, rules: list[RedirectRule] | None
    ) -> list[dict[str, Any]]:
        """The rules as stored, each target checked like `url` (one 422 naming every bad one)."""
        stored, errors = [], []
        for number, rule in enumerate(rules or []):
            try:
                rule.url = checked(request, rule.url, f"redirect_rules.{number}.url")
            except Problem as problem:
                errors.extend(problem.errors)
                continue
            stored.append(rule.stored())
        if errors:
            raise invalid_fields(errors)
        return stored

    async def create(self, request: Request, owner_id: UUID | None, body: CreateLink) -> Link:
        """The new link (CodeTaken, OwnerDeleted, or a 422 Problem otherwise)."""
        target, rules = checked_parts(self.checked, request, body)
        if self.limits is not None:  # a valid request counts, before its password's hash
            await self.limits.check(request, owner_id)
        return await self.links.create(
            target,
            owner_id,
            body.code,
            body.expires_at,
            body.title,
            body.tags,
            body.valid_from,
            body.forward_query,
            body.max_visits,
            await self.passwords.hash(request, body.password) if body.password else None,
            rules,
        )

    async def change(self, request: Request, owner_id: UUID, code: str, body: UpdateLink) -> Link:
        """The link after the fields `body` sets (LinkNotFound, or a 422 Problem)."""
        changes = {
            _COLUMNS.get(name, name): getattr(body, name) for name in sorted(body.model_fields_set)
        }
        if "target_url" in changes:
            changes["target_url"] = self.checked(request, str(changes["target_url"]), "url")
        if "tags" in changes and changes["tags"] is None:
            changes["tags"] = []
        if "forward_query" in changes and changes["forward_query"] is None:
            changes["forward_query"] = False
        if "redirect_rules" in changes:
            changes["redirect_rules"] = self.checked_rules(request, body.redirect_rules)
        if "password" in changes:
            password = changes.pop("password")
            changes["password_hash"] = (
                await self.passwords.hash(request, str(password)) if password else None
            )
        try:
            if changes:
                return await self.links.update(owner_id, code, changes)
            return await self.links.get(owner_id, code)
        except ClosedWindow:
            # Named after the end this change moved (the start, when it moved both).
            moved = "expires_at" if "valid_from" not in changes else "valid_from"
            raise closed_window(moved) from None


def checked_parts(
    checked: Checked, request: Request, body: CreateLink
) -> tuple[str, list[dict[str, Any]]]:
    """The target and rules as stored, or the 422 Problem creation would answer: imports
    check each row with this too, so they refuse what the API refuses."""
    target = checked(request, body.url, "url")
    rules = LinkEditor.checked_rules_with(checked, request, body.redirect_rules)
    if body.valid_from and body.expires_at and body.valid_from >= body.expires_at:
        raise closed_window()
    return target, rules
