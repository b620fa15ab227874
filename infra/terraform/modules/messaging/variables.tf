variable "name" {
  description = "Cluster name, e.g. holdfast-prod."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes."
  }
}

variable "vpc_id" {
  description = "VPC of the brokers."
  type        = string
}

variable "subnet_ids" {
  description = "Data subnets, one per availability zone."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) == 3
    error_message = "MSK spans exactly three availability zones."
  }
}

variable "client_security_group_id" {
  description = "Security group of the EKS nodes, the only clients."
  type        = string
}

variable "kms_key_arn" {
  description = "Key for encryption at rest, the SCRAM secrets and broker logs."
  type        = string
}

variable "kafka_version" {
  description = "MSK Kafka version (KRaft)."
  type        = string
  default     = "3.9.x"
}

variable "brokers" {
  description = "Broker count: a multiple of the 3 zones that divides the partition count. Production: 15."
  type        = number
  validation {
    condition     = var.brokers >= 3 && var.brokers % 3 == 0
    error_message = "brokers must be a multiple of 3 (one per zone) and at least 3."
  }
}

variable "partitions" {
  description = "Partitions of the co-partitioned commands/events topics (HOLDFAST_PARTITIONS)."
  type        = number
  default     = 480
  validation {
    condition     = var.partitions >= 400 && var.partitions % 15 == 0
    error_message = "partitions must be at least 400 and divisible by 15 brokers."
  }
}

variable "broker_instance_type" {
  description = "Broker instance type."
  type        = string
  validation {
    condition     = startswith(var.broker_instance_type, "kafka.")
    error_message = "broker_instance_type must be an MSK type (kafka.*)."
  }
}

variable "broker_volume_gib" {
  description = "EBS volume per broker in GiB (events are kept forever)."
  type        = number
  validation {
    condition     = var.broker_volume_gib >= 100 && var.broker_volume_gib <= 16384
    error_message = "broker_volume_gib must be 100-16384."
  }
}

variable "scram_passwords" {
  description = "Password of each SCRAM user, by user name: one user per service (holdfast-command, holdfast-projection)."
  type        = map(string)
  sensitive   = true
  validation {
    condition     = length(var.scram_passwords) > 0 && alltrue([for user, password in var.scram_passwords : can(regex("^holdfast-[a-z]+$", user)) && length(password) >= 24])
    error_message = "scram_passwords needs at least one user named holdfast-<service>, each with a password of at least 24 characters."
  }
}

variable "replicate_from" {
  description = "Primary-region cluster to replicate from (standby region only); null in the primary."
  type = object({
    cluster_arn       = string
    subnet_ids        = list(string)
    security_group_id = string
  })
  default = null
}

variable "alarm_topic_arns" {
  description = "SNS topics notified by the replication-lag alarm."
  type        = list(string)
  default     = []
}
