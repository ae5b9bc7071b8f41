# Two commands do all set-up on a fresh machine with python3 and make:
#   make run    installs into .venv and runs the main job on the bundled seeds/
#   make test   installs the test extras and runs the tests (all of them: CI calls it)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
OUT    ?= output
BENCH_SCALE ?= default

.PHONY: run test test-fast install install-test bench bench-fetch bench-topics bench-clusters bench-report bench-compact bench-archive bench-large bench-retag bench-streaming bench-huge same-rows clean

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed setup.py
	$(PIP) install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: $(VENV)/.installed
	$(VENV)/bin/newswatch run --feeds seeds/feeds.opml --topics seeds/topics.yaml --output $(OUT) --runner DirectRunner

test: $(VENV)/.installed-test
	$(PY) -m pytest -q --strict-markers tests

# The unit tests alone (no servers, emulators, subprocesses, benchmark
# harness or slow tests): under a minute.
test-fast: $(VENV)/.installed-test
	$(PY) -m pytest -q --strict-markers -m "not integration and not slow and not bench" tests

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info

# Everything in benchmarks/, one table: the pipeline against a plain-Python
# baseline and the feedparser floor on a generated corpus (10k and 100k
# entries; BENCH_SCALE=large adds 1M), fetch throughput, the seed run, one
# 200,000-item feed (120 MB) and the component benchmarks below.
# Then docs/performance.md is regenerated from benchmarks/results/latest.json
# (committed beside it), also when a contestant was refused; the exit status
# stays the benchmark's.
bench: $(VENV)/.installed-test
	$(PY) -m benchmarks.run --scale $(BENCH_SCALE); status=$$?; \
	$(PY) -m benchmarks.docs_table && exit $$status

# The generated sections of docs/performance.md, from the committed result.
.PHONY: docs
docs: $(VENV)/.installed-test
	$(PY) -m benchmarks.docs_table

# The component benchmarks on their own, with their full output.
bench-fetch: $(VENV)/.installed-test
	$(PY) -m benchmarks.fetch_throughput
	$(PY) -m benchmarks.parse_guards
	$(PY) -m benchmarks.seen_lookup

# Matching speed, then rule quality on Korean, Japanese and Chinese news
# (old and new rules; skipped with a message when the evaluation texts of
# benchmarks/topics_eval have not been rebuilt on this machine).
bench-topics: $(VENV)/.installed-test
	$(PY) -m benchmarks.topics_bench
	$(PY) -m benchmarks.topics_quality --save benchmarks/results/topics_quality.json
	$(PY) -m benchmarks.docs_table

# `newswatch report` on 100,000 generated stories and a month of fetches
# (target: read to page in under 30 s); writes benchmarks/results/report_build.json,
# shown in docs/performance.md.
bench-report: $(VENV)/.installed-test
	$(PY) -m benchmarks.report_build --save benchmarks/results/report_build.json

# Reading 30 days of a 15-minute schedule (generated) with pandas, the reader
# and DuckDB, before and after `newswatch compact`; writes
# benchmarks/results/compact_read.json (shown in docs/performance.md).
bench-compact: $(VENV)/.installed-test
	$(PY) -m benchmarks.compact_read --save benchmarks/results/compact_read.json
	$(PY) -m benchmarks.docs_table

# newswatch retag: entries re-tagged per second on a generated archive,
# in-process and with 2 workers; writes benchmarks/results/retag_throughput.json
# (shown in docs/performance.md). RETAG_RUNS x 10,000 entries (100: 1,000,000),
# RETAG_BASE_RUNS of them parsed from the corpus, the others derived.
RETAG_RUNS ?= 10
RETAG_BASE_RUNS ?= 3
bench-retag: $(VENV)/.installed-test
	$(PY) -m benchmarks.retag_throughput --runs $(RETAG_RUNS) --base-runs $(RETAG_BASE_RUNS) --save benchmarks/results/retag_throughput.json
	$(PY) -m benchmarks.docs_table

# The 1M scale, apart from make bench (about an hour): the floor, the plain
# loops and the pipeline (in-process and with two workers) once each on
# 1,000,000 generated entries, and the seen index of 10,000,000 remembered
# stories (its targets); writes
# benchmarks/results/large/latest.json (shown in docs/performance.md).
bench-large: $(VENV)/.installed-test
	$(PY) -m benchmarks.run --scale large --sizes 1000000 --contestants floor,baseline,baseline-fast,pipeline,pipeline-mp --target-repeat 1 --skip-fetch --skip-seed --huge-items 0 --components seen --results benchmarks/results/large; status=$$?; \
	$(PY) -m benchmarks.docs_table && exit $$status

# What the entry archive costs: disk per 100,000 entries (text kept, and
# identities only) and the pipeline's CPU with the archive on vs off on one
# generated corpus of 100,000 entries (target <= 1.15x); writes
# benchmarks/results/archive_cost.json (shown in docs/performance.md).
bench-archive: $(VENV)/.installed-test
	$(PY) -m benchmarks.archive_cost --entries 100000 --save benchmarks/results/archive_cost.json; status=$$?; \
	$(PY) -m benchmarks.docs_table && exit $$status

# Syndication clusters scored on a labelled set built from ../shared/corpora
# (real feeds and edited reprints of them) against exact dedup and plain
# MinHash-LSH; writes benchmarks/results/clusters.json (shown in
# docs/performance.md). The index at 1M stories: python -m benchmarks.cluster_bench
bench-clusters: $(VENV)/.installed-test
	$(PY) -m benchmarks.cluster_eval; status=$$?; \
	$(PY) -m benchmarks.docs_table && exit $$status

# One 200,000-item feed (120 MB, generated in a temporary folder) through
# newswatch run: wall time and peak RSS. HUGE_ITEMS=20000 for a quick look.
HUGE_ITEMS ?= 200000
bench-huge: $(VENV)/.installed-test
	$(PY) -m benchmarks.huge_bench --items $(HUGE_ITEMS)

# Streaming polling: 2,000 feeds on 50 loopback hosts, 3 polls 10 s apart,
# multi_processing; polling lag, fetches/s, files per window. Compare with
# another checkout: make bench-streaming BENCH_ARGS="--compare-with /tmp/base"
bench-streaming: $(VENV)/.installed-test
	$(PY) -m benchmarks.streaming_bench $(BENCH_ARGS)

# A refactor's check: the rows of the seeds and of a bench corpus, written by
# revision BASE and by the working tree, compared (exit 1 if any differ).
BASE ?= HEAD
same-rows: $(VENV)/.installed-test
	$(PY) -m benchmarks.same_rows --base $(BASE)
