# syntax=docker/dockerfile:1
#
# Slipstream image: slipstream-coordinator, slipstream-worker, slipstream-gen and the slipstream CLI
# in /opt/slipstream/bin (on PATH), the default configuration in
# /opt/slipstream/conf/application.properties.
#
#   docker build -t slipstream:latest .
#   docker run --rm slipstream:latest                      # prints help
#   docker run --rm slipstream:latest slipstream-coordinator \
#       --config /opt/slipstream/conf/application.properties -Dkafka.bootstrap.servers=...
#
# The builder installs the build dependencies with the project's own
# scripts/setup.sh (one source of truth for the package list; it also installs
# Kafka's JRE, Maven and redis-server, which only cost builder-stage space) and
# compiles with scripts/build.sh, exactly as on a developer machine.

############################ builder ##########################################
FROM debian:bookworm AS builder

WORKDIR /src
# Only the scripts first, so the (slow) apt layer is cached until they change.
COPY scripts/ scripts/
RUN scripts/setup.sh && rm -rf /var/lib/apt/lists/*

COPY . .
# Tests and benchmarks are not shipped: turn them off to halve the build.
RUN SLIPSTREAM_SKIP_SETUP=1 BUILD_TYPE=Release scripts/build.sh \
        -DSLIPSTREAM_BUILD_TESTS=OFF -DSLIPSTREAM_BUILD_BENCH=OFF \
 && strip build/bin/slipstream build/bin/slipstream-*

############################ runtime ##########################################
FROM debian:bookworm-slim

# Shared libraries the binaries load (readelf NEEDED of build/bin/slipstream-*,
# mapped to Debian bookworm packages with dpkg -S); apt pulls their own
# dependencies (libre2-9, libc-ares2, libssl3, libsasl2-2, ...).
# RocksDB and librdkafka++ are linked statically by the CMake build, so
# librocksdb7.8 / librdkafka++1 are not needed. scripts/validate-deploy.sh
# fails if a library the binaries link is missing from this list.
# ca-certificates: for kafka.security.protocol=SSL/SASL_SSL clusters.
# hostname: `hostname -i` in docker-compose.yml's worker entrypoint, which
# advertises the container IP as taskmanager.host (Essential in Debian, so
# already in the slim image; listed so that use is on record).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        libgrpc++1.51 \
        libgrpc29 \
        libprotobuf32 \
        libabsl20220623 \
        librdkafka1 \
        libhiredis0.14 \
        libcpp-httplib0.11 \
        libssl3 \
        libsimdjson14 \
        libspdlog1.10 \
        libfmt9 \
        libyaml-cpp0.7 \
        libsnappy1v5 \
        liblz4-1 \
        libzstd1 \
        libbz2-1.0 \
        zlib1g \
        libstdc++6 \
        libgcc-s1 \
        ca-certificates \
        hostname \
 && rm -rf /var/lib/apt/lists/*

# Non-root user; /checkpoints is the mount point of the shared checkpoint
# volume (compose named volume / Kubernetes PVC) and is created owned by the
# user so a fresh named volume inherits that ownership.
RUN useradd --system --uid 10001 --user-group --home-dir /opt/slipstream --no-create-home slipstream \
 && mkdir -p /opt/slipstream/bin /opt/slipstream/conf /checkpoints /tmp/slipstream \
 && chown slipstream:slipstream /checkpoints /tmp/slipstream

COPY --from=builder /src/build/bin/slipstream /src/build/bin/slipstream-* /opt/slipstream/bin/
COPY conf/application.properties /opt/slipstream/conf/application.properties

ENV PATH=/opt/slipstream/bin:$PATH
WORKDIR /opt/slipstream
USER 10001:10001

# No ENTRYPOINT: the command names the binary (see docker-compose.yml and
# deploy/k8s/). Without one, print what the image contains.
CMD ["sh", "-c", "echo 'Slipstream image. Run one of: slipstream-coordinator | slipstream-worker | slipstream-gen  --config /opt/slipstream/conf/application.properties [-Dkey=value ...]'; echo; exec slipstream-worker --help"]
