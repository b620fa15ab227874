# The identity of the deploy bootstrap (infra/k8s/base/bootstrap: an Argo CD Sync hook Job run
# before the services roll), which makes what the AWS provider cannot:
#   Kafka      the topics and the ACLs of the services' SCRAM users, signed in with IAM (port
#              9098), where Kafka ACLs do not apply: IAM allows it exactly the admin calls below
#   PostgreSQL the service roles, their passwords and privileges on every shard, as the shard's
#              master user, whose password RDS manages (and rotates) in Secrets Manager
# It reads the master users' secrets and the services' secrets that hold the role passwords,
# and nothing else. Trusted by the namespace's holdfast-bootstrap service account only.

locals {
  topics = "${replace(var.kafka_cluster_arn, ":cluster/", ":topic/")}/*"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider}:sub"
      values   = ["system:serviceaccount:${var.namespace}:holdfast-bootstrap"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "this" {
  statement {
    sid = "KafkaAcls"
    # Connect, and create and list ACLs (Kafka's cluster-level ALTER and DESCRIBE).
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster", "kafka-cluster:AlterCluster"]
    resources = [var.kafka_cluster_arn]
  }
  statement {
    sid       = "KafkaTopics"
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:CreateTopic", "kafka-cluster:DescribeTopicDynamicConfiguration"]
    resources = [local.topics]
  }
  statement {
    sid       = "FindShardMasterSecrets"
    actions   = ["rds:DescribeDBClusters"]
    resources = var.database_cluster_arns
  }
  statement {
    sid       = "ReadPasswords"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = concat(var.database_admin_secret_arns, var.service_secret_arns)
  }
  statement {
    sid       = "DecryptPasswords"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.name}-bootstrap"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "this" {
  name   = "holdfast-deploy-bootstrap"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}
