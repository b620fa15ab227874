output "configuration_endpoint" {
  description = "Cluster-mode configuration endpoint (seed for HOLDFAST_REDIS_URLS)."
  value       = aws_elasticache_replication_group.this.configuration_endpoint_address
}

output "node_count" {
  description = "Primaries plus replicas."
  value       = var.shards * (1 + var.replicas_per_shard)
}

output "user_group_id" {
  description = "The RBAC user group of the replication group."
  value       = aws_elasticache_user_group.this.user_group_id
}

output "user_names" {
  description = "The services' ACL users (user names in HOLDFAST_REDIS_URLS)."
  value       = sort(keys(local.access_strings))
}
