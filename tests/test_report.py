"""Run reports: the PNG figures and the self-contained HTML page of a run trained on MNIST."""

import base64
import json
import re
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="pip install 'multilayer[plots]'")
Image = pytest.importorskip("PIL.Image", reason="pip install 'multilayer[images]'")

from multilayer.report import REPORT_DIR, TestData, plots, write_report  # noqa: E402
from multilayer.runs import RunDir  # noqa: E402

FIGURES = (
    "learning_curves.png",
    "confusion_matrix.png",
    "precision_recall.png",
    "misclassified.png",
    "first_layer_weights.png",
)


@pytest.fixture(scope="module")
def report(trained_run, tmp_path_factory):
    """A copy of the trained run with its report written (the shared run stays untouched)."""
    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns(REPORT_DIR))
    page = write_report(run)
    return run, page


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def test_report_writes_every_figure_as_a_png(report):
    run, page = report
    assert page == run / REPORT_DIR / "index.html"
    for name in FIGURES:
        with Image.open(run / REPORT_DIR / name) as image:
            assert image.format == "PNG"
            assert image.width > 200 and image.height > 100


def test_the_page_is_self_contained(report):
    run, page = report
    html = page.read_text()
    pngs = embedded_pngs(html)
    # Each figure is embedded, byte for byte the file written next to the page.
    assert sorted(pngs) == sorted((run / REPORT_DIR / name).read_bytes() for name in FIGURES)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert "<script" not in html


def test_the_page_shows_the_config_and_final_metrics(report):
    run, page = report
    html = page.read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert f"{100 * metrics['test_accuracy']:.2f}%" in html
    assert "recipe.hidden" in html and "[128]" in html  # config.json, flattened
    for row in metrics["per_class"]:  # the per-class table
        assert f"{100 * row['precision']:.2f}%" in html
        assert f"{100 * row['recall']:.2f}%" in html


def test_mistakes_count_matches_the_model(report):
    from multilayer.datasets import mnist

    run, page = report
    model = RunDir(run).load_model(compile=False)
    _, (x_test, y_test) = mnist.load_data()
    errors = int((model.predict(x_test).argmax(axis=1) != y_test).sum())
    assert 0 < errors < 1000
    assert f"(of {errors:,} errors)" in page.read_text()


def test_report_uses_given_test_data_and_class_names(trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns(REPORT_DIR))
    from multilayer.datasets import mnist

    _, (x_test, y_test) = mnist.load_data()
    names = tuple(f"digit-{c}" for c in range(10))
    page = write_report(run, test_data=TestData(x_test[:500], y_test[:500], names), misclassified=5)
    html = page.read_text()
    assert "500 test images" in html
    assert "digit-7" in html  # the per-class table uses the names
    assert "The 5 test images" in html


def test_report_of_a_run_without_a_model_still_has_curves(trained_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "history.json", "metrics.json"):
        shutil.copy(trained_run / name, run / name)
    html = write_report(run).read_text()
    assert len(embedded_pngs(html)) == 1  # the learning curves
    assert "has no model file" in html
    assert not (run / REPORT_DIR / "confusion_matrix.png").exists()


def test_report_of_a_missing_directory_fails(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "nope")


def test_learning_curves_leave_gaps_for_missing_values():
    history = {"epoch": [0, 1, 2], "loss": [1.0, None, 0.5], "val_loss": [1.1, 0.9, 0.7]}
    figure = plots.learning_curves_figure(history)
    (ax,) = figure.axes
    train = next(line for line in ax.lines if "training" in line.get_label())
    assert list(train.get_xdata()) == [1, 2, 3]  # epochs shown 1-based
    assert np.isnan(train.get_ydata()[1])
    with pytest.raises(ValueError, match="no per-epoch metrics"):
        plots.learning_curves_figure({"epoch": [0]})


def test_first_layer_weights_need_a_28x28_input():
    figure = plots.first_layer_weights_figure(np.random.default_rng(0).normal(size=(784, 10)))
    (ax,) = figure.axes
    mosaic = ax.images[0].get_array()
    assert mosaic.shape == (2 * 31, 8 * 31)  # 10 units in rows of 8, 28 px + 3 px gaps
    with pytest.raises(ValueError, match="784"):
        plots.first_layer_weights_figure(np.zeros((100, 10)))


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"multilayer\[plots\]"):
        plots.learning_curves_figure({"loss": [1.0]})


def test_report_command(trained_run, tmp_path):
    typer = pytest.importorskip("typer")
    from typer.testing import CliRunner

    from multilayer.cli.report import command

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns(REPORT_DIR))
    app = typer.Typer()
    app.command()(command)
    result = CliRunner().invoke(app, [str(run)])
    assert result.exit_code == 0, result.output
    assert "report written to" in result.output
    assert (run / REPORT_DIR / "index.html").is_file()
