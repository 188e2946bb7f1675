package workerpool

import "time"

// Command is a request to change a worker pool. Every command carries who
// asks (Actor) and when (At).
type Command interface{ isCommand() }

// Create makes a pool from a certificate signed outside the domain and the
// hash of a freshly generated secret.
type Create struct {
	PoolID        string // "wp_…"; the public pool is ids.PublicPool
	Name          string
	Description   string
	Labels        []string
	DriftRunLimit int  // 0: no limit; N >= 1: at most N concurrent drift-detection runs
	Public        bool // the built-in public pool, run by the operator
	Certificate   Certificate
	SecretHash    string
	Actor         string
	At            time.Time
}

// Update replaces the pool's name, description, labels and drift limit.
// Equal values change nothing.
type Update struct {
	Name          string
	Description   string
	Labels        []string
	DriftRunLimit int
	Actor         string
	At            time.Time
}

// Reset replaces the pool's certificate and secret; workers holding the old
// token are refused from then on.
type Reset struct {
	Certificate Certificate
	SecretHash  string
	Actor       string
	At          time.Time
}

// Cycle asks every worker of the pool to exit.
type Cycle struct {
	Actor string
	At    time.Time
}

// Delete removes a private pool that no stack uses. The aggregate does not
// know the stacks: UsedBy names those the caller found on the pool (by name
// or id), and any refuses the delete.
type Delete struct {
	UsedBy []string
	Actor  string
	At     time.Time
}

func (Create) isCommand() {}
func (Update) isCommand() {}
func (Reset) isCommand()  {}
func (Cycle) isCommand()  {}
func (Delete) isCommand() {}
