variable "name" {
  description = "Name prefix, e.g. holdfast-prod."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the Holdfast services (the IRSA trust is scoped to it)."
  type        = string
  validation {
    condition     = can(regex("^holdfast-(dev|staging|prod)$", var.namespace))
    error_message = "namespace must be holdfast-dev, holdfast-staging or holdfast-prod."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_provider" {
  description = "The OIDC provider's host and path (issuer URL without https://)."
  type        = string
}

variable "kms_key_arn" {
  description = "The environment's key, which encrypts every secret the bootstrap reads."
  type        = string
}

variable "kafka_cluster_arn" {
  description = "The MSK cluster whose topics and ACLs the bootstrap makes."
  type        = string
}

variable "database_cluster_arns" {
  description = "The Aurora clusters (read-model shards) whose roles the bootstrap makes."
  type        = list(string)
  validation {
    condition     = length(var.database_cluster_arns) > 0
    error_message = "database_cluster_arns must name at least one cluster."
  }
}

variable "database_admin_secret_arns" {
  description = "The shards' master-user secrets (RDS-managed); empty where the shards are read-only secondaries."
  type        = list(string)
}

variable "service_secret_arns" {
  description = "The services' secrets holding the PostgreSQL role passwords (holdfast/projection-workers, holdfast/query-service)."
  type        = list(string)
  validation {
    condition     = length(var.service_secret_arns) > 0
    error_message = "service_secret_arns must name the secrets that hold the role passwords."
  }
}
