"""``mlp playground``: the MLP playground page, trained live by the engine on the server.

Each open page owns one `multilayer.playground.Session`; the page's controls send JSON
commands and the server streams frames back as server-sent events. Routes:

* ``GET /`` -- the page (``static/playground.html``, its script and style under ``/static``);
* ``GET /api/options`` -- datasets, features, activations, optimizers, limits, defaults;
* ``POST /api/sessions`` -- a new session (JSON body: a configuration, or ``{}`` for the
  defaults) -> ``{"id", "config"}``; 503 when `MAX_PAGES` pages are open;
* ``GET /api/sessions/{id}/events`` -- the session's frames (``text/event-stream``): a
  ``data`` event with the points after each (re)configuration, a ``frame`` event after each
  update shown. Closing it (closing the tab) frees the session;
* ``POST /api/sessions/{id}/commands`` -- ``{"action": "play" | "pause" | "step" | "reset"}``,
  ``{"action": "config", "config": {...}}`` or ``{"action": "speed", "updates": n}``
  (updates per frame, 1 to `MAX_UPDATES_PER_FRAME`);
* ``GET /api/sessions/{id}/python`` -- the current network as a multilayer program.

Bounds: at most `MAX_PAGES` sessions; networks as `PlaygroundConfig` allows (6 hidden layers
of 8); at most ``max_fps`` frames a second per page; command bodies of at most
`MAX_COMMAND_BYTES`. A session whose event stream is not opened within `CONNECT_TIMEOUT`
seconds is dropped. Bad commands get 400/404/409/422 with ``{"detail": ...}``, never a 500.
The pages carry the same Content-Security-Policy and ``Host`` check as ``mlp serve``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from multilayer.app.server import (
    LOCAL_HOSTS,
    STATIC_DIR,
    _HostCheck,
    _read_body,
    _reject_constant,
    _SecurityHeaders,
)
from multilayer.playground import (
    ACTIVATIONS,
    DATASETS,
    EXTENT,
    FEATURES,
    MAX_HIDDEN_LAYERS,
    MAX_UNITS,
    OPTIMIZERS,
    Frame,
    PlaygroundConfig,
    Session,
)

__all__ = [
    "CONNECT_TIMEOUT",
    "MAX_COMMAND_BYTES",
    "MAX_FPS",
    "MAX_PAGES",
    "MAX_UPDATES_PER_FRAME",
    "create_playground_app",
    "encode_frame",
]

#: Sessions (open pages) at once.
MAX_PAGES = 8
#: Frames per second streamed to one page at most.
MAX_FPS = 30.0
#: Training updates (batches) between two frames at most.
MAX_UPDATES_PER_FRAME = 100
MAX_COMMAND_BYTES = 16_384
#: Seconds a new session waits for its page to open the event stream.
CONNECT_TIMEOUT = 30.0
#: Seconds between keep-alive comments on an idle stream.
KEEP_ALIVE = 10.0
#: Seconds an idle stream waits before checking whether the server is stopping.
IDLE_POLL = 0.5
GRID = 50
ACTIONS = ("play", "pause", "step", "reset", "config", "speed")


def _heatmap(values: np.ndarray, scale: float | None = None) -> dict[str, Any]:
    """A (grid, grid) map as bytes 0..255 (base64): 0 is -scale, 255 is +scale (default: the
    largest magnitude in the map)."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    if scale is None:
        scale = float(np.abs(values).max())
    scale = max(scale, 1e-9)
    codes = np.clip(np.round((values / scale + 1) * 127.5), 0, 255).astype(np.uint8)
    return {"scale": round(scale, 6), "data": base64.b64encode(codes.tobytes()).decode("ascii")}


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def encode_frame(frame: Frame, regression: bool) -> dict[str, Any]:
    """A frame as JSON data: numbers, and the maps as base64 bytes (see `_heatmap`). The
    boundary maps a classifier's probability 0..1, or a regression output -1..1 (clipped),
    to bytes 0..255."""
    # A classifier's probability 0..1 as -1..1; the regression surface's targets lie in -1..1.
    boundary = frame.boundary if regression else frame.boundary * 2 - 1
    return {
        "step": frame.step,
        "epoch": round(frame.epoch, 4),
        "train_loss": _finite(frame.train_loss),
        "test_loss": _finite(frame.test_loss),
        "train_accuracy": _finite(frame.train_accuracy),
        "test_accuracy": _finite(frame.test_accuracy),
        "grid": int(frame.boundary.shape[0]),
        "boundary": _heatmap(boundary, scale=1.0),
        "neurons": [[_heatmap(m) for m in layer] for layer in frame.neurons],
        "weights": [
            {
                "kernel": np.round(kernel.astype(np.float64), 4).tolist(),
                "bias": np.round(np.asarray(bias, dtype=np.float64), 4).tolist(),
            }
            for kernel, bias in frame.weights
        ],
    }


def _data_event(session: Session) -> dict[str, Any]:
    data = session.data
    return {
        "config": session.config.to_dict(),
        "regression": data.regression,
        "extent": EXTENT,
        "train": np.round(np.column_stack([data.x_train, data.y_train]), 3).tolist(),
        "test": np.round(np.column_stack([data.x_test, data.y_test]), 3).tolist(),
    }


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass
class _Page:
    """One open page: its session and what the stream has to do next."""

    session: Session
    created: float = field(default_factory=time.monotonic)
    connected: bool = False
    playing: bool = False
    updates_per_frame: int = 1
    dirty: bool = True  # a frame is due
    new_data: bool = True  # the points changed
    error: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


async def _json_body(request: Request) -> Any:
    body = await _read_body(request, MAX_COMMAND_BYTES)
    if not body.strip():
        return {}
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise HTTPException(400, "the body is not valid JSON: nested too deeply") from None


def _config(values: Any) -> PlaygroundConfig:
    try:
        return PlaygroundConfig.from_dict(values)
    except (ValueError, TypeError) as error:
        raise HTTPException(422, str(error)) from None


def create_playground_app(
    *,
    max_pages: int = MAX_PAGES,
    max_fps: float = MAX_FPS,
    grid: int = GRID,
    allowed_hosts: Iterable[str] = LOCAL_HOSTS,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> FastAPI:
    """The playground's FastAPI application (see the module's documentation for its routes).

    Args:
        max_pages: sessions open at once; one more gets 503.
        max_fps: frames per second streamed to a page at most.
        grid: the side of the grid the boundary and neurons are drawn on.
        allowed_hosts: the ``Host`` names answered (see `multilayer.app.server.allowed_hosts_for`).
        connect_timeout: seconds a new session waits for its event stream.
    """
    pages: dict[str, _Page] = {}
    app = FastAPI(
        title="multilayer playground",
        summary="Train a small multi-layer perceptron live and watch it learn.",
        version="1",
        docs_url=None,
        redoc_url=None,
    )
    app.state.pages = pages
    # The server sets this to its own "should exit" test (``mlp playground``): open streams
    # then end within IDLE_POLL seconds, so stopping does not wait for every tab to close.
    app.state.stopping = lambda: False
    app.add_middleware(_SecurityHeaders)
    app.add_middleware(_HostCheck, allowed=tuple(allowed_hosts))

    def page_of(session_id: str) -> _Page:
        page = pages.get(session_id)
        if page is None:
            raise HTTPException(
                404, "no such playground session (it ended when its page closed): reload the page"
            )
        return page

    def reap() -> None:
        now = time.monotonic()
        for key, page in list(pages.items()):
            if not page.connected and now - page.created > connect_timeout:
                del pages[key]

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "playground.html")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/options")
    async def options() -> dict[str, Any]:
        return {
            "datasets": list(DATASETS),
            "features": list(FEATURES),
            "activations": list(ACTIVATIONS),
            "optimizers": list(OPTIMIZERS),
            "max_hidden_layers": MAX_HIDDEN_LAYERS,
            "max_units": MAX_UNITS,
            "max_updates_per_frame": MAX_UPDATES_PER_FRAME,
            "max_fps": max_fps,
            "defaults": PlaygroundConfig().to_dict(),
        }

    @app.post("/api/sessions", status_code=201)
    async def new_session(request: Request) -> dict[str, Any]:
        config = _config(await _json_body(request))
        reap()
        if len(pages) >= max_pages:
            raise HTTPException(
                503,
                f"too many open playground pages ({max_pages}): close one (or wait "
                f"{connect_timeout:.0f} s) and reload",
            )
        session = await run_in_threadpool(Session, config, grid)
        session_id = secrets.token_urlsafe(16)
        pages[session_id] = _Page(session)
        return {"id": session_id, "config": config.to_dict()}

    @app.post("/api/sessions/{session_id}/commands")
    async def command(session_id: str, request: Request) -> dict[str, Any]:
        page = page_of(session_id)
        message = await _json_body(request)
        if not isinstance(message, dict):
            raise HTTPException(422, "a command is a JSON object with an 'action'")
        action = message.get("action")
        if action not in ACTIONS:
            raise HTTPException(422, f"unknown action {action!r}: send one of {', '.join(ACTIONS)}")
        extra = set(message) - {"action", {"config": "config", "speed": "updates"}.get(action, "")}
        if extra:
            raise HTTPException(422, f"unexpected field {sorted(extra)[0]!r} for {action!r}")
        if action == "speed":
            updates = message.get("updates")
            if (
                isinstance(updates, bool)
                or not isinstance(updates, int)
                or not 1 <= updates <= MAX_UPDATES_PER_FRAME
            ):
                raise HTTPException(
                    422,
                    f"updates must be an integer from 1 to {MAX_UPDATES_PER_FRAME}, got {updates!r}",
                )
            page.updates_per_frame = updates
        elif action == "play":
            page.playing = True
        elif action == "pause":
            page.playing = False
            page.dirty = True
        else:
            # reset: the same configuration, from the start
            config = _config(message.get("config")) if action == "config" else page.session.config
            async with page.lock:
                if action == "step":
                    page.playing = False
                    await run_in_threadpool(page.session.step, page.updates_per_frame)
                else:
                    page.session = await run_in_threadpool(Session, config, grid)
                    page.new_data = True
                page.dirty = True
        page.wake.set()
        session = page.session
        return {"action": action, "playing": page.playing, "step": session.steps}

    @app.get("/api/sessions/{session_id}/python", response_class=PlainTextResponse)
    async def python(session_id: str) -> str:
        page = page_of(session_id)
        async with page.lock:
            return page.session.as_python()

    @app.get("/api/sessions/{session_id}/events")
    async def events(session_id: str, request: Request) -> StreamingResponse:
        page = page_of(session_id)
        if page.connected:
            raise HTTPException(409, "this session already streams to a page: reload the page")
        page.connected = True
        period = 1.0 / max_fps

        async def frames() -> AsyncIterator[str]:
            last = 0.0
            try:
                while True:
                    if app.state.stopping() or await request.is_disconnected():
                        return
                    if page.playing or page.dirty:
                        wait = last + period - time.monotonic()
                        if wait > 0:
                            await asyncio.sleep(wait)
                        async with page.lock:
                            session = page.session
                            if page.playing:
                                await run_in_threadpool(session.step, page.updates_per_frame)
                            frame = await run_in_threadpool(session.frame)
                            out = []
                            if page.new_data:
                                out.append(_sse("data", _data_event(session)))
                                page.new_data = False
                            page.dirty = False
                        out.append(_sse("frame", encode_frame(frame, session.data.regression)))
                        last = time.monotonic()
                        yield "".join(out)
                    else:
                        page.wake.clear()
                        try:
                            await asyncio.wait_for(page.wake.wait(), IDLE_POLL)
                        except asyncio.TimeoutError:
                            if time.monotonic() - last > KEEP_ALIVE:
                                last = time.monotonic()
                                yield ": keep-alive\n\n"
            finally:  # the page closed (or the server stops): free its model
                pages.pop(session_id, None)

        return StreamingResponse(
            frames(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @app.exception_handler(ValueError)
    async def value_error(request: Request, error: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
