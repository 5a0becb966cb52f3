# The two commands of the README: `make demo` and `make test`.
.PHONY: setup demo test lint bench clean

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/run-tests.sh

lint: setup
	.venv/bin/ruff check meter_bridge meter_sim tests bench smartpm_prepay
	.venv/bin/ruff format --check meter_bridge meter_sim tests bench smartpm_prepay

clean:
	rm -rf var .pytest_cache .ruff_cache
