output "writer_endpoints" {
  description = "Writer endpoint of each shard, in shard order."
  value       = aws_rds_cluster.shard[*].endpoint
}

output "reader_endpoints" {
  description = "Reader (load-balanced) endpoint of each shard, in shard order."
  value       = aws_rds_cluster.shard[*].reader_endpoint
}

output "instance_count" {
  description = "Writers plus readers over all shards."
  value       = length(aws_rds_cluster_instance.this)
}

output "cluster_arns" {
  description = "ARN of each shard's cluster, in shard order."
  value       = aws_rds_cluster.shard[*].arn
}

output "admin_secret_arns" {
  description = "Secret of each shard's master user (RDS-managed, rotated by RDS), in shard order; empty for secondaries."
  value       = compact([for cluster in aws_rds_cluster.shard : try(cluster.master_user_secret[0].secret_arn, "")])
}
