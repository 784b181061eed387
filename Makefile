# make test: lint, unit tests and every Molecule scenario. make lint / unit / molecule run the parts.
SHELL := /bin/bash
VENV ?= .venv
IMAGE_SUITE ?= bookworm
IMAGE_MIRROR ?=
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
SCENARIO ?=
ARGS ?=
BENCH_SIZES ?= 1,5,10

.PHONY: test venv docker images lint unit molecule preflight bench clean

test: venv docker images
	@rc=0; \
	tests/timed.sh lint $(MAKE) --no-print-directory lint || rc=1; \
	tests/timed.sh unit $(MAKE) --no-print-directory unit || rc=1; \
	tests/timed.sh molecule $(MAKE) --no-print-directory molecule || rc=1; \
	exit $$rc

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

docker:
	@tests/ensure-docker.sh

images: docker
	@tests/images/build.sh $(IMAGE_SUITE) $(IMAGE_MIRROR)

lint: venv
	yamllint --strict .
	ansible-lint --profile production

unit: venv docker images
	pytest

molecule: venv docker images
	tests/run-molecule.sh $(SCENARIO)

# The quick try: check this machine against Gitpod's host requirements; ARGS passes -e overrides.
preflight: venv
	ansible-playbook playbooks/preflight.yml -i inventories/localhost $(ARGS)

# Fleet benchmark: floor, preflight, converge and rerun on 1, 5 and 10 containers.
bench: venv docker images
	python benchmarks/bench.py --sizes $(BENCH_SIZES)

clean:
	rm -rf $(VENV) .cache artifacts .pytest_cache
