// Package auth authenticates and authorizes API callers. A caller holds an
// API key (domain/apikey) and exchanges it for a short-lived session token
// (Sessions.Exchange): a JWT signed with the operator's asymmetric key
// (KeySet, Issuer) and verified with github.com/golang-jwt/jwt/v5 against an
// explicit list of algorithms. Every request's token is checked by the
// Connect interceptor (or the net/http middleware): its signature, then
// that its API key is still live, then that the key's role is at least the
// one the procedure needs in the one role table (Policy). It also keeps
// the CLI's credentials file.
package auth
