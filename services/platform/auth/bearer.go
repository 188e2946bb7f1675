package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
)

// unauthenticatedMessage is all a refused caller learns: which check failed
// would help someone probing for a way in, and nobody else.
const unauthenticatedMessage = "missing or invalid token"

// unavailableMessage is what a caller learns when the token could not be
// checked at all (the verifier failed, not the token).
const unavailableMessage = "cannot check the token now; try again"

// bearerToken returns the token of the request's single
// "Authorization: Bearer <token>" header.
func bearerToken(h http.Header) (string, error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return "", errors.New("no Authorization header")
	case 1:
	default:
		return "", errors.New("several Authorization headers")
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errors.New("Authorization is not a Bearer credential")
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", errors.New("empty bearer token")
	}
	return token, nil
}

// authenticate verifies the request's bearer token and returns ctx carrying
// its principal. On failure it logs why (never the token) and says whether
// the token was refused (unavailable false) or could not be checked at all
// (true: the verifier failed, not the token).
func authenticate(ctx context.Context, v Verifier, log *slog.Logger, where string, h http.Header) (_ context.Context, unavailable bool, _ error) {
	token, err := bearerToken(h)
	if err != nil {
		log.DebugContext(ctx, "request refused: no valid token", "procedure", where, "reason", err.Error())
		return ctx, false, err
	}
	p, err := v.Verify(ctx, token)
	switch {
	case err == nil:
		return WithPrincipal(ctx, p), false, nil
	case errors.Is(err, ErrInvalidToken):
		log.DebugContext(ctx, "request refused: no valid token", "procedure", where, "reason", err.Error())
		return ctx, false, err
	default:
		log.WarnContext(ctx, "cannot check a token", "procedure", where, "err", err.Error())
		return ctx, true, err
	}
}
