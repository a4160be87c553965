#include "worker/time/input_watermarks.h"

#include <algorithm>
#include <limits>

namespace slipstream {

InputWatermarks::InputWatermarks(int channels)
    : channels_(channels, Channel{std::numeric_limits<int64_t>::min()}) {}

void InputWatermarks::Update(int channel, int64_t watermark_ms, bool idle, bool end_of_input) {
  Channel& c = channels_[channel];
  const int64_t output = output_.value_or(std::numeric_limits<int64_t>::min());
  if (end_of_input) c.ended = true;
  if (idle) {
    c.idle = true;
    c.aligned = false;
  } else {
    if (c.idle && c.watermark >= output) c.aligned = true;  // back from idle
    c.idle = false;
  }
  if (!idle && watermark_ms > c.watermark) {
    c.watermark = watermark_ms;
    if (watermark_ms >= output) c.aligned = true;
  }
  Recompute();
}

void InputWatermarks::Recompute() {
  bool any = false;
  int64_t combined = std::numeric_limits<int64_t>::max();
  for (const Channel& c : channels_) {
    // An ended channel still counts, at its last watermark: see the header.
    if (c.idle || !c.aligned) continue;
    any = true;
    combined = std::min(combined, c.watermark);
  }
  if (any && (!output_ || combined > *output_)) output_ = combined;
}

bool InputWatermarks::AllEnded() const {
  return std::all_of(channels_.begin(), channels_.end(), [](const Channel& c) { return c.ended; });
}

std::optional<int64_t> InputWatermarks::Combined() const {
  if (!output_) {
    // Before any update: every channel is active at the minimum.
    for (const Channel& c : channels_) {
      if (!c.idle && !c.ended) return std::numeric_limits<int64_t>::min();
    }
  }
  return output_;
}

}  // namespace slipstream
