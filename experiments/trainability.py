r"""Trainability phase diagram: which (sigma_w^2, depth) cells of a deep network train.

Schoenholz et al. (2017, "Deep Information Propagation", Fig. 6) found that a deep
fully connected network trains only where its depth is within a few correlation depth
scales :math:`\xi_c` of the mean-field theory (:func:`jaxact.theory.depth_scales`), and
at every depth tried at the order-to-chaos edge (:math:`\xi_c = \infty`). This study
trains a grid of weight variances :math:`\sigma_w^2` x depths, draws the final training
accuracy as a heatmap over it with the curves :math:`k\,\xi_c(\sigma_w^2)`,
:math:`k = 3, 6, 12`, and fits :math:`k` in :math:`L_{\max} \approx k\,\xi_c`.

Every layer, read-out included, has weights :math:`N(0, \sigma_w^2/\mathrm{fan\_in})` and
biases :math:`N(0, \sigma_b^2)`; training is momentum SGD (0.9) with the learning rate
``lr_scale / depth``. One program is compiled per depth, with :math:`\sigma_w` and the
seeds as ``jax.vmap`` axes: the whole row of the diagram trains at once. Each depth's
results are written (atomically) as soon as they are done, and a re-run with the same
settings skips them.

Writes ``trainability.csv`` (one row per cell and seed), ``phase_diagram.png`` and
``summary.md`` to ``--out``::

    python -m experiments.trainability --out results/trainability
"""

import argparse
import dataclasses
import hashlib
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, PartitionSpec

import jaxact
from experiments import atomic_files, devices, recording
from experiments import data as data_lib
from experiments.atomic_files import prepare_output_folder, save_figure

FIELDS = (
    "activation", "sigma_w2", "sigma_b2", "depth", "width", "seed", "steps", "lr",
    "train_accuracy", "test_accuracy", "train_loss", "test_loss", "diverged", "xi_c",
    "depth_over_xi_c",
)  # fmt: skip
MOMENTUM = 0.9
TRAINED = 0.5  # median final train accuracy at or above which a cell counts as trained
_PAPER_K = 6.0


@dataclasses.dataclass(frozen=True)
class Settings:
    """One study: the activation and the grid, and how every cell is trained."""

    activation: str = "tanh"
    params: tuple[tuple[str, Any], ...] = ()
    sigma_b2: float = 0.05
    sigma_w2: tuple[float, ...] = (1.0, 1.25, 1.5, 1.76, 2.0, 2.5, 3.0, 4.0)
    depths: tuple[int, ...] = (10, 20, 30, 45, 60, 80)
    width: int = 64
    steps: int = 1000
    seeds: int = 5
    lr_scale: float = 0.05
    batch_size: int = 64
    dataset: str = "digits"

    @property
    def spec(self) -> str:
        """The activation as written on the command line (``name:p=v,...``)."""
        if not self.params:
            return self.activation
        return self.activation + ":" + ",".join(f"{k}={v}" for k, v in self.params)

    def key(self, depth: int) -> str:
        """A hash of everything that determines one depth's results."""
        fields = dataclasses.asdict(self)
        fields.pop("depths")
        fields["depth"] = depth
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


# --- command line ---------------------------------------------------------------------


def parse_activation(spec: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """``name`` or ``name:p=v,q=w`` -> (canonical name, sorted params), checked at once.

    Raises:
        ValueError: for an unknown name or parameter, a value of the wrong kind, or a
            parameter given twice.

    Examples:
        >>> parse_activation("elu:alpha=0.5")
        ('elu', (('alpha', 0.5),))
    """
    name, _, args = spec.partition(":")
    canonical = jaxact.resolve(name)
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in args.split(","))):
        key, eq, text = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise ValueError(f"activation parameter {item!r} in {spec!r} must be written key=value")
        if key in params:
            raise ValueError(f"activation parameter {key!r} is given twice in {spec!r}")
        params[key] = _parse_value(text.strip())
    jaxact.registry.check_params(canonical, params)
    return canonical, tuple(sorted(params.items()))


def _parse_value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _numbers(kind, flag: str, minimum: float, strict: bool = False):
    def parse(text: str) -> tuple:
        try:
            values = tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{flag} takes {kind.__name__}s separated by commas, got {text!r}"
            ) from None
        bad = [
            v for v in values if v < minimum or (strict and v == minimum) or not math.isfinite(v)
        ]
        if not values or bad:
            relation = ">" if strict else ">="
            raise argparse.ArgumentTypeError(
                f"{flag} values must be {relation} {minimum}, got {text!r}"
            )
        return values

    return parse


def _positive_int(flag: str):
    def parse(text: str) -> int:
        (value,) = _numbers(int, flag, 1)(text)
        return value

    return parse


def _float_at_least(flag: str, minimum: float, strict: bool = False):
    def parse(text: str) -> float:
        values = _numbers(float, flag, minimum, strict)(text)
        if len(values) != 1:
            raise argparse.ArgumentTypeError(f"{flag} takes one number, got {text!r}")
        return values[0]

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command line; every default is the paper-like study of the module docstring."""
    d = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m experiments.trainability",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--activation", default=d.activation,
        help="a jaxact activation; parameters as name:p=v or name:p=v,q=w")  # fmt: skip
    add("--sigma-b2", type=_float_at_least("--sigma-b2", 0.0), default=d.sigma_b2,
        help="bias variance sigma_b^2")  # fmt: skip
    add("--sigma-w2", type=_numbers(float, "--sigma-w2", 0.0, strict=True),
        default=d.sigma_w2, help="comma list of weight variances sigma_w^2")  # fmt: skip
    add("--depths", type=_numbers(int, "--depths", 1), default=d.depths,
        help="comma list of depths (hidden layers)")  # fmt: skip
    add("--width", type=_positive_int("--width"), default=d.width, help="units per layer")
    add("--steps", type=_positive_int("--steps"), default=d.steps, help="momentum-SGD steps")
    add("--seeds", type=_positive_int("--seeds"), default=d.seeds,
        help="seeds per cell (0..N-1), trained at once by vmap")  # fmt: skip
    add("--lr-scale", type=_float_at_least("--lr-scale", 0.0, strict=True),
        default=d.lr_scale, help="learning rate = LR_SCALE / depth")  # fmt: skip
    add("--batch-size", type=_positive_int("--batch-size"), default=d.batch_size,
        help="examples per step")  # fmt: skip
    add("--dataset", choices=data_lib.NAMES, default=d.dataset)
    add("--out", default="results/trainability", help="output directory")
    add("--no-plot", dest="plot", action="store_false", default=argparse.SUPPRESS,
        help="tables and summary only")  # fmt: skip
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """The validated settings of parsed arguments.

    Raises:
        ValueError: for a bad activation specification.
    """
    name, params = parse_activation(args.activation)
    return Settings(
        activation=name,
        params=params,
        sigma_b2=float(args.sigma_b2),
        sigma_w2=tuple(sorted(set(args.sigma_w2))),
        depths=tuple(sorted(set(args.depths))),
        width=args.width,
        steps=args.steps,
        seeds=args.seeds,
        lr_scale=float(args.lr_scale),
        batch_size=args.batch_size,
        dataset=args.dataset,
    )


# --- theory -------------------------------------------------------------------------


def correlation_depth(activation: str, params: dict, sigma_w2: float, sigma_b2: float) -> float:
    """:math:`\\xi_c` from :func:`jaxact.theory.depth_scales` (``inf`` at criticality)."""
    from jaxact import theory

    scales = theory.depth_scales(
        activation, sigma_w=math.sqrt(sigma_w2), sigma_b=math.sqrt(sigma_b2), **params
    )
    return float(scales.xi_c)


# --- training -----------------------------------------------------------------------


def _init(key: jax.Array, depth: int, width: int, n_in: int, n_out: int) -> dict[str, jax.Array]:
    """Unit-variance weights (variance 1/fan_in) and N(0, 1) biases; scaled per cell."""
    k = jax.random.split(key, 6)
    normal = jax.random.normal
    return {
        "w_in": normal(k[0], (n_in, width)) / math.sqrt(n_in),
        "b_in": normal(k[1], (width,)),
        "w": normal(k[2], (depth - 1, width, width)) / math.sqrt(width),
        "b": normal(k[3], (depth - 1, width)),
        "w_out": normal(k[4], (width, n_out)) / math.sqrt(width),
        "b_out": normal(k[5], (n_out,)),
    }


def _forward(phi, params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    h = phi(x @ params["w_in"] + params["b_in"])

    def layer(h, wb):
        w, b = wb
        return phi(h @ w + b), None

    h, _ = jax.lax.scan(layer, h, (params["w"], params["b"]))
    return h @ params["w_out"] + params["b_out"]


def _loss_and_accuracy(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    loss = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))
    accuracy = jnp.mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32))
    return loss, accuracy


def make_program(settings: Settings, depth: int, n_in: int, n_out: int):
    """The jitted training of one depth: ``(sigma_w, sigma_b, seeds, data) -> metrics``.

    ``sigma_w`` (S,) and ``seeds`` (R,) are vmap axes; every metric comes back (R, S).
    Both axes share the unit-variance draw of a seed, so the cells of a row differ in
    their scale only.
    """
    phi = jaxact.get(settings.activation, **dict(settings.params))
    lr = settings.lr_scale / depth
    optimizer = optax.sgd(lr, momentum=MOMENTUM)
    batch, steps = settings.batch_size, settings.steps

    def one(sigma_w, sigma_b, unit, key, data):
        params = {
            name: value * (sigma_b if name.startswith("b") else sigma_w)
            for name, value in unit.items()
        }
        n_train = data["x_train"].shape[0]

        def loss_fn(p, x, y):
            return _loss_and_accuracy(_forward(phi, p, x), y)[0]

        def step(carry, step_key):
            p, opt_state = carry
            index = jax.random.randint(step_key, (batch,), 0, n_train)
            loss, grads = jax.value_and_grad(loss_fn)(
                p, data["x_train"][index], data["y_train"][index]
            )
            updates, opt_state = optimizer.update(grads, opt_state, p)
            return (optax.apply_updates(p, updates), opt_state), loss

        (params, _), _ = jax.lax.scan(
            step, (params, optimizer.init(params)), jax.random.split(key, steps)
        )
        train = _loss_and_accuracy(_forward(phi, params, data["x_train"]), data["y_train"])
        test = _loss_and_accuracy(_forward(phi, params, data["x_test"]), data["y_test"])
        finite = jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree_util.tree_leaves(params)])
        )
        return {
            "train_loss": train[0],
            "train_accuracy": train[1],
            "test_loss": test[0],
            "test_accuracy": test[1],
            "diverged": ~(finite & jnp.isfinite(train[0])),
        }

    def program(sigma_w, sigma_b, seeds, data):
        def per_seed(seed):
            init_key, data_key = jax.random.split(jax.random.key(seed))
            unit = _init(init_key, depth, settings.width, n_in, n_out)
            return jax.vmap(one, in_axes=(0, None, None, None, None))(
                sigma_w, sigma_b, unit, data_key, data
            )

        return jax.vmap(per_seed)(seeds)

    if jax.device_count() == 1:
        return jax.jit(program, compiler_options=devices.COMPILER_OPTIONS)
    # Several (CPU) devices: each trains its share of the sigma_w^2 column, side by side.
    cells = PartitionSpec("cell")
    spmd = jax.shard_map(
        program,
        mesh=Mesh(np.asarray(jax.devices()), ("cell",)),
        in_specs=(cells, PartitionSpec(), PartitionSpec(), PartitionSpec()),
        out_specs=PartitionSpec(None, "cell"),
        check_vma=False,  # every value in the body is per device
    )
    return jax.jit(spmd, compiler_options=devices.COMPILER_OPTIONS)


def train_depth(
    settings: Settings,
    depth: int,
    dataset: data_lib.Dataset,
    *,
    timings: dict[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Trains every (seed, sigma_w^2) cell of one depth; arrays of shape (seeds, sigma_w2).

    Where ``timings`` is given, its ``"compile"`` entry is set to the compilation seconds.
    """
    program = make_program(settings, depth, dataset.input_dim, dataset.num_classes)
    data = {
        "x_train": jnp.asarray(dataset.x_train),
        "y_train": jnp.asarray(dataset.y_train),
        "x_test": jnp.asarray(dataset.x_test),
        "y_test": jnp.asarray(dataset.y_test),
    }
    # Padded to a multiple of the devices; the padding is dropped.
    n_cells = len(settings.sigma_w2)
    padded = devices.padded(settings.sigma_w2, jax.device_count())
    sigma_w = jnp.sqrt(jnp.asarray(padded, jnp.float32))
    sigma_b = jnp.sqrt(jnp.float32(settings.sigma_b2))
    seeds = jnp.arange(settings.seeds, dtype=jnp.uint32)
    start = time.perf_counter()
    compiled = program.lower(sigma_w, sigma_b, seeds, data).compile()
    if timings is not None:
        timings["compile"] = time.perf_counter() - start
    out = compiled(sigma_w, sigma_b, seeds, data)
    return {k: np.asarray(v)[:, :n_cells] for k, v in out.items()}


def depth_rows(
    settings: Settings, depth: int, outputs: dict[str, np.ndarray], xi: Sequence[float]
) -> list[dict[str, Any]]:
    """One row per (sigma_w^2, seed) of a depth's outputs."""
    rows = []
    for j, sw2 in enumerate(settings.sigma_w2):
        for seed in range(settings.seeds):
            rows.append(
                {
                    "activation": settings.spec,
                    "sigma_w2": sw2,
                    "sigma_b2": settings.sigma_b2,
                    "depth": depth,
                    "width": settings.width,
                    "seed": seed,
                    "steps": settings.steps,
                    "lr": settings.lr_scale / depth,
                    **{k: outputs[k][seed, j].item() for k in outputs},
                    "xi_c": xi[j],
                    "depth_over_xi_c": depth / xi[j],
                }
            )
    return rows


# --- the study ----------------------------------------------------------------------


def _depth_file(out: Path, depth: int) -> Path:
    return out / "depths" / f"depth-{depth}.json"


def load_depth(out: Path, settings: Settings, depth: int) -> dict[str, Any] | None:
    """A finished depth's record (``rows``, ``seconds``), or None where there is none for
    these settings."""
    path = _depth_file(out, depth)
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if record.get("key") == settings.key(depth) else None


def run(settings: Settings, out: Path, *, log=print) -> tuple[list[dict[str, Any]], float]:
    """Trains every depth not yet done, writing each as it finishes.

    Returns:
        All rows, by depth, and the seconds the depths took to train (compilation included),
        summed over this and earlier invocations.
    """
    params = dict(settings.params)
    xi = [
        correlation_depth(settings.activation, params, s, settings.sigma_b2)
        for s in settings.sigma_w2
    ]
    dataset = data_lib.load(settings.dataset)
    done = {d: rec for d in settings.depths if (rec := load_depth(out, settings, d)) is not None}
    if done:
        log(f"{len(done)} of {len(settings.depths)} depths already done in {out}: "
            f"{', '.join(map(str, sorted(done)))}")  # fmt: skip
    rows: list[dict[str, Any]] = []
    total = 0.0
    for depth in settings.depths:
        if depth in done:
            rows.extend(done[depth]["rows"])
            total += done[depth]["seconds"]
            continue
        start = time.perf_counter()
        timings: dict[str, float] = {}
        outputs = train_depth(settings, depth, dataset, timings=timings)
        seconds = time.perf_counter() - start
        new = depth_rows(settings, depth, outputs, xi)
        record = {"key": settings.key(depth), "seconds": seconds, "rows": new}
        recording.write_json(_depth_file(out, depth), record)
        rows.extend(new)
        total += seconds
        accuracies = " ".join(
            f"{sw2:g}:{np.median(outputs['train_accuracy'][:, j]):.2f}"
            for j, sw2 in enumerate(settings.sigma_w2)
        )
        compile_s = timings.get("compile", math.nan)
        log(f"depth {depth:3d}  {seconds:6.1f} s (compile {compile_s:4.1f} s)  "
            f"median train accuracy by sigma_w^2  {accuracies}")  # fmt: skip
    return rows, total


# --- analysis -----------------------------------------------------------------------


def cells(rows: Sequence[dict[str, Any]]) -> dict[tuple[float, int], dict[str, float]]:
    """(sigma_w2, depth) -> median train/test accuracy over seeds, xi_c, seeds, diverged."""
    grouped: dict[tuple[float, int], list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((float(row["sigma_w2"]), int(row["depth"])), []).append(row)
    result = {}
    for key, group in sorted(grouped.items()):
        result[key] = {
            "train_accuracy": float(np.median([float(r["train_accuracy"]) for r in group])),
            "test_accuracy": float(np.median([float(r["test_accuracy"]) for r in group])),
            "xi_c": float(group[0]["xi_c"]),
            "seeds": len(group),
            "diverged": sum(bool(int(r["diverged"])) for r in group),
        }
    return result


def fit_k(grid: dict[tuple[float, int], dict[str, float]]) -> tuple[float, float, float, int]:
    r"""The :math:`k` of :math:`L_{\max} \approx k\,\xi_c` that best separates the cells.

    A cell is *trained* where its median train accuracy is at least :data:`TRAINED`.
    Over the cuts between consecutive ratios depth / xi_c, the one that misclassifies
    fewest cells (trained above the cut, untrained below it) is chosen, and k is the
    geometric mean of the two ratios around it.

    Returns:
        (k, lower ratio, upper ratio, misclassified cells); k is NaN where the cells are
        all trained or all untrained (no transition to fit).
    """
    pairs = sorted(
        (sw_depth[1] / cell["xi_c"], cell["train_accuracy"] >= TRAINED)
        for sw_depth, cell in grid.items()
    )
    ratios = [r for r, _ in pairs]
    trained = [t for _, t in pairs]
    if all(trained) or not any(trained):
        return math.nan, math.nan, math.nan, 0
    best = None
    for i in range(1, len(pairs)):
        if ratios[i] == ratios[i - 1]:
            continue
        errors = sum(not t for t in trained[:i]) + sum(trained[i:])
        if best is None or errors < best[0]:
            best = (errors, ratios[i - 1], ratios[i])
    errors, lo, hi = best
    return math.sqrt(lo * hi), lo, hi, errors


def regions(grid: dict[tuple[float, int], dict[str, float]]) -> dict[str, Any]:
    """The expected-outcome checks: trained below 3 xi_c, untrained above 12 xi_c."""
    below = [c for (sw2, d), c in grid.items() if d <= 3 * c["xi_c"]]
    above = [c for (sw2, d), c in grid.items() if d >= 12 * c["xi_c"]]
    critical = [c for (sw2, d), c in grid.items() if abs(sw2 - 1.76) < 1e-9]
    fraction = lambda cs, ok: sum(map(ok, cs)) / len(cs) if cs else math.nan
    count = lambda cs, ok: sum(map(ok, cs))
    trained = lambda c: c["train_accuracy"] >= 0.9
    untrained = lambda c: c["train_accuracy"] <= 0.3
    return {
        "below": len(below),
        "below_trained": fraction(below, trained),
        "below_trained_count": count(below, trained),
        "above": len(above),
        "above_untrained": fraction(above, untrained),
        "above_untrained_count": count(above, untrained),
        "critical": len(critical),
        "critical_trained": fraction(critical, trained),
        "critical_trained_count": count(critical, trained),
    }


def summary_markdown(
    settings: Settings, rows: Sequence[dict[str, Any]], seconds: float, elapsed: float
) -> str:
    """The study's summary: settings, the grid of median accuracies, the fitted k."""
    grid = cells(rows)
    k, lo, hi, errors = fit_k(grid)
    check = regions(grid)
    sw2s = sorted({sw2 for sw2, _ in grid})
    depths = sorted({d for _, d in grid})
    lines = [
        f"# Trainability phase diagram: {settings.spec}, sigma_b^2 = {settings.sigma_b2:g}",
        "",
        f"Width {settings.width}, {settings.dataset}, {settings.steps} momentum-SGD steps "
        f"(momentum {MOMENTUM}, batch {settings.batch_size}, learning rate "
        f"{settings.lr_scale:g} / depth), n = {settings.seeds} seeds per cell; "
        f"every layer N(0, sigma_w^2/fan_in), biases N(0, sigma_b^2).",
        "",
        f"Fitted k in L_max ~ k xi_c: **{k:.2f}** (the cut between depth/xi_c = {lo:.2f} and "
        f"{hi:.2f} that misclassifies fewest cells, here {errors}; a cell is trained where its "
        f"median train accuracy is >= {TRAINED}). Schoenholz et al. (2017): k ~ {_PAPER_K:g}.",
        "",
        f"- cells with depth <= 3 xi_c: {check['below_trained_count']} of {check['below']} "
        f"({check['below_trained']:.0%}) have median train accuracy >= 0.9 "
        f"(median over n = {settings.seeds} seeds)",
        f"- cells with depth >= 12 xi_c: {check['above_untrained_count']} of {check['above']} "
        f"({check['above_untrained']:.0%}) have median train accuracy <= 0.3",
    ]
    if check["critical"]:
        lines.append(
            f"- sigma_w^2 = 1.76: {check['critical_trained_count']} of {check['critical']} depths "
            f"({check['critical_trained']:.0%}) reach median train accuracy >= 0.9"
        )
    diverged = sum(c["diverged"] for c in grid.values())
    lines += [
        f"- diverged runs: {diverged} of {len(rows)}",
        f"- time: {seconds:.0f} s training the depths (compilation included, summed over "
        f"invocations where resumed); the last invocation took {elapsed:.0f} s in all (theory, "
        "training, tables and figure)",
        "",
        "Median final train accuracy (test accuracy in parentheses); xi_c from "
        "jaxact.theory.depth_scales:",
        "",
        "| depth | " + " | ".join(f"{s:g}" for s in sw2s) + " |",
        "|---|" + "---|" * len(sw2s),
        "| xi_c | " + " | ".join(f"{grid[(s, depths[0])]['xi_c']:.2f}" for s in sw2s) + " |",
    ]
    for d in depths:
        lines.append(
            f"| {d} | "
            + " | ".join(
                f"{grid[(s, d)]['train_accuracy']:.2f} ({grid[(s, d)]['test_accuracy']:.2f})"
                if (s, d) in grid
                else ""
                for s in sw2s
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def plot(settings: Settings, rows: Sequence[dict[str, Any]], path: Path) -> None:
    """The heatmap of median train accuracy with the curves 3, 6, 12 x xi_c."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = cells(rows)
    sw2s = np.array(sorted({s for s, _ in grid}))
    depths = np.array(sorted({d for _, d in grid}))
    values = np.array(
        [[grid.get((s, d), {}).get("train_accuracy", np.nan) for s in sw2s] for d in depths]
    )

    def edges(centres):
        if len(centres) == 1:
            return np.array([centres[0] * 0.9, centres[0] * 1.1])
        mid = (centres[1:] + centres[:-1]) / 2
        first = max(2 * centres[0] - mid[0], centres[0] / 2)  # sigma_w^2 stays positive
        return np.concatenate([[first], mid, [2 * centres[-1] - mid[-1]]])

    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    mesh = ax.pcolormesh(edges(sw2s), edges(depths.astype(float)), values, cmap="viridis",
                         vmin=0.0, vmax=1.0, shading="flat")  # fmt: skip
    fig.colorbar(mesh, ax=ax, label="median final train accuracy")
    fine = np.linspace(edges(sw2s)[0], edges(sw2s)[-1], 25)
    xi = np.array(
        [
            correlation_depth(settings.activation, dict(settings.params), s, settings.sigma_b2)
            for s in fine
        ]
    )
    for k, style in ((3, ":"), (6, "--"), (12, "-.")):
        ax.plot(fine, k * xi, style, color="white", lw=1.6, label=f"{k} $\\xi_c$")
    for (sw2, depth), cell in grid.items():
        text = f"{cell['train_accuracy']:.2f}" + ("\n(div.)" if cell["diverged"] else "")
        colour = "black" if cell["train_accuracy"] > 0.6 else "white"
        ax.text(sw2, depth, text, ha="center", va="center", fontsize=6, color=colour)
    ax.set_ylim(edges(depths.astype(float))[0], edges(depths.astype(float))[-1])
    ax.set_xlim(fine[0], fine[-1])
    ax.set_xlabel("$\\sigma_w^2$")
    ax.set_ylabel("depth (hidden layers)")
    ax.set_xticks(sw2s)
    ax.set_xticklabels([f"{s:g}" for s in sw2s], fontsize=8)
    ax.set_yticks(depths)
    ax.set_title(
        f"{settings.spec}, $\\sigma_b^2$={settings.sigma_b2:g}: width {settings.width}, "
        f"{settings.steps} steps, {settings.seeds} seeds",
        fontsize=9,
    )
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.14),
        ncol=3,
        fontsize=8,
        facecolor="0.5",
        framealpha=0.8,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=90, bbox_inches="tight")


def main(argv: Sequence[str] | None = None) -> int:
    """The command line entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    plot_figure = getattr(args, "plot", True)
    devices.use_cpu_cores()  # the cells of a depth spread over the cores
    try:
        settings = settings_from(args)
        prepare_output_folder(out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        with atomic_files.output_lock(out):  # a second run into the same --out refuses
            rows, seconds = run(settings, out)
            recording.write_csv(out / "trainability.csv", FIELDS, rows)
            if plot_figure:
                plot(settings, rows, out / "phase_diagram.png")
            elapsed = time.perf_counter() - start
            atomic_files.atomic_write_text(
                out / "summary.md", summary_markdown(settings, rows, seconds, elapsed)
            )
    except atomic_files.OutputLocked as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; finished depths are kept in {out}/depths: run the same command "
              "to resume", file=sys.stderr)  # fmt: skip
        return 130
    figure = ", phase_diagram.png" if plot_figure else ""
    print(f"wrote {out}/trainability.csv, summary.md{figure} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
