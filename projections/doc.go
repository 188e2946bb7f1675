// Package projections builds Gantry's read models from the event store and
// answers queries on them.
//
// A Projection folds events into tables it owns (all named rm_…). The
// projector runtime feeds every projection the events in commit order and
// keeps one checkpoint per projection (row "projection:<name>" of the
// checkpoints table), updated in the same transaction as the tables, under
// a row lock on that checkpoint: any number of projector processes may run
// at once, and none applies an event twice or skips one. The tables are
// disposable: Rebuild empties them and replays every event.
//
// Queries reads the tables; Waiter lets a writer wait until the read models
// include what it just appended (read-your-writes).
package projections
