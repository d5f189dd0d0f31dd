variable "project_id" {
  description = "The Google Cloud project that holds this environment (one project per environment)."
  type        = string
}

variable "region" {
  description = "Region of the functions, the source bucket and the Firestore database."
  type        = string
  default     = "europe-west1"
}

variable "environment" {
  description = "Environment name, used as a label: dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

variable "topic_name" {
  description = "Pub/Sub topic that receives tasks; the DLQ topic and the subscriptions are named after it."
  type        = string
  default     = "atlas-tasks"
}

variable "tasks_collection" {
  description = "Firestore collection that holds the task documents (ATLAS_TASKS_COLLECTION)."
  type        = string
  default     = "tasks"
}

variable "knowledge_collection" {
  description = "Qdrant collection that holds the knowledge base (ATLAS_KNOWLEDGE_COLLECTION)."
  type        = string
  default     = "atlas-knowledge"
}

variable "worker_bundle" {
  description = "Path to the worker source zip built by the packaging script (relative to this directory)."
  type        = string
  default     = "../dist/worker.zip"
}

variable "retrieval_bundle" {
  description = "Path to the retrieval source zip (code and embedding model) built by the packaging script (relative to this directory)."
  type        = string
  default     = "../dist/retrieval.zip"
}

variable "llm_chain" {
  description = "ATLAS_LLM_CHAIN as a JSON list of providers; \"[]\" leaves it unset, so the code's default chain applies."
  type        = string
  default     = "[]"

  validation {
    condition     = can(jsondecode(var.llm_chain)) && startswith(trimspace(var.llm_chain), "[")
    error_message = "llm_chain must be a JSON list, e.g. \"[]\"."
  }
}

variable "qdrant_url" {
  description = "Managed Qdrant URL (ATLAS_QDRANT_URL); empty means the embedded, per-instance store in /tmp/qdrant."
  type        = string
  default     = ""
}
