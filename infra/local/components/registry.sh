# Apicurio Registry (Confluent-compatible API under /apis/ccompat/v7) from its Maven Central
# distribution, in-memory storage. Sourced by infra/local/stack.

REGISTRY_HOME=$STACK_DIR/registry/$APICURIO_VERSION
REGISTRY_PID=$RUN_DIR/registry.pid
REGISTRY_LOG=$LOG_DIR/registry.log
REGISTRY_URL=http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7

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

# The distribution's entry point: quarkus-run.jar (fast-jar layout) or *-runner.jar (uber-jar).
registry_jar() {
  local jar
  for jar in "$REGISTRY_HOME/quarkus-run.jar" "$REGISTRY_HOME"/*-runner.jar; do
    [[ -f $jar ]] && { echo "$jar"; return 0; }
  done
}

registry_start() {
  if pid_alive "$REGISTRY_PID"; then log "registry already running (pid $(cat "$REGISTRY_PID"))"; return 0; fi
  port_open "$REGISTRY_PORT" && die "port $REGISTRY_PORT is taken by another process; stop it or free the port for the schema registry"
  registry_install
  log "starting Apicurio Registry $APICURIO_VERSION on 127.0.0.1:$REGISTRY_PORT"
  nohup java -Xms128m -Xmx512m -XX:+UseSerialGC \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.log.console.format='%d{HH:mm:ss} %-5p [%c{2.}] %s%e%n' \
    -jar "$(registry_jar)" >"$REGISTRY_LOG" 2>&1 </dev/null &
  echo $! >"$REGISTRY_PID"
  STARTED+=(registry)
}

registry_healthy() { pid_alive "$REGISTRY_PID" && curl -sf -o /dev/null "$REGISTRY_URL/subjects"; }

registry_wait() { wait_until registry 120 "$REGISTRY_LOG" registry_healthy; }

registry_stop() { stop_pid registry "$REGISTRY_PID"; }

registry_status() {
  if pid_alive "$REGISTRY_PID"; then echo "registry   running  $REGISTRY_URL (pid $(cat "$REGISTRY_PID"), Apicurio $APICURIO_VERSION)"
  else echo "registry   stopped"; fi
}
