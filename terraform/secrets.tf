# Secret Manager secrets: Terraform creates the containers and the access grants, never the values, so no
# key is ever in the state or in a plan. Values are added out of band (docs/deploy.md, adding secrets):
#   printf %s "$KEY" | gcloud secrets versions add atlas-openai-api-key --data-file=-
# A function that mounts a secret without any version fails to deploy: add the value first.

resource "google_secret_manager_secret" "llm_key" {
  for_each  = local.worker_secret_env
  secret_id = each.value

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

resource "google_secret_manager_secret" "qdrant_api_key" {
  count     = local.qdrant_managed ? 1 : 0
  secret_id = local.retrieval_secret_env_managed_qdrant.ATLAS_QDRANT_API_KEY

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}
