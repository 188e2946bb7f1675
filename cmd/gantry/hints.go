package main

import (
	"errors"
	"fmt"
	"net"

	"connectrpc.com/connect"
)

// explain adds what to do to the errors a user fixes outside the command
// line: a call the server refused for want of a valid token, and a server
// that cannot be reached. Only the API's errors are explained: the
// server-side commands' connection errors (PostgreSQL, NATS) are not about
// the Gantry server.
func (g *globalOptions) explain(err error) error {
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		return err
	}
	switch {
	case cerr.Code() == connect.CodeUnauthenticated && g.token == "":
		where := "the credentials file"
		if g.credentialsFile != "" {
			where = g.credentialsFile
		}
		return fmt.Errorf("%w; no API token was given: pass --token, set GANTRY_TOKEN, or keep one in %s "+
			"(gantry dev writes the admin's there; an administrator issues others)", err, where)
	case cerr.Code() == connect.CodeUnauthenticated:
		return fmt.Errorf("%w; the server refused the token (expired, revoked, or issued by another server): "+
			"get a new one, and check --token, GANTRY_TOKEN and the credentials file", err)
	case unreachable(err):
		return fmt.Errorf("%w; cannot reach the Gantry server at %s: is it running (gantry dev, gantry server)? "+
			"Otherwise point --server or GANTRY_SERVER at it", err, g.server)
	}
	return err
}

// unreachable reports whether err is a failure to connect to the server
// (refused, no route, unknown host), rather than an answer from it.
func unreachable(err error) bool {
	if connect.CodeOf(err) != connect.CodeUnavailable {
		return false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}
