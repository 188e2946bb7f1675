-- Last heartbeat of each live worker, shared by every gateway replica
-- (services/gateway). Not an event stream and not a read model: a row is
-- written when a worker registers, moved forward by each heartbeat, and
-- deleted when the worker is marked lost or exits. A heartbeat updates only
-- the row of its own pool, so a launcher cannot keep another pool's worker
-- alive.
CREATE TABLE worker_heartbeats (
    worker_id text        PRIMARY KEY,
    pool_id   text        NOT NULL,
    last_seen timestamptz NOT NULL
);

CREATE INDEX worker_heartbeats_last_seen ON worker_heartbeats (last_seen);
