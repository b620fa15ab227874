variable "name" {
  description = "Replication group id, e.g. holdfast-prod."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes."
  }
}

variable "vpc_id" {
  description = "VPC of the cache."
  type        = string
}

variable "subnet_ids" {
  description = "Data subnets, one per availability zone."
  type        = list(string)
}

variable "client_security_group_id" {
  description = "Security group of the EKS nodes, the only clients."
  type        = string
}

variable "kms_key_arn" {
  description = "Key for encryption at rest."
  type        = string
}

variable "node_type" {
  description = "Cache node type."
  type        = string
  validation {
    condition     = startswith(var.node_type, "cache.")
    error_message = "node_type must be an ElastiCache node type (cache.*)."
  }
}

variable "shards" {
  description = "Node groups (shards). Production: 7 x (1 primary + 2 replicas) = 21 nodes."
  type        = number
  validation {
    condition     = var.shards >= 1 && var.shards <= 500
    error_message = "shards must be 1-500."
  }
}

variable "replicas_per_shard" {
  description = "Replicas per shard (at least 1 for automatic failover)."
  type        = number
  validation {
    condition     = var.replicas_per_shard >= 1 && var.replicas_per_shard <= 5
    error_message = "replicas_per_shard must be 1-5."
  }
}

variable "auth_token" {
  description = "Redis AUTH token (16-128 characters)."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.auth_token) >= 16 && length(var.auth_token) <= 128
    error_message = "auth_token must be 16-128 characters."
  }
}
