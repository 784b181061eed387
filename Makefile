# make test: lint, unit tests, every Molecule scenario and the release checks. make lint / unit /
# molecule / release-check run the parts.
SHELL := /bin/bash
VENV ?= .venv
IMAGE_SUITE ?= bookworm
IMAGE_MIRROR ?=
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
SCENARIO ?=
ARGS ?=
BENCH_SIZES ?= 1,5,10,20
# The release tools (antsibull-docs, ansible-builder, galaxy-importer) live in their own venv.
RELEASE_VENV ?= .cache/venv-release
# Makes this checkout resolve as selfhosted.gitpod_k3s for ansible.cfg's collections_path.
COLLECTION_LINK := collections/ansible_collections/selfhosted/gitpod_k3s

.PHONY: test venv docker images lint unit molecule preflight bench clean property-test
.PHONY: release-venv release-check sanity docs-lint build-check galaxy-import ee-check

test: venv docker images
	@rc=0; \
	tests/timed.sh lint $(MAKE) --no-print-directory lint || rc=1; \
	tests/timed.sh unit $(MAKE) --no-print-directory unit || rc=1; \
	tests/timed.sh molecule $(MAKE) --no-print-directory molecule || rc=1; \
	tests/timed.sh release-check $(MAKE) --no-print-directory release-check || rc=1; \
	exit $$rc

venv: $(VENV)/.installed $(COLLECTION_LINK)

$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

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

# Stage 0's property test alone, larger: make property-test EXAMPLES=5000 SEED=random (make unit runs
# 500 examples with the fixed seed 14).
EXAMPLES ?= 5000
SEED ?= random
property-test: venv
	GITPOD_K3S_HYPOTHESIS_EXAMPLES=$(EXAMPLES) GITPOD_K3S_HYPOTHESIS_SEED=$(SEED) pytest -q tests/unit/test_stage0_properties.py \
		--hypothesis-show-statistics

molecule: venv docker images
	tests/run-molecule.sh $(SCENARIO)

# The quick try: check this machine against Gitpod's host requirements; ARGS passes -e overrides.
preflight: venv
	ansible-playbook playbooks/preflight.yml -i inventories/localhost $(ARGS)

# Fleet benchmark on 1, 5, 10 and 20 containers: floor, package floor, preflight, converge and rerun.
bench: venv docker images
	python benchmarks/bench.py --sizes $(BENCH_SIZES)

# What a release needs, each offline: ansible-test sanity, antsibull-docs lint, the tarball
# (no development files, installs into a fresh path, ansible-doc lists every module and role),
# galaxy-importer on it, and the execution environment (introspection, ansible-builder create).
release-check: venv release-venv
	@rc=0; \
	tests/timed.sh sanity $(MAKE) --no-print-directory sanity || rc=1; \
	tests/timed.sh docs-lint $(MAKE) --no-print-directory docs-lint || rc=1; \
	tests/timed.sh build-check $(MAKE) --no-print-directory build-check || rc=1; \
	tests/timed.sh galaxy-import $(MAKE) --no-print-directory galaxy-import || rc=1; \
	tests/timed.sh ee-check $(MAKE) --no-print-directory ee-check || rc=1; \
	exit $$rc

release-venv: $(RELEASE_VENV)/.installed

# requirements.txt constrains the packages both venvs share (pip takes no extras in constraints).
$(RELEASE_VENV)/.installed: requirements-release.txt requirements.txt
	python3 -m venv $(RELEASE_VENV)
	sed 's/\[[^]]*\]//' requirements.txt > $(RELEASE_VENV)/constraints.txt
	$(RELEASE_VENV)/bin/pip install --quiet --disable-pip-version-check \
	  -c $(RELEASE_VENV)/constraints.txt -r requirements-release.txt
	touch $@

sanity: venv
	tests/sanity/run.sh

docs-lint: venv release-venv
	tests/release/check.sh docs-lint

build-check: venv release-venv
	tests/release/check.sh build

# These two use the tarball and its installation from build-check (and run it when they are missing).
galaxy-import: venv release-venv
	tests/release/check.sh galaxy-import

ee-check: venv release-venv
	tests/release/check.sh ee

clean:
	rm -rf $(VENV) .cache artifacts .pytest_cache dist
