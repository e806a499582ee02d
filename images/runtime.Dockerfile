# The runtime image the inference pods and staging Jobs run: berth[runtime] (PyTorch, transformers), non-root,
# no model inside (weights come from the model cache or a volume at /models; berth://demo makes its random
# weights under $HOME at start).
#   CUDA: docker build -f images/runtime.Dockerfile --build-arg TORCH_INDEX_URL=https://pypi.org/simple \
#           --build-arg EXTRAS=runtime-gpu -t ghcr.io/berth-dev/berth-runtime:0.1.0 .
#   CPU:  docker build -f images/runtime.Dockerfile -t ghcr.io/berth-dev/berth-runtime:0.1.0-cpu .
# PyPI's torch wheels carry their own CUDA libraries, so the CUDA variant needs only the node's driver
# (the NVIDIA container toolkit mounts it); the CPU variant takes torch from PyTorch's CPU-only index.
# `make images` builds the CUDA variant on a base made from Debian packages (hack/images.sh).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRAS=runtime
WORKDIR /src
# The dependencies (gigabytes, with the CUDA libraries) in a layer of their own that only pyproject.toml
# invalidates: installed against empty packages, which the source then replaces, so a code change rebuilds in
# seconds instead of downloading torch again. The package's README is a stand-in: a docs change rebuilds nothing.
COPY pyproject.toml ./
RUN mkdir -p operator/berth_operator runtime/berth_runtime \
    && touch README.md operator/berth_operator/__init__.py runtime/berth_runtime/__init__.py \
    && python -m venv /opt/berth \
    && /opt/berth/bin/pip install --no-cache-dir --extra-index-url "${TORCH_INDEX_URL}" ".[${EXTRAS}]"
COPY operator ./operator
COPY runtime ./runtime
RUN /opt/berth/bin/pip install --no-cache-dir --no-deps . && rm -rf /src/*
WORKDIR /
ENV PATH=/opt/berth/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HF_HUB_OFFLINE=1
USER 1000:1000
EXPOSE 8000
ENTRYPOINT ["berth-runtime"]
CMD ["serve", "--model", "demo", "--host", "0.0.0.0"]
