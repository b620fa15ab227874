# PostgreSQL read-model shards: one Aurora PostgreSQL cluster per shard (partition p lives on
# shard p mod shards), each with a writer and `replicas_per_shard` readers spread over the
# zones. Encrypted at rest with the environment key; TLS is forced (rds.force_ssl).
# With `global_cluster_ids`, every shard is a member of an Aurora Global Database: the primary
# region's clusters own the writers, a `secondary` region's clusters replicate storage (< 1 s)
# and are promoted on failover (docs/operations/disaster-recovery.md).

resource "aws_db_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "this" {
  name        = "${var.name}-postgres"
  description = "Aurora PostgreSQL shards of ${var.name}: reachable from the EKS nodes only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "from_eks" {
  security_group_id            = aws_security_group.this.id
  description                  = "PostgreSQL from the EKS nodes (query-service, projection-workers)"
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_rds_cluster_parameter_group" "this" {
  name   = var.name
  family = "aurora-postgresql16"
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "250"
  }
}

resource "aws_rds_cluster" "shard" {
  # checkov:skip=CKV2_AWS_8:Aurora's continuous backups (point-in-time recovery for backup_retention_days) and the DR snapshot copies of docs/operations/disaster-recovery.md cover what an AWS Backup plan would.
  # checkov:skip=CKV2_AWS_27:Statement logging of every query is unaffordable at this write rate; log_min_duration_statement logs the slow ones.
  count                               = var.shards
  cluster_identifier                  = "${var.name}-shard-${count.index}"
  engine                              = "aurora-postgresql"
  engine_version                      = "16.6"
  global_cluster_identifier           = length(var.global_cluster_ids) > 0 ? var.global_cluster_ids[count.index] : null
  database_name                       = var.secondary ? null : "holdfast"
  master_username                     = var.secondary ? null : "holdfast_admin"
  manage_master_user_password         = var.secondary ? null : true
  master_user_secret_kms_key_id       = var.secondary ? null : var.kms_key_arn
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.this.id]
  db_cluster_parameter_group_name     = aws_rds_cluster_parameter_group.this.name
  storage_encrypted                   = true
  kms_key_id                          = var.kms_key_arn
  iam_database_authentication_enabled = true
  backup_retention_period             = var.backup_retention_days
  preferred_backup_window             = "02:00-03:00"
  copy_tags_to_snapshot               = true
  deletion_protection                 = true
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.name}-shard-${count.index}-final"
  enabled_cloudwatch_logs_exports     = ["postgresql"]
}

resource "aws_iam_role" "monitoring" {
  name = "${var.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "monitoring.rds.amazonaws.com" }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

locals {
  # Instance 0 of every shard is its writer; the rest are readers.
  instances = flatten([
    for shard in range(var.shards) : [
      for index in range(var.replicas_per_shard + 1) : { shard = shard, index = index }
    ]
  ])
}

resource "aws_rds_cluster_instance" "this" {
  for_each                              = { for instance in local.instances : "${instance.shard}-${instance.index}" => instance }
  identifier                            = "${var.name}-shard-${each.value.shard}-${each.value.index}"
  cluster_identifier                    = aws_rds_cluster.shard[each.value.shard].id
  engine                                = aws_rds_cluster.shard[each.value.shard].engine
  engine_version                        = aws_rds_cluster.shard[each.value.shard].engine_version
  instance_class                        = var.instance_class
  promotion_tier                        = each.value.index == 0 ? 0 : 1
  auto_minor_version_upgrade            = true
  publicly_accessible                   = false
  monitoring_interval                   = 15
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
}
