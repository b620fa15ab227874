# Encryption keys, the secrets the services read, and the IAM role through which the External
# Secrets Operator (and nothing else) reads them.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
}

data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_109:A key policy's resource is always the key itself ("*" means this key).
  # checkov:skip=CKV_AWS_111:A key policy's resource is always the key itself ("*" means this key).
  # checkov:skip=CKV_AWS_356:A key policy's resource is always the key itself ("*" means this key).
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
  }
}

# One customer-managed key per environment encrypts every store at rest: EKS secrets, RDS,
# ElastiCache, MSK, Secrets Manager, CloudWatch logs, AMP.
resource "aws_kms_key" "this" {
  description             = "${var.name}: encryption at rest of every Holdfast data store"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# What the pods receive through External Secrets (infra/k8s/base/*/external-secret.yaml): one
# secret per service, holding the passwords of that service's own credentials and nothing
# else (user names and endpoints are not secret: they are in the manifests and in the
# holdfast-infra ConfigMap that k8s_config_env writes):
#   holdfast/command-service     kafka_password (SCRAM user holdfast-command), peer_secret
#   holdfast/projection-workers  kafka_password (holdfast-projection), postgres_password
#                                (role holdfast_projection), redis_password (user holdfast-projection)
#   holdfast/query-service       postgres_password (role holdfast_query), redis_password (user holdfast-query)
resource "aws_secretsmanager_secret" "service" {
  # checkov:skip=CKV2_AWS_57:The passwords are Terraform's random_password values, written at the same apply to their data stores (MSK SCRAM secrets, ElastiCache users) or set on the PostgreSQL roles by the deploy bootstrap; rotation replaces them at that source (docs/operations/runbooks).
  for_each                = toset(["command-service", "projection-workers", "query-service"])
  name                    = "holdfast/${each.key}"
  description             = "${var.name}: passwords of the ${each.key} credentials (Kafka, PostgreSQL, Redis)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = 30
}

data "aws_iam_policy_document" "external_secrets_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider}:sub"
      values   = ["system:serviceaccount:${var.namespace}:holdfast-external-secrets"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "external_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [for secret in aws_secretsmanager_secret.service : secret.arn]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_role" "external_secrets" {
  name               = "${var.name}-external-secrets"
  assume_role_policy = data.aws_iam_policy_document.external_secrets_assume.json
}

resource "aws_iam_role_policy" "external_secrets" {
  name   = "read-holdfast-secrets"
  role   = aws_iam_role.external_secrets.id
  policy = data.aws_iam_policy_document.external_secrets.json
}
