# Apache Kafka in KRaft mode (one combined broker + controller) from Maven Central jars.
# Sourced by infra/local/stack.

KAFKA_HOME=$STACK_DIR/kafka
KAFKA_LIBS=$KAFKA_HOME/libs-$KAFKA_VERSION
KAFKA_DATA=$KAFKA_HOME/data
KAFKA_PID=$RUN_DIR/kafka.pid
KAFKA_LOG=$LOG_DIR/kafka.log

kafka_install() {
  [[ -f $KAFKA_LIBS/.complete ]] && return 0
  require_java
  log "resolving Apache Kafka $KAFKA_VERSION from Maven Central"
  rm -rf "$KAFKA_LIBS"
  mvn_quiet "$LOG_DIR/maven-kafka.log" -f "$LOCAL_DIR/kafka/pom.xml" \
    -Dkafka.version="$KAFKA_VERSION" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS"
  ls "$KAFKA_LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null || die "kafka_2.13-$KAFKA_VERSION.jar missing after resolution"
  touch "$KAFKA_LIBS/.complete"
}

KAFKA_JVM=(-Xms512m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$LOCAL_DIR/kafka/log4j2.properties" -cp "$KAFKA_LIBS/*")

kafka_start() {
  if pid_alive "$KAFKA_PID"; then log "kafka already running (pid $(cat "$KAFKA_PID"))"; return 0; fi
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SECURE_PORT"; do
    port_open "$port" && die "port $port is taken by another process; stop it or free the port for Kafka"
  done
  kafka_install
  ensure_tls
  mkdir -p "$KAFKA_DATA"
  (umask 077 && sed -e "s#@DATA@#$KAFKA_DATA#" -e "s#@PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    -e "s#@SECURE_PORT@#$KAFKA_SECURE_PORT#g" -e "s#@KEYSTORE@#$TLS_DIR/server.p12#" \
    -e "s#@KEYSTORE_PASSWORD@#$(<"$(secret_file kafka keystore)")#" \
    "$LOCAL_DIR/kafka/server.properties" >"$KAFKA_HOME/server.properties")
  if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
    log "formatting Kafka storage (KRaft, standalone controller)"
    java "${KAFKA_JVM[@]}" kafka.tools.StorageTool format --standalone \
      -t "$(java "${KAFKA_JVM[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)" \
      -c "$KAFKA_HOME/server.properties" >"$LOG_DIR/kafka-format.log" 2>&1 \
      || { tail -n 20 "$LOG_DIR/kafka-format.log" >&2; die "formatting Kafka storage failed"; }
  fi
  ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  log "starting kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT"
  nohup java "${KAFKA_JVM[@]}" kafka.Kafka "$KAFKA_HOME/server.properties" >"$KAFKA_LOG" 2>&1 </dev/null &
  echo $! >"$KAFKA_PID"
  STARTED+=(kafka)
}

kafka_healthy() {
  pid_alive "$KAFKA_PID" && port_open "$KAFKA_PORT" && grep -q "Kafka Server started" "$KAFKA_LOG"
}

kafka_wait() {
  wait_until kafka 120 "$KAFKA_LOG" kafka_healthy || return 1
  kafka_secure_setup
}

# The service users (SCRAM) and their ACLs, for two topic layouts: the deployment's own (no
# prefix, `HOLDFAST_SECURE=1 make up`) and the secure-transport tests' (prefix `hf-secure.`).
# Done once per set of passwords: a marker remembers which.
kafka_secure_setup() {
  local user files=() marker=$KAFKA_DATA/.secure-setup
  for user in "${KAFKA_SERVICE_USERS[@]}"; do files+=("$(secret_file kafka "$user")"); done
  local digest; digest=$(cat "${files[@]}" "$LOCAL_DIR/kafka/SecureSetup.java" | sha256sum | cut -c1-16)
  [[ -f $marker && $(<"$marker") == "$digest" ]] && return 0
  log "creating the Kafka service users and their ACLs"
  java -cp "$KAFKA_LIBS/*" "$LOCAL_DIR/kafka/SecureSetup.java" "127.0.0.1:$KAFKA_PORT" "$SECRETS_DIR" "" "hf-secure." \
    >"$LOG_DIR/kafka-secure-setup.log" 2>&1 \
    || { tail -n 20 "$LOG_DIR/kafka-secure-setup.log" >&2; die "creating the Kafka service users failed"; }
  echo "$digest" >"$marker"
}

kafka_stop() { stop_pid kafka "$KAFKA_PID"; }

kafka_status() {
  if pid_alive "$KAFKA_PID"; then echo "kafka      running  127.0.0.1:$KAFKA_PORT, SASL_SSL 127.0.0.1:$KAFKA_SECURE_PORT (pid $(cat "$KAFKA_PID"), $KAFKA_VERSION)"
  else echo "kafka      stopped"; fi
}

kafka_reset() { rm -rf "$KAFKA_DATA"; }
