# The runtime image the inference pods and staging Jobs run: berth[runtime] (PyTorch, transformers), non-root,
# no model inside (weights come from the model cache or a volume at /models; berth://demo makes its random
# weights under $HOME at start).
#   CPU:  docker build -f images/runtime.Dockerfile -t ghcr.io/berth-dev/berth-runtime:0.1.0-cpu .
#   CUDA: docker build -f images/runtime.Dockerfile --build-arg TORCH_INDEX_URL=https://pypi.org/simple \
#           --build-arg EXTRAS=runtime-gpu -t ghcr.io/berth-dev/berth-runtime:0.1.0 .
# PyPI's torch wheels carry their own CUDA libraries, so the CUDA variant needs only the node's driver
# (the NVIDIA container toolkit mounts it); the CPU variant takes torch from PyTorch's CPU-only index.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRAS=runtime
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY runtime ./runtime
RUN python -m venv /opt/berth \
    && /opt/berth/bin/pip install --no-cache-dir --extra-index-url "${TORCH_INDEX_URL}" ".[${EXTRAS}]"

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/berth /opt/berth
ENV PATH=/opt/berth/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HF_HUB_OFFLINE=1
USER 1000:1000
EXPOSE 8000
ENTRYPOINT ["berth-runtime"]
CMD ["serve", "--model", "demo", "--host", "0.0.0.0"]
