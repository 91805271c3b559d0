# shellcheck shell=bash
# GENERATED from the ACL table in services/messaging/kafka_acls.py: do not edit by hand.
# deploy/kafka/init.sh sources it with BOOTSTRAP and ADMIN_CONFIG set. Regenerate with
#   { grep '^#' deploy/kafka/acls.sh; .venv/bin/python -m services.messaging.kafka_acls; } > acls.sh.new
#   mv acls.sh.new deploy/kafka/acls.sh
# tests/unit/test_compose.py fails while the lines below differ from the table.
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Read --resource-pattern-type literal --topic carebridge.inbound.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Describe --resource-pattern-type literal --topic carebridge.inbound.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Read --resource-pattern-type literal --topic carebridge.results.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Describe --resource-pattern-type literal --topic carebridge.results.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Write --resource-pattern-type literal --topic carebridge.outbound.treserva.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Read --resource-pattern-type literal --topic carebridge.outbound.treserva.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Describe --resource-pattern-type literal --topic carebridge.outbound.treserva.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Write --resource-pattern-type literal --topic carebridge.outbound.takecare.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Read --resource-pattern-type literal --topic carebridge.outbound.takecare.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Describe --resource-pattern-type literal --topic carebridge.outbound.takecare.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Write --resource-pattern-type literal --topic carebridge.outbound.primary-care.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Read --resource-pattern-type literal --topic carebridge.outbound.primary-care.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Describe --resource-pattern-type literal --topic carebridge.outbound.primary-care.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Write --resource-pattern-type literal --topic carebridge.outbound.webhooks.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Read --resource-pattern-type literal --topic carebridge.outbound.webhooks.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Describe --resource-pattern-type literal --topic carebridge.outbound.webhooks.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Write --resource-pattern-type literal --topic carebridge.deadletter.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Describe --resource-pattern-type literal --topic carebridge.deadletter.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Write --resource-pattern-type literal --topic carebridge.events.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Describe --resource-pattern-type literal --topic carebridge.events.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Read --resource-pattern-type literal --group router
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Read --resource-pattern-type literal --group router.webhooks
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Describe --resource-pattern-type prefixed --group adapter_
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Read --resource-pattern-type literal --topic carebridge.broker-epoch.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Write --resource-pattern-type literal --topic carebridge.broker-epoch.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation Describe --resource-pattern-type literal --topic carebridge.broker-epoch.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:router --operation IdempotentWrite --resource-pattern-type literal --cluster
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Write --resource-pattern-type literal --topic carebridge.inbound.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Describe --resource-pattern-type literal --topic carebridge.inbound.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Write --resource-pattern-type literal --topic carebridge.results.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Describe --resource-pattern-type literal --topic carebridge.results.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Read --resource-pattern-type literal --topic carebridge.outbound.takecare.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Describe --resource-pattern-type literal --topic carebridge.outbound.takecare.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Read --resource-pattern-type literal --topic carebridge.outbound.primary-care.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Describe --resource-pattern-type literal --topic carebridge.outbound.primary-care.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Read --resource-pattern-type prefixed --group adapter_takecare.
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Describe --resource-pattern-type literal --group router
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Read --resource-pattern-type literal --topic carebridge.broker-epoch.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Write --resource-pattern-type literal --topic carebridge.broker-epoch.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation Describe --resource-pattern-type literal --topic carebridge.broker-epoch.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_takecare --operation IdempotentWrite --resource-pattern-type literal --cluster
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation Write --resource-pattern-type literal --topic carebridge.inbound.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation Describe --resource-pattern-type literal --topic carebridge.inbound.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation Write --resource-pattern-type literal --topic carebridge.results.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation Describe --resource-pattern-type literal --topic carebridge.results.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation Read --resource-pattern-type literal --topic carebridge.outbound.treserva.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation Describe --resource-pattern-type literal --topic carebridge.outbound.treserva.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation Read --resource-pattern-type prefixed --group adapter_treserva.
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation Describe --resource-pattern-type literal --group router
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation Read --resource-pattern-type literal --topic carebridge.broker-epoch.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation Write --resource-pattern-type literal --topic carebridge.broker-epoch.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation Describe --resource-pattern-type literal --topic carebridge.broker-epoch.v1
kafka-acls.sh --bootstrap-server $BOOTSTRAP --command-config $ADMIN_CONFIG --add --allow-principal User:adapter_treserva --operation IdempotentWrite --resource-pattern-type literal --cluster
