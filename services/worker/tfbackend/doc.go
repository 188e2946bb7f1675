// Package tfbackend is the worker's side of Gantry-managed Terraform state:
// it refuses code that declares a backend of its own (CheckNoBackend) and
// writes the backend override that points terraform at the server's state
// backend (OverrideFile).
package tfbackend
