#!/usr/bin/env bash
# Deploy bootstrap, init container (AWS CLI image): fetches what postgres-roles.sh needs into an
# in-memory volume, so that no password passes through the Kubernetes API, an environment
# variable or a command line:
#   $SECRETS_DIR/admin/<cluster>.json        master user of each shard's cluster, RDS-managed
#                                            ({"username", "password"}); none for a read-only
#                                            secondary (the standby region), whose roles come
#                                            with the replicated storage
#   $SECRETS_DIR/services/<service>.json     holdfast/projection-workers and holdfast/query-service,
#                                            which hold the role passwords (postgres_password)
# The shards are the hosts of POSTGRES_URLS (cluster endpoints <cluster>.cluster-<id>.<region>.rds.amazonaws.com).
# AWS credentials: the IRSA role of the holdfast-bootstrap service account.
set -euo pipefail

: "${POSTGRES_URLS:?the projection workers URLs, one per shard}" "${SECRETS_DIR:?}"
umask 077
mkdir -p "$SECRETS_DIR/admin" "$SECRETS_DIR/services"

IFS=, read -ra urls <<<"$POSTGRES_URLS"
region=
for url in "${urls[@]}"; do
  host=${url#*@}
  host=${host%%[:/]*}
  cluster=${host%%.*}
  region=$(cut -d. -f3 <<<"$host")
  arn=$(aws rds describe-db-clusters --region "$region" --db-cluster-identifier "$cluster" \
    --query 'DBClusters[0].MasterUserSecret.SecretArn' --output text)
  if [[ -z $arn || $arn == None ]]; then
    echo "$cluster: no master-user secret (a read-only secondary); its roles come with the replicated storage"
    continue
  fi
  aws secretsmanager get-secret-value --region "$region" --secret-id "$arn" \
    --query SecretString --output text >"$SECRETS_DIR/admin/$cluster.json"
  echo "$cluster: master-user secret fetched"
done

for service in projection-workers query-service; do
  aws secretsmanager get-secret-value --region "$region" --secret-id "holdfast/$service" \
    --query SecretString --output text >"$SECRETS_DIR/services/$service.json"
done
echo "role passwords fetched"
