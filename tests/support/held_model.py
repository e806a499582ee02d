"""A model whose load can be held: the demo model in a folder with its generation_config.json a FIFO. The runtime
reads that file last, so its load blocks there (weights loaded, HTTP server up, /health answering) until
release() writes the file, or forever if nobody does: a hung load, without any hook in the product."""

from __future__ import annotations

import json
import os
from pathlib import Path

from berth_runtime.demo_model import create as create_demo_model

GENERATION_CONFIG = json.dumps({"eos_token_id": 2}).encode()


def held_model(folder: Path) -> Path:
    """Makes the model in folder (readable by any user, as a pod's uid 1000 reads it); returns the FIFO."""
    create_demo_model(folder)
    fifo = folder / "generation_config.json"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o644)
    for path in (folder, *folder.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return fifo


def release(fifo: Path) -> None:
    """Lets the held load finish (blocks until the runtime has the FIFO open)."""
    with fifo.open("wb") as writer:
        writer.write(GENERATION_CONFIG)
