package projections

import (
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is matched by the error of a query for something the read
// models do not hold (it may not exist, or not be projected yet).
var ErrNotFound = errors.New("not found")

// Page sizes of the List queries.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Queries reads the read models. Lists come a page at a time, in a stable
// order, with an opaque token for the next page ("" after the last).
type Queries struct {
	pool *pgxpool.Pool
}

// NewQueries returns queries on pool.
func NewQueries(pool *pgxpool.Pool) *Queries { return &Queries{pool: pool} }

// pageSize applies the default to a size <= 0 and caps it at MaxPageSize.
func pageSize(n int) int {
	if n <= 0 {
		return DefaultPageSize
	}
	return min(n, MaxPageSize)
}
