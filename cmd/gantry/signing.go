package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gantryhq/gantry/services/platform/auth"
	"github.com/gantryhq/gantry/services/platform/keyring"
	"github.com/gantryhq/gantry/services/platform/settings"
)

// The environment variables of the keys session tokens are signed and
// verified with. Each takes the PEM itself, or, with _FILE, a file holding
// it; not both.
var (
	envSigningKey     = settings.SigningKey.Name
	envSigningKeyFile = settings.SigningKeyFile.Name
	envVerifyKeys     = settings.VerifyKeys.Name
	envVerifyKeysFile = settings.VerifyKeysFile.Name
)

// errNoSigningKey is the error of a server started without a signing key.
var errNoSigningKey = errors.New(envSigningKeyFile + " (or " + envSigningKey + ") is required: the private key session tokens are signed with, " +
	"a PEM Ed25519 or ECDSA P-256 key (openssl genpkey -algorithm ed25519 -out signing-key.pem); every replica needs the same one")

// signingKeysFromEnv returns the session token keys the environment names:
// the signing key, and the extra keys tokens may still be signed by (a
// rotation's old key). Without a signing key it uses devDataDir's,
// created on first use, when devDataDir is set (gantry dev), and fails
// otherwise. where says where the signing key came from, for the start-up
// lines.
func signingKeysFromEnv(getenv func(string) string, devDataDir string) (keys *auth.KeySet, where string, err error) {
	signing, where, err := pemFromEnv(getenv, envSigningKey, envSigningKeyFile)
	if err != nil {
		return nil, "", err
	}
	if signing == nil {
		if devDataDir == "" {
			return nil, "", errNoSigningKey
		}
		if signing, err = keyring.DevSigningKeyPEM(devDataDir); err != nil {
			return nil, "", err
		}
		where = filepath.Join(devDataDir, keyring.DevSigningKeyFile)
	}
	verify, _, err := pemFromEnv(getenv, envVerifyKeys, envVerifyKeysFile)
	if err != nil {
		return nil, "", err
	}
	keys, err = auth.ParseKeySet(signing, verify)
	if err != nil {
		return nil, "", fmt.Errorf("%s/%s: %w", envSigningKeyFile, envVerifyKeysFile, err)
	}
	return keys, where, nil
}

// pemFromEnv returns the PEM the variable inline holds or the file the
// variable file names; nil when neither is set.
func pemFromEnv(getenv func(string) string, inline, file string) (pem []byte, where string, err error) {
	text, path := getenv(inline), getenv(file)
	switch {
	case text != "" && path != "":
		return nil, "", fmt.Errorf("set %s or %s, not both", inline, file)
	case text != "":
		return []byte(text), inline, nil
	case path != "":
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", file, err)
		}
		return data, path, nil
	}
	return nil, "", nil
}
