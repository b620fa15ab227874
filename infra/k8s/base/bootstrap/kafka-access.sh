#!/usr/bin/env bash
# Deploy bootstrap, Kafka (kafka-admin image: Kafka's command-line tools with the MSK IAM
# sign-in): the topics of the layout and the ACLs of the services' SCRAM users, idempotently.
# It signs in with IAM (port 9098, the IRSA role of the holdfast-bootstrap service account),
# where Kafka ACLs do not apply; the services sign in with SCRAM (9096) and may do only this:
#   holdfast-command     read, write and describe the commands, events, replies and owners topics;
#                        describe the others (the topic check at start); join its owners group
#   holdfast-projection  read and describe the events topic; write the dead-letter topic;
#                        describe the others; join its workers group
# Neither may create, delete or alter topics: this job makes them, with the settings
# platform/src/topics.rs gives them, and fails when an existing topic has another partition
# count (the commands and events topics are co-partitioned).
#
#   BROKERS                 the SCRAM bootstrap servers (HOLDFAST_KAFKA_BROKERS, port 9096)
#   PARTITIONS, REPLICATION_FACTOR, MIN_INSYNC_REPLICAS   the command service's topic settings
#   PROJECTION_GROUP        the projection workers' consumer group
#   TOPIC_PREFIX            HOLDFAST_TOPIC_PREFIX, if the deployment sets one
set -euo pipefail

: "${BROKERS:?}" "${PARTITIONS:?}" "${REPLICATION_FACTOR:?}" "${MIN_INSYNC_REPLICAS:?}" "${PROJECTION_GROUP:?}"
prefix=${TOPIC_PREFIX:-}
command_user=holdfast-command
projection_user=holdfast-projection
# The command service's group id is fixed in its code (command-service/src/lib.rs).
command_group=holdfast.command-owners

config=$(mktemp)
cat >"$config" <<'PROPERTIES'
security.protocol=SASL_SSL
sasl.mechanism=AWS_MSK_IAM
sasl.jaas.config=software.amazon.msk.auth.iam.IAMLoginModule required;
sasl.client.callback.handler.class=software.amazon.msk.auth.iam.IAMClientCallbackHandler
PROPERTIES
# MSK serves IAM on port 9098 of the brokers that serve SCRAM on 9096.
iam_brokers=${BROKERS//:9096/:9098}

kafka() { "/opt/kafka/bin/$1" --bootstrap-server "$iam_brokers" --command-config "$config" "${@:2}"; }

# topic NAME SETTING...: creates the topic if it is missing, then checks its partition count.
topic() {
  local name=$prefix$1 setting args=() count
  shift
  for setting in "min.insync.replicas=$MIN_INSYNC_REPLICAS" "$@"; do args+=(--config "$setting"); done
  kafka kafka-topics.sh --create --if-not-exists --topic "$name" --partitions "$PARTITIONS" \
    --replication-factor "$REPLICATION_FACTOR" "${args[@]}"
  count=$(kafka kafka-topics.sh --describe --topic "$name" \
    | sed -n 's/.*PartitionCount:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1)
  if [[ $count != "$PARTITIONS" ]]; then
    echo "topic $name has ${count:-no} partitions, $PARTITIONS are configured: reconcile before deploying" >&2
    exit 1
  fi
  echo "topic $name: $count partitions"
}

# allow USER RESOURCE NAME OPERATION...: adds the ACLs (adding one that exists changes nothing).
allow() {
  local user=$1 resource=$2 name=$3 operation operations=()
  shift 3
  for operation in "$@"; do operations+=(--operation "$operation"); done
  kafka kafka-acls.sh --add --allow-principal "User:$user" "--$resource" "$name" \
    --resource-pattern-type literal "${operations[@]}" >/dev/null
  echo "User:$user may $* $resource $name"
}

topic reservations.commands retention.ms=604800000
topic reservations.events retention.ms=-1
topic reservations.replies retention.ms=3600000
topic reservations.events.dlq retention.ms=-1
topic reservations.snapshots cleanup.policy=compact min.compaction.lag.ms=60000
# The owners directory: one partition, a key per events partition, read whole by every instance.
PARTITIONS=1 topic reservations.owners cleanup.policy=compact segment.ms=3600000

for name in reservations.commands reservations.events reservations.replies reservations.owners; do
  allow "$command_user" topic "$prefix$name" Read Write Describe
done
for name in reservations.events.dlq reservations.snapshots; do
  allow "$command_user" topic "$prefix$name" Describe
done
allow "$command_user" group "$prefix$command_group" Read

allow "$projection_user" topic "${prefix}reservations.events" Read Describe
allow "$projection_user" topic "${prefix}reservations.events.dlq" Write Describe
for name in reservations.commands reservations.replies reservations.snapshots reservations.owners; do
  allow "$projection_user" topic "$prefix$name" Describe
done
allow "$projection_user" group "$prefix$PROJECTION_GROUP" Read
