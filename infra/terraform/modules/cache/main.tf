# ElastiCache Redis in cluster mode (the services set HOLDFAST_REDIS_CLUSTER=true): shards of
# one primary and `replicas_per_shard` replicas over three zones, TLS in transit, KMS at rest,
# noeviction (a single evicted hash would not be refilled). Clients sign in as ACL users of a
# user group (RBAC), one user per service, each limited to the keys under `key_prefix`:
#   holdfast-projection  reads and writes keys, runs its scripts and transactions, publishes
#   holdfast-query       reads keys and subscribes to the live-update channels
# Neither may run administrative or dangerous commands (CONFIG, FLUSHALL, KEYS, ...); both may
# read the cluster's slot map (CLUSTER SLOTS), which a cluster-mode client needs. The user
# `default`, which every user group must hold, is switched off.

locals {
  access_strings = {
    "holdfast-projection" = "on ~${var.key_prefix}* &* +@read +@write +@keyspace +@hash +@string +@pubsub +@transaction +@scripting +@connection +cluster|slots -@dangerous"
    "holdfast-query"      = "on ~${var.key_prefix}* &* +@read +@connection +subscribe +psubscribe +unsubscribe +punsubscribe +cluster|slots -@dangerous"
  }
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "this" {
  name        = "${var.name}-redis"
  description = "ElastiCache Redis of ${var.name}: reachable from the EKS nodes only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "from_eks" {
  security_group_id            = aws_security_group.this.id
  description                  = "Redis (TLS, ACL users) from the EKS nodes (query-service, projection-workers)"
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_elasticache_parameter_group" "this" {
  name   = var.name
  family = "redis7"
  parameter {
    name  = "cluster-enabled"
    value = "yes"
  }
  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id       = var.name
  description                = "Holdfast availability cache, watermarks and live updates"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.node_type
  num_node_groups            = var.shards
  replicas_per_node_group    = var.replicas_per_shard
  parameter_group_name       = aws_elasticache_parameter_group.this.name
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.this.id]
  automatic_failover_enabled = true
  multi_az_enabled           = true
  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  user_group_ids             = [aws_elasticache_user_group.this.user_group_id]
  snapshot_retention_limit   = 7
  auto_minor_version_upgrade = true
  apply_immediately          = false
}

# Off: no client may sign in without a user name of its own.
resource "random_password" "default_user" {
  length  = 64
  special = false
}

resource "aws_elasticache_user" "default" {
  user_id       = "${var.name}-default"
  user_name     = "default"
  engine        = "REDIS"
  access_string = "off -@all"
  authentication_mode {
    type      = "password"
    passwords = [random_password.default_user.result]
  }
}

resource "aws_elasticache_user" "service" {
  for_each      = local.access_strings
  user_id       = "${var.name}-${trimprefix(each.key, "holdfast-")}"
  user_name     = each.key
  engine        = "REDIS"
  access_string = each.value
  authentication_mode {
    type      = "password"
    passwords = [var.passwords[each.key]]
  }
}

resource "aws_elasticache_user_group" "this" {
  user_group_id = var.name
  engine        = "REDIS"
  user_ids      = concat([aws_elasticache_user.default.user_id], [for user in sort(keys(local.access_strings)) : aws_elasticache_user.service[user].user_id])
}
