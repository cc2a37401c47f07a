"""Tests of the firm-year DVAR and export upstreamness built with DuckDB from customs rows."""

import numpy as np
import pandas as pd
import pytest

from polygvc.data_prep import customs
from polygvc.data_prep.synthetic_customs import generate_customs
from polygvc.errors import ConfigError, DataError

COLUMNS = ["firm_id", "year", "hs_code", "regime", "flow", "value", "partner", "city"]
PIM = "processing_imported_materials"

# Ten transactions, all in 2017. A is a mixed processing firm, B an ordinary
# trader, C a trade intermediary.
TEN_ROWS = [
    ("A", 2017, "85171200", PIM, "export", 1000.0, "USA", "440300"),
    ("A", 2017, "84713000", PIM, "export", 1000.0, "USA", "440300"),
    ("A", 2017, "85423100", PIM, "import", 600.0, "KOR", "440300"),
    ("A", 2017, "84571000", PIM, "import", 200.0, "JPN", "440300"),
    ("A", 2017, "39011000", "ordinary", "import", 100.0, "KOR", "440300"),
    ("A", 2017, "39011000", "ordinary", "export", 500.0, "VNM", "440300"),
    ("B", 2017, "61091000", "ordinary", "export", 400.0, "USA", "310100"),
    ("B", 2017, "52010000", "ordinary", "import", 100.0, "USA", "310100"),
    ("C", 2017, "52010000", "ordinary", "import", 300.0, "AUS", "310100"),
    ("C", 2017, "99010000", "ordinary", "export", 200.0, "HKG", "310100"),
]
UPSTREAMNESS = pd.Series({"20": 3.0, "16": 2.0, "12": 4.0, "08": 1.5})


@pytest.fixture
def ten(tmp_path):
    data = tmp_path / "ten.csv"
    pd.DataFrame(TEN_ROWS, columns=COLUMNS).to_csv(data, index=False)
    files = {"data": data}
    tables = {
        "sector": ("hs_prefix,sector\n85,20\n84,16\n8471,20\n39,12\n61,08\n"),
        "bec": "hs_prefix,bec\n8457,41\n8542,42\n39,22\n52,21\n",
        "intermediaries": "firm_id\nC\n",
        "domestic_content": "hs_prefix,domestic_share\n8542,0.25\n",
        "materials": "firm_id,year,domestic_materials,foreign_share\nA,2017,400,0.5\n",
        "sales": "firm_id,year,total_sales\nB,2017,800\n",
    }
    for name, text in tables.items():
        files[name] = tmp_path / f"{name}.csv"
        files[name].write_text(text)
    return files


def dvar_of(files, options=None, **kwargs):
    result = customs.build_firm_year_measures(files["data"], options, **kwargs)
    return result.firm_year.set_index("firm_id"), result.report


def close(a, b):
    return abs(a - b) < 1e-12


# ----------------------------------------------------------------- hand-computed DVAR


def test_dvar_processing_default(ten):
    frame, report = dvar_of(ten)
    # A: processing exports 1000 + 1000 = 2000, processing imports 600 + 200 = 800.
    assert close(frame.loc["A", "dvar"], 1 - 800 / 2000), frame.loc["A", "dvar"]
    assert frame.loc["A", "trader_type"] == "mixed"
    assert np.isnan(frame.loc["B", "dvar"])
    assert frame.loc["B", "dvar_status"] == "no_exports_in_scope"
    assert report.n_rows == 10


def test_dvar_pooled_regimes(ten):
    options = customs.KeeTangOptions(processing_only=False, bounds="keep")
    frame, _ = dvar_of(ten, options)
    # A: exports 2500, imports 800 + 100 = 900. B: 1 - 100/400. C: 1 - 300/200.
    assert close(frame.loc["A", "dvar"], 1 - 900 / 2500), frame.loc["A", "dvar"]
    assert close(frame.loc["B", "dvar"], 0.75), frame.loc["B", "dvar"]
    assert close(frame.loc["C", "dvar"], -0.5), frame.loc["C", "dvar"]


def test_dvar_pooled_with_firm_sales(ten):
    options = customs.KeeTangOptions(processing_only=False, firm_sales_path=ten["sales"])
    frame, _ = dvar_of(ten, options)
    # B sells 800 in all and exports 400 ordinary: half of its 100 imports feed exports.
    assert close(frame.loc["B", "dvar"], 1 - 50 / 400), frame.loc["B", "dvar"]


def test_capital_goods_excluded(ten):
    options = customs.KeeTangOptions(exclude_capital_goods=True, bec_concordance_path=ten["bec"])
    frame, report = dvar_of(ten, options)
    # HS 8457 is BEC 41 (capital): A's materials are 600 only.
    assert close(frame.loc["A", "dvar"], 1 - 600 / 2000), frame.loc["A", "dvar"]
    assert close(report.capital_goods_import_share, 200 / 1300), report.capital_goods_import_share


def test_capital_goods_without_concordance_raises():
    with pytest.raises(ConfigError, match="bec_concordance_path is not set"):
        customs.KeeTangOptions(exclude_capital_goods=True).check()


def test_intermediaries_dropped(ten):
    options = customs.KeeTangOptions(
        processing_only=False, intermediaries="drop", intermediary_ids_path=ten["intermediaries"]
    )
    frame, report = dvar_of(ten, options)
    assert "C" not in frame.index
    assert close(frame.loc["B", "dvar"], 0.75), frame.loc["B", "dvar"]
    assert report.intermediary_rows_dropped == 2


def test_intermediaries_adjusted(ten):
    options = customs.KeeTangOptions(
        processing_only=False, intermediaries="adjust", intermediary_ids_path=ten["intermediaries"]
    )
    frame, _ = dvar_of(ten, options)
    # HS6 520100 in 2017: intermediaries import 300 of 400, s = .75, so B's
    # imports of 100 become 100 / (1 - .75) = 400 and its DVAR 1 - 400/400 = 0.
    assert close(frame.loc["B", "dvar"], 0.0), frame.loc["B", "dvar"]
    # A's ordinary import (HS6 390110) has no intermediary share: unchanged.
    assert close(frame.loc["A", "dvar"], 1 - 900 / 2500), frame.loc["A", "dvar"]


def test_domestic_content_of_imports(ten):
    options = customs.KeeTangOptions(
        domestic_content=True, import_domestic_content_path=ten["domestic_content"]
    )
    frame, _ = dvar_of(ten, options)
    # 25% of the 600 of HS 8542 is Chinese value added: 450 + 200 = 650.
    assert close(frame.loc["A", "dvar"], 1 - 650 / 2000), frame.loc["A", "dvar"]


def test_foreign_content_of_domestic_materials(ten):
    options = customs.KeeTangOptions(
        domestic_content=True,
        import_domestic_content_path=ten["domestic_content"],
        domestic_materials_path=ten["materials"],
    )
    frame, _ = dvar_of(ten, options)
    # 650 as above plus .5 * 400 of foreign content in domestic materials = 850.
    assert close(frame.loc["A", "dvar"], 1 - 850 / 2000), frame.loc["A", "dvar"]


def test_domestic_content_without_table_raises():
    with pytest.raises(ConfigError, match="import_domestic_content_path is not set"):
        customs.KeeTangOptions(domestic_content=True).check()


@pytest.mark.parametrize(
    ("bounds", "expected", "status"),
    [("drop", np.nan, "below_0"), ("clip", 0.0, "ok"), ("keep", -0.5, "ok")],
)
def test_dvar_bounds(ten, bounds, expected, status):
    options = customs.KeeTangOptions(processing_only=False, bounds=bounds)
    frame, report = dvar_of(ten, options)
    got = frame.loc["C", "dvar"]
    assert (np.isnan(got) and np.isnan(expected)) or close(got, expected), got
    assert frame.loc["C", "dvar_status"] == status
    assert sum(report.dvar_status_counts.values()) == 3


def test_dvar_trim_counts(ten):
    options = customs.KeeTangOptions(
        processing_only=False, bounds="keep", trim_quantiles=(0.1, 0.9)
    )
    frame, report = dvar_of(ten, options)
    # DVARs -0.5, 0.64, 0.75: the 10% quantile is -0.272 and the 90% is 0.728.
    assert frame.loc["A", "dvar_status"] == "ok"
    assert report.dvar_status_counts["trimmed"] == 2, report.dvar_status_counts


# ----------------------------------------------------------------- upstreamness


def test_export_upstreamness_by_hand(ten):
    frame, report = dvar_of(ten, hs_sector_path=ten["sector"], sector_upstreamness=UPSTREAMNESS)
    # A: 8517 -> sector 20 (U 3), 8471 -> 20 by the longer prefix (U 3), 39 -> 12 (U 4):
    # (1000 * 3 + 1000 * 3 + 500 * 4) / 2500 = 3.2.
    assert close(frame.loc["A", "upstreamness"], 3.2), frame.loc["A", "upstreamness"]
    assert close(frame.loc["B", "upstreamness"], 1.5), frame.loc["B", "upstreamness"]
    # C exports only HS 99, which has no sector.
    assert np.isnan(frame.loc["C", "upstreamness"])
    assert close(frame.loc["C", "unmatched_export_share"], 1.0)
    assert close(report.unmatched_export_share, 200 / 3100), report.unmatched_export_share
    assert report.unmatched_hs_codes == ["99010000"]


def test_aggregate_to_city_weights(ten):
    options = customs.KeeTangOptions(processing_only=False, bounds="keep")
    result = customs.build_firm_year_measures(
        ten["data"], options, hs_sector_path=ten["sector"], sector_upstreamness=UPSTREAMNESS
    )
    cities = customs.aggregate_measures(result.firm_year, by="city").set_index("city")
    # City 310100 holds B (exports 400, DVAR .75) and C (exports 200, DVAR -.5):
    # (400 * .75 + 200 * -.5) / 600 = 1 - (100 + 300) / 600.
    assert close(cities.loc["310100", "dvar"], 1 - 400 / 600), cities.loc["310100", "dvar"]
    assert close(cities.loc["310100", "upstreamness"], 1.5)
    provinces = customs.aggregate_measures(result.firm_year, by="province")
    assert sorted(provinces["province_code"]) == [31, 44]


def test_aggregate_to_user_groups(ten):
    result = customs.build_firm_year_measures(ten["data"])
    groups = pd.DataFrame({"firm_id": ["A", "B"], "cluster": ["x", "x"]})
    out = customs.aggregate_measures(result.firm_year, by=groups, group_column="cluster")
    assert out["cluster"].tolist() == ["x"]
    assert close(out["dvar"].iloc[0], 0.6), out["dvar"].iloc[0]


# ----------------------------------------------------------------- bad input


def test_missing_column_names_file_and_column(ten, tmp_path):
    path = tmp_path / "no_partner.csv"
    pd.DataFrame(TEN_ROWS, columns=COLUMNS).drop(columns="partner").to_csv(path, index=False)
    expected = r"no_partner\.csv lacks required column\(s\) \['partner'\]"
    with pytest.raises(DataError, match=expected):
        customs.build_firm_year_measures(path)


def test_wrong_regime_label(tmp_path):
    rows = [list(r) for r in TEN_ROWS]
    rows[3][3] = "processing"
    path = tmp_path / "bad_regime.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    expected = r"bad_regime\.csv: column 'regime' has unknown .*'processing'"
    with pytest.raises(DataError, match=expected):
        customs.build_firm_year_measures(path)


def test_invalid_value_names_column(tmp_path):
    rows = [list(r) for r in TEN_ROWS]
    rows[0][5] = "n/a"
    path = tmp_path / "bad_value.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"bad_value\.csv: column 'value' has 1 invalid .*'n/a'"):
        customs.build_firm_year_measures(path)


def gbk_file(tmp_path):
    names = {"ordinary": "一般贸易", PIM: "进料加工贸易"}
    rows = [list(r) for r in TEN_ROWS]
    for row in rows:
        row[3] = names[row[3]]
    path = tmp_path / "gbk.csv"
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False, encoding="gbk")
    return path


def test_gbk_file_without_encoding_names_column(tmp_path):
    path = gbk_file(tmp_path)
    with pytest.raises(DataError, match=r"gbk\.csv is not utf-8 text: .*column 'regime'.*'gbk'"):
        customs.build_firm_year_measures(path)


def test_gbk_file_with_encoding_option(tmp_path):
    path = gbk_file(tmp_path)
    engine = customs.EngineSettings(encoding="gbk", threads=1)
    frame = customs.build_firm_year_measures(path, engine=engine).firm_year.set_index("firm_id")
    assert close(frame.loc["A", "dvar"], 0.6), frame.loc["A", "dvar"]


def test_unknown_file_type(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"data\.xlsx has an unknown type"):
        customs.build_firm_year_measures(path)


# ----------------------------------------------------------------- streaming vs pandas


CITIES = ["110100", "120100", "310100", "320500", "330200", "440100", "440300", "500100"]


def pandas_reference(path, sector_path, upstreamness):
    data = pd.read_parquet(path)
    for column in ("firm_id", "hs_code", "regime", "flow", "city"):
        data[column] = data[column].astype(str)
    concordance = pd.read_csv(sector_path, dtype=str)
    lookup = dict(zip(concordance["hs_prefix"], concordance["sector"], strict=True))
    codes = pd.Series(data["hs_code"].unique())
    sector = codes.str.slice(0, 4).map(lookup).fillna(codes.str.slice(0, 2).map(lookup))
    level = dict(zip(codes, sector.map(upstreamness), strict=True))
    data["u"] = data["hs_code"].map(level)
    processing = data["regime"].isin(customs.PROCESSING_REGIMES)
    export = data["flow"] == "export"
    data["xp"] = np.where(export & processing, data["value"], 0.0)
    data["mp"] = np.where(~export & processing, data["value"], 0.0)
    data["xm"] = np.where(export & data["u"].notna(), data["value"], 0.0)
    data["xu"] = np.where(export & data["u"].notna(), data["value"] * data["u"], 0.0)
    grouped = data.groupby(["firm_id", "year"])[["xp", "mp", "xm", "xu"]].sum()
    dvar = 1 - grouped["mp"] / grouped["xp"].where(grouped["xp"] > 0)
    return pd.DataFrame(
        {
            "dvar": dvar.where((dvar >= 0) & (dvar <= 1)),
            "upstreamness": grouped["xu"] / grouped["xm"].where(grouped["xm"] > 0),
        }
    )


def test_duckdb_build_matches_pandas(tmp_path):
    synthetic = generate_customs(
        tmp_path, 1_000_000, seed=11, chunk_rows=250_000, city_codes=CITIES
    )
    upstreamness = pd.Series({f"{i:02d}": 1.0 + i / 10 for i in range(1, 43)})
    engine = customs.EngineSettings(memory_limit="1GB", threads=2)
    result = customs.build_firm_year_measures(
        synthetic.data_path,
        hs_sector_path=synthetic.hs_sector_path,
        sector_upstreamness=upstreamness,
        engine=engine,
    )
    built = result.firm_year.set_index(["firm_id", "year"])[["dvar", "upstreamness"]]
    reference = pandas_reference(synthetic.data_path, synthetic.hs_sector_path, upstreamness)
    assert len(built) == len(reference), (len(built), len(reference))
    joined = built.join(reference, suffixes=("", "_pandas"), how="outer")
    for column in ("dvar", "upstreamness"):
        a, b = joined[column], joined[f"{column}_pandas"]
        mismatches = int((a.isna() != b.isna()).sum())
        assert mismatches == 0, f"{column}: {mismatches} firm-years missing in one result only"
        gap = np.abs(a - b).max()
        assert gap < 1e-9, f"{column}: max |duckdb - pandas| = {gap}"
    assert result.report.n_rows == 1_000_000


def test_benchmark_script_small(tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_customs.py"
    spec = importlib.util.spec_from_file_location("bench_customs", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    output = tmp_path / "bench.md"
    figures = bench.main(
        [
            "--rows",
            "100000",
            "--memory-limit",
            "1GB",
            "--threads",
            "1",
            "--city-codes",
            ",".join(CITIES),
            "--output",
            str(output),
        ]
    )
    assert figures["rows"] == 100_000
    assert figures["peak_rss_mib"] > 0
    assert "100,000 rows" in output.read_text()
