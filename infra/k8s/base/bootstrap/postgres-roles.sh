#!/usr/bin/env bash
# Deploy bootstrap, PostgreSQL (postgres image): on every shard, as the cluster's master user,
# the service roles and their privileges (postgres-roles.sql), then their passwords. Idempotent:
# run at every sync, it leaves a shard that is already right as it is (passwords are set again,
# to the same values). Shards without a master-user secret (read-only secondaries) are skipped.
#
#   POSTGRES_URLS  the projection workers' URLs, one per shard (host and database)
#   SECRETS_DIR    what fetch-secrets.sh wrote
#   CA_FILE        the RDS certificate authorities: every server is verified (verify-full)
set -euo pipefail

: "${POSTGRES_URLS:?}" "${SECRETS_DIR:?}" "${CA_FILE:?}"
here=$(dirname "${BASH_SOURCE[0]}")

# field NAME <FILE: the string NAME of the JSON object in FILE (Perl's core JSON::PP, which the
# postgres image carries for its own tools).
field() { perl -MJSON::PP -e 'my $v = decode_json(join "", <STDIN>)->{$ARGV[0]}; defined $v or die "no $ARGV[0]\n"; print $v' "$1"; }

IFS=, read -ra urls <<<"$POSTGRES_URLS"
for url in "${urls[@]}"; do
  rest=${url#*@}
  host=${rest%%[:/]*}
  database=${rest#*/}
  database=${database%%\?*}
  cluster=${host%%.*}
  admin=$SECRETS_DIR/admin/$cluster.json
  if [[ ! -s $admin ]]; then
    echo "$cluster: skipped (no master-user secret: a read-only secondary)"
    continue
  fi
  PGUSER=$(field username <"$admin")
  PGPASSWORD=$(field password <"$admin")
  export PGHOST=$host PGPORT=5432 PGDATABASE=$database PGSSLMODE=verify-full PGSSLROOTCERT=$CA_FILE PGUSER PGPASSWORD
  psql -X -q -v ON_ERROR_STOP=1 -v admin="$PGUSER" -f "$here/postgres-roles.sql"
  for pair in holdfast_projection:projection-workers holdfast_query:query-service; do
    role=${pair%%:*}
    password=$(field postgres_password <"$SECRETS_DIR/services/${pair#*:}.json")
    # \password hashes the password here (SCRAM) and sends only the verifier, so the plaintext
    # reaches no server log; without a terminal, psql reads the two prompts from stdin.
    printf '%s\n%s\n' "$password" "$password" | psql -X -q -v ON_ERROR_STOP=1 -c "\\password $role"
  done
  unset PGPASSWORD password
  echo "$cluster: roles holdfast_projection and holdfast_query in place"
done
