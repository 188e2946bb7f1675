package bus

import (
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/gantryhq/gantry/services/worker/protocol"
)

// responseExpiry bounds how long after receiving a request a launcher may
// still answer it on the request's reply subject.
const responseExpiry = 2 * time.Minute

// poolPermissions confines a launcher of pool to its own pool's subjects.
// Everything not allowed here is denied, notably every "$JS.API.>" request
// (so no JetStream at all: no stream info, consumers or direct gets on
// EVENTS), "gantry.events.>", other pools' subjects and the shared "_INBOX.>".
// Replies to requests the launcher received are allowed once each, within
// responseExpiry.
func poolPermissions(pool string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			protocol.HeartbeatSubject(pool, "*"),
			protocol.ReportSubject(pool, ">"),
			protocol.PoolRunLogs(pool),
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			protocol.WorkerSubjects(pool),
			protocol.BroadcastSubject(pool),
			protocol.PoolInboxPrefix(pool) + ".>",
		}},
		Response: &server.ResponsePermission{MaxMsgs: 1, Expires: responseExpiry},
	}
}

// PoolCredentials is the connect option of a launcher of pool: the pool id
// and secret as user and password, and the pool's inbox prefix, the only
// inbox its permissions let it subscribe to. Without the prefix its requests
// would get no replies.
func PoolCredentials(pool, secret string) nats.Option {
	return func(o *nats.Options) error {
		if err := nats.UserInfo(pool, secret)(o); err != nil {
			return err
		}
		return nats.CustomInboxPrefix(protocol.PoolInboxPrefix(pool))(o)
	}
}
