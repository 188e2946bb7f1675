-- The gateway's answers to worker reports that carried a report id
-- (services/gateway): a launcher that got no answer sends the report again
-- with the same id and gets the first answer back instead of a refusal of
-- the repeat. Rows older than an hour are swept.
CREATE TABLE gateway_replies (
    pool_id    text        NOT NULL,
    report_id  text        NOT NULL,
    reply      jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (pool_id, report_id)
);

CREATE INDEX gateway_replies_created_at ON gateway_replies (created_at);
