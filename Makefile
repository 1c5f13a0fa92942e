# Two commands do all the set-up on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# Offline copies of the data sets (files ir_datasets would download); empty where the internet is reachable.
TASKVEC_IR_MIRROR ?= $(wildcard ../shared/datasets)
export TASKVEC_IR_MIRROR
# ranx is numba-compiled: keep its cache between runs so the ~50 s compile is paid once per machine.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
# ranx imports matplotlib, which scans the system's fonts (~45 s here) unless its cache persists.
export MPLCONFIGDIR ?= $(CURDIR)/.cache/matplotlib

.PHONY: install demo sweep-demo test bench clean cluster-up cluster-down
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[demo,test]'
	$(BIN)/pip install --quiet --no-deps hydra-optuna-sweeper==1.3.0
	touch $@

demo: install
	$(BIN)/taskvec-ir $(ARGS)

# A small real sweep offline: α tuned on 40 SciFact dev queries (6 trials), then the final test evaluation.
sweep-demo: install
	$(BIN)/taskvec-ir -m sweep=alpha dataset.splits.dev.fraction=0.05 retriever.top_k=10 hydra.sweeper.n_trials=6 $(ARGS)

test: install
	$(BIN)/python -m pytest $(ARGS)

# The performance benchmarks (bench/RESULTS.md records their figures); each prints its own table.
bench: install
	set -e; for b in bm25 scorer_throughput trial_cost merge_memory startup; do \
	  echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py; done

# Real servers for the cluster tests (root; Debian's slurm-wlm, munge and postgresql): a one-node SLURM and a
# loopback PostgreSQL. cluster-up prints two lines to eval, OPTUNA_STORAGE=... and SLURM_PARTITION=...:
#   eval "$(make -s --no-print-directory cluster-up)"
# '@' keeps make's echo of the command off stdout. make turns the script's 77 (not root) into 2: callers
# that must tell the two apart run scripts/cluster-up.sh themselves.
cluster-up:
	@scripts/cluster-up.sh

cluster-down:
	@scripts/cluster-down.sh

clean:
	rm -rf $(VENV) .cache
