package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/gantryhq/gantry/eventstore/aggregate"
	"github.com/gantryhq/gantry/services/platform/bus"
	"github.com/gantryhq/gantry/services/platform/settings"
	"github.com/gantryhq/gantry/services/platform/supervisor"
	"github.com/gantryhq/gantry/services/server/poolauth"
)

// The environment of the auth callout that authenticates pool launchers on
// an external NATS (docs/nats.md, "External NATS").
var (
	envCalloutIssuerSeed = settings.CalloutIssuerSeed.Name
	envCalloutXKeySeed   = settings.CalloutXKeySeed.Name
)

// calloutSettings are the auth callout's keys and options. Without an issuer
// no callout runs.
type calloutSettings struct {
	issuer, xkey nkeys.KeyPair
	account      string
	userTTL      time.Duration
}

// calloutFromEnv reads the auth callout's settings. An error names the
// variable, never its value.
func calloutFromEnv(getenv func(string) string) (calloutSettings, error) {
	var s calloutSettings
	issuerSeed, xkeySeed := settings.CalloutIssuerSeed.Value(getenv), settings.CalloutXKeySeed.Value(getenv)
	if issuerSeed == "" {
		if xkeySeed != "" {
			return s, fmt.Errorf("%s is set without %s", envCalloutXKeySeed, envCalloutIssuerSeed)
		}
		return s, nil
	}
	var err error
	if s.issuer, err = parseSeed(envCalloutIssuerSeed, issuerSeed, nkeys.PrefixByteAccount, "an account seed (SA…)"); err != nil {
		return s, err
	}
	if xkeySeed != "" {
		if s.xkey, err = parseSeed(envCalloutXKeySeed, xkeySeed, nkeys.PrefixByteCurve, "a curve seed (SX…)"); err != nil {
			return s, err
		}
	}
	s.account = settings.CalloutAccount.Value(getenv)
	if s.userTTL, err = settings.CalloutUserTTL.Duration(getenv); err != nil {
		return s, err
	}
	return s, nil
}

// parseSeed decodes the nkey seed in variable name, which must have prefix.
func parseSeed(name, seed string, prefix nkeys.PrefixByte, want string) (nkeys.KeyPair, error) {
	got, _, err := nkeys.DecodeSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("%s is not an nkey seed: want %s", name, want)
	}
	if got != prefix {
		return nil, fmt.Errorf("%s is a seed of the wrong kind (%s): want %s", name, got, want)
	}
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("%s is not an nkey seed: want %s", name, want)
	}
	return kp, nil
}

// authCallout returns the component that runs the auth callout
// (bus.ServeAuthCallout) on nc, with the pools' secrets checked against
// their events (aggs), when the bus is external and settings has an issuer; otherwise
// none. The embedded server authenticates launchers itself
// (enforcePoolAuth).
func authCallout(settings calloutSettings, b *bus.Bus, nc *nats.Conn, aggs *aggregate.Repository, log *slog.Logger) (*supervisor.Component, error) {
	switch {
	case b.Embedded() != nil && settings.issuer != nil:
		log.Warn("ignoring " + envCalloutIssuerSeed + ": the embedded NATS authenticates pool launchers itself")
		return nil, nil
	case b.Embedded() != nil:
		return nil, nil
	case settings.issuer == nil:
		log.Warn("no " + envCalloutIssuerSeed + ": pool launchers can connect only if the NATS cluster runs its own auth callout (docs/nats.md)")
		return nil, nil
	}
	cfg := bus.CalloutConfig{
		Issuer:  settings.issuer,
		XKey:    settings.xkey,
		Account: settings.account,
		Pools:   poolauth.New(aggs),
		UserTTL: settings.userTTL,
		Logger:  log,
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &supervisor.Component{Name: "nats-auth-callout", Run: func(ctx context.Context) error {
		return bus.ServeAuthCallout(ctx, nc, cfg)
	}}, nil
}
