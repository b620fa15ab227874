# prod: composes the modules. Production sizing from the brief: Kafka 15 brokers, Redis 21 nodes (7 shards x 3),
# PostgreSQL 4 primaries + 20 replicas (4 Aurora clusters x (1 writer + 5 readers)).
#
#   tofu init -backend-config=... && tofu plan   (credentials for account 333333333333)

terraform {
  required_version = ">= 1.10.0"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # Remote state: versioned, KMS-encrypted S3 bucket of the account, S3-native locking.
  backend "s3" {
    bucket       = "holdfast-prod-terraform-state"
    key          = "holdfast/prod/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    kms_key_id   = "alias/holdfast-prod-terraform-state"
    use_lockfile = true
  }
}

# The standby region of the disaster-recovery plan (docs/operations/disaster-recovery.md):
# Kafka replicated by MSK Replicator, PostgreSQL by Aurora Global Database, a warm EKS cluster.
provider "aws" {
  alias               = "standby"
  region              = var.standby_region
  allowed_account_ids = ["333333333333"]
  default_tags {
    tags = {
      project     = "holdfast"
      environment = "prod"
      role        = "standby"
      managed-by  = "terraform"
      repository  = "holdfast/infra/terraform/envs/prod"
      cost-center = var.cost_center
    }
  }
}

provider "aws" {
  region              = var.region
  allowed_account_ids = ["333333333333"]
  default_tags {
    tags = {
      project     = "holdfast"
      environment = "prod"
      managed-by  = "terraform"
      repository  = "holdfast/infra/terraform/envs/prod"
      cost-center = var.cost_center
    }
  }
}

locals {
  name      = "holdfast-prod"
  namespace = "holdfast-prod"
  # Must equal HOLDFAST_PARTITIONS in infra/k8s/base/config/*.env (checked by infra/validate).
  partitions = 480
  # One credential per service and store, named as in the manifests (checked by infra/validate):
  # Kafka SCRAM users, Redis ACL users, PostgreSQL roles. The query service uses no Kafka, the
  # command service no PostgreSQL or Redis.
  kafka_users    = ["holdfast-command", "holdfast-projection"]
  redis_users    = ["holdfast-projection", "holdfast-query"]
  postgres_roles = ["holdfast_projection", "holdfast_query"]
}

module "security" {
  source            = "../../modules/security"
  name              = local.name
  namespace         = local.namespace
  oidc_provider_arn = module.kubernetes.oidc_provider_arn
  oidc_provider     = module.kubernetes.oidc_provider
}

module "networking" {
  source             = "../../modules/networking"
  name               = local.name
  availability_zones = ["${var.region}a", "${var.region}b", "${var.region}c"]
  cidr_block         = "10.30.0.0/16"
  kms_key_arn        = module.security.kms_key_arn
}

module "kubernetes" {
  source      = "../../modules/kubernetes"
  name        = local.name
  subnet_ids  = module.networking.private_subnet_ids
  kms_key_arn = module.security.kms_key_arn
  node_groups = {
    command    = { instance_types = ["c7i.4xlarge"], min_size = 100, max_size = 210 }
    query      = { instance_types = ["m7i.2xlarge"], min_size = 50, max_size = 105 }
    projection = { instance_types = ["m7i.2xlarge"], min_size = 50, max_size = 155 }
    system     = { instance_types = ["m7i.xlarge"], min_size = 3, max_size = 12 }
  }
}

module "messaging" {
  source                   = "../../modules/messaging"
  name                     = local.name
  vpc_id                   = module.networking.vpc_id
  subnet_ids               = module.networking.data_subnet_ids
  client_security_group_id = module.kubernetes.cluster_security_group_id
  kms_key_arn              = module.security.kms_key_arn
  brokers                  = 15
  partitions               = local.partitions
  broker_instance_type     = "kafka.m7g.4xlarge"
  broker_volume_gib        = 4000
  scram_passwords          = { for user, password in random_password.kafka : user => password.result }
}

# One global cluster per shard: the primary region's shard clusters join it as writers.
resource "aws_rds_global_cluster" "shard" {
  count                     = 4
  global_cluster_identifier = "${local.name}-shard-${count.index}"
  engine                    = "aurora-postgresql"
  engine_version            = "16.6"
  storage_encrypted         = true
  deletion_protection       = true
}

module "databases" {
  source                   = "../../modules/databases"
  name                     = local.name
  global_cluster_ids       = aws_rds_global_cluster.shard[*].id
  vpc_id                   = module.networking.vpc_id
  subnet_ids               = module.networking.data_subnet_ids
  client_security_group_id = module.kubernetes.cluster_security_group_id
  kms_key_arn              = module.security.kms_key_arn
  shards                   = 4
  replicas_per_shard       = 5
  instance_class           = "db.r7g.4xlarge"
}

module "cache" {
  source                   = "../../modules/cache"
  name                     = local.name
  vpc_id                   = module.networking.vpc_id
  subnet_ids               = module.networking.data_subnet_ids
  client_security_group_id = module.kubernetes.cluster_security_group_id
  kms_key_arn              = module.security.kms_key_arn
  node_type                = "cache.r7g.2xlarge"
  shards                   = 7
  replicas_per_shard       = 2
  passwords                = { for user, password in random_password.redis : user => password.result }
}

module "monitoring" {
  source      = "../../modules/monitoring"
  name        = local.name
  kms_key_arn = module.security.kms_key_arn
}

resource "random_password" "kafka" {
  for_each = toset(local.kafka_users)
  length   = 40
  special  = false
}

resource "random_password" "redis" {
  for_each = toset(local.redis_users)
  length   = 64
  special  = false
}

# The service roles' passwords; the roles themselves are made (and these passwords set) on every
# shard by the deploy bootstrap (infra/k8s/base/bootstrap), since Terraform cannot reach the
# private clusters.
resource "random_password" "postgres" {
  for_each = toset(local.postgres_roles)
  length   = 40
  special  = false
}

# What each service's pods read through External Secrets (infra/k8s/base/*/external-secret.yaml),
# mounted as files: the passwords of its own credentials and no one else's.
# The key command-service instances sign the commands they hand to each other with.
resource "random_password" "peer" {
  length  = 64
  special = false
}

resource "aws_secretsmanager_secret_version" "command_service" {
  secret_id = module.security.secret_arns["command-service"]
  secret_string = jsonencode({
    kafka_password = random_password.kafka["holdfast-command"].result
    peer_secret    = random_password.peer.result
  })
}

resource "aws_secretsmanager_secret_version" "projection_workers" {
  secret_id = module.security.secret_arns["projection-workers"]
  secret_string = jsonencode({
    kafka_password    = random_password.kafka["holdfast-projection"].result
    postgres_password = random_password.postgres["holdfast_projection"].result
    redis_password    = random_password.redis["holdfast-projection"].result
  })
}

resource "aws_secretsmanager_secret_version" "query_service" {
  secret_id = module.security.secret_arns["query-service"]
  secret_string = jsonencode({
    postgres_password = random_password.postgres["holdfast_query"].result
    redis_password    = random_password.redis["holdfast-query"].result
  })
}

module "bootstrap" {
  source                     = "../../modules/bootstrap"
  name                       = local.name
  namespace                  = local.namespace
  oidc_provider_arn          = module.kubernetes.oidc_provider_arn
  oidc_provider              = module.kubernetes.oidc_provider
  kms_key_arn                = module.security.kms_key_arn
  kafka_cluster_arn          = module.messaging.cluster_arn
  database_cluster_arns      = module.databases.cluster_arns
  database_admin_secret_arns = module.databases.admin_secret_arns
  service_secret_arns        = [module.security.secret_arns["projection-workers"], module.security.secret_arns["query-service"]]
}

# ---------------------------------------------------------------- standby region

module "standby_security" {
  source            = "../../modules/security"
  providers         = { aws = aws.standby }
  name              = "${local.name}-standby"
  namespace         = local.namespace
  oidc_provider_arn = module.standby_kubernetes.oidc_provider_arn
  oidc_provider     = module.standby_kubernetes.oidc_provider
}

module "standby_networking" {
  source             = "../../modules/networking"
  providers          = { aws = aws.standby }
  name               = "${local.name}-standby"
  availability_zones = ["${var.standby_region}a", "${var.standby_region}b", "${var.standby_region}c"]
  cidr_block         = "10.31.0.0/16"
  kms_key_arn        = module.standby_security.kms_key_arn
}

# Warm: 10 % of the production node groups; the HPAs and cluster autoscaler grow it on failover.
module "standby_kubernetes" {
  source      = "../../modules/kubernetes"
  providers   = { aws = aws.standby }
  name        = "${local.name}-standby"
  subnet_ids  = module.standby_networking.private_subnet_ids
  kms_key_arn = module.standby_security.kms_key_arn
  node_groups = {
    command    = { instance_types = ["c7i.4xlarge"], min_size = 10, max_size = 210 }
    query      = { instance_types = ["m7i.2xlarge"], min_size = 5, max_size = 105 }
    projection = { instance_types = ["m7i.2xlarge"], min_size = 5, max_size = 155 }
    system     = { instance_types = ["m7i.xlarge"], min_size = 3, max_size = 12 }
  }
}

# Full size: brokers cannot be added fast enough during a failover.
module "standby_messaging" {
  source                   = "../../modules/messaging"
  providers                = { aws = aws.standby }
  name                     = "${local.name}-standby"
  vpc_id                   = module.standby_networking.vpc_id
  subnet_ids               = module.standby_networking.data_subnet_ids
  client_security_group_id = module.standby_kubernetes.cluster_security_group_id
  kms_key_arn              = module.standby_security.kms_key_arn
  brokers                  = 15
  partitions               = local.partitions
  broker_instance_type     = "kafka.m7g.4xlarge"
  broker_volume_gib        = 4000
  scram_passwords          = { for user, password in random_password.kafka : user => password.result }
  replicate_from = {
    cluster_arn       = module.messaging.cluster_arn
    subnet_ids        = module.messaging.subnet_ids
    security_group_id = module.messaging.security_group_id
  }
}

# Secondary of the global clusters: one reader per shard, more are added on failover.
module "standby_databases" {
  source                   = "../../modules/databases"
  providers                = { aws = aws.standby }
  name                     = "${local.name}-standby"
  vpc_id                   = module.standby_networking.vpc_id
  subnet_ids               = module.standby_networking.data_subnet_ids
  client_security_group_id = module.standby_kubernetes.cluster_security_group_id
  kms_key_arn              = module.standby_security.kms_key_arn
  shards                   = 4
  replicas_per_shard       = 1
  instance_class           = "db.r7g.4xlarge"
  global_cluster_ids       = aws_rds_global_cluster.shard[*].id
  secondary                = true
  depends_on               = [module.databases]
}

module "standby_cache" {
  source                   = "../../modules/cache"
  providers                = { aws = aws.standby }
  name                     = "${local.name}-standby"
  vpc_id                   = module.standby_networking.vpc_id
  subnet_ids               = module.standby_networking.data_subnet_ids
  client_security_group_id = module.standby_kubernetes.cluster_security_group_id
  kms_key_arn              = module.standby_security.kms_key_arn
  node_type                = "cache.r7g.2xlarge"
  shards                   = 7
  replicas_per_shard       = 2
  passwords                = { for user, password in random_password.redis : user => password.result }
}

# The same passwords in the standby region's secrets: its data stores hold the same users.
resource "aws_secretsmanager_secret_version" "standby_command_service" {
  provider      = aws.standby
  secret_id     = module.standby_security.secret_arns["command-service"]
  secret_string = aws_secretsmanager_secret_version.command_service.secret_string
}

resource "aws_secretsmanager_secret_version" "standby_projection_workers" {
  provider      = aws.standby
  secret_id     = module.standby_security.secret_arns["projection-workers"]
  secret_string = aws_secretsmanager_secret_version.projection_workers.secret_string
}

resource "aws_secretsmanager_secret_version" "standby_query_service" {
  provider      = aws.standby
  secret_id     = module.standby_security.secret_arns["query-service"]
  secret_string = aws_secretsmanager_secret_version.query_service.secret_string
}

# The roles replicate with the Aurora storage, so in the standby region the bootstrap finds no
# master secret (secondaries have none) and leaves PostgreSQL alone; it makes the standby
# cluster's topics (where the Replicator has not yet) and the services' ACLs.
module "standby_bootstrap" {
  source                     = "../../modules/bootstrap"
  providers                  = { aws = aws.standby }
  name                       = "${local.name}-standby"
  namespace                  = local.namespace
  oidc_provider_arn          = module.standby_kubernetes.oidc_provider_arn
  oidc_provider              = module.standby_kubernetes.oidc_provider
  kms_key_arn                = module.standby_security.kms_key_arn
  kafka_cluster_arn          = module.standby_messaging.cluster_arn
  database_cluster_arns      = module.standby_databases.cluster_arns
  database_admin_secret_arns = module.standby_databases.admin_secret_arns
  service_secret_arns        = [module.standby_security.secret_arns["projection-workers"], module.standby_security.secret_arns["query-service"]]
}
