# PostgreSQL from Debian's packages. A server already answering on the port is reused;
# otherwise the newest installed cluster is started (and later stopped) by us.
# Sourced by infra/local/stack.

POSTGRES_MARK=$RUN_DIR/postgres.started
# Left by `stack reset`: the read model indexes a Kafka log that is gone.
POSTGRES_STALE_READ_MODEL=$RUN_DIR/read-model.stale
POSTGRES_LOG=$LOG_DIR/postgres.log
POSTGRES_USER=holdfast
POSTGRES_PASSWORD=holdfast
POSTGRES_DB=holdfast

postgres_version() { find /usr/lib/postgresql -maxdepth 1 -mindepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1; }

postgres_install() {
  if [[ -z $(postgres_version) ]] || ! command -v pg_ctlcluster >/dev/null; then
    apt_install postgresql
  fi
  [[ -n $(postgres_version) ]] || die "PostgreSQL server binaries not found after installation"
}

# psql_admin SQL: runs SQL as the postgres superuser over the local socket.
psql_admin() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- psql -p "$POSTGRES_PORT" -v ON_ERROR_STOP=1 -qAtc "$1"
  else sudo -u postgres psql -p "$POSTGRES_PORT" -v ON_ERROR_STOP=1 -qAtc "$1"; fi
}

postgres_start() {
  if port_open "$POSTGRES_PORT"; then
    if [[ -s $POSTGRES_MARK ]]; then log "postgres already running"
    else log "postgres already answering on 127.0.0.1:$POSTGRES_PORT; reusing it"; fi
  else
    postgres_install
    local version; version=$(postgres_version)
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$version main"; then
      log "creating PostgreSQL $version cluster 'main'"
      as_root pg_createcluster "$version" main >"$POSTGRES_LOG" 2>&1 || { tail -n 20 "$POSTGRES_LOG" >&2; die "pg_createcluster failed"; }
    fi
    local conf=/etc/postgresql/$version/main/conf.d/holdfast.conf
    as_root mkdir -p "$(dirname "$conf")"
    as_root tee "$conf" >/dev/null <<CONF
# Written by Holdfast's infra/local/stack for local development and tests.
listen_addresses = '127.0.0.1'
port = $POSTGRES_PORT
max_connections = 400
shared_buffers = 512MB
work_mem = 16MB
maintenance_work_mem = 256MB
wal_buffers = 16MB
max_wal_size = 4GB
checkpoint_timeout = 15min
CONF
    log "starting PostgreSQL $version on 127.0.0.1:$POSTGRES_PORT"
    as_root pg_ctlcluster "$version" main start >>"$POSTGRES_LOG" 2>&1 \
      || { tail -n 20 "$POSTGRES_LOG" >&2; tail -n 20 "/var/log/postgresql/postgresql-$version-main.log" >&2 2>/dev/null; die "PostgreSQL did not start"; }
    echo "$version main" >"$POSTGRES_MARK"
    STARTED+=(postgres)
  fi
}

postgres_ready() { pg_isready -q -h 127.0.0.1 -p "$POSTGRES_PORT"; }

postgres_wait() {
  wait_until postgres 60 "$POSTGRES_LOG" postgres_ready || return 1
  if [[ -f $POSTGRES_STALE_READ_MODEL ]]; then
    psql_admin "DROP DATABASE IF EXISTS $POSTGRES_DB WITH (FORCE)" >/dev/null || die "cannot drop the stale read model"
    log "dropped the read model of the deleted Kafka log (database $POSTGRES_DB)"
    rm -f "$POSTGRES_STALE_READ_MODEL"
  fi
  # The role and database Holdfast uses; tests create databases of their own through it.
  if ! PGPASSWORD=$POSTGRES_PASSWORD psql -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$POSTGRES_USER" -d "$POSTGRES_DB" -qAtc 'SELECT 1' >/dev/null 2>&1; then
    log "creating role and database '$POSTGRES_USER'"
    psql_admin "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$POSTGRES_USER') THEN
          CREATE ROLE $POSTGRES_USER LOGIN CREATEDB PASSWORD '$POSTGRES_PASSWORD';
        END IF; END \$\$;" || die "cannot create the '$POSTGRES_USER' role (is this PostgreSQL ours to administer?)"
    psql_admin "SELECT 1 FROM pg_database WHERE datname = '$POSTGRES_DB'" | grep -q 1 \
      || psql_admin "CREATE DATABASE $POSTGRES_DB OWNER $POSTGRES_USER" || die "cannot create database '$POSTGRES_DB'"
  fi
  postgres_secure
}

# TLS beside plain connections (clients choose: sslmode=verify-full with $TLS_DIR/ca.pem) and
# the services' own login roles, which may connect over TLS only: holdfast_projection writes
# the read model, holdfast_query reads it. They get no database here; whoever creates one
# grants them theirs (tests through `holdfast`, a member of both). Idempotent: settings and
# passwords are set again and the configuration reloaded, no restart.
postgres_secure() {
  ensure_tls
  local dir=/var/lib/postgresql/holdfast-tls role
  as_root install -d -o postgres -g postgres -m 700 "$dir"
  as_root install -o postgres -g postgres -m 644 "$TLS_DIR/server.pem" "$dir/server.pem"
  as_root install -o postgres -g postgres -m 600 "$TLS_DIR/server.key" "$dir/server.key"
  local hba roles; hba=$(psql_admin "SHOW hba_file"); roles=$(IFS=,; echo "${POSTGRES_SERVICE_ROLES[*]}")
  if ! as_root grep -q '^# holdfast: service roles over TLS only' "$hba"; then
    as_root sed -i "1i # holdfast: service roles over TLS only\\nhostnossl all $roles all reject" "$hba"
  fi
  {
    echo "ALTER SYSTEM SET ssl = on;"
    echo "ALTER SYSTEM SET ssl_cert_file = '$dir/server.pem';"
    echo "ALTER SYSTEM SET ssl_key_file = '$dir/server.key';"
    for role in "${POSTGRES_SERVICE_ROLES[@]}"; do
      echo "SELECT 'CREATE ROLE $role' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role')"
      echo "\\gexec"
      echo "ALTER ROLE $role WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD '$(<"$(secret_file postgres "$role")")';"
      echo "GRANT $role TO $POSTGRES_USER;"
    done
    echo "SELECT pg_reload_conf();"
  } | psql_admin_stdin >/dev/null || die "cannot set up TLS and the service roles in PostgreSQL"
}

# psql_admin_stdin: runs the SQL on standard input as the postgres superuser, so that what it
# carries (passwords) never appears on a command line, in `ps` or in sudo's log.
psql_admin_stdin() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- psql -p "$POSTGRES_PORT" -v ON_ERROR_STOP=1 -qAt
  else sudo -u postgres psql -p "$POSTGRES_PORT" -v ON_ERROR_STOP=1 -qAt; fi
}

# postgres_ensure_owned_database ROLE DATABASE PASSWORD_FILE: a login role whose password is
# the file's content (32 random bytes as hex, written once, readable by the owner only) and a
# database it owns that no other role may connect to. Does nothing when the role can already
# log in to the database with that password; otherwise creates what is missing and (re)sets
# the password, for a file written anew while PostgreSQL kept the role.
postgres_ensure_owned_database() {
  local role=$1 database=$2 file=$3
  if [[ ! -s $file ]]; then
    mkdir -p "$(dirname "$file")"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$file")
  fi
  PGPASSWORD=$(<"$file") psql -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$role" -d "$database" -qAtc 'SELECT 1' \
    >/dev/null 2>&1 && return 0
  log "creating role and database '$database'"
  psql_admin_stdin >/dev/null <<SQL || die "cannot create the '$role' role and '$database' database (is this PostgreSQL ours to administer?)"
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN
    CREATE ROLE $role LOGIN PASSWORD '$(<"$file")';
  ELSE
    ALTER ROLE $role WITH LOGIN PASSWORD '$(<"$file")';
  END IF; END \$\$;
SELECT 'CREATE DATABASE $database OWNER $role' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$database')
\\gexec
REVOKE ALL ON DATABASE $database FROM PUBLIC;
SQL
}

postgres_stop() {
  [[ -s $POSTGRES_MARK ]] || return 0
  local version cluster; read -r version cluster <"$POSTGRES_MARK"
  log "stopping PostgreSQL $version/$cluster"
  as_root pg_ctlcluster "$version" "$cluster" stop -m fast >>"$POSTGRES_LOG" 2>&1 || true
  rm -f "$POSTGRES_MARK"
}

postgres_status() {
  local owner=reused; [[ -s $POSTGRES_MARK ]] && owner=ours
  if postgres_ready; then echo "postgres   running  postgres://$POSTGRES_USER:***@127.0.0.1:$POSTGRES_PORT/$POSTGRES_DB ($owner, TLS for holdfast_projection and holdfast_query)"
  else echo "postgres   stopped"; fi
}
