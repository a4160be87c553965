// The data plane between workers (Flink's network shuffle), over the
// DataPlane gRPC service in proto/slipstream.proto. One include for its
// users; each part has its own header:
//
//  - DataPlaneServer (data_plane_server.h): every worker serves it on
//    taskmanager.data.port, with TaskControl next to it (the coordinator's
//    checkpoint calls, answered by a TaskControlHandler).
//  - InboundEndpoint (inbound_endpoint.h): the receiving side of one
//    attempt, attached to the server while the attempt runs.
//  - OutboundChannel (outbound_channel.h): the sending side towards one
//    peer, holding the source back while the peer grants no credit.
#pragma once

#include "worker/exchange/data_plane_server.h"
#include "worker/exchange/inbound_endpoint.h"
#include "worker/exchange/outbound_channel.h"
#include "worker/exchange/task_control_handler.h"
