package bus

import (
	"fmt"
	"strconv"
	"strings"
)

// EnvStreamReplicas names the setting of how many replicas Gantry's
// JetStream streams (EVENTS and RUN_LOGS) get: 3 on a three-node cluster
// keeps every event through the loss of one node.
const EnvStreamReplicas = "GANTRY_NATS_REPLICAS"

// MaxStreamReplicas is JetStream's limit on a stream's replicas.
const MaxStreamReplicas = 5

// ParseStreamReplicas reads the value of GANTRY_NATS_REPLICAS: 1 when
// empty, otherwise a whole number from 1 to MaxStreamReplicas. NATS itself
// refuses more replicas than the cluster has JetStream servers, when the
// stream is created.
func ParseStreamReplicas(value string) (int, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 1 || n > MaxStreamReplicas {
		return 0, fmt.Errorf("%s=%q: want a whole number of stream replicas from 1 to %d (at most the NATS cluster's JetStream servers)", EnvStreamReplicas, value, MaxStreamReplicas)
	}
	return n, nil
}
