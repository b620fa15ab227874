# Amazon MSK: `brokers` brokers over three zones, SASL/SCRAM over TLS for the services (port
# 9096, one SCRAM user per service), IAM over TLS for the deploy bootstrap and MSK Replicator
# (port 9098), TLS between brokers, KMS at rest, broker logs to CloudWatch. The server
# properties carry the Holdfast topic layout: 480 partitions (co-partitioned commands/events
# topics, divisible by 15 brokers), replication 3 with min.insync.replicas 2, no auto-created
# topics, transaction state replicated like the data. A SCRAM user may do only what a Kafka ACL
# allows it (allow.everyone.if.no.acl.found=false); the ACLs and the topics are made by the
# deploy bootstrap (infra/k8s/base/bootstrap), which authenticates with IAM, where ACLs do not
# apply.

locals {
  # The user names only: the passwords stay sensitive.
  scram_users = toset(nonsensitive(keys(var.scram_passwords)))
  server_properties = {
    "auto.create.topics.enable"                = "false"
    "allow.everyone.if.no.acl.found"           = "false"
    "num.partitions"                           = tostring(var.partitions)
    "default.replication.factor"               = "3"
    "min.insync.replicas"                      = "2"
    "unclean.leader.election.enable"           = "false"
    "transaction.state.log.replication.factor" = "3"
    "transaction.state.log.min.isr"            = "2"
    "offsets.topic.replication.factor"         = "3"
    "transaction.max.timeout.ms"               = "900000"
    "group.initial.rebalance.delay.ms"         = "3000"
    "log.retention.hours"                      = "-1"
  }
}

resource "aws_security_group" "this" {
  name        = "${var.name}-kafka"
  description = "MSK brokers of ${var.name}: reachable from the EKS nodes only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "from_eks" {
  security_group_id            = aws_security_group.this.id
  description                  = "Kafka SASL/SCRAM over TLS from the EKS nodes (command-service, projection-workers)"
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 9096
  to_port                      = 9096
}

# The deploy bootstrap (topics, ACLs) signs in with IAM.
resource "aws_vpc_security_group_ingress_rule" "iam_from_eks" {
  security_group_id            = aws_security_group.this.id
  description                  = "Kafka IAM over TLS from the EKS nodes (deploy bootstrap: topics and ACLs)"
  referenced_security_group_id = var.client_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = 9098
  to_port                      = 9098
}

resource "aws_msk_configuration" "this" {
  name              = var.name
  kafka_versions    = [var.kafka_version]
  server_properties = join("\n", [for key in sort(keys(local.server_properties)) : "${key}=${local.server_properties[key]}"])
}

resource "aws_cloudwatch_log_group" "brokers" {
  name              = "/holdfast/${var.name}/msk"
  retention_in_days = 365
  kms_key_id        = var.kms_key_arn
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.brokers
  enhanced_monitoring    = "PER_TOPIC_PER_PARTITION"

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.this.id]
    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_gib
      }
    }
    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  client_authentication {
    unauthenticated = false
    sasl {
      # SCRAM for the services (librdkafka), IAM for MSK Replicator.
      scram = true
      iam   = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers.name
      }
    }
  }
}

# One SCRAM user per service (holdfast-command, holdfast-projection), each in a secret of its
# own: MSK requires the names to start with AmazonMSK_ and a customer-managed key.
resource "aws_secretsmanager_secret" "scram" {
  # checkov:skip=CKV2_AWS_57:MSK SCRAM secrets cannot use Secrets Manager rotation; the credential is rotated by replacing the secret version (docs/operations/runbooks/kafka-failure.md).
  for_each                = local.scram_users
  name                    = "AmazonMSK_${var.name}_${each.key}"
  description             = "${var.name}: SCRAM credentials of the Kafka user ${each.key}"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "scram" {
  for_each      = local.scram_users
  secret_id     = aws_secretsmanager_secret.scram[each.key].id
  secret_string = jsonencode({ username = each.key, password = var.scram_passwords[each.key] })
}

# The policy MSK attaches on association, held here so that plans show no drift.
data "aws_iam_policy_document" "scram" {
  # checkov:skip=CKV_AWS_108:The resource policy of the SCRAM secret itself: it lets the MSK service, and no one else, read that one secret, as SCRAM authentication requires.
  for_each = local.scram_users
  statement {
    sid       = "AWSKafkaResourcePolicy"
    actions   = ["secretsmanager:getSecretValue"]
    resources = [aws_secretsmanager_secret.scram[each.key].arn]
    principals {
      type        = "Service"
      identifiers = ["kafka.amazonaws.com"]
    }
  }
}

resource "aws_secretsmanager_secret_policy" "scram" {
  for_each   = local.scram_users
  secret_arn = aws_secretsmanager_secret.scram[each.key].arn
  policy     = data.aws_iam_policy_document.scram[each.key].json
}

resource "aws_msk_scram_secret_association" "this" {
  cluster_arn     = aws_msk_cluster.this.arn
  secret_arn_list = [for user in sort(tolist(local.scram_users)) : aws_secretsmanager_secret.scram[user].arn]
  depends_on      = [aws_secretsmanager_secret_version.scram]
}

# Cross-region replication into this cluster (standby region only): every reservations topic
# with identical names, partition counts and configurations, and the consumer groups' offsets.
data "aws_iam_policy_document" "replicator_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["kafka.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "replicator" {
  count = var.replicate_from == null ? 0 : 1
  statement {
    actions = [
      "kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:AlterCluster",
      "kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:AlterTopic",
      "kafka-cluster:WriteData", "kafka-cluster:ReadData", "kafka-cluster:AlterGroup",
      "kafka-cluster:DescribeGroup", "kafka-cluster:DescribeTopicDynamicConfiguration",
      "kafka-cluster:AlterTopicDynamicConfiguration", "kafka-cluster:WriteDataIdempotently",
    ]
    resources = [
      var.replicate_from.cluster_arn,
      aws_msk_cluster.this.arn,
      "${replace(var.replicate_from.cluster_arn, ":cluster/", ":topic/")}/*",
      "${replace(aws_msk_cluster.this.arn, ":cluster/", ":topic/")}/*",
      "${replace(var.replicate_from.cluster_arn, ":cluster/", ":group/")}/*",
      "${replace(aws_msk_cluster.this.arn, ":cluster/", ":group/")}/*",
    ]
  }
}

resource "aws_iam_role" "replicator" {
  count              = var.replicate_from == null ? 0 : 1
  name               = "${var.name}-msk-replicator"
  assume_role_policy = data.aws_iam_policy_document.replicator_assume.json
}

resource "aws_iam_role_policy" "replicator" {
  count  = var.replicate_from == null ? 0 : 1
  name   = "replicate-holdfast-topics"
  role   = aws_iam_role.replicator[0].id
  policy = data.aws_iam_policy_document.replicator[0].json
}

resource "aws_msk_replicator" "this" {
  count                      = var.replicate_from == null ? 0 : 1
  replicator_name            = "${var.name}-from-primary"
  description                = "Holdfast topics and consumer-group offsets from the primary region"
  service_execution_role_arn = aws_iam_role.replicator[0].arn

  kafka_cluster {
    amazon_msk_cluster {
      msk_cluster_arn = var.replicate_from.cluster_arn
    }
    vpc_config {
      subnet_ids          = var.replicate_from.subnet_ids
      security_groups_ids = [var.replicate_from.security_group_id]
    }
  }

  kafka_cluster {
    amazon_msk_cluster {
      msk_cluster_arn = aws_msk_cluster.this.arn
    }
    vpc_config {
      subnet_ids          = var.subnet_ids
      security_groups_ids = [aws_security_group.this.id]
    }
  }

  replication_info_list {
    source_kafka_cluster_arn = var.replicate_from.cluster_arn
    target_kafka_cluster_arn = aws_msk_cluster.this.arn
    target_compression_type  = "NONE"

    topic_replication {
      topics_to_replicate        = [".*reservations\\..*"]
      copy_topic_configurations  = true
      detect_and_copy_new_topics = true
      starting_position {
        type = "EARLIEST"
      }
      topic_name_configuration {
        type = "IDENTICAL"
      }
    }

    consumer_group_replication {
      consumer_groups_to_replicate        = [".*holdfast\\..*"]
      synchronise_consumer_group_offsets  = true
      detect_and_copy_new_consumer_groups = true
    }
  }
}

# The RPO of a region loss is this lag: alarm well inside the 30 s objective.
resource "aws_cloudwatch_metric_alarm" "replication_latency" {
  count               = var.replicate_from == null ? 0 : 1
  alarm_name          = "${var.name}-msk-replication-latency"
  alarm_description   = "Cross-region replication of the Holdfast topics lags more than 10 s (RPO objective 30 s)"
  namespace           = "AWS/Kafka"
  metric_name         = "ReplicationLatency"
  dimensions          = { ReplicatorName = aws_msk_replicator.this[0].replicator_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 2
  threshold           = 10000
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_topic_arns
}
