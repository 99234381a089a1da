"""Tests for ``python -m experiments.plot_activations``: headless, small, low dpi."""

import re
from pathlib import Path

import pytest

from experiments import atomic_files, gallery_plots, plot_activations

DPI = 40


@pytest.fixture(scope="session")
def gallery(tmp_path_factory) -> Path:
    """One run of the command on two activations, accuracy page included (small grid)."""
    out = tmp_path_factory.mktemp("gallery") / "new" / "folder"
    status = plot_activations.main(
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
    assert not any(n.startswith(".") for n in names)  # no write check or temporary file left


@pytest.mark.parametrize(
    ("filename", "figsize"),
    [
        ("activation_sigmoid.png", (10, 4)),
        ("activation_relu.png", (10, 4)),
        ("family_classic.png", (11, 4.4)),
    ],
)
def test_images_have_the_expected_size(gallery, png_size, filename, figsize):
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
    status = plot_activations.main(
        ["--out", str(tmp_path), "--activations", "relu6", "--format", "svg", "--no-accuracy"]
    )
    assert status == 0
    svg = tmp_path / "activation_relu6.svg"
    assert svg.read_text().lstrip().startswith("<?xml")
    assert "activation_relu6.svg" in (tmp_path / "gallery.md").read_text()


def test_make_gallery_runs_this_command(repo_root):
    """``make gallery`` names this module, and running it as ``-m`` calls ``main``."""
    makefile = (repo_root / "Makefile").read_text()
    recipe = re.search(r"^gallery:.*\n\t(.*)$", makefile, re.MULTILINE)
    assert recipe is not None, "no gallery target in the Makefile"
    assert f"-m {plot_activations.__name__} " in recipe.group(1)
    assert re.search(
        r'^if __name__ == "__main__":\n    sys.exit\(main\(\)\)',
        Path(plot_activations.__file__).read_text(),
        re.MULTILINE,
    )


def test_unknown_name_gives_closest_matches(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        plot_activations.main(["--out", str(tmp_path), "--activations", "relu,sigmiod"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown activation 'sigmiod'" in err and "'sigmoid'" in err
    assert not list(tmp_path.iterdir())  # nothing drawn


def _no_plotting(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("plotted before checking the output folder")

    for page in ("plot_activation_page", "plot_family_page", "plot_grid_page"):
        monkeypatch.setattr(gallery_plots, page, fail)


def test_output_path_that_is_a_file_is_a_clear_error(tmp_path, capsys, monkeypatch):
    _no_plotting(monkeypatch)
    blocker = tmp_path / "taken"
    blocker.write_text("")
    for out in (blocker, blocker / "sub"):
        with pytest.raises(SystemExit) as exit_info:
            plot_activations.main(["--out", str(out), "--activations", "relu"])
        assert exit_info.value.code == 2
        assert repr(str(out)) in capsys.readouterr().err


def test_unwritable_folder_is_a_clear_error(tmp_path, monkeypatch):
    _no_plotting(monkeypatch)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic_files.tempfile, "NamedTemporaryFile", refuse)  # root ignores chmod
    with pytest.raises(
        plot_activations.UsageError, match="is not writable: Permission denied"
    ) as err:
        plot_activations.check_writable(tmp_path)
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
    args = plot_activations.build_parser().parse_args(
        plot_activations._join_negative_values(["--out", "x", *argv])
    )
    assert plot_activations.parse_range(args.range, args.xmin, args.xmax) == expected


@pytest.mark.parametrize("text", ["1", "a,b", "3,-3", "1,1,2"])
def test_bad_range_is_rejected(text):
    with pytest.raises(plot_activations.UsageError):
        plot_activations.parse_range(text, None, None)


def test_aliases_resolve_and_repeat_once():
    assert plot_activations.parse_activations("swish, silu,h-swish") == ["silu", "hard_silu"]


def test_pages_option_draws_only_those_pages_and_keeps_the_index(tmp_path, monkeypatch, capsys):
    drawn = []
    for page in ("plot_activation_page", "plot_family_page", "plot_grid_page", "plot_tails_page"):
        monkeypatch.setattr(
            gallery_plots, page, lambda *args, _page=page, **kwargs: drawn.append(_page)
        )
    monkeypatch.setattr(plot_activations, "tail_data", lambda ranges: dict(ranges))
    (tmp_path / "gallery.md").write_text("index")
    argv = ["--out", str(tmp_path), "--activations", "sigmoid,relu", "--pages", "tails"]
    assert plot_activations.main(argv) == 0
    assert drawn == ["plot_tails_page"]
    assert (tmp_path / "gallery.md").read_text() == "index"
    assert "gallery.md left as it is" in capsys.readouterr().out


def test_unknown_page_names_the_valid_ones():
    with pytest.raises(plot_activations.UsageError, match="'tails'") as err:
        plot_activations.parse_pages("tail")
    assert "families" in str(err.value)
