// BatchReplyReader: reads the replies to one batch of the Redis sink
// (redis_batch_encoding.h) and decides, per feature, what an error reply
// means (ClassifyRedisError): a transient one ("not now": OOM, READONLY, ...)
// sends the feature again after a backoff; a permanent one (WRONGTYPE: the
// key belongs to someone else) hands it to `on_rejected`, the dead-letter
// topic, and counts it as done. Error replies are logged at most once per
// 10 s, with their count. Writer thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "worker/sink/redis_connection.h"
#include "worker/sink/redis_sink.h"
#include "worker/sink/redis_sink_probe.h"

struct redisReply;

namespace slipstream {

class BatchReplyReader {
 public:
  using OnRejected = decltype(RedisSinkOptions::on_rejected);
  BatchReplyReader(RedisSinkProbe& probe, OnRejected on_rejected);

  struct Outcome {
    enum class Kind {
      kRead,            // every reply read: the batch is done but for `again`
      kConnectionLost,  // resend the whole batch on a new connection
    };
    Kind kind = Kind::kRead;
    // Features that met a transient error reply: resend them, guarded.
    std::vector<FeatureWrite> again;
    // An error reply said the connection must change first (READONLY,
    // NOSCRIPT: the reconnection loads the scripts again, a cluster's MOVED:
    // it reads the slot map again); set even when the batch was not read to
    // the end.
    bool reconnect_before_retry = false;
  };

  // The replies to `features` sent guarded or plain (redis_batch_encoding.h:
  // the mark's HSET and EXPIRE, then one script reply, or HSET and EXPIRE,
  // per feature), and with `replica_acks` > 0 the WAIT's: when fewer
  // replicas than that have the writes, every feature goes again.
  Outcome Read(redis::Connection& conn, std::vector<FeatureWrite>* features, bool guarded, int replica_acks);

 private:
  void NoteRefusedMark(const redisReply& mark, Outcome* outcome);
  void SettleWait(const redisReply& wait, int replica_acks, const std::string& address,
                  const std::vector<const FeatureWrite*>& landed, Outcome* outcome);
  void SettlePlain(const FeatureWrite& f, const redisReply* hset, const redisReply* expire, Outcome* outcome);
  void SettleScriptReply(const FeatureWrite& f, const redisReply& r, Outcome* outcome);
  void Reject(const FeatureWrite& f, const std::string& error);
  void NoteError(const std::string& text, const char* action);

  RedisSinkProbe& probe_;
  OnRejected on_rejected_;
  int64_t rejected_ = 0;  // features handed to on_rejected so far
  int64_t errors_since_log_ = 0;
  int64_t next_error_log_ms_ = 0;
};

}  // namespace slipstream
