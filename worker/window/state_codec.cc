// The binary form of a UserWindowState, as RocksDB (and so every checkpoint
// and savepoint) holds it. It follows the program's layout, group by group in
// definition order (little-endian, this machine's):
//   pane group:    u32 panes, per pane: start, words() words; then, when the
//                  group has VarSlots, vars() VarSlots per pane
//   session group: u32 sessions, per session: first, last, count, timer,
//                  words() words, vars() VarSlots
//   VarSlot:       u8 present; when present: i64 time, u32 len + text,
//                  u32 n + n hashes, u32 n + n registers
// With the default definition this is byte for byte the size of the state
// before feature definitions existed (8 + 48 bytes per pane, 32 per session).
#include <algorithm>
#include <cstring>

#include "worker/window/user_window_state.h"

namespace slipstream {
namespace {

template <typename T>
void Put(const T& v, std::string* out) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}
void PutU32(size_t v, std::string* out) { Put(static_cast<uint32_t>(v), out); }

void PutVar(const VarSlot& v, std::string* out) {
  Put(static_cast<uint8_t>(v.present), out);
  if (!v.present) return;
  Put(v.time_ms, out);
  PutU32(v.text.size(), out);
  out->append(v.text);
  PutU32(v.hashes.size(), out);
  out->append(reinterpret_cast<const char*>(v.hashes.data()), v.hashes.size() * 8);
  PutU32(v.registers.size(), out);
  out->append(reinterpret_cast<const char*>(v.registers.data()), v.registers.size());
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool Read(void* dst, size_t n) {
    if (data_.size() < n) return false;
    std::memcpy(dst, data_.data(), n);
    data_.remove_prefix(n);
    return true;
  }
  bool ReadCount(size_t* n, size_t min_bytes_each) {
    uint32_t v = 0;
    if (!Read(&v, 4) || data_.size() < static_cast<size_t>(v) * min_bytes_each) return false;
    *n = v;
    return true;
  }
  bool ReadVar(VarSlot* v) {
    uint8_t present = 0;
    if (!Read(&present, 1) || present > 1) return false;
    *v = VarSlot{};
    if (present == 0) return true;
    v->present = true;
    size_t n = 0;
    if (!Read(&v->time_ms, 8) || !ReadCount(&n, 1)) return false;
    v->text.assign(data_.substr(0, n));
    data_.remove_prefix(n);
    if (!ReadCount(&n, 8)) return false;
    v->hashes.resize(n);
    if (!Read(v->hashes.data(), n * 8) || !ReadCount(&n, 1)) return false;
    v->registers.resize(n);
    return Read(v->registers.data(), n);
  }
  bool done() const { return data_.empty(); }

 private:
  std::string_view data_;
};

}  // namespace

void UserWindowState::SerializeTo(const FeatureProgram& program, std::string* out) const {
  out->clear();
  static const GroupWindowState kEmpty;
  for (size_t g = 0; g < program.groups().size(); ++g) {
    const GroupProgram& group = program.groups()[g];
    const GroupWindowState& s = g < groups.size() ? groups[g] : kEmpty;
    if (group.is_session()) {
      PutU32(s.sessions.size(), out);
      for (const Session& session : s.sessions) {
        Put(session.first_event_ms, out);
        Put(session.last_event_ms, out);
        Put(session.event_count, out);
        Put(session.timer_ms, out);
        out->append(reinterpret_cast<const char*>(session.words.data()), session.words.size() * 8);
        for (const VarSlot& v : session.vars) PutVar(v, out);
      }
    } else {
      PutU32(s.pane_words.size() / (1 + group.words()), out);
      out->append(reinterpret_cast<const char*>(s.pane_words.data()), s.pane_words.size() * 8);
      for (const VarSlot& v : s.pane_vars) PutVar(v, out);
    }
  }
}

bool UserWindowState::Parse(const FeatureProgram& program, std::string_view data, UserWindowState* out) {
  Reader in(data);
  out->groups.assign(program.groups().size(), GroupWindowState{});
  for (size_t g = 0; g < program.groups().size(); ++g) {
    const GroupProgram& group = program.groups()[g];
    GroupWindowState& s = out->groups[g];
    size_t n = 0;
    if (group.is_session()) {
      if (!in.ReadCount(&n, 32 + 8 * group.words())) return false;
      s.sessions.resize(n);
      for (Session& session : s.sessions) {
        session.words.resize(group.words());
        session.vars.resize(group.vars());
        if (!in.Read(&session.first_event_ms, 8) || !in.Read(&session.last_event_ms, 8) ||
            !in.Read(&session.event_count, 8) || !in.Read(&session.timer_ms, 8) ||
            !in.Read(session.words.data(), 8 * group.words())) {
          return false;
        }
        for (VarSlot& v : session.vars) {
          if (!in.ReadVar(&v)) return false;
        }
      }
    } else {
      const size_t stride = 1 + group.words();
      if (!in.ReadCount(&n, 8 * stride)) return false;
      s.pane_words.resize(n * stride);
      if (!in.Read(s.pane_words.data(), n * stride * 8)) return false;
      s.pane_vars.resize(n * group.vars());
      for (VarSlot& v : s.pane_vars) {
        if (!in.ReadVar(&v)) return false;
      }
    }
  }
  while (!out->groups.empty() && out->groups.back().empty()) out->groups.pop_back();
  return in.done();
}

}  // namespace slipstream

namespace slipstream {

StateConverter::StateConverter(const FeatureProgram& from, const FeatureProgram& to) : from_(from), to_(to) {
  for (const GroupProgram& f : from.groups()) {
    GroupMap& map = groups_.emplace_back();
    for (size_t t = 0; t < to.groups().size(); ++t) {
      if (to.groups()[t].spec().name == f.spec().name) map.to = static_cast<int>(t);
    }
    group_map_.push_back(map.to);
    if (map.to < 0) continue;
    const GroupProgram& target = to.groups()[static_cast<size_t>(map.to)];
    for (const SlotSpec& slot : f.slots()) {
      for (const SlotSpec& other : target.slots()) {
        if (other.identity != slot.identity) continue;
        if (slot.word >= 0) {
          map.words.push_back({slot.word, other.word, static_cast<int>(SlotWords(slot.kind))});
        } else {
          map.vars.emplace_back(slot.var, other.var);
        }
      }
    }
  }
}

void StateConverter::Convert(const UserWindowState& in, UserWindowState* out) const {
  out->groups.assign(to_.groups().size(), GroupWindowState{});
  for (size_t g = 0; g < in.groups.size() && g < groups_.size(); ++g) {
    const GroupMap& map = groups_[g];
    if (map.to < 0) continue;
    const GroupProgram& from = from_.groups()[g];
    const GroupProgram& to = to_.groups()[static_cast<size_t>(map.to)];
    const GroupWindowState& src = in.groups[g];
    GroupWindowState& dst = out->groups[static_cast<size_t>(map.to)];
    auto copy = [&](const uint64_t* from_words, const VarSlot* from_vars, uint64_t* to_words, VarSlot* to_vars) {
      for (const GroupMap::Words& w : map.words) {
        std::memcpy(to_words + w.to, from_words + w.from, 8 * static_cast<size_t>(w.count));
      }
      for (const auto& [f, t] : map.vars) to_vars[t] = from_vars[f];
    };
    if (from.is_session()) {
      for (const Session& s : src.sessions) {
        Session& d = dst.sessions.emplace_back();
        d.first_event_ms = s.first_event_ms;
        d.last_event_ms = s.last_event_ms;
        d.event_count = s.event_count;
        d.timer_ms = s.timer_ms;
        d.words.assign(to.words(), 0);
        d.vars.assign(to.vars(), VarSlot{});
        copy(s.words.data(), s.vars.data(), d.words.data(), d.vars.data());
      }
    } else {
      const size_t from_stride = 1 + from.words(), to_stride = 1 + to.words();
      const size_t panes = src.pane_words.size() / from_stride;
      dst.pane_words.assign(panes * to_stride, 0);
      dst.pane_vars.assign(panes * to.vars(), VarSlot{});
      for (size_t p = 0; p < panes; ++p) {
        dst.pane_words[p * to_stride] = src.pane_words[p * from_stride];
        copy(src.pane_words.data() + p * from_stride + 1, src.pane_vars.data() + p * from.vars(),
             dst.pane_words.data() + p * to_stride + 1, dst.pane_vars.data() + p * to.vars());
      }
    }
  }
  while (!out->groups.empty() && out->groups.back().empty()) out->groups.pop_back();
}

}  // namespace slipstream
