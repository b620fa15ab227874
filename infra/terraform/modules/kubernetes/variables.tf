variable "name" {
  description = "Cluster name, e.g. holdfast-prod."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (the manifests are validated against 1.33)."
  type        = string
  default     = "1.33"
  validation {
    condition     = can(regex("^1\\.(3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be 1.30 or newer."
  }
}

variable "subnet_ids" {
  description = "Private subnets, one per availability zone."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "EKS spans exactly three availability zones."
  }
}

variable "kms_key_arn" {
  description = "Key for envelope encryption of Kubernetes secrets and the control-plane logs."
  type        = string
}

variable "node_groups" {
  description = "Managed node groups by workload class."
  type = map(object({
    instance_types = list(string)
    min_size       = number
    max_size       = number
  }))
  validation {
    condition     = alltrue([for group in values(var.node_groups) : group.min_size >= 1 && group.max_size >= group.min_size])
    error_message = "Every node group needs 1 <= min_size <= max_size."
  }
}
