variable "name" {
  description = "Name prefix, e.g. holdfast-prod."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name must be 3-31 lowercase letters, digits or dashes."
  }
}

variable "kms_key_arn" {
  description = "Key for the workspace and its logs."
  type        = string
}
