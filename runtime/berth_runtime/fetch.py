"""`berth-runtime fetch`: downloads one pinned model revision, safetensors only.

Runs in the inference pod's init container (or, through `stage`, in the staging Job), so the runtime
itself never touches the network. A remote is an hf:// repository (berth_runtime.hub) or an s3:// prefix
(berth_runtime.s3): its revision is resolved to something immutable first, only weights in safetensors
form plus config and tokenizer files are fetched (pickled weights and code never are), files land
atomically, and the resolved revision is recorded beside them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Protocol

from berth_runtime.hub import HubRemote
from berth_runtime.s3 import S3Remote
from berth_runtime.transfer import FetchError, Progress, human, say, wanted

SOURCE_RECORD = ".berth-source.json"


class Remote(Protocol):
    source: str
    revision: str | None  # as asked for
    label: str  # how messages name it

    def resolve(self) -> tuple[str, list[str]]:
        """The immutable revision (commit SHA, listing digest) and the file names at it."""
        ...

    def download(self, filename: str, target: Path, progress: Progress | None = None) -> int:
        """Downloads one file at the resolved revision; returns its size."""
        ...


def open_remote(source: str, revision: str | None) -> Remote:
    if source.startswith("hf://"):
        return HubRemote(source, revision)
    if source.startswith("s3://"):
        return S3Remote(source, revision)
    raise FetchError(f"source {source!r}: only hf://org/name and s3://bucket/prefix sources are fetched")


def recorded_revision(dest: Path) -> str | None:
    try:
        return json.loads((dest / SOURCE_RECORD).read_text()).get("sha")
    except (OSError, ValueError):
        return None


def fetch(source: str, revision: str | None, dest: Path, remote: Remote | None = None, log=say) -> str:
    """Fetches into dest; returns the resolved revision. A completed fetch of the same revision is kept."""
    remote = remote or open_remote(source, revision)
    resolved, files = remote.resolve()
    if recorded_revision(dest) == resolved:
        log(f"{remote.label} ({resolved}) already present in {dest}")
    else:
        download_all(remote, resolved, files, dest, log)
    return resolved


def download_all(remote: Remote, resolved: str, files: list[str], dest: Path, log=say) -> None:
    """Downloads the checkpoint's files of a resolved remote into dest and records what they are."""
    chosen = sorted(f for f in files if wanted(f))
    if not any(f.endswith(".safetensors") for f in chosen):
        skipped = sorted(set(files) - set(chosen))
        raise FetchError(
            f"{remote.label} has no safetensors weights (found {skipped[:8]}); Berth loads safetensors only"
        )
    dest.mkdir(parents=True, exist_ok=True)
    total = 0
    for index, filename in enumerate(chosen, 1):
        size = remote.download(filename, dest / filename, _progress_line(f"[{index}/{len(chosen)}] {filename}", log))
        total += size
    record = {"source": remote.source, "revision": remote.revision, "sha": resolved, "files": chosen}
    (dest / SOURCE_RECORD).write_text(json.dumps(record, indent=2))
    log(f"fetched {remote.label} ({resolved}): {len(chosen)} files, {total} bytes")


def _progress_line(prefix: str, log) -> Progress:
    """Progress lines, the last of which `berth status` shows while a staging Job runs."""

    def report(done: int, total: int | None) -> None:
        of = f" of {human(total)} ({100 * done // total}%)" if total else ""
        log(f"{prefix}: {human(done)}{of}")

    return report


def main(args) -> int:  # args: argparse.Namespace from berth_runtime.cli
    try:
        fetch(args.source, args.revision, Path(args.dest))
    except FetchError as error:
        print(f"berth-runtime fetch: {error}", file=sys.stderr)
        return 2
    return 0
