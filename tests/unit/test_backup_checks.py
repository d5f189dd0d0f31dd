"""A backup that cannot be complete is refused before anything is written (no half backups to trust)."""

import pytest

from atlas.cli.backup import Where, backup, restore
from atlas.errors import BackupError


def test_backup_without_a_place_for_the_index_is_refused_before_writing(tmp_path):
    target = tmp_path / "backup"
    with pytest.raises(BackupError, match="--qdrant-path .* or --qdrant-url .* or back up Firestore alone"):
        backup(target, Where(project="p", firestore_emulator="127.0.0.1:9"))
    assert not target.exists()


def test_cloud_backup_without_a_bucket_is_refused_before_writing(tmp_path):
    target = tmp_path / "backup"
    with pytest.raises(BackupError, match="--gcs-uri gs://BUCKET/PREFIX"):
        backup(target, Where(project="p", qdrant_path=tmp_path / "qdrant"))
    assert not target.exists()


def test_restore_of_a_folder_from_another_format_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text('{"format": 99}')
    with pytest.raises(BackupError, match="format 99"):
        restore(tmp_path, Where(project="p"))
