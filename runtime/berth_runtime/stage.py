"""`berth-runtime stage`: puts one model revision into the model cache volume, for the operator's
staging Job, while the running version keeps serving.

The cache holds one folder per key (the operator derives it from source and revision). A revision is
fetched into `<key>.partial` and renamed into place only when complete, so a pod never mounts a half
staged folder; an entry whose recorded revision (commit SHA, listing digest) matches the resolved one is
kept as it is. Entries not named by --keep are garbage-collected. The outcome (resolved revision, files,
bytes) is written to the container's termination message, where the operator reads it without any extra permission.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from pathlib import Path

from berth_runtime.fetch import SOURCE_RECORD, Remote, download_all, open_remote, recorded_revision
from berth_runtime.transfer import FetchError, say

TERMINATION_LOG = "/dev/termination-log"


def collect_garbage(cache: Path, keep: set[str], log=say) -> list[str]:
    """Removes every cache entry (and partial download) whose key is not kept."""
    removed = []
    for path in sorted(cache.iterdir()):
        if path.name.removesuffix(".partial") in keep:
            continue
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        removed.append(path.name)
        log(f"removed {path.name} from the cache")
    return removed


def stage(
    source: str, revision: str | None, cache: Path, key: str, keep: set[str], remote: Remote | None = None, log=say
) -> dict[str, object]:
    remote = remote or open_remote(source, revision)
    cache.mkdir(parents=True, exist_ok=True)
    entry, partial = cache / key, cache / f"{key}.partial"
    resolved, files = remote.resolve()
    if recorded_revision(entry) == resolved:
        log(f"{remote.label} ({resolved}) is already staged as {key}")
    else:
        download_all(remote, resolved, files, partial, log)
        if entry.exists():
            shutil.rmtree(entry)  # a tag that moved: its old files go only once the new ones are complete
        partial.rename(entry)
        log(f"staged {remote.label} ({resolved}) as {key}")
    collect_garbage(cache, keep | {key}, log)
    staged = [p for p in entry.iterdir() if p.name != SOURCE_RECORD]
    return {"key": key, "sha": resolved, "files": len(staged), "bytes": sum(p.stat().st_size for p in staged)}


def report(outcome: dict[str, object], path: str) -> None:
    """The termination message (at most 4096 bytes are kept by the kubelet; this is far less)."""
    with contextlib.suppress(OSError):  # outside a pod there is no termination log; stdout has it anyway
        Path(path).write_text(json.dumps(outcome))


def fail(why: str, path: str) -> int:
    print(f"berth-runtime stage: {why}", file=sys.stderr)
    report({"error": why[:2000]}, path)
    return 2


def main(args) -> int:  # args: argparse.Namespace from berth_runtime.cli
    try:
        outcome = stage(args.source, args.revision, Path(args.cache), args.key, set(args.keep))
    except PermissionError as error:
        # Seen on a real node: a volume without fsGroup support (hostPath, some NFS) leaves the cache folder
        # root's, and the stager runs as uid 1000.
        return fail(f"cannot write to the model cache ({error.filename}: permission denied): the cache volume must "
                    f"be writable by uid {os.getuid()} or gid {os.getgid()}; use a volume that supports fsGroup, "
                    "or make the claim's folder writable by that group", args.report)  # fmt: skip
    except FetchError as error:
        return fail(str(error), args.report)
    print(json.dumps(outcome))
    report(outcome, args.report)
    return 0
