"""Interrupt safety: atomic writes, Ctrl-C and SIGTERM during a run, reruns and reproducibility.

The atomic-write tests kill writer processes at seeded random moments. The run
tests start ``polygvc run`` as a subprocess on a simulated panel that meets
the full panel contract, interrupt it, and check what is left in the run folder.
They compile a model (about a minute on a cold cache), so they are slow-tier.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from bad_inputs.factory import CLI, cli_env, contract_panel, write_config
from typer.testing import CliRunner

from polygvc.atomic import atomic_path

CHUNK = bytes(range(256)) * 4096  # 1 MiB
N_CHUNKS = 24
OLD_CONTENT = b"old content, complete\n"

WRITER = textwrap.dedent(
    """
    import signal, sys, time
    from polygvc.atomic import atomic_path

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    chunk = bytes(range(256)) * 4096
    with atomic_path(sys.argv[1]) as tmp:
        with open(tmp, "wb") as handle:
            print("writing", flush=True)
            for _ in range({n}):
                handle.write(chunk)
                handle.flush()
                time.sleep(0.01)
    print("done", flush=True)
    """
).format(n=N_CHUNKS)

NEW_DIGEST = hashlib.sha256(CHUNK * N_CHUNKS).hexdigest()


def _partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


def test_atomic_write_killed_at_random_moments(tmp_path):
    rng = np.random.default_rng(20261204)
    script = tmp_path / "writer.py"
    script.write_text(WRITER, encoding="utf-8")
    outcomes = []
    for trial in range(10):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        target = folder / "big.bin"
        target.write_bytes(OLD_CONTENT)
        how = signal.SIGTERM if rng.random() < 0.5 else signal.SIGKILL
        delay = float(rng.uniform(0.0, 0.4))  # the write takes about 0.3 s
        proc = subprocess.Popen(
            [sys.executable, str(script), str(target)],
            stdout=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(delay)
        proc.send_signal(how)
        proc.wait(timeout=30)
        data = target.read_bytes()
        complete = hashlib.sha256(data).hexdigest() == NEW_DIGEST
        assert data == OLD_CONTENT or complete, (
            f"trial {trial} ({how.name} after {delay:.3f} s): target has {len(data)} bytes, "
            "neither the old content nor the complete new file"
        )
        if how == signal.SIGTERM or complete:
            # A clean interrupt removes the temporary file; SIGKILL cannot, so it may stay.
            assert _partials(folder) == [], f"trial {trial} ({how.name}): leftovers"
        outcomes.append((how.name, complete))
    # The seed gives a mix of signals; at least one write must have been cut short.
    assert any(not complete for _, complete in outcomes), outcomes


def test_atomic_write_keyboard_interrupt_in_block(tmp_path):
    rng = np.random.default_rng(7)
    target = tmp_path / "table.csv"
    target.write_bytes(OLD_CONTENT)
    for trial in range(10):
        stop_after = int(rng.integers(0, 8))
        with pytest.raises(KeyboardInterrupt):
            with atomic_path(target) as tmp:
                with open(tmp, "wb") as handle:
                    for i in range(8):
                        if i == stop_after:
                            raise KeyboardInterrupt
                        handle.write(CHUNK)
        assert target.read_bytes() == OLD_CONTENT, f"trial {trial}, stopped at chunk {stop_after}"
        assert _partials(tmp_path) == [], f"trial {trial}"


# --- Runs ------------------------------------------------------------------------------------


def _run_config(folder: Path, draws: int) -> Path:
    panel = folder / "panel_in.parquet"
    if not panel.exists():
        contract_panel(np.random.default_rng(11)).to_parquet(panel, index=False)
    return write_config(
        folder / f"draws{draws}.toml",
        {
            "run": {"seed": 5},
            "data": {"source": "panel_file", "panel": str(panel)},
            "model": {"province_slopes": False},
            "inference": {
                "chains": 2,
                "cores": 1,
                "draws": draws,
                "tune": 50,
                "posterior_predictive": False,
                "log_likelihood": False,
            },
            "diagnostics": {"classical": False},
            "report": {"html": False},
        },
    )


def _start_and_interrupt(config: Path, out: Path, wait_for: str, delay: float, how: int):
    proc = subprocess.Popen(
        [*CLI, "run", str(config), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if wait_for in line:
            break
    time.sleep(delay)
    proc.send_signal(how)
    _, rest = proc.communicate(timeout=600)
    return proc.returncode, "".join(seen) + rest


def _check_interrupted_folder(out: Path, output: str, returncode: int, panel_in: Path) -> None:
    flat = " ".join(output.split())
    assert returncode != 0, f"exit status {returncode}; output:\n{output[-3000:]}"
    assert "Traceback" not in output, output[-3000:]
    assert "Complete files kept: panel.parquet" in flat, flat[-2000:]
    assert not (out / "manifest.json").exists(), "an interrupted run must not look finished"
    kept = pd.read_parquet(out / "panel.parquet")
    expected = pd.read_parquet(panel_in)
    assert len(kept) == len(expected), f"{len(kept)} rows kept, {len(expected)} written"
    np.testing.assert_array_equal(kept["vae_gdp_pct"].to_numpy(), expected["vae_gdp_pct"])
    posterior = out / "posterior.nc"
    if posterior.exists():
        with xr.open_datatree(posterior) as dt:
            assert "posterior" in dt.children
    assert [p.name for p in out.iterdir() if p.name.endswith(".partial")] == []


def _rerun_succeeds(folder: Path, out: Path) -> None:
    result = subprocess.run(
        [*CLI, "--quiet", "run", str(_run_config(folder, 20)), "--out", str(out)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "manifest.json").exists()
    with xr.open_datatree(out / "posterior.nc") as dt:
        assert dt["posterior"].sizes["draw"] == 20


@pytest.mark.slow
def test_sigterm_before_draws_keeps_panel(tmp_path):
    config = _run_config(tmp_path, 200)
    out = tmp_path / "run"
    # The signal lands while the model is compiled, just after sampling was announced.
    code, output = _start_and_interrupt(config, out, "Sampling with", 0.5, signal.SIGTERM)
    _check_interrupted_folder(out, output, code, tmp_path / "panel_in.parquet")
    assert "Sampling was interrupted" in " ".join(output.split())
    assert not (out / "posterior.nc").exists()
    _rerun_succeeds(tmp_path, out)


@pytest.mark.slow
def test_sigint_during_draws_leaves_unfinished_run(tmp_path):
    # A finished tiny run first fills the compile cache, so the big run compiles in seconds.
    _rerun_succeeds(tmp_path, tmp_path / "warm")
    config = _run_config(tmp_path, 150_000)
    out = tmp_path / "run"
    # pymc logs "NUTS[nutpie]" just before compiling. With a warm cache the draws run from
    # a few seconds later for about a minute (2 cores), so 20 s lands among the draws.
    code, output = _start_and_interrupt(config, out, "NUTS[nutpie]", 20.0, signal.SIGINT)
    _check_interrupted_folder(out, output, code, tmp_path / "panel_in.parquet")
    _rerun_succeeds(tmp_path, out)


def test_finished_run_needs_overwrite(tmp_path, monkeypatch):
    from polygvc.cli import app

    class Sampled(Exception):
        pass

    def no_sampling(*args, **kwargs):
        raise Sampled

    monkeypatch.setattr("polygvc.pipeline.fit", no_sampling)
    previous = signal.getsignal(signal.SIGTERM)
    config = _run_config(tmp_path, 20)
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text('{"finished": true}', encoding="utf-8")
    runner = CliRunner()
    try:
        refused = runner.invoke(app, ["run", str(config), "--out", str(out)])
        replaced = runner.invoke(app, ["run", str(config), "--out", str(out), "--overwrite"])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert refused.exit_code == 2, refused.output
    assert "contains a finished run" in " ".join(refused.output.split())
    assert (out / "manifest.json").read_text(encoding="utf-8") == '{"finished": true}'
    # With --overwrite the run goes on to sampling (stubbed here).
    assert isinstance(replaced.exception, Sampled), replaced.output


@pytest.mark.slow
# Ten draws do not converge; this test compares draws, not their quality.
@pytest.mark.filterwarnings("ignore::polygvc.errors.ConvergenceWarning")
def test_same_seed_same_posterior(tmp_path):
    from polygvc import pipeline

    config = _run_config(tmp_path, 30)
    first = pipeline.run(config, tmp_path / "a")
    second = pipeline.run(config, tmp_path / "b")
    names = sorted(first.datatree["posterior"].data_vars)
    assert names == sorted(second.datatree["posterior"].data_vars)
    for name in names:
        np.testing.assert_array_equal(
            first.datatree["posterior"][name].to_numpy(),
            second.datatree["posterior"][name].to_numpy(),
            err_msg=f"posterior {name} differs between two runs with seed 5",
        )
