"""The webhooks HTTP API: an account's receivers and their deliveries.

Writes need the `links:write` scope (adding one also `links:read`, as its events carry
the links, and `stats:read` for `link.clicked`, whose clicks are statistics), reads
`links:read`: a webhook tells of the account's
links, so a key that may read them may read its webhooks (the scopes are a closed set the
whole system shares; a scope of their own would change auth's key forms for little).
"""

from __future__ import annotations

from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from app.kernel.access import Gate
from app.kernel.http import json_response, read_json, read_query
from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem, invalid_fields
from app.modules.webhooks.schemas import (
    CreatedWebhook,
    Delivery,
    DeliveryPage,
    DeliveryQuery,
    NewWebhook,
    WebhookList,
)
from app.modules.webhooks.service import (
    DeliveryNotFound,
    Refused,
    TooManyWebhooks,
    WebhookNotFound,
    WebhookService,
)

_UUID = {"type": "string", "format": "uuid"}
_TAG = "webhooks"


def _no_webhook() -> Problem:
    # The same for unknown ids and other accounts' webhooks: ids do not leak.
    return Problem(404, "You have no webhook with this id.", slug="webhook-not-found")


def _id(request: Request, name: str) -> UUID:
    try:
        return UUID(request.path_params[name])
    except ValueError:
        raise _no_webhook() if name == "id" else _no_delivery() from None


def _no_delivery() -> Problem:
    return Problem(404, "This webhook has no delivery with this id.", slug="delivery-not-found")


def build_routes(service: WebhookService, gate: Gate) -> list[BaseRoute]:
    async def create(request: Request) -> Response:
        principal = await gate.authenticate(request, "links:write")
        body = await read_json(request, NewWebhook)
        # A webhook reads what it is sent: every event carries the link (its target and
        # title), and clicks carry what the statistics show (country, city, referer, user
        # agent). A key that may not read those must not have them sent out either.
        principal.require("links:read")
        if "link.clicked" in body.events:
            principal.require("stats:read")
        try:
            made = await service.create(principal.user_id, body)
        except Refused as exc:
            raise invalid_fields([{"field": exc.field, "message": exc.message}]) from None
        except TooManyWebhooks as exc:
            raise Problem(
                409, f"An account has at most {exc.args[0]} webhooks.", slug="too-many-webhooks"
            ) from None
        return json_response(made, status_code=201)

    async def list_webhooks(request: Request) -> Response:
        principal = await gate.authenticate(request, "links:read")
        return json_response(WebhookList(items=await service.list(principal.user_id)))

    async def delete(request: Request) -> Response:
        principal = await gate.authenticate(request, "links:write")
        try:
            await service.delete(principal.user_id, _id(request, "id"))
        except WebhookNotFound:
            raise _no_webhook() from None
        return Response(status_code=204)

    async def list_deliveries(request: Request) -> Response:
        principal = await gate.authenticate(request, "links:read")
        webhook_id = _id(request, "id")
        query = read_query(request, DeliveryQuery)
        try:
            page = await service.deliveries(principal.user_id, webhook_id, query)
        except WebhookNotFound:
            raise _no_webhook() from None
        except Refused as exc:
            raise invalid_fields([{"field": exc.field, "message": exc.message}], "query") from None
        return json_response(page)

    async def replay(request: Request) -> Response:
        principal = await gate.authenticate(request, "links:write")
        webhook_id, delivery_id = _id(request, "id"), _id(request, "delivery_id")
        try:
            delivery = await service.replay(principal.user_id, webhook_id, delivery_id)
        except WebhookNotFound:
            raise _no_webhook() from None
        except DeliveryNotFound:
            raise _no_delivery() from None
        except Refused as exc:
            raise Problem(409, exc.message, slug="not-replayable") from None
        return json_response(delivery, status_code=202)

    return [
        ApiRoute(
            "/api/webhooks",
            create,
            method="POST",
            tag=_TAG,
            auth=True,
            summary="Add a webhook; its signing secret is in this answer only",
            body=NewWebhook,
            responses={
                201: CreatedWebhook,
                403: "An API key without links:write and links:read (stats:read for link.clicked)",
                409: "The account holds the most webhooks it may",
                422: "Invalid field (a URL that is not http(s), or points at a private host)",
            },
        ),
        ApiRoute(
            "/api/webhooks",
            list_webhooks,
            method="GET",
            tag=_TAG,
            auth=True,
            summary="The caller's webhooks, oldest first, without their secrets",
            responses={200: WebhookList},
        ),
        ApiRoute(
            "/api/webhooks/{id}",
            delete,
            method="DELETE",
            tag=_TAG,
            auth=True,
            summary="Delete a webhook: nothing more is sent to it",
            path_params={"id": _UUID},
            responses={204: "Deleted", 404: "No such webhook of the caller's"},
        ),
        ApiRoute(
            "/api/webhooks/{id}/deliveries",
            list_deliveries,
            method="GET",
            tag=_TAG,
            auth=True,
            summary="A webhook's deliveries, newest first, a page at a time",
            path_params={"id": _UUID},
            query=DeliveryQuery,
            responses={
                200: DeliveryPage,
                404: "No such webhook of the caller's",
                422: "Invalid query parameter",
            },
        ),
        ApiRoute(
            "/api/webhooks/{id}/deliveries/{delivery_id}/replay",
            replay,
            method="POST",
            tag=_TAG,
            auth=True,
            summary="Send a parked or failed delivery again, now, under the same webhook-id",
            path_params={"id": _UUID, "delivery_id": _UUID},
            responses={
                202: Delivery,
                404: "No such webhook or delivery of the caller's",
                409: "The delivery is neither parked nor failed",
            },
        ),
    ]
