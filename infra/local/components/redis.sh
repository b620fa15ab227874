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

redis_wait() { wait_until redis 30 "$REDIS_LOG" redis_ready; }

redis_stop() { stop_pid redis "$REDIS_PID"; }

redis_status() {
  local owner=reused; [[ -s $REDIS_PID ]] && owner=ours
  if redis_ready; then echo "redis      running  redis://127.0.0.1:$REDIS_PORT ($owner)"
  else echo "redis      stopped"; fi
}
