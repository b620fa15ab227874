output "secret_arn" {
  description = "The registry's database credentials (holdfast/schema-registry)."
  value       = aws_secretsmanager_secret.this.arn
}

output "external_secrets_role_arn" {
  description = "IRSA role of the schema-registry-external-secrets service account."
  value       = aws_iam_role.external_secrets.arn
}
