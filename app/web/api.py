"""JSON routes. Handlers only translate HTTP to ``RunService`` calls and back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from app.schemas import ErrorBody, Health, RunRequest, RunResponse

router = APIRouter(prefix="/api", tags=["api"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "The code (or the request body) is too large."},
    422: {
        "model": ErrorBody,
        "description": (
            "The body is not JSON of the form {\"code\": str, \"trace\"?: bool, \"step_states\"?: bool, "
            "\"outline\"?: bool, \"state_at\"?: int, \"seed\"?: int} (outline needs trace, state_at needs "
            "outline; 0 <= seed < 2**32)."
        ),
    },
    503: {"model": ErrorBody, "description": "Overloaded or no worker available; see Retry-After."},
}


@router.post(
    "/run",
    response_model=RunResponse,
    responses=_ERRORS,
    summary="Run a snippet in a sandboxed worker and return its memory snapshot",
)
async def run(body: RunRequest, request: Request) -> Response:
    # Already validated by app.convert: serialised once by the service instead of letting
    # FastAPI re-validate the whole snapshot against response_model (about 1 ms for a small one).
    encoded = await request.app.state.service.run_json(
        body.code,
        trace=body.trace,
        states=body.step_states,
        outline=body.outline,
        state_at=body.state_at,
        seed=body.seed,
    )
    return Response(encoded, media_type="application/json")


@router.get(
    "/health",
    response_model=Health,
    summary="Pool state and the active sandbox limits",
    responses={503: {"model": Health, "description": "The pool is starting or restarting."}},
)
async def health(request: Request) -> Response:
    service = request.app.state.service
    pool = service.pool.health()
    settings = service.settings
    limits = settings.sandbox_limits().to_dict() | {
        "code_max_bytes": settings.code_max_bytes,
        "max_concurrent_runs": settings.max_concurrent_runs,
        "queue_max": settings.queue_max,
    }
    body = Health(
        ok=pool.get("state") == "ready", pool=pool, limits=limits, metrics=service.metrics.as_dict()
    )
    # 503 while no zygote is ready, so a load balancer's readiness probe takes the replica out of
    # rotation during a restart; the body is the same either way.
    return Response(
        body.model_dump_json(),
        status_code=200 if body.ok else 503,
        media_type="application/json",
        headers=None if body.ok else {"Retry-After": "1"},
    )
