variable "region" {
  description = "AWS region of the environment."
  type        = string
  default     = "eu-west-1"
  validation {
    condition     = can(regex("^[a-z]{2}-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like eu-west-1."
  }
}

variable "cost_center" {
  description = "Cost-center tag on every resource."
  type        = string
  default     = "holdfast-prod"
  validation {
    condition     = length(var.cost_center) > 0
    error_message = "cost_center must not be empty."
  }
}

variable "standby_region" {
  description = "Region of the disaster-recovery standby."
  type        = string
  default     = "eu-central-1"
  validation {
    condition     = can(regex("^[a-z]{2}-[a-z]+-[0-9]$", var.standby_region)) && var.standby_region != var.region
    error_message = "standby_region must be a region other than region."
  }
}
