#!/usr/bin/env bash
# The one-shot Kafka set-up of docker-compose.yml (service kafka-init), as the admin over
# SASL_SSL: the services' SCRAM-SHA-512 users, the topics and the ACLs. Safe to run again:
# passwords are set anew, existing topics and ACLs are left as they are.
#
# Environment: BOOTSTRAP (kafka:9093), CA_FILE (the CA certificate, PEM), ADMIN_PASSWORD and
# ROUTER_PASSWORD, ADAPTER_TAKECARE_PASSWORD, ADAPTER_TRESERVA_PASSWORD.
# The users are the principals of services/messaging/kafka_acls.py, the topics those of
# services/messaging/topics.py plus the broker epoch's; tests/unit/test_compose.py compares.
set -euo pipefail

export PATH="/opt/kafka/bin:$PATH"
BOOTSTRAP=${BOOTSTRAP:-kafka:9093}
CA_FILE=${CA_FILE:-/etc/kafka/secrets/ca.pem}
HERE=$(dirname "$0")

for var in ADMIN_PASSWORD ROUTER_PASSWORD ADAPTER_TAKECARE_PASSWORD ADAPTER_TRESERVA_PASSWORD; do
    # they go into JAAS and SCRAM settings unquoted (as in sandbox/apache_kafka.py)
    if [[ ! ${!var:-} =~ ^[A-Za-z0-9._-]{16,}$ ]]; then
        echo "kafka-init: $var must be at least 16 characters of A-Z a-z 0-9 . _ -" >&2
        exit 1
    fi
done

umask 077
ADMIN_CONFIG=$(mktemp)
trap 'rm -f "$ADMIN_CONFIG"' EXIT
cat > "$ADMIN_CONFIG" <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$ADMIN_PASSWORD";
ssl.truststore.type=PEM
ssl.truststore.location=$CA_FILE
PROPERTIES

create_user() {  # name password
    echo "kafka-init: SCRAM-SHA-512 user $1"
    kafka-configs.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --alter \
        --add-config "SCRAM-SHA-512=[password=$2]" --entity-type users --entity-name "$1"
}

create_topic() {  # name partitions
    kafka-topics.sh --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --create \
        --if-not-exists --topic "$1" --partitions "$2" --replication-factor 1
}

create_user router "$ROUTER_PASSWORD"
create_user adapter_takecare "$ADAPTER_TAKECARE_PASSWORD"
create_user adapter_treserva "$ADAPTER_TRESERVA_PASSWORD"

create_topic carebridge.inbound.v1 3
create_topic carebridge.results.v1 3
create_topic carebridge.deadletter.v1 3
create_topic carebridge.outbound.webhooks.v1 3
create_topic carebridge.events.v1 3
create_topic carebridge.outbound.treserva.v1 3
create_topic carebridge.outbound.takecare.v1 3
create_topic carebridge.outbound.primary-care.v1 3
create_topic carebridge.broker-epoch.v1 1

echo "kafka-init: ACLs"
# shellcheck source=acls.sh
. "$HERE/acls.sh"
echo "kafka-init: done"
