"""`/healthz` (the process answers) and `/readyz` (each enabled module's database answers)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from app.kernel.openapi import ApiRoute
from app.kernel.problems import Problem

_TIMEOUT_SECONDS = 2.0


async def _answers(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(_TIMEOUT_SECONDS), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready"
        return False


def health_routes(engines: Mapping[str, AsyncEngine]) -> list[BaseRoute]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        names = list(engines)
        results = await asyncio.gather(*(_answers(engines[name]) for name in names))
        checks = dict(zip(names, results, strict=True))
        down = [name for name, ok in checks.items() if not ok]
        if down:
            raise Problem(
                503,
                f"The database of {', '.join(down)} does not answer.",
                slug="not-ready",
                headers={"Retry-After": "5"},
            )
        return JSONResponse({"status": "ready", "modules": {n: "ok" for n in checks}})

    return [
        ApiRoute(
            "/healthz",
            healthz,
            method="GET",
            tag="health",
            summary="The process answers",
            responses={200: "Alive"},
        ),
        ApiRoute(
            "/readyz",
            readyz,
            method="GET",
            tag="health",
            summary="Every enabled module's database answers",
            responses={200: "Ready", 503: "A module's database does not answer"},
        ),
    ]
