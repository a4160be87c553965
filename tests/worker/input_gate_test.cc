#include "worker/exchange/input_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace slipstream {
namespace {

using Clock = std::chrono::steady_clock;

int64_t ElapsedMs(Clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - since).count();
}

// Polls `condition` every millisecond for up to `timeout_ms`.
bool WaitFor(const std::function<bool()>& condition, int timeout_ms = 2000) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return condition();
}

InboundBatch Batch(int channel, std::string records, int64_t watermark_ms = 0) {
  InboundBatch b;
  b.channel = channel;
  b.records = std::move(records);
  b.record_count = 1;
  b.watermark_ms = watermark_ms;
  return b;
}

constexpr int kLocal = 0;

TEST(InputGate, ReportsItsShape) {
  InputGate gate(3, 1, 4);
  EXPECT_EQ(gate.num_channels(), 3);
  EXPECT_EQ(gate.local_channel(), 1);
  EXPECT_EQ(gate.credits_per_channel(), 4);
  EXPECT_FALSE(gate.closed());
  EXPECT_EQ(gate.queued_batches(), 0);
  EXPECT_EQ(gate.queued_bytes(), 0);
}

TEST(InputGate, LocalCreditsBlockAtTheLimitUntilConsumed) {
  InputGate gate(2, kLocal, 3);
  std::atomic<bool> cancel{false};
  int64_t waited_ms = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(gate.AcquireCredit(cancel, &waited_ms));
    ASSERT_TRUE(gate.Push(Batch(kLocal, "r" + std::to_string(i))).ok());
  }
  EXPECT_EQ(waited_ms, 0);

  std::atomic<bool> acquired{false};
  int64_t blocked_ms = 0;
  std::thread source([&] {
    bool ok = gate.AcquireCredit(cancel, &blocked_ms);
    acquired.store(ok);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  EXPECT_FALSE(acquired.load()) << "a fourth credit was handed out with 3 in flight";

  // Popping alone does not return the credit: the batch is still being processed.
  InboundBatch b;
  ASSERT_TRUE(gate.Pop(&b, 100));
  EXPECT_EQ(b.records, "r0");
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_FALSE(acquired.load());

  gate.Consumed(kLocal);
  EXPECT_TRUE(WaitFor([&] { return acquired.load(); }, 1000));
  source.join();
  EXPECT_TRUE(acquired.load());
  // How long it blocked depends on when the thread got a core (no lower
  // bound on a loaded machine); that it blocked is checked above.
  // The local channel's credits are taken by the source, never granted to a peer.
  EXPECT_EQ(gate.TakeCreditsToGrant(kLocal, 0), 0);
}

TEST(InputGate, AcquireCreditFailsAtOnceWhenClosed) {
  InputGate gate(1, kLocal, 2);
  std::atomic<bool> cancel{false};
  int64_t waited_ms = 0;
  gate.Close();
  EXPECT_TRUE(gate.closed());
  const auto begin = Clock::now();
  EXPECT_FALSE(gate.AcquireCredit(cancel, &waited_ms));
  EXPECT_LT(ElapsedMs(begin), 50);
}

TEST(InputGate, CloseWakesABlockedAcquireCredit) {
  InputGate gate(1, kLocal, 1);
  std::atomic<bool> cancel{false};
  int64_t waited_ms = 0;
  ASSERT_TRUE(gate.AcquireCredit(cancel, &waited_ms));
  std::atomic<int> result{-1};
  std::thread source([&] {
    int64_t w = 0;
    result.store(gate.AcquireCredit(cancel, &w) ? 1 : 0);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(result.load(), -1);
  const auto begin = Clock::now();
  gate.Close();
  EXPECT_TRUE(WaitFor([&] { return result.load() != -1; }, 1000));
  EXPECT_LT(ElapsedMs(begin), 150);  // Close notifies: no polling delay
  source.join();
  EXPECT_EQ(result.load(), 0);
}

TEST(InputGate, CancelStopsABlockedAcquireCreditWithin100Ms) {
  InputGate gate(1, kLocal, 1);
  std::atomic<bool> cancel{false};
  int64_t waited_ms = 0;
  ASSERT_TRUE(gate.AcquireCredit(cancel, &waited_ms));
  std::atomic<int> result{-1};
  int64_t blocked_ms = 0;
  std::thread source([&] { result.store(gate.AcquireCredit(cancel, &blocked_ms) ? 1 : 0); });
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  EXPECT_EQ(result.load(), -1);
  cancel.store(true);  // not signalled: the gate must notice on its own
  // The gate polls the atomic every 50 ms; a second allows for a loaded
  // machine (timings are the benchmarks' business, not unit tests').
  EXPECT_TRUE(WaitFor([&] { return result.load() != -1; }, 1000));
  source.join();
  EXPECT_EQ(result.load(), 0);
  EXPECT_FALSE(gate.closed());
}

TEST(InputGate, RemotePushBeyondCreditsIsAnError) {
  InputGate gate(3, kLocal, 2);
  ASSERT_TRUE(gate.Push(Batch(1, "a")).ok());
  ASSERT_TRUE(gate.Push(Batch(1, "b")).ok());
  const absl::Status third = gate.Push(Batch(1, "c"));
  EXPECT_EQ(third.code(), absl::StatusCode::kFailedPrecondition) << third;
  EXPECT_EQ(gate.queued_batches(), 2);
  // Other channels have their own credits.
  EXPECT_TRUE(gate.Push(Batch(2, "x")).ok());

  InboundBatch b;
  ASSERT_TRUE(gate.Pop(&b, 100));
  EXPECT_EQ(b.records, "a");
  // Popped but not processed: still holds its credit.
  EXPECT_EQ(gate.Push(Batch(1, "c")).code(), absl::StatusCode::kFailedPrecondition);
  gate.Consumed(1);
  EXPECT_TRUE(gate.Push(Batch(1, "c")).ok());
  EXPECT_EQ(gate.Push(Batch(1, "d")).code(), absl::StatusCode::kFailedPrecondition);
}

TEST(InputGate, PushToAnUnknownChannelIsAnError) {
  InputGate gate(2, kLocal, 2);
  EXPECT_EQ(gate.Push(Batch(-1, "a")).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gate.Push(Batch(2, "a")).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gate.queued_batches(), 0);
  EXPECT_EQ(gate.queued_bytes(), 0);
}

TEST(InputGate, PushAfterCloseIsCancelled) {
  InputGate gate(2, kLocal, 2);
  gate.Close();
  EXPECT_EQ(gate.Push(Batch(1, "a")).code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(gate.Push(Batch(kLocal, "a")).code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(gate.queued_batches(), 0);
}

TEST(InputGate, TakeCreditsToGrantReturnsConsumedCreditsOfRemoteChannelsOnly) {
  InputGate gate(3, kLocal, 4);
  std::atomic<bool> cancel{false};
  int64_t waited_ms = 0;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(gate.Push(Batch(1, "r")).ok());
  ASSERT_TRUE(gate.Push(Batch(2, "r")).ok());
  ASSERT_TRUE(gate.AcquireCredit(cancel, &waited_ms));
  ASSERT_TRUE(gate.Push(Batch(kLocal, "l")).ok());
  EXPECT_EQ(gate.TakeCreditsToGrant(1, 0), 0);

  InboundBatch b;
  while (gate.Pop(&b, 0)) gate.Consumed(b.channel);
  EXPECT_EQ(gate.TakeCreditsToGrant(1, 0), 3);
  EXPECT_EQ(gate.TakeCreditsToGrant(1, 0), 0) << "credits are granted once";
  EXPECT_EQ(gate.TakeCreditsToGrant(2, 0), 1);
  EXPECT_EQ(gate.TakeCreditsToGrant(kLocal, 0), 0);
  // The local credit went back to the source.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(gate.AcquireCredit(cancel, &waited_ms));
  EXPECT_EQ(waited_ms, 0);
}

TEST(InputGate, TakeCreditsToGrantTimesOutWithZero) {
  InputGate gate(2, kLocal, 2);
  const auto begin = Clock::now();
  EXPECT_EQ(gate.TakeCreditsToGrant(1, 80), 0);
  const int64_t elapsed = ElapsedMs(begin);
  EXPECT_GE(elapsed, 70);
  EXPECT_LT(elapsed, 1000);
}

TEST(InputGate, TakeCreditsToGrantWakesOnConsumed) {
  InputGate gate(2, kLocal, 2);
  ASSERT_TRUE(gate.Push(Batch(1, "r")).ok());
  std::atomic<int> granted{-1};
  std::atomic<int64_t> took_ms{0};
  std::thread server([&] {
    const auto begin = Clock::now();
    granted.store(gate.TakeCreditsToGrant(1, 5000));
    took_ms.store(ElapsedMs(begin));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  InboundBatch b;
  ASSERT_TRUE(gate.Pop(&b, 100));
  gate.Consumed(1);
  server.join();
  EXPECT_EQ(granted.load(), 1);
  EXPECT_LT(took_ms.load(), 1000);
}

TEST(InputGate, CloseWakesTakeCreditsToGrant) {
  InputGate gate(2, kLocal, 2);
  std::atomic<int> granted{-1};
  std::thread server([&] { granted.store(gate.TakeCreditsToGrant(1, 5000)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const auto begin = Clock::now();
  gate.Close();
  server.join();
  EXPECT_LT(ElapsedMs(begin), 500);
  EXPECT_EQ(granted.load(), 0);
  EXPECT_EQ(gate.TakeCreditsToGrant(1, 5000), 0);
}

TEST(InputGate, PopsInArrivalOrderAcrossChannels) {
  InputGate gate(4, 2, 8);
  std::atomic<bool> cancel{false};
  int64_t waited_ms = 0;
  const std::vector<int> order = {1, 3, 2, 1, 0, 0, 3, 2, 1, 0};
  for (size_t i = 0; i < order.size(); ++i) {
    if (order[i] == 2) {
      ASSERT_TRUE(gate.AcquireCredit(cancel, &waited_ms));
    }
    ASSERT_TRUE(gate.Push(Batch(order[i], std::to_string(i), static_cast<int64_t>(i) * 10)).ok());
  }
  for (size_t i = 0; i < order.size(); ++i) {
    InboundBatch b;
    ASSERT_TRUE(gate.Pop(&b, 100));
    EXPECT_EQ(b.channel, order[i]);
    EXPECT_EQ(b.records, std::to_string(i));
    EXPECT_EQ(b.watermark_ms, static_cast<int64_t>(i) * 10);
  }
  InboundBatch b;
  EXPECT_FALSE(gate.Pop(&b, 0));
}

TEST(InputGate, KeepsEveryFieldOfABatch) {
  InputGate gate(2, kLocal, 2);
  InboundBatch in;
  in.channel = 1;
  in.records = std::string("\0\x01\xff", 3);
  in.record_count = 42;
  in.watermark_ms = INT64_MIN;
  in.idle = true;
  in.end_of_input = true;
  ASSERT_TRUE(gate.Push(in).ok());
  InboundBatch out;
  ASSERT_TRUE(gate.Pop(&out, 100));
  EXPECT_EQ(out.channel, 1);
  EXPECT_EQ(out.records, in.records);
  EXPECT_EQ(out.record_count, 42);
  EXPECT_EQ(out.watermark_ms, INT64_MIN);
  EXPECT_TRUE(out.idle);
  EXPECT_TRUE(out.end_of_input);
}

TEST(InputGate, PopTimesOutOnAnEmptyGateAndReturnsAtOnceWhenClosed) {
  InputGate gate(2, kLocal, 2);
  InboundBatch b;
  auto begin = Clock::now();
  EXPECT_FALSE(gate.Pop(&b, 60));
  EXPECT_GE(ElapsedMs(begin), 50);

  std::atomic<int> popped{-1};
  std::thread op([&] {
    InboundBatch x;
    popped.store(gate.Pop(&x, 5000) ? 1 : 0);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  begin = Clock::now();
  gate.Close();
  op.join();
  EXPECT_LT(ElapsedMs(begin), 500);
  EXPECT_EQ(popped.load(), 0);
  begin = Clock::now();
  EXPECT_FALSE(gate.Pop(&b, 5000));
  EXPECT_LT(ElapsedMs(begin), 100);
}

TEST(InputGate, PopWakesWhenABatchArrives) {
  InputGate gate(2, kLocal, 2);
  std::atomic<int64_t> took_ms{-1};
  std::string got;
  std::thread op([&] {
    const auto begin = Clock::now();
    InboundBatch x;
    if (gate.Pop(&x, 5000)) got = x.records;
    took_ms.store(ElapsedMs(begin));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_TRUE(gate.Push(Batch(1, "late")).ok());
  op.join();
  EXPECT_EQ(got, "late");
  EXPECT_LT(took_ms.load(), 1000);
}

TEST(InputGate, QueuedBytesAndBatchesFollowTheQueue) {
  InputGate gate(3, kLocal, 4);
  std::atomic<bool> cancel{false};
  int64_t waited_ms = 0;
  ASSERT_TRUE(gate.Push(Batch(1, std::string(100, 'a'))).ok());
  ASSERT_TRUE(gate.Push(Batch(2, "")).ok());
  ASSERT_TRUE(gate.AcquireCredit(cancel, &waited_ms));
  ASSERT_TRUE(gate.Push(Batch(kLocal, std::string(7, '\0'))).ok());
  EXPECT_EQ(gate.queued_batches(), 3);
  EXPECT_EQ(gate.queued_bytes(), 107);
  // A refused push changes nothing.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(gate.Push(Batch(1, "x")).ok());
  EXPECT_FALSE(gate.Push(Batch(1, std::string(1000, 'z'))).ok());
  EXPECT_EQ(gate.queued_batches(), 6);
  EXPECT_EQ(gate.queued_bytes(), 110);

  InboundBatch b;
  ASSERT_TRUE(gate.Pop(&b, 0));
  EXPECT_EQ(gate.queued_bytes(), 10);
  EXPECT_EQ(gate.queued_batches(), 5);
  // Consumed returns credit, not bytes: the queue is unchanged.
  gate.Consumed(1);
  EXPECT_EQ(gate.queued_bytes(), 10);
  while (gate.Pop(&b, 0)) {
  }
  EXPECT_EQ(gate.queued_batches(), 0);
  EXPECT_EQ(gate.queued_bytes(), 0);
}

// One local source, three remote peers (each with a "server" thread that
// forwards granted credits, as the data plane does) and one operator. Every
// batch must arrive exactly once and in order per channel, and no channel may
// ever exceed its credits.
TEST(InputGate, ProducersAndOperatorStressLosesAndDuplicatesNothing) {
  constexpr int kChannels = 4;
  constexpr int kLocalChannel = 2;
  constexpr int kCredits = 3;
  constexpr int kBatchesPerChannel = 3000;
  InputGate gate(kChannels, kLocalChannel, kCredits);
  std::atomic<bool> cancel{false};
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;

  auto record = [](int channel, int seq) { return std::to_string(channel) + ":" + std::to_string(seq); };

  // Local source.
  threads.emplace_back([&] {
    int64_t waited_ms = 0;
    for (int seq = 0; seq < kBatchesPerChannel; ++seq) {
      if (!gate.AcquireCredit(cancel, &waited_ms)) {
        failed.store(true);
        return;
      }
      InboundBatch b = Batch(kLocalChannel, record(kLocalChannel, seq));
      b.end_of_input = seq == kBatchesPerChannel - 1;
      if (!gate.Push(std::move(b)).ok()) failed.store(true);
    }
  });
  // Remote peers: a sender that spends credits and a server thread that
  // hands it what the gate grants.
  struct Peer {
    std::mutex mu;
    std::condition_variable cv;
    int credits = kCredits;
  };
  std::vector<std::unique_ptr<Peer>> peers(kChannels);
  for (int channel = 0; channel < kChannels; ++channel) {
    if (channel == kLocalChannel) continue;
    peers[channel] = std::make_unique<Peer>();
    Peer* peer = peers[channel].get();
    threads.emplace_back([&, channel, peer] {
      for (int seq = 0; seq < kBatchesPerChannel; ++seq) {
        {
          std::unique_lock lock(peer->mu);
          while (peer->credits == 0 && !gate.closed()) peer->cv.wait_for(lock, std::chrono::milliseconds(50));
          if (peer->credits == 0) break;  // the operator gave up
          --peer->credits;
        }
        InboundBatch b = Batch(channel, record(channel, seq));
        b.end_of_input = seq == kBatchesPerChannel - 1;
        if (absl::Status s = gate.Push(std::move(b)); !s.ok()) {
          ADD_FAILURE() << s;
          failed.store(true);
          break;
        }
      }
    });
    threads.emplace_back([&, channel, peer] {
      while (!gate.closed()) {
        const int n = gate.TakeCreditsToGrant(channel, 20);
        if (n <= 0) continue;
        std::lock_guard lock(peer->mu);
        peer->credits += n;
        if (peer->credits > kCredits) {
          ADD_FAILURE() << "channel " << channel << " holds " << peer->credits << " credits";
          failed.store(true);
        }
        peer->cv.notify_all();
      }
    });
  }

  // Operator.
  std::vector<int> next(kChannels, 0);
  int ended = 0;
  int64_t total = 0;
  const auto begin = Clock::now();
  while (ended < kChannels && !failed.load() && ElapsedMs(begin) < 20000) {
    InboundBatch b;
    if (!gate.Pop(&b, 100)) continue;
    if (b.channel < 0 || b.channel >= kChannels || b.records != record(b.channel, next[b.channel])) {
      ADD_FAILURE() << "lost, duplicated or reordered: channel " << b.channel << " sent " << b.records;
      failed.store(true);
      break;
    }
    ++next[b.channel];
    ++total;
    if (b.end_of_input) ++ended;
    if (total % 7 == 0) std::this_thread::yield();  // vary the interleavings
    gate.Consumed(b.channel);
  }
  gate.Close();
  for (auto& t : threads) t.join();
  EXPECT_FALSE(failed.load());
  EXPECT_EQ(total, int64_t{kChannels} * kBatchesPerChannel);
  for (int channel = 0; channel < kChannels; ++channel) EXPECT_EQ(next[channel], kBatchesPerChannel);
  EXPECT_EQ(gate.queued_batches(), 0);
  EXPECT_EQ(gate.queued_bytes(), 0);
}

}  // namespace
}  // namespace slipstream
