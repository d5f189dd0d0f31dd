# Names, timings and the functions' environment, in one place so that they can be read (and tested) together.

locals {
  labels = { app = "atlas", environment = var.environment }

  # --- Timings: one chain of inequalities, checked by tests/infra and by preconditions --------------
  # task deadline (210 s) < worker timeout (240 s) <= lease (300 s) and <= ack deadline (300 s):
  # - the worker stops working on a task at its deadline, which leaves 30 s to store the outcome before
  #   the platform kills the request at the timeout;
  # - the ack deadline is counted from when Pub/Sub sends the push; the timeout from when the instance
  #   receives it. 60 s of margin for a cold start and the network keep Pub/Sub from delivering a task
  #   again while its first attempt may still run;
  # - the lease outlives the attempt that holds it (the platform kills the attempt at the timeout), so a
  #   delivery that takes an expired lease over never races a live one.
  task_deadline_s        = 210
  worker_timeout_s       = 240
  lease_s                = 300
  retrieval_timeout_s    = 60 # the retrieval function's own timeout
  retrieval_call_timeout = 30 # the worker's client timeout, below the function's

  # --- The code's Pub/Sub topology (infra/local/stack.py creates the same names locally) ----------
  dlq_topic_name      = "${var.topic_name}-dlq"
  dlq_inspect_name    = "${var.topic_name}-dlq-inspect"
  dlq_handler_name    = "${var.topic_name}-dlq-worker"
  worker_subscription = "${var.topic_name}-worker"

  # --- Qdrant: exactly one backend ---------------------------------------------------------------
  qdrant_managed = var.qdrant_cloud_enabled || var.qdrant_url != ""
  qdrant_url     = var.qdrant_cloud_enabled ? one(qdrant-cloud_accounts_cluster.knowledge[*].url) : var.qdrant_url

  # --- LLM keys: every api_key_env of the chain is a secret, mounted under that name -------------
  llm_key_envs = toset(compact([for entry in var.llm_chain : entry.api_key_env]))
  llm_chain_json = jsonencode([
    for entry in var.llm_chain : { for key, value in entry : key => value if value != null }
  ])

  # --- Environment of each function ---------------------------------------------------------------
  # tests/infra/test_terraform_contract.py checks these maps against the pydantic settings classes
  # (WorkerSettings, RetrievalSettings in shared/atlas/config.py): a new setting fails that test until it
  # is set here. Keep them literal maps (one key per line) so that the test can read them.
  worker_env = {
    ATLAS_PROJECT                = var.project_id
    ATLAS_TOPIC                  = var.topic_name
    ATLAS_TASKS_COLLECTION       = var.tasks_collection
    ATLAS_LOG_LEVEL              = var.log_level
    ATLAS_RETRIEVAL_URL          = google_cloudfunctions2_function.retrieval.service_config[0].uri
    ATLAS_RETRIEVAL_AUTH         = "id_token"
    ATLAS_RETRIEVAL_TIMEOUT_S    = local.retrieval_call_timeout
    ATLAS_RETRIEVAL_TOP_K        = 6
    ATLAS_LEASE_S                = local.lease_s
    ATLAS_TASK_DEADLINE_S        = local.task_deadline_s
    ATLAS_MAX_DELIVERY_ATTEMPTS  = var.max_delivery_attempts # the worker knows a delivery is the last one
    ATLAS_LLM_CHAIN              = local.llm_chain_json
    ATLAS_LLM_ATTEMPTS_PER_ENTRY = 3
    ATLAS_LLM_STALL_S            = 20
    ATLAS_LLM_COOLDOWN_S         = 60
    ATLAS_LLM_RETRY_AFTER_CAP_S  = 20
    ATLAS_INPUT_TOKEN_BUDGET     = 8000
    ATLAS_OVER_BUDGET            = var.over_budget
    ATLAS_BUDGET_COLLECTION      = var.budget_collection
    ATLAS_TASK_RETENTION_DAYS    = var.task_retention_days # sets expire_at, the TTL field of firestore.tf
    # Metrics (monitoring.tf): written to Cloud Monitoring itself (no endpoint), per instance.
    ATLAS_METRICS_ENABLED     = true
    ATLAS_MONITORING_ENDPOINT = ""
    ATLAS_METRICS_INTERVAL_S  = var.metrics_interval_seconds
    ATLAS_REGION              = var.region
    ATLAS_METRICS_JOB         = "atlas-worker"
  }

  # The dead-letter handler runs the worker's bundle; its metrics name it as their job.
  dead_letter_env = {
    ATLAS_METRICS_JOB = "atlas-dead-letter"
  }

  # Unset means no daily budget: the variable must then be absent, not empty.
  worker_env_daily_budget = {
    ATLAS_DAILY_BUDGET_USD = var.daily_budget_usd
  }

  retrieval_env = {
    ATLAS_PROJECT              = var.project_id # the snapshot bucket's client
    ATLAS_KNOWLEDGE_COLLECTION = var.knowledge_collection
    ATLAS_EMBEDDING_MODEL_DIR  = "/workspace/model" # the bundle's model/ folder; /workspace is the source root
    ATLAS_EMBEDDING_THREADS    = 1                  # one vCPU: more ONNX threads only contend
    ATLAS_MAX_INGEST_DOCUMENTS = 500
    # Hybrid search and chunking: the code's measured defaults (docs/retrieval.md), set explicitly.
    ATLAS_FUSION              = "dbsf"
    ATLAS_PREFETCH_LIMIT      = 100
    ATLAS_RRF_K               = 2
    ATLAS_RERANK              = true
    ATLAS_RERANK_CANDIDATES   = 30
    ATLAS_RERANK_MIN_RELATIVE = 0.15
    ATLAS_CHUNK_MAX_CHARS     = 1200
    ATLAS_CHUNK_OVERLAP_CHARS = 200
    ATLAS_QUERY_CACHE_SIZE    = 1024
    ATLAS_QUERY_CACHE_TTL_S   = 300
  }

  # The embedded index: each instance's own copy in memory-backed /tmp, restored from the snapshot bucket
  # (index_bucket.tf) when it starts and refreshed from it; an ingest publishes a new snapshot there.
  retrieval_env_embedded_qdrant = {
    ATLAS_QDRANT_PATH     = "/tmp/qdrant"
    ATLAS_INDEX_BUCKET    = one(google_storage_bucket.index[*].name)
    ATLAS_INDEX_OBJECT    = "knowledge/shard.tar.gz"
    ATLAS_INDEX_REFRESH_S = var.index_refresh_seconds
  }

  retrieval_env_managed_qdrant = {
    ATLAS_QDRANT_URL = local.qdrant_url
  }

  # Environment variable => Secret Manager secret id.
  worker_secret_env = { for name in local.llm_key_envs : name => "atlas-${lower(replace(name, "_", "-"))}" }

  retrieval_secret_env_managed_qdrant = {
    ATLAS_QDRANT_API_KEY = "atlas-qdrant-api-key"
  }
  retrieval_secret_env = local.qdrant_managed ? local.retrieval_secret_env_managed_qdrant : {}
}
