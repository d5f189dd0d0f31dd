"""The retrieval service: an HTTP Cloud Run function (private; invoked by the worker with an ID token).

Routes: ``POST /search`` ``{"query", "top_k"?, "filter"?}`` → ranked chunks; ``POST /ingest``
``{"documents": [{"source", "text", "title"?}]}`` → what changed; ``GET /health`` → backend and size.
The adapter parses and answers; the work is in ``atlas.retrieval.service``. Only a request that fails
validation is a 400 (the worker records it as permanent); any other failure is a 5xx, which the worker
retries, so a bug or an outage in retrieval never fails a task for good.

Every request logs one Cloud Logging JSON line when it is answered, like the worker's: ``route``,
``status``, ``took_ms`` and, for a search, ``hits`` and ``cached`` (under the request's trace, if it has one).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import flask
import functions_framework
from pydantic import BaseModel, ValidationError

from atlas import config
from atlas.errors import AtlasError, ConfigError, InvalidRequestError
from atlas.instance import once
from atlas.observability.logs import configure_logging, log_context, trace_fields
from atlas.retrieval.service import IngestRequest, RetrievalService, SearchRequest

SETTINGS = config.load(config.RetrievalSettings)
configure_logging()
log = logging.getLogger("atlas.retrieval")

_service = once(lambda: RetrievalService(SETTINGS))


def _error(status: int, code: str, message: str) -> flask.Response:
    response = flask.jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _parse(request: flask.Request, model: type[BaseModel]) -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequestError("the body must be a JSON object")
    return model.model_validate(body)


_ROUTES = {
    ("POST", "/search"): lambda request: _service().search(_parse(request, SearchRequest)),
    ("POST", "/ingest"): lambda request: _service().ingest(_parse(request, IngestRequest)),
    ("GET", "/health"): lambda request: _service().health(),
}


@functions_framework.http
def retrieval(request: flask.Request) -> flask.Response:
    started = time.perf_counter()
    with log_context(fields=trace_fields(SETTINGS.project or "-", request.headers)):
        response = _answer(request)
        _log_request(request, response, started)
    return response


def _log_request(request: flask.Request, response: flask.Response, started: float) -> None:
    """One line per request: the route, the status, how long it took and, for a search, its hits."""
    fields: dict[str, Any] = {
        "route": f"{request.method} {request.path}",
        "status": response.status_code,
        "took_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    body = response.get_json(silent=True) if response.is_json else None
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        fields["hits"] = len(body["results"])
        fields["cached"] = bool(body.get("cached"))
    severity = logging.WARNING if response.status_code >= 400 else logging.INFO
    message = f"{fields['route']} -> {response.status_code} in {fields['took_ms']} ms"
    if "hits" in fields:
        message += f" ({fields['hits']} hits{', cached' if fields['cached'] else ''})"
    log.log(severity, message, extra={"fields": fields})


def _answer(request: flask.Request) -> flask.Response:
    handler = _ROUTES.get((request.method, request.path.rstrip("/") or "/"))
    if handler is None:
        known = ", ".join(f"{method} {path}" for method, path in _ROUTES)
        return _error(404, "not_found", f"no route {request.method} {request.path}; routes: {known}")
    try:
        return flask.jsonify(handler(request))
    except ValidationError as exc:
        return _error(400, "invalid_request", str(exc.errors(include_url=False, include_input=False)))
    except InvalidRequestError as exc:
        return _error(400, exc.code, str(exc))
    except ConfigError as exc:
        log.error("retrieval is misconfigured: %s", exc)
        return _error(500, exc.code, str(exc))
    except AtlasError as exc:
        log.exception("retrieval failed")
        return _error(503, exc.code, str(exc))
    except Exception:  # a bug: a 500 the worker retries (never a 400, which would fail the task for good)
        log.exception("retrieval failed unexpectedly")
        return _error(500, "internal", "the retrieval service failed; see its logs")
