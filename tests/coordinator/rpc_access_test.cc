// The coordinator's method -> access table: every RPC of the Coordinator
// service (read from the proto's descriptor, so a new RPC is noticed) has
// exactly the access the reference list below gives it, and nothing else is
// in the table.
#include "coordinator/rpc_access.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "proto/slipstream.pb.h"

namespace slipstream {
namespace {

TEST(CoordinatorMethodAccess, EveryRpcHasTheAccessItNeedsAndNoMore) {
  const std::map<std::string, Access> expected = {
      {"RegisterWorker", Access::kInternal},   {"Heartbeat", Access::kInternal},
      {"DeregisterWorker", Access::kInternal}, {"AcknowledgeCheckpoint", Access::kInternal},
      {"DeclineCheckpoint", Access::kInternal}, {"GetJob", Access::kRead},
      {"ListJobs", Access::kRead},             {"GetSavepoint", Access::kRead},
      {"GetCheckpoints", Access::kRead},       {"ListWorkers", Access::kRead},
      {"TriggerSavepoint", Access::kAdmin},    {"StopWithSavepoint", Access::kAdmin},
      {"CancelJob", Access::kAdmin},           {"DisposeSavepoint", Access::kAdmin},
  };
  (void)v1::GetJobRequest::descriptor();  // makes sure the proto file is in the generated pool
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName("slipstream.v1.Coordinator");
  ASSERT_NE(service, nullptr);
  const MethodAccess table = CoordinatorMethodAccess();
  ASSERT_EQ(static_cast<size_t>(service->method_count()), expected.size()) << "a new RPC: add it to both lists";
  EXPECT_EQ(table.size(), expected.size());
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string name = service->method(i)->name();
    ASSERT_TRUE(expected.count(name)) << name;
    EXPECT_EQ(table.Find(FullMethodName(service->full_name(), name)), expected.at(name)) << name;
  }
}

}  // namespace
}  // namespace slipstream
