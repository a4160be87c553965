// The file sink: its JSON line format (escaping, field order, valid_from)
// and its writer (acknowledgement after fsync, Flush, stats, layout).
#include "worker/sink/file_sink.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_sink_commit.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "worker/sink/feature_json_line.h"

namespace slipstream {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Json(std::string_view bytes) {
  std::string out;
  AppendJsonString(bytes, &out);
  return out;
}

TEST(FeatureJsonLine, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(Json("plain"), "\"plain\"");
  EXPECT_EQ(Json("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(Json("\b\f\n\r\t"), "\"\\b\\f\\n\\r\\t\"");
  EXPECT_EQ(Json(std::string("\x00\x01\x1f", 3)), "\"\\u0000\\u0001\\u001f\"");
  EXPECT_EQ(Json("/\x7f"), "\"/\x7f\"");  // neither needs escaping in JSON
}

TEST(FeatureJsonLine, CopiesValidUtf8AndEscapesEveryInvalidByte) {
  EXPECT_EQ(Json("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(Json("\xe9t\xe9"), "\"\\u00e9t\\u00e9\"");           // Latin-1 bytes
  EXPECT_EQ(Json("\xc3"), "\"\\u00c3\"");                          // truncated sequence
  EXPECT_EQ(Json("\xe2\x82"), "\"\\u00e2\\u0082\"");               // truncated, each byte
  EXPECT_EQ(Json("\x80x"), "\"\\u0080x\"");                        // lone continuation
  EXPECT_EQ(Json("\xc0\xaf"), "\"\\u00c0\\u00af\"");               // overlong '/'
  EXPECT_EQ(Json("\xe0\x80\xaf"), "\"\\u00e0\\u0080\\u00af\"");    // overlong, 3 bytes
  EXPECT_EQ(Json("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");    // a surrogate
  EXPECT_EQ(Json("\xf4\x90\x80\x80"), "\"\\u00f4\\u0090\\u0080\\u0080\"");  // above U+10FFFF
  EXPECT_EQ(Json("\xff"), "\"\\u00ff\"");
}

TEST(FeatureJsonLine, WritesKeyFieldsInOrderValidFromAndTtl) {
  FeatureWrite f;
  f.key = "user:42";
  f.fields = {"window_end", "1700000060000", "event_count", "3", "avg_price", "12.5", "last_category", ""};
  f.ttl_seconds = 7200;
  f.guard_fields = {0, -1};
  f.order = 1700000060000;
  std::string line;
  AppendFeatureJsonLine(f, &line);
  EXPECT_EQ(line,
            "{\"key\":\"user:42\",\"fields\":{\"window_end\":\"1700000060000\",\"event_count\":\"3\","
            "\"avg_price\":\"12.5\",\"last_category\":\"\"},\"valid_from\":1700000060000,\"ttl_seconds\":7200}\n");
}

TEST(FeatureJsonLine, SessionsAreValidFromTheirEndAndKeysAreEscaped) {
  FeatureWrite f;
  f.key = "session:u\n\"1\"";
  f.fields = {"session_end", "1700000123456", "event_count", "2"};
  f.ttl_seconds = kSessionFeaturesTtlSeconds;
  f.order = 1700000123456;
  std::string line;
  AppendFeatureJsonLine(f, &line);
  EXPECT_EQ(line,
            "{\"key\":\"session:u\\n\\\"1\\\"\",\"fields\":{\"session_end\":\"1700000123456\",\"event_count\":\"2\"},"
            "\"valid_from\":1700000123456,\"ttl_seconds\":3600}\n");
}

TEST(FeatureJsonLine, EmptyFieldsAreAnEmptyObject) {
  FeatureWrite f;
  f.key = "k";
  std::string line;
  AppendFeatureJsonLine(f, &line);
  EXPECT_EQ(line, "{\"key\":\"k\",\"fields\":{},\"valid_from\":0,\"ttl_seconds\":0}\n");
}

// ---------------------------------------------------------------------------
// The writer

class FileSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            absl::StrCat("file_sink_test_", ::getpid(), "_",
                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  FileSinkOptions Options() const {
    FileSinkOptions o;
    o.directory = root_.string();
    o.job_id = "job-1";
    o.attempt = 3;
    o.writer_index = 1;
    return o;
  }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  static FeatureWrite Feature(int i) {
    FeatureWrite f;
    f.key = absl::StrCat("user:", i);
    f.fields = {"window_end", absl::StrCat(1000 * i), "event_count", absl::StrCat(i)};
    f.ttl_seconds = 7200;
    f.order = 1000 * i;
    return f;
  }

  static std::string Line(int i) {
    std::string line;
    AppendFeatureJsonLine(Feature(i), &line);
    return line;
  }

  std::filesystem::path root_;
};

TEST_F(FileSinkTest, WritesEveryFeatureAsOneLineInTheAttemptsPartFile) {
  auto sink = FileSink::Start(Options());
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_EQ((*sink)->path(), (root_ / "job-1" / ".inprogress" / "attempt-3" / "part-1.jsonl").string());
  EXPECT_EQ((*sink)->path(), FileSinkInProgressPart(root_.string(), "job-1", 3, 1));
  EXPECT_TRUE(std::filesystem::exists((*sink)->path()));  // created at start, empty
  std::vector<FeatureWrite> batch = {Feature(1), Feature(2)};
  (*sink)->Write(&batch);
  EXPECT_TRUE(batch.empty());
  batch = {Feature(3)};
  (*sink)->Write(&batch);
  (*sink)->Flush();
  EXPECT_EQ(Read((*sink)->path()), Line(1) + Line(2) + Line(3));
  const FeatureSinkStats stats = (*sink)->stats();
  EXPECT_EQ(stats.features_written, 3);
  EXPECT_EQ(stats.pending, 0);
  EXPECT_EQ(stats.queued, 0);
  EXPECT_EQ(stats.error_replies, 0);
  EXPECT_EQ((*sink)->Superseded(), std::nullopt);
}

TEST_F(FileSinkTest, WaitUntilAckedMeansTheLinesAreInTheFile) {
  FileSinkOptions options = Options();
  options.batch_size = 7;  // several write + fsync rounds
  auto sink = FileSink::Start(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::string expected;
  for (int round = 0; round < 5; ++round) {
    std::vector<FeatureWrite> batch;
    for (int i = 0; i < 10; ++i) {
      batch.push_back(Feature(round * 10 + i));
      expected += Line(round * 10 + i);
    }
    (*sink)->Write(&batch);
    const uint64_t mark = (*sink)->Enqueued();
    EXPECT_EQ(mark, static_cast<uint64_t>(10 * (round + 1)));
    ASSERT_TRUE((*sink)->WaitUntilAcked(mark, 10000));
    // Everything up to the mark is there (and nothing half-written).
    const std::string contents = Read((*sink)->path());
    EXPECT_EQ(contents.substr(0, expected.size()), expected);
    EXPECT_EQ(contents.back(), '\n');
  }
  EXPECT_GE((*sink)->stats().batch_latency.count, 8);  // ceil(10/7) per round, or more
}

TEST_F(FileSinkTest, DestroyingDrainsWhatIsQueued) {
  std::string path;
  {
    auto sink = FileSink::Start(Options());
    ASSERT_TRUE(sink.ok()) << sink.status();
    path = (*sink)->path();
    std::vector<FeatureWrite> batch;
    for (int i = 0; i < 1000; ++i) batch.push_back(Feature(i));
    (*sink)->Write(&batch);
  }
  const std::vector<std::string> lines = absl::StrSplit(Read(path), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 1000u);
  EXPECT_EQ(lines[999] + "\n", Line(999));
}

TEST_F(FileSinkTest, DiscardDropsWhatIsWrittenFromNowOn) {
  auto sink = FileSink::Start(Options());
  ASSERT_TRUE(sink.ok()) << sink.status();
  std::vector<FeatureWrite> batch = {Feature(1)};
  (*sink)->Write(&batch);
  (*sink)->Flush();
  (*sink)->DropQueued();
  batch = {Feature(2), Feature(3)};
  (*sink)->Write(&batch);  // returns at once: dropped
  EXPECT_EQ((*sink)->Discard(), 2u);
  EXPECT_EQ(Read((*sink)->path()), Line(1));
}

TEST_F(FileSinkTest, ARestoredTaskLeavesAMarkerAndARedeployTruncates) {
  FileSinkOptions options = Options();
  {
    auto sink = FileSink::Start(options);
    ASSERT_TRUE(sink.ok()) << sink.status();
    std::vector<FeatureWrite> batch = {Feature(1)};
    (*sink)->Write(&batch);
  }
  options.restored_checkpoint = "/checkpoints/job-1/chk-7";
  auto sink = FileSink::Start(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_EQ(Read((*sink)->path()), "");
  EXPECT_EQ(Read(FileSinkRestoredMarker(root_.string(), "job-1", 3, 1)), "/checkpoints/job-1/chk-7\n");
}

TEST_F(FileSinkTest, AnUnwritableDirectoryFailsAtStartNamingIt) {
  std::filesystem::create_directories(root_);
  std::ofstream(root_ / "job-1") << "a file where the job directory should be";
  auto sink = FileSink::Start(Options());
  ASSERT_FALSE(sink.ok());
  EXPECT_THAT(std::string(sink.status().message()), HasSubstr((root_ / "job-1").string()));
  FileSinkOptions no_path = Options();
  no_path.directory.clear();
  auto refused = FileSink::Start(no_path);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("sink.path"));
}

}  // namespace
}  // namespace slipstream
