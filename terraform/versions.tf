terraform {
  required_version = ">= 1.6"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
    }
    # Declared now, used by the Terraform issue (beta-only resources such as service identities).
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "~> 6.0"
    }
    # Declared now, used by the Terraform issue; the bundles are zipped by the packaging script today.
    archive = {
      source  = "hashicorp/archive"
      version = "~> 2.4"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}
