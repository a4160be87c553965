// Helpers shared by the worker tests: a WindowEngine over a StateStore in a
// fresh temporary directory, event builders, and FeatureWrite accessors.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/event.h"
#include "common/features/feature_definition.h"
#include "common/key_groups.h"
#include "worker/state/state_store.h"
#include "worker/window/feature_write.h"
#include "worker/window/window_engine.h"

namespace slipstream::testing_util {

inline constexpr int64_t kMin = 60 * 1000;
inline constexpr int64_t kHour = 60 * kMin;
inline constexpr int kMaxParallelism = 128;

// The default definition's event types (conf/features.yaml: event_type is
// one of view, cart, purchase).
enum class EventType { kView = 0, kCart = 1, kPurchase = 2 };
inline std::string_view EventTypeName(EventType type) {
  switch (type) {
    case EventType::kView:
      return "view";
    case EventType::kCart:
      return "cart";
    case EventType::kPurchase:
      return "purchase";
  }
  return "";
}

// An event of the default definition's input: its fields in the schema's
// order, looked up by name (not assumed).
inline Event MakeEvent(std::string_view user, int64_t t, EventType type = EventType::kView, double price = 0) {
  const InputSchema& input = DefaultFeatureDefinition().input;
  Event e;
  e.event_time_ms = t;
  e.user_id = std::string(user);
  e.fields.resize(input.fields.size());
  for (FieldValue& v : e.fields) v.present = true;
  e.fields[static_cast<size_t>(input.FieldIndex("event_time"))].long_value = t;
  e.fields[static_cast<size_t>(input.FieldIndex("event_type"))].string_value = std::string(EventTypeName(type));
  e.fields[static_cast<size_t>(input.FieldIndex("user_id"))].string_value = std::string(user);
  e.fields[static_cast<size_t>(input.FieldIndex("price"))].double_value = price;
  return e;
}
inline EventType TypeOf(const Event& e) {
  const std::string& name =
      e.fields[static_cast<size_t>(DefaultFeatureDefinition().input.FieldIndex("event_type"))].string_value;
  return name == "view" ? EventType::kView : name == "cart" ? EventType::kCart : EventType::kPurchase;
}
inline double PriceOf(const Event& e) {
  return e.fields[static_cast<size_t>(DefaultFeatureDefinition().input.FieldIndex("price"))].double_value;
}

// Floor division toward negative infinity (independent of the engine's).
inline int64_t FloorTo(int64_t t, int64_t unit) {
  int64_t q = t / unit;
  if ((t % unit) != 0 && ((t < 0) != (unit < 0))) --q;
  return q * unit;
}

// A temporary directory removed when the object dies.
class TempDir {
 public:
  // Prefers /dev/shm (tmpfs): RocksDB's fsyncs on a disk make each open slow.
  TempDir() {
    std::error_code ec;
    std::filesystem::path root = "/dev/shm";
    if (!std::filesystem::is_directory(root, ec) || access(root.c_str(), W_OK) != 0) {
      root = std::filesystem::temp_directory_path();
    }
    std::string tmpl = (root / "slipstream_test_XXXXXX").string();
    char* made = mkdtemp(tmpl.data());
    if (made == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
    }
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Owns a store and an engine over all 128 key groups; the engine is destroyed
// before the store.
class EngineHarness {
 public:
  explicit EngineHarness(WindowEngineOptions options = {}) {
    auto store = StateStore::Open(dir_.path() + "/db", StateStoreOptions{});
    if (!store.ok()) {
      ADD_FAILURE() << "StateStore::Open: " << std::string(store.status().message());
      return;
    }
    store_ = std::move(*store);
    engine_ = std::make_unique<WindowEngine>(store_.get(), KeyGroupRange{0, kMaxParallelism - 1}, options);
  }
  ~EngineHarness() {
    engine_.reset();
    store_.reset();
  }
  bool ok() const { return engine_ != nullptr; }
  WindowEngine& engine() { return *engine_; }
  StateStore& store() { return *store_; }

  // Processes one event; fails the test on error status.
  bool Process(const Event& e) {
    auto r = engine_->ProcessEvent(KeyGroupForKey(e.user_id, kMaxParallelism), e);
    if (!r.ok()) {
      ADD_FAILURE() << "ProcessEvent: " << std::string(r.status().message());
      return false;
    }
    return *r;
  }
  bool Process(std::string_view user, int64_t t, EventType type = EventType::kView, double price = 0);
  std::vector<FeatureWrite> Advance(int64_t w) {
    std::vector<FeatureWrite> out;
    absl::Status s = engine_->AdvanceWatermark(w, &out);
    if (!s.ok()) ADD_FAILURE() << "AdvanceWatermark(" << w << "): " << std::string(s.message());
    return out;
  }
  void Commit() {
    absl::Status s = engine_->Commit();
    if (!s.ok()) ADD_FAILURE() << "Commit: " << std::string(s.message());
  }

 private:
  TempDir dir_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<WindowEngine> engine_;
};

inline bool EngineHarness::Process(std::string_view user, int64_t t, EventType type, double price) {
  return Process(MakeEvent(user, t, type, price));
}

// Value of `field` in a FeatureWrite, nullopt when absent.
inline std::optional<std::string> Field(const FeatureWrite& w, std::string_view field) {
  for (size_t i = 0; i + 1 < w.fields.size(); i += 2) {
    if (w.fields[i] == field) return w.fields[i + 1];
  }
  return std::nullopt;
}

inline bool IsSliding(const FeatureWrite& w) { return w.key.rfind("user_features:", 0) == 0; }
inline bool IsSession(const FeatureWrite& w) { return w.key.rfind("session_features:", 0) == 0; }

inline std::vector<FeatureWrite> Sliding(const std::vector<FeatureWrite>& all) {
  std::vector<FeatureWrite> out;
  for (const auto& w : all)
    if (IsSliding(w)) out.push_back(w);
  return out;
}
inline std::vector<FeatureWrite> Sessions(const std::vector<FeatureWrite>& all) {
  std::vector<FeatureWrite> out;
  for (const auto& w : all)
    if (IsSession(w)) out.push_back(w);
  return out;
}

// Shortest round-trip text of a double, as std::to_chars gives it.
inline std::string ShortestDouble(double v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

inline std::optional<double> ParseDouble(std::string_view s) {
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// Readable form of a FeatureWrite (bytes outside printable ASCII escaped).
inline std::string Escape(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}
inline std::string Describe(const FeatureWrite& w) {
  std::string out = "{" + Escape(w.key) + " ttl=" + std::to_string(w.ttl_seconds);
  for (size_t i = 0; i < w.fields.size(); ++i) out += (i % 2 == 0 ? " " : "=") + Escape(w.fields[i]);
  return out + "}";
}
inline std::string Describe(const std::vector<FeatureWrite>& ws) {
  std::string out = "[";
  for (const auto& w : ws) out += "\n  " + Describe(w);
  return out + "]";
}

}  // namespace slipstream::testing_util
