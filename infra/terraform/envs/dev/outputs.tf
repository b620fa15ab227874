# k8s_config_env is the overlay's infra.env: `tofu output -raw k8s_config_env >
# ../../../k8s/overlays/dev/infra.env` (the same keys are checked by infra/validate).
output "k8s_config_env" {
  description = "HOLDFAST_* settings of the holdfast-infra ConfigMap of the dev overlay."
  value = join("", [
    "HOLDFAST_KAFKA_BROKERS=${module.messaging.bootstrap_brokers}\n",
    "HOLDFAST_SCHEMA_REGISTRY_URL=http://apicurio-registry.schema-registry.svc.cluster.local:8080/apis/ccompat/v7\n",
  ])
}

output "external_secrets_role_arn" {
  description = "Role ARN for the holdfast-external-secrets service account (overlay patch)."
  value       = module.security.external_secrets_role_arn
}

output "sizes" {
  description = "What was built, for the capacity review."
  value = {
    kafka_brokers     = module.messaging.broker_count
    kafka_partitions  = module.messaging.partitions
    redis_nodes       = module.cache.node_count
    postgres_shards   = 1
    postgres_replicas = module.databases.instance_count - 1
  }
}

output "prometheus_remote_write_url" {
  description = "Remote-write endpoint for the in-cluster Prometheus."
  value       = module.monitoring.prometheus_remote_write_url
}

output "grafana_endpoint" {
  description = "Managed Grafana URL."
  value       = module.monitoring.grafana_endpoint
}

output "schema_registry_external_secrets_role_arn" {
  description = "Role ARN for the schema-registry-external-secrets service account (infra/k8s/schema-registry overlay patch)."
  value       = module.schema_registry.external_secrets_role_arn
}
