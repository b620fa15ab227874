variable "name" {
  description = "Name prefix, e.g. holdfast-prod."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes."
  }
}

variable "kms_key_arn" {
  description = "The environment's key: encrypts the secret."
  type        = string
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_provider" {
  description = "The OIDC provider's host and path (issuer URL without https://)."
  type        = string
}

variable "database_host" {
  description = "Writer endpoint of the cluster that holds the holdfast_registry database."
  type        = string
}

variable "password" {
  description = "Password of the holdfast_registry role (the deploy bootstrap sets it on the role)."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.password) >= 32
    error_message = "password must be at least 32 characters."
  }
}
