# The two commands of the README: `make demo` and `make test`.
.PHONY: setup demo test lint bench clean pot

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/run-tests.sh

# smartpm_prepay/i18n/smartpm_prepay.pot from Odoo's export on a throw-away database
pot:
	bash scripts/i18n-export.sh

LINTED = meter_bridge meter_sim tests bench smartpm_prepay scripts

lint: setup
	.venv/bin/ruff check $(LINTED)
	.venv/bin/ruff format --check $(LINTED)
	.venv/bin/pylint --rcfile=.pylintrc-mandatory smartpm_prepay
	.venv/bin/oca-checks-odoo-module smartpm_prepay/__manifest__.py
	# not po-pretty-format: it empties each msgstr equal to its msgid (tests/test_lint.py)
	.venv/bin/oca-checks-po --disable=po-pretty-format smartpm_prepay/i18n/*.po smartpm_prepay/i18n/*.pot

clean:
	rm -rf var .pytest_cache .ruff_cache

# Benchmarks (not tests): sizes small enough for a 2-core machine; see bench/RESULTS.md.
bench: setup
	.venv/bin/python bench/bench_sim.py 200 --seconds 10
	.venv/bin/python bench/bench_bridge.py --meters 1000 --bridges 1 2 --sim-seconds 5 --concurrency 16 --prefetch 32 --rounds 2
	.venv/bin/python bench/bench_ingest.py --readings 50000 --batch 500
	.venv/bin/python bench/bench_read.py --meters 1000 --bridges 1 2
	.venv/bin/python bench/bench_read.py --meters 1000 --bridges 1 2 --odoo-workers 2
	.venv/bin/python bench/bench_vend.py --purchases 200
	.venv/bin/python bench/bench_slow.py --meters 2000 --credit-after 5
	.venv/bin/python bench/bench_faults.py --trials 3
	.venv/bin/python bench/bench_listener.py --meters 10000 --rate 1000 --seconds 10
	.venv/bin/python bench/bench_listener.py --odoo --meters 1000 --rate 200 --seconds 5
	.venv/bin/python bench/gen_scale.py --meters 10000 --jobs 100000 --readings 500000 --db smartpm_scale_small
