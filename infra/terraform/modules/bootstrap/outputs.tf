output "role_arn" {
  description = "IRSA role of the holdfast-bootstrap service account (overlay patch)."
  value       = aws_iam_role.this.arn
}
