# The operator image: the berth package without its runtime extra (no torch), non-root, read-only friendly.
# Build from the repository root:  docker build -f images/operator.Dockerfile -t ghcr.io/berth-dev/berth-operator:0.1.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
WORKDIR /src
# Dependencies first, against empty packages, in a layer only pyproject.toml invalidates (as in
# runtime.Dockerfile): a code change rebuilds in seconds, without downloading them again. The package's README
# is a stand-in: a docs change rebuilds nothing.
COPY pyproject.toml ./
RUN mkdir -p operator/berth_operator runtime/berth_runtime \
    && touch README.md operator/berth_operator/__init__.py runtime/berth_runtime/__init__.py \
    && python -m venv /opt/berth && /opt/berth/bin/pip install --no-cache-dir .
COPY operator ./operator
COPY runtime ./runtime
RUN /opt/berth/bin/pip install --no-cache-dir --no-deps . && rm -rf /src/*
WORKDIR /
ENV PATH=/opt/berth/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# UID 1000 is the one the chart's securityContext (runAsUser) and the PSS "restricted" profile expect.
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["berth-operator"]
