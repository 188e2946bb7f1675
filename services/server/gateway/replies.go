package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gantryhq/gantry/services/worker/protocol"
)

// maxReportIDLength bounds a report id (protocol.HeaderReportID).
const maxReportIDLength = 128

// replyRetention is how long answers are kept for repeats.
const replyRetention = time.Hour

// storedReply returns the answer given to report id of pool, if any.
func (g *Gateway) storedReply(ctx context.Context, pool, id string) (protocol.Reply, bool, error) {
	var data []byte
	err := g.cfg.Pool.QueryRow(ctx, `SELECT reply FROM gateway_replies WHERE pool_id = $1 AND report_id = $2`, pool, id).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return protocol.Reply{}, false, nil
	}
	if err != nil {
		return protocol.Reply{}, false, fmt.Errorf("read the answer to report %s: %w", id, err)
	}
	var r protocol.Reply
	if err := json.Unmarshal(data, &r); err != nil {
		return protocol.Reply{}, false, fmt.Errorf("read the answer to report %s: %w", id, err)
	}
	return r, true, nil
}

// storeReply keeps the answer to report id of pool. Failures ("internal")
// are not kept: the repeat is tried afresh.
func (g *Gateway) storeReply(ctx context.Context, pool, id string, r protocol.Reply) error {
	if r.Code == protocol.CodeInternal {
		return nil
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := g.cfg.Pool.Exec(ctx, `INSERT INTO gateway_replies (pool_id, report_id, reply) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, pool, id, data); err != nil {
		return fmt.Errorf("keep the answer to report %s: %w", id, err)
	}
	return nil
}

// sweepReplies drops answers older than replyRetention.
func (g *Gateway) sweepReplies(ctx context.Context) error {
	if _, err := g.cfg.Pool.Exec(ctx, `DELETE FROM gateway_replies WHERE created_at < $1`, g.cfg.Now().Add(-replyRetention)); err != nil {
		return fmt.Errorf("sweep report answers: %w", err)
	}
	return nil
}
