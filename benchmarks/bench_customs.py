"""Time the DuckDB firm-year DVAR and upstreamness build on synthetic customs rows.

Usage (from the repository root):

    POLYGVC_DATA_DIR=/work/shared/data .venv/bin/python benchmarks/bench_customs.py \
        --rows 50000000 --output docs/benchmarks_customs.md

Steps: (1) write ``--rows`` synthetic transactions as Parquet to a temporary
folder; (2) run the build in a fresh child process, so that its peak resident
memory (``ru_maxrss``) covers DuckDB and the firm-year result only; (3) append
rows per second, wall time and peak memory, with the command and the machine,
to the output Markdown file. The build uses every Kee-Tang switch that needs
only the synthetic side tables: capital goods (b), intermediaries "adjust" (c)
and the [0, 1] bounds (e), plus export upstreamness.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def machine_description() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        ram = f"{kib / 1024**2:.1f} GiB"
    except (OSError, ValueError, IndexError):
        ram = "unknown"
    return {
        "nproc": str(os.cpu_count()),
        "ram": ram,
        "cpu": cpu,
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "python": platform.python_version(),
    }


def sector_upstreamness():
    """Upstreamness of the NBS 2018 table when the data mirror is set, else a fixed ramp."""
    import pandas as pd

    if os.environ.get("POLYGVC_DATA_DIR"):
        from polygvc.data_prep.io_tables import load_nbs_table, upstreamness

        return upstreamness(load_nbs_table(2018)), "NBS 2018 table"
    ramp = pd.Series({f"{i:02d}": 1.0 + i / 10 for i in range(1, 43)})
    return ramp, "fixed ramp 1.1-5.2 (POLYGVC_DATA_DIR unset)"


def run_build(folder: Path, memory_limit: str, threads: int) -> dict:
    """Run the build in this process and return timings (called in the child)."""
    from polygvc.data_prep import customs

    upstreamness, source = sector_upstreamness()
    options = customs.KeeTangOptions(
        exclude_capital_goods=True,
        bec_concordance_path=folder / "hs_bec.csv",
        intermediaries="adjust",
        intermediary_ids_path=folder / "intermediaries.csv",
    )
    engine = customs.EngineSettings(
        memory_limit=memory_limit, threads=threads, temp_directory=str(folder / "duckdb_tmp")
    )
    start = time.perf_counter()
    result = customs.build_firm_year_measures(
        folder / "customs.parquet",
        options,
        hs_sector_path=folder / "hs_sector.csv",
        sector_upstreamness=upstreamness,
        engine=engine,
        output_path=folder / "firm_year.parquet",
    )
    wall = time.perf_counter() - start
    report = result.report
    return {
        "build_seconds": wall,
        "rows": report.n_rows,
        "firm_years": report.n_firm_years,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "dvar_status_counts": report.dvar_status_counts,
        "unmatched_export_share": report.unmatched_export_share,
        "upstreamness_source": source,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000, help="synthetic rows to build")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--memory-limit", default="3GB", help="DuckDB memory limit")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    parser.add_argument("--chunk-rows", type=int, default=2_000_000)
    parser.add_argument("--workdir", default=None, help="folder for the data (default: temp)")
    parser.add_argument("--output", default=None, help="Markdown file to append results to")
    parser.add_argument(
        "--city-codes",
        default=None,
        help="comma-separated 6-digit city codes (default: census codes from the data registry)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(run_build(Path(args.child), args.memory_limit, args.threads)))
        return {}

    from polygvc.data_prep.synthetic_customs import generate_customs

    machine = machine_description()
    folder = Path(args.workdir or tempfile.mkdtemp(prefix="bench_customs_"))
    try:
        start = time.perf_counter()
        cities = args.city_codes.split(",") if args.city_codes else None
        synthetic = generate_customs(
            folder, args.rows, seed=args.seed, chunk_rows=args.chunk_rows, city_codes=cities
        )
        generate_seconds = time.perf_counter() - start
        file_mib = synthetic.data_path.stat().st_size / 1024**2
        child = [
            sys.executable,
            __file__,
            "--child",
            str(folder),
            "--memory-limit",
            args.memory_limit,
            "--threads",
            str(args.threads),
        ]
        completed = subprocess.run(child, capture_output=True, text=True, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"build child failed:\n{completed.stderr}")
        figures = json.loads(completed.stdout.strip().splitlines()[-1])
    finally:
        if args.workdir is None:
            shutil.rmtree(folder, ignore_errors=True)
    figures.update(
        generate_seconds=generate_seconds,
        parquet_mib=file_mib,
        rows_per_second=figures["rows"] / figures["build_seconds"],
        load_after=" ".join(f"{x:.2f}" for x in os.getloadavg()),
        machine=machine,
        command=" ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])]),
    )
    print(json.dumps(figures, indent=2))
    if args.output:
        append_markdown(Path(args.output), figures, args)
    return figures


def append_markdown(path: Path, figures: dict, args: argparse.Namespace) -> None:
    machine = figures["machine"]
    lines = [
        f"\n## Customs DVAR build, {figures['rows']:,} rows "
        f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n",
        f"- Command: `POLYGVC_DATA_DIR=/work/shared/data .venv/bin/python {figures['command']}`",
        f"- Machine: {machine['nproc']} cores ({machine['cpu']}), {machine['ram']} RAM, "
        f"Python {machine['python']}; load average (1, 5, 15 min) before "
        f"{machine['load_before']}, after {figures['load_after']}",
        f"- DuckDB settings: memory_limit {args.memory_limit}, threads {args.threads}",
        f"- Synthetic Parquet: {figures['parquet_mib']:.0f} MiB, generated in "
        f"{figures['generate_seconds']:.1f} s (not part of the build time)",
        f"- Build wall time: {figures['build_seconds']:.1f} s; "
        f"{figures['rows_per_second']:,.0f} rows/s; firm-years {figures['firm_years']:,}",
        f"- Peak resident memory of the build process (ru_maxrss): "
        f"{figures['peak_rss_mib']:,.0f} MiB",
        f"- DVAR status counts: {figures['dvar_status_counts']}; unmatched export share "
        f"{figures['unmatched_export_share']:.4f}; sector upstreamness: "
        f"{figures['upstreamness_source']}",
        "",
    ]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines))


if __name__ == "__main__":
    main()
