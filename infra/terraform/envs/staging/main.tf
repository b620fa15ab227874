# staging: composes the modules. Staging: 25 % of production, rounded to what each service allows: Kafka 3 brokers (a multiple
# of the 3 zones; 15 x 25 % = 3.75), Redis 6 nodes (2 shards x 3; 21 x 25 % = 5.25), PostgreSQL
# 1 primary + 5 replicas (4 + 20 at 25 %). Same instance types as production.
#
#   tofu init -backend-config=... && tofu plan   (credentials for account 222222222222)

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
    bucket       = "holdfast-staging-terraform-state"
    key          = "holdfast/staging/terraform.tfstate"
    region       = "eu-west-1"
    encrypt      = true
    kms_key_id   = "alias/holdfast-staging-terraform-state"
    use_lockfile = true
  }
}

provider "aws" {
  region              = var.region
  allowed_account_ids = ["222222222222"]
  default_tags {
    tags = {
      project     = "holdfast"
      environment = "staging"
      managed-by  = "terraform"
      repository  = "holdfast/infra/terraform/envs/staging"
      cost-center = var.cost_center
    }
  }
}

locals {
  name      = "holdfast-staging"
  namespace = "holdfast-staging"
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
  cidr_block         = "10.20.0.0/16"
  kms_key_arn        = module.security.kms_key_arn
}

module "kubernetes" {
  source      = "../../modules/kubernetes"
  name        = local.name
  subnet_ids  = module.networking.private_subnet_ids
  kms_key_arn = module.security.kms_key_arn
  node_groups = {
    command    = { instance_types = ["c7i.4xlarge"], min_size = 25, max_size = 53 }
    query      = { instance_types = ["m7i.2xlarge"], min_size = 13, max_size = 27 }
    projection = { instance_types = ["m7i.2xlarge"], min_size = 13, max_size = 39 }
    system     = { instance_types = ["m7i.xlarge"], min_size = 3, max_size = 6 }
  }
}

module "messaging" {
  source                   = "../../modules/messaging"
  name                     = local.name
  vpc_id                   = module.networking.vpc_id
  subnet_ids               = module.networking.data_subnet_ids
  client_security_group_id = module.kubernetes.cluster_security_group_id
  kms_key_arn              = module.security.kms_key_arn
  brokers                  = 3
  partitions               = local.partitions
  broker_instance_type     = "kafka.m7g.4xlarge"
  broker_volume_gib        = 1000
  scram_passwords          = { for user, password in random_password.kafka : user => password.result }
}

module "databases" {
  source                   = "../../modules/databases"
  name                     = local.name
  vpc_id                   = module.networking.vpc_id
  subnet_ids               = module.networking.data_subnet_ids
  client_security_group_id = module.kubernetes.cluster_security_group_id
  kms_key_arn              = module.security.kms_key_arn
  shards                   = 1
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
  shards                   = 2
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
