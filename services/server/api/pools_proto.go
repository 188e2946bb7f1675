package api

import (
	"math"

	"golang.org/x/mod/semver"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gantryhq/gantry/domain/worker"
	"github.com/gantryhq/gantry/domain/workerpool"
	"github.com/gantryhq/gantry/projections"
	gantryv1 "github.com/gantryhq/gantry/proto/gen/gantry/v1"
)

// Conversions from the worker pool read models to the API messages.

func keyAlgorithmToProto(a workerpool.KeyAlgorithm) gantryv1.KeyAlgorithm {
	switch a {
	case workerpool.RSA:
		return gantryv1.KeyAlgorithm_KEY_ALGORITHM_RSA
	case workerpool.ECDSA:
		return gantryv1.KeyAlgorithm_KEY_ALGORITHM_ECDSA
	}
	return gantryv1.KeyAlgorithm_KEY_ALGORITHM_UNSPECIFIED
}

func workerStatusToProto(st worker.Status) gantryv1.WorkerStatus {
	switch st {
	case worker.Idle:
		return gantryv1.WorkerStatus_WORKER_STATUS_IDLE
	case worker.Busy:
		return gantryv1.WorkerStatus_WORKER_STATUS_BUSY
	case worker.Drained:
		return gantryv1.WorkerStatus_WORKER_STATUS_DRAINED
	case worker.Lost:
		return gantryv1.WorkerStatus_WORKER_STATUS_LOST
	case worker.Exited:
		return gantryv1.WorkerStatus_WORKER_STATUS_EXITED
	}
	return gantryv1.WorkerStatus_WORKER_STATUS_UNSPECIFIED
}

func poolToProto(v projections.PoolView) *gantryv1.WorkerPool {
	out := &gantryv1.WorkerPool{
		Id: v.ID, Name: v.Name, Description: v.Description, Labels: v.Labels,
		DriftDetectionRunLimit: clampInt32(v.DriftRunLimit), Public: v.Public, Generation: clampInt32(v.Generation),
		Certificate: &gantryv1.Certificate{
			Pem: v.Certificate.PEM, Serial: v.Certificate.Serial, Fingerprint: v.Certificate.Fingerprint,
			KeyAlgorithm: keyAlgorithmToProto(v.Certificate.KeyAlgorithm), KeyBits: clampInt32(v.Certificate.KeyBits),
		},
		CreatedAt: timestamppb.New(v.CreatedAt), Workers: clampInt32(v.Workers), BusyWorkers: clampInt32(v.BusyWorkers),
	}
	if v.CycleRequestedAt != nil {
		out.CycleRequestedAt = timestamppb.New(*v.CycleRequestedAt)
	}
	return out
}

func workerToProto(v projections.WorkerView, serverVersion string) *gantryv1.Worker {
	return &gantryv1.Worker{
		Id: v.ID, PoolId: v.PoolID, Status: workerStatusToProto(v.Status), Metadata: v.Metadata, RunId: v.RunID,
		RegisteredAt: timestamppb.New(v.RegisteredAt), LauncherVersion: v.LauncherVersion,
		LauncherOutdated: launcherOutdated(v.LauncherVersion, serverVersion),
	}
}

// launcherOutdated reports whether a launcher's version is older than the
// server's, both semantic versions as Go modules write them ("v1.4.0",
// pseudo-versions included). A development build ("(devel)", built from a
// checkout without a version) or a launcher that reported nothing cannot
// be placed, on either side: it is never flagged.
func launcherOutdated(launcher, server string) bool {
	return semver.IsValid(launcher) && semver.IsValid(server) && semver.Compare(launcher, server) < 0
}

func queueEntryToProto(e projections.QueueEntry) *gantryv1.QueuedRun {
	return &gantryv1.QueuedRun{
		RunId: e.RunID, StackId: e.StackID, StackName: e.StackName, Type: runTypeToProto(e.Type),
		State: runStateToProto(e.Status), WorkerId: e.WorkerID, DriftDetection: e.Drift, CreatedAt: timestamppb.New(e.CreatedAt),
	}
}

func stackRefsToProto(refs []projections.StackRef) []*gantryv1.StackRef {
	out := make([]*gantryv1.StackRef, len(refs))
	for i, r := range refs {
		out[i] = &gantryv1.StackRef{Id: r.ID, Name: r.Name}
	}
	return out
}

// clampInt32 converts a count for the API; counts never come near the limit.
func clampInt32(n int) int32 { return int32(min(max(n, math.MinInt32), math.MaxInt32)) }
