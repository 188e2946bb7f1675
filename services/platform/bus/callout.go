package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/gantryhq/gantry/domain/ids"
)

// DefaultCalloutUserTTL is how long the user JWTs the auth callout issues
// are valid. A pool reset or deletion closes the pool's connections within
// this time on an external NATS: the server disconnects a client when its
// JWT expires, and the client's reconnect is checked against the new secret.
const DefaultCalloutUserTTL = 15 * time.Minute

// DefaultCalloutAccount is the account launchers are placed in when the
// nats-server runs without accounts (or leaves its users in the global one).
const DefaultCalloutAccount = "$G"

// CalloutQueue is the queue group of the auth callout's subscription.
const CalloutQueue = "gantry-auth-callout"

// calloutWorkers is how many authorization requests are checked at once;
// each check loads the pool's events.
const calloutWorkers = 8

// calloutBacklog is how many requests wait for a worker. Beyond it, nats.go
// drops requests (slow consumer); the server then refuses those clients at
// its auth timeout and they retry.
const calloutBacklog = 256

// Messages of refusals sent back to the server, which logs them. They never
// say why the credentials are wrong, nor contain them.
const (
	refusedCredentials = "pool credentials refused"
	refusedUnchecked   = "pool credentials could not be checked"
)

// CalloutConfig configures ServeAuthCallout.
type CalloutConfig struct {
	// Issuer is the account key pair (seed "SA…") that signs the responses
	// and the user JWTs. Its public key is the nats-server's
	// authorization.auth_callout.issuer. Required.
	Issuer nkeys.KeyPair
	// XKey is the curve key pair (seed "SX…") whose public key is
	// auth_callout.xkey, if the server encrypts its requests. Optional.
	XKey nkeys.KeyPair
	// Account is the account launchers are placed in; default
	// DefaultCalloutAccount.
	Account string
	// Pools checks the launchers' pool secrets. Required.
	Pools PoolVerifier
	// UserTTL is the validity of the user JWTs issued; default
	// DefaultCalloutUserTTL.
	UserTTL time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of cfg, joined.
func (cfg CalloutConfig) Validate() error {
	var errs []error
	if cfg.Issuer == nil {
		errs = append(errs, errors.New("auth callout: no issuer key"))
	} else if err := checkKey(cfg.Issuer, nkeys.IsValidPublicAccountKey); err != nil {
		errs = append(errs, fmt.Errorf("auth callout issuer: %w: need an account seed (SA…)", err))
	}
	if cfg.XKey != nil {
		if err := checkKey(cfg.XKey, nkeys.IsValidPublicCurveKey); err != nil {
			errs = append(errs, fmt.Errorf("auth callout xkey: %w: need a curve seed (SX…)", err))
		}
	}
	if cfg.Pools == nil {
		errs = append(errs, errors.New("auth callout: no pool verifier"))
	}
	if cfg.UserTTL < 0 {
		errs = append(errs, fmt.Errorf("auth callout: negative user TTL %s", cfg.UserTTL))
	}
	return errors.Join(errs...)
}

// checkKey reports whether kp holds a private key whose public key valid
// accepts.
func checkKey(kp nkeys.KeyPair, valid func(string) bool) error {
	pub, err := kp.PublicKey()
	if err != nil {
		return err
	}
	if !valid(pub) {
		return fmt.Errorf("wrong kind of key %s", pub)
	}
	if _, err := kp.PrivateKey(); err != nil {
		return fmt.Errorf("key %s has no private key", pub)
	}
	return nil
}

// withDefaults returns cfg with its defaults applied.
func (cfg CalloutConfig) withDefaults() CalloutConfig {
	if cfg.Account == "" {
		cfg.Account = DefaultCalloutAccount
	}
	if cfg.UserTTL == 0 {
		cfg.UserTTL = DefaultCalloutUserTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// ServeAuthCallout is the auth callout service of an external nats-server
// (docs/nats.md): it answers the server's authorization requests on
// $SYS.REQ.USER.AUTH, received on nc, until ctx ends. A client with a pool
// id as user and the pool's secret as password (what cfg.Pools accepts) gets
// a user JWT, valid for cfg.UserTTL, with the permissions of a launcher of
// that pool; anything else is refused. nc must be a user the server lists in
// auth_callout.auth_users. It returns nil when ctx ends, or an error if it
// cannot start or its subscription closes (for its supervisor to run it
// again).
func ServeAuthCallout(ctx context.Context, nc *nats.Conn, cfg CalloutConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	c := &callout{cfg: cfg.withDefaults()}
	c.log = c.cfg.Logger.With("component", "nats-auth-callout")
	msgs := make(chan *nats.Msg, calloutBacklog)
	// Every server replica runs a callout; the queue group has each request
	// answered once.
	sub, err := nc.ChanQueueSubscribe(server.AuthCalloutSubject, CalloutQueue, msgs)
	if err != nil {
		return fmt.Errorf("auth callout: subscribe to %s: %w", server.AuthCalloutSubject, err)
	}
	// A round trip makes sure the server has the subscription; while NATS is
	// unreachable this fails, for the caller to retry.
	if err := nc.FlushTimeout(verifyTimeout); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("auth callout: subscribe to %s: %w", server.AuthCalloutSubject, err)
	}
	issuer, _ := c.cfg.Issuer.PublicKey()
	c.log.Info("NATS auth callout serving", "issuer", issuer, "account", c.cfg.Account, "user_ttl", c.cfg.UserTTL.String(), "encrypted", c.cfg.XKey != nil)

	lost := WatchClosed(sub)
	work, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range calloutWorkers {
		wg.Go(func() {
			for {
				select {
				case <-work.Done():
					return
				case m := <-msgs:
					c.handle(work, m)
				}
			}
		})
	}
	var failed error
	select {
	case <-ctx.Done():
	case subject := <-lost:
		failed = fmt.Errorf("auth callout: subscription to %s closed", subject)
	}
	_ = sub.Unsubscribe()
	stop()
	wg.Wait()
	return failed
}

// callout answers authorization requests.
type callout struct {
	cfg CalloutConfig
	log *slog.Logger
}

// handle answers one authorization request. A request it cannot read gets
// no answer: without the request's user key and server id no answer would
// be accepted, and the server refuses the client at its auth timeout.
func (c *callout) handle(ctx context.Context, m *nats.Msg) {
	token := m.Data
	serverXKey := m.Header.Get(server.AuthRequestXKeyHeader)
	if serverXKey != "" {
		if c.cfg.XKey == nil {
			c.log.Error("encrypted NATS authorization request, but no xkey is configured")
			return
		}
		var err error
		if token, err = c.cfg.XKey.Open(m.Data, serverXKey); err != nil {
			c.log.Error("cannot decrypt a NATS authorization request", "err", err)
			return
		}
	}
	req, err := jwt.DecodeAuthorizationRequestClaims(string(token))
	if err != nil {
		c.log.Warn("undecodable NATS authorization request", "err", err)
		return
	}
	vr := jwt.CreateValidationResults()
	req.Validate(vr)
	// Time checks are left out: the request expires after the server's auth
	// timeout, in whole seconds, and a clock skew between the server and this
	// service would refuse every launcher. A replayed request gains nothing:
	// only the server that made it waits for a response for its user key.
	if vr.IsBlocking(false) {
		c.log.Warn("invalid NATS authorization request", "err", errors.Join(vr.Errors()...))
		return
	}

	log := c.log.With("client_id", req.ClientInformation.ID, "remote", req.ClientInformation.Host, "server", req.Server.Name)
	resp := jwt.NewAuthorizationResponseClaims(req.UserNkey)
	resp.Audience = req.Server.ID
	resp.Jwt, resp.Error = c.authorize(ctx, req, log)
	signed, err := resp.Encode(c.cfg.Issuer)
	if err != nil {
		log.Error("cannot sign a NATS authorization response", "err", err)
		return
	}
	data := []byte(signed)
	if serverXKey != "" {
		if data, err = c.cfg.XKey.Seal(data, serverXKey); err != nil {
			log.Error("cannot encrypt a NATS authorization response", "err", err)
			return
		}
	}
	if err := m.Respond(data); err != nil {
		log.Warn("cannot send a NATS authorization response", "err", err)
	}
}

// authorize returns the user JWT of the request's client, or why it is
// refused.
func (c *callout) authorize(ctx context.Context, req *jwt.AuthorizationRequestClaims, log *slog.Logger) (userJWT, refusal string) {
	opts := req.ConnectOptions
	pool := opts.Username
	switch {
	case pool == "" || opts.Password == "":
		log.Warn("NATS connection refused: no user name and password")
		return "", refusedCredentials
	case pool == ServiceUser:
		// The service user is in auth_users and never comes here, unless
		// the server configuration forgot it.
		log.Warn("NATS connection refused: the service user must be listed in auth_callout.auth_users")
		return "", refusedCredentials
	}
	// The pool id becomes part of the permission subjects: a "*" or a dot in
	// it would widen them to other pools.
	if err := ids.WorkerPool.Validate("user", pool); err != nil {
		log.Warn("NATS connection refused: the user is neither the service user nor a pool id")
		return "", refusedCredentials
	}
	log = log.With("pool_id", pool)
	vctx, cancel := context.WithTimeout(ctx, verifyTimeout)
	defer cancel()
	generation, err := c.cfg.Pools.VerifyPoolSecret(vctx, pool, opts.Password)
	switch {
	case errors.Is(err, ErrRefused):
		log.Warn("NATS connection refused", "err", err)
		return "", refusedCredentials
	case err != nil:
		log.Error("NATS connection refused: cannot check the pool secret", "err", err)
		return "", refusedUnchecked
	}

	uc := jwt.NewUserClaims(req.UserNkey)
	uc.Name = pool
	// Without operator mode the server places the user in the audience's
	// account.
	uc.Audience = c.cfg.Account
	uc.Expires = time.Now().Add(c.cfg.UserTTL).Unix()
	uc.Permissions = jwtPermissions(poolPermissions(pool))
	signed, err := uc.Encode(c.cfg.Issuer)
	if err != nil {
		log.Error("NATS connection refused: cannot sign the user JWT", "err", err)
		return "", refusedUnchecked
	}
	log.Info("pool launcher authorized by the NATS auth callout", "generation", generation, "expires", time.Unix(uc.Expires, 0).UTC())
	return signed, ""
}

// jwtPermissions is p in a user JWT.
func jwtPermissions(p *server.Permissions) jwt.Permissions {
	var out jwt.Permissions
	if p.Publish != nil {
		out.Pub.Allow.Add(p.Publish.Allow...)
		out.Pub.Deny.Add(p.Publish.Deny...)
	}
	if p.Subscribe != nil {
		out.Sub.Allow.Add(p.Subscribe.Allow...)
		out.Sub.Deny.Add(p.Subscribe.Deny...)
	}
	if p.Response != nil {
		out.Resp = &jwt.ResponsePermission{MaxMsgs: p.Response.MaxMsgs, Expires: p.Response.Expires}
	}
	return out
}
