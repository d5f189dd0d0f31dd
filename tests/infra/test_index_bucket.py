"""terraform/index_bucket.tf agrees with atlas.retrieval.snapshot_store and RetrievalSettings: the embedded
index's snapshot bucket exists exactly when the embedded index is used, is private and versioned, keeps only
a bounded history, and only the retrieval account may touch its objects."""

from __future__ import annotations

from terraform_reader import TerraformConfig, unquote

from atlas import config

EMBEDDED_ONLY = "${local.qdrant_managed ? 0 : 1}"


def test_the_bucket_and_its_grant_exist_only_with_the_embedded_index(terraform: TerraformConfig) -> None:
    assert terraform.resource("google_storage_bucket", "index")["count"] == EMBEDDED_ONLY
    assert terraform.resource("google_storage_bucket_iam_member", "retrieval_index")["count"] == EMBEDDED_ONLY


def test_the_bucket_is_private_versioned_and_regional(terraform: TerraformConfig) -> None:
    bucket = terraform.resource("google_storage_bucket", "index")
    assert bucket["uniform_bucket_level_access"] is True
    assert unquote(bucket["public_access_prevention"]) == "enforced"
    assert bucket["versioning"][0]["enabled"] is True  # generations are how publishes are ordered
    assert bucket["location"] == "${var.region}"
    assert bucket["force_destroy"] is False


def test_lifecycle_deletes_only_replaced_generations(terraform: TerraformConfig) -> None:
    rules = terraform.resource("google_storage_bucket", "index")["lifecycle_rule"]
    assert len(rules) == 2
    for rule in rules:
        assert unquote(rule["action"][0]["type"]) == "Delete"
        assert unquote(rule["condition"][0]["with_state"]) == "ARCHIVED", "a rule could delete the live snapshot"
    assert terraform.default("index_noncurrent_snapshots_kept") >= 1
    assert terraform.default("index_noncurrent_snapshot_days") >= 1


def test_only_the_retrieval_account_touches_the_objects_of_that_bucket(terraform: TerraformConfig) -> None:
    grants = [
        body
        for (kind, _), body in terraform.resources.items()
        if kind.startswith("google_storage_bucket_iam") and "google_storage_bucket.index" in str(body.get("bucket"))
    ]
    assert len(grants) == 1
    assert grants[0]["member"] == "${google_service_account.retrieval.member}"
    assert unquote(grants[0]["role"]) == "roles/storage.objectUser"  # objects only, never the bucket or its IAM


def test_the_embedded_environment_points_at_the_bucket_with_the_codes_defaults(terraform: TerraformConfig) -> None:
    env = terraform.locals["retrieval_env_embedded_qdrant"]
    fields = config.RetrievalSettings.model_fields
    assert "google_storage_bucket.index" in env["ATLAS_INDEX_BUCKET"]
    assert unquote(env["ATLAS_INDEX_OBJECT"]) == fields["index_object"].default
    assert env["ATLAS_INDEX_REFRESH_S"] == "${var.index_refresh_seconds}"
    assert terraform.default("index_refresh_seconds") == fields["index_refresh_s"].default
    assert "ATLAS_INDEX_BUCKET" not in terraform.locals["retrieval_env_managed_qdrant"]


def test_embedded_retrieval_scales_past_one_instance(terraform: TerraformConfig) -> None:
    service = terraform.resource("google_cloudfunctions2_function", "retrieval")["service_config"][0]
    assert service["max_instance_count"] == "${var.retrieval_max_instances}"
    assert terraform.default("retrieval_max_instances") > 1
