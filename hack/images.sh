#!/usr/bin/env bash
# Berth's images (make images): the operator and runtime images built from images/*.Dockerfile with podman,
# on a Python base made here from Debian packages (no container registry is reachable), then imported into
# the real node's containerd (hack/node.sh) when it runs.
#   hack/images.sh build    build what changed (layers cached under ~/.cache/berth/containers)
#   hack/images.sh import   build, then import into the node's containerd what it does not have yet
#   hack/images.sh names    print the image names
#   hack/images.sh podman   run podman with Berth's storage and settings: hack/images.sh podman images
# The runtime image is the one users get: torch from PyPI with its CUDA libraries (several GB).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

IMAGES_DIR="$BERTH_CACHE/images"
STORAGE_DIR="$BERTH_CACHE/containers"
BASE_IMAGE=localhost/berth/python:3.11-bookworm
BERTH_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO_ROOT/pyproject.toml")
OPERATOR_IMAGE=ghcr.io/berth-dev/berth-operator:$BERTH_VERSION
RUNTIME_IMAGE=ghcr.io/berth-dev/berth-runtime:$BERTH_VERSION
PAUSE_IMAGE=$(node_pause_image)

# podman with its storage under the cache, so layers survive and are shared by every build here. Two settings
# this machine needs (neither belongs in the product): root lacks CAP_SYS_RESOURCE, so containers get the hard
# nofile limit root has rather than podman's default of 1048576; and crun 1.8 refuses the hybrid cgroup
# layout ("cgroups in hybrid mode not supported"), so runc runs the build steps.
podman_() {
  mkdir -p "$STORAGE_DIR"
  local conf="$STORAGE_DIR/containers.conf" nofile
  nofile=$(ulimit -Hn)
  cat >"$conf" <<TOML
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]
[engine]
runtime = "runc"
TOML
  CONTAINERS_CONF="$conf" podman --root "$STORAGE_DIR/storage" --runroot "$STORAGE_DIR/run" \
    --storage-driver overlay --cgroup-manager cgroupfs --events-backend file "$@"
}

have_image() { podman_ image exists "$1"; }

# A minimal Debian bookworm with Python 3.11 (the Dockerfiles' python:3.11-slim-bookworm is not reachable):
# Debian has no `python` command without python-is-python3, and venv needs python3-venv.
build_base() {
  if have_image "$BASE_IMAGE"; then
    log "base image $BASE_IMAGE: up to date"
    return
  fi
  mkdir -p "$IMAGES_DIR"
  local tar="$IMAGES_DIR/base-bookworm.partial.tar" # mmdebstrap picks its output format by the name's ending
  log "base image: mmdebstrap bookworm (about a minute)"
  mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
    bookworm "$tar" "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" "deb http://deb.debian.org/debian-security bookworm-security main"
  podman_ import --change 'CMD ["/bin/bash"]' "$tar" "$BASE_IMAGE" >/dev/null
  rm -f "$tar"
}

# The pause image every pod's sandbox holds, from the Kubernetes module's own pause.c (registry.k8s.io is not
# reachable): a static binary alone in the image.
build_pause() {
  if have_image "$PAUSE_IMAGE"; then
    log "pause image $PAUSE_IMAGE: up to date"
    return
  fi
  local dir="$IMAGES_DIR/pause" src="$GOMODCACHE/k8s.io/kubernetes@$KUBERNETES_VERSION/build/pause/linux/pause.c"
  [ -f "$src" ] || go mod download "k8s.io/kubernetes@$KUBERNETES_VERSION"
  mkdir -p "$dir"
  gcc -Os -Wall -Werror -static -DVERSION="berth-$KUBERNETES_VERSION" -o "$dir/pause" "$src"
  strip "$dir/pause"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$dir/Containerfile"
  podman_ build --quiet --pull=never -t "$PAUSE_IMAGE" "$dir" >/dev/null
}

# pip inside the build uses the host's network and pip configuration (the package index and the CA bundle
# that its TLS proxy needs), mounted read-only for the build only.
build_one() { # build_one DOCKERFILE IMAGE [BUILD_ARG...]
  local dockerfile=$1 image=$2 start=$SECONDS mounts=() arg args=()
  shift 2
  for arg in "$@"; do args+=(--build-arg "$arg"); done
  [ -f /etc/pip.conf ] && mounts+=(-v /etc/pip.conf:/etc/pip.conf:ro)
  mounts+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  log "building $image from $dockerfile"
  podman_ build --quiet --pull=never --network host --layers "${mounts[@]}" \
    --build-arg "PYTHON_IMAGE=$BASE_IMAGE" "${args[@]}" -f "$REPO_ROOT/$dockerfile" -t "$image" "$REPO_ROOT" >/dev/null
  log "built $image in $((SECONDS - start)) s, $(podman_ image inspect --format '{{.Size}}' "$image" | numfmt --to=si)B"
}

build() {
  "$HACK_DIR/host-packages.sh"
  build_base
  build_pause
  build_one images/operator.Dockerfile "$OPERATOR_IMAGE"
  build_one images/runtime.Dockerfile "$RUNTIME_IMAGE" TORCH_INDEX_URL=https://pypi.org/simple EXTRAS=runtime-gpu
  # Layers no tag points at any more (an earlier build of the source layer) are gigabytes over time.
  podman_ image prune --force >/dev/null
}

# Into the node's containerd, skipping an image it already holds as built (a stamp beside containerd's own
# store holds the podman image ID each name was imported as; both go when the store goes).
import_images() {
  local image id stamp start ref current=()
  mkdir -p "$NODE_DIR/containerd/berth-imported"
  for image in "$PAUSE_IMAGE" "$OPERATOR_IMAGE" "$RUNTIME_IMAGE"; do
    id=$(podman_ image inspect --format '{{.Id}}' "$image")
    current+=("sha256:$id")
    stamp="$NODE_DIR/containerd/berth-imported/$(tr -c 'a-zA-Z0-9.\n-' _ <<<"$image")"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$id" ] && node_ctr images ls -q "name==$image" | grep -qxF "$image"; then
      log "$image: already in the node's containerd"
      continue
    fi
    start=$SECONDS
    podman_ save --format docker-archive "$image" | node_ctr images import - >/dev/null
    echo "$id" >"$stamp"
    log "$image: imported into the node's containerd in $((SECONDS - start)) s"
  done
  # The CRI keeps each image's ID as a reference of its own; an earlier build's would hold gigabytes forever
  # (the kubelet's image garbage collection is off), so those of images no longer current go.
  for ref in $(node_ctr images ls -q | grep '^sha256:'); do
    printf '%s\n' "${current[@]}" | grep -qxF "$ref" || node_ctr images rm "$ref" >/dev/null
  done
}

case "${1:-}" in
  build) build ;;
  import) build; import_images ;;
  names) printf '%s\n' "$OPERATOR_IMAGE" "$RUNTIME_IMAGE" "$PAUSE_IMAGE" ;;
  podman) shift; podman_ "$@" ;;
  *) echo "usage: $0 build|import|names|podman ARGS..." >&2; exit 2 ;;
esac
