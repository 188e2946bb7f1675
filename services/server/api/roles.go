package api

import (
	"github.com/gantryhq/gantry/domain/apikey"
	"github.com/gantryhq/gantry/proto/gen/gantry/v1/gantryv1connect"
	"github.com/gantryhq/gantry/services/platform/auth"
)

const (
	reader = apikey.RoleReader
	writer = apikey.RoleWriter
	admin  = apikey.RoleAdmin
)

// Roles returns the one table of who may call what: every procedure of the
// API and the lowest role that may call it. Readers read everything but
// secrets; writers also act on runs, stack locks and stack environments;
// administrators do everything, stacks' settings, worker pools, state
// surgery and API keys included. A procedure missing here is refused to
// everyone, and TestEveryProcedureHasARole fails.
func Roles() auth.Policy {
	return auth.Policy{
		gantryv1connect.EventServiceStreamProcedure: reader,

		gantryv1connect.StackServiceCreateStackProcedure:    admin,
		gantryv1connect.StackServiceGetStackProcedure:       reader,
		gantryv1connect.StackServiceListStacksProcedure:     reader,
		gantryv1connect.StackServiceUpdateStackProcedure:    admin,
		gantryv1connect.StackServiceDeleteStackProcedure:    admin,
		gantryv1connect.StackServiceLockStackProcedure:      writer,
		gantryv1connect.StackServiceUnlockStackProcedure:    writer, // forcing needs an admin (commands)
		gantryv1connect.StackServiceSetStackEnvProcedure:    writer,
		gantryv1connect.StackServiceDeleteStackEnvProcedure: writer,

		gantryv1connect.RunServiceTriggerRunProcedure:    writer,
		gantryv1connect.RunServiceTriggerTaskProcedure:   writer,
		gantryv1connect.RunServiceGetRunProcedure:        reader,
		gantryv1connect.RunServiceListRunsProcedure:      reader,
		gantryv1connect.RunServiceConfirmRunProcedure:    writer,
		gantryv1connect.RunServiceDiscardRunProcedure:    writer,
		gantryv1connect.RunServiceCancelRunProcedure:     writer,
		gantryv1connect.RunServiceStopRunProcedure:       writer,
		gantryv1connect.RunServiceStreamRunLogsProcedure: reader,

		gantryv1connect.WorkerPoolServiceCreateWorkerPoolProcedure: admin,
		gantryv1connect.WorkerPoolServiceGetWorkerPoolProcedure:    reader,
		gantryv1connect.WorkerPoolServiceListWorkerPoolsProcedure:  reader,
		gantryv1connect.WorkerPoolServiceListWorkersProcedure:      reader,
		gantryv1connect.WorkerPoolServiceGetPoolQueueProcedure:     reader,
		gantryv1connect.WorkerPoolServiceGetUsedByProcedure:        reader,
		gantryv1connect.WorkerPoolServiceDrainWorkerProcedure:      admin,
		gantryv1connect.WorkerPoolServiceUndrainWorkerProcedure:    admin,
		gantryv1connect.WorkerPoolServiceCyclePoolProcedure:        admin,
		gantryv1connect.WorkerPoolServiceResetWorkerPoolProcedure:  admin,

		gantryv1connect.StackEnvServiceListStackEnvProcedure:            reader, // secret values are never returned
		gantryv1connect.StackEnvServiceMountStackFileProcedure:          writer,
		gantryv1connect.StackOutputServiceGetStackOutputsProcedure:      reader, // sensitive values only to callers who may read secrets
		gantryv1connect.RerunServiceRetryRunProcedure:                   writer,
		gantryv1connect.RerunServiceReplanRunProcedure:                  writer,
		gantryv1connect.WorkerPoolAdminServiceUpdateWorkerPoolProcedure: admin,
		gantryv1connect.WorkerPoolAdminServiceDeleteWorkerPoolProcedure: admin,

		// Schedules and integrations are settings of stacks: administrators
		// change them, everyone reads them.
		gantryv1connect.ScheduleServiceSetDriftDetectionProcedure:   admin,
		gantryv1connect.ScheduleServiceAddScheduleProcedure:         admin,
		gantryv1connect.ScheduleServiceDeleteScheduleProcedure:      admin,
		gantryv1connect.ScheduleServiceListSchedulesProcedure:       reader,
		gantryv1connect.ScheduleServiceListDriftDetectionsProcedure: reader,
		gantryv1connect.VCSServiceAddVCSIntegrationProcedure:        admin,
		gantryv1connect.VCSServiceListVCSIntegrationsProcedure:      reader,
		gantryv1connect.VCSServiceListDeliveriesProcedure:           reader,
		gantryv1connect.VCSServiceReplayDeliveryProcedure:           admin,

		gantryv1connect.StateServiceListStateVersionsProcedure: reader,
		// A whole state file outside a run holds every secret of the stack.
		gantryv1connect.StateServiceDownloadStateProcedure: admin,
		gantryv1connect.StateServiceRollbackStateProcedure: admin,

		gantryv1connect.ApiKeyServiceCreateApiKeyProcedure: admin,
		gantryv1connect.ApiKeyServiceListApiKeysProcedure:  admin,
		gantryv1connect.ApiKeyServiceRevokeApiKeyProcedure: admin,

		// The request carries its own credential, the API key.
		gantryv1connect.SessionServiceCreateSessionProcedure: auth.Anonymous,
	}
}
