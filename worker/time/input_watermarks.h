// InputWatermarks: the watermark of an operator with several input channels
// (its own source plus one per peer worker), as Flink's StatusWatermarkValve
// computes it: the minimum over the channels that are active (not idle) and
// aligned; it holds while no channel qualifies, and never goes backwards.
// Unlike a finished input in Flink (which sends MAX_WATERMARK first), a
// channel that sent end of input keeps holding the watermark at its last
// value: input never ends in this job, so end of input means the sender
// stopped (graceful stop, stop-with-savepoint, an attempt winding down) and
// its unread records will be read by the next attempt. Advancing on the other
// channels alone would fire windows without them: wrong values in Redis. A channel that returns from idleness behind the operator's
// watermark is not aligned, and does not hold the others back, until its own
// watermark catches up (its events in between are late, as in Flink). A
// channel that has sent nothing yet counts with the minimum watermark, so an
// operator never runs ahead of a peer it has not heard from. Bounded input
// (BATCH) is where input does end: a source then sends INT64_MAX before its
// end of input, as Flink does, and the operator ends once AllEnded().
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace slipstream {

class InputWatermarks {
 public:
  explicit InputWatermarks(int channels);

  // The status a channel sent after its latest records. A channel's own
  // watermark never goes backwards either.
  void Update(int channel, int64_t watermark_ms, bool idle, bool end_of_input);

  // The combined watermark, or nullopt while no channel is active yet.
  std::optional<int64_t> Combined() const;

  bool ended(int channel) const { return channels_[channel].ended; }
  bool AllEnded() const;

 private:
  struct Channel {
    int64_t watermark;
    bool idle = false;
    bool ended = false;
    bool aligned = true;
  };
  void Recompute();

  std::vector<Channel> channels_;
  std::optional<int64_t> output_;
};

}  // namespace slipstream
