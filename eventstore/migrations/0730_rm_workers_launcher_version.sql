-- The version each worker's launcher reported at registration
-- (WorkerRegistered.launcher_version): `gantry pool workers` shows it and
-- flags launchers older than the server. '' for launchers that reported none.
ALTER TABLE rm_workers ADD COLUMN launcher_version text NOT NULL DEFAULT '';
