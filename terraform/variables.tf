# --- Where -------------------------------------------------------------------------------------

variable "project_id" {
  description = "The Google Cloud project of this environment (one project per environment: names are fixed)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6 to 30 lowercase letters, digits or hyphens."
  }
}

variable "region" {
  description = "Region of the functions, the source bucket, the Artifact Registry repository and Firestore."
  type        = string
  default     = "europe-west1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1."
  }
}

variable "environment" {
  description = "Environment name: dev, staging or prod (a label on every resource; picks a few safety defaults)."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

# --- Names shared with the code (shared/atlas/config.py and infra/local/stack.py) -------------------

variable "topic_name" {
  description = "Task topic (ATLAS_TOPIC; code default DEFAULT_TOPIC). The DLQ topic and the subscriptions are named after it."
  type        = string
  default     = "atlas-tasks"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9._~%+-]{2,200}$", var.topic_name)) && !startswith(var.topic_name, "goog")
    error_message = "topic_name must be a valid Pub/Sub topic id (3 to 201 characters, starting with a letter, not goog)."
  }
}

variable "tasks_collection" {
  description = "Firestore collection of the task documents (ATLAS_TASKS_COLLECTION; code default DEFAULT_TASKS_COLLECTION)."
  type        = string
  default     = "tasks"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,100}$", var.tasks_collection))
    error_message = "tasks_collection must match ^[A-Za-z0-9_-]{1,100}$, as the code requires."
  }
}

variable "knowledge_collection" {
  description = "Qdrant collection of the knowledge base (ATLAS_KNOWLEDGE_COLLECTION; code default DEFAULT_KNOWLEDGE_COLLECTION)."
  type        = string
  default     = "atlas-knowledge"

  validation {
    condition     = length(var.knowledge_collection) > 0
    error_message = "knowledge_collection must not be empty."
  }
}

# --- Delivery ------------------------------------------------------------------------------------

variable "ack_deadline_seconds" {
  description = "Ack deadline of the worker's push subscription: how long Pub/Sub waits for the worker's answer. Must be at least the worker's timeout (functions.tf), or a task still running is delivered again."
  type        = number
  default     = 300

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be between 10 and 600 (Pub/Sub's limits)."
  }
}

variable "retry_minimum_backoff_seconds" {
  description = "Smallest delay before a failed push is retried (the local stack uses 1 s)."
  type        = number
  default     = 10

  validation {
    condition     = var.retry_minimum_backoff_seconds >= 0 && var.retry_minimum_backoff_seconds <= 600
    error_message = "retry_minimum_backoff_seconds must be between 0 and 600."
  }
}

variable "retry_maximum_backoff_seconds" {
  description = "Largest delay before a failed push is retried (the local stack uses 10 s)."
  type        = number
  default     = 600

  validation {
    condition     = var.retry_maximum_backoff_seconds >= 0 && var.retry_maximum_backoff_seconds <= 600
    error_message = "retry_maximum_backoff_seconds must be between 0 and 600."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of one message before it is moved to the dead-letter topic (the local stack uses 5)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub's limits)."
  }
}

variable "dead_letter_retention_days" {
  description = "How long dead letters wait in the -dlq-inspect subscription (1 to 7 days)."
  type        = number
  default     = 7

  validation {
    condition     = var.dead_letter_retention_days >= 1 && var.dead_letter_retention_days <= 7
    error_message = "dead_letter_retention_days must be between 1 and 7."
  }
}

# --- Functions -----------------------------------------------------------------------------------

variable "bundle_manifest" {
  description = "Path of dist/manifest.json written by scripts/package_functions.py (relative to this directory); it names each bundle's zip and content hash."
  type        = string
  default     = "../dist/manifest.json"
}

variable "worker_max_instances" {
  description = "Upper bound of worker instances (each runs up to 8 tasks at once): caps the cost and the LLM request rate."
  type        = number
  default     = 10

  validation {
    condition     = var.worker_max_instances >= 1 && var.worker_max_instances <= 100
    error_message = "worker_max_instances must be between 1 and 100."
  }
}

variable "retrieval_min_instances" {
  description = "Retrieval instances kept warm (0: scale to zero; 1 avoids the model's cold start, at the price of an idle instance)."
  type        = number
  default     = 0

  validation {
    condition     = var.retrieval_min_instances >= 0 && var.retrieval_min_instances <= 3
    error_message = "retrieval_min_instances must be between 0 and 3."
  }
}

variable "retrieval_max_instances" {
  description = "Upper bound of retrieval instances. With the embedded index each one holds its own copy (about the snapshot's size in memory), restored from the index bucket."
  type        = number
  default     = 5

  validation {
    condition     = var.retrieval_max_instances >= 1 && var.retrieval_max_instances <= 50
    error_message = "retrieval_max_instances must be between 1 and 50."
  }
}

variable "log_level" {
  description = "ATLAS_LOG_LEVEL of both functions."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be one of DEBUG, INFO, WARNING, ERROR."
  }
}

variable "llm_chain" {
  description = "ATLAS_LLM_CHAIN: the LLM providers, tried in order. Every api_key_env becomes a Secret Manager secret mounted into the worker under that name. The default is the code's DEFAULT_CHAIN."
  type = list(object({
    provider          = string
    model             = string
    base_url          = optional(string)
    api_key_env       = optional(string)
    timeout_s         = optional(number)
    max_output_tokens = optional(number)
  }))
  default = [
    { provider = "openai", model = "gpt-4o-mini", api_key_env = "OPENAI_API_KEY" },
  ]

  validation {
    condition = alltrue([
      for entry in var.llm_chain : contains(["openai", "azure_openai", "gemini", "vertex", "openai_compatible"], entry.provider)
    ])
    error_message = "each llm_chain provider must be one of openai, azure_openai, gemini, vertex, openai_compatible."
  }

  validation {
    condition = alltrue([
      for entry in var.llm_chain : entry.api_key_env == null ? true : can(regex("^[A-Z][A-Z0-9_]*$", entry.api_key_env))
    ])
    error_message = "each llm_chain api_key_env must be an environment variable name in upper case (e.g. OPENAI_API_KEY)."
  }

  validation {
    condition = alltrue([
      for entry in var.llm_chain : contains(["azure_openai", "vertex", "openai_compatible"], entry.provider) ? entry.base_url != null : true
    ])
    error_message = "azure_openai, vertex and openai_compatible entries need a base_url."
  }
}

variable "daily_budget_usd" {
  description = "ATLAS_DAILY_BUDGET_USD: LLM spend allowed per day across all tasks; null means no budget."
  type        = number
  default     = null

  validation {
    condition     = var.daily_budget_usd == null ? true : var.daily_budget_usd > 0
    error_message = "daily_budget_usd must be positive (or null for no budget)."
  }
}

variable "over_budget" {
  description = "ATLAS_OVER_BUDGET: what a task does once the daily budget is spent: fail, or use the cheapest entry."
  type        = string
  default     = "fail"

  validation {
    condition     = contains(["fail", "cheapest"], var.over_budget)
    error_message = "over_budget must be fail or cheapest."
  }
}

variable "budget_collection" {
  description = "ATLAS_BUDGET_COLLECTION: Firestore collection of the daily spend counters (code default DEFAULT_BUDGET_COLLECTION)."
  type        = string
  default     = "atlas-budget"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,100}$", var.budget_collection))
    error_message = "budget_collection must match ^[A-Za-z0-9_-]{1,100}$."
  }
}

# --- Qdrant --------------------------------------------------------------------------------------

variable "qdrant_url" {
  description = "URL of an existing managed Qdrant (ATLAS_QDRANT_URL); its API key goes into the secret atlas-qdrant-api-key. Empty, and qdrant_cloud_enabled false: the embedded index, each instance's copy restored from the index bucket (index_bucket.tf)."
  type        = string
  default     = ""

  validation {
    condition     = var.qdrant_url == "" || startswith(var.qdrant_url, "https://")
    error_message = "qdrant_url must be empty or start with https://."
  }
}

variable "qdrant_cloud_enabled" {
  description = "Create a Qdrant Cloud cluster and a key scoped to the knowledge collection (qdrant.tf) through the qdrant/qdrant-cloud provider; needs QDRANT_CLOUD_API_KEY (a management key) in the environment."
  type        = bool
  default     = false
}

variable "qdrant_cloud_account_id" {
  description = "Qdrant Cloud account id (only with qdrant_cloud_enabled)."
  type        = string
  default     = ""
}

variable "qdrant_cloud_region" {
  description = "GCP region of the Qdrant Cloud cluster (only with qdrant_cloud_enabled); keep it close to var.region."
  type        = string
  default     = "europe-west3"
}

variable "qdrant_cloud_package" {
  description = "CPU and memory of the Qdrant Cloud node package to book (only with qdrant_cloud_enabled)."
  type = object({
    cpu = string
    ram = string
  })
  default = { cpu = "500m", ram = "2Gi" }
}

# --- The embedded index's snapshots (index_bucket.tf; only without managed Qdrant) ----------------

variable "index_refresh_seconds" {
  description = "ATLAS_INDEX_REFRESH_S: a retrieval instance checks the index bucket for a newer snapshot at most this often; an ingest on another instance shows within about this long."
  type        = number
  default     = 30

  validation {
    condition     = var.index_refresh_seconds >= 1 && var.index_refresh_seconds <= 3600
    error_message = "index_refresh_seconds must be between 1 and 3600, as the code requires."
  }
}

variable "index_noncurrent_snapshots_kept" {
  description = "Replaced snapshots of the embedded index kept for a rollback (besides the live one); older ones are deleted."
  type        = number
  default     = 10

  validation {
    condition     = var.index_noncurrent_snapshots_kept >= 0 && var.index_noncurrent_snapshots_kept <= 100
    error_message = "index_noncurrent_snapshots_kept must be between 0 and 100."
  }
}

variable "index_noncurrent_snapshot_days" {
  description = "Days a replaced snapshot of the embedded index is kept at most, however few newer ones there are."
  type        = number
  default     = 30

  validation {
    condition     = var.index_noncurrent_snapshot_days >= 1 && var.index_noncurrent_snapshot_days <= 3650
    error_message = "index_noncurrent_snapshot_days must be between 1 and 3650."
  }
}

# --- Firestore -----------------------------------------------------------------------------------

variable "firestore_delete_protection" {
  description = "Refuse to delete the Firestore database (turn off only to tear an environment down)."
  type        = bool
  default     = true
}

variable "firestore_backup_retention_days" {
  description = "How long the daily Firestore backups are kept (1 to 98 days)."
  type        = number
  default     = 7

  validation {
    condition     = var.firestore_backup_retention_days >= 1 && var.firestore_backup_retention_days <= 98
    error_message = "firestore_backup_retention_days must be between 1 and 98."
  }
}

variable "task_ttl_field" {
  description = "Timestamp field of a task document after which Firestore's TTL deletes it; the worker sets it (expire_at) when a task finishes, never while it runs."
  type        = string
  default     = "expire_at"

  validation {
    condition     = var.task_ttl_field == "expire_at"
    error_message = "The worker writes the TTL timestamp to expire_at (shared/atlas/tasks/store.py); change both together."
  }
}

variable "task_retention_days" {
  description = "ATLAS_TASK_RETENTION_DAYS: days a finished task is kept before Firestore's TTL policy deletes it."
  type        = number
  default     = 30

  validation {
    condition     = var.task_retention_days >= 1 && var.task_retention_days <= 3650
    error_message = "task_retention_days must be between 1 and 3650."
  }
}

# --- CI ------------------------------------------------------------------------------------------

variable "state_bucket" {
  description = "Bucket of the Terraform state (created at bootstrap, docs/deploy.md); the deployer account gets access to it. Empty: no grant."
  type        = string
  default     = ""
}

# --- Monitoring (monitoring.tf, docs/metrics.md) -------------------------------------------------

variable "metrics_interval_seconds" {
  description = "How often an instance writes its metrics (ATLAS_METRICS_INTERVAL_S); Cloud Monitoring takes at most one point per series per 5 s."
  type        = number
  default     = 10
  validation {
    condition     = var.metrics_interval_seconds >= 5
    error_message = "metrics_interval_seconds must be at least 5 (Cloud Monitoring's write limit per time series)."
  }
}

variable "notification_channels" {
  description = "Existing notification channel ids (projects/P/notificationChannels/N) every alert notifies."
  type        = list(string)
  default     = []
}

variable "alert_emails" {
  description = "Email addresses to create notification channels for (added to notification_channels)."
  type        = list(string)
  default     = []
}

variable "alert_failure_ratio" {
  description = "Alert when more than this fraction of the tasks finished in 10 minutes failed."
  type        = number
  default     = 0.1
  validation {
    condition     = var.alert_failure_ratio > 0 && var.alert_failure_ratio < 1
    error_message = "alert_failure_ratio must be between 0 and 1."
  }
}

variable "alert_p95_latency_s" {
  description = "Alert when the p95 of publish-to-terminal task latency stays above this many seconds for 10 minutes."
  type        = number
  default     = 120
}

variable "alert_dead_letter_backlog" {
  description = "Alert when more than this many dead letters wait on the inspection subscription."
  type        = number
  default     = 0
}

variable "alert_budget_remaining_fraction" {
  description = "With daily_budget_usd set: alert when less than this fraction of the day's budget is left."
  type        = number
  default     = 0.2
}

variable "alert_budget_burn_rate" {
  description = "With daily_budget_usd set: alert when spending runs this many times faster than the pace that lasts the day."
  type        = number
  default     = 2
}

variable "runbook_base_url" {
  description = "Where the runbooks are (docs/runbooks of this repository, e.g. its URL on your Git host); each alert links its runbook there."
  type        = string
  default     = "docs/runbooks"
}
