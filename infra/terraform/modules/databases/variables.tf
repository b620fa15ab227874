variable "name" {
  description = "Name prefix, e.g. holdfast-prod."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes."
  }
}

variable "vpc_id" {
  description = "VPC of the clusters."
  type        = string
}

variable "subnet_ids" {
  description = "Data subnets, one per availability zone."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "The shards span exactly three availability zones."
  }
}

variable "client_security_group_id" {
  description = "Security group of the EKS nodes, the only clients."
  type        = string
}

variable "kms_key_arn" {
  description = "Key for storage, Performance Insights and the managed master password."
  type        = string
}

variable "shards" {
  description = "Aurora clusters (read-model shards): partition p lives on shard p mod shards. Production: 4."
  type        = number
  validation {
    condition     = var.shards >= 1 && var.shards <= 16 && 480 % var.shards == 0
    error_message = "shards must be 1-16 and divide the 480 partitions evenly."
  }
}

variable "replicas_per_shard" {
  description = "Aurora readers per shard (production: 5, so 4 primaries + 20 replicas)."
  type        = number
  validation {
    condition     = var.replicas_per_shard >= 1 && var.replicas_per_shard <= 15
    error_message = "Aurora allows 1-15 readers; at least one keeps failover fast."
  }
}

variable "instance_class" {
  description = "Instance class of writers and readers."
  type        = string
  validation {
    condition     = can(regex("^db\\.(r6g|r7g|r6i|r7i|t4g)\\.", var.instance_class))
    error_message = "Use a memory-optimised Graviton/Intel class (or t4g for dev)."
  }
}

variable "backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery."
  type        = number
  default     = 14
  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be 7-35."
  }
}

variable "global_cluster_ids" {
  description = "Aurora global cluster of each shard (empty: no cross-region replication)."
  type        = list(string)
  default     = []
}

variable "secondary" {
  description = "The clusters are read-only secondaries of the global clusters (standby region)."
  type        = bool
  default     = false
  validation {
    condition     = !var.secondary || length(var.global_cluster_ids) > 0
    error_message = "A secondary region needs global_cluster_ids."
  }
}
