output "kms_key_arn" {
  description = "The environment's customer-managed key."
  value       = aws_kms_key.this.arn
}

output "secret_arns" {
  description = "Secrets Manager secret of each service (command-service, projection-workers, query-service)."
  value       = { for key, secret in aws_secretsmanager_secret.service : key => secret.arn }
}

output "external_secrets_role_arn" {
  description = "IRSA role of the holdfast-external-secrets service account."
  value       = aws_iam_role.external_secrets.arn
}
