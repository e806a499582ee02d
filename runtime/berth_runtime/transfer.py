"""What every weights fetcher shares: which files a checkpoint needs, one error type whose message says
what to change, and HTTP GETs that trust a private CA when the operator mounts one (spec.model.caBundle
-> BERTH_CA_BUNDLE)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from berth_runtime import contract

CHUNK = 1 << 20
# What a transformers checkpoint needs, and nothing that could execute code when loaded.
WANTED = (
    "*.safetensors",
    "*.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
)


class FetchError(RuntimeError):
    """A fetch that cannot succeed as asked; the message says what to change."""


def wanted(filename: str) -> bool:
    """Top-level checkpoint files only: weights in safetensors form, config and tokenizer."""
    return "/" not in filename and any(fnmatch.fnmatch(filename, pattern) for pattern in WANTED)


def tls_context() -> ssl.SSLContext | None:
    """The system's trust store, or only the CA bundle the operator mounted (a private mirror's CA)."""
    bundle = os.environ.get(contract.ENV_CA_BUNDLE)
    if not bundle:
        return None
    try:
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as error:
        raise FetchError(f"CA bundle {bundle} ({contract.ENV_CA_BUNDLE}): {error}; check spec.model.caBundle") from None


def _detail(body: bytes) -> str:
    """The server's own reason: a hub's JSON {"error": ...} or S3's XML <Code>."""
    text = body[:4096].decode("utf-8", "replace")
    try:
        reason = json.loads(text).get("error")
        return str(reason) if reason else ""
    except (ValueError, AttributeError):
        match = re.search(r"<Code>([^<]+)</Code>", text)
        return match.group(1) if match else ""


def http_get(url: str, headers: Mapping[str, str], timeout: float, hints: Mapping[int, str]):
    """GET url; a failure becomes a FetchError naming the URL, the status and what to check (hints)."""
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        return urllib.request.urlopen(request, timeout=timeout, context=tls_context())
    except urllib.error.HTTPError as error:
        detail = _detail(error.read())
        hint = hints.get(error.code, error.reason)
        raise FetchError(f"GET {url}: HTTP {error.code}{f' {detail}' if detail else ''}: {hint}") from None
    except urllib.error.URLError as error:
        why = str(error.reason)
        if isinstance(error.reason, ssl.SSLCertVerificationError):
            why += "; if the endpoint uses a private CA, put it in a ConfigMap and set spec.model.caBundle"
        raise FetchError(f"GET {url}: {why}") from None


Progress = Callable[[int, int | None], None]  # (bytes so far, total bytes if the server said)


def save(response, target: Path, progress: Progress | None = None, every: float = 10.0) -> int:
    """Streams a response into target atomically (a .partial file renamed when complete), reporting
    progress at most every `every` seconds and once at the end."""
    partial = target.with_name(target.name + ".partial")
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    done, last = 0, time.monotonic()
    with response, partial.open("wb") as out:
        while chunk := response.read(CHUNK):
            out.write(chunk)
            done += len(chunk)
            if progress and time.monotonic() - last >= every:
                progress(done, total)
                last = time.monotonic()
    partial.replace(target)
    if progress:
        progress(done, total)
    return done


def say(line: str) -> None:
    """Progress goes to stdout at once, so `kubectl logs` (and `berth status`) see it while it happens."""
    print(line, flush=True)


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
