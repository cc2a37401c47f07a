"""Sampling benchmarks: effective samples per second of the joint IV models.

Compares, on identical simulated data (31 provinces in 4 regions, K
instruments, covariates, year effects, many rows per province-year):

* ``causalpy``: CausalPy's ``InstrumentalVariable`` (PyMC NUTS; province and
  year dummies in the formulas, as it has no hierarchy). It runs in a separate
  virtual environment because CausalPy pins PyMC 5.
* ``per_obs``: ``polygvc.models.hierarchical_iv`` (MvNormal on every row), nutpie.
* ``suffstat``: ``polygvc.models.hierarchical_iv_suffstat`` (Gram matrices), nutpie.
* ``suffstat_duckdb``: the same model with the Gram matrices computed by DuckDB
  from a Parquet file (data-pass timing only differs).
* ``threshold`` / ``linear_fe``: the panel threshold model on a 50-point grid
  and the same fixed-effects regression without a threshold.

Each fit runs in its own process (``run-one``) under a hard timeout; the
driver (``all``) records wall times, peak RSS (``os.wait4``), computes bulk
ESS with one estimator (arviz-stats) for every model and writes the table.

Usage::

    python benchmarks/bench_sampling.py all --out-dir /tmp/polygvc-bench \
        --causalpy-python /tmp/causalpy-venv/bin/python

The ``run-one`` subcommand imports polygvc only for polygvc models, so the
CausalPy environment can run it without polygvc installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REGION_SIZES = {"East": 10, "Central": 6, "West": 12, "Northeast": 3}
N_INSTRUMENTS = 3
N_COVARIATES = 2
YEARS = tuple(range(2011, 2021))
SEED = 20261204
SIM_SEED = 7
POLYGVC_REPORTED = (
    "beta_mu", "beta_region", "beta_province", "beta_region_sd", "beta_province_sd",
    "intercept", "intercept_province_sd", "intercept_region_sd", "fs_instrument",
    "fs_covariate", "gamma", "sigma", "rho", "effect_mu",
)


# Simulation (NumPy only) ---------------------------------------------------


def simulate(n: int, seed: int = SIM_SEED) -> dict[str, np.ndarray]:
    """Simulate ``n`` rows of the hierarchical IV model with row-level instruments.

    Returns a dict of columns; ``province`` and ``region`` are integer codes.
    True values: first-stage slopes 0.5, 0.3, -0.2; covariate effects 0.3, -0.2
    (first stage) and -0.4, 0.2 (outcome); region slopes 0.3, 0.5, 0.1, 0.4
    plus province noise sd 0.1; error sds 1, 1 with correlation 0.5.
    """
    rng = np.random.default_rng(seed)
    region_of_province = np.repeat(np.arange(4), list(REGION_SIZES.values()))
    n_province = region_of_province.size
    province = rng.integers(0, n_province, size=n)
    year = rng.integers(0, len(YEARS), size=n)
    z = rng.normal(size=(n, N_INSTRUMENTS))
    w = rng.normal(size=(n, N_COVARIATES))
    # Correlated errors from standard normals (not multivariate_normal, whose SVD
    # may round differently across NumPy versions of the two environments).
    raw = rng.standard_normal(size=(n, 2))
    errors = np.column_stack([raw[:, 0], 0.5 * raw[:, 0] + np.sqrt(0.75) * raw[:, 1]])
    tau_x = rng.normal(scale=0.3, size=len(YEARS))
    tau_y = rng.normal(scale=0.3, size=len(YEARS))
    beta = np.array([0.3, 0.5, 0.1, 0.4])[region_of_province]
    beta = beta + rng.normal(scale=0.1, size=n_province)
    alpha = rng.normal(scale=0.5, size=n_province)
    x = 0.2 + z @ [0.5, 0.3, -0.2] + w @ [0.3, -0.2] + tau_x[year] + errors[:, 0]
    y = alpha[province] + beta[province] * x + w @ [-0.4, 0.2] + tau_y[year] + errors[:, 1]
    return {
        "province": province, "region": region_of_province[province], "year": year,
        "z": z, "w": w, "x": x, "y": y,
    }


def _frame(sim: dict[str, np.ndarray]):
    import pandas as pd

    regions = list(REGION_SIZES)
    columns = {
        "province": [f"P{p:02d}" for p in sim["province"]],
        "region": [regions[r] for r in sim["region"]],
        "year": np.asarray(YEARS)[sim["year"]],
        "x": sim["x"], "y": sim["y"],
    }
    for k in range(N_INSTRUMENTS):
        columns[f"z{k + 1}"] = sim["z"][:, k]
    for k in range(N_COVARIATES):
        columns[f"w{k + 1}"] = sim["w"][:, k]
    return pd.DataFrame(columns)


# polygvc fits --------------------------------------------------------------


def _spec(parameterization: str = "auto"):
    from polygvc.models.spec import HierarchicalIVSpec

    return HierarchicalIVSpec(
        dependent="y", endog="x",
        instruments=[f"z{k + 1}" for k in range(N_INSTRUMENTS)],
        controls=[f"w{k + 1}" for k in range(N_COVARIATES)],
        parameterization=parameterization,
    )


def _model_data(frame, spec):
    """ModelData for rows with repeated province-years (prepare_model_data rejects those)."""
    from polygvc.models.data import ModelData

    frame = frame.sort_values(["region", "province", "year"]).reset_index(drop=True)
    scaling, standard = {}, {}
    for column in spec.columns:
        values = frame[column].to_numpy(float)
        mean, sd = float(values.mean()), float(values.std(ddof=1))
        scaling[column] = {"mean": mean, "sd": sd}
        standard[column] = (values - mean) / sd
    units = list(dict.fromkeys(frame["province"]))
    groups = sorted(set(frame["region"]))
    years = sorted(set(frame["year"]))
    unit_codes = {u: i for i, u in enumerate(units)}
    region_of_unit = frame.groupby("province", sort=False)["region"].first()
    return ModelData(
        y=standard["y"], x=standard["x"],
        Z=np.column_stack([standard[c] for c in spec.instruments]),
        W=np.column_stack([standard[c] for c in spec.covariates]),
        unit_idx=frame["province"].map(unit_codes).to_numpy(),
        group_idx_of_unit=np.array([groups.index(region_of_unit[u]) for u in units]),
        time_idx=np.searchsorted(years, frame["year"].to_numpy()),
        coords={
            "obs": np.arange(len(frame)), "province": units, "region": groups,
            "year": [int(t) for t in years], "instrument": list(spec.instruments),
            "covariate": list(spec.covariates), "equation": ["first_stage", "outcome"],
        },
        scaling=scaling, frame=frame,
    )


def _gradient_seconds(compiled, repeats: int = 200) -> float:
    """Median wall time of one logp-and-gradient call of a nutpie-compiled model."""
    point = np.zeros(compiled.n_dim)
    # NOTE: logp_func is the PyTensor (numba mode) function behind nutpie 0.16's
    # compiled model; it returns logp and gradient and includes PyTensor's call overhead.
    logp_fn = compiled.logp_func
    logp_fn(point)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        logp_fn(point)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _run_polygvc(args) -> dict:
    import nutpie

    from polygvc.models.hierarchical_iv import build_hierarchical_iv
    from polygvc.models.hierarchical_iv_suffstat import build_hierarchical_iv_suffstat
    from polygvc.models.sufficient import gram_from_duckdb, gram_from_model_data

    # "suffstat_nc" is the sufficient-statistic model forced non-centred, to
    # show what the default ("auto") parameterization gains.
    spec = _spec("non_centred" if args.model == "suffstat_nc" else "auto")
    sim = simulate(args.n)
    start = time.perf_counter()
    frame = _frame(sim)
    data = _model_data(frame, spec)
    prep_s = time.perf_counter() - start
    record = {"data_prep_s": prep_s}
    if args.model == "per_obs":
        model = build_hierarchical_iv(spec, data)
        record["data_pass_s"] = 0.0
    elif args.model in ("suffstat", "suffstat_nc", "suffstat_jax"):
        stats = gram_from_model_data(data, spec)
        record["data_pass_s"] = stats.data_pass_seconds
        model = build_hierarchical_iv_suffstat(spec, stats)
    else:
        # suffstat_duckdb: the data pass only, because the model and its
        # sampling are those of "suffstat" once the Gram matrices exist.
        path = Path(args.work_dir) / f"rows_{args.n}.parquet"
        frame.to_parquet(path)
        del frame, data
        stats = gram_from_duckdb(path, spec)
        record.update(data_pass_s=stats.data_pass_seconds, engine=f"DuckDB, {path.name}")
        return record
    start = time.perf_counter()
    backend = "jax" if args.model == "suffstat_jax" else "numba"
    compiled = nutpie.compile_pymc_model(
        model, backend=backend, gradient_backend="jax" if backend == "jax" else "pytensor",
        var_names=POLYGVC_REPORTED,
    )
    record["compile_s"] = time.perf_counter() - start
    try:
        record["gradient_ms"] = 1e3 * _gradient_seconds(compiled)
    except (AttributeError, TypeError):
        record["gradient_ms"] = None
    start = time.perf_counter()
    dt = nutpie.sample(
        compiled, draws=args.draws, tune=args.tune, chains=args.chains, cores=args.cores,
        seed=SEED, progress_bar=False, target_accept=0.95, save_warmup=False,
    )
    record["sampling_s"] = time.perf_counter() - start
    record["divergences"] = int(dt["sample_stats"]["diverging"].sum())
    posterior = dt["posterior"].to_dataset()
    _save_draws({name: posterior[name].to_numpy() for name in posterior.data_vars}, args.draws_out)
    record["engine"] = f"nutpie {nutpie.__version__} ({backend})"
    return record


def _run_threshold(args) -> dict:
    import nutpie
    import pandas as pd
    import pymc as pm
    import pytensor.tensor as pt

    from polygvc.models.panel_threshold import build_panel_threshold_model, prepare_panel_threshold
    from polygvc.models.threshold import within_transform

    # A province-year panel (31 x 20) with a slope that changes at q = 0.3.
    rng = np.random.default_rng(SIM_SEED)
    n_unit, n_year = 31, 20
    unit = np.repeat(np.arange(n_unit), n_year)
    q, x, w = rng.normal(size=(3, n_unit * n_year))
    slope = np.where(q <= 0.3, 0.2, 0.8)
    y = rng.normal(size=n_unit)[unit] + slope * x + 0.5 * w + rng.normal(size=unit.size)
    frame = pd.DataFrame({"unit": unit, "q": q, "x": x, "w": w, "y": y})
    start = time.perf_counter()
    if args.model == "threshold":
        data = prepare_panel_threshold(
            frame, dependent="y", regime_var="x", threshold_var="q", controls=["w"], unit="unit"
        )
        model = build_panel_threshold_model(data)
        reported = ["beta", "beta_regime", "sigma"]
    else:
        within = {c: within_transform(frame[c].to_numpy(), unit) for c in ("y", "x", "w")}
        dof = unit.size - n_unit
        with pm.Model() as model:
            beta = pm.Normal("beta", 0.0, 2.5, shape=2)
            sigma = pm.HalfNormal("sigma", 1.0)
            resid = within["y"] - beta[0] * within["x"] - beta[1] * within["w"]
            # Fixed effects integrated out: sum_i (T_i - 1) degrees of freedom.
            pm.Potential(
                "within_loglik",
                -0.5 * dof * pt.log(2 * np.pi * sigma**2) - 0.5 * pt.sum(resid**2) / sigma**2,
            )
        reported = ["beta", "sigma"]
    record = {"data_pass_s": time.perf_counter() - start, "data_prep_s": 0.0}
    start = time.perf_counter()
    compiled = nutpie.compile_pymc_model(model, backend="numba", var_names=reported)
    record["compile_s"] = time.perf_counter() - start
    try:
        record["gradient_ms"] = 1e3 * _gradient_seconds(compiled)
    except (AttributeError, TypeError):
        record["gradient_ms"] = None
    start = time.perf_counter()
    dt = nutpie.sample(
        compiled, draws=args.draws, tune=args.tune, chains=args.chains, cores=args.cores,
        seed=SEED, progress_bar=False, target_accept=0.95, save_warmup=False,
    )
    record["sampling_s"] = time.perf_counter() - start
    record["divergences"] = int(dt["sample_stats"]["diverging"].sum())
    posterior = dt["posterior"].to_dataset()
    _save_draws({name: posterior[name].to_numpy() for name in reported}, args.draws_out)
    record["engine"] = f"nutpie {nutpie.__version__} (numba)"
    return record


# CausalPy fit (separate environment) -----------------------------------------


def _run_causalpy(args) -> dict:
    import causalpy as cp
    import pymc as pm

    sim = simulate(args.n)
    start = time.perf_counter()
    frame = _frame(sim)
    record = {"data_prep_s": time.perf_counter() - start, "data_pass_s": 0.0}
    instruments = " + ".join(f"z{k + 1}" for k in range(N_INSTRUMENTS))
    covariates = " + ".join(f"w{k + 1}" for k in range(N_COVARIATES))
    sample_kwargs = {
        "draws": args.draws, "tune": args.tune, "chains": args.chains, "cores": args.cores,
        "target_accept": 0.95, "progressbar": False, "random_seed": SEED,
    }
    start = time.perf_counter()
    result = cp.InstrumentalVariable(
        instruments_data=frame,
        data=frame,
        instruments_formula=f"x ~ 1 + {instruments} + {covariates} + C(year)",
        formula=f"y ~ 1 + x + {covariates} + C(year) + C(province)",
        model=cp.pymc_models.InstrumentalVariableRegression(sample_kwargs=sample_kwargs),
    )
    record["total_s"] = time.perf_counter() - start
    posterior = result.model.idata.posterior
    record["sampling_s"] = float(posterior.attrs.get("sampling_time", np.nan))
    record["compile_s"] = None
    record["gradient_ms"] = None
    record["divergences"] = int(result.model.idata.sample_stats["diverging"].sum())
    draws = {
        name: posterior[name].to_numpy()
        for name in posterior.data_vars
        if posterior[name].size // (posterior.sizes["chain"] * posterior.sizes["draw"]) < 1000
    }
    _save_draws(draws, args.draws_out)
    record["engine"] = f"CausalPy {cp.__version__}, PyMC {pm.__version__} NUTS"
    return record


def _save_draws(draws: dict[str, np.ndarray], path: str) -> None:
    np.savez(path, **draws)


def run_one(args) -> None:
    if args.model == "causalpy":
        record = _run_causalpy(args)
    elif args.model in ("threshold", "linear_fe"):
        record = _run_threshold(args)
    else:
        record = _run_polygvc(args)
    record.update(model=args.model, n=args.n, chains=args.chains, draws=args.draws, tune=args.tune)
    Path(args.out).write_text(json.dumps(record))


# Driver ----------------------------------------------------------------------


def _min_bulk_ess(path: Path) -> tuple[float, str]:
    from arviz_stats.base import array_stats

    lowest, name_lowest = np.inf, ""
    with np.load(path) as draws:
        for name in draws.files:
            values = draws[name]
            flat = values.reshape(values.shape[0], values.shape[1], -1)
            for k in range(flat.shape[-1]):
                ess = array_stats.ess(flat[:, :, k], chain_axis=0, draw_axis=1, method="bulk")
                ess = float(ess)
                if np.isfinite(ess) and ess < lowest:
                    lowest, name_lowest = ess, f"{name}[{k}]" if flat.shape[-1] > 1 else name
    return lowest, name_lowest


def _spawn(command: list[str], timeout_s: float) -> tuple[int | None, float, float]:
    """Run a child; return (exit status or None on timeout, wall s, peak RSS GiB)."""
    start = time.perf_counter()
    # A session of its own, so a timeout also stops the child's sampler workers
    # (PyMC runs chains in worker processes that outlive a killed parent).
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = start + timeout_s
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode:
                sys.stderr.write(child.stderr.read().decode()[-3000:])
            return child.returncode, time.perf_counter() - start, usage.ru_maxrss / 2**20
        if time.perf_counter() > deadline:
            os.killpg(child.pid, signal.SIGKILL)
            _, status, usage = os.wait4(child.pid, 0)
            return None, time.perf_counter() - start, usage.ru_maxrss / 2**20
        time.sleep(0.5)


def _machine() -> dict:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "nproc": os.cpu_count(), "ram_gib": mem_kib / 2**20, "cpu": cpu,
        "python": platform.python_version(), "loadavg_start": os.getloadavg(),
    }


def run_all(args) -> None:
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = []
    for n in args.sizes:
        if args.causalpy_python and n <= args.causalpy_max_n:
            plan.append(("causalpy", n, args.causalpy_timeout, args.causalpy_chains))
        plan.append(("per_obs", n, args.timeout, args.chains))
        plan.append(("suffstat_nc", n, args.timeout, args.chains))
        plan.append(("suffstat", n, args.timeout, args.chains))
    # The JAX backend once, at the smallest size: with Gram matrices its cost
    # does not depend on N either.
    plan.append(("suffstat_jax", min(args.sizes), args.timeout, args.chains))
    plan.append(("suffstat_duckdb", max(args.sizes), args.timeout, args.chains))
    for model in ("linear_fe", "threshold"):
        plan.append((model, 620, args.timeout, args.chains))
    results = {"machine": _machine(), "command": " ".join(sys.argv), "runs": []}
    for model, n, timeout, chains in plan:
        out, draws_out = out_dir / f"{model}_{n}.json", out_dir / f"{model}_{n}_draws.npz"
        python = args.causalpy_python if model == "causalpy" else sys.executable
        command = [
            python, __file__, "run-one", "--model", model, "--n", str(n), "--out", str(out),
            "--draws-out", str(draws_out), "--chains", str(chains), "--draws", str(args.draws),
            "--tune", str(args.tune), "--cores", str(args.cores), "--work-dir", str(out_dir),
        ]
        print(f"[bench] {model} n={n} (timeout {timeout / 60:.0f} min)", flush=True)
        status, wall, rss = _spawn(command, timeout)
        run = {"model": model, "n": n, "wall_s": wall, "peak_rss_gib": rss, "chains": chains}
        if status is None:
            run["status"] = f"did not finish in {timeout / 60:.0f} min"
        elif status != 0:
            run["status"] = f"failed (exit {status})"
        else:
            run.update(json.loads(out.read_text()))
            run["status"] = "ok"
            if draws_out.exists():
                ess, weakest = _min_bulk_ess(draws_out)
                run["min_ess_bulk"], run["weakest"] = ess, weakest
                run["ess_per_s"] = ess / run["sampling_s"]
        print(f"[bench]   {run['status']}, wall {wall:.0f} s, peak RSS {rss:.2f} GiB", flush=True)
        results["runs"].append(run)
        (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    results["machine"]["loadavg_end"] = os.getloadavg()
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))


def _fmt(value, spec: str = ".1f") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return format(value, spec)


def write_report(
    results_path: Path,
    target: Path,
    customs: Path | None,
    versions: Path | None = None,
    notes: tuple[str, ...] = (),
) -> None:
    """Write the benchmark page from one results.json (and append the customs page)."""
    results = json.loads(results_path.read_text())
    machine = results["machine"]
    lines = [
        "# Sampling benchmarks",
        "",
        "Generated by `benchmarks/run_all.sh` from one run; do not edit by hand.",
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['ram_gib']:.1f} GiB RAM, "
        f"Python {machine['python']}. Load average at start {machine['loadavg_start']}, at end "
        f"{machine.get('loadavg_end')}: other processes competed for the same cores, so "
        "absolute times are pessimistic and noisy.",
        "",
        "ESS/s = minimum bulk ESS over the reported parameters (arviz-stats, the same "
        "estimator for every model) divided by the sampling wall time. Compile time and "
        "the data pass (Gram matrices) are listed apart and not in the ESS/s.",
        "",
        "| model | N | chains | status | data pass s | compile s | sampling s | "
        "grad ms | min bulk ESS (param) | ESS/s | div. | peak RSS GiB | engine |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in results["runs"]:
        lines.append(
            f"| {run['model']} | {run['n']:,} | {run['chains']} | {run['status']} | "
            f"{_fmt(run.get('data_pass_s'), '.3f')} | {_fmt(run.get('compile_s'))} | "
            f"{_fmt(run.get('sampling_s'))} | {_fmt(run.get('gradient_ms'), '.3f')} | "
            f"{_fmt(run.get('min_ess_bulk'), '.0f')} ({run.get('weakest', '')}) | "
            f"{_fmt(run.get('ess_per_s'))} | {run.get('divergences', 'n/a')} | "
            f"{run['peak_rss_gib']:.2f} | {run.get('engine', '')} |"
        )
    lines += ["", "## Setup", ""] + _setup_notes(results, versions)
    lines += [f"- {note}" for note in notes]
    lines += ["", "## Targets", ""] + _targets(results["runs"])
    text = "\n".join(lines) + "\n"
    if customs is not None and customs.exists():
        text += "\n---\n\n" + customs.read_text()
    target.write_text(text)


def _setup_notes(results: dict, versions: Path | None) -> list[str]:
    first = next((run for run in results["runs"] if "draws" in run), {})
    cp_versions = "unknown"
    if versions is not None and versions.exists():
        lines = versions.read_text().splitlines()
        cp_versions = ", ".join(" ".join(line.split()) for line in lines)
    return [
        f"- Data: `simulate()` in `benchmarks/bench_sampling.py`, seed {SIM_SEED}: 31 provinces "
        f"in 4 regions (10/6/12/3), {len(YEARS)} years, {N_INSTRUMENTS} row-level instruments, "
        f"{N_COVARIATES} covariates, year effects, error correlation 0.5; rows drawn uniformly "
        "over provinces and years (many rows per province-year).",
        "- polygvc models: the spec of `_spec()` (province slopes, year effects), nutpie "
        "(numba unless the engine column says jax), target_accept 0.95, 2 chains in parallel. "
        "`per_obs` and `suffstat` use the default `parameterization = \"auto\"`, which "
        "centres the province terms here (at least 50 rows in every province); `suffstat_nc` "
        "is the sufficient-statistic model forced non-centred; `suffstat_jax` is `suffstat` "
        "compiled with JAX on the CPU.",
        "- CausalPy: `InstrumentalVariable` with `x ~ 1 + z1 + z2 + z3 + w1 + w2 + C(year)` and "
        "`y ~ 1 + x + w1 + w2 + C(year) + C(province)` (province dummies stand in for the "
        "hierarchy it lacks), PyMC's default NUTS, target_accept 0.95, in a separate venv "
        f"because CausalPy pins PyMC 5 ({cp_versions}). CausalPy's `fit` also draws the "
        "posterior predictive; its ESS/s uses PyMC's own `sampling_time` only.",
        f"- Draws per chain {first.get('draws', 'see command')}, tuning steps "
        f"{first.get('tune', 'see command')}; chains per model in the table.",
        "- Sizes and timeouts were cut to fit the shared machine: see the command line.",
    ]


def _targets(runs: list[dict]) -> list[str]:
    def find(model, n):
        return next((r for r in runs if r["model"] == model and r["n"] == n), None)

    lines = []
    cp_small, ss_small = find("causalpy", 5_000), find("suffstat", 5_000)
    if cp_small and ss_small and "ess_per_s" in cp_small and "ess_per_s" in ss_small:
        ratio = ss_small["ess_per_s"] / cp_small["ess_per_s"]
        verdict = "met" if ratio >= 100 else "not met"
        lines.append(f"- ESS/s of polygvc (sufficient) / CausalPy at N = 5,000: {ratio:.0f}x "
                     f"(target >= 100x): {verdict}.")
    else:
        lines.append("- ESS/s ratio at N = 5,000: not available (a run did not finish).")
        for run in (cp_small, ss_small):
            if run is not None:
                lines.append(
                    f"  - {run['model']}: {run['status']}, min bulk ESS "
                    f"{_fmt(run.get('min_ess_bulk'), '.0f')} in {_fmt(run.get('sampling_s'))} s "
                    f"of sampling after {_fmt(run.get('compile_s'))} s of compiling "
                    f"({run['wall_s']:.0f} s wall in all)."
                )
    ss_big = find("suffstat", 1_000_000)
    if ss_small and ss_big and "sampling_s" in ss_big:
        ratio = ss_big["sampling_s"] / ss_small["sampling_s"]
        verdict = "met" if ratio <= 2 else "not met"
        lines.append(f"- Sampling time N = 1,000,000 / N = 5,000 (sufficient): {ratio:.2f} "
                     f"(target <= 2): {verdict}.")
        grad_small, grad_big = ss_small.get("gradient_ms"), ss_big.get("gradient_ms")
        if ratio > 2 and grad_small and grad_big:
            lines.append(
                f"  - One logp-and-gradient call takes {grad_small:.3f} ms at N = 5,000 and "
                f"{grad_big:.3f} ms at N = 1,000,000, so the extra time comes from more "
                "gradient calls per draw (the posterior's shape changes with N), not from N."
            )
        nc_small, nc_big = find("suffstat_nc", 5_000), find("suffstat_nc", 1_000_000)
        if nc_small and nc_big and "sampling_s" in nc_small and "sampling_s" in nc_big:
            lines.append(
                f"  - Forced non-centred (`suffstat_nc`) the same ratio is "
                f"{nc_big['sampling_s'] / nc_small['sampling_s']:.2f}: with many rows per "
                "province the non-centred offsets need more gradient calls per draw."
            )
        rss = ss_big["peak_rss_gib"]
        lines.append(f"- Peak RSS of the 1,000,000-row sufficient-statistic fit: {rss:.2f} GiB "
                     f"(target < 4 GiB): {'met' if rss < 4 else 'not met'}.")
    linear, threshold = find("linear_fe", 620), find("threshold", 620)
    if linear and threshold and "ess_per_s" in linear and "ess_per_s" in threshold:
        cost = linear["ess_per_s"] / threshold["ess_per_s"]
        lines.append(
            f"- Cost per effective sample of the threshold model (grid-marginalised) relative "
            f"to the linear one: {cost:.2f}x (target <= 5x): {'met' if cost <= 5 else 'not met'}."
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run-one", help="one fit in this process")
    one.add_argument("--model", required=True,
                     choices=["causalpy", "per_obs", "suffstat", "suffstat_nc",
                              "suffstat_jax", "suffstat_duckdb", "threshold", "linear_fe"])
    one.add_argument("--n", type=int, required=True, help="rows")
    one.add_argument("--out", required=True, help="JSON record path")
    one.add_argument("--draws-out", required=True, help="npz of reported posterior draws")
    one.add_argument("--work-dir", default="/tmp", help="folder for the Parquet file")
    for parsed in (one, sub.add_parser("all", help="every fit, each in a child process")):
        parsed.add_argument("--chains", type=int, default=4)
        parsed.add_argument("--draws", type=int, default=1000, help="draws per chain")
        parsed.add_argument("--tune", type=int, default=1000, help="tuning steps per chain")
        parsed.add_argument("--cores", type=int, default=2, help="chains run in parallel")
    every = sub.choices["all"]
    every.add_argument("--out-dir", required=True)
    every.add_argument("--sizes", type=int, nargs="+", default=[5_000, 50_000, 1_000_000])
    every.add_argument("--timeout", type=float, default=900.0, help="seconds per polygvc fit")
    every.add_argument("--causalpy-python", default=None, help="python of the CausalPy venv")
    every.add_argument("--causalpy-max-n", type=int, default=50_000)
    every.add_argument("--causalpy-timeout", type=float, default=1800.0, help="seconds per fit")
    every.add_argument("--causalpy-chains", type=int, default=4)
    report = sub.add_parser("report", help="write the Markdown page from results.json")
    report.add_argument("--results", required=True)
    report.add_argument("--target", required=True)
    report.add_argument("--customs", default=None, help="page of another benchmark to append")
    report.add_argument("--versions", default=None, help="pip list lines of the CausalPy venv")
    report.add_argument("--note", action="append", default=[], help="remark on this run")
    args = parser.parse_args()
    if args.command == "run-one":
        run_one(args)
    elif args.command == "all":
        run_all(args)
    else:
        customs = Path(args.customs) if args.customs else None
        versions = Path(args.versions) if args.versions else None
        write_report(Path(args.results), Path(args.target), customs, versions, tuple(args.note))


if __name__ == "__main__":
    main()
