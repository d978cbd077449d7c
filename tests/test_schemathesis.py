"""Property-based API testing: schemathesis generates requests from the app's OpenAPI schema
(valid ones and, in negative mode, invalid ones) and checks that none gets a server error and
that every answer matches the documented schema and status codes."""

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis")
pytest.importorskip("fastapi", reason="pip install 'multilayer[app]'")

from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis import checks  # noqa: E402


def _app():
    """An app serving a small untrained model: the API's behaviour does not depend on how well
    the model is trained, so no training is needed here. Built at import because schemathesis
    generates one test per API operation at collection time."""
    from multilayer.app.server import create_app
    from multilayer.recipes import build_model, get_recipe

    model = build_model(get_recipe("fast").with_overrides(hidden=(32,)), (28, 28), 10, 100, seed=0)
    model.build()
    directory = tempfile.mkdtemp(prefix="mlp-schemathesis-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = Path(directory) / "model.safetensors"
    model.save(path)
    # schemathesis' ASGI client sends "Host: testserver"; the app answers loopback names only.
    return create_app(path, allowed_hosts=("testserver",))


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_schema(case):
    # not_a_server_error: no 5xx, whatever the input; status_code_conformance and
    # response_schema_conformance: every answer is one the schema documents, in its shape.
    case.call_and_validate(
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ]
    )
