# The schema registry's PostgreSQL storage (modules/schema-registry): database
# holdfast_registry on shard 0's cluster, role holdfast_registry with this password, both
# created by the deploy bootstrap (docs/operations/runbooks/deploy.md).
resource "random_password" "schema_registry" {
  length  = 40
  special = false
}

module "schema_registry" {
  source            = "../../modules/schema-registry"
  name              = local.name
  kms_key_arn       = module.security.kms_key_arn
  oidc_provider_arn = module.kubernetes.oidc_provider_arn
  oidc_provider     = module.kubernetes.oidc_provider
  database_host     = module.databases.writer_endpoints[0]
  password          = random_password.schema_registry.result
}
