package pgserver

import (
	"context"
	"fmt"
	"regexp"

	"github.com/jackc/pgx/v5"
)

// databaseName restricts names to what needs no thought in URLs and shells; PostgreSQL's own
// limit is 63 bytes.
var databaseName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,62}$`)

// ValidateDatabaseName reports whether name can be used with CreateDatabase and DropDatabase.
func ValidateDatabaseName(name string) error {
	if !databaseName.MatchString(name) {
		return fmt.Errorf("database name %q must be 1-63 letters, digits, '_' or '-', starting with a letter or '_'", name)
	}
	return nil
}

// CreateDatabase creates an empty database owned by the postgres superuser.
func (s *Server) CreateDatabase(ctx context.Context, name string) error {
	if err := ValidateDatabaseName(name); err != nil {
		return err
	}
	if err := s.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// DropDatabase drops a database, ending its open sessions first (WITH (FORCE)); a database that
// does not exist is not an error.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if err := ValidateDatabaseName(name); err != nil {
		return err
	}
	if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// exec runs one statement in the maintenance database. CREATE and DROP DATABASE cannot run in
// a transaction, which a plain connection's Exec does not open.
func (s *Server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", s.URL("postgres"), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}
