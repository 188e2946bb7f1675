package bus

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gantryhq/gantry/domain/ids"
)

// ServiceUser is the NATS user of Gantry's own services. It has every
// permission. It cannot be mistaken for a pool, whose ids start with "wp_".
const ServiceUser = "gantry"

// verifyTimeout bounds one check of a pool secret. Checks run on the
// connecting client's own goroutine, so a slow one delays only that client.
const verifyTimeout = 10 * time.Second

// ErrRefused is matched by the errors of a PoolVerifier that mean the
// credentials are wrong (unknown or deleted pool, wrong or replaced secret),
// as opposed to errors that mean they could not be checked.
var ErrRefused = errors.New("credentials refused")

// PoolVerifier checks the credentials a pool launcher connects with: the pool
// id as user, the pool secret as password. It returns the pool's credential
// generation, or an error; an error wrapping ErrRefused means the
// credentials are wrong. Errors must not contain the secret.
type PoolVerifier interface {
	VerifyPoolSecret(ctx context.Context, poolID, secret string) (generation int, err error)
}

// authenticator is the embedded server's custom client authentication: the
// service user with its password, or a pool launcher whose secret pools
// accepts. It remembers the connections of each pool so that a reset can
// close them.
type authenticator struct {
	servicePassword [sha256.Size]byte
	logger          *slog.Logger

	mu     sync.Mutex
	pools  PoolVerifier   // nil refuses every launcher
	server *server.Server // set before the server starts
	conns  map[string]*poolConns
}

// poolConns are the authenticated connections of one pool. epoch grows with
// every DisconnectPool, so that a check that began before one does not let
// its client in afterwards.
type poolConns struct {
	epoch uint64
	ids   map[uint64]struct{}
}

func newAuthenticator(servicePassword string, pools PoolVerifier, logger *slog.Logger) *authenticator {
	return &authenticator{
		servicePassword: sha256.Sum256([]byte(servicePassword)),
		logger:          logger,
		pools:           pools,
		conns:           make(map[string]*poolConns),
	}
}

// setPools replaces the pool verifier.
func (a *authenticator) setPools(v PoolVerifier) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pools = v
}

// verifier returns the current pool verifier, or nil.
func (a *authenticator) verifier() PoolVerifier {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pools
}

// setServer tells the authenticator the server it serves, before it starts.
func (a *authenticator) setServer(s *server.Server) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.server = s
}

// Check implements server.Authentication. It refuses anything but a client
// connection with a user name and password.
func (a *authenticator) Check(c server.ClientAuthentication) bool {
	opts := c.GetOpts()
	log := a.logger.With("client_id", c.GetID(), "remote", remote(c))
	switch {
	case c.Kind() != server.CLIENT:
		log.Warn("NATS connection refused: not a client connection", "kind", c.Kind())
		return false
	case opts.Username == "":
		log.Warn("NATS connection refused: no user name and password")
		return false
	case opts.Username == ServiceUser:
		return a.checkService(c, log)
	default:
		return a.checkPool(c, log)
	}
}

func (a *authenticator) checkService(c server.ClientAuthentication, log *slog.Logger) bool {
	// Hashing first makes the comparison's time independent of the length.
	given := sha256.Sum256([]byte(c.GetOpts().Password))
	if subtle.ConstantTimeCompare(given[:], a.servicePassword[:]) != 1 {
		log.Warn("NATS connection refused: wrong password", "user", ServiceUser)
		return false
	}
	c.RegisterUser(&server.User{Username: ServiceUser}) // nil permissions: everything
	return true
}

func (a *authenticator) checkPool(c server.ClientAuthentication, log *slog.Logger) bool {
	pool := c.GetOpts().Username
	// The pool id becomes part of the permission subjects: a "*" or a dot in
	// it would widen them to other pools.
	if err := ids.WorkerPool.Validate("user", pool); err != nil {
		log.Warn("NATS connection refused: the user is neither the service user nor a pool id")
		return false
	}
	log = log.With("pool_id", pool)
	pools := a.verifier()
	if pools == nil {
		log.Warn("NATS connection refused: pool launchers cannot connect, no pool verifier is configured")
		return false
	}
	epoch := a.epoch(pool)
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	defer cancel()
	generation, err := pools.VerifyPoolSecret(ctx, pool, c.GetOpts().Password)
	switch {
	case errors.Is(err, ErrRefused):
		log.Warn("NATS connection refused", "err", err)
		return false
	case err != nil:
		log.Error("NATS connection refused: cannot check the pool secret", "err", err)
		return false
	}
	if !a.track(pool, epoch, c.GetID()) {
		log.Warn("NATS connection refused: the pool's connections were closed while it connected")
		return false
	}
	c.RegisterUser(&server.User{Username: pool, Permissions: poolPermissions(pool)})
	log.Info("pool launcher connected to NATS", "generation", generation)
	return true
}

// epoch returns the current epoch of pool's connections.
func (a *authenticator) epoch(pool string) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if p := a.conns[pool]; p != nil {
		return p.epoch
	}
	return 0
}

// track records client id as a connection of pool, unless the pool's
// connections were closed since epoch. Entries are created only here, for
// pools whose secret was accepted, and by disconnect, so refused guesses at
// pool ids take no memory. Connections closed meanwhile are forgotten here.
func (a *authenticator) track(pool string, epoch uint64, id uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.conns[pool]
	if p == nil {
		p = &poolConns{ids: make(map[uint64]struct{})}
		a.conns[pool] = p
	}
	if p.epoch != epoch {
		return false
	}
	for old := range p.ids {
		if a.server.GetClient(old) == nil {
			delete(p.ids, old)
		}
	}
	p.ids[id] = struct{}{}
	return true
}

// disconnect closes every connection of pool and refuses those still being
// checked. It returns how many it closed.
func (a *authenticator) disconnect(pool string) int {
	a.mu.Lock()
	p := a.conns[pool]
	if p == nil {
		p = &poolConns{ids: make(map[uint64]struct{})}
		a.conns[pool] = p
	}
	p.epoch++
	closing := p.ids
	p.ids = make(map[uint64]struct{})
	srv := a.server
	a.mu.Unlock()

	closed := 0
	for id := range closing {
		// An error means the connection had closed already.
		if srv.DisconnectClientByID(id) == nil {
			closed++
		}
	}
	return closed
}

// remote is the client's address for logs, or "" if unknown.
func remote(c server.ClientAuthentication) string {
	if addr := c.RemoteAddress(); addr != nil {
		return addr.String()
	}
	return ""
}
