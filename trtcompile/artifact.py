"""The artifact directory: manifest.json (what determines the engine) + checksummed files."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from trtcompile.errors import ArtifactError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
MODEL_ONNX = "model.onnx"
TOKENIZER_DIR = "tokenizer"
ENGINES_DIR = "engines"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(4 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_all(paths: list[Path]) -> list[str]:
    """sha256 of each file, files hashed in parallel threads (reads and hashlib release the GIL;
    the weights come in files of up to graph_io.SHARD_BYTES so that there are several)."""
    workers = min(len(paths), os.cpu_count() or 1, 16)
    if workers <= 1:
        return [sha256(p) for p in paths]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(sha256, paths))


def tool_versions() -> dict:
    import importlib.metadata as md

    from trtcompile import __version__

    out = {"trtcompile": __version__, "python": platform.python_version()}
    for pkg in ("torch", "onnx", "onnx-graphsurgeon", "transformers", "tensorrt"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


@dataclass(frozen=True)
class Artifact:
    path: Path
    manifest: dict

    @property
    def model_onnx(self) -> Path:
        return self.path / MODEL_ONNX

    @property
    def tokenizer_dir(self) -> Path | None:
        d = self.path / TOKENIZER_DIR
        return d if d.is_dir() else None


def artifact_files(directory: Path) -> list[Path]:
    """Every file of an artifact directory but its manifest (what the manifest checksums)."""
    return [p for p in sorted(Path(directory).rglob("*")) if p.is_file() and p.name != MANIFEST]


def write_manifest(directory: Path, content: dict) -> dict:
    """Add schema version and the sha256 of every file, then write manifest.json."""
    paths = artifact_files(directory)
    files = {str(p.relative_to(directory)): {"sha256": digest, "bytes": p.stat().st_size}
             for p, digest in zip(paths, sha256_all(paths))}
    manifest = {"schema_version": SCHEMA_VERSION, **content, "files": files}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


def load_artifact(path: str | Path, verify: bool = True) -> Artifact:
    """Read and check an artifact; refuse, with the reason, one that is corrupt or foreign."""
    path = Path(path)
    mf = path / MANIFEST
    if not mf.is_file():
        raise ArtifactError(f"{path}: not an artifact (no {MANIFEST}); build one with "
                            "`trtcompile build CONFIG`")
    try:
        manifest = json.loads(mf.read_text())
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{mf}: corrupt manifest ({exc})") from None
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ArtifactError(f"{path}: manifest schema version {version}, this trtcompile reads "
                            f"version {SCHEMA_VERSION}; rebuild the artifact")
    if verify:
        listed = manifest.get("files", {})

        def changed(rel: str) -> ArtifactError:
            return ArtifactError(f"{path}: checksum mismatch for {rel}: the file was changed "
                                 "or truncated after the build; rebuild the artifact")

        for rel, meta in listed.items():           # cheap checks first, then the hashes
            f = path / rel
            if not f.is_file():
                raise ArtifactError(f"{path}: file {rel} listed in the manifest is missing")
            if f.stat().st_size != meta["bytes"]:
                raise changed(rel)
        digests = sha256_all([path / rel for rel in listed])
        for (rel, meta), digest in zip(listed.items(), digests):
            if digest != meta["sha256"]:
                raise changed(rel)
    return Artifact(path=path, manifest=manifest)


@contextmanager
def staging_dir(output: Path):
    """Build into a sibling temporary directory; move it into place only on success, so a
    failed build leaves nothing half-written (and an earlier artifact is kept until then)."""
    output = Path(output)
    tmp = output.parent / f".{output.name}.partial-{os.getpid()}"
    try:  # before any work: an output place that cannot be written is the user's to fix
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as exc:
        raise ArtifactError(f"cannot write an artifact at {output}: {exc.strerror or exc} "
                            f"({exc.filename or tmp}); choose another output directory") from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = output.parent / f".{output.name}.old-{os.getpid()}"
    try:
        if output.exists():
            output.rename(old)
        tmp.rename(output)
    except OSError as exc:
        if old.exists() and not output.exists():
            old.rename(output)  # the earlier artifact stays where it was
        shutil.rmtree(tmp, ignore_errors=True)
        raise ArtifactError(f"cannot move the new artifact into {output}: "
                            f"{exc.strerror or exc}") from None
    shutil.rmtree(old, ignore_errors=True)
