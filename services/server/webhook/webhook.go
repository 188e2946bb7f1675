// Package webhook serves POST /webhooks/github/NAME and
// POST /webhooks/gitlab/NAME on the API port. It authenticates a delivery
// by its signature before anything else (X-Hub-Signature-256, the
// HMAC-SHA256 of the body under the integration's webhook secret;
// X-Gitlab-Token, the secret itself), reading no more of the body than the
// size limit; records a verified delivery of an event Gantry acts on as an
// event; and answers at once. The drain does the rest.
//
// Answers: 202 recorded; 200 a delivery seen before, a ping, or an event
// type that queues no runs (nothing recorded); 400 a body that is not JSON;
// 401 a missing or bad signature, or no such integration; 405 not a POST;
// 413 a body over the limit. Nothing is recorded but on 202.
package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/gantryhq/gantry/domain"
	"github.com/gantryhq/gantry/domain/delivery"
	domainvcs "github.com/gantryhq/gantry/domain/vcs"
	"github.com/gantryhq/gantry/services/server/commands"
	"github.com/gantryhq/gantry/services/server/vcs"
)

// PathPrefix is where the handler is mounted.
const PathPrefix = "/webhooks/"

// MaxBodyBytes is the default size limit of a delivery's body.
const MaxBodyBytes = delivery.MaxPayloadBytes

// Integrations finds integrations and records deliveries;
// *commands.Service satisfies it.
type Integrations interface {
	WebhookTarget(ctx context.Context, provider domainvcs.Provider, name string) (commands.WebhookTarget, error)
	RecordDelivery(ctx context.Context, d commands.Delivery) (id string, duplicate bool, err error)
}

// Handler serves the webhook endpoints.
type Handler struct {
	integrations Integrations
	maxBody      int64
	log          *slog.Logger
}

// New returns the handler. maxBody <= 0 means MaxBodyBytes (it cannot be
// raised above it); log may be nil.
func New(integrations Integrations, maxBody int64, log *slog.Logger) *Handler {
	if maxBody <= 0 || maxBody > MaxBodyBytes {
		maxBody = MaxBodyBytes
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Handler{integrations: integrations, maxBody: maxBody, log: log.With("component", "webhooks")}
}

// answer is the JSON body of every reply.
type answer struct {
	DeliveryID string `json:"delivery_id,omitempty"`
	Status     string `json:"status"` // recorded, duplicate, ignored, or error
	Message    string `json:"message,omitempty"`
}

func reply(w http.ResponseWriter, code int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(a)
}

func refuse(w http.ResponseWriter, code int, msg string) {
	reply(w, code, answer{Status: "error", Message: msg})
}

// unauthenticated says as little as possible: an unknown integration and a
// bad signature look the same.
const unauthenticated = "no such integration, or the signature does not verify"

// ServeHTTP serves one delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(w, http.StatusMethodNotAllowed, "deliveries are POSTed")
		return
	}
	rest := strings.TrimPrefix(r.URL.Path, PathPrefix)
	providerName, name, ok := strings.Cut(rest, "/")
	provider := domainvcs.Provider(providerName)
	if !ok || !provider.Valid() || name == "" || strings.Contains(name, "/") {
		refuse(w, http.StatusNotFound, "use /webhooks/github/NAME or /webhooks/gitlab/NAME")
		return
	}
	log := h.log.With("provider", providerName, "integration", name)
	// The signature comes first: without one, nothing else is looked at.
	sigHeader := vcs.HeaderGitHubSignature
	if provider == domainvcs.GitLab {
		sigHeader = vcs.HeaderGitLabToken
	}
	signature := r.Header.Get(sigHeader)
	if signature == "" {
		refuse(w, http.StatusUnauthorized, "missing "+sigHeader)
		return
	}
	target, err := h.integrations.WebhookTarget(r.Context(), provider, name)
	if errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrInvalid) {
		refuse(w, http.StatusUnauthorized, unauthenticated)
		return
	}
	if err != nil {
		log.Error("webhook: look up the integration", "err", err)
		refuse(w, http.StatusInternalServerError, "internal error")
		return
	}
	if provider == domainvcs.GitLab && !vcs.VerifyGitLab(target.Secret, signature) {
		refuse(w, http.StatusUnauthorized, unauthenticated)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		refuse(w, http.StatusRequestEntityTooLarge, "the body is larger than the limit of "+strconv.FormatInt(h.maxBody, 10)+" bytes")
		return
	case err != nil:
		refuse(w, http.StatusBadRequest, "could not read the body")
		return
	}
	if provider == domainvcs.GitHub && !vcs.VerifyGitHub(target.Secret, body, signature) {
		refuse(w, http.StatusUnauthorized, unauthenticated)
		return
	}
	event := r.Header.Get(vcs.HeaderGitHubEvent)
	if provider == domainvcs.GitLab {
		event = r.Header.Get(vcs.HeaderGitLabEvent)
	}
	switch {
	case provider == domainvcs.GitHub && event == "ping":
		reply(w, http.StatusOK, answer{Status: "ignored", Message: "pong"})
		return
	case event == "":
		refuse(w, http.StatusBadRequest, "missing the event type header")
		return
	case !vcs.Handled(provider, event):
		reply(w, http.StatusOK, answer{Status: "ignored", Message: "event " + event + " does not queue runs"})
		return
	case !json.Valid(body):
		refuse(w, http.StatusBadRequest, "the body is not valid JSON")
		return
	}
	id, duplicate, err := h.integrations.RecordDelivery(r.Context(), commands.Delivery{
		IntegrationID: target.IntegrationID, Provider: provider, Event: event, ExternalID: externalID(provider, r.Header, body), Payload: body,
	})
	switch {
	case errors.Is(err, domain.ErrInvalid):
		refuse(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		log.Error("webhook: record the delivery", "err", err)
		refuse(w, http.StatusInternalServerError, "internal error")
		return
	case duplicate:
		reply(w, http.StatusOK, answer{DeliveryID: id, Status: "duplicate", Message: "this delivery was recorded before"})
		return
	}
	log.Debug("delivery recorded", "delivery_id", id, "event", event)
	reply(w, http.StatusAccepted, answer{DeliveryID: id, Status: "recorded"})
}

// externalID is the provider's id of a delivery; without one (an old
// GitLab), the body's hash, so that a redelivery is still recognised.
func externalID(provider domainvcs.Provider, h http.Header, body []byte) string {
	keys := []string{vcs.HeaderGitHubDelivery}
	if provider == domainvcs.GitLab {
		keys = []string{vcs.HeaderGitLabEventUUID, vcs.HeaderIdempotencyKey}
	}
	for _, k := range keys {
		if v := strings.TrimSpace(h.Get(k)); v != "" && len(v) <= delivery.MaxEventLength {
			return v
		}
	}
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:16])
}
