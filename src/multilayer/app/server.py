"""The web app: a FastAPI application serving the drawing page and a JSON API.

Routes:

* ``GET /`` -- the page (``static/index.html`` with its script and style under ``/static``);
* ``POST /predict`` -- an image file (``multipart/form-data``, field ``file``) or 784 pixel
  values (``application/json``, ``{"pixels": [...]}``) -> class probabilities, the top class,
  the 28x28 image the network saw, every Dense layer's output and saliency maps (which pixels
  pushed toward and against the top class, and against the runner-up: `multilayer.explain`);
* ``GET /model`` -- the architecture, the run's configuration and metrics;
* ``GET /report`` -- the run's HTML report, when serving a run directory that has one;
* ``GET /health``; ``GET /docs`` (Swagger UI, served from the installed ``swagger-ui-bundle-v2``
  package: it works offline) and ``GET /openapi.json``.

Uploaded pictures go through `multilayer.data.images.preprocess`, the same code as
``mlp predict``: crop to the ink, scale to 20x20, centre by centre of mass in 28x28.

Every input is validated; a bad request gets a 4xx answer ``{"detail": ...}``, never a 500:
413 for a body over the size limit (1 MB by default), 415 for another content type, 400
for malformed JSON or multipart data (or JSON nested too deeply), 422 for well-formed requests
whose content is wrong (wrong number or range of pixels, an undecodable picture, one over
`MAX_IMAGE_PIXELS`, a blank drawing), 503 when more pictures wait to be decoded than the
server queues (`DECODE_SLOTS` decode at once, `DECODE_QUEUE` more may wait).

Hardening: a request whose ``Host`` header is not one of the allowed host names (by default the
loopback names) gets 400, so a DNS-rebinding page cannot read the API; ``/model`` shows file
paths by their file name only; every page carries a Content-Security-Policy; `serve` drops a
client that has not sent its whole request within ``request_timeout`` seconds.

FastAPI, uvicorn and python-multipart are optional: ``pip install 'multilayer[app]'``.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import json
import logging
import socket
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, Field, ValidationError
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]
except ImportError as _error:  # pragma: no cover - the [app] extra is installed in tests
    raise ImportError(
        "the web app needs FastAPI, uvicorn, python-multipart and swagger-ui-bundle-v2: "
        "pip install 'multilayer[app]'"
    ) from _error

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

import numpy as np

from multilayer.app.predictor import Prediction, Predictor
from multilayer.data.images import preprocess, preprocess_pixels, to_mnist
from multilayer.errors import ImageError, MultilayerError
from multilayer.runs import json_safe

__all__ = [
    "DECODE_QUEUE",
    "DECODE_SLOTS",
    "LOCAL_HOSTS",
    "MAX_BODY_BYTES",
    "MAX_IMAGE_PIXELS",
    "REQUEST_TIMEOUT",
    "allowed_hosts_for",
    "is_public",
    "bind_socket",
    "create_app",
    "make_server",
    "serve",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Largest request body accepted by POST /predict, in bytes.
MAX_BODY_BYTES = 1_000_000
#: Largest picture POST /predict decodes, in pixels (width x height, from the header, checked
#: before decoding). Decoding costs about 25 bytes per pixel at its peak (RGBA, gray, float
#: copies), so 2048x2048 is ~100 MB; the CLI allows 25 Mpx, which is ~620 MB.
MAX_IMAGE_PIXELS = 2048 * 2048
#: Pictures decoded at the same time; more wait, up to DECODE_QUEUE, and beyond that get 503.
DECODE_SLOTS = 2
DECODE_QUEUE = 8
#: Seconds a client has to send a whole request (head and body) before `serve` drops it.
REQUEST_TIMEOUT = 20.0
#: The host names a server bound to a loopback address answers to.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
STATIC_DIR = Path(__file__).with_name("static")
SWAGGER_UI_DIR = Path(str(swagger_ui_path))
#: The page loads nothing from elsewhere; say so to the browser too.
_PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
#: /docs gets the same policy: Swagger UI 5, from the installed package and started by
#: static/docs.js (no inline script), needs no relaxation (checked in Chromium: rendering,
#: "Try it out", "Execute", schemas; no violation reported; tests/test_browser.py).


# --------------------------------------------------------------------------- schemas


class PixelsRequest(BaseModel):
    """784 pixel values of a 28x28 image, row by row."""

    pixels: Annotated[
        list[Annotated[float, Field(ge=0, le=255, strict=True)]],
        Field(min_length=784, max_length=784),
    ] = Field(
        description="784 numbers, row-major 28x28, white ink on black: all in [0, 1], or "
        "all in [0, 255] (a maximum above 1 selects the 0..255 scale)."
    )
    invert: bool = Field(False, description="true if the ink is dark on a light background")
    center: bool = Field(
        False,
        description="true to crop, scale and centre the digit as MNIST does (for a drawing "
        "that is not already an MNIST-like image)",
    )


class LayerOutput(BaseModel):
    name: str
    activation: str
    units: int
    values: list[float]


class SaliencyMaps(BaseModel):
    method: str = Field(description="how the maps were computed (`multilayer.explain`)")
    top_class: int = Field(description="the class with the largest logit")
    runner_up: int = Field(description="the class with the second largest logit")
    top: list[list[float]] = Field(
        description="28x28, row-major: each pixel's contribution to the top class's logit, "
        "positive where its ink pushed toward that class, negative where against"
    )
    versus: list[list[float]] = Field(
        description="28x28: each pixel's contribution to logit[top_class] - "
        "logit[runner_up]: positive where it favoured the top class over the runner-up"
    )


class PredictResponse(BaseModel):
    probabilities: list[float] = Field(
        description="one probability per class, summing to 1 (calibrated by the temperature "
        "stored with the model, when it has one)"
    )
    top_class: int
    rejected: bool = Field(
        description='"not sure": the image is unlike the digits the model was trained on '
        "(its detector's score is above the threshold stored with the model); the "
        "probabilities are still given. Always false for a model without a detector."
    )
    score: float | None = Field(
        description="the detector's score, 0 (like the training digits) to 1 (not a digit); "
        "null for a model without a detector"
    )
    reason: str | None = Field(description="why the image was rejected, in words, or null")
    image: list[list[float]] = Field(description="the 28x28 image the network saw, in [0, 1]")
    activations: list[LayerOutput] = Field(description="each Dense layer's output, in order")
    saliency: SaliencyMaps | None = Field(
        description="which pixels pushed toward and against the answer; null for a model "
        "whose last layer is not a Dense layer of 2 or more classes"
    )


class LayerInfo(BaseModel):
    name: str
    type: str
    output_shape: list[int]
    params: int
    units: int | None = None
    activation: str | None = None


class ModelInfo(BaseModel):
    name: str
    input_shape: list[int]
    classes: int
    params: int
    layers: list[LayerInfo]
    metrics: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    report_url: str | None = None


class ErrorResponse(BaseModel):
    detail: Any


_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in (
        (400, "malformed JSON or multipart body"),
        (413, "request body larger than the limit"),
        (415, "unsupported content type"),
        (422, "invalid pixels or image"),
        (503, "too many pictures waiting to be decoded: try again"),
    )
}

_PREDICT_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "PNG, JPEG, GIF, BMP or WebP picture of one digit (or "
                        "a .npy array), at most 1 MB",
                    }
                },
                "required": ["file"],
            }
        },
        "application/json": {"schema": PixelsRequest.model_json_schema()},
    },
}


# --------------------------------------------------------------------------- helpers


def _round(values: np.ndarray, digits: int = 5) -> list:
    """Floats for JSON, rounded: 5 decimals is finer than any screen shows, and halves the size."""
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


def _saliency_json(prediction: Prediction) -> dict | None:
    maps = prediction.explanation
    if maps is None:
        return None
    return {
        "method": maps.method,
        "top_class": maps.top_class,
        "runner_up": maps.runner_up,
        "top": _round(maps.top, 5),
        "versus": _round(maps.versus, 5),
    }


def _prediction_json(prediction: Prediction) -> dict:
    return {
        "probabilities": _round(prediction.probabilities, 6),
        "top_class": prediction.top_class,
        "rejected": prediction.rejected,
        "score": None if prediction.score is None else round(prediction.score, 6),
        "reason": prediction.reason,
        "image": _round(prediction.image, 4),
        "activations": [
            {
                "name": a.name,
                "activation": a.activation,
                "units": int(a.values.size),
                "values": _round(a.values, 4),
            }
            for a in prediction.activations
        ],
        "saliency": _saliency_json(prediction),
    }


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise HTTPException(400, "invalid Content-Length header") from None
        if size > limit:
            raise HTTPException(413, f"request body too large: {size:,} bytes (limit {limit:,})")
    chunks, total = [], 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:  # chunked uploads declare no length: count as they arrive
                raise HTTPException(413, f"request body too large: over {limit:,} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # gone (or dropped for stalling): nobody reads the answer
        raise HTTPException(400, "the client disconnected before sending the whole body") from None
    return b"".join(chunks)


async def _form_file(request: Request, body: bytes, limit: int) -> tuple[bytes, str]:
    """The ``file`` field of a multipart body already read into ``body``."""
    sent = False

    async def replay() -> dict:
        # Hand the body we already read (and size-checked) to Starlette's multipart parser.
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(
            max_files=1, max_fields=8, max_part_size=limit
        )
    except StarletteHTTPException as error:  # Starlette's own 400 for a malformed body
        raise HTTPException(400, f"malformed multipart body: {error.detail}") from None
    except Exception as error:  # python-multipart raises several types on hostile bodies
        raise HTTPException(400, f"malformed multipart body: {error}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise HTTPException(422, "the multipart body needs a 'file' field holding an image")
    data = await upload.read()
    return data, upload.filename or "the uploaded file"


def _layer_info(layer) -> dict:
    activation = getattr(layer, "activation", None)
    units = getattr(layer, "units", None)
    activation_name = getattr(activation, "name", None)
    return {
        "name": str(layer.name),
        "type": type(layer).__name__,
        "output_shape": [int(n) for n in layer.output_shape or ()],
        "params": int(layer.count_params()),
        "units": int(units) if units is not None else None,
        "activation": str(activation_name) if activation_name is not None else None,
    }


def _without_paths(value: Any) -> Any:
    """``value`` (JSON data) with every string that looks like a file path cut to its file
    name: /model must not tell a remote page where things live on the server."""
    if isinstance(value, str) and ("/" in value or "\\" in value):
        return PureWindowsPath(value).name  # splits at both / and \
    if isinstance(value, dict):
        return {key: _without_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_paths(item) for item in value]
    return value


def _public_json(value: Any) -> dict[str, Any] | None:
    """A run's config/metrics or a model's training header, as /model shows it: a JSON object
    (anything else, e.g. a list from a hand-edited header, is not shown), NaN as null, and
    no server paths."""
    if not isinstance(value, dict) or not value:
        return None
    return _without_paths(json_safe(value))


def _host_name(header: bytes) -> str:
    """The host name of a ``Host`` header, without the port; lower case."""
    host = header.decode("latin-1").strip().lower()
    if host.startswith("["):  # [::1]:8000
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class _HostCheck:
    """Refuse (400, JSON detail) a request whose ``Host`` is not an allowed name: a page on
    another site that rebinds its DNS name to 127.0.0.1 sends its own name, not ours."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]):
        self.app = app
        self.allowed = frozenset(name.lower().strip("[]") for name in allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "*" not in self.allowed:
            header = next((v for k, v in scope["headers"] if k == b"host"), b"")
            if _host_name(header) not in self.allowed:
                shown = header.decode("latin-1")[:100]
                names = ", ".join(sorted(self.allowed))
                response = JSONResponse(
                    {
                        "detail": f"host {shown!r} is not served here (allowed: {names}; "
                        "mlp serve --allow-host NAME adds one)"
                    },
                    status_code=400,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _SecurityHeaders:
    """The page's Content-Security-Policy on every response, /docs included (the run report is
    left alone: it is a separate document with its own inline styles), and no MIME sniffing."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/report":
            await self.app(scope, receive, send)
            return
        policy = _PAGE_CSP.encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", policy))
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _DecodeGate:
    """At most ``slots`` pictures decode at once; ``queue`` more may wait; beyond that, 503.

    Decoding a picture the size of the limit costs ~100 MB at its peak: without a bound, each
    concurrent upload adds that much. Decodes run in a pool of ``slots`` threads of their own
    (not the shared thread pool): each thread that has decoded keeps its malloc arena's peak,
    so fewer threads also means less memory kept. The count is kept on the event loop.
    """

    def __init__(self, slots: int, queue: int):
        self._slots = slots
        self._limit = slots + queue
        self._admitted = 0
        self._pool: ThreadPoolExecutor | None = None

    @property
    def admitted(self) -> int:
        """Pictures being decoded or waiting now."""
        return self._admitted

    async def run(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        if self._admitted >= self._limit:
            raise HTTPException(
                503,
                f"the server is busy: {self._admitted} pictures are being decoded or waiting; "
                "try again in a moment",
                headers={"Retry-After": "1"},
            )
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._slots, thread_name_prefix="mlp-decode")
        self._admitted += 1
        try:
            future = self._pool.submit(functools.partial(function, *args, **kwargs))
            return await asyncio.wrap_future(future)
        finally:
            self._admitted -= 1


# --------------------------------------------------------------------------- the app


def create_app(
    source: str | Path,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    decode_slots: int = DECODE_SLOTS,
    decode_queue: int = DECODE_QUEUE,
    allowed_hosts: Iterable[str] = LOCAL_HOSTS,
) -> FastAPI:
    """The FastAPI application serving the model at ``source``.

    Args:
        source: a model file (``.safetensors``) or a run directory written by ``mlp train``
            (then ``/model`` shows its configuration and metrics, and ``/report`` its report).
        max_body_bytes: the largest request body ``POST /predict`` accepts.
        max_image_pixels: the largest picture (width x height) ``POST /predict`` decodes.
        decode_slots, decode_queue: pictures decoded at once, and how many more may wait
            before requests get 503.
        allowed_hosts: the host names (``Host`` header, without port) the app answers to;
            ``"*"`` accepts any. `allowed_hosts_for` gives the names for a bind address.

    Raises:
        FileNotFoundError: nothing at ``source``.
        ModelFileError: not a valid model file, or a directory without one.
        DataError: the run's config.json or metrics.json is not a valid JSON object.
        ValueError: the model does not take 28x28 images.
    """
    from multilayer.models import load_model
    from multilayer.runs import resolve_model_path

    model_file, run = resolve_model_path(source)
    model = load_model(model_file, compile=False)
    predictor = Predictor(model)
    report_html = run.report_path if run is not None else None
    decoder = _DecodeGate(decode_slots, decode_queue)
    # Read once, at start-up: a broken run file fails `mlp serve` with its name, instead of
    # answering every /model request with an error the client did not cause.
    static_info = {
        "name": str(model.name),
        "input_shape": [int(n) for n in model.input_shape or ()],
        "classes": int(np.prod(model.output_shape)),
        "params": int(model.count_params()),
        "layers": [_layer_info(layer) for layer in model.layers],
        "metrics": _public_json(run.metrics) if run is not None else None,
        "config": _public_json(run.config) if run is not None else None,
        "training": _public_json(getattr(model, "training_info", None)),
    }

    def model_info() -> dict:
        # Checked on each request: `mlp report` may write the report while we serve.
        has_report = report_html is not None and report_html.is_file()
        return {**static_info, "report_url": "/report" if has_report else None}

    app = FastAPI(
        title="multilayer",
        summary="Draw a digit and watch a multi-layer perceptron answer.",
        version="1",
        docs_url=None,  # served below from the installed Swagger UI, not from a CDN
        redoc_url=None,  # ReDoc has no offline package: not served
    )
    app.state.predictor = predictor
    app.state.decoder = decoder
    app.add_middleware(_SecurityHeaders)
    app.add_middleware(_HostCheck, allowed=tuple(allowed_hosts))  # outermost: runs first

    @app.exception_handler(ImageError)
    async def image_error(request: Request, error: ImageError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(MultilayerError)
    async def multilayer_error(request: Request, error: MultilayerError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.exception_handler(ValueError)
    async def value_error(request: Request, error: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html")

    @app.get("/health", summary="Liveness check")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/model", response_model=ModelInfo, summary="The model's architecture and metrics")
    async def get_model() -> dict:
        return await run_in_threadpool(model_info)

    @app.get(
        "/report",
        summary="The run's HTML report",
        response_class=FileResponse,
        responses={404: {"model": ErrorResponse, "description": "no report for this model"}},
    )
    async def report() -> FileResponse:
        if report_html is None or not report_html.is_file():
            raise HTTPException(404, "no report: serve a run directory after `mlp report RUN_DIR`")
        return FileResponse(report_html, media_type="text/html")

    @app.post(
        "/predict",
        response_model=PredictResponse,
        summary="Classify a digit",
        description="Send a picture as multipart/form-data (field `file`), or 784 pixel "
        "values as JSON. Pictures are preprocessed like MNIST digits (crop, scale to 20x20, "
        "centre by centre of mass) exactly as `mlp predict` does.",
        openapi_extra={"requestBody": _PREDICT_BODY},
        responses=_ERRORS,
    )
    async def predict(request: Request) -> dict:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in ("application/json", "multipart/form-data"):
            raise HTTPException(
                415,
                f"unsupported content type {media_type or '(none)'!r}: send multipart/form-data "
                "with an image in the 'file' field, or application/json with 'pixels'",
            )
        body = await _read_body(request, max_body_bytes)
        if media_type == "application/json":
            image = _pixels_image(body)
        else:
            data, name = await _form_file(request, body, max_body_bytes)
            # Decoding and resizing take milliseconds of CPU: keep them off the event loop.
            image = await decoder.run(
                preprocess, data, max_bytes=max_body_bytes, max_pixels=max_image_pixels, name=name
            )
        prediction = await run_in_threadpool(predictor.predict, image)
        return _prediction_json(prediction)

    app.mount("/swagger-ui", StaticFiles(directory=SWAGGER_UI_DIR), name="swagger-ui")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _pixels_image(body: bytes) -> np.ndarray:
    """Parse and validate a JSON pixels request into a (28, 28) image in [0, 1]."""
    try:
        payload = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(400, f"the body is not valid JSON: {error}") from None
    except RecursionError:  # e.g. "[" x 50,000: the parser recurses once per level
        raise HTTPException(400, "the body is not valid JSON: nested too deeply") from None
    try:
        request = PixelsRequest.model_validate(payload)
    except ValidationError as error:
        details = error.errors(include_url=False, include_input=False, include_context=False)
        raise HTTPException(422, jsonable_encoder(details[:10])) from None
    image = preprocess_pixels(request.pixels, invert=request.invert)
    return to_mnist(image, invert=False) if request.center else image


def allowed_hosts_for(host: str) -> tuple[str, ...]:
    """The host names a server bound to ``host`` answers to by default: the loopback names
    for a loopback address, any name (``"*"``) for a wildcard address (0.0.0.0, ::) whose
    names cannot be known, else ``host`` itself."""
    name = host.strip("[]").lower()
    if name in LOCAL_HOSTS:
        return LOCAL_HOSTS
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return (name,)
    if address.is_loopback:
        return (*LOCAL_HOSTS, name)
    return ("*",) if address.is_unspecified else (name,)


def is_public(host: str) -> bool:
    """True if listening on ``host`` accepts connections from other machines."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:
        return True  # a host name: it may resolve to anything


def bind_socket(host: str = "127.0.0.1", port: int = 8000) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (``port=0``: a free port, see
    ``getsockname()``), ready for `serve`. Binding first lets the caller report the real port
    and a port in use before the server starts.

    Raises:
        OSError: the address cannot be bound, with a one-line message naming it.
    """
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise OSError(f"cannot listen on {shown}: {error.strerror}") from None
    sock = socket.socket(family, kind, proto)
    try:
        if hasattr(socket, "SO_REUSEADDR") and not hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
            # As uvicorn does: restart at once after a stop (TIME_WAIT), still refuse a port
            # that another server listens on.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as error:
        sock.close()
        reason = error.strerror or str(error)
        hint = (
            " (another server is using it: stop it or choose --port)"
            if error.errno
            in (
                98,
                48,
                10048,
            )
            else ""
        )
        raise OSError(f"cannot listen on {shown}: {reason}{hint}") from None
    return sock


def _deadline_protocol(timeout: float) -> type:
    """uvicorn's h11 protocol, dropping a client that has not sent its whole request (head
    and body) within ``timeout`` seconds of connecting or of its previous answer. uvicorn only
    times out idle keep-alive connections; a half-sent request would stay open for ever."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DeadlineH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.SEND_BODY and self.conn.their_state is not h11.IDLE:
                self._disarm()  # the whole request is in: the app's time is not limited

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self._deadline = self.loop.call_later(timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if (
                self.conn.their_state in (h11.IDLE, h11.SEND_BODY)
                and not self.transport.is_closing()
            ):
                self.transport.close()

    return DeadlineH11Protocol


def make_server(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    request_timeout: float = REQUEST_TIMEOUT,
) -> uvicorn.Server:
    """A uvicorn server for ``app`` that drops stalled clients (see `serve`); run it with
    ``server.run(sockets=[bind_socket(host, port)])``."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        http=_deadline_protocol(request_timeout),
        timeout_keep_alive=min(5, max(1, int(request_timeout))),
        h11_max_incomplete_event_size=16 * 1024,  # request line and headers: 16 KB
    )
    return uvicorn.Server(config)


def serve(
    source: str | Path | FastAPI,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    sock: socket.socket | None = None,
    allowed_hosts: Iterable[str] | None = None,
    request_timeout: float = REQUEST_TIMEOUT,
) -> None:
    """Serve the app with uvicorn until interrupted.

    Args:
        source: a model file or run directory (see `create_app`), or an app it made.
        host, port: where to listen (``port=0`` picks a free port); ignored if ``sock`` is
            given.
        log_level: uvicorn's log level ("warning" silences the access log).
        sock: a socket from `bind_socket`, already bound.
        allowed_hosts: for a ``source`` path, the ``Host`` names to answer
            (default `allowed_hosts_for(host)`).
        request_timeout: seconds a client has to send a whole request; a client that stalls
            (slowloris) is disconnected.
    """
    if isinstance(source, FastAPI):
        app = source
    else:
        hosts = allowed_hosts_for(host) if allowed_hosts is None else tuple(allowed_hosts)
        app = create_app(source, allowed_hosts=hosts)
    if sock is None:
        sock = bind_socket(host, port)
    server = make_server(
        app, host, sock.getsockname()[1], log_level=log_level, request_timeout=request_timeout
    )
    with sock:
        server.run(sockets=[sock])
