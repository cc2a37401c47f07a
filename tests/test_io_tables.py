"""Tests of the input-output loaders, upstreamness, VS and the KWW indices."""

import os

import numpy as np
import pytest

from polygvc.data_prep import io_tables as io
from polygvc.errors import DataError

needs_mirror = pytest.mark.skipif(
    not os.environ.get("POLYGVC_DATA_DIR"),
    reason="POLYGVC_DATA_DIR is unset, so the real input-output tables are not available",
)
OECD_TEST_YEARS = (1995, 2007, 2018)


def toy_table(exports_1: float = 0.0) -> io.IOTable:
    """Three sectors in a chain: 1 sells to 2 and 3, 2 sells to 3, 3 sells only to final use."""
    z = np.array([[0.0, 20.0, 10.0], [0.0, 0.0, 30.0], [0.0, 0.0, 0.0]])
    y = np.array([50.0, 60.0, 100.0])
    exports = np.array([exports_1, 0.0, 0.0])
    consumption = y - z.sum(axis=1) - exports
    return io.IOTable(
        source="toy",
        year=2000,
        units="unit",
        sector_codes=("1", "2", "3"),
        sector_names=("raw", "parts", "final"),
        Z=z,
        gross_output=y,
        consumption=consumption,
        capital_formation=np.zeros(3),
        inventories=np.zeros(3),
        exports=exports,
        imports=np.zeros(3),
        discrepancy=np.zeros(3),
        value_added=y - z.sum(axis=0),
    )


# ----------------------------------------------------------------- structural


@needs_mirror
@pytest.mark.parametrize("year", io.NBS_YEARS)
def test_nbs_loader_shapes(year):
    table = io.load_nbs_table(year)
    assert table.Z.shape == (42, 42)
    assert table.units == "10,000 yuan"
    assert table.has_import_split == (year != 2015)


@needs_mirror
def test_oecd_loader_drops_empty_sector():
    table = io.load_oecd_table(2018)
    assert table.n_sectors == 44
    assert "45" not in table.sector_codes


def test_validate_rejects_negative_flow():
    table = toy_table()
    bad_z = table.Z.copy()
    bad_z[0, 1] = -1.0
    bad = io.IOTable(**{**table.__dict__, "Z": bad_z})
    with pytest.raises(DataError, match=r"toy: Z must be non-negative .* row 1, column 2"):
        bad.validate()


def test_validate_rejects_broken_row_identity():
    table = toy_table()
    bad = io.IOTable(**{**table.__dict__, "consumption": table.consumption + 5.0})
    with pytest.raises(DataError, match=r"row identity fails for product 1 \(raw\)"):
        bad.validate()


def test_loader_missing_column_names_file(tmp_path):
    path = tmp_path / "china_2017_42.csv"
    path.write_text("Code,Description\n01,a\n")
    with pytest.raises(DataError, match=r"china_2017_42.csv: required column\(s\) \['01'"):
        io.load_nbs_table(2017, path=path)


# ----------------------------------------------------------------- upstreamness


def test_upstreamness_toy_closed_economy():
    # Delta = Z / Y: row 1 = [0, 20/50, 10/50] = [0, .4, .2], row 2 = [0, 0, 30/60 = .5].
    # U3 = 1; U2 = 1 + .5 * 1 = 1.5; U1 = 1 + .4 * 1.5 + .2 * 1 = 1.8.
    u = io.upstreamness(toy_table()).to_numpy()
    expected = np.array([1.8, 1.5, 1.0])
    assert np.allclose(u, expected, atol=1e-12), f"U = {u}, expected {expected}"


def test_upstreamness_toy_with_exports():
    # Exports of 10 from sector 1: denominator 50 - 10 = 40, so row 1 of Delta is
    # [0, 20/40, 10/40] = [0, .5, .25] and U1 = 1 + .5 * 1.5 + .25 * 1 = 2.0.
    u = io.upstreamness(toy_table(exports_1=10.0)).to_numpy()
    assert abs(u[0] - 2.0) < 1e-12, f"U1 = {u[0]}, expected 2.0"


@needs_mirror
@pytest.mark.parametrize("year", io.NBS_YEARS)
def test_nbs_upstreamness_identities(year):
    table = io.load_nbs_table(year)
    u = io.upstreamness(table).to_numpy()
    assert u.min() >= 1.0, f"min U = {u.min()} in {year}"
    absorption = (
        table.gross_output - table.exports + table.imports - table.inventories - table.discrepancy
    )
    delta = table.Z / absorption[:, None]
    residual = np.abs((np.eye(42) - delta) @ u - 1.0).max()
    assert residual < 1e-8, f"max |(I - Delta) U - 1| = {residual:.3g} in {year}"


@needs_mirror
@pytest.mark.parametrize("year", OECD_TEST_YEARS)
def test_oecd_upstreamness_identities(year):
    table = io.load_oecd_table(year)
    u = io.upstreamness(table).to_numpy()
    assert u.min() >= 1.0, f"min U = {u.min()} in {year}"
    absorption = table.gross_output - table.exports + table.imports - table.inventories
    delta = table.Z / absorption[:, None]
    residual = np.abs((np.eye(table.n_sectors) - delta) @ u - 1.0).max()
    assert residual < 1e-8, f"max residual {residual:.3g} in {year}"


@needs_mirror
def test_open_economy_adjustment_rejected_on_nbs():
    # Falling mining inventories push intermediate use above Y - X + M.
    with pytest.raises(DataError, match=r"of Delta sums to 1\.\d+ > 1 \('open_economy'"):
        io.upstreamness(io.load_nbs_table(2017), adjustment="open_economy")


# ----------------------------------------------------------------- import content


@needs_mirror
@pytest.mark.parametrize("year", (2017, 2018, 2020))
def test_vs_plus_dva_is_one(year):
    content = io.export_content(io.load_nbs_table(year))
    total = content.vs_share + content.dva_share
    assert abs(total - 1.0) < 1e-8, f"VS + DVA share = {total!r} in {year}"
    by_sector = content.by_sector.dropna()
    worst = np.abs(by_sector["vs_share"] + by_sector["dva_share"] - 1.0).max()
    assert worst < 1e-8, f"max sector |VS + DVA - 1| = {worst:.3g} in {year}"


@needs_mirror
def test_vs_share_in_plausible_range():
    # China's import content of exports is roughly 0.15-0.35 in 2000-2020
    # (OECD TiVA); a value outside [0.05, 0.5] means a units or split error.
    share = io.export_content(io.load_nbs_table(2018)).vs_share
    assert 0.05 < share < 0.5, f"VS share 2018 = {share}"


@needs_mirror
def test_competitive_table_needs_explicit_split():
    table = io.load_nbs_table(2015)
    with pytest.raises(DataError, match="pass import_split='proportional'"):
        io.export_content(table)
    content = io.export_content(table, import_split="proportional")
    assert abs(content.vs_share + content.dva_share - 1.0) < 1e-8


# ----------------------------------------------------------------- KWW indices


def two_region_table():
    """Regions R and S with sectors 1 and 2, ordered R1, R2, S1, S2; every output is 100.

    Only two input flows: S1 buys 50 of R1 (A[R1, S1] = .5) and R2 buys 20 of
    S2 (A[S2, R2] = .2). A @ A = 0, so B = (I - A)^-1 = I + A.
    """
    z = np.zeros((4, 4))
    z[0, 2] = 50.0
    z[3, 1] = 20.0
    final = np.array(
        [
            [30.0, 20.0],  # R1: 100 - 50 intermediate = 50 final
            [60.0, 40.0],  # R2
            [30.0, 70.0],  # S1
            [0.0, 80.0],  # S2: 100 - 20 intermediate = 80 final
        ]
    )
    return z, final, np.full(4, 100.0)


def test_kww_two_region_by_hand():
    z, final, x = two_region_table()
    result = io.kww_gvc_indices(z, final, x, n_regions=2, region_names=["R", "S"])
    # v = 1 - column sums of A = [1, .8, .5, 1].
    # E_R = [50 + 20, 0 + 40] = [70, 40], total 110; E_S = [0 + 30, 20 + 0] = [30, 20], total 50.
    # DV_R = v_R E_R = 70 + .8 * 40 = 102.  FV_R = v_S A_SR E_R = [0, .2] . [70, 40] = 8.
    # IV_R = v_R A_RS E_S = [.5, 0] . [30, 20] = 15.
    # DV_S = .5 * 30 + 20 = 35.  FV_S = 15.  IV_S = 8.
    expected = {
        ("R", "exports"): 110.0,
        ("R", "dv"): 102.0,
        ("R", "fv"): 8.0,
        ("R", "iv"): 15.0,
        ("R", "participation"): 23.0 / 110.0,
        ("R", "position"): np.log(125.0 / 110.0) - np.log(118.0 / 110.0),
        ("S", "exports"): 50.0,
        ("S", "dv"): 35.0,
        ("S", "fv"): 15.0,
        ("S", "iv"): 8.0,
        ("S", "participation"): 23.0 / 50.0,
        ("S", "position"): np.log(58.0 / 50.0) - np.log(65.0 / 50.0),
    }
    for (region, column), value in expected.items():
        got = result.loc[region, column]
        assert abs(got - value) < 1e-12, f"{region} {column}: {got} != {value}"


def test_kww_third_country_iv_zero_with_two_regions():
    z, final, x = two_region_table()
    result = io.kww_gvc_indices(z, final, x, n_regions=2, iv_definition="third_country")
    assert np.all(result["iv"] == 0.0), result["iv"].tolist()


def test_kww_dv_plus_fv_equals_exports_three_regions():
    rng = np.random.default_rng(7)
    z = rng.uniform(0, 10, size=(6, 6))
    final = rng.uniform(5, 20, size=(6, 3))
    x = z.sum(axis=1) + final.sum(axis=1)
    result = io.kww_gvc_indices(z, final, x, n_regions=3, iv_definition="third_country")
    gap = np.abs(result["dv"] + result["fv"] - result["exports"]).max()
    assert gap < 1e-9, f"max |DV + FV - E| = {gap}"
    assert np.all(result["iv"] > 0), result["iv"].tolist()


def test_kww_rejects_bad_shapes():
    with pytest.raises(DataError, match="not a multiple of n_regions=3"):
        io.kww_gvc_indices(np.zeros((4, 4)), np.zeros((4, 3)), np.ones(4), n_regions=3)
