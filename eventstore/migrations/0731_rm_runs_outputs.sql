-- A run's outputs (RunOutputsRecorded), as GetRun shows them: name, type,
-- value, and for a sensitive output no value, only whether the server keeps
-- it sealed. '[]' until the outputs are recorded.
ALTER TABLE rm_runs ADD COLUMN outputs jsonb NOT NULL DEFAULT '[]';
