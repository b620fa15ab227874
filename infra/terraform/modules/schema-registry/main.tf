# The schema registry's storage credentials: Apicurio Registry keeps its schemas in the
# database holdfast_registry (role holdfast_registry) on the first read-model shard's
# cluster, so schema ids outlive every registry pod. Terraform cannot reach the private
# clusters: the deploy bootstrap creates the role with this password and the database it
# owns. This module writes the JDBC settings to Secrets Manager and lets the External Secrets
# Operator of the schema-registry namespace (infra/k8s/schema-registry), and nothing else,
# read them.

locals {
  namespace       = "schema-registry"
  service_account = "schema-registry-external-secrets"
}

resource "aws_secretsmanager_secret" "this" {
  # checkov:skip=CKV2_AWS_57:The password is Terraform's random_password, rewritten here on every change and set on the role by the deploy bootstrap; rotation happens at that source.
  name                    = "holdfast/schema-registry"
  description             = "${var.name}: PostgreSQL settings of the schema registry (Apicurio SQL storage)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "this" {
  secret_id = aws_secretsmanager_secret.this.id
  secret_string = jsonencode({
    # TLS is forced by the cluster (rds.force_ssl). The registry image holds no RDS CA, so
    # the server's certificate is not verified yet (sslmode=require).
    jdbc_url = "jdbc:postgresql://${var.database_host}:5432/holdfast_registry?sslmode=require"
    username = "holdfast_registry"
    password = var.password
  })
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
      values   = ["system:serviceaccount:${local.namespace}:${local.service_account}"]
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
    resources = [aws_secretsmanager_secret.this.arn]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role" "external_secrets" {
  name               = "${var.name}-registry-external-secrets"
  assume_role_policy = data.aws_iam_policy_document.external_secrets_assume.json
}

resource "aws_iam_role_policy" "external_secrets" {
  name   = "read-schema-registry-secret"
  role   = aws_iam_role.external_secrets.id
  policy = data.aws_iam_policy_document.external_secrets.json
}
