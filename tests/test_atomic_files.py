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


def test_output_lock_is_exclusive_and_released(tmp_path):
    with atomic_files.output_lock(tmp_path / "out") as lock:
        assert lock == tmp_path / "out" / ".lock"
        assert lock.read_text().split()[0] == str(os.getpid())
        with (
            pytest.raises(atomic_files.OutputLocked, match=f"pid {os.getpid()} "),
            atomic_files.output_lock(tmp_path / "out"),
        ):
            pass
        assert lock.exists()  # the refused run leaves the holder's lock alone
    assert os.listdir(tmp_path / "out") == []


def test_a_lock_left_by_a_finished_process_is_taken_over(tmp_path):
    import socket
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / ".lock").write_text(f"{gone.stdout.strip()} {socket.gethostname()} x\n")
    with atomic_files.output_lock(tmp_path) as lock:
        assert lock.read_text().split()[0] == str(os.getpid())
    # One from another machine cannot be checked: it stands.
    (tmp_path / ".lock").write_text(f"{gone.stdout.strip()} elsewhere.example x\n")
    with (
        pytest.raises(atomic_files.OutputLocked, match=r"on elsewhere\.example"),
        atomic_files.output_lock(tmp_path),
    ):
        pass
    assert sorted(os.listdir(tmp_path)) == [".lock"]


# The vanishing preset resolves critical inits (seconds of quadrature): refused before that.
QUICK = {"gradient_flow": ["--preset", "vanishing"]}


@pytest.mark.parametrize(
    "module", ["gradient_flow", "trainability", "signal_propagation", "width_sweep"]
)
def test_a_second_run_into_the_same_out_refuses_before_any_work(module, tmp_path, capsys):
    """Each study's CLI, with a long default run: the lock refuses before any of it."""
    import importlib

    import jax

    main = importlib.import_module(f"experiments.{module}").main
    compiles = []

    def listener(event, duration, **kwargs):
        if "backend_compile" in event:
            compiles.append(event)

    out = tmp_path / "out"
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        with atomic_files.output_lock(out) as lock:
            status = main([*QUICK.get(module, []), "--out", str(out)])
            assert lock.exists()
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    err = capsys.readouterr().err
    assert status == 1
    assert compiles == []
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: another run"), err
    assert str(out) in lines[0] and f"delete {lock}" in lines[0]
    assert os.listdir(out) == []  # nothing written, the lock released by its holder
