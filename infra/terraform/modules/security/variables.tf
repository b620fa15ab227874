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
