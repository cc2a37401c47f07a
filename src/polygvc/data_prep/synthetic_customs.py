"""Synthetic China Customs transaction files with the real schema, for tests and benchmarks.

The generator writes any number of rows in chunks (pyarrow writers), so memory
stays bounded by one chunk. Rows are drawn from a seeded population of firms:

* firm types: pure processing exporters (25%), ordinary traders (45%), mixed
  processing/ordinary firms (20%) and trade intermediaries (10%);
* each firm has a home city (real 6-digit prefecture codes, drawn with
  Zipf-like weights), a few core HS codes, an activity weight (log-normal) and,
  for processing firms, a target DVAR in [0.1, 0.9] that sets the ratio of its
  import to export rows' values;
* values are log-normal in USD; partners are drawn from 20 ISO3 codes.

Nothing here is calibrated to real customs data. The concordances written with
the data (HS to the 42 NBS sectors, HS to BEC) are rough, hand-made chapter
and heading maps for tests only, not official tables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from polygvc.atomic import atomic_path
from polygvc.errors import ConfigError

logger = logging.getLogger(__name__)

PARTNERS = (
    "USA",
    "HKG",
    "JPN",
    "KOR",
    "DEU",
    "VNM",
    "NLD",
    "GBR",
    "IND",
    "SGP",
    "TWN",
    "MYS",
    "AUS",
    "RUS",
    "THA",
    "BRA",
    "FRA",
    "ITA",
    "CAN",
    "MEX",
)
PARTNER_WEIGHTS = np.array([18, 12, 8, 7, 5, 4, 3, 3, 3, 3, 5, 3, 3, 3, 2, 2, 2, 2, 2, 2], float)
FIRM_TYPES = ("processing", "ordinary", "mixed", "intermediary")
FIRM_TYPE_SHARES = (0.25, 0.45, 0.20, 0.10)

# HS chapter -> NBS 42-sector code (2017/2018/2020 classification), with
# heading-level exceptions; a rough map for tests. Chapters 77 and 99 are left
# out on purpose so that unmatched export value is exercised.
_CHAPTER_SECTOR: dict[str, str] = {
    **{f"{c:02d}": "01" for c in (1, 3, 5, 6, 7, 8, 9, 10, 12, 13, 14)},
    **{f"{c:02d}": "06" for c in (2, 4, 11, *range(15, 25))},
    "25": "05",
    "26": "04",
    "27": "11",
    **{f"{c:02d}": "12" for c in range(28, 41)},
    **{f"{c:02d}": "08" for c in (41, 42, 43, *range(61, 68))},
    **{f"{c:02d}": "09" for c in (44, 45, 46, 94)},
    **{f"{c:02d}": "10" for c in (47, 48, 49, 92, 95, 96)},
    **{f"{c:02d}": "07" for c in range(50, 61)},
    **{f"{c:02d}": "13" for c in (68, 69, 70)},
    "71": "22",
    "97": "22",
    "93": "17",
    **{f"{c:02d}": "14" for c in (72, 74, 75, 76, 78, 79, 80, 81)},
    **{f"{c:02d}": "15" for c in (73, 82, 83)},
    "84": "16",
    "85": "19",
    **{f"{c:02d}": "18" for c in (86, 87, 88, 89)},
    "90": "21",
    "91": "21",
}
_HEADING_SECTOR: dict[str, str] = {
    "2701": "02",
    "2709": "03",
    "2711": "03",
    "8471": "20",
    "8473": "20",
    "8517": "20",
    "8525": "20",
    "8528": "20",
    "8541": "20",
    "8542": "20",
    "8424": "17",
    "8429": "17",
    "8436": "17",
    "9405": "19",
}
# HS chapter -> BEC code, rough, for tests: machinery is capital (41) except
# parts (42); road vehicles for industry are 521.
_CHAPTER_BEC: dict[str, str] = {
    **{f"{c:02d}": "21" for c in range(1, 25)},
    **{f"{c:02d}": "22" for c in range(25, 84)},
    "27": "322",
    "84": "41",
    "85": "42",
    "86": "521",
    "87": "521",
    "88": "41",
    "89": "41",
    "90": "41",
    "91": "62",
    **{f"{c:02d}": "62" for c in range(92, 98)},
}
_HEADING_BEC: dict[str, str] = {"8473": "42", "8517": "41", "8703": "51", "8708": "53"}

# Chapter weights: machinery and electronics dominate China's trade.
_CHAPTER_WEIGHT = {
    "84": 12.0,
    "85": 16.0,
    "39": 3.0,
    "61": 3.0,
    "62": 3.0,
    "87": 3.0,
    "90": 3.0,
    "94": 2.0,
    "72": 2.0,
    "73": 2.0,
    "27": 2.0,
    "99": 0.5,
    "77": 0.2,
}
_UNMATCHED_NOTE = "chapters 77 and 99 have no sector on purpose"


@dataclass
class SyntheticCustoms:
    """Paths and facts of one generated data set.

    Attributes
    ----------
    data_path : Path
    hs_sector_path, bec_path, intermediaries_path : Path
        Concordances and the list of intermediary firm ids written alongside.
    n_rows, n_firms : int
    seed : int
    notes : list of str
    """

    data_path: Path
    hs_sector_path: Path
    bec_path: Path
    intermediaries_path: Path
    n_rows: int
    n_firms: int
    seed: int
    notes: list[str] = field(default_factory=list)


def census_city_codes() -> list[str]:
    """Read the real 6-digit prefecture codes from the census file in the data registry.

    Returns
    -------
    list of str

    Raises
    ------
    DataNotFoundError
        The census file is not in the mirror and cannot be downloaded.
    """
    from polygvc.data_prep.registry import fetch

    path = fetch("census_leiii", "census_city_2010-2020_v1.csv")
    codes = pd.read_csv(path, usecols=["city_code"], dtype=str, encoding="utf-8-sig")["city_code"]
    return sorted(codes.str.strip().unique().tolist())


def _hs_pool(rng: np.random.Generator, n_codes: int) -> tuple[np.ndarray, np.ndarray]:
    chapters = [f"{c:02d}" for c in range(1, 98)] + ["99"]
    weights = np.array([_CHAPTER_WEIGHT.get(c, 1.0) for c in chapters])
    drawn = rng.choice(len(chapters), size=n_codes, p=weights / weights.sum())
    headings = list(_HEADING_SECTOR) + list(_HEADING_BEC)
    codes = []
    for i, chapter_index in enumerate(drawn):
        if i < len(headings):
            head = headings[i]
        else:
            head = f"{chapters[chapter_index]}{rng.integers(1, 100):02d}"
        codes.append(f"{head}{rng.integers(0, 10000):04d}")
    codes_array = np.array(sorted(set(codes)))
    code_weights = rng.lognormal(0.0, 1.0, size=len(codes_array))
    return codes_array, code_weights / code_weights.sum()


def write_concordances(folder: str | Path) -> tuple[Path, Path]:
    """Write the test HS-to-NBS-sector and HS-to-BEC concordances as CSV.

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    tuple of Path
        ``hs_sector.csv`` (``hs_prefix, sector``) and ``hs_bec.csv``
        (``hs_prefix, bec``).

    Notes
    -----
    Rough hand-made maps for tests (see the module docstring), not official
    concordances.
    """
    folder = Path(folder)
    sector = pd.DataFrame(
        [*_CHAPTER_SECTOR.items(), *_HEADING_SECTOR.items()], columns=["hs_prefix", "sector"]
    )
    bec = pd.DataFrame([*_CHAPTER_BEC.items(), *_HEADING_BEC.items()], columns=["hs_prefix", "bec"])
    sector_path, bec_path = folder / "hs_sector.csv", folder / "hs_bec.csv"
    with atomic_path(sector_path) as tmp:
        sector.to_csv(tmp, index=False)
    with atomic_path(bec_path) as tmp:
        bec.to_csv(tmp, index=False)
    return sector_path, bec_path


def generate_customs(
    folder: str | Path,
    n_rows: int,
    *,
    seed: int = 0,
    file_format: Literal["parquet", "csv"] = "parquet",
    chunk_rows: int = 1_000_000,
    n_firms: int | None = None,
    years: tuple[int, ...] = (2015, 2016, 2017, 2018),
    city_codes: list[str] | None = None,
) -> SyntheticCustoms:
    """Write a synthetic customs transaction file and its concordances.

    Parameters
    ----------
    folder : str or Path
        Output folder; gets ``customs.parquet`` (or ``customs.csv``),
        ``hs_sector.csv``, ``hs_bec.csv`` and ``intermediaries.csv``.
    n_rows : int
        Transaction rows to write.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed, row count, chunk
        size and cities give the same file.
    file_format : {"parquet", "csv"}
    chunk_rows : int
        Rows generated and written per chunk (memory bound).
    n_firms : int, optional
        Default ``max(50, n_rows // 200)``.
    years : tuple of int
    city_codes : list of str, optional
        6-digit city codes; default: the census prefecture codes from the data
        registry (:func:`census_city_codes`).

    Returns
    -------
    SyntheticCustoms

    Raises
    ------
    ConfigError
        Non-positive sizes or an unknown format.
    """
    if n_rows <= 0 or chunk_rows <= 0:
        raise ConfigError(f"n_rows ({n_rows}) and chunk_rows ({chunk_rows}) must be positive.")
    if file_format not in ("parquet", "csv"):
        raise ConfigError(f"file_format is {file_format!r}; use 'parquet' or 'csv'.")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cities = np.array(city_codes if city_codes is not None else census_city_codes())
    n_firms = n_firms or max(50, n_rows // 200)

    hs_codes, hs_weights = _hs_pool(rng, 6000)
    firm_type = rng.choice(len(FIRM_TYPES), size=n_firms, p=FIRM_TYPE_SHARES)
    city_weights = 1.0 / np.arange(1, len(cities) + 1) ** 0.8
    city_order = rng.permutation(len(cities))
    firm_city = city_order[
        rng.choice(len(cities), size=n_firms, p=city_weights / city_weights.sum())
    ]
    firm_activity = rng.lognormal(0.0, 1.0, size=n_firms)
    firm_activity /= firm_activity.sum()
    firm_dvar = rng.uniform(0.1, 0.9, size=n_firms)
    firm_core_hs = rng.choice(len(hs_codes), size=(n_firms, 3), p=hs_weights)
    firm_assembly = rng.random(n_firms) < 0.3
    firm_ids = np.array([f"F{i:08d}" for i in range(n_firms)])

    regimes = np.array(
        [
            "ordinary",
            "processing_imported_materials",
            "processing_assembly",
            "bonded_warehouse",
            "other",
        ]
    )
    schema = pa.schema(
        [
            ("firm_id", pa.dictionary(pa.int32(), pa.string())),
            ("year", pa.int16()),
            ("hs_code", pa.dictionary(pa.int32(), pa.string())),
            ("regime", pa.dictionary(pa.int8(), pa.string())),
            ("flow", pa.dictionary(pa.int8(), pa.string())),
            ("value", pa.float64()),
            ("partner", pa.dictionary(pa.int8(), pa.string())),
            ("city", pa.dictionary(pa.int32(), pa.string())),
        ]
    )
    dictionaries = {
        "firm_id": pa.array(firm_ids),
        "hs_code": pa.array(hs_codes),
        "regime": pa.array(regimes),
        "flow": pa.array(["export", "import"]),
        "partner": pa.array(PARTNERS),
        "city": pa.array(cities),
    }
    data_path = folder / f"customs.{file_format}"
    with atomic_path(data_path) as tmp:
        writer = _open_writer(tmp, schema, file_format)
        try:
            written = 0
            while written < n_rows:
                size = min(chunk_rows, n_rows - written)
                columns = _draw_chunk(
                    rng,
                    size,
                    firm_type,
                    firm_activity,
                    firm_dvar,
                    firm_core_hs,
                    firm_assembly,
                    firm_city,
                    len(hs_codes),
                    hs_weights,
                    years,
                )
                arrays = [
                    _column(name, columns[name], dictionaries, schema, file_format)
                    for name in schema.names
                ]
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, names=schema.names))
                written += size
        finally:
            writer.close()
    sector_path, bec_path = write_concordances(folder)
    intermediaries_path = folder / "intermediaries.csv"
    intermediary_ids = firm_ids[firm_type == FIRM_TYPES.index("intermediary")]
    with atomic_path(intermediaries_path) as tmp:
        pd.DataFrame({"firm_id": intermediary_ids}).to_csv(tmp, index=False)
    logger.info("wrote %d synthetic customs rows to %s", n_rows, data_path)
    return SyntheticCustoms(
        data_path=data_path,
        hs_sector_path=sector_path,
        bec_path=bec_path,
        intermediaries_path=intermediaries_path,
        n_rows=n_rows,
        n_firms=n_firms,
        seed=seed,
        notes=[_UNMATCHED_NOTE],
    )


class _CsvBatchWriter:
    """pyarrow CSV writer that decodes dictionary columns to plain strings."""

    def __init__(self, path: Path, schema: pa.Schema):
        from pyarrow import csv

        plain = pa.schema(
            [
                pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                for f in schema
            ]
        )
        self._writer = csv.CSVWriter(str(path), plain)

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self._writer.write_batch(batch)

    def close(self) -> None:
        self._writer.close()


def _open_writer(path: Path, schema: pa.Schema, file_format: str):
    if file_format == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetWriter(str(path), schema, compression="zstd")
    return _CsvBatchWriter(path, schema)


def _column(name, values, dictionaries, schema, file_format):
    field_type = schema.field(name).type
    if pa.types.is_dictionary(field_type):
        indices = pa.array(values.astype(np.dtype(field_type.index_type.to_pandas_dtype())))
        array = pa.DictionaryArray.from_arrays(indices, dictionaries[name])
        return array.dictionary_decode() if file_format == "csv" else array
    return pa.array(values, type=field_type)


def _draw_chunk(
    rng,
    size,
    firm_type,
    firm_activity,
    firm_dvar,
    firm_core_hs,
    firm_assembly,
    firm_city,
    n_hs,
    hs_weights,
    years,
):
    firm = rng.choice(len(firm_type), size=size, p=firm_activity)
    kind = firm_type[firm]
    processing, ordinary, mixed = 0, 1, 2

    # Rows of processing firms are 60% exports; import values are scaled so
    # that a firm's import/export value ratio is about 1 - its target DVAR.
    export_share = np.where(kind == processing, 0.6, 0.55)
    is_export = rng.random(size) < export_share
    regime = np.zeros(size, dtype=np.int8)
    processing_regime = np.where(firm_assembly[firm], 2, 1).astype(np.int8)
    regime[kind == processing] = processing_regime[kind == processing]
    mixed_processing = (kind == mixed) & (rng.random(size) < 0.5)
    regime[mixed_processing] = processing_regime[mixed_processing]
    odd = (kind == ordinary) & (rng.random(size) < 0.05)
    regime[odd] = rng.choice(np.array([3, 4], dtype=np.int8), size=int(odd.sum()))

    own_code = rng.random(size) < 0.8
    hs = np.where(
        own_code,
        firm_core_hs[firm, rng.integers(0, 3, size=size)],
        rng.choice(n_hs, size=size, p=hs_weights),
    )
    value = rng.lognormal(9.0, 1.0, size=size)
    in_processing = (regime == 1) | (regime == 2)
    import_scale = (1.0 - firm_dvar[firm]) * 0.6 / 0.4
    value = np.where(in_processing & ~is_export, value * import_scale, value)
    value = np.round(value, 2)

    return {
        "firm_id": firm,
        "year": rng.choice(np.asarray(years, dtype=np.int16), size=size),
        "hs_code": hs,
        "regime": regime,
        "flow": np.where(is_export, 0, 1).astype(np.int8),
        "value": value,
        "partner": rng.choice(len(PARTNERS), size=size, p=PARTNER_WEIGHTS / PARTNER_WEIGHTS.sum()),
        "city": np.where(rng.random(size) < 0.9, firm_city[firm], rng.choice(firm_city, size)),
    }
