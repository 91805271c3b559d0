"""Publishing the generated site: writing it under ``docs/guide/`` and telling whether the
files there are still what the inputs make (the file-system side of :mod:`sandbox.guide`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def stale_files(site: Mapping[str, str], out: Path) -> list[str]:
    """The files of ``out`` that differ from ``site``, are missing or should not be there."""
    present = (
        {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        if out.exists()
        else set()
    )
    differ = [
        path
        for path, text in site.items()
        if path not in present or (out / path).read_text(encoding="utf-8") != text
    ]
    return sorted(differ + sorted(present - set(site)))


def write_site(site: Mapping[str, str], out: Path) -> None:
    """Write the site into ``out``, removing what it no longer has."""
    for path in stale_files(site, out):
        target = out / path
        if path in site:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(site[path], encoding="utf-8")
        else:
            target.unlink()
    for folder in sorted((p for p in out.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
