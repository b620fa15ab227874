# Apicurio Registry (Confluent-compatible API under /apis/ccompat/v7) from its Maven Central
# distribution. Schemas live in the stack's PostgreSQL (Apicurio's SQL storage, database
# holdfast_registry owned by a role of its own), so their ids outlive a restart of the
# registry: the records in Kafka name schemas by id. Sourced by infra/local/stack after
# postgres.sh, whose helpers create the role and database.

REGISTRY_HOME=$STACK_DIR/registry/$APICURIO_VERSION
# A stable path to the installed distribution (tests start private registries from it).
REGISTRY_CURRENT=$STACK_DIR/registry/current
REGISTRY_PID=$RUN_DIR/registry.pid
REGISTRY_LOG=$LOG_DIR/registry.log
REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7
REGISTRY_DB=holdfast_registry
REGISTRY_DB_USER=holdfast_registry
# The role's password: generated once, readable by the owner only, given to the JVM through
# its environment (never on a command line or in a log).
REGISTRY_DB_PASSWORD_FILE=$STACK_DIR/auth/registry-postgres.password

registry_install() {
  [[ -f $REGISTRY_HOME/.complete ]] && return 0
  require_java
  log "resolving Apicurio Registry $APICURIO_VERSION from Maven Central"
  rm -rf "$REGISTRY_HOME"; mkdir -p "$REGISTRY_HOME"
  mvn_quiet "$LOG_DIR/maven-registry.log" -f "$LOCAL_DIR/kafka/pom.xml" dependency:copy \
    -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" -DoutputDirectory="$REGISTRY_HOME"
  tar -xzf "$REGISTRY_HOME"/apicurio-registry-app-*.tar.gz -C "$REGISTRY_HOME"
  rm -f "$REGISTRY_HOME"/apicurio-registry-app-*.tar.gz
  [[ -n $(registry_jar) ]] || die "no runnable jar in the Apicurio $APICURIO_VERSION distribution"
  touch "$REGISTRY_HOME/.complete"
}

registry_link() { [[ -f $REGISTRY_HOME/.complete ]] && ln -sfn "$APICURIO_VERSION" "$REGISTRY_CURRENT"; }

# The registry's database and role, once PostgreSQL answers (started just before by `up`).
registry_database() {
  wait_until postgres 60 "$POSTGRES_LOG" postgres_ready || die "PostgreSQL is not ready; the registry keeps its schemas there"
  postgres_ensure_owned_database "$REGISTRY_DB_USER" "$REGISTRY_DB" "$REGISTRY_DB_PASSWORD_FILE"
}

# The distribution's entry point: quarkus-run.jar (fast-jar layout) or *-runner.jar (uber-jar).
registry_jar() {
  local jar
  for jar in "$REGISTRY_HOME/quarkus-run.jar" "$REGISTRY_HOME"/*-runner.jar; do
    [[ -f $jar ]] && { echo "$jar"; return 0; }
  done
}

registry_start() {
  registry_link || true
  if pid_alive "$REGISTRY_PID"; then log "registry already running (pid $(cat "$REGISTRY_PID"))"; return 0; fi
  port_open "$REGISTRY_PORT" && die "port $REGISTRY_PORT is taken by another process; stop it or free the port for the schema registry"
  registry_install
  registry_link
  registry_database
  log "starting Apicurio Registry $APICURIO_VERSION on 127.0.0.1:$REGISTRY_PORT (SQL storage: database $REGISTRY_DB)"
  # A small connection pool: Apicurio's default opens 20 connections at start.
  APICURIO_DATASOURCE_PASSWORD=$(<"$REGISTRY_DB_PASSWORD_FILE") nohup java -Xms128m -Xmx512m -XX:+UseSerialGC \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=postgresql \
    -Dapicurio.datasource.url="jdbc:postgresql://127.0.0.1:$POSTGRES_PORT/$REGISTRY_DB" \
    -Dapicurio.datasource.username="$REGISTRY_DB_USER" \
    -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 \
    -Dapicurio.datasource.jdbc.max-size=10 \
    -Dquarkus.log.console.format='%d{HH:mm:ss} %-5p [%c{2.}] %s%e%n' \
    -jar "$(registry_jar)" >"$REGISTRY_LOG" 2>&1 </dev/null &
  echo $! >"$REGISTRY_PID"
  STARTED+=(registry)
}

registry_healthy() { pid_alive "$REGISTRY_PID" && curl -sf -o /dev/null "$REGISTRY_URL/subjects"; }

registry_wait() { wait_until registry 120 "$REGISTRY_LOG" registry_healthy; }

registry_stop() { stop_pid registry "$REGISTRY_PID"; }

registry_status() {
  if pid_alive "$REGISTRY_PID"; then
    echo "registry   running  $REGISTRY_URL (pid $(cat "$REGISTRY_PID"), Apicurio $APICURIO_VERSION, schemas in postgres://$REGISTRY_DB_USER:***@127.0.0.1:$POSTGRES_PORT/$REGISTRY_DB)"
  else echo "registry   stopped"; fi
}
