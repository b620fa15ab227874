# Shared helpers for the local stack scripts. Sourced, never run.
# shellcheck disable=SC2034  # variables here are used by the scripts that source this file
# Everything the stack writes (downloads, data, logs, pid files) lives under one ignored
# folder: $HOLDFAST_STACK_DIR, by default .stack/ at the repository root.

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK_DIR=${HOLDFAST_STACK_DIR:-$REPO_ROOT/.stack}
RUN_DIR=$STACK_DIR/run
LOG_DIR=$STACK_DIR/logs
LOCAL_DIR=$REPO_ROOT/infra/local
# The HS256 secret local services check bearer tokens with (infra/local/token signs with it).
AUTH_SECRET=$STACK_DIR/auth/hs256.key
mkdir -p "$RUN_DIR" "$LOG_DIR"

# Pinned versions (see docs/local-stack.md for why these).
KAFKA_VERSION=4.1.1
APICURIO_VERSION=3.0.9

KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
REGISTRY_PORT=8085
POSTGRES_PORT=5432
REDIS_PORT=6379
# The secure endpoints beside the plain ones: Kafka SASL_SSL (SCRAM-SHA-512), Redis TLS.
# PostgreSQL serves TLS on its own port.
KAFKA_SECURE_PORT=9094
REDIS_TLS_PORT=6380

# One local certificate authority signs the servers' certificate (DNS:localhost,
# IP:127.0.0.1); clients verify servers against $TLS_DIR/ca.pem.
TLS_DIR=$STACK_DIR/tls
# Each service's passwords, one file per system and user, readable by the owner only.
SECRETS_DIR=$STACK_DIR/secrets
# The users the services connect as on the secure endpoints: the command service speaks to
# Kafka only; the projection workers to Kafka, PostgreSQL (read-write) and Redis; the query
# service to PostgreSQL (read-only) and Redis (read-only).
KAFKA_SERVICE_USERS=(holdfast-command holdfast-projection)
POSTGRES_SERVICE_ROLES=(holdfast_projection holdfast_query)
REDIS_SERVICE_USERS=(holdfast-projection holdfast-query)

# Creates the local token secret once: 32 random bytes as hex, readable by the owner only.
ensure_auth_secret() {
  [[ -s $AUTH_SECRET ]] && return 0
  mkdir -p "$(dirname "$AUTH_SECRET")"
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$AUTH_SECRET")
  log "generated the local token secret in $AUTH_SECRET"
}

# secret_file SYSTEM USER: the file holding USER's password on SYSTEM, created once (32
# random bytes as hex, readable by the owner only).
secret_file() {
  local file=$SECRETS_DIR/$1-$2
  if [[ ! -s $file ]]; then
    mkdir -p "$SECRETS_DIR"
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$file")
  fi
  printf '%s' "$file"
}

# ensure_tls: the local CA and the servers' certificate and key, made once with openssl. Kafka
# reads them as a PKCS#12 keystore (its PEM keystores want encrypted keys).
ensure_tls() {
  [[ -s $TLS_DIR/server.p12 ]] && return 0
  command -v openssl >/dev/null || apt_install openssl
  log "generating the local certificate authority and server certificate in $TLS_DIR"
  mkdir -p "$TLS_DIR" && chmod 700 "$TLS_DIR"
  (
    cd "$TLS_DIR"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Holdfast local CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth" \
      "keyUsage=critical,digitalSignature,keyEncipherment" "basicConstraints=CA:FALSE" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 \
      -extfile server.ext -out server.pem 2>/dev/null
    openssl pkcs12 -export -in server.pem -inkey server.key -name server \
      -passout "file:$(secret_file kafka keystore)" -out server.p12
    chmod 644 ca.pem
    rm -f server.csr server.ext ca.srl
  ) || die "generating the local certificates failed (openssl)"
}

log() { printf '\033[1m[stack]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[stack] error:\033[0m %s\n' "$*" >&2; exit 1; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive FILE: the pid recorded in FILE is a running process.
pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait_until NAME SECONDS LOGFILE CMD...: polls CMD every 0.5 s; on timeout shows the last
# lines of LOGFILE and fails.
wait_until() {
  local name=$1 seconds=$2 logfile=$3; shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "$name did not become healthy within ${seconds}s; last lines of $logfile:"
      tail -n 40 "$logfile" >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.5
  done
}

# stop_pid NAME FILE: stops the process recorded in FILE (TERM, then KILL after 30 s).
stop_pid() {
  local name=$1 file=$2
  if ! pid_alive "$file"; then
    rm -f "$file"
    return 0
  fi
  local pid; pid=$(cat "$file")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "$name did not stop within 30s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.2
  done
  rm -f "$file"
}

# as_root CMD...: runs CMD as root (directly when we are root, through sudo otherwise).
as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (run as root or install sudo)"
  fi
}

APT_UPDATED=0
# apt_install PKG...: installs Debian packages that are not installed yet.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null || die "missing packages ${missing[*]} and no apt-get to install them"
  log "installing ${missing[*]} (apt)"
  if ((APT_UPDATED == 0)); then
    as_root apt-get update -qq >"$LOG_DIR/apt.log" 2>&1 || { tail -n 20 "$LOG_DIR/apt.log" >&2; die "apt-get update failed"; }
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >>"$LOG_DIR/apt.log" 2>&1 || { tail -n 20 "$LOG_DIR/apt.log" >&2; die "apt-get install ${missing[*]} failed"; }
}

# require_java: Java 17 or newer, installed from Debian when missing.
require_java() {
  if ! command -v java >/dev/null; then apt_install openjdk-17-jre-headless; fi
  local major
  major=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
  [[ ${major%%.*} -ge 17 ]] 2>/dev/null || die "Java 17 or newer is needed (found ${major:-none})"
  command -v mvn >/dev/null || apt_install maven
}

# mvn_quiet LOGFILE ARGS...: runs Maven in batch mode; on failure shows why and fails.
mvn_quiet() {
  local logfile=$1; shift
  mvn -B -q "$@" >"$logfile" 2>&1 || {
    grep -E 'ERROR|Could not' "$logfile" | head -n 20 >&2
    die "maven failed (mvn $*); full log: $logfile"
  }
}
