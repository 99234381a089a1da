"""The main job side by side: the gradient-flow sweep in jaxact against PyTorch eager.

The work, for each shape (depth x width): 4 activations (sigmoid, tanh, relu,
selu) x 4 seeds x 300 SGD steps on batches of 128 scikit-learn digits, He
initialisation, with the per-layer weight and pre-activation gradient norms of
every step taken from the training step's own backward pass (underflow-safe
norms, as :func:`experiments.numerics.safe_norm`), and the train and test loss
and accuracy at the first and the last step.

- PyTorch eager (``pip install -e '.[benchmark]'``): ``torch.set_num_threads``
  of the machine's cores, seeds in a Python loop, ``retain_grad`` on every
  pre-activation, the step's norms and loss stacked and copied to the host once
  per step.
- jaxact: :func:`experiments.train.train_groups`, as ``experiments.gradient_flow``
  runs a sweep: one compiled program for the four activations (``lax.switch``
  on an argument; seeds vmapped, steps scanned), called once per activation;
  compilation included (no compilation cache, in-memory caches cleared), and
  again warm.

Run through ``python -m experiments.benchmark --main-job``; the contenders run
interleaved, ``--repeats`` times, and the medians are reported.
"""

import dataclasses
import itertools
import math
import os
import statistics
import time
from collections.abc import Sequence

import jax

from experiments import data as data_lib
from experiments import train

ACTIVATIONS = ("sigmoid", "tanh", "relu", "selu")
SHAPES = ((32, 128), (20, 64))
# Flax's "normal" variance scaling draws from a normal truncated at 2 standard deviations,
# rescaled by this factor to keep the variance.
_TRUNCATED_STD = 0.87962566103423978


@dataclasses.dataclass(frozen=True)
class Work:
    """One shape's sweep."""

    depth: int
    width: int
    activations: tuple[str, ...] = ACTIVATIONS
    seeds: int = 4
    steps: int = 300
    batch_size: int = 128
    lr: float = 0.01

    def configs(self, log_every: int = 1) -> list[train.Config]:
        return [
            train.Config.create(
                activation=name,
                init="he",
                depth=self.depth,
                width=self.width,
                steps=self.steps,
                batch_size=self.batch_size,
                lr=self.lr,
                optimizer="sgd",
                log_every=log_every,
                eval_every=self.steps,
            )
            for name in self.activations
        ]


def run_jaxact(work: Work, *, log_every: int = 1) -> float:
    """Seconds for the whole sweep, results on the host."""
    start = time.perf_counter()
    groups = train.group_by_program(work.configs(log_every))
    for _ in train.train_groups(groups, range(work.seeds)):
        pass  # the records arrive on the host, as numpy
    return time.perf_counter() - start


def cold_jaxact(work: Work) -> float:
    """:func:`run_jaxact` with every compilation included: no persistent cache, and JAX's
    in-memory caches and the training module's cleared."""
    previous = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    try:
        train.clear_caches()
        jax.clear_caches()
        return run_jaxact(work)
    finally:
        jax.config.update("jax_enable_compilation_cache", previous)


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def run_torch(work: Work, threads: int) -> float:
    """The same sweep in PyTorch eager; seconds."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    data = data_lib.load("digits")
    x_train, y_train = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train).long()
    x_test, y_test = torch.from_numpy(data.x_test), torch.from_numpy(data.y_test).long()
    functions = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "selu": F.selu}

    def safe_norm(g):
        largest = g.abs().max()
        divisor = torch.where(largest > 0, largest, torch.ones_like(largest))
        return largest * torch.linalg.vector_norm(g / divisor)

    def linear(n_in, n_out, generator):
        std = math.sqrt(2.0 / n_in) / _TRUNCATED_STD  # He, truncated as Flax draws it
        weight = torch.empty(n_out, n_in)
        torch.nn.init.trunc_normal_(weight, std=std, a=-2 * std, b=2 * std, generator=generator)
        return weight.requires_grad_(), torch.zeros(n_out, requires_grad=True)

    start = time.perf_counter()
    for name in work.activations:
        phi = functions[name]
        for seed in range(work.seeds):
            generator = torch.Generator().manual_seed(seed)
            widths = [data.input_dim] + [work.width] * work.depth + [data.num_classes]
            layers = [linear(a, b, generator) for a, b in itertools.pairwise(widths)]
            parameters = [p for layer in layers for p in layer]
            optimizer = torch.optim.SGD(parameters, lr=work.lr)

            def forward(x, keep=None, layers=layers, phi=phi):
                for i, (w, b) in enumerate(layers):
                    h = F.linear(x, w, b)
                    if keep is not None:
                        h.retain_grad()
                        keep.append(h)
                    x = phi(h) if i < len(layers) - 1 else h
                return x

            def evaluate(forward=forward):
                with torch.no_grad():
                    out = []
                    for x, y in ((x_train, y_train), (x_test, y_test)):
                        logits = forward(x)
                        out += [F.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()]
                    return torch.stack(out).numpy()

            records, evaluations = [], [evaluate()]
            for _ in range(work.steps):
                idx = torch.randint(0, len(x_train), (work.batch_size,), generator=generator)
                preacts = []
                loss = F.cross_entropy(forward(x_train[idx], preacts), y_train[idx])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                norms = [safe_norm(w.grad) for w, _ in layers] + [
                    safe_norm(h.grad) for h in preacts
                ]
                records.append(torch.stack([loss.detach(), *norms]).numpy())  # one copy a step
                optimizer.step()
            evaluations.append(evaluate())
    return time.perf_counter() - start


@dataclasses.dataclass
class Row:
    """One shape's measurements (medians over the repeats, seconds)."""

    depth: int
    width: int
    torch_s: float
    jaxact_cold_s: float
    jaxact_warm_s: float
    jaxact_first_last_s: float
    compile_s: float
    repeats: int

    @property
    def speedup(self) -> float:
        return self.torch_s / self.jaxact_cold_s

    @property
    def recording_overhead(self) -> float:
        return self.jaxact_warm_s / self.jaxact_first_last_s - 1.0


def measure(work: Work, repeats: int, threads: int, *, quick: bool = False) -> Row:
    """Interleaved: torch, jaxact cold, jaxact warm, jaxact recording first/last only.

    ``quick`` (a smoke test of the harness): compiled programs may come from the
    compilation cache, and the recording overhead is not measured.
    """
    samples: dict[str, list[float]] = {k: [] for k in ("torch", "cold", "warm", "first_last")}
    has_torch = torch_available()
    for _ in range(repeats):
        if has_torch:
            samples["torch"].append(run_torch(work, threads))
        samples["cold"].append(run_jaxact(work) if quick else cold_jaxact(work))
        samples["warm"].append(run_jaxact(work))
        if not quick:
            run_jaxact(work, log_every=work.steps)  # compile (outside the timing)
            samples["first_last"].append(run_jaxact(work, log_every=work.steps))
    med = {k: statistics.median(v) if v else math.nan for k, v in samples.items()}
    configs = len(work.activations)
    return Row(
        work.depth, work.width, med["torch"], med["cold"], med["warm"], med["first_last"],
        (med["cold"] - med["warm"]) / configs, repeats,
    )  # fmt: skip


def _torch_version() -> str:
    try:
        import torch
    except ImportError:
        return "not installed"
    return torch.__version__.split("+")[0]


def report(rows: Sequence[Row], work: Work, threads: int) -> str:
    """The side-by-side table as Markdown: one column per shape."""
    head = " | ".join(f"depth {r.depth}, width {r.width}" for r in rows)
    work_text = (
        f"{len(work.activations)} activations ({', '.join(work.activations)}) x {work.seeds} "
        f"seeds x {work.steps} SGD steps, batch {work.batch_size}, per-layer weight and "
        "pre-activation gradient norms every step"
    )

    def line(label, values):
        return f"| {label} | " + " | ".join(values) + " |"

    def seconds(v):
        return "—" if not math.isfinite(v) else f"{v:.1f} s"

    lines = [
        f"| work: {work_text} | {head} |",
        "|---|" + "---:|" * len(rows),
        line(
            f"PyTorch {_torch_version()} eager, {threads} threads, seeds in a loop, norms from "
            "the training step's own backward, one host transfer per step",
            [seconds(r.torch_s) for r in rows],
        ),
        line(
            f"jaxact main job (`experiments.train`, {jax.device_count()} CPU "
            f"device{'s' if jax.device_count() > 1 else ''}), "
            "compilation included",
            [
                f"{seconds(r.jaxact_cold_s)} ({r.speedup:.2f}x)"
                if math.isfinite(r.speedup)
                else seconds(r.jaxact_cold_s)
                for r in rows
            ],
        ),
        line(
            "jaxact main job, programs already compiled (a re-run: compilation cache)",
            [seconds(r.jaxact_warm_s) for r in rows],
        ),
        line("compilation per configuration", [seconds(r.compile_s) for r in rows]),
        line(
            "recording every step against the first and last step only (warm)",
            [
                f"{100 * r.recording_overhead:+.0f}%"
                if math.isfinite(r.recording_overhead)
                else "—"
                for r in rows
            ],
        ),
    ]
    note = (
        f"(x): PyTorch time / jaxact time. Medians of {rows[0].repeats} interleaved repeats "
        f"on {os.cpu_count()} CPU cores, jax {jax.__version__}."
    )
    return "\n".join(lines) + "\n\n" + note + "\n"


def run(
    shapes: Sequence[tuple[int, int]], *, repeats: int, quick: bool = False
) -> tuple[list[Row], Work, int]:
    """Measures every shape; ``quick`` shrinks the work to a smoke test of the harness."""
    threads = os.cpu_count() or 1
    base = Work(depth=0, width=0)
    if quick:
        base = dataclasses.replace(base, activations=("relu",), seeds=2, steps=3, batch_size=16)
    rows = []
    for depth, width in shapes:
        work = dataclasses.replace(base, depth=depth, width=width)
        rows.append(measure(work, repeats, threads, quick=quick))
    return rows, base, threads
