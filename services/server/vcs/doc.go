// Package vcs speaks to GitHub and GitLab: it verifies the signature of a
// webhook delivery, parses the push and pull/merge request payloads into
// one Event, and reports commit statuses through the provider's API. It
// holds no state; the integrations and deliveries are aggregates
// (domain/vcs, domain/delivery).
package vcs
