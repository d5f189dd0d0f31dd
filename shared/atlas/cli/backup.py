"""Backup and restore of what Atlas keeps: the Firestore tasks and the Qdrant knowledge index.

A backup is a folder with a ``manifest.json`` and one part per store:

- **Firestore**, locally (``FIRESTORE_EMULATOR_HOST`` set): the emulator's own export
  (``POST /emulator/v1/projects/P:export``) into ``firestore/``, restored with its import. In the cloud, a
  managed export to Cloud Storage (``FirestoreAdminClient.export_documents`` to ``--gcs-uri``; the
  manifest records the URI), restored with ``import_documents``. Terraform also keeps daily backups
  (``firestore.tf``), restored with ``gcloud firestore databases restore``.
- **Qdrant**, embedded (a Qdrant Edge folder): the folder archived as ``qdrant/shard.tar.gz``
  (:mod:`atlas.retrieval.shard_archive`). Edge writes every change to its WAL before applying it, so a copy
  taken while the retrieval service runs loads to the state of its last complete write; take it when no
  ingest is running to be sure that ingest is in it. Restoring unpacks it into a folder nobody uses yet, for
  a retrieval service that starts there. In the cloud, the embedded index's store of record is already a
  versioned snapshot object in GCS (``ATLAS_INDEX_BUCKET``): every earlier generation can be restored from it.
  Managed Qdrant: a collection snapshot (``create_snapshot``), downloaded into ``qdrant/``, restored by
  uploading it to the collection's snapshot endpoint (``POST /collections/C/snapshots/upload``).
- Without the index (``qdrant=False``): the index is derived data, rebuilt from ``knowledge/`` with
  ``atlas ingest``.

docs/runbooks/backup-and-restore.md walks through both paths.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from atlas.errors import BackupError, KnowledgeIndexError
from atlas.retrieval import shard_archive
from atlas.retrieval.edge_backend import is_shard

MANIFEST = "manifest.json"
ARCHIVE = "shard.tar.gz"
FORMAT_VERSION = 2  # 2: the embedded index is a Qdrant Edge archive


@dataclass(frozen=True)
class Where:
    """Where the stores are: the project, the emulator (if local), the Qdrant folder or URL."""

    project: str
    firestore_emulator: str | None = None
    gcs_uri: str | None = None
    qdrant_path: Path | None = None
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    collection: str = "atlas-knowledge"


def backup(target: Path, where: Where, *, qdrant: bool = True) -> dict[str, Any]:
    """Write a backup of Firestore and (unless ``qdrant`` is False) the Qdrant index into ``target``, a new
    or empty folder. Every check runs before anything is written, so a refused backup leaves no half."""
    target = target.resolve()
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: give a new folder for the backup")
    if qdrant and where.qdrant_path is None and not where.qdrant_url:
        raise BackupError(
            "say where the index is: --qdrant-path (the embedded folder) or --qdrant-url (managed), "
            "or back up Firestore alone with --skip-index (the index is rebuilt with `atlas ingest knowledge/`)"
        )
    if not where.firestore_emulator and not where.gcs_uri:
        raise BackupError("a cloud Firestore backup goes to Cloud Storage: pass --gcs-uri gs://BUCKET/PREFIX")
    target.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(),
        "project": where.project,
        "firestore": _backup_firestore(target, where),
        "qdrant": _backup_qdrant(target, where) if qdrant else None,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def restore(source: Path, where: Where, *, firestore: bool = True, qdrant: bool = True) -> dict[str, Any]:
    """Restore a backup made by :func:`backup` into the stores ``where`` names."""
    source = source.resolve()
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{source} has no {MANIFEST}: not an Atlas backup")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"backup format {manifest.get('format')} is not {FORMAT_VERSION}")
    done: dict[str, Any] = {}
    if qdrant and manifest.get("qdrant") is None:
        done["qdrant"] = {"skipped": "the backup holds no index: rebuild it with `atlas ingest knowledge/`"}
    elif qdrant:
        done["qdrant"] = _restore_qdrant(source, manifest["qdrant"], where)
    if firestore:
        done["firestore"] = _restore_firestore(source, manifest["firestore"], where)
    return done


# --------------------------------------------------------------------------------------------- Firestore


def _emulator_call(where: Where, verb: str, body: dict[str, Any]) -> None:
    url = f"http://{where.firestore_emulator}/emulator/v1/projects/{where.project}:{verb}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        raise BackupError(f"the Firestore emulator refused the {verb}: {exc.read().decode(errors='replace')}") from exc
    except urllib.error.URLError as exc:
        raise BackupError(f"the Firestore emulator at {where.firestore_emulator} did not answer: {exc}") from exc


def _database(where: Where) -> str:
    return f"projects/{where.project}/databases/(default)"


def _backup_firestore(target: Path, where: Where) -> dict[str, Any]:
    if where.firestore_emulator:
        folder = target / "firestore"
        folder.mkdir()
        _emulator_call(where, "export", {"database": _database(where), "export_directory": str(folder)})
        metadata = sorted(folder.rglob("*.overall_export_metadata"))
        if not metadata:
            raise BackupError(f"the emulator wrote no export metadata into {folder}")
        return {"kind": "emulator_export", "metadata": str(metadata[-1].relative_to(target))}
    from google.cloud import firestore_admin_v1

    operation = firestore_admin_v1.FirestoreAdminClient().export_documents(
        request={"name": _database(where), "output_uri_prefix": where.gcs_uri}
    )
    result = operation.result(timeout=3600)
    return {"kind": "managed_export", "output_uri_prefix": result.output_uri_prefix}


def _restore_firestore(source: Path, part: dict[str, Any], where: Where) -> dict[str, Any]:
    if part["kind"] == "emulator_export":
        if not where.firestore_emulator:
            raise BackupError("this backup is an emulator export: set FIRESTORE_EMULATOR_HOST to restore it")
        metadata = source / part["metadata"]
        # The emulator's import takes the path of the export's metadata file.
        _emulator_call(where, "import", {"database": _database(where), "export_directory": str(metadata)})
        return {"imported": str(metadata)}
    if where.firestore_emulator:
        raise BackupError("this backup is a Cloud Storage export: unset FIRESTORE_EMULATOR_HOST to restore it")
    from google.cloud import firestore_admin_v1

    operation = firestore_admin_v1.FirestoreAdminClient().import_documents(
        request={"name": _database(where), "input_uri_prefix": part["output_uri_prefix"]}
    )
    operation.result(timeout=3600)
    return {"imported": part["output_uri_prefix"]}


# ------------------------------------------------------------------------------------------------ Qdrant


def _backup_qdrant(target: Path, where: Where) -> dict[str, Any]:
    folder = target / "qdrant"
    if where.qdrant_path is not None:
        copy_local_index(where.qdrant_path, folder / ARCHIVE)
        return {"kind": "edge", "file": f"qdrant/{ARCHIVE}"}
    if where.qdrant_url:
        client = _managed_client(where)
        snapshot = client.create_snapshot(collection_name=where.collection, wait=True)
        if snapshot is None:
            raise BackupError(f"Qdrant made no snapshot of {where.collection}")
        folder.mkdir()
        url = f"{where.qdrant_url.rstrip('/')}/collections/{where.collection}/snapshots/{snapshot.name}"
        request = urllib.request.Request(url, headers={"api-key": where.qdrant_api_key or ""})
        with urllib.request.urlopen(request, timeout=3600) as response, (folder / snapshot.name).open("wb") as out:
            shutil.copyfileobj(response, out)
        return {"kind": "snapshot", "collection": where.collection, "file": f"qdrant/{snapshot.name}"}
    raise AssertionError("backup() checked that the index has a place")


def _restore_qdrant(source: Path, part: dict[str, Any], where: Where) -> dict[str, Any]:
    if part["kind"] == "edge":
        if where.qdrant_path is None:
            raise BackupError("this backup holds an embedded index: pass --qdrant-path for the folder to restore to")
        destination = where.qdrant_path.resolve()
        if destination.exists() and any(destination.iterdir()):
            raise BackupError(
                f"{destination} is not empty: restore the index into a new folder, then start retrieval there "
                "(ATLAS_QDRANT_PATH)"
            )
        if destination.exists():
            destination.rmdir()
        try:
            shard_archive.unpack(source / part["file"], destination)
        except KnowledgeIndexError as exc:
            raise BackupError(str(exc)) from exc
        return {"folder": str(destination)}
    if not where.qdrant_url:
        raise BackupError("this backup holds a managed Qdrant snapshot: pass --qdrant-url (and ATLAS_QDRANT_API_KEY)")
    client = _managed_client(where)
    snapshot = source / part["file"]
    # Qdrant recovers from a snapshot it can read: upload the file to the collection's snapshot endpoint.
    url = f"{where.qdrant_url.rstrip('/')}/collections/{part['collection']}/snapshots/upload?priority=snapshot"
    _upload(url, snapshot, where.qdrant_api_key)
    client.get_collection(part["collection"])  # fails loudly if the recovery did not produce the collection
    return {"collection": part["collection"], "snapshot": snapshot.name}


def copy_local_index(folder: Path, archive: Path) -> None:
    """Archive a Qdrant Edge folder, which its owner (the retrieval service) may keep open."""
    folder = folder.resolve()
    if not is_shard(folder):
        raise BackupError(f"{folder} is not a Qdrant Edge shard (no edge_config.json)")
    archive.parent.mkdir(parents=True, exist_ok=True)
    shard_archive.pack(folder, archive)


def _managed_client(where: Where) -> Any:
    from qdrant_client import QdrantClient

    return QdrantClient(url=where.qdrant_url, api_key=where.qdrant_api_key, timeout=300)


def _upload(url: str, path: Path, api_key: str | None) -> None:
    import requests

    with path.open("rb") as handle:
        response = requests.post(
            url, headers={"api-key": api_key or ""}, files={"snapshot": (path.name, handle)}, timeout=3600
        )
    if response.status_code >= 300:
        raise BackupError(f"Qdrant refused the snapshot upload ({response.status_code}): {response.text[:500]}")
