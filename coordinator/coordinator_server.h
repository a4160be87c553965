// CoordinatorServer: the JobManager. Serves the Coordinator gRPC service
// (proto/slipstream.proto): workers register and heartbeat, operators query
// the job. It owns the job's identity and the assignment of Kafka partitions
// and key groups to workers, and forgets workers whose heartbeats stop.
// This release runs one worker per job: a second live worker is refused with
// a message saying so. Thread-safe; gRPC calls run on gRPC's threads and a
// reaper thread expires silent workers.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace slipstream {

struct CoordinatorOptions {
  std::string listen_address = "0.0.0.0:6123";  // port 0 picks a free port
  std::string job_id;
  std::string topic;
  int max_parallelism = 128;
  int64_t heartbeat_timeout_ms = 10000;
  // Returns the topic's partition count (NotFound while it does not exist).
  std::function<absl::StatusOr<int>()> partition_count;
};

class CoordinatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Start(CoordinatorOptions options);
  ~CoordinatorServer();  // shuts down

  int port() const;
  void Shutdown();
  // Blocks until Shutdown.
  void Wait();

 private:
  struct Impl;
  explicit CoordinatorServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace slipstream
