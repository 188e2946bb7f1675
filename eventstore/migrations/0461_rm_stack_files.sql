-- Mounted files of stacks (projections/stacks.go), without their content:
-- it stays encrypted in the event store, like a secret variable's value.
CREATE TABLE rm_stack_files (
    stack_id   text        NOT NULL,
    path       text        NOT NULL,
    size       bigint      NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (stack_id, path)
);
