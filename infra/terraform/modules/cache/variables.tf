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

variable "passwords" {
  description = "Password of each service's ACL user: holdfast-projection and holdfast-query (16-128 characters)."
  type        = map(string)
  sensitive   = true
  validation {
    condition     = toset(nonsensitive(keys(var.passwords))) == toset(["holdfast-projection", "holdfast-query"]) && alltrue([for password in values(var.passwords) : length(password) >= 16 && length(password) <= 128])
    error_message = "passwords must hold holdfast-projection and holdfast-query, each 16-128 characters."
  }
}

variable "key_prefix" {
  description = "Prefix of every key the services write (HOLDFAST_REDIS_KEY_PREFIX): the users may touch no other key."
  type        = string
  default     = "hf:"
  validation {
    condition     = can(regex("^[a-z0-9:._-]+$", var.key_prefix))
    error_message = "key_prefix must be letters, digits, ':', '.', '_' or '-' (no glob characters)."
  }
}
