"""Tests for ``python -m experiments.plot_activations``: headless, small, low dpi."""

import struct
from pathlib import Path

import numpy as np
import pytest

from experiments import plot_activations as pa

DPI = 40


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


@pytest.fixture(scope="session")
def gallery(tmp_path_factory) -> Path:
    """One run of the command on two activations, accuracy page included (small grid)."""
    out = tmp_path_factory.mktemp("gallery") / "new" / "folder"
    status = pa.main(
        [
            "--out",
            str(out),
            "--activations",
            "sigmoid,ReLU",
            "--range",
            "-3,3",
            "--dpi",
            str(DPI),
            "--accuracy-points",
            "40",
        ]
    )
    assert status == 0
    return out


def test_command_writes_every_page_kind(gallery):
    names = {p.name for p in gallery.iterdir()}
    expected = {
        "activation_sigmoid.png",
        "activation_relu.png",
        "family_classic.png",  # sigmoid and relu are in it
        "family_rectifiers.png",  # relu is in it
        "grid.png",
        "accuracy.png",  # sigmoid is on the accuracy list
        "accuracy.json",
        "gallery.md",
    }
    assert expected <= names
    assert "family_smooth.png" not in names  # no member selected
    assert "softmax.png" not in names  # softmax not selected
    assert not any(n.startswith(".write-check") for n in names)


@pytest.mark.parametrize(
    ("filename", "figsize"),
    [
        ("activation_sigmoid.png", (10, 4)),
        ("activation_relu.png", (10, 4)),
        ("family_classic.png", (11, 4.4)),
    ],
)
def test_images_have_the_expected_size(gallery, filename, figsize):
    path = gallery / filename
    assert path.stat().st_size > 2000
    assert png_size(path) == (round(figsize[0] * DPI), round(figsize[1] * DPI))


def test_images_are_not_blank(gallery):
    import matplotlib.image

    for path in gallery.glob("*.png"):
        pixels = matplotlib.image.imread(path)
        assert pixels.std() > 0.01, f"{path.name} looks blank"


def test_gallery_embeds_every_image_by_relative_path(gallery):
    text = (gallery / "gallery.md").read_text()
    images = sorted(p.name for p in gallery.glob("*.png"))
    for name in images:
        assert f"]({name})" in text
    assert str(gallery) not in text  # relative, not absolute
    assert "| sigmoid |" in text  # the accuracy table


def test_svg_format(tmp_path):
    status = pa.main(
        ["--out", str(tmp_path), "--activations", "relu6", "--format", "svg", "--no-accuracy"]
    )
    assert status == 0
    svg = tmp_path / "activation_relu6.svg"
    assert svg.read_text().lstrip().startswith("<?xml")
    assert "activation_relu6.svg" in (tmp_path / "gallery.md").read_text()


def test_unknown_name_gives_closest_matches(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        pa.main(["--out", str(tmp_path), "--activations", "relu,sigmiod"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown activation 'sigmiod'" in err and "'sigmoid'" in err
    assert not list(tmp_path.iterdir())  # nothing drawn


def _no_plotting(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("plotted before checking the output folder")

    for page in ("plot_activation_page", "plot_family_page", "plot_grid_page"):
        monkeypatch.setattr(pa, page, fail)


def test_output_path_that_is_a_file_is_a_clear_error(tmp_path, capsys, monkeypatch):
    _no_plotting(monkeypatch)
    blocker = tmp_path / "taken"
    blocker.write_text("")
    for out in (blocker, blocker / "sub"):
        with pytest.raises(SystemExit) as exit_info:
            pa.main(["--out", str(out), "--activations", "relu"])
        assert exit_info.value.code == 2
        assert repr(str(out)) in capsys.readouterr().err


def test_unwritable_folder_is_a_clear_error(tmp_path, monkeypatch):
    _no_plotting(monkeypatch)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(pa.tempfile, "NamedTemporaryFile", refuse)  # root ignores chmod
    with pytest.raises(pa.UsageError, match="is not writable: Permission denied") as err:
        pa.check_writable(tmp_path)
    assert str(tmp_path) in str(err.value)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--range", "-6,6"], (-6.0, 6.0)),
        (["--range=-2.5,1e1"], (-2.5, 10.0)),
        (["--xmin", "-1e1", "--xmax", "3"], (-10.0, 3.0)),
        (["--xmax", "2"], (-6.0, 2.0)),
        ([], (-6.0, 6.0)),
    ],
)
def test_range_options(argv, expected):
    args = pa.build_parser().parse_args(pa._join_negative_values(["--out", "x", *argv]))
    assert pa.parse_range(args.range, args.xmin, args.xmax) == expected


@pytest.mark.parametrize("text", ["1", "a,b", "3,-3", "1,1,2"])
def test_bad_range_is_rejected(text):
    with pytest.raises(pa.UsageError):
        pa.parse_range(text, None, None)


def test_aliases_resolve_and_repeat_once():
    assert pa.parse_activations("swish, silu,h-swish") == ["silu", "hard_silu"]


def test_non_elementwise_are_drawn_in_two_element_form():
    x = np.array([-1.0, 0.0, 2.0], dtype=np.float32)
    y, dy = pa.evaluate("softmax", x)
    sig = 1 / (1 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(y, sig, rtol=1e-6)
    np.testing.assert_allclose(dy, sig * (1 - sig), rtol=1e-5)
    y, _ = pa.evaluate("glu", x)
    np.testing.assert_allclose(y, x * sig, rtol=1e-6)
    y, dy = pa.evaluate("logsumexp", x)
    np.testing.assert_allclose(y, np.logaddexp(x, 0), rtol=1e-6)
    np.testing.assert_allclose(dy, sig, rtol=1e-5)


def test_plot_grid_sets_kinks_apart():
    x = pa.plot_grid(-3.0, 3.0, (0.0, 6.0), n=61)  # 6 is outside: ignored
    gaps = np.flatnonzero(np.isnan(x))
    assert len(gaps) == 2 and x[gaps[0] + 1] == 0.0  # the kink alone between two NaNs
    finite = x[~np.isnan(x)]
    assert finite.min() == -3.0 and finite.max() == 3.0
    _, dy = pa._curve("relu", x)
    assert dy[gaps[0] - 1] == 0.0 and dy[gaps[1] + 1] == 1.0  # one-sided slopes


def test_accuracy_numbers():
    """The numbers behind the accuracy page: jaxact within a few eps, jax.nn's known misses."""
    x = np.array([-30.0, -1.0, 0.5, 3.0, 20.0, 50.0], dtype=np.float32)
    data = pa.accuracy_data(["sigmoid", "tanh", "softsign"], x)
    assert list(data["functions"]) == ["sigmoid", "tanh", "soft_sign"]
    np.testing.assert_array_equal(data["x"], x)
    for name, impls in data["functions"].items():
        for impl in ("jaxact", "jax.nn"):
            for kind in pa.ERROR_KINDS:
                errs = impls[impl][kind]
                assert errs.shape == x.shape
                worst = data["summary"][name][impl][kind]
                assert worst["max"] == pytest.approx(float(np.max(errs)))
                assert worst["at"] in x
        for kind in pa.ERROR_KINDS:
            assert data["summary"][name]["jaxact"][kind]["max"] < 4, (name, kind)
    # jax.nn's sigmoid' is sigma (1 - sigma), which is 0 at x = 20 (truth 2e-9): error 1 = 2^23 eps.
    sigmoid_nn = data["functions"]["sigmoid"]["jax.nn"]["derivative"]
    assert sigmoid_nn[x == 20.0][0] >= 2.0**23 * 0.99
    assert data["summary"]["tanh"]["jax.nn"]["derivative"]["max"] > 1e6


def test_accuracy_grid_drops_the_kinks():
    x = pa.accuracy_grid(1e4, n=41)
    assert 0.0 in x
    data = pa.accuracy_data(["selu"], x)
    assert 0.0 not in data["x"]


def test_accuracy_page_size(tmp_path):
    x = pa.accuracy_grid(1e4, n=24)
    data = pa.accuracy_data(["soft_sign", "squareplus"], x)
    path = pa.plot_accuracy_page(data, tmp_path / "accuracy.png", dpi=DPI)
    assert png_size(path) == (11 * DPI, round((2.0 * 2 + 1.0) * DPI))
