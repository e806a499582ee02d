# The operator image: the berth package without its runtime extra (no torch), non-root, read-only friendly.
# Build from the repository root:  docker build -f images/operator.Dockerfile -t ghcr.io/berth-dev/berth-operator:0.1.0 .
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY runtime ./runtime
RUN python -m venv /opt/berth && /opt/berth/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
COPY --from=build /opt/berth /opt/berth
ENV PATH=/opt/berth/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# UID 1000 is the one the chart's securityContext (runAsUser) and the PSS "restricted" profile expect.
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["berth-operator"]
