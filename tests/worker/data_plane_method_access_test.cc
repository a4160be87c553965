// The worker's method -> access table: every RPC of the services its
// DataPlaneServer hosts (DataPlane and TaskControl, read from the proto's
// descriptor, so a new RPC is noticed) needs the internal token, and
// nothing else is in the table.
#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include <string>

#include "proto/slipstream.pb.h"
#include "worker/exchange/data_plane_server.h"

namespace slipstream {
namespace {

TEST(DataPlaneMethodAccess, EveryRpcOfTheWorkersServicesIsInternal) {
  (void)v1::ChannelMessage::descriptor();  // makes sure the proto file is in the generated pool
  const MethodAccess table = DataPlaneMethodAccess();
  size_t methods = 0;
  for (const char* name : {"slipstream.v1.DataPlane", "slipstream.v1.TaskControl"}) {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string method = FullMethodName(service->full_name(), service->method(i)->name());
      EXPECT_EQ(table.Find(method), Access::kInternal) << method;
      ++methods;
    }
  }
  EXPECT_EQ(table.size(), methods);
}

}  // namespace
}  // namespace slipstream
