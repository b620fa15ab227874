# Redis from Debian's packages. A server already answering on the port is reused; otherwise
# one is started (and later stopped) by us, without persistence.
# Sourced by infra/local/stack.

REDIS_PID=$RUN_DIR/redis.pid
REDIS_LOG=$LOG_DIR/redis.log
REDIS_DATA=$STACK_DIR/redis

redis_start() {
  if pid_alive "$REDIS_PID"; then log "redis already running (pid $(cat "$REDIS_PID"))"; return 0; fi
  if port_open "$REDIS_PORT"; then
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG \
      || die "port $REDIS_PORT is taken by something that is not Redis"
    log "redis already answering on 127.0.0.1:$REDIS_PORT; reusing it"
    return 0
  fi
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p "$REDIS_DATA"
  log "starting redis on 127.0.0.1:$REDIS_PORT"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
    --daemonize yes --pidfile "$REDIS_PID" --logfile "$REDIS_LOG" --dir "$REDIS_DATA" \
    || die "redis-server did not start"
  STARTED+=(redis)
}

redis_ready() { redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

redis_wait() {
  wait_until redis 30 "$REDIS_LOG" redis_ready || return 1
  redis_secure
}

# TLS on its own port beside the plain one (servers verified against $TLS_DIR/ca.pem; no
# client certificates) and the services' ACL users, set at runtime so a running Redis needs
# no restart. Commands go through stdin, so no password reaches a command line.
#   holdfast-projection  reads and writes keys, runs its scripts and transactions, publishes
#   holdfast-query       reads keys and subscribes to the live-update channels
# Neither may run administrative or dangerous commands (CONFIG, FLUSHALL, KEYS, ...).
redis_secure() {
  ensure_tls
  local user=holdfast-projection query=holdfast-query
  {
    echo "CONFIG SET tls-cert-file $TLS_DIR/server.pem tls-key-file $TLS_DIR/server.key tls-ca-cert-file $TLS_DIR/ca.pem tls-auth-clients no"
    echo "CONFIG SET tls-port $REDIS_TLS_PORT"
    echo "ACL SETUSER $user reset on >$(<"$(secret_file redis "$user")") ~* &* +@read +@write +@keyspace +@hash +@string +@pubsub +@transaction +@scripting +@connection -@dangerous"
    echo "ACL SETUSER $query reset on >$(<"$(secret_file redis "$query")") ~* &* +@read +@connection +subscribe +psubscribe +unsubscribe +punsubscribe -@dangerous"
  } | redis-cli -p "$REDIS_PORT" >"$LOG_DIR/redis-secure.log" 2>&1
  grep -qv '^OK$' "$LOG_DIR/redis-secure.log" && { cat "$LOG_DIR/redis-secure.log" >&2; die "cannot set up TLS and the service users in Redis"; }
  return 0
}

redis_stop() { stop_pid redis "$REDIS_PID"; }

redis_status() {
  local owner=reused; [[ -s $REDIS_PID ]] && owner=ours
  if redis_ready; then echo "redis      running  redis://127.0.0.1:$REDIS_PORT, TLS 127.0.0.1:$REDIS_TLS_PORT ($owner)"
  else echo "redis      stopped"; fi
}
