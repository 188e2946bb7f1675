package bus

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// probeTimeout bounds the reachability check of each external server.
const probeTimeout = 5 * time.Second

// probe checks that at least one of the servers in url (without credentials, as
// externalServers returns it) answers as a NATS server. It reads the INFO line every server
// sends on accept instead of connecting a client, so that it needs no credentials.
func probe(ctx context.Context, url string) error {
	var errs []error
	for _, raw := range strings.Split(url, ",") {
		u, err := parseServerURL(raw)
		if err != nil {
			return err
		}
		if err := probeOne(ctx, serverAddress(u)); err != nil {
			errs = append(errs, err)
			continue
		}
		return nil
	}
	return fmt.Errorf("NATS at %s is not reachable: %w", url, errors.Join(errs...))
}

func probeOne(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetReadDeadline(deadline); err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("%s: read server greeting: %w", addr, err)
	}
	if !strings.HasPrefix(line, "INFO ") {
		return fmt.Errorf("%s does not speak NATS (greeting %.40q)", addr, line)
	}
	return nil
}
