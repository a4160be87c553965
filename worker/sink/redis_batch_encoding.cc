#include "worker/sink/redis_batch_encoding.h"

#include "absl/strings/str_cat.h"
#include "worker/sink/redis_write_guard.h"

namespace slipstream {

namespace {

void AppendRespArrayHeader(size_t n, std::string* out) { absl::StrAppend(out, "*", n, "\r\n"); }

void AppendRespBulk(std::string_view arg, std::string* out) {
  absl::StrAppend(out, "$", arg.size(), "\r\n");
  out->append(arg);
  out->append("\r\n");
}

int GuardCount(const FeatureWrite& f) {
  int n = 0;
  for (int index : f.guard_fields) n += index >= 0 ? 1 : 0;
  return n;
}

void EncodeMark(const HighWaterMark& mark, std::string* resp) {
  // The mark goes first in the pipeline: Redis never holds a version newer
  // than the marks say.
  AppendRespArrayHeader(4, resp);
  AppendRespBulk("HSET", resp);
  AppendRespBulk(mark.key, resp);
  AppendRespBulk(mark.field, resp);
  AppendRespBulk(mark.value, resp);
  AppendRespArrayHeader(3, resp);
  AppendRespBulk("EXPIRE", resp);
  AppendRespBulk(mark.key, resp);
  AppendRespBulk(absl::StrCat(kWritersKeyTtlSeconds), resp);
}

}  // namespace

void EncodeGuardedBatch(std::span<const FeatureWrite> features, std::string_view script_sha,
                        const HighWaterMark& mark, std::string* resp) {
  EncodeMark(mark, resp);
  for (const FeatureWrite& f : features) {
    const int guards = GuardCount(f);
    AppendRespArrayHeader(3 + 1 + 3 + 2 * guards + f.fields.size(), resp);
    AppendRespBulk("EVALSHA", resp);
    AppendRespBulk(script_sha, resp);
    AppendRespBulk("1", resp);
    AppendRespBulk(f.key, resp);
    AppendRespBulk(absl::StrCat(f.ttl_seconds), resp);
    AppendRespBulk(absl::StrCat(guards), resp);
    for (int index : f.guard_fields) {
      if (index < 0) continue;
      AppendRespBulk(f.fields[index], resp);
      AppendRespBulk(f.fields[index + 1], resp);
    }
    AppendRespBulk(absl::StrCat(f.fields.size()), resp);
    for (const std::string& field : f.fields) AppendRespBulk(field, resp);
  }
}

void EncodeWaitForReplicas(int replicas, int64_t timeout_ms, std::string* resp) {
  AppendRespArrayHeader(3, resp);
  AppendRespBulk("WAIT", resp);
  AppendRespBulk(absl::StrCat(replicas), resp);
  AppendRespBulk(absl::StrCat(timeout_ms), resp);
}

void EncodePlainBatch(std::span<const FeatureWrite> features, const HighWaterMark& mark, std::string* resp) {
  EncodeMark(mark, resp);
  for (const FeatureWrite& f : features) {
    AppendRespArrayHeader(2 + f.fields.size(), resp);
    AppendRespBulk("HSET", resp);
    AppendRespBulk(f.key, resp);
    for (const std::string& field : f.fields) AppendRespBulk(field, resp);
    AppendRespArrayHeader(3, resp);
    AppendRespBulk("EXPIRE", resp);
    AppendRespBulk(f.key, resp);
    AppendRespBulk(absl::StrCat(f.ttl_seconds), resp);
  }
}

}  // namespace slipstream
