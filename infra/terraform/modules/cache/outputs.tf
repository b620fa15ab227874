output "configuration_endpoint" {
  description = "Cluster-mode configuration endpoint (seed for HOLDFAST_REDIS_URLS)."
  value       = aws_elasticache_replication_group.this.configuration_endpoint_address
}

output "node_count" {
  description = "Primaries plus replicas."
  value       = var.shards * (1 + var.replicas_per_shard)
}
