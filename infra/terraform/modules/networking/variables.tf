variable "name" {
  description = "Name prefix of every resource, e.g. holdfast-prod."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes."
  }
}

variable "cidr_block" {
  description = "VPC CIDR; a /16 inside 10.0.0.0/8 (the Kubernetes NetworkPolicies allow the data stores by that range)."
  type        = string
  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && endswith(var.cidr_block, "/16") && startswith(var.cidr_block, "10.")
    error_message = "cidr_block must be a /16 inside 10.0.0.0/8."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow-log group."
  type        = string
}

variable "availability_zones" {
  description = "The three availability zones, named explicitly so the set never changes under the VPC."
  type        = list(string)
  validation {
    condition     = length(var.availability_zones) == 3 && length(distinct(var.availability_zones)) == 3
    error_message = "availability_zones must name three distinct zones."
  }
}
