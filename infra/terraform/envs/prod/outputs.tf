# k8s_config_env is the overlay's infra.env: `tofu output -raw k8s_config_env >
# ../../../k8s/overlays/prod/infra.env` (the same keys are checked by infra/validate).
locals {
  # PostgreSQL over TLS with the server verified against the RDS certificate authorities that
  # the query-service and projection-workers images carry (infra/docker/*.Dockerfile).
  postgres_tls = "sslmode=verify-full&sslrootcert=/etc/holdfast/rds/global-bundle.pem"
}

# The endpoints with each service's own user name; no password (the pods read theirs from files).
output "k8s_config_env" {
  description = "Settings of the holdfast-infra ConfigMap of the prod overlay: brokers, registry, and each service's PostgreSQL and Redis URLs."
  value = join("", [
    "HOLDFAST_KAFKA_BROKERS=${module.messaging.bootstrap_brokers}\n",
    "HOLDFAST_SCHEMA_REGISTRY_URL=http://apicurio-registry.schema-registry.svc.cluster.local:8080/apis/ccompat/v7\n",
    "PROJECTION_POSTGRES_URLS=${join(",", [for host in module.databases.writer_endpoints : "postgres://holdfast_projection@${host}:5432/holdfast?${local.postgres_tls}"])}\n",
    "QUERY_POSTGRES_URLS=${join(",", [for host in module.databases.reader_endpoints : "postgres://holdfast_query@${host}:5432/holdfast?${local.postgres_tls}"])}\n",
    "PROJECTION_REDIS_URLS=rediss://holdfast-projection@${module.cache.configuration_endpoint}:6379\n",
    "QUERY_REDIS_URLS=rediss://holdfast-query@${module.cache.configuration_endpoint}:6379\n",
  ])
}

output "bootstrap_role_arn" {
  description = "Role ARN for the holdfast-bootstrap service account (overlay patch)."
  value       = module.bootstrap.role_arn
}

output "service_secret_arns" {
  description = "Each service's Secrets Manager secret (its passwords), by service."
  value       = module.security.secret_arns
}

output "kafka_scram_secret_arns" {
  description = "The AmazonMSK_ secret of each Kafka SCRAM user, by user name."
  value       = module.messaging.scram_secret_arns
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
    postgres_shards   = 4
    postgres_replicas = module.databases.instance_count - 4
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

output "standby_k8s_config_env" {
  description = "Settings of the holdfast-infra ConfigMap in the standby region's cluster."
  value = join("", [
    "HOLDFAST_KAFKA_BROKERS=${module.standby_messaging.bootstrap_brokers}\n",
    "HOLDFAST_SCHEMA_REGISTRY_URL=http://apicurio-registry.schema-registry.svc.cluster.local:8080/apis/ccompat/v7\n",
    "PROJECTION_POSTGRES_URLS=${join(",", [for host in module.standby_databases.writer_endpoints : "postgres://holdfast_projection@${host}:5432/holdfast?${local.postgres_tls}"])}\n",
    "QUERY_POSTGRES_URLS=${join(",", [for host in module.standby_databases.reader_endpoints : "postgres://holdfast_query@${host}:5432/holdfast?${local.postgres_tls}"])}\n",
    "PROJECTION_REDIS_URLS=rediss://holdfast-projection@${module.standby_cache.configuration_endpoint}:6379\n",
    "QUERY_REDIS_URLS=rediss://holdfast-query@${module.standby_cache.configuration_endpoint}:6379\n",
  ])
}

output "standby_bootstrap_role_arn" {
  description = "Role ARN for the holdfast-bootstrap service account in the standby region's cluster."
  value       = module.standby_bootstrap.role_arn
}

output "schema_registry_external_secrets_role_arn" {
  description = "Role ARN for the schema-registry-external-secrets service account (infra/k8s/schema-registry overlay patch)."
  value       = module.schema_registry.external_secrets_role_arn
}

output "standby_schema_registry_external_secrets_role_arn" {
  description = "Role ARN for the schema-registry-external-secrets service account in the standby region's cluster."
  value       = module.standby_schema_registry.external_secrets_role_arn
}
