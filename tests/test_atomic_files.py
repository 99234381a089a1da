"""Atomic writes: the old file or the new one, never half of one, and no temporary left over."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from experiments import atomic_files


def test_text_and_bytes_replace_the_file_whole(tmp_path):
    path = tmp_path / "a" / "b.txt"
    atomic_files.atomic_write_text(path, "first\r\nline\n")
    assert path.read_bytes() == b"first\r\nline\n"  # no newline translation
    atomic_files.atomic_write_bytes(path, b"\x00\xff")
    assert path.read_bytes() == b"\x00\xff"
    assert os.listdir(path.parent) == ["b.txt"]


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.txt"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="No space left"):
        atomic_files.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["keep.txt"]


def test_save_figure_writes_the_format_of_the_suffix_and_closes(tmp_path):
    for suffix, magic in ((".png", b"\x89PNG"), (".svg", b"<?xml"), (".pdf", b"%PDF")):
        fig = plt.figure(figsize=(1, 1))
        path = atomic_files.save_figure(fig, tmp_path / f"f{suffix}", dpi=20)
        assert path.read_bytes().startswith(magic), suffix
        assert not plt.fignum_exists(fig.number)
    assert sorted(os.listdir(tmp_path)) == ["f.pdf", "f.png", "f.svg"]


def test_a_figure_that_fails_to_draw_leaves_the_old_file(tmp_path):
    path = tmp_path / "f.png"
    path.write_bytes(b"old")
    fig = plt.figure(figsize=(1, 1))
    with pytest.raises(TypeError, match="format_that_does_not_exist"):
        atomic_files.save_figure(fig, path, dpi=20, format_that_does_not_exist=1)
    assert path.read_bytes() == b"old"
    assert not plt.fignum_exists(fig.number)
    assert os.listdir(tmp_path) == ["f.png"]
