// InboundEndpoint's state, shared by the endpoint (its public accessors) and
// the Exchange handlers (ExchangeService) that claim its channels and report
// what arrives on them. Private to worker/exchange.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "proto/slipstream.pb.h"
#include "worker/exchange/inbound_endpoint.h"

namespace slipstream {

struct InboundEndpoint::Impl {
  std::string job_id;
  int64_t attempt = 0;
  std::vector<std::string> peer_ids;
  int local_index = 0;
  InputGate* gate = nullptr;

  struct Channel {
    bool claimed = false;
    bool connected = false;
    bool ended = false;
    std::string error;
    int64_t error_since_ms = 0;
    int64_t batches = 0;
    int64_t records = 0;
    int64_t bytes = 0;
    int64_t watermark_ms = INT64_MIN;
    bool idle = false;
  };
  mutable std::mutex mu;
  std::condition_variable cv;
  std::vector<Channel> channels;
  std::optional<std::string> broken;
  int active_streams = 0;  // handlers using this endpoint (and its gate)

  void StreamStarted() {
    std::lock_guard lock(mu);
    ++active_streams;
  }
  void StreamDone() {
    std::lock_guard lock(mu);
    --active_streams;
    cv.notify_all();
  }
  void WaitForStreams() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return active_streams == 0; });
  }

  absl::Status Claim(int index, const std::string& sender_id) {
    std::lock_guard lock(mu);
    if (index < 0 || index >= static_cast<int>(channels.size()) || index == local_index) {
      return absl::InvalidArgumentError(absl::StrCat("sender index ", index, " is not a peer of attempt ", attempt));
    }
    if (peer_ids[index] != sender_id) {
      return absl::InvalidArgumentError(absl::StrCat("worker index ", index, " of attempt ", attempt, " is ",
                                                     peer_ids[index], ", not ", sender_id));
    }
    Channel& c = channels[index];
    if (c.claimed) {
      // A second stream from the same peer means the first broke: what was
      // in flight on it is gone, so the attempt cannot continue.
      return absl::FailedPreconditionError(
          absl::StrCat("worker ", sender_id, " reconnected during attempt ", attempt, "; records may be lost"));
    }
    c.claimed = true;
    c.connected = true;
    return absl::OkStatus();
  }

  void OnBatch(int index, const v1::DataBatch& b) {
    std::lock_guard lock(mu);
    Channel& c = channels[index];
    ++c.batches;
    c.records += b.record_count();
    c.bytes += static_cast<int64_t>(b.records().size());
    c.watermark_ms = b.watermark_ms();
    c.idle = b.idle();
    if (b.end_of_input()) c.ended = true;
  }

  void OnStreamEnd(int index, const std::string& problem) {
    std::lock_guard lock(mu);
    Channel& c = channels[index];
    c.connected = false;
    if (c.ended && problem.empty()) return;
    c.error = problem.empty() ? "the stream ended before end of input" : problem;
    c.error_since_ms = Clock::Real().WallMs();
    if (!broken) broken = absl::StrCat("the data channel from worker ", peer_ids[index], " broke: ", c.error);
  }
};

}  // namespace slipstream
