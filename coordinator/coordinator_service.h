// CoordinatorService: the Coordinator gRPC service (proto/slipstream.proto)
// as a thin adapter over the job's lifecycle: each RPC becomes registry
// updates and lifecycle events under one lock, and answers from the job's
// data. The lifecycle itself is in coordinator/job/.
//
// Who may call which RPC is checked before any handler runs
// (coordinator/rpc_access.h), so handlers do not.
//
// Thread-safe: gRPC calls run on gRPC's threads; Tick, ProbeWorkers and
// DiscoverPartitions on the server's periodic threads (or a test's). No RPC
// to a worker and no broker call is made while the lock is held.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "coordinator/coordinator_server.h"
#include "coordinator/job/job_lifecycle.h"
#include "proto/slipstream.grpc.pb.h"

namespace slipstream {

class CoordinatorService final : public v1::Coordinator::Service {
 public:
  explicit CoordinatorService(CoordinatorOptions options);

  // Set once before the service is served (not called: checkpointing disabled).
  void SetCheckpoints(std::unique_ptr<CheckpointCoordinator> checkpoints);
  CheckpointCoordinator* checkpoints() { return lifecycle_.job().checkpoints.get(); }
  // Set once before the service is served: execution.savepoint.path.
  void SetSavepoint(CompletedCheckpoint savepoint);
  // Logs where the first deployment will restore from.
  void LogRestoreSource();

  // The checkpoint coordinator gave up on `attempt` (too many failed
  // checkpoints in a row): fail it like a lost worker, unless it is over.
  void FailAttemptForCheckpoints(int64_t attempt, const std::string& cause);
  // The stop-with-savepoint of `attempt` completed: the job is FINISHED.
  void FinishJob(int64_t attempt, const std::string& savepoint_path);

  // One lifecycle step at the clock's time: expire silent workers, deploy,
  // rescale.
  void Tick();
  JobState state();
  // Flink notices a TaskManager whose connection is gone without waiting for
  // its heartbeat timeout. Here: a worker silent for a while, or one a
  // restart waits for, is probed with a TCP connection to its data port; a
  // refused connection means the process is gone, and the worker is lost at
  // once.
  void ProbeWorkers();
  // Reads the topic's partition count again (partition discovery).
  void DiscoverPartitions();

  grpc::Status RegisterWorker(grpc::ServerContext* context, const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status DeregisterWorker(grpc::ServerContext* context, const v1::DeregisterWorkerRequest* request,
                                v1::DeregisterWorkerResponse* response) override;
  grpc::Status AcknowledgeCheckpoint(grpc::ServerContext* context, const v1::AcknowledgeCheckpointRequest* request,
                                     v1::AcknowledgeCheckpointResponse* response) override;
  grpc::Status DeclineCheckpoint(grpc::ServerContext* context, const v1::DeclineCheckpointRequest* request,
                                 v1::DeclineCheckpointResponse* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                      v1::JobStatus* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  grpc::Status ListWorkers(grpc::ServerContext* context, const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;
  grpc::Status GetCheckpoints(grpc::ServerContext* context, const v1::GetCheckpointsRequest* request,
                              v1::CheckpointOverview* response) override;
  grpc::Status TriggerSavepoint(grpc::ServerContext* context, const v1::TriggerSavepointRequest* request,
                                v1::SavepointOperation* response) override;
  grpc::Status StopWithSavepoint(grpc::ServerContext* context, const v1::StopWithSavepointRequest* request,
                                 v1::SavepointOperation* response) override;
  grpc::Status GetSavepoint(grpc::ServerContext* context, const v1::GetSavepointRequest* request,
                            v1::SavepointOperation* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                         v1::CancelJobResponse* response) override;
  grpc::Status DisposeSavepoint(grpc::ServerContext* context, const v1::DisposeSavepointRequest* request,
                                v1::DisposeSavepointResponse* response) override;

 private:
  JobContext& job() { return lifecycle_.job(); }
  void Dispatch(JobEventKind kind, int64_t now, std::string cause = "", bool failure = true, int64_t attempt = 0,
                std::string detail = "");
  absl::Status CheckJobId(const std::string& job_id) const;
  void LogRegistration(const WorkerEntry& w);
  void OnReportedFailure(const WorkerEntry& w, const std::string& cause, int64_t attempt, int64_t now);
  std::string WhyNoAssignment();
  void FillJob(v1::JobStatus* response);
  void FillCheckpoints(v1::CheckpointOverview* overview);
  absl::Status StartSavepoint(const std::string& job_id, const std::string& target_dir, bool stop,
                              v1::SavepointOperation* out);
  absl::Status Dispose(const std::string& path_text, v1::DisposeSavepointResponse* response);

  const CoordinatorOptions options_;
  std::mutex mu_;
  JobLifecycle lifecycle_;  // guarded by mu_
};

}  // namespace slipstream
