#include "common/grpc_authorization.h"

#include <grpcpp/server_builder.h>

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace slipstream {

std::string FullMethodName(std::string_view service, std::string_view method) {
  return absl::StrCat("/", absl::string_view(service.data(), service.size()), "/",
                      absl::string_view(method.data(), method.size()));
}

bool MethodAccess::Add(std::string_view service, std::initializer_list<std::string_view> methods, Access access) {
  bool all_new = true;
  for (std::string_view method : methods) all_new &= Add(FullMethodName(service, method), access);
  return all_new;
}

bool MethodAccess::Add(std::string full_method, Access access) {
  return access_.emplace(std::move(full_method), access).second;
}

std::optional<Access> MethodAccess::Find(std::string_view full_method) const {
  auto it = access_.find(absl::string_view(full_method.data(), full_method.size()));
  if (it == access_.end()) return std::nullopt;
  return it->second;
}

absl::Status AuthorizeCall(const MethodAccess& methods, const AccessControl& access, std::string_view full_method,
                           std::string_view authorization) {
  const std::optional<Access> needed = methods.Find(full_method);
  if (!needed) {
    return absl::UnimplementedError(absl::StrCat("this server has no access rule for ",
                                                 absl::string_view(full_method.data(), full_method.size()),
                                                 ", so it does not serve it"));
  }
  return access.Check(*needed, authorization);
}

void AddAuthorizedListeningPort(grpc::ServerBuilder& builder, const std::string& address,
                                const GrpcSecurity& security, AccessControl access, MethodAccess methods,
                                int* selected_port) {
  // Shared by the gate's copies (std::function copies its target).
  auto rules = std::make_shared<const std::pair<MethodAccess, AccessControl>>(std::move(methods), std::move(access));
  CallGate gate = [rules](std::string_view method, std::string_view authorization) {
    absl::Status verdict = AuthorizeCall(rules->first, rules->second, method, authorization);
    if (!verdict.ok()) spdlog::warn("refused {}: {}", method, std::string(verdict.message()));
    return verdict;
  };
  builder.AddListeningPort(address, security.ServerCredentials(std::move(gate)), selected_port);
}

}  // namespace slipstream
