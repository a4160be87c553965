#include "worker/window/window_engine.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <string>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/absl_compat.h"
#include "common/clock.h"
#include "worker/state/state_keys.h"
#include "worker/window/user_window_state.h"

namespace slipstream {

namespace sk = state_keys;

namespace {

struct UserEntry {
  uint64_t id = 0;  // orders timers of the same time deterministically
  int key_group = 0;
  UserWindowState state;
  int timer_count = 0;
  // The write-behind round whose RocksDB write still owes this user's state
  // (0: RocksDB has it). Equal to the open round: changed since the last
  // round closed. Older: RocksDB must get the state as it is now, before the
  // user changes again (copy-on-write).
  uint32_t round = 0;
};

using UserMap = absl::node_hash_map<std::string, UserEntry>;
using UserNode = UserMap::value_type;  // stable address until erased

// A timer of one feature group (a window end or a session's fire time)
// points at its user's map node. Ordered by time, then group, then user id;
// the id is copied in so that comparing timers (on the per-event path, and a
// million times in a restore) never touches the user's node.
struct Timer {
  int64_t time_ms;
  uint8_t group;  // index into the program's groups
  uint64_t user_id;  // == user->second.id
  UserNode* user;
  Timer(int64_t time, uint8_t timer_group, UserNode* node)
      : time_ms(time), group(timer_group), user_id(node->second.id), user(node) {}
  bool operator<(const Timer& o) const {
    if (time_ms != o.time_ms) return time_ms < o.time_ms;
    if (group != o.group) return group < o.group;
    return user_id < o.user_id;
  }
  bool operator==(const Timer& o) const { return time_ms == o.time_ms && group == o.group && user == o.user; }
  template <typename H>
  friend H AbslHashValue(H h, const Timer& t) {
    return H::combine(std::move(h), t.time_ms, t.group, t.user);
  }
};

std::string TimerKey(int key_group, int64_t time_ms, uint8_t group, std::string_view user) {
  std::string key = sk::Prefix(key_group, sk::kTimer);
  sk::AppendTime(time_ms, &key);
  key.push_back(static_cast<char>(group));
  sk::AppendUser(user, &key);
  return key;
}

using TimerChanges = absl::flat_hash_map<Timer, bool>;

// A closed write-behind round: the users and timers that changed while it was
// open, written to RocksDB a bounded number at a time. Their values are the
// ones current when the round closed: a user changed since then was written
// just before that change (copy-on-write) and is skipped here.
struct ClosedRound {
  uint32_t round = 0;
  std::vector<UserNode*> users;
  size_t next_user = 0;
  TimerChanges timer_changes;
  TimerChanges::iterator next_timer;
};

}  // namespace

struct WindowEngine::Impl {
  std::shared_ptr<const FeatureProgram> program;
  StateStore* store;
  KeyGroupRange owned;
  WindowEngineOptions options;
  int64_t watermark = std::numeric_limits<int64_t>::min();
  uint64_t step = 0;

  UserMap users;
  uint64_t next_user_id = 0;
  absl::btree_set<Timer> timers;

  // The open round: users changed and net timer changes (true: registered,
  // false: deleted) since it opened. A timer added and removed within one
  // round cancels out, so a session growing event by event costs RocksDB two
  // writes per round, not two per event.
  uint32_t open_round = 1;
  std::vector<UserNode*> dirty_users;
  TimerChanges timer_changes;
  int64_t round_opened_ms = Clock::Real().SteadyMs();
  // Closed rounds, oldest first, written in this order (a timer registered in
  // one round and deleted in the next must reach RocksDB in that order).
  std::deque<ClosedRound> closed;
  // Events and timers handled since the last write step: the next step
  // writes a multiple of this, so writing keeps up with changing.
  int64_t work_since_step = 0;
  // Checkpoint: the round whose end is the snapshot's content (0: none
  // requested), and the snapshot once that round is in RocksDB.
  uint32_t snapshot_round = 0;
  std::unique_ptr<StateSnapshot> completed_snapshot;

  // AdvanceWatermark() stopped at its output limit with timers still due.
  bool firing_pending = false;
  int64_t sliding_windows_fired = 0;
  int64_t sessions_fired = 0;
  std::vector<int64_t> removed_timers;  // scratch
  std::string scratch;

  void MarkDirty(UserNode* user) {
    if (user->second.round != open_round) {
      user->second.round = open_round;
      dirty_users.push_back(user);
    }
  }

  // Called before `user` changes: if a closed round still owes RocksDB its
  // state, that state is written now, as the round saw it.
  void BeforeChange(UserNode* user) {
    const uint32_t round = user->second.round;
    if (round != 0 && round != open_round) {
      WriteUser(user, /*may_erase=*/false);
      MarkDirty(user);
    }
  }

  // Puts the user's state into the store's batch (or deletes an empty one;
  // with `may_erase` its node goes too, as nothing points at it any more).
  void WriteUser(UserNode* user, bool may_erase) {
    UserEntry& entry = user->second;
    entry.round = 0;
    const std::string key = sk::UserPrefix(entry.key_group, sk::kUser, user->first);
    if (entry.state.empty() && entry.timer_count == 0) {
      store->Delete(key);
      if (may_erase) users.erase(user->first);
    } else {
      entry.state.SerializeTo(*program, &scratch);
      store->Put(key, scratch);
    }
  }

  void WriteTimer(const Timer& timer, bool registered) {
    const std::string key = TimerKey(timer.user->second.key_group, timer.time_ms, timer.group, timer.user->first);
    if (registered) {
      store->Put(key, "");
    } else {
      store->Delete(key);
    }
  }

  // Closes the open round (O(1)): its changes are written by later steps.
  uint32_t CloseRound() {
    ClosedRound& r = closed.emplace_back();
    r.round = open_round;
    r.users.swap(dirty_users);
    r.timer_changes.swap(timer_changes);
    r.next_timer = r.timer_changes.begin();
    ++open_round;
    if (open_round == 0) open_round = 1;  // 0 means "written"
    round_opened_ms = Clock::Real().SteadyMs();
    return r.round;
  }

  // Writes up to `budget` users and timers of closed rounds, in order; takes
  // the requested snapshot when its round is complete. SIZE_MAX: all.
  absl::Status WriteStep(size_t budget);

  void RecordTimerChange(const Timer& timer, bool registered) {
    auto [it, inserted] = timer_changes.try_emplace(timer, registered);
    if (!inserted && it->second != registered) timer_changes.erase(it);  // cancels out
  }

  void AddTimer(UserNode* user, int64_t time_ms, size_t group) {
    const Timer timer{time_ms, static_cast<uint8_t>(group), user};
    if (timers.insert(timer).second) {
      ++user->second.timer_count;
      RecordTimerChange(timer, true);
    }
  }

  void RemoveTimer(UserNode* user, int64_t time_ms, size_t group) {
    const Timer timer{time_ms, static_cast<uint8_t>(group), user};
    if (timers.erase(timer) > 0) {
      --user->second.timer_count;
      RecordTimerChange(timer, false);
    }
  }

  absl::Status Flush();
};

WindowEngine::WindowEngine(StateStore* store, KeyGroupRange owned, WindowEngineOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->program = options.program ? options.program : FeatureProgram::Default();
  impl_->store = store;
  impl_->owned = owned;
  impl_->options = options;
}

WindowEngine::~WindowEngine() = default;

int64_t WindowEngine::watermark() const { return impl_->watermark; }

void WindowEngine::RestoreWatermark(int64_t watermark_ms) {
  impl_->watermark = std::max(impl_->watermark, watermark_ms);
}

absl::StatusOr<bool> WindowEngine::ProcessEvent(int key_group, const Event& event) {
  Impl& s = *impl_;
  if (!s.owned.contains(key_group)) {
    return absl::InternalError(absl::StrCat("key group ", key_group, " of user ", event.user_id,
                                            " is not owned by this worker (owns ", s.owned.ToString(), ")"));
  }
  auto [it, inserted] = s.users.try_emplace(event.user_id);
  UserNode* user = &*it;
  UserEntry& entry = it->second;
  if (inserted) {
    entry.key_group = key_group;
    entry.id = s.next_user_id++;
  } else {
    s.BeforeChange(user);
  }
  ++s.work_since_step;

  bool accepted = false;
  const std::vector<GroupProgram>& groups = s.program->groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    const GroupProgram& group = groups[g];
    if (group.is_session()) {
      std::optional<int64_t> session_timer;
      if (entry.state.AddToSession(group, g, event, s.watermark, &s.removed_timers, &session_timer)) {
        for (int64_t old : s.removed_timers) s.RemoveTimer(user, old, g);
        if (session_timer) s.AddTimer(user, *session_timer, g);
        accepted = true;
      }
    } else {
      bool new_pane = false;
      if (std::optional<int64_t> timer = entry.state.AddToPaneWindows(group, g, event, s.watermark, &new_pane)) {
        // Only a new pane needs a timer: an existing pane's timer is either
        // still pending (and the same) or has fired and chained to the next
        // window.
        if (new_pane) s.AddTimer(user, *timer, g);
        accepted = true;
      }
    }
  }
  if (accepted) {
    s.MarkDirty(user);
  } else if (inserted) {
    s.users.erase(it);  // a late event must not leave an empty entry behind
  }
  return accepted;
}

absl::Status WindowEngine::AdvanceWatermark(int64_t watermark_ms, std::vector<FeatureWrite>* out,
                                           size_t max_out) {
  Impl& s = *impl_;
  if (watermark_ms > s.watermark) {
    s.watermark = watermark_ms;
    ++s.step;
  }
  watermark_ms = s.watermark;
  s.firing_pending = false;
  while (!s.timers.empty() && s.timers.begin()->time_ms <= watermark_ms) {
    if (out->size() >= max_out) {
      s.firing_pending = true;  // the same step goes on at the next call
      return absl::OkStatus();
    }
    const Timer timer = *s.timers.begin();
    s.timers.erase(s.timers.begin());
    UserNode* user = timer.user;
    s.BeforeChange(user);
    ++s.work_since_step;
    UserEntry& entry = user->second;
    --entry.timer_count;
    s.RecordTimerChange(timer, false);
    const GroupProgram& group = s.program->groups()[timer.group];
    if (!group.is_session()) {
      const size_t before = out->size();
      std::optional<int64_t> next =
          entry.state.FirePaneWindows(group, timer.group, user->first, timer.time_ms, watermark_ms, s.step, out);
      s.sliding_windows_fired += static_cast<int64_t>(out->size() - before);
      if (next) s.AddTimer(user, *next, timer.group);
    } else {
      std::optional<int64_t> rearm_at;
      if (entry.state.FireSession(group, timer.group, user->first, timer.time_ms, out, &rearm_at)) ++s.sessions_fired;
      // A grown session fires later; if that is already due, this loop
      // reaches it in time order.
      if (rearm_at) s.AddTimer(user, *rearm_at, timer.group);
    }
    s.MarkDirty(user);
  }
  return absl::OkStatus();
}

absl::Status WindowEngine::Impl::WriteStep(size_t budget) {
  while (!closed.empty() && budget > 0) {
    ClosedRound& r = closed.front();
    // Timers first: they point at user nodes that the users' part may erase.
    for (; r.next_timer != r.timer_changes.end() && budget > 0; ++r.next_timer, --budget) {
      WriteTimer(r.next_timer->first, r.next_timer->second);
    }
    if (r.next_timer != r.timer_changes.end()) break;
    while (r.next_user < r.users.size() && budget > 0) {
      UserNode* user = r.users[r.next_user++];
      // Written already (copy-on-write) unless still owed to this round. A
      // node in this list is never erased before the round is done: only
      // the round that owes a user may erase it.
      if (user->second.round != r.round) continue;
      WriteUser(user, /*may_erase=*/true);
      --budget;
    }
    if (r.next_user < r.users.size()) break;
    const uint32_t done = r.round;
    closed.pop_front();
    if (done == snapshot_round) {
      // RocksDB now holds exactly the state as of the round's end (no later
      // round has been closed meanwhile: see Commit()).
      if (absl::Status s = store->Commit(); !s.ok()) return s;
      completed_snapshot = store->TakeSnapshot();
      snapshot_round = 0;
    }
  }
  work_since_step = 0;
  // Also commits copy-on-write writes made since the last step.
  return store->Commit();
}

absl::Status WindowEngine::Commit() {
  Impl& s = *impl_;
  // A round closes after the interval or when it is large; not while a
  // snapshot waits for its round, whose copy-on-write writes must not mix
  // with a later round's.
  if (s.snapshot_round == 0 && !(s.dirty_users.empty() && s.timer_changes.empty()) &&
      (s.dirty_users.size() + s.timer_changes.size() >= s.options.max_pending ||
       Clock::Real().SteadyMs() - s.round_opened_ms >= s.options.flush_interval_ms)) {
    s.CloseRound();
  }
  if (s.closed.empty()) {
    s.work_since_step = 0;
    return absl::OkStatus();
  }
  // Enough per call to keep up with the changes made since the last call
  // (an event changes one user and at most a few timers), yet a bounded
  // pause for the caller.
  const size_t budget = s.options.write_step_min + 4 * static_cast<size_t>(s.work_since_step);
  return s.WriteStep(budget);
}

absl::Status WindowEngine::Flush() {
  Impl& s = *impl_;
  if (s.snapshot_round == 0 && !(s.dirty_users.empty() && s.timer_changes.empty())) s.CloseRound();
  if (absl::Status status = s.WriteStep(SIZE_MAX); !status.ok()) return status;
  // With a snapshot pending, the open round is written once the snapshot is
  // out.
  if (s.snapshot_round == 0 && !(s.dirty_users.empty() && s.timer_changes.empty())) {
    s.CloseRound();
    return s.WriteStep(SIZE_MAX);
  }
  return absl::OkStatus();
}

void WindowEngine::BeginSnapshot() {
  Impl& s = *impl_;
  // A snapshot still pending belongs to a checkpoint that this one
  // supersedes: its round is simply written as a round.
  s.completed_snapshot.reset();
  s.snapshot_round = s.CloseRound();
}

bool WindowEngine::snapshot_pending() const { return impl_->snapshot_round != 0; }

std::unique_ptr<StateSnapshot> WindowEngine::TakeSnapshot() { return std::move(impl_->completed_snapshot); }

bool WindowEngine::firing_pending() const { return impl_->firing_pending; }

bool WindowEngine::writes_pending() const { return !impl_->closed.empty(); }

absl::Status WindowEngine::Restore() {
  Impl& s = *impl_;
  if (!s.users.empty() || !s.timers.empty()) return absl::FailedPreconditionError("restore into a non-empty engine");
  absl::Status problem;
  std::vector<Timer> restored_timers;
  // State written under another (compatible) definition is read with that
  // one's layout and converted; converted users are written back in the
  // current layout by the next round, so RocksDB never mixes the two.
  const FeatureProgram& written_under = s.options.restored_program ? *s.options.restored_program : *s.program;
  std::optional<StateConverter> converter;
  if (s.options.restored_program && s.options.restored_program != s.program) {
    converter.emplace(*s.options.restored_program, *s.program);
  }
  UserWindowState read;
  for (int kg = s.owned.first; kg <= s.owned.last && problem.ok(); ++kg) {
    // Users first: timers point at their nodes.
    const std::string users_lower = sk::Prefix(kg, sk::kUser);
    std::string users_upper = users_lower;
    ++users_upper.back();
    absl::Status scanned = s.store->Scan(users_lower, users_upper, [&](std::string_view key, std::string_view value) {
      std::string_view user;
      if (sk::DecodeUser(key.substr(users_lower.size()), &user) == 0) {
        problem = absl::DataLossError(absl::StrCat("malformed user key in key group ", kg));
        return false;
      }
      auto [it, inserted] = s.users.try_emplace(std::string(user));
      UserEntry& entry = it->second;
      entry.key_group = kg;
      entry.id = s.next_user_id++;
      if (!UserWindowState::Parse(written_under, value, converter ? &read : &entry.state)) {
        problem = absl::DataLossError(absl::StrCat("unreadable state of user ", ToAbsl(user), " in key group ", kg));
        return false;
      }
      if (converter) {
        converter->Convert(read, &entry.state);
        s.MarkDirty(&*it);
      }
      return true;
    });
    if (!scanned.ok()) return scanned;
    if (!problem.ok()) return problem;
    const std::string timers_lower = sk::Prefix(kg, sk::kTimer);
    std::string timers_upper = timers_lower;
    ++timers_upper.back();
    scanned = s.store->Scan(timers_lower, timers_upper, [&](std::string_view key, std::string_view) {
      std::string_view rest = key.substr(timers_lower.size());
      std::string_view user;
      if (rest.size() < 10 || sk::DecodeUser(rest.substr(9), &user) == 0) {
        problem = absl::DataLossError(absl::StrCat("malformed timer key in key group ", kg));
        return false;
      }
      const int64_t time = sk::DecodeTime(rest);
      auto group = static_cast<uint8_t>(rest[8]);
      if (group >= written_under.groups().size()) {
        problem = absl::DataLossError(absl::StrCat("timer of user ", ToAbsl(user), " in key group ", kg,
                                                   " names feature group ", group, " of ",
                                                   written_under.groups().size()));
        return false;
      }
      if (converter) {
        const int to = converter->group_map()[group];
        if (to < 0) return true;  // a group the definition no longer has (not restorable: checked before)
        // The timer moves with its group: the old key goes, the new one comes.
        s.store->Delete(std::string(key));
        group = static_cast<uint8_t>(to);
      }
      auto it = s.users.find(ToAbsl(user));
      if (it == s.users.end()) {
        problem = absl::DataLossError(absl::StrCat("timer without its user ", ToAbsl(user), " in key group ", kg));
        return false;
      }
      restored_timers.emplace_back(time, group, &*it);
      ++it->second.timer_count;
      if (converter) s.RecordTimerChange(restored_timers.back(), true);
      return true;
    });
    if (!scanned.ok()) return scanned;
  }
  if (!problem.ok()) return problem;
  // Timers come out of RocksDB by key group, then time: sorted once here
  // and appended in order, the set is built without searching it.
  std::sort(restored_timers.begin(), restored_timers.end());
  for (const Timer& timer : restored_timers) s.timers.insert(s.timers.end(), timer);
  return absl::OkStatus();
}

WindowEngineStats WindowEngine::stats() const {
  return {impl_->sliding_windows_fired, impl_->sessions_fired, static_cast<int64_t>(impl_->users.size()),
          static_cast<int64_t>(impl_->timers.size())};
}

}  // namespace slipstream
