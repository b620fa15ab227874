output "bootstrap_brokers" {
  description = "SASL/SCRAM over TLS bootstrap servers (HOLDFAST_KAFKA_BROKERS)."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_scram
}

output "scram_secret_arns" {
  description = "The AmazonMSK_ secret of each SCRAM user, by user name."
  value       = { for user, secret in aws_secretsmanager_secret.scram : user => secret.arn }
}

output "partitions" {
  description = "Partition count configured for the Holdfast topics (HOLDFAST_PARTITIONS)."
  value       = var.partitions
}

output "broker_count" {
  description = "Brokers."
  value       = aws_msk_cluster.this.number_of_broker_nodes
}

output "cluster_arn" {
  description = "The MSK cluster."
  value       = aws_msk_cluster.this.arn
}

output "security_group_id" {
  description = "Security group of the brokers."
  value       = aws_security_group.this.id
}

output "subnet_ids" {
  description = "Subnets of the brokers."
  value       = var.subnet_ids
}
