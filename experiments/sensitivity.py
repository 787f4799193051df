"""``critmin sensitivity``: Morris screening and Sobol indices of model outputs to parameters.

The analysis is described by ``configs/sensitivity/<name>.yaml`` or any YAML file given by path
(:mod:`critmin.experiments.sensitivity_config` reads and validates it before any simulation).
Each sample becomes Hydra overrides (``scenario.market.theta=0.12``, ...) appended to the
config's base overrides and the command line's, runs :func:`critmin.simulate` without
plots, flows or report (writing nothing) and yields the configured outputs. Sampling, parallel
evaluation and SALib analysis are model-independent (:mod:`critmin.experiments.sensitivity_core`).

Writes ``<out>/<name>-<method>-<hash>/``: ``samples.parquet`` (inputs, outputs, error and seconds
per run), ``indices.parquet`` and ``indices.csv`` (output, parameter, index, value, conf),
``indices.png`` and ``manifest.yaml``; prints the indices per output. See docs/sensitivity.md.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from critmin.experiments import sensitivity_core as core
from critmin.experiments.api import simulate
from critmin.experiments.sensitivity_config import ConfigError, SensitivityConfig, load_sensitivity_config
from critmin.sim.run import code_version, load_config
from critmin.sim.world import DataError

__all__ = ["ConfigError", "load_sensitivity_config", "main", "run_analysis"]


# ---------------------------------------------------------------------- the model function
_BASE: dict[tuple[str, ...], DictConfig] = {}  # per process: the study's composed base config


def sample_config(config: SensitivityConfig, x: np.ndarray) -> DictConfig:
    """The run config of one sample: the study's base config, composed once per process, with
    the sample's parameter values set (the same values ``sample_overrides`` would give Hydra)."""
    key = tuple(config.overrides)
    if key not in _BASE:
        _BASE[key] = load_config(list(key))
    cfg = copy.deepcopy(_BASE[key])
    for p, v in zip(config.parameters, x):
        OmegaConf.update(cfg, p.key, p.model_value(v), merge=False)
    return cfg


def model_outputs(x: np.ndarray, config: SensitivityConfig) -> dict[str, float]:
    """Simulate one sample (design row ``x``) and return its outputs (runs in worker processes)."""
    result = simulate(sample_config(config, x))
    data = result.manifest["input_data_sha256"]
    if data != config.input_data_sha256:  # every sample must see the data the manifest records
        changed = sorted(
            k
            for k in set(data) | set(config.input_data_sha256)
            if data.get(k) != config.input_data_sha256.get(k)
        )
        raise RuntimeError(f"input data changed since the analysis started: {changed}")
    return {o.name: o.value(result) for o in config.outputs}


def design_for(config: SensitivityConfig, method: str, n: int | None, seed: int | None) -> core.Design:
    if n is not None and n < 1:  # 0 must not fall back to the config's design silently
        raise DataError(f"--n: expected a whole number >= 1 (or leave it out for the config's), got {n}")
    if method == "morris":
        return core.Design(
            "morris",
            config.morris["trajectories"] if n is None else n,
            config.seed if seed is None else seed,
            levels=config.morris["levels"],
        )
    return core.Design(
        "sobol",
        config.sobol["n"] if n is None else n,
        config.seed if seed is None else seed,
        second_order=config.sobol["second_order"],
    )


def analysis_id(config: SensitivityConfig, design: core.Design) -> str:
    """Stable id of what was analysed: same config, overrides and design → same folder."""
    text = json.dumps({"config": config.resolved(), "design": asdict(design)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def samples_frame(config: SensitivityConfig, X: np.ndarray, evaluation: core.Evaluation) -> pd.DataFrame:
    """One row per run: the parameter values the model got, the outputs, error and seconds.
    Integer parameters also keep their continuous design value (``design:<key>``)."""
    df = core.sample_table(config.problem(), X, evaluation)
    for j, p in enumerate(config.parameters):
        if p.integer:
            df[f"design:{p.key}"] = X[:, j]
            df[p.key] = [p.model_value(v) for v in X[:, j]]
    df["seconds"] = evaluation.seconds
    return df


# ---------------------------------------------------------------------- writing and printing
def _short(key: str) -> str:
    return key.removeprefix("scenario.")


def format_table(indices: pd.DataFrame, config: SensitivityConfig, method: str) -> str:
    """Per output, parameters ranked by mu* (Morris) or ST (Sobol)."""
    blocks = []
    for o in config.outputs:
        sel = indices[indices["output"] == o.name]
        wide = sel.pivot(index="parameter", columns="index", values="value")
        conf = sel.pivot(index="parameter", columns="index", values="conf")
        if method == "morris":
            table = pd.DataFrame(
                {"mu*": wide["mu_star"], "±conf": conf["mu_star"], "sigma": wide["sigma"], "mu": wide["mu"]}
            ).sort_values("mu*", ascending=False)
        else:
            table = pd.DataFrame(
                {"S1": wide["S1"], "±S1": conf["S1"], "ST": wide["ST"], "±ST": conf["ST"]}
            ).sort_values("ST", ascending=False)
        table.index = [_short(k) for k in table.index]
        text = table.to_string(float_format=lambda v: f"{v:.3g}")
        blocks.append(f"{o.name} [{o.unit}]: {o.description}\n{text}")
    return "\n\n".join(blocks)


def _errors(value: pd.Series, conf: pd.Series, floor_at_zero: bool) -> np.ndarray:
    """Error bars (2 × n); mu* cannot be negative, so its lower bar stops at 0."""
    lower = np.minimum(conf, value) if floor_at_zero else conf
    return np.vstack([lower.to_numpy(float), conf.to_numpy(float)])


def _morris_axis(ax: Any, wide: pd.DataFrame, conf: pd.DataFrame, order: pd.Index, unit: str) -> None:
    y = np.arange(len(order))
    mu_star = wide.loc[order, "mu_star"]
    ax.barh(y, mu_star, xerr=_errors(mu_star, conf.loc[order, "mu_star"], True), color="tab:blue",
            alpha=0.8, capsize=3, label="μ* ± 95% conf")  # fmt: skip
    ax.plot(wide.loc[order, "sigma"], y, "o", color="tab:red", label="σ")
    ax.set_xlabel(f"{unit} per full parameter range")


def _sobol_axis(ax: Any, wide: pd.DataFrame, conf: pd.DataFrame, order: pd.Index) -> None:
    y, h = np.arange(len(order)), 0.38
    for index, shift, colour in (("ST", h / 2, "tab:orange"), ("S1", -h / 2, "tab:blue")):
        value = wide.loc[order, index]
        ax.barh(y + shift, value, h, xerr=_errors(value, conf.loc[order, index], False), color=colour,
                capsize=3, label=f"{index} ± 95% conf")  # fmt: skip
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("share of output variance")


def write_plot(indices: pd.DataFrame, config: SensitivityConfig, design: core.Design, path: Path) -> None:
    """One panel per output. Morris: mu* bars with confidence intervals and sigma dots; Sobol:
    S1 and ST bars with confidence intervals. Parameters sorted by mu* or ST, largest on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    method = design.method
    k, n_out = len(config.parameters), len(config.outputs)
    ncols = 2 if n_out > 1 else 1
    nrows = math.ceil(n_out / ncols)
    size = (6.5 * ncols, (0.45 * k + 1.4) * nrows + 0.4)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False)
    for ax, o in zip(axes.flat, config.outputs):
        sel = indices[indices["output"] == o.name]
        wide = sel.pivot(index="parameter", columns="index", values="value")
        conf = sel.pivot(index="parameter", columns="index", values="conf").fillna(0.0)
        order = (wide["mu_star"] if method == "morris" else wide["ST"]).fillna(0.0).sort_values().index
        if method == "morris":
            _morris_axis(ax, wide, conf, order, o.unit)
        else:
            _sobol_axis(ax, wide, conf, order)
        main = wide["mu_star"] if method == "morris" else wide["ST"]
        if main.isna().all() or (main == 0).all():
            ax.text(0.5, 0.5, "output constant over all samples:\nno sensitivity to show", ha="center",
                    va="center", transform=ax.transAxes, fontsize=10, color="dimgray")  # fmt: skip
        ax.set_yticks(np.arange(len(order)), [_short(p) for p in order], fontsize=9)
        ax.set_title(f"{o.name} [{o.unit}]", fontsize=11)
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    for ax in list(axes.flat)[n_out:]:
        ax.set_visible(False)
    size_text = f"r = {design.n}" if method == "morris" else f"N = {design.n}"
    title = "Morris screening" if method == "morris" else "Sobol indices"
    base = ", ".join([*config.base_overrides, *config.cli_overrides])
    fig.suptitle(f"{title} ({size_text}, {design.runs(k)} runs): {config.name}\n{base}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(
    outdir: Path,
    config: SensitivityConfig,
    design: core.Design,
    samples: pd.DataFrame,
    indices: pd.DataFrame | None,
    manifest: dict[str, Any],
) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    samples.to_parquet(outdir / "samples.parquet", index=False)
    if indices is not None:
        indices.to_parquet(outdir / "indices.parquet", index=False)
        indices.to_csv(outdir / "indices.csv", index=False)
        write_plot(indices, config, design, outdir / "indices.png")
    (outdir / "manifest.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))


def build_manifest(
    config: SensitivityConfig, design: core.Design, evaluation: core.Evaluation, seconds: float, n_jobs: int
) -> dict[str, Any]:
    return {
        "analysis_id": analysis_id(config, design),
        "method": design.method,
        "design": {**asdict(design), "runs": design.runs(len(config.parameters))},
        "seed": design.seed,
        "model_seed": config.base_config.get("seed"),
        "n_jobs": n_jobs,
        "wall_seconds": round(seconds, 1),
        "failed_samples": {int(i): e for i, e in evaluation.failures.items()},
        "code_version": code_version(),
        "salib_version": version("SALib"),
        "input_data_sha256": config.input_data_sha256,
        "sensitivity_config": config.resolved(),
        "base_run_config": config.base_config,
    }


def _progress(t0: float) -> Callable[[int, int, int], None]:
    def report(done: int, total: int, failed: int) -> None:
        if done == total or done % max(1, total // 10) == 0:
            print(
                f"  {done}/{total} runs, {failed} failed, {time.perf_counter() - t0:.0f} s", file=sys.stderr
            )

    return report


# ---------------------------------------------------------------------- command line
def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="critmin sensitivity",
        description="Morris screening or Sobol indices of model outputs to the parameters and ranges "
        "listed in configs/sensitivity/<config>.yaml (docs/sensitivity.md).",
    )
    parser.add_argument(
        "--method",
        choices=core.METHODS,
        default="morris",
        help="morris: screening (default); sobol: variance shares",
    )
    parser.add_argument("--config", default="default", help="name under configs/sensitivity/ or a YAML path")
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help="Morris trajectories r (runs r*(k+1)) or Sobol base sample N, a power of 2 "
        "(runs N*(k+2)); default from the config",
    )
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (-1: every core)")
    parser.add_argument("--seed", type=int, default=None, help="sampler and bootstrap seed (default: config)")
    parser.add_argument("--out", default=None, help="parent folder (default <output_root>/sensitivity)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides applied to every run, e.g. policy=none")
    return parser.parse_intermixed_args(argv)


def analysis_dir(config: SensitivityConfig, design: core.Design, out_root: Path) -> Path:
    """``<out_root>/<name>-<method>-<hash>``."""
    return Path(out_root) / f"{config.name}-{design.method}-{analysis_id(config, design)}"


def run_analysis(
    config: SensitivityConfig, design: core.Design, out_root: Path, n_jobs: int = 1
) -> tuple[pd.DataFrame, list[str]]:
    """Sample, simulate, write ``samples.parquet`` and the manifest, then analyse and write the
    indices into :func:`analysis_dir`. Returns the indices and notes. Raises
    :class:`~critmin.experiments.sensitivity_core.FailedSamplesError` (after writing the samples
    with their errors) when a run failed."""
    problem = config.problem()
    X = core.sample(problem, design)
    t0 = time.perf_counter()
    func = functools.partial(model_outputs, config=config)
    outputs = [o.name for o in config.outputs]
    evaluation = core.evaluate(func, X, outputs, n_jobs=n_jobs, progress=_progress(t0))
    outdir = analysis_dir(config, design, out_root)
    samples = samples_frame(config, X, evaluation)
    manifest = build_manifest(config, design, evaluation, time.perf_counter() - t0, n_jobs)
    try:
        indices, notes = core.analyse(problem, design, X, evaluation)
    except core.FailedSamplesError:
        write_outputs(outdir, config, design, samples, None, manifest)
        raise
    manifest["notes"] = notes
    write_outputs(outdir, config, design, samples, indices, manifest)
    return indices, notes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        config = load_sensitivity_config(args.config, args.overrides)
        design = design_for(config, args.method, args.n, args.seed)
    except (core.SensitivityError, DataError) as exc:  # a bad sensitivity config, run config or data
        print(f"bad input: {exc}", file=sys.stderr)
        return 2
    out_root = Path(args.out) if args.out else Path(config.base_config["output_root"]) / "sensitivity"
    outdir = analysis_dir(config, design, out_root)
    k = len(config.parameters)
    print(f"{design.method}: {k} parameters, {design.runs(k)} runs, {args.jobs} job(s)", file=sys.stderr)
    t0 = time.perf_counter()
    try:
        indices, notes = run_analysis(config, design, out_root, args.jobs)
    except core.FailedSamplesError as exc:
        print(f"failed: {exc}\nsamples and their errors: {outdir / 'samples.parquet'}", file=sys.stderr)
        return 1
    print(format_table(indices, config, design.method))
    for note in notes:
        print(f"note: {note}")
    print(
        f"\n{design.runs(k)} runs in {time.perf_counter() - t0:.1f}s with {args.jobs} job(s); wrote {outdir}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
