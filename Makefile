.PHONY: run test lint
run:  ## install everything and start the site, a worker and the demo study
	bin/run
test:  ## run the linters and the test suite (Postgres and Redis on 127.0.0.1)
	bin/test
lint:
	bin/setup dev && .venv/bin/ruff check . && .venv/bin/ruff format --check .
