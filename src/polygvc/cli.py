"""Command-line interface: ``polygvc run CONFIG --out DIR`` and friends.

User errors (:class:`~polygvc.errors.PolygvcError`) are printed as one
paragraph and end the program with a non-zero status; a Python traceback is
shown only with ``--debug``. SIGTERM is handled like Ctrl-C: the current stage
stops, files already written stay complete, and the program lists what was saved.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from polygvc.errors import PolygvcError

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="polygvc: Bayesian causal inference on polycentric agglomeration and GVC position.",
)
data_app = typer.Typer(no_args_is_help=True, help="Build and inspect analysis panels.")
app.add_typer(data_app, name="data")

console = Console(stderr=True)
results_console = Console()
LOG_FILE = "polygvc.log"
_state = {"debug": False, "quiet": False}


def _raise_keyboard_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt


def _configure_logging(run_dir: Path | None = None) -> None:
    root = logging.getLogger()
    root.handlers.clear()
    # Warnings that ask the user to act (weak instruments, extrapolation) go to the
    # console and the run log like other messages.
    logging.captureWarnings(True)
    level = logging.DEBUG if _state["debug"] else logging.INFO
    root.setLevel(level)
    if not _state["quiet"]:
        console_handler = RichHandler(console=console, show_path=False, markup=False)
        console_handler.setLevel(level)
        root.addHandler(console_handler)
    if run_dir is not None:
        file_handler = logging.FileHandler(run_dir / LOG_FILE, encoding="utf-8")
        file_handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        )
        file_handler.setLevel(logging.DEBUG)
        root.addHandler(file_handler)
    if not _state["debug"]:
        # Dask's scheduler runs in this process and sets its loggers from the
        # Dask config when imported, so the config is set before any import.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    if _state["quiet"]:
        # PyMC logs its sampling lines through a handler of its own and sets
        # its level when imported, so import it before lowering the level.
        import pymc  # noqa: F401

        logging.getLogger("pymc").setLevel(logging.WARNING)
    for noisy in (
        "numba",
        "pytensor",
        "matplotlib",
        "fontTools",
        "h5py",
        "distributed",
        "arviz",
        "arviz_base",
        "arviz_stats",
        "arviz_plots",
        "weasyprint",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _fail(exc: BaseException, saved: list[str] | None = None) -> None:
    if _state["debug"]:
        console.print_exception()
    message = str(exc)
    if isinstance(exc, KeyboardInterrupt):
        message = "Interrupted."
    console.print(f"[bold red]Error:[/bold red] {escape(message)}", highlight=False, soft_wrap=True)
    if saved:
        console.print(escape("Complete files kept: " + ", ".join(saved)), highlight=False)
    code = getattr(exc, "exit_code", 2) if isinstance(exc, PolygvcError) else 130
    raise typer.Exit(code)


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    """Set global flags."""
    _state["debug"] = debug
    _state["quiet"] = quiet
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _saved_files(run_dir: Path) -> list[str]:
    return sorted(
        p.name for p in run_dir.glob("*") if p.is_file() and not p.name.endswith(".partial")
    )


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="TOML run configuration.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run folder (default: run.out or runs/NAME).")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a finished run in the run folder.")
    ] = False,
) -> None:
    """Run the main job: panel, model, sampling, diagnostics and report."""
    from polygvc.config import load_config
    from polygvc.pipeline import prepare_run_dir
    from polygvc.pipeline import run as run_pipeline

    _configure_logging()
    run_dir: Path | None = None
    started = time.perf_counter()
    try:
        cfg = load_config(config)
        target = out or cfg.run.out or Path("runs") / cfg.run.name
        run_dir = prepare_run_dir(target, overwrite)
        _configure_logging(run_dir)
        logging.getLogger("polygvc").info("Run folder: %s", run_dir)
        interactive = not _state["quiet"] and sys.stderr.isatty()
        stages = ["data", "model", "inference", "diagnostics", "report", "scenarios", "brief"]
        status_line = (
            console.status("Stage data: building the panel")
            if interactive
            else contextlib.nullcontext()
        )
        with status_line as status:

            def next_stage(name: str, seconds: float) -> None:
                following = stages[stages.index(name) + 1] if name in stages[:-1] else None
                if following and status is not None:
                    status.update(f"Stage {following} (previous stage {name}: {seconds:.0f} s)")

            result = run_pipeline(
                cfg, run_dir, overwrite=True, progressbar=interactive, on_stage=next_stage
            )
    except (PolygvcError, KeyboardInterrupt) as exc:
        _fail(exc, _saved_files(run_dir) if run_dir is not None else None)
        return
    elapsed = time.perf_counter() - started
    if not _state["quiet"]:
        console.print(
            f"Finished in {elapsed:.0f} s. Convergence verdict: "
            f"{getattr(result.verdict, 'overall', result.verdict)}.",
            highlight=False,
        )
        for name, path in result.files.items():
            console.print(f"  {name:<12} {path}", highlight=False)


@data_app.command("build")
def data_build(
    config: Annotated[Path, typer.Argument(help="TOML run configuration.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("runs/data"),
) -> None:
    """Build the analysis panel from [data]; write panel.parquet and data_report.html."""
    from polygvc.config import load_config
    from polygvc.data_prep.panel import panel_join_report, write_panel
    from polygvc.pipeline import PANEL_FILE, build_panel
    from polygvc.reports.data_report import write_data_report

    _configure_logging()
    try:
        cfg = load_config(config)
        out.mkdir(parents=True, exist_ok=True)
        panel = build_panel(cfg)
        path = write_panel(panel, out / PANEL_FILE)
        joins = panel_join_report(panel) if cfg.data.source == "china_provinces" else None
        report = write_data_report(
            panel, out, title=f"polygvc data: {cfg.run.name}", join_report=joins
        )
    except (PolygvcError, KeyboardInterrupt) as exc:
        _fail(exc)
        return
    if not _state["quiet"]:
        console.print(f"Wrote {len(panel)} rows to {path}", highlight=False)
        console.print(f"Wrote {report}", highlight=False)


@data_app.command("simulate")
def data_simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "runs/semisynthetic"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulation.")] = 0,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Also write data_report.html.")
    ] = True,
) -> None:
    """Simulate a semi-synthetic panel with known effects on the real prefecture geography.

    Writes panel.parquet (same columns as the real panel plus gvc_sim), firms.parquet
    and truth.json. Fit it with data.source = "panel_file" and model.dependent = "gvc_sim".
    """
    from polygvc.data_prep.semisynthetic import simulate_semisynthetic, write_semisynthetic
    from polygvc.reports.data_report import write_data_report

    _configure_logging()
    try:
        result = simulate_semisynthetic(seed=seed)
        written = write_semisynthetic(result, out)
        if report:
            written["report"] = write_data_report(
                result.panel, out, title=f"polygvc semi-synthetic data (seed {seed})"
            )
    except (PolygvcError, KeyboardInterrupt) as exc:
        _fail(exc)
        return
    if not _state["quiet"]:
        for path in written.values():
            console.print(f"Wrote {path}", highlight=False)


@app.command()
def scenarios(
    config: Annotated[Path, typer.Argument(help="TOML run configuration with [[scenarios]].")],
    posterior: Annotated[
        Path, typer.Option("--posterior", "-p", help="Finished run folder (posterior.nc, panel).")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="CSV to write (default: RUN/scenarios.csv).")
    ] = None,
) -> None:
    """Compute the config's policy scenarios on a fitted posterior."""
    import pandas as pd

    from polygvc.config import load_config
    from polygvc.errors import ConfigError, DataError
    from polygvc.inference.scenarios import run_scenarios
    from polygvc.inference.store import POSTERIOR_FILE, load_datatree
    from polygvc.pipeline import PANEL_FILE, SCENARIOS_FILE

    _configure_logging()
    try:
        cfg = load_config(config)
        if not len(cfg.scenarios.root):
            raise ConfigError(
                f"Config {config} has no [[scenarios]] tables. Fix: add at least one; see "
                "docs/scenarios.md for the keys."
            )
        for name in (POSTERIOR_FILE, PANEL_FILE):
            if not (posterior / name).is_file():
                raise DataError(
                    f"Run folder {posterior} has no {name}. Fix: pass the folder of a finished "
                    "`polygvc run`."
                )
        dt = load_datatree(posterior / POSTERIOR_FILE)
        panel = pd.read_parquet(posterior / PANEL_FILE)
        results = run_scenarios(dt, panel, cfg.scenarios, seed=cfg.run.seed)
        path = results.to_csv(out or posterior / SCENARIOS_FILE)
    except (PolygvcError, KeyboardInterrupt) as exc:
        _fail(exc)
        return
    if not _state["quiet"]:
        console.print(f"Wrote {len(results.table)} rows to {path}", highlight=False)


@app.command()
def brief(
    run_dir: Annotated[Path, typer.Argument(help="Finished run folder with scenarios.csv.")],
    lang: Annotated[str, typer.Option("--lang", help="en, zh or both.")] = "both",
    pdf: Annotated[bool, typer.Option("--pdf/--no-pdf", help="Also write PDF briefs.")] = True,
) -> None:
    """Write the policy brief(s) of a run folder in English and/or Simplified Chinese."""
    from polygvc.reports.brief import write_briefs

    _configure_logging()
    try:
        written = write_briefs(run_dir, lang=lang, pdf=pdf)
    except (PolygvcError, KeyboardInterrupt) as exc:
        _fail(exc)
        return
    if not _state["quiet"]:
        for path in written:
            console.print(f"Wrote {path}", highlight=False)


@app.command()
def check(
    config: Annotated[Path, typer.Argument(help="TOML run configuration.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Folder for preflight.json and SBC figures."),
    ] = None,
    sims: Annotated[int, typer.Option("--sims", help="SBC simulations (0 skips SBC).")] = 20,
) -> None:
    """Run pre-flight checks: prior predictive, a small SBC and prior sensitivity."""
    from polygvc.config import load_config
    from polygvc.diagnostics.preflight import run_preflight

    _configure_logging()
    try:
        report = run_preflight(load_config(config), folder=out, sbc_simulations=sims)
    except (PolygvcError, KeyboardInterrupt) as exc:
        _fail(exc)
        return
    tables = (
        ("Prior predictive", report.prior_predictive),
        ("Simulation-based calibration", report.sbc),
        ("Prior sensitivity", report.sensitivity),
    )
    # Results go to stdout, so that `polygvc check CONFIG > result.txt` keeps
    # them. Logs and errors stay on stderr.
    for title, table in tables:
        if table is not None:
            results_console.print(f"[bold]{title}[/bold]", highlight=False)
            results_console.print(escape(table.to_string()), highlight=False)
    for note in report.notes:
        results_console.print(escape(note), highlight=False)
    if report.ok:
        results_console.print("All pre-flight checks are clean.", highlight=False)
    else:
        results_console.print(
            escape("Flagged (exit code 1): " + "; ".join(report.flags) + "."), highlight=False
        )
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def simulate(
    config: Annotated[Path, typer.Argument(help="TOML sweep configuration (centre-periphery).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path(
        "runs/simulate"
    ),
    x: Annotated[
        str | None, typer.Option("--x", help="Grid key on the horizontal axis of the figure.")
    ] = None,
    hue: Annotated[
        str | None, typer.Option("--hue", help="Second grid key (heat map) of the figure.")
    ] = None,
) -> None:
    """Run a centre-periphery parameter sweep; write sweep.nc and response figures."""
    import tomllib

    from polygvc.atomic import atomic_path
    from polygvc.errors import ConfigError
    from polygvc.models.centre_periphery import plot_response, simulate_sweep

    _configure_logging()
    try:
        try:
            with open(config, "rb") as handle:
                settings = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(
                f"Sweep config {config} was not found. Fix: pass a TOML file."
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"Sweep config {config} is not valid TOML: {exc}.") from None
        out.mkdir(parents=True, exist_ok=True)
        settings["output"] = str(out / "sweep.nc")
        dataset = simulate_sweep(settings)
        written = [out / "sweep.nc"]
        for variable in ("gvc_position_basin_mean", "entropy_norm_basin_mean"):
            if variable not in dataset:
                continue
            figure = plot_response(dataset, y=variable, x=x, hue=hue)
            target = out / f"{variable}.png"
            with atomic_path(target) as tmp:
                figure.savefig(tmp, format="png", dpi=120)
            written.append(target)
    except (PolygvcError, KeyboardInterrupt) as exc:
        _fail(exc)
        return
    if not _state["quiet"]:
        for path in written:
            console.print(f"Wrote {path}", highlight=False)


def entry() -> None:
    """Run the CLI; an unexpected exception becomes a short message unless --debug."""
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - last resort for bugs, not user errors
        if _state["debug"]:
            raise
        console.print(
            f"[bold red]Internal error:[/bold red] {escape(type(exc).__name__)}: "
            f"{escape(str(exc))}. This is a bug in polygvc, not in your input. Rerun with "
            "--debug for the traceback and report it with the config you used.",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    entry()
