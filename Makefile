# Berth's developer entry points. The README's two commands are `make demo` and `make test`;
# both set up everything they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo demo-down generate venv controlplane controlplane-cluster helm images cluster-up cluster-down kubeconfig test test-fast test-cluster test-real lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

controlplane:
	hack/build-controlplane.sh

# Only what a local cluster needs (no helm, Flux or Argo CD): the demo's first run is minutes shorter.
controlplane-cluster:
	hack/build-controlplane.sh cluster

helm:
	hack/build-controlplane.sh helm

# The operator and runtime images (podman, on a base made from Debian packages), for the real node.
images:
	hack/images.sh build

cluster-up: images
	hack/cluster.sh up

cluster-down:
	hack/cluster.sh down

kubeconfig:
	@hack/cluster.sh kubeconfig

# All tests: the fast cluster-free tier, then the tier that runs against the local control plane on kwok nodes,
# then the real node's (Berth's images on a kubelet). The cluster is started by the test session if it is not
# running, and stopped again if the session started it.
test: venv controlplane images
	$(PY) -m pytest

test-fast: venv helm
	$(PY) -m pytest -m "not cluster"

test-cluster: venv controlplane images
	$(PY) -m pytest -m cluster

test-real: venv controlplane images
	$(PY) -m pytest -m real

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The main job: the local cluster, the operator and an example ModelDeployment, Ready.
demo: venv controlplane-cluster images
	hack/demo.sh up

demo-down:
	hack/demo.sh down

# Regenerates the files derived from code: the CRDs (from the pydantic API), the RBAC, and the
# plain-kubectl install rendered from the chart.
generate: venv helm
	$(PY) -m berth_operator.crd --write
	$(PY) -m berth_operator.rbac --write
	$(PY) hack/gen-install.py
