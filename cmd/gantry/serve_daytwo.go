package main

import (
	"connectrpc.com/connect"

	"github.com/gantryhq/gantry/projections"
	"github.com/gantryhq/gantry/services/server/api"
)

// dayTwoRoutes are the Connect services of the day-two commands: a stack's
// environment and outputs, retries and replans, pool updates and deletes.
func dayTwoRoutes(d apiDeps, queries *projections.Queries, authn connect.HandlerOption) []api.Route {
	return []api.Route{
		api.NewStackEnvService(d.cmds, queries, identify, d.log).Route(authn),
		api.NewOutputService(d.states, d.cmds, identify, d.log).Route(authn),
		api.NewRerunService(d.cmds, queries, identify, d.log).Route(authn),
		api.NewPoolAdminService(d.cmds, queries, identify, d.log).Route(authn),
	}
}
