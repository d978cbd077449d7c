"""The web app: a FastAPI application serving the drawing page and a JSON API.

Routes:

* ``GET /`` -- the page (``static/index.html`` with its script and style under ``/static``);
* ``POST /predict`` -- an image file (``multipart/form-data``, field ``file``) or 784 pixel
  values (``application/json``, ``{"pixels": [...]}``) -> class probabilities, the top class,
  the 28x28 image the network saw and every Dense layer's output;
* ``GET /model`` -- the architecture, the run's configuration and metrics;
* ``GET /report`` -- the run's HTML report, when serving a run directory that has one;
* ``GET /health``; ``GET /docs`` and ``GET /openapi.json`` (FastAPI's API documentation).

Uploaded pictures go through `multilayer.data.images.preprocess`, the same code as
``mlp predict``: crop to the ink, scale to 20x20, centre by centre of mass in 28x28.

Every input is validated; a bad request gets a 4xx answer ``{"detail": ...}``, never a 500:
413 for a body over the size limit (1 MB by default), 415 for another content type, 400
for malformed JSON or multipart data, 422 for well-formed requests whose content is wrong
(wrong number or range of pixels, an undecodable picture, a blank drawing).

FastAPI, uvicorn and python-multipart are optional: ``pip install 'multilayer[app]'``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

try:
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, Field, ValidationError
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException as StarletteHTTPException
except ImportError as _error:  # pragma: no cover - the [app] extra is installed in tests
    raise ImportError(
        "the web app needs FastAPI, uvicorn and python-multipart: pip install 'multilayer[app]'"
    ) from _error

import numpy as np

from multilayer.app.predictor import Prediction, Predictor
from multilayer.data.images import preprocess, preprocess_pixels, to_mnist
from multilayer.errors import ImageError, MultilayerError

__all__ = ["MAX_BODY_BYTES", "create_app", "serve"]

log = logging.getLogger(__name__)

#: Largest request body accepted by POST /predict, in bytes.
MAX_BODY_BYTES = 1_000_000
STATIC_DIR = Path(__file__).with_name("static")
#: The page loads nothing from elsewhere; say so to the browser too.
_PAGE_CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'"
)


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


class PredictResponse(BaseModel):
    probabilities: list[float] = Field(description="one probability per class, summing to 1")
    top_class: int
    image: list[list[float]] = Field(description="the 28x28 image the network saw, in [0, 1]")
    activations: list[LayerOutput] = Field(description="each Dense layer's output, in order")


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


def _prediction_json(prediction: Prediction) -> dict:
    return {
        "probabilities": _round(prediction.probabilities, 6),
        "top_class": prediction.top_class,
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
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:  # chunked uploads declare no length: count as they arrive
            raise HTTPException(413, f"request body too large: over {limit:,} bytes")
        chunks.append(chunk)
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
    return {
        "name": layer.name,
        "type": type(layer).__name__,
        "output_shape": list(layer.output_shape or ()),
        "params": int(layer.count_params()),
        "units": getattr(layer, "units", None),
        "activation": getattr(activation, "name", None),
    }


# --------------------------------------------------------------------------- the app


def create_app(source: str | Path, *, max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """The FastAPI application serving the model at ``source``.

    Args:
        source: a model file (``.safetensors``) or a run directory written by ``mlp train``
            (then ``/model`` shows its configuration and metrics, and ``/report`` its report).
        max_body_bytes: the largest request body ``POST /predict`` accepts.

    Raises:
        FileNotFoundError: nothing at ``source``.
        ModelFileError: not a valid model file, or a directory without one.
        ValueError: the model does not take 28x28 images.
    """
    from multilayer.models import load_model
    from multilayer.runs import resolve_model_path

    model_file, run = resolve_model_path(source)
    model = load_model(model_file, compile=False)
    predictor = Predictor(model)
    report_html = run.report_path if run is not None else None

    def model_info() -> dict:
        return {
            "name": model.name,
            "input_shape": list(model.input_shape or ()),
            "classes": int(np.prod(model.output_shape)),
            "params": int(model.count_params()),
            "layers": [_layer_info(layer) for layer in model.layers],
            "metrics": run.metrics if run is not None else None,
            "config": run.config if run is not None else None,
            "training": getattr(model, "training_info", None) or None,
            # Checked on each request: `mlp report` may write the report while we serve.
            "report_url": "/report" if report_html is not None and report_html.is_file() else None,
        }

    app = FastAPI(
        title="multilayer",
        summary="Draw a digit and watch a multi-layer perceptron answer.",
        version="1",
    )
    app.state.predictor = predictor

    @app.exception_handler(ImageError)
    async def image_error(request: Request, error: ImageError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(MultilayerError)
    async def multilayer_error(request: Request, error: MultilayerError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.exception_handler(ValueError)
    async def value_error(request: Request, error: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html", headers={"Content-Security-Policy": _PAGE_CSP}
        )

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
            image = await run_in_threadpool(preprocess, data, max_bytes=max_body_bytes, name=name)
        prediction = await run_in_threadpool(predictor.predict, image)
        return _prediction_json(prediction)

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
    try:
        request = PixelsRequest.model_validate(payload)
    except ValidationError as error:
        details = error.errors(include_url=False, include_input=False, include_context=False)
        raise HTTPException(422, jsonable_encoder(details[:10])) from None
    image = preprocess_pixels(request.pixels, invert=request.invert)
    return to_mnist(image, invert=False) if request.center else image


def serve(
    source: str | Path | FastAPI,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
) -> None:
    """Serve the app with uvicorn until interrupted.

    Args:
        source: a model file or run directory (see `create_app`), or an app it made.
        host, port: where to listen (``port=0`` picks a free port).
        log_level: uvicorn's log level ("warning" silences the access log).
    """
    import uvicorn

    app = source if isinstance(source, FastAPI) else create_app(source)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
