package ui

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"sync"
	"time"
)

// DevSignInPath is the path of gantry dev's one-click sign-in link.
const DevSignInPath = "/dev-sign-in"

// DevSignInTTL is how long the link of gantry dev stays valid.
const DevSignInTTL = 10 * time.Minute

// DevSignIn is gantry dev's one-click local sign-in: one random token,
// known only to the process that printed the link, valid for DevSignInTTL
// and for one use. It signs the browser in with the dev admin key.
// gantry server never has one.
type DevSignIn struct {
	key     func(ctx context.Context) (string, error)
	mu      sync.Mutex
	token   string
	expires time.Time
}

// NewDevSignIn returns a one-time sign-in whose use opens a session with
// the API key key returns.
func NewDevSignIn(key func(ctx context.Context) (string, error)) *DevSignIn {
	return &DevSignIn{key: key, token: randomToken(), expires: time.Now().Add(DevSignInTTL)}
}

// Link returns the sign-in link for the UI at baseURL.
func (d *DevSignIn) Link(baseURL string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return baseURL + DevSignInPath + "?token=" + d.token
}

// take uses the token up if it is token and still valid.
func (d *DevSignIn) take(token string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.token == "":
		return errors.New("this sign-in link was used already; sign in with the API key in the CLI's credentials file")
	case subtle.ConstantTimeCompare([]byte(token), []byte(d.token)) != 1:
		return errors.New("this sign-in link is not the one gantry dev printed")
	case time.Now().After(d.expires):
		d.token = ""
		return errors.New("this sign-in link expired; sign in with the API key in the CLI's credentials file")
	}
	d.token = ""
	return nil
}

func (u *UI) devSignIn(w http.ResponseWriter, r *http.Request) {
	if err := u.cfg.DevSignIn.take(r.URL.Query().Get("token")); err != nil {
		u.showSignIn(w, r, http.StatusForbidden, err.Error())
		return
	}
	key, err := u.cfg.DevSignIn.key(r.Context())
	if err != nil {
		u.log.ErrorContext(r.Context(), "ui: read the dev admin key", "err", err.Error())
		u.showSignIn(w, r, http.StatusInternalServerError, "The dev admin key could not be read; sign in with an API key.")
		return
	}
	u.startSession(w, r, key, "/stacks")
}
